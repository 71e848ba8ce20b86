//! Client operations as plain data: what a generator yields and a client
//! executes, and how it completed.

use raft_checker::history::EventType;
use serde_json::Value;

/// The function of an operation, named as in the history (`f`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum F {
    /// Linearizable read of one key; value read, null when absent.
    Read,
    /// Blind write of an integer.
    Write,
    /// Compare-and-set: `[expected, new]`, expected null means "absent".
    Cas,
    /// Append a string suffix.
    Append,
}

impl F {
    /// The history name of this function.
    pub fn name(self) -> &'static str {
        match self {
            F::Read => "read",
            F::Write => "write",
            F::Cas => "cas",
            F::Append => "append",
        }
    }

    /// Whether the operation can change state (so an uncertain outcome is
    /// `info`, not `fail`).
    pub fn is_write(self) -> bool {
        !matches!(self, F::Read)
    }

    /// All functions, in a fixed order.
    pub const ALL: [F; 4] = [F::Read, F::Write, F::Cas, F::Append];
}

/// Which model a key follows: each key is used for one kind only, so the
/// checker's per-key model is clean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// Integers written, read and compared-and-set.
    Register,
    /// Strings appended and read.
    Append,
}

/// One operation to invoke.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// What to do.
    pub f: F,
    /// The key it acts on.
    pub key: String,
    /// The kind of `key` (decides how read values are decoded).
    pub kind: KeyKind,
    /// The invoke value as recorded in the history.
    pub value: Value,
}

/// How an invoked operation ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// `ok`, `fail` or `info`.
    pub kind: EventType,
    /// The completion value (the value read for a read, else the invoke value).
    pub value: Value,
    /// Why it failed or is uncertain.
    pub error: Option<String>,
}

impl Completion {
    /// The operation happened, with `value`.
    pub fn ok(value: Value) -> Self {
        Completion {
            kind: EventType::Ok,
            value,
            error: None,
        }
    }

    /// The operation certainly did not happen.
    pub fn fail(value: Value, error: impl Into<String>) -> Self {
        Completion {
            kind: EventType::Fail,
            value,
            error: Some(error.into()),
        }
    }

    /// The operation may or may not have happened.
    pub fn info(value: Value, error: impl Into<String>) -> Self {
        Completion {
            kind: EventType::Info,
            value,
            error: Some(error.into()),
        }
    }
}
