//! End-to-end runs against the real raft-node (built beside raft-driver):
//! a short faulty run is valid and complete, a buggy node is caught, and no
//! node process outlives the driver however it ends.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn short_run_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "--time-limit",
        "15",
        "--concurrency",
        "10",
        "--rate",
        "300",
        "--nemesis-interval",
        "1.5",
        "--op-timeout-ms",
        "1000",
    ];
    a.extend_from_slice(extra);
    a
}

#[test]
fn short_faulty_run_is_valid_and_records_every_f_outcome_and_fault() {
    let _serial = serial();
    let _ = node_bin();
    let results = tempfile::tempdir().unwrap();
    let args = short_run_args(&["--nemesis", "partition,kill,pause", "--seed", "7"]);
    let out = run_expecting_valid(results.path(), &args, RUN_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = run_dir(results.path());
    assert!(stdout.contains("verdict: VALID"), "{stdout}");
    assert!(stdout.contains(&dir.display().to_string()), "{stdout}");
    let latest = std::fs::read_link(results.path().join("latest")).unwrap();
    assert_eq!(latest, dir.file_name().unwrap());
    // The checked history is kept compressed (issue 14), the text removed.
    for f in [
        "test.json",
        "history.jsonl.zst",
        "results.json",
        "driver.log",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
    assert!(!dir.join("history.jsonl").exists());
    for n in 1..=3 {
        assert!(dir.join(format!("nodes/n{n}.log")).is_file());
    }

    let h = history(&dir);
    let client = |e: &&Value| e["process"].is_u64();
    let fs: BTreeSet<&str> = h
        .iter()
        .filter(client)
        .filter_map(|e| e["f"].as_str())
        .collect();
    for f in ["read", "write", "cas", "append"] {
        assert!(fs.contains(f), "no {f} in the history: {fs:?}");
    }
    let types: BTreeSet<&str> = h
        .iter()
        .filter(client)
        .filter_map(|e| e["type"].as_str())
        .collect();
    for t in ["invoke", "ok", "fail", "info"] {
        assert!(
            types.contains(t),
            "no {t} outcome in the history: {types:?}"
        );
    }

    // Every scheduled fault operation shows up as a nemesis event.
    let test: Value =
        serde_json::from_slice(&std::fs::read(dir.join("test.json")).unwrap()).unwrap();
    let scheduled: BTreeSet<String> = test["schedule"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["op"]["f"].as_str().unwrap().to_string())
        .collect();
    for kind in ["partition", "kill", "pause"] {
        assert!(
            scheduled.contains(&format!("start-{kind}")),
            "the schedule has no {kind}: {scheduled:?}"
        );
    }
    let recorded: BTreeSet<String> = h
        .iter()
        .filter(|e| e["process"] == "nemesis")
        .map(|e| e["f"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(scheduled, recorded);
    assert!(test["node_version"].as_str().unwrap().contains("raft-node"));
    assert_eq!(test["seed"], 7);
    // After the faults, the three replicas reached one applied index with
    // one state (the end-of-run convergence check).
    assert_converged(&dir, 3);
}

#[test]
fn stale_read_bug_is_found_invalid_under_partitions() {
    let _serial = serial();
    let _ = node_bin();
    let results = tempfile::tempdir().unwrap();
    let args = short_run_args(&[
        "--bug",
        "stale-read",
        "--nemesis",
        "partition",
        "--partition-shapes",
        "one,leader,halves",
        "--seed",
        "3",
    ]);
    let out = run_bounded(driver(results.path(), &args), RUN_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_no_nodes_left(results.path());
    assert_eq!(
        out.status.code(),
        Some(1),
        "stale reads were not caught\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verdict: INVALID"), "{stdout}");
}

/// Starts a long pause-heavy run and waits until a node is paused.
fn start_run_with_a_paused_node(
    results: &std::path::Path,
    env: Option<(&str, &str)>,
) -> std::process::Child {
    let mut cmd = driver(
        results,
        &[
            "--time-limit",
            "120",
            "--nemesis",
            "pause",
            "--nemesis-interval",
            "1",
            "--rate",
            "100",
            "--seed",
            "5",
        ],
    );
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn raft-driver")
}

/// Waits (up to 60 s) until one node of the run is in state T (stopped).
fn wait_for_a_paused_node(results: &std::path::Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let nodes = pids_mentioning(&results.to_string_lossy());
        if nodes.iter().any(|(_, s)| *s == 'T') {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no node was ever seen paused");
}

#[test]
fn sigterm_mid_run_kills_every_node_including_paused_ones() {
    let _serial = serial();
    let _ = node_bin();
    let results = tempfile::tempdir().unwrap();
    let mut child = start_run_with_a_paused_node(results.path(), None);
    wait_for_a_paused_node(results.path());
    let before = pids_mentioning(&results.path().to_string_lossy());
    assert_eq!(before.len(), 3, "{before:?}");
    // SAFETY: plain kill(2) on the child we spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    wait_bounded(&mut child, Duration::from_secs(30));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "interrupted runs have no verdict");
    for (pid, _) in before {
        assert!(
            proc_state(pid).is_none() || proc_state(pid) == Some('Z'),
            "node pid {pid} outlived SIGTERM"
        );
    }
    assert_no_nodes_left(results.path());
}

#[test]
fn an_error_mid_run_kills_every_node() {
    let _serial = serial();
    let _ = node_bin();
    let results = tempfile::tempdir().unwrap();
    let mut child =
        start_run_with_a_paused_node(results.path(), Some(("RAFT_DRIVER_INJECT", "error:4000")));
    wait_bounded(&mut child, Duration::from_secs(60));
    assert_eq!(child.wait().unwrap().code(), Some(3));
    assert_no_nodes_left(results.path());
    // The history written so far is still there, line by line.
    let dir = run_dir(results.path());
    assert!(!history(&dir).is_empty());
}

#[test]
fn a_panic_mid_run_kills_every_node() {
    let _serial = serial();
    let _ = node_bin();
    let results = tempfile::tempdir().unwrap();
    let mut child =
        start_run_with_a_paused_node(results.path(), Some(("RAFT_DRIVER_INJECT", "panic:4000")));
    wait_bounded(&mut child, Duration::from_secs(60));
    let code = child.wait().unwrap().code();
    assert!(
        code != Some(0) && code != Some(1),
        "a panic must not look like a verdict: {code:?}"
    );
    assert_no_nodes_left(results.path());
}

#[test]
fn sigkill_of_the_driver_still_kills_every_node() {
    let _serial = serial();
    let _ = node_bin();
    let results = tempfile::tempdir().unwrap();
    let mut child = start_run_with_a_paused_node(results.path(), None);
    wait_for_a_paused_node(results.path());
    assert_eq!(pids_mentioning(&results.path().to_string_lossy()).len(), 3);
    // SIGKILL cannot be handled: the nodes die through PR_SET_PDEATHSIG.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_no_nodes_left(results.path());
}

/// A node's port cannot be taken by another process, neither before the
/// node first listens (the driver's own test hook tries, as another process
/// would, right before the nodes start) nor while a killed node is down
/// (this test tries, all run long): the run does not fail on "Address
/// already in use".
#[test]
fn a_node_port_taken_by_another_process_does_not_fail_the_run() {
    let _serial = serial();
    let _ = node_bin();
    let results = tempfile::tempdir().unwrap();
    let args = short_run_args(&["--nemesis", "kill", "--seed", "11"]);
    let mut cmd = driver(results.path(), &args);
    cmd.env("RAFT_DRIVER_SQUAT_PORTS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn raft-driver");
    // The nodes' ports, once test.json names them.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let ports: Vec<std::net::SocketAddr> = loop {
        assert!(std::time::Instant::now() < deadline, "no test.json");
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the driver ended before test.json: {:?}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let test = std::fs::read_dir(results.path())
            .unwrap()
            .flatten()
            .map(|e| e.path().join("test.json"))
            .find(|p| p.is_file());
        if let Some(t) = test.and_then(|t| std::fs::read(t).ok()) {
            if let Ok(v) = serde_json::from_slice::<Value>(&t) {
                break v["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n["listen"].as_str().unwrap().parse().unwrap())
                    .collect();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(ports.len(), 3);
    // What took a node's port before: another driver's port-0 bind (it
    // then starts its own node there) and an outgoing connection's source
    // port (bound without SO_REUSEADDR), while a killed node is down.
    let mut taken = Vec::new();
    let mut tries = 0u64;
    while child.try_wait().unwrap().is_none() {
        for p in &ports {
            tries += 1;
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            s.set_reuseaddr(false).unwrap();
            if s.bind(*p).is_ok() {
                taken.push(*p);
                // Held a while, as a connection would.
                std::thread::sleep(Duration::from_millis(300));
            }
            drop(s);
            let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            if ports.contains(&other.local_addr().unwrap()) {
                taken.push(other.local_addr().unwrap());
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_no_nodes_left(results.path());
    assert!(taken.is_empty(), "{taken:?} taken in {tries} tries");
    let dir = run_dir(results.path());
    let log = std::fs::read_to_string(dir.join("driver.log")).unwrap();
    assert!(!log.contains("test hook: took"), "{log}");
    assert_eq!(
        log.matches("test hook: could not take").count(),
        3,
        "the hook tried every node's port"
    );
    let h = history(&dir);
    let kills = h
        .iter()
        .filter(|e| e["process"] == "nemesis" && e["f"] == "start-kill")
        .count();
    assert!(kills > 0, "no node was killed: the test proves nothing");
    assert_eq!(
        out.status.code(),
        Some(0),
        "expected a valid run\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let end = h.iter().find(|e| e["f"] == "run-end").unwrap();
    assert_eq!(end["value"]["unexpected_exits"], serde_json::json!([]));
}
