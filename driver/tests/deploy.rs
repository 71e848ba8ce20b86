//! Campaigns on a real engine (issue 14): the GitHub workflow and the
//! Kubernetes Jobs parse and agree (scripts/check-deploy-yaml.py), and what
//! they do is done here for real: two shards of a tiny campaign, each in
//! its own folder as an artifact would arrive, merged by `summarize` into
//! one summary whose counts and exit code are the campaign's.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn check_yaml(root: &Path) -> std::process::Output {
    Command::new("python3")
        .arg(repo_root().join("scripts/check-deploy-yaml.py"))
        .arg(root)
        .output()
        .expect("python3 runs (the deployment checks need it)")
}

/// True (with the reason printed) where python3 has no PyYAML: the checks
/// cannot run there, and say so rather than fail a fresh machine.
fn no_yaml_here() -> bool {
    let out = check_yaml(&repo_root());
    let missing = String::from_utf8_lossy(&out.stderr).contains("PyYAML is missing");
    if missing {
        eprintln!("skipped: python3 has no PyYAML (apt-get install python3-yaml)");
    }
    missing
}

#[test]
fn workflow_and_kubernetes_jobs_parse_and_agree() {
    if no_yaml_here() {
        return;
    }
    let out = check_yaml(&repo_root());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn a_shard_count_out_of_step_is_caught() {
    if no_yaml_here() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    for rel in [
        ".github/workflows/nightly.yml",
        "deploy/k8s/campaign-indexed-job.yaml",
        "deploy/k8s/campaign-merge-job.yaml",
    ] {
        let to = t.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo_root().join(rel), &to).unwrap();
    }
    let job = t.path().join("deploy/k8s/campaign-indexed-job.yaml");
    let text = std::fs::read_to_string(&job).unwrap();
    assert!(text.contains("completions: 4"));
    std::fs::write(&job, text.replace("completions: 4", "completions: 3")).unwrap();
    let out = check_yaml(t.path());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("completions"),
        "{out:?}"
    );
    // Broken YAML is named too.
    std::fs::write(&job, "kind: Job\n  bad: [indent\n").unwrap();
    let out = check_yaml(t.path());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not YAML"),
        "{out:?}"
    );
}

fn summary(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn two_shards_on_separate_runners_merge_into_the_campaigns_verdict() {
    let _serial = serial();
    let _ = node_bin();
    let t = tempfile::tempdir().unwrap();
    // As the merge job finds them: shards/<artifact>/campaign-*.
    let mut dirs = Vec::new();
    for k in 1..=2 {
        let results = t.path().join(format!("shards/campaign-shard-{k}"));
        let mut c = Command::new(driver_bin());
        c.arg("campaign")
            .args(["--nemesis", "kill", "--nodes", "3", "--seeds", "2"])
            .args(["--seed", "5", "--time-limit", "2"])
            .arg("--shard")
            .arg(format!("{k}/2"))
            .arg("--results")
            .arg(&results)
            .stdin(Stdio::null());
        let out = run_bounded(c, Duration::from_secs(240));
        let code = out.status.code();
        assert!(matches!(code, Some(0 | 1 | 3)), "{out:?}");
        let found: Vec<PathBuf> = std::fs::read_dir(&results)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("campaign-")
            })
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        let s = summary(&found[0]);
        assert_eq!(s["runs"].as_array().unwrap().len(), 1, "one run per shard");
        assert_eq!(s["shards"], serde_json::json!([format!("{k}/2")]));
        dirs.push(found[0].clone());
    }
    let merged = t.path().join("merged");
    let out = Command::new(driver_bin())
        .arg("summarize")
        .args(&dirs)
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    let s = summary(&merged);
    let counts = &s["counts"];
    let n = |k: &str| counts[k].as_u64().unwrap();
    assert_eq!(n("valid") + n("invalid") + n("unknown"), 2, "{s}");
    assert_eq!(s["planned"], 2);
    assert_eq!(s["shards"], serde_json::json!(["1/2", "2/2"]));
    let idx: Vec<u64> = s["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, [0, 1], "both halves of the matrix, in order");
    // The gate: 1 if any run is invalid, else 3 if any is unknown, else 0.
    let expect = if n("invalid") > 0 {
        1
    } else if n("unknown") > 0 {
        3
    } else {
        0
    };
    assert_eq!(out.status.code(), Some(expect), "{out:?}");
    // raft-node has no known violation under kill: a valid run is expected
    // (an unknown one, e.g. a machine too loaded to elect, is not a bug).
    assert_eq!(n("invalid"), 0, "{s}");
    for r in s["runs"].as_array().unwrap() {
        let d = merged.join(r["dir"].as_str().unwrap());
        assert!(d.join("test.json").is_file(), "{}", d.display());
        if r["verdict"] != "unknown" {
            // A checked run keeps its history compressed.
            assert!(d.join("history.jsonl.zst").is_file(), "{}", d.display());
            assert!(!d.join("history.jsonl").exists(), "{}", d.display());
        }
    }
}
