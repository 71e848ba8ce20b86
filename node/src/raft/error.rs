//! The errors the core returns: bad input or a refused request, never a panic.

use super::types::NodeId;

/// Why the core refused a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaftError {
    /// Only the leader accepts this; `leader` is the known leader, 0 if none.
    #[error("not the leader (leader hint: {leader})")]
    NotLeader {
        /// The leader this node knows of, 0 if none.
        leader: NodeId,
    },
    /// The leader is transferring leadership (or leaving) and takes no proposals.
    #[error("proposal dropped: leadership transfer or removal in progress")]
    ProposalDropped,
    /// A membership change is already in the log and not committed, or the
    /// leader has not yet committed an entry of its own term.
    #[error("a configuration change is pending")]
    ConfChangePending,
    /// The membership change is not allowed (for example removing the last voter).
    #[error("invalid configuration change: {0}")]
    InvalidConfChange(String),
    /// A message that no correct peer sends (wrong recipient, gaps in entries...).
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// A configuration value or recovered state that the core cannot run with.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// An argument out of range (for example compacting past `applied`).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}
