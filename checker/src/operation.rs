//! Operations: invoke events paired with their completions.
//!
//! Pairing is where malformed histories are caught: a completion with no
//! pending invoke, two invokes in flight on one process, a completion whose
//! `f` differs from its invoke. Nemesis (named-process) events are not
//! operations; they are kept in the history for the plots.

use crate::history::{Event, EventType, Process};
use crate::HistoryError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
pub fn pair(events: &[Event]) -> Result<Vec<Operation>, HistoryError> {
    let mut ops: Vec<Operation> = Vec::new();
    let mut in_flight: HashMap<u64, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let p = match &e.process {
            Process::Client(p) => *p,
            // A number in a string is a client that would silently be taken
            // for the nemesis, and its operations left unchecked.
            Process::Named(name) if name.trim().parse::<u64>().is_ok() => {
                return Err(HistoryError::event(
                    i,
                    format!("process {name:?} is a string: client processes are numbers"),
                ));
            }
            Process::Named(_) => continue,
        };
        if e.f.is_empty() {
            return Err(HistoryError::event(i, "empty f"));
        }
        match e.kind {
            EventType::Invoke => {
                if let Some(&prev) = in_flight.get(&p) {
                    return Err(HistoryError::event(
                        i,
                        format!(
                            "process {p} invokes {} while its {} (index {}) is still in flight",
                            e.f, ops[prev].f, events[ops[prev].invoke].index
                        ),
                    ));
                }
                in_flight.insert(p, ops.len());
                ops.push(Operation {
                    process: p,
                    f: e.f.clone(),
                    key: e.key.clone(),
                    outcome: Outcome::Pending,
                    invoke: i,
                    complete: None,
                    invoke_value: e.value.clone(),
                    complete_value: serde_json::Value::Null,
                    invoke_time: e.time,
                    complete_time: None,
                });
            }
            kind => {
                let Some(op_id) = in_flight.remove(&p) else {
                    return Err(HistoryError::event(
                        i,
                        format!(
                            "{} {} on process {p} without a pending invoke",
                            kind.as_str(),
                            e.f
                        ),
                    ));
                };
                let op = &mut ops[op_id];
                if op.f != e.f {
                    return Err(HistoryError::event(
                        i,
                        format!(
                            "{} {} on process {p} completes an invoke of {} (index {})",
                            kind.as_str(),
                            e.f,
                            op.f,
                            events[op.invoke].index
                        ),
                    ));
                }
                if e.key.is_some() && op.key.is_some() && e.key != op.key {
                    return Err(HistoryError::event(
                        i,
                        format!(
                            "completion on key {:?} for an invoke on key {:?}",
                            e.key.as_deref().unwrap_or(""),
                            op.key.as_deref().unwrap_or("")
                        ),
                    ));
                }
                if op.key.is_none() {
                    op.key = e.key.clone();
                }
                if e.time < op.invoke_time {
                    return Err(HistoryError::event(
                        i,
                        format!(
                            "completes at time {} before its invoke at time {}",
                            e.time, op.invoke_time
                        ),
                    ));
                }
                op.outcome = match kind {
                    EventType::Ok => Outcome::Ok,
                    EventType::Fail => Outcome::Fail,
                    _ => Outcome::Info,
                };
                op.complete = Some(i);
                op.complete_value = e.value.clone();
                op.complete_time = Some(e.time);
            }
        }
    }
    Ok(ops)
}

/// Pairs what can be paired and skips what cannot: for plotting histories
/// that may be malformed (a plot should still show what is there).
pub fn pair_lenient(events: &[Event]) -> Vec<Operation> {
    let mut ops: Vec<Operation> = Vec::new();
    let mut in_flight: HashMap<u64, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            in_flight.insert(p, ops.len());
            ops.push(Operation {
                process: p,
                f: e.f.clone(),
                key: e.key.clone(),
                outcome: Outcome::Pending,
                invoke: i,
                complete: None,
                invoke_value: e.value.clone(),
                complete_value: serde_json::Value::Null,
                invoke_time: e.time,
                complete_time: None,
            });
        } else if let Some(id) = in_flight.remove(&p) {
            let op = &mut ops[id];
            op.outcome = match e.kind {
                EventType::Ok => Outcome::Ok,
                EventType::Fail => Outcome::Fail,
                _ => Outcome::Info,
            };
            op.complete = Some(i);
            op.complete_value = e.value.clone();
            op.complete_time = Some(e.time.max(op.invoke_time));
        }
    }
    ops
}
