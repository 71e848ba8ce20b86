//! Operation counts and latency quantiles.

use crate::compact::CompactHistory;
use crate::operation::{Operation, Outcome};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Latency quantiles of a group of operations, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Quantiles {
    /// Operations in the group.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

impl Quantiles {
    /// Quantiles of latencies in nanoseconds (sorted in place).
    pub fn of(latencies_ns: &mut [u64]) -> Quantiles {
        if latencies_ns.is_empty() {
            return Quantiles::default();
        }
        latencies_ns.sort_unstable();
        let q = |p: f64| {
            let i =
                ((latencies_ns.len() as f64 * p).ceil() as usize).clamp(1, latencies_ns.len()) - 1;
            latencies_ns[i] as f64 / 1e6
        };
        Quantiles {
            count: latencies_ns.len(),
            p50_ms: q(0.50),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            max_ms: latencies_ns[latencies_ns.len() - 1] as f64 / 1e6,
        }
    }
}

/// Latency of completed operations: all together, and by f and outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LatencySummary {
    /// Every completed operation.
    pub all: Quantiles,
    /// By f, then by outcome (`ok`, `fail`, `info`).
    pub by_f: BTreeMap<String, BTreeMap<String, Quantiles>>,
}

impl LatencySummary {
    /// Summarises the latencies of `ops` that completed.
    pub fn of(ops: &[Operation]) -> LatencySummary {
        Self::of_stats(
            ops.iter()
                .map(|o| (o.f.as_str(), o.outcome, o.latency_ns())),
        )
    }

    /// Summarises the latencies of a compact history's operations.
    pub fn of_history(h: &CompactHistory) -> LatencySummary {
        Self::of_stats(stats_of(h))
    }

    /// Summarises `(f, outcome, latency)` of each operation.
    pub fn of_stats<'a>(
        ops: impl Iterator<Item = (&'a str, Outcome, Option<u64>)>,
    ) -> LatencySummary {
        let mut all = Vec::new();
        let mut groups: BTreeMap<(&str, &'static str), Vec<u64>> = BTreeMap::new();
        for (f, outcome, latency) in ops {
            if let Some(l) = latency {
                all.push(l);
                groups.entry((f, outcome.as_str())).or_default().push(l);
            }
        }
        let mut by_f: BTreeMap<String, BTreeMap<String, Quantiles>> = BTreeMap::new();
        for ((f, outcome), mut ls) in groups {
            by_f.entry(f.to_string())
                .or_default()
                .insert(outcome.to_string(), Quantiles::of(&mut ls));
        }
        LatencySummary {
            all: Quantiles::of(&mut all),
            by_f,
        }
    }
}

/// `(f, outcome, latency)` of each operation of `h`.
fn stats_of(h: &CompactHistory) -> impl Iterator<Item = (&str, Outcome, Option<u64>)> {
    (0..h.len()).map(|id| {
        let (invoke, complete) = h.op_times(id);
        (
            h.op_f(id),
            h.op_outcome(id),
            complete.map(|c| c.saturating_sub(invoke)),
        )
    })
}

/// Operations by f, then by outcome (`ok`, `fail`, `info`, `pending`).
pub fn op_counts(ops: &[Operation]) -> BTreeMap<String, BTreeMap<String, usize>> {
    counts(ops.iter().map(|o| (o.f.as_str(), o.outcome)))
}

/// [`op_counts`] of a compact history.
pub fn op_counts_of(h: &CompactHistory) -> BTreeMap<String, BTreeMap<String, usize>> {
    counts(stats_of(h).map(|(f, outcome, _)| (f, outcome)))
}

fn counts<'a>(
    ops: impl Iterator<Item = (&'a str, Outcome)>,
) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut by: BTreeMap<(&str, &'static str), usize> = BTreeMap::new();
    for (f, outcome) in ops {
        *by.entry((f, outcome.as_str())).or_default() += 1;
    }
    let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for ((f, outcome), n) in by {
        out.entry(f.to_string())
            .or_default()
            .insert(outcome.to_string(), n);
    }
    out
}
