//! Generated histories for tests and benchmarks: a real sequential execution
//! of registers, observed by concurrent clients with random overlapping
//! intervals, so the result is linearizable by construction.
//!
//! Each operation takes effect at a random instant between its invoke and
//! its completion. An uncertain operation completes as `info` and may or may
//! not have taken effect; its process is then retired and a fresh process
//! number takes its place, as Jepsen does.

use crate::history::{Event, EventType, Process};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Client operations in total.
    pub ops: usize,
    /// Keys, named `k0`, `k1`, ...
    pub keys: usize,
    /// Concurrent client workers.
    pub processes: usize,
    /// Fraction of operations that complete as `info`.
    pub info_rate: f64,
    /// Written values are drawn from `0..values`.
    pub values: i64,
    /// Whether to issue cas operations as well as reads and writes.
    pub cas: bool,
    /// Issue appends instead of writes and cas: reads and appends of
    /// strings `"1,"`, `"2,"`, ..., unique per key (absent counts as "").
    pub appends: bool,
    /// The random seed.
    pub seed: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            ops: 1000,
            keys: 1,
            processes: 5,
            info_rate: 0.05,
            values: 5,
            cas: true,
            appends: false,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// The operation takes effect (or not, for some uncertain ones).
    Apply,
    /// The client hears back.
    Complete,
    /// The worker starts its next operation.
    Invoke,
}

struct Pending {
    process: u64,
    f: &'static str,
    key: usize,
    value: Value,
    result: Option<Value>,
    outcome: EventType,
}

/// Generates a linearizable history (initial value of every key: null).
pub fn generate(opts: &GenOptions) -> Vec<Event> {
    let mut rng = SmallRng::seed_from_u64(opts.seed);
    let keys = opts.keys.max(1);
    let workers = opts.processes.max(1);
    let mut state: Vec<Value> = vec![Value::Null; keys];
    let mut events: Vec<Event> = Vec::with_capacity(opts.ops * 2);
    let mut queue: BinaryHeap<Reverse<(u64, u64, Step, usize)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut pending: Vec<Option<Pending>> = (0..workers).map(|_| None).collect();
    let mut process_of: Vec<u64> = (0..workers as u64).collect();
    let mut next_process = workers as u64;
    let mut issued = 0usize;
    let mut appended: Vec<u64> = vec![0; keys];
    for w in 0..workers {
        seq += 1;
        queue.push(Reverse((rng.gen_range(0..1_000_000), seq, Step::Invoke, w)));
    }
    while let Some(Reverse((t, _, step, w))) = queue.pop() {
        match step {
            Step::Invoke => {
                if issued >= opts.ops {
                    continue;
                }
                issued += 1;
                let key = rng.gen_range(0..keys);
                let r: f64 = rng.gen();
                let v = rng.gen_range(0..opts.values.max(1));
                let (f, value) = if r < 0.5 {
                    ("read", Value::Null)
                } else if opts.appends {
                    appended[key] += 1;
                    ("append", json!(format!("{},", appended[key])))
                } else if r < 0.8 || !opts.cas {
                    ("write", json!(v))
                } else {
                    ("cas", json!([rng.gen_range(0..opts.values.max(1)), v]))
                };
                let outcome = if rng.gen_bool(opts.info_rate.clamp(0.0, 1.0)) {
                    EventType::Info
                } else {
                    EventType::Ok
                };
                events.push(Event {
                    index: events.len() as u64,
                    time: t,
                    process: Process::Client(process_of[w]),
                    kind: EventType::Invoke,
                    f: f.to_string(),
                    key: Some(format!("k{key}")),
                    value: value.clone(),
                    error: None,
                });
                pending[w] = Some(Pending {
                    process: process_of[w],
                    f,
                    key,
                    value,
                    result: None,
                    outcome,
                });
                seq += 1;
                queue.push(Reverse((
                    t + rng.gen_range(1..2_000_000),
                    seq,
                    Step::Apply,
                    w,
                )));
            }
            Step::Apply => {
                let Some(p) = pending[w].as_mut() else {
                    continue;
                };
                // Half of the uncertain operations never take effect.
                let happens = p.outcome == EventType::Ok || rng.gen_bool(0.5);
                let cur = &mut state[p.key];
                match p.f {
                    "read" => p.result = Some(cur.clone()),
                    "append" => {
                        if happens {
                            let so_far = cur.as_str().unwrap_or_default();
                            *cur =
                                json!(format!("{so_far}{}", p.value.as_str().unwrap_or_default()));
                        }
                    }
                    "write" => {
                        if happens {
                            *cur = p.value.clone();
                        }
                    }
                    _ => {
                        let (from, to) = (p.value[0].clone(), p.value[1].clone());
                        if *cur == from {
                            if happens {
                                *cur = to;
                            }
                        } else if p.outcome == EventType::Ok {
                            p.outcome = EventType::Fail;
                        }
                    }
                }
                seq += 1;
                queue.push(Reverse((
                    t + rng.gen_range(1..2_000_000),
                    seq,
                    Step::Complete,
                    w,
                )));
            }
            Step::Complete => {
                let Some(p) = pending[w].take() else { continue };
                let value = match (p.f, p.outcome) {
                    ("read", EventType::Ok) => p.result.unwrap_or(Value::Null),
                    ("read", _) => Value::Null,
                    _ => p.value,
                };
                events.push(Event {
                    index: events.len() as u64,
                    time: t,
                    process: Process::Client(p.process),
                    kind: p.outcome,
                    f: p.f.to_string(),
                    key: Some(format!("k{}", p.key)),
                    value,
                    error: (p.outcome == EventType::Info).then(|| "timeout".to_string()),
                });
                if p.outcome == EventType::Info {
                    process_of[w] = next_process;
                    next_process += 1;
                }
                seq += 1;
                queue.push(Reverse((
                    t + rng.gen_range(1..500_000),
                    seq,
                    Step::Invoke,
                    w,
                )));
            }
        }
    }
    events
}

/// Changes the value of one ok read (chosen by `seed`) to a value that was
/// never written, which makes any history non-linearizable. Returns the
/// event position changed, or `None` if there is no ok read.
pub fn corrupt_one_read(events: &mut [Event], seed: u64) -> Option<usize> {
    let reads: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == EventType::Ok && e.f == "read")
        .map(|(i, _)| i)
        .collect();
    if reads.is_empty() {
        return None;
    }
    let mut rng = SmallRng::seed_from_u64(seed);
    let i = reads[rng.gen_range(0..reads.len())];
    events[i].value = json!(-1_000_000_007i64);
    Some(i)
}
