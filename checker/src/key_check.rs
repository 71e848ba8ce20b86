//! Deciding one key: the model's decision procedure when it has one, else
//! the quick pass and the search; then, for an invalid key, its
//! explanation and its minimal witness.

use crate::check::{
    CheckOptions, Explanation, KeyResult, OpRef, Validity, FAIL_FAST_WITNESS_TIME,
    IMPOSSIBLE_SEARCH_TIME, PREFIX_SHOWN, WITNESS_TIME,
};
use crate::compact::CompactHistory;
use crate::hints::{Decision, Finding, SearchHints};
use crate::history::Event;
use crate::jobs::KeyJob;
use crate::search::{search, search_unpruned, Budget, SearchOutcome, SearchStats, Violation};
use crate::witness::shrink;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Why a key was left unchecked.
pub const NOT_CHECKED: &str = "--fail-fast";

/// What every key's check shares.
pub struct KeyCheck<'a, M: SearchHints> {
    /// The model.
    pub model: &'a M,
    /// The history, its operations paired.
    pub history: &'a CompactHistory,
    /// The options.
    pub opts: &'a CheckOptions,
    /// When the whole check gives up.
    pub deadline: Option<Instant>,
    /// The bound on the process's resident memory.
    pub max_rss: usize,
    /// Set once a key is invalid and the check stops at the first.
    pub stop: AtomicBool,
    /// Milliseconds left for shrinking witnesses, all keys together.
    pub witness_ms_left: AtomicU64,
}

/// One key's verdict and, if invalid, its explanation.
#[derive(Debug, Clone)]
pub struct KeyOutcome {
    /// The verdict.
    pub result: KeyResult,
    /// Why it is invalid.
    pub explanation: Option<Explanation>,
    /// It was left unchecked (the check stopped at another key).
    pub not_checked: bool,
}

impl KeyOutcome {
    /// A key the check did not get to.
    pub fn not_checked<O>(job: &KeyJob<O>) -> Self {
        Self::not_checked_key(&job.key, job.ops.len())
    }

    /// Key `key`, of `ops` operations, which the check did not get to.
    pub fn not_checked_key(key: &str, ops: usize) -> Self {
        KeyOutcome {
            result: KeyResult {
                key: key.to_string(),
                valid: Validity::Unknown,
                ops,
                reason: Some(format!("not checked ({NOT_CHECKED})")),
                states_explored: 0,
                elapsed_ms: 0.0,
            },
            explanation: None,
            not_checked: true,
        }
    }
}

impl<M: SearchHints> KeyCheck<'_, M> {
    fn result<O>(&self, job: &KeyJob<O>, valid: Validity, started: Instant) -> KeyResult {
        KeyResult {
            key: job.key.clone(),
            valid,
            ops: job.ops.len(),
            reason: None,
            states_explored: 0,
            elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
        }
    }

    fn op_ref(&self, job: &KeyJob<M::Op>, k: usize) -> OpRef {
        OpRef::of(&self.history.op(job.ids[k]), |p| self.history.index_of(p))
    }

    fn budget(&self, deadline: Option<Instant>) -> Budget<'_> {
        Budget {
            deadline,
            max_rss: self.max_rss,
            cancel: self.opts.fail_fast.then_some(&self.stop),
        }
    }
}

/// The key's verdict from the cheap decisions alone (the model's decision
/// procedure, then the quick pass), if they reach one.
pub fn quick_decision<M: SearchHints>(
    ctx: &KeyCheck<M>,
    job: &KeyJob<M::Op>,
) -> Option<KeyOutcome> {
    let started = Instant::now();
    decided(ctx, job, started).or_else(|| {
        let f = ctx.model.impossible(&job.ops)?;
        let note = "found by the quick pass; it may not be the first impossible operation";
        Some(from_finding(ctx, job, f, Some(note), started))
    })
}

