//! One verdict from composed checkers (Jepsen's `checker/compose`).
//!
//! Linearizability per key is the main checker ([`crate::check`]); beside
//! it, smaller checkers look at the rest of what a run left behind: whether
//! the history is complete ([`completeness`]), whether the cluster served
//! again after the final heal ([`recovery`]), whether its replicas then
//! reached one point with one state ([`convergence`]), what the nodes
//! reported about themselves ([`election_safety`], [`node_invariants`]), and the latency
//! statistics ([`latency`]). Each returns a [`CheckerResult`]; [`compose`]
//! folds them into one [`RunResult`] — invalid if any checker found a
//! violation, else unknown if any could not decide, else valid — which is
//! computed once and written once (`results.json`, the page).
//!
//! The same function judges a run when the driver ends it and when
//! `raft-checker check RUN_DIR` re-checks the folder ([`run`]), so that the
//! two agree by construction.

pub mod completeness;
pub mod convergence;
pub mod election_safety;
pub mod latency;
pub mod node_events;
pub mod node_invariants;
pub mod recovery;
pub mod run;

use crate::check::{CheckResult, Validity};
use crate::compact::CompactHistory;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::path::Path;

/// What the checkers look at.
#[derive(Debug, Clone, Copy)]
pub struct RunInput<'a> {
    /// The history, held compactly (strictly paired when it came from
    /// the check).
    pub history: &'a CompactHistory,
    /// Why the history file ended early (a truncated last line), if it did.
    pub truncated: Option<&'a str>,
    /// The run folder, when the history came from one.
    pub dir: Option<&'a Path>,
}

/// A checker beside linearizability: looks at a run and says valid,
/// invalid or unknown, with its reasons as data.
pub trait Checker: Send + Sync {
    /// Its name in results.json (`checkers.<name>`), kebab-case.
    fn name(&self) -> &'static str;
    /// Its verdict on `input`.
    fn check(&self, input: &RunInput) -> CheckerResult;
}

/// One checker's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckerResult {
    /// The checker's name.
    pub name: String,
    /// Its verdict.
    pub valid: Validity,
    /// One sentence for people.
    pub summary: String,
    /// What it found, as data (a JSON object).
    #[serde(default)]
    pub details: Value,
}

impl CheckerResult {
    /// A result with no details.
    pub fn new(name: &str, valid: Validity, summary: impl Into<String>) -> Self {
        CheckerResult {
            name: name.to_string(),
            valid,
            summary: summary.into(),
            details: json!({}),
        }
    }

