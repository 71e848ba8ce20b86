//! The verdict: the one place where the driver calls the checker library on
//! the recorded history and has it write its outputs into the run folder.

use raft_checker::history::{Event, EventType};
use serde_json::json;
use std::path::Path;

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

/// Checks `events` and writes results.json (and, once the checker library
/// provides them, the plots and index.html) into `run_dir`.
pub fn judge(events: &[Event], run_dir: &Path) -> Verdict {
    // The checker library does not expose its search yet: until it does,
    // the driver says so instead of pretending to a verdict.
    let reason =
        "the checker library (raft_checker::check_history) is not linked into this build yet";
    let count = |k: EventType| {
        events
            .iter()
            .filter(|e| e.process.is_client() && e.kind == k)
            .count()
    };
    let results = json!({
        "valid": "unknown",
        "reason": reason,
        "counts": {
            "invoke": count(EventType::Invoke),
            "ok": count(EventType::Ok),
            "fail": count(EventType::Fail),
            "info": count(EventType::Info),
        },
    });
    let mut explanation = vec![reason.to_string()];
    if let Err(e) = std::fs::write(
        run_dir.join("results.json"),
        serde_json::to_vec_pretty(&results).unwrap_or_default(),
    ) {
        explanation.push(format!("could not write results.json: {e}"));
    }
    Verdict {
        validity: Validity::Unknown,
        explanation,
    }
}
