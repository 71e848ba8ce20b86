//! Which operations the latency scatter draws. A plot with every point of
//! a long history is megabytes of SVG, but sampling everything evenly
//! hides exactly what a reader looks for: the rare failure, the
//! timeout, the slow tail. So only the dense part is sampled: every fail
//! and info operation and every ok operation slower than the ok p99 is
//! drawn, and the ok operations at or below the p99 are thinned evenly
//! (in history order) to fit a budget. The plot states how many ok
//! operations it drew.

use crate::operation::{Operation, Outcome};

/// The operations to draw, in history order, and the ok counts.
#[derive(Debug)]
pub struct Sample<'a> {
    /// What to draw.
    pub drawn: Vec<&'a Operation>,
    /// Ok operations drawn.
    pub ok_drawn: usize,
    /// Ok operations with a latency.
    pub ok_total: usize,
}

/// [`Sample`] as positions in the operations.
#[derive(Debug)]
pub struct SampleIds {
    /// What to draw, in history order.
    pub drawn: Vec<usize>,
    /// Ok operations drawn.
    pub ok_drawn: usize,
    /// Ok operations with a latency.
    pub ok_total: usize,
}

/// The latency (ns) at or below which 99% of `lat` fall (nearest rank).
fn p99(mut lat: Vec<u64>) -> Option<u64> {
    if lat.is_empty() {
        return None;
    }
    lat.sort_unstable();
    let rank = (lat.len() * 99).div_ceil(100).max(1);
    Some(lat[rank - 1])
}

/// Picks the operations with a latency to draw: all fail and info ones,
/// all ok ones above the ok p99, and at most `dense_budget` of the rest.
pub fn sample_latencies(ops: &[Operation], dense_budget: usize) -> Sample<'_> {
    let s = sample_ids(
        ops.len(),
        |i| ops[i].outcome,
        |i| ops[i].latency_ns(),
        dense_budget,
    );
    Sample {
        drawn: s.drawn.into_iter().map(|i| &ops[i]).collect(),
        ok_drawn: s.ok_drawn,
        ok_total: s.ok_total,
    }
}

/// [`sample_latencies`] of `n` operations known by their position, so
/// that a compact history is sampled without a copy of its operations.
pub fn sample_ids(
    n: usize,
    outcome: impl Fn(usize) -> Outcome,
    latency_ns: impl Fn(usize) -> Option<u64>,
    dense_budget: usize,
) -> SampleIds {
    let ok_lat: Vec<u64> = (0..n)
        .filter(|&i| outcome(i) == Outcome::Ok)
        .filter_map(&latency_ns)
        .collect();
    let ok_total = ok_lat.len();
    let tail_from = p99(ok_lat).unwrap_or(u64::MAX);
    let dense = (0..n)
        .filter(|&i| outcome(i) == Outcome::Ok && latency_ns(i).is_some_and(|l| l <= tail_from))
        .count();
    let budget = dense_budget.max(1);
    let mut drawn = Vec::new();
    let (mut ok_drawn, mut dense_seen) = (0, 0);
    for i in 0..n {
        let Some(l) = latency_ns(i) else { continue };
        let keep = match outcome(i) {
            Outcome::Ok if l > tail_from => true,
            Outcome::Ok => {
                // Evenly spread: keep the operation where the count of
                // kept ones, seen * budget / dense, steps up (exactly
                // `budget` in all when there are more than that).
                dense_seen += 1;
                dense <= budget || dense_seen * budget / dense != (dense_seen - 1) * budget / dense
            }
            _ => true,
        };
        if keep {
            ok_drawn += usize::from(outcome(i) == Outcome::Ok);
            drawn.push(i);
        }
    }
    SampleIds {
        drawn,
        ok_drawn,
        ok_total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(i: u64, outcome: Outcome, latency: u64) -> Operation {
        Operation {
            process: i % 5,
            f: "read".into(),
            key: None,
            outcome,
            invoke: i as usize,
            complete: Some(i as usize + 1),
            invoke_value: serde_json::Value::Null,
            complete_value: serde_json::Value::Null,
            invoke_time: i * 10,
            complete_time: Some(i * 10 + latency),
        }
    }

    #[test]
    fn every_fail_info_and_tail_operation_is_drawn_and_only_the_dense_ok_cloud_is_thinned() {
        let mut ops: Vec<Operation> = (0..10_000).map(|i| op(i, Outcome::Ok, 5)).collect();
        // 20 slow ok operations: above the p99 only if fewer than 1%.
        for o in ops.iter_mut().step_by(500) {
            o.complete_time = Some(o.invoke_time + 1_000);
        }
        for o in ops.iter_mut().skip(7).step_by(1000) {
            o.outcome = Outcome::Fail;
        }
        for o in ops.iter_mut().skip(9).step_by(2000) {
            o.outcome = Outcome::Info;
        }
        let s = sample_latencies(&ops, 100);
        let count = |f: &dyn Fn(&Operation) -> bool| s.drawn.iter().filter(|o| f(o)).count();
        assert_eq!(count(&|o| o.outcome == Outcome::Fail), 10);
        assert_eq!(count(&|o| o.outcome == Outcome::Info), 5);
        assert_eq!(
            count(&|o| o.outcome == Outcome::Ok && o.latency_ns() == Some(1_000)),
            20
        );
        assert_eq!(s.ok_total, 10_000 - 15);
        assert_eq!(s.ok_drawn, 20 + 100, "the budget is used, not exceeded");
        // History order is kept (the plot's x is time).
        assert!(s.drawn.windows(2).all(|w| w[0].invoke < w[1].invoke));
    }

    #[test]
    fn a_small_history_is_drawn_whole() {
        let ops: Vec<Operation> = (0..50).map(|i| op(i, Outcome::Ok, i + 1)).collect();
        let s = sample_latencies(&ops, 1000);
        assert_eq!((s.drawn.len(), s.ok_drawn, s.ok_total), (50, 50, 50));
    }
}