    /// The same result carrying `details`.
    pub fn with(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// The composed verdict of a run: what results.json holds.
///
/// In JSON, `valid`, `summary`, `reasons` and `checkers` (name to
/// `{valid, summary, ...details}`) come first; the linearizability
/// checker's fields (`model`, `op_count`, `counts`, `invalid_keys`,
/// `explanations`, `keys`, `latency`, ...) sit at the top level as they
/// always did, its own `valid` and `summary` under
/// `checkers.linearizability`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// The composed verdict.
    pub valid: Validity,
    /// The verdict in one sentence.
    pub summary: String,
    /// Why the run is not valid: one line per checker that is not (also
    /// joined into one `reason` string in JSON).
    pub reasons: Vec<String>,
    /// Every checker's verdict (linearizability first when it ran).
    pub checkers: Vec<CheckerResult>,
    /// The linearizability checker's full result, when it ran.
    pub linearizability: Option<CheckResult>,
}

/// The linearizability checker's name.
pub const LINEARIZABILITY: &str = "linearizability";

/// Folds the checkers' verdicts into one.
pub fn compose(lin: Option<CheckResult>, others: Vec<CheckerResult>) -> RunResult {
    let mut checkers = Vec::new();
    if let Some(l) = &lin {
        checkers.push(CheckerResult::new(
            LINEARIZABILITY,
            l.valid,
            l.summary.clone(),
        ));
    }
    checkers.extend(others);
    let valid = fold(checkers.iter().map(|c| c.valid));
    let reasons: Vec<String> = checkers
        .iter()
        .filter(|c| c.valid != Validity::Valid)
        .map(|c| format!("{}: {}", c.name, c.summary))
        .collect();
    let summary = match valid {
        Validity::Valid => match &lin {
            Some(l) => format!("{} ({} checkers valid)", l.summary, checkers.len()),
            None => format!("valid ({} checkers)", checkers.len()),
        },
        Validity::Invalid => {
            let bad: Vec<&str> = checkers
                .iter()
                .filter(|c| c.valid == Validity::Invalid)
                .map(|c| c.name.as_str())
                .collect();
            format!(
                "INVALID by {}: {}",
                bad.join(", "),
                first_reason(&checkers, Validity::Invalid)
            )
        }
        Validity::Unknown => format!("unknown: {}", first_reason(&checkers, Validity::Unknown)),
    };
    RunResult {
        valid,
        summary,
        reasons,
        checkers,
        linearizability: lin,
    }
}

/// The verdict of a run that ended without a history to check (the cluster
/// never became available, a bad start): unknown, with `reason`.
pub fn no_verdict(reason: &str) -> RunResult {
    compose(
        None,
        vec![CheckerResult::new(
            "run",
            Validity::Unknown,
            format!("no verdict: {reason}"),
        )],
    )
}

fn first_reason(checkers: &[CheckerResult], v: Validity) -> String {
    checkers
        .iter()
        .find(|c| c.valid == v)
        .map(|c| format!("{}: {}", c.name, c.summary))
        .unwrap_or_default()
}

/// Invalid beats unknown beats valid.
pub fn fold(vs: impl IntoIterator<Item = Validity>) -> Validity {
    let mut out = Validity::Valid;
    for v in vs {
        match v {
            Validity::Invalid => return Validity::Invalid,
            Validity::Unknown => out = Validity::Unknown,
            Validity::Valid => {}
        }
    }
    out
}

impl RunResult {
    /// One checker's verdict, by name.
    pub fn checker(&self, name: &str) -> Option<&CheckerResult> {
        self.checkers.iter().find(|c| c.name == name)
    }

    /// The process exit code: 0 valid, 1 invalid, 3 unknown.
    pub fn exit_code(&self) -> i32 {
        self.valid.exit_code()
    }

