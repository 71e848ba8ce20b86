//! The workload generator: a seeded stream of read / write / cas / append
//! operations over rotating keys, and a rate limiter.
//!
//! Like Jepsen's independent keys, each key gets a bounded number of
//! operations and is then retired for a fresh one, so every per-key history
//! stays small and quick to check. Written values are unique per key
//! (1, 2, 3, ... for registers, "1,", "2,", ... for appends), so a read
//! names the write it saw.

use crate::workload::op::{KeyKind, Op, F};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::Instant;

/// Workload shape.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratorConfig {
    /// Operations issued on one key before it is retired.
    pub ops_per_key: u64,
    /// Keys in use at once.
    pub active_keys: usize,
    /// Share of reads among operations on a key, in [0, 1].
    pub read_fraction: f64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            ops_per_key: 200,
            active_keys: 6,
            read_fraction: 0.5,
        }
    }
}

#[derive(Debug)]
struct KeyState {
    name: String,
    kind: KeyKind,
    issued: u64,
    /// Values handed out for writes / cas / appends so far.
    last_value: u64,
}

/// Seeded generator of operations over rotating keys.
#[derive(Debug)]
pub struct Generator {
    rng: SmallRng,
    cfg: GeneratorConfig,
    active: Vec<KeyState>,
    next_key: u64,
    all_keys: Vec<(String, KeyKind)>,
}

impl Generator {
    /// A generator whose stream depends only on `seed` and `cfg`.
    pub fn new(seed: u64, cfg: GeneratorConfig) -> Self {
        let mut g = Generator {
            rng: SmallRng::seed_from_u64(seed),
            cfg,
            active: Vec::new(),
            next_key: 0,
            all_keys: Vec::new(),
        };
        for _ in 0..g.cfg.active_keys.max(1) {
            let k = g.fresh_key();
            g.active.push(k);
        }
        g
    }

    fn fresh_key(&mut self) -> KeyState {
        let id = self.next_key;
        self.next_key += 1;
        // Every third key is an append key; the rest are registers.
        let kind = if id % 3 == 2 {
            KeyKind::Append
        } else {
            KeyKind::Register
        };
        let name = match kind {
            KeyKind::Register => format!("r{id}"),
            KeyKind::Append => format!("a{id}"),
        };
        self.all_keys.push((name.clone(), kind));
        KeyState {
            name,
            kind,
            issued: 0,
            last_value: 0,
        }
    }

    /// The next operation.
    pub fn next_op(&mut self) -> Op {
        let slot = self.rng.gen_range(0..self.active.len());
        let read = self.rng.gen_bool(self.cfg.read_fraction.clamp(0.0, 1.0));
        let choice: f64 = self.rng.gen();
        let k = &mut self.active[slot];
        k.issued += 1;
        let op = if read {
            Op {
                f: F::Read,
                key: k.name.clone(),
                kind: k.kind,
                value: Value::Null,
            }
        } else {
            match k.kind {
                KeyKind::Append => {
                    k.last_value += 1;
                    Op {
                        f: F::Append,
                        key: k.name.clone(),
                        kind: k.kind,
                        value: Value::String(format!("{},", k.last_value)),
                    }
                }
                KeyKind::Register if choice < 0.5 => {
                    k.last_value += 1;
                    Op {
                        f: F::Write,
                        key: k.name.clone(),
                        kind: k.kind,
                        value: json!(k.last_value),
                    }
                }
                KeyKind::Register => {
                    // Expect the latest value handed out most of the time (a
                    // cas that usually succeeds), else an older one or absent
                    // (a cas that usually fails): both outcomes get exercised.
                    let expected = if k.last_value == 0 || choice > 0.9 {
                        Value::Null
                    } else if choice < 0.8 {
                        json!(k.last_value)
                    } else {
                        json!(1 + (k.last_value * 7919 + k.issued) % k.last_value)
                    };
                    k.last_value += 1;
                    Op {
                        f: F::Cas,
                        key: k.name.clone(),
                        kind: k.kind,
                        value: json!([expected, k.last_value]),
                    }
                }
            }
        };
        if self.active[slot].issued >= self.cfg.ops_per_key {
            let fresh = self.fresh_key();
            self.active[slot] = fresh;
        }
        op
    }

    /// Every key handed out so far, in order of first use.
    pub fn keys(&self) -> &[(String, KeyKind)] {
        &self.all_keys
    }
}

/// Spaces operations evenly at a total rate across all workers.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Option<Duration>,
    next: std::sync::Mutex<Instant>,
}

impl RateLimiter {
    /// A limiter for `ops_per_sec` in total; None or 0 means unlimited.
    pub fn new(ops_per_sec: Option<f64>) -> Self {
        let interval = ops_per_sec
            .filter(|r| *r > 0.0)
            .map(|r| Duration::from_secs_f64(1.0 / r));
        RateLimiter {
            interval,
            next: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// Waits for the next slot.
    pub async fn acquire(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            // A limiter idle for a while does not bank a burst.
            let slot = (*next).max(now);
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn same_seed_same_stream() {
        let mut a = Generator::new(42, GeneratorConfig::default());
        let mut b = Generator::new(42, GeneratorConfig::default());
        for _ in 0..1000 {
            assert_eq!(a.next_op(), b.next_op());
        }
    }

    #[test]
    fn written_values_are_unique_per_key() {
        let mut g = Generator::new(1, GeneratorConfig::default());
        let mut seen: HashMap<String, HashSet<String>> = HashMap::new();
        for _ in 0..5000 {
            let op = g.next_op();
            let written = match op.f {
                F::Read => continue,
                F::Write | F::Append => op.value.to_string(),
                F::Cas => op.value[1].to_string(),
            };
            assert!(
                seen.entry(op.key.clone())
                    .or_default()
                    .insert(written.clone()),
                "{written} written twice on {}",
                op.key
            );
        }
    }

    #[test]
    fn each_key_gets_at_most_ops_per_key_operations() {
        let cfg = GeneratorConfig {
            ops_per_key: 30,
            active_keys: 4,
            read_fraction: 0.5,
        };
        let mut g = Generator::new(3, cfg);
        let mut per_key: HashMap<String, u64> = HashMap::new();
        for _ in 0..3000 {
            *per_key.entry(g.next_op().key).or_default() += 1;
        }
        assert!(per_key.values().all(|&n| n <= 30));
        assert!(per_key.len() >= 3000 / 30);
        assert_eq!(g.keys().len(), per_key.len().max(g.keys().len()));
    }

    #[test]
    fn keys_are_used_for_one_kind_and_every_f_appears() {
        let mut g = Generator::new(9, GeneratorConfig::default());
        let mut fs = HashSet::new();
        for _ in 0..2000 {
            let op = g.next_op();
            fs.insert(op.f);
            match op.f {
                F::Append => assert_eq!(op.kind, KeyKind::Append),
                F::Write | F::Cas => assert_eq!(op.kind, KeyKind::Register),
                F::Read => {}
            }
            assert_eq!(op.key.starts_with('a'), op.kind == KeyKind::Append);
        }
        assert_eq!(fs.len(), 4, "{fs:?}");
    }

    #[tokio::test]
    async fn rate_limiter_spaces_operations() {
        let rl = RateLimiter::new(Some(100.0));
        let start = Instant::now();
        for _ in 0..11 {
            rl.acquire().await;
        }
        // 11 slots at 100/s span at least 100 ms; only a lower bound is
        // asserted (an upper bound would be flaky on busy machines).
        assert!(start.elapsed() >= Duration::from_millis(95));
    }
}
