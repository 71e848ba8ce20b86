//! The linearizability search: Wing and Gong's algorithm with Lowe's
//! memoisation, as in Porcupine.
//!
//! Calls and returns sit in one doubly linked list in history order. The
//! search walks it: at a call it tries to linearize that operation now
//! (step the model, "lift" the call and its return out of the list); at a
//! return whose operation is not yet linearized it is stuck and backtracks.
//! A cache of (set of linearized operations, model state) cuts every
//! configuration seen before.
//!
//! Uncertain operations (info, or cut off by the end of the history) have
//! no return: they may be linearized at any point after their call, or
//! never. The search succeeds once every certain operation is linearized.

use crate::hints::SearchHints;
use crate::linset::LinSet;
use crate::memory::MemoryGauge;
use crate::model::{Model, SearchOp};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Limits after which the search gives up with "unknown".
#[derive(Debug, Clone, Copy)]
pub struct Budget<'a> {
    /// Give up at this instant.
    pub deadline: Option<Instant>,
    /// Give up before the whole process's resident memory would pass this
    /// many bytes (measured; see [`crate::memory`]).
    pub max_rss: usize,
    /// Give up as soon as this is set (another key was found invalid and
    /// the check stops at the first).
    pub cancel: Option<&'a AtomicBool>,
}

impl Budget<'_> {
    /// Why the search must stop now, if it must (time or cancellation).
    pub fn expired(&self) -> Option<&'static str> {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            Some("stopped: another key was found invalid first (--fail-fast)")
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Some("time limit reached")
        } else {
            None
        }
    }
}

/// Why a search found no linearization.
#[derive(Debug, Clone)]
pub struct Violation<S> {
    /// The operation that cannot be linearized (index into the search ops):
    /// the one whose return the search could never get past.
    pub op: usize,
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<usize>,
    /// Model states the impossible operation could have seen (bounded).
    pub states: Vec<S>,
}

/// What the search concluded.
#[derive(Debug, Clone)]
pub enum SearchOutcome<S> {
    /// A linearization exists.
    Linearizable,
    /// None exists.
    Violation(Violation<S>),
    /// The budget ran out first; the reason in words.
    Unknown(String),
}

/// Counters for reports and benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SearchStats {
    /// Distinct configurations memoised.
    pub states: usize,
    /// Steps of the main loop.
    pub steps: u64,
    /// Estimated bytes held by the memo cache.
    pub bytes: usize,
}

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;
/// How many distinct states a violation report keeps.
const MAX_REPORTED_STATES: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Entry {
    op: u32,
    is_call: bool,
    pos: usize,
    /// For a call: its return entry.
    matching: u32,
    prev: u32,
    next: u32,
}

/// FxHash: bitsets and small states hash fast, and the keys are not hostile.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64)
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64)
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64)
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;

/// Configurations seen: (linearized set, state, whether the last operation
/// was uncertain).
type Memo<S> = HashSet<(Box<[u64]>, S, bool), FxBuild>;

/// Where the scan for the next operation to linearize stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    /// At the i-th candidate certain call (see [`candidates`]).
    Certain(usize),
    /// At the i-th uncertain operation (in call order).
    Uncertain(usize),
    /// Nothing left to try in this configuration: backtrack.
    Exhausted,
}

/// A linearized operation on the backtracking stack.
struct Frame<S> {
    op: usize,
    /// Where to resume the scan after undoing it.
    resume: Cursor,
    /// The state and restriction before it.
    state: S,
    restricted: bool,
}

/// The mutable part of the search: the list, the linearized set, the state.
struct Walk<'a, M: Model> {
    model: &'a M,
    ops: &'a [SearchOp<M::Op>],
    entries: Vec<Entry>,
    call_entry: Vec<u32>,
    linearized: LinSet,
    /// Estimated bytes held by `cache`.
    bytes: usize,
    gauge: MemoryGauge,
    cache: Memo<M::State>,
    stack: Vec<Frame<M::State>>,
    state: M::State,
    /// True when the last linearized operation is uncertain: the next one
    /// must read the state.
    restricted: bool,
    cands: Vec<u32>,
    frontier: u32,
}

