//! Reading a JSON-lines history as a stream, straight into a
//! [`CompactHistory`]: one line in memory at a time instead of the whole
//! file (plain or zstd), its parsed events and their operations.
//!
//! The rules are [`crate::input::read_history_tolerant`]'s, to the word: a
//! bad line is an error naming it, except a torn last line (no newline
//! after it, and not a whole event), which is left out with the reason;
//! a compressed stream cut off mid-way is read up to where decoding
//! stopped. A pairing error (strict) is kept until the whole file has been
//! read, so that a bad line later in the file is still the error reported,
//! as when the file was parsed first and paired after.

use crate::compact::{Builder, CompactHistory, Pairing};
use crate::compressed;
use crate::history::{Event, SourcePos};
use crate::HistoryError;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Bytes read from the file at a time (as [`compressed::read_prefix`]
/// does, so that a truncated `.zst` yields the same prefix).
const READ_BYTES: usize = 1 << 16;

/// What reading a history gave.
#[derive(Debug)]
pub struct Streamed {
    /// The history, or the pairing error that makes it malformed (located).
    pub history: Result<CompactHistory, HistoryError>,
    /// Why the file ended early, if it did.
    pub truncated: Option<String>,
}

/// Reads the JSON-lines history `file` (plain or `.zst`).
pub fn read_jsonl_compact(file: &Path, pairing: Pairing) -> Result<Streamed, HistoryError> {
    let input = compressed::open(file)
        .map_err(|e| HistoryError::general(format!("cannot open {}: {e}", file.display())))?;
    let mut reader = BufReader::with_capacity(READ_BYTES, input);
    let mut feed = Feed {
        builder: Builder::new(pairing),
        failed: None,
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut lines = 0usize;
    let cut = loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(_) if buf.last() == Some(&b'\n') => {
                lines += 1;
                if let Some(e) = parse_line(&buf[..buf.len() - 1], lines)? {
                    feed.push(e, lines);
                }
            }
            // The end, perhaps after a last line with no newline.
            Ok(_) => break None,
            Err(e) => {
                break Some(std::io::Error::new(
                    e.kind(),
                    format!("{} is truncated or corrupt: {e}", file.display()),
                ))
            }
        }
    };
    let truncated = match cut {
        // Whatever the last decoded line looks like, the file ends early.
        Some(e) => Some(format!("{e}; read its first {lines} lines")),
        None => {
            let tail = String::from_utf8_lossy(&buf);
            let line = lines + 1;
            if tail.trim().is_empty() {
                None
            } else {
                match serde_json::from_str::<Event>(tail.trim()) {
                    // A last line without its newline that is whole is kept.
                    Ok(e) => {
                        feed.push(e, line);
                        None
                    }
                    Err(e) => Some(format!(
                        "line {line} is cut off after {} bytes: {e}",
                        buf.len()
                    )),
                }
            }
        }
    };
    let history = match feed.failed {
        Some(e) => Err(e),
        None => Ok(feed.builder.finish()),
    };
    Ok(Streamed { history, truncated })
}

/// The builder, and the first pairing error once there is one (later
/// events are then only read, for their syntax).
struct Feed {
    builder: Builder,
    failed: Option<HistoryError>,
}

impl Feed {
    fn push(&mut self, e: Event, line: usize) {
        if self.failed.is_none() {
            if let Err(err) = self.builder.push(e, Some(line)) {
                self.failed = Some(self.builder.locate(err));
            }
        }
    }
}

/// One whole line (without its newline): its event, `None` when blank, or
/// the error naming it ([`crate::history::read_jsonl`]'s words).
fn parse_line(bytes: &[u8], lineno: usize) -> Result<Option<Event>, HistoryError> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        HistoryError::at(
            SourcePos::Line(lineno),
            "cannot read: stream did not contain valid UTF-8",
        )
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| HistoryError::at(SourcePos::Line(lineno), format!("not a history event: {e}")))
}
