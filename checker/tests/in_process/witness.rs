//! Minimal witnesses: an invalid key's explanation carries the history
//! lines of a smallest set of its operations that cannot all be
//! linearized. Checked alone they are invalid; dropping any one of them
//! leaves a linearizable history, or one in which a read sees a value none
//! of the rest wrote; and the common shapes get their sentence.

use crate::common;

use common::{brute_force, crash_append_history, random_history, BruteOp};
use raft_checker::history::read_jsonl;
use raft_checker::operation::pair;
use raft_checker::{check_history, CheckOptions, Event, Explanation, RegisterKind, Validity};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde_json::{json, Value};
use std::collections::HashSet;

fn opts(initial: &Value) -> CheckOptions {
    CheckOptions {
        model: RegisterKind::Kv,
        initial_value: initial.clone(),
        threads: 1,
        ..CheckOptions::default()
    }
}

fn jsonl(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| serde_json::to_string(e).expect("events serialise") + "\n")
        .collect()
}

/// The witness's lines, written out and read back as a history file is.
fn reread(e: &Explanation) -> Vec<Event> {
    read_jsonl(jsonl(&e.witness).as_bytes())
        .expect("witness lines are a history")
        .events
}

/// The brute force's view of some history's operations, placed by their
/// `index` (as the whole key's are), not by their position.
fn brute_ops(events: &[Event]) -> Vec<BruteOp> {
    use raft_checker::operation::Outcome;
    pair(events)
        .expect("well formed")
        .into_iter()
        .filter(|o| o.outcome != Outcome::Fail)
        .filter(|o| !(o.f == "read" && o.outcome != Outcome::Ok))
        .map(|o| BruteOp {
            f: o.f.clone(),
            value: o.value().clone(),
            call: events[o.invoke].index as usize,
            ret: o
                .complete
                .filter(|_| o.outcome == Outcome::Ok)
                .map(|c| events[c].index as usize),
            required: o.outcome == Outcome::Ok,
        })
        .collect()
}

/// Whether every ok read (and cas) in `ops` sees a value some op in `ops`
/// produced, whenever some op of the whole key (`key`) produced it before
/// the read returned: the closure a witness keeps.
fn closed(ops: &[BruteOp], key: &[BruteOp], initial: &Value) -> bool {
    let init = initial.as_str().unwrap_or_default();
    let appended = |set: &[BruteOp], piece: &str| {
        set.iter()
            .any(|o| o.f == "append" && o.value.as_str() == Some(piece))
    };
    // Appends of pieces (distinct values ending in one delimiter found
    // nowhere else in them, like "1,", "2,"): each read needs the appends
    // of what it shows. Other append values carry no such rule.
    let values: Vec<&str> = key
        .iter()
        .filter(|k| k.f == "append")
        .filter_map(|k| k.value.as_str())
        .collect();
    let delim = values.first().and_then(|v| v.chars().last());
    // (On a key whose initial value is not text no append succeeds, so no
    // read needs one.)
    let text_initial = initial.is_null() || initial.is_string();
    let pieces = text_initial
        && delim.is_some_and(|d| {
            values.iter().collect::<HashSet<_>>().len() == values.len()
                && values
                    .iter()
                    .all(|v| v.ends_with(d) && v.matches(d).count() == 1)
        });
    ops.iter()
        .filter(|o| o.required)
        .all(|o| match o.f.as_str() {
            "read" if key.iter().any(|k| k.f == "append") && !pieces => true,
            "read" if pieces => {
                let text = o.value.as_str().unwrap_or_default();
                let rest = text.strip_prefix(init).unwrap_or(text);
                rest.split_inclusive(delim.unwrap_or(','))
                    .all(|p| !appended(key, p) || appended(ops, p))
            }
            "read" | "cas" => {
                let v = if o.f == "cas" { &o.value[0] } else { &o.value };
                let writes = |set: &[BruteOp]| {
                    set.iter().any(|w| {
                        w.call < o.ret.unwrap_or(0)
                            && match w.f.as_str() {
                                "write" => &w.value == v,
                                "cas" => &w.value[1] == v,
                                _ => false,
                            }
                    })
                };
                v == initial || !writes(key) || writes(ops)
            }
            _ => true,
        })
}

