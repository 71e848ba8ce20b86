//! Clock faults: the wall and monotonic clocks of chosen nodes run fast or
//! slow (skew), step forward or back (jump), or step back and forth again
//! and again (strobe), through each node's libfaketime control file
//! ([`crate::machine::clocks`]); the stop sets them true again (a step
//! back to real time). Every choice is in the schedule, so `replay`
//! repeats it; what each node's clock was set to is in the history.
//!
//! A leader that serves reads from a time lease trusts its clock: one that
//! runs slow, or steps back, holds its lease after the others elected a
//! new leader.

use super::schedule::{FaultOp, NemesisKind};
use super::{resolve, Nemesis, NemesisCtx};
use crate::machine::clocks::{ClockSetting, Clocks};
use crate::machine::Machine;
use crate::target::cluster::Cluster;
use crate::workload::client::BoxFuture;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// What a clock fault does, as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum ClockChange {
    /// Run at `rate` times real speed from now on, without a step.
    Skew {
        /// Speed relative to real time.
        rate: f64,
    },
    /// Step the clock by `by_ms` (negative: back).
    Jump {
        /// The step, in ms.
        by_ms: i64,
    },
    /// Step by `by_ms`, then back, every `period_ms`, until the stop.
    Strobe {
        /// The step, in ms.
        by_ms: i64,
        /// Time between steps, in real ms.
        period_ms: u64,
    },
}

/// Rates a skew draws from (slow clocks make a lease outlive its term;
/// fast ones make followers time out early).
const RATES: [f64; 6] = [0.5, 0.67, 0.8, 1.5, 2.0, 3.0];

impl ClockChange {
    /// A seeded change.
    pub fn draw(rng: &mut SmallRng) -> ClockChange {
        let sign = if rng.gen_bool(0.5) { 1 } else { -1 };
        match rng.gen_range(0..3) {
            0 => ClockChange::Skew {
                rate: *RATES.choose(rng).expect("non-empty"),
            },
            1 => ClockChange::Jump {
                by_ms: sign * rng.gen_range(500..=5_000),
            },
            _ => ClockChange::Strobe {
                by_ms: sign * rng.gen_range(200..=2_000),
                period_ms: rng.gen_range(50..=500),
            },
        }
    }
}

/// Strobe steps at most (a bound on the loop; a 5 s strobe at the fastest
/// period takes 100).
const MAX_STROBE_STEPS: u64 = 100_000;

/// A strobe in progress.
struct Strobe {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<u64>,
}

/// The clock nemesis.
#[derive(Default)]
pub struct ClockNemesis {
    touched: BTreeSet<u64>,
    strobe: Option<Strobe>,
}

/// How long node `id`'s process has run (0 if it is down: a process
/// started later reads the file from its own start).
fn age_s(cluster: &Mutex<Cluster>, id: u64) -> f64 {
    cluster
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .started_at(id)
        .map_or(0.0, |t| t.elapsed().as_secs_f64())
}

/// Sets node `id`'s clock to `f(current setting, age)`; the value for the
/// history.
pub(crate) fn change(
    clocks: &Clocks,
    cluster: &Mutex<Cluster>,
    id: u64,
    f: impl Fn(ClockSetting, f64) -> ClockSetting,
) -> Value {
    let age = age_s(cluster, id);
    let before = clocks.setting(id);
    let s = f(before, age);
    match clocks.set(id, s) {
        Ok(()) => json!({
            "node": id,
            "setting": s,
            "skew_s": s.skew_at(age),
            "skew_before_s": before.skew_at(age),
        }),
        Err(e) => json!({"node": id, "error": format!("{e:#}")}),
    }
}

/// Steps the clocks of `nodes` by `by_s` and back every `period` until
/// `stop`; returns how many steps it made.
async fn strobe(
    machine: Arc<Machine>,
    cluster: Arc<Mutex<Cluster>>,
    nodes: Vec<u64>,
    by_s: f64,
    period: Duration,
    mut stop: watch::Receiver<bool>,
) -> u64 {
    let Some(clocks) = machine.clocks.as_ref() else {
        return 0;
    };
    let mut steps = 0;
    while steps < MAX_STROBE_STEPS {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let by = if steps % 2 == 0 { by_s } else { -by_s };
        for &id in &nodes {
            change(clocks, &cluster, id, |s, _| s.stepped(by));
        }
        steps += 1;
    }
    steps
}

impl ClockNemesis {
    async fn stop_strobe(&mut self) -> Option<u64> {
        let s = self.strobe.take()?;
        let _ = s.stop.send(true);
        s.task.await.ok()
    }

