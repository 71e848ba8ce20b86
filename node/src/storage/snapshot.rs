//! Snapshot files: one file per snapshot, `snap-<index>.snap`, holding the
//! metadata, the state-machine image and a CRC32C over both; written with an
//! atomic replacement so a crash leaves either the old or the new one.

use super::dir::{self, list_names};
use super::error::{Result, StorageError};
use crate::raft::{ConfState, NodeId, Snapshot, SnapshotMeta};
use std::fs;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"RRSNAP01";
/// Upper bound on the member lists, so a damaged count cannot make the
/// decoder allocate absurdly.
const MAX_MEMBERS: usize = 1 << 16;

/// The file name of the snapshot at `index`.
pub fn file_name(index: u64) -> String {
    format!("snap-{index:016x}.snap")
}

/// The index a snapshot file name stands for, if it is one.
pub fn parse_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("snap-")?.strip_suffix(".snap")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

fn put_ids(b: &mut Vec<u8>, ids: &[NodeId]) {
    b.extend_from_slice(&(ids.len() as u32).to_le_bytes());
    for id in ids {
        b.extend_from_slice(&id.to_le_bytes());
    }
}

/// Encodes a snapshot into its file format.
pub fn encode(snap: &Snapshot) -> Vec<u8> {
    let c = &snap.meta.conf;
    let mut b = Vec::with_capacity(
        64 + 8 * (c.voters.len() + c.learners.len() + c.voters_outgoing.len()) + snap.data.len(),
    );
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&snap.meta.index.to_le_bytes());
    b.extend_from_slice(&snap.meta.term.to_le_bytes());
    put_ids(&mut b, &c.voters);
    put_ids(&mut b, &c.learners);
    put_ids(&mut b, &c.voters_outgoing);
    b.extend_from_slice(&(snap.data.len() as u64).to_le_bytes());
    b.extend_from_slice(&snap.data);
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> std::result::Result<&[u8], String> {
        if self.b.len() - self.at < n {
            return Err(format!("truncated at byte {}", self.at));
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn ids(&mut self) -> std::result::Result<Vec<NodeId>, String> {
        let n = self.u32()? as usize;
        if n > MAX_MEMBERS {
            return Err(format!("member count {n} out of range"));
        }
        (0..n).map(|_| self.u64()).collect()
    }
}

/// Decodes and verifies a snapshot file's bytes.
pub fn decode(b: &[u8]) -> std::result::Result<Snapshot, String> {
    if b.len() < MAGIC.len() + 4 {
        return Err(format!("file of {} bytes is too short", b.len()));
    }
    let (body, crc) = b.split_at(b.len() - 4);
    let crc = u32::from_le_bytes(crc.try_into().expect("4"));
    if crc32c::crc32c(body) != crc {
        return Err("checksum mismatch".into());
    }
    if &body[..8] != MAGIC {
        return Err("bad magic (not a snapshot file, or another version)".into());
    }
    let mut r = Reader { b: body, at: 8 };
    let index = r.u64()?;
    let term = r.u64()?;
    let conf = ConfState {
        voters: r.ids()?,
        learners: r.ids()?,
        voters_outgoing: r.ids()?,
    };
    let len = r.u64()?;
    if len != (body.len() - r.at) as u64 {
        return Err(format!(
            "data length {len} does not match the {} bytes present",
            body.len() - r.at
        ));
    }
    let data = body[r.at..].to_vec();
    Ok(Snapshot {
        meta: SnapshotMeta { index, term, conf },
        data,
    })
}

/// Writes `snap` durably and atomically, then removes older snapshot files.
pub fn save(dir: &Path, snap: &Snapshot) -> Result<()> {
    dir::atomic_write(dir, &file_name(snap.meta.index), &encode(snap))?;
    remove_older_than(dir, snap.meta.index)
}

/// Removes snapshot files with an index below `index`.
pub fn remove_older_than(dir: &Path, index: u64) -> Result<()> {
    let mut removed = false;
    for name in list_names(dir)? {
        if matches!(parse_name(&name), Some(i) if i < index) {
            let p = dir.join(&name);
            fs::remove_file(&p).map_err(|e| StorageError::io("remove", &p, e))?;
            removed = true;
        }
    }
    if removed {
        dir::fsync_dir(dir)?;
    }
    Ok(())
}

/// Loads the newest snapshot in `dir`. A damaged newest snapshot is an
/// error, never a silent fall-back: the log it replaced may be gone.
pub fn load_newest(dir: &Path) -> Result<Option<(Snapshot, PathBuf)>> {
    let newest = list_names(dir)?
        .into_iter()
        .filter_map(|n| parse_name(&n).map(|i| (i, n)))
        .max();
    let Some((index, name)) = newest else {
        return Ok(None);
    };
    let path = dir.join(name);
    let bytes = fs::read(&path).map_err(|e| StorageError::io("read", &path, e))?;
    let snap = decode(&bytes).map_err(|reason| StorageError::CorruptFile {
        path: path.clone(),
        reason,
    })?;
    if snap.meta.index != index {
        return Err(StorageError::CorruptFile {
            path,
            reason: format!(
                "file name says index {index}, content says {}",
                snap.meta.index
            ),
        });
    }
    Ok(Some((snap, path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        Snapshot {
            meta: SnapshotMeta {
                index: 77,
                term: 5,
                conf: ConfState {
                    voters: vec![1, 2, 3],
                    learners: vec![4],
                    voters_outgoing: vec![],
                },
            },
            data: b"state machine image".to_vec(),
        }
    }

    #[test]
    fn snapshot_file_round_trips() {
        let s = sample();
        assert_eq!(decode(&encode(&s)), Ok(s));
    }

    #[test]
    fn any_damaged_byte_in_a_snapshot_file_is_detected() {
        let b = encode(&sample());
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 0x01;
            assert!(decode(&d).is_err(), "byte {i}");
        }
        for n in 0..b.len() {
            assert!(decode(&b[..n]).is_err(), "truncated to {n}");
        }
    }

    #[test]
    fn snapshot_names_parse_back_to_their_index() {
        assert_eq!(parse_name(&file_name(0xabc)), Some(0xabc));
        assert_eq!(parse_name("snap-1.snap"), None);
        assert_eq!(parse_name("snap-00000000000000ab.snap.tmp"), None);
    }
}
