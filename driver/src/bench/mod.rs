//! The `bench` command: throughput and latency with no faults, raft-node and
//! etcd side by side in one run (both clusters up at once, phases
//! alternating between them, so that machine noise hits both alike), plus
//! the physical floor of a write and the leader failover time. Writes are
//! acknowledged after commit; reads are linearizable unless asked otherwise.
//! Everything lands in bench.json (for scripts) and bench-latency.png.

pub mod cpu;
pub mod failover;
pub mod floor;
pub mod plot;
pub mod stats;

use crate::error::UsageError;
use crate::run::utc_stamp;
use crate::target::cluster;
use crate::target::{Deployment, ReadConsistency, TargetKind, TargetOptions, TargetSpec};
use crate::workload::op::{KeyKind, Op, F};
use anyhow::{bail, Context, Result};
use clap::Args;
use raft_checker::history::EventType;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use stats::{Samples, Summary};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use tokio::time::Instant;

/// Command-line options of `raft-driver bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Systems to measure: raft, etcd, or both as `raft,etcd` (side by side).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "raft")]
    pub target: Vec<TargetKind>,
    /// Nodes per cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Client workers; a comma list runs one phase per value.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    pub concurrency: Vec<usize>,
    /// Measured seconds of each phase.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Unmeasured seconds at the start of each phase.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Bytes of each written value.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    /// Share of reads in [0, 1]; a comma list runs one phase per value
    /// (default: a write-only phase, then a read-only phase).
    #[arg(long, value_delimiter = ',', default_value = "0,1")]
    pub read_ratio: Vec<f64>,
    /// Keys the load is spread over (all written once before the phases).
    #[arg(long, default_value_t = 1000)]
    pub keys: usize,
    /// etcd's read mode (raft-node's reads are always linearizable).
    #[arg(long, value_enum, default_value_t)]
    pub read_consistency: ReadConsistency,
    /// Election timeout of both systems, in ms.
    #[arg(long, default_value_t = 1000)]
    pub election_timeout_ms: u64,
    /// Heartbeat interval of both systems, in ms.
    #[arg(long, default_value_t = 100)]
    pub heartbeat_ms: u64,
    /// Leader failovers to measure per target after the load phases.
    #[arg(long, default_value_t = 0)]
    pub failover: usize,
    /// Measure only the physical floor (4 KiB fdatasync, loopback round
    /// trip) and start no cluster.
    #[arg(long)]
    pub floor: bool,
    /// Per-operation timeout in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub op_timeout_ms: u64,
    /// The raft-node binary (default: next to raft-driver).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Extra argument for every raft-node (repeatable).
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// Extra argument for every etcd member (repeatable).
    #[arg(long = "etcd-arg", allow_hyphen_values = true)]
    pub etcd_args: Vec<String>,
    /// Folder receiving one sub-folder per run.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Seed of keys and values (random if absent).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// A validated bench configuration (bench.json's "settings").
#[derive(Debug, Clone, Serialize)]
pub struct BenchConfig {
    /// Systems, in the order their phases alternate.
    pub targets: Vec<TargetKind>,
    /// Nodes per cluster.
    pub nodes: usize,
    /// Phases' worker counts.
    pub concurrency: Vec<usize>,
    /// Phases' read shares.
    pub read_ratio: Vec<f64>,
    /// Measured seconds per phase.
    pub duration_s: f64,
    /// Warm-up seconds per phase.
    pub warmup_s: f64,
    /// Value bytes.
    pub value_size: usize,
    /// Key space.
    pub keys: usize,
    /// etcd read mode.
    pub read_consistency: ReadConsistency,
    /// Election timeout (ms).
    pub election_timeout_ms: u64,
    /// Heartbeat (ms).
    pub heartbeat_ms: u64,
    /// Failovers per target.
    pub failover: usize,
    /// Floor only.
    pub floor_only: bool,
    /// Operation timeout (ms).
    pub op_timeout_ms: u64,
    /// raft-node binary.
    pub node_bin: Option<PathBuf>,
    /// Extra arguments by target name (`raft`: `--node-arg`, `etcd`:
    /// `--etcd-arg`).
    pub extra_args: std::collections::BTreeMap<String, Vec<String>>,
    /// Results folder.
    pub results: PathBuf,
    /// Seed.
    pub seed: u64,
}

