//! The register model's search hints: what makes its keys quick to
//! decide (see [`crate::hints::SearchHints`] for what each must guarantee).

use crate::hints::{Decision, Finding, Need, SearchHints, Shape};
use crate::model::SearchOp;
use crate::register::{append_only, text, RegOp, RegisterModel, Val};
use std::collections::HashSet;

impl SearchHints for RegisterModel {
    fn reads_state(&self, op: &RegOp) -> bool {
        !matches!(op, RegOp::Write(_))
    }

    fn is_read_only(&self, op: &RegOp) -> bool {
        matches!(op, RegOp::Read(_))
    }

    /// An uncertain write (or cas) of a value that no kept operation ever
    /// observes (no read returned it, no cas expects it) is never needed:
    /// in any linearization that includes it, the next operation touching
    /// the register must overwrite it, so removing it changes no result.
    /// Appends read what came before, so a key with appends keeps everything.
    fn redundant(&self, ops: &[RegOp], uncertain: &[bool]) -> Vec<bool> {
        let mut out = vec![false; ops.len()];
        if ops.iter().any(|o| matches!(o, RegOp::Append(_))) {
            return out;
        }
        let mut observed: HashSet<&Val> = HashSet::new();
        for (op, &u) in ops.iter().zip(uncertain) {
            match op {
                RegOp::Read(v) if !u => {
                    observed.insert(v);
                }
                RegOp::Cas(from, _) => {
                    observed.insert(from);
                }
                _ => {}
            }
        }
        for (i, (op, &u)) in ops.iter().zip(uncertain).enumerate() {
            if !u {
                continue;
            }
            out[i] = match op {
                RegOp::Write(v) | RegOp::Cas(_, v) => !observed.contains(v),
                _ => false,
            };
        }
        out
    }

    fn impossible(&self, ops: &[SearchOp<RegOp>]) -> Option<Finding> {
        crate::impossible::impossible(ops, &self.initial)
    }

    /// Append-only keys of pieces are decided without a search (see
    /// [`crate::pieces`]).
    fn decide(&self, ops: &[SearchOp<RegOp>]) -> Option<Decision> {
        crate::pieces::decide(ops, &self.initial)
    }

    /// On a key with only appends and reads, the certain reads, shortest
    /// value first.
    ///
    /// Why pruning with them is sound: on such a key every step either
    /// leaves the state as it is (a read) or appends to it, so the text of
    /// the state only ever grows by extension (and a non-string state, which
    /// no append accepts, never changes). A certain read must be linearized
    /// at some point after the current one, where the state extends the
    /// current state; so if its value does not extend the current state
    /// (see [`RegisterModel::reachable`]), no continuation linearizes it and
    /// the configuration can be dropped. Checking any one pending read is
    /// sound; the shortest pending one is the tightest when the reads form
    /// a chain, as they do on every linearizable key.
    ///
    /// This is what keeps many concurrent appends cheap: each order of them
    /// is a distinct state, so memoisation does not merge them, but all
    /// orders except the one the next read shows are cut at once.
    fn watched(&self, ops: &[SearchOp<RegOp>]) -> Vec<usize> {
        if !append_only(ops) {
            return Vec::new();
        }
        let mut reads: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i].ret.is_some() && matches!(ops[i].op, RegOp::Read(_)))
            .collect();
        reads.sort_by_key(|&i| match &ops[i].op {
            RegOp::Read(v) => text(v).map_or(0, str::len),
            _ => 0,
        });
        reads
    }

    /// For a read on an append-only key: whether its value extends the
    /// state's text (or, for a state or value that is not a string, whether
    /// they are equal, since no append changes a non-string state and no
    /// append makes one).
    fn reachable(&self, state: &Val, op: &RegOp) -> bool {
        match op {
            RegOp::Read(v) => match (text(state), text(v)) {
                (Some(now), Some(then)) => then.starts_with(now),
                _ => state == v,
            },
            _ => true,
        }
    }
    fn state_heap_bytes(&self, state: &Val) -> usize {
        match state {
            Val::Str(s) | Val::Other(s) => s.len(),
            _ => 0,
        }
    }

    fn needs<'a>(&'a self, all: &'a [SearchOp<RegOp>]) -> Box<dyn Fn(usize) -> Need + 'a> {
        crate::closure::needs(all, &self.initial)
    }

    fn shape(&self, ops: &[SearchOp<RegOp>], witness: &[usize]) -> Option<Shape> {
        crate::shape::shape(ops, &self.initial, witness)
    }
}