    async fn start(&mut self, ctx: &NemesisCtx, nodes: &[u64], c: &ClockChange) -> Value {
        let Some(clocks) = ctx.machine.clocks.as_ref() else {
            return json!({"error": "the nodes were not started under libfaketime"});
        };
        // A change while a strobe runs replaces it.
        let stopped_strobe = self.stop_strobe().await;
        self.touched.extend(nodes);
        let set: Vec<Value> = nodes
            .iter()
            .map(|&id| match c {
                ClockChange::Skew { rate } => {
                    change(clocks, &ctx.cluster, id, |s, age| s.with_rate(age, *rate))
                }
                ClockChange::Jump { by_ms } | ClockChange::Strobe { by_ms, .. } => {
                    change(clocks, &ctx.cluster, id, |s, _| {
                        s.stepped(*by_ms as f64 / 1000.0)
                    })
                }
            })
            .collect();
        if let ClockChange::Strobe { by_ms, period_ms } = c {
            let (stop, rx) = watch::channel(false);
            let task = tokio::spawn(strobe(
                ctx.machine.clone(),
                ctx.cluster.clone(),
                nodes.to_vec(),
                // The first step was made above; the strobe steps back first.
                -(*by_ms as f64) / 1000.0,
                Duration::from_millis((*period_ms).max(1)),
                rx,
            ));
            self.strobe = Some(Strobe { stop, task });
        }
        json!({"nodes": nodes, "change": c, "set": set, "replaced_strobe_steps": stopped_strobe})
    }

    async fn stop(&mut self, ctx: &NemesisCtx) -> Value {
        let strobe_steps = self.stop_strobe().await;
        let Some(clocks) = ctx.machine.clocks.as_ref() else {
            return json!({"nodes": []});
        };
        let nodes: Vec<u64> = std::mem::take(&mut self.touched).into_iter().collect();
        let set: Vec<Value> = nodes
            .iter()
            .map(|&id| change(clocks, &ctx.cluster, id, |_, _| ClockSetting::TRUE))
            .collect();
        json!({"nodes": nodes, "strobe_steps": strobe_steps, "set": set})
    }
}

impl Nemesis for ClockNemesis {
    fn kind(&self) -> NemesisKind {
        NemesisKind::Clock
    }

    fn invoke<'a>(&'a mut self, ctx: &'a NemesisCtx, op: &'a FaultOp) -> BoxFuture<'a, Value> {
        Box::pin(async move {
            match op {
                FaultOp::StartClock {
                    target,
                    nodes,
                    change,
                } => {
                    let nodes = resolve(ctx, *target, nodes).await;
                    let mut v = self.start(ctx, &nodes, change).await;
                    v["target"] = json!(target);
                    v
                }
                _ => self.stop(ctx).await,
            }
        })
    }

    fn teardown<'a>(&'a mut self, ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if !self.touched.is_empty() || self.strobe.is_some() {
                let v = self.stop(ctx).await;
                tracing::info!("clock teardown: {v}");
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::await_holding_lock)]
mod tests {
    use super::*;
    use crate::machine::clocks::{faketime_file, libfaketime};
    use crate::nemesis::schedule::Target;
    use crate::target::cluster::tests::serial;
    use rand::SeedableRng;

    fn file(dir: &std::path::Path, id: u64) -> String {
        std::fs::read_to_string(faketime_file(dir, id)).unwrap()
    }

    #[tokio::test]
    async fn skew_strobe_and_stop_rewrite_only_the_chosen_nodes_clock_files() {
        if let Err(why) = libfaketime() {
            eprintln!("skipped: {why}");
            return;
        }
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = crate::nemesis::tests::unstarted_ctx(dir.path()).await;
        ctx.machine = Arc::new(Machine {
            disks: None,
            clocks: Some(Clocks::create(dir.path(), &[1, 2, 3]).unwrap()),
        });
        let mut n = ClockNemesis::default();
        let v = n
            .invoke(
                &ctx,
                &FaultOp::StartClock {
                    target: Target::One,
                    nodes: Some(vec![2]),
                    change: ClockChange::Skew { rate: 3.0 },
                },
            )
            .await;
        assert_eq!(v["nodes"], json!([2]), "{v}");
        assert!(file(dir.path(), 2).ends_with(" x3.000000\n"));
        assert_eq!(file(dir.path(), 1), ClockSetting::TRUE.file_text());

        // A strobe replaces the skew's setting by steps around it.
        let v = n
            .invoke(
                &ctx,
                &FaultOp::StartClock {
                    target: Target::One,
                    nodes: Some(vec![3]),
                    change: ClockChange::Strobe {
                        by_ms: 1500,
                        period_ms: 20,
                    },
                },
            )
            .await;
        assert_eq!(v["set"][0]["setting"]["offset_s"], json!(1.5), "{v}");
        let v = n.invoke(&ctx, &FaultOp::StopClock).await;
        assert_eq!(v["nodes"], json!([2, 3]), "{v}");
        for id in 1..=3 {
            assert_eq!(file(dir.path(), id), ClockSetting::TRUE.file_text());
        }
    }