impl BenchArgs {
    /// Checks every option; the error is a message for the user (exit 2).
    pub fn validate(&self) -> Result<BenchConfig, String> {
        if self.nodes == 0 || self.nodes > crate::run::options::MAX_NODES {
            return Err(format!(
                "--nodes must be between 1 and {}, got {}",
                crate::run::options::MAX_NODES,
                self.nodes
            ));
        }
        let mut targets = Vec::new();
        for t in &self.target {
            if !targets.contains(t) {
                targets.push(*t);
            }
        }
        if self.concurrency.is_empty() || self.concurrency.iter().any(|&c| c == 0 || c > 10_000) {
            return Err(format!(
                "--concurrency must be a comma list of numbers between 1 and 10000, got {:?}",
                self.concurrency
            ));
        }
        if self.read_ratio.is_empty() || self.read_ratio.iter().any(|r| !(0.0..=1.0).contains(r)) {
            return Err(format!(
                "--read-ratio must be a comma list of numbers in [0, 1], got {:?}",
                self.read_ratio
            ));
        }
        if !self.duration.is_finite() || self.duration <= 0.0 || self.duration > 86_400.0 {
            return Err(format!(
                "--duration must be positive seconds, got {}",
                self.duration
            ));
        }
        if !self.warmup.is_finite() || self.warmup < 0.0 || self.warmup > 3600.0 {
            return Err(format!(
                "--warmup must be zero or positive seconds, got {}",
                self.warmup
            ));
        }
        if self.value_size > 1 << 20 {
            return Err(format!(
                "--value-size must be at most 1 MiB, got {}",
                self.value_size
            ));
        }
        if self.keys == 0 {
            return Err("--keys must be positive".into());
        }
        if self.election_timeout_ms == 0 || self.heartbeat_ms == 0 {
            return Err("--election-timeout-ms and --heartbeat-ms must be positive".into());
        }
        if self.heartbeat_ms * 2 > self.election_timeout_ms {
            return Err(format!(
                "--heartbeat-ms ({}) must be at most half of --election-timeout-ms ({})",
                self.heartbeat_ms, self.election_timeout_ms
            ));
        }
        if self.op_timeout_ms == 0 {
            return Err("--op-timeout-ms must be positive".into());
        }
        if let Some(bin) = &self.node_bin {
            if !bin.is_file() {
                return Err(format!("--node-bin {} is not a file", bin.display()));
            }
        }
        let seed = self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64
        });
        Ok(BenchConfig {
            targets,
            nodes: self.nodes,
            concurrency: self.concurrency.clone(),
            read_ratio: self.read_ratio.clone(),
            duration_s: self.duration,
            warmup_s: self.warmup,
            value_size: self.value_size,
            keys: self.keys,
            read_consistency: self.read_consistency,
            election_timeout_ms: self.election_timeout_ms,
            heartbeat_ms: self.heartbeat_ms,
            failover: self.failover,
            floor_only: self.floor,
            op_timeout_ms: self.op_timeout_ms,
            node_bin: self.node_bin.clone(),
            extra_args: [
                ("raft".to_string(), self.node_args.clone()),
                ("etcd".to_string(), self.etcd_args.clone()),
            ]
            .into_iter()
            .collect(),
            results: self.results.clone(),
            seed,
        })
    }
}

/// One measured phase of one target: a row of bench.json per op kind.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// raft or etcd.
    pub target: TargetKind,
    /// Client workers.
    pub concurrency: usize,
    /// Share of reads.
    pub read_ratio: f64,
    /// "read" or "write".
    pub kind: &'static str,
    /// Read mode ("linearizable" for writes).
    pub consistency: ReadConsistency,
    /// The figures.
    #[serde(flatten)]
    pub summary: Summary,
    /// CPU per operation of the phase (its reads and writes together) in
    /// the measured window: the target's servers and the load generator.
    pub cpu: Option<cpu::CpuPerOp>,
}

/// Leader failovers of one target.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverResult {
    /// raft or etcd.
    pub target: TargetKind,
    /// Each failover.
    pub samples: Vec<failover::Sample>,
    /// Median milliseconds from the kill to the first acknowledged write.
    pub median_ms: Option<f64>,
    /// Failovers that did not complete, with the reason.
    pub errors: Vec<String>,
}

