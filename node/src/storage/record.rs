//! Record framing for the write-ahead log: every record carries its length,
//! a CRC32C of its body and a CRC32C of its header, so a torn write, a
//! flipped bit in the body and a damaged length field are all detected.
//!
//! ```text
//! +--------+----------+------------+----------------------------+
//! | len u32| body_crc | header_crc | body: kind u8, payload ... |
//! +--------+----------+------------+----------------------------+
//!   little endian; header_crc = crc32c(len ++ body_crc)
//! ```
//!
//! The header checksum lets recovery tell a damaged length (which would
//! otherwise look like a short tail) from a torn write, and lets it scan
//! cheaply for valid records after a bad one.

use crate::raft::{Entry, EntryKind, HardState};

/// Bytes in a record header.
pub const HEADER_LEN: usize = 12;
/// Largest body a record may have (an entry's data plus its fixed fields).
pub const MAX_BODY_LEN: usize = 64 << 20;

/// Magic number at the start of every segment's header record ("RRWL").
pub const SEGMENT_MAGIC: u32 = 0x5252_574c;
/// Version of the segment format.
pub const SEGMENT_VERSION: u32 = 1;

const KIND_SEGMENT: u8 = 1;
const KIND_HARD_STATE: u8 = 2;
const KIND_ENTRY: u8 = 3;
const KIND_RESET: u8 = 4;
const KIND_RAW: u8 = 5;

/// A decoded record body, borrowing the payload from the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    /// First record of every segment: its sequence number and the index of
    /// the first entry it was opened for.
    SegmentHeader {
        /// The segment's position in the log's order of files.
        seq: u64,
        /// The next log index when the segment was opened.
        start_index: u64,
    },
    /// The Raft hard state; the newest one in log order wins.
    HardState(HardState),
    /// A log entry; an index at or below the current last index replaces the
    /// suffix from there (Raft log truncation).
    Entry {
        /// The entry's term.
        term: u64,
        /// The entry's index.
        index: u64,
        /// What it carries.
        kind: EntryKind,
        /// Its payload.
        data: &'a [u8],
    },
    /// The log was replaced by a snapshot at (index, term): every entry
    /// before this record is void.
    Reset {
        /// The snapshot's last included index.
        index: u64,
        /// The snapshot's last included term.
        term: u64,
    },
    /// An opaque payload (the group-commit front and the benchmark).
    Raw(&'a [u8]),
}

/// Why bytes at some offset are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// Fewer than `HEADER_LEN` bytes remain.
    ShortHeader,
    /// The header checksum does not match (a damaged or torn header).
    HeaderChecksum,
    /// The length is zero or larger than `MAX_BODY_LEN`.
    BadLength(u32),
    /// The body extends past the end of the file.
    ShortBody {
        /// The length the header announces.
        len: u32,
        /// The bytes actually left in the file.
        available: usize,
    },
    /// The body checksum does not match (the header, and so `len`, is valid).
    BodyChecksum {
        /// The body length the (valid) header announces.
        len: u32,
    },
}

impl Defect {
    /// Where the next record would start if this one's header is valid: its
    /// length is then trustworthy, so bytes inside the damaged body (which
    /// may be user data that happens to look like a record) are not scanned.
    pub fn resume_at(&self, at: usize) -> usize {
        match self {
            Defect::ShortBody { len, .. } | Defect::BodyChecksum { len } => {
                at + HEADER_LEN + *len as usize
            }
            _ => at + 1,
        }
    }
}

impl std::fmt::Display for Defect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Defect::ShortHeader => write!(f, "record header cut short"),
            Defect::HeaderChecksum => write!(f, "record header checksum mismatch"),
            Defect::BadLength(len) => write!(f, "record length {len} out of range"),
            Defect::ShortBody { len, available } => {
                write!(f, "record body of {len} bytes cut short at {available}")
            }
            Defect::BodyChecksum { .. } => write!(f, "record body checksum mismatch"),
        }
    }
}

