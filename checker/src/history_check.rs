//! Checking a whole history: pair, validate, split by key, decide each key
//! in parallel (see [`crate::key_check`]), and sum up.
//!
//! The history is held compactly ([`crate::compact`]) and each key's
//! operations are prepared for the search only when a worker takes the key
//! up ([`crate::jobs::job_of`]), so that memory follows the keys being
//! searched, not the whole history.

use crate::check::{plural, CheckOptions, CheckResult, Validity, WITNESS_TOTAL_TIME};
use crate::compact::{CompactHistory, Pairing};
use crate::hints::SearchHints;
use crate::history::Event;
use crate::jobs::{job_of, key_groups, KeyGroup};
use crate::key_check::{check_key, quick_decision, KeyCheck, KeyOutcome, NOT_CHECKED};
use crate::register::RegisterModel;
use crate::stats::{op_counts_of, LatencySummary};
use crate::HistoryError;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Memoised states beyond which a finished key's freed memory is handed
/// back to the system (tens of MiB).
const BIG_SEARCH_STATES: usize = 200_000;

/// Checks `events` for linearizability.
///
/// Errors name the event (its position in `events`) that makes the history
/// malformed; [`HistoryError::locate`] turns that into a file position.
pub fn check_history(events: &[Event], opts: &CheckOptions) -> Result<CheckResult, HistoryError> {
    check_compact(&CompactHistory::from_events(events, Pairing::Strict)?, opts)
}

/// Checks a compact history (strictly paired) for linearizability.
pub fn check_compact(
    history: &CompactHistory,
    opts: &CheckOptions,
) -> Result<CheckResult, HistoryError> {
    let mut model = RegisterModel::new(opts.model, &opts.initial_value);
    model.null_read_is_unknown = opts.null_read_is_unknown;
    check_compact_with_model(&model, opts.model.name(), history, opts)
}

/// Checks `events` against any model.
pub fn check_with_model<M: SearchHints>(
    model: &M,
    model_name: &str,
    events: &[Event],
    opts: &CheckOptions,
) -> Result<CheckResult, HistoryError> {
    let history = CompactHistory::from_events(events, Pairing::Strict)?;
    check_compact_with_model(model, model_name, &history, opts)
}

/// Checks a compact history (strictly paired) against any model.
pub fn check_compact_with_model<M: SearchHints>(
    model: &M,
    model_name: &str,
    history: &CompactHistory,
    opts: &CheckOptions,
) -> Result<CheckResult, HistoryError> {
    let started = Instant::now();
    let groups = key_groups(model, history)?;
    let ctx = KeyCheck {
        model,
        history,
        opts,
        deadline: opts.time_limit.and_then(|t| started.checked_add(t)),
        max_rss: opts.memory_limit,
        stop: AtomicBool::new(false),
        witness_ms_left: AtomicU64::new(WITNESS_TOTAL_TIME.as_millis() as u64),
    };
    let mut outcomes: Vec<Option<KeyOutcome>> = (0..groups.len()).map(|_| None).collect();
    if opts.fail_fast {
        quick_pass(&ctx, &groups, &mut outcomes);
    }
    if !ctx.stop.load(Ordering::Relaxed) {
        search_keys(&ctx, &groups, &mut outcomes);
    }
    let outcomes = outcomes
        .into_iter()
        .zip(&groups)
        .map(|(o, g)| o.unwrap_or_else(|| KeyOutcome::not_checked_key(&g.key, g.ids.len())))
        .collect();
    Ok(assemble(model_name, history, outcomes, started))
}

/// `--fail-fast`'s first phase: the quick decisions of every key, smallest
/// keys first; stops at the first key proven invalid.
fn quick_pass<M: SearchHints>(
    ctx: &KeyCheck<M>,
    groups: &[KeyGroup],
    outcomes: &mut [Option<KeyOutcome>],
) {
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by_key(|&i| groups[i].ids.len());
    let decide = |i: usize| quick_decision(ctx, &job_of(ctx.model, ctx.history, &groups[i]));
    for (i, outcome) in on_workers(ctx, &order, None, decide) {
        outcomes[i] = Some(outcome);
    }
}

