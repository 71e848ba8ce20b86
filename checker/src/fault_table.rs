//! The fault schedule as it happened: every nemesis event of the history
//! (and the driver's node exits, which faults cause) as a table row with
//! its time, start or stop, kind, the nodes it hit and its details, the
//! kind's swatch in the plots' colour.

use crate::history::{Event, Process};
use crate::palette::{fault_colour, hex};
use crate::report::escape;
use crate::verdict_text::shorten;
use serde_json::Value;
use std::fmt::Write as _;

/// Rows shown; the rest are counted (the history has them all).
pub const ROWS_SHOWN: usize = 200;
/// Details cut to this many characters in the cell (whole, up to the
/// page's value limit, on hover).
const DETAIL_CHARS: usize = 80;
const HOVER_CHARS: usize = 200;

/// One event of the schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRow {
    /// Seconds since the start (history index when the history is untimed).
    pub at: f64,
    /// `start`, `stop` or "" for an instant.
    pub edge: &'static str,
    /// The fault kind (`partition`, ...), or the event's f for an instant.
    pub kind: String,
    /// The nodes it hit, as the nemesis logged them ("" if it did not).
    pub nodes: String,
    /// The event's value as JSON.
    pub detail: String,
}

/// The nodes a nemesis value names: its `nodes`, `groups`, `node`, `to` or
/// `target`, the first there is.
pub fn nodes_of(v: &Value) -> String {
    ["nodes", "groups", "node", "to", "target"]
        .iter()
        .find_map(|k| v.get(k).filter(|x| !x.is_null()))
        .map(|x| x.to_string())
        .unwrap_or_default()
}

/// Whether an event belongs in the schedule: the nemesis's, and the
/// driver's node exits; not run-start/run-end bookkeeping.
fn scheduled(e: &Event) -> bool {
    match &e.process {
        Process::Client(_) => false,
        Process::Named(n) if n == "nemesis" => true,
        Process::Named(_) => e.f == "node-exit",
    }
}

/// The schedule's rows, in history order.
pub fn fault_rows(events: &[Event]) -> Vec<FaultRow> {
    fault_rows_of(events, events.iter().all(|e| e.time == e.index))
}

/// The schedule's rows from `events` (client events may be left out);
/// `untimed` when the whole history's times are its indexes.
pub fn fault_rows_of(events: &[Event], untimed: bool) -> Vec<FaultRow> {
    events
        .iter()
        .filter(|e| scheduled(e))
        .map(|e| {
            let (edge, kind) = if let Some(k) = e.f.strip_prefix("start-") {
                ("start", k)
            } else if let Some(k) = e.f.strip_prefix("stop-") {
                ("stop", k)
            } else {
                match e.f.as_str() {
                    "start" => ("start", "nemesis"),
                    "stop" => ("stop", "nemesis"),
                    f => ("", f),
                }
            };
            FaultRow {
                at: if untimed {
                    e.time as f64
                } else {
                    e.time as f64 / 1e9
                },
                edge,
                kind: kind.to_string(),
                nodes: nodes_of(&e.value),
                detail: if e.value.is_null() {
                    String::new()
                } else {
                    e.value.to_string()
                },
            }
        })
        .collect()
}

/// The schedule section; nothing when the history has no faults.
pub fn fault_table_html(h: &mut String, events: &[Event], untimed: bool) {
    let rows = fault_rows_of(events, untimed);
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2>Fault schedule</h2><table class=\"faults\"><tr><th>time s</th><th class=\"l\">edge</th><th class=\"l\">kind</th><th class=\"l\">nodes</th><th class=\"l\">details</th></tr>"
    );
    for r in rows.iter().take(ROWS_SHOWN) {
        let _ = writeln!(
            h,
            "<tr><td>{:.3}</td><td class=\"l\">{}</td><td class=\"l\"><span class=\"sw\" style=\"background:{}\"></span>{}</td><td class=\"l\">{}</td><td class=\"l\" title=\"{}\">{}</td></tr>",
            r.at,
            r.edge,
            hex(fault_colour(&r.kind)),
            escape(&r.kind),
            escape(&shorten(&r.nodes, DETAIL_CHARS)),
            escape(&shorten(&r.detail, HOVER_CHARS)),
            escape(&shorten(&r.detail, DETAIL_CHARS)),
        );
    }
    let _ = writeln!(h, "</table>");
    if rows.len() > ROWS_SHOWN {
        let _ = writeln!(
            h,
            "<p>… and {} more fault events, all in history.jsonl.</p>",
            rows.len() - ROWS_SHOWN
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType;
    use serde_json::json;

    fn ev(index: u64, process: Process, f: &str, value: Value) -> Event {
        Event {
            index,
            time: 1_000_000_000 * (index + 1),
            process,
            kind: EventType::Info,
            f: f.into(),
            key: None,
            value,
            error: None,
        }
    }

    #[test]
    fn nemesis_starts_stops_and_node_exits_become_rows_with_their_nodes() {
        let driver = || Process::Named("driver".into());
        let events = [
            ev(0, driver(), "run-start", json!({"seed": 1})),
            ev(
                1,
                Process::nemesis(),
                "start-kill",
                json!({"nodes": [1, 3]}),
            ),
            ev(2, Process::Client(4), "read", Value::Null),
            ev(3, driver(), "node-exit", json!({"node": 3})),
            ev(4, Process::nemesis(), "stop-kill", json!({"nodes": [1, 3]})),
            ev(
                5,
                Process::nemesis(),
                "start-partition",
                json!({"groups": [[1], [2, 3]]}),
            ),
        ];
        let got: Vec<(f64, &str, String, String)> = fault_rows(&events)
            .into_iter()
            .map(|r| (r.at, r.edge, r.kind, r.nodes))
            .collect();
        assert_eq!(
            got,
            vec![
                (2.0, "start", "kill".to_string(), "[1,3]".to_string()),
                (4.0, "", "node-exit".to_string(), "3".to_string()),
                (5.0, "stop", "kill".to_string(), "[1,3]".to_string()),
                (
                    6.0,
                    "start",
                    "partition".to_string(),
                    "[[1],[2,3]]".to_string()
                ),
            ]
        );
        let mut h = String::new();
        fault_table_html(&mut h, &events, false);
        assert!(
            h.contains("Fault schedule") && h.contains("partition"),
            "{h}"
        );
        let mut none = String::new();
        fault_table_html(&mut none, &events[..1], false);
        assert_eq!(none, "");
    }
}
