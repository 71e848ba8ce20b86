//! Plain data shared by the core, the storage and the server.

/// A node's identity within a cluster; 0 means "none".
pub type NodeId = u64;

/// What an entry carries: a client command for the state machine, or a
/// membership change the core itself interprets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EntryKind {
    /// A client command (or the leader's empty no-op).
    #[default]
    Normal,
    /// An encoded `ConfChange`.
    ConfChange,
}

/// One log entry. An empty `Normal` entry is the no-op a new leader appends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// The term of the leader that created it.
    pub term: u64,
    /// Its position in the log, from 1.
    pub index: u64,
    /// What it carries.
    pub kind: EntryKind,
    /// The payload, opaque to the core for `Normal` entries.
    pub data: Vec<u8>,
}

/// The state that must be durable before any message depending on it leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    /// The current term.
    pub term: u64,
    /// The candidate voted for in `term`; 0 when none.
    pub vote: NodeId,
    /// The highest index known committed.
    pub commit: u64,
}

/// Cluster membership. `voters_outgoing` is non-empty only during a joint
/// configuration (C_old,new): decisions then need a majority of both sets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfState {
    /// The voters (of the incoming configuration, when joint).
    pub voters: Vec<NodeId>,
    /// Members that receive the log but do not vote.
    pub learners: Vec<NodeId>,
    /// The outgoing voters of a joint configuration (empty otherwise; this
    /// core changes one server at a time and never creates one).
    pub voters_outgoing: Vec<NodeId>,
}

/// What a snapshot covers: the log up to and including `index`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotMeta {
    /// The last index the snapshot covers.
    pub index: u64,
    /// The term of the entry at `index`.
    pub term: u64,
    /// The configuration in effect at `index`.
    pub conf: ConfState,
}

/// A state-machine image plus the metadata the core needs to resume from it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// What it covers.
    pub meta: SnapshotMeta,
    /// The state machine image, opaque to the core.
    pub data: Vec<u8>,
}
