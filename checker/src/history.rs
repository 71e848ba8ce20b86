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
    Client(u64),
    Named(String),
}

impl Process {
    pub fn nemesis() -> Self {
        Process::Named("nemesis".to_string())
    }
    pub fn is_client(&self) -> bool {
        matches!(self, Process::Client(_))
    }
}

/// `invoke` starts an operation; `ok` means it happened, `fail` that it
/// certainly did not, `info` that it may or may not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// One line of a history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub index: u64,
    /// Nanoseconds since the test began.
    pub time: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
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
    pub fn create(path: &std::path::Path) -> std::io::Result<Self> {
        let f = std::fs::File::create(path)?;
        Ok(HistoryWriter::new(std::io::BufWriter::new(f)))
    }
}

impl<W: Write> HistoryWriter<W> {
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
