//! Latency statistics as a checker: always valid, it carries the quantiles
//! per operation kind so that they sit beside the other verdicts.

use super::{Checker, CheckerResult, RunInput};
use crate::check::Validity;
use crate::operation::pair_lenient;
use crate::stats::LatencySummary;

/// The latency statistics.
pub struct Latency;

impl Checker for Latency {
    fn name(&self) -> &'static str {
        "latency"
    }

    fn check(&self, input: &RunInput) -> CheckerResult {
        let ops = pair_lenient(input.events);
        let summary = LatencySummary::of(&ops);
        let details = serde_json::to_value(&summary).unwrap_or_default();
        CheckerResult::new(
            self.name(),
            Validity::Valid,
            format!(
                "{} completed operations measured",
                ops.iter().filter(|o| o.latency_ns().is_some()).count()
            ),
        )
        .with(details)
    }
}
