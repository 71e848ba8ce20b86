//! results/index.html: every run and campaign in a results folder, newest
//! first, with its verdict, nemesis and a link to its page. It reads only
//! each run's test.json and results.json (a few fields of each) and each
//! campaign's summary.json, and writes one static page, so it stays fast
//! with thousands of runs.

use crate::report::summary::{html_escape, one_line, write_atomic, Summary, TABLE_CSS};
use crate::report::trend::{points, trend_html};
use anyhow::{Context, Result};
use raft_checker::Validity;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One row of the index.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The folder's name (links are `name/index.html`).
    pub name: String,
    /// True for a campaign, false for a single run.
    pub campaign: bool,
    /// `YYYYMMDDTHHMMSS` from the name, the newest-first sort key.
    pub stamp: String,
    /// valid, invalid or unknown.
    pub verdict: String,
    /// Nemesis (or the sets of a campaign).
    pub nemesis: String,
    /// Nodes, seed, counts: one short line.
    pub detail: String,
}

#[derive(Deserialize)]
struct TestHead {
    #[serde(default)]
    options: OptionsHead,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    replay_of: Option<String>,
}

#[derive(Deserialize, Default)]
struct OptionsHead {
    #[serde(default)]
    nemesis_label: Option<String>,
    #[serde(default)]
    nodes: Option<u64>,
    #[serde(default)]
    bug: Option<String>,
}

/// The head of a results.json (the checker's layout; see
/// `raft_checker::verdict::RunResult`), read without the per-key lists.
#[derive(Deserialize)]
struct ResultsHead {
    valid: Validity,
    #[serde(default)]
    op_count: Option<u64>,
    #[serde(default)]
    reasons: Vec<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    // Every other field (per-key results, counterexample) is skipped by
    // serde without building values: results.json can be large.
}

/// The first `YYYYMMDDTHHMMSS` in `name`, or "" if none.
pub fn stamp_in(name: &str) -> String {
    let b = name.as_bytes();
    for i in 0..b.len().saturating_sub(14) {
        let w = &b[i..i + 15];
        if w[8] == b'T'
            && w[..8].iter().all(u8::is_ascii_digit)
            && w[9..].iter().all(u8::is_ascii_digit)
        {
            return name[i..i + 15].to_string();
        }
    }
    String::new()
}

fn run_entry(dir: &Path, name: &str) -> Option<Entry> {
    let test: TestHead =
        serde_json::from_slice(&std::fs::read(dir.join("test.json")).ok()?).ok()?;
    let (verdict, ops, note) = match std::fs::read(dir.join("results.json")) {
        Ok(bytes) => match serde_json::from_slice::<ResultsHead>(&bytes) {
            Ok(r) => {
                let note = match r.valid {
                    Validity::Valid => None,
                    _ if !r.reasons.is_empty() => Some(r.reasons.join("; ")),
                    _ => r.reason.or(r.summary),
                };
                (r.valid.as_str(), r.op_count, note)
            }
            Err(_) => ("unknown", None, Some("results.json is unreadable".into())),
        },
        Err(_) => (
            "unknown",
            None,
            Some("no results.json: the run did not finish".into()),
        ),
    };
    let mut detail = format!(
        "{} nodes, seed {}",
        test.options.nodes.unwrap_or(0),
        test.seed.unwrap_or(0)
    );
    if let Some(o) = ops {
        let _ = write!(detail, ", {o} ops");
    }
    if let Some(b) = &test.options.bug {
        let _ = write!(detail, ", bug {b}");
    }
    if let Some(r) = &test.replay_of {
        let _ = write!(detail, ", replay of {r}");
    }
    if let Some(n) = note {
        let _ = write!(detail, "; {}", one_line(&n));
    }
    Some(Entry {
        name: name.to_string(),
        campaign: false,
        stamp: stamp_in(name),
        verdict: verdict.into(),
        nemesis: test.options.nemesis_label.unwrap_or_else(|| "?".into()),
        detail,
    })
}

