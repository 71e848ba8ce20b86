//! Plain data shared by the core, the storage and the server.

/// A node's identity within a cluster; 0 means "none".
pub type NodeId = u64;

/// What an entry carries: a client command for the state machine, or a
/// membership change the core itself interprets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EntryKind {
    #[default]
    Normal,
    ConfChange,
}

/// One log entry. An empty `Normal` entry is the no-op a new leader appends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    pub term: u64,
    pub index: u64,
    pub kind: EntryKind,
    pub data: Vec<u8>,
}

/// The state that must be durable before any message depending on it leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    pub term: u64,
    /// The candidate voted for in `term`; 0 when none.
    pub vote: NodeId,
    pub commit: u64,
}

/// Cluster membership. `voters_outgoing` is non-empty only during a joint
/// configuration (C_old,new): decisions then need a majority of both sets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfState {
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    pub voters_outgoing: Vec<NodeId>,
}

/// What a snapshot covers: the log up to and including `index`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotMeta {
    pub index: u64,
    pub term: u64,
    pub conf: ConfState,
}

/// A state-machine image plus the metadata the core needs to resume from it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}
