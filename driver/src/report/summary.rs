//! A campaign's summary: one record per run, written as summary.md (for
//! people), summary.json (for tools and for merging shards), junit.xml (for
//! CI systems) and the campaign's index.html; and `summarize DIR...`, which
//! merges the summaries of shard folders (or loose run folders).

use anyhow::{bail, Context, Result};
use raft_checker::verdict::RunResult;
use raft_checker::Validity;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

/// What the summary knows about one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Position in the campaign's matrix (0-based, before sharding).
    pub index: usize,
    /// The nemesis set as passed to `run --nemesis`.
    pub nemesis: String,
    /// Cluster size.
    pub nodes: usize,
    /// Seed of the run.
    pub seed: u64,
    /// Deliberate defect switched on, if any.
    #[serde(default)]
    pub bug: Option<String>,
    /// Valid, invalid or unknown (a word in summary.json).
    #[serde(with = "raft_checker::verdict::validity_word")]
    pub verdict: Validity,
    /// Why the run is unknown (or what went wrong), for people.
    #[serde(default)]
    pub reason: Option<String>,
    /// Client operations in the history.
    #[serde(default)]
    pub ops: Option<u64>,
    /// 99th percentile latency of all operations, in milliseconds.
    #[serde(default)]
    pub p99_ms: Option<f64>,
    /// Wall-clock seconds the run took, checking included.
    #[serde(default)]
    pub elapsed_s: f64,
    /// The run folder, relative to the summary's folder (None if the run
    /// never got one).
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

impl RunRecord {
    /// A short name for the run: `nemesis-nN-seedS`.
    pub fn name(&self) -> String {
        format!("{}-n{}-seed{}", self.nemesis, self.nodes, self.seed)
    }
}

/// Verdict counts over a set of runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Valid runs.
    pub valid: usize,
    /// Invalid runs.
    pub invalid: usize,
    /// Unknown runs.
    pub unknown: usize,
}

impl Counts {
    /// Counts the verdicts of `runs`.
    pub fn of(runs: &[RunRecord]) -> Counts {
        let mut c = Counts::default();
        for r in runs {
            match r.verdict {
                Validity::Valid => c.valid += 1,
                Validity::Invalid => c.invalid += 1,
                Validity::Unknown => c.unknown += 1,
            }
        }
        c
    }

    /// The campaign's verdict: invalid if any run is, else unknown if any
    /// run is, else valid.
    pub fn validity(&self) -> Validity {
        if self.invalid > 0 {
            Validity::Invalid
        } else if self.unknown > 0 {
            Validity::Unknown
        } else {
            Validity::Valid
        }
    }

    /// The campaign's exit code (the checker's mapping: 0, 1 or 3).
    pub fn exit_code(&self) -> u8 {
        self.validity().exit_code() as u8
    }

    /// The overall word: INVALID, UNKNOWN or VALID.
    pub fn word(&self) -> &'static str {
        match self.validity() {
            Validity::Invalid => "INVALID",
            Validity::Unknown => "UNKNOWN",
            Validity::Valid => "VALID",
        }
    }
}

/// The whole summary of a campaign (or of a merge of shards).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The campaign's name (its folder name).
    pub campaign: String,
    /// Which shards this summary covers, e.g. ["1/4", "3/4"] (empty: all).
    #[serde(default)]
    pub shards: Vec<String>,
    /// Runs planned in this summary's share of the matrix.
    pub planned: usize,
    /// Verdict counts.
    pub counts: Counts,
    /// Every finished run, in matrix order.
    pub runs: Vec<RunRecord>,
    /// The summary's folder as the user names it (e.g.
    /// `results/campaign-...`), so that printed commands can be pasted.
    #[serde(default)]
    pub location: Option<PathBuf>,
}

impl Summary {
    /// A summary of `runs` (counts computed here).
    pub fn new(
        campaign: String,
        shards: Vec<String>,
        planned: usize,
        runs: Vec<RunRecord>,
    ) -> Self {
        Summary {
            campaign,
            shards,
            planned,
            counts: Counts::of(&runs),
            runs,
            location: None,
        }
    }

    /// The same summary, knowing the folder it lives in.
    pub fn at(mut self, location: &Path) -> Self {
        self.location = Some(location.to_path_buf());
        self
    }

    /// A run's folder as a path to paste (under `location` when known).
    pub fn run_path(&self, r: &RunRecord) -> String {
        match (&self.location, &r.dir) {
            (Some(l), Some(d)) => l.join(d).display().to_string(),
            (None, Some(d)) => d.display().to_string(),
            (_, None) => "?".into(),
        }
    }

