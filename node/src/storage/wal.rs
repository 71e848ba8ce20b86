//! The segmented write-ahead log: an ordered list of segment files, the
//! newest of which is appended to. It knows records, not Raft: the facade
//! ([`super::Storage`]) and the group-commit front decide what to write.

use super::dir::{self, list_names};
use super::error::{Result, StorageError};
use super::record::{self, Record};
use super::segment::{self, Tail};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes of zeros written ahead of the open segment's end at a time.
/// fdatasync after overwriting blocks that already exist only flushes data;
/// after an append it must also commit the file's new size to the journal,
/// which on ext4 about doubles its latency. So the log writes zeros ahead
/// (real zeros, not fallocate, whose unwritten extents cost the same
/// journal commit on first write) and overwrites them. Recovery reads an
/// all-zero tail of the last segment as its unused end. One MiB keeps a
/// node's idle data dir small and extends the file once per ~3,000
/// 256-byte writes, too rarely to show even in a p99.9.
const PREALLOC_CHUNK: u64 = 1 << 20;

/// One segment file on disk.
#[derive(Debug, Clone)]
pub struct SegmentInfo {
    /// Position in the log's order of files.
    pub seq: u64,
    /// The next log index when the segment was opened: every live entry in
    /// earlier segments has an index below it.
    pub start_index: u64,
    /// Where it is.
    pub path: PathBuf,
}

/// Counters for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// fdatasync calls on segment data (rotation and directory syncs excluded).
    pub fsyncs: u64,
    /// write calls issued on segment data.
    pub writes: u64,
    /// Bytes written to segments.
    pub bytes: u64,
    /// Segments opened since this process opened the log.
    pub rotations: u64,
}

/// The segmented log, open for appending.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    segments: Vec<SegmentInfo>,
    active: Option<File>,
    active_len: u64,
    /// Length of the open segment's file: `active_len` plus zeros ahead.
    allocated: u64,
    segment_size: u64,
    stats: WalStats,
}

impl Wal {
    /// Opens the log in `dir`, replaying every record after each segment
    /// header through `visit` in log order with its file and offset. A torn
    /// tail in the last segment is truncated (and logged); a last segment
    /// with no complete header is removed; corruption is an error.
    pub fn open(
        dir: &Path,
        segment_size: u64,
        mut visit: impl FnMut(&Path, u64, Record<'_>) -> Result<()>,
    ) -> Result<Wal> {
        let mut found: Vec<(u64, u64, String)> = list_names(dir)?
            .into_iter()
            .filter_map(|n| segment::parse_name(&n).map(|(s, i)| (s, i, n)))
            .collect();
        found.sort();
        for w in found.windows(2) {
            if w[1].0 != w[0].0 + 1 {
                return Err(StorageError::Corrupt {
                    path: dir.join(&w[1].2),
                    offset: 0,
                    reason: format!("segment {} is missing before it", w[0].0 + 1),
                });
            }
        }
        let mut wal = Wal {
            dir: dir.to_path_buf(),
            segments: Vec::new(),
            active: None,
            active_len: 0,
            allocated: 0,
            segment_size: segment_size.max(1),
            stats: WalStats::default(),
        };
        let count = found.len();
        for (i, (seq, start_index, name)) in found.into_iter().enumerate() {
            let path = dir.join(&name);
            let is_last = i + 1 == count;
            let scan = segment::read(&path, is_last, |off, rec| visit(&path, off, rec))?;
            if let Some((hseq, hstart)) = scan.header {
                if (hseq, hstart) != (seq, start_index) {
                    return Err(StorageError::Corrupt {
                        path,
                        offset: 0,
                        reason: format!(
                            "header says segment {hseq} starting at {hstart}, \
                             the name says {seq} starting at {start_index}"
                        ),
                    });
                }
            }
            if let Tail::Torn { offset, defect } = scan.tail {
                let len = fs::metadata(&path)
                    .map_err(|e| StorageError::io("stat", &path, e))?
                    .len();
                tracing::warn!(
                    file = %path.display(),
                    offset,
                    dropped_bytes = len - offset,
                    %defect,
                    "truncating a torn record at the tail of the write-ahead log (a crash mid-write)"
                );
            }
            if scan.header.is_none() {
                // Only the last segment can get here (segment::read refuses
                // others): it was being created when the process died.
                tracing::warn!(file = %path.display(), "removing a segment whose header was never completed");
                fs::remove_file(&path).map_err(|e| StorageError::io("remove", &path, e))?;
                dir::fsync_dir(dir)?;
                continue;
            }
            wal.segments.push(SegmentInfo {
                seq,
                start_index,
                path: path.clone(),
            });
            if is_last {
                // Writes go at `active_len`, over the zeros written ahead.
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| StorageError::io("open", &path, e))?;
                let mut allocated = scan.file_len;
                if matches!(scan.tail, Tail::Torn { .. }) {
                    f.set_len(scan.valid_len)
                        .map_err(|e| StorageError::io("truncate", &path, e))?;
                    f.sync_all()
                        .map_err(|e| StorageError::io("fsync", &path, e))?;
                    allocated = scan.valid_len;
                }
                wal.active = Some(f);
                wal.active_len = scan.valid_len;
                wal.allocated = allocated;
            }
        }
        Ok(wal)
    }

    /// Whether the next write needs a fresh segment first (none is open, or
    /// the open one reached the segment size).
    pub fn needs_rotation(&self) -> bool {
        self.active.is_none() || self.active_len >= self.segment_size
    }

