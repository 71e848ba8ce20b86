//! Checking a whole history: pair, validate, split by key, search each key
//! in parallel, and explain what is wrong.

use crate::history::Event;
use crate::model::Model;
use crate::operation::{pair, Operation, Outcome};
use crate::register::{RegisterKind, RegisterModel};
use crate::search::{search, search_unpruned, Budget, SearchOp, SearchOutcome};
use crate::stats::{op_counts, LatencySummary};
use crate::HistoryError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    /// Rough bound on the memory the search caches may use, in bytes.
    pub memory_limit: usize,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// Show a progress bar on stderr when it is a terminal.
    pub progress: bool,
    /// Knossos semantics for Jepsen histories: a read that returned null
    /// constrains nothing (instead of meaning "absent").
    pub null_read_is_unknown: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            model: RegisterKind::Kv,
            initial_value: serde_json::Value::Null,
            time_limit: Some(DEFAULT_TIME_LIMIT),
            key_time_limit: None,
            memory_limit: 1 << 30,
            threads: 0,
            progress: false,
            null_read_is_unknown: false,
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
    fn new(op: &Operation, events: &[Event]) -> Self {
        OpRef {
            index: events[op.complete.unwrap_or(op.invoke)].index,
            invoke_index: events[op.invoke].index,
            process: op.process,
            f: op.f.clone(),
            key: op.key.clone(),
            value: op.value().clone(),
            outcome: op.outcome,
        }
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
}

/// The default bound on a whole check, after which undecided keys are
/// reported unknown: no check runs unbounded unless asked to.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(300);

/// How long the search may look for the first impossible operation of a
/// key already known to hold an impossible one.
pub const IMPOSSIBLE_SEARCH_TIME: Duration = Duration::from_secs(2);

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
    /// One explanation per invalid key.
    pub explanations: Vec<Explanation>,
    /// Per-key verdicts, invalid and unknown keys first.
    pub keys: Vec<KeyResult>,
    /// Latency quantiles.
    pub latency: LatencySummary,
    /// Time the check took.
    pub elapsed_ms: f64,
}

/// Checks `events` for linearizability.
///
/// Errors name the event (its position in `events`) that makes the history
/// malformed; [`HistoryError::locate`] turns that into a file position.
pub fn check_history(events: &[Event], opts: &CheckOptions) -> Result<CheckResult, HistoryError> {
    let mut model = RegisterModel::new(opts.model, &opts.initial_value);
    model.null_read_is_unknown = opts.null_read_is_unknown;
    check_with_model(&model, opts.model.name(), events, opts)
}

/// Prepared operations of one key.
struct KeyJob<O> {
    key: String,
    ops: Vec<SearchOp<O>>,
    /// `ids[i]` is the operation (index into the paired list) of `ops[i]`.
    ids: Vec<usize>,
}

