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

/// `v` with every node id moved as `mapping` (`[recorded, replayed]`
/// pairs; ids not named stay) says.
fn map_nodes(v: &Value, mapping: &[(u64, u64)]) -> Value {
    match v {
        Value::Number(n) => match mapping.iter().find(|(a, _)| n.as_u64() == Some(*a)) {
            Some((_, b)) => Value::from(*b),
            None => v.clone(),
        },
        Value::Array(xs) => Value::Array(xs.iter().map(|x| map_nodes(x, mapping)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    // Delays and loss are not node ids.
                    let keep = matches!(k.as_str(), "delay_ms" | "loss");
                    (
                        k.clone(),
                        if keep {
                            x.clone()
                        } else {
                            map_nodes(x, mapping)
                        },
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The history's first entry (run-start) value.
fn run_start(dir: &Path) -> Value {
    history(dir)
        .into_iter()
        .find(|e| e["f"] == "run-start")
        .map(|e| e["value"].clone())
        .expect("no run-start entry")
}

/// `raft-driver replay ORIGINAL --results RESULTS`, waited for (bounded);
/// no node of it may outlive it.
fn replay_into(original: &Path, results: &Path) -> std::process::Output {
    let mut child = Command::new(driver_bin())
        .arg("replay")
        .arg(original)
        .arg("--results")
        .arg(results)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(&mut child, RUN_TIMEOUT);
    let out = child.wait_with_output().unwrap();
    assert_no_nodes_left(results);
    out
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
    let out = replay_into(&original, replays.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
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
    // A fault's time is when its action completed. Applying one may wait
    // for leader lookups (500 ms each), and a SIGKILL completes only when
    // the node leaves the fdatasync it is in, which on a busy disk took
    // 3 s once (CI, with a second test lane). So most offsets agree to well
    // under one fault interval, and none is off by more than a slow kill.
    let mut slips = Vec::new();
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            x["value"]["scheduled_at_ms"], y["value"]["scheduled_at_ms"],
            "{x} / {y}"
        );
        let (tx, ty) = (x["time"].as_f64().unwrap(), y["time"].as_f64().unwrap());
        let slip_ms = (tx - ty).abs() / 1e6;
        assert!(
            slip_ms < 5_000.0,
            "offsets differ by {slip_ms} ms: {x} / {y}"
        );
        slips.push(slip_ms);
        let f = x["f"].as_str().unwrap();
        if f.starts_with("start-") {
            // Aimed by role: every fault goes through the replay's one
            // mapping of nodes (the recorded leader moved onto the node
            // leading now), which the history states with each fault.
            let mapping: Vec<(u64, u64)> = y["value"]["aimed"]["mapping"]
                .as_array()
                .unwrap_or_else(|| panic!("{f} has no mapping: {y}"))
                .iter()
                .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
                .collect();
            let mut images: Vec<u64> = (1..=3)
                .map(|i| mapping.iter().find(|p| p.0 == i).map_or(i, |p| p.1))
                .collect();
            images.sort();
            assert_eq!(images, [1, 2, 3], "not a permutation: {y}");
            let expected = map_nodes(&target(&x["value"]), &mapping);
            assert_eq!(expected, target(&y["value"]), "{f}: {x} / {y}");
        }
    }
    slips.sort_by(f64::total_cmp);
    let median = slips[slips.len() / 2];
    assert!(
        median < 700.0,
        "the replay's faults slipped by a median of {median} ms: {slips:?}"
    );
    // The replay first handed leadership to the recorded run's leader,
    // and says what came of it.
    let recorded = run_start(&original)["leader"].as_u64().expect("leader");
    let started = run_start(replay);
    assert_eq!(started["steered"]["to"], recorded, "{started}");
    let result = started["steered"]["result"].as_str().unwrap();
    if result == "transferred" || result == "already leading" {
        assert_eq!(started["leader"], recorded, "{started}");
    }
    assert!(stdout.contains("leader at start"), "{stdout}");
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

#[test]
fn a_replay_hands_leadership_to_the_recorded_first_leader() {
    let _serial = serial();
    let _ = node_bin();
    let results = tempfile::tempdir().unwrap();
    let args = [
        "--time-limit",
        "3",
        "--nemesis",
        "none",
        "--rate",
        "100",
        "--seed",
        "21",
        "--keep-history-uncompressed",
    ];
    let out = run_bounded(driver(results.path(), &args), RUN_TIMEOUT);
    assert_eq!(out.status.code(), Some(0));
    let original = run_dir(results.path());
    // Say another node led at the start: the replay, whose seeded cluster
    // elects the recorded one by itself, must move leadership there.
    let path = original.join("history.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut first: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["f"], "run-start");
    let recorded = first["value"]["leader"].as_u64().unwrap();
    let want = recorded % 3 + 1;
    first["value"]["leader"] = want.into();
    lines[0] = first.to_string();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let replays = tempfile::tempdir().unwrap();
    let out = replay_into(&original, replays.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let replay = run_folders(replays.path()).pop().expect("a replay folder");
    let started = run_start(&replay);
    assert_eq!(started["steered"]["to"], want, "{started}");
    assert_eq!(started["steered"]["result"], "transferred", "{started}");
    assert_eq!(started["leader"], want, "{started}");
    assert!(
        stdout.contains(&format!("n{want} (steered: transferred)")),
        "{stdout}"
    );
}
