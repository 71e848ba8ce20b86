//! `raft-driver prune`: keeps a results folder within an age and/or size
//! budget by deleting its oldest folders, never a failure.
//!
//! What it looks at, directly under the results folder:
//! - run folders (`<stamp>-<nemesis>`, holding test.json): deletable when
//!   their results.json says valid;
//! - campaign folders (`campaign-<stamp>...`, holding summary.json, their
//!   runs inside): deletable when the summary covers every planned run, none
//!   invalid or unknown, and every run folder inside is valid;
//! - teeth folders (`teeth-<stamp>`): their runs are invalid on purpose (a
//!   switched-on bug caught), so they are judged by teeth.json instead:
//!   deletable when every bug was caught within budget (exit 0).
//!
//! A folder's age is the UTC stamp in its name, which is when it was
//! started (see `run::folder::create_run_dir`): unlike an mtime, copying
//! or touching a folder does not change it. Anything else (bench folders,
//! names without a stamp, files) is never touched, nor is the folder
//! `latest` points at. A run still going has no results.json and so is
//! unknown, and a campaign still going has fewer runs than planned: both
//! are kept like failures, so prune is safe beside running campaigns,
//! except with `--include-failures`, which deletes them too.

use crate::error::UsageError;
use crate::report::summary::Summary;
use crate::run::utc_stamp;
use anyhow::{Context, Result};
use raft_checker::verdict::RunResult;
use raft_checker::Validity;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Command-line options of `raft-driver prune`.
#[derive(Debug, Clone, clap::Args)]
pub struct PruneArgs {
    /// The results folder.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Delete folders started more than N days ago.
    #[arg(long)]
    pub keep_days: Option<f64>,
    /// Then delete the oldest folders until the results folder holds at
    /// most G gigabytes (10^9 bytes, as allocated on disk).
    #[arg(long)]
    pub max_gb: Option<f64>,
    /// Delete invalid and unknown runs too (and campaigns holding them).
    #[arg(long)]
    pub include_failures: bool,
    /// Only list what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
}

/// What kind of folder an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A single run (test.json).
    Run,
    /// A campaign, or a merged summary (summary.json).
    Campaign,
    /// A teeth report folder (teeth-*).
    Teeth,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Run => "run",
            Kind::Campaign => "campaign",
            Kind::Teeth => "teeth",
        }
    }
}

/// One folder prune may delete.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The folder.
    pub path: PathBuf,
    /// Its name's `YYYYMMDDTHHMMSS` (start time, UTC).
    pub stamp: String,
    /// Run, campaign or teeth.
    pub kind: Kind,
    /// Why it counts as a failure (kept without --include-failures).
    pub failure: Option<String>,
    /// Bytes allocated on disk.
    pub bytes: u64,
}

/// The outcome of a prune.
#[derive(Debug, Clone, Default)]
pub struct Pruned {
    /// Folders deleted (or that would be, on a dry run), oldest first.
    pub deleted: Vec<Candidate>,
    /// Over-budget folders kept because they hold a failure.
    pub kept_failures: Vec<Candidate>,
    /// Bytes allocated under the results folder before.
    pub total_before: u64,
    /// Bytes freed.
    pub freed: u64,
}

/// The verdict of one run folder: None if valid, else why not.
fn run_failure(dir: &Path) -> Option<String> {
    match RunResult::read(&dir.join("results.json")) {
        Ok(r) if r.valid == Validity::Valid => None,
        Ok(r) => Some(format!("{} run", r.valid.as_str())),
        Err(_) if !dir.join("results.json").exists() => {
            Some("unknown run (no results.json: unfinished or still running)".into())
        }
        Err(e) => Some(format!("unknown run (results.json unreadable: {e})")),
    }
}

/// The first failing run folder at any depth under `dir`, if any.
fn failing_run_inside(dir: &Path) -> Option<String> {
    let entries = std::fs::read_dir(dir).ok()?;
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if !ft.is_dir() {
            continue;
        }
        let p = e.path();
        if p.join("test.json").is_file() {
            if let Some(why) = run_failure(&p) {
                return Some(format!("{why} {}", p.display()));
            }
        } else if let Some(why) = failing_run_inside(&p) {
            return Some(why);
        }
    }
    None
}

