//! The `teeth` command: does the harness still catch every bug raft-node can
//! switch on? For each bug (`raft-node --list-bugs`, with the node options
//! the bug needs to be reached), runs of the default campaign's shape with
//! fresh seeds until one is invalid or the bug's budget of campaign time is
//! spent; optionally replays the catching run to measure how often `replay`
//! reproduces it. Writes teeth.json, teeth.md and index.html into
//! `results/teeth-<time>/` after every bug, and can rewrite the teeth table
//! of TODO.md.
//!
//! A bug is caught by whichever checker called the run invalid:
//! linearizability, election safety or a node's own invariant report.

use crate::campaign::{self, CampaignArgs, CampaignPlan, ChildEnd, PlannedRun};
use crate::report::summary::{html_escape, one_line, relative_to, write_atomic, RunRecord};
use crate::run::utc_stamp;
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use raft_checker::verdict::RunResult;
use raft_checker::Validity;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Command-line options of `raft-driver teeth`.
#[derive(Debug, Clone, Args)]
pub struct TeethArgs {
    /// Bugs to try, comma separated; `all`: every bug `raft-node
    /// --list-bugs` names.
    #[arg(long, default_value = "all")]
    pub bugs: String,
    /// Minutes of campaign time (runs and their checks) each bug gets
    /// before it counts as missed.
    #[arg(long, default_value_t = 10.0)]
    pub budget_minutes: f64,
    /// Replays of the catching run, to measure how often `replay`
    /// reproduces a finding (stops at the first reproduction; 0: none).
    #[arg(long, default_value_t = 0)]
    pub replay_tries: u32,
    /// Nemesis sets, as `campaign --nemesis` takes them.
    #[arg(long, default_value = "default")]
    pub nemesis: String,
    /// Cluster sizes, comma separated.
    #[arg(long, default_value = "3,5")]
    pub nodes: String,
    /// Workload seconds of each run (the default campaign's).
    #[arg(long, default_value_t = 30.0)]
    pub time_limit: f64,
    /// Mean seconds of each fault and of each healed phase.
    #[arg(long, default_value_t = 3.0)]
    pub nemesis_interval: f64,
    /// First seed of every bug's runs (random if absent: fresh seeds).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seconds the checker may search per run.
    #[arg(long, default_value_t = 300.0)]
    pub check_time_limit: f64,
    /// Folder that receives the teeth folder.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// The raft-node binary (default: next to raft-driver).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Rewrite the teeth table of this file (between the lines
    /// `<!-- teeth:begin -->` and `<!-- teeth:end -->`, appended if absent).
    #[arg(long)]
    pub update_todo: Option<PathBuf>,
    /// Run nothing: merge these teeth.json reports (later ones win for a
    /// bug tried twice) into the table `--update-todo` writes.
    #[arg(long = "from-report", requires = "update_todo")]
    pub from_reports: Vec<PathBuf>,
}

/// A bug as the node lists it: its name and the node options it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BugSpec {
    /// `--bug` name.
    pub name: String,
    /// Node options without which the buggy code never runs.
    pub needs: Vec<String>,
}

impl BugSpec {
    /// Parses one line of `raft-node --list-bugs` (`name [option...]`).
    pub fn parse(line: &str) -> Option<BugSpec> {
        let mut words = line.split_whitespace();
        let name = words.next()?.to_string();
        Some(BugSpec {
            name,
            needs: words.map(str::to_string).collect(),
        })
    }
}

/// How replaying the catching run went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplayOutcome {
    /// Replays run.
    pub tries: u32,
    /// The try (1-based) whose replay was invalid again, if any.
    pub reproduced_on: Option<u32>,
    /// The replays' run folders, relative to the teeth folder.
    pub dirs: Vec<PathBuf>,
}

