//! Convergence: after the final heal and the final reads the driver asks
//! every node where its state machine stands and for a digest of its state
//! there (the end-of-run record's `convergence`: raft-node's state digest
//! at its applied index, etcd's HashKV at its revision). Replicas at one
//! point with different states broke State Machine Safety: invalid,
//! whatever the clients saw. Replicas that never reached one point (a node
//! left outside the configuration, a follower that never caught up, one
//! that did not answer) leave the run unknown with the reason: a cluster
//! that does not converge is not one a release can trust, but it is no
//! proof of a wrong answer.

use super::completeness::end_of_run;
use super::{join, Checker, CheckerResult, RunInput};
use crate::check::Validity;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The convergence checker (for histories written by raft-driver).
pub struct Convergence;

impl Checker for Convergence {
    fn name(&self) -> &'static str {
        "convergence"
    }

    fn check(&self, input: &RunInput) -> CheckerResult {
        let Some(c) = end_of_run(input.history.named()).and_then(|e| e.value.get("convergence"))
        else {
            return CheckerResult::new(
                self.name(),
                Validity::Unknown,
                "not recorded: the history has no end-of-run record with the nodes' final states",
            );
        };
        judge(self.name(), c)
    }
}

/// One node's final answer.
struct Final {
    node: Value,
    at: u64,
    digest: Option<String>,
}

fn judge(name: &str, c: &Value) -> CheckerResult {
    let settled = c.get("settled").and_then(Value::as_bool).unwrap_or(false);
    let nodes: Vec<Final> = c
        .get("nodes")
        .and_then(Value::as_array)
        .map(|ns| {
            ns.iter()
                .map(|n| Final {
                    node: n.get("node").cloned().unwrap_or(Value::Null),
                    at: n.get("at").and_then(Value::as_u64).unwrap_or(0),
                    digest: n.get("digest").and_then(Value::as_str).map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default();
    // Nodes at one point, by the state they hold there: two states at
    // one point is divergence, settled or not.
    let mut by_point: BTreeMap<u64, BTreeMap<&str, Vec<&Value>>> = BTreeMap::new();
    for n in &nodes {
        if let Some(d) = &n.digest {
            by_point
                .entry(n.at)
                .or_default()
                .entry(d)
                .or_default()
                .push(&n.node);
        }
    }
    let diverged: Vec<String> = by_point
        .iter()
        .filter(|(_, states)| states.len() > 1)
        .map(|(at, states)| {
            format!(
                "at {at} {}",
                states
                    .iter()
                    .map(|(d, ns)| format!("node(s) {} hold state {d}", join(ns)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    let details = json!({
        "settled": settled,
        "unsettled": c.get("unsettled"),
        "waited_ms": c.get("waited_ms"),
        "nodes": c.get("nodes"),
        "diverged": diverged,
    });
    if !diverged.is_empty() {
        return CheckerResult::new(
            name,
            Validity::Invalid,
            format!(
                "the replicas diverged: after the run {}",
                diverged.join("; ")
            ),
        )
        .with(details);
    }
    if !settled {
        let why = c
            .get("unsettled")
            .and_then(Value::as_str)
            .unwrap_or("no reason recorded");
        let waited = c.get("waited_ms").and_then(Value::as_f64).unwrap_or(0.0) / 1000.0;
        return CheckerResult::new(
            name,
            Validity::Unknown,
            format!("the replicas did not converge within {waited:.1} s after the run: {why}"),
        )
        .with(details);
    }
    let summary = match (nodes.first(), nodes.iter().all(|n| n.digest.is_some())) {
        (None, _) => "no node's final state was recorded".to_string(),
        (Some(first), true) => format!(
            "every node ({}) reached {} with one state ({})",
            join(&nodes.iter().map(|n| &n.node).collect::<Vec<_>>()),
            first.at,
            first.digest.as_deref().unwrap_or_default()
        ),
        (Some(first), false) => format!(
            "every node reached {}; the target gave no digest to compare their states",
            first.at
        ),
    };
    let valid = if nodes.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    CheckerResult::new(name, valid, summary).with(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(end: Value) -> CheckerResult {
        super::super::check_end_of_run(&Convergence, end)
    }

    fn node(id: u64, at: u64, digest: &str) -> Value {
        json!({"node": id, "at": at, "digest": digest, "voters": [1, 2, 3]})
    }

    #[test]
    fn replicas_at_one_point_with_one_state_are_valid() {
        let r = check(json!({"convergence": {"settled": true, "nodes": [
            node(1, 500, "aa"), node(2, 500, "aa"), node(3, 500, "aa")]}}));
        assert_eq!(r.valid, Validity::Valid, "{}", r.summary);
        assert!(
            r.summary
                .contains("every node (1, 2, 3) reached 500 with one state (aa)"),
            "{}",
            r.summary
        );
    }

    #[test]
    fn replicas_at_one_point_with_different_states_are_invalid_even_unsettled() {
        for settled in [true, false] {
            let r = check(
                json!({"convergence": {"settled": settled, "unsettled": "node(s) 3 did not answer",
                "nodes": [node(1, 500, "aa"), node(2, 500, "bb")]}}),
            );
            assert_eq!(r.valid, Validity::Invalid, "{}", r.summary);
            assert!(
                r.summary
                    .contains("at 500 node(s) 1 hold state aa, node(s) 2 hold state bb"),
                "{}",
                r.summary
            );
        }
    }

    #[test]
    fn replicas_that_did_not_converge_are_unknown_with_the_reason() {
        let r = check(json!({"convergence": {"settled": false, "waited_ms": 30000,
            "unsettled": "node(s) 1, 2 hold the configuration voters 1, 2 (node(s) 3 not voters)",
            "nodes": [node(1, 500, "aa"), node(2, 500, "aa"), node(3, 420, "cc")]}}));
        assert_eq!(r.valid, Validity::Unknown, "{}", r.summary);
        assert!(
            r.summary.contains("did not converge within 30.0 s"),
            "{}",
            r.summary
        );
        assert!(r.summary.contains("node(s) 3 not voters"), "{}", r.summary);
    }

    #[test]
    fn a_run_without_the_record_is_unknown() {
        let r = check(json!({"recovered": true}));
        assert_eq!(r.valid, Validity::Unknown);
        assert!(r.summary.starts_with("not recorded"), "{}", r.summary);
    }
}
