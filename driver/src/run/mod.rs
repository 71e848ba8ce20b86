//! The `run` command, in phases: set up the target behind the driver's
//! proxies and write test.json; run the workload and the fault schedule;
//! finish (stop, heal, bring every node back, wait for the cluster to
//! serve, read every key, write the end-of-run record); then judge the run
//! folder from disk with the checker's composed checkers, exactly as
//! `raft-checker check RUN_DIR` would, and print the verdict.

pub mod convergence;
pub mod folder;
pub mod judge;
pub mod options;

use crate::nemesis::schedule::{Schedule, ScheduleSpec};
use crate::nemesis::{run_schedule, NemesisCtx};
use crate::progress::Progress;
use crate::target::{Deployment, TargetSpec};
use crate::workload::client::Client;
use crate::workload::generator::{Generator, RateLimiter};
use crate::workload::op::{KeyKind, Op, F};
use crate::workload::recorder::{Recorder, RecorderTask};
use crate::workload::worker::{final_reads, worker, Shared};
use anyhow::{anyhow, Context, Result};
pub use folder::utc_stamp;
use folder::{create_run_dir, init_driver_log, link_latest, log_tail};
use options::RunConfig;
use raft_checker::history::EventType;
use raft_checker::verdict::completeness::{END_OF_RUN, START_OF_RUN};
use raft_checker::verdict::RunResult;
use raft_checker::Validity;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

pub use crate::error::{NoVerdict, UsageError};

/// What a finished run hands back to `main`.
#[derive(Debug)]
pub struct RunOutcome {
    /// The verdict.
    pub validity: Validity,
    /// The run folder.
    pub dir: PathBuf,
}

/// What a run does differently from a fresh one (used by `replay`).
#[derive(Debug, Clone, Default)]
pub struct RunPlan {
    /// Play this fault schedule instead of generating one from the seed.
    pub schedule: Option<Schedule>,
    /// The run folder this run replays (recorded in test.json).
    pub replay_of: Option<PathBuf>,
    /// The node that led when the recorded run's workload started: a
    /// replay hands leadership to it first (see [`steer`]).
    pub initial_leader: Option<u64>,
}

/// A test hook: `RAFT_DRIVER_INJECT=error:MS` or `panic:MS` makes the run
/// fail that way MS milliseconds into the workload (hygiene tests).
fn injected_fault() -> Option<(String, Duration)> {
    let v = std::env::var("RAFT_DRIVER_INJECT").ok()?;
    let (kind, ms) = v.split_once(':')?;
    Some((kind.to_string(), Duration::from_millis(ms.parse().ok()?)))
}

/// Runs one test and prints its verdict; the caller maps the outcome to an
/// exit code.
pub async fn run(cfg: RunConfig) -> Result<RunOutcome> {
    let dir = prepare(&cfg)?;
    run_prepared(cfg, RunPlan::default(), dir).await
}

/// Checks that the target's binary exists and makes the run folder; what
/// fails here is the user's to fix (exit 2) and leaves nothing behind.
pub fn prepare(cfg: &RunConfig) -> Result<PathBuf> {
    cfg.target
        .target()
        .binary(&cfg.target_options())
        .map_err(UsageError)?;
    create_run_dir(&cfg.results, &cfg.nemesis_label)
}

/// Runs one test following `plan` in `dir` (from [`prepare`]). A run that
/// ends without a verdict leaves a results.json saying `"valid":
/// "unknown"` and why, so that summaries and the results index tell it from
/// a violation.
pub async fn run_prepared(cfg: RunConfig, plan: RunPlan, dir: PathBuf) -> Result<RunOutcome> {
    let results = cfg.results.clone();
    let outcome = run_in_dir(cfg, plan, dir.clone()).await;
    if let Err(e) = &outcome {
        write_no_verdict(&dir, &format!("{e:#}"));
        let _ = crate::report::index::write(&results);
    }
    outcome
}