enum Push {
    Done,
    Seen,
    Full,
}

impl<M: SearchHints> Walk<'_, M> {
    /// Linearizes `op` (already stepped to `next_state`) unless that
    /// configuration was seen before.
    fn push(&mut self, op: usize, next_state: M::State, resume: Cursor) -> Push {
        let is_uncertain = self.ops[op].ret.is_none();
        self.linearized.set(op);
        let key = (self.linearized.key(), next_state, is_uncertain);
        if self.cache.contains(&key) {
            self.linearized.clear(op);
            return Push::Seen;
        }
        // The key's words and allocation, the state's heap, and when the
        // table is full the new table it is about to allocate.
        let entry = std::mem::size_of::<(Box<[u64]>, M::State, bool)>();
        let mut cost = key.0.len() * 8 + 16 + self.model.state_heap_bytes(&key.1);
        let growing = self.cache.len() == self.cache.capacity();
        if growing {
            cost += (self.cache.capacity() + 1) * 2 * (entry + 1) * 8 / 7;
        }
        let next_state = key.1.clone();
        let admitted = if growing {
            let cache = &mut self.cache;
            self.gauge
                .admit_large(cost, || {
                    cache.insert(key);
                })
                .is_some()
        } else if self.gauge.admit(cost) {
            self.cache.insert(key);
            true
        } else {
            false
        };
        if !admitted {
            self.linearized.clear(op);
            return Push::Full;
        }
        self.bytes += cost;
        self.stack.push(Frame {
            op,
            resume,
            state: std::mem::replace(&mut self.state, next_state),
            restricted: self.restricted,
        });
        self.restricted = is_uncertain;
        if !is_uncertain {
            lift(&mut self.entries, self.call_entry[op]);
            self.frontier = candidates(&self.entries, &mut self.cands);
        }
        Push::Done
    }

    /// Undoes the last linearization; returns where to resume.
    fn pop(&mut self) -> Option<Cursor> {
        let frame = self.stack.pop()?;
        self.state = frame.state;
        self.restricted = frame.restricted;
        self.linearized.clear(frame.op);
        if self.ops[frame.op].ret.is_some() {
            unlift(&mut self.entries, self.call_entry[frame.op]);
            self.frontier = candidates(&self.entries, &mut self.cands);
        }
        Some(frame.resume)
    }

    /// A certain read-only call that succeeds now. Linearizing it at once
    /// loses nothing: it leaves the state as it is, so any linearization
    /// that places it later can place it here instead.
    fn forced(&self, reads_only: &[bool]) -> Option<(usize, M::State)> {
        self.cands.iter().find_map(|&e| {
            let op = self.entries[e as usize].op as usize;
            if !reads_only[op] {
                return None;
            }
            self.model
                .step(&self.state, &self.ops[op].op)
                .map(|s| (op, s))
        })
    }

    fn stats(&self, steps: u64) -> SearchStats {
        SearchStats {
            states: self.cache.len(),
            steps,
            bytes: self.bytes,
        }
    }

    fn out_of_memory(&self) -> String {
        format!(
            "memory limit reached: the process holds about {} MiB of its {} MiB budget \
             ({} memoised states)",
            self.gauge.used() >> 20,
            self.gauge.limit() >> 20,
            self.cache.len()
        )
    }
}

/// What the search knows of the operations, fixed for the whole search.
struct Facts {
    /// Uncertain operations in call order.
    uncertain: Vec<usize>,
    /// For each uncertain operation, the previous identical one.
    before: Vec<Option<usize>>,
    reads_state: Vec<bool>,
    reads_only: Vec<bool>,
    /// Certain operations whose success constrains earlier states.
    watched: Vec<usize>,
}

/// The farthest point the search got stuck at, with what it saw there.
struct Best<S> {
    pos: Option<usize>,
    violation: Option<Violation<S>>,
}