fn campaign_failure(dir: &Path) -> Option<String> {
    let s = match Summary::read(&dir.join("summary.json")) {
        Ok(s) => s,
        Err(e) => return Some(format!("summary unreadable: {e:#}")),
    };
    let c = s.counts;
    if c.invalid + c.unknown > 0 {
        return Some(format!(
            "{} invalid, {} unknown of {} runs",
            c.invalid,
            c.unknown,
            s.runs.len()
        ));
    }
    if s.runs.len() < s.planned {
        return Some(format!(
            "{} of {} planned runs (cut short or still running)",
            s.runs.len(),
            s.planned
        ));
    }
    failing_run_inside(dir).map(|why| format!("holds an {why}"))
}

fn teeth_failure(dir: &Path) -> Option<String> {
    let path = dir.join("teeth.json");
    let report: crate::teeth::TeethReport = match std::fs::read(&path)
        .map_err(anyhow::Error::from)
        .and_then(|b| serde_json::from_slice(&b).map_err(anyhow::Error::from))
    {
        Ok(r) => r,
        Err(e) => return Some(format!("no readable teeth.json ({e})")),
    };
    match report.exit_code() {
        0 => None,
        1 => Some("a bug was missed or caught late".into()),
        _ => Some("the teeth run was cut short".into()),
    }
}

/// Bytes allocated on disk under `path` (symlinks not followed).
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let mut total = meta.blocks() * 512;
    if meta.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.flatten() {
                total += disk_usage(&e.path());
            }
        }
    }
    total
}

/// Every folder under `results` prune may consider, oldest first.
pub fn scan(results: &Path) -> Result<Vec<Candidate>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(results).with_context(|| format!("reading {}", results.display()))? {
        let e = e?;
        // `latest` is a symlink: skipped here, its target is guarded below.
        if !e.file_type()?.is_dir() {
            continue;
        }
        let name = e.file_name().to_string_lossy().to_string();
        let stamp = crate::report::index::stamp_in(&name);
        if stamp.is_empty() {
            continue;
        }
        let dir = e.path();
        let (kind, failure) = if name.starts_with("teeth-") {
            (Kind::Teeth, teeth_failure(&dir))
        } else if dir.join("summary.json").is_file() {
            (Kind::Campaign, campaign_failure(&dir))
        } else if dir.join("test.json").is_file() {
            (Kind::Run, run_failure(&dir))
        } else if name.starts_with("campaign-") {
            // A campaign that has not written its first summary yet.
            (Kind::Campaign, Some("no summary.json yet".into()))
        } else {
            continue;
        };
        out.push(Candidate {
            bytes: disk_usage(&dir),
            path: dir,
            stamp,
            kind,
            failure,
        });
    }
    out.sort_by(|a, b| (&a.stamp, &a.path).cmp(&(&b.stamp, &b.path)));
    Ok(out)
}

/// The budget and what may be spent.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Folders started before this stamp are deleted.
    pub older_than: Option<String>,
    /// Then the oldest go until the total is at most this many bytes.
    pub max_bytes: Option<u64>,
    /// Failures may go too.
    pub include_failures: bool,
}

impl Budget {
    /// The budget of `args` as of `now`.
    pub fn of(args: &PruneArgs, now: SystemTime) -> Result<Budget, String> {
        if args.keep_days.is_none() && args.max_gb.is_none() {
            return Err("prune needs --keep-days N and/or --max-gb G".into());
        }
        let older_than = match args.keep_days {
            Some(d) if !d.is_finite() || d < 0.0 => {
                return Err(format!("--keep-days must be 0 or more, got {d}"))
            }
            Some(d) => Some(utc_stamp(
                now.checked_sub(Duration::from_secs_f64(d * 86_400.0))
                    .unwrap_or(std::time::UNIX_EPOCH),
            )),
            None => None,
        };
        let max_bytes = match args.max_gb {
            Some(g) if !g.is_finite() || g < 0.0 => {
                return Err(format!("--max-gb must be 0 or more, got {g}"))
            }
            Some(g) => Some((g * 1e9) as u64),
            None => None,
        };
        Ok(Budget {
            older_than,
            max_bytes,
            include_failures: args.include_failures,
        })
    }
}