/// Decides one key.
pub fn check_key<M: SearchHints>(ctx: &KeyCheck<M>, job: &KeyJob<M::Op>) -> KeyOutcome {
    let started = Instant::now();
    if let Some(o) = decided(ctx, job, started) {
        return o;
    }
    // When one operation is impossible in any order the key is invalid
    // whatever the search says; the search then only looks for the first
    // impossible operation, briefly.
    let quick = ctx.model.impossible(&job.ops);
    let limits = [
        ctx.deadline,
        ctx.opts.key_time_limit.and_then(|k| started.checked_add(k)),
        quick.as_ref().map(|_| started + IMPOSSIBLE_SEARCH_TIME),
    ];
    let budget = ctx.budget(limits.into_iter().flatten().min());
    let (outcome, stats) = search_and_name(ctx, job, budget, quick.is_some());
    let mut o = match outcome {
        SearchOutcome::Linearizable => KeyOutcome {
            result: ctx.result(job, Validity::Valid, started),
            explanation: None,
            not_checked: false,
        },
        SearchOutcome::Violation(v) => from_violation(ctx, job, v, started),
        SearchOutcome::Unknown(reason) => match quick {
            // The search gave up, but one operation is impossible in any
            // order: the key is invalid all the same.
            Some(f) => {
                let note = format!(
                    "the full search gave up: {reason}, so this may not be the first \
                     impossible operation"
                );
                from_finding(ctx, job, f, Some(&note), started)
            }
            None if ctx.stop.load(Ordering::Relaxed) && ctx.opts.fail_fast => {
                KeyOutcome::not_checked(job)
            }
            None => {
                let mut result = ctx.result(job, Validity::Unknown, started);
                result.reason = Some(reason);
                KeyOutcome {
                    result,
                    explanation: None,
                    not_checked: false,
                }
            }
        },
    };
    o.result.states_explored = stats.states;
    o
}

/// The search, and when it found a violation with pruning, a short
/// unpruned search to name the first impossible operation.
fn search_and_name<M: SearchHints>(
    ctx: &KeyCheck<M>,
    job: &KeyJob<M::Op>,
    budget: Budget,
    quick: bool,
) -> (SearchOutcome<M::State>, SearchStats) {
    let (outcome, stats) = search(ctx.model, &job.ops, budget);
    if !matches!(outcome, SearchOutcome::Violation(_)) || ctx.model.watched(&job.ops).is_empty() {
        return (outcome, stats);
    }
    // With pruning the search may stop at an operation that is only
    // impossible because of a later one; the exhaustive search names the
    // first, if it can within a short budget.
    let short = Instant::now() + IMPOSSIBLE_SEARCH_TIME;
    let budget = Budget {
        deadline: Some(budget.deadline.map_or(short, |d| d.min(short))),
        ..budget
    };
    match search_unpruned(ctx.model, &job.ops, budget).0 {
        v @ SearchOutcome::Violation(_) => (v, stats),
        SearchOutcome::Unknown(why) if quick => (
            SearchOutcome::Unknown(format!(
                "the pruned search found a violation, the exhaustive one gave up ({why})"
            )),
            stats,
        ),
        // Out of budget and no quick finding (or, which soundness rules
        // out, a linearization): keep the pruned search's violation.
        _ => (outcome, stats),
    }
}

/// The verdict of the model's decision procedure, if it has one for this
/// key.
fn decided<M: SearchHints>(
    ctx: &KeyCheck<M>,
    job: &KeyJob<M::Op>,
    started: Instant,
) -> Option<KeyOutcome> {
    Some(match ctx.model.decide(&job.ops)? {
        Decision::Linearizable => KeyOutcome {
            result: ctx.result(job, Validity::Valid, started),
            explanation: None,
            not_checked: false,
        },
        Decision::Violation(f) => from_finding(ctx, job, f, None, started),
    })
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("key {key:?}: ")
    }
}

/// An invalid key from a finding (no linearizable prefix to show).
fn from_finding<M: SearchHints>(
    ctx: &KeyCheck<M>,
    job: &KeyJob<M::Op>,
    f: Finding,
    note: Option<&str>,
    started: Instant,
) -> KeyOutcome {
    let op = ctx.op_ref(job, f.op);
    let note = note.map(|n| format!(" ({n})")).unwrap_or_default();
    let message = format!(
        "{}{} cannot be linearized: {}{note}",
        key_prefix(&job.key),
        op.describe(),
        f.why
    );
    let mut explanation = Explanation {
        key: job.key.clone(),
        op,
        prefix_len: 0,
        prefix_tail: Vec::new(),
        states: Vec::new(),
        message,
        witness: Vec::new(),
        witness_minimal: false,
        witness_shape: None,
    };
    let seed: Vec<usize> = std::iter::once(f.op).chain(f.with).collect();
    attach_witness(ctx, job, &mut explanation, &seed);
    KeyOutcome {
        result: ctx.result(job, Validity::Invalid, started),
        explanation: Some(explanation),
        not_checked: false,
    }
}

