//! One segment file of the write-ahead log: its name and how it is read back
//! record by record, with the torn-tail versus corruption decision.

use super::error::{Result, StorageError};
use super::record::{self, Defect, Record, HEADER_LEN};
use std::fs;
use std::path::Path;

/// The file name of segment `seq`, opened when the log's next index was
/// `start_index`.
pub fn file_name(seq: u64, start_index: u64) -> String {
    format!("{seq:016x}-{start_index:016x}.wal")
}

/// The (seq, start_index) a segment file name stands for, if it is one.
pub fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".wal")?;
    let (seq, start) = stem.split_once('-')?;
    if seq.len() != 16 || start.len() != 16 {
        return None;
    }
    Some((
        u64::from_str_radix(seq, 16).ok()?,
        u64::from_str_radix(start, 16).ok()?,
    ))
}

/// How a segment ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Every byte belongs to a valid record.
    Clean,
    /// The final segment ends in a record a crash cut short; everything from
    /// `offset` on is garbage and nothing valid follows it.
    Torn {
        /// Where the torn record starts (the length the file is cut to).
        offset: u64,
        /// What is wrong with it.
        defect: Defect,
    },
}

/// What reading a segment found.
#[derive(Debug)]
pub struct SegmentScan {
    /// The header record's sequence number and start index, if the segment
    /// got as far as a complete header.
    pub header: Option<(u64, u64)>,
    /// Bytes of valid records from the start of the file.
    pub valid_len: u64,
    /// The file's length: `valid_len` plus the zeros written ahead (and,
    /// for a torn tail, the garbage).
    pub file_len: u64,
    /// How the file ends.
    pub tail: Tail,
}

/// Reads a segment, handing each record after the header to `visit` with its
/// offset. A defect is a torn tail only in the final segment and only when no
/// valid record follows it; anything else is `Corrupt`, naming file and
/// offset, because a record after it may have been acknowledged.
pub fn read(
    path: &Path,
    is_last: bool,
    mut visit: impl FnMut(u64, Record<'_>) -> Result<()>,
) -> Result<SegmentScan> {
    let bytes = fs::read(path).map_err(|e| StorageError::io("read", path, e))?;
    let corrupt = |offset: usize, reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    let mut header = None;
    let mut at = 0usize;
    while at < bytes.len() {
        let body = match record::check_frame(&bytes[at..]) {
            Ok(body) => body,
            Err(defect) => {
                if is_last && bytes[at..].iter().all(|&b| b == 0) {
                    // The zeros the log writes ahead of its end: nothing
                    // was written here, so nothing is lost.
                    return Ok(SegmentScan {
                        header,
                        valid_len: at as u64,
                        file_len: bytes.len() as u64,
                        tail: Tail::Clean,
                    });
                }
                if !is_last {
                    return Err(corrupt(
                        at,
                        format!("{defect} in a segment that is not the last one"),
                    ));
                }
                if let Some(next) = record::find_valid_record_from(&bytes, defect.resume_at(at)) {
                    return Err(corrupt(
                        at,
                        format!("{defect}, yet a valid record follows at offset {next}"),
                    ));
                }
                return Ok(SegmentScan {
                    header,
                    valid_len: at as u64,
                    file_len: bytes.len() as u64,
                    tail: Tail::Torn {
                        offset: at as u64,
                        defect,
                    },
                });
            }
        };
        let rec = record::decode_body(body).map_err(|reason| corrupt(at, reason))?;
        match (header, rec) {
            (None, Record::SegmentHeader { seq, start_index }) => {
                header = Some((seq, start_index));
            }
            (None, _) => {
                return Err(corrupt(at, "segment does not start with a header".into()));
            }
            (Some(_), Record::SegmentHeader { .. }) => {
                return Err(corrupt(at, "second segment header".into()));
            }
            (Some(_), rec) => visit(at as u64, rec)?,
        }
        at += HEADER_LEN + body.len();
    }
    if header.is_none() && !is_last {
        return Err(corrupt(0, "empty segment that is not the last one".into()));
    }
    Ok(SegmentScan {
        header,
        valid_len: at as u64,
        file_len: bytes.len() as u64,
        tail: Tail::Clean,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_parse_back() {
        assert_eq!(parse_name(&file_name(3, 0x1234)), Some((3, 0x1234)));
        assert_eq!(
            parse_name("0000000000000001-0000000000000001.wal.tmp"),
            None
        );
        assert_eq!(parse_name("1-1.wal"), None);
    }
}
