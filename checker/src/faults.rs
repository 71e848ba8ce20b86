//! Fault intervals from nemesis events, for shading the plots.
//!
//! The pairing rule: a nemesis event with f `start-X` opens fault `X`, and
//! `stop-X` closes it; Jepsen's bare `start` / `stop` open and close the
//! fault `nemesis`. Opening an open fault or closing a closed one changes
//! nothing (a nemesis that logs both invoke and info of one action is fine).
//! A fault still open at the end of the history runs to the last event.
//! Other nemesis events are instants, listed but not shaded.

use crate::history::Event;

/// A fault that was active from `start_ns` to `end_ns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultInterval {
    /// The fault's name (`partition`, `pause`, `kill`, ...).
    pub name: String,
    /// When it started, nanoseconds.
    pub start_ns: u64,
    /// When it stopped, or the history's last event time if it never did.
    pub end_ns: u64,
    /// Whether a stop event closed it.
    pub closed: bool,
}

enum Edge<'a> {
    Start(&'a str),
    Stop(&'a str),
}

fn edge(f: &str) -> Option<Edge<'_>> {
    match f {
        "start" => Some(Edge::Start("nemesis")),
        "stop" => Some(Edge::Stop("nemesis")),
        _ => f
            .strip_prefix("start-")
            .map(Edge::Start)
            .or_else(|| f.strip_prefix("stop-").map(Edge::Stop)),
    }
}

/// The fault intervals of a history, in start order.
pub fn fault_intervals(events: &[Event]) -> Vec<FaultInterval> {
    let end = events.iter().map(|e| e.time).max().unwrap_or(0);
    fault_intervals_of(events, end)
}

/// The fault intervals of the nemesis events among `events` (client
/// events may be left out), a fault never stopped running to `end`.
pub fn fault_intervals_of(events: &[Event], end: u64) -> Vec<FaultInterval> {
    let mut open: Vec<(String, u64)> = Vec::new();
    let mut out = Vec::new();
    for e in events.iter().filter(|e| !e.is_client()) {
        match edge(&e.f) {
            Some(Edge::Start(name)) if !open.iter().any(|(n, _)| n == name) => {
                open.push((name.to_string(), e.time));
            }
            Some(Edge::Start(_)) => {}
            Some(Edge::Stop(name)) => {
                if let Some(i) = open.iter().position(|(n, _)| n == name) {
                    let (name, start_ns) = open.remove(i);
                    out.push(FaultInterval {
                        name,
                        start_ns,
                        end_ns: e.time,
                        closed: true,
                    });
                }
            }
            None => {}
        }
    }
    out.extend(open.into_iter().map(|(name, start_ns)| FaultInterval {
        name,
        start_ns,
        end_ns: end,
        closed: false,
    }));
    out.sort_by_key(|f| (f.start_ns, f.end_ns));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{EventType, Process};

    fn nemesis(time: u64, f: &str) -> Event {
        Event {
            index: time,
            time,
            process: Process::nemesis(),
            kind: EventType::Info,
            f: f.into(),
            key: None,
            value: serde_json::Value::Null,
            error: None,
        }
    }

    #[test]
    fn start_and_stop_pairs_make_intervals_and_an_unclosed_one_runs_to_the_end() {
        let events = [
            nemesis(10, "start-partition"),
            nemesis(12, "start-partition"),
            nemesis(15, "start-pause"),
            nemesis(20, "stop-partition"),
            nemesis(25, "stop-partition"),
            nemesis(30, "start"),
            nemesis(35, "stop"),
            nemesis(40, "kill"),
            nemesis(50, "stop-pause"),
            nemesis(60, "start-kill"),
            nemesis(70, "heal"),
        ];
        let got: Vec<(String, u64, u64, bool)> = fault_intervals(&events)
            .into_iter()
            .map(|f| (f.name, f.start_ns, f.end_ns, f.closed))
            .collect();
        assert_eq!(
            got,
            vec![
                ("partition".to_string(), 10, 20, true),
                ("pause".to_string(), 15, 50, true),
                ("nemesis".to_string(), 30, 35, true),
                ("kill".to_string(), 60, 70, false),
            ]
        );
    }
}
