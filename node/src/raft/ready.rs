//! What the core hands to its caller: the Ready batch, and status views.

use super::invariant::Violation;
use super::message::Message;
use super::read_only::ReadState;
use super::types::{ConfState, Entry, HardState, NodeId, Snapshot};

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Follows a leader (or waits for one).
    #[default]
    Follower,
    /// Runs a pre-vote round before a real election.
    PreCandidate,
    /// Asks for votes in a new term.
    Candidate,
    /// Leads its term.
    Leader,
}

/// Volatile state worth telling the caller about when it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SoftState {
    /// The known leader, 0 if none.
    pub leader: NodeId,
    /// This node's role.
    pub role: Role,
}

/// One batch of work for the caller, to be done in this order: persist
/// `snapshot`, `entries` and `hard_state` (fsync), then send `messages`,
/// then restore from `snapshot` and apply `committed_entries`, serve
/// `read_states` once applied far enough, then call `Raft::advance`.
#[derive(Debug, Default)]
pub struct Ready {
    /// Role or leader changed.
    pub soft_state: Option<SoftState>,
    /// Persist before sending any message.
    pub hard_state: Option<HardState>,
    /// The term or the vote in `hard_state` changed: it must be durable
    /// before any message leaves. A change of the commit index alone need
    /// not be synced (Raft's commitIndex is volatile state: a restarted node
    /// re-learns it from the leader, and a stale one only delays applying),
    /// so it rides along with the next sync, as in etcd's `MustSync`.
    pub hard_state_must_sync: bool,
    /// Received from the leader: persist it, then restore the state machine
    /// from it (it replaces the whole log up to its index).
    pub snapshot: Option<Snapshot>,
    /// Append to the durable log; if `entries[0].index` is at or below the
    /// last durable index, the durable suffix from there is replaced.
    pub entries: Vec<Entry>,
    /// Send only after the above are durable.
    pub messages: Vec<Message>,
    /// Apply in order (after the snapshot, if any).
    pub committed_entries: Vec<Entry>,
    /// Serve each read once the state machine has applied `index`.
    pub read_states: Vec<ReadState>,
    /// The membership changed (the caller updates its peer set).
    pub conf: Option<ConfState>,
    /// Broken invariants detected since the last Ready (the core refused
    /// what they would have done); the caller reports each as a finding.
    pub violations: Vec<Violation>,
}

impl Ready {
    /// Whether something must be durable before this Ready's messages
    /// leave (so an fsync is needed).
    pub fn must_sync(&self) -> bool {
        self.hard_state_must_sync || self.snapshot.is_some() || !self.entries.is_empty()
    }
}

/// A snapshot of the core's state, for the caller's status page and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: u64,
    /// Whom it voted for in `term` (0: nobody).
    pub vote: NodeId,
    /// The leader it knows of (0: none).
    pub leader: NodeId,
    /// The highest index it knows committed.
    pub commit: u64,
    /// The highest index the caller confirmed applied (via `advance`).
    pub applied: u64,
    /// The index of its last log entry.
    pub last_index: u64,
    /// The term of its last log entry.
    pub last_term: u64,
    /// The index its latest snapshot covers.
    pub snapshot_index: u64,
    /// The configuration in effect.
    pub conf: ConfState,
}