/// An invalid key from the search's violation.
fn from_violation<M: SearchHints>(
    ctx: &KeyCheck<M>,
    job: &KeyJob<M::Op>,
    v: Violation<M::State>,
    started: Instant,
) -> KeyOutcome {
    let op = ctx.op_ref(job, v.op);
    let states: Vec<serde_json::Value> = v
        .states
        .iter()
        .map(|s| ctx.model.describe_state(s))
        .collect();
    let tail_from = v.prefix.len().saturating_sub(PREFIX_SHOWN);
    let message = explain(&job.key, &op, v.prefix.len(), &states);
    let mut explanation = Explanation {
        key: job.key.clone(),
        op,
        prefix_len: v.prefix.len(),
        prefix_tail: v.prefix[tail_from..]
            .iter()
            .map(|&k| ctx.op_ref(job, k))
            .collect(),
        states,
        message,
        witness: Vec::new(),
        witness_minimal: false,
        witness_shape: None,
    };
    attach_witness(ctx, job, &mut explanation, &[v.op]);
    KeyOutcome {
        result: ctx.result(job, Validity::Invalid, started),
        explanation: Some(explanation),
        not_checked: false,
    }
}

fn explain(key: &str, op: &OpRef, prefix_len: usize, states: &[serde_json::Value]) -> String {
    let shown: Vec<String> = states.iter().map(|s| s.to_string()).collect();
    format!(
        "{}{} cannot be linearized: after the longest linearizable prefix \
         ({prefix_len} operation{}) the value could only have been {}",
        key_prefix(key),
        op.describe(),
        if prefix_len == 1 { "" } else { "s" },
        if shown.is_empty() {
            "(none)".to_string()
        } else {
            shown.join(" or ")
        }
    )
}

/// Shrinks the key to a witness within its share of the witness time and
/// puts it, its minimality and its shape into `e`.
fn attach_witness<M: SearchHints>(
    ctx: &KeyCheck<M>,
    job: &KeyJob<M::Op>,
    e: &mut Explanation,
    seed: &[usize],
) {
    let share = if ctx.opts.fail_fast {
        FAIL_FAST_WITNESS_TIME
    } else {
        let left = Duration::from_millis(ctx.witness_ms_left.load(Ordering::Relaxed));
        WITNESS_TIME.min(left)
    };
    if share.is_zero() {
        return;
    }
    let started = Instant::now();
    let until = [ctx.deadline, started.checked_add(share)]
        .into_iter()
        .flatten()
        .min();
    let budget = Budget {
        deadline: until,
        max_rss: ctx.max_rss,
        cancel: None,
    };
    let found = shrink(ctx.model, &job.ops, seed, budget);
    let spent = started.elapsed().as_millis() as u64;
    let _ = ctx
        .witness_ms_left
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            Some(left.saturating_sub(spent))
        });
    let Some(w) = found else { return };
    let h = ctx.history;
    let mut events: Vec<(usize, Event)> = w
        .ops
        .iter()
        .flat_map(|&k| {
            let id = job.ids[k];
            let (invoke, complete) = h.op_positions(id);
            std::iter::once((invoke, h.invoke_event(id))).chain(complete.zip(h.complete_event(id)))
        })
        .collect();
    events.sort_unstable_by_key(|(p, _)| *p);
    e.witness = events.into_iter().map(|(_, e)| e).collect();
    e.witness_minimal = w.minimal;
    e.witness_shape = ctx.model.shape(&job.ops, &w.ops).map(|s| {
        let mut text = s.text;
        for (n, &k) in s.ops.iter().enumerate() {
            text = text.replace(&format!("{{{n}}}"), &ctx.op_ref(job, k).name());
        }
        text
    });
}
