//! The `run` command: start the cluster behind proxies, run the workload
//! and the fault schedule, heal, read every key, check, report.

use crate::client::Client;
use crate::generator::{Generator, RateLimiter};
use crate::nemesis::{run_schedule, Composite, NemesisCtx};
use crate::op::{Op, F};
use crate::options::RunConfig;
use crate::progress::Progress;
use crate::recorder::Recorder;
use crate::schedule::{Schedule, ScheduleSpec};
use crate::target::{Deployment, TargetKind, TargetSpec};
use crate::verdict::{self, Validity};
use anyhow::{anyhow, bail, Context, Result};
use raft_checker::history::{EventType, Process};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// A problem with what the user asked for (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The run could not produce a verdict (exit code 3), e.g. the cluster
/// never became available.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoVerdict(pub String);

/// What a finished run hands back to `main`.
#[derive(Debug)]
pub struct RunOutcome {
    /// The verdict.
    pub validity: Validity,
    /// The run folder.
    pub dir: PathBuf,
}

/// Locates raft-node: `--node-bin`, else next to this executable.
pub fn find_node_bin(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let exe = std::env::current_exe().context("locating raft-driver")?;
    let beside = exe
        .parent()
        .map(|d| d.join("raft-node"))
        .ok_or_else(|| anyhow!("raft-driver has no parent folder"))?;
    if beside.is_file() {
        return Ok(beside);
    }
    Err(UsageError(format!(
        "raft-node not found at {} (build it with `cargo build --release --workspace`, or pass --node-bin PATH)",
        beside.display()
    ))
    .into())
}

