//! Finding and reading a history: a JSON-lines file, an EDN file, or a run
//! folder holding history.jsonl; any of them may be zstd-compressed
//! (`.zst`, see [`crate::compressed`]), as the driver leaves checked runs.

use crate::compressed;
use crate::history::{read_jsonl_file, History};
use crate::jepsen::{read_edn, read_edn_file};
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
    /// Guesses from the file name: `.edn` is EDN, anything else JSON lines
    /// (a `.zst` suffix is looked through: `h.edn.zst` is EDN).
    pub fn guess(path: &Path) -> Format {
        match compressed::inner_name(path)
            .extension()
            .and_then(|e| e.to_str())
        {
            Some("edn") => Format::Edn,
            _ => Format::Jsonl,
        }
    }
}

/// Where the history file is: `path` itself, or `path/history.jsonl` when
/// `path` is a run folder (`history.jsonl.zst` when only that exists).
pub fn history_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        compressed::existing(&path.join("history.jsonl"))
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
    let format = format.unwrap_or_else(|| Format::guess(&file));
    if !compressed::is_compressed(&file) {
        return match format {
            Format::Jsonl => read_jsonl_file(&file),
            Format::Edn => read_edn_file(&file),
        };
    }
    let bytes = compressed::read_all(&file)
        .map_err(|e| HistoryError::general(format!("cannot read {}: {e}", file.display())))?;
    match format {
        Format::Jsonl => crate::history::read_jsonl(&bytes[..]),
        Format::Edn => read_edn(&String::from_utf8_lossy(&bytes)),
    }
}

/// Reads a history like [`read_history`], except that a JSON-lines file
/// whose last line is torn (no newline after it, and not a whole event: the
/// writer was cut off mid-line by a crash or a full disk) is read without
/// that line, and the reason is returned beside it. Any other bad line is
/// still an error naming its line. A compressed history cut off mid-stream
/// (a truncated or corrupt `.zst`) is read likewise up to where decoding
/// stopped, with the decoder's complaint as the reason.
pub fn read_history_tolerant(
    path: &Path,
    format: Option<Format>,
) -> Result<(History, Option<String>), HistoryError> {
    let file = history_path(path);
    if format.unwrap_or_else(|| Format::guess(&file)) == Format::Edn {
        return read_history(path, format).map(|h| (h, None));
    }
    let (bytes, cut) = compressed::read_prefix(&file)
        .map_err(|e| HistoryError::general(format!("cannot open {}: {e}", file.display())))?;
    let (whole, tail) = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => (&bytes[..=i], &bytes[i + 1..]),
        None => (&bytes[..0], &bytes[..]),
    };
    let mut history = crate::history::read_jsonl(whole)?;
    if let Some(e) = cut {
        // Whatever the last decoded line looks like, the file ends early.
        let lines = whole.iter().filter(|&&b| b == b'\n').count();
        return Ok((history, Some(format!("{e}; read its first {lines} lines"))));
    }
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
