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
    /// A (pre-)candidate asks for a vote.
    RequestVote {
        /// A pre-vote round: the voter promises nothing and keeps its term.
        pre_vote: bool,
        /// The index of the candidate's last entry.
        last_log_index: u64,
        /// The term of the candidate's last entry.
        last_log_term: u64,
        /// The old leader asked for this election (TimeoutNow), so voters
        /// grant it even inside their leader lease.
        leader_transfer: bool,
    },
    /// The answer to `RequestVote`.
    RequestVoteResponse {
        /// Answers a pre-vote request.
        pre_vote: bool,
        /// The vote is granted.
        granted: bool,
    },
    /// Log replication, or (with `heartbeat`) a leadership heartbeat.
    AppendEntries {
        /// The index of the entry just before `entries`.
        prev_log_index: u64,
        /// The term of that entry.
        prev_log_term: u64,
        /// The entries to append, contiguous from `prev_log_index + 1`.
        entries: Vec<Entry>,
        /// The leader's commit index (for a heartbeat, capped at what the
        /// follower is known to match).
        commit: u64,
        /// A heartbeat: no log check, no entries.
        heartbeat: bool,
        /// Heartbeat round number, echoed back (ReadIndex and the lease).
        context: Vec<u8>,
    },
    /// The answer to `AppendEntries` and `InstallSnapshot`.
    AppendEntriesResponse {
        /// The entries were refused: the log check failed (or the term was stale).
        reject: bool,
        /// On success the last index the follower now matches; on
        /// rejection the rejected `prev_log_index`.
        index: u64,
        /// On rejection, the follower's term at `index` (0 if its log is
        /// shorter), so that the leader can skip that whole term.
        conflict_term: u64,
        /// On rejection, the first index of `conflict_term` in the
        /// follower's log, or its last index + 1 if the log is shorter.
        conflict_index: u64,
        /// Answers a heartbeat.
        heartbeat: bool,
        /// The heartbeat's context, echoed.
        context: Vec<u8>,
    },
    /// The leader's snapshot, for a follower whose missing entries were compacted.
    InstallSnapshot {
        /// The snapshot, data included.
        snapshot: Snapshot,
    },
    /// Leadership transfer: the receiver campaigns at once.
    TimeoutNow,
}

impl MessageKind {
    /// A successful answer to an append (or snapshot) covering up to `index`.
    pub fn accept(index: u64) -> MessageKind {
        MessageKind::AppendEntriesResponse {
            reject: false,
            index,
            conflict_term: 0,
            conflict_index: 0,
            heartbeat: false,
            context: Vec::new(),
        }
    }
}

impl Message {
    /// Whether this message is a vote or pre-vote request.
    pub fn is_vote_request(&self) -> bool {
        matches!(self.kind, MessageKind::RequestVote { .. })
    }
}