/// Decides the keys still open, biggest first, on the worker threads.
fn search_keys<M: SearchHints>(
    ctx: &KeyCheck<M>,
    groups: &[KeyGroup],
    outcomes: &mut [Option<KeyOutcome>],
) {
    let open: Vec<usize> = (0..groups.len())
        .filter(|&i| outcomes[i].is_none())
        .collect();
    let progress = progress_bar(ctx.opts, open.len());
    let done = on_workers(ctx, &open, progress.as_ref(), |i| {
        let outcome = check_key(ctx, &job_of(ctx.model, ctx.history, &groups[i]));
        // A big search leaves freed pages the next key's budget would
        // count; a small one is not worth the call.
        if outcome.result.states_explored > BIG_SEARCH_STATES {
            crate::memory::release_free_memory();
        }
        Some(outcome)
    });
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    for (i, outcome) in done {
        outcomes[i] = Some(outcome);
    }
}

/// Runs `decide` over `keys` (job indexes) on the worker threads, taking
/// keys in order; with `fail_fast`, the first invalid key stops them all.
fn on_workers<M: SearchHints>(
    ctx: &KeyCheck<M>,
    keys: &[usize],
    progress: Option<&indicatif::ProgressBar>,
    decide: impl Fn(usize) -> Option<KeyOutcome> + Sync,
) -> Vec<(usize, KeyOutcome)> {
    let threads = if ctx.opts.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        ctx.opts.threads
    }
    .clamp(1, keys.len().max(1));
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, KeyOutcome)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                if ctx.stop.load(Ordering::Relaxed) {
                    break;
                }
                let Some(&i) = keys.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                let outcome = decide(i);
                if let Some(bar) = progress {
                    bar.inc(1);
                }
                let Some(outcome) = outcome else { continue };
                if ctx.opts.fail_fast && outcome.result.valid == Validity::Invalid {
                    ctx.stop.store(true, Ordering::Relaxed);
                }
                if let Ok(mut d) = done.lock() {
                    d.push((i, outcome));
                }
            });
        }
    });
    done.into_inner().unwrap_or_default()
}

fn progress_bar(opts: &CheckOptions, keys: usize) -> Option<indicatif::ProgressBar> {
    (opts.progress && std::io::stderr().is_terminal() && keys > 1).then(|| {
        let bar = indicatif::ProgressBar::new(keys as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "checking {pos}/{len} keys {wide_bar} {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    })
}

/// The result from every key's outcome (in job order): invalid keys first,
/// then unknown, then valid, and the verdict in a sentence.
fn assemble(
    model_name: &str,
    history: &CompactHistory,
    outcomes: Vec<KeyOutcome>,
    started: Instant,
) -> CheckResult {
    let mut ranked: Vec<(usize, KeyOutcome)> = outcomes.into_iter().enumerate().collect();
    ranked.sort_by_key(|(i, o)| (rank(o), *i));
    let mut keys = Vec::with_capacity(ranked.len());
    let mut explanations = Vec::new();
    let mut not_checked_keys = Vec::new();
    for (_, o) in ranked {
        if o.not_checked {
            not_checked_keys.push(o.result.key.clone());
        }
        keys.push(o.result);
        explanations.extend(o.explanation);
    }
    let with = |v: Validity| -> Vec<String> {
        keys.iter()
            .filter(|k| k.valid == v && !not_checked_keys.contains(&k.key))
            .map(|k| k.key.clone())
            .collect()
    };
    let invalid_keys = with(Validity::Invalid);
    let unknown_keys = with(Validity::Unknown);
    let valid = if !invalid_keys.is_empty() {
        Validity::Invalid
    } else if !unknown_keys.is_empty() || !not_checked_keys.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let mut summary = match valid {
        Validity::Valid if history.is_empty() => {
            "linearizable, vacuously: the history has no client operations".to_string()
        }
        Validity::Valid => format!(
            "linearizable: {} on {}, checked against the {model_name} model",
            plural(history.len(), "operation"),
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
    if !not_checked_keys.is_empty() {
        summary.push_str(&format!(
            "; {} not checked ({NOT_CHECKED})",
            plural(not_checked_keys.len(), "key")
        ));
    }
    CheckResult {
        valid,
        model: model_name.to_string(),
        summary,
        event_count: history.facts().events,
        op_count: history.len(),
        counts: op_counts_of(history),
        invalid_keys,
        unknown_keys,
        not_checked_keys,
        explanations,
        keys,
        latency: LatencySummary::of_history(history),
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    }
}

fn rank(o: &KeyOutcome) -> u8 {
    match (o.result.valid, o.not_checked) {
        (Validity::Invalid, _) => 0,
        (Validity::Unknown, false) => 1,
        (Validity::Unknown, true) => 2,
        (Validity::Valid, _) => 3,
    }
}