/// Checks `events` against any model.
pub fn check_with_model<M: Model>(
    model: &M,
    model_name: &str,
    events: &[Event],
    opts: &CheckOptions,
) -> Result<CheckResult, HistoryError> {
    let started = Instant::now();
    let operations = pair(events)?;
    let mut by_key: HashMap<String, KeyJob<M::Op>> = HashMap::new();
    let mut all_keys: Vec<String> = Vec::new();
    for (id, op) in operations.iter().enumerate() {
        let prepared = model.prepare(op).map_err(|m| {
            HistoryError::event(
                op.complete.filter(|_| op.f == "read").unwrap_or(op.invoke),
                m,
            )
        })?;
        let key = model.partition(op);
        let Some(prepared) = prepared else {
            by_key.entry(key.clone()).or_insert_with(|| {
                all_keys.push(key.clone());
                KeyJob {
                    key,
                    ops: Vec::new(),
                    ids: Vec::new(),
                }
            });
            continue;
        };
        let job = by_key.entry(key.clone()).or_insert_with(|| {
            all_keys.push(key.clone());
            KeyJob {
                key,
                ops: Vec::new(),
                ids: Vec::new(),
            }
        });
        let ret = match op.outcome {
            Outcome::Fail => continue,
            Outcome::Ok => op.complete,
            Outcome::Info | Outcome::Pending => {
                if model.is_read_only(&prepared) {
                    continue;
                }
                None
            }
        };
        job.ops.push(SearchOp {
            op: prepared,
            call: op.invoke,
            ret,
        });
        job.ids.push(id);
    }
    let mut jobs: Vec<KeyJob<M::Op>> = all_keys
        .iter()
        .filter_map(|k| by_key.remove(k))
        .map(|mut job| {
            drop_redundant(model, &mut job);
            job
        })
        .collect();
    // Biggest keys first, so that one slow key does not start last.
    jobs.sort_by_key(|j| std::cmp::Reverse(j.ops.len()));

    let threads = if opts.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        opts.threads
    }
    .clamp(1, jobs.len().max(1));
    let deadline = opts.time_limit.map(|t| started + t);
    let progress =
        (opts.progress && std::io::stderr().is_terminal() && jobs.len() > 1).then(|| {
            let bar = indicatif::ProgressBar::new(jobs.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "checking {pos}/{len} keys {wide_bar} {elapsed}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, KeyResult, Option<Explanation>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let key_started = Instant::now();
                let key_deadline = match (deadline, opts.key_time_limit) {
                    (Some(d), Some(k)) => Some(d.min(key_started + k)),
                    (d, None) => d,
                    (None, Some(k)) => Some(key_started + k),
                };
                // When one operation is impossible in any order the key is
                // invalid whatever the search says; the search then only
                // looks for the first impossible operation, briefly.
                let key_deadline = match model.impossible(&job.ops) {
                    Some(_) => Some(
                        key_deadline.map_or(key_started + IMPOSSIBLE_SEARCH_TIME, |d| {
                            d.min(key_started + IMPOSSIBLE_SEARCH_TIME)
                        }),
                    ),
                    None => key_deadline,
                };
                let budget = Budget {
                    deadline: key_deadline,
                    max_bytes: opts.memory_limit / threads,
                };
                let (mut outcome, stats) = search(model, &job.ops, budget);
                // With pruning the search may stop at an operation that is
                // only impossible because of a later one; the exhaustive
                // search names the first, if it can within a short budget.
                if matches!(outcome, SearchOutcome::Violation(_))
                    && !model.watched(&job.ops).is_empty()
                {
                    let short = Instant::now() + IMPOSSIBLE_SEARCH_TIME;
                    let budget = Budget {
                        deadline: Some(budget.deadline.map_or(short, |d| d.min(short))),
                        ..budget
                    };
                    match search_unpruned(model, &job.ops, budget).0 {
                        v @ SearchOutcome::Violation(_) => outcome = v,
                        SearchOutcome::Unknown(why) if model.impossible(&job.ops).is_some() => {
                            outcome = SearchOutcome::Unknown(format!(
                                "the pruned search found a violation, the exhaustive one gave up ({why})"
                            ))
                        }
                        // Out of budget and no quick finding (or, which
                        // soundness rules out, a linearization): keep
                        // the pruned search's violation.
                        _ => {}
                    }
                }
                let mut kr = KeyResult {
                    key: job.key.clone(),
                    valid: Validity::Valid,
                    ops: job.ops.len(),
                    reason: None,
                    states_explored: stats.states,
                    elapsed_ms: key_started.elapsed().as_secs_f64() * 1e3,
                };
                let explanation = match outcome {
                    SearchOutcome::Linearizable => None,
                    SearchOutcome::Unknown(reason) => match model.impossible(&job.ops) {
                        // The search gave up, but one operation is impossible
                        // in any order: the key is invalid all the same.
                        Some((k, why)) => {
                            kr.valid = Validity::Invalid;
                            let op = OpRef::new(&operations[job.ids[k]], events);
                            let where_ = if job.key.is_empty() {
                                String::new()
                            } else {
                                format!("key {:?}: ", job.key)
                            };
                            let message = format!(
                                "{where_}{} cannot be linearized: {why} (the full search gave up: {reason}, so this may not be the first impossible operation)",
                                op.describe()
                            );
                            Some(Explanation {
                                key: job.key.clone(),
                                op,
                                prefix_len: 0,
                                prefix_tail: Vec::new(),
                                states: Vec::new(),
                                message,
                            })
                        }
                        None => {
                            kr.valid = Validity::Unknown;
                            kr.reason = Some(reason);
                            None
                        }
                    },
                    SearchOutcome::Violation(v) => {
                        kr.valid = Validity::Invalid;
                        let op_of = |k: usize| OpRef::new(&operations[job.ids[k]], events);
                        let op = op_of(v.op);
                        let states: Vec<serde_json::Value> =
                            v.states.iter().map(|s| model.describe_state(s)).collect();
                        let tail_from = v.prefix.len().saturating_sub(PREFIX_SHOWN);
                        let message = explain(&job.key, &op, v.prefix.len(), &states);
                        Some(Explanation {
                            key: job.key.clone(),
                            op,
                            prefix_len: v.prefix.len(),
                            prefix_tail: v.prefix[tail_from..].iter().map(|&k| op_of(k)).collect(),
                            states,
                            message,
                        })
                    }
                };
                if let Ok(mut r) = results.lock() {
                    r.push((i, kr, explanation));
                }
                if let Some(bar) = &progress {
                    bar.inc(1);
                }
            });
        }
    });
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, kr, _)| (rank(kr.valid), *i));

    let mut keys = Vec::with_capacity(results.len());
    let mut explanations = Vec::new();
    for (_, kr, ex) in results {
        keys.push(kr);
        explanations.extend(ex);
    }
    let invalid_keys: Vec<String> = keys
        .iter()
        .filter(|k| k.valid == Validity::Invalid)
        .map(|k| k.key.clone())
        .collect();
    let unknown_keys: Vec<String> = keys
        .iter()
        .filter(|k| k.valid == Validity::Unknown)
        .map(|k| k.key.clone())
        .collect();
    let valid = if !invalid_keys.is_empty() {
        Validity::Invalid
    } else if !unknown_keys.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let summary = match valid {
        Validity::Valid if operations.is_empty() => {
            "linearizable, vacuously: the history has no client operations".to_string()
        }
        Validity::Valid => format!(
            "linearizable: {} on {}, checked against the {model_name} model",
            plural(operations.len(), "operation"),
            plural(keys.len(), "key")
        ),
        Validity::Invalid => format!(
            "NOT linearizable: {} of {} keys have a violation; first: {}",
            invalid_keys.len(),
            keys.len(),
            explanations
                .first()
                .map(|e| e.message.as_str())
                .unwrap_or("")
        ),
        Validity::Unknown => format!(
            "unknown: {} of {} keys could not be decided ({})",
            unknown_keys.len(),
            keys.len(),
            keys.iter().find_map(|k| k.reason.as_deref()).unwrap_or("")
        ),
    };
    Ok(CheckResult {
        valid,
        model: model_name.to_string(),
        summary,
        event_count: events.len(),
        op_count: operations.len(),
        counts: op_counts(&operations),
        invalid_keys,
        unknown_keys,
        explanations,
        keys,
        latency: LatencySummary::of(&operations),
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

/// "1 key", "2 keys".
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn rank(v: Validity) -> u8 {
    match v {
        Validity::Invalid => 0,
        Validity::Unknown => 1,
        Validity::Valid => 2,
    }
}

fn drop_redundant<M: Model>(model: &M, job: &mut KeyJob<M::Op>) {
    let prepared: Vec<M::Op> = job.ops.iter().map(|o| o.op.clone()).collect();
    let uncertain: Vec<bool> = job.ops.iter().map(|o| o.ret.is_none()).collect();
    let drop = model.redundant(&prepared, &uncertain);
    if !drop.iter().any(|&d| d) {
        return;
    }
    let mut keep = drop.iter().map(|d| !d);
    let mut keep2 = drop.iter().map(|d| !d);
    job.ops.retain(|_| keep.next().unwrap_or(true));
    job.ids.retain(|_| keep2.next().unwrap_or(true));
}

fn explain(key: &str, op: &OpRef, prefix_len: usize, states: &[serde_json::Value]) -> String {
    let shown: Vec<String> = states.iter().map(|s| s.to_string()).collect();
    let where_ = if key.is_empty() {
        String::new()
    } else {
        format!("key {key:?}: ")
    };
    format!(
        "{where_}{} cannot be linearized: after the longest linearizable prefix \
         ({prefix_len} operation{}) the value could only have been {}",
        op.describe(),
        if prefix_len == 1 { "" } else { "s" },
        if shown.is_empty() {
            "(none)".to_string()
        } else {
            shown.join(" or ")
        }
    )
}
