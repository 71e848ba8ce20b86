//! What the nodes told about themselves: `nodes/nN.events.jsonl` in a run
//! folder, one JSON object per line with `node`, `event` and the event's
//! fields (raft-node writes these itself with `--events-file`; the driver
//! translates other targets' logs into the same shape):
//!
//! - `{"event":"role","role":"leader","term":3,"leader":1}` on every change
//!   of role or term;
//! - `{"event":"invariant","level":"error","invariant":"...","detail":"..."}`
//!   when a node detects a broken invariant (and refuses the action);
//! - `{"event":"boot",...}`, `{"event":"failpoint","name":...}`: context.
//!
//! Run folders from before the events files carry only the nodes' text logs;
//! their `became leader term=N` lines still give the leader of each term.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The events of every node that has an events file, and the lines that
/// could not be read (a torn last line of a node killed mid-write).
#[derive(Debug, Clone, Default)]
pub struct NodeEvents {
    /// Events by node id, in file order.
    pub by_node: BTreeMap<u64, Vec<Value>>,
    /// Unreadable lines, as "nodes/nN.events.jsonl line L".
    pub unreadable: Vec<String>,
}

/// The node id in a file name `n<ID><suffix>`.
fn node_of(name: &str, suffix: &str) -> Option<u64> {
    name.strip_prefix('n')?.strip_suffix(suffix)?.parse().ok()
}

/// Reads `dir/nodes/n*.events.jsonl`; None when there are none.
pub fn read(dir: &Path) -> Option<NodeEvents> {
    let entries = std::fs::read_dir(dir.join("nodes")).ok()?;
    let mut out = NodeEvents::default();
    let mut any = false;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(id) = node_of(&name, ".events.jsonl") else {
            continue;
        };
        let Ok(bytes) = std::fs::read(e.path()) else {
            continue;
        };
        any = true;
        let list = out.by_node.entry(id).or_default();
        for (i, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(line) {
                Ok(v) if v.is_object() => list.push(v),
                _ => out.unreadable.push(format!("nodes/{name} line {}", i + 1)),
            }
        }
    }
    any.then_some(out)
}

/// The leader terms in the text logs of an older run folder
/// (`nodes/nN.log` lines `... became leader term=N`), by node; None when
/// there are no node logs.
pub fn leader_terms_from_logs(dir: &Path) -> Option<BTreeMap<u64, Vec<u64>>> {
    let entries = std::fs::read_dir(dir.join("nodes")).ok()?;
    let mut out: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(id) = node_of(&name, ".log") else {
            continue;
        };
        let Ok(bytes) = std::fs::read(e.path()) else {
            continue;
        };
        let terms = out.entry(id).or_default();
        terms.extend(
            String::from_utf8_lossy(&bytes)
                .lines()
                .filter_map(leader_term_of_line),
        );
    }
    (!out.is_empty()).then_some(out)
}

/// The term of a `became leader term=N` log line.
pub fn leader_term_of_line(line: &str) -> Option<u64> {
    const BECAME_LEADER: &str = "became leader";
    let rest = &line[line.find(BECAME_LEADER)? + BECAME_LEADER.len()..];
    let digits: String = rest
        .trim_start()
        .strip_prefix("term=")?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_files_are_read_per_node_and_torn_lines_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("nodes")).unwrap();
        std::fs::write(
            dir.path().join("nodes/n2.events.jsonl"),
            "{\"node\":2,\"event\":\"role\",\"role\":\"leader\",\"term\":3}\n{\"node\":2,\"ev",
        )
        .unwrap();
        std::fs::write(dir.path().join("nodes/n2.log"), "noise\n").unwrap();
        let ev = read(dir.path()).unwrap();
        assert_eq!(ev.by_node[&2].len(), 1);
        assert_eq!(
            ev.unreadable,
            vec!["nodes/n2.events.jsonl line 2".to_string()]
        );
    }

    #[test]
    fn older_logs_give_leader_terms() {
        assert_eq!(leader_term_of_line("became leader"), None);
        assert_eq!(leader_term_of_line("became leader term=x"), None);
        assert_eq!(
            leader_term_of_line("INFO became leader term=12 more"),
            Some(12)
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("nodes")).unwrap();
        std::fs::write(
            dir.path().join("nodes/n1.log"),
            "x INFO raft_node::node_loop: became leader term=1\nother\n",
        )
        .unwrap();
        assert_eq!(leader_terms_from_logs(dir.path()).unwrap()[&1], vec![1]);
    }
}