/// Appends the frame of one record to `buf`; `write_body` appends the body
/// (kind byte first). No allocation beyond `buf`'s own growth.
fn frame(buf: &mut Vec<u8>, write_body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; HEADER_LEN]);
    write_body(buf);
    let body_len = buf.len() - start - HEADER_LEN;
    debug_assert!(body_len > 0 && body_len <= MAX_BODY_LEN);
    let body_crc = crc32c::crc32c(&buf[start + HEADER_LEN..]);
    let len = (body_len as u32).to_le_bytes();
    let body_crc = body_crc.to_le_bytes();
    let mut head = [0u8; 8];
    head[..4].copy_from_slice(&len);
    head[4..].copy_from_slice(&body_crc);
    let header_crc = crc32c::crc32c(&head);
    buf[start..start + 8].copy_from_slice(&head);
    buf[start + 8..start + 12].copy_from_slice(&header_crc.to_le_bytes());
}

/// Bytes a framed entry record with `data_len` bytes of data occupies.
pub fn entry_record_len(data_len: usize) -> usize {
    HEADER_LEN + 1 + 8 + 8 + 1 + data_len
}

/// Bytes a framed raw record with `payload_len` bytes occupies.
pub fn raw_record_len(payload_len: usize) -> usize {
    HEADER_LEN + 1 + payload_len
}

/// Appends a segment header record.
pub fn encode_segment_header(buf: &mut Vec<u8>, seq: u64, start_index: u64) {
    frame(buf, |b| {
        b.push(KIND_SEGMENT);
        b.extend_from_slice(&SEGMENT_MAGIC.to_le_bytes());
        b.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
        b.extend_from_slice(&seq.to_le_bytes());
        b.extend_from_slice(&start_index.to_le_bytes());
    });
}

/// Appends a hard-state record.
pub fn encode_hard_state(buf: &mut Vec<u8>, hs: &HardState) {
    frame(buf, |b| {
        b.push(KIND_HARD_STATE);
        b.extend_from_slice(&hs.term.to_le_bytes());
        b.extend_from_slice(&hs.vote.to_le_bytes());
        b.extend_from_slice(&hs.commit.to_le_bytes());
    });
}

/// Appends an entry record. The caller checks `entry_record_len` against
/// `MAX_BODY_LEN + HEADER_LEN` first.
pub fn encode_entry(buf: &mut Vec<u8>, e: &Entry) {
    frame(buf, |b| {
        b.push(KIND_ENTRY);
        b.extend_from_slice(&e.term.to_le_bytes());
        b.extend_from_slice(&e.index.to_le_bytes());
        b.push(match e.kind {
            EntryKind::Normal => 0,
            EntryKind::ConfChange => 1,
        });
        b.extend_from_slice(&e.data);
    });
}

/// Appends a reset record (the log now starts after `index`).
pub fn encode_reset(buf: &mut Vec<u8>, index: u64, term: u64) {
    frame(buf, |b| {
        b.push(KIND_RESET);
        b.extend_from_slice(&index.to_le_bytes());
        b.extend_from_slice(&term.to_le_bytes());
    });
}

