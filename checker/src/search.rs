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

use crate::model::Model;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::time::Instant;

/// One operation as the search sees it.
#[derive(Debug, Clone)]
pub struct SearchOp<O> {
    /// The model operation.
    pub op: O,
    /// Position of the call in history order.
    pub call: usize,
    /// Position of the return; `None` if the operation may take effect at
    /// any time after its call, or never.
    pub ret: Option<usize>,
}

/// Limits after which the search gives up with "unknown".
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Give up at this instant.
    pub deadline: Option<Instant>,
    /// Give up when the memo cache holds this many configurations.
    pub max_states: usize,
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

/// Where the scan for the next operation to linearize stands.
#[derive(Debug, Clone, Copy)]
enum Cursor {
    /// At an entry of the list of certain operations.
    Certain(u32),
    /// At the i-th uncertain operation (in call order); the scan of certain
    /// calls stopped at return entry `frontier`.
    Uncertain { i: usize, frontier: u32 },
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

/// Searches for a linearization of `ops` under `model`.
///
/// Certain operations are tried first, in history order, as in Porcupine.
/// Uncertain ones are tried only when no certain call can go next, and only
/// in a normal form that loses no linearization: an uncertain operation
/// must change the state, must be followed at once by an operation that
/// reads the state (otherwise dropping it changes nothing), and identical
/// uncertain operations are used in call order.
pub fn search<M: Model>(
    model: &M,
    ops: &[SearchOp<M::Op>],
    budget: Budget,
) -> (SearchOutcome<M::State>, SearchStats) {
    let n = ops.len();
    let mut stats = SearchStats::default();
    if n == 0 {
        return (SearchOutcome::Linearizable, stats);
    }
    if n >= NIL as usize / 2 {
        return (
            SearchOutcome::Unknown(format!(
                "{n} operations on one key is more than the search supports"
            )),
            stats,
        );
    }
    let mut entries = build_entries(ops);
    let before = same_uncertain_predecessor(ops);
    let mut uncertain: Vec<usize> = (0..n).filter(|&i| ops[i].ret.is_none()).collect();
    uncertain.sort_by_key(|&i| ops[i].call);
    let reads_state: Vec<bool> = ops.iter().map(|o| model.reads_state(&o.op)).collect();
    let call_entry: Vec<u32> = {
        let mut v = vec![NIL; n];
        for (i, e) in entries.iter().enumerate().skip(1) {
            if e.is_call {
                v[e.op as usize] = i as u32;
            }
        }
        v
    };

    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Box<[u64]>, M::State, bool), FxBuild> = HashSet::default();
    let mut stack: Vec<Frame<M::State>> = Vec::new();
    let mut state = model.init();
    // True when the last linearized operation is uncertain: the next one
    // must read the state.
    let mut restricted = false;

    let mut best_pos: Option<usize> = None;
    let mut best: Option<Violation<M::State>> = None;

    let mut cursor = Cursor::Certain(entries[HEAD as usize].next);
    loop {
        if entries[HEAD as usize].next == NIL {
            stats.states = cache.len();
            return (SearchOutcome::Linearizable, stats);
        }
        stats.steps += 1;
        if stats.steps & 0x3ff == 0 {
            if let Some(d) = budget.deadline {
                if Instant::now() >= d {
                    stats.states = cache.len();
                    return (
                        SearchOutcome::Unknown(format!(
                            "time limit reached after {} steps and {} memoised states",
                            stats.steps,
                            cache.len()
                        )),
                        stats,
                    );
                }
            }
        }
        // Try to linearize the operation under the cursor.
        let (candidate, next_cursor) = match cursor {
            Cursor::Certain(e) => {
                let entry = entries[e as usize];
                if entry.is_call {
                    (Some(entry.op as usize), Cursor::Certain(entry.next))
                } else {
                    (None, Cursor::Uncertain { i: 0, frontier: e })
                }
            }
            Cursor::Uncertain { i, frontier } => {
                match uncertain.get(i) {
                    Some(&op) if ops[op].call < entries[frontier as usize].pos => {
                        let usable = !get(&linearized, op)
                            && before[op].is_none_or(|p| get(&linearized, p));
                        (usable.then_some(op), Cursor::Uncertain { i: i + 1, frontier })
                    }
                    _ => {
                        // Stuck: nothing can go before this return.
                        let e = entries[frontier as usize];
                        if best_pos.is_none_or(|b| e.pos > b) {
                            best_pos = Some(e.pos);
                            best = Some(Violation {
                                op: e.op as usize,
                                prefix: stack.iter().map(|f| f.op).collect(),
                                states: vec![state.clone()],
                            });
                        } else if best_pos == Some(e.pos) {
                            if let Some(b) = best.as_mut() {
                                if b.states.len() < MAX_REPORTED_STATES
                                    && !b.states.iter().any(|s| model.equal(s, &state))
                                {
                                    b.states.push(state.clone());
                                }
                            }
                        }
                        let Some(frame) = stack.pop() else {
                            stats.states = cache.len();
                            let v = best.unwrap_or(Violation {
                                op: e.op as usize,
                                prefix: Vec::new(),
                                states: vec![state],
                            });
                            return (SearchOutcome::Violation(v), stats);
                        };
                        state = frame.state;
                        restricted = frame.restricted;
                        clear(&mut linearized, frame.op);
                        if ops[frame.op].ret.is_some() {
                            unlift(&mut entries, call_entry[frame.op]);
                        }
                        cursor = frame.resume;
                        continue;
                    }
                }
            }
        };
        cursor = next_cursor;
        let Some(op) = candidate else { continue };
        if restricted && !reads_state[op] {
            continue;
        }
        let Some(next_state) = model.step(&state, &ops[op].op) else {
            continue;
        };
        let is_uncertain = ops[op].ret.is_none();
        if is_uncertain && model.equal(&next_state, &state) {
            continue;
        }
        set(&mut linearized, op);
        let key = (linearized.clone().into_boxed_slice(), next_state, is_uncertain);
        if cache.contains(&key) {
            clear(&mut linearized, op);
            continue;
        }
        if cache.len() >= budget.max_states {
            stats.states = cache.len();
            return (
                SearchOutcome::Unknown(format!(
                    "memory limit reached: {} memoised states",
                    cache.len()
                )),
                stats,
            );
        }
        let next_state = key.1.clone();
        cache.insert(key);
        stack.push(Frame {
            op,
            resume: cursor,
            state: std::mem::replace(&mut state, next_state),
            restricted,
        });
        restricted = is_uncertain;
        if !is_uncertain {
            lift(&mut entries, call_entry[op]);
        }
        cursor = Cursor::Certain(entries[HEAD as usize].next);
    }
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

fn get(bits: &[u64], i: usize) -> bool {
    bits[i / 64] >> (i % 64) & 1 == 1
}

fn set(bits: &mut [u64], i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}

fn clear(bits: &mut [u64], i: usize) {
    bits[i / 64] &= !(1 << (i % 64));
}
