//! Histories compressed once checked (issue 14): `raft-checker check` on a
//! run folder holding only history.jsonl.zst, or on a .jsonl.zst file,
//! gives the verdict the plain history gave; a truncated .zst is unknown
//! with a reason, never a panic or a silent valid.

use raft_checker::compressed;
use std::path::Path;
use std::process::{Command, Output};

fn checker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raft-checker"))
        .args(args)
        .output()
        .expect("run raft-checker")
}

/// A valid history of `n` sequential write/read pairs on a few keys.
fn valid_history(n: usize) -> String {
    let mut s = String::new();
    let mut i = 0;
    for k in 0..n {
        let key = format!("k{}", k % 7);
        let t = 100 * k as u64;
        for (ty, f, v, dt) in [
            ("invoke", "write", k.to_string(), 0),
            ("ok", "write", k.to_string(), 10),
            ("invoke", "read", "null".into(), 20),
            ("ok", "read", k.to_string(), 30),
        ] {
            s.push_str(&format!(
                "{{\"index\":{i},\"time\":{},\"process\":1,\"type\":\"{ty}\",\"f\":\"{f}\",\"key\":\"{key}\",\"value\":{v}}}\n",
                t + dt
            ));
            i += 1;
        }
    }
    s
}

/// A stale read: key k is written 1 then 2, and a later read returns 1.
const INVALID: &str = r#"{"index":0,"time":10,"process":1,"type":"invoke","f":"write","key":"k","value":1}
{"index":1,"time":20,"process":1,"type":"ok","f":"write","key":"k","value":1}
{"index":2,"time":30,"process":1,"type":"invoke","f":"write","key":"k","value":2}
{"index":3,"time":40,"process":1,"type":"ok","f":"write","key":"k","value":2}
{"index":4,"time":50,"process":2,"type":"invoke","f":"read","key":"k","value":null}
{"index":5,"time":60,"process":2,"type":"ok","f":"read","key":"k","value":1}
"#;

fn results(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap()
}

/// Checks the folder plain, compresses its history, checks it again: same
/// exit code, same verdict and summary.
fn same_verdict_after_compression(history: &str, expect_exit: i32) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("history.jsonl"), history).unwrap();
    let plain = checker(&["check", &d]);
    assert_eq!(plain.status.code(), Some(expect_exit), "{plain:?}");
    let before = results(dir.path());
    compressed::compress_file(&dir.path().join("history.jsonl")).unwrap();
    assert!(!dir.path().join("history.jsonl").exists());
    std::fs::remove_file(dir.path().join("results.json")).unwrap();
    let again = checker(&["check", &d]);
    assert_eq!(again.status.code(), Some(expect_exit), "{again:?}");
    let after = results(dir.path());
    assert_eq!(after["valid"], before["valid"]);
    assert_eq!(after["summary"], before["summary"]);
    assert_eq!(after["op_count"], before["op_count"]);
}

#[test]
fn a_compressed_valid_run_folder_rechecks_valid() {
    same_verdict_after_compression(&valid_history(500), 0);
}

#[test]
fn a_compressed_invalid_run_folder_rechecks_invalid() {
    same_verdict_after_compression(INVALID, 1);
}

#[test]
fn a_jsonl_zst_file_is_checked_like_the_plain_file() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("h.jsonl");
    std::fs::write(&plain, INVALID).unwrap();
    compressed::compress_file(&plain).unwrap();
    let out = checker(&[
        "check",
        &dir.path().join("h.jsonl.zst").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn a_truncated_zst_is_unknown_with_a_reason_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("history.jsonl");
    // Large enough for several zstd blocks, so that half the file decodes.
    std::fs::write(&plain, valid_history(40_000)).unwrap();
    compressed::compress_file(&plain).unwrap();
    let z = dir.path().join("history.jsonl.zst");
    let bytes = std::fs::read(&z).unwrap();
    std::fs::write(&z, &bytes[..bytes.len() / 2]).unwrap();
    let out = checker(&["check", &dir.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let r = results(dir.path());
    assert_eq!(r["valid"], "unknown");
    let text = r.to_string();
    assert!(text.contains("truncated or corrupt"), "{text}");
    // The plot command has no tolerant reading: a clear refusal (exit 2).
    let out = checker(&[
        "plot",
        &z.display().to_string(),
        "--out",
        &dir.path().display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("truncated or corrupt"),
        "{out:?}"
    );
}
