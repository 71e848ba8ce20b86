//! The raft-checker command: check or plot a recorded history.

use clap::{Parser, Subcommand, ValueEnum};
use raft_checker::input::{history_path, read_history, Format};
use raft_checker::{check_history, CheckOptions, RegisterKind, EXIT_BAD_INPUT};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "raft-checker",
    version,
    about = "Linearizability checker for Jepsen-style histories"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Jsonl,
    Edn,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum NullReads {
    Absent,
    Unknown,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModelArg {
    /// read and write.
    Register,
    /// read, write and cas.
    CasRegister,
    /// read, write, cas and append, one register per key.
    Kv,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check a history file (JSON lines or EDN) or a run folder.
    ///
    /// Exit codes: 0 valid, 1 invalid, 2 bad usage or input, 3 unknown.
    Check {
        /// A history file, or a run folder holding history.jsonl.
        history: PathBuf,
        /// The file format (default: from the extension; .edn is EDN).
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
        /// The model to check against.
        #[arg(long, value_enum, default_value = "kv")]
        model: ModelArg,
        /// Every key's initial value, as JSON (Knossos histories: 0).
        #[arg(long, default_value = "null")]
        initial_value: String,
        /// Seconds after which undecided keys are reported unknown.
        #[arg(long)]
        time_limit: Option<f64>,
        /// Seconds after which one key is reported unknown.
        #[arg(long)]
        key_time_limit: Option<f64>,
        /// Memory budget for the search caches, in MiB.
        #[arg(long, default_value_t = 1024)]
        memory_mib: usize,
        /// Worker threads (default: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Write results.json, plots and index.html here (default: the run
        /// folder when HISTORY is a folder; nothing for a file).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print results.json on stdout instead of words.
        #[arg(long)]
        json: bool,
        /// What a read that returned null means: "absent" (JSON lines
        /// default) or "unknown", constraining nothing (Knossos semantics,
        /// the EDN default).
        #[arg(long, value_enum)]
        null_reads: Option<NullReads>,
    },
    /// Draw the latency and rate plots of a history, with no check.
    Plot {
        /// A history file, or a run folder holding history.jsonl.
        history: PathBuf,
        /// The file format (default: from the extension).
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
        /// Where to write the plots (default: beside the history).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn format_of(f: Option<FormatArg>) -> Option<Format> {
    f.map(|f| match f {
        FormatArg::Jsonl => Format::Jsonl,
        FormatArg::Edn => Format::Edn,
    })
}

fn seconds(s: Option<f64>, what: &str) -> Result<Option<Duration>, String> {
    match s {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(format!(
            "{what} must be a positive number of seconds, not {s}"
        )),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(message) => {
            eprintln!("raft-checker: {message}");
            ExitCode::from(EXIT_BAD_INPUT as u8)
        }
    }
}

fn run(cli: Cli) -> Result<i32, String> {
    match cli.cmd {
        Cmd::Check {
            history,
            format,
            model,
            initial_value,
            time_limit,
            key_time_limit,
            memory_mib,
            threads,
            out,
            json,
            null_reads,
        } => {
            let file = history_path(&history);
            let format = format_of(format).unwrap_or_else(|| Format::guess(&file));
            let null_reads = null_reads.unwrap_or(match format {
                Format::Edn => NullReads::Unknown,
                Format::Jsonl => NullReads::Absent,
            });
            let initial_value: serde_json::Value = serde_json::from_str(&initial_value)
                .map_err(|e| format!("--initial-value {initial_value:?} is not JSON: {e}"))?;
            let opts = CheckOptions {
                model: match model {
                    ModelArg::Register => RegisterKind::Register,
                    ModelArg::CasRegister => RegisterKind::CasRegister,
                    ModelArg::Kv => RegisterKind::Kv,
                },
                initial_value,
                time_limit: seconds(time_limit, "--time-limit")?,
                key_time_limit: seconds(key_time_limit, "--key-time-limit")?,
                memory_limit: memory_mib.saturating_mul(1 << 20),
                threads,
                progress: true,
                null_read_is_unknown: null_reads == NullReads::Unknown,
            };
            let h = read_history(&history, Some(format))
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let result = check_history(&h.events, &opts)
                .map_err(|e| format!("{}: {}", file.display(), e.locate(&h)))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?
                );
            } else {
                print!("{}", raft_checker::report::text_report(&result));
            }
            let out = out.or_else(|| history.is_dir().then(|| history.clone()));
            if let Some(dir) = out {
                raft_checker::report::write_run_outputs(&dir, &h.events, &result)
                    .map_err(|e| format!("cannot write the report into {}: {e}", dir.display()))?;
                if !json {
                    println!("report: {}", dir.join("index.html").display());
                }
            }
            Ok(result.valid.exit_code())
        }
        Cmd::Plot {
            history,
            format,
            out,
        } => {
            let file = history_path(&history);
            let h = read_history(&history, format_of(format))
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let dir = out.unwrap_or_else(|| {
                file.parent()
                    .map(|p| p.to_path_buf())
                    .unwrap_or_else(|| PathBuf::from("."))
            });
            let written = raft_checker::plot::write_plots(&dir, &h.events)
                .map_err(|e| format!("cannot write plots into {}: {e}", dir.display()))?;
            for p in written {
                println!("{}", p.display());
            }
            Ok(0)
        }
    }
}
