//! raft-driver: spawns a raft-node cluster on localhost, breaks it with
//! faults, records what clients saw, and gives a linearizability verdict.

use clap::{Parser, Subcommand};
use raft_driver::run::{self, options};
use raft_driver::target::cluster;
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
    /// For every bug raft-node can switch on, default-shaped runs with fresh
    /// seeds until one is invalid or the bug's budget runs out; writes a
    /// teeth report (JSON, markdown, page).
    Teeth(raft_driver::teeth::TeethArgs),
    /// Delete the oldest run, campaign and teeth folders beyond an age or
    /// size budget, never an invalid or unknown one (unless told), then
    /// rewrite results/index.html.
    Prune(raft_driver::prune::PruneArgs),
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

/// Exit code when the run gave no verdict (3 unknown).
const EXIT_UNKNOWN: u8 = raft_checker::EXIT_UNKNOWN as u8;
/// Exit code for bad usage or input.
const EXIT_USAGE: u8 = raft_checker::EXIT_BAD_INPUT as u8;

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
        Cmd::Index(args) => match raft_driver::report::index::write(&args.results) {
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
        Cmd::Teeth(args) => teeth_command(args),
        Cmd::Prune(args) => prune_command(args),
    };
    cluster::kill_all_registered();
    code
}

fn run_with_signals(cfg: options::RunConfig) -> ExitCode {
    let (code, _) = run::run_blocking(cfg, run::RunPlan::default());
    ExitCode::from(code)
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

fn teeth_command(args: raft_driver::teeth::TeethArgs) -> ExitCode {
    if let (false, Some(todo)) = (args.from_reports.is_empty(), &args.update_todo) {
        return match raft_driver::teeth::update_todo_from(&args.from_reports, todo) {
            Ok(r) => {
                println!(
                    "teeth: {} of {} bugs caught; table written to {}",
                    r.caught(),
                    r.planned,
                    todo.display()
                );
                ExitCode::from(r.exit_code())
            }
            Err(e) => {
                eprintln!("raft-driver: {e:#}");
                ExitCode::from(EXIT_USAGE)
            }
        };
    }
    let plan = match args.plan() {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("raft-driver: {msg}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match raft_driver::teeth::run_teeth(plan) {
        Ok(outcome) => {
            raft_driver::teeth::print_report(&outcome);
            ExitCode::from(outcome.report.exit_code())
        }
        Err(e) => {
            if let Some(u) = e.downcast_ref::<run::UsageError>() {
                eprintln!("raft-driver: {u}");
                return ExitCode::from(EXIT_USAGE);
            }
            eprintln!("raft-driver: teeth failed: {e:#}");
            ExitCode::from(EXIT_UNKNOWN)
        }
    }
}

fn prune_command(args: raft_driver::prune::PruneArgs) -> ExitCode {
    use raft_driver::prune;
    let budget = match prune::Budget::of(&args, std::time::SystemTime::now()) {
        Ok(b) => b,
        Err(msg) => {
            eprintln!("raft-driver: {msg}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match prune::prune(&args.results, &budget, args.dry_run) {
        Ok(p) => {
            print!("{}", prune::report(&p, args.dry_run));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("raft-driver: {e:#}");
            if e.downcast_ref::<run::UsageError>().is_some() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::from(EXIT_UNKNOWN)
            }
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
    match raft_driver::report::summary::summarize(&args.dirs, &out) {
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
