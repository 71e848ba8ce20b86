//! `replay DIR` of a recorded run applies the same fault events (f, value)
//! at the same offsets, into a new folder, and prints both verdicts; and a
//! recorded run folder is re-checked offline by `raft-checker check`.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn nemesis_events(dir: &Path) -> Vec<Value> {
    history(dir)
        .into_iter()
        .filter(|e| e["process"] == "nemesis")
        .collect()
}

/// The part of a fault's recorded value that names what was hit.
fn target(v: &Value) -> Value {
    let mut t = serde_json::Map::new();
    for k in ["nodes", "groups", "blocked", "delay_ms", "loss"] {
        if let Some(x) = v.get(k) {
            t.insert(k.into(), x.clone());
        }
    }
    Value::Object(t)
}

/// `v` with node ids `a` and `b` exchanged wherever a node id appears.
fn swap_nodes(v: &Value, a: u64, b: u64) -> Value {
    match v {
        Value::Number(n) if n.as_u64() == Some(a) => Value::from(b),
        Value::Number(n) if n.as_u64() == Some(b) => Value::from(a),
        Value::Array(xs) => Value::Array(xs.iter().map(|x| swap_nodes(x, a, b)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    // Delays and loss are not node ids.
                    let keep = matches!(k.as_str(), "delay_ms" | "loss");
                    (
                        k.clone(),
                        if keep { x.clone() } else { swap_nodes(x, a, b) },
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn run_folders(results: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "latest" && p.is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn replay_applies_the_same_faults_at_the_same_offsets_to_the_same_nodes() {
    let _serial = serial();
    let _ = node_bin();
    let results = tempfile::tempdir().unwrap();
    let args = [
        "--time-limit",
        "8",
        "--nemesis",
        "partition,kill,pause",
        "--partition-shapes",
        "leader,one,halves",
        "--nemesis-interval",
        "1",
        "--rate",
        "200",
        "--op-timeout-ms",
        "1000",
        "--seed",
        "12",
    ];
    let out = run_bounded(driver(results.path(), &args), RUN_TIMEOUT);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let original = run_dir(results.path());
    let replays = tempfile::tempdir().unwrap();
    let out = Command::new(driver_bin())
        .arg("replay")
        .arg(&original)
        .arg("--results")
        .arg(replays.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = out;
    wait_bounded(&mut child, RUN_TIMEOUT);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_no_nodes_left(replays.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let folders = run_folders(replays.path());
    assert_eq!(folders.len(), 1, "{folders:?}");
    let replay = &folders[0];
    assert!(replay
        .file_name()
        .unwrap()
        .to_string_lossy()
        .contains("replay-partition-kill-pause"));
    assert!(
        stdout.contains("original") && stdout.contains("replay"),
        "{stdout}"
    );
    assert!(stdout.contains(&original.display().to_string()), "{stdout}");

    // The scheduled faults (the end-of-run heal is cleanup, not part of the
    // schedule), in schedule order: faults of different kinds scheduled a
    // few ms apart may be recorded in either order on a loaded machine. A
    // stop scheduled at the very end (8 s) races the end-of-run heal, in
    // either run: whichever comes first, that fault ends then.
    let by_schedule = |v: Vec<Value>| {
        let mut v: Vec<Value> = v
            .into_iter()
            .filter(|e| {
                e["value"]["scheduled_at_ms"]
                    .as_u64()
                    .is_some_and(|at| at < 8_000)
            })
            .collect();
        v.sort_by_key(|e| {
            (
                e["value"]["scheduled_at_ms"].as_u64(),
                e["f"].as_str().unwrap_or("").to_string(),
            )
        });
        v
    };
    let a = by_schedule(nemesis_events(&original));
    let mut b = by_schedule(nemesis_events(replay));
    // A fault the original's end-of-run heal stopped before its scheduled
    // stop may get that stop in the replay, at the very end: only later
    // events than the original's last may be extra.
    let last = a
        .last()
        .and_then(|e| e["value"]["scheduled_at_ms"].as_u64())
        .unwrap_or(0);
    assert!(b.len() >= a.len(), "the replay lost faults: {a:?} / {b:?}");
    assert!(
        b[a.len()..]
            .iter()
            .all(|e| e["value"]["scheduled_at_ms"].as_u64() >= Some(last)),
        "extra faults before the end: {b:?}"
    );
    b.truncate(a.len());
    assert!(a.len() >= 6, "the original run had too few faults: {a:?}");
    let fs = |v: &[Value]| v.iter().map(|e| e["f"].clone()).collect::<Vec<_>>();
    assert_eq!(fs(&a), fs(&b), "the same faults in the same order");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            x["value"]["scheduled_at_ms"], y["value"]["scheduled_at_ms"],
            "{x} / {y}"
        );
        let (tx, ty) = (x["time"].as_f64().unwrap(), y["time"].as_f64().unwrap());
        // Applying a fault may wait for a leader lookup; offsets agree to
        // well under one fault interval.
        assert!(
            (tx - ty).abs() < 700e6,
            "offsets differ by {} ms: {x} / {y}",
            (tx - ty).abs() / 1e6
        );
        let f = x["f"].as_str().unwrap();
        if f.starts_with("start-") {
            // Aimed by role: where the replayed cluster's leader is another
            // node, the replay swaps the two and says so.
            let expected = match y["value"]["aimed"]["swapped"].as_array() {
                Some(pair) => swap_nodes(
                    &target(&x["value"]),
                    pair[0].as_u64().unwrap(),
                    pair[1].as_u64().unwrap(),
                ),
                None => target(&x["value"]),
            };
            assert_eq!(expected, target(&y["value"]), "{f}: {x} / {y}");
        }
    }
    let test: Value =
        serde_json::from_slice(&std::fs::read(replay.join("test.json")).unwrap()).unwrap();
    assert_eq!(test["seed"], 12);
    assert!(test["replay_of"]
        .as_str()
        .unwrap()
        .ends_with(original.file_name().unwrap().to_str().unwrap()));
}

#[test]
fn checker_rechecks_a_run_folder_offline_with_another_time_limit() {
    let _serial = serial();
    let _ = node_bin();
    let results = tempfile::tempdir().unwrap();
    let args = [
        "--time-limit",
        "4",
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "1",
        "--rate",
        "200",
        "--seed",
        "4",
    ];
    let out = run_bounded(driver(results.path(), &args), RUN_TIMEOUT);
    assert_eq!(out.status.code(), Some(0));
    let dir = run_dir(results.path());
    let checker = driver_bin().parent().unwrap().join("raft-checker");
    assert!(checker.is_file(), "{} is missing", checker.display());
    let out = run_bounded(
        {
            let mut c = Command::new(&checker);
            c.arg("check").arg(&dir).arg("--time-limit").arg("30");
            c
        },
        Duration::from_secs(60),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res: Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(res["valid"], true);
}

#[test]
fn replay_of_a_folder_that_is_not_a_run_exits_2() {
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(driver_bin())
        .arg("replay")
        .arg(d.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a run folder"));
}