/// Runs `bin --version` (at most 10 s) and returns its first line.
pub fn node_version(bin: &Path) -> Result<String> {
    let mut child = std::process::Command::new(bin)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| UsageError(format!("cannot run {}: {e}", bin.display())))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(UsageError(format!("{} --version did not finish", bin.display())).into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(UsageError(format!(
            "{} --version failed ({}): {}",
            bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string())
}

/// `YYYYMMDDTHHMMSS` in UTC for the run folder's name.
pub fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (H. Hinnant), valid for the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn create_run_dir(results: &Path, label: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(results)
        .map_err(|e| UsageError(format!("cannot create {}: {e}", results.display())))?;
    let base = format!("{}-{label}", utc_stamp(std::time::SystemTime::now()));
    for n in 1..1000 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = results.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::create_dir_all(dir.join("nodes"))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    bail!("too many runs named {base} in {}", results.display())
}

/// Points `results/latest` at `dir` (relative, so the folder can move).
fn link_latest(results: &Path, dir: &Path) -> Result<()> {
    let link = results.join("latest");
    if let Ok(meta) = std::fs::symlink_metadata(&link) {
        if !meta.file_type().is_symlink() {
            bail!("{} exists and is not a symlink", link.display());
        }
        std::fs::remove_file(&link)?;
    }
    let name = dir.file_name().context("run folder name")?;
    std::os::unix::fs::symlink(name, &link)?;
    Ok(())
}

fn init_driver_log(dir: &Path) -> Result<()> {
    let file = std::fs::File::create(dir.join("driver.log"))?;
    let sub = tracing_subscriber::fmt()
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_target(false)
        .finish();
    // Only the first run of a process gets the log (there is one per process).
    let _ = tracing::subscriber::set_global_default(sub);
    Ok(())
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A test hook: `RAFT_DRIVER_INJECT=error:MS` or `panic:MS` makes the run
/// fail that way MS milliseconds into the workload (hygiene tests).
fn injected_fault() -> Option<(String, Duration)> {
    let v = std::env::var("RAFT_DRIVER_INJECT").ok()?;
    let (kind, ms) = v.split_once(':')?;
    Some((kind.to_string(), Duration::from_millis(ms.parse().ok()?)))
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
        let exited: Vec<(u64, String)> = {
            let mut c = ctx.cluster.lock().unwrap_or_else(|e| e.into_inner());
            c.ids()
                .into_iter()
                .filter_map(|id| c.check_exited(id).map(|s| (id, s)))
                .collect()
        };
        if let Some((id, status)) = exited.first() {
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

struct Shared {
    gen: Mutex<Generator>,
    limiter: RateLimiter,
    recorder: Recorder,
}

async fn invoke_recorded(client: &mut dyn Client, rec: &Recorder, process: u64, op: &Op) -> bool {
    let p = Process::Client(process);
    rec.record(
        p.clone(),
        EventType::Invoke,
        op.f.name(),
        Some(&op.key),
        op.value.clone(),
        None,
    );
    let c = client.invoke(op).await;
    let info = c.kind == EventType::Info;
    rec.record(p, c.kind, op.f.name(), Some(&op.key), c.value, c.error);
    info
}

/// One client worker: issues operations until `stop`; after an info it
/// continues as a new process (`process + concurrency`), as in Jepsen.
async fn worker(
    first_process: u64,
    stride: u64,
    mut client: Box<dyn Client>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> u64 {
    let mut process = first_process;
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            _ = shared.limiter.acquire() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let op = shared
            .gen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_op();
        if invoke_recorded(&mut *client, &shared.recorder, process, &op).await {
            process += stride;
        }
    }
    client.close();
    process
}

/// Waits until a leader serves a read, up to `timeout`.
async fn wait_recovered(ctx: &NemesisCtx, client: &mut dyn Client, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let probe = Op {
        f: F::Read,
        key: "recovery-probe".into(),
        kind: crate::op::KeyKind::Register,
        value: Value::Null,
    };
    while Instant::now() < deadline {
        if ctx.leader().await.is_some() && client.invoke(&probe).await.kind == EventType::Ok {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Runs one test and prints its verdict; the caller maps the outcome to an
/// exit code.
pub async fn run(cfg: RunConfig) -> Result<RunOutcome> {
    run_with(cfg, RunPlan::default()).await
}

/// What a run does differently from a fresh one (used by `replay`).
#[derive(Debug, Clone, Default)]
pub struct RunPlan {
    /// Play this fault schedule instead of generating one from the seed.
    pub schedule: Option<Schedule>,
    /// The run folder this run replays (recorded in test.json).
    pub replay_of: Option<PathBuf>,
}

/// Runs one test following `plan`. A run that ends without a verdict after
/// its folder exists leaves a results.json saying `"valid": "unknown"` and
/// why, so that summaries and the results index tell it from a violation.
pub async fn run_with(cfg: RunConfig, plan: RunPlan) -> Result<RunOutcome> {
    if cfg.target == TargetKind::Raft {
        // Fail on a missing raft-node before a run folder is made.
        find_node_bin(cfg.node_bin.as_deref())?;
    } else {
        crate::etcd::find_etcd().map_err(UsageError)?;
    }
    let dir = create_run_dir(&cfg.results, &cfg.nemesis_label)?;
    let outcome = run_in_dir(cfg, plan, dir.clone()).await;
    if let Err(e) = &outcome {
        write_unknown_results(&dir, e);
    }
    outcome
}

/// Writes results.json for a run that gave no verdict (never overwriting a
/// checker's results.json).
fn write_unknown_results(dir: &Path, e: &anyhow::Error) {
    let path = dir.join("results.json");
    if path.exists() {
        return;
    }
    let body = json!({"valid": "unknown", "reason": format!("{e:#}"), "summary": format!("no verdict: {e:#}")});
    if let Ok(bytes) = serde_json::to_vec_pretty(&body) {
        let _ = std::fs::write(path, bytes);
    }
}

async fn run_in_dir(cfg: RunConfig, plan: RunPlan, dir: PathBuf) -> Result<RunOutcome> {
    init_driver_log(&dir)?;
    tracing::info!("run folder {}", dir.display());
    eprintln!("raft-driver: run folder {}", dir.display());

    let deployment = Deployment::start(&target_spec(&cfg), &dir).await?;
    let ids = deployment.ids.clone();
    let (cluster, ctx) = (deployment.cluster.clone(), deployment.ctx.clone());

    let schedule = plan.schedule.clone().unwrap_or_else(|| {
        Schedule::generate(&ScheduleSpec {
            seed: cfg.seed,
            kinds: &cfg.nemesis,
            shapes: &cfg.partition_shapes,
            nodes: &ids,
            interval: cfg.nemesis_interval,
            time_limit: cfg.time_limit,
        })
    });
    let test = json!({
        "options": cfg,
        "seed": cfg.seed,
        "target": cfg.target,
        "node_bin": deployment.bin,
        "node_version": deployment.version,
        "driver_version": format!("raft-driver {}", env!("CARGO_PKG_VERSION")),
        "nodes": deployment.nodes,
        "schedule": schedule,
        "started": utc_stamp(std::time::SystemTime::now()),
        "replay_of": plan.replay_of,
    });
    std::fs::write(dir.join("test.json"), serde_json::to_vec_pretty(&test)?)?;
    let leader = wait_for_leader(&ctx, cfg.recovery_timeout, &dir).await?;
    tracing::info!("leader {leader}; starting workload");

    let start = Instant::now();
    let (recorder, recorder_task) = Recorder::create(&dir.join("history.jsonl"), start)?;
    let shared = Arc::new(Shared {
        gen: Mutex::new(Generator::new(cfg.seed, cfg.workload.clone())),
        limiter: RateLimiter::new(cfg.rate),
        recorder: recorder.clone(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let client_base = cfg.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1 << 63;
    let stride = cfg.concurrency as u64;
    let mut workers = Vec::new();
    for w in 0..cfg.concurrency {
        let home = ids[w % ids.len()];
        let client = deployment.client(home, client_base + w as u64, cfg.op_timeout);
        workers.push(tokio::spawn(worker(
            w as u64,
            stride,
            client,
            shared.clone(),
            stop_rx.clone(),
        )));
    }
    let current_fault = Arc::new(Mutex::new(String::from("none")));
    let nemesis_task = tokio::spawn(run_schedule(
        schedule,
        Box::new(Composite::new(&cfg.nemesis)),
        ctx.clone(),
        recorder.clone(),
        start,
        stop_rx.clone(),
        current_fault.clone(),
    ));
    let progress = Progress::start(
        cfg.time_limit,
        start,
        recorder.counts(),
        current_fault.clone(),
    );

    let injected = injected_fault();
    let limit = start + cfg.time_limit;
    if let Some((kind, after)) = &injected {
        tokio::time::sleep_until((start + *after).min(limit)).await;
        if kind == "panic" {
            panic!("injected panic (RAFT_DRIVER_INJECT)");
        }
        return Err(anyhow!("injected error (RAFT_DRIVER_INJECT)"));
    }
    let cpu_before = cpu_time();
    tokio::time::sleep_until(limit).await;
    let cpu_used = cpu_time().saturating_sub(cpu_before);
    let (ok, fail, info) = recorder.counts().snapshot();
    let secs = cfg.time_limit.as_secs_f64();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    let throughput = format!(
        "workload: {:.0} ops/s completed over {:.0} s; driver CPU {:.0}% of one core, {:.0}% of the machine ({} cores)",
        (ok + fail + info) as f64 / secs,
        secs,
        100.0 * cpu_used.as_secs_f64() / secs,
        100.0 * cpu_used.as_secs_f64() / secs / cores,
        cores
    );
    tracing::info!("{throughput}");

    // Final phase: stop issuing, heal everything, let the cluster recover,
    // then read every key once.
    let _ = stop_tx.send(true);
    let mut next_process = 0;
    for w in workers {
        next_process = next_process.max(w.await.context("worker task")? + stride);
    }
    nemesis_task.await.context("nemesis task")?;
    progress.set_phase("recovering");
    let mut probe = deployment.client(ids[0], client_base - 1, cfg.op_timeout);
    let recovered = wait_recovered(&ctx, &mut *probe, cfg.recovery_timeout).await;
    tracing::info!("recovered: {recovered}");
    progress.set_phase("final reads");
    let keys: Vec<_> = shared
        .gen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .keys()
        .to_vec();
    let keys = Arc::new(Mutex::new(keys.into_iter()));
    let mut readers = Vec::new();
    for w in 0..cfg.concurrency {
        let keys = keys.clone();
        let rec = recorder.clone();
        let mut client = deployment.client(
            ids[w % ids.len()],
            client_base + stride + w as u64,
            cfg.op_timeout,
        );
        let mut process = next_process + w as u64;
        readers.push(tokio::spawn(async move {
            loop {
                let next = keys.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some((key, kind)) = next else { break };
                let op = Op {
                    f: F::Read,
                    key,
                    kind,
                    value: Value::Null,
                };
                if invoke_recorded(&mut *client, &rec, process, &op).await {
                    process += stride;
                }
            }
        }));
    }
    for r in readers {
        r.await.context("final read task")?;
    }
    recorder.close();
    let events = recorder_task.finish().await?;
    progress.finish();
    cluster.lock().unwrap_or_else(|e| e.into_inner()).shutdown();

    progress_note(&events);
    eprintln!("raft-driver: checking {} events", events.len());
    let events = Arc::new(events);
    let mut verdict = {
        let (events, dir, limit) = (events.clone(), dir.clone(), cfg.check_time_limit);
        // The search is CPU-bound and spawns its own threads.
        tokio::task::spawn_blocking(move || verdict::judge(&events, &dir, limit))
            .await
            .context("checker task")?
    };
    if cfg.target == TargetKind::Raft {
        crate::election_safety::apply(&dir, &mut verdict);
    }
    if let Err(e) = link_latest(&cfg.results, &dir) {
        tracing::warn!("results/latest not updated: {e:#}");
        eprintln!("raft-driver: results/latest not updated: {e:#}");
    }
    if let Err(e) = crate::results_index::write(&cfg.results) {
        tracing::warn!("results/index.html not updated: {e:#}");
    }
    let count = |k: EventType| {
        events
            .iter()
            .filter(|e| e.process.is_client() && e.kind == k)
            .count()
    };
    let nemesis_events = events.iter().filter(|e| !e.process.is_client()).count();
    println!("{throughput}");
    for line in &verdict.explanation {
        println!("{line}");
    }
    if !recovered {
        println!(
            "note: the cluster did not serve a read within {:?} after healing",
            cfg.recovery_timeout
        );
    }
    println!(
        "verdict: {} (exit {})",
        verdict.validity.word(),
        verdict.validity.exit_code()
    );
    println!(
        "ops: {} invoked, {} ok, {} fail, {} info; {} nemesis events",
        count(EventType::Invoke),
        count(EventType::Ok),
        count(EventType::Fail),
        count(EventType::Info),
        nemesis_events
    );
    println!("results: {}", dir.display());
    Ok(RunOutcome {
        validity: verdict.validity,
        dir,
    })
}

/// What `run` starts: the target's processes behind the link proxies.
fn target_spec(cfg: &RunConfig) -> TargetSpec {
    let raft = cfg.target == TargetKind::Raft;
    TargetSpec {
        kind: cfg.target,
        nodes: cfg.nodes,
        node_bin: cfg.node_bin.clone(),
        // raft-node gets exactly the flags it always got.
        extra_args: if raft {
            cfg.node_extra_args()
        } else {
            cfg.node_args.clone()
        },
        election_timeout_ms: if raft { None } else { cfg.election_timeout_ms },
        heartbeat_ms: if raft { None } else { cfg.heartbeat_ms },
        read_consistency: cfg.read_consistency,
        proxied: true,
        sever_on_partition: cfg.sever_on_partition,
        seed: cfg.seed,
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

fn progress_note(events: &[raft_checker::history::Event]) {
    tracing::info!("history complete: {} events", events.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamp_formats_known_instants() {
        let t = |s: u64| std::time::UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(utc_stamp(t(0)), "19700101T000000");
        // 2026-11-30 06:45:12 UTC.
        assert_eq!(utc_stamp(t(1_796_021_112)), "20261130T064512");
        // 2000-02-29 23:59:59 UTC (leap day).
        assert_eq!(utc_stamp(t(951_868_799)), "20000229T235959");
    }

    #[test]
    fn latest_link_moves_to_the_newest_run() {
        let dir = tempfile::tempdir().unwrap();
        let a = create_run_dir(dir.path(), "x").unwrap();
        link_latest(dir.path(), &a).unwrap();
        let b = create_run_dir(dir.path(), "x").unwrap();
        assert_ne!(a, b);
        link_latest(dir.path(), &b).unwrap();
        let target = std::fs::read_link(dir.path().join("latest")).unwrap();
        assert_eq!(target, b.file_name().unwrap());
        assert!(b.join("nodes").is_dir());
    }
}
