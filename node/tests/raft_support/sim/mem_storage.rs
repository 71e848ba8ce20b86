//! A simulated node's durable state and state machine.

use raft_node::raft::{ConfState, Entry, HardState, InitialState, Ready, Snapshot};

/// What one node has on its "disk": exactly what Ready asked to persist.
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    /// The last persisted hard state.
    pub hard_state: HardState,
    /// The latest snapshot (received or taken locally).
    pub snapshot: Option<Snapshot>,
    /// The persisted log after the snapshot.
    pub entries: Vec<Entry>,
    /// The configuration the node was bootstrapped with.
    pub bootstrap: ConfState,
}

impl MemStorage {
    /// Persists the durable parts of a Ready: snapshot, entries, hard state.
    pub fn persist(&mut self, rd: &Ready) {
        if let Some(s) = &rd.snapshot {
            self.entries.clear();
            self.snapshot = Some(s.clone());
        }
        if let Some(first) = rd.entries.first() {
            let keep = self
                .entries
                .iter()
                .take_while(|e| e.index < first.index)
                .count();
            self.entries.truncate(keep);
            self.entries.extend(rd.entries.iter().cloned());
        }
        if let Some(hs) = rd.hard_state {
            self.hard_state = hs;
        }
    }

    /// Stores a snapshot the node took itself and drops the log it covers.
    pub fn compact(&mut self, snapshot: Snapshot) {
        let index = snapshot.meta.index;
        self.entries.retain(|e| e.index > index);
        self.snapshot = Some(snapshot);
    }

    /// What a restarted node recovers.
    pub fn initial_state(&self) -> InitialState {
        InitialState {
            hard_state: self.hard_state,
            conf: self
                .snapshot
                .as_ref()
                .map_or_else(|| self.bootstrap.clone(), |s| s.meta.conf.clone()),
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
        }
    }
}

/// A toy state machine: a hash chain over the applied entries, so that two
/// nodes that applied different entries at one index are told apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashMachine {
    /// The last applied index.
    pub applied: u64,
    /// The chain hash after applying `applied`.
    pub hash: u64,
}

impl HashMachine {
    pub fn apply(&mut self, e: &Entry) {
        self.applied = e.index;
        let mut h = self.hash ^ 0xcbf2_9ce4_8422_2325;
        for b in e
            .index
            .to_le_bytes()
            .iter()
            .chain(&e.term.to_le_bytes())
            .chain(&e.data)
        {
            h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
        }
        self.hash = h;
    }

    pub fn encode(&self) -> Vec<u8> {
        [self.applied.to_le_bytes(), self.hash.to_le_bytes()].concat()
    }

    pub fn decode(data: &[u8]) -> HashMachine {
        let word = |i: usize| {
            u64::from_le_bytes(data[i * 8..i * 8 + 8].try_into().expect("16-byte image"))
        };
        HashMachine {
            applied: word(0),
            hash: word(1),
        }
    }
}
