//! Recovery: after the final heal the cluster must serve again, and every
//! node the run started must be running. The driver records both in its
//! end-of-run record (`recovered`, `nodes_down`, `unexpected_exits`); a
//! cluster that stayed down, or a node that died on its own and never came
//! back, leaves the run without a verdict it can trust (unknown, with the
//! reason), never a plain valid.

use super::completeness::end_of_run;
use super::{join, Checker, CheckerResult, RunInput};
use crate::check::Validity;
use serde_json::{json, Value};

/// The recovery checker (for histories written by raft-driver).
pub struct Recovery;

impl Checker for Recovery {
    fn name(&self) -> &'static str {
        "recovery"
    }

    fn check(&self, input: &RunInput) -> CheckerResult {
        let Some(end) = end_of_run(input.history.named()) else {
            return CheckerResult::new(
                self.name(),
                Validity::Unknown,
                "not recorded: the history has no end-of-run record",
            );
        };
        let v = &end.value;
        let recovered = v.get("recovered").and_then(Value::as_bool).unwrap_or(false);
        let down: Vec<Value> = list(v, "nodes_down");
        let exits: Vec<Value> = list(v, "unexpected_exits");
        let mut problems = Vec::new();
        if !recovered {
            problems.push(format!(
                "the cluster did not serve again after the final heal{}",
                v.get("recovery_error")
                    .and_then(Value::as_str)
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ));
        }
        if !down.is_empty() {
            problems.push(format!(
                "node(s) {} down at the end of the run",
                join(&down)
            ));
        }
        for e in &exits {
            problems.push(format!(
                "node {} exited on its own ({}) at {:.1} s",
                e.get("node").unwrap_or(&Value::Null),
                e.get("status").and_then(Value::as_str).unwrap_or("?"),
                e.get("at_ms").and_then(Value::as_f64).unwrap_or(0.0) / 1000.0
            ));
        }
        let details = json!({
            "recovered": recovered,
            "nodes_down": down,
            "unexpected_exits": exits,
        });
        if problems.is_empty() {
            CheckerResult::new(
                self.name(),
                Validity::Valid,
                "the cluster served again after the final heal, every node running",
            )
            .with(details)
        } else {
            CheckerResult::new(self.name(), Validity::Unknown, problems.join("; ")).with(details)
        }
    }
}

fn list(v: &Value, key: &str) -> Vec<Value> {
    v.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(end: Value) -> CheckerResult {
        super::super::check_end_of_run(&Recovery, end)
    }

    #[test]
    fn a_cluster_that_served_again_with_every_node_up_is_valid() {
        let r = check(json!({"recovered": true, "nodes_down": [], "unexpected_exits": []}));
        assert_eq!(r.valid, Validity::Valid);
    }

    #[test]
    fn a_cluster_that_never_recovered_or_a_dead_node_is_unknown_with_the_reason() {
        let r = check(json!({"recovered": false, "nodes_down": [2]}));
        assert_eq!(r.valid, Validity::Unknown);
        assert!(r.summary.contains("did not serve again"), "{}", r.summary);
        assert!(r.summary.contains("node(s) 2 down"), "{}", r.summary);
        let r = check(
            json!({"recovered": true, "unexpected_exits": [{"node": 3, "status": "exit status: 101", "at_ms": 12500}]}),
        );
        assert_eq!(r.valid, Validity::Unknown);
        assert!(
            r.summary
                .contains("node 3 exited on its own (exit status: 101) at 12.5 s"),
            "{}",
            r.summary
        );
    }
}