    /// Opens a new segment whose header records `start_index`, followed by
    /// the already framed `initial` records, and makes it durable (file and
    /// directory). The caller has synced the previous segment.
    pub fn rotate(&mut self, start_index: u64, initial: &[u8]) -> Result<()> {
        self.trim_active()?;
        let seq = self.segments.last().map_or(1, |s| s.seq + 1);
        let path = self.dir.join(segment::file_name(seq, start_index));
        let mut buf = Vec::with_capacity(64 + initial.len());
        record::encode_segment_header(&mut buf, seq, start_index);
        buf.extend_from_slice(initial);
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StorageError::io("create", &path, e))?;
        let len = buf.len() as u64;
        let allocated = self.allocation_for(0, len);
        buf.resize(allocated as usize, 0);
        f.write_all_at(&buf, 0)
            .map_err(|e| StorageError::io("write", &path, e))?;
        f.sync_data()
            .map_err(|e| StorageError::io("fdatasync", &path, e))?;
        dir::fsync_dir(&self.dir)?;
        self.segments.push(SegmentInfo {
            seq,
            start_index,
            path,
        });
        self.active = Some(f);
        self.active_len = len;
        self.allocated = allocated;
        self.stats.rotations += 1;
        Ok(())
    }

    /// The file length to write zeros up to so that `end` bytes fit, when
    /// `allocated` are there already.
    fn allocation_for(&self, allocated: u64, end: u64) -> u64 {
        if end <= allocated {
            return allocated;
        }
        end.max((allocated + PREALLOC_CHUNK).min(self.segment_size))
    }

    /// Cuts the zeros ahead off the open segment before the log moves on to
    /// a new one: only the last segment may end in zeros, so that a zeroed
    /// tail in an older one is always seen as the corruption it is.
    fn trim_active(&mut self) -> Result<()> {
        let (Some(f), Some(seg)) = (self.active.as_ref(), self.segments.last()) else {
            return Ok(());
        };
        if self.allocated > self.active_len {
            f.set_len(self.active_len)
                .map_err(|e| StorageError::io("truncate", &seg.path, e))?;
            f.sync_all()
                .map_err(|e| StorageError::io("fsync", &seg.path, e))?;
            self.allocated = self.active_len;
        }
        Ok(())
    }

    /// Appends framed records to the open segment (one write call, then one
    /// of zeros ahead when the allocated space ran out).
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let end = self.active_len + bytes.len() as u64;
        let allocated = self.allocation_for(self.allocated, end);
        let (Some(f), Some(seg)) = (self.active.as_mut(), self.segments.last()) else {
            return Err(StorageError::Invalid("write with no open segment".into()));
        };
        f.write_all_at(bytes, self.active_len)
            .map_err(|e| StorageError::io("write", &seg.path, e))?;
        if allocated > self.allocated {
            // Zeros only past the records just written: the part of the
            // new space they fill needs no zeros first.
            let from = end.max(self.allocated);
            let zeros = vec![0u8; (allocated - from) as usize];
            f.write_all_at(&zeros, from)
                .map_err(|e| StorageError::io("write", &seg.path, e))?;
            self.allocated = allocated;
        }
        self.active_len += bytes.len() as u64;
        self.stats.writes += 1;
        self.stats.bytes += bytes.len() as u64;
        Ok(())
    }

    /// fdatasyncs the open segment.
    pub fn sync_data(&mut self) -> Result<()> {
        let (Some(f), Some(seg)) = (self.active.as_ref(), self.segments.last()) else {
            return Ok(());
        };
        f.sync_data()
            .map_err(|e| StorageError::io("fdatasync", &seg.path, e))?;
        self.stats.fsyncs += 1;
        Ok(())
    }

    /// Removes the oldest segments whose live entries a snapshot at
    /// `snapshot_index` covers (never the open one); returns how many.
    pub fn remove_covered(&mut self, snapshot_index: u64) -> Result<usize> {
        let mut n = 0;
        while self.segments.len() >= 2 && self.segments[1].start_index <= snapshot_index + 1 {
            self.remove_oldest()?;
            n += 1;
        }
        if n > 0 {
            dir::fsync_dir(&self.dir)?;
        }
        Ok(n)
    }

    /// Removes the segments before `seq` (they precede a log reset).
    pub fn remove_before(&mut self, seq: u64) -> Result<usize> {
        let mut n = 0;
        while self.segments.len() >= 2 && self.segments[0].seq < seq {
            self.remove_oldest()?;
            n += 1;
        }
        if n > 0 {
            dir::fsync_dir(&self.dir)?;
        }
        Ok(n)
    }

    /// Removes every segment but the open one (after a log reset).
    pub fn remove_all_but_active(&mut self) -> Result<usize> {
        let mut n = 0;
        while self.segments.len() >= 2 {
            self.remove_oldest()?;
            n += 1;
        }
        if n > 0 {
            dir::fsync_dir(&self.dir)?;
        }
        Ok(n)
    }

    // Oldest first, so a crash part-way leaves a contiguous run of segments.
    fn remove_oldest(&mut self) -> Result<()> {
        let seg = self.segments.remove(0);
        fs::remove_file(&seg.path).map_err(|e| StorageError::io("remove", &seg.path, e))
    }

    /// The segments on disk, oldest first.
    pub fn segments(&self) -> &[SegmentInfo] {
        &self.segments
    }

    /// Bytes of records in the open segment, header included (0 if none).
    pub fn active_len(&self) -> u64 {
        self.active_len
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        self.stats
    }
}
