//! The nodes' own invariant checks: a node that refuses a peer message
//! because it contradicts its committed log, or detects any other broken
//! invariant, writes an `invariant` event. Each one is a finding that makes
//! the run invalid: a correct node never sees one, whatever the faults.

use super::node_events::read;
use super::{Checker, CheckerResult, RunInput};
use crate::check::Validity;
use serde_json::{json, Value};

/// How many findings results.json lists (all are counted).
pub const FINDINGS_LISTED: usize = 20;

/// The node-invariants checker (needs a run folder).
pub struct NodeInvariants;

impl Checker for NodeInvariants {
    fn name(&self) -> &'static str {
        "node-invariants"
    }

    fn check(&self, input: &RunInput) -> CheckerResult {
        let Some(ev) = input.dir.and_then(read) else {
            return CheckerResult::new(
                self.name(),
                Validity::Unknown,
                "no node events recorded (nodes/nN.events.jsonl)",
            );
        };
        let findings: Vec<Value> = ev
            .by_node
            .iter()
            .flat_map(|(&node, list)| {
                list.iter()
                    .filter(|e| e["event"] == "invariant")
                    .map(move |e| {
                        let mut f = e.clone();
                        if f.get("node").is_none() {
                            f["node"] = json!(node);
                        }
                        f
                    })
            })
            .collect();
        let details = json!({
            "count": findings.len(),
            "findings": findings.iter().take(FINDINGS_LISTED).collect::<Vec<_>>(),
            "unreadable_lines": ev.unreadable,
        });
        match findings.first() {
            None => CheckerResult::new(
                self.name(),
                Validity::Valid,
                format!(
                    "no node reported a broken invariant ({} nodes)",
                    ev.by_node.len()
                ),
            )
            .with(details),
            Some(f) => CheckerResult::new(
                self.name(),
                Validity::Invalid,
                format!(
                    "{} broken invariant(s) reported by the nodes; first: node {} {}: {}",
                    findings.len(),
                    f["node"],
                    f["invariant"].as_str().unwrap_or("?"),
                    f["detail"].as_str().unwrap_or("")
                ),
            )
            .with(details),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invariant_event_is_an_invalid_finding_naming_the_node() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("nodes")).unwrap();
        std::fs::write(
            dir.path().join("nodes/n3.events.jsonl"),
            "{\"event\":\"role\",\"role\":\"follower\",\"term\":2}\n{\"event\":\"invariant\",\"level\":\"error\",\"invariant\":\"truncate-below-commit\",\"detail\":\"append at 7 would remove committed entry 5\"}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("nodes/n1.events.jsonl"), "").unwrap();
        let r = NodeInvariants.check(&RunInput {
            events: &[],
            truncated: None,
            dir: Some(dir.path()),
        });
        assert_eq!(r.valid, Validity::Invalid);
        assert!(
            r.summary.contains("node 3 truncate-below-commit"),
            "{}",
            r.summary
        );
        assert_eq!(r.details["count"], 1);
    }

    #[test]
    fn quiet_nodes_are_valid() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("nodes")).unwrap();
        std::fs::write(
            dir.path().join("nodes/n1.events.jsonl"),
            "{\"event\":\"boot\"}\n",
        )
        .unwrap();
        let r = NodeInvariants.check(&RunInput {
            events: &[],
            truncated: None,
            dir: Some(dir.path()),
        });
        assert_eq!(r.valid, Validity::Valid);
    }
}