    /// Writes summary.md, summary.json, junit.xml and index.html into `dir`.
    pub fn write_all(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join("summary.json"), &serde_json::to_vec_pretty(self)?)?;
        write_atomic(&dir.join("summary.md"), self.markdown().as_bytes())?;
        write_atomic(&dir.join("junit.xml"), self.junit().as_bytes())?;
        write_atomic(&dir.join("index.html"), self.html().as_bytes())?;
        Ok(())
    }

    /// Reads a summary.json.
    pub fn read(path: &Path) -> Result<Summary> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// summary.md: the headline, the violations, the inconclusive runs, and
    /// a table of every run with a link to its page.
    pub fn markdown(&self) -> String {
        let c = self.counts;
        let mut s = String::new();
        let _ = writeln!(s, "# Campaign {}\n", self.campaign);
        let _ = writeln!(
            s,
            "**{}**: {} runs of {} planned; {} valid, {} invalid, {} unknown{}.\n",
            c.word(),
            self.runs.len(),
            self.planned,
            c.valid,
            c.invalid,
            c.unknown,
            if self.shards.is_empty() {
                String::new()
            } else {
                format!("; shards {}", self.shards.join(", "))
            }
        );
        let invalid: Vec<&RunRecord> = self
            .runs
            .iter()
            .filter(|r| r.verdict == Validity::Invalid)
            .collect();
        if !invalid.is_empty() {
            let _ = writeln!(s, "## Violations\n");
            for r in &invalid {
                let dir = self.run_path(r);
                let _ = writeln!(
                    s,
                    "- {}: reproduce with `raft-driver replay {dir}`, re-check with `raft-checker check {dir}`",
                    r.name()
                );
            }
            s.push('\n');
        }
        let unknown: Vec<&RunRecord> = self
            .runs
            .iter()
            .filter(|r| r.verdict == Validity::Unknown)
            .collect();
        if !unknown.is_empty() {
            let _ = writeln!(s, "## Inconclusive (not violations)\n");
            for r in &unknown {
                let _ = writeln!(
                    s,
                    "- {}: {}",
                    r.name(),
                    one_line(r.reason.as_deref().unwrap_or("no reason recorded"))
                );
            }
            s.push('\n');
        }
        if !self.runs.is_empty() {
            let _ = writeln!(s, "## By nemesis\n");
            let _ = writeln!(s, "| nemesis | nodes | runs | valid | invalid | unknown |");
            let _ = writeln!(s, "|---|---|---|---|---|---|");
            for ((nemesis, nodes), c) in self.by_nemesis() {
                let _ = writeln!(
                    s,
                    "| {nemesis} | {nodes} | {} | {} | {} | {} |",
                    c.valid + c.invalid + c.unknown,
                    c.valid,
                    c.invalid,
                    c.unknown
                );
            }
            s.push('\n');
        }
        let _ = writeln!(s, "## Runs\n");
        let _ = writeln!(
            s,
            "| run | nemesis | nodes | seed | ops | verdict | p99 latency | page |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for r in &self.runs {
            let page = match &r.dir {
                Some(d) => format!("[index.html]({}/index.html)", d.display()),
                None => "-".into(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                r.index + 1,
                r.nemesis,
                r.nodes,
                r.seed,
                r.ops.map(|o| o.to_string()).unwrap_or_else(|| "-".into()),
                if r.verdict == Validity::Valid {
                    r.verdict.table_word().to_string()
                } else {
                    format!("**{}**", r.verdict.table_word())
                },
                r.p99_ms
                    .map(|p| format!("{p:.1} ms"))
                    .unwrap_or_else(|| "-".into()),
                page
            );
        }
        s
    }

    /// Verdict counts per (nemesis set, cluster size), in first-seen order.
    pub fn by_nemesis(&self) -> Vec<((String, usize), Counts)> {
        let mut out: Vec<((String, usize), Counts)> = Vec::new();
        for r in &self.runs {
            let key = (r.nemesis.clone(), r.nodes);
            let i = match out.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    out.push((key, Counts::default()));
                    out.len() - 1
                }
            };
            let c = &mut out[i].1;
            match r.verdict {
                Validity::Valid => c.valid += 1,
                Validity::Invalid => c.invalid += 1,
                Validity::Unknown => c.unknown += 1,
            }
        }
        out
    }

    /// junit.xml: one test case per run; an invalid run is a failure, an
    /// unknown run an error (it could not complete), a valid run passes.
    pub fn junit(&self) -> String {
        let c = self.counts;
        let total: f64 = self.runs.iter().map(|r| r.elapsed_s).sum();
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            s,
            "<testsuites name=\"raft-ralph\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">",
            self.runs.len(),
            c.invalid,
            c.unknown,
            total
        );
        let _ = writeln!(
            s,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"{:.3}\">",
            xml_escape(&self.campaign),
            self.runs.len(),
            c.invalid,
            c.unknown,
            total
        );
        for r in &self.runs {
            let _ = write!(
                s,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml_escape(&format!("campaign.{}", r.nemesis)),
                xml_escape(&r.name()),
                r.elapsed_s
            );
            let dir = self.run_path(r);
            match r.verdict {
                Validity::Valid => s.push_str("/>\n"),
                Validity::Invalid => {
                    let _ = write!(
                        s,
                        ">\n      <failure type=\"invalid\" message=\"{}\">{}</failure>\n    </testcase>\n",
                        xml_escape(&format!("not linearizable; see {dir}/index.html")),
                        xml_escape(&format!(
                            "raft-driver replay {dir}\nraft-checker check {dir}\n{}",
                            r.reason.as_deref().unwrap_or("")
                        ))
                    );
                }
                Validity::Unknown => {
                    let reason = r.reason.as_deref().unwrap_or("no verdict");
                    let _ = write!(
                        s,
                        ">\n      <error type=\"unknown\" message=\"{}\">{}</error>\n    </testcase>\n",
                        xml_escape(&one_line(reason)),
                        xml_escape(reason)
                    );
                }
            }
        }
        s.push_str("  </testsuite>\n</testsuites>\n");
        s
    }

    /// The campaign's index.html: the same table as summary.md, linked.
    pub fn html(&self) -> String {
        let c = self.counts;
        let mut s = String::new();
        let _ = write!(
            s,
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{} {}</title>\n<style>{}</style></head><body>\n",
            html_escape(&self.campaign),
            c.word(),
            TABLE_CSS
        );
        let _ = writeln!(
            s,
            "<h1>Campaign {}: <span class=\"{}\">{}</span></h1>\n<p>{} runs of {} planned: {} valid, {} invalid, {} unknown. <a href=\"summary.md\">summary.md</a> · <a href=\"summary.json\">summary.json</a> · <a href=\"junit.xml\">junit.xml</a> · <a href=\"../index.html\">all results</a></p>",
            html_escape(&self.campaign),
            c.word().to_lowercase(),
            c.word(),
            self.runs.len(),
            self.planned,
            c.valid,
            c.invalid,
            c.unknown
        );
        s.push_str("<table><tr><th>run</th><th>nemesis</th><th>nodes</th><th>seed</th><th>ops</th><th>verdict</th><th>p99 latency</th><th>note</th></tr>\n");
        for r in &self.runs {
            let verdict = match &r.dir {
                Some(d) => format!(
                    "<a href=\"{}/index.html\">{}</a>",
                    html_escape(&d.display().to_string()),
                    r.verdict.table_word()
                ),
                None => r.verdict.table_word().to_string(),
            };
            let _ = writeln!(
                s,
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                format!("{:?}", r.verdict).to_lowercase(),
                r.index + 1,
                html_escape(&r.nemesis),
                r.nodes,
                r.seed,
                r.ops.map(|o| o.to_string()).unwrap_or_else(|| "-".into()),
                verdict,
                r.p99_ms
                    .map(|p| format!("{p:.1} ms"))
                    .unwrap_or_else(|| "-".into()),
                html_escape(&one_line(r.reason.as_deref().unwrap_or("")))
            );
        }
        s.push_str("</table></body></html>\n");
        s
    }
}

