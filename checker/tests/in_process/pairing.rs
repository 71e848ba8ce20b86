//! The compact history's pairing (`raft_checker::compact`, behind
//! `operation::pair` and `pair_lenient`) against the pairing it replaced,
//! kept here word for word as the reference, on random well- and
//! malformed histories; and every event of a paired history rebuilt from
//! its compact form exactly as it was.

use proptest::prelude::*;
use raft_checker::compact::{CompactHistory, Pairing};
use raft_checker::operation::{pair, pair_lenient};
use raft_checker::{Event, EventType, Process};
use serde_json::{json, Value};

/// The pairing before the compact history (checker/src/operation.rs).
mod reference {
    use raft_checker::history::{Event, EventType, Process};
    use raft_checker::operation::{Operation, Outcome};
    use raft_checker::HistoryError;
    use std::collections::HashMap;

    /// Pairs the client events of `events` into operations, in invoke order.
    pub fn pair(events: &[Event]) -> Result<Vec<Operation>, HistoryError> {
        let mut ops: Vec<Operation> = Vec::new();
        let mut in_flight: HashMap<u64, usize> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            let p = match &e.process {
                Process::Client(p) => *p,
                // A number in a string is a client that would silently be taken
                // for the nemesis, and its operations left unchecked.
                Process::Named(name) if name.trim().parse::<u64>().is_ok() => {
                    return Err(HistoryError::event(
                        i,
                        format!("process {name:?} is a string: client processes are numbers"),
                    ));
                }
                Process::Named(_) => continue,
            };
            if e.f.is_empty() {
                return Err(HistoryError::event(i, "empty f"));
            }
            match e.kind {
                EventType::Invoke => {
                    if let Some(&prev) = in_flight.get(&p) {
                        return Err(HistoryError::event(
                            i,
                            format!(
                                "process {p} invokes {} while its {} (index {}) is still in flight",
                                e.f, ops[prev].f, events[ops[prev].invoke].index
                            ),
                        ));
                    }
                    in_flight.insert(p, ops.len());
                    ops.push(Operation {
                        process: p,
                        f: e.f.clone(),
                        key: e.key.clone(),
                        outcome: Outcome::Pending,
                        invoke: i,
                        complete: None,
                        invoke_value: e.value.clone(),
                        complete_value: serde_json::Value::Null,
                        invoke_time: e.time,
                        complete_time: None,
                    });
                }
                kind => {
                    let Some(op_id) = in_flight.remove(&p) else {
                        return Err(HistoryError::event(
                            i,
                            format!(
                                "{} {} on process {p} without a pending invoke",
                                kind.as_str(),
                                e.f
                            ),
                        ));
                    };
                    let op = &mut ops[op_id];
                    if op.f != e.f {
                        return Err(HistoryError::event(
                            i,
                            format!(
                                "{} {} on process {p} completes an invoke of {} (index {})",
                                kind.as_str(),
                                e.f,
                                op.f,
                                events[op.invoke].index
                            ),
                        ));
                    }
                    if e.key.is_some() && op.key.is_some() && e.key != op.key {
                        return Err(HistoryError::event(
                            i,
                            format!(
                                "completion on key {:?} for an invoke on key {:?}",
                                e.key.as_deref().unwrap_or(""),
                                op.key.as_deref().unwrap_or("")
                            ),
                        ));
                    }
                    if op.key.is_none() {
                        op.key = e.key.clone();
                    }
                    if e.time < op.invoke_time {
                        return Err(HistoryError::event(
                            i,
                            format!(
                                "completes at time {} before its invoke at time {}",
                                e.time, op.invoke_time
                            ),
                        ));
                    }
                    op.outcome = match kind {
                        EventType::Ok => Outcome::Ok,
                        EventType::Fail => Outcome::Fail,
                        _ => Outcome::Info,
                    };
                    op.complete = Some(i);
                    op.complete_value = e.value.clone();
                    op.complete_time = Some(e.time);
                }
            }
        }
        Ok(ops)
    }

    /// Pairs what can be paired and skips what cannot: for plotting histories
    /// that may be malformed (a plot should still show what is there).
    pub fn pair_lenient(events: &[Event]) -> Vec<Operation> {
        let mut ops: Vec<Operation> = Vec::new();
        let mut in_flight: HashMap<u64, usize> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            let Process::Client(p) = e.process else {
                continue;
            };
            if e.kind == EventType::Invoke {
                in_flight.insert(p, ops.len());
                ops.push(Operation {
                    process: p,
                    f: e.f.clone(),
                    key: e.key.clone(),
                    outcome: Outcome::Pending,
                    invoke: i,
                    complete: None,
                    invoke_value: e.value.clone(),
                    complete_value: serde_json::Value::Null,
                    invoke_time: e.time,
                    complete_time: None,
                });
            } else if let Some(id) = in_flight.remove(&p) {
                let op = &mut ops[id];
                op.outcome = match e.kind {
                    EventType::Ok => Outcome::Ok,
                    EventType::Fail => Outcome::Fail,
                    _ => Outcome::Info,
                };
                op.complete = Some(i);
                op.complete_value = e.value.clone();
                op.complete_time = Some(e.time.max(op.invoke_time));
            }
        }
        ops
    }
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        (-3i64..4).prop_map(|i| json!(i)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(2.5)),
        Just(json!("1,2,")),
        Just(json!("")),
        Just(json!([1, null])),
        Just(json!({"b": [1], "a": "x"})),
    ]
}