    /// results.json as a JSON value.
    pub fn to_json(&self) -> Value {
        let mut top = Map::new();
        top.insert("valid".into(), json!(self.valid));
        top.insert("summary".into(), json!(self.summary));
        top.insert("reasons".into(), json!(self.reasons));
        if !self.reasons.is_empty() {
            // One line for readers of the older layout, which had `reason`.
            top.insert("reason".into(), json!(self.reasons.join("; ")));
        }
        let mut checkers = Map::new();
        for c in &self.checkers {
            let mut o = Map::new();
            o.insert("valid".into(), json!(c.valid));
            o.insert("summary".into(), json!(c.summary));
            if let Value::Object(d) = &c.details {
                for (k, v) in d {
                    o.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            checkers.insert(c.name.clone(), Value::Object(o));
        }
        top.insert("checkers".into(), Value::Object(checkers));
        if let Some(l) = &self.linearizability {
            if let Ok(Value::Object(m)) = serde_json::to_value(l) {
                for (k, v) in m {
                    if k != "valid" && k != "summary" {
                        top.insert(k, v);
                    }
                }
            }
        }
        Value::Object(top)
    }

    /// Reads results.json back (this layout, or the older one that was the
    /// linearizability result alone, perhaps with `election_safety`).
    pub fn from_json(v: &Value) -> Result<RunResult, String> {
        let obj = v.as_object().ok_or("results.json is not a JSON object")?;
        let valid: Validity =
            serde_json::from_value(obj.get("valid").cloned().unwrap_or(Value::Null))
                .map_err(|e| format!("results.json \"valid\": {e}"))?;
        let summary = obj
            .get("summary")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let Some(Value::Object(named)) = obj.get("checkers") else {
            return Ok(Self::from_older_json(obj, valid, summary));
        };
        let mut checkers = Vec::new();
        for (name, c) in named {
            let mut d = c.as_object().cloned().unwrap_or_default();
            let cv: Validity = serde_json::from_value(d.remove("valid").unwrap_or(Value::Null))
                .map_err(|e| format!("results.json checkers.{name}.valid: {e}"))?;
            let cs = d
                .remove("summary")
                .and_then(|s| s.as_str().map(str::to_string))
                .unwrap_or_default();
            checkers.push(CheckerResult {
                name: name.clone(),
                valid: cv,
                summary: cs,
                details: Value::Object(d),
            });
        }
        // Linearizability first, as `compose` orders them.
        checkers.sort_by_key(|c| c.name != LINEARIZABILITY);
        let linearizability = checkers
            .iter()
            .find(|c| c.name == LINEARIZABILITY)
            .and_then(|c| {
                let mut m = obj.clone();
                m.insert("valid".into(), json!(c.valid));
                m.insert("summary".into(), json!(c.summary));
                serde_json::from_value::<CheckResult>(Value::Object(m)).ok()
            });
        let reasons = obj
            .get("reasons")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(RunResult {
            valid,
            summary,
            reasons,
            checkers,
            linearizability,
        })
    }

    fn from_older_json(obj: &Map<String, Value>, valid: Validity, summary: String) -> RunResult {
        let linearizability =
            serde_json::from_value::<CheckResult>(Value::Object(obj.clone())).ok();
        let mut checkers = Vec::new();
        if let Some(l) = &linearizability {
            checkers.push(CheckerResult::new(
                LINEARIZABILITY,
                l.valid,
                l.summary.clone(),
            ));
        }
        if let Some(es) = obj.get("election_safety") {
            let ok = es.get("valid").and_then(Value::as_bool).unwrap_or(true);
            let why = obj
                .get("election_safety_reason")
                .and_then(Value::as_str)
                .unwrap_or("one leader per term");
            checkers.push(
                CheckerResult::new(
                    "election-safety",
                    if ok {
                        Validity::Valid
                    } else {
                        Validity::Invalid
                    },
                    why,
                )
                .with(es.clone()),
            );
        }
        if linearizability.is_none() {
            let reason = obj
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or(&summary)
                .to_string();
            checkers.push(CheckerResult::new("run", valid, reason));
        }
        let reasons = checkers
            .iter()
            .filter(|c| c.valid != Validity::Valid)
            .map(|c| format!("{}: {}", c.name, c.summary))
            .collect();
        RunResult {
            valid,
            summary,
            reasons,
            checkers,
            linearizability,
        }
    }

    /// Reads a results.json file.
    pub fn read(path: &Path) -> Result<RunResult, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
        Self::from_json(&v).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The verdict and what each checker found, in words (the
    /// linearizability details come from [`crate::verdict_text::text_report`]).
    pub fn text(&self) -> String {
        let mut s = String::new();
        for c in self.checkers.iter().filter(|c| c.name != LINEARIZABILITY) {
            s.push_str(&format!(
                "{}: {} ({})\n",
                c.name,
                c.valid.as_str(),
                one_line(&c.summary)
            ));
        }
        if let Some(l) = &self.linearizability {
            let lin = crate::verdict_text::text_report(l);
            // The composed verdict line below replaces the checker's own.
            for line in lin.lines().filter(|l| !l.starts_with("verdict:")) {
                s.push_str(line);
                s.push('\n');
            }
        }
        s.push_str(&format!("{}\n", one_line(&self.summary)));
        s
    }
}

/// A summary as one terminal line: quoted values cut short, the whole line
/// bounded (results.json keeps the full text).
fn one_line(summary: &str) -> String {
    use crate::verdict_text::{shorten, shorten_quoted};
    shorten(&shorten_quoted(summary, 60), 300)
}

impl Validity {
    /// The word summaries and tables use: `valid`, `INVALID`, `unknown` (a
    /// violation stands out).
    pub fn table_word(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Invalid => "INVALID",
            Validity::Unknown => "unknown",
        }
    }

    /// Parses `valid`, `invalid` or `unknown` (any case), or results.json's
    /// `true` / `false` / `"unknown"`.
    pub fn from_word(v: &Value) -> Option<Validity> {
        match v {
            Value::Bool(true) => Some(Validity::Valid),
            Value::Bool(false) => Some(Validity::Invalid),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "valid" => Some(Validity::Valid),
                "invalid" => Some(Validity::Invalid),
                "unknown" => Some(Validity::Unknown),
                _ => None,
            },
            _ => None,
        }
    }
}

/// serde for a [`Validity`] written as a word (`"valid"`, `"invalid"`,
/// `"unknown"`), as campaign summaries do: `#[serde(with = "...")]`.
pub mod validity_word {
    use crate::check::Validity;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the word.
    pub fn serialize<S: Serializer>(v: &Validity, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_str())
    }

