//! What a check concludes, and how it is asked for: the verdict, the
//! options, and the results (results.json). The check itself is in
//! [`crate::history_check`].

use crate::history::Event;
use crate::operation::{Operation, Outcome};
use crate::register::RegisterKind;
use crate::stats::LatencySummary;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The verdict: serialised as `true`, `false` or `"unknown"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Validity {
    /// Linearizable.
    Valid,
    /// Not linearizable: a violation was found.
    Invalid,
    /// The checker ran out of time or memory before deciding.
    Unknown,
}

impl Validity {
    /// The process exit code for this verdict: 0 valid, 1 invalid, 3 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Validity::Valid => crate::EXIT_VALID,
            Validity::Invalid => crate::EXIT_INVALID,
            Validity::Unknown => crate::EXIT_UNKNOWN,
        }
    }

    /// The verdict in one word.
    pub fn as_str(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Invalid => "invalid",
            Validity::Unknown => "unknown",
        }
    }
}

impl Serialize for Validity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Validity::Valid => s.serialize_bool(true),
            Validity::Invalid => s.serialize_bool(false),
            Validity::Unknown => s.serialize_str("unknown"),
        }
    }
}

impl<'de> Deserialize<'de> for Validity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(true) => Ok(Validity::Valid),
            serde_json::Value::Bool(false) => Ok(Validity::Invalid),
            serde_json::Value::String(s) if s == "unknown" => Ok(Validity::Unknown),
            other => Err(serde::de::Error::custom(format!(
                "expected true, false or \"unknown\", found {other}"
            ))),
        }
    }
}

/// How to check a history.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Which model the history is checked against.
    pub model: RegisterKind,
    /// Every key's value before the first operation (null = absent).
    pub initial_value: serde_json::Value,
    /// Give up on whatever is still undecided after this long (whole check).
    pub time_limit: Option<Duration>,
    /// Give up on one key after this long.
    pub key_time_limit: Option<Duration>,
    /// Bound on the whole process's resident memory, in bytes: a key whose
    /// search would pass it ends unknown (measured, see [`crate::memory`]).
    pub memory_limit: usize,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// Show a progress bar on stderr when it is a terminal.
    pub progress: bool,
    /// Knossos semantics for Jepsen histories: a read that returned null
    /// constrains nothing (instead of meaning "absent").
    pub null_read_is_unknown: bool,
    /// Stop at the first key proven invalid: a quick pass over every key
    /// first, then the searches; keys left are reported not checked.
    pub fail_fast: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            model: RegisterKind::Kv,
            initial_value: serde_json::Value::Null,
            time_limit: Some(DEFAULT_TIME_LIMIT),
            key_time_limit: None,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            threads: 0,
            progress: false,
            null_read_is_unknown: false,
            fail_fast: false,
        }
    }
}

/// One operation, as a report names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpRef {
    /// The history index of its completion (of its invoke if it has none):
    /// where it became impossible.
    pub index: u64,
    /// The history index of its invoke.
    pub invoke_index: u64,
    /// Client process.
    pub process: u64,
    /// Function.
    pub f: String,
    /// The key, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The operation's value (what was read, written, ...).
    pub value: serde_json::Value,
    /// How it ended.
    pub outcome: Outcome,
}

impl OpRef {
    /// The reference to `op`, whose event positions index `events`.
    pub fn new(op: &Operation, events: &[Event]) -> Self {
        Self::of(op, |p| events[p].index)
    }

    /// The reference to `op`; `index_of` gives the `index` of the event
    /// at a position.
    pub fn of(op: &Operation, index_of: impl Fn(usize) -> u64) -> Self {
        OpRef {
            index: index_of(op.complete.unwrap_or(op.invoke)),
            invoke_index: index_of(op.invoke),
            process: op.process,
            f: op.f.clone(),
            key: op.key.clone(),
            value: op.value().clone(),
            outcome: op.outcome,
        }
    }

    /// "process 1's read (index 4)": the operation named in a sentence.
    pub fn name(&self) -> String {
        format!(
            "process {}'s {} (index {})",
            self.process, self.f, self.index
        )
    }

    /// "process 1 read 3" style words.
    pub fn describe(&self) -> String {
        let verb = match self.f.as_str() {
            "read" => "read",
            "write" => "wrote",
            "cas" => "compare-and-set",
            "append" => "appended",
            other => other,
        };
        format!(
            "process {} {} {} ({}, index {})",
            self.process,
            verb,
            self.value,
            self.outcome.as_str(),
            self.index
        )
    }
}

/// Why one key is not linearizable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The key.
    pub key: String,
    /// The first operation that cannot be linearized.
    pub op: OpRef,
    /// Length of the longest linearizable prefix found.
    pub prefix_len: usize,
    /// Its last operations (at most [`PREFIX_SHOWN`]), in linearization order.
    pub prefix_tail: Vec<OpRef>,
    /// States the register could have held when the operation took effect.
    pub states: Vec<serde_json::Value>,
    /// The explanation in words.
    pub message: String,
    /// The history events (invoke and completion lines, exactly as in the
    /// input) of a smallest set of operations of this key that cannot all
    /// be linearized: checked alone, they are invalid. Empty when there
    /// was no time to find one.
    #[serde(default)]
    pub witness: Vec<Event>,
    /// Whether the witness is 1-minimal: dropping any one of its operations
    /// leaves a linearizable history, or one in which a read sees a value
    /// none of the rest wrote. `false` when shrinking ran out of time.
    #[serde(default)]
    pub witness_minimal: bool,
    /// The shape of the violation in one plain sentence (stale read, lost
    /// write, ...), when it is a known one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness_shape: Option<String>,
}

/// The default bound on a whole check, after which undecided keys are
/// reported unknown: no check runs unbounded unless asked to.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(300);

/// The default bound on the process's resident memory.
pub const DEFAULT_MEMORY_LIMIT: usize = 2 << 30;

/// How long the search may look for the first impossible operation of a
/// key already known to hold an impossible one.
pub const IMPOSSIBLE_SEARCH_TIME: Duration = Duration::from_secs(2);

/// How long shrinking one key's witness may take.
pub const WITNESS_TIME: Duration = Duration::from_secs(3);

/// How long shrinking all the keys' witnesses may take together.
pub const WITNESS_TOTAL_TIME: Duration = Duration::from_secs(20);

/// How long shrinking the witness may take when the check stops at the
/// first invalid key.
pub const FAIL_FAST_WITNESS_TIME: Duration = Duration::from_millis(500);

/// How many operations of the linearizable prefix an explanation lists.
pub const PREFIX_SHOWN: usize = 10;

/// The verdict on one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyResult {
    /// The key ("" when the history has none).
    pub key: String,
    /// Its verdict.
    pub valid: Validity,
    /// Operations the search considered.
    pub ops: usize,
    /// Why the verdict is unknown, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Configurations memoised.
    pub states_explored: usize,
    /// Time spent on this key.
    pub elapsed_ms: f64,
}

/// Everything the checker concluded: what results.json holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The overall verdict.
    pub valid: Validity,
    /// The model checked against.
    pub model: String,
    /// The verdict in one sentence.
    pub summary: String,
    /// Events in the history (nemesis included).
    pub event_count: usize,
    /// Client operations.
    pub op_count: usize,
    /// Operations by f and outcome.
    pub counts: BTreeMap<String, BTreeMap<String, usize>>,
    /// Keys that are not linearizable.
    pub invalid_keys: Vec<String>,
    /// Keys the checker could not decide.
    pub unknown_keys: Vec<String>,
    /// Keys left unchecked because the check stopped at the first invalid
    /// one (`fail_fast`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_checked_keys: Vec<String>,
    /// One explanation per invalid key.
    pub explanations: Vec<Explanation>,
    /// Per-key verdicts, invalid and unknown keys first.
    pub keys: Vec<KeyResult>,
    /// Latency quantiles.
    pub latency: LatencySummary,
    /// Time the check took.
    pub elapsed_ms: f64,
}

/// "1 key", "2 keys".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
