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

/// Reads a history like [`read_history`], except that a JSON-lines file
/// whose last line is torn (no newline after it, and not a whole event: the
/// writer was cut off mid-line by a crash or a full disk) is read without
/// that line, and the reason is returned beside it. Any other bad line is
/// still an error naming its line.
pub fn read_history_tolerant(
    path: &Path,
    format: Option<Format>,
) -> Result<(History, Option<String>), HistoryError> {
    let file = history_path(path);
    if format.unwrap_or_else(|| Format::guess(&file)) == Format::Edn {
        return read_history(path, format).map(|h| (h, None));
    }
    let bytes = std::fs::read(&file)
        .map_err(|e| HistoryError::general(format!("cannot open {}: {e}", file.display())))?;
    let (whole, tail) = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => (&bytes[..=i], &bytes[i + 1..]),
        None => (&bytes[..0], &bytes[..]),
    };
    let mut history = crate::history::read_jsonl(whole)?;
    let tail_text = String::from_utf8_lossy(tail);
    if tail_text.trim().is_empty() {
        return Ok((history, None));
    }
    let line = whole.iter().filter(|&&b| b == b'\n').count() + 1;
    match serde_json::from_str::<crate::history::Event>(tail_text.trim()) {
        // A last line without its newline that is whole is kept.
        Ok(e) => {
            history.events.push(e);
            history
                .positions
                .push(crate::history::SourcePos::Line(line));
            Ok((history, None))
        }
        Err(e) => Ok((
            history,
            Some(format!(
                "line {line} is cut off after {} bytes: {e}",
                tail.len()
            )),
        )),
    }
}
