//! Latency samples and their summary: ops/s and the quantiles bench.json
//! reports, in microseconds.

use serde::Serialize;
use std::time::Duration;

/// Latencies of the successful operations of one kind, and the failures.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    /// One entry per successful operation, in microseconds.
    pub latencies_us: Vec<u64>,
    /// Operations that certainly failed.
    pub failed: u64,
    /// Operations whose outcome is unknown (timeouts).
    pub unknown: u64,
}

impl Samples {
    /// Records one successful operation.
    pub fn ok(&mut self, latency: Duration) {
        self.latencies_us.push(latency.as_micros() as u64);
    }

    /// Adds another worker's samples.
    pub fn merge(&mut self, other: Samples) {
        self.latencies_us.extend(other.latencies_us);
        self.failed += other.failed;
        self.unknown += other.unknown;
    }
}

/// The summary of one operation kind in one phase.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// Successful operations.
    pub ok: u64,
    /// Certain failures.
    pub failed: u64,
    /// Unknown outcomes.
    pub unknown: u64,
    /// Successful operations per second.
    pub ops_per_sec: f64,
    /// Mean latency.
    pub mean_us: f64,
    /// Median latency.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Slowest operation.
    pub max_us: u64,
}

/// The `q` quantile (0..=1) of sorted samples, nearest-rank; 0 if empty.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of a list of values (the mean of the middle two if even).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Summarises `samples` measured over `elapsed`; sorts the latencies.
pub fn summarize(samples: &mut Samples, elapsed: Duration) -> Summary {
    let l = &mut samples.latencies_us;
    l.sort_unstable();
    let secs = elapsed.as_secs_f64().max(1e-9);
    Summary {
        ok: l.len() as u64,
        failed: samples.failed,
        unknown: samples.unknown,
        ops_per_sec: l.len() as f64 / secs,
        mean_us: if l.is_empty() {
            0.0
        } else {
            l.iter().sum::<u64>() as f64 / l.len() as f64
        },
        p50_us: quantile(l, 0.50),
        p99_us: quantile(l, 0.99),
        p999_us: quantile(l, 0.999),
        max_us: l.last().copied().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(quantile(&v, 0.5), 500);
        assert_eq!(quantile(&v, 0.99), 990);
        assert_eq!(quantile(&v, 0.999), 999);
        assert_eq!(quantile(&v, 1.0), 1000);
        assert_eq!(quantile(&v, 0.0), 1);
        assert_eq!(quantile(&[], 0.5), 0);
        assert_eq!(quantile(&[7], 0.999), 7);
    }

    #[test]
    fn summary_counts_rate_and_tail() {
        let mut s = Samples::default();
        for us in [300u64, 100, 200, 400] {
            s.ok(Duration::from_micros(us));
        }
        s.failed = 2;
        let m = summarize(&mut s, Duration::from_secs(2));
        assert_eq!(m.ok, 4);
        assert_eq!(m.failed, 2);
        assert_eq!(m.ops_per_sec, 2.0);
        assert_eq!(m.p50_us, 200);
        assert_eq!(m.max_us, 400);
        assert_eq!(m.mean_us, 250.0);
    }

    #[test]
    fn median_of_odd_and_even_lists() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
