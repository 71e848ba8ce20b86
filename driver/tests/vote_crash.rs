//! The vote-crash nemesis against the real raft-node: it crashes its voter
//! right after a vote (the crash-after-vote failpoint), restarts it,
//! records both in the history, and a correct cluster stays valid and
//! keeps election safety under it.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// How the driver reports raft-node's failpoint exit (code 86).
const FAILPOINT_EXIT: &str = "exit status: 86";

#[test]
fn vote_crash_crashes_the_voter_after_its_vote_restarts_it_and_a_correct_cluster_stays_valid() {
    let _serial = serial();
    let _ = node_bin();
    let results = tempfile::tempdir().unwrap();
    let args = [
        "--nemesis",
        "vote-crash",
        "--time-limit",
        "20",
        "--nemesis-interval",
        "7",
        // Short timeouts: both sides campaign soon after the voter dies.
        "--election-timeout-ms",
        "400",
        "--heartbeat-ms",
        "40",
        "--rate",
        "100",
        "--op-timeout-ms",
        "1000",
        "--seed",
        "5",
    ];
    let out = run_bounded(driver(results.path(), &args), RUN_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_no_nodes_left(results.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "a correct cluster must stay valid under vote-crash\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = run_dir(results.path());
    let h = history(&dir);
    let nemesis: Vec<&Value> = h.iter().filter(|e| e["process"] == "nemesis").collect();
    let starts: Vec<&&Value> = nemesis
        .iter()
        .filter(|e| e["f"] == "start-vote-crash")
        .collect();
    let stops: Vec<&&Value> = nemesis
        .iter()
        .filter(|e| e["f"] == "stop-vote-crash")
        .collect();
    assert!(!starts.is_empty(), "no start-vote-crash in {nemesis:?}");
    assert_eq!(starts.len(), stops.len(), "every start has its stop");
    for s in &starts {
        // Two sides that share the crashing voter.
        let groups = s["value"]["groups"].as_array().unwrap();
        let node = s["value"]["node"].as_u64().unwrap();
        assert_eq!(groups.len(), 2);
        assert!(groups
            .iter()
            .all(|g| g.as_array().unwrap().contains(&Value::from(node))));
        assert_eq!(s["value"]["killed"], true);
    }
    // Each fault restarts its node at least once (after the kill that
    // starts it); some fault crashes it by the failpoint right after a vote.
    let events: Vec<&Value> = stops
        .iter()
        .flat_map(|s| s["value"]["events"].as_array().unwrap())
        .collect();
    assert!(
        stops.iter().all(|s| s["value"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["restarted_after_ms"].is_u64() && e["armed"] == "ok")),
        "a fault without an armed restart: {stops:?}"
    );
    let crashes = events
        .iter()
        .filter(|e| {
            e["exit"]
                .as_str()
                .is_some_and(|x| x.contains(FAILPOINT_EXIT))
        })
        .count();
    assert!(crashes >= 1, "the failpoint never fired: {events:?}");
    let fired = (1..=3).any(|n| {
        std::fs::read_to_string(dir.join(format!("nodes/n{n}.log")))
            .unwrap()
            .contains("failpoint crash-after-vote fired")
    });
    assert!(fired, "no node log says the failpoint fired");
    let results_json: Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results_json["valid"], true);
    assert_eq!(results_json["election_safety"]["valid"], true);
}
