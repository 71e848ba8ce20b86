//! Election safety from the nodes' own reports (Raft §5.2: at most one
//! leader per term). Two different nodes taking office in the same term is
//! a safety violation whatever the clients saw, so a run whose clients
//! happened not to observe it is still invalid: a second line of evidence
//! behind linearizability, never a replacement for it.

use super::node_events::{leader_terms_from_logs, read};
use super::{Checker, CheckerResult, RunInput};
use crate::check::Validity;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Two or more nodes that became leader in one term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitTerm {
    /// The term.
    pub term: u64,
    /// The nodes that claimed it, ascending.
    pub leaders: Vec<u64>,
}

/// The terms with more than one leader, given each node's leader terms.
pub fn split_terms(terms: &BTreeMap<u64, Vec<u64>>) -> Vec<SplitTerm> {
    let mut by_term: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (&node, ts) in terms {
        for &t in ts {
            let leaders = by_term.entry(t).or_default();
            if !leaders.contains(&node) {
                leaders.push(node);
            }
        }
    }
    by_term
        .into_iter()
        .filter(|(_, l)| l.len() > 1)
        .map(|(term, mut leaders)| {
            leaders.sort_unstable();
            SplitTerm { term, leaders }
        })
        .collect()
}

/// The election-safety checker (needs a run folder).
pub struct ElectionSafety;

impl Checker for ElectionSafety {
    fn name(&self) -> &'static str {
        "election-safety"
    }

    fn check(&self, input: &RunInput) -> CheckerResult {
        let Some(dir) = input.dir else {
            return CheckerResult::new(
                self.name(),
                Validity::Unknown,
                "no run folder to read node events from",
            );
        };
        let (terms, source) = match read(dir) {
            Some(ev) => {
                let terms: BTreeMap<u64, Vec<u64>> = ev
                    .by_node
                    .iter()
                    .map(|(&node, list)| {
                        let ts = list
                            .iter()
                            .filter(|e| e["event"] == "role" && e["role"] == "leader")
                            .filter_map(|e| e["term"].as_u64())
                            .collect();
                        (node, ts)
                    })
                    .collect();
                (terms, "node events")
            }
            None => match leader_terms_from_logs(dir) {
                Some(t) => (t, "node logs"),
                None => {
                    return CheckerResult::new(
                        self.name(),
                        Validity::Unknown,
                        "no node events recorded (nodes/nN.events.jsonl)",
                    )
                }
            },
        };
        let splits = split_terms(&terms);
        let leader_terms: usize = terms.values().map(Vec::len).sum();
        let details = json!({
            "source": source,
            "leader_terms": leader_terms,
            "split_terms": splits.iter().map(|s| json!({"term": s.term, "leaders": s.leaders})).collect::<Vec<Value>>(),
        });
        if splits.is_empty() {
            CheckerResult::new(
                self.name(),
                Validity::Valid,
                format!("one leader per term: {leader_terms} terms of office, from the {source}"),
            )
            .with(details)
        } else {
            let parts: Vec<String> = splits
                .iter()
                .map(|s| format!("term {}: nodes {:?}", s.term, s.leaders))
                .collect();
            CheckerResult::new(
                self.name(),
                Validity::Invalid,
                format!(
                    "two leaders in one term ({}) per the {source}",
                    parts.join("; ")
                ),
            )
            .with(details)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(files: &[(&str, &str)]) -> CheckerResult {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("nodes")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join("nodes").join(name), text).unwrap();
        }
        ElectionSafety.check(&RunInput {
            history: &crate::compact::CompactHistory::default(),
            truncated: None,
            dir: Some(dir.path()),
        })
    }

    const LEADER3: &str = "{\"event\":\"role\",\"role\":\"leader\",\"term\":3}\n";

    #[test]
    fn two_nodes_leading_one_term_is_invalid() {
        let r = run(&[("n1.events.jsonl", LEADER3), ("n2.events.jsonl", LEADER3)]);
        assert_eq!(r.valid, Validity::Invalid);
        assert!(r.summary.contains("term 3: nodes [1, 2]"), "{}", r.summary);
        assert_eq!(r.details["split_terms"][0]["term"], 3);
    }

    #[test]
    fn one_node_leading_a_term_twice_across_a_restart_is_valid() {
        let r = run(&[
            ("n1.events.jsonl", &format!("{LEADER3}{LEADER3}")),
            (
                "n2.events.jsonl",
                "{\"event\":\"role\",\"role\":\"follower\",\"term\":3}\n",
            ),
        ]);
        assert_eq!(r.valid, Validity::Valid, "{}", r.summary);
    }

    #[test]
    fn older_run_folders_are_read_from_the_text_logs() {
        let r = run(&[
            ("n1.log", "INFO became leader term=4\n"),
            ("n3.log", "INFO became leader term=4\n"),
        ]);
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["source"], "node logs");
    }

    #[test]
    fn a_run_folder_without_node_reports_is_unknown() {
        let r = run(&[]);
        assert_eq!(r.valid, Validity::Unknown);
    }
}