/// What the harness did against one bug.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BugTeeth {
    /// The bug and what it needs.
    pub bug: BugSpec,
    /// True once a run was invalid.
    pub caught: bool,
    /// The checkers that called the catching run invalid.
    pub caught_by: Vec<String>,
    /// The catching run's finding, in one line.
    pub finding: Option<String>,
    /// Runs tried (the catching one included).
    pub runs: usize,
    /// Runs that gave no verdict.
    pub unknown_runs: usize,
    /// Minutes of campaign time spent on this bug.
    pub minutes: f64,
    /// Caught within the budget.
    pub within_budget: bool,
    /// The catching run: nemesis set, cluster size, seed.
    pub caught_in: Option<PlannedRun>,
    /// The catching run's folder, relative to the teeth folder.
    pub run_dir: Option<PathBuf>,
    /// Replays of the catching run, when asked for.
    pub replay: Option<ReplayOutcome>,
    /// Every run, as campaign summaries record them.
    pub run_records: Vec<RunRecord>,
}

/// The whole teeth report (teeth.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeethReport {
    /// When the teeth run started (UTC).
    pub started: String,
    /// raft-driver's version.
    pub driver_version: String,
    /// Campaign minutes each bug was given.
    pub budget_minutes: f64,
    /// Workload seconds of each run.
    pub time_limit: f64,
    /// Nemesis sets tried, as `run --nemesis` takes them.
    pub nemesis_sets: Vec<String>,
    /// Cluster sizes tried.
    pub nodes: Vec<usize>,
    /// Bugs planned.
    pub planned: usize,
    /// One entry per bug tried, in order.
    pub bugs: Vec<BugTeeth>,
}

impl TeethReport {
    /// Bugs caught within the budget.
    pub fn caught(&self) -> usize {
        self.bugs
            .iter()
            .filter(|b| b.caught && b.within_budget)
            .count()
    }

    /// 0 every planned bug caught within its budget, 1 some bug missed,
    /// 3 the teeth run was cut short before every bug was tried.
    pub fn exit_code(&self) -> u8 {
        if self.bugs.iter().any(|b| !(b.caught && b.within_budget)) {
            1
        } else if self.bugs.len() < self.planned {
            3
        } else {
            0
        }
    }

    /// The report for people: a table, one row per bug.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Teeth: {} of {} bugs caught within {} min each (started {}, {} s runs, sets: {}; nodes {}).\n",
            self.caught(),
            self.planned,
            self.budget_minutes,
            self.started,
            self.time_limit,
            self.nemesis_sets.join(" | "),
            self.nodes
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        s.push_str(&self.table());
        s
    }

    /// The markdown table alone (what TODO.md carries).
    pub fn table(&self) -> String {
        let mut s = String::from(
            "| bug | needs | caught by | runs | minutes | caught in | replay |\n|---|---|---|---|---|---|---|\n",
        );
        for b in &self.bugs {
            let by = if b.caught {
                b.caught_by.join(", ")
            } else {
                format!("MISSED ({} unknown)", b.unknown_runs)
            };
            let caught_in = b
                .caught_in
                .as_ref()
                .map(|p| format!("`{}` n={} seed={}", p.nemesis, p.nodes, p.seed))
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} | {:.1}{} | {} | {} |",
                b.bug.name,
                if b.bug.needs.is_empty() {
                    "-".to_string()
                } else {
                    format!("`{}`", b.bug.needs.join(" "))
                },
                by,
                b.runs,
                b.minutes,
                if b.caught && !b.within_budget {
                    " (over budget)"
                } else {
                    ""
                },
                caught_in,
                replay_word(b.replay.as_ref()),
            );
        }
        s
    }

    /// The report as a page: the table, with links to every catching run.
    pub fn html(&self) -> String {
        let mut s = String::from(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>raft-driver teeth</title>\
             <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
             td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
             .miss{background:#fdd}.hit{background:#dfd}</style></head><body>",
        );
        let _ = write!(
            s,
            "<h1>Teeth: {} of {} bugs caught</h1><p>Each bug had {} minutes of campaign time \
             ({} s runs; sets {}; nodes {}); started {}, {}.</p>",
            self.caught(),
            self.planned,
            self.budget_minutes,
            self.time_limit,
            html_escape(&self.nemesis_sets.join(" | ")),
            html_escape(
                &self
                    .nodes
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            html_escape(&self.started),
            html_escape(&self.driver_version)
        );
        s.push_str(
            "<table><tr><th>bug</th><th>needs</th><th>caught by</th><th>finding</th>\
             <th>runs</th><th>minutes</th><th>caught in</th><th>replay</th></tr>",
        );
        for b in &self.bugs {
            let class = if b.caught && b.within_budget {
                "hit"
            } else {
                "miss"
            };
            let run = match (&b.run_dir, &b.caught_in) {
                (Some(d), Some(p)) => format!(
                    "<a href=\"{}/index.html\">{} n={} seed={}</a>",
                    html_escape(&d.display().to_string()),
                    html_escape(&p.nemesis),
                    p.nodes,
                    p.seed
                ),
                _ => "-".into(),
            };
            let _ = write!(
                s,
                "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{:.1}</td><td>{run}</td><td>{}</td></tr>",
                html_escape(&b.bug.name),
                html_escape(&b.bug.needs.join(" ")),
                if b.caught {
                    html_escape(&b.caught_by.join(", "))
                } else {
                    format!("MISSED ({} unknown runs)", b.unknown_runs)
                },
                html_escape(b.finding.as_deref().unwrap_or("")),
                b.runs,
                b.minutes,
                html_escape(&replay_word(b.replay.as_ref())),
            );
        }
        s.push_str("</table></body></html>\n");
        s
    }

    /// Writes teeth.json, teeth.md and index.html into `dir`.
    pub fn write_all(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join("teeth.json"), &serde_json::to_vec_pretty(self)?)?;
        write_atomic(&dir.join("teeth.md"), self.markdown().as_bytes())?;
        write_atomic(&dir.join("index.html"), self.html().as_bytes())?;
        Ok(())
    }
}

