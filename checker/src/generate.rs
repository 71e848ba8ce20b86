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
    /// An uncertain operation that takes effect does so up to this many
    /// nanoseconds after its completion (a write stuck in a crashed node's
    /// log, committed later); 0: within its interval, like ok ones.
    pub late_info_ns: u64,
    /// Keys `k0` .. that get one stale ok read each: it returns the value
    /// from before the latest operation acknowledged before the read was
    /// invoked (on append keys, always a violation).
    pub stale_keys: usize,
    /// A crash every this many nanoseconds (0: none): for `crash_ns` no
    /// operation takes effect on time; each one due then times out as
    /// info, and half of those take effect after the crash, in any order,
    /// within `late_info_ns` of its end (the new leader commits them).
    pub crash_every_ns: u64,
    /// How long each crash lasts.
    pub crash_ns: u64,
    /// The share of reads among the operations.
    pub read_fraction: f64,
    /// Keys in use at once (0: all of them from the start). Each is
    /// retired for the next fresh key after its share of the operations
    /// (`ops / keys`), as raft-driver's workload rotates its keys.
    pub active_keys: usize,
    /// raft-driver's mix: every third key (`k2`, `k5`, ...) an append key,
    /// the others registers (reads, writes and, with `cas`, cas).
    pub mixed: bool,
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
            late_info_ns: 0,
            stale_keys: 0,
            crash_every_ns: 0,
            crash_ns: 0,
            read_fraction: 0.5,
            active_keys: 0,
            mixed: false,
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
    /// An uncertain operation takes effect after its completion (the
    /// number is an index into the late operations, not a worker).
    Late,
}

struct Pending {
    process: u64,
    f: &'static str,
    key: usize,
    value: Value,
    result: Option<Value>,
    outcome: EventType,
    invoke_time: u64,
    /// An uncertain operation that will take effect after its completion.
    late: bool,
    /// No earlier than this (the end of the crash it was caught in).
    late_from: u64,
    /// The version of its key this operation created, if it changed it.
    created: Option<usize>,
}

/// What the key held after each change, for stale reads: a register's
/// value, or an append key's length (its values are prefixes of the last).
#[derive(Debug, Clone)]
enum Version {
    Value(Value),
    Len(Option<usize>),
}

/// Per-key bookkeeping for stale reads (only on keys that get one).
#[derive(Debug, Default)]
struct StaleKey {
    /// `versions[0]` is the initial value.
    versions: Vec<Version>,
    /// (completion time, version created) of acknowledged changes.
    acked: Vec<(u64, usize)>,
    /// The ordinal of the ok read that returns a stale value.
    target: Option<u64>,
    reads: u64,
}

/// Generates a history of a real execution (initial value of every key:
/// null): linearizable unless `stale_keys` asks for stale reads.
pub fn generate(opts: &GenOptions) -> Vec<Event> {
    let mut g = Sim::new(opts);
    while let Some(Reverse((t, _, step, w))) = g.queue.pop() {
        match step {
            Step::Invoke => g.invoke(t, w),
            Step::Apply => g.apply(t, w),
            Step::Complete => g.complete(t, w),
            Step::Late => g.late(w),
        }
    }
    g.events
}

/// The simulated execution behind [`generate`].
struct Sim<'a> {
    opts: &'a GenOptions,
    rng: SmallRng,
    keys: usize,
    state: Vec<Value>,
    events: Vec<Event>,
    queue: BinaryHeap<Reverse<(u64, u64, Step, usize)>>,
    seq: u64,
    pending: Vec<Option<Pending>>,
    late: Vec<Pending>,
    process_of: Vec<u64>,
    next_process: u64,
    issued: usize,
    appended: Vec<u64>,
    stale: Vec<StaleKey>,
    /// With `active_keys`: the keys in use, operations issued per key,
    /// and the next fresh key.
    active: Vec<usize>,
    issued_on: Vec<usize>,
    next_key: usize,
}

