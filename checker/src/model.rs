//! Models: what a correct single-copy object would answer.
//!
//! A model is its sequential specification and nothing else: the state
//! before any operation, one step, and how a history's operation becomes
//! the model's own compact form (as in Porcupine: init, step, equal,
//! partition, describe). The search knows nothing of keys, registers or
//! JSON; adding a data type is adding a model. Hints that make the search
//! faster on one model live apart, in [`crate::hints::SearchHints`], and
//! all have defaults.

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

    /// Validates `op` and converts it; the error says what is wrong with it
    /// (an unknown f, a value of the wrong shape). `None`: the operation
    /// constrains nothing whatever its outcome (it is left out).
    fn prepare(&self, op: &Operation) -> Result<Option<Self::Op>, String>;

    /// Whether two states are the same.
    fn equal(&self, a: &Self::State, b: &Self::State) -> bool {
        a == b
    }

    /// The independent part of the object `op` touches; operations on
    /// different parts are checked separately. Default: the key.
    fn partition(&self, op: &Operation) -> String {
        op.key.clone().unwrap_or_default()
    }

    /// The state as JSON, for reports. Default: its debug text.
    fn describe_state(&self, state: &Self::State) -> serde_json::Value {
        serde_json::Value::String(format!("{state:?}"))
    }
}

/// One operation as the search sees it: the model operation and its
/// interval in the history.
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
