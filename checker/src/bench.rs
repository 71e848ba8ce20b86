//! The benchmark behind `raft-checker bench`: generated histories checked
//! in-process, reporting seconds and peak memory.

use crate::check::CheckOptions;
use crate::generate::{generate, GenOptions};
use crate::history_check::check_history;
use crate::register::RegisterKind;
use serde::Serialize;
use std::time::Instant;

/// A named benchmark workload.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name (`a`, `b`).
    pub name: &'static str,
    /// What it is, in words.
    pub description: &'static str,
    /// The history to generate.
    pub gen: GenOptions,
}

/// The history of the hard scenarios: 50 processes on 10 append keys,
/// reads returning the whole string so far, and crashes: every 250 ms the
/// cluster stalls for 100 ms, operations due then time out as info and
/// half of them take effect within 100 ms after it (in any order); 30% of
/// the rest end info too. Like the hardest file issue 15 names.
pub fn hard_appends(stale_keys: usize) -> GenOptions {
    GenOptions {
        ops: HARD_OPS,
        keys: 10,
        processes: 50,
        info_rate: 0.3,
        values: 5,
        cas: false,
        appends: true,
        seed: 3,
        late_info_ns: 100_000_000,
        stale_keys,
        crash_every_ns: 250_000_000,
        crash_ns: 100_000_000,
        read_fraction: 0.1,
        ..GenOptions::default()
    }
}

/// Operations in the hard scenarios.
pub const HARD_OPS: usize = 150_000;

/// The scenarios of issues 4 and 15.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "a",
            description: "1,000,000 operations over 1,000 keys, 50 processes, 5% info",
            gen: GenOptions {
                ops: 1_000_000,
                keys: 1000,
                processes: 50,
                info_rate: 0.05,
                values: 5,
                cas: true,
                appends: false,
                seed: 1,
                ..GenOptions::default()
            },
        },
        Scenario {
            name: "b",
            description: "one key, 20 processes, 10,000 operations, 5% info",
            gen: GenOptions {
                ops: 10_000,
                keys: 1,
                processes: 20,
                info_rate: 0.05,
                values: 5,
                cas: true,
                appends: false,
                seed: 2,
                ..GenOptions::default()
            },
        },
        Scenario {
            name: "c",
            description: "one append key, 30 processes, 300 operations (half appends), no info",
            gen: GenOptions {
                ops: 300,
                keys: 1,
                processes: 30,
                info_rate: 0.0,
                values: 1,
                cas: false,
                appends: true,
                seed: 3,
                ..GenOptions::default()
            },
        },
        Scenario {
            name: "hard-valid",
            description: "10 append keys, 50 processes, 150,000 operations, crashes (see hard_appends)",
            gen: hard_appends(0),
        },
        Scenario {
            name: "hard-invalid",
            description: "the same with one stale read on each of 6 keys",
            gen: hard_appends(6),
        },
        Scenario {
            name: "hard-register",
            description: "10 cas-register keys of 5 values, 50 processes, 50,000 operations, crashes, a stale read on 6 keys",
            gen: GenOptions {
                ops: 50_000,
                keys: 10,
                processes: 50,
                info_rate: 0.02,
                values: 5,
                cas: true,
                appends: false,
                seed: 2,
                late_info_ns: 100_000_000,
                stale_keys: 6,
                crash_every_ns: 300_000_000,
                crash_ns: 100_000_000,
                read_fraction: 0.5,
                ..GenOptions::default()
            },
        },
    ]
}

/// What one benchmark run measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Scenario name.
    pub scenario: String,
    /// Scenario description.
    pub description: String,
    /// Events generated.
    pub events: usize,
    /// Seconds to generate the history.
    pub generate_s: f64,
    /// Seconds to check it.
    pub check_s: f64,
    /// Peak resident memory of the whole process (VmHWM), MiB.
    pub peak_rss_mib: f64,
    /// The verdict.
    pub verdict: String,
    /// Keys by verdict, in words ("6 invalid, 4 valid").
    pub keys: String,
    /// Memoised states summed over keys.
    pub states: usize,
}

/// Peak resident set size of this process in MiB, from /proc/self/status.
pub fn peak_rss_mib() -> Option<f64> {
    crate::memory::peak_resident_bytes().map(|b| b as f64 / (1u64 << 20) as f64)
}

/// Generates and checks one scenario.
pub fn run(s: &Scenario, opts: &CheckOptions) -> BenchReport {
    let t0 = Instant::now();
    let events = generate(&s.gen);
    let generate_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let opts = CheckOptions {
        model: if s.gen.appends {
            RegisterKind::Kv
        } else if s.gen.cas {
            RegisterKind::CasRegister
        } else {
            RegisterKind::Register
        },
        initial_value: serde_json::Value::Null,
        ..opts.clone()
    };
    let (verdict, keys, states) = match check_history(&events, &opts) {
        Ok(r) => (
            r.valid.as_str().to_string(),
            format!(
                "{} invalid, {} valid, {} unknown, {} not checked",
                r.invalid_keys.len(),
                r.keys.len()
                    - r.invalid_keys.len()
                    - r.unknown_keys.len()
                    - r.not_checked_keys.len(),
                r.unknown_keys.len(),
                r.not_checked_keys.len()
            ),
            r.keys.iter().map(|k| k.states_explored).sum(),
        ),
        Err(e) => (format!("error: {e}"), String::new(), 0),
    };
    BenchReport {
        scenario: s.name.to_string(),
        description: s.description.to_string(),
        events: events.len(),
        generate_s,
        check_s: t1.elapsed().as_secs_f64(),
        peak_rss_mib: peak_rss_mib().unwrap_or(f64::NAN),
        verdict,
        keys,
        states,
    }
}

/// What checking the whole Knossos corpus measured.
#[derive(Debug, Clone, Serialize)]
pub struct CorpusReport {
    /// Files checked.
    pub files: usize,
    /// Files whose verdict matched their folder (good/ valid, bad/ invalid).
    pub as_expected: usize,
    /// Seconds to read and check them all, one after the other.
    pub seconds: f64,
}

/// Reads and checks every EDN file under `dir/good` and `dir/bad` with the
/// Knossos settings (cas register, initial value 0, nil reads unknown).
pub fn run_corpus(dir: &std::path::Path, threads: usize) -> Result<CorpusReport, String> {
    let started = Instant::now();
    let mut report = CorpusReport {
        files: 0,
        as_expected: 0,
        seconds: 0.0,
    };
    for (sub, want) in [
        ("good", crate::Validity::Valid),
        ("bad", crate::Validity::Invalid),
    ] {
        let folder = dir.join(sub);
        let entries =
            std::fs::read_dir(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.extension().is_none_or(|x| x != "edn") {
                continue;
            }
            let h = crate::jepsen::read_edn_file(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let opts = CheckOptions {
                model: RegisterKind::CasRegister,
                initial_value: serde_json::json!(0),
                null_read_is_unknown: true,
                threads,
                ..CheckOptions::default()
            };
            let r =
                check_history(&h.events, &opts).map_err(|e| format!("{}: {e}", path.display()))?;
            report.files += 1;
            if r.valid == want {
                report.as_expected += 1;
            }
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