    /// Reads a word (or results.json's true / false / "unknown").
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Validity, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Validity::from_word(&v).ok_or_else(|| {
            serde::de::Error::custom(format!("expected valid, invalid or unknown, found {v}"))
        })
    }
}

impl Serialize for RunResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for RunResult {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        RunResult::from_json(&v).map_err(serde::de::Error::custom)
    }
}

/// Values for a summary line: `1, 2, 3`.
fn join<T: std::fmt::Display>(vs: &[T]) -> String {
    vs.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A checker's verdict on a history that holds only the driver's
/// end-of-run record with `value` (the checkers that read that record).
#[cfg(test)]
fn check_end_of_run(checker: &dyn Checker, value: Value) -> CheckerResult {
    use crate::compact::Pairing;
    use crate::history::{Event, EventType, Process};
    let events = vec![Event {
        index: 0,
        time: 0,
        process: Process::Named(completeness::DRIVER.into()),
        kind: EventType::Info,
        f: completeness::END_OF_RUN.into(),
        key: None,
        value,
        error: None,
    }];
    let history = CompactHistory::from_events(&events, Pairing::Strict).unwrap();
    checker.check(&RunInput {
        history: &history,
        truncated: None,
        dir: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, v: Validity) -> CheckerResult {
        CheckerResult::new(name, v, format!("{name} says {}", v.as_str()))
    }

    #[test]
    fn invalid_beats_unknown_beats_valid() {
        assert_eq!(
            fold([Validity::Valid, Validity::Unknown]),
            Validity::Unknown
        );
        assert_eq!(
            fold([Validity::Unknown, Validity::Invalid, Validity::Valid]),
            Validity::Invalid
        );
        assert_eq!(fold([]), Validity::Valid);
    }

    #[test]
    fn one_invalid_checker_makes_the_run_invalid_and_names_itself() {
        let r = compose(
            None,
            vec![
                c("completeness", Validity::Valid),
                c("election-safety", Validity::Invalid),
            ],
        );
        assert_eq!(r.valid, Validity::Invalid);
        assert!(r.summary.contains("election-safety"), "{}", r.summary);
        assert_eq!(r.reasons.len(), 1);
        assert_eq!(r.exit_code(), 1);
    }

    #[test]
    fn results_json_round_trips_with_the_checkers_and_linearizability_fields() {
        let r = compose(
            None,
            vec![c("completeness", Validity::Unknown).with(json!({"end_of_run": false}))],
        );
        let v = r.to_json();
        assert_eq!(v["valid"], json!("unknown"));
        assert_eq!(v["checkers"]["completeness"]["end_of_run"], json!(false));
        let back = RunResult::from_json(&v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn an_older_results_json_reads_as_linearizability_and_election_safety() {
        let v = json!({"valid": "unknown", "reason": "the cluster never became available", "summary": "no verdict"});
        let r = RunResult::from_json(&v).unwrap();
        assert_eq!(r.valid, Validity::Unknown);
        assert_eq!(r.checkers[0].name, "run");
        assert!(r.checkers[0].summary.contains("never became available"));
    }
}