/// The folder `results/latest` points at, if any.
fn latest_target(results: &Path) -> Option<PathBuf> {
    let t = std::fs::read_link(results.join("latest")).ok()?;
    Some(results.join(t))
}

/// Chooses what to delete from `candidates` (oldest first): past the age
/// limit, then oldest first while over the size limit; never a failure
/// unless allowed, never `latest`'s target. `total` is the results
/// folder's size now.
pub fn plan(
    candidates: &[Candidate],
    total: u64,
    budget: &Budget,
    latest: Option<&Path>,
) -> Pruned {
    let mut out = Pruned {
        total_before: total,
        ..Pruned::default()
    };
    let mut left = total;
    for c in candidates {
        let too_old = budget
            .older_than
            .as_ref()
            .is_some_and(|cut| c.stamp.as_str() < cut.as_str());
        let too_big = budget.max_bytes.is_some_and(|m| left > m);
        if !(too_old || too_big) {
            continue;
        }
        if latest == Some(c.path.as_path()) {
            continue;
        }
        if c.failure.is_some() && !budget.include_failures {
            out.kept_failures.push(c.clone());
            continue;
        }
        left = left.saturating_sub(c.bytes);
        out.freed += c.bytes;
        out.deleted.push(c.clone());
    }
    out
}

/// Scans `results`, deletes what [`plan`] chooses (unless `dry_run`), and
/// rewrites results/index.html when anything went.
pub fn prune(results: &Path, budget: &Budget, dry_run: bool) -> Result<Pruned> {
    if !results.is_dir() {
        return Err(UsageError(format!("{}: no such results folder", results.display())).into());
    }
    let candidates = scan(results)?;
    let latest = latest_target(results);
    let chosen = plan(&candidates, disk_usage(results), budget, latest.as_deref());
    if dry_run {
        return Ok(chosen);
    }
    let mut done = Pruned {
        total_before: chosen.total_before,
        kept_failures: chosen.kept_failures,
        ..Pruned::default()
    };
    for c in chosen.deleted {
        std::fs::remove_dir_all(&c.path)
            .with_context(|| format!("deleting {}", c.path.display()))?;
        done.freed += c.bytes;
        done.deleted.push(c);
    }
    if !done.deleted.is_empty() {
        crate::report::index::write(results)?;
    }
    Ok(done)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The lines `prune` prints.
pub fn report(p: &Pruned, dry_run: bool) -> String {
    let verb = if dry_run { "would delete" } else { "deleted" };
    let mut s = String::new();
    for c in &p.deleted {
        s.push_str(&format!(
            "prune: {verb} {} ({}, {})\n",
            c.path.display(),
            c.kind.word(),
            mb(c.bytes)
        ));
    }
    for c in &p.kept_failures {
        s.push_str(&format!(
            "prune: kept {} ({}: {})\n",
            c.path.display(),
            c.kind.word(),
            c.failure.as_deref().unwrap_or("")
        ));
    }
    s.push_str(&format!(
        "prune: {verb} {} folders, {} {}freed of {}; {} failures kept (--include-failures deletes them)\n",
        p.deleted.len(),
        mb(p.freed),
        if dry_run { "would be " } else { "" },
        mb(p.total_before),
        p.kept_failures.len()
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A run folder with `valid` (true, false, "unknown" or null: no
    /// results.json) and `kb` KiB of history.
    fn run(parent: &Path, name: &str, valid: serde_json::Value, kb: usize) -> PathBuf {
        let d = parent.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("test.json"), r#"{"options":{"nodes":3},"seed":1}"#).unwrap();
        if !valid.is_null() {
            let r = raft_checker::verdict::no_verdict("test");
            let mut v = serde_json::to_value(&r).unwrap();
            v["valid"] = valid;
            std::fs::write(d.join("results.json"), v.to_string()).unwrap();
        }
        std::fs::write(d.join("history.jsonl.zst"), vec![7u8; kb * 1024]).unwrap();
        d
    }

    fn campaign(parent: &Path, name: &str, verdicts: &[serde_json::Value]) -> PathBuf {
        let d = parent.join(name);
        std::fs::create_dir_all(&d).unwrap();
        let mut runs = Vec::new();
        for (i, v) in verdicts.iter().enumerate() {
            let rd = run(&d, &format!("20260101T00000{i}-kill"), v.clone(), 4);
            let mut rec = crate::report::summary::RunRecord {
                index: i,
                nemesis: "kill".into(),
                nodes: 3,
                seed: i as u64,
                bug: None,
                verdict: Validity::Valid,
                reason: None,
                ops: None,
                p99_ms: None,
                elapsed_s: 1.0,
                dir: Some(rd.file_name().unwrap().into()),
            };
            crate::report::summary::apply_results(&mut rec, &rd);
            runs.push(rec);
        }
        let n = runs.len();
        Summary::new(name.into(), vec![], n, runs)
            .write_all(&d)
            .unwrap();
        d
    }

    fn names(cs: &[Candidate]) -> Vec<String> {
        cs.iter()
            .map(|c| c.path.file_name().unwrap().to_string_lossy().to_string())
            .collect()
    }

    fn budget(days: Option<f64>, gb: Option<f64>, failures: bool) -> Budget {
        let args = PruneArgs {
            results: PathBuf::new(),
            keep_days: days,
            max_gb: gb,
            include_failures: failures,
            dry_run: false,
        };
        // "Now" is 2026-01-11 00:00:00 UTC for every test.
        Budget::of(
            &args,
            std::time::UNIX_EPOCH + Duration::from_secs(1_768_089_600),
        )
        .unwrap()
    }

    /// Old valid, invalid and unknown runs, an old valid campaign, an old
    /// campaign holding an unknown run, a new valid run.
    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        run(r, "20260101T000000-kill", json!(true), 64);
        run(r, "20260102T000000-pause", json!(false), 64);
        run(r, "20260103T000000-partition", json!("unknown"), 64);
        run(r, "20260103T120000-kill", serde_json::Value::Null, 64);
        campaign(r, "campaign-20260104T000000", &[json!(true), json!(true)]);
        campaign(
            r,
            "campaign-20260105T000000",
            &[json!(true), json!("unknown")],
        );
        run(r, "20260110T000000-kill", json!(true), 64);
        std::fs::create_dir(r.join("no-stamp-here")).unwrap();
        t
    }

    #[test]
    fn age_limit_deletes_old_valid_runs_and_campaigns_and_keeps_every_failure() {
        let t = tree();
        let p = prune(t.path(), &budget(Some(3.0), None, false), false).unwrap();
        assert_eq!(
            names(&p.deleted),
            ["20260101T000000-kill", "campaign-20260104T000000"]
        );
        assert_eq!(
            names(&p.kept_failures),
            [
                "20260102T000000-pause",
                "20260103T000000-partition",
                "20260103T120000-kill",
                "campaign-20260105T000000"
            ]
        );
        for gone in &p.deleted {
            assert!(!gone.path.exists());
        }
        for kept in p.kept_failures.iter().map(|c| &c.path) {
            assert!(kept.is_dir(), "{}", kept.display());
        }
        assert!(
            t.path().join("20260110T000000-kill").is_dir(),
            "new run kept"
        );
        assert!(
            t.path().join("no-stamp-here").is_dir(),
            "unknown folders untouched"
        );
        assert!(p.freed > 0);
        assert!(t.path().join("index.html").is_file(), "index rewritten");
    }

    #[test]
    fn include_failures_deletes_them_too() {
        let t = tree();
        let p = prune(t.path(), &budget(Some(3.0), None, true), false).unwrap();
        assert_eq!(p.deleted.len(), 6);
        assert!(p.kept_failures.is_empty());
        assert!(t.path().join("20260110T000000-kill").is_dir());
    }

    #[test]
    fn size_limit_deletes_oldest_valid_first_until_within_budget() {
        let t = tree();
        let total = disk_usage(t.path());
        let first = disk_usage(&t.path().join("20260101T000000-kill"));
        // Just under the total: deleting the oldest valid run is enough
        // (with room for the index page prune writes afterwards).
        let gb = (total - first / 2) as f64 / 1e9;
        let p = prune(t.path(), &budget(None, Some(gb), false), false).unwrap();
        assert_eq!(names(&p.deleted), ["20260101T000000-kill"]);
        assert!(disk_usage(t.path()) <= (gb * 1e9) as u64 + 1);
        // A zero budget takes every valid folder but the failures stay.
        let p = prune(t.path(), &budget(None, Some(0.0), false), false).unwrap();
        assert_eq!(
            names(&p.deleted),
            ["campaign-20260104T000000", "20260110T000000-kill"]
        );
        assert_eq!(p.kept_failures.len(), 4);
    }

    #[test]
    fn dry_run_deletes_nothing_and_lists_the_same_folders() {
        let t = tree();
        let dry = prune(t.path(), &budget(Some(3.0), None, false), true).unwrap();
        assert_eq!(dry.deleted.len(), 2);
        for c in &dry.deleted {
            assert!(c.path.is_dir(), "dry run deleted {}", c.path.display());
        }
        let text = report(&dry, true);
        assert!(text.contains("would delete"), "{text}");
        let real = prune(t.path(), &budget(Some(3.0), None, false), false).unwrap();
        assert_eq!(names(&real.deleted), names(&dry.deleted));
        assert_eq!(real.freed, dry.freed);
    }

    #[test]
    fn latest_target_is_never_deleted() {
        let t = tree();
        std::os::unix::fs::symlink("20260101T000000-kill", t.path().join("latest")).unwrap();
        let p = prune(t.path(), &budget(Some(0.0), None, false), false).unwrap();
        assert!(!names(&p.deleted).contains(&"20260101T000000-kill".to_string()));
        assert!(t.path().join("latest").join("test.json").is_file());
    }

    #[test]
    fn a_campaign_with_an_invalid_run_folder_is_kept_even_if_its_summary_says_valid() {
        let t = tempfile::tempdir().unwrap();
        let c = campaign(t.path(), "campaign-20260101T000000", &[json!(true)]);
        // Re-checked later (or a shard's run added) and found invalid.
        run(&c, "20260101T000009-pause", json!(false), 1);
        let p = prune(t.path(), &budget(Some(1.0), None, false), false).unwrap();
        assert!(p.deleted.is_empty());
        let why = p.kept_failures[0].failure.clone().unwrap();
        assert!(why.contains("invalid run"), "{why}");
    }

    #[test]
    fn teeth_folders_go_by_their_report_not_their_deliberately_invalid_runs() {
        let t = tempfile::tempdir().unwrap();
        let caught = t.path().join("teeth-20260101T000000");
        let missed = t.path().join("teeth-20260102T000000");
        for (d, ok) in [(&caught, true), (&missed, false)] {
            // Each holds a run the bug made invalid: the point of teeth.
            run(
                &d.join("stale-read"),
                "20260101T000001-kill",
                json!(false),
                1,
            );
            let report = crate::teeth::TeethReport {
                started: "20260101T000000".into(),
                driver_version: "test".into(),
                budget_minutes: 1.0,
                time_limit: 10.0,
                nemesis_sets: vec!["kill".into()],
                nodes: vec![3],
                planned: 1,
                bugs: vec![crate::teeth::BugTeeth {
                    bug: crate::teeth::BugSpec {
                        name: "stale-read".into(),
                        needs: vec![],
                    },
                    caught: ok,
                    caught_by: vec![],
                    finding: None,
                    runs: 1,
                    unknown_runs: 0,
                    minutes: 1.0,
                    within_budget: ok,
                    caught_in: None,
                    run_dir: None,
                    replay: None,
                    run_records: vec![],
                }],
            };
            let report = serde_json::to_string(&report).unwrap();
            std::fs::write(d.join("teeth.json"), report).unwrap();
        }
        let p = prune(t.path(), &budget(Some(1.0), None, false), true).unwrap();
        assert_eq!(names(&p.deleted), ["teeth-20260101T000000"]);
        assert_eq!(names(&p.kept_failures), ["teeth-20260102T000000"]);
    }

    #[test]
    fn a_missing_results_folder_is_a_usage_error_and_no_budget_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let e = prune(
            &t.path().join("nope"),
            &budget(Some(1.0), None, false),
            false,
        )
        .unwrap_err();
        assert!(e.downcast_ref::<UsageError>().is_some(), "{e:#}");
        let args = PruneArgs {
            results: t.path().into(),
            keep_days: None,
            max_gb: None,
            include_failures: false,
            dry_run: false,
        };
        assert!(Budget::of(&args, SystemTime::now()).is_err());
    }
}
