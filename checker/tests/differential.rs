//! The checker agrees with a brute-force checker that tries every order, on
//! thousands of small random histories (info, fail and pending included).

use raft_checker::history::{Event, EventType, Process};
use raft_checker::{check_history, CheckOptions, RegisterKind, Validity};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// An operation as the brute force sees it: straight from the definition.
#[derive(Debug, Clone)]
struct BruteOp {
    f: String,
    value: Value,
    /// Event positions of invoke and (certain) completion.
    call: usize,
    ret: Option<usize>,
    required: bool,
}

/// Applies an operation to a register holding `state` (null = absent).
fn apply(state: &Value, op: &BruteOp) -> Option<Value> {
    match op.f.as_str() {
        "read" => (state == &op.value).then(|| state.clone()),
        "write" => Some(op.value.clone()),
        "cas" => (state == &op.value[0]).then(|| op.value[1].clone()),
        "append" => match state {
            Value::Null => Some(op.value.clone()),
            Value::String(s) => Some(json!(format!("{s}{}", op.value.as_str()?))),
            _ => None,
        },
        _ => None,
    }
}

/// Tries every order of every subset of the uncertain operations.
fn brute_force(ops: &[BruteOp], initial: &Value) -> bool {
    fn go(ops: &[BruteOp], placed: &mut Vec<bool>, state: &Value) -> bool {
        if ops
            .iter()
            .zip(placed.iter())
            .all(|(o, &p)| p || !o.required)
        {
            return true;
        }
        for i in 0..ops.len() {
            if placed[i] {
                continue;
            }
            // Real time: everything that returned before i was called goes first.
            let blocked = ops
                .iter()
                .enumerate()
                .any(|(j, o)| !placed[j] && j != i && o.ret.is_some_and(|r| r < ops[i].call));
            if blocked {
                continue;
            }
            if let Some(next) = apply(state, &ops[i]) {
                placed[i] = true;
                if go(ops, placed, &next) {
                    return true;
                }
                placed[i] = false;
            }
        }
        false
    }
    go(ops, &mut vec![false; ops.len()], initial)
}

/// A random history of up to `max_ops` operations on one key.
fn random_history(rng: &mut SmallRng, max_ops: usize) -> (Vec<Event>, Vec<BruteOp>) {
    let processes = rng.gen_range(1..=5u64);
    let n_ops = rng.gen_range(1..=max_ops);
    let append_mode = rng.gen_bool(0.2);
    let mut events = Vec::new();
    let mut in_flight: Vec<Option<(String, Value, usize)>> = vec![None; processes as usize];
    let mut next_process: Vec<u64> = (0..processes).collect();
    let mut fresh = processes;
    let mut started = 0;
    let mut brute = Vec::new();
    let value = |rng: &mut SmallRng| -> Value {
        if append_mode {
            json!(["a", "b", "ab", "ba"][rng.gen_range(0..4)])
        } else if rng.gen_bool(0.1) {
            Value::Null
        } else {
            json!(rng.gen_range(0..3))
        }
    };
    loop {
        let idle: Vec<usize> = (0..processes as usize)
            .filter(|&p| in_flight[p].is_none())
            .collect();
        let busy: Vec<usize> = (0..processes as usize)
            .filter(|&p| in_flight[p].is_some())
            .collect();
        let can_start = started < n_ops && !idle.is_empty();
        if !can_start && busy.is_empty() {
            break;
        }
        // Sometimes leave operations pending at the end of the history.
        if !can_start && rng.gen_bool(0.15) {
            break;
        }
        let start = can_start && (busy.is_empty() || rng.gen_bool(0.5));
        let time = events.len() as u64 * 10;
        if start {
            let p = idle[rng.gen_range(0..idle.len())];
            let f = if append_mode {
                ["read", "append"][rng.gen_range(0..2)]
            } else {
                ["read", "write", "cas"][rng.gen_range(0..3)]
            };
            let v = match f {
                "read" => Value::Null,
                "cas" => json!([value(rng), value(rng)]),
                _ => value(rng),
            };
            events.push(Event {
                index: events.len() as u64,
                time,
                process: Process::Client(next_process[p]),
                kind: EventType::Invoke,
                f: f.to_string(),
                key: None,
                value: v.clone(),
                error: None,
            });
            in_flight[p] = Some((f.to_string(), v, events.len() - 1));
            started += 1;
        } else {
            let p = busy[rng.gen_range(0..busy.len())];
            let Some((f, v, call)) = in_flight[p].take() else {
                continue;
            };
            let r: f64 = rng.gen();
            let kind = if r < 0.7 {
                EventType::Ok
            } else if r < 0.85 {
                EventType::Info
            } else {
                EventType::Fail
            };
            let out = if f == "read" && kind == EventType::Ok {
                value(rng)
            } else {
                v.clone()
            };
            events.push(Event {
                index: events.len() as u64,
                time,
                process: Process::Client(next_process[p]),
                kind,
                f: f.clone(),
                key: None,
                value: out.clone(),
                error: None,
            });
            if kind == EventType::Info {
                next_process[p] = fresh;
                fresh += 1;
            }
            if kind != EventType::Fail {
                brute.push(BruteOp {
                    value: if f == "read" { out } else { v },
                    f,
                    call,
                    ret: (kind == EventType::Ok).then_some(events.len() - 1),
                    required: kind == EventType::Ok,
                });
            }
        }
    }
    // What is still in flight is pending: it may or may not have happened.
    for (f, v, call) in in_flight.into_iter().flatten() {
        brute.push(BruteOp {
            f,
            value: v,
            call,
            ret: None,
            required: false,
        });
    }
    (events, brute)
}

