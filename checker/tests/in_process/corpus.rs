//! Every Knossos history in the shared corpus gets its expected verdict, and
//! the bad ones with a known first impossible operation name that one.

use raft_checker::jepsen::read_edn_file;
use raft_checker::{check_history, CheckOptions, CheckResult, RegisterKind, Validity};
use std::path::{Path, PathBuf};

/// The corpus folder, or None (with the reason printed) on a clone without
/// `../shared`. CI sets RAFT_CHECKER_REQUIRE_CORPUS=1, and then a missing
/// corpus fails: these tests must never pass there without it.
fn corpus_dir() -> Option<PathBuf> {
    // RAFT_CHECKER_CORPUS points elsewhere (a worktree without ../shared).
    let dir = std::env::var_os("RAFT_CHECKER_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/corpus/knossos/cas-register"
            ))
            .to_path_buf()
        });
    if dir.join("good").is_dir() && dir.join("bad").is_dir() {
        return Some(dir);
    }
    let why = format!(
        "the Knossos corpus is missing: expected {} (the repo's ../shared/corpus, or \
         RAFT_CHECKER_CORPUS)",
        dir.display()
    );
    assert!(
        std::env::var_os("RAFT_CHECKER_REQUIRE_CORPUS").is_none(),
        "{why}; RAFT_CHECKER_REQUIRE_CORPUS is set, so this test must not pass without it"
    );
    eprintln!("skipped: {why}");
    None
}

fn edn_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "edn"))
        .collect();
    files.sort();
    files
}

/// Knossos semantics: a cas register starting at 0, and a nil read is unknown.
fn check(path: &Path) -> CheckResult {
    let h = read_edn_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let opts = CheckOptions {
        model: RegisterKind::CasRegister,
        initial_value: serde_json::json!(0),
        null_read_is_unknown: true,
        time_limit: Some(std::time::Duration::from_secs(60)),
        ..CheckOptions::default()
    };
    check_history(&h.events, &opts)
        .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.locate(&h)))
}

#[test]
fn every_good_knossos_history_is_linearizable() {
    let Some(dir) = corpus_dir() else { return };
    let files = edn_files(&dir.join("good"));
    assert!(files.len() >= 100, "only {} good files", files.len());
    for f in files {
        let r = check(&f);
        assert_eq!(r.valid, Validity::Valid, "{}: {}", f.display(), r.summary);
    }
}

#[test]
fn every_bad_knossos_history_is_not_linearizable() {
    let Some(dir) = corpus_dir() else { return };
    let files = edn_files(&dir.join("bad"));
    assert!(files.len() >= 7, "only {} bad files", files.len());
    for f in files {
        let r = check(&f);
        assert_eq!(r.valid, Validity::Invalid, "{}: {}", f.display(), r.summary);
        assert_eq!(r.explanations.len(), 1, "{}", f.display());
    }
}

#[test]
fn bad_knossos_histories_name_the_known_first_impossible_operation() {
    // From shared/corpus/README.md: (file, process, value read, index).
    let known = [
        ("immediate-failure.edn", 1, 3, 3),
        ("rethink-fail-minimal.edn", 1, 3, 4),
        ("bad-analysis.edn", 21, 2, 14),
        ("cas-failure.edn", 70, 0, 491),
        ("rethink-fail-smaller.edn", 12, 3, 217),
    ];
    let Some(dir) = corpus_dir() else { return };
    let dir = dir.join("bad");
    for (file, process, value, index) in known {
        let r = check(&dir.join(file));
        let e = &r.explanations[0];
        assert_eq!(
            (
                e.op.process,
                e.op.f.as_str(),
                e.op.value.clone(),
                e.op.index
            ),
            (process, "read", serde_json::json!(value), index),
            "{file}: {}",
            e.message
        );
        assert!(!e.states.is_empty(), "{file}: no states reported");
        assert!(
            !e.states.contains(&serde_json::json!(value)),
            "{file}: the value read cannot be among the states it could have seen"
        );
    }
}

#[test]
fn knossos_histories_keep_their_verdict_through_json_lines() {
    let Some(dir) = corpus_dir() else { return };
    for file in [
        "bad/cas-failure.edn",
        "bad/rethink-fail-smaller.edn",
        "good/mongodb-v0-ack-rollback-.edn",
        "good/memstress3-0.edn",
    ] {
        let path = dir.join(file);
        let edn = read_edn_file(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut buf = Vec::new();
        {
            let mut w = raft_checker::HistoryWriter::new(&mut buf);
            for e in &edn.events {
                w.write(e.clone()).expect("write to memory");
            }
        }
        let jsonl = raft_checker::history::read_jsonl(buf.as_slice())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            jsonl.events, edn.events,
            "{file}: events changed on the way"
        );
        let opts = CheckOptions {
            model: RegisterKind::CasRegister,
            initial_value: serde_json::json!(0),
            null_read_is_unknown: true,
            ..CheckOptions::default()
        };
        let a = check_history(&edn.events, &opts).unwrap();
        let b = check_history(&jsonl.events, &opts).unwrap();
        assert_eq!(
            (a.valid, a.explanations.first().map(|e| e.op.index)),
            (b.valid, b.explanations.first().map(|e| e.op.index)),
            "{file}"
        );
    }
}