fn campaign_entry(dir: &Path, name: &str) -> Option<Entry> {
    let s = Summary::read(&dir.join("summary.json")).ok()?;
    let sets: BTreeSet<&str> = s.runs.iter().map(|r| r.nemesis.as_str()).collect();
    let c = s.counts;
    let mut detail = format!(
        "campaign: {} of {} runs; {} valid, {} invalid, {} unknown",
        s.runs.len(),
        s.planned,
        c.valid,
        c.invalid,
        c.unknown
    );
    if let Some(b) = s.runs.iter().find_map(|r| r.bug.as_deref()) {
        let _ = write!(detail, "; bug {b}");
    }
    if !s.shards.is_empty() {
        let _ = write!(detail, "; shards {}", s.shards.join(" "));
    }
    Some(Entry {
        name: name.to_string(),
        campaign: true,
        stamp: stamp_in(name),
        verdict: c.word().to_lowercase(),
        nemesis: sets.into_iter().collect::<Vec<_>>().join(" | "),
        detail,
    })
}

/// Every run and campaign directly under `results`, newest first.
pub fn scan(results: &Path) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(results).with_context(|| format!("reading {}", results.display()))? {
        let e = e?;
        // `latest` is a symlink to a run listed anyway.
        if !e.file_type()?.is_dir() {
            continue;
        }
        let name = e.file_name().to_string_lossy().to_string();
        let dir = e.path();
        let entry = if dir.join("summary.json").is_file() {
            campaign_entry(&dir, &name)
        } else if dir.join("test.json").is_file() {
            run_entry(&dir, &name)
        } else {
            None
        };
        if let Some(entry) = entry {
            out.push(entry);
        }
    }
    out.sort_by(|a, b| (&b.stamp, &b.name).cmp(&(&a.stamp, &a.name)));
    Ok(out)
}

/// The page for `entries`, with `trend` (HTML, see
/// [`crate::report::trend::trend_html`]) above the table.
pub fn render(title: &str, entries: &[Entry], trend: &str) -> String {
    let count = |w: &str| entries.iter().filter(|e| e.verdict == w).count();
    let mut s = String::with_capacity(256 * entries.len() + 1024);
    let _ = write!(
        s,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{}</style></head><body>\n<h1>{}</h1>\n<p>{} entries: {} valid, {} invalid, {} unknown.</p>\n{}<h2>Runs and campaigns, newest first</h2>\n<table><tr><th>when (UTC)</th><th>verdict</th><th>nemesis</th><th>what</th><th>folder</th></tr>\n",
        html_escape(title),
        TABLE_CSS,
        html_escape(title),
        entries.len(),
        count("valid"),
        count("invalid"),
        count("unknown"),
        trend
    );
    for e in entries {
        let link = format!("{}/index.html", html_escape(&e.name));
        let _ = writeln!(
            s,
            "<tr class=\"{v}\"><td>{}</td><td><a href=\"{link}\">{v}</a></td><td>{}</td><td>{}</td><td><a href=\"{link}\">{}</a></td></tr>",
            pretty_stamp(&e.stamp),
            html_escape(&e.nemesis),
            html_escape(&e.detail),
            html_escape(&e.name),
            v = html_escape(&e.verdict),
        );
    }
    s.push_str("</table></body></html>\n");
    s
}

fn pretty_stamp(s: &str) -> String {
    if s.len() != 15 {
        return "-".into();
    }
    format!(
        "{}-{}-{} {}:{}:{}",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    )
}