#[test]
fn checker_agrees_with_brute_force_on_small_random_histories() {
    // DIFFERENTIAL_CASES, DIFFERENTIAL_SEED and DIFFERENTIAL_MAX_OPS widen
    // the search locally.
    let cases: usize = std::env::var("DIFFERENTIAL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let seed: u64 = std::env::var("DIFFERENTIAL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261130);
    let max_ops: usize = std::env::var("DIFFERENTIAL_MAX_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut rng = SmallRng::seed_from_u64(seed);
    let (mut valid, mut invalid, mut quick_invalid) = (0, 0, 0);
    for case in 0..cases {
        let (events, brute) = random_history(&mut rng, max_ops);
        let initial = if case % 2 == 0 { Value::Null } else { json!(0) };
        let expected = brute_force(&brute, &initial);
        let opts = CheckOptions {
            model: RegisterKind::Kv,
            initial_value: initial.clone(),
            threads: 1,
            ..CheckOptions::default()
        };
        let got = check_history(&events, &opts).expect("generated histories are well formed");
        let want = if expected {
            Validity::Valid
        } else {
            Validity::Invalid
        };
        assert_eq!(
            got.valid,
            want,
            "case {case}, initial {initial}: checker says {:?}, brute force {:?}\n{}",
            got.valid,
            want,
            events
                .iter()
                .map(|e| serde_json::to_string(e).unwrap())
                .collect::<Vec<_>>()
                .join("\n")
        );
        // With no memory for the search, only the quick impossibility check
        // can decide: it may say invalid (then rightly) or unknown.
        let starved = CheckOptions {
            memory_limit: 0,
            ..opts
        };
        let quick = check_history(&events, &starved).expect("well formed").valid;
        assert!(
            quick == Validity::Unknown || quick == want,
            "case {case}: the quick check says {quick:?}, brute force {want:?}"
        );
        if quick == Validity::Invalid {
            quick_invalid += 1;
        }
        if expected {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    // The generator must exercise both verdicts, or the test proves little.
    assert!(
        valid > cases / 8 && invalid > cases / 8,
        "valid {valid}, invalid {invalid}"
    );
    assert!(
        quick_invalid > cases / 20,
        "the quick check decided only {quick_invalid} cases"
    );
}

/// A history of reads and appends on one key, from a real execution with
/// many overlapping appends (each takes effect at some instant between its
/// invoke and its completion), so that most are linearizable; in some, one
/// read is then altered (pieces swapped, dropped or added), which may or
/// may not break it: the brute force decides.
fn random_append_history(rng: &mut SmallRng, max_ops: usize) -> (Vec<Event>, Vec<BruteOp>) {
    let processes = rng.gen_range(2..=6usize);
    let n_ops = rng.gen_range(1..=max_ops);
    // (f, value, invoke position, applied, outcome)
    type Flight = (String, Value, usize, bool, EventType);
    let mut in_flight: Vec<Option<Flight>> = vec![None; processes];
    let mut state = String::new();
    let mut absent = true;
    let mut events = Vec::new();
    let mut brute = Vec::new();
    let (mut started, mut pieces) = (0, 0);
    let mut process_of: Vec<u64> = (0..processes as u64).collect();
    let mut fresh = processes as u64;
    loop {
        let idle: Vec<usize> = (0..processes).filter(|&p| in_flight[p].is_none()).collect();
        let busy: Vec<usize> = (0..processes).filter(|&p| in_flight[p].is_some()).collect();
        let can_start = started < n_ops && !idle.is_empty();
        if !can_start && busy.is_empty() {
            break;
        }
        if !can_start && rng.gen_bool(0.1) {
            break;
        }
        // Prefer starting: many appends in flight at once.
        if can_start && (busy.is_empty() || rng.gen_bool(0.6)) {
            let p = idle[rng.gen_range(0..idle.len())];
            let (f, v) = if rng.gen_bool(0.6) {
                pieces += 1;
                ("append", json!(format!("{pieces},")))
            } else {
                ("read", Value::Null)
            };
            let r: f64 = rng.gen();
            let outcome = if r < 0.8 {
                EventType::Ok
            } else if r < 0.9 {
                EventType::Info
            } else {
                EventType::Fail
            };
            events.push(Event {
                index: events.len() as u64,
                time: events.len() as u64 * 10,
                process: Process::Client(process_of[p]),
                kind: EventType::Invoke,
                f: f.to_string(),
                key: None,
                value: v.clone(),
                error: None,
            });
            in_flight[p] = Some((f.to_string(), v, events.len() - 1, false, outcome));
            started += 1;
            continue;
        }
        let p = busy[rng.gen_range(0..busy.len())];
        let Some((f, v, call, applied, outcome)) = in_flight[p].take() else {
            continue;
        };
        if !applied {
            // Take effect now (a failed op, and half the info ones, never do).
            let happens =
                outcome == EventType::Ok || (outcome == EventType::Info && rng.gen_bool(0.5));
            let mut v = v;
            if happens {
                if f == "append" {
                    state.push_str(v.as_str().unwrap_or_default());
                    absent = false;
                } else {
                    v = if absent {
                        Value::Null
                    } else {
                        json!(state.clone())
                    };
                }
            }
            in_flight[p] = Some((f, v, call, true, outcome));
            continue;
        }
        events.push(Event {
            index: events.len() as u64,
            time: events.len() as u64 * 10,
            process: Process::Client(process_of[p]),
            kind: outcome,
            f: f.clone(),
            key: None,
            value: if f == "read" && outcome != EventType::Ok {
                Value::Null
            } else {
                v.clone()
            },
            error: None,
        });
        if outcome == EventType::Info {
            // As in Jepsen, a process whose op ended info is retired.
            process_of[p] = fresh;
            fresh += 1;
        }
        if outcome != EventType::Fail && !(f == "read" && outcome != EventType::Ok) {
            brute.push(BruteOp {
                f,
                value: v,
                call,
                ret: (outcome == EventType::Ok).then_some(events.len() - 1),
                required: outcome == EventType::Ok,
            });
        }
    }
    for (f, v, call, _, _) in in_flight.into_iter().flatten() {
        if f == "append" {
            brute.push(BruteOp {
                f,
                value: v,
                call,
                ret: None,
                required: false,
            });
        }
    }
    // Sometimes alter one ok read.
    if rng.gen_bool(0.4) {
        let reads: Vec<usize> = (0..brute.len())
            .filter(|&i| brute[i].f == "read" && brute[i].required)
            .collect();
        if !reads.is_empty() {
            let i = reads[rng.gen_range(0..reads.len())];
            let seen = brute[i].value.as_str().unwrap_or_default().to_string();
            let mut parts: Vec<String> = seen.split_inclusive(',').map(str::to_string).collect();
            match rng.gen_range(0..3) {
                0 if parts.len() >= 2 => {
                    let k = rng.gen_range(0..parts.len() - 1);
                    parts.swap(k, k + 1);
                }
                1 if !parts.is_empty() => {
                    parts.remove(rng.gen_range(0..parts.len()));
                }
                _ => parts.push(format!("{},", rng.gen_range(1..=pieces.max(1)))),
            }
            let altered = json!(parts.concat());
            brute[i].value = altered.clone();
            let ret = brute[i].ret.unwrap_or_default();
            events[ret].value = altered;
        }
    }
    (events, brute)
}

#[test]
fn checker_agrees_with_brute_force_on_many_concurrent_appends() {
    let cases: usize = std::env::var("DIFFERENTIAL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut rng = SmallRng::seed_from_u64(7_20261130);
    let (mut valid, mut invalid) = (0, 0);
    for case in 0..cases {
        let (events, brute) = random_append_history(&mut rng, 9);
        let initial = [Value::Null, json!("0,"), json!(0)][case % 3].clone();
        let want = if brute_force(&brute, &initial) {
            valid += 1;
            Validity::Valid
        } else {
            invalid += 1;
            Validity::Invalid
        };
        let opts = CheckOptions {
            model: RegisterKind::Kv,
            initial_value: initial.clone(),
            threads: 1,
            ..CheckOptions::default()
        };
        let got = check_history(&events, &opts).expect("generated histories are well formed");
        assert_eq!(
            got.valid,
            want,
            "case {case}, initial {initial}: {}\n{}",
            got.summary,
            events
                .iter()
                .map(|e| serde_json::to_string(e).unwrap())
                .collect::<Vec<_>>()
                .join("\n")
        );
        let starved = CheckOptions {
            memory_limit: 0,
            ..opts
        };
        let quick = check_history(&events, &starved).expect("well formed").valid;
        assert!(
            quick == Validity::Unknown || quick == want,
            "case {case}: the quick check says {quick:?}, brute force {want:?}"
        );
    }
    assert!(
        valid > cases / 4 && invalid > cases / 8,
        "valid {valid}, invalid {invalid}"
    );
}
