//! Helpers for tests that run the real binaries from target/<profile>/.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// End-to-end runs load both cores: run them one at a time so that timing
/// (elections, op timeouts) stays realistic.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the end-to-end lock (poisoning from a failed test is ignored).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The raft-driver binary under test.
pub fn driver_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_raft-driver"))
}

/// raft-node next to raft-driver; fails the test (never skips) if missing.
pub fn node_bin() -> PathBuf {
    let p = driver_bin().parent().unwrap().join("raft-node");
    assert!(
        p.is_file(),
        "{} is missing: build the binaries first (cargo build --release --workspace --bins, \
         as scripts/test.sh does), then run the tests in the same profile",
        p.display()
    );
    p
}

/// raft-checker next to raft-driver (built by the same workspace build).
pub fn checker_bin() -> PathBuf {
    let p = driver_bin().parent().unwrap().join("raft-checker");
    assert!(
        p.is_file(),
        "{} is missing: build the workspace's binaries first",
        p.display()
    );
    p
}

/// results.json of a run folder.
pub fn results_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap()
}

/// A driver command writing into `results`.
pub fn driver(results: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(driver_bin());
    c.arg("run")
        .arg("--results")
        .arg(results)
        .args(args)
        .stdin(Stdio::null());
    c
}

/// Runs to completion with a hard timeout (the child is killed past it).
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn raft-driver");
    wait_bounded(&mut child, timeout);
    child.wait_with_output().unwrap()
}

/// Waits for `child` at most `timeout`, then SIGKILLs it and panics.
pub fn wait_bounded(child: &mut Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("raft-driver did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The single run folder under `results` (not the `latest` link).
pub fn run_dir(results: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "latest" && p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "expected one run folder, got {dirs:?}");
    dirs.into_iter().next().unwrap()
}

/// PIDs of live processes whose command line mentions `needle` (the run
/// folder: every node of a run gets its data dir under it).
pub fn pids_mentioning(needle: &str) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if !cmd.contains("raft-node") || !cmd.contains(needle) {
            continue;
        }
        if let Some(state) = proc_state(pid) {
            if state != 'Z' && state != 'X' {
                out.push((pid, state));
            }
        }
    }
    out
}

/// The state letter in /proc/PID/stat.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// Asserts that no raft-node of the run in `results` is alive or stopped,
/// allowing the kernel a moment to finish tearing processes down.
pub fn assert_no_nodes_left(results: &Path) {
    let needle = results.to_string_lossy().to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = pids_mentioning(&needle);
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("raft-node processes outlived the driver (pid, state): {left:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the driver with `args` into `results` (bounded by `timeout`) and
/// asserts that no node outlived it and that the run was valid (exit 0),
/// printing its output otherwise.
pub fn run_expecting_valid(results: &Path, args: &[&str], timeout: Duration) -> Output {
    let out = run_bounded(driver(results, args), timeout);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_no_nodes_left(results);
    assert_eq!(
        out.status.code(),
        Some(0),
        "expected a valid run\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    out
}

/// Waits until `path` contains `needle`, up to `timeout`.
pub fn wait_for_text(path: &Path, needle: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::fs::read_to_string(path)
            .map(|t| t.contains(needle))
            .unwrap_or(false)
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The history of a run, parsed: history.jsonl, or history.jsonl.zst once
/// the run is checked (the driver compresses it then).
pub fn history(dir: &Path) -> Vec<serde_json::Value> {
    let file = raft_checker::compressed::existing(&dir.join("history.jsonl"));
    let bytes = raft_checker::compressed::read_all(&file).unwrap();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("history line is JSON"))
        .collect()
}

/// Asserts that the run in `dir` ended with its replicas converged: every
/// node of `nodes` at one point with one state digest, and the
/// `convergence` checker valid in results.json.
pub fn assert_converged(dir: &Path, nodes: usize) {
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    let c = &results["checkers"]["convergence"];
    assert_eq!(c["valid"], true, "{c}");
    assert_eq!(c["settled"], true, "{c}");
    let finals = c["nodes"].as_array().unwrap();
    assert_eq!(finals.len(), nodes, "{c}");
    let points: std::collections::BTreeSet<String> = finals
        .iter()
        .map(|n| format!("{} {}", n["at"], n["digest"]))
        .collect();
    assert_eq!(points.len(), 1, "one point, one state: {c}");
    assert!(finals[0]["digest"].is_string(), "{c}");
}
