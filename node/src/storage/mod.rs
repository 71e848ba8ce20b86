//! Durable storage for one node: a segmented write-ahead log of entries and
//! hard state (CRC32C-framed records, group commit), snapshot files, and the
//! data dir's lock and identity.
//!
//! [`Storage`] is a blocking facade for the single thread that drives the
//! Raft core: `append` and `set_hard_state` only buffer, `sync` makes all of
//! it durable with one write and one fdatasync. Nothing the core hands to
//! the network may leave before the `sync` that covers it returns.
//!
//! On disk (`DIR/`):
//! - `LOCK`: flocked while a process has the dir open.
//! - `IDENTITY`: node id and cluster id, checksummed.
//! - `<seq>-<start index>.wal`: log segments; each begins with a header
//!   record and the hard state current when it was opened, so removing
//!   older segments never loses the hard state.
//! - `snap-<index>.snap`: the newest snapshot (older ones are removed).
//!
//! The order a server keeps for each batch of work from the core:
//!
//! ```no_run
//! # fn main() -> Result<(), raft_node::storage::StorageError> {
//! use raft_node::raft::{Entry, HardState};
//! use raft_node::storage::{Storage, StorageOptions};
//! let (mut storage, recovered) = Storage::open(
//!     std::path::Path::new("/var/lib/raft-node/n1"),
//!     1,  // node id
//!     42, // cluster id
//!     StorageOptions::default(),
//! )?;
//! // ... restore the core from `recovered` (snapshot, hard state, entries) ...
//! # let (entries, hs): (Vec<Entry>, HardState) = (recovered.entries, recovered.hard_state);
//! storage.append(&entries)?;   // buffered
//! storage.set_hard_state(hs)?; // buffered
//! storage.sync()?;             // one write + one fdatasync for both
//! // only now: send the messages that depend on them, then apply.
//! # Ok(()) }
//! ```
//!
//! Any error from a write path poisons the `Storage` (every later call
//! fails): after a failed fdatasync the kernel may have dropped the dirty
//! pages, so the only safe move is to exit and recover from disk.

pub mod dir;
pub mod error;
pub mod group_commit;
pub mod record;
pub mod segment;
pub mod snapshot;
pub mod wal;

pub use error::StorageError;
pub use group_commit::GroupCommit;
pub use wal::WalStats;

use crate::failpoint::{self, Failpoint};
use crate::raft::{ConfState, Entry, HardState, Snapshot};
use dir::{DirLock, Identity};
use error::Result;
use record::Record;
use std::path::{Path, PathBuf};
use wal::Wal;

/// Default size at which a segment is closed and a new one opened.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;

/// Tunables of a data dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageOptions {
    /// Segment size at which the log rotates to a new file. Smaller segments
    /// let compaction free space sooner; larger ones mean fewer files.
    pub segment_size: u64,
    /// The `no-fsync` bug: `sync` writes the records but skips fdatasync,
    /// so they live only in the page cache: a process crash keeps them, a
    /// machine crash (a power cut) loses them.
    pub no_fsync: bool,
    /// The `replay-keeps-truncated` bug: recovery writes a rewritten entry
    /// over the old one in place but keeps the old entries after it, so a
    /// suffix that Raft truncated comes back after a restart.
    pub replay_keeps_truncated: bool,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            no_fsync: false,
            replay_keeps_truncated: false,
        }
    }
}

/// What a data dir held when it was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The newest durable hard state (default for a new dir). Its commit
    /// may lag the snapshot index (a snapshot installed before the next hard
    /// state was written): the core should take the larger of the two.
    pub hard_state: HardState,
    /// The newest valid snapshot (metadata and data), if any.
    pub snapshot: Option<Snapshot>,
    /// The durable log after the snapshot: contiguous, starting at the
    /// snapshot index + 1 (or 1).
    pub entries: Vec<Entry>,
    /// The membership recorded in the snapshot, if any.
    pub conf: Option<ConfState>,
}

/// Counters for tests, benchmarks and Status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Write-ahead log counters since open.
    pub wal: WalStats,
    /// Segment files on disk.
    pub segments: usize,
    /// Index of the newest snapshot (0 when none).
    pub snapshot_index: u64,
    /// Bytes of records written to the open segment (its file is longer:
    /// the log writes zeros ahead of its end).
    pub active_len: u64,
}

