//! The `campaign` command: a matrix of nemesis sets x cluster sizes x seeds,
//! run one after another (each run a child `raft-driver run`, so that one
//! run's crash, hang or leak cannot spoil the next), summarised in
//! summary.md / summary.json / junit.xml under `results/campaign-<time>/`.

use crate::report::index as results_index;
use crate::report::summary::{Counts, RunRecord, Summary};
use crate::run::options::{parse_nemesis, RunArgs};
use crate::run::utc_stamp;
use anyhow::{Context, Result};
use clap::{Args, Parser};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use raft_checker::Validity;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// Command-line options of `raft-driver campaign`.
#[derive(Debug, Clone, Args)]
pub struct CampaignArgs {
    /// Nemesis sets, comma separated; `+` joins kinds into one set (e.g.
    /// `partition,kill+pause,all`). `default`: the mixed sets of
    /// [`DEFAULT_SETS`] (every kind, and families of kinds with their
    /// targeted scenarios), never one kind at a time.
    #[arg(long, default_value = "default")]
    pub nemesis: String,
    /// Cluster sizes, comma separated.
    #[arg(long, default_value = "3,5")]
    pub nodes: String,
    /// Seeds per (nemesis set, cluster size).
    #[arg(long, default_value_t = 2)]
    pub seeds: u64,
    /// First seed; the others follow it (random if absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Workload seconds of each run.
    #[arg(long, default_value_t = 30.0)]
    pub time_limit: f64,
    /// Run only the K-th of N slices of the matrix (1-based), e.g. 2/4.
    #[arg(long)]
    pub shard: Option<String>,
    /// Known defect to switch on in every node.
    #[arg(long)]
    pub bug: Option<String>,
    /// Folder that receives the campaign folder.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Client workers of each run.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// Total ops/s of each run (unlimited if absent).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Mean seconds of each fault and of each healed phase.
    #[arg(long, default_value_t = 3.0)]
    pub nemesis_interval: f64,
    /// Partition shapes: all, or a comma list.
    #[arg(long, default_value = "all")]
    pub partition_shapes: String,
    /// Per-operation timeout in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub op_timeout_ms: u64,
    /// Seconds the checker may search per run.
    #[arg(long, default_value_t = 300.0)]
    pub check_time_limit: f64,
    /// Seconds to wait for a leader at start-up and for recovery.
    #[arg(long, default_value_t = 30.0)]
    pub recovery_timeout: f64,
    /// The raft-node binary (default: next to raft-driver).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Extra argument for every node (repeatable).
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// Stop after the first invalid run (the rest of the matrix is skipped).
    #[arg(long)]
    pub fail_fast: bool,
    /// System under test of every run: raft (raft-node) or etcd.
    #[arg(long, value_enum, default_value_t)]
    pub target: crate::target::TargetKind,
    /// Every run with `--tls` (mutual TLS, raft target only).
    #[arg(long)]
    pub tls: bool,
}

/// One cell of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PlannedRun {
    /// Position in the whole matrix (0-based).
    pub index: usize,
    /// Nemesis set, as `run --nemesis` takes it.
    pub nemesis: String,
    /// Cluster size.
    pub nodes: usize,
    /// Seed.
    pub seed: u64,
}

/// The validated campaign: the runs of this shard and how to start them.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignPlan {
    /// Runs of the whole matrix.
    pub matrix_size: usize,
    /// `(k, n)` when only the k-th of n slices runs.
    pub shard: Option<(usize, usize)>,
    /// The runs of this shard, in order.
    pub runs: Vec<PlannedRun>,
    /// Options shared by every run (after `run`, before per-run options).
    pub common_args: Vec<String>,
    /// Where the campaign folder goes.
    pub results: PathBuf,
    /// Defect switched on, if any.
    pub bug: Option<String>,
    /// Seconds after which a run is stopped and marked unknown.
    pub run_timeout_s: f64,
    /// Stop after the first invalid run.
    pub fail_fast: bool,
    /// System under test of every run.
    pub target: crate::target::TargetKind,
}

#[derive(Parser)]
struct RunCmd {
    #[command(flatten)]
    run: RunArgs,
}

