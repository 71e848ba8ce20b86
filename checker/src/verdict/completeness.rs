//! Completeness: a history counts only if it is whole. The driver writes a
//! `start-of-run` record first and an `end-of-run` record once the
//! workload, the final heal and the final reads are done; a history that
//! has the first and not the second was cut short (the driver was killed,
//! crashed, or could not write), and so is a history whose last line is
//! torn. Neither can prove anything valid: the operations that would have
//! contradicted it may be the ones missing. An empty history, or one
//! without client operations, proves nothing either.

use super::{Checker, CheckerResult, RunInput};
use crate::check::Validity;
use crate::history::{Event, Process};
use serde_json::json;

/// The `process` of the driver's own records.
pub const DRIVER: &str = "driver";
/// `f` of the record the driver writes before the workload starts.
pub const START_OF_RUN: &str = "run-start";
/// `f` of the record the driver writes when the workload, the heal and the
/// final reads are done.
pub const END_OF_RUN: &str = "run-end";

/// Whether `e` is the driver's record `f`.
pub fn is_driver_record(e: &Event, f: &str) -> bool {
    e.f == f && matches!(&e.process, Process::Named(p) if p == DRIVER)
}

/// The driver's end-of-run record, if the history has one.
pub fn end_of_run(events: &[Event]) -> Option<&Event> {
    events
        .iter()
        .rev()
        .find(|e| is_driver_record(e, END_OF_RUN))
}

/// How early in the history the driver's start record must come.
pub const DRIVER_RECORD_WITHIN: usize = 8;

/// Whether the history was written by raft-driver (it has its start record).
pub fn is_driver_history(events: &[Event]) -> bool {
    events
        .iter()
        .take(DRIVER_RECORD_WITHIN)
        .any(|e| is_driver_record(e, START_OF_RUN))
}

/// The completeness checker.
pub struct Completeness;

impl Checker for Completeness {
    fn name(&self) -> &'static str {
        "completeness"
    }

    fn check(&self, input: &RunInput) -> CheckerResult {
        let facts = input.history.facts();
        let events = facts.events;
        let clients = facts.client_events;
        let invokes = facts.invokes;
        let driver = facts.driver_history;
        // Driver records are named events: the compact history keeps them.
        let ended = end_of_run(input.history.named()).is_some();
        let details = json!({
            "events": events,
            "client_events": clients,
            "driver_run": driver,
            "end_of_run": ended,
            "truncated": input.truncated,
        });
        let (valid, summary) = if let Some(why) = input.truncated {
            (
                Validity::Unknown,
                format!("the history ends in a torn line ({why}): the run was cut short"),
            )
        } else if events == 0 {
            (Validity::Unknown, "the history is empty".to_string())
        } else if invokes == 0 {
            (
                Validity::Unknown,
                "the history has no client operations".to_string(),
            )
        } else if driver && !ended {
            (
                Validity::Unknown,
                "no end-of-run record: the run was interrupted before its workload, final heal and final reads were done"
                    .to_string(),
            )
        } else if driver {
            (
                Validity::Valid,
                format!("complete: {events} events, end-of-run recorded"),
            )
        } else {
            (
                Validity::Valid,
                format!("{events} events, {invokes} client operations"),
            )
        };
        CheckerResult::new(self.name(), valid, summary).with(details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::{CompactHistory, Pairing};
    use crate::history::EventType;
    use serde_json::Value;

    fn ev(process: Process, kind: EventType, f: &str) -> Event {
        Event {
            index: 0,
            time: 0,
            process,
            kind,
            f: f.into(),
            key: None,
            value: Value::Null,
            error: None,
        }
    }

    fn driver(f: &str) -> Event {
        ev(Process::Named(DRIVER.into()), EventType::Info, f)
    }

    fn op() -> Vec<Event> {
        vec![
            ev(Process::Client(1), EventType::Invoke, "read"),
            ev(Process::Client(1), EventType::Ok, "read"),
        ]
    }

    fn check(events: &[Event], truncated: Option<&str>) -> CheckerResult {
        let history = CompactHistory::from_events(events, Pairing::Strict).unwrap();
        Completeness.check(&RunInput {
            history: &history,
            truncated,
            dir: None,
        })
    }

    #[test]
    fn an_empty_history_or_one_without_client_operations_is_unknown() {
        assert_eq!(check(&[], None).valid, Validity::Unknown);
        let nemesis_only = vec![ev(Process::nemesis(), EventType::Info, "start-kill")];
        let r = check(&nemesis_only, None);
        assert_eq!(r.valid, Validity::Unknown);
        assert!(r.summary.contains("no client operations"), "{}", r.summary);
    }

    #[test]
    fn a_driver_history_without_its_end_record_is_unknown() {
        let mut h = vec![driver(START_OF_RUN)];
        h.extend(op());
        let r = check(&h, None);
        assert_eq!(r.valid, Validity::Unknown);
        assert!(r.summary.contains("end-of-run"), "{}", r.summary);
        h.push(driver(END_OF_RUN));
        assert_eq!(check(&h, None).valid, Validity::Valid);
    }

    #[test]
    fn a_torn_last_line_is_unknown_even_with_an_end_record() {
        let mut h = vec![driver(START_OF_RUN)];
        h.extend(op());
        h.push(driver(END_OF_RUN));
        let r = check(&h, Some("line 5 is cut off"));
        assert_eq!(r.valid, Validity::Unknown);
        assert!(r.summary.contains("torn"), "{}", r.summary);
    }

    #[test]
    fn another_tools_history_needs_no_driver_records() {
        assert_eq!(check(&op(), None).valid, Validity::Valid);
    }
}