/// Runs one test following `plan` (prepare and run).
pub async fn run_with(cfg: RunConfig, plan: RunPlan) -> Result<RunOutcome> {
    let dir = prepare(&cfg)?;
    run_prepared(cfg, plan, dir).await
}

/// Writes results.json (and a page) for a run that gave no verdict, never
/// overwriting a verdict already written.
pub fn write_no_verdict(dir: &Path, reason: &str) {
    if dir.join("results.json").exists() {
        return;
    }
    let result = raft_checker::verdict::no_verdict(reason);
    if let Err(e) = raft_checker::report::write_results_json(dir, &result) {
        eprintln!(
            "raft-driver: cannot write {}: {e}",
            dir.join("results.json").display()
        );
    }
    // The page still says which run this was (test.json is written first).
    let ctx = raft_checker::run_context::RunContext::load(dir);
    let page = raft_checker::report::run_page(&ctx, &[], &result);
    let _ = raft_checker::report::write_atomic(&dir.join("index.html"), page.as_bytes());
}

async fn run_in_dir(cfg: RunConfig, plan: RunPlan, dir: PathBuf) -> Result<RunOutcome> {
    init_driver_log(&dir)?;
    tracing::info!("run folder {}", dir.display());
    eprintln!("raft-driver: run folder {}", dir.display());
    // The disks and clocks of the machine come before any node starts, and
    // outlive every node (the mounts are dropped last, on any way out).
    let ids: Vec<u64> = (1..=cfg.nodes as u64).collect();
    let machine = Arc::new(
        crate::machine::Machine::prepare(&dir, &ids, &cfg.nemesis)
            .context("preparing the machine for the faults of the machine")?,
    );
    let mut spec = target_spec(&cfg);
    spec.node_env = machine.node_env();
    let deployment = cfg.target.target().setup(&spec, &dir).await?;
    // A replay aims its faults through one mapping of the recorded nodes.
    let roles = plan
        .replay_of
        .is_some()
        .then(|| crate::nemesis::roles::RoleMap::identity(&deployment.ids));
    let ctx = NemesisCtx::on_machine(&deployment, cfg.sever_on_partition, machine.clone(), roles);
    let schedule = plan.schedule.clone().unwrap_or_else(|| {
        Schedule::generate(&ScheduleSpec {
            seed: cfg.seed,
            kinds: &cfg.nemesis,
            shapes: &cfg.partition_shapes,
            nodes: &deployment.ids,
            interval: cfg.nemesis_interval,
            time_limit: cfg.time_limit,
            style: cfg.schedule,
            caps: cfg.target.target().capabilities(),
            small_batches: small_batches(&cfg).is_some(),
        })
    });
    write_test_json(&cfg, &plan, &deployment, &schedule, &dir)?;
    let leader = wait_for_leader(&ctx, cfg.recovery_timeout, &dir).await?;
    let mut opening = json!({ "leader": leader });
    let leader = match plan.initial_leader {
        Some(want) => {
            let (now, steered) = steer(&ctx, &cfg, want, leader).await;
            // Whatever the transfer did, the recorded leader's faults
            // start out aimed at the node that leads.
            ctx.align_roles(want, now);
            opening = json!({ "leader": now, "steered": steered });
            now
        }
        None => leader,
    };
    tracing::info!("leader {leader}; starting workload");

    let workload = run_workload(&cfg, &deployment, &ctx, schedule, &dir, opening).await?;
    let finish = finish_run(&cfg, &deployment, &ctx, workload).await?;
    deployment.shutdown();
    for e in machine.finish() {
        tracing::warn!("faultfs unmount: {e}");
    }
    if let Err(e) = deployment.api.collect_events(&dir, &deployment.ids) {
        tracing::warn!("node events not collected: {e:#}");
    }
    let judged = judge(&dir, &cfg).await?;
    let result = judged.result;
    if !cfg.keep_history_uncompressed {
        compress_history(&dir);
    }
    publish(&cfg.results, &dir);
    print_report(&result, &judged.text, &finish, &dir);
    log_peak_memory();
    Ok(RunOutcome {
        validity: result.valid,
        dir,
    })
}