impl<'a> Sim<'a> {
    fn new(opts: &'a GenOptions) -> Self {
        let keys = opts.keys.max(1);
        let workers = opts.processes.max(1);
        let mut g = Sim {
            opts,
            rng: SmallRng::seed_from_u64(opts.seed),
            keys,
            state: vec![Value::Null; keys],
            events: Vec::with_capacity(opts.ops * 2),
            queue: BinaryHeap::new(),
            seq: 0,
            pending: (0..workers).map(|_| None).collect(),
            late: Vec::new(),
            process_of: (0..workers as u64).collect(),
            next_process: workers as u64,
            issued: 0,
            appended: vec![0; keys],
            stale: Vec::new(),
            active: (0..opts.active_keys.min(keys)).collect(),
            issued_on: vec![0; keys],
            next_key: opts.active_keys.min(keys),
        };
        for w in 0..workers {
            let t = g.rng.gen_range(0..1_000_000);
            g.schedule(t, Step::Invoke, w);
        }
        // The stale read falls in the second quarter of a key's reads.
        let reads_per_key = (opts.ops as f64 / keys as f64 * opts.read_fraction) as u64;
        for _ in 0..opts.stale_keys.min(keys) {
            let target = g.rng.gen_range(reads_per_key / 4..reads_per_key / 2 + 1);
            let initial = if g.append_key(g.stale.len()) {
                Version::Len(None)
            } else {
                Version::Value(Value::Null)
            };
            g.stale.push(StaleKey {
                versions: vec![initial],
                target: Some(target),
                ..StaleKey::default()
            });
        }
        g
    }

    /// Whether `key` takes appends rather than writes and cas.
    fn append_key(&self, key: usize) -> bool {
        self.opts.appends || (self.opts.mixed && key % 3 == 2)
    }

    /// The key of the next operation: any key, or with `active_keys` one
    /// of those in use, retired after its share of the operations.
    fn pick_key(&mut self) -> usize {
        if self.active.is_empty() {
            return self.rng.gen_range(0..self.keys);
        }
        let slot = self.rng.gen_range(0..self.active.len());
        let key = self.active[slot];
        self.issued_on[key] += 1;
        let share = self.opts.ops.div_ceil(self.keys).max(1);
        if self.issued_on[key] >= share && self.next_key < self.keys {
            self.active[slot] = self.next_key;
            self.next_key += 1;
        }
        key
    }

    /// The end of the crash under way at `t`, if one is.
    fn crash_end(&self, t: u64) -> Option<u64> {
        let every = self.opts.crash_every_ns;
        if every == 0 || t < every {
            return None;
        }
        let start = t / every * every;
        (t < start + self.opts.crash_ns).then_some(start + self.opts.crash_ns)
    }

