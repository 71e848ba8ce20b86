//! ralph.py (run with python3): one iteration against the real driver
//! writes logs/iteration-1.log; against a scripted driver that reports an
//! invalid run it stops and prints the replay and check commands, or goes
//! on with --keep-going; bad options exit 2.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn ralph_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("ralph.py")
}

fn ralph(cwd: &Path, driver: &Path, args: &[&str]) -> Output {
    let mut c = Command::new("python3");
    c.arg(ralph_py())
        .arg("--driver")
        .arg(driver)
        .arg("--results")
        .arg(cwd.join("results"))
        .arg("--logs")
        .arg(cwd.join("logs"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null());
    run_bounded(c, Duration::from_secs(180))
}

/// A stand-in for raft-driver: `campaign` makes a campaign folder whose
/// summary has one invalid run, announces it as the real one does, and
/// exits 1; it also records each invocation.
fn scripted_driver(dir: &Path) -> PathBuf {
    let path = dir.join("fake-driver");
    let script = r#"#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
assert args[0] == "campaign", args
results = args[args.index("--results") + 1]
seed = args[args.index("--seed") + 1]
with open(os.path.join(os.path.dirname(__file__), "calls.txt"), "a") as f:
    f.write(" ".join(args) + "\n")
folder = os.path.join(results, "campaign-" + seed)
os.makedirs(os.path.join(folder, "run-1"), exist_ok=True)
summary = {"campaign": "c", "shards": [], "planned": 1,
           "counts": {"valid": 0, "invalid": 1, "unknown": 0},
           "runs": [{"index": 0, "nemesis": "kill", "nodes": 3, "seed": int(seed),
                     "bug": None, "verdict": "invalid", "reason": "not linearizable",
                     "ops": 10, "p99_ms": 1.5, "elapsed_s": 0.1, "dir": "run-1"}]}
with open(os.path.join(folder, "summary.json"), "w") as f:
    json.dump(summary, f)
print("raft-driver: campaign folder %s (1 runs)" % folder, file=sys.stderr)
sys.exit(1)
"#;
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn one_iteration_writes_its_log_with_the_verdicts_and_the_folder() {
    let _serial = serial();
    let _ = node_bin();
    let d = tempfile::tempdir().unwrap();
    let out = ralph(
        d.path(),
        &driver_bin(),
        &[
            "--iterations",
            "1",
            "--time-budget",
            "120",
            "--",
            "--nemesis",
            "partition",
            "--nodes",
            "3",
            "--seeds",
            "1",
            "--time-limit",
            "3",
            "--nemesis-interval",
            "1",
            "--rate",
            "200",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(d.path().join("logs/iteration-1.log")).unwrap();
    for needle in [
        "# ralph iteration 1",
        "command: ",
        " campaign --seed ",
        "exit code: 0",
        "duration: ",
        "campaign folder: ",
        "verdicts: 1 runs of 1 planned: 1 valid, 0 invalid, 0 unknown",
        "valid    partition",
    ] {
        assert!(log.contains(needle), "{needle:?} missing in:\n{log}");
    }
    assert!(!d.path().join("logs/iteration-2.log").exists());
    assert!(stdout.contains("iteration 1: valid"), "{stdout}");
}

#[test]
fn an_invalid_run_stops_the_loop_and_prints_replay_and_check_commands() {
    let d = tempfile::tempdir().unwrap();
    let fake = scripted_driver(d.path());
    let out = ralph(
        d.path(),
        &fake,
        &["--iterations", "3", "--seed", "1", "--bug", "early-ack"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(" replay "), "{stdout}");
    assert!(stdout.contains("raft-checker check "), "{stdout}");
    assert!(stdout.contains("run-1"), "{stdout}");
    let calls = std::fs::read_to_string(d.path().join("calls.txt")).unwrap();
    assert_eq!(calls.lines().count(), 1, "stopped after the first: {calls}");
    assert!(calls.contains("--bug early-ack"), "{calls}");
    let log = std::fs::read_to_string(d.path().join("logs/iteration-1.log")).unwrap();
    assert!(log.contains("replay:") && log.contains("check:"), "{log}");
}

#[test]
fn keep_going_runs_every_iteration_with_fresh_seeds_and_slices() {
    let d = tempfile::tempdir().unwrap();
    let fake = scripted_driver(d.path());
    let out = ralph(
        d.path(),
        &fake,
        &[
            "--iterations",
            "3",
            "--keep-going",
            "--slices",
            "2",
            "--",
            "--nodes",
            "3",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let calls = std::fs::read_to_string(d.path().join("calls.txt")).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(lines.len(), 3, "{calls}");
    let seeds: std::collections::BTreeSet<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(seeds.len(), 3, "a fresh seed each iteration: {calls}");
    assert!(lines[0].contains("--shard 1/2") && lines[1].contains("--shard 2/2"));
    assert!(lines[2].contains("--shard 1/2") && lines[2].ends_with("--nodes 3"));
    for n in 1..=3 {
        assert!(d.path().join(format!("logs/iteration-{n}.log")).is_file());
    }
}

#[test]
fn bad_options_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let fake = scripted_driver(d.path());
    for args in [
        vec!["--iterations", "0"],
        vec!["--time-budget", "-5"],
        vec!["--", "--seed", "4"],
    ] {
        let out = ralph(d.path(), &fake, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = ralph(d.path(), Path::new("/nonexistent/raft-driver"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("raft-driver not found"));
}
