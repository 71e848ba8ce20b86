//! raft-node's command line as a harness meets it: `--check-config`
//! validates without touching anything, test hooks are opt-in, and the
//! events file says what the node did.

mod process_support;

use process_support::*;
use raft_proto::kvpb;
use std::process::Command;
use std::time::Duration;

fn check_config(extra: &[&str], data_dir: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(NODE)
        .args(["--id", "1", "--check-config", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .output()
        .expect("run raft-node");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_accepts_a_good_configuration_without_creating_the_data_dir() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("never-created");
    // The port is in use: --check-config must not try to bind it.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = busy.local_addr().unwrap().to_string();
    let flags = [
        "--listen",
        &listen,
        "--peer",
        "2=127.0.0.1:7002",
        "--test-hooks",
        "--bug",
        "stale-read",
    ];
    let (code, out, err) = check_config(&flags, &data);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("valid"), "{out}");
    assert!(!data.exists(), "--check-config touched the data dir");
}

#[test]
fn check_config_refuses_what_a_start_would_refuse_with_exit_2_and_the_reason() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("n1");
    for (flags, says) in [
        (
            vec!["--election-timeout-ms", "0"],
            "--election-timeout-ms 0",
        ),
        (vec!["--heartbeat-ms", "5000"], "--heartbeat-ms 5000"),
        (
            vec!["--test-hooks", "--bug", "stale-reed"],
            "unknown bug \"stale-reed\"",
        ),
        (vec!["--bug", "stale-read"], "needs --test-hooks"),
        (
            vec!["--failpoint", "crash-after-vote"],
            "needs --test-hooks",
        ),
        (vec!["--bogus"], "--bogus"),
        (vec!["--worker-threads", "0"], "--worker-threads"),
        (vec!["--listen", "nowhere"], "not HOST:PORT"),
        (vec!["--peer", "2=127.0.0.1:99999"], "bad port"),
        (
            vec!["--read-mode", "lease", "--no-check-quorum"],
            "needs check-quorum",
        ),
        (
            vec!["--events-file", "/nonexistent/dir/e.jsonl"],
            "does not exist",
        ),
    ] {
        let (code, _, err) = check_config(&flags, &data);
        assert_eq!(code, 2, "{flags:?} exited {code}: {err}");
        assert!(
            err.contains(says),
            "{flags:?}: {err:?} does not say {says:?}"
        );
        assert!(!data.exists(), "{flags:?} touched the data dir");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failpoint_call_is_refused_without_test_hooks_and_says_why() {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let node = Reaped(
        Command::new(NODE)
            .args(["--id", "1", "--listen", &addr, "--data-dir"])
            .arg(d.path().join("n1"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut refused = None;
    for _ in 0..200 {
        if let Some(mut c) = client(&addr).await {
            let req = kvpb::FailpointRequest {
                name: "crash-after-vote".into(),
                armed: true,
            };
            refused = Some(c.failpoint(req).await.expect_err("must be refused"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    drop(node);
    let status = refused.expect("the node never answered");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(
        status.message().contains("--test-hooks"),
        "{}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_file_records_boot_roles_and_one_leader_per_term() {
    let mut c = Cluster::start(3, &[]);
    let leader = wait_leader(&c, &[1, 2, 3]).await;
    put(&c, leader, "k", "v", 1).await;
    c.kill(leader);
    let live: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();
    wait_leader(&c, &live).await;
    c.spawn(leader);
    wait_caught_up(&c, leader, live[0]).await;
    let mut leaders_by_term = std::collections::BTreeMap::new();
    for id in 1..=3 {
        let ev = c.events(id);
        let boots: Vec<_> = ev.iter().filter(|e| e["event"] == "boot").collect();
        let want_boots = if id == leader { 2 } else { 1 };
        assert_eq!(boots.len(), want_boots, "node {id}: {ev:?}");
        for e in &ev {
            assert_eq!(e["node"], id);
            assert!(e["ts_us"].as_u64().unwrap() > 0);
            if e["event"] == "role" && e["role"] == "leader" {
                let term = e["term"].as_u64().unwrap();
                let prev = leaders_by_term.insert(term, id);
                assert!(prev.is_none() || prev == Some(id), "two leaders in {term}");
            }
            assert_ne!(e["event"], "invariant", "node {id} reported {e}");
        }
        // The restarted node recovered the term it had reached.
        let last_boot = boots.last().unwrap();
        if id == leader {
            assert!(last_boot["term"].as_u64().unwrap() >= 1, "{last_boot}");
            assert!(
                last_boot["last_index"].as_u64().unwrap() >= 2,
                "{last_boot}"
            );
        }
    }
    assert!(leaders_by_term.len() >= 2, "{leaders_by_term:?}");
    assert!(
        leaders_by_term.values().any(|&l| l == leader),
        "{leaders_by_term:?}"
    );
}

/// State Machine Safety made visible: every replica that applies index
/// 100 reports the same digest of its state machine there (the checkers
/// compare these across nodes and restarts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_reports_the_same_state_digest_at_the_same_applied_index() {
    let c = Cluster::start(3, &[]);
    let leader = wait_leader(&c, &[1, 2, 3]).await;
    for seq in 1..=110 {
        put(&c, leader, &format!("k{}", seq % 7), &seq.to_string(), seq).await;
    }
    for id in (1..=3).filter(|&i| i != leader) {
        wait_caught_up(&c, id, leader).await;
    }
    let digests: Vec<serde_json::Value> = (1..=3)
        .map(|id| {
            let ev = c.events(id);
            let d = ev
                .iter()
                .find(|e| e["event"] == "applied-digest" && e["index"] == 100)
                .unwrap_or_else(|| panic!("node {id} reported no digest at index 100: {ev:?}"));
            assert_eq!(d["digest"].as_str().map(str::len), Some(16), "{d}");
            d["digest"].clone()
        })
        .collect();
    assert_eq!(digests[0], digests[1], "{digests:?}");
    assert_eq!(digests[1], digests[2], "{digests:?}");
}