/// How long a replay waits for the recorded leader to take over.
const STEER_WAIT: Duration = Duration::from_secs(3);

/// A replay's first step: hands leadership to `want`, the node that led
/// when the recorded run's workload started, so that the faults meet the
/// cluster as the recording did (a replayed cluster elects whom it likes).
/// The leader after it, and what was done, for the history's first entry.
async fn steer(ctx: &NemesisCtx, cfg: &RunConfig, want: u64, leader: u64) -> (u64, Value) {
    let said = |result: &str, now: u64| json!({"to": want, "from": leader, "result": result, "leader": now});
    if want == leader {
        return (leader, said("already leading", leader));
    }
    if !ctx.ids.contains(&want) {
        return (leader, said("no such node in this cluster", leader));
    }
    if !cfg.target.target().capabilities().leader_transfer {
        return (
            leader,
            said("the target cannot transfer leadership", leader),
        );
    }
    let asked = ctx
        .admin(crate::target::AdminReq::Transfer(want), STEER_WAIT)
        .await;
    let deadline = Instant::now() + STEER_WAIT;
    loop {
        let now = ctx.leader().await;
        if now == Some(want) {
            return (want, said("transferred", want));
        }
        if Instant::now() >= deadline {
            let now = now.unwrap_or(leader);
            return (now, said(&format!("not transferred ({asked})"), now));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What `run` starts: the target's processes behind the link proxies.
fn target_spec(cfg: &RunConfig) -> TargetSpec {
    TargetSpec {
        nodes: cfg.nodes,
        options: cfg.target_options(),
        proxied: true,
        seed: cfg.seed,
        node_env: Default::default(),
        max_append_entries: small_batches(cfg),
    }
}

/// The run's draw of [`crate::target::raft::small_batches`] (raft-node only).
fn small_batches(cfg: &RunConfig) -> Option<usize> {
    (cfg.target == crate::target::TargetKind::Raft)
        .then(|| {
            crate::target::raft::small_batches(cfg.seed, cfg.nodes, &cfg.nemesis, &cfg.node_args)
        })
        .flatten()
}

fn write_test_json(
    cfg: &RunConfig,
    plan: &RunPlan,
    d: &Deployment,
    schedule: &Schedule,
    dir: &Path,
) -> Result<()> {
    let test = json!({
        "options": cfg,
        "seed": cfg.seed,
        "target": cfg.target,
        "node_bin": d.bin,
        "node_version": d.version,
        "driver_version": format!("raft-driver {}", env!("CARGO_PKG_VERSION")),
        "checkers": cfg.target.target().checkers(),
        "nodes": d.nodes,
        "schedule": schedule,
        "started": utc_stamp(std::time::SystemTime::now()),
        "replay_of": plan.replay_of,
    });
    raft_checker::report::write_atomic(&dir.join("test.json"), &serde_json::to_vec_pretty(&test)?)
        .context("writing test.json")
}

/// Waits until some node claims leadership, failing early (with the node's
/// log) if every process has exited.
async fn wait_for_leader(
    ctx: &NemesisCtx,
    timeout: Duration,
    dir: &Path,
) -> std::result::Result<u64, NoVerdict> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(l) = ctx.leader().await {
            return Ok(l);
        }
        let exited: Option<(u64, String)> = {
            let mut c = ctx.cluster();
            c.reap_exited();
            c.exits().first().map(|e| (e.id, e.status.clone()))
        };
        if let Some((id, status)) = exited {
            let log = dir.join("nodes").join(format!("n{id}.log"));
            return Err(NoVerdict(format!(
                "the cluster never became available: node {id} exited ({status}); last lines of {}:\n{}",
                log.display(),
                log_tail(&log, 10)
            )));
        }
        if Instant::now() >= deadline {
            return Err(NoVerdict(format!(
                "the cluster never became available: no leader within {:?} (see {}/nodes/*.log)",
                timeout,
                dir.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The workload phase in progress: what the finish phase takes over.
struct Workload {
    recorder: Recorder,
    recorder_task: RecorderTask,
    shared: Arc<Shared>,
    stop_tx: watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<u64>>,
    nemesis_task: tokio::task::JoinHandle<()>,
    exits_task: tokio::task::JoinHandle<Vec<Value>>,
    progress: Progress,
    client_base: u64,
    throughput: String,
}

/// Starts the clients, the fault schedule and the progress line, and lets
/// them run for the time limit (or until the history cannot be written).
async fn run_workload(
    cfg: &RunConfig,
    d: &Deployment,
    ctx: &Arc<NemesisCtx>,
    schedule: Schedule,
    dir: &Path,
    opening: Value,
) -> Result<Workload> {
    let start = Instant::now();
    let (recorder, recorder_task) = Recorder::create(&dir.join("history.jsonl"), start)?;
    let mut first = json!({"driver": format!("raft-driver {}", env!("CARGO_PKG_VERSION")), "seed": cfg.seed, "target": cfg.target});
    if let (Some(f), Some(o)) = (first.as_object_mut(), opening.as_object()) {
        f.extend(o.clone());
    }
    recorder.driver(START_OF_RUN, first);
    let shared = Arc::new(Shared {
        gen: Mutex::new(Generator::new(cfg.seed, cfg.workload.clone())),
        limiter: RateLimiter::new(cfg.rate),
        recorder: recorder.clone(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let client_base = cfg.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1 << 63;
    let stride = cfg.concurrency as u64;
    let workers = (0..cfg.concurrency)
        .map(|w| {
            let home = d.ids[w % d.ids.len()];
            let client = d.client(home, client_base + w as u64, cfg.op_timeout);
            tokio::spawn(worker(
                w as u64,
                stride,
                client,
                shared.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    let current_fault = Arc::new(Mutex::new(String::from("none")));
    let nemesis_task = tokio::spawn(run_schedule(
        schedule,
        cfg.nemesis.clone(),
        ctx.clone(),
        recorder.clone(),
        start,
        stop_rx.clone(),
        current_fault.clone(),
    ));
    let exits_task = tokio::spawn(watch_exits(ctx.clone(), recorder.clone(), start, stop_rx));
    let progress = Progress::start(cfg.time_limit, start, recorder.counts(), current_fault);
    if let Some((kind, after)) = injected_fault() {
        tokio::time::sleep_until((start + after).min(start + cfg.time_limit)).await;
        if kind == "panic" {
            panic!("injected panic (RAFT_DRIVER_INJECT)");
        }
        return Err(anyhow!("injected error (RAFT_DRIVER_INJECT)"));
    }
    let cpu_before = cpu_time();
    let mut failure = recorder.failure();
    tokio::select! {
        _ = tokio::time::sleep_until(start + cfg.time_limit) => {}
        _ = failure.wait_for(Option::is_some) => {
            tracing::error!("the history cannot be written; ending the run");
        }
    }
    let throughput = throughput_line(
        &recorder,
        start.elapsed(),
        cpu_time().saturating_sub(cpu_before),
    );
    tracing::info!("{throughput}");
    Ok(Workload {
        recorder,
        recorder_task,
        shared,
        stop_tx,
        workers,
        nemesis_task,
        exits_task,
        progress,
        client_base,
        throughput,
    })
}

fn throughput_line(recorder: &Recorder, elapsed: Duration, cpu_used: Duration) -> String {
    let (ok, fail, info) = recorder.counts().snapshot();
    let secs = elapsed.as_secs_f64().max(1e-3);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    format!(
        "workload: {:.0} ops/s completed over {:.0} s; driver CPU {:.0}% of one core, {:.0}% of the machine ({} cores)",
        (ok + fail + info) as f64 / secs,
        secs,
        100.0 * cpu_used.as_secs_f64() / secs,
        100.0 * cpu_used.as_secs_f64() / secs / cores,
        cores
    )
}

/// Records every node exit the driver did not cause, as it is noticed
/// (a `node-exit` driver record), until `stop`; returns the unintended
/// ones (not a failpoint's crash) for the end-of-run record.
async fn watch_exits(
    ctx: Arc<NemesisCtx>,
    recorder: Recorder,
    start: Instant,
    mut stop: watch::Receiver<bool>,
) -> Vec<Value> {
    let mut seen = 0;
    let mut unintended = Vec::new();
    loop {
        let stopping = *stop.borrow();
        let new: Vec<_> = {
            let mut c = ctx.cluster();
            c.reap_exited();
            c.exits()[seen..].to_vec()
        };
        seen += new.len();
        for e in new {
            let intended = ctx.api.is_intended_exit(e.code);
            let at_ms = e.at.saturating_duration_since(start.into_std()).as_millis() as u64;
            let v = json!({"node": e.id, "status": e.status, "at_ms": at_ms, "intended": intended});
            if !intended {
                tracing::warn!("node {} exited on its own: {}", e.id, e.status);
                unintended.push(v.clone());
            }
            recorder.driver("node-exit", v);
        }
        if stopping {
            return unintended;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
}

/// How the finish phase went, for the report.
struct Finish {
    recovered: bool,
    throughput: String,
    note: Option<String>,
}

/// Stops the clients and the nemesis (which heals what it broke), restarts
/// any node that is down, waits for the cluster to serve, reads every key
/// once, and writes the end-of-run record. When the history could not be
/// written, it only stops and heals: the history then ends without its
/// end-of-run record, and the verdict is unknown.
async fn finish_run(
    cfg: &RunConfig,
    d: &Deployment,
    ctx: &NemesisCtx,
    w: Workload,
) -> Result<Finish> {
    let _ = w.stop_tx.send(true);
    let stride = cfg.concurrency as u64;
    let mut next_process = 0;
    for h in w.workers {
        next_process = next_process.max(h.await.context("worker task")? + stride);
    }
    w.nemesis_task.await.context("nemesis task")?;
    let unexpected_exits = w.exits_task.await.context("exit watcher")?;
    let failure = w.recorder.failure().borrow().clone();
    if let Some(why) = failure {
        w.recorder.close();
        let _ = w.recorder_task.finish().await;
        w.progress.finish();
        return Ok(Finish {
            recovered: false,
            throughput: w.throughput,
            note: Some(format!("the run ended early: {why}")),
        });
    }
    w.progress.set_phase("recovering");
    let restarted = restart_down_nodes(ctx);
    let mut probe = d.client(d.ids[0], w.client_base - 1, cfg.op_timeout);
    let recovery = wait_recovered(ctx, &mut *probe, cfg.recovery_timeout).await;
    tracing::info!("recovered: {:?}", recovery);
    w.progress.set_phase("final reads");
    let keys: Vec<(String, KeyKind)> = w
        .shared
        .gen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .keys()
        .to_vec();
    let clients: Vec<Box<dyn Client>> = (0..cfg.concurrency)
        .map(|i| {
            d.client(
                d.ids[i % d.ids.len()],
                w.client_base + stride + i as u64,
                cfg.op_timeout,
            )
        })
        .collect();
    let reads = final_reads(keys, clients, &w.recorder, next_process, stride).await?;
    w.progress.set_phase("convergence");
    // A cluster that did not serve again is not waited for twice: one look.
    let patience = if recovery.is_ok() {
        cfg.recovery_timeout
    } else {
        Duration::ZERO
    };
    let convergence = convergence::wait(&*d.api, &d.ids, patience).await;
    tracing::info!("convergence: {}", convergence["unsettled"]);
    let nodes_down: Vec<u64> = {
        let mut c = ctx.cluster();
        c.reap_exited();
        d.ids
            .iter()
            .copied()
            .filter(|&id| c.state(id) == Some(crate::target::cluster::NodeState::Down))
            .collect()
    };
    w.recorder.driver(
        END_OF_RUN,
        json!({
            "recovered": recovery.is_ok(),
            "recovery_error": recovery.as_ref().err(),
            "nodes_down": nodes_down,
            "restarted_at_end": restarted,
            "unexpected_exits": unexpected_exits,
            "final_reads": reads,
            "convergence": convergence,
        }),
    );
    w.recorder.close();
    let written = w.recorder_task.finish().await;
    w.progress.finish();
    let note = match written {
        Ok(n) => {
            tracing::info!("history complete: {n} events");
            recovery
                .as_ref()
                .err()
                .map(|e| format!("the cluster did not serve after healing: {e}"))
        }
        Err(e) => Some(format!("the history is incomplete: {e:#}")),
    };
    Ok(Finish {
        recovered: recovery.is_ok(),
        throughput: w.throughput,
        note,
    })
}

/// Starts every node that is down (killed or exited) so that the final
/// phase sees the whole cluster; returns the nodes it started, and why
/// each that could not be started failed.
fn restart_down_nodes(ctx: &NemesisCtx) -> Vec<Value> {
    let mut c = ctx.cluster();
    c.reap_exited();
    let down: Vec<u64> = ctx
        .ids
        .iter()
        .copied()
        .filter(|&id| c.state(id) == Some(crate::target::cluster::NodeState::Down))
        .collect();
    down.into_iter()
        .map(|id| match c.start(id) {
            Ok(()) => json!({"node": id, "started": true}),
            Err(e) => json!({"node": id, "started": false, "error": format!("{e:#}")}),
        })
        .collect()
}

/// Waits until a leader serves a read, up to `timeout`; Err says what was
/// last seen.
async fn wait_recovered(
    ctx: &NemesisCtx,
    client: &mut dyn Client,
    timeout: Duration,
) -> std::result::Result<(), String> {
    let deadline = Instant::now() + timeout;
    let probe = Op {
        f: F::Read,
        key: "recovery-probe".into(),
        kind: KeyKind::Register,
        value: Value::Null,
    };
    let mut last = String::from("no leader");
    while Instant::now() < deadline {
        if ctx.leader().await.is_some() {
            let c = client.invoke(&probe).await;
            if c.kind == EventType::Ok {
                return Ok(());
            }
            last = c.error.unwrap_or_else(|| "the probe read failed".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("no read served within {timeout:?} ({last})"))
}

/// Judges the run folder from disk with the composed checkers and writes
/// the verdict, the plots and the page once, in a child `raft-checker
/// check` (see [`judge`]): the history is never loaded into the driver.
async fn judge(dir: &Path, cfg: &RunConfig) -> Result<judge::Judged> {
    let time_limit = cfg.check_time_limit;
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let dir = dir.to_path_buf();
    eprintln!(
        "raft-driver: checking {}",
        dir.join("history.jsonl").display()
    );
    tokio::task::spawn_blocking(move || judge::judge_blocking(&dir, time_limit, progress))
        .await
        .context("checker task")?
}

/// Replaces the checked history by history.jsonl.zst (atomically: see
/// `raft_checker::compressed`). A failure only costs disk space, so it is
/// logged and the run's verdict stands.
fn compress_history(dir: &Path) {
    let plain = dir.join("history.jsonl");
    match raft_checker::compressed::compress_file(&plain) {
        Ok(c) => tracing::info!(
            "history compressed: {} -> {} bytes ({})",
            c.before,
            c.after,
            raft_checker::compressed::compressed_name(&plain).display()
        ),
        Err(e) => {
            tracing::warn!("{} not compressed: {e}", plain.display());
            eprintln!("raft-driver: {} not compressed: {e}", plain.display());
        }
    }
}

/// Points `results/latest` at the run and rewrites the results index.
fn publish(results: &Path, dir: &Path) {
    if let Err(e) = link_latest(results, dir) {
        tracing::warn!("results/latest not updated: {e:#}");
        eprintln!("raft-driver: results/latest not updated: {e:#}");
    }
    if let Err(e) = crate::report::index::write(results) {
        tracing::warn!("results/index.html not updated: {e:#}");
    }
}

fn print_report(result: &RunResult, text: &str, finish: &Finish, dir: &Path) {
    if !finish.throughput.is_empty() {
        println!("{}", finish.throughput);
    }
    print!("{text}");
    if let Some(note) = &finish.note {
        println!("note: {note}");
    }
    if !finish.recovered {
        tracing::warn!("the cluster did not recover");
    }
    if let Some(l) = &result.linearizability {
        let c = |k: &str| -> usize {
            l.counts
                .values()
                .map(|m| m.get(k).copied().unwrap_or(0))
                .sum()
        };
        println!(
            "ops: {} operations, {} ok, {} fail, {} info",
            l.op_count,
            c("ok"),
            c("fail"),
            c("info") + c("pending"),
        );
    }
    println!(
        "verdict: {} (exit {})",
        result.valid.as_str().to_uppercase(),
        result.exit_code()
    );
    println!("results: {}", dir.display());
}

/// Writes the driver's own peak resident memory to driver.log (the judge's
/// is the child raft-checker's): flat in the run's length.
fn log_peak_memory() {
    if let Some(b) = raft_checker::memory::peak_resident_bytes() {
        tracing::info!("driver peak RSS {} MiB", b >> 20);
    }
}

/// CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we pass; RUSAGE_SELF is always valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Runs one test on a fresh runtime, under ctrl-c / SIGTERM handling: on a
/// signal every node is killed and the run folder gets a results.json
/// saying the run was interrupted (unknown). Returns the process exit code
/// (0 valid, 1 invalid, 2 bad usage, 3 unknown) and the outcome, if any.
pub fn run_blocking(cfg: RunConfig, plan: RunPlan) -> (u8, Option<RunOutcome>) {
    let dir = match prepare(&cfg) {
        Ok(d) => d,
        Err(e) => return (error_exit(&e), None),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raft-driver: cannot start the runtime: {e}");
            return (raft_checker::EXIT_UNKNOWN as u8, None);
        }
    };
    let run_dir = dir.clone();
    let result = rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let run = tokio::spawn(run_prepared(cfg, plan, run_dir));
        tokio::select! {
            r = run => match r {
                Ok(r) => r.map(Some),
                // A panic in the run: the hook already killed the nodes.
                Err(e) => Err(anyhow!("the run task failed: {e}")),
            },
            _ = term.recv() => Ok(None),
            _ = int.recv() => Ok(None),
        }
    });
    // Kill the nodes before the runtime winds down its tasks, and do not
    // wait long for tasks stuck in blocking code (e.g. a long check).
    crate::target::cluster::kill_all_registered();
    rt.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(Some(outcome)) => (outcome.validity.exit_code() as u8, Some(outcome)),
        Ok(None) => {
            write_no_verdict(
                &dir,
                "interrupted (SIGINT or SIGTERM); every node was killed",
            );
            eprintln!("raft-driver: interrupted; every node was killed; no verdict");
            (raft_checker::EXIT_UNKNOWN as u8, None)
        }
        Err(e) => {
            write_no_verdict(&dir, &format!("{e:#}"));
            (error_exit(&e), None)
        }
    }
}

/// The exit code of a run that ended in an error, said on stderr: 2 for
/// what the user asked wrong, 3 for a run without a verdict.
pub fn error_exit(e: &anyhow::Error) -> u8 {
    if let Some(u) = e.downcast_ref::<UsageError>() {
        eprintln!("raft-driver: {u}");
        return raft_checker::EXIT_BAD_INPUT as u8;
    }
    eprintln!("raft-driver: no verdict: {e:#}");
    raft_checker::EXIT_UNKNOWN as u8
}