    /// The last wall-clock reading a clock-printing stand-in node logged.
    fn last_reading(log: &std::path::Path) -> f64 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        text.lines()
            .rev()
            .find_map(|l| l.trim().parse::<f64>().ok())
            .expect("the stand-in node printed its clock")
    }

    fn now_s() -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    }

    #[tokio::test]
    async fn a_node_under_libfaketime_sees_its_clock_skewed_restored_and_stepped_back() {
        if let Err(why) = libfaketime() {
            eprintln!("skipped: {why}");
            return;
        }
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = crate::nemesis::tests::unstarted_ctx(dir.path()).await;
        let clocks = Clocks::create(dir.path(), &[1]).unwrap();
        // A long-lived python3 reads the wall clock through libc's
        // clock_gettime, as a node does (bash's $EPOCHREALTIME was measured
        // not to follow libfaketime's file); a rate applies within a process.
        if std::process::Command::new("python3")
            .arg("-c")
            .arg("")
            .status()
            .is_err()
        {
            eprintln!("skipped: python3 (the clock probe) is missing");
            return;
        }
        let script = dir.path().join("clock-node.py");
        std::fs::write(
            &script,
            "#!/usr/bin/env python3\nimport time\nwhile True:\n    print(repr(time.time()), flush=True)\n    time.sleep(0.02)\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (data_dir, log_path) = crate::target::cluster::node_paths(dir.path(), 1);
        std::fs::create_dir_all(log_path.parent().unwrap()).unwrap();
        let spec = crate::target::cluster::NodeSpec {
            id: 1,
            listen: "127.0.0.1:1".parse().unwrap(),
            peers: Default::default(),
            data_dir,
            log_path: log_path.clone(),
            env: clocks.node_env().remove(&1).unwrap(),
            boot: 0,
        };
        ctx.cluster = Arc::new(Mutex::new(Cluster::new(
            script,
            vec![spec],
            crate::target::raft::command_line(Vec::new()),
        )));
        ctx.machine = Arc::new(Machine {
            disks: None,
            clocks: Some(clocks),
        });
        ctx.cluster().start_all().unwrap();
        // Python takes a moment to start; then readings come every 20 ms.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::fs::read_to_string(&log_path).map_or(true, |t| !t.contains('\n')) {
            assert!(
                std::time::Instant::now() < deadline,
                "the probe never printed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let settle = || tokio::time::sleep(Duration::from_millis(300));
        assert!(
            (last_reading(&log_path) - now_s()).abs() < 1.0,
            "a true clock at start"
        );

        let mut n = ClockNemesis::default();
        let skew = |c| FaultOp::StartClock {
            target: Target::One,
            nodes: Some(vec![1]),
            change: c,
        };
        let before = last_reading(&log_path);
        n.invoke(&ctx, &skew(ClockChange::Skew { rate: 3.0 })).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let gained = last_reading(&log_path) - before;
        // 2 s of real time at x3 read as about 6 s (x1 would read 2); no
        // step at the change, so far less than the process's whole life
        // rescaled on top.
        assert!(
            (4.0..8.0).contains(&gained),
            "the clock advanced {gained} s in 2 s at x3"
        );

        n.invoke(&ctx, &FaultOp::StopClock).await;
        settle().await;
        let off = last_reading(&log_path) - now_s();
        assert!(
            off.abs() < 1.0,
            "the stop sets the clock true again: {off} s off"
        );

        n.invoke(&ctx, &skew(ClockChange::Jump { by_ms: -3_000 }))
            .await;
        settle().await;
        let off = last_reading(&log_path) - now_s();
        assert!((-4.0..-2.0).contains(&off), "a 3 s step back: {off} s off");
        n.teardown(&ctx).await;
        ctx.cluster().shutdown();
    }

    #[test]
    fn drawn_changes_stay_within_their_bounds() {
        let mut rng = SmallRng::seed_from_u64(3);
        for _ in 0..500 {
            match ClockChange::draw(&mut rng) {
                ClockChange::Skew { rate } => assert!((0.5..=3.0).contains(&rate)),
                ClockChange::Jump { by_ms } => {
                    assert!((500..=5_000).contains(&by_ms.abs()))
                }
                ClockChange::Strobe { by_ms, period_ms } => {
                    assert!((200..=2_000).contains(&by_ms.abs()));
                    assert!((50..=500).contains(&period_ms));
                }
            }
        }
    }
}
