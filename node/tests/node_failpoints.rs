//! Each crash point fires where it says (exit code 86, a `failpoint`
//! event), and the node recovers correctly after it: what it acknowledged
//! or applied is still there, and it serves the cluster's data as leader.

mod process_support;

use process_support::*;
use raft_proto::kvpb;
use std::time::{Duration, Instant};

const CRASH: Option<i32> = Some(86);

/// Arms `name` on node `id` through the Failpoint call.
async fn arm(c: &Cluster, id: u64, name: &str) {
    let mut cl = client(&c.addr(id)).await.expect("node reachable");
    let r = cl
        .failpoint(kvpb::FailpointRequest {
            name: name.into(),
            armed: true,
        })
        .await
        .expect("a node with --test-hooks arms failpoints")
        .into_inner();
    assert_eq!(code(&r.error), kvpb::Code::Ok, "{:?}", r.error);
}

/// Makes `target` the leader (by transfer from whoever leads).
async fn lead(c: &Cluster, live: &[u64], target: u64) {
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        let leader = wait_leader(c, live).await;
        if leader == target {
            return;
        }
        if let Some(mut cl) = client(&c.addr(leader)).await {
            let _ = cl
                .transfer_leader(kvpb::TransferLeaderRequest { target_id: target })
                .await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("node {target} never took over");
}

fn fired(c: &Cluster, id: u64, name: &str) -> bool {
    c.events(id)
        .iter()
        .any(|e| e["event"] == "failpoint" && e["name"] == name)
}

/// The snapshot index node `id` found at its `n`-th start (waiting for it).
fn booted_snapshot_index(c: &Cluster, id: u64, n: usize) -> u64 {
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        let ev = c.events(id);
        let boots: Vec<_> = ev.iter().filter(|e| e["event"] == "boot").collect();
        if let Some(b) = boots.get(n - 1) {
            return b["snapshot_index"].as_u64().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("node {id} did not boot {n} times\n{}", c.log(id));
}

fn no_invariant_reports(c: &Cluster, ids: &[u64]) {
    for &id in ids {
        for e in c.events(id) {
            assert_ne!(e["event"], "invariant", "node {id}: {e}");
        }
    }
}

fn others(leader: u64) -> (u64, u64) {
    let mut o = (1..=3).filter(|&i| i != leader);
    (o.next().unwrap(), o.next().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_a_follower_acknowledged_before_crashing_survive_and_win_the_election() {
    let mut c = Cluster::start(3, &[]);
    let leader = wait_leader(&c, &[1, 2, 3]).await;
    let (f, g) = others(leader);
    put(&c, leader, "before", "0", 1).await;
    // Only f can complete a majority with the leader now.
    c.kill(g);
    arm(&c, f, "crash-after-append").await;
    put(&c, leader, "acked", "1", 2).await;
    assert_eq!(c.wait_exit(f, PATIENCE), CRASH, "{}", c.log(f));
    assert!(fired(&c, f, "crash-after-append"));
    // The leader is the only other copy of "acked": without it, f's
    // durable log must carry it (and win the vote of g, which lacks it).
    c.kill(leader);
    c.spawn(f);
    c.spawn(g);
    assert_eq!(
        wait_leader(&c, &[f, g]).await,
        f,
        "the log with the acked entry must win"
    );
    assert_eq!(get(&c, f, "acked").await.as_deref(), Some("1"));
    assert_eq!(get(&c, f, "before").await.as_deref(), Some("0"));
    no_invariant_reports(&c, &[1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_append_skips_a_catch_up_on_committed_entries_and_fires_on_the_next_new_one() {
    let mut c = Cluster::start(3, &[]);
    let leader = wait_leader(&c, &[1, 2, 3]).await;
    let (f, g) = others(leader);
    c.kill(g);
    for i in 0..20 {
        put(&c, leader, &format!("k{i}"), "v", i + 1).await;
    }
    // Back armed from its start: the twenty entries it fetches are all
    // committed, and its acks decide nothing, so it must not crash there
    // (Figure 8 needs the crash after the old-term entries nobody
    // committed, not after a lagging voter's catch-up).
    c.spawn_with(g, &["--failpoint", "crash-after-append"]);
    wait_caught_up(&c, g, leader).await;
    assert!(c.running(g), "{}", c.log(g));
    assert!(!fired(&c, g, "crash-after-append"));
    put(&c, leader, "new", "1", 100).await;
    assert_eq!(c.wait_exit(g, PATIENCE), CRASH, "{}", c.log(g));
    assert!(fired(&c, g, "crash-after-append"));
    // What it acknowledged is on its disk.
    c.spawn(g);
    c.kill(f);
    assert_eq!(get(&c, leader, "new").await.as_deref(), Some("1"));
    no_invariant_reports(&c, &[1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_the_middle_of_installing_a_snapshot_recovers_and_catches_up() {
    let mut c = Cluster::start(3, &["--snapshot-every", "20"]);
    let leader = wait_leader(&c, &[1, 2, 3]).await;
    let (f, g) = others(leader);
    c.kill(g);
    for i in 0..60 {
        put(&c, leader, &format!("s{i}"), &format!("{i}"), i + 1).await;
    }
    c.spawn_with(g, &["--failpoint", "crash-during-snapshot-install"]);
    assert_eq!(c.wait_exit(g, PATIENCE), CRASH, "{}", c.log(g));
    assert!(fired(&c, g, "crash-during-snapshot-install"));
    c.spawn(g);
    // The snapshot was written before the crash; the stale log beside it
    // was not reset, and recovery must sort that out.
    assert!(booted_snapshot_index(&c, g, 3) > 0, "{}", c.log(g));
    let s = wait_caught_up(&c, g, leader).await;
    assert!(s.snapshot_index > 0, "{s:?}");
    lead(&c, &[1, 2, 3], g).await;
    c.kill(f);
    for i in [0, 19, 20, 41, 59] {
        assert_eq!(get(&c, g, &format!("s{i}")).await, Some(format!("{i}")));
    }
    no_invariant_reports(&c, &[1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_writing_a_snapshot_and_dropping_the_log_recovers() {
    let mut c = Cluster::start(3, &["--snapshot-every", "20"]);
    let leader = wait_leader(&c, &[1, 2, 3]).await;
    let (f, _) = others(leader);
    arm(&c, f, "crash-during-compaction").await;
    let mut seq = 0;
    while c.running(f) {
        seq += 1;
        assert!(seq < 200, "node {f} never compacted");
        put(&c, leader, &format!("c{seq}"), &format!("{seq}"), seq).await;
    }
    assert_eq!(c.wait_exit(f, PATIENCE), CRASH, "{}", c.log(f));
    assert!(fired(&c, f, "crash-during-compaction"));
    c.spawn(f);
    assert!(booted_snapshot_index(&c, f, 2) > 0, "{}", c.log(f));
    wait_caught_up(&c, f, leader).await;
    lead(&c, &[1, 2, 3], f).await;
    c.kill(leader);
    for i in 1..=seq {
        assert_eq!(get(&c, f, &format!("c{i}")).await, Some(format!("{i}")));
    }
    no_invariant_reports(&c, &[1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_entries_not_yet_applied_at_a_crash_are_applied_after_restart() {
    let mut c = Cluster::start(3, &[]);
    let leader = wait_leader(&c, &[1, 2, 3]).await;
    let (f, _) = others(leader);
    put(&c, leader, "early", "e", 1).await;
    wait_caught_up(&c, f, leader).await;
    arm(&c, f, "crash-before-apply").await;
    put(&c, leader, "late", "l", 2).await;
    assert_eq!(c.wait_exit(f, PATIENCE), CRASH, "{}", c.log(f));
    assert!(fired(&c, f, "crash-before-apply"));
    c.spawn(f);
    wait_caught_up(&c, f, leader).await;
    lead(&c, &[1, 2, 3], f).await;
    c.kill(leader);
    assert_eq!(get(&c, f, "late").await.as_deref(), Some("l"));
    assert_eq!(get(&c, f, "early").await.as_deref(), Some("e"));
    no_invariant_reports(&c, &[1, 2, 3]);
}
