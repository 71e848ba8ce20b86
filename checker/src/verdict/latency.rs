//! Latency statistics as a checker: always valid, it carries the quantiles
//! per operation kind so that they sit beside the other verdicts.

use super::{Checker, CheckerResult, RunInput};
use crate::check::Validity;
use crate::stats::LatencySummary;

/// The latency statistics.
pub struct Latency;

impl Checker for Latency {
    fn name(&self) -> &'static str {
        "latency"
    }

    fn check(&self, input: &RunInput) -> CheckerResult {
        // A history that reaches the checkers paired strictly, and then
        // pairs leniently the same.
        let summary = LatencySummary::of_history(input.history);
        let details = serde_json::to_value(&summary).unwrap_or_default();
        CheckerResult::new(
            self.name(),
            Validity::Valid,
            format!("{} completed operations measured", summary.all.count),
        )
        .with(details)
    }
}
