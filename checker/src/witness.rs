//! A minimal witness per invalid key: the smallest set of the key's
//! operations that still cannot be linearized, found by delta debugging
//! (ddmin, then one-by-one removal), keeping every operation's interval
//! as it was in the history.
//!
//! A sub-history only counts if it is closed (see [`SearchHints::needs`]):
//! it holds a producer of every value its reads saw. Without that rule a single read would always be a "witness" (of a
//! value nobody in it wrote) and tell the wrong story. So a witness is
//! 1-minimal in this sense: dropping any one of its operations leaves a
//! history that is linearizable, or one in which a read sees a value none
//! of the rest wrote.

use crate::hints::{Decision, Need, SearchHints};
use crate::model::SearchOp;
use crate::search::{search, Budget, SearchOutcome};

/// A witness: indexes into the key's operations, in history order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witness {
    /// The operations.
    pub ops: Vec<usize>,
    /// Whether the shrinking finished (1-minimal); `false` when its time
    /// ran out or a sub-history could not be decided, so a smaller witness
    /// may exist.
    pub minimal: bool,
}

/// Whether `ops` cannot be linearized: `None` when the budget ran out
/// before that was decided.
pub fn not_linearizable<M: SearchHints>(
    model: &M,
    ops: &[SearchOp<M::Op>],
    budget: Budget,
) -> Option<bool> {
    if let Some(d) = model.decide(ops) {
        return Some(matches!(d, Decision::Violation(_)));
    }
    if model.impossible(ops).is_some() {
        return Some(true);
    }
    match search(model, ops, budget).0 {
        SearchOutcome::Linearizable => Some(false),
        SearchOutcome::Violation(_) => Some(true),
        SearchOutcome::Unknown(_) => None,
    }
}

/// Tests sub-histories of one key.
struct Oracle<'a, M: SearchHints> {
    model: &'a M,
    all: &'a [SearchOp<M::Op>],
    need_of: Box<dyn Fn(usize) -> Need + 'a>,
    /// What each operation needs, filled in as operations come up.
    needs: Vec<Option<Need>>,
    /// Scratch: which operations the sub-history under test holds.
    member: Vec<bool>,
    budget: Budget<'a>,
    /// Some test could not be decided in time.
    undecided: bool,
}

impl<M: SearchHints> Oracle<'_, M> {
    /// Works out what the operations of `ids` need, where not yet known.
    fn learn(&mut self, ids: &[usize]) {
        for &i in ids {
            if self.needs[i].is_none() {
                self.needs[i] = Some((self.need_of)(i));
            }
        }
    }

    /// What operation `i` needs (once [`Oracle::learn`]ed; else nothing).
    fn need(&self, i: usize) -> &Need {
        static NOTHING: Need = Need {
            all_of: Vec::new(),
            any_of: Vec::new(),
        };
        self.needs[i].as_ref().unwrap_or(&NOTHING)
    }

    /// Whether every operation of `chosen` has what it needs there.
    fn closed(&mut self, chosen: &[usize]) -> bool {
        self.learn(chosen);
        for &i in chosen {
            self.member[i] = true;
        }
        let member = &self.member;
        let ok = chosen.iter().all(|&i| {
            let n = self.need(i);
            n.all_of.iter().all(|&p| member[p as usize])
                && (n.any_of.is_empty() || n.any_of.iter().any(|&p| member[p as usize]))
        });
        for &i in chosen {
            self.member[i] = false;
        }
        ok
    }

    /// What `chosen` must add to be closed: missing required producers,
    /// and the latest possible source where none is there; until none is
    /// missing.
    fn completed(&mut self, mut chosen: Vec<usize>) -> Vec<usize> {
        loop {
            self.learn(&chosen);
            for &i in &chosen {
                self.member[i] = true;
            }
            let mut more: Vec<usize> = Vec::new();
            for &i in &chosen {
                let n = self.need(i);
                more.extend(
                    n.all_of
                        .iter()
                        .map(|&p| p as usize)
                        .filter(|&p| !self.member[p]),
                );
                if !n.any_of.is_empty() && !n.any_of.iter().any(|&p| self.member[p as usize]) {
                    more.push(n.any_of[0] as usize);
                }
            }
            for &i in &chosen {
                self.member[i] = false;
            }
            more.sort_unstable();
            more.dedup();
            if more.is_empty() {
                chosen.sort_unstable();
                chosen.dedup();
                return chosen;
            }
            chosen.extend(more);
        }
    }

    /// Whether `chosen` is closed and cannot be linearized.
    fn holds(&mut self, chosen: &[usize]) -> bool {
        if chosen.is_empty() || !self.closed(chosen) {
            return false;
        }
        let sub: Vec<SearchOp<M::Op>> = chosen.iter().map(|&i| self.all[i].clone()).collect();
        match not_linearizable(self.model, &sub, self.budget) {
            Some(bad) => bad,
            None => {
                self.undecided = true;
                false
            }
        }
    }

    fn out_of_time(&self) -> bool {
        self.budget.expired().is_some()
    }
}

