//! The power-cut nemesis against the real raft-node, on faultfs mounts:
//! `--bug no-fsync` (the node never fdatasyncs its log) is caught by power
//! cuts alone, and a correct raft-node, which syncs before it answers,
//! stays valid under them while the cuts do lose bytes (its unsynced tail
//! at the instant of the kill). Skips, saying why, without FUSE.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Short runs with a cut every 2.5 s or so. Measured on 2 cores: seeds 2,
/// 3, 5 and 6 caught no-fsync in their one 10 s run (12 s of wall time
/// each); seed 4 did not (its schedule cuts only node 1, twice, and the
/// others still hold every acknowledged write). A correct raft-node stayed
/// valid under seeds 2 to 6.
fn power_cut_args<'a>(seed: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "--nemesis",
        "power-cut",
        "--time-limit",
        "10",
        "--nemesis-interval",
        "2.5",
        "--recovery-timeout",
        "10",
        "--seed",
        seed,
    ];
    a.extend_from_slice(extra);
    a
}

fn fuse_missing() -> bool {
    match raft_faultfs::fuse_unavailable() {
        Some(why) => {
            eprintln!("skipped: FUSE is unavailable: {why}");
            true
        }
        None => false,
    }
}

/// The start-power-cut events of a run.
fn cuts(dir: &std::path::Path) -> Vec<Value> {
    history(dir)
        .into_iter()
        .filter(|e| e["process"] == "nemesis" && e["f"] == "start-power-cut")
        .collect()
}

#[test]
fn power_cuts_alone_catch_a_node_that_never_syncs() {
    if fuse_missing() {
        return;
    }
    let _serial = serial();
    let _ = node_bin();
    // Seeds whose schedules cut every node at once; the first sufficed in
    // every measurement, the others are for an unlucky interleaving.
    let mut tried = Vec::new();
    for seed in ["2", "3", "5"] {
        let results = tempfile::tempdir().unwrap();
        let out = run_bounded(
            driver(
                results.path(),
                &power_cut_args(seed, &["--bug", "no-fsync"]),
            ),
            RUN_TIMEOUT,
        );
        assert_no_nodes_left(results.path());
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let dir = run_dir(results.path());
        let cuts = cuts(&dir);
        assert!(!cuts.is_empty(), "seed {seed}: no power cut was made");
        // A node that never syncs always has something to lose.
        let lost: u64 = cuts
            .iter()
            .map(|c| c["value"]["bytes_lost"].as_u64().unwrap())
            .sum();
        assert!(lost > 0, "seed {seed}: the cuts lost nothing: {cuts:?}");
        if out.status.code() == Some(1) {
            assert!(
                stdout.contains("linearizab") || stdout.contains("node-invariants"),
                "{stdout}"
            );
            return;
        }
        tried.push(format!("seed {seed}: {:?}\n{stdout}", out.status.code()));
    }
    panic!("no-fsync was not caught by power cuts: {tried:#?}");
}

#[test]
fn a_node_that_syncs_stays_valid_under_power_cuts_that_lose_bytes() {
    if fuse_missing() {
        return;
    }
    let _serial = serial();
    let _ = node_bin();
    let results = tempfile::tempdir().unwrap();
    let out = run_bounded(
        driver(results.path(), &power_cut_args("2", &[])),
        RUN_TIMEOUT,
    );
    assert_no_nodes_left(results.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "raft-node must stay valid under power cuts\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = run_dir(results.path());
    let cuts = cuts(&dir);
    assert!(!cuts.is_empty());
    // Its unsynced tail at the kill is usually empty (it syncs before it
    // answers), so bytes lost are not asserted here; every cut succeeded.
    for c in &cuts {
        for n in c["value"]["cuts"].as_array().unwrap() {
            assert!(n["error"].is_null(), "a cut failed: {c}");
        }
    }
    // After the run the mounts are gone and the data is in the backing
    // folders.
    assert!(dir.join("harness/n1.backing").is_dir());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !mounts.contains(&dir.display().to_string()),
        "a faultfs mount outlived the run"
    );
}