fn replay_word(r: Option<&ReplayOutcome>) -> String {
    match r {
        None => "-".into(),
        Some(r) => match r.reproduced_on {
            Some(k) => format!("reproduced on try {k}"),
            None => format!("not reproduced in {} tries", r.tries),
        },
    }
}

/// Markers around the generated table in TODO.md.
const TODO_BEGIN: &str = "<!-- teeth:begin (generated by raft-driver teeth --update-todo) -->";
const TODO_END: &str = "<!-- teeth:end -->";

/// `text` with the block between the teeth markers replaced by `table`
/// (the block appended, under a heading, if the markers are absent).
pub fn replace_teeth_block(text: &str, table: &str) -> String {
    let block = format!("{TODO_BEGIN}\n{table}{TODO_END}\n");
    let begin = text.find("<!-- teeth:begin");
    let end = text.find(TODO_END);
    match (begin, end) {
        (Some(b), Some(e)) if e > b => {
            let after = &text[e + TODO_END.len()..];
            let after = after.strip_prefix('\n').unwrap_or(after);
            format!("{}{block}{after}", &text[..b])
        }
        _ => {
            let mut s = text.to_string();
            if !s.ends_with('\n') && !s.is_empty() {
                s.push('\n');
            }
            s.push_str("\n## Teeth (raft-driver teeth)\n\n");
            s.push_str(&block);
            s
        }
    }
}

/// Merges teeth reports (a bug tried in a later report replaces its row)
/// and rewrites `todo`'s teeth table from them; returns the merged report.
pub fn update_todo_from(reports: &[PathBuf], todo: &Path) -> Result<TeethReport> {
    let mut merged: Option<TeethReport> = None;
    for path in reports {
        let r: TeethReport = serde_json::from_slice(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("{} is not a teeth report", path.display()))?;
        merged = Some(match merged {
            None => r,
            Some(mut m) => {
                for b in r.bugs {
                    m.bugs.retain(|x| x.bug.name != b.bug.name);
                    m.bugs.push(b);
                }
                m.planned = m.bugs.len();
                m
            }
        });
    }
    let merged = merged.context("--from-report needs at least one teeth.json")?;
    let text = std::fs::read_to_string(todo).unwrap_or_default();
    write_atomic(todo, replace_teeth_block(&text, &merged.table()).as_bytes())
        .with_context(|| format!("updating {}", todo.display()))?;
    Ok(merged)
}

/// The validated teeth run.
pub struct TeethPlan {
    args: TeethArgs,
    bugs: Vec<BugSpec>,
    node_bin: PathBuf,
    sets: Vec<String>,
    sizes: Vec<usize>,
}

