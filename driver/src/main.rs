//! raft-driver: spawns a raft-node cluster on localhost, breaks it with
//! faults, records what clients saw, and gives a linearizability verdict.

use clap::{Parser, Subcommand};
use raft_driver::{cluster, options, run};
use std::process::ExitCode;

/// Jepsen-style tests of raft-node on localhost.
#[derive(Parser)]
#[command(name = "raft-driver", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one test: 3 nodes, all faults, 60 s unless told otherwise.
    Run(options::RunArgs),
    /// Run a matrix of nemesis sets x cluster sizes x seeds and summarise it.
    Campaign(raft_driver::campaign::CampaignArgs),
    /// Run a recorded run again: same options, seed and fault schedule.
    Replay(raft_driver::replay::ReplayArgs),
    /// Merge the summaries of campaign (shard) folders or run folders.
    Summarize(SummarizeArgs),
    /// Rewrite results/index.html (every run and campaign, newest first).
    Index(IndexArgs),
    /// Throughput and latency with no faults: raft-node and/or etcd side by
    /// side, the physical floor, leader failover; writes bench.json.
    Bench(raft_driver::bench::BenchArgs),
}

/// Options of `raft-driver summarize`.
#[derive(clap::Args)]
struct SummarizeArgs {
    /// Campaign folders (with summary.json) or run folders (with test.json).
    #[arg(required = true)]
    dirs: Vec<std::path::PathBuf>,
    /// Folder for the merged summary (default: the only DIR itself, or
    /// `campaign-<time>-merged` beside the first DIR).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

/// Options of `raft-driver index`.
#[derive(clap::Args)]
struct IndexArgs {
    /// The results folder.
    #[arg(long, default_value = "results")]
    results: std::path::PathBuf,
}

/// Exit code when the run gave no verdict (DESIGN.md: 3 unknown).
const EXIT_UNKNOWN: u8 = 3;
/// Exit code for bad usage or input.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Nothing outlives the driver, not even a panicking one.
        cluster::kill_all_registered();
        default_hook(info);
    }));
    let code = match cli.cmd {
        Cmd::Run(args) => match args.validate() {
            Err(msg) => {
                eprintln!("raft-driver: {msg}");
                ExitCode::from(EXIT_USAGE)
            }
            Ok(cfg) => run_with_signals(cfg),
        },
        Cmd::Campaign(args) => campaign_command(args),
        Cmd::Replay(args) => raft_driver::replay::replay_command(args),
        Cmd::Summarize(args) => summarize_command(args),
        Cmd::Index(args) => match raft_driver::results_index::write(&args.results) {
            Ok(p) => {
                println!("{}", p.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("raft-driver: {e:#}");
                ExitCode::from(EXIT_USAGE)
            }
        },
        Cmd::Bench(args) => raft_driver::bench::main(args),
    };
    cluster::kill_all_registered();
    code
}

fn run_with_signals(cfg: options::RunConfig) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raft-driver: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_UNKNOWN);
        }
    };
    let result = rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let run = tokio::spawn(run::run(cfg));
        tokio::select! {
            r = run => match r {
                Ok(r) => r.map(Some),
                // A panic in the run: the hook already killed the nodes.
                Err(e) => Err(anyhow::anyhow!("the run task failed: {e}")),
            },
            _ = term.recv() => Ok(None),
            _ = int.recv() => Ok(None),
        }
    });
    // Kill the nodes before the runtime winds down its tasks, and do not
    // wait long for tasks stuck in blocking code (e.g. a long check).
    cluster::kill_all_registered();
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(Some(outcome)) => ExitCode::from(outcome.validity.exit_code()),
        Ok(None) => {
            eprintln!("raft-driver: interrupted; every node was killed; no verdict");
            ExitCode::from(EXIT_UNKNOWN)
        }
        Err(e) => {
            if let Some(u) = e.downcast_ref::<run::UsageError>() {
                eprintln!("raft-driver: {u}");
                return ExitCode::from(EXIT_USAGE);
            }
            eprintln!("raft-driver: no verdict: {e:#}");
            ExitCode::from(EXIT_UNKNOWN)
        }
    }
}

fn campaign_command(args: raft_driver::campaign::CampaignArgs) -> ExitCode {
    let plan = match args.plan() {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("raft-driver: {msg}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match raft_driver::campaign::run_campaign(plan) {
        Ok(outcome) => {
            raft_driver::campaign::print_report(&outcome);
            ExitCode::from(outcome.exit_code())
        }
        Err(e) => {
            if let Some(u) = e.downcast_ref::<run::UsageError>() {
                eprintln!("raft-driver: {u}");
                return ExitCode::from(EXIT_USAGE);
            }
            eprintln!("raft-driver: campaign failed: {e:#}");
            ExitCode::from(EXIT_UNKNOWN)
        }
    }
}

fn summarize_command(args: SummarizeArgs) -> ExitCode {
    let out = args.out.clone().unwrap_or_else(|| {
        if args.dirs.len() == 1 {
            args.dirs[0].clone()
        } else {
            let parent = args.dirs[0]
                .parent()
                .map(|p| p.to_path_buf())
                .unwrap_or_default();
            parent.join(format!(
                "campaign-{}-merged",
                run::utc_stamp(std::time::SystemTime::now())
            ))
        }
    });
    match raft_driver::summary::summarize(&args.dirs, &out) {
        Ok(s) => {
            let c = s.counts;
            println!(
                "summary: {} runs of {} planned: {} valid, {} invalid, {} unknown",
                s.runs.len(),
                s.planned,
                c.valid,
                c.invalid,
                c.unknown
            );
            println!("summary: {}", out.join("summary.md").display());
            let code = if s.runs.len() < s.planned && c.invalid == 0 {
                EXIT_UNKNOWN
            } else {
                c.exit_code()
            };
            println!("verdict: {} (exit {code})", c.word());
            ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("raft-driver: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
