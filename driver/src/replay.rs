//! The `replay DIR` command: run again with a recorded run's options, seed
//! and fault schedule (the same faults at the same offsets, aimed at the
//! same nodes), into a new folder, and print both verdicts side by side.
//!
//! test.json holds the options and the planned schedule; the history holds
//! what each fault resolved to when it was applied (e.g. "isolate the
//! leader" became the groups [[2],[1,3]]). The replayed schedule is the
//! planned one with every recorded resolution substituted, so the replay
//! aims at the same concrete nodes whoever leads this time.

use crate::nemesis::schedule::{Aim, Cut, FaultOp, Schedule, ScheduledFault};
use crate::run::options::RunArgs;
use crate::run::{self, RunOutcome, RunPlan};
use anyhow::{anyhow, Context, Result};
use clap::{Args, Parser};
use raft_checker::Validity;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Command-line options of `raft-driver replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// The recorded run folder (holding test.json and history.jsonl).
    pub dir: PathBuf,
    /// Folder receiving the new run (default: the recorded run's parent).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// The raft-node binary (default: the recorded one if it still
    /// exists, else next to raft-driver).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Seconds the checker may search (default: as recorded).
    #[arg(long)]
    pub check_time_limit: Option<f64>,
}

#[derive(Parser)]
struct RunCmd {
    #[command(flatten)]
    run: RunArgs,
}

/// Seconds of a serialized `Duration` (`{"secs": S, "nanos": N}`).
fn secs(v: &Value) -> Option<f64> {
    Some(v.get("secs")?.as_f64()? + v.get("nanos")?.as_f64()? / 1e9)
}

fn names(v: &Value) -> Option<String> {
    let list: Vec<&str> = v.as_array()?.iter().filter_map(Value::as_str).collect();
    Some(if list.is_empty() {
        "none".into()
    } else {
        list.join(",")
    })
}

/// Rebuilds `run`'s command-line options from test.json's `options` and
/// `seed`, so that the replay passes the same validation as any run.
pub fn run_argv(test: &Value) -> Result<Vec<String>> {
    let o = test
        .get("options")
        .ok_or_else(|| anyhow!("test.json has no \"options\""))?;
    let seed = test["seed"]
        .as_u64()
        .or(o["seed"].as_u64())
        .ok_or_else(|| anyhow!("test.json has no seed"))?;
    let mut a: Vec<String> = vec!["run".into(), "--seed".into(), seed.to_string()];
    let mut push = |flag: &str, v: Option<String>| {
        if let Some(v) = v {
            a.push(format!("--{flag}={v}"));
        }
    };
    push("nodes", o["nodes"].as_u64().map(|v| v.to_string()));
    push("time-limit", secs(&o["time_limit"]).map(|v| v.to_string()));
    push(
        "concurrency",
        o["concurrency"].as_u64().map(|v| v.to_string()),
    );
    push("rate", o["rate"].as_f64().map(|v| v.to_string()));
    push("nemesis", names(&o["nemesis"]));
    push("partition-shapes", names(&o["partition_shapes"]));
    push(
        "nemesis-interval",
        secs(&o["nemesis_interval"]).map(|v| v.to_string()),
    );
    push("bug", o["bug"].as_str().map(str::to_string));
    // The system under test and how it is attacked: without these a replay
    // of an etcd (or serial) run would quietly run something else.
    push("target", o["target"].as_str().map(str::to_string));
    push(
        "read-consistency",
        o["read_consistency"].as_str().map(str::to_string),
    );
    push("schedule", o["schedule"].as_str().map(str::to_string));
    push(
        "op-timeout-ms",
        secs(&o["op_timeout"]).map(|v| ((v * 1000.0).round() as u64).to_string()),
    );
    push(
        "ops-per-key",
        o["workload"]["ops_per_key"].as_u64().map(|v| v.to_string()),
    );
    push(
        "active-keys",
        o["workload"]["active_keys"].as_u64().map(|v| v.to_string()),
    );
    push(
        "read-fraction",
        o["workload"]["read_fraction"]
            .as_f64()
            .map(|v| v.to_string()),
    );
    push(
        "election-timeout-ms",
        o["election_timeout_ms"].as_u64().map(|v| v.to_string()),
    );
    push(
        "heartbeat-ms",
        o["heartbeat_ms"].as_u64().map(|v| v.to_string()),
    );
    push(
        "cluster-id",
        o["cluster_id"].as_u64().map(|v| v.to_string()),
    );
    push(
        "recovery-timeout",
        secs(&o["recovery_timeout"]).map(|v| v.to_string()),
    );
    push(
        "check-time-limit",
        secs(&o["check_time_limit"]).map(|v| v.to_string()),
    );
    for na in o["node_args"].as_array().into_iter().flatten() {
        if let Some(na) = na.as_str() {
            a.push(format!("--node-arg={na}"));
        }
    }
    if o["sever_on_partition"].as_bool() == Some(true) {
        a.push("--sever-on-partition".into());
    }
    if o["tls"].as_bool() == Some(true) {
        a.push("--tls".into());
    }
    Ok(a)
}

/// The schedule the recorded run applied: test.json's planned schedule with
/// each operation replaced by what the history says it resolved to.
pub fn recorded_schedule(test: &Value, history: &[Value]) -> Result<Schedule> {
    let planned: Schedule = serde_json::from_value(
        test.get("schedule")
            .cloned()
            .ok_or_else(|| anyhow!("test.json has no \"schedule\""))?,
    )
    .context("test.json's schedule")?;
    let applied: Vec<&Value> = history
        .iter()
        .filter(|e| e["process"] == "nemesis")
        .collect();
    let mut events = Vec::with_capacity(planned.events.len());
    for ev in planned.events {
        let seen = applied.iter().find(|h| {
            h["f"].as_str() == Some(ev.op.f())
                && h["value"]["scheduled_at_ms"].as_u64() == Some(ev.at_ms)
        });
        let (op, aim) = match seen {
            // Aimed by role: the recorded leader's place goes to the
            // replayed cluster's leader when it is applied.
            Some(h) => (
                resolve(&ev.op, &h["value"]),
                h["value"]["leader_at_start"]
                    .as_u64()
                    .map(|leader| Aim { leader }),
            ),
            // Never applied (the run ended first): replay as planned.
            None => (ev.op, None),
        };
        events.push(ScheduledFault {
            at_ms: ev.at_ms,
            op,
            aim,
        });
    }
    Ok(Schedule { events })
}

/// The leader when the recorded run's workload started (the history's
/// first entry says, since this round; older recordings do not).
pub fn initial_leader(history: &[Value]) -> Option<u64> {
    start_value(history).and_then(|v| v["leader"].as_u64())
}

/// The value of the history's first entry (the driver's start of run).
fn start_value(history: &[Value]) -> Option<&Value> {
    history
        .iter()
        .find(|e| e["f"] == raft_checker::verdict::completeness::START_OF_RUN)
        .map(|e| &e["value"])
}

fn node_list(v: &Value) -> Option<Vec<u64>> {
    v.as_array()?.iter().map(Value::as_u64).collect()
}

/// `op` aimed at the concrete nodes the recorded value names.
fn resolve(op: &FaultOp, value: &Value) -> FaultOp {
    match op {
        FaultOp::StartPartition { shape, cut } => {
            let blocked: Option<Vec<(u64, u64)>> = value["blocked"].as_array().and_then(|a| {
                a.iter()
                    .map(|l| Some((l.get(0)?.as_u64()?, l.get(1)?.as_u64()?)))
                    .collect()
            });
            let groups: Option<Vec<Vec<u64>>> = value["groups"]
                .as_array()
                .and_then(|g| g.iter().map(node_list).collect());
            match blocked {
                Some(blocked) => FaultOp::StartPartition {
                    shape: *shape,
                    cut: Some(Cut { groups, blocked }),
                },
                None => FaultOp::StartPartition {
                    shape: *shape,
                    cut: cut.clone(),
                },
            }
        }
        FaultOp::StartPause { target, nodes } => FaultOp::StartPause {
            target: *target,
            nodes: node_list(&value["nodes"]).or_else(|| nodes.clone()),
        },
        FaultOp::StartKill { target, nodes } => FaultOp::StartKill {
            target: *target,
            nodes: node_list(&value["nodes"]).or_else(|| nodes.clone()),
        },
        FaultOp::StartTransfer { to } => FaultOp::StartTransfer {
            to: value["to"].as_u64().unwrap_or(*to),
        },
        FaultOp::StartMembership {
            node,
            also,
            transfer_first,
            isolate_leader,
            race_split_ms,
        } => FaultOp::StartMembership {
            node: value["node"].as_u64().unwrap_or(*node),
            also: node_list(&value["also"]).unwrap_or_else(|| also.clone()),
            transfer_first: *transfer_first,
            isolate_leader: *isolate_leader,
            race_split_ms: *race_split_ms,
        },
        FaultOp::StartPowerCut {
            target,
            nodes,
            mode,
        } => FaultOp::StartPowerCut {
            target: *target,
            nodes: node_list(&value["nodes"]).or_else(|| nodes.clone()),
            mode: *mode,
        },
        FaultOp::StartClock {
            target,
            nodes,
            change,
        } => FaultOp::StartClock {
            target: *target,
            nodes: node_list(&value["nodes"]).or_else(|| nodes.clone()),
            change: change.clone(),
        },
        FaultOp::StartVoteCrash {
            node,
            restart_after_ms,
        } => FaultOp::StartVoteCrash {
            node: value["node"].as_u64().or(*node),
            restart_after_ms: restart_after_ms.clone(),
        },
        other => other.clone(),
    }
}

/// Reads a history file as JSON values (a torn last line is ignored); a
/// `.zst` one is decompressed (a damaged one is an error, not a shorter
/// history).
fn read_history(path: &Path) -> Result<Vec<Value>> {
    let bytes = raft_checker::compressed::read_all(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// The run's history: history.jsonl, or history.jsonl.zst once checked.
fn history_file(dir: &Path) -> PathBuf {
    raft_checker::compressed::existing(&dir.join("history.jsonl"))
}

/// A replay ready to run: the configuration, the plan and the original's
/// verdict.
pub struct Prepared {
    /// The new run's configuration.
    pub cfg: crate::run::options::RunConfig,
    /// The recorded schedule.
    pub plan: RunPlan,
    /// The original's results.json `valid` (true, false, "unknown"), if any.
    pub original_valid: Value,
    /// The original's op count, if known.
    pub original_ops: Option<u64>,
}

/// Reads the recorded run and builds the replay (no process is started).
pub fn prepare(args: &ReplayArgs) -> Result<Prepared, String> {
    let dir = &args.dir;
    let test: Value = std::fs::read(dir.join("test.json"))
        .map_err(|e| format!("{} is not a run folder: test.json: {e}", dir.display()))
        .and_then(|b| {
            serde_json::from_slice(&b)
                .map_err(|e| format!("{}/test.json is not JSON: {e}", dir.display()))
        })?;
    let history = match history_file(dir) {
        p if p.is_file() => read_history(&p).map_err(|e| format!("{e:#}"))?,
        _ => Vec::new(),
    };
    let schedule = recorded_schedule(&test, &history).map_err(|e| format!("{e:#}"))?;
    let mut argv = run_argv(&test).map_err(|e| format!("{e:#}"))?;
    if let Some(t) = args.check_time_limit {
        argv.push(format!("--check-time-limit={t}"));
    }
    let node_bin = args.node_bin.clone().or_else(|| {
        test["options"]["node_bin"]
            .as_str()
            .map(PathBuf::from)
            .filter(|p| p.is_file())
    });
    if let Some(p) = &node_bin {
        argv.push(format!("--node-bin={}", p.display()));
    }
    let results = args.results.clone().unwrap_or_else(|| {
        dir.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    });
    argv.push(format!("--results={}", results.display()));
    let parsed = RunCmd::try_parse_from(&argv)
        .map_err(|e| format!("the recorded options do not parse: {e}"))?;
    let mut cfg = parsed
        .run
        .validate()
        .map_err(|e| format!("the recorded options are refused: {e}"))?;
    // Every recorded fault must have its nemesis, whatever the options say.
    for k in schedule.kinds() {
        if !cfg.nemesis.contains(&k) {
            cfg.nemesis.push(k);
        }
    }
    let label = test["options"]["nemesis_label"]
        .as_str()
        .unwrap_or("run")
        .to_string();
    cfg.nemesis_label = format!("replay-{label}");
    let original = std::fs::read(dir.join("results.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    Ok(Prepared {
        cfg,
        plan: RunPlan {
            schedule: Some(schedule),
            replay_of: Some(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone())),
            initial_leader: initial_leader(&history),
        },
        original_valid: original
            .as_ref()
            .map(|r| r["valid"].clone())
            .unwrap_or(Value::Null),
        original_ops: original.as_ref().and_then(|r| r["op_count"].as_u64()),
    })
}

fn word(v: &Value) -> &'static str {
    match v {
        Value::Bool(true) => "VALID",
        Value::Bool(false) => "INVALID",
        Value::Null => "(no results.json)",
        _ => "UNKNOWN",
    }
}

/// The replay's leader when its workload started, and how it got there.
fn start_of(dir: &Path) -> (Option<u64>, String) {
    let history = read_history(&history_file(dir)).unwrap_or_default();
    let how = match start_value(&history).and_then(|v| v["steered"]["result"].as_str()) {
        Some(r) => format!("steered: {r}"),
        None => "the recording names no leader: faults aimed by role only".into(),
    };
    (initial_leader(&history), how)
}

fn nemesis_count(dir: &Path) -> usize {
    read_history(&history_file(dir))
        .map(|h| h.iter().filter(|e| e["process"] == "nemesis").count())
        .unwrap_or(0)
}

/// Prints the original and the replay side by side.
pub fn print_side_by_side(original: &Path, p: &Prepared, new: &RunOutcome) {
    let new_results = std::fs::read(new.dir.join("results.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let new_ops = new_results.as_ref().and_then(|r| r["op_count"].as_u64());
    let row = |k: &str, a: String, b: String| println!("{k:<16} {a:<40} {b}");
    row("", "original".into(), "replay".into());
    row(
        "verdict",
        word(&p.original_valid).into(),
        new.validity.as_str().to_uppercase(),
    );
    let ops = |o: Option<u64>| o.map(|o| o.to_string()).unwrap_or_else(|| "-".into());
    row("ops", ops(p.original_ops), ops(new_ops));
    row(
        "nemesis events",
        nemesis_count(original).to_string(),
        nemesis_count(&new.dir).to_string(),
    );
    let node = |l: Option<u64>| l.map(|n| format!("n{n}")).unwrap_or_else(|| "-".into());
    let (now, how) = start_of(&new.dir);
    row(
        "leader at start",
        node(p.plan.initial_leader),
        format!("{} ({how})", node(now)),
    );
    // Folders are long: one line each rather than a column.
    println!("original folder  {}", original.display());
    println!("replay folder    {}", new.dir.display());
    let same = matches!(
        (&p.original_valid, new.validity),
        (Value::Bool(true), Validity::Valid)
            | (Value::Bool(false), Validity::Invalid)
            | (Value::String(_), Validity::Unknown)
    );
    println!(
        "{}",
        if same {
            "the replay reproduced the original verdict"
        } else {
            "the replay's verdict differs (timing is not replayed exactly; try again, or check the original offline: raft-checker check DIR)"
        }
    );
}

/// `raft-driver replay DIR`: prepares, runs under ctrl-c / SIGTERM handling
/// (every node is killed), prints both verdicts; exit code of the replay.
pub fn replay_command(args: ReplayArgs) -> ExitCode {
    let prepared = match prepare(&args) {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("raft-driver: {msg}");
            return ExitCode::from(raft_checker::EXIT_BAD_INPUT as u8);
        }
    };
    eprintln!(
        "raft-driver: replaying {} (seed {}, {} fault events)",
        args.dir.display(),
        prepared.cfg.seed,
        prepared
            .plan
            .schedule
            .as_ref()
            .map(|s| s.events.len())
            .unwrap_or(0)
    );
    let (code, outcome) = run::run_blocking(prepared.cfg.clone(), prepared.plan.clone());
    if let Some(outcome) = &outcome {
        print_side_by_side(&args.dir, &prepared, outcome);
    }
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::schedule::{PartitionShape, Target};
    use serde_json::json;

    fn test_json(schedule: &Schedule) -> Value {
        json!({
            "options": {
                "nodes": 3, "time_limit": {"secs": 12, "nanos": 500_000_000},
                "concurrency": 4, "rate": 100.0, "nemesis": ["partition", "kill"],
                "nemesis_label": "partition-kill", "partition_shapes": ["leader", "one"],
                "nemesis_interval": {"secs": 1, "nanos": 0}, "seed": 77, "bug": "stale-read",
                "node_bin": null, "results": "results", "op_timeout": {"secs": 1, "nanos": 0},
                "workload": {"ops_per_key": 50, "active_keys": 3, "read_fraction": 0.25},
                "election_timeout_ms": 500, "heartbeat_ms": null, "cluster_id": null,
                "node_args": ["--read-mode=lease"], "sever_on_partition": true,
                "recovery_timeout": {"secs": 20, "nanos": 0},
                "check_time_limit": {"secs": 30, "nanos": 0},
                "target": "raft", "read_consistency": "linearizable", "schedule": "serial",
                "tls": true
            },
            "seed": 77,
            "schedule": schedule,
        })
    }

    #[test]
    fn recorded_options_rebuild_the_same_configuration() {
        let t = test_json(&Schedule::default());
        let argv = run_argv(&t).unwrap();
        let cfg = RunCmd::try_parse_from(&argv)
            .unwrap()
            .run
            .validate()
            .unwrap();
        assert_eq!(cfg.seed, 77);
        assert_eq!(cfg.nodes, 3);
        assert_eq!(cfg.time_limit, std::time::Duration::from_millis(12_500));
        assert_eq!(cfg.concurrency, 4);
        assert_eq!(cfg.rate, Some(100.0));
        assert_eq!(cfg.nemesis_label, "partition-kill");
        assert_eq!(
            cfg.partition_shapes,
            vec![PartitionShape::Leader, PartitionShape::One]
        );
        assert_eq!(cfg.bug.as_deref(), Some("stale-read"));
        assert_eq!(cfg.op_timeout, std::time::Duration::from_secs(1));
        assert_eq!(cfg.workload.active_keys, 3);
        assert_eq!(cfg.workload.read_fraction, 0.25);
        assert_eq!(cfg.election_timeout_ms, Some(500));
        assert_eq!(cfg.node_args, vec!["--read-mode=lease"]);
        assert!(cfg.sever_on_partition);
        assert!(cfg.tls, "a TLS run replays with TLS");
        assert_eq!(cfg.check_time_limit, std::time::Duration::from_secs(30));
        // A serial run replays serial, against the same target.
        assert_eq!(
            cfg.schedule,
            crate::nemesis::generate::ScheduleStyle::Serial
        );
        assert!(argv.contains(&"--target=raft".to_string()), "{argv:?}");
    }

    #[test]
    fn a_vote_crash_at_the_leader_replays_at_the_node_it_hit() {
        let planned = FaultOp::StartVoteCrash {
            node: None,
            restart_after_ms: vec![100, 400],
        };
        let applied = json!({"node": 2, "groups": [[1, 2], [2, 3]], "killed": true});
        assert_eq!(
            resolve(&planned, &applied),
            FaultOp::StartVoteCrash {
                node: Some(2),
                restart_after_ms: vec![100, 400],
            }
        );
    }

    #[test]
    fn leader_targets_replay_as_the_nodes_that_were_hit() {
        let planned = Schedule {
            events: vec![
                ScheduledFault::new(
                    500,
                    FaultOp::StartPartition {
                        shape: PartitionShape::Leader,
                        cut: None,
                    },
                ),
                ScheduledFault::new(1500, FaultOp::StopPartition),
                ScheduledFault::new(
                    2500,
                    FaultOp::StartKill {
                        target: Target::Leader,
                        nodes: None,
                    },
                ),
                ScheduledFault::new(3500, FaultOp::StopKill),
                // Never applied: the run ended first.
                ScheduledFault::new(
                    9000,
                    FaultOp::StartPause {
                        target: Target::Leader,
                        nodes: None,
                    },
                ),
            ],
        };
        let history = vec![
            json!({"process": 1, "f": "read", "value": null}),
            json!({"process": "nemesis", "f": "start-partition", "value": {"shape": "leader", "groups": [[2], [1, 3]], "blocked": [[1, 2], [2, 1], [2, 3], [3, 2]], "scheduled_at_ms": 500}}),
            json!({"process": "nemesis", "f": "stop-partition", "value": {"scheduled_at_ms": 1500}}),
            json!({"process": "nemesis", "f": "start-kill", "value": {"target": "leader", "nodes": [3], "scheduled_at_ms": 2500, "leader_at_start": 3}}),
            json!({"process": "nemesis", "f": "stop-kill", "value": {"nodes": [3], "errors": [], "scheduled_at_ms": 3500}}),
        ];
        let s = recorded_schedule(&test_json(&planned), &history).unwrap();
        assert_eq!(s.events.len(), 5);
        assert_eq!(
            s.events.iter().map(|e| e.at_ms).collect::<Vec<_>>(),
            [500, 1500, 2500, 3500, 9000]
        );
        match &s.events[0].op {
            FaultOp::StartPartition {
                cut: Some(cut),
                shape,
            } => {
                assert_eq!(*shape, PartitionShape::Leader);
                assert_eq!(cut.groups, Some(vec![vec![2], vec![1, 3]]));
                assert_eq!(cut.blocked_set(), Cut::isolate(2, &[1, 2, 3]).blocked_set());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s.events[2].op,
            FaultOp::StartKill {
                target: Target::Leader,
                nodes: Some(vec![3])
            }
        );
        assert_eq!(
            s.events[4].op,
            FaultOp::StartPause {
                target: Target::Leader,
                nodes: None
            }
        );
        // Aimed by role where the leader at the time was recorded.
        assert_eq!(s.events[2].aim, Some(Aim { leader: 3 }));
        assert_eq!(s.events[0].aim, None);
    }

    #[test]
    fn aiming_by_role_swaps_the_recorded_leader_with_the_current_one() {
        let op = FaultOp::StartPartition {
            shape: PartitionShape::One,
            cut: Some(Cut::isolate(2, &[1, 2, 3])),
        };
        let swap = |i: u64| match i {
            2 => 3,
            3 => 2,
            i => i,
        };
        match op.remap(&swap) {
            FaultOp::StartPartition { cut: Some(c), .. } => {
                assert_eq!(c.blocked_set(), Cut::isolate(3, &[1, 2, 3]).blocked_set());
                assert_eq!(c.groups, Some(vec![vec![3], vec![1, 2]]));
            }
            other => panic!("{other:?}"),
        }
        let kill = FaultOp::StartKill {
            target: Target::One,
            nodes: Some(vec![2]),
        };
        assert_eq!(
            kill.remap(&swap),
            FaultOp::StartKill {
                target: Target::One,
                nodes: Some(vec![3])
            }
        );
    }

    #[test]
    fn a_replayed_power_cut_or_clock_fault_hits_the_nodes_the_recording_resolved() {
        let cut = FaultOp::StartPowerCut {
            target: Target::Leader,
            nodes: None,
            mode: raft_faultfs::CutMode::TornSeq { seed: 9 },
        };
        assert_eq!(
            resolve(&cut, &serde_json::json!({"nodes": [3], "killed": [3]})),
            FaultOp::StartPowerCut {
                target: Target::Leader,
                nodes: Some(vec![3]),
                mode: raft_faultfs::CutMode::TornSeq { seed: 9 },
            }
        );
        let change = crate::nemesis::clock::ClockChange::Jump { by_ms: -700 };
        let clock = FaultOp::StartClock {
            target: Target::Leader,
            nodes: None,
            change: change.clone(),
        };
        assert_eq!(
            resolve(&clock, &serde_json::json!({"nodes": [1]})),
            FaultOp::StartClock {
                target: Target::Leader,
                nodes: Some(vec![1]),
                change,
            }
        );
    }

    #[test]
    fn a_checked_runs_compressed_history_replays_the_same_faults() {
        let d = tempfile::tempdir().unwrap();
        let lines = [
            json!({"process": 1, "f": "read", "value": null}),
            json!({"process": "nemesis", "f": "start-kill", "value": {"target": "leader", "nodes": [3], "scheduled_at_ms": 2500, "leader_at_start": 3}}),
            json!({"process": "nemesis", "f": "stop-kill", "value": {"nodes": [3], "scheduled_at_ms": 3500}}),
        ];
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(d.path().join("history.jsonl"), text).unwrap();
        let plain = read_history(&history_file(d.path())).unwrap();
        raft_checker::compressed::compress_file(&d.path().join("history.jsonl")).unwrap();
        let file = history_file(d.path());
        assert!(file.ends_with("history.jsonl.zst"), "{}", file.display());
        assert_eq!(read_history(&file).unwrap(), plain);
        assert_eq!(nemesis_count(d.path()), 2);
        // A damaged one is refused, not read as a shorter history.
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() - 4]).unwrap();
        let err = format!("{:#}", read_history(&file).unwrap_err());
        assert!(err.contains("truncated or corrupt"), "{err}");
    }

    #[test]
    fn a_folder_without_test_json_is_refused_with_a_message() {
        let d = tempfile::tempdir().unwrap();
        let err = prepare(&ReplayArgs {
            dir: d.path().to_path_buf(),
            results: None,
            node_bin: None,
            check_time_limit: None,
        })
        .err()
        .unwrap();
        assert!(err.contains("is not a run folder"), "{err}");
    }
}