impl TeethArgs {
    /// Checks the options and resolves the bugs, or returns a message for
    /// the user (exit 2).
    pub fn plan(&self) -> Result<TeethPlan, String> {
        if !(self.budget_minutes > 0.0 && self.budget_minutes <= 7.0 * 24.0 * 60.0) {
            return Err(format!(
                "--budget-minutes must be > 0 and at most a week, got {}",
                self.budget_minutes
            ));
        }
        if self.replay_tries > 100 {
            return Err(format!(
                "--replay-tries must be at most 100, got {}",
                self.replay_tries
            ));
        }
        let node_bin = crate::target::raft::find_node_bin(self.node_bin.as_deref())?;
        let known: Vec<BugSpec> = crate::target::raft::list(&node_bin, "bugs")?
            .iter()
            .filter_map(|l| BugSpec::parse(l))
            .collect();
        if known.is_empty() {
            return Err(format!("{} --list-bugs names no bug", node_bin.display()));
        }
        let bugs = if self.bugs.trim() == "all" {
            known
        } else {
            let mut out = Vec::new();
            for name in self.bugs.split(',').map(str::trim) {
                let spec = known.iter().find(|b| b.name == name).ok_or_else(|| {
                    let names: Vec<&str> = known.iter().map(|b| b.name.as_str()).collect();
                    format!("--bugs: unknown bug {name:?}; known: {}", names.join(", "))
                })?;
                out.push(spec.clone());
            }
            out
        };
        let sets = if matches!(self.nemesis.trim(), "default" | "") {
            campaign::default_sets_for(crate::target::TargetKind::Raft)
        } else {
            campaign::parse_nemesis_sets(&self.nemesis)?
        };
        let sizes = campaign::parse_sizes(&self.nodes)?;
        let plan = TeethPlan {
            args: self.clone(),
            bugs,
            node_bin,
            sets,
            sizes,
        };
        // Every bug's runs must pass `run`'s own checks now.
        for b in &plan.bugs {
            plan.campaign_for(b, 0)?;
        }
        Ok(plan)
    }
}

impl TeethPlan {
    /// The campaign a bug's runs come from: the default shape, with seeds
    /// enough to fill the budget even if every run took only its workload.
    fn campaign_for(&self, bug: &BugSpec, first_seed: u64) -> Result<CampaignPlan, String> {
        let a = &self.args;
        let cells = (self.sets.len() * self.sizes.len()).max(1) as f64;
        let seeds = ((a.budget_minutes * 60.0 / a.time_limit.max(1.0)) / cells).ceil() as u64 + 1;
        CampaignArgs {
            nemesis: a.nemesis.clone(),
            nodes: a.nodes.clone(),
            seeds,
            seed: Some(first_seed),
            time_limit: a.time_limit,
            shard: None,
            bug: Some(bug.name.clone()),
            results: a.results.clone(),
            concurrency: 10,
            rate: None,
            nemesis_interval: a.nemesis_interval,
            partition_shapes: "all".into(),
            op_timeout_ms: 2000,
            check_time_limit: a.check_time_limit,
            recovery_timeout: 30.0,
            node_bin: Some(self.node_bin.clone()),
            node_args: bug.needs.clone(),
            fail_fast: true,
            target: crate::target::TargetKind::Raft,
            tls: false,
        }
        .plan()
        .map_err(|e| format!("bug {}: {e}", bug.name))
    }
}

fn create_teeth_dir(results: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(results).with_context(|| format!("creating {}", results.display()))?;
    let base = format!("teeth-{}", utc_stamp(std::time::SystemTime::now()));
    crate::run::folder::create_unique_dir(results, &base)
}

/// The checkers that called a run invalid, and its finding in one line.
fn what_caught(run_dir: &Path) -> (Vec<String>, Option<String>) {
    match RunResult::read(&run_dir.join("results.json")) {
        Ok(r) => (
            r.checkers
                .iter()
                .filter(|c| c.valid == Validity::Invalid)
                .map(|c| c.name.clone())
                .collect(),
            Some(one_line(&raft_checker::verdict_text::shorten_quoted(
                &r.summary, 60,
            ))),
        ),
        Err(e) => (vec![], Some(e)),
    }
}

