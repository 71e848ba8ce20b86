//! Judging a run: load what it left (the history, test.json's list of
//! checkers, the node events), run the composed checkers, and write the
//! verdict once. `raft-driver run` ends with this on its own folder and
//! `raft-checker check RUN_DIR` repeats it, so the two agree.

use super::completeness::Completeness;
use super::convergence::Convergence;
use super::election_safety::ElectionSafety;
use super::latency::Latency;
use super::node_events;
use super::node_invariants::NodeInvariants;
use super::recovery::Recovery;
use super::{compose, Checker, CheckerResult, RunInput, RunResult};
use crate::check::{CheckOptions, Validity};
use crate::compact::{CompactHistory, Pairing};
use crate::history::History;
use crate::history_check::check_compact;
use crate::input::{history_path, read_history, read_history_tolerant, Format};
use crate::stream::read_jsonl_compact;
use crate::HistoryError;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A history ready to judge, and where it came from.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The history (a torn last line left out).
    pub history: History,
    /// Why the history file ended early, if it did.
    pub truncated: Option<String>,
    /// The run folder, when the history came from one.
    pub dir: Option<PathBuf>,
    /// The checkers the run asked for beyond the standard ones (test.json
    /// `checkers`, or inferred from what an older folder holds).
    pub extra_checkers: Vec<String>,
}

/// Reads a run folder (history.jsonl, test.json, node events) or a bare
/// history file.
pub fn load(path: &Path, format: Option<Format>) -> Result<Loaded, HistoryError> {
    let (history, truncated) = read_history_tolerant(path, format)?;
    let dir = path.is_dir().then(|| path.to_path_buf());
    let extra_checkers = match &dir {
        Some(d) => run_checkers(d),
        None => Vec::new(),
    };
    Ok(Loaded {
        history,
        truncated,
        dir,
        extra_checkers,
    })
}

/// A history ready to judge, held compactly ([`crate::compact`]): what
/// `raft-checker check` reads, a line at a time, so that its memory stays
/// small however long the run.
#[derive(Debug)]
pub struct CompactLoaded {
    /// The history (a torn last line left out), or why it is malformed
    /// (reported when it is judged, as [`judge`] does).
    pub history: Result<CompactHistory, HistoryError>,
    /// Why the history file ended early, if it did.
    pub truncated: Option<String>,
    /// The run folder, when the history came from one.
    pub dir: Option<PathBuf>,
    /// The checkers the run asked for beyond the standard ones.
    pub extra_checkers: Vec<String>,
}

/// [`load`], into a compact history: a JSON-lines history is streamed
/// (never held whole, as text or as events); an EDN one is read whole and
/// converted.
pub fn load_compact(path: &Path, format: Option<Format>) -> Result<CompactLoaded, HistoryError> {
    let file = history_path(path);
    let (history, truncated) = if format.unwrap_or_else(|| Format::guess(&file)) == Format::Edn {
        let h = read_history(path, format)?;
        (CompactHistory::from_history(&h, Pairing::Strict), None)
    } else {
        let s = read_jsonl_compact(&file, Pairing::Strict)?;
        (s.history, s.truncated)
    };
    let dir = path.is_dir().then(|| path.to_path_buf());
    let extra_checkers = match &dir {
        Some(d) => run_checkers(d),
        None => Vec::new(),
    };
    Ok(CompactLoaded {
        history,
        truncated,
        dir,
        extra_checkers,
    })
}

/// The extra checkers of the run in `dir`: test.json's `checkers`, or for a
/// folder older than that field, what its node reports allow.
pub fn run_checkers(dir: &Path) -> Vec<String> {
    let test: Option<Value> = std::fs::read(dir.join("test.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(list) = test
        .as_ref()
        .and_then(|t| t.get("checkers"))
        .and_then(Value::as_array)
    {
        return list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
    }
    if node_events::read(dir).is_some() {
        vec!["election-safety".into(), "node-invariants".into()]
    } else if node_events::leader_terms_from_logs(dir)
        .is_some_and(|t| t.values().any(|v| !v.is_empty()))
    {
        vec!["election-safety".into()]
    } else {
        Vec::new()
    }
}

/// The checker named `name`, or None for a name this build does not know.
pub fn checker_named(name: &str) -> Option<Box<dyn Checker>> {
    match name {
        "election-safety" => Some(Box::new(ElectionSafety)),
        "node-invariants" => Some(Box::new(NodeInvariants)),
        "completeness" => Some(Box::new(Completeness)),
        "recovery" => Some(Box::new(Recovery)),
        "convergence" => Some(Box::new(Convergence)),
        "latency" => Some(Box::new(Latency)),
        _ => None,
    }
}

/// Runs every checker on `loaded` and composes the verdict. Errors only for
/// a malformed history (which names the line).
pub fn judge(loaded: &Loaded, opts: &CheckOptions) -> Result<RunResult, HistoryError> {
    let history = CompactHistory::from_history(&loaded.history, Pairing::Strict)?;
    judge_history(
        &history,
        loaded.truncated.as_deref(),
        loaded.dir.as_deref(),
        &loaded.extra_checkers,
        opts,
    )
}

/// [`judge`] of a history loaded by [`load_compact`].
pub fn judge_compact(
    loaded: &CompactLoaded,
    opts: &CheckOptions,
) -> Result<RunResult, HistoryError> {
    let history = loaded.history.as_ref().map_err(Clone::clone)?;
    judge_history(
        history,
        loaded.truncated.as_deref(),
        loaded.dir.as_deref(),
        &loaded.extra_checkers,
        opts,
    )
}

fn judge_history(
    history: &CompactHistory,
    truncated: Option<&str>,
    dir: Option<&Path>,
    extra_checkers: &[String],
    opts: &CheckOptions,
) -> Result<RunResult, HistoryError> {
    let lin = check_compact(history, opts).map_err(|e| history.locate(e))?;
    let input = RunInput {
        history,
        truncated,
        dir,
    };
    let mut names: Vec<String> = vec!["completeness".into()];
    if history.facts().driver_history {
        names.push("recovery".into());
    }
    for n in extra_checkers {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    names.push("latency".into());
    let others = names
        .iter()
        .map(|n| match checker_named(n) {
            Some(c) => c.check(&input),
            None => CheckerResult::new(
                n,
                Validity::Unknown,
                format!("this raft-checker does not know the checker {n:?} the run asked for"),
            ),
        })
        .collect();
    Ok(compose(Some(lin), others))
}