/// Appends a raw record. The caller checks the size limit first.
pub fn encode_raw(buf: &mut Vec<u8>, payload: &[u8]) {
    frame(buf, |b| {
        b.push(KIND_RAW);
        b.extend_from_slice(payload);
    });
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Checks the frame at the start of `bytes`; on success returns the body.
pub fn check_frame(bytes: &[u8]) -> Result<&[u8], Defect> {
    if bytes.len() < HEADER_LEN {
        return Err(Defect::ShortHeader);
    }
    if crc32c::crc32c(&bytes[..8]) != u32_at(bytes, 8) {
        return Err(Defect::HeaderChecksum);
    }
    let len = u32_at(bytes, 0);
    if len == 0 || len as usize > MAX_BODY_LEN {
        return Err(Defect::BadLength(len));
    }
    let available = bytes.len() - HEADER_LEN;
    if (len as usize) > available {
        return Err(Defect::ShortBody { len, available });
    }
    let body = &bytes[HEADER_LEN..HEADER_LEN + len as usize];
    if crc32c::crc32c(body) != u32_at(bytes, 4) {
        return Err(Defect::BodyChecksum { len });
    }
    Ok(body)
}

/// Finds the first offset at or after `from` where a complete, valid record
/// starts; used to tell corruption (valid data follows) from a torn tail.
pub fn find_valid_record_from(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at + HEADER_LEN <= bytes.len() {
        // The header checksum makes this scan cheap: only a 2^-32 fraction of
        // offsets reach the body checksum.
        if check_frame(&bytes[at..]).is_ok() {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// Decodes a checksum-valid body; an error means a format violation (a bug
/// or an unknown version), never a torn write.
pub fn decode_body(body: &[u8]) -> Result<Record<'_>, String> {
    let (&kind, rest) = body.split_first().ok_or("empty record body")?;
    let need = |n: usize| -> Result<(), String> {
        if rest.len() == n {
            Ok(())
        } else {
            Err(format!(
                "record kind {kind} has {} payload bytes, expected {n}",
                rest.len()
            ))
        }
    };
    match kind {
        KIND_SEGMENT => {
            need(24)?;
            let magic = u32_at(rest, 0);
            let version = u32_at(rest, 4);
            if magic != SEGMENT_MAGIC {
                return Err(format!("bad segment magic {magic:#x}"));
            }
            if version != SEGMENT_VERSION {
                return Err(format!("unsupported segment version {version}"));
            }
            Ok(Record::SegmentHeader {
                seq: u64_at(rest, 8),
                start_index: u64_at(rest, 16),
            })
        }
        KIND_HARD_STATE => {
            need(24)?;
            Ok(Record::HardState(HardState {
                term: u64_at(rest, 0),
                vote: u64_at(rest, 8),
                commit: u64_at(rest, 16),
            }))
        }
        KIND_ENTRY => {
            if rest.len() < 17 {
                return Err(format!("entry record of {} bytes is too short", rest.len()));
            }
            let kind = match rest[16] {
                0 => EntryKind::Normal,
                1 => EntryKind::ConfChange,
                k => return Err(format!("unknown entry kind {k}")),
            };
            Ok(Record::Entry {
                term: u64_at(rest, 0),
                index: u64_at(rest, 8),
                kind,
                data: &rest[17..],
            })
        }
        KIND_RESET => {
            need(16)?;
            Ok(Record::Reset {
                index: u64_at(rest, 0),
                term: u64_at(rest, 8),
            })
        }
        KIND_RAW => Ok(Record::Raw(rest)),
        k => Err(format!("unknown record kind {k}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_kind_round_trips_through_its_frame() {
        let mut buf = Vec::new();
        encode_segment_header(&mut buf, 7, 42);
        let hs = HardState {
            term: 3,
            vote: 2,
            commit: 9,
        };
        encode_hard_state(&mut buf, &hs);
        let e = Entry {
            term: 5,
            index: 43,
            kind: EntryKind::ConfChange,
            data: b"hello".to_vec(),
        };
        encode_entry(&mut buf, &e);
        encode_reset(&mut buf, 100, 4);
        encode_raw(&mut buf, b"xyz");
        let mut at = 0;
        let mut got = Vec::new();
        while at < buf.len() {
            let body = check_frame(&buf[at..]).unwrap();
            got.push(decode_body(body).unwrap());
            at += HEADER_LEN + body.len();
        }
        assert_eq!(
            got,
            vec![
                Record::SegmentHeader {
                    seq: 7,
                    start_index: 42
                },
                Record::HardState(hs),
                Record::Entry {
                    term: 5,
                    index: 43,
                    kind: EntryKind::ConfChange,
                    data: b"hello"
                },
                Record::Reset {
                    index: 100,
                    term: 4
                },
                Record::Raw(b"xyz"),
            ]
        );
        assert_eq!(entry_record_len(5), {
            let mut b = Vec::new();
            encode_entry(&mut b, &e);
            b.len()
        });
    }

    #[test]
    fn a_flipped_bit_anywhere_in_a_record_is_detected() {
        let mut buf = Vec::new();
        encode_raw(&mut buf, b"payload bytes");
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[i] ^= 1 << bit;
                assert!(check_frame(&b).is_err(), "flip at byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn zero_filled_bytes_are_not_a_record() {
        assert!(check_frame(&[0u8; 64]).is_err());
    }

    #[test]
    fn valid_record_after_a_damaged_one_is_found() {
        let mut buf = Vec::new();
        encode_raw(&mut buf, b"first");
        let second = buf.len();
        encode_raw(&mut buf, b"second");
        buf[3] ^= 0xff; // damage the first record's length
        assert!(check_frame(&buf).is_err());
        assert_eq!(find_valid_record_from(&buf, 1), Some(second));
        assert_eq!(find_valid_record_from(&buf, second + 1), None);
    }
}
