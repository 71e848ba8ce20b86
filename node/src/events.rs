//! Structured node events (`--events-file PATH`): one JSON object per line,
//! appended with a single write(2) on an O_APPEND descriptor, so lines from
//! successive runs of a node (and from a crash mid-run) never interleave or
//! tear. No fsync: the file is for the harness's checkers, not for recovery.
//!
//! Every line has `ts_us` (wall clock, Unix microseconds), `node` and
//! `event`:
//! - `boot`: what recovery found: `term`, `vote`, `commit`, `last_index`,
//!   `snapshot_index`;
//! - `role`: a change of role, term or known leader: `role` (`follower`,
//!   `pre-candidate`, `candidate`, `leader`, `learner`), `term`, `leader`
//!   (0 if unknown);
//! - `invariant`: a broken invariant the node detected (and refused to act
//!   on): `level` (`error`), `invariant`, `detail`, and its context;
//! - `failpoint`: `name`, right before a failpoint ends the process.
//!
//! The log is process-wide, like the failpoints (a process runs one node):
//! set once at start, a no-op when never set.

use crate::raft::NodeId;
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where one node's events go.
#[derive(Debug)]
pub struct EventLog {
    file: File,
    node: NodeId,
}

static LOG: OnceLock<EventLog> = OnceLock::new();

impl EventLog {
    /// Opens `path` for appending (creating it if missing).
    pub fn open(path: &Path, node: NodeId) -> std::io::Result<EventLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(EventLog { file, node })
    }

    /// Appends one event line: `ts_us`, `node`, `event`, then `fields`.
    pub fn write(&self, event: &str, fields: &[(&str, Value)]) -> std::io::Result<()> {
        (&self.file).write_all(line(self.node, now_us(), event, fields).as_bytes())
    }
}

/// The JSON line of one event, newline included.
fn line(node: NodeId, ts_us: u64, event: &str, fields: &[(&str, Value)]) -> String {
    let mut out = format!(
        "{{\"ts_us\":{ts_us},\"node\":{node},\"event\":{}",
        Value::from(event)
    );
    for (k, v) in fields {
        out.push(',');
        out.push_str(&Value::from(*k).to_string());
        out.push(':');
        out.push_str(&v.to_string());
    }
    out.push_str("}\n");
    out
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Makes `log` the process's event log (once; later calls are ignored).
pub fn install(log: EventLog) {
    let _ = LOG.set(log);
}

/// Whether the process has an event log (so that events which cost work
/// to compute are computed only for a reader).
pub fn enabled() -> bool {
    LOG.get().is_some()
}

/// Appends an event to the process's log, if there is one. A failed write
/// is logged, never fatal: events are for checkers, the node goes on.
pub fn emit(event: &str, fields: &[(&str, Value)]) {
    if let Some(log) = LOG.get() {
        if let Err(e) = log.write(event, fields) {
            tracing::warn!(error = %e, event, "cannot write to the events file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object_with_the_common_fields_first() {
        let l = line(
            3,
            17,
            "invariant",
            &[
                ("level", "error".into()),
                ("detail", "say \"why\"\n".into()),
                ("term", 5u64.into()),
            ],
        );
        assert!(l.ends_with('\n') && l.matches('\n').count() == 1, "{l:?}");
        assert!(l.starts_with("{\"ts_us\":17,\"node\":3,\"event\":\"invariant\""));
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["detail"], "say \"why\"\n");
        assert_eq!(v["term"], 5);
        assert_eq!(v["level"], "error");
    }

    #[test]
    fn events_are_appended_to_what_the_file_already_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "{\"earlier\":1}\n").unwrap();
        let log = EventLog::open(&path, 2).unwrap();
        log.write("boot", &[("term", 4u64.into())]).unwrap();
        EventLog::open(&path, 2)
            .unwrap()
            .write("failpoint", &[("name", "crash-before-apply".into())])
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1]["event"], "boot");
        assert_eq!(lines[2]["name"], "crash-before-apply");
        assert!(lines[2]["ts_us"].as_u64().unwrap() > 1_600_000_000_000_000);
    }
}
