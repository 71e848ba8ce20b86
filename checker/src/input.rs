//! Finding and reading a history: a JSON-lines file, an EDN file, or a run
//! folder holding history.jsonl.

use crate::history::{read_jsonl_file, History};
use crate::jepsen::read_edn_file;
use crate::HistoryError;
use std::path::{Path, PathBuf};

/// The file format of a history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON lines, as the driver writes.
    Jsonl,
    /// Jepsen EDN.
    Edn,
}

impl Format {
    /// Guesses from the file name: `.edn` is EDN, anything else JSON lines.
    pub fn guess(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("edn") => Format::Edn,
            _ => Format::Jsonl,
        }
    }
}

/// Where the history file is: `path` itself, or `path/history.jsonl` when
/// `path` is a run folder.
pub fn history_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("history.jsonl")
    } else {
        path.to_path_buf()
    }
}

/// Reads a history file or run folder in `format` (guessed when `None`).
pub fn read_history(path: &Path, format: Option<Format>) -> Result<History, HistoryError> {
    let file = history_path(path);
    if !file.exists() {
        return Err(HistoryError::general(format!(
            "{}: no such file",
            file.display()
        )));
    }
    match format.unwrap_or_else(|| Format::guess(&file)) {
        Format::Jsonl => read_jsonl_file(&file),
        Format::Edn => read_edn_file(&file),
    }
}
