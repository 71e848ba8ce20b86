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
    /// For a call: its return entry, or NIL for an uncertain operation.
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

/// Searches for a linearization of `ops` under `model`.
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

    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Box<[u64]>, M::State), FxBuild> = HashSet::default();
    let mut stack: Vec<(u32, M::State)> = Vec::new();
    let mut state = model.init();

    let mut best_pos: Option<usize> = None;
    let mut best: Option<Violation<M::State>> = None;

    let mut entry = entries[HEAD as usize].next;
    loop {
        if entry == NIL {
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
        let e = entries[entry as usize];
        let op = e.op as usize;
        if e.is_call {
            // Uncertain operations with the same effect are interchangeable;
            // trying them only in call order removes the symmetric copies.
            let symmetric_skip = before[op].is_some_and(|p| !get(&linearized, p));
            if !symmetric_skip {
                if let Some(next_state) = model.step(&state, &ops[op].op) {
                    set(&mut linearized, op);
                    let key = (linearized.clone().into_boxed_slice(), next_state);
                    if !cache.contains(&key) {
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
                        stack.push((entry, std::mem::replace(&mut state, next_state)));
                        lift(&mut entries, entry);
                        entry = entries[HEAD as usize].next;
                        continue;
                    }
                    clear(&mut linearized, op);
                }
            }
            entry = e.next;
        } else {
            // Stuck: the operation returning here is not linearized.
            if best_pos.is_none_or(|b| e.pos > b) {
                best_pos = Some(e.pos);
                best = Some(Violation {
                    op,
                    prefix: stack
                        .iter()
                        .map(|(en, _)| entries[*en as usize].op as usize)
                        .collect(),
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
            let Some((top, prev_state)) = stack.pop() else {
                stats.states = cache.len();
                let v = best.unwrap_or(Violation {
                    op,
                    prefix: Vec::new(),
                    states: vec![state],
                });
                return (SearchOutcome::Violation(v), stats);
            };
            state = prev_state;
            clear(&mut linearized, entries[top as usize].op as usize);
            unlift(&mut entries, top);
            entry = entries[top as usize].next;
        }
    }
}

fn build_entries<O>(ops: &[SearchOp<O>]) -> Vec<Entry> {
    let mut items: Vec<(usize, bool, u32)> = Vec::with_capacity(ops.len() * 2);
    for (i, o) in ops.iter().enumerate() {
        items.push((o.call, true, i as u32));
        if let Some(r) = o.ret {
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