/// Parses `K/N` (1 <= K <= N).
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--shard must be K/N with 1 <= K <= N, got {s:?}");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let k: usize = k.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// The default campaign's nemesis sets: every kind mixed together, and
/// families of kinds with the scenarios that attack them, each played as a
/// mixed timeline (faults overlap, change, come in bursts).
pub const DEFAULT_SETS: &[&str] = &[
    "all",
    // Elections and leadership: lagging candidates, deposed leaders with
    // entries nobody else has (zombies among them, clocks stalled, a
    // successor elected only as they return), churn, membership changes
    // raced across a change of leader, with log appends that lag behind
    // heartbeats (commit indexes and logs out of step across elections),
    // and clocks that drift.
    "partition+kill+pause+lagging-leader+deposed-leader+leader-churn+membership+messages+clock",
    // Votes, configuration and hand-overs under crashes, cuts and slow
    // links: concurrent membership changes (a cut leader that takes two at
    // once leaves a majority of the old configuration free to elect),
    // changes right after a hand-over.
    "partition+kill+pause+slow+vote-crash+membership+leader-transfer+messages",
    // Faults of the machine: unsynced writes lost by power cuts, clocks
    // that drift and jump, zombie leaders whose clocks stall while they are
    // cut off, with the crashes at hard moments, cuts of the leader and
    // late or replayed messages that make them bite.
    "power-cut+clock+crash-point+partition+deposed-leader+messages",
];

/// The default sets as `target` can run them on this machine: kinds the
/// target lacks, or that this machine cannot provide (no FUSE, no
/// libfaketime), are left out, saying so on stderr, so that the default
/// campaign runs everywhere; a named set is taken as written.
pub fn default_sets_for(target: crate::target::TargetKind) -> Vec<String> {
    let caps = target.target().capabilities();
    let mut out: Vec<String> = Vec::new();
    for set in DEFAULT_SETS {
        let kinds: Vec<&str> = set
            .split('+')
            .filter(|name| {
                let Some(k) = crate::nemesis::schedule::NemesisKind::parse(name) else {
                    return true; // "all"
                };
                let why = k
                    .unsupported_by(&caps)
                    .map(|lack| format!("the target lacks {lack}"))
                    .or_else(|| crate::machine::Machine::unavailable(&[k]));
                if let Some(why) = &why {
                    eprintln!("raft-driver: the default campaign leaves out {name}: {why}");
                }
                why.is_none()
            })
            .collect();
        let run_form = kinds.join(",");
        if !kinds.is_empty() && !out.contains(&run_form) {
            out.push(run_form);
        }
    }
    out
}

/// A seed from the clock and the process id, short enough to type in the
/// morning.
pub fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u64 ^ u64::from(std::process::id()) << 20) % 1_000_000_000
}

/// Expands `--nemesis` into run-level nemesis lists (`partition,kill`).
pub fn parse_nemesis_sets(s: &str) -> Result<Vec<String>, String> {
    let s = s.trim();
    if s == "default" || s.is_empty() {
        return Ok(DEFAULT_SETS
            .iter()
            .map(|set| set.replace('+', ","))
            .collect());
    }
    let mut out: Vec<String> = Vec::new();
    for set in s.split(',').map(str::trim) {
        if set.is_empty() {
            return Err(format!("empty nemesis set in {s:?}"));
        }
        let run_form = set.replace('+', ",");
        parse_nemesis(&run_form).map_err(|e| format!("--nemesis set {set:?}: {e}"))?;
        if !out.contains(&run_form) {
            out.push(run_form);
        }
    }
    Ok(out)
}

