//! Shared by the differential and witness tests: a brute-force checker
//! straight from the definition, and random small histories.

#![allow(dead_code)]

use raft_checker::history::{Event, EventType, Process};
use rand::rngs::SmallRng;
use rand::Rng;
use serde_json::{json, Value};

/// An operation as the brute force sees it: straight from the definition.
#[derive(Debug, Clone)]
pub struct BruteOp {
    pub f: String,
    pub value: Value,
    /// Event positions of invoke and (certain) completion.
    pub call: usize,
    pub ret: Option<usize>,
    pub required: bool,
}

/// Applies an operation to a register holding `state` (null = absent).
pub fn apply(state: &Value, op: &BruteOp) -> Option<Value> {
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
pub fn brute_force(ops: &[BruteOp], initial: &Value) -> bool {
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
pub fn random_history(rng: &mut SmallRng, max_ops: usize) -> (Vec<Event>, Vec<BruteOp>) {
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

/// A new operation of an append history: an append of the next piece
/// (with probability `append`) or a read, and how it will end: ok with
/// probability `ok`, else info (up to 0.9), else fail.
fn draw_append_op(
    rng: &mut SmallRng,
    pieces: &mut usize,
    append: f64,
    ok: f64,
) -> (&'static str, Value, EventType) {
    let (f, v) = if rng.gen_bool(append) {
        *pieces += 1;
        ("append", json!(format!("{pieces},")))
    } else {
        ("read", Value::Null)
    };
    let r: f64 = rng.gen();
    let outcome = if r < ok {
        EventType::Ok
    } else if r < 0.9 {
        EventType::Info
    } else {
        EventType::Fail
    };
    (f, v, outcome)
}

/// A history of reads and appends on one key, from a real execution with
/// many overlapping appends (each takes effect at some instant between its
/// invoke and its completion), so that most are linearizable; in some, one
/// read is then altered (pieces swapped, dropped or added), which may or
/// may not break it: the brute force decides.
pub fn random_append_history(rng: &mut SmallRng, max_ops: usize) -> (Vec<Event>, Vec<BruteOp>) {
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
            let (f, v, outcome) = draw_append_op(rng, &mut pieces, 0.6, 0.8);
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

/// What happens to an operation once it takes effect (or not).
#[derive(Debug, Clone)]
struct Flight {
    f: &'static str,
    value: Value,
    call: usize,
    applied: bool,
    outcome: EventType,
}

/// Reads and appends of pieces (`"1,"`, `"2,"`, ...) on one key, from a
/// real execution in which an uncertain append may take effect at once,
/// long after its info line (a crashed leader's entry committed later), or
/// never, with reads running among many appends in flight; `initial` is
/// null or a string. Then, sometimes, one ok read is altered: made stale
/// (its last pieces dropped), two pieces swapped, one dropped, an unknown
/// one added, cut inside a piece, or a piece repeated. The brute force
/// decides what that makes of it.
pub fn crash_append_history(
    rng: &mut SmallRng,
    max_ops: usize,
    initial: &Value,
) -> (Vec<Event>, Vec<BruteOp>) {
    let processes = rng.gen_range(2..=6usize);
    let n_ops = rng.gen_range(1..=max_ops);
    let mut state: Option<String> = initial.as_str().map(str::to_string);
    let mut in_flight: Vec<Option<Flight>> = vec![None; processes];
    let mut late: Vec<String> = Vec::new();
    let mut events = Vec::new();
    let mut brute = Vec::new();
    let (mut started, mut pieces) = (0, 0);
    let mut process_of: Vec<u64> = (0..processes as u64).collect();
    let mut fresh = processes as u64;
    let event = |events: &Vec<Event>, p: u64, kind, f: &str, value: Value| Event {
        index: events.len() as u64,
        time: events.len() as u64 * 10,
        process: Process::Client(p),
        kind,
        f: f.to_string(),
        key: None,
        value,
        error: None,
    };
    loop {
        let idle: Vec<usize> = (0..processes).filter(|&p| in_flight[p].is_none()).collect();
        let busy: Vec<usize> = (0..processes).filter(|&p| in_flight[p].is_some()).collect();
        let can_start = started < n_ops && !idle.is_empty();
        if !can_start && busy.is_empty() {
            break;
        }
        if !late.is_empty() && rng.gen_bool(0.25) {
            // A crashed append takes effect now.
            let piece = late.remove(rng.gen_range(0..late.len()));
            state = Some(state.unwrap_or_default() + &piece);
            continue;
        }
        if can_start && (busy.is_empty() || rng.gen_bool(0.6)) {
            let p = idle[rng.gen_range(0..idle.len())];
            let (f, v, outcome) = draw_append_op(rng, &mut pieces, 0.55, 0.7);
            events.push(event(
                &events,
                process_of[p],
                EventType::Invoke,
                f,
                v.clone(),
            ));
            in_flight[p] = Some(Flight {
                f,
                value: v,
                call: events.len() - 1,
                applied: false,
                outcome,
            });
            started += 1;
            continue;
        }
        let p = busy[rng.gen_range(0..busy.len())];
        let Some(mut fl) = in_flight[p].take() else {
            continue;
        };
        if !fl.applied {
            fl.applied = true;
            let piece = fl.value.as_str().unwrap_or_default().to_string();
            match (fl.f, fl.outcome) {
                ("read", _) => fl.value = state.clone().map_or(Value::Null, Value::String),
                ("append", EventType::Ok) => state = Some(state.unwrap_or_default() + &piece),
                ("append", EventType::Info) => match rng.gen_range(0..3) {
                    0 => state = Some(state.unwrap_or_default() + &piece),
                    1 => late.push(piece),
                    _ => {}
                },
                _ => {}
            }
            in_flight[p] = Some(fl);
            continue;
        }
        let shown = if fl.f == "read" && fl.outcome != EventType::Ok {
            Value::Null
        } else {
            fl.value.clone()
        };
        events.push(event(&events, process_of[p], fl.outcome, fl.f, shown));
        if fl.outcome == EventType::Info {
            process_of[p] = fresh;
            fresh += 1;
        }
        let counts =
            fl.outcome != EventType::Fail && !(fl.f == "read" && fl.outcome != EventType::Ok);
        if counts {
            brute.push(BruteOp {
                f: fl.f.to_string(),
                value: fl.value,
                call: fl.call,
                ret: (fl.outcome == EventType::Ok).then_some(events.len() - 1),
                required: fl.outcome == EventType::Ok,
            });
        }
    }
    if rng.gen_bool(0.7) {
        alter_one_read(rng, initial, pieces, &mut events, &mut brute);
    }
    (events, brute)
}

/// Alters one ok read of a history of pieces (see [`crash_append_history`]).
fn alter_one_read(
    rng: &mut SmallRng,
    initial: &Value,
    pieces: usize,
    events: &mut [Event],
    brute: &mut [BruteOp],
) {
    let reads: Vec<usize> = (0..brute.len())
        .filter(|&i| brute[i].f == "read" && brute[i].required)
        .collect();
    if reads.is_empty() {
        return;
    }
    let i = reads[rng.gen_range(0..reads.len())];
    let init = initial.as_str().unwrap_or_default();
    let seen = brute[i].value.as_str().unwrap_or_default();
    let rest = seen.strip_prefix(init).unwrap_or(seen).to_string();
    let mut parts: Vec<String> = rest.split_inclusive(',').map(str::to_string).collect();
    let mut cut = false;
    match rng.gen_range(0..6) {
        0 if !parts.is_empty() => parts.truncate(rng.gen_range(0..parts.len())),
        1 if parts.len() >= 2 => {
            let k = rng.gen_range(0..parts.len() - 1);
            parts.swap(k, k + 1);
        }
        2 if !parts.is_empty() => {
            parts.remove(rng.gen_range(0..parts.len()));
        }
        3 => parts.push(format!("{},", pieces + 1 + rng.gen_range(0..3))),
        4 if !parts.is_empty() => cut = true,
        5 if !parts.is_empty() => {
            let k = rng.gen_range(0..parts.len());
            let dup = parts[k].clone();
            parts.insert(k, dup);
        }
        _ => parts.truncate(parts.len().saturating_sub(1)),
    }
    let mut text = format!("{init}{}", parts.concat());
    if cut {
        text.pop();
    }
    let altered = if text.is_empty() && initial.is_null() {
        Value::Null
    } else {
        json!(text)
    };
    brute[i].value = altered.clone();
    let ret = brute[i].ret.unwrap_or_default();
    events[ret].value = altered;
}