/// Style shared by the campaign page and results/index.html.
pub const TABLE_CSS: &str = "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}tr.invalid td{background:#fdd}tr.unknown td{background:#ffd}span.invalid{color:#b00}span.unknown{color:#a60}span.valid{color:#070}";

/// Escapes text for XML attributes and content.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for HTML.
pub fn html_escape(s: &str) -> String {
    xml_escape(s)
}

/// `s` on one line: its first line, and its last one if there are more
/// (where a log tail puts the cause), cut to 300 characters.
pub fn one_line(s: &str) -> String {
    let mut lines = s.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("");
    let line = match lines.next_back() {
        Some(last) => format!("{first} ... {last}"),
        None => first.to_string(),
    };
    if line.chars().count() > 300 {
        let cut: String = line.chars().take(300).collect();
        format!("{cut}...")
    } else {
        line
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that a
/// reader (or a crash) never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// `to` expressed relative to the folder `from` (both made absolute first).
pub fn relative_to(to: &Path, from: &Path) -> PathBuf {
    let abs = |p: &Path| {
        std::fs::canonicalize(p).unwrap_or_else(|_| {
            std::env::current_dir()
                .map(|c| c.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        })
    };
    let (to, from) = (abs(to), abs(from));
    let tc: Vec<Component> = to.components().collect();
    let fc: Vec<Component> = from.components().collect();
    let common = tc.iter().zip(&fc).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..fc.len() {
        out.push("..");
    }
    for c in &tc[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Builds the record of a loose run folder from its test.json and
/// results.json (a run made by `run` or `replay`, outside a campaign).
pub fn record_from_run_dir(dir: &Path, index: usize) -> Result<RunRecord> {
    let test: Value = serde_json::from_slice(
        &std::fs::read(dir.join("test.json"))
            .with_context(|| format!("{} has no test.json", dir.display()))?,
    )
    .with_context(|| format!("parsing {}/test.json", dir.display()))?;
    let opts = &test["options"];
    let mut rec = RunRecord {
        index,
        nemesis: opts["nemesis_label"].as_str().unwrap_or("?").to_string(),
        nodes: opts["nodes"].as_u64().unwrap_or(0) as usize,
        seed: test["seed"].as_u64().unwrap_or(0),
        bug: opts["bug"].as_str().map(str::to_string),
        verdict: Validity::Unknown,
        reason: Some("no results.json: the run did not finish".into()),
        ops: None,
        p99_ms: None,
        elapsed_s: 0.0,
        dir: Some(dir.to_path_buf()),
    };
    apply_results(&mut rec, dir);
    Ok(rec)
}

/// Fills verdict, reason, ops and p99 from `dir/results.json` if present
/// (read into the checker's own types).
pub fn apply_results(rec: &mut RunRecord, dir: &Path) -> bool {
    let path = dir.join("results.json");
    if !path.exists() {
        return false;
    }
    let res = match RunResult::read(&path) {
        Ok(r) => r,
        Err(e) => {
            rec.verdict = Validity::Unknown;
            rec.reason = Some(e);
            return false;
        }
    };
    rec.verdict = res.valid;
    rec.ops = res.linearizability.as_ref().map(|l| l.op_count as u64);
    rec.p99_ms = res.linearizability.as_ref().map(|l| l.latency.all.p99_ms);
    rec.reason = match res.valid {
        Validity::Valid => None,
        // The whole reason: every checker that is not valid.
        _ if !res.reasons.is_empty() => Some(res.reasons.join("; ")),
        _ => Some(res.summary.clone()),
    };
    true
}

/// `summarize DIR...`: merges the summaries of campaign (shard) folders and
/// loose run folders into `out`, and returns the merged summary.
pub fn summarize(dirs: &[PathBuf], out: &Path) -> Result<Summary> {
    if dirs.is_empty() {
        bail!("summarize needs at least one folder");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut runs = Vec::new();
    let mut shards = Vec::new();
    let mut planned = 0;
    let mut loose = 0;
    for d in dirs {
        if d.join("summary.json").is_file() {
            let s = Summary::read(&d.join("summary.json"))?;
            planned += s.planned;
            shards.extend(s.shards.iter().cloned());
            for mut r in s.runs {
                // Paths are relative to the shard's folder; make them
                // relative to the merged summary's folder.
                r.dir = r.dir.map(|rd| relative_to(&d.join(rd), out));
                runs.push(r);
            }
        } else if d.join("test.json").is_file() {
            let mut r = record_from_run_dir(d, usize::MAX)?;
            r.index = 1_000_000 + loose;
            loose += 1;
            r.dir = Some(relative_to(d, out));
            planned += 1;
            runs.push(r);
        } else {
            bail!(
                "{} holds neither summary.json (a campaign) nor test.json (a run)",
                d.display()
            );
        }
    }
    runs.sort_by_key(|r| r.index);
    // Loose runs are numbered after the matrix.
    let matrix_max = runs
        .iter()
        .filter(|r| r.index < 1_000_000)
        .map(|r| r.index + 1)
        .max()
        .unwrap_or(0);
    for r in runs.iter_mut().filter(|r| r.index >= 1_000_000) {
        r.index = matrix_max + (r.index - 1_000_000);
    }
    shards.sort();
    shards.dedup();
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "merged".into());
    let s = Summary::new(name, shards, planned, runs).at(out);
    s.write_all(out)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(index: usize, verdict: Validity) -> RunRecord {
        RunRecord {
            index,
            nemesis: "partition".into(),
            nodes: 3,
            seed: 40 + index as u64,
            bug: None,
            verdict,
            reason: (verdict == Validity::Unknown)
                .then(|| "the cluster never became available: <no leader> & \"x\"".into()),
            ops: Some(100),
            p99_ms: Some(12.5),
            elapsed_s: 3.0,
            dir: Some(PathBuf::from(format!("run-{index}"))),
        }
    }

    #[test]
    fn exit_code_is_1_for_any_invalid_then_3_for_unknown_then_0() {
        let c = |v: &[Validity]| {
            let runs: Vec<_> = v.iter().enumerate().map(|(i, v)| rec(i, *v)).collect();
            Counts::of(&runs).exit_code()
        };
        use Validity::*;
        assert_eq!(c(&[Valid, Valid]), 0);
        assert_eq!(c(&[Valid, Unknown]), 3);
        assert_eq!(c(&[Unknown, Invalid, Valid]), 1);
        assert_eq!(c(&[]), 0);
    }

    #[test]
    fn markdown_keeps_unknown_apart_from_violations_and_links_each_run() {
        let s = Summary::new(
            "c".into(),
            vec![],
            3,
            vec![
                rec(0, Validity::Valid),
                rec(1, Validity::Invalid),
                rec(2, Validity::Unknown),
            ],
        );
        let md = s.markdown();
        let viol = md.find("## Violations").unwrap();
        let inconc = md.find("## Inconclusive").unwrap();
        assert!(md[viol..inconc].contains("partition-n3-seed41"));
        assert!(!md[viol..inconc].contains("seed42"));
        assert!(md[inconc..].contains("never became available"));
        assert!(md.contains("raft-driver replay run-1"));
        assert!(md.contains("[index.html](run-0/index.html)"));
        assert!(md.contains("| 12.5 ms |"));
        assert!(md.contains("| partition | 3 | 3 | 1 | 1 | 1 |"), "{md}");
    }

    #[test]
    fn junit_escapes_text_and_counts_failures_and_errors() {
        let s = Summary::new(
            "c&d".into(),
            vec![],
            2,
            vec![rec(0, Validity::Invalid), rec(1, Validity::Unknown)],
        );
        let x = s.junit();
        assert!(x.contains("failures=\"1\" errors=\"1\""));
        assert!(x.contains("&lt;no leader&gt; &amp; &quot;x&quot;"));
        assert!(x.contains("name=\"c&amp;d\""));
        assert_eq!(x.matches("<testcase ").count(), 2);
    }

    #[test]
    fn relative_paths_climb_out_of_the_reference_folder() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a/b");
        let c = d.path().join("c");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&c).unwrap();
        assert_eq!(relative_to(&a, &c), PathBuf::from("../a/b"));
        assert_eq!(relative_to(&c, &c), PathBuf::from("."));
    }

    #[test]
    fn summarize_merges_shards_in_matrix_order_with_paths_from_the_new_folder() {
        let d = tempfile::tempdir().unwrap();
        let s1 = d.path().join("shard1");
        let s2 = d.path().join("shard2");
        for (dir, shard, idx) in [(&s1, "1/2", 0), (&s2, "2/2", 1)] {
            std::fs::create_dir_all(dir.join(format!("run-{idx}"))).unwrap();
            let v = if idx == 1 {
                Validity::Unknown
            } else {
                Validity::Valid
            };
            Summary::new("x".into(), vec![shard.into()], 1, vec![rec(idx, v)])
                .write_all(dir)
                .unwrap();
        }
        let out = d.path().join("merged");
        let m = summarize(&[s2.clone(), s1.clone()], &out).unwrap();
        assert_eq!(m.planned, 2);
        assert_eq!(m.shards, vec!["1/2".to_string(), "2/2".to_string()]);
        assert_eq!(m.runs.iter().map(|r| r.index).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(m.runs[0].dir.as_deref(), Some(Path::new("../shard1/run-0")));
        assert_eq!(m.counts.exit_code(), 3);
        assert!(out.join("summary.md").is_file() && out.join("junit.xml").is_file());
    }

    #[test]
    fn summarize_refuses_a_folder_that_is_neither_run_nor_campaign() {
        let d = tempfile::tempdir().unwrap();
        let err = summarize(&[d.path().to_path_buf()], &d.path().join("o")).unwrap_err();
        assert!(err.to_string().contains("neither summary.json"), "{err}");
    }
}