/// Entry point of `raft-driver bench`: runs, prints, returns the exit code.
pub fn main(args: BenchArgs) -> ExitCode {
    let cfg = match args.validate() {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("raft-driver: {msg}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raft-driver: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let result = rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            r = bench(cfg) => r.map(Some),
            _ = term.recv() => Ok(None),
            _ = int.recv() => Ok(None),
        }
    });
    cluster::kill_all_registered();
    rt.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(Some(dir)) => {
            println!("results: {}", dir.display());
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("raft-driver: interrupted; every node was killed");
            ExitCode::from(3)
        }
        Err(e) => {
            if let Some(u) = e.downcast_ref::<UsageError>() {
                eprintln!("raft-driver: {u}");
                return ExitCode::from(2);
            }
            eprintln!("raft-driver: bench failed: {e:#}");
            ExitCode::from(3)
        }
    }
}

fn create_dir(results: &Path, label: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(results)
        .map_err(|e| UsageError(format!("cannot create {}: {e}", results.display())))?;
    let base = format!("{}-bench-{label}", utc_stamp(std::time::SystemTime::now()));
    for n in 1..1000 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = results.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    bail!("too many runs named {base} in {}", results.display())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// What one target of the bench is started with: its own extra arguments,
/// the shared timeouts, and the read mode if the target accepts it (else
/// its default).
fn target_options(cfg: &BenchConfig, kind: TargetKind) -> TargetOptions {
    let mut o = TargetOptions {
        node_args: cfg.extra_args.get(kind.name()).cloned().unwrap_or_default(),
        election_timeout_ms: Some(cfg.election_timeout_ms),
        heartbeat_ms: Some(cfg.heartbeat_ms),
        read_consistency: cfg.read_consistency,
        node_bin: cfg.node_bin.clone(),
        shipped_snapshot_interval: true,
        ..TargetOptions::default()
    };
    if kind.target().validate(&o).is_err() {
        o.read_consistency = ReadConsistency::default();
    }
    o
}

/// Runs the whole bench and returns the run folder.
pub async fn bench(cfg: BenchConfig) -> Result<PathBuf> {
    let label = if cfg.floor_only {
        "floor".to_string()
    } else {
        cfg.targets
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join("-")
    };
    let dir = create_dir(&cfg.results, &label)?;
    eprintln!("raft-driver: bench folder {}", dir.display());
    let load_before = loadavg();
    let started = utc_stamp(std::time::SystemTime::now());
    let nodes = cfg.nodes;
    let floor = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || floor::measure(&dir, 500, nodes))
            .await
            .context("floor task")??
    };
    print_floor(&floor);
    let mut rows: Vec<Row> = Vec::new();
    let mut curves: Vec<plot::Curve> = Vec::new();
    let mut failovers: Vec<FailoverResult> = Vec::new();
    let mut versions = serde_json::Map::new();
    if !cfg.floor_only {
        let mut deps = Vec::new();
        for (i, &kind) in cfg.targets.iter().enumerate() {
            let sub = dir.join(kind.name());
            std::fs::create_dir_all(sub.join("nodes"))?;
            let spec = TargetSpec {
                nodes: cfg.nodes,
                options: target_options(&cfg, kind),
                proxied: false,
                seed: cfg.seed ^ i as u64,
                node_env: std::collections::BTreeMap::new(),
                // Benchmarks measure the node as it ships.
                max_append_entries: None,
            };
            let dep = kind.target().setup(&spec, &sub).await?;
            versions.insert(kind.name().into(), json!(dep.version));
            deps.push((kind, dep));
        }
        let mut next_client =
            (cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1 << 63) >> 1 | 1 << 62;
        for (_, dep) in &deps {
            failover::wait_leader(dep, Duration::from_secs(30)).await?;
            prefill(dep, &cfg, &mut next_client).await?;
        }
        for &rr in &cfg.read_ratio {
            for &c in &cfg.concurrency {
                for (kind, dep) in &deps {
                    let target = *kind;
                    eprintln!(
                        "raft-driver: {} concurrency {c} read-ratio {rr}: {:.0} s",
                        target.name(),
                        cfg.warmup_s + cfg.duration_s
                    );
                    let (r, w, cpu_window) = phase(dep, &cfg, c, rr, &mut next_client).await;
                    let phase_ops = (r.latencies_us.len() + w.latencies_us.len()) as u64;
                    let cpu = cpu_window.and_then(|(a, b)| cpu::per_op(a, b, phase_ops));
                    for (kind, mut samples) in [("write", w), ("read", r)] {
                        if samples.latencies_us.is_empty() && samples.failed + samples.unknown == 0
                        {
                            continue;
                        }
                        let summary =
                            stats::summarize(&mut samples, Duration::from_secs_f64(cfg.duration_s));
                        let row = Row {
                            target,
                            concurrency: c,
                            read_ratio: rr,
                            kind,
                            consistency: if kind == "read" {
                                target_options(&cfg, target).read_consistency
                            } else {
                                ReadConsistency::Linearizable
                            },
                            summary,
                            cpu,
                        };
                        print_row(&row);
                        curves.push(plot::Curve {
                            label: format!("{} {kind} c={c} r={rr}", target.name()),
                            sorted_us: samples.latencies_us,
                        });
                        rows.push(row);
                    }
                }
            }
        }
        for (kind, dep) in &deps {
            if cfg.failover == 0 {
                break;
            }
            let mut res = FailoverResult {
                target: *kind,
                samples: Vec::new(),
                median_ms: None,
                errors: Vec::new(),
            };
            for _ in 0..cfg.failover {
                eprintln!("raft-driver: {} failover", kind.name());
                match failover::measure_once(dep, next_client).await {
                    Ok(s) => {
                        eprintln!(
                            "  killed n{}: new leader seen after {} ms, first write after {:.0} ms",
                            s.killed,
                            s.elected_ms
                                .map(|m| format!("{m:.0}"))
                                .unwrap_or("-".into()),
                            s.ms
                        );
                        res.samples.push(s);
                    }
                    Err(e) => res.errors.push(format!("{e:#}")),
                }
                next_client += failover::WRITERS as u64;
            }
            res.median_ms = stats::median(&res.samples.iter().map(|s| s.ms).collect::<Vec<_>>());
            println!(
                "{:<5} failover: median {} ms over {} kills ({} failed)",
                kind.name(),
                res.median_ms
                    .map(|m| format!("{m:.0}"))
                    .unwrap_or("-".into()),
                res.samples.len(),
                res.errors.len()
            );
            failovers.push(res);
        }
        for (_, dep) in &deps {
            dep.shutdown();
        }
    }
    // The machine is shared and noisy: measure the floor again after the
    // load and compare against the lower (stricter) of the two.
    let floor_after = if cfg.floor_only {
        None
    } else {
        let dir = dir.clone();
        let f = tokio::task::spawn_blocking(move || floor::measure(&dir, 500, nodes))
            .await
            .context("floor task")??;
        print_floor(&f);
        Some(f)
    };
    let strict = match &floor_after {
        Some(f) if f.write_floor_us < floor.write_floor_us => f,
        _ => &floor,
    };
    let comparison = compare(&rows, &failovers, strict);
    for line in comparison.iter().filter_map(|c| c["text"].as_str()) {
        println!("{line}");
    }
    let doc = json!({
        "settings": cfg,
        "started": started,
        "machine": {
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "loadavg_before": load_before,
            "loadavg_after": loadavg(),
        },
        "versions": versions,
        "floor": floor,
        "floor_after": floor_after,
        "results": rows,
        "failover": failovers,
        "comparison": comparison,
    });
    std::fs::write(dir.join("bench.json"), serde_json::to_vec_pretty(&doc)?)?;
    if !curves.is_empty() {
        let title = format!(
            "latency by quantile, {} nodes, {} B values",
            cfg.nodes, cfg.value_size
        );
        if let Err(e) = plot::write(&dir, "bench-latency", &title, &curves) {
            eprintln!("raft-driver: latency plot not written: {e}");
        }
    }
    Ok(dir)
}