/// Shrinks the key's operations `all`, known not to be linearizable, to a
/// witness, starting from `seed` (operations a finding named). Gives up
/// with the smallest witness so far, marked not minimal, when `budget`
/// runs out; `None` if no sub-history smaller than the whole key was shown
/// invalid by then.
pub fn shrink<M: SearchHints>(
    model: &M,
    all: &[SearchOp<M::Op>],
    seed: &[usize],
    budget: Budget,
) -> Option<Witness> {
    let mut oracle = Oracle {
        model,
        all,
        need_of: model.needs(all),
        needs: vec![None; all.len()],
        member: vec![false; all.len()],
        budget,
        undecided: false,
    };
    let core = core(&mut oracle, seed)?;
    let (small, finished) = ddmin(&mut oracle, core);
    let (small, finished) = if finished {
        one_by_one(&mut oracle, small)
    } else {
        (small, false)
    };
    let mut ops = small;
    ops.sort_by_key(|&i| (all[i].call, i));
    Some(Witness {
        ops,
        minimal: finished && !oracle.undecided,
    })
}

/// A first sub-history that holds: the seed and what it needs; else the
/// operations around it, in windows doubling back from its last
/// operation; else the whole key.
fn core<M: SearchHints>(oracle: &mut Oracle<M>, seed: &[usize]) -> Option<Vec<usize>> {
    let all = oracle.all;
    let first = oracle.completed(seed.to_vec());
    if oracle.holds(&first) {
        return Some(first);
    }
    // The seed's end: everything invoked by then may matter.
    let end = seed
        .iter()
        .map(|&i| all[i].ret.unwrap_or(all[i].call))
        .max()
        .unwrap_or(usize::MAX);
    let mut by_call: Vec<usize> = (0..all.len()).filter(|&i| all[i].call <= end).collect();
    by_call.sort_by_key(|&i| all[i].call);
    let mut k = 8;
    while k < by_call.len() {
        if oracle.out_of_time() {
            return None;
        }
        let from = all[by_call[by_call.len() - k]].call;
        let window: Vec<usize> = by_call
            .iter()
            .copied()
            .filter(|&i| all[i].ret.is_none_or(|r| r >= from))
            .chain(seed.iter().copied())
            .collect();
        let window = oracle.completed(window);
        if oracle.holds(&window) {
            return Some(window);
        }
        k *= 4;
    }
    let prefix = oracle.completed(by_call);
    if prefix.len() < all.len() && oracle.holds(&prefix) {
        return Some(prefix);
    }
    (!oracle.out_of_time()).then(|| (0..all.len()).collect())
}

/// How many operations of the current set name each operation as one it
/// needs all of: an operation so named cannot leave while they stay.
fn pins<M: SearchHints>(oracle: &mut Oracle<M>, c: &[usize]) -> Vec<u32> {
    oracle.learn(c);
    let mut count = vec![0u32; oracle.all.len()];
    for &q in c {
        for &p in &oracle.need(q).all_of {
            count[p as usize] += 1;
        }
    }
    count
}

/// Whether removing `chunk` from the set whose [`pins`] are `pinned` would
/// leave an operation without one it needs all of (a sure "no", found
/// without building the rest).
fn leaves_pinned<M: SearchHints>(oracle: &Oracle<M>, pinned: &mut [u32], chunk: &[usize]) -> bool {
    for &q in chunk {
        for &p in &oracle.need(q).all_of {
            pinned[p as usize] -= 1;
        }
    }
    let stuck = chunk.iter().any(|&p| pinned[p] > 0);
    for &q in chunk {
        for &p in &oracle.need(q).all_of {
            pinned[p as usize] += 1;
        }
    }
    stuck
}

/// Zeller's ddmin: tries each of n chunks, then each complement, doubling
/// n when neither holds. The flag says whether it finished.
fn ddmin<M: SearchHints>(oracle: &mut Oracle<M>, mut c: Vec<usize>) -> (Vec<usize>, bool) {
    let mut n = 2;
    let mut pinned = pins(oracle, &c);
    while c.len() >= 2 {
        if oracle.out_of_time() {
            return (c, false);
        }
        let size = c.len().div_ceil(n);
        let chunks: Vec<&[usize]> = c.chunks(size).collect();
        if let Some(ch) = chunks.iter().find(|ch| oracle.holds(ch)) {
            c = ch.to_vec();
            pinned = pins(oracle, &c);
            n = 2;
            continue;
        }
        if chunks.len() > 2 {
            let complement = (0..chunks.len()).find_map(|k| {
                if leaves_pinned(oracle, &mut pinned, chunks[k]) {
                    return None;
                }
                let rest: Vec<usize> = chunks
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != k)
                    .flat_map(|(_, ch)| ch.iter().copied())
                    .collect();
                oracle.holds(&rest).then_some(rest)
            });
            if let Some(rest) = complement {
                c = rest;
                pinned = pins(oracle, &c);
                n = (n - 1).max(2);
                continue;
            }
        }
        if n >= c.len() {
            break;
        }
        n = (n * 2).min(c.len());
    }
    (c, true)
}

/// Drops single operations while the rest still holds, until none can go
/// (after a finished ddmin this only confirms: ddmin's last round tried
/// every single drop).
fn one_by_one<M: SearchHints>(oracle: &mut Oracle<M>, mut c: Vec<usize>) -> (Vec<usize>, bool) {
    loop {
        let mut dropped = false;
        let mut pinned = pins(oracle, &c);
        let mut k = 0;
        while k < c.len() {
            if oracle.out_of_time() {
                return (c, false);
            }
            if pinned[c[k]] > 0 {
                k += 1;
                continue;
            }
            let rest: Vec<usize> = c
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != k)
                .map(|(_, &i)| i)
                .collect();
            if oracle.holds(&rest) {
                c = rest;
                pinned = pins(oracle, &c);
                dropped = true;
            } else {
                k += 1;
            }
        }
        if !dropped {
            return (c, true);
        }
    }
}
