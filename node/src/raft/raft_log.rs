//! The in-memory log: the latest snapshot point plus every entry after it,
//! with the cursors that say what is committed, handed out and durable.

use super::types::{Entry, Snapshot};

/// The log since the last snapshot. Storage only persists what the core
/// hands out in `Ready`; the core keeps its own copy here.
#[derive(Debug, Default)]
pub struct RaftLog {
    snapshot_index: u64,
    snapshot_term: u64,
    /// `entries[0].index == snapshot_index + 1`.
    entries: Vec<Entry>,
    committed: u64,
    /// Committed entries up to here were handed out for applying.
    applying: u64,
    /// The caller confirmed it applied up to here (`advance`).
    applied: u64,
    /// Entries up to here were handed out for persisting.
    stabled: u64,
    /// The latest snapshot, kept to send to lagging followers.
    snapshot: Option<Snapshot>,
    /// A snapshot received from the leader, not yet handed out.
    pending_snapshot: Option<Snapshot>,
}

impl RaftLog {
    /// A log recovered from a snapshot point and the durable entries after it.
    pub fn new(snapshot_index: u64, snapshot_term: u64, entries: Vec<Entry>) -> RaftLog {
        let stabled = snapshot_index + entries.len() as u64;
        RaftLog {
            snapshot_index,
            snapshot_term,
            entries,
            committed: snapshot_index,
            applying: snapshot_index,
            applied: snapshot_index,
            stabled,
            snapshot: None,
            pending_snapshot: None,
        }
    }

    /// The first index still in memory.
    pub fn first_index(&self) -> u64 {
        self.snapshot_index + 1
    }

    /// The index of the last entry (the snapshot index if the log is empty).
    pub fn last_index(&self) -> u64 {
        self.snapshot_index + self.entries.len() as u64
    }

    /// The term of the last entry.
    pub fn last_term(&self) -> u64 {
        self.entries.last().map_or(self.snapshot_term, |e| e.term)
    }