fn value(size: usize, rng: &mut SmallRng) -> Value {
    // Printable and varied, so that neither side can compress it away.
    Value::String(
        (0..size)
            .map(|_| rng.gen_range(b'a'..=b'z') as char)
            .collect(),
    )
}

fn key(i: usize) -> String {
    format!("bench-{i:06}")
}

/// Writes every key once, so that reads find values of the bench's size.
async fn prefill(dep: &Deployment, cfg: &BenchConfig, next_client: &mut u64) -> Result<()> {
    let workers = 16.min(cfg.keys);
    let timeout = Duration::from_millis(cfg.op_timeout_ms);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let mut client = dep.bench_client(dep.ids[w % dep.ids.len()], *next_client, timeout);
        *next_client += 1;
        let (keys, size, seed) = (cfg.keys, cfg.value_size, cfg.seed);
        tasks.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(seed ^ w as u64);
            let mut failed = 0;
            for i in (w..keys).step_by(workers) {
                let op = Op {
                    f: F::Write,
                    key: key(i),
                    kind: KeyKind::Register,
                    value: value(size, &mut rng),
                };
                if client.invoke(&op).await.kind != EventType::Ok {
                    failed += 1;
                }
            }
            failed
        }));
    }
    let mut failed = 0;
    for t in tasks {
        failed += t.await.context("prefill task")?;
    }
    if failed > 0 {
        bail!(
            "{}: {failed} of {} prefill writes failed",
            dep.target,
            cfg.keys
        );
    }
    Ok(())
}

