//! Bad options exit 2 with a message, before anything is started.

mod common;

use common::*;
use std::time::Duration;

fn refused(args: &[&str], needle: &str) {
    let results = tempfile::tempdir().unwrap();
    let out = run_bounded(driver(results.path(), args), Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
    // Nothing was started: no run folder.
    assert!(std::fs::read_dir(results.path()).unwrap().next().is_none());
}

#[test]
fn unknown_nemesis_exits_2_naming_it() {
    refused(
        &["--nemesis", "partition,flood"],
        "unknown nemesis \"flood\"",
    );
}

#[test]
fn zero_nodes_exits_2() {
    refused(&["--nodes", "0"], "--nodes must be between 1 and 5");
}

#[test]
fn zero_time_limit_exits_2() {
    refused(
        &["--time-limit", "0"],
        "--time-limit must be a positive number",
    );
}

#[test]
fn unknown_flag_exits_2() {
    refused(&["--frobnicate"], "--frobnicate");
}

#[test]
fn missing_node_binary_exits_2_saying_so() {
    refused(
        &["--node-bin", "/nonexistent/raft-node"],
        "--node-bin /nonexistent/raft-node is not a file",
    );
}
