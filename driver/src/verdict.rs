//! The verdict: the one place where the driver calls the checker library on
//! the recorded history and has it write its outputs into the run folder.

use raft_checker::history::Event;
use raft_checker::{check_history, report, CheckOptions};
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

/// Whether the history is linearizable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Linearizable.
    Valid,
    /// A violation was found.
    Invalid,
    /// The checker could not decide.
    Unknown,
}

impl Validity {
    /// The process exit code of DESIGN.md: 0 valid, 1 invalid, 3 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 3,
        }
    }

    /// The word printed on stdout.
    pub fn word(self) -> &'static str {
        match self {
            Validity::Valid => "VALID",
            Validity::Invalid => "INVALID",
            Validity::Unknown => "UNKNOWN",
        }
    }
}

/// The checker's answer, reduced to what the driver prints.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Valid, invalid or unknown.
    pub validity: Validity,
    /// Lines for people: why, and where to look.
    pub explanation: Vec<String>,
}

/// Checks `events` (giving up after `time_limit`: undecided keys are
/// "unknown") and writes results.json, the plots and index.html into
/// `run_dir`.
pub fn judge(events: &[Event], run_dir: &Path, time_limit: Duration) -> Verdict {
    let opts = CheckOptions {
        time_limit: Some(time_limit),
        progress: std::io::stderr().is_terminal(),
        ..CheckOptions::default()
    };
    match check_history(events, &opts) {
        Ok(result) => {
            let mut explanation: Vec<String> = report::text_report(&result)
                .lines()
                .filter(|l| !l.starts_with("verdict:"))
                .map(str::to_string)
                .collect();
            if let Err(e) = report::write_run_outputs(run_dir, events, &result) {
                explanation.push(format!("could not write the report: {e}"));
            }
            Verdict {
                validity: match result.valid {
                    raft_checker::Validity::Valid => Validity::Valid,
                    raft_checker::Validity::Invalid => Validity::Invalid,
                    raft_checker::Validity::Unknown => Validity::Unknown,
                },
                explanation,
            }
        }
        // The driver wrote this history, so a malformed one is a driver bug;
        // say so rather than guess a verdict.
        Err(e) => Verdict {
            validity: Validity::Unknown,
            explanation: vec![format!("the checker refused the history: {e}")],
        },
    }
}