/// The durable state of one node; see the module docs.
pub struct Storage {
    dir: PathBuf,
    opts: StorageOptions,
    wal: Wal,
    /// Framed records appended since the last sync; reused, never shrunk.
    buf: Vec<u8>,
    hard_state: HardState,
    snapshot_index: u64,
    snapshot_term: u64,
    last_index: u64,
    poisoned: Option<String>,
    _lock: DirLock,
}

/// Rebuilds the log from replayed records.
struct Replay {
    /// Snapshot index: entries at or below it are void.
    base: u64,
    base_term: u64,
    /// The term of the entry at `base` as the log last wrote it, if seen.
    term_at_base: Option<u64>,
    entries: Vec<Entry>,
    hard_state: HardState,
    /// The segment holding the newest reset record: older ones are void.
    reset_segment: Option<u64>,
    /// `--bug replay-keeps-truncated`.
    keeps_truncated: bool,
}

impl Replay {
    fn visit(&mut self, path: &Path, offset: u64, rec: Record<'_>) -> Result<()> {
        let corrupt = |reason: String| StorageError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason,
        };
        match rec {
            Record::HardState(hs) => self.hard_state = hs,
            Record::Entry {
                term,
                index,
                kind,
                data,
            } => {
                // Writing entry i replaces everything from i on; entries at or
                // below the snapshot index are covered by the snapshot.
                if index <= self.base {
                    self.entries.clear();
                    self.term_at_base = (index == self.base).then_some(term);
                    return Ok(());
                }
                let last = self.base + self.entries.len() as u64;
                if index > last + 1 {
                    return Err(corrupt(format!(
                        "entry {index} does not follow the last index {last}"
                    )));
                }
                let e = Entry {
                    term,
                    index,
                    kind,
                    data: data.to_vec(),
                };
                let pos = (index - self.base - 1) as usize;
                if self.keeps_truncated && pos < self.entries.len() {
                    // The defect: overwrite in place, keep what follows.
                    self.entries[pos] = e;
                    return Ok(());
                }
                self.entries.truncate(pos);
                self.entries.push(e);
            }
            Record::Reset { index, term } => {
                if index > self.base {
                    return Err(corrupt(format!(
                        "log reset to a snapshot at index {index}, but the newest snapshot \
                         file is at index {}",
                        self.base
                    )));
                }
                self.entries.clear();
                self.term_at_base = (index == self.base).then_some(term);
                self.reset_segment = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(segment::parse_name)
                    .map(|(seq, _)| seq);
            }
            Record::Raw(_) => {
                return Err(corrupt("raw record in a Raft log".into()));
            }
            Record::SegmentHeader { .. } => {
                return Err(corrupt("unexpected segment header".into()));
            }
        }
        Ok(())
    }

    /// Raft's rule for a log beside a snapshot (section 7): the entries after
    /// it are kept only if the log agrees with the snapshot at its index. A
    /// crash between writing an installed snapshot and resetting the log
    /// leaves a stale suffix that fails this test; it was never committed.
    fn finish(&mut self) {
        let disagrees = match self.term_at_base {
            Some(t) => t != self.base_term,
            None => self
                .entries
                .first()
                .is_some_and(|e| e.term < self.base_term),
        };
        if disagrees && !self.entries.is_empty() {
            tracing::warn!(
                snapshot_index = self.base,
                snapshot_term = self.base_term,
                dropped = self.entries.len(),
                "dropping log entries that do not continue the snapshot (interrupted snapshot install)"
            );
            self.entries.clear();
        }
    }
}