impl<S: Clone> Best<S> {
    /// Notes that the search is stuck at the frontier return.
    fn stuck<M: Model<State = S>>(&mut self, w: &Walk<M>) {
        let e = w.entries[w.frontier as usize];
        if self.pos.is_none_or(|b| e.pos > b) {
            self.pos = Some(e.pos);
            self.violation = Some(Violation {
                op: e.op as usize,
                prefix: w.stack.iter().map(|f| f.op).collect(),
                states: vec![w.state.clone()],
            });
        } else if self.pos == Some(e.pos) {
            if let Some(b) = self.violation.as_mut() {
                if b.states.len() < MAX_REPORTED_STATES
                    && !b.states.iter().any(|s| w.model.equal(s, &w.state))
                {
                    b.states.push(w.state.clone());
                }
            }
        }
    }
}

/// Searches for a linearization of `ops` under `model`.
///
/// Certain operations are tried first, in history order, as in Porcupine,
/// except that a read-only operation that can go now always goes now (no
/// branching over the order of reads). Uncertain operations are tried only
/// when no certain call can go next, and only in a normal form that loses
/// no linearization: an uncertain operation must change the state, must be
/// followed at once by an operation that reads the state (otherwise
/// dropping it changes nothing), and identical uncertain operations are
/// used in call order.
pub fn search<M: SearchHints>(
    model: &M,
    ops: &[SearchOp<M::Op>],
    budget: Budget,
) -> (SearchOutcome<M::State>, SearchStats) {
    search_with(model, ops, budget, true)
}

/// [`search`] without the pruning by [`SearchHints::watched`] operations.
/// Same verdicts, often far slower; but a violation it reports names the
/// first operation no linearization gets past, whereas with pruning the
/// search may stop earlier, at an operation that is only impossible because
/// a later one is.
pub fn search_unpruned<M: SearchHints>(
    model: &M,
    ops: &[SearchOp<M::Op>],
    budget: Budget,
) -> (SearchOutcome<M::State>, SearchStats) {
    search_with(model, ops, budget, false)
}

fn facts<M: SearchHints>(model: &M, ops: &[SearchOp<M::Op>], prune: bool) -> Facts {
    let n = ops.len();
    let mut uncertain: Vec<usize> = (0..n).filter(|&i| ops[i].ret.is_none()).collect();
    uncertain.sort_by_key(|&i| ops[i].call);
    let mut watched = if prune {
        model.watched(ops)
    } else {
        Vec::new()
    };
    // Only certain operations must be linearized; an uncertain one proves
    // nothing about the states before it.
    watched.retain(|&k| k < n && ops[k].ret.is_some());
    Facts {
        uncertain,
        before: same_uncertain_predecessor(ops),
        reads_state: ops.iter().map(|o| model.reads_state(&o.op)).collect(),
        reads_only: ops.iter().map(|o| model.is_read_only(&o.op)).collect(),
        watched,
    }
}

fn walk<'a, M: SearchHints>(
    model: &'a M,
    ops: &'a [SearchOp<M::Op>],
    budget: &Budget,
) -> Walk<'a, M> {
    let entries = build_entries(ops);
    let mut call_entry = vec![NIL; ops.len()];
    for (i, e) in entries.iter().enumerate().skip(1) {
        if e.is_call {
            call_entry[e.op as usize] = i as u32;
        }
    }
    let mut w = Walk {
        model,
        ops,
        entries,
        call_entry,
        linearized: LinSet::new(ops),
        bytes: 0,
        gauge: MemoryGauge::new(budget.max_rss),
        cache: HashSet::default(),
        stack: Vec::new(),
        state: model.init(),
        restricted: false,
        cands: Vec::new(),
        frontier: NIL,
    };
    w.frontier = candidates(&w.entries, &mut w.cands);
    w
}

