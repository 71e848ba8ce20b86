//! Operations: invoke events paired with their completions.
//!
//! Pairing is where malformed histories are caught: a completion with no
//! pending invoke, two invokes in flight on one process, a completion whose
//! `f` differs from its invoke. Nemesis (named-process) events are not
//! operations; they are kept in the history for the plots.

use crate::compact::{CompactHistory, Pairing};
use crate::history::Event;
use crate::HistoryError;
use serde::{Deserialize, Serialize};

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It happened, between its invoke and its completion.
    Ok,
    /// It certainly did not happen.
    Fail,
    /// It may have happened, at any time after its invoke, or never.
    Info,
    /// The history ends before it completed; treated exactly like `Info`.
    Pending,
}

impl Outcome {
    /// The lowercase name (`ok`, `fail`, `info`, `pending`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
            Outcome::Pending => "pending",
        }
    }

    /// Whether the operation may or may not have taken effect.
    pub fn is_uncertain(self) -> bool {
        matches!(self, Outcome::Info | Outcome::Pending)
    }
}

/// One client operation: its invoke, and its completion if there was one.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Client process number.
    pub process: u64,
    /// The operation's function (`read`, `write`, `cas`, `append`, ...).
    pub f: String,
    /// The key, when the history has keys.
    pub key: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The invoke's position in the event list.
    pub invoke: usize,
    /// The completion's position in the event list.
    pub complete: Option<usize>,
    /// The value of the invoke event.
    pub invoke_value: serde_json::Value,
    /// The value of the completion event (null when pending).
    pub complete_value: serde_json::Value,
    /// Invoke time, nanoseconds.
    pub invoke_time: u64,
    /// Completion time, nanoseconds.
    pub complete_time: Option<u64>,
}

impl Operation {
    /// The completion time minus the invoke time, when both are known.
    pub fn latency_ns(&self) -> Option<u64> {
        self.complete_time
            .map(|c| c.saturating_sub(self.invoke_time))
    }

    /// The value the operation carries: what a read returned, what a write
    /// wrote. Writes may echo their value on completion, or only carry it
    /// there; reads carry it on completion only.
    pub fn value(&self) -> &serde_json::Value {
        if self.f == "read" || self.invoke_value.is_null() {
            &self.complete_value
        } else {
            &self.invoke_value
        }
    }
}

/// Pairs the client events of `events` into operations, in invoke order.
///
/// Errors name the event that makes the history malformed: a completion
/// with no pending invoke, two invokes in flight on one process, a
/// completion of another f or key, or earlier than its invoke, an empty f,
/// a client process written as a string. The pairing itself is
/// [`crate::compact`]'s, which the check reads histories into.
pub fn pair(events: &[Event]) -> Result<Vec<Operation>, HistoryError> {
    let h = CompactHistory::from_events(events, Pairing::Strict)?;
    Ok((0..h.len()).map(|id| h.op(id)).collect())
}

/// Pairs what can be paired and skips what cannot: for plotting histories
/// that may be malformed (a plot should still show what is there). An
/// invoke replaces whatever its process had in flight; a completion with
/// nothing in flight is skipped; the invoke's f and key stand.
pub fn pair_lenient(events: &[Event]) -> Vec<Operation> {
    match CompactHistory::from_events(events, Pairing::Lenient) {
        Ok(h) => (0..h.len()).map(|id| h.op_lenient(id)).collect(),
        // Only a history of more than 2^32 events cannot be held.
        Err(_) => Vec::new(),
    }
}