/// Events of few processes, fs and keys, so that pairs and clashes are
/// common; a few named processes, one of them a number in a string.
fn event() -> impl Strategy<Value = Event> {
    let process = prop_oneof![
        6 => (0u64..3).prop_map(Process::Client),
        1 => Just(Process::nemesis()),
        1 => Just(Process::Named("2".into())),
    ];
    let kind = prop_oneof![
        3 => Just(EventType::Invoke),
        2 => Just(EventType::Ok),
        1 => Just(EventType::Fail),
        1 => Just(EventType::Info),
    ];
    let f =
        prop_oneof![4 => Just("read"), 2 => Just("write"), 1 => Just(""), 1 => Just("start-kill")];
    let key = prop_oneof![Just(None), Just(Some("a")), Just(Some("b"))];
    let error = prop_oneof![3 => Just(None), 1 => Just(Some("timeout"))];
    (
        process,
        kind,
        f,
        key,
        value(),
        error,
        0u64..5,
        any::<bool>(),
    )
        .prop_map(|(process, kind, f, key, value, error, dt, shifted)| Event {
            // Filled in below: times mostly rising, indexes mostly positions.
            index: u64::from(shifted),
            time: dt,
            process,
            kind,
            f: f.to_string(),
            key: key.map(String::from),
            value,
            error: error.map(String::from),
        })
}

fn history() -> impl Strategy<Value = Vec<Event>> {
    proptest::collection::vec(event(), 0..40).prop_map(|mut events| {
        let mut t = 0u64;
        for (i, e) in events.iter_mut().enumerate() {
            // A time step of 0 sometimes goes back, to reach that error.
            t = if e.time == 0 {
                t.saturating_sub(3)
            } else {
                t + e.time
            };
            e.time = t;
            e.index = i as u64 + 100 * e.index;
        }
        events
    })
}

/// Well-formed histories: each process invokes, then completes the same
/// f (its key on the invoke, the completion, or both), nemesis events
/// between.
fn paired_history() -> impl Strategy<Value = Vec<Event>> {
    proptest::collection::vec(event(), 0..60).prop_map(|raw| {
        let mut in_flight: [Option<Event>; 3] = [None, None, None];
        let mut out = Vec::new();
        for mut e in raw {
            e.index = out.len() as u64;
            e.time = 10 * out.len() as u64;
            let Process::Client(p) = e.process else {
                e.process = Process::nemesis();
                out.push(e);
                continue;
            };
            if e.f.is_empty() {
                e.f = "cas".into();
            }
            match in_flight[p as usize].take() {
                None => {
                    e.kind = EventType::Invoke;
                    in_flight[p as usize] = Some(e.clone());
                }
                Some(inv) => {
                    if e.kind == EventType::Invoke {
                        e.kind = EventType::Info;
                    }
                    e.f = inv.f.clone();
                    if inv.key.is_some() && e.key.is_some() {
                        e.key = inv.key.clone();
                    }
                }
            }
            out.push(e);
        }
        out
    })
}

/// Every event at its position, rebuilt from the compact form.
fn rebuilt(h: &CompactHistory, events: &[Event]) -> Vec<Event> {
    let mut at: Vec<Option<Event>> = vec![None; events.len()];
    for id in 0..h.len() {
        let (i, c) = h.op_positions(id);
        at[i] = Some(h.invoke_event(id));
        if let (Some(c), Some(e)) = (c, h.complete_event(id)) {
            at[c] = Some(e);
        }
    }
    let mut named = h.named().iter();
    for (i, e) in events.iter().enumerate() {
        if !e.is_client() {
            at[i] = named.next().cloned();
        }
    }
    // Completions of nothing are left out of a strictly paired history
    // only by an error, so every slot is filled.
    at.into_iter()
        .map(|e| e.expect("every event rebuilt"))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn strict_pairing_is_the_old_pairing(events in history()) {
        match (pair(&events), reference::pair(&events)) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "new {:?}, old {:?}", a, b),
        }
    }

    #[test]
    fn lenient_pairing_is_the_old_pairing(events in history()) {
        prop_assert_eq!(pair_lenient(&events), reference::pair_lenient(&events));
    }

    #[test]
    fn well_formed_histories_pair_as_before(events in paired_history()) {
        let new = pair(&events);
        prop_assert!(new.is_ok(), "{:?}", new);
        prop_assert_eq!(new.ok(), reference::pair(&events).ok());
        prop_assert_eq!(pair_lenient(&events), reference::pair_lenient(&events));
    }

    #[test]
    fn a_paired_history_rebuilds_every_event_exactly(events in prop_oneof![history(), paired_history()]) {
        if let Ok(h) = CompactHistory::from_events(&events, Pairing::Strict) {
            prop_assert_eq!(rebuilt(&h, &events), events.clone());
            let f = h.facts();
            prop_assert_eq!(f.events, events.len());
            prop_assert_eq!(f.untimed, events.iter().all(|e| e.time == e.index));
            prop_assert_eq!(f.max_time, events.iter().map(|e| e.time).max());
        }
    }
}