fn search_with<M: SearchHints>(
    model: &M,
    ops: &[SearchOp<M::Op>],
    budget: Budget,
    prune: bool,
) -> (SearchOutcome<M::State>, SearchStats) {
    let n = ops.len();
    if n == 0 {
        return (SearchOutcome::Linearizable, SearchStats::default());
    }
    if n >= NIL as usize / 2 {
        return (
            SearchOutcome::Unknown(format!(
                "{n} operations on one key is more than the search supports"
            )),
            SearchStats::default(),
        );
    }
    let f = facts(model, ops, prune);
    let mut w = walk(model, ops, &budget);
    let mut best = Best {
        pos: None,
        violation: None,
    };
    let mut steps = 0u64;
    let mut cursor = Cursor::Certain(0);
    // A configuration just reached: look for a forced move first.
    let mut fresh = true;
    loop {
        if w.entries[HEAD as usize].next == NIL {
            return (SearchOutcome::Linearizable, w.stats(steps));
        }
        steps += 1;
        if steps & 0x3ff == 0 {
            if let Some(why) = budget.expired() {
                let why = format!(
                    "{why} after {steps} steps and {} memoised states",
                    w.cache.len()
                );
                return (SearchOutcome::Unknown(why), w.stats(steps));
            }
            if steps & 0xfff == 0 {
                // Other keys' searches grow the process too.
                w.gauge.measure();
            }
        }
        if std::mem::take(&mut fresh) {
            if let Some((op, s)) = w.forced(&f.reads_only) {
                match w.push(op, s, Cursor::Exhausted) {
                    Push::Done => {
                        fresh = true;
                        cursor = Cursor::Certain(0);
                    }
                    Push::Seen => cursor = Cursor::Exhausted,
                    Push::Full => {
                        return (SearchOutcome::Unknown(w.out_of_memory()), w.stats(steps))
                    }
                }
                continue;
            }
        }
        let candidate = match pick(&mut w, &f, &mut cursor, &mut best) {
            Pick::Op(op) => Some(op),
            Pick::Nothing => None,
            Pick::Exhausted(v) => return (SearchOutcome::Violation(v), w.stats(steps)),
        };
        let Some(op) = candidate else { continue };
        let Some(next_state) = next(&w, &f, op) else {
            continue;
        };
        match w.push(op, next_state, cursor) {
            Push::Done => {
                fresh = true;
                cursor = Cursor::Certain(0);
            }
            Push::Seen => {}
            Push::Full => return (SearchOutcome::Unknown(w.out_of_memory()), w.stats(steps)),
        }
    }
}

/// What the scan offers next.
enum Pick<S> {
    /// An operation to try.
    Op(usize),
    /// Nothing here; scan on.
    Nothing,
    /// Every configuration is exhausted: no linearization.
    Exhausted(Violation<S>),
}

/// Moves the scan one step: the next candidate call, the next usable
/// uncertain operation, or a backtrack.
fn pick<M: SearchHints>(
    w: &mut Walk<M>,
    f: &Facts,
    cursor: &mut Cursor,
    best: &mut Best<M::State>,
) -> Pick<M::State> {
    match *cursor {
        Cursor::Certain(r) => match w.cands.get(r) {
            Some(&e) => {
                *cursor = Cursor::Certain(r + 1);
                Pick::Op(w.entries[e as usize].op as usize)
            }
            None => {
                *cursor = Cursor::Uncertain(0);
                Pick::Nothing
            }
        },
        Cursor::Uncertain(i) => match f.uncertain.get(i) {
            Some(&op) if w.ops[op].call < w.entries[w.frontier as usize].pos => {
                *cursor = Cursor::Uncertain(i + 1);
                let usable =
                    !w.linearized.get(op) && f.before[op].is_none_or(|p| w.linearized.get(p));
                if usable {
                    Pick::Op(op)
                } else {
                    Pick::Nothing
                }
            }
            _ => {
                // Stuck: nothing can go before this return.
                best.stuck(w);
                *cursor = Cursor::Exhausted;
                Pick::Nothing
            }
        },
        Cursor::Exhausted => match w.pop() {
            Some(resume) => {
                *cursor = resume;
                Pick::Nothing
            }
            None => Pick::Exhausted(best.violation.take().unwrap_or(Violation {
                op: w.entries[w.frontier as usize].op as usize,
                prefix: Vec::new(),
                states: vec![w.state.clone()],
            })),
        },
    }
}

