//! The raft-checker command: check or plot a recorded history.

use clap::{Parser, Subcommand, ValueEnum};
use raft_checker::input::{history_path, read_history, Format};
use raft_checker::{CheckOptions, RegisterKind, EXIT_BAD_INPUT};
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
        /// Seconds after which undecided keys are reported unknown (exit 3),
        /// so that no check runs unbounded.
        #[arg(long, default_value_t = raft_checker::check::DEFAULT_TIME_LIMIT.as_secs_f64())]
        time_limit: f64,
        /// Seconds after which one key is reported unknown.
        #[arg(long)]
        key_time_limit: Option<f64>,
        /// Memory budget of the whole process (resident set, measured), in
        /// MiB: a key whose search would pass it is reported unknown.
        #[arg(long, default_value_t = raft_checker::check::DEFAULT_MEMORY_LIMIT >> 20)]
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
        /// Stop at the first key proven invalid (exit 1): a quick pass over
        /// every key first, then the searches; the keys left are reported
        /// not checked.
        #[arg(long)]
        fail_fast: bool,
    },
    /// Benchmark the checker on generated histories: seconds and peak memory.
    ///
    /// Scenario a: 1,000,000 operations, 1,000 keys, 50 processes, 5% info.
    /// Scenario b: one key, 20 processes, 10,000 operations, 5% info.
    /// Scenario c: one append key, 30 processes, 300 operations (about 30
    /// appends in flight at once).
    /// Scenarios hard-valid and hard-invalid: 10 append keys, 50
    /// processes, 150,000 operations with crashes (late info appends); the
    /// invalid one has a stale read on 6 keys. Scenario hard-register: 10
    /// cas-register keys of 5 values, 50 processes, crashes.
    /// Scenario knossos: the whole Knossos corpus, read and checked.
    Bench {
        /// Which scenario; `all` runs each in a fresh process, so that each
        /// peak-memory figure is its own.
        #[arg(long, default_value = "all")]
        scenario: String,
        /// Worker threads (default: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Seconds after which undecided keys are reported unknown.
        #[arg(long, default_value_t = 120.0)]
        time_limit: f64,
        /// The Knossos corpus folder (with good/ and bad/) for scenario
        /// `knossos`.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/knossos/cas-register"))]
        corpus: PathBuf,
        /// Memory budget of the whole process, in MiB.
        #[arg(long, default_value_t = raft_checker::check::DEFAULT_MEMORY_LIMIT >> 20)]
        memory_mib: usize,
        /// Stop at the first invalid key (as `check --fail-fast`).
        #[arg(long)]
        fail_fast: bool,
    },
    /// Write a generated linearizable history as JSON lines on stdout (for
    /// trying the checker and its report without a cluster).
    Generate {
        /// Client operations.
        #[arg(long, default_value_t = 1000)]
        ops: usize,
        /// Keys.
        #[arg(long, default_value_t = 1)]
        keys: usize,
        /// Concurrent processes.
        #[arg(long, default_value_t = 5)]
        processes: usize,
        /// Fraction of operations that end as info.
        #[arg(long, default_value_t = 0.05)]
        info_rate: f64,
        /// Values are drawn from 0..VALUES.
        #[arg(long, default_value_t = 5)]
        values: i64,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Alter one ok read to a value never written (an invalid history).
        #[arg(long)]
        corrupt: bool,
        /// Issue reads and appends (of "1,", "2,", ... per key) instead of
        /// reads, writes and cas.
        #[arg(long)]
        appends: bool,
        /// An info operation that takes effect may do so up to this many
        /// milliseconds after its info line (a crash's write committed late).
        #[arg(long, default_value_t = 0)]
        late_info_ms: u64,
        /// Keys k0, k1, ... that get one stale read each (a violation on
        /// append keys).
        #[arg(long, default_value_t = 0)]
        stale_keys: usize,
        /// A crash every this many milliseconds (0: none): operations due
        /// during one time out as info, half take effect after it.
        #[arg(long, default_value_t = 0)]
        crash_every_ms: u64,
        /// How long each crash lasts, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        crash_ms: u64,
        /// The share of reads among the operations.
        #[arg(long, default_value_t = 0.5)]
        read_fraction: f64,
        /// Keys in use at once, each retired for a fresh one after its
        /// share of the operations (raft-driver rotates 6); 0: all keys
        /// from the start.
        #[arg(long, default_value_t = 0)]
        active_keys: usize,
        /// raft-driver's mix of keys: every third an append key, the rest
        /// registers with writes and cas.
        #[arg(long)]
        mixed: bool,
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

/// Writes to stdout, ignoring a closed pipe (`raft-checker check h | head`):
/// the verdict is in the exit code, and a reader that went away is no
/// reason to panic.
fn say_raw(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

/// `println!` that ignores a closed pipe.
macro_rules! say {
    ($($arg:tt)*) => {
        say_raw(&format!("{}\n", format!($($arg)*)))
    };
}

fn format_of(f: Option<FormatArg>) -> Option<Format> {
    f.map(|f| match f {
        FormatArg::Jsonl => Format::Jsonl,
        FormatArg::Edn => Format::Edn,
    })
}

/// The longest time limit accepted: about 31 years, far beyond any check
/// and far below what overflows a clock.
const MAX_SECONDS: f64 = 1e9;

fn seconds(s: Option<f64>, what: &str) -> Result<Option<Duration>, String> {
    match s {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 && s <= MAX_SECONDS => {
            Ok(Some(Duration::from_secs_f64(s)))
        }
        Some(s) => Err(format!(
            "{what} must be a positive number of seconds, at most {MAX_SECONDS:e}, not {s}"
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
            fail_fast,
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
                time_limit: seconds(Some(time_limit), "--time-limit")?,
                key_time_limit: seconds(key_time_limit, "--key-time-limit")?,
                memory_limit: memory_mib.saturating_mul(1 << 20),
                threads,
                progress: true,
                null_read_is_unknown: null_reads == NullReads::Unknown,
                fail_fast,
            };
            // Streamed into a compact history: memory stays small however
            // long the run (README, Performance).
            let loaded = raft_checker::verdict::run::load_compact(&history, Some(format))
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let result = raft_checker::verdict::run::judge_compact(&loaded, &opts)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            if json {
                say!(
                    "{}",
                    serde_json::to_string_pretty(&result).map_err(|e| e.to_string())?
                );
            } else {
                say_raw(&result.text());
                say!(
                    "verdict: {} (exit {})",
                    result.valid.as_str(),
                    result.exit_code()
                );
            }
            let out = out.or_else(|| history.is_dir().then(|| history.clone()));
            if let Some(dir) = out {
                // The verdict stands, but a gate must not read a report that
                // is not there: exit 3 with the reason.
                let written = match &loaded.history {
                    Ok(h) => raft_checker::report::write_history_outputs(&dir, h, &result),
                    // Judged, so well formed.
                    Err(e) => Err(std::io::Error::other(e.to_string())),
                };
                if let Err(e) = written {
                    eprintln!(
                        "raft-checker: cannot write the report into {}: {e}",
                        dir.display()
                    );
                    return Ok(raft_checker::EXIT_UNKNOWN);
                }
                if !json {
                    say!("report: {}", dir.join("index.html").display());
                }
            }
            Ok(result.exit_code())
        }
        Cmd::Bench {
            scenario,
            threads,
            time_limit,
            corpus,
            memory_mib,
            fail_fast,
        } => {
            let opts = CheckOptions {
                time_limit: seconds(Some(time_limit), "--time-limit")?,
                memory_limit: memory_mib.saturating_mul(1 << 20),
                threads,
                progress: true,
                fail_fast,
                ..CheckOptions::default()
            };
            bench(&scenario, &opts, &corpus)
        }
        Cmd::Generate {
            ops,
            keys,
            processes,
            info_rate,
            values,
            seed,
            corrupt,
            appends,
            late_info_ms,
            stale_keys,
            crash_every_ms,
            crash_ms,
            read_fraction,
            active_keys,
            mixed,
        } => {
            if !(0.0..=1.0).contains(&info_rate) {
                return Err(format!(
                    "--info-rate must be between 0 and 1, not {info_rate}"
                ));
            }
            let mut events =
                raft_checker::generate::generate(&raft_checker::generate::GenOptions {
                    ops,
                    keys,
                    processes,
                    info_rate,
                    values,
                    cas: !appends,
                    appends,
                    seed,
                    late_info_ns: late_info_ms.saturating_mul(1_000_000),
                    stale_keys,
                    crash_every_ns: crash_every_ms.saturating_mul(1_000_000),
                    crash_ns: crash_ms.saturating_mul(1_000_000),
                    read_fraction,
                    active_keys,
                    mixed,
                });
            if corrupt {
                raft_checker::generate::corrupt_one_read(&mut events, seed);
            }
            let stdout = std::io::stdout();
            let mut w = raft_checker::HistoryWriter::new(std::io::BufWriter::new(stdout.lock()));
            for e in events {
                w.write(e).map_err(|e| e.to_string())?;
            }
            Ok(0)
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
                say!("{}", p.display());
            }
            Ok(0)
        }
    }
}

fn bench(scenario: &str, opts: &CheckOptions, corpus: &std::path::Path) -> Result<i32, String> {
    let all = raft_checker::bench::scenarios();
    if scenario == "knossos" {
        let r = raft_checker::bench::run_corpus(corpus, opts.threads)?;
        say!(
            "scenario knossos: {} corpus files read and checked in {:.2} s; {} of them as expected; peak RSS {:.0} MiB",
            r.files,
            r.seconds,
            r.as_expected,
            raft_checker::bench::peak_rss_mib().unwrap_or(f64::NAN)
        );
        return Ok(if r.as_expected == r.files { 0 } else { 1 });
    }
    if scenario == "all" {
        // One process per scenario: VmHWM is a per-process high-water mark.
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        for name in all.iter().map(|s| s.name).chain(["knossos"]) {
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(["bench", "--scenario", name])
                .args(["--threads", &opts.threads.to_string()])
                .args([
                    "--time-limit",
                    &opts.time_limit.map_or(0.0, |t| t.as_secs_f64()).to_string(),
                ])
                .args(["--memory-mib", &(opts.memory_limit >> 20).to_string()])
                .arg("--corpus")
                .arg(corpus);
            if opts.fail_fast {
                cmd.arg("--fail-fast");
            }
            let status = cmd
                .status()
                .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
            if !status.success() {
                return Err(format!("scenario {name} failed: {status}"));
            }
        }
        return Ok(0);
    }
    let names: Vec<&str> = all.iter().map(|s| s.name).collect();
    let s = all.iter().find(|s| s.name == scenario).ok_or_else(|| {
        format!(
            "unknown scenario {scenario:?} ({}, knossos or all)",
            names.join(", ")
        )
    })?;
    let r = raft_checker::bench::run(s, opts);
    say!(
        "scenario {}: {}\n  {} events generated in {:.2} s; checked in {:.2} s; verdict {} ({}); {} memoised states; peak RSS {:.0} MiB",
        r.scenario, r.description, r.events, r.generate_s, r.check_s, r.verdict, r.keys, r.states, r.peak_rss_mib
    );
    Ok(0)
}
