//! Election safety from the nodes' own logs (Raft §5.2: at most one leader
//! per term). raft-node logs `became leader term=N` each time it takes
//! office; two different nodes doing so in the same term is a safety
//! violation whatever the clients saw, so a run whose clients happened not
//! to observe it is still invalid. A second line of evidence behind the
//! linearizability checker, never a replacement for it.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The text raft-node logs when it becomes leader, followed by ` term=N`.
const BECAME_LEADER: &str = "became leader";

/// Two or more nodes that became leader in one term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitTerm {
    /// The term.
    pub term: u64,
    /// The nodes that claimed it, ascending.
    pub leaders: Vec<u64>,
}

/// The terms with more than one leader in `logs` (node id, log text),
/// ascending by term.
pub fn split_terms<'a>(logs: impl IntoIterator<Item = (u64, &'a str)>) -> Vec<SplitTerm> {
    let mut by_term: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (node, text) in logs {
        for term in text.lines().filter_map(leader_term) {
            let leaders = by_term.entry(term).or_default();
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

/// The term of a `became leader term=N` line.
fn leader_term(line: &str) -> Option<u64> {
    let rest = &line[line.find(BECAME_LEADER)? + BECAME_LEADER.len()..];
    let digits: String = rest
        .trim_start()
        .strip_prefix("term=")?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Reads `nodes/n<ID>.log` in a run folder; returns the split terms, or
/// None when no node log could be read (not a raft-node run).
pub fn check_run_dir(dir: &Path) -> Option<Vec<SplitTerm>> {
    let entries = std::fs::read_dir(dir.join("nodes")).ok()?;
    let mut logs: Vec<(u64, String)> = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(id) = name
            .strip_prefix('n')
            .and_then(|s| s.strip_suffix(".log"))
            .and_then(|s| s.parse().ok())
        else {
            continue;
        };
        if let Ok(bytes) = std::fs::read(e.path()) {
            logs.push((id, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    if logs.is_empty() {
        return None;
    }
    Some(split_terms(logs.iter().map(|(id, t)| (*id, t.as_str()))))
}

/// The results.json field describing `splits`.
pub fn to_json(splits: &[SplitTerm]) -> Value {
    json!({
        "valid": splits.is_empty(),
        "split_terms": splits
            .iter()
            .map(|s| json!({"term": s.term, "leaders": s.leaders}))
            .collect::<Vec<_>>(),
    })
}

/// One line for people.
pub fn describe(splits: &[SplitTerm]) -> String {
    let parts: Vec<String> = splits
        .iter()
        .map(|s| format!("term {}: nodes {:?}", s.term, s.leaders))
        .collect();
    format!(
        "election safety violated: two leaders in one term ({}) per the node logs",
        parts.join("; ")
    )
}

/// Adds the election-safety verdict to the run's results.json; when it is
/// violated, `valid` becomes false and the reason is added. Returns the
/// description of a violation, if any.
pub fn amend_results(dir: &Path) -> std::io::Result<Option<String>> {
    let Some(splits) = check_run_dir(dir) else {
        return Ok(None);
    };
    let path = dir.join("results.json");
    let mut results: Value = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|_| json!({})),
        Err(_) => json!({}),
    };
    if !results.is_object() {
        return Ok(None);
    }
    results["election_safety"] = to_json(&splits);
    let violation = (!splits.is_empty()).then(|| describe(&splits));
    if let Some(why) = &violation {
        results["valid"] = json!(false);
        results["election_safety_reason"] = json!(why);
    }
    let text = serde_json::to_string_pretty(&results).map_err(std::io::Error::other)?;
    std::fs::write(&path, text + "\n")?;
    if let Some(why) = &violation {
        mark_index_html(&dir.join("index.html"), why)?;
    }
    Ok(violation)
}

/// Puts the violation at the top of the run's page, above the checker's
/// (linearizability) verdict, so that the page agrees with results.json.
fn mark_index_html(path: &Path, why: &str) -> std::io::Result<()> {
    let Ok(html) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let escaped = why
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let banner = format!(
        "<body>\n<div class=\"verdict invalid\">INVALID</div>\n<p><strong>{escaped}</strong></p>\n"
    );
    std::fs::write(path, html.replacen("<body>", &banner, 1))
}

/// Amends the run's results.json and `verdict`: a split term makes the run
/// invalid (a run the checker could not decide included).
pub fn apply(dir: &Path, verdict: &mut crate::verdict::Verdict) {
    match amend_results(dir) {
        Ok(Some(why)) => {
            tracing::warn!("{why}");
            verdict.validity = crate::verdict::Validity::Invalid;
            verdict.explanation.push(why);
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("election safety not recorded in results.json: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N1: &str = "2026-11-30T10:30:15.098723Z  INFO raft_node::node_loop: became leader term=1\n\
                      2026-11-30T10:30:32.716417Z  INFO raft_node::node_loop: became leader term=3\n";
    const N2: &str = "x INFO raft_node: recovered id=2 term=1\n\
                      2026-11-30T10:30:32.389838Z  INFO raft_node::node_loop: became leader term=3\n\
                      2026-11-30T10:30:42.391244Z  INFO raft_node::node_loop: became leader term=4\n";

    #[test]
    fn two_nodes_leading_one_term_is_a_split_term() {
        let s = split_terms([(1, N1), (2, N2)]);
        assert_eq!(
            s,
            vec![SplitTerm {
                term: 3,
                leaders: vec![1, 2]
            }]
        );
        assert!(describe(&s).contains("term 3: nodes [1, 2]"));
        assert_eq!(to_json(&s)["valid"], json!(false));
    }

    #[test]
    fn one_node_leading_a_term_twice_across_a_restart_is_not_a_split() {
        let s = split_terms([(1, N1), (1, N1), (2, "became leader term=2\n")]);
        assert!(s.is_empty(), "{s:?}");
        assert_eq!(to_json(&s)["valid"], json!(true));
    }

    #[test]
    fn lines_without_a_term_are_ignored() {
        assert_eq!(leader_term("became leader"), None);
        assert_eq!(leader_term("became leader term=x"), None);
        assert_eq!(leader_term("INFO became leader term=12 more"), Some(12));
    }

    #[test]
    fn a_violation_makes_results_json_invalid_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("nodes")).unwrap();
        std::fs::write(dir.path().join("nodes/n1.log"), N1).unwrap();
        std::fs::write(dir.path().join("nodes/n2.log"), N2).unwrap();
        std::fs::write(
            dir.path().join("results.json"),
            r#"{"valid": true, "op_count": 3}"#,
        )
        .unwrap();
        let why = amend_results(dir.path()).unwrap().unwrap();
        assert!(why.contains("term 3"), "{why}");
        let r: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap())
                .unwrap();
        assert_eq!(r["valid"], json!(false));
        assert_eq!(r["op_count"], json!(3));
        assert_eq!(r["election_safety"]["split_terms"][0]["term"], json!(3));
    }

    #[test]
    fn a_violation_is_put_at_the_top_of_the_run_page() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("nodes")).unwrap();
        std::fs::write(dir.path().join("nodes/n1.log"), N1).unwrap();
        std::fs::write(dir.path().join("nodes/n2.log"), N2).unwrap();
        std::fs::write(dir.path().join("results.json"), r#"{"valid": true}"#).unwrap();
        let page =
            "<html><head></head><body>\n<div class=\"verdict valid\">VALID</div></body></html>";
        std::fs::write(dir.path().join("index.html"), page).unwrap();
        amend_results(dir.path()).unwrap().unwrap();
        let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
        let invalid = html.find("verdict invalid").unwrap();
        assert!(invalid < html.find("verdict valid").unwrap(), "{html}");
        assert!(html.contains("term 3: nodes [1, 2]"), "{html}");
    }

    #[test]
    fn a_run_with_one_leader_per_term_is_left_valid() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("nodes")).unwrap();
        std::fs::write(dir.path().join("nodes/n1.log"), N1).unwrap();
        std::fs::write(dir.path().join("results.json"), r#"{"valid": true}"#).unwrap();
        assert_eq!(amend_results(dir.path()).unwrap(), None);
        let r: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap())
                .unwrap();
        assert_eq!(r["valid"], json!(true));
        assert_eq!(r["election_safety"]["valid"], json!(true));
    }
}
