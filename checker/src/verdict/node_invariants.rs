//! The nodes' own invariant checks: a node that refuses a peer message
//! because it contradicts its committed log, or detects any other broken
//! invariant, writes an `invariant` event. Each one is a finding that makes
//! the run invalid: a correct node never sees one, whatever the faults.
//!
//! Besides, nodes report a digest of their whole state machine every so
//! many applied entries (`applied-digest`). A deterministic state machine
//! fed the same committed entries is the same at the same index on every
//! replica, so two digests that differ at one index (two nodes, or one
//! node before and after a restart) are a `replicas-diverged` finding:
//! some replica applied something else there (State Machine Safety), even
//! if no client read the difference.

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
        let mut findings = findings;
        findings.extend(divergences(&ev.by_node));
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

/// One `replicas-diverged` finding per index at which the nodes'
/// `applied-digest` events disagree, naming every digest seen there.
fn divergences(by_node: &std::collections::BTreeMap<u64, Vec<Value>>) -> Vec<Value> {
    use std::collections::BTreeMap;
    // index -> digest -> the (node, term) that reported it
    let mut seen: BTreeMap<u64, BTreeMap<String, Vec<(u64, u64)>>> = BTreeMap::new();
    for (&node, list) in by_node {
        for e in list.iter().filter(|e| e["event"] == "applied-digest") {
            let (Some(index), Some(digest)) = (e["index"].as_u64(), e["digest"].as_str()) else {
                continue;
            };
            let term = e["term"].as_u64().unwrap_or(0);
            let at = seen
                .entry(index)
                .or_default()
                .entry(digest.to_string())
                .or_default();
            if !at.contains(&(node, term)) {
                at.push((node, term));
            }
        }
    }
    seen.into_iter()
        .filter(|(_, digests)| digests.len() > 1)
        .map(|(index, digests)| {
            let said: Vec<String> = digests
                .iter()
                .map(|(d, who)| {
                    let nodes: Vec<String> =
                        who.iter().map(|(n, t)| format!("n{n} (entry term {t})")).collect();
                    format!("{} has {d}", nodes.join(", "))
                })
                .collect();
            let first = digests.values().next().and_then(|w| w.first()).map_or(0, |w| w.0);
            json!({
                "event": "invariant",
                "invariant": "replicas-diverged",
                "node": first,
                "index": index,
                "digests": digests
                    .iter()
                    .map(|(d, who)| json!({"digest": d, "nodes": who.iter().map(|w| w.0).collect::<Vec<_>>()}))
                    .collect::<Vec<_>>(),
                "detail": format!(
                    "the state machines differ after applying index {index}: {}",
                    said.join("; ")
                ),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(index: u64, term: u64, d: &str) -> String {
        format!("{{\"event\":\"applied-digest\",\"index\":{index},\"term\":{term},\"digest\":\"{d}\"}}\n")
    }

    fn check_files(files: &[(&str, String)]) -> CheckerResult {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("nodes")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join("nodes").join(name), text).unwrap();
        }
        NodeInvariants.check(&RunInput {
            history: &crate::compact::CompactHistory::default(),
            truncated: None,
            dir: Some(dir.path()),
        })
    }

    #[test]
    fn replicas_whose_digests_differ_at_one_index_are_a_divergence_finding() {
        let r = check_files(&[
            (
                "n1.events.jsonl",
                digest(100, 2, "aa") + &digest(200, 3, "bb"),
            ),
            (
                "n2.events.jsonl",
                digest(100, 2, "aa") + &digest(200, 2, "cc"),
            ),
            ("n3.events.jsonl", digest(100, 2, "aa")),
        ]);
        assert_eq!(r.valid, Validity::Invalid, "{}", r.summary);
        assert!(r.summary.contains("replicas-diverged"), "{}", r.summary);
        assert!(r.summary.contains("index 200"), "{}", r.summary);
        assert_eq!(r.details["count"], 1);
    }

    #[test]
    fn one_node_that_applies_another_state_at_an_index_after_a_restart_diverges() {
        let r = check_files(&[(
            "n1.events.jsonl",
            digest(100, 2, "aa") + "{\"event\":\"boot\"}\n" + &digest(100, 2, "ab"),
        )]);
        assert_eq!(r.valid, Validity::Invalid, "{}", r.summary);
    }

    #[test]
    fn equal_digests_at_every_index_are_valid() {
        let r = check_files(&[
            (
                "n1.events.jsonl",
                digest(100, 2, "aa") + &digest(200, 3, "bb"),
            ),
            (
                "n2.events.jsonl",
                digest(100, 2, "aa") + &digest(200, 3, "bb"),
            ),
        ]);
        assert_eq!(r.valid, Validity::Valid, "{}", r.summary);
    }

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
            history: &crate::compact::CompactHistory::default(),
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
            history: &crate::compact::CompactHistory::default(),
            truncated: None,
            dir: Some(dir.path()),
        });
        assert_eq!(r.valid, Validity::Valid);
    }
}