/// Runs `raft-driver replay` of `run_dir` until a replay is invalid again,
/// at most `tries` times.
fn replay_until_reproduced(
    exe: &Path,
    run_dir: &Path,
    out: &Path,
    teeth_dir: &Path,
    tries: u32,
    timeout: Duration,
    bar: &ProgressBar,
) -> Result<ReplayOutcome> {
    std::fs::create_dir_all(out)?;
    let mut outcome = ReplayOutcome::default();
    for k in 1..=tries {
        if campaign::STOP_REQUESTED.load(Ordering::SeqCst) {
            break;
        }
        let log_path = out.join(format!("replay-{k}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut child = Command::new(exe)
            .arg("replay")
            .arg(run_dir)
            .arg("--results")
            .arg(out)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let end = campaign::supervise(&mut child, timeout, bar);
        outcome.tries = k;
        if matches!(end, ChildEnd::Interrupted) {
            break;
        }
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(d) = campaign::announced_run_dir(&text) {
            let invalid = RunResult::read(&d.join("results.json"))
                .map(|r| r.valid == Validity::Invalid)
                .unwrap_or(false);
            outcome.dirs.push(relative_to(&d, teeth_dir));
            if invalid {
                outcome.reproduced_on = Some(k);
                break;
            }
        }
    }
    Ok(outcome)
}

/// Tries one bug: runs until caught or out of budget.
fn try_bug(
    exe: &Path,
    plan: &TeethPlan,
    bug: &BugSpec,
    teeth_dir: &Path,
    bar: &ProgressBar,
) -> Result<BugTeeth> {
    let budget = Duration::from_secs_f64(plan.args.budget_minutes * 60.0);
    let first_seed = plan.args.seed.unwrap_or_else(campaign::fresh_seed);
    let mut campaign_plan = plan
        .campaign_for(bug, first_seed)
        .map_err(crate::error::UsageError)?;
    let bug_dir = teeth_dir.join(&bug.name);
    std::fs::create_dir_all(&bug_dir)?;
    campaign_plan.results = bug_dir.clone();
    let started = Instant::now();
    let mut t = BugTeeth {
        bug: bug.clone(),
        caught: false,
        caught_by: vec![],
        finding: None,
        runs: 0,
        unknown_runs: 0,
        minutes: 0.0,
        within_budget: false,
        caught_in: None,
        run_dir: None,
        replay: None,
        run_records: vec![],
    };
    for p in &campaign_plan.runs {
        if started.elapsed() >= budget || campaign::STOP_REQUESTED.load(Ordering::SeqCst) {
            break;
        }
        bar.set_message(format!(
            "{}: run {} ({} n={} seed={}), {:.1} min",
            bug.name,
            t.runs + 1,
            p.nemesis,
            p.nodes,
            p.seed,
            started.elapsed().as_secs_f64() / 60.0
        ));
        let (mut rec, code) = campaign::run_one(exe, &campaign_plan, p, &bug_dir, bar)?;
        if code == Some(2) {
            bail!(crate::error::UsageError(format!(
                "bug {}: a run refused its options: {}",
                bug.name,
                rec.reason.unwrap_or_default()
            )));
        }
        if campaign::STOP_REQUESTED.load(Ordering::SeqCst) {
            break;
        }
        t.runs += 1;
        // Records are relative to the teeth folder, not the bug's.
        rec.dir = rec.dir.map(|d| relative_to(&bug_dir.join(d), teeth_dir));
        match rec.verdict {
            Validity::Unknown => t.unknown_runs += 1,
            Validity::Invalid => {
                t.caught = true;
                t.caught_in = Some(p.clone());
                t.run_dir = rec.dir.clone();
            }
            Validity::Valid => {}
        }
        t.run_records.push(rec);
        if t.caught {
            break;
        }
    }
    t.minutes = started.elapsed().as_secs_f64() / 60.0;
    t.within_budget = t.caught && started.elapsed() <= budget;
    if let Some(d) = t.run_dir.clone() {
        let run_dir = teeth_dir.join(&d);
        let (by, finding) = what_caught(&run_dir);
        t.caught_by = by;
        t.finding = finding;
        if plan.args.replay_tries > 0 {
            bar.set_message(format!("{}: replaying the catching run", bug.name));
            t.replay = Some(replay_until_reproduced(
                exe,
                &run_dir,
                &bug_dir.join("replays"),
                teeth_dir,
                plan.args.replay_tries,
                Duration::from_secs_f64(campaign_plan.run_timeout_s),
                bar,
            )?);
        }
    }
    Ok(t)
}

/// What a finished teeth run hands back to `main`.
pub struct TeethOutcome {
    /// The teeth folder.
    pub dir: PathBuf,
    /// The report written there.
    pub report: TeethReport,
}

/// Runs the teeth plan: every bug in turn, the report rewritten after each.
pub fn run_teeth(plan: TeethPlan) -> Result<TeethOutcome> {
    let exe = std::env::current_exe().context("locating raft-driver")?;
    campaign::install_stop_handlers();
    let dir = create_teeth_dir(&plan.args.results)?;
    eprintln!(
        "raft-driver: teeth folder {} ({} bugs, {} min each at most)",
        dir.display(),
        plan.bugs.len(),
        plan.args.budget_minutes
    );
    let mut report = TeethReport {
        started: utc_stamp(std::time::SystemTime::now()),
        driver_version: format!("raft-driver {}", env!("CARGO_PKG_VERSION")),
        budget_minutes: plan.args.budget_minutes,
        time_limit: plan.args.time_limit,
        nemesis_sets: plan.sets.clone(),
        nodes: plan.sizes.clone(),
        planned: plan.bugs.len(),
        bugs: vec![],
    };
    report.write_all(&dir)?;
    let bar =
        ProgressBar::with_draw_target(Some(plan.bugs.len() as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("bug {pos}/{len} [{bar:20}] {elapsed_precise} | {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    for bug in &plan.bugs {
        if campaign::STOP_REQUESTED.load(Ordering::SeqCst) {
            break;
        }
        let t = try_bug(&exe, &plan, bug, &dir, &bar)?;
        if campaign::STOP_REQUESTED.load(Ordering::SeqCst) && !t.caught {
            // Half a try says nothing about the bug: left out.
            break;
        }
        let line = format!(
            "{}: {} after {} runs, {:.1} min{}",
            bug.name,
            if t.caught {
                format!("caught by {}", t.caught_by.join(", "))
            } else {
                "MISSED".into()
            },
            t.runs,
            t.minutes,
            t.replay
                .as_ref()
                .map(|r| format!("; replay {}", replay_word(Some(r))))
                .unwrap_or_default()
        );
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
        bar.inc(1);
        report.bugs.push(t);
        report.write_all(&dir)?;
    }
    bar.finish_and_clear();
    if let Some(todo) = &plan.args.update_todo {
        let text = std::fs::read_to_string(todo).unwrap_or_default();
        write_atomic(todo, replace_teeth_block(&text, &report.table()).as_bytes())
            .with_context(|| format!("updating {}", todo.display()))?;
    }
    Ok(TeethOutcome { dir, report })
}

/// Prints the end-of-teeth report on stdout.
pub fn print_report(o: &TeethOutcome) {
    let r = &o.report;
    println!(
        "teeth: {} of {} bugs caught within {} min each ({} tried)",
        r.caught(),
        r.planned,
        r.budget_minutes,
        r.bugs.len()
    );
    for b in &r.bugs {
        if !(b.caught && b.within_budget) {
            println!(
                "MISSED {}: {} runs, {:.1} min",
                b.bug.name, b.runs, b.minutes
            );
        }
    }
    println!("report: {}", o.dir.join("teeth.md").display());
    let word = match r.exit_code() {
        0 => "every bug caught",
        1 => "some bug missed",
        _ => "incomplete",
    };
    println!("teeth: {word} (exit {})", r.exit_code());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn teeth(caught: bool, within: bool) -> BugTeeth {
        BugTeeth {
            bug: BugSpec {
                name: "lease-from-ack".into(),
                needs: vec!["--read-mode=lease".into()],
            },
            caught,
            caught_by: if caught {
                vec!["linearizability".into()]
            } else {
                vec![]
            },
            finding: None,
            runs: 3,
            unknown_runs: 0,
            minutes: 2.5,
            within_budget: within,
            caught_in: caught.then(|| PlannedRun {
                index: 2,
                nemesis: "all".into(),
                nodes: 3,
                seed: 7,
            }),
            run_dir: None,
            replay: None,
            run_records: vec![],
        }
    }

    fn report(bugs: Vec<BugTeeth>, planned: usize) -> TeethReport {
        TeethReport {
            started: "t".into(),
            driver_version: "v".into(),
            budget_minutes: 10.0,
            time_limit: 30.0,
            nemesis_sets: vec!["all".into()],
            nodes: vec![3],
            planned,
            bugs,
        }
    }

    #[test]
    fn a_listed_bug_carries_the_node_options_it_needs() {
        assert_eq!(
            BugSpec::parse("lease-from-ack --read-mode=lease"),
            Some(BugSpec {
                name: "lease-from-ack".into(),
                needs: vec!["--read-mode=lease".into()]
            })
        );
        assert_eq!(BugSpec::parse("stale-read").unwrap().needs.len(), 0);
        assert_eq!(BugSpec::parse("   "), None);
    }

    #[test]
    fn exit_code_fails_on_a_missed_or_late_bug_and_is_unknown_when_cut_short() {
        assert_eq!(report(vec![teeth(true, true)], 1).exit_code(), 0);
        assert_eq!(report(vec![teeth(false, false)], 1).exit_code(), 1);
        assert_eq!(report(vec![teeth(true, false)], 1).exit_code(), 1);
        assert_eq!(report(vec![teeth(true, true)], 2).exit_code(), 3);
    }

    #[test]
    fn the_table_names_what_caught_each_bug_and_what_was_missed() {
        let t = report(vec![teeth(true, true), teeth(false, false)], 2).table();
        assert!(t.contains("| `lease-from-ack` | `--read-mode=lease` | linearizability | 3 | 2.5 | `all` n=3 seed=7 |"), "{t}");
        assert!(t.contains("MISSED"), "{t}");
    }

    #[test]
    fn the_todo_block_is_replaced_in_place_or_appended_once() {
        let table = "| a |\n";
        let fresh = replace_teeth_block("# TODO\n\nrows\n", table);
        assert!(fresh.starts_with("# TODO\n\nrows\n"));
        assert!(fresh.contains(TODO_BEGIN) && fresh.contains("| a |\n<!-- teeth:end -->"));
        let again = replace_teeth_block(&format!("{fresh}after\n"), "| b |\n");
        assert_eq!(again.matches("teeth:begin").count(), 1);
        assert!(again.contains("| b |") && !again.contains("| a |"));
        assert!(again.ends_with("<!-- teeth:end -->\nafter\n"), "{again}");
    }

    #[test]
    fn reports_merge_into_todo_with_the_later_try_of_a_bug_winning() {
        let dir = tempfile::tempdir().unwrap();
        let mut other = teeth(true, true);
        other.bug.name = "stale-read".into();
        let first = report(vec![teeth(false, false), other], 2);
        let second = report(vec![teeth(true, true)], 1);
        let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
        std::fs::write(&a, serde_json::to_vec(&first).unwrap()).unwrap();
        std::fs::write(&b, serde_json::to_vec(&second).unwrap()).unwrap();
        let todo = dir.path().join("TODO.md");
        std::fs::write(&todo, "# ladder\n").unwrap();
        let merged = update_todo_from(&[a, b], &todo).unwrap();
        assert_eq!(merged.bugs.len(), 2);
        assert_eq!(merged.exit_code(), 0, "the missed try was replaced");
        let text = std::fs::read_to_string(&todo).unwrap();
        assert!(
            text.starts_with("# ladder\n") && !text.contains("MISSED"),
            "{text}"
        );
        assert!(text.contains("`stale-read`") && text.contains("`lease-from-ack`"));
    }
}
