//! Models: what a correct single-copy object would answer.
//!
//! A model is four pure functions (init, step, equal, partition) plus the
//! preparation of an operation into the model's own compact form. The search
//! knows nothing of keys, registers or JSON; adding a data type is adding a
//! model.

use crate::operation::Operation;
use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification of an object.
pub trait Model: Send + Sync {
    /// The object's state; `Eq` and `Hash` must agree with [`Model::equal`],
    /// since the search memoises states in a hash set.
    type State: Clone + Eq + Hash + Send + Sync + Debug;
    /// An operation prepared for `step` (parsed once, stepped many times).
    type Op: Clone + Eq + Hash + Send + Sync + Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// Applies `op` to `state`: the new state, or `None` if a correct object
    /// could not have given this operation's result in this state.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;

    /// Whether two states are the same.
    fn equal(&self, a: &Self::State, b: &Self::State) -> bool {
        a == b
    }

    /// The independent part of the object `op` touches (a key); operations on
    /// different parts are checked separately.
    fn partition(&self, op: &Operation) -> String;

    /// Validates `op` and converts it; the error says what is wrong with it
    /// (an unknown f, a value of the wrong shape). `None`: the operation
    /// constrains nothing whatever its outcome (it is left out).
    fn prepare(&self, op: &Operation) -> Result<Option<Self::Op>, String>;

    /// Whether `op` only observes: such an operation with an uncertain
    /// outcome constrains nothing and is left out of the search.
    fn is_read_only(&self, op: &Self::Op) -> bool;

    /// Whether `op`'s result depends on the state it sees (a read, a cas, an
    /// append: yes; a blind write: no). The search uses it to place
    /// uncertain operations only where something observes them; `true` is
    /// always safe.
    fn reads_state(&self, op: &Self::Op) -> bool {
        let _ = op;
        true
    }

    /// For each uncertain operation of one partition (`uncertain[i]` true),
    /// whether it can be left out of the search because no linearization
    /// needs it. The default leaves everything in.
    fn redundant(&self, ops: &[Self::Op], uncertain: &[bool]) -> Vec<bool> {
        let _ = uncertain;
        vec![false; ops.len()]
    }

    /// A quick look for a certain operation that no linearization can
    /// contain, whatever the order (for a register: a read of a value that
    /// nothing wrote before the read returned). The index and why, in words.
    /// Used when the full search runs out of budget; the default finds
    /// nothing.
    fn impossible(&self, ops: &[crate::search::SearchOp<Self::Op>]) -> Option<(usize, String)> {
        let _ = ops;
        None
    }

    /// Operations whose success constrains every state before them, in
    /// the order the search should consult them (see [`Model::reachable`]).
    /// While such an operation is not linearized, the search keeps only
    /// states from which it can still succeed; it consults the first
    /// watched operation not yet linearized. The default watches nothing.
    fn watched(&self, ops: &[crate::search::SearchOp<Self::Op>]) -> Vec<usize> {
        let _ = ops;
        Vec::new()
    }

    /// Whether some sequence of operations from `state` can still lead to a
    /// state in which `op` succeeds. `false` must be certain (the search
    /// drops such states); `true` is always safe.
    fn reachable(&self, state: &Self::State, op: &Self::Op) -> bool {
        let _ = (state, op);
        true
    }

    /// The state as JSON, for reports.
    fn describe_state(&self, state: &Self::State) -> serde_json::Value;
}