impl std::fmt::Debug for Storage {
    // Not derived: the write buffer can hold megabytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("dir", &self.dir)
            .field("snapshot_index", &self.snapshot_index)
            .field("last_index", &self.last_index)
            .field("hard_state", &self.hard_state)
            .field("pending_bytes", &self.buf.len())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Opens (creating if needed) the data dir of `node_id` in `cluster_id`:
    /// takes its lock, checks or records its identity, loads the newest
    /// snapshot and replays the log (truncating a torn tail, refusing
    /// corruption with the file and offset).
    pub fn open(
        dir: &Path,
        node_id: u64,
        cluster_id: u64,
        opts: StorageOptions,
    ) -> Result<(Storage, Recovered)> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| StorageError::io("create dir", dir, e))?;
            // Make the new directory's own entry durable.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                dir::fsync_dir(parent)?;
            }
        }
        let lock = DirLock::acquire(dir)?;
        dir::remove_temp_files(dir)?;
        let has_data = dir::list_names(dir)?
            .iter()
            .any(|n| segment::parse_name(n).is_some() || snapshot::parse_name(n).is_some());
        Identity {
            node_id,
            cluster_id,
        }
        .check_or_record(dir, has_data)?;

        let snap = snapshot::load_newest(dir)?.map(|(s, _)| s);
        if let Some(s) = &snap {
            // A crash between writing a snapshot and removing older ones.
            snapshot::remove_older_than(dir, s.meta.index)?;
        }
        let (base, base_term) = snap
            .as_ref()
            .map_or((0, 0), |s| (s.meta.index, s.meta.term));
        let mut replay = Replay {
            base,
            base_term,
            term_at_base: None,
            entries: Vec::new(),
            hard_state: HardState::default(),
            reset_segment: None,
            keeps_truncated: opts.replay_keeps_truncated,
        };
        let mut wal = Wal::open(dir, opts.segment_size, |path, off, rec| {
            replay.visit(path, off, rec)
        })?;
        replay.finish();
        // Finish what a crash may have interrupted: removing the segments a
        // reset or a snapshot made void.
        if let Some(seq) = replay.reset_segment {
            wal.remove_before(seq)?;
        }
        wal.remove_covered(base)?;

        let last_index = base + replay.entries.len() as u64;
        let mut storage = Storage {
            dir: dir.to_path_buf(),
            opts,
            wal,
            buf: Vec::with_capacity(64 << 10),
            hard_state: replay.hard_state,
            snapshot_index: base,
            snapshot_term: base_term,
            last_index,
            poisoned: None,
            _lock: lock,
        };
        if storage.wal.needs_rotation() {
            storage.rotate()?;
        }
        tracing::info!(
            dir = %dir.display(),
            snapshot_index = base,
            first_index = storage.first_index(),
            last_index,
            term = replay.hard_state.term,
            vote = replay.hard_state.vote,
            commit = replay.hard_state.commit,
            segments = storage.wal.segments().len(),
            "storage recovered"
        );
        let conf = snap.as_ref().map(|s| s.meta.conf.clone());
        Ok((
            storage,
            Recovered {
                hard_state: replay.hard_state,
                snapshot: snap,
                entries: replay.entries,
                conf,
            },
        ))
    }

    fn check(&self) -> Result<()> {
        match &self.poisoned {
            Some(why) => Err(StorageError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    fn poison<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.poisoned = Some(e.to_string());
        }
        r
    }

    /// Opens a new segment starting at the next index, carrying the current
    /// hard state.
    fn rotate(&mut self) -> Result<()> {
        let mut initial = Vec::with_capacity(64);
        record::encode_hard_state(&mut initial, &self.hard_state);
        let r = self.wal.rotate(self.last_index + 1, &initial);
        self.poison(r)
    }

    /// Buffers `entries` for the next `sync`. They must be contiguous, start
    /// after the snapshot and at most one past the last index; an entry at or
    /// below the last index replaces the log from there on (truncation).
    pub fn append(&mut self, entries: &[Entry]) -> Result<()> {
        self.check()?;
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if first.index <= self.snapshot_index {
            return Err(StorageError::Invalid(format!(
                "append at index {} is at or below the snapshot index {}",
                first.index, self.snapshot_index
            )));
        }
        if first.index > self.last_index + 1 {
            return Err(StorageError::Invalid(format!(
                "append at index {} leaves a gap after the last index {}",
                first.index, self.last_index
            )));
        }
        for (i, e) in entries.iter().enumerate() {
            if e.index != first.index + i as u64 {
                return Err(StorageError::Invalid(format!(
                    "appended entries are not contiguous: {} after {}",
                    e.index,
                    e.index.wrapping_sub(1)
                )));
            }
            if record::entry_record_len(e.data.len()) - record::HEADER_LEN > record::MAX_BODY_LEN {
                return Err(StorageError::Invalid(format!(
                    "entry {} carries {} bytes, more than the limit of {}",
                    e.index,
                    e.data.len(),
                    record::MAX_BODY_LEN - 18
                )));
            }
        }
        for e in entries {
            record::encode_entry(&mut self.buf, e);
        }
        self.last_index = entries[entries.len() - 1].index;
        Ok(())
    }

    /// Buffers the hard state for the next `sync` (nothing if unchanged).
    pub fn set_hard_state(&mut self, hs: HardState) -> Result<()> {
        self.check()?;
        if hs != self.hard_state {
            record::encode_hard_state(&mut self.buf, &hs);
            self.hard_state = hs;
        }
        Ok(())
    }

    /// Makes everything buffered durable with one write and one fdatasync
    /// (group commit), then rotates the segment if it is full. A failure
    /// poisons the storage: the caller must stop.
    pub fn sync(&mut self) -> Result<()> {
        self.check()?;
        if self.buf.is_empty() {
            return Ok(());
        }
        self.flush()
    }

    /// Writes the buffer (and fdatasyncs it unless `no_fsync`).
    fn flush(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            let r = self.wal.write(&self.buf);
            self.poison(r)?;
            if !self.opts.no_fsync {
                let r = self.wal.sync_data();
                self.poison(r)?;
            }
            self.buf.clear();
        }
        if self.wal.needs_rotation() {
            self.rotate()?;
        }
        Ok(())
    }

    /// Saves a snapshot of the local state machine durably and atomically,
    /// then removes the log segments it wholly covers. A snapshot at or below
    /// the current one is ignored.
    pub fn save_snapshot(&mut self, snap: &Snapshot) -> Result<()> {
        self.check()?;
        let index = snap.meta.index;
        if index <= self.snapshot_index {
            return Ok(());
        }
        if index > self.last_index {
            return Err(StorageError::Invalid(format!(
                "snapshot at index {index} is beyond the last index {}; use install_snapshot",
                self.last_index
            )));
        }
        let r = snapshot::save(&self.dir, snap);
        self.poison(r)?;
        failpoint::hit(Failpoint::CrashDuringCompaction);
        self.snapshot_index = index;
        self.snapshot_term = snap.meta.term;
        let r = self.wal.remove_covered(index);
        let removed = self.poison(r)?;
        tracing::info!(
            index,
            term = snap.meta.term,
            bytes = snap.data.len(),
            removed_segments = removed,
            "snapshot saved"
        );
        Ok(())
    }

    /// Installs a snapshot received from the leader: saves it, then resets
    /// the log to start right after it (every entry it covers, and every
    /// entry after it, is discarded). Records buffered before are made
    /// durable first so the on-disk order matches the call order.
    pub fn install_snapshot(&mut self, snap: &Snapshot) -> Result<()> {
        self.check()?;
        let index = snap.meta.index;
        if index < self.snapshot_index {
            return Err(StorageError::Invalid(format!(
                "installing snapshot at index {index} would go back from the snapshot at {}",
                self.snapshot_index
            )));
        }
        self.flush()?;
        let r = snapshot::save(&self.dir, snap);
        self.poison(r)?;
        failpoint::hit(Failpoint::CrashDuringSnapshotInstall);
        let mut initial = Vec::with_capacity(96);
        record::encode_reset(&mut initial, index, snap.meta.term);
        record::encode_hard_state(&mut initial, &self.hard_state);
        let r = self.wal.rotate(index + 1, &initial);
        self.poison(r)?;
        self.snapshot_index = index;
        self.snapshot_term = snap.meta.term;
        self.last_index = index;
        let r = self.wal.remove_all_but_active();
        self.poison(r)?;
        tracing::info!(
            index,
            term = snap.meta.term,
            bytes = snap.data.len(),
            "snapshot installed; log reset"
        );
        Ok(())
    }

    /// The index of the last entry appended (buffered or durable), or the
    /// snapshot index when the log after it is empty.
    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// The first index the log can hold: one past the snapshot.
    pub fn first_index(&self) -> u64 {
        self.snapshot_index + 1
    }

    /// The index and term of the newest snapshot ((0, 0) when none).
    pub fn snapshot_index_term(&self) -> (u64, u64) {
        (self.snapshot_index, self.snapshot_term)
    }

    /// The hard state last set (buffered or durable).
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// Whether records are buffered that the next `sync` would write.
    pub fn has_pending(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The data dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Counters since open.
    pub fn stats(&self) -> StorageStats {
        StorageStats {
            wal: self.wal.stats(),
            segments: self.wal.segments().len(),
            snapshot_index: self.snapshot_index,
            active_len: self.wal.active_len(),
        }
    }
}
