//! History events: the JSON-lines file between the driver and the checker.
//!
//! One event per line, in the order they happened; field names follow
//! Jepsen (`process`, `type`, `f`, `value`) so its users feel at home.

use serde::{Deserialize, Serialize};
use std::io::Write;

/// Who issued an event: a client process number, or a named actor such as
/// `"nemesis"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    /// A client process number.
    Client(u64),
    /// A named actor, such as the nemesis.
    Named(String),
}

impl Process {
    /// The nemesis, as Jepsen names it.
    pub fn nemesis() -> Self {
        Process::Named("nemesis".to_string())
    }
    /// Whether this is a client process (not the nemesis).
    pub fn is_client(&self) -> bool {
        matches!(self, Process::Client(_))
    }
}

/// `invoke` starts an operation; `ok` means it happened, `fail` that it
/// certainly did not, `info` that it may or may not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// An operation starts.
    Invoke,
    /// It happened.
    Ok,
    /// It certainly did not happen.
    Fail,
    /// It may or may not have happened (a timeout, a crash).
    Info,
}

/// One line of a history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history, from 0.
    pub index: u64,
    /// Nanoseconds since the test began.
    pub time: u64,
    /// Who issued it.
    pub process: Process,
    /// invoke, ok, fail or info.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The operation's function: read, write, cas, append, or a fault name.
    pub f: String,
    /// The key, for key-value histories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The operation's argument or result (null when unknown or absent).
    #[serde(default)]
    pub value: serde_json::Value,
    /// Why an operation failed or is uncertain (free text, for people).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Writes events as JSON lines, flushing each one so that a crash of the
/// writer still leaves a checkable prefix.
pub struct HistoryWriter<W: Write> {
    out: W,
    next_index: u64,
}

impl HistoryWriter<std::io::BufWriter<std::fs::File>> {
    /// Creates (or truncates) a history file.
    pub fn create(path: &std::path::Path) -> std::io::Result<Self> {
        let f = std::fs::File::create(path)?;
        Ok(HistoryWriter::new(std::io::BufWriter::new(f)))
    }
}

impl<W: Write> HistoryWriter<W> {
    /// A writer whose first event gets index 0.
    pub fn new(out: W) -> Self {
        HistoryWriter { out, next_index: 0 }
    }

    /// Assigns the next index to `event`, writes it and flushes.
    pub fn write(&mut self, mut event: Event) -> std::io::Result<Event> {
        event.index = self.next_index;
        self.next_index += 1;
        serde_json::to_writer(&mut self.out, &event)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(event)
    }
}

impl Event {
    /// Whether this event belongs to a client operation (not the nemesis).
    pub fn is_client(&self) -> bool {
        self.process.is_client()
    }
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Process::Client(n) => write!(f, "{n}"),
            Process::Named(s) => write!(f, "{s}"),
        }
    }
}

impl EventType {
    /// The lowercase name used in history files (`invoke`, `ok`, `fail`, `info`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

/// Where an event came from in its source file, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourcePos {
    /// A line of a JSON-lines file (1-based).
    Line(usize),
    /// The n-th form (0-based) of an EDN history, and the line it starts on.
    Form {
        /// Position of the form in the history (from 0).
        index: usize,
        /// The line it starts on (1-based).
        line: usize,
    },
}

impl std::fmt::Display for SourcePos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourcePos::Line(l) => write!(f, "line {l}"),
            SourcePos::Form { index, line } => write!(f, "form {index} (line {line})"),
        }
    }
}

/// A history read from a file: its events and where each one came from.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The events in file order.
    pub events: Vec<Event>,
    /// `positions[i]` locates `events[i]` in the source file.
    pub positions: Vec<SourcePos>,
}

impl History {
    /// Where event number `i` (its position in `events`) came from.
    pub fn position(&self, i: usize) -> Option<SourcePos> {
        self.positions.get(i).copied()
    }
}

/// Reads a JSON-lines history as a stream; blank lines are skipped.
///
/// The error names the line and what is wrong with it.
pub fn read_jsonl<R: std::io::BufRead>(input: R) -> Result<History, crate::HistoryError> {
    let mut history = History::default();
    for (i, line) in input.lines().enumerate() {
        let lineno = i + 1;
        let line = line.map_err(|e| {
            crate::HistoryError::at(SourcePos::Line(lineno), format!("cannot read: {e}"))
        })?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let event: Event = serde_json::from_str(text).map_err(|e| {
            crate::HistoryError::at(SourcePos::Line(lineno), format!("not a history event: {e}"))
        })?;
        history.events.push(event);
        history.positions.push(SourcePos::Line(lineno));
    }
    Ok(history)
}

/// Reads a JSON-lines history file.
pub fn read_jsonl_file(path: &std::path::Path) -> Result<History, crate::HistoryError> {
    let f = std::fs::File::open(path).map_err(|e| {
        crate::HistoryError::general(format!("cannot open {}: {e}", path.display()))
    })?;
    read_jsonl(std::io::BufReader::new(f))
}