/// CPU times at the start and the end of a phase's measured window.
type CpuWindow = (cpu::CpuTimes, cpu::CpuTimes);

/// Runs one phase; returns (reads, writes) of the measured window and the
/// CPU times at its two ends (None if the window was not reached).
async fn phase(
    dep: &Deployment,
    cfg: &BenchConfig,
    concurrency: usize,
    read_ratio: f64,
    next_client: &mut u64,
) -> (Samples, Samples, Option<CpuWindow>) {
    let measure_from = Instant::now() + Duration::from_secs_f64(cfg.warmup_s);
    let end = measure_from + Duration::from_secs_f64(cfg.duration_s);
    let pids = dep.cluster.lock().unwrap_or_else(|e| e.into_inner()).pids();
    let cpu_sampler = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from).await;
        let before = cpu::sample(&pids);
        tokio::time::sleep_until(end).await;
        (before, cpu::sample(&pids))
    });
    let timeout = Duration::from_millis(cfg.op_timeout_ms);
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let mut client = dep.bench_client(dep.ids[w % dep.ids.len()], *next_client, timeout);
        *next_client += 1;
        let seed = cfg.seed ^ (*next_client).rotate_left(17);
        let (keys, size) = (cfg.keys, cfg.value_size);
        tasks.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(seed);
            let payload = value(size, &mut rng);
            let (mut reads, mut writes) = (Samples::default(), Samples::default());
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let read = rng.gen_bool(read_ratio);
                let op = Op {
                    f: if read { F::Read } else { F::Write },
                    key: key(rng.gen_range(0..keys)),
                    kind: KeyKind::Register,
                    value: if read { Value::Null } else { payload.clone() },
                };
                let c = client.invoke(&op).await;
                let latency = t0.elapsed();
                if t0 < measure_from {
                    continue;
                }
                let s = if read { &mut reads } else { &mut writes };
                match c.kind {
                    EventType::Ok => s.ok(latency),
                    EventType::Info => s.unknown += 1,
                    _ => s.failed += 1,
                }
            }
            client.close();
            (reads, writes)
        }));
    }
    let (mut reads, mut writes) = (Samples::default(), Samples::default());
    for t in tasks {
        if let Ok((r, w)) = t.await {
            reads.merge(r);
            writes.merge(w);
        }
    }
    (reads, writes, cpu_sampler.await.ok())
}

fn print_floor(f: &floor::Floor) {
    println!(
        "floor: 4 KiB write+fdatasync p50 {} us p99 {} us (appending p50 {} us, preallocated p50 {} us, {} writers at once p50 {} us); loopback round trip p50 {} us p99 {} us; write floor (fsync + 2 RTT) {} us, with the disk shared by {} nodes {} us",
        f.fsync_p50_us, f.fsync_p99_us, f.fsync_append_p50_us, f.fsync_prealloc_p50_us, f.shared_writers, f.fsync_shared_p50_us, f.rtt_p50_us, f.rtt_p99_us, f.write_floor_us, f.shared_writers, f.shared_disk_write_floor_us
    );
}

fn print_row(r: &Row) {
    let s = &r.summary;
    let cpu = r.cpu.map_or(String::new(), |c| {
        format!(
            "  cpu/op server {:.0} us client {:.0} us",
            c.server_us_per_op, c.client_us_per_op
        )
    });
    println!(
        "{:<5} c={:<4} r={:<4} {:<5} {:>9.0} ops/s  p50 {:>8.3} ms  p99 {:>8.3} ms  p99.9 {:>8.3} ms  failed {} unknown {}{cpu}",
        r.target.name(),
        r.concurrency,
        r.read_ratio,
        r.kind,
        s.ops_per_sec,
        s.p50_us as f64 / 1000.0,
        s.p99_us as f64 / 1000.0,
        s.p999_us as f64 / 1000.0,
        s.failed,
        s.unknown
    );
}