    fn schedule(&mut self, t: u64, step: Step, w: usize) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, step, w)));
    }

    fn invoke(&mut self, t: u64, w: usize) {
        if self.issued >= self.opts.ops {
            return;
        }
        self.issued += 1;
        let opts = self.opts;
        let key = self.pick_key();
        let r: f64 = self.rng.gen();
        let v = self.rng.gen_range(0..opts.values.max(1));
        let (f, value) = if r < opts.read_fraction {
            ("read", Value::Null)
        } else if self.append_key(key) {
            self.appended[key] += 1;
            ("append", json!(format!("{},", self.appended[key])))
        } else if r < opts.read_fraction + (1.0 - opts.read_fraction) * 0.6 || !opts.cas {
            ("write", json!(v))
        } else {
            ("cas", json!([self.rng.gen_range(0..opts.values.max(1)), v]))
        };
        let outcome = if self.rng.gen_bool(opts.info_rate.clamp(0.0, 1.0)) {
            EventType::Info
        } else {
            EventType::Ok
        };
        self.events.push(Event {
            index: self.events.len() as u64,
            time: t,
            process: Process::Client(self.process_of[w]),
            kind: EventType::Invoke,
            f: f.to_string(),
            key: Some(format!("k{key}")),
            value: value.clone(),
            error: None,
        });
        self.pending[w] = Some(Pending {
            process: self.process_of[w],
            f,
            key,
            value,
            result: None,
            outcome,
            invoke_time: t,
            late: false,
            late_from: 0,
            created: None,
        });
        let at = t + self.rng.gen_range(1..2_000_000);
        self.schedule(at, Step::Apply, w);
    }

    fn apply(&mut self, t: u64, w: usize) {
        let Some(mut p) = self.pending[w].take() else {
            return;
        };
        let crash_end = self.crash_end(t);
        if crash_end.is_some() {
            p.outcome = EventType::Info;
        }
        // Half of the uncertain operations never take effect.
        let happens = p.outcome == EventType::Ok || self.rng.gen_bool(0.5);
        if let (Some(end), true, false) = (crash_end, happens, p.f == "read") {
            p.late = true;
            p.late_from = end;
        } else if p.f == "read" {
            p.result = Some(self.read(&p));
        } else if happens && p.outcome == EventType::Info && self.opts.late_info_ns > 0 {
            p.late = true;
        } else {
            let changed = self.effect(&p, happens);
            if !changed && p.f == "cas" && p.outcome == EventType::Ok {
                p.outcome = EventType::Fail;
            }
            if changed {
                p.created = self.record_version(p.key);
            }
        }
        self.pending[w] = Some(p);
        // Caught in a crash, the client waits for its timeout.
        let wait = match crash_end {
            Some(_) => self.rng.gen_range(1..self.opts.crash_ns / 2 + 2),
            None => self.rng.gen_range(1..2_000_000),
        };
        self.schedule(t + wait, Step::Complete, w);
    }

    /// What a read returns: the current value, or for the chosen stale
    /// read, the value before the latest change acknowledged before it
    /// began.
    fn read(&mut self, p: &Pending) -> Value {
        let current = self.state[p.key].clone();
        let Some(sk) = self.stale.get_mut(p.key) else {
            return current;
        };
        if p.outcome != EventType::Ok {
            return current;
        }
        sk.reads += 1;
        if sk.target.is_none_or(|n| sk.reads < n) {
            return current;
        }
        let Some(&(_, v)) = sk.acked.iter().rev().find(|(c, _)| *c < p.invoke_time) else {
            // Nothing acknowledged yet: the next read then.
            return current;
        };
        sk.target = None;
        match &sk.versions[v - 1] {
            Version::Value(old) => old.clone(),
            Version::Len(None) => Value::Null,
            Version::Len(Some(n)) => json!(current.as_str().unwrap_or_default()[..*n]),
        }
    }

    /// Applies a write, cas or append to its key if it `happens`; whether
    /// the key changed (a cas whose expected value is not there does not).
    fn effect(&mut self, p: &Pending, happens: bool) -> bool {
        let cur = &mut self.state[p.key];
        match p.f {
            "append" => {
                if happens {
                    let so_far = cur.as_str().unwrap_or_default();
                    *cur = json!(format!("{so_far}{}", p.value.as_str().unwrap_or_default()));
                }
                happens
            }
            "write" => {
                if happens {
                    *cur = p.value.clone();
                }
                happens
            }
            _ => {
                let (from, to) = (p.value[0].clone(), p.value[1].clone());
                if *cur != from {
                    return false;
                }
                if happens {
                    *cur = to;
                }
                // An uncertain cas that did not happen did not fail either.
                happens || p.outcome != EventType::Ok
            }
        }
    }

    fn record_version(&mut self, key: usize) -> Option<usize> {
        let append = self.append_key(key);
        let sk = self.stale.get_mut(key)?;
        let now = &self.state[key];
        sk.versions.push(match now {
            Value::String(s) if append => Version::Len(Some(s.len())),
            v => Version::Value(v.clone()),
        });
        Some(sk.versions.len() - 1)
    }

    fn complete(&mut self, t: u64, w: usize) {
        let Some(p) = self.pending[w].take() else {
            return;
        };
        let value = match (p.f, p.outcome) {
            ("read", EventType::Ok) => p.result.clone().unwrap_or(Value::Null),
            ("read", _) => Value::Null,
            _ => p.value.clone(),
        };
        self.events.push(Event {
            index: self.events.len() as u64,
            time: t,
            process: Process::Client(p.process),
            kind: p.outcome,
            f: p.f.to_string(),
            key: Some(format!("k{}", p.key)),
            value,
            error: (p.outcome == EventType::Info).then(|| "timeout".to_string()),
        });
        if p.outcome == EventType::Info {
            self.process_of[w] = self.next_process;
            self.next_process += 1;
        }
        if p.outcome == EventType::Ok {
            if let (Some(v), Some(sk)) = (p.created, self.stale.get_mut(p.key)) {
                sk.acked.push((t, v));
            }
        }
        if p.late {
            let at = t.max(p.late_from) + self.rng.gen_range(0..self.opts.late_info_ns.max(1));
            self.late.push(p);
            let id = self.late.len() - 1;
            self.schedule(at, Step::Late, id);
        }
        let at = t + self.rng.gen_range(1..500_000);
        self.schedule(at, Step::Invoke, w);
    }

    /// An uncertain operation taking effect after its completion.
    fn late(&mut self, id: usize) {
        let p = std::mem::replace(
            &mut self.late[id],
            Pending {
                process: 0,
                f: "read",
                key: 0,
                value: Value::Null,
                result: None,
                outcome: EventType::Info,
                invoke_time: 0,
                late: false,
                late_from: 0,
                created: None,
            },
        );
        if self.effect(&p, true) {
            self.record_version(p.key);
        }
    }
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
