//! etcd's node events, translated from its zap (JSON-lines) logs into the
//! events files the checkers read (`nodes/nN.events.jsonl`, the same
//! contract raft-node writes): role changes from raft's
//! "<id> became <role> at term <N>" lines, and broken invariants from
//! panics raised by etcd's raft package (e.g. "tocommit(N) is out of range
//! [lastIndex(M)]. Was the raft log corrupted, truncated, or lost?").

use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

/// Writes `nodes/nN.events.jsonl` for every node from `nodes/nN.log`.
pub fn translate_logs(dir: &Path, ids: &[u64]) -> Result<()> {
    for &id in ids {
        let log = dir.join("nodes").join(format!("n{id}.log"));
        let Ok(text) = std::fs::read(&log) else {
            continue;
        };
        let text = String::from_utf8_lossy(&text);
        let out = dir.join("nodes").join(format!("n{id}.events.jsonl"));
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?,
        );
        for line in text.lines() {
            if let Some(ev) = translate_line(id, line) {
                writeln!(f, "{ev}")?;
            }
        }
        f.flush()?;
    }
    Ok(())
}

/// The event one log line stands for, if any.
pub fn translate_line(node: u64, line: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(line.trim()).ok()?;
    let msg = v.get("msg")?.as_str()?;
    let ts_us = v.get("ts").and_then(Value::as_str).and_then(rfc3339_micros);
    let level = v.get("level").and_then(Value::as_str).unwrap_or("");
    let caller = v.get("caller").and_then(Value::as_str).unwrap_or("");
    if level == "panic" && caller.starts_with("raft/") {
        return Some(json!({
            "ts_us": ts_us, "node": node, "event": "invariant", "level": "error",
            "invariant": "etcd-raft-panic", "detail": msg,
        }));
    }
    // "<hex id> became leader at term 2"
    let rest = msg.split_once(" became ")?.1;
    let (role, term) = rest.split_once(" at term ")?;
    let role = match role {
        "leader" => "leader",
        "follower" => "follower",
        "candidate" => "candidate",
        "pre-candidate" => "pre-candidate",
        _ => return None,
    };
    let term: u64 = term.trim().parse().ok()?;
    Some(json!({
        "ts_us": ts_us, "node": node, "event": "role", "role": role, "term": term, "leader": 0,
    }))
}

/// Microseconds since the Unix epoch of a zap timestamp such as
/// `2026-12-02T09:24:48.188Z` (UTC only, as etcd writes it).
fn rfc3339_micros(s: &str) -> Option<i64> {
    let (date, time) = s.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = t.next()?.parse().ok()?;
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + min * 60) * 1_000_000 + (sec * 1e6).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_became_leader_line_is_a_leader_event_of_its_term() {
        let line = r#"{"level":"info","ts":"2026-12-02T09:24:48.188Z","caller":"raft/raft.go:771","msg":"8e9e05c52164694d became leader at term 2"}"#;
        let ev = translate_line(3, line).unwrap();
        assert_eq!(ev["event"], "role");
        assert_eq!(ev["role"], "leader");
        assert_eq!(ev["term"], 2);
        assert_eq!(ev["node"], 3);
        assert_eq!(ev["ts_us"], 1_796_203_488_188_000i64);
    }

    #[test]
    fn a_raft_panic_is_an_invariant_and_other_lines_are_nothing() {
        let line = r#"{"level":"panic","ts":"2026-12-02T09:24:48.188Z","caller":"raft/log.go:203","msg":"tocommit(9) is out of range [lastIndex(3)]. Was the raft log corrupted, truncated, or lost?"}"#;
        let ev = translate_line(1, line).unwrap();
        assert_eq!(ev["event"], "invariant");
        assert!(ev["detail"].as_str().unwrap().contains("out of range"));
        assert!(translate_line(1, r#"{"level":"info","msg":"serving client requests"}"#).is_none());
        assert!(translate_line(1, "not json").is_none());
        let fatal = r#"{"level":"fatal","caller":"etcdmain/etcd.go:1","msg":"listen tcp: address already in use"}"#;
        assert!(
            translate_line(1, fatal).is_none(),
            "a start-up failure is not an invariant"
        );
    }
}