/// The state after linearizing `op` now, if that is worth trying.
fn next<M: SearchHints>(w: &Walk<M>, f: &Facts, op: usize) -> Option<M::State> {
    if w.restricted && !f.reads_state[op] {
        return None;
    }
    let next_state = w.model.step(&w.state, &w.ops[op].op)?;
    if w.ops[op].ret.is_none() && w.model.equal(&next_state, &w.state) {
        return None;
    }
    // A state from which a watched operation still to come can no longer
    // succeed leads to no linearization: every certain operation must be
    // linearized eventually (see `SearchHints::reachable`).
    if !f.reads_only[op] {
        let pending = f
            .watched
            .iter()
            .copied()
            .find(|&k| k != op && !w.linearized.get(k));
        if pending.is_some_and(|k| !w.model.reachable(&next_state, &w.ops[k].op)) {
            return None;
        }
    }
    Some(next_state)
}

/// The certain calls that may go next (those before the first return in
/// the list), in call order. (Earliest-return-first was tried: it memoised
/// 3.7 times more states on the one-key benchmark.) Returns the first
/// return entry.
fn candidates(entries: &[Entry], out: &mut Vec<u32>) -> u32 {
    out.clear();
    let mut e = entries[HEAD as usize].next;
    while e != NIL && entries[e as usize].is_call {
        out.push(e);
        e = entries[e as usize].next;
    }
    e
}

fn build_entries<O>(ops: &[SearchOp<O>]) -> Vec<Entry> {
    let mut items: Vec<(usize, bool, u32)> = Vec::with_capacity(ops.len() * 2);
    for (i, o) in ops.iter().enumerate() {
        if let Some(r) = o.ret {
            items.push((o.call, true, i as u32));
            items.push((r, false, i as u32));
        }
    }
    // Calls before returns at the same position: an operation whose return
    // coincides with another's call overlaps it (never happens with distinct
    // event positions, but keeps the order total).
    items.sort_by_key(|&(pos, is_call, op)| (pos, !is_call, op));
    let mut entries = Vec::with_capacity(items.len() + 1);
    entries.push(Entry {
        op: NIL,
        is_call: false,
        pos: 0,
        matching: NIL,
        prev: NIL,
        next: NIL,
    });
    let mut return_of: HashMap<u32, u32> = HashMap::with_capacity(ops.len());
    for (k, &(pos, is_call, op)) in items.iter().enumerate() {
        let idx = (k + 1) as u32;
        entries.push(Entry {
            op,
            is_call,
            pos,
            matching: NIL,
            prev: idx - 1,
            next: if k + 1 < items.len() { idx + 1 } else { NIL },
        });
        if !is_call {
            return_of.insert(op, idx);
        }
    }
    entries[HEAD as usize].next = if items.is_empty() { NIL } else { 1 };
    for e in entries.iter_mut().skip(1) {
        if e.is_call {
            e.matching = return_of.get(&e.op).copied().unwrap_or(NIL);
        }
    }
    entries
}

/// For each uncertain operation, the previous uncertain operation (in call
/// order) with the identical model operation.
fn same_uncertain_predecessor<O: Eq + Hash>(ops: &[SearchOp<O>]) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_none()).collect();
    order.sort_by_key(|&i| ops[i].call);
    let mut last: HashMap<&O, usize> = HashMap::new();
    let mut out = vec![None; ops.len()];
    for i in order {
        out[i] = last.insert(&ops[i].op, i);
    }
    out
}

fn unlink(entries: &mut [Entry], i: u32) {
    let Entry { prev, next, .. } = entries[i as usize];
    entries[prev as usize].next = next;
    if next != NIL {
        entries[next as usize].prev = prev;
    }
}

fn relink(entries: &mut [Entry], i: u32) {
    let Entry { prev, next, .. } = entries[i as usize];
    entries[prev as usize].next = i;
    if next != NIL {
        entries[next as usize].prev = i;
    }
}

/// Removes a call and its return from the list.
fn lift(entries: &mut [Entry], call: u32) {
    unlink(entries, call);
    let m = entries[call as usize].matching;
    if m != NIL {
        unlink(entries, m);
    }
}

/// Undoes `lift`, in reverse order.
fn unlift(entries: &mut [Entry], call: u32) {
    let m = entries[call as usize].matching;
    if m != NIL {
        relink(entries, m);
    }
    relink(entries, call);
}
