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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compressed::{compress_file, compressed_name};
    use crate::input::read_history_tolerant;

    const OK: &str =
        r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"write","key":"a","value":1}"#;
    const DONE: &str =
        r#"{"index":1,"time":2,"process":1,"type":"ok","f":"write","key":"a","value":1}"#;
    const NEM: &str =
        r#"{"index":2,"time":3,"process":"nemesis","type":"info","f":"start-kill","value":null}"#;
    const READ: &str =
        r#"{"index":3,"time":4,"process":2,"type":"invoke","f":"read","key":"a","value":null}"#;
    const ORPHAN: &str =
        r#"{"index":3,"time":4,"process":7,"type":"ok","f":"read","key":"a","value":1}"#;

    /// Streaming `bytes` gives what reading them whole, then converting,
    /// gives: the same error, or the same events, positions and reason.
    fn same_as_whole(bytes: &[u8], zst: bool) {
        let d = tempfile::tempdir().unwrap();
        let mut p = d.path().join("h.jsonl");
        std::fs::write(&p, bytes).unwrap();
        if zst {
            compress_file(&p).unwrap();
            p = compressed_name(&p);
        }
        let whole = read_history_tolerant(&p, None);
        let streamed = read_jsonl_compact(&p, Pairing::Strict);
        let (h, reason, s) = match (whole, streamed) {
            (Err(a), Err(b)) => return assert_eq!(a.to_string(), b.to_string()),
            (Ok((h, reason)), Ok(s)) => (h, reason, s),
            (a, b) => panic!("whole {a:?}, streamed {b:?}"),
        };
        assert_eq!(reason, s.truncated);
        let (want, got) = match (CompactHistory::from_history(&h, Pairing::Strict), s.history) {
            (Err(a), Err(b)) => return assert_eq!(a.to_string(), b.to_string()),
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => panic!("whole {a:?}, streamed {b:?}"),
        };
        assert_eq!(want.facts(), got.facts());
        assert_eq!(want.named(), got.named());
        let ops = |c: &CompactHistory| (0..c.len()).map(|i| c.op(i)).collect::<Vec<_>>();
        assert_eq!(ops(&want), ops(&got));
        for i in 0..=h.events.len() {
            assert_eq!(want.position(i), got.position(i), "event {i}");
        }
    }

    fn lines(ls: &[&str]) -> String {
        ls.iter().map(|l| format!("{l}\n")).collect()
    }

    #[test]
    fn streaming_reads_what_reading_whole_reads() {
        let cases: Vec<Vec<u8>> = vec![
            lines(&[OK, DONE, NEM, READ]).into_bytes(),
            // Blank lines, CRLF, and a whole last line with no newline.
            format!("\n{OK}\r\n   \n\n{DONE}\n{NEM}\n{READ}").into_bytes(),
            // A torn last line.
            format!("{}{}", lines(&[OK, DONE]), &READ[..20]).into_bytes(),
            // A bad line inside is an error naming it...
            lines(&[OK, "{not json", DONE]).into_bytes(),
            // ... even after a pairing error.
            lines(&[ORPHAN, OK, "[1]", DONE]).into_bytes(),
            // A pairing error names its line past blank ones.
            format!("{OK}\n\n\n{DONE}\n{ORPHAN}\n").into_bytes(),
            // Not UTF-8.
            [OK.as_bytes(), b"\n\xff\xfe\n", DONE.as_bytes(), b"\n"].concat(),
            Vec::new(),
            b"\n\n".to_vec(),
        ];
        for (i, bytes) in cases.iter().enumerate() {
            for zst in [false, true] {
                eprintln!("case {i}, zst {zst}");
                same_as_whole(bytes, zst);
            }
        }
    }

    #[test]
    fn a_truncated_zst_is_read_as_far_as_it_decodes_with_the_same_reason() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("h.jsonl");
        let text: String = (0..20_000)
            .map(|i| {
                format!(
                    "{{\"index\":{},\"time\":{i},\"process\":{i},\"type\":\"invoke\",\"f\":\"read\",\"value\":null}}\n",
                    i
                )
            })
            .collect();
        std::fs::write(&p, text).unwrap();
        compress_file(&p).unwrap();
        let z = compressed_name(&p);
        let bytes = std::fs::read(&z).unwrap();
        std::fs::write(&z, &bytes[..bytes.len() / 2]).unwrap();
        let (h, reason) = read_history_tolerant(&z, None).unwrap();
        let s = read_jsonl_compact(&z, Pairing::Strict).unwrap();
        assert!(reason.as_deref().unwrap().contains("truncated or corrupt"));
        assert_eq!(reason, s.truncated);
        assert_eq!(h.events.len(), s.history.unwrap().facts().events);
    }
}