/// The first target against each other one for every phase both ran, plus
/// the first target's single-client write against the floor, and failover.
pub fn compare(rows: &[Row], failovers: &[FailoverResult], floor: &floor::Floor) -> Vec<Value> {
    let mut out = Vec::new();
    let Some(subject) = rows
        .first()
        .map(|r| r.target)
        .or(failovers.first().map(|f| f.target))
    else {
        return out;
    };
    let find = |t: TargetKind, c: usize, rr: f64, kind: &str| {
        rows.iter()
            .find(|r| r.target == t && r.concurrency == c && r.read_ratio == rr && r.kind == kind)
    };
    let others: Vec<TargetKind> = {
        let mut v: Vec<TargetKind> = rows
            .iter()
            .map(|r| r.target)
            .filter(|t| *t != subject)
            .collect();
        v.dedup();
        v
    };
    for r in rows.iter().filter(|r| r.target == subject) {
        for &other in &others {
            let Some(e) = find(other, r.concurrency, r.read_ratio, r.kind) else {
                continue;
            };
            let what = format!("{}/{}", subject.name(), other.name());
            let tput = r.summary.ops_per_sec / e.summary.ops_per_sec.max(1e-9);
            let p99 = r.summary.p99_us as f64 / (e.summary.p99_us as f64).max(1.0);
            let p50 = r.summary.p50_us as f64 / (e.summary.p50_us as f64).max(1.0);
            let server_cpu = match (r.cpu, e.cpu) {
                (Some(a), Some(b)) => Some(a.server_us_per_op / b.server_us_per_op.max(1e-9)),
                _ => None,
            };
            let cpu_text = server_cpu.map_or(String::new(), |x| format!(", server cpu/op x{x:.2}"));
            out.push(json!({
                "what": what,
                "kind": r.kind,
                "concurrency": r.concurrency,
                "read_ratio": r.read_ratio,
                "throughput_ratio": tput,
                "p50_ratio": p50,
                "p99_ratio": p99,
                "server_cpu_per_op_ratio": server_cpu,
                "text": format!(
                    "{what} {} c={} r={}: throughput x{:.2}, p50 x{:.2}, p99 x{:.2}{cpu_text}",
                    r.kind, r.concurrency, r.read_ratio, tput, p50, p99
                ),
            }));
        }
    }
    if let Some(r) = rows
        .iter()
        .filter(|r| r.target == subject && r.kind == "write" && r.concurrency == 1)
        .min_by(|a, b| a.read_ratio.total_cmp(&b.read_ratio))
    {
        let ratio = r.summary.p50_us as f64 / (floor.write_floor_us as f64).max(1.0);
        let shared = r.summary.p50_us as f64 / (floor.shared_disk_write_floor_us as f64).max(1.0);
        out.push(json!({
            "what": format!("{} single-client write p50 / floor", subject.name()),
            "p50_us": r.summary.p50_us,
            "floor_us": floor.write_floor_us,
            "ratio": ratio,
            "shared_disk_floor_us": floor.shared_disk_write_floor_us,
            "shared_disk_ratio": shared,
            "text": format!(
                "{} single-client write p50 {} us = x{:.2} the floor ({} us), x{:.2} the shared-disk floor ({} us)",
                subject.name(),
                r.summary.p50_us, ratio, floor.write_floor_us, shared, floor.shared_disk_write_floor_us
            ),
        }));
    }
    let med = |t: TargetKind| {
        failovers
            .iter()
            .find(|f| f.target == t)
            .and_then(|f| f.median_ms)
    };
    for f in failovers.iter().filter(|f| f.target != subject) {
        let (Some(r), Some(e)) = (med(subject), f.median_ms) else {
            continue;
        };
        let (a, b) = (subject.name(), f.target.name());
        out.push(json!({
            "what": format!("failover {a}/{b}"),
            format!("{a}_median_ms"): r,
            format!("{b}_median_ms"): e,
            "ratio": r / e.max(1e-9),
            "text": format!("failover median: {a} {r:.0} ms, {b} {e:.0} ms (x{:.2})", r / e.max(1e-9)),
        }));
    }
    out
}