/// Rewrites `results/index.html` and returns its path. A missing results
/// folder is an error, not created: an index of nothing in a folder made
/// by a typo would only hide the typo.
pub fn write(results: &Path) -> Result<PathBuf> {
    if !results.is_dir() {
        anyhow::bail!(
            "no results folder {}: nothing to index (runs and campaigns write one)",
            results.display()
        );
    }
    let entries = scan(results)?;
    let trend = trend_html(&points(results));
    let path = results.join("index.html");
    write_atomic(
        &path,
        render("raft-ralph results", &entries, &trend).as_bytes(),
    )?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::RunRecord;
    use raft_checker::Validity;
    use serde_json::json;
    use serde_json::Value;

    fn fake_run(results: &Path, name: &str, valid: Option<Value>) {
        let d = results.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("test.json"),
            json!({"options": {"nemesis_label": "kill", "nodes": 3, "bug": null}, "seed": 9, "schedule": {"events": []}})
                .to_string(),
        )
        .unwrap();
        if let Some(v) = valid {
            std::fs::write(
                d.join("results.json"),
                json!({"valid": v, "op_count": 12, "summary": "s", "keys": [{"key": "a"}]})
                    .to_string(),
            )
            .unwrap();
        }
    }

    #[test]
    fn a_missing_results_folder_is_an_error_and_is_not_created() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("missing");
        let e = write(&missing).unwrap_err();
        assert!(e.to_string().contains("no results folder"), "{e}");
        assert!(!missing.exists());
    }

    #[test]
    fn stamps_are_found_anywhere_in_a_name() {
        assert_eq!(stamp_in("20261130T064512-kill"), "20261130T064512");
        assert_eq!(
            stamp_in("campaign-20261130T064512-shard-1-of-2"),
            "20261130T064512"
        );
        assert_eq!(stamp_in("notes"), "");
    }

    #[test]
    fn index_lists_runs_and_campaigns_newest_first_and_skips_other_things() {
        let d = tempfile::tempdir().unwrap();
        fake_run(d.path(), "20261129T010000-kill", Some(json!(true)));
        fake_run(d.path(), "20261130T010000-kill", Some(json!(false)));
        fake_run(d.path(), "20261128T010000-kill", None);
        std::fs::create_dir_all(d.path().join("random-folder")).unwrap();
        std::fs::write(d.path().join("README"), "x").unwrap();
        let c = d.path().join("campaign-20261130T020000");
        std::fs::create_dir_all(&c).unwrap();
        Summary::new(
            "campaign-20261130T020000".into(),
            vec![],
            1,
            vec![RunRecord {
                index: 0,
                nemesis: "pause".into(),
                nodes: 5,
                seed: 1,
                bug: Some("early-ack".into()),
                verdict: Validity::Unknown,
                reason: Some("no leader".into()),
                ops: None,
                p99_ms: None,
                elapsed_s: 1.0,
                dir: None,
            }],
        )
        .write_all(&c)
        .unwrap();
        let e = scan(d.path()).unwrap();
        let names: Vec<&str> = e.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "campaign-20261130T020000",
                "20261130T010000-kill",
                "20261129T010000-kill",
                "20261128T010000-kill"
            ]
        );
        assert_eq!(
            e.iter().map(|e| e.verdict.as_str()).collect::<Vec<_>>(),
            ["unknown", "invalid", "valid", "unknown"]
        );
        assert!(e[0].campaign && e[0].detail.contains("bug early-ack"));
        assert!(e[3].detail.contains("did not finish"));
        let page = std::fs::read_to_string(write(d.path()).unwrap()).unwrap();
        assert!(page.contains("href=\"20261130T010000-kill/index.html\""));
        assert!(page.find("20261130T010000").unwrap() < page.find("20261129T010000").unwrap());
    }

    #[test]
    fn index_of_three_thousand_runs_has_every_row() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..3000u32 {
            let name = format!(
                "2026{:02}{:02}T{:06}-kill",
                1 + i / 300,
                1 + (i / 10) % 28,
                i
            );
            fake_run(d.path(), &name, Some(json!(i % 7 != 0)));
        }
        let t = std::time::Instant::now();
        let page = std::fs::read_to_string(write(d.path()).unwrap()).unwrap();
        eprintln!("index of 3000 runs written in {:?}", t.elapsed());
        assert_eq!(page.matches("<tr class=").count(), 3000);
        assert_eq!(page.matches("<tr class=\"invalid\"").count(), 429);
    }
}
