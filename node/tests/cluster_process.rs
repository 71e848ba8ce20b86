//! End-to-end tests of real `raft-node` processes on loopback: election,
//! replication, SIGKILL of the leader, catch-up by log and by snapshot, and
//! the command line's refusals. Every process is killed and reaped by the
//! cluster's Drop, so a failing assertion leaves nothing behind.

mod process_support;

use process_support::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_of_the_leader_and_the_old_leader_catches_up() {
    let mut c = Cluster::start(3, &[]);
    let leader = wait_leader(&c, &[1, 2, 3]).await;
    // Write through a follower, so redirects are exercised.
    let via = if leader == 1 { 2 } else { 1 };
    for i in 0..30 {
        put(&c, via, &format!("k{i}"), &format!("v{i}"), i + 1).await;
    }
    c.kill(leader);
    let live: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();
    let new_leader = wait_leader(&c, &live).await;
    assert_ne!(new_leader, leader);
    for i in 0..30 {
        assert_eq!(
            get(&c, live[0], &format!("k{i}")).await,
            Some(format!("v{i}")),
            "acknowledged write k{i} lost"
        );
    }
    for i in 30..40 {
        put(&c, live[0], &format!("k{i}"), &format!("v{i}"), i + 1).await;
    }
    c.spawn(leader);
    let s = wait_caught_up(&c, leader, new_leader).await;
    assert!(
        s.applied_index >= 40,
        "restarted node applied only {}",
        s.applied_index
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_log_was_compacted_away_catches_up_by_snapshot() {
    let mut c = Cluster::start(3, &["--snapshot-every", "20"]);
    let leader = wait_leader(&c, &[1, 2, 3]).await;
    let lagger = if leader == 3 { 2 } else { 3 };
    c.kill(lagger);
    for i in 0..80 {
        put(&c, leader, &format!("s{i}"), &format!("{i}"), i + 1).await;
    }
    let ls = status(&c.addr(leader)).await.unwrap();
    assert!(ls.snapshot_index > 0, "the leader never compacted its log");
    c.spawn(lagger);
    let s = wait_caught_up(&c, lagger, leader).await;
    assert!(
        s.snapshot_index > 0,
        "the lagging node caught up without a snapshot\n{}",
        c.log(lagger)
    );
    // The lagging node can now serve as leader with all the data.
    c.kill(leader);
    let live: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();
    wait_leader(&c, &live).await;
    for i in [0, 41, 79] {
        assert_eq!(
            get(&c, lagger, &format!("s{i}")).await,
            Some(format!("{i}"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_peers_elects_itself_and_serves() {
    let c = Cluster::start(1, &[]);
    assert_eq!(wait_leader(&c, &[1]).await, 1);
    put(&c, 1, "solo", "yes", 1).await;
    assert_eq!(get(&c, 1, "solo").await.as_deref(), Some("yes"));
    assert_eq!(get(&c, 1, "absent").await, None);
}

fn run_node(args: &[&str]) -> (i32, String) {
    let out = Command::new(NODE)
        .args(args)
        .output()
        .expect("run raft-node");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_str().unwrap();
    for args in [
        vec!["--id", "0", "--data-dir", dir],
        vec!["--id", "1"],
        vec!["--id", "1", "--data-dir", dir, "--peer", "nonsense"],
        vec!["--id", "1", "--data-dir", dir, "--peer", "1=127.0.0.1:1"],
        vec!["--id", "1", "--data-dir", dir, "--bug", "no-such-bug"],
        vec!["--id", "1", "--data-dir", dir, "--read-mode", "guess"],
    ] {
        let (code, err) = run_node(&args);
        assert_eq!(code, 2, "{args:?} exited {code}: {err}");
        assert!(!err.trim().is_empty(), "{args:?} gave no message");
    }
}

#[test]
fn a_data_dir_of_another_node_or_in_use_is_refused_with_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("n");
    let dir = dir.to_str().unwrap();
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut first = Command::new(NODE)
        .args(["--id", "1", "--data-dir", dir, "--listen", &listen])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first node holds the lock (it has created its files).
    let start = Instant::now();
    while std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0) == 0 && start.elapsed() < PATIENCE
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let listen2 = format!("127.0.0.1:{}", free_port());
    let (code, err) = run_node(&["--id", "1", "--data-dir", dir, "--listen", &listen2]);
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(
        code, 2,
        "a second process on a locked data dir exited {code}: {err}"
    );
    let (code, err) = run_node(&["--id", "2", "--data-dir", dir, "--listen", &listen2]);
    assert_eq!(
        code, 2,
        "a data dir of node 1 opened as node 2 exited {code}: {err}"
    );
    assert!(
        err.contains('1') && err.contains('2'),
        "message should name both ids: {err}"
    );
}
