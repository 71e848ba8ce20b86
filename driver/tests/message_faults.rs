//! End to end: raft-node stays valid while the proxies duplicate, reorder,
//! delay and replay its peer messages between partitions, and every frame
//! the proxies deliver is one the node can read.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn message_faults_and_partitions_leave_a_correct_node_valid() {
    let _serial = serial();
    let _ = node_bin();
    let results = tempfile::tempdir().unwrap();
    // 24 s: a replay needs a reset and the reconnection after it inside
    // one fault window, and on a loaded machine 15 s of windows once held
    // none.
    let args = [
        "--time-limit",
        "24",
        "--rate",
        "300",
        "--nemesis",
        "messages,partition",
        "--nemesis-interval",
        "1.5",
        "--op-timeout-ms",
        "1000",
        "--sever-on-partition",
        "--seed",
        "3",
    ];
    run_expecting_valid(results.path(), &args, RUN_TIMEOUT);
    let dir = run_dir(results.path());
    let h = history(&dir);
    let nemesis = |f: &str| -> Vec<&Value> {
        h.iter()
            .filter(|e| e["process"] == "nemesis" && e["f"] == f)
            .map(|e| &e["value"])
            .collect()
    };
    assert!(!nemesis("start-partition").is_empty());
    let starts = nemesis("start-messages");
    assert!(!starts.is_empty(), "no message fault ran");
    for v in &starts {
        assert!(v["faults"]["seed"].is_u64() && v["links"].is_array(), "{v}");
    }
    // The faults acted on the nodes' real traffic.
    let total = |k: &str| -> u64 {
        nemesis("stop-messages")
            .iter()
            .map(|v| v[k].as_u64().unwrap())
            .sum()
    };
    for k in ["duplicated", "reordered", "delayed", "replayed"] {
        assert!(
            total(k) > 0,
            "nothing {k} in {:?}",
            nemesis("stop-messages")
        );
    }
    // No node read a malformed frame: every frame was moved whole.
    for n in 1..=3 {
        let log = std::fs::read_to_string(dir.join(format!("nodes/n{n}.log"))).unwrap();
        assert!(
            !log.contains("bad peer frame") && !log.contains("exceeds the limit"),
            "n{n} read a malformed frame"
        );
    }
}
