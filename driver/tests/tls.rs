//! End to end: `run --tls` (issue 16) gives the nodes certificates from a
//! throwaway CA, talks to them over mutual TLS through its proxies while
//! partitions, kills and leader transfers (admin calls) strike, and the
//! run stays valid; `--tls` with etcd is refused.

mod common;

use common::*;
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn a_tls_run_with_partitions_kills_and_transfers_is_valid() {
    let _serial = serial();
    let _ = node_bin();
    let results = tempfile::tempdir().unwrap();
    let args = [
        "--tls",
        "--time-limit",
        "9",
        "--rate",
        "200",
        "--nemesis",
        "partition,kill,leader-transfer",
        "--nemesis-interval",
        "1.5",
        "--op-timeout-ms",
        "1000",
        "--seed",
        "16",
    ];
    run_expecting_valid(results.path(), &args, RUN_TIMEOUT);
    let dir = run_dir(results.path());
    // The run's PKI, and test.json says it was a TLS run (replay repeats it).
    let tls = dir.join("tls");
    assert!(tls.join("ca.pem").is_file());
    for sub in ["n1", "n2", "n3", "client"] {
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            assert!(tls.join(sub).join(f).is_file(), "tls/{sub}/{f}");
        }
    }
    let test: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("test.json")).unwrap()).unwrap();
    assert_eq!(test["options"]["tls"], true, "{}", test["options"]);
    for n in 1..=3 {
        let log = std::fs::read_to_string(dir.join(format!("nodes/n{n}.log"))).unwrap();
        assert!(log.contains("mutual TLS on"), "node {n} ran without TLS");
    }
    // Faults struck, and the driver's certificate may make admin calls.
    let h = history(&dir);
    let events = |f: &str| {
        h.iter()
            .filter(|e| e["process"] == "nemesis" && e["f"] == f)
            .map(|e| e["value"].to_string())
            .collect::<Vec<_>>()
    };
    assert!(!events("start-partition").is_empty());
    assert!(!events("start-kill").is_empty());
    for v in events("start-transfer") {
        assert!(!v.contains("admin calls need"), "refused: {v}");
    }
    let ok_clients = h
        .iter()
        .filter(|e| e["process"].is_u64() && e["type"] == "ok")
        .count();
    assert!(ok_clients > 100, "only {ok_clients} ok operations over TLS");
}

#[test]
fn tls_with_etcd_is_refused_as_bad_usage() {
    let results = tempfile::tempdir().unwrap();
    let out = run_bounded(
        driver(
            results.path(),
            &["--tls", "--target", "etcd", "--time-limit", "1"],
        ),
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--tls"), "{stderr}");
}
