//! A concurrent group-commit front for a write-ahead log: many threads
//! submit records, one committer thread writes everything queued with one
//! write and one fdatasync, then wakes the submitters. No lock is held
//! across the I/O, and records are framed straight into a shared buffer that
//! is swapped, not reallocated, each batch.

use super::dir::DirLock;
use super::error::{Result, StorageError};
use super::record::{self, Record};
use super::wal::Wal;
use super::StorageOptions;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Counters of a group-commit log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Records made durable since open.
    pub records: u64,
    /// Batches written (each one write and, unless `no_fsync`, one fdatasync).
    pub batches: u64,
    /// fdatasync calls.
    pub fsyncs: u64,
}

#[derive(Default)]
struct State {
    /// Framed records waiting for the committer.
    buf: Vec<u8>,
    /// Records submitted so far (a record's number is its position).
    submitted: u64,
    /// Records durable so far.
    durable: u64,
    /// Batch number of `buf`; it parts waiters by batch (see `Shared::done`).
    generation: u64,
    stats: GroupCommitStats,
    failed: Option<String>,
    closing: bool,
    /// The committer is waiting on `work`: only then does a submitter pay
    /// for a wake-up call (the committer re-checks `buf` before waiting).
    committer_idle: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signals the committer that records are queued (or closing).
    work: Condvar,
    /// Signals submitters that `durable` advanced (or the log failed); one
    /// condvar per batch parity, so finishing a batch wakes only its own
    /// writers and not those already queued for the next one.
    done: [Condvar; 2],
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking submitter cannot leave State inconsistent: every
        // update is a single assignment or an append of a whole record.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A write-ahead log of opaque records shared by many writer threads.
pub struct GroupCommit {
    shared: Arc<Shared>,
    committer: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Opens (creating if needed) a group-commit log in `dir`, which it
    /// locks; returns the log and how many records it already held.
    pub fn open(dir: &Path, opts: StorageOptions) -> Result<(GroupCommit, u64)> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io("create dir", dir, e))?;
        let lock = DirLock::acquire(dir)?;
        let mut existing = 0u64;
        let mut wal = Wal::open(dir, opts.segment_size, |path, offset, rec| match rec {
            Record::Raw(_) => {
                existing += 1;
                Ok(())
            }
            _ => Err(StorageError::Corrupt {
                path: path.to_path_buf(),
                offset,
                reason: "not a group-commit log (non-raw record)".into(),
            }),
        })?;
        if wal.needs_rotation() {
            wal.rotate(existing + 1, &[])?;
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buf: Vec::with_capacity(1 << 20),
                submitted: existing,
                durable: existing,
                ..State::default()
            }),
            work: Condvar::new(),
            done: [Condvar::new(), Condvar::new()],
        });
        let s = Arc::clone(&shared);
        let committer = std::thread::Builder::new()
            .name("wal-committer".into())
            .spawn(move || commit_loop(&s, wal, opts.no_fsync, lock))
            .map_err(|e| StorageError::io("spawn committer thread for", dir, e))?;
        Ok((
            GroupCommit {
                shared,
                committer: Some(committer),
            },
            existing,
        ))
    }

    /// Appends one record and returns its number (1-based, counting records
    /// recovered at open) once it is durable.
    pub fn append(&self, payload: &[u8]) -> Result<u64> {
        if record::raw_record_len(payload.len()) - record::HEADER_LEN > record::MAX_BODY_LEN {
            return Err(StorageError::Invalid(format!(
                "record of {} bytes exceeds the limit",
                payload.len()
            )));
        }
        let mut st = self.shared.lock();
        if let Some(why) = &st.failed {
            return Err(StorageError::Poisoned(why.clone()));
        }
        if st.closing {
            return Err(StorageError::Invalid("group-commit log is closing".into()));
        }
        record::encode_raw(&mut st.buf, payload);
        st.submitted += 1;
        let mine = st.submitted;
        let done = &self.shared.done[(st.generation % 2) as usize];
        if st.committer_idle {
            st.committer_idle = false;
            self.shared.work.notify_one();
        }
        while st.durable < mine && st.failed.is_none() {
            st = done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        if st.durable >= mine {
            Ok(mine)
        } else {
            Err(StorageError::Poisoned(
                st.failed.clone().unwrap_or_default(),
            ))
        }
    }

    /// Counters since open.
    pub fn stats(&self) -> GroupCommitStats {
        self.shared.lock().stats
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.work.notify_all();
        if let Some(h) = self.committer.take() {
            let _ = h.join();
        }
    }
}

/// Fails the log if the committer thread unwinds, so that no submitter
/// waits forever for a batch that will never be written.
struct FailOnPanic<'a>(&'a Shared);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut st = self.0.lock();
            st.failed
                .get_or_insert_with(|| "the committer thread panicked".into());
            for c in &self.0.done {
                c.notify_all();
            }
        }
    }
}

fn commit_loop(shared: &Shared, mut wal: Wal, no_fsync: bool, _lock: DirLock) {
    let _guard = FailOnPanic(shared);
    let mut batch = Vec::with_capacity(1 << 20);
    loop {
        let (target, count, generation) = {
            let mut st = shared.lock();
            while st.buf.is_empty() && !st.closing {
                st.committer_idle = true;
                st = shared.work.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            st.committer_idle = false;
            if st.buf.is_empty() {
                return; // closing and drained
            }
            std::mem::swap(&mut st.buf, &mut batch);
            st.generation += 1;
            (st.submitted, st.submitted - st.durable, st.generation - 1)
        };
        // The I/O runs with no lock held: submitters keep queueing into the
        // other buffer meanwhile, which becomes the next batch.
        let r = wal.write(&batch).and_then(|()| {
            if !no_fsync {
                wal.sync_data()?;
            }
            if wal.needs_rotation() {
                wal.rotate(target + 1, &[])?;
            }
            Ok(())
        });
        batch.clear();
        let mut st = shared.lock();
        match r {
            Ok(()) => {
                st.durable = target;
                st.stats.records += count;
                st.stats.batches += 1;
                st.stats.fsyncs = wal.stats().fsyncs;
                shared.done[(generation % 2) as usize].notify_all();
            }
            Err(e) => {
                tracing::error!(error = %e, "group-commit log failed");
                st.failed = Some(e.to_string());
                for c in &shared.done {
                    c.notify_all();
                }
                return;
            }
        }
    }
}
