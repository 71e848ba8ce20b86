//! The etcd target end to end: `bench` side by side with raft-node, and a
//! faulty `run` against etcd that ends in a verdict. etcd comes from PATH
//! (Debian's etcd-server); without it these tests say so and skip.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether etcd is on PATH; prints why the test skips when it is not.
fn etcd_available(test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("etcd").is_file()))
        .unwrap_or(false);
    if !found {
        eprintln!("SKIP {test}: etcd is not on PATH (install Debian's etcd-server: apt-get install etcd-server)");
    }
    found
}

/// Asserts that no etcd member of the run under `results` is still alive.
fn assert_no_etcd_left(results: &Path) {
    let needle = results.to_string_lossy().to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut left = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains("etcd") && cmd.contains(&needle) {
                if let Some(s) = proc_state(pid) {
                    if s != 'Z' && s != 'X' {
                        left.push(pid);
                    }
                }
            }
        }
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "etcd members outlived the driver: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn bench_measures_raft_and_etcd_side_by_side() {
    if !etcd_available("bench_measures_raft_and_etcd_side_by_side") {
        return;
    }
    let _serial = serial();
    node_bin();
    let results = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(driver_bin());
    cmd.args(["bench", "--target", "raft,etcd", "--concurrency", "4"])
        .args([
            "--duration",
            "2",
            "--warmup",
            "0.2",
            "--keys",
            "20",
            "--failover",
            "1",
        ])
        .arg("--results")
        .arg(results.path())
        .stdin(Stdio::null());
    let out = run_bounded(cmd, Duration::from_secs(180));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = read_json(&run_dir(results.path()).join("bench.json"));
    for target in ["raft", "etcd"] {
        for kind in ["write", "read"] {
            let row = doc["results"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["target"] == target && r["kind"] == kind)
                .unwrap_or_else(|| panic!("no {target} {kind} row: {doc}"));
            assert!(row["ok"].as_u64().unwrap() > 0, "{row}");
        }
    }
    let etcd_failover = doc["failover"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["target"] == "etcd")
        .unwrap();
    assert!(
        etcd_failover["median_ms"].as_f64().unwrap() > 0.0,
        "{etcd_failover}"
    );
    // Every phase both ran is compared, and the failovers too.
    let cmp = doc["comparison"].as_array().unwrap();
    assert!(
        cmp.iter().filter(|c| c["what"] == "raft/etcd").count() >= 2,
        "{cmp:?}"
    );
    assert!(
        cmp.iter().any(|c| c["what"] == "failover raft/etcd"),
        "{cmp:?}"
    );
    assert!(doc["versions"]["etcd"].as_str().unwrap().contains("etcd"));
    assert_no_etcd_left(results.path());
    assert_no_nodes_left(results.path());
}

#[test]
fn a_faulty_run_against_etcd_ends_in_a_valid_verdict() {
    if !etcd_available("a_faulty_run_against_etcd_ends_in_a_valid_verdict") {
        return;
    }
    let _serial = serial();
    let results = tempfile::tempdir().unwrap();
    let out = run_bounded(
        driver(
            results.path(),
            &[
                "--target",
                "etcd",
                "--time-limit",
                "15",
                "--concurrency",
                "10",
                "--rate",
                "200",
                "--op-timeout-ms",
                "1000",
                "--nemesis",
                "kill,pause,partition",
                "--nemesis-interval",
                "2",
                "--seed",
                "7",
                "--check-time-limit",
                "100",
            ],
        ),
        Duration::from_secs(240),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verdict: VALID"), "{stdout}");
    let dir = run_dir(results.path());
    assert_eq!(read_json(&dir.join("results.json"))["valid"], true);
    let test = read_json(&dir.join("test.json"));
    assert_eq!(test["target"], "etcd");
    let h = history(&dir);
    let ok = h
        .iter()
        .filter(|e| e["type"] == "ok" && e["process"].is_u64())
        .count();
    assert!(ok > 100, "only {ok} operations succeeded");
    assert!(h.iter().any(|e| e["process"] == "nemesis"));
    // The members reached one revision with one HashKV.
    assert_converged(&dir, 3);
    assert_no_etcd_left(results.path());
}

#[test]
fn etcd_refuses_faults_it_cannot_take_before_starting_anything() {
    let results = tempfile::tempdir().unwrap();
    let out = run_bounded(
        driver(
            results.path(),
            &["--target", "etcd", "--nemesis", "membership"],
        ),
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("does not support --nemesis membership"),
        "{stderr}"
    );
    assert!(std::fs::read_dir(results.path()).unwrap().next().is_none());
}

#[test]
fn etcd_missing_from_path_is_a_usage_error_that_says_so() {
    let results = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = driver(results.path(), &["--target", "etcd", "--time-limit", "5"]);
    cmd.env("PATH", empty.path());
    let out = run_bounded(cmd, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("etcd is not on PATH"), "{stderr}");
    assert!(std::fs::read_dir(results.path()).unwrap().next().is_none());
}