/// Every invalid case of a generator: its witness is invalid alone, for
/// the checker and for the brute force, and is 1-minimal when it says so.
fn witnesses_hold(
    name: &str,
    cases: usize,
    mut gen: impl FnMut(usize) -> (Vec<Event>, Vec<BruteOp>, Value),
) {
    let (mut checked, mut minimal, mut dropped) = (0, 0, 0);
    for case in 0..cases {
        let (events, key, initial) = gen(case);
        if brute_force(&key, &initial) {
            continue;
        }
        let r = check_history(&events, &opts(&initial)).expect("well formed");
        assert_eq!(r.valid, Validity::Invalid, "{name} case {case}");
        let e = &r.explanations[0];
        assert!(!e.witness.is_empty(), "{name} case {case}: no witness");
        let lines = reread(e);
        let alone = check_history(&lines, &opts(&initial)).expect("witness is well formed");
        assert_eq!(
            alone.valid,
            Validity::Invalid,
            "{name} case {case}: the witness alone is not invalid\n{}",
            jsonl(&lines)
        );
        let ops = brute_ops(&lines);
        assert!(!brute_force(&ops, &initial), "{name} case {case}");
        assert!(
            closed(&ops, &key, &initial),
            "{name} case {case}: the witness lacks a write its reads saw\n{}\nwhole key:\n{}",
            jsonl(&lines),
            jsonl(&events)
        );
        checked += 1;
        if !e.witness_minimal {
            continue;
        }
        minimal += 1;
        // Drop each operation (its invoke and completion lines) in turn.
        let invokes: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].kind == raft_checker::EventType::Invoke)
            .collect();
        for &inv in &invokes {
            let process = lines[inv].process.clone();
            let done = (inv + 1..lines.len()).find(|&j| lines[j].process == process);
            let gone: HashSet<usize> = std::iter::once(inv).chain(done).collect();
            let rest: Vec<Event> = (0..lines.len())
                .filter(|i| !gone.contains(i))
                .map(|i| lines[i].clone())
                .collect();
            let rest_ops = brute_ops(&rest);
            assert!(
                brute_force(&rest_ops, &initial) || !closed(&rest_ops, &key, &initial),
                "{name} case {case}: the witness is marked minimal, yet without line {inv} \
                 it is still invalid and closed\n{}\nwhole key:\n{}",
                jsonl(&lines),
                jsonl(&events)
            );
            dropped += 1;
        }
    }
    assert!(
        checked > cases / 10 && minimal * 10 >= checked * 9 && dropped > checked,
        "{name}: {checked} witnesses, {minimal} minimal, {dropped} single drops"
    );
}

#[test]
fn witnesses_of_random_register_and_append_keys_are_invalid_alone_and_1_minimal() {
    let mut rng = SmallRng::seed_from_u64(13_20261130);
    witnesses_hold("register", 1500, |case| {
        let (events, key) = random_history(&mut rng, 9);
        let initial = if case % 2 == 0 { Value::Null } else { json!(0) };
        (events, key, initial)
    });
    let mut rng = SmallRng::seed_from_u64(14_20261130);
    witnesses_hold("pieces", 1500, |case| {
        let initial = [Value::Null, json!("0,")][case % 2].clone();
        let (events, key) = crash_append_history(&mut rng, 9, &initial);
        (events, key, initial)
    });
}

/// A history of one key from `(process, type, f, value)` lines, times 10
/// apart.
fn history(key: &str, items: &[(u64, &str, &str, Value)]) -> Vec<Event> {
    let text: String = items
        .iter()
        .enumerate()
        .map(|(i, (p, t, f, v))| {
            json!({"index": i, "time": i * 10, "process": p, "type": t, "f": f,
                   "key": key, "value": v})
            .to_string()
                + "\n"
        })
        .collect();
    read_jsonl(text.as_bytes()).expect("test history").events
}

#[test]
fn a_stale_read_of_appends_is_named_in_a_sentence_with_its_few_operations() {
    // The shape of issue 13: "3," is acknowledged (index 5) before process
    // 9's read begins (index 8), process 7 has already seen it, and
    // process 9's read lacks it.
    let events = history(
        "a5",
        &[
            (1, "invoke", "append", json!("1,")),
            (1, "ok", "append", json!("1,")),
            (2, "invoke", "append", json!("2,")),
            (2, "ok", "append", json!("2,")),
            (3, "invoke", "append", json!("3,")),
            (3, "ok", "append", json!("3,")),
            (7, "invoke", "read", Value::Null),
            (7, "ok", "read", json!("1,2,3,")),
            (9, "invoke", "read", Value::Null),
            (9, "ok", "read", json!("1,2,")),
        ],
    );
    let r = check_history(&events, &opts(&Value::Null)).expect("well formed");
    assert_eq!(r.valid, Validity::Invalid);
    let e = &r.explanations[0];
    assert!(e.witness_minimal);
    let indexes: Vec<u64> = e.witness.iter().map(|ev| ev.index).collect();
    // The stale read, the append it missed, and the appends of what it saw.
    assert_eq!(indexes, vec![0, 1, 2, 3, 4, 5, 8, 9], "{:?}", e.witness);
    let shape = e.witness_shape.as_deref().unwrap_or("");
    assert!(
        shape.starts_with("stale read: process 9's read (index 9) misses \"3,\", which process 3's append (index 5)"),
        "{shape}"
    );
}

