//! The messages cores exchange: Raft's RPCs and their answers.

use super::types::{Entry, NodeId, Snapshot};

/// One message between two cores; `term` is the sender's term (for a
/// pre-vote request, the term the sender would campaign in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The recipient.
    pub to: NodeId,
    /// The sender's term (for a pre-vote request, the term it would campaign in).
    pub term: u64,
    /// What the message asks or answers.
    pub kind: MessageKind,
}

/// What a message asks or answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageKind {
    /// A (pre-)candidate asks for a vote; `leader_transfer` lets it through
    /// a voter's leader lease because the old leader asked for it.
    RequestVote {
        pre_vote: bool,
        last_log_index: u64,
        last_log_term: u64,
        leader_transfer: bool,
    },
    /// The answer to `RequestVote`.
    RequestVoteResponse { pre_vote: bool, granted: bool },
    /// Log replication, or (with `heartbeat`) a leadership heartbeat whose
    /// `context` the follower echoes so that ReadIndex can count acks.
    AppendEntries {
        prev_log_index: u64,
        prev_log_term: u64,
        entries: Vec<Entry>,
        commit: u64,
        heartbeat: bool,
        context: Vec<u8>,
    },
    /// The answer to `AppendEntries` and `InstallSnapshot`. On success
    /// `index` is the last index the follower now matches; on rejection it is
    /// the rejected `prev_log_index`, and `conflict_term`/`conflict_index`
    /// let the leader skip a whole term at once.
    AppendEntriesResponse {
        reject: bool,
        index: u64,
        conflict_term: u64,
        conflict_index: u64,
        heartbeat: bool,
        context: Vec<u8>,
    },
    /// The leader's snapshot, for a follower whose missing entries were compacted.
    InstallSnapshot { snapshot: Snapshot },
    /// Leadership transfer: the receiver campaigns at once.
    TimeoutNow,
}

impl Message {
    /// Whether this message is a vote or pre-vote request.
    pub fn is_vote_request(&self) -> bool {
        matches!(self.kind, MessageKind::RequestVote { .. })
    }
}