/// Parses `--nodes 3,5`.
pub fn parse_sizes(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for p in s.split(',').map(str::trim) {
        let n: usize = p
            .parse()
            .map_err(|_| format!("--nodes takes a comma list of cluster sizes, got {s:?}"))?;
        if n == 0 || n > crate::run::options::MAX_NODES {
            return Err(format!(
                "--nodes: cluster sizes must be between 1 and {}, got {n}",
                crate::run::options::MAX_NODES
            ));
        }
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

impl PlannedRun {
    /// The per-run options (after the common ones).
    pub fn args(&self) -> Vec<String> {
        vec![
            "--nemesis".into(),
            self.nemesis.clone(),
            "--nodes".into(),
            self.nodes.to_string(),
            "--seed".into(),
            self.seed.to_string(),
        ]
    }
}

impl CampaignArgs {
    /// Checks every option (each run's options too) and lays out the
    /// matrix, or returns a message for the user (exit code 2).
    pub fn plan(&self) -> Result<CampaignPlan, String> {
        let default_sets = matches!(self.nemesis.trim(), "default" | "");
        let sets = if default_sets {
            default_sets_for(self.target)
        } else {
            parse_nemesis_sets(&self.nemesis)?
        };
        let sizes = parse_sizes(&self.nodes)?;
        if self.seeds == 0 || self.seeds > 1_000_000 {
            return Err(format!(
                "--seeds must be between 1 and 1000000, got {}",
                self.seeds
            ));
        }
        let shard = self.shard.as_deref().map(parse_shard).transpose()?;
        let first_seed = self.seed.unwrap_or_else(fresh_seed);
        let mut common = vec![
            "--time-limit".to_string(),
            self.time_limit.to_string(),
            "--concurrency".into(),
            self.concurrency.to_string(),
            "--nemesis-interval".into(),
            self.nemesis_interval.to_string(),
            "--partition-shapes".into(),
            self.partition_shapes.clone(),
            "--op-timeout-ms".into(),
            self.op_timeout_ms.to_string(),
            "--check-time-limit".into(),
            self.check_time_limit.to_string(),
            "--recovery-timeout".into(),
            self.recovery_timeout.to_string(),
        ];
        if self.target != crate::target::TargetKind::Raft {
            let name = clap::ValueEnum::to_possible_value(&self.target)
                .map(|v| v.get_name().to_string())
                .unwrap_or_default();
            common.extend(["--target".into(), name]);
        }
        if let Some(r) = self.rate {
            common.extend(["--rate".into(), r.to_string()]);
        }
        if let Some(b) = &self.bug {
            common.extend(["--bug".into(), b.clone()]);
        }
        if let Some(p) = &self.node_bin {
            common.extend(["--node-bin".into(), p.display().to_string()]);
        }
        for a in &self.node_args {
            common.push(format!("--node-arg={a}"));
        }
        if self.tls {
            common.push("--tls".into());
        }
        // Seed-major order: the first runs of a campaign (or of each shard)
        // already cover every nemesis set and size.
        let mut matrix = Vec::new();
        for s in 0..self.seeds {
            for &nodes in &sizes {
                for set in &sets {
                    // The default matrix leaves out what a size cannot run
                    // (removing one of two voters leaves no majority).
                    if default_sets && nodes < 3 && set.split(',').any(|k| k == "membership") {
                        continue;
                    }
                    matrix.push(PlannedRun {
                        index: matrix.len(),
                        nemesis: set.clone(),
                        nodes,
                        seed: first_seed.wrapping_add(s),
                    });
                }
            }
        }
        // Every run's options must pass `run`'s own checks now, not at 3 am.
        for p in &matrix {
            let mut argv = vec!["run".to_string()];
            argv.extend(common.iter().cloned());
            argv.extend(p.args());
            let parsed = RunCmd::try_parse_from(&argv).map_err(|e| e.to_string())?;
            parsed
                .run
                .validate()
                .map_err(|e| format!("run {} ({}): {e}", p.index + 1, p.nemesis))?;
        }
        let matrix_size = matrix.len();
        let runs = match shard {
            None => matrix,
            Some((k, n)) => matrix
                .into_iter()
                .filter(|p| p.index % n == k - 1)
                .collect(),
        };
        let run_timeout_s =
            self.time_limit + 2.0 * self.recovery_timeout + self.check_time_limit + 120.0;
        Ok(CampaignPlan {
            matrix_size,
            shard,
            runs,
            common_args: common,
            results: self.results.clone(),
            bug: self.bug.clone(),
            run_timeout_s,
            fail_fast: self.fail_fast,
            target: self.target,
        })
    }
}

pub(crate) static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_stop_signal(sig: libc::c_int) {
    // Only async-signal-safe work here: two atomic stores.
    STOP_SIGNAL.store(sig, Ordering::SeqCst);
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

pub(crate) fn install_stop_handlers() {
    let handler: extern "C" fn(libc::c_int) = on_stop_signal;
    // SAFETY: the handler only stores to atomics, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

fn create_campaign_dir(plan: &CampaignPlan) -> Result<PathBuf> {
    std::fs::create_dir_all(&plan.results)
        .with_context(|| format!("creating {}", plan.results.display()))?;
    let mut base = format!("campaign-{}", utc_stamp(std::time::SystemTime::now()));
    if let Some(b) = &plan.bug {
        base.push_str(&format!("-bug-{b}"));
    }
    if let Some((k, n)) = plan.shard {
        base.push_str(&format!("-shard-{k}-of-{n}"));
    }
    crate::run::folder::create_unique_dir(&plan.results, &base)
}

/// How a child run ended.
pub(crate) enum ChildEnd {
    Exited(Option<i32>),
    TimedOut,
    Interrupted,
}

/// Waits for `child`, stopping it (SIGTERM, then SIGKILL) past `timeout` or
/// when the campaign is asked to stop; ticks `bar` meanwhile.
pub(crate) fn supervise(
    child: &mut std::process::Child,
    timeout: Duration,
    bar: &ProgressBar,
) -> ChildEnd {
    let deadline = Instant::now() + timeout;
    let mut end = None;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return end.unwrap_or(ChildEnd::Exited(status.code()));
            }
            Ok(None) => {}
            Err(_) => return ChildEnd::Exited(None),
        }
        if end.is_none() {
            let why = if STOP_REQUESTED.load(Ordering::SeqCst) {
                Some(ChildEnd::Interrupted)
            } else if Instant::now() > deadline {
                Some(ChildEnd::TimedOut)
            } else {
                None
            };
            if let Some(why) = why {
                // The child driver kills its nodes on SIGTERM; give it time.
                // SAFETY: kill(2) on the PID of a child we have not reaped.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
                end = Some(why);
                let grace = Instant::now() + Duration::from_secs(15);
                while Instant::now() < grace {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = child.kill();
                let _ = child.wait();
                return end.expect("set above");
            }
        }
        bar.tick();
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The run folder the child announced on stderr (`run folder X`).
pub(crate) fn announced_run_dir(log: &str) -> Option<PathBuf> {
    log.lines()
        .find_map(|l| l.strip_prefix("raft-driver: run folder "))
        .map(|p| PathBuf::from(p.trim()))
}

/// Why a run gave no verdict, from its log's `no verdict` lines.
fn no_verdict_reason(log: &str) -> Option<String> {
    let start = log.find("raft-driver: no verdict: ")?;
    let text = &log[start + "raft-driver: no verdict: ".len()..];
    Some(text.lines().take(4).collect::<Vec<_>>().join("\n"))
}

/// Runs one planned run as a child process and returns its record.
pub(crate) fn run_one(
    exe: &Path,
    plan: &CampaignPlan,
    p: &PlannedRun,
    campaign_dir: &Path,
    bar: &ProgressBar,
) -> Result<(RunRecord, Option<i32>)> {
    let logs = campaign_dir.join("driver-logs");
    std::fs::create_dir_all(&logs)?;
    let log_path = logs.join(format!("run-{:04}.log", p.index + 1));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let started = Instant::now();
    let mut child = Command::new(exe)
        .arg("run")
        .args(&plan.common_args)
        .args(p.args())
        .arg("--results")
        .arg(campaign_dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let end = supervise(&mut child, Duration::from_secs_f64(plan.run_timeout_s), bar);
    let elapsed_s = started.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let run_dir = announced_run_dir(&text);
    let mut rec = RunRecord {
        index: p.index,
        nemesis: p.nemesis.clone(),
        nodes: p.nodes,
        seed: p.seed,
        bug: plan.bug.clone(),
        verdict: Validity::Unknown,
        reason: None,
        ops: None,
        p99_ms: None,
        elapsed_s,
        dir: run_dir
            .as_ref()
            .map(|d| crate::report::summary::relative_to(d, campaign_dir)),
    };
    let have_results = run_dir
        .as_ref()
        .map(|d| crate::report::summary::apply_results(&mut rec, d))
        .unwrap_or(false);
    let log_rel = crate::report::summary::relative_to(&log_path, campaign_dir);
    let code = match end {
        ChildEnd::Exited(code) => code,
        _ => None,
    };
    let reason = match end {
        ChildEnd::TimedOut => Some(format!(
            "the run did not finish within {:.0} s and was stopped (see {})",
            plan.run_timeout_s,
            log_rel.display()
        )),
        ChildEnd::Interrupted => Some(INTERRUPTED.into()),
        ChildEnd::Exited(Some(0 | 1)) if have_results => None,
        ChildEnd::Exited(Some(3)) if have_results => None,
        ChildEnd::Exited(Some(3)) => Some(
            no_verdict_reason(&text)
                .unwrap_or_else(|| format!("no verdict (see {})", log_rel.display())),
        ),
        ChildEnd::Exited(Some(c)) => Some(format!(
            "raft-driver run exited with code {c}: {} (see {})",
            no_verdict_reason(&text).unwrap_or_else(|| last_line(&text)),
            log_rel.display()
        )),
        ChildEnd::Exited(None) => Some(format!(
            "raft-driver run was killed by a signal (see {})",
            log_rel.display()
        )),
    };
    if let Some(reason) = reason {
        // An environment problem is inconclusive, never a violation.
        rec.verdict = Validity::Unknown;
        rec.reason = Some(reason);
    }
    Ok((rec, code))
}

/// The reason of a run cut short by SIGINT / SIGTERM of the campaign.
const INTERRUPTED: &str = "the campaign was interrupted during this run";

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}

/// What a finished campaign hands back to `main`.
#[derive(Debug)]
pub struct CampaignOutcome {
    /// The campaign folder.
    pub dir: PathBuf,
    /// The summary written there.
    pub summary: Summary,
    /// True if a run refused its options (exit code 2).
    pub usage_error: bool,
}

/// Runs the campaign: every planned run in order, the summary rewritten
/// after each, results/index.html at the end.
pub fn run_campaign(plan: CampaignPlan) -> Result<CampaignOutcome> {
    let exe = std::env::current_exe().context("locating raft-driver")?;
    if plan.target == crate::target::TargetKind::Raft {
        crate::target::raft::find_node_bin(
            plan.common_args
                .iter()
                .position(|a| a == "--node-bin")
                .map(|i| Path::new(&plan.common_args[i + 1])),
        )
        .map_err(crate::error::UsageError)?;
    }
    install_stop_handlers();
    let dir = create_campaign_dir(&plan)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    crate::report::summary::write_atomic(
        &dir.join("campaign.json"),
        &serde_json::to_vec_pretty(&serde_json::json!({
            "plan": plan,
            "started": utc_stamp(std::time::SystemTime::now()),
            "driver_version": format!("raft-driver {}", env!("CARGO_PKG_VERSION")),
        }))?,
    )?;
    eprintln!(
        "raft-driver: campaign folder {} ({} runs{})",
        dir.display(),
        plan.runs.len(),
        plan.shard
            .map(|(k, n)| format!(", shard {k}/{n} of {}", plan.matrix_size))
            .unwrap_or_default()
    );
    let shards: Vec<String> = plan
        .shard
        .map(|(k, n)| vec![format!("{k}/{n}")])
        .unwrap_or_default();
    let bar =
        ProgressBar::with_draw_target(Some(plan.runs.len() as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "run {pos}/{len} [{bar:20}] {elapsed_precise} elapsed, ~{eta_precise} left | {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let mut records: Vec<RunRecord> = Vec::new();
    let mut usage_error = false;
    Summary::new(name.clone(), shards.clone(), plan.runs.len(), vec![])
        .at(&dir)
        .write_all(&dir)?;
    for (k, p) in plan.runs.iter().enumerate() {
        if STOP_REQUESTED.load(Ordering::SeqCst) {
            break;
        }
        let c = Counts::of(&records);
        bar.set_message(format!(
            "valid {} invalid {} unknown {} | now: {} on {} nodes, seed {}",
            c.valid, c.invalid, c.unknown, p.nemesis, p.nodes, p.seed
        ));
        let (rec, code) = run_one(&exe, &plan, p, &dir, &bar)?;
        if rec.reason.as_deref() == Some(INTERRUPTED) {
            // Half a run says nothing: it is left out of the summary (which
            // then covers fewer runs than planned), never counted unknown.
            eprintln!(
                "raft-driver: interrupted during run {} ({} nodes={} seed={}); not counted",
                k + 1,
                p.nemesis,
                p.nodes,
                p.seed
            );
            break;
        }
        let line = progress_line(k, plan.runs.len(), p, &rec, &dir);
        // Cron and CI logs get a line per run even without a terminal.
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
        bar.inc(1);
        let invalid = rec.verdict == Validity::Invalid;
        records.push(rec);
        Summary::new(
            name.clone(),
            shards.clone(),
            plan.runs.len(),
            records.clone(),
        )
        .at(&dir)
        .write_all(&dir)?;
        if code == Some(2) {
            // Bad usage repeats for every run: stop and say so.
            usage_error = true;
            break;
        }
        if invalid && plan.fail_fast {
            break;
        }
    }
    bar.finish_and_clear();
    let summary = Summary::new(name, shards, plan.runs.len(), records).at(&dir);
    summary.write_all(&dir)?;
    if let Err(e) = results_index::write(&plan.results) {
        eprintln!("raft-driver: results/index.html not updated: {e:#}");
    }
    Ok(CampaignOutcome {
        dir,
        summary,
        usage_error,
    })
}

/// The line a finished run gets on the terminal (and in cron logs).
fn progress_line(k: usize, total: usize, p: &PlannedRun, rec: &RunRecord, dir: &Path) -> String {
    format!(
        "[{}/{}] {} nodes={} seed={}: {} ({:.0} s){}{}",
        k + 1,
        total,
        p.nemesis,
        p.nodes,
        p.seed,
        rec.verdict.table_word(),
        rec.elapsed_s,
        rec.dir
            .as_ref()
            .map(|d| format!(" {}", dir.join(d).display()))
            .unwrap_or_default(),
        rec.reason
            .as_deref()
            .filter(|_| rec.verdict == Validity::Unknown)
            .map(|r| format!("\n    unknown: {}", crate::report::summary::one_line(r)))
            .unwrap_or_default()
    )
}

/// Prints the end-of-campaign report on stdout.
pub fn print_report(o: &CampaignOutcome) {
    let c = o.summary.counts;
    println!(
        "campaign: {} runs of {} planned: {} valid, {} invalid, {} unknown",
        o.summary.runs.len(),
        o.summary.planned,
        c.valid,
        c.invalid,
        c.unknown
    );
    for r in &o.summary.runs {
        let dir = r
            .dir
            .as_ref()
            .map(|d| o.dir.join(d).display().to_string())
            .unwrap_or_else(|| "?".into());
        match r.verdict {
            Validity::Invalid => {
                println!("INVALID {}: {dir}", r.name());
                println!("  reproduce: raft-driver replay {dir}");
                println!("  re-check:  raft-checker check {dir}");
            }
            Validity::Unknown => println!(
                "unknown {}: {}",
                r.name(),
                crate::report::summary::one_line(r.reason.as_deref().unwrap_or(""))
            ),
            Validity::Valid => {}
        }
    }
    println!("summary: {}", o.dir.join("summary.md").display());
    if STOP_REQUESTED.load(Ordering::SeqCst) {
        println!(
            "interrupted by signal {}: the summary covers the runs that finished",
            STOP_SIGNAL.load(Ordering::SeqCst)
        );
    }
    let word = match o.exit_code() {
        0 => "VALID",
        1 => "INVALID",
        2 => "BAD USAGE",
        _ if c.unknown == 0 => "INCOMPLETE",
        _ => "UNKNOWN",
    };
    println!("verdict: {word} (exit {})", o.exit_code());
}

impl CampaignOutcome {
    /// 1 if any run is invalid, 2 if runs refused their options, 3 if none
    /// is invalid but some are unknown (or the campaign was cut short),
    /// 0 if all planned runs are valid.
    pub fn exit_code(&self) -> u8 {
        let c = self.summary.counts;
        if c.invalid > 0 {
            return 1;
        }
        if self.usage_error {
            return 2;
        }
        if self.summary.runs.len() < self.summary.planned {
            return 3;
        }
        c.exit_code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        c: CampaignArgs,
    }

    fn args(extra: &[&str]) -> CampaignArgs {
        let mut v = vec!["t"];
        v.extend(extra);
        T::try_parse_from(v).unwrap().c
    }

    #[test]
    fn default_matrix_mixes_kinds_covers_every_kind_on_3_and_5_nodes_and_two_seeds() {
        let p = args(&["--seed", "10"]).plan().unwrap();
        let sets_here = default_sets_for(crate::target::TargetKind::Raft);
        assert_eq!(p.matrix_size, sets_here.len() * 2 * 2);
        let sets: std::collections::BTreeSet<&str> =
            p.runs.iter().map(|r| r.nemesis.as_str()).collect();
        assert!(sets.contains("all"));
        // Never one kind at a time.
        assert!(
            sets.iter().all(|s| *s == "all" || s.contains(',')),
            "{sets:?}"
        );
        for k in crate::nemesis::schedule::NemesisKind::ALL {
            if let Some(why) = crate::machine::Machine::unavailable(&[k]) {
                eprintln!("not checked here: {why}");
                continue;
            }
            assert!(
                sets.iter()
                    .any(|s| (*s == "all" && !k.changes_the_machine())
                        || s.split(',').any(|n| n == k.name())),
                "{k:?} is in no default set"
            );
        }
        assert!(p.runs.iter().any(|r| r.nodes == 5));
        assert!(p.runs.iter().all(|r| r.seed == 10 || r.seed == 11));
    }

    #[test]
    fn default_matrix_drops_sets_a_size_cannot_run() {
        // Removing one of two voters leaves no majority: the set with
        // membership is left out below three nodes; `all` leaves the kind
        // out by itself.
        let p = args(&["--seed", "1", "--nodes", "1,3", "--seeds", "1"])
            .plan()
            .unwrap();
        assert!(!p
            .runs
            .iter()
            .any(|r| r.nodes == 1 && r.nemesis.contains("membership")));
        assert!(p.runs.iter().any(|r| r.nodes == 1 && r.nemesis == "all"));
    }

    #[test]
    fn shards_partition_the_matrix_without_overlap() {
        let all = args(&["--seed", "1", "--seeds", "3"]).plan().unwrap();
        let mut seen = Vec::new();
        for k in 1..=4 {
            let p = args(&["--seed", "1", "--seeds", "3", "--shard", &format!("{k}/4")])
                .plan()
                .unwrap();
            assert_eq!(p.matrix_size, all.matrix_size);
            seen.extend(p.runs);
        }
        seen.sort_by_key(|r| r.index);
        assert_eq!(seen, all.runs);
    }

    #[test]
    fn nemesis_sets_join_kinds_with_plus() {
        assert_eq!(
            parse_nemesis_sets("partition,kill+pause,all").unwrap(),
            vec!["partition", "kill,pause", "all"]
        );
        assert!(parse_nemesis_sets("partition,flood")
            .unwrap_err()
            .contains("flood"));
    }

    #[test]
    fn bad_options_are_refused_before_anything_runs() {
        for (flags, needle) in [
            (vec!["--shard", "0/3"], "--shard"),
            (vec!["--shard", "4/3"], "--shard"),
            (vec!["--shard", "x"], "--shard"),
            (vec!["--nodes", "3,9"], "between 1 and"),
            (vec!["--nodes", "three"], "--nodes"),
            (vec!["--seeds", "0"], "--seeds"),
            (vec!["--time-limit", "0"], "--time-limit"),
            (
                vec!["--nemesis", "membership", "--nodes", "2"],
                "membership",
            ),
        ] {
            let err = args(&flags).plan().unwrap_err();
            assert!(err.contains(needle), "{flags:?}: {err}");
        }
    }

    #[test]
    fn the_child_log_gives_the_run_folder_and_the_no_verdict_reason() {
        let log = "raft-driver: run folder /r/c/20261130T000000-kill\n\
                   raft-driver: no verdict: the cluster never became available: no leader\nmore\n";
        assert_eq!(
            announced_run_dir(log),
            Some(PathBuf::from("/r/c/20261130T000000-kill"))
        );
        assert!(no_verdict_reason(log)
            .unwrap()
            .starts_with("the cluster never became available"));
    }
}
