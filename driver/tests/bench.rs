//! `raft-driver bench` end to end on raft-node: figures per operation kind
//! in bench.json, the latency plot, the floor, a failover, and no process
//! left behind.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn bench(results: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(driver_bin());
    c.arg("bench")
        .arg("--results")
        .arg(results)
        .args(args)
        .stdin(Stdio::null());
    c
}

fn bench_json(results: &Path) -> Value {
    let dir = run_dir(results);
    serde_json::from_slice(&std::fs::read(dir.join("bench.json")).unwrap()).unwrap()
}

#[test]
fn raft_bench_reports_each_kind_plots_and_measures_a_failover() {
    let _serial = serial();
    node_bin();
    let results = tempfile::tempdir().unwrap();
    let out = run_bounded(
        bench(
            results.path(),
            &[
                "--concurrency",
                "1,4",
                "--duration",
                "2",
                "--warmup",
                "0.2",
                "--keys",
                "20",
                "--value-size",
                "100",
                "--failover",
                "1",
            ],
        ),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let doc = bench_json(results.path());
    let rows = doc["results"].as_array().unwrap();
    // Two concurrencies x (write-only, read-only) phases.
    assert_eq!(rows.len(), 4, "{rows:?}");
    for r in rows {
        assert_eq!(r["target"], "raft");
        assert!(r["ok"].as_u64().unwrap() > 0, "{r}");
        assert!(r["ops_per_sec"].as_f64().unwrap() > 0.0, "{r}");
        let (p50, p99, p999) = (
            r["p50_us"].as_u64().unwrap(),
            r["p99_us"].as_u64().unwrap(),
            r["p999_us"].as_u64().unwrap(),
        );
        assert!(0 < p50 && p50 <= p99 && p99 <= p999, "{r}");
    }
    let kinds: Vec<&str> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["write", "write", "read", "read"]);
    let fo = &doc["failover"][0];
    assert_eq!(fo["samples"].as_array().unwrap().len(), 1, "{fo}");
    assert!(fo["median_ms"].as_f64().unwrap() > 0.0, "{fo}");
    assert!(doc["floor"]["fsync_p50_us"].as_u64().unwrap() > 0);
    assert!(doc["floor"]["write_floor_us"].as_u64().is_some());
    assert_eq!(doc["settings"]["value_size"], 100);
    let dir = run_dir(results.path());
    assert!(dir.join("bench-latency.png").is_file());
    assert!(dir.join("bench-latency.svg").is_file());
    assert!(stdout.contains("raft  c=4"), "{stdout}");
    assert_no_nodes_left(results.path());
}

#[test]
fn floor_mode_measures_sync_and_round_trip_without_a_cluster() {
    let results = tempfile::tempdir().unwrap();
    let out = run_bounded(
        bench(results.path(), &["--floor"]),
        Duration::from_secs(120),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = bench_json(results.path());
    let f = &doc["floor"];
    assert_eq!(f["fsync_samples"], 500);
    assert!(f["rtt_p50_us"].as_u64().is_some());
    assert_eq!(
        f["write_floor_us"].as_u64().unwrap(),
        f["fsync_p50_us"].as_u64().unwrap() + 2 * f["rtt_p50_us"].as_u64().unwrap()
    );
    assert!(doc["results"].as_array().unwrap().is_empty());
    assert!(!run_dir(results.path()).join("raft").exists());
}

#[test]
fn bad_bench_options_exit_2_naming_the_option() {
    for (args, needle) in [
        (vec!["--read-ratio", "0,2"], "--read-ratio"),
        (vec!["--concurrency", "0"], "--concurrency"),
        (vec!["--duration", "0"], "--duration"),
        (vec!["--heartbeat-ms", "600"], "--heartbeat-ms"),
        (vec!["--target", "zookeeper"], "zookeeper"),
    ] {
        let results = tempfile::tempdir().unwrap();
        let out = run_bounded(bench(results.path(), &args), Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(std::fs::read_dir(results.path()).unwrap().next().is_none());
    }
}