#[test]
fn a_stale_read_of_a_register_is_three_operations() {
    let events = {
        let text = [
            r#"{"index":0,"time":0,"process":1,"type":"invoke","f":"write","key":"r","value":1}"#,
            r#"{"index":1,"time":1,"process":1,"type":"ok","f":"write","key":"r","value":1}"#,
            r#"{"index":2,"time":2,"process":4,"type":"invoke","f":"read","key":"r","value":null}"#,
            r#"{"index":3,"time":3,"process":4,"type":"ok","f":"read","key":"r","value":1}"#,
            r#"{"index":4,"time":4,"process":2,"type":"invoke","f":"write","key":"r","value":2}"#,
            r#"{"index":5,"time":5,"process":2,"type":"ok","f":"write","key":"r","value":2}"#,
            r#"{"index":6,"time":6,"process":3,"type":"invoke","f":"read","key":"r","value":null}"#,
            r#"{"index":7,"time":7,"process":3,"type":"ok","f":"read","key":"r","value":1}"#,
        ]
        .join("\n");
        read_jsonl(text.as_bytes()).expect("test history").events
    };
    let r = check_history(&events, &opts(&Value::Null)).expect("well formed");
    let e = &r.explanations[0];
    let indexes: Vec<u64> = e.witness.iter().map(|ev| ev.index).collect();
    assert_eq!(indexes, vec![0, 1, 4, 5, 6, 7]);
    assert!(e.witness_minimal);
    assert_eq!(
        e.witness_shape.as_deref(),
        Some(
            "stale read: process 3's read (index 7) returned 1, but process 2's write (index 5) \
             had written 2 over it and was acknowledged before the read began, after process \
             1's write (index 1) wrote 1"
        )
    );
}

#[test]
fn a_read_of_a_value_never_written_is_its_own_witness() {
    let text = [
        r#"{"index":10,"time":0,"process":1,"type":"invoke","f":"write","key":"r","value":1}"#,
        r#"{"index":11,"time":1,"process":1,"type":"ok","f":"write","key":"r","value":1}"#,
        r#"{"index":20,"time":2,"process":3,"type":"invoke","f":"read","key":"r","value":null}"#,
        r#"{"index":21,"time":3,"process":3,"type":"ok","f":"read","key":"r","value":7}"#,
    ]
    .join("\n");
    let events = read_jsonl(text.as_bytes()).expect("test history").events;
    let r = check_history(&events, &opts(&Value::Null)).expect("well formed");
    let e = &r.explanations[0];
    // Indexes as in the input, not positions.
    let indexes: Vec<u64> = e.witness.iter().map(|ev| ev.index).collect();
    assert_eq!(indexes, vec![20, 21]);
    assert_eq!(
        e.witness_shape.as_deref(),
        Some("a read of a value never written: process 3's read (index 21) returned 7, which no operation wrote")
    );
}

#[test]
fn the_common_shapes_get_their_sentence() {
    let cases: Vec<(&str, Vec<Event>)> = vec![
        (
            "two appends seen in two orders: process 3's read (index 5) shows \"1,\" before \"2,\", process 4's read (index 7) shows \"2,\" before \"1,\"",
            history(
                "k",
                &[
                (1, "invoke", "append", json!("1,")),
                (2, "invoke", "append", json!("2,")),
                (1, "ok", "append", json!("1,")),
                (2, "ok", "append", json!("2,")),
                (3, "invoke", "read", Value::Null),
                (3, "ok", "read", json!("1,2,")),
                (4, "invoke", "read", Value::Null),
                (4, "ok", "read", json!("2,1,")),
            ],
            ),
        ),
        (
            "lost write: process 1's append (index 1) appended \"1,\" and was acknowledged, yet process 2's read (index 3), which began after that, misses it, and no read ever shows it",
            history(
                "k",
                &[
                (1, "invoke", "append", json!("1,")),
                (1, "ok", "append", json!("1,")),
                (2, "invoke", "read", Value::Null),
                (2, "ok", "read", Value::Null),
            ],
            ),
        ),
        (
            "a cas succeeded against a value that was not there: process 3's cas (index 5) expected 1, but process 2's write (index 3) had written 2 over it and was acknowledged before the cas began, after process 1's write (index 1) wrote 1",
            history(
                "k",
                &[
                (1, "invoke", "write", json!(1)),
                (1, "ok", "write", json!(1)),
                (2, "invoke", "write", json!(2)),
                (2, "ok", "write", json!(2)),
                (3, "invoke", "cas", json!([1, 3])),
                (3, "ok", "cas", json!([1, 3])),
            ],
            ),
        ),
        (
            "a read saw an append before it began: process 1's read (index 1) shows \"1,\", but process 2's append (index 3) was invoked after the read returned",
            history(
                "k",
                &[
                (1, "invoke", "read", Value::Null),
                (1, "ok", "read", json!("1,")),
                (2, "invoke", "append", json!("1,")),
                (2, "ok", "append", json!("1,")),
            ],
            ),
        ),
    ];
    for (want, events) in cases {
        let r = check_history(&events, &opts(&Value::Null)).expect("well formed");
        assert_eq!(r.valid, Validity::Invalid, "{want}");
        let e = &r.explanations[0];
        assert!(e.witness_minimal, "{want}");
        assert_eq!(e.witness_shape.as_deref(), Some(want), "{}", e.message);
    }
}