    /// The index the last snapshot covers.
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }

    /// The highest index known committed.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// The highest index the caller has applied.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The highest index handed out to persist.
    pub fn stabled(&self) -> u64 {
        self.stabled
    }

    /// The latest snapshot, if any.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The term of the entry at `index`, if it is known (not compacted away,
    /// not beyond the end).
    pub fn term(&self, index: u64) -> Option<u64> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if it is in memory.
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        if index <= self.snapshot_index {
            return None;
        }
        self.entries.get((index - self.snapshot_index - 1) as usize)
    }

    /// Every entry in memory, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether a log ending at (`index`, `term`) is at least as up to date as
    /// this one (section 5.4.1: the later last term wins, then the longer log).
    pub fn is_up_to_date(&self, index: u64, term: u64) -> bool {
        term > self.last_term() || (term == self.last_term() && index >= self.last_index())
    }

    /// The first of `entries` that is not already in the log (a different
    /// term at its index, or past the end); `None` if all are present.
    pub fn find_conflict(&self, entries: &[Entry]) -> Option<usize> {
        entries
            .iter()
            .position(|e| self.term(e.index) != Some(e.term))
    }

    /// Appends `entries`, replacing any suffix from `entries[0].index` on.
    /// The caller guarantees `first_index <= entries[0].index <= last_index + 1`.
    pub fn append(&mut self, entries: Vec<Entry>) {
        let Some(first) = entries.first().map(|e| e.index) else {
            return;
        };
        debug_assert!(first > self.snapshot_index && first <= self.last_index() + 1);
        self.entries
            .truncate((first - self.snapshot_index - 1) as usize);
        self.stabled = self.stabled.min(first - 1);
        self.entries.extend(entries);
    }

    /// Appends one entry at the end.
    pub fn push(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index() + 1);
        self.entries.push(entry);
    }

    /// The last index in `entries` having term `term` at or below `at_most`.
    pub fn last_index_of_term(&self, term: u64, at_most: u64) -> Option<u64> {
        let mut i = at_most.min(self.last_index());
        while i >= self.snapshot_index {
            match self.term(i) {
                Some(t) if t == term => return Some(i),
                Some(t) if t < term => return None,
                Some(_) => {}
                None => return None,
            }
            if i == 0 {
                break;
            }
            i -= 1;
        }
        None
    }

    /// The first index of the run of entries with the same term as the
    /// entry at `index` (at least the first index in memory).
    pub fn first_index_of_term_at(&self, index: u64) -> u64 {
        let Some(term) = self.term(index) else {
            return index;
        };
        let mut i = index;
        while i > self.first_index() && self.term(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// Up to `max_entries` entries from `lo`, at most `max_bytes` of data
    /// (always at least one if there is one).
    pub fn slice(&self, lo: u64, max_entries: usize, max_bytes: u64) -> Vec<Entry> {
        if lo <= self.snapshot_index || lo > self.last_index() {
            return Vec::new();
        }
        let start = (lo - self.snapshot_index - 1) as usize;
        let mut bytes = 0u64;
        let mut out = Vec::new();
        for e in self.entries[start..].iter().take(max_entries) {
            bytes += e.data.len() as u64;
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e.clone());
        }
        out
    }

    /// Raises the commit index (never lowers it).
    pub fn commit_to(&mut self, index: u64) {
        if index > self.committed {
            debug_assert!(index <= self.last_index());
            self.committed = index;
        }
    }

    /// Whether there are entries not yet handed out to persist.
    pub fn has_unstable(&self) -> bool {
        self.last_index() > self.stabled
    }

    /// Hands out the entries not yet handed out to persist.
    pub fn take_unstable(&mut self) -> Vec<Entry> {
        let from = (self.stabled.max(self.snapshot_index) - self.snapshot_index) as usize;
        let out = self.entries[from..].to_vec();
        self.stabled = self.last_index();
        out
    }

    /// Whether committed entries wait to be handed out for applying.
    pub fn has_next_committed(&self) -> bool {
        self.committed.min(self.last_index()) > self.applying
    }

    /// Hands out the committed entries not yet handed out for applying.
    pub fn take_committed(&mut self) -> Vec<Entry> {
        let hi = self.committed.min(self.last_index());
        if hi <= self.applying {
            return Vec::new();
        }
        let lo = (self.applying - self.snapshot_index) as usize;
        let out = self.entries[lo..(hi - self.snapshot_index) as usize].to_vec();
        self.applying = hi;
        out
    }

    /// The caller applied everything handed out so far.
    pub fn applied_to_handed(&mut self) {
        self.applied = self.applying;
    }

    /// Drops the entries up to `index` (applied), keeping `snapshot` to send.
    pub fn compact(&mut self, snapshot: Snapshot) {
        let index = snapshot.meta.index;
        debug_assert!(index > self.snapshot_index && index <= self.applied);
        self.entries.drain(..(index - self.snapshot_index) as usize);
        self.snapshot_index = index;
        self.snapshot_term = snapshot.meta.term;
        self.snapshot = Some(snapshot);
    }

    /// Replaces the whole log with a snapshot received from the leader.
    pub fn restore(&mut self, snapshot: Snapshot) {
        self.entries.clear();
        self.snapshot_index = snapshot.meta.index;
        self.snapshot_term = snapshot.meta.term;
        self.committed = snapshot.meta.index;
        self.applying = snapshot.meta.index;
        self.stabled = snapshot.meta.index;
        self.pending_snapshot = Some(snapshot.clone());
        self.snapshot = Some(snapshot);
    }

    /// Keeps a recovered snapshot to send to followers (no hand-out: the
    /// caller restored it itself).
    pub fn set_recovered_snapshot(&mut self, snapshot: Snapshot) {
        self.snapshot = Some(snapshot);
    }

    /// Whether a received snapshot waits to be handed out.
    pub fn has_pending_snapshot(&self) -> bool {
        self.pending_snapshot.is_some()
    }

    /// Hands out the received snapshot.
    pub fn take_pending_snapshot(&mut self) -> Option<Snapshot> {
        self.pending_snapshot.take()
    }
}
