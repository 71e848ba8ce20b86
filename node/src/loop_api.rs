//! What the rest of the node says to the core loop ([`crate::node_loop`]):
//! the requests it takes, the outcomes it answers with, and the handle the
//! network side holds. Kept apart so that the servers and the loop depend
//! on this module, not on each other.

use crate::kv;
use crate::raft::{ConfState, Message, NodeId};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

/// Where the leader is, as far as this node knows.
#[derive(Debug, Clone, Default)]
pub struct LeaderHint {
    pub id: NodeId,
    pub addr: String,
}

/// The fate of a write, as the client must learn it.
#[derive(Debug)]
pub enum WriteOutcome {
    /// Committed and applied at `index`, with the state machine's answer.
    Applied { index: u64, result: kv::WriteResult },
    /// Certainly not appended: this node is not the leader.
    NotLeader(LeaderHint),
    /// Appended, but its fate cannot be known here.
    Unknown(String),
    /// Certainly not done for another reason.
    Unavailable(String),
}

/// The answer to a linearizable read.
#[derive(Debug)]
pub enum ReadOutcome {
    Value(Option<Vec<u8>>),
    NotLeader(LeaderHint),
    Unavailable(String),
}

/// Membership and leadership calls.
#[derive(Debug)]
pub enum AdminOp {
    TransferLeader(NodeId),
    AddVoter(NodeId, String),
    AddLearner(NodeId, String),
    Remove(NodeId),
}

/// What the Status call reports.
#[derive(Debug, Clone, Default)]
pub struct NodeStatus {
    pub id: NodeId,
    pub role: String,
    pub term: u64,
    pub leader_id: NodeId,
    pub commit: u64,
    pub applied: u64,
    pub last_index: u64,
    pub snapshot_index: u64,
    pub conf: ConfState,
    /// The state machine's digest as of `applied` ([`crate::kv::KvStore::digest`]).
    pub state_digest: u64,
}

/// A request to the loop.
pub enum Request {
    Peer(Message),
    Write {
        cmd: Vec<u8>,
        reply: oneshot::Sender<WriteOutcome>,
    },
    Read {
        key: String,
        reply: oneshot::Sender<ReadOutcome>,
    },
    Admin {
        op: AdminOp,
        reply: oneshot::Sender<WriteOutcome>,
    },
    Status {
        reply: oneshot::Sender<NodeStatus>,
    },
}

/// Handle to the event loop shared by every handler.
#[derive(Clone)]
pub struct LoopHandle {
    pub tx: UnboundedSender<Request>,
    pub cluster_id: u64,
    pub id: NodeId,
    /// How long a client request may wait for its outcome.
    pub request_timeout: Duration,
    /// Started with `--test-hooks`: the Failpoint call is allowed.
    pub test_hooks: bool,
    /// Started with `--tls-dir`: admin and Failpoint calls need a client
    /// certificate naming `admin` (see [`crate::tls::check_admin`]).
    pub tls: bool,
}

impl LoopHandle {
    /// Hands `r` to the loop; an error once the loop is gone.
    pub fn send(&self, r: Request) -> Result<(), tonic::Status> {
        self.tx
            .send(r)
            .map_err(|_| tonic::Status::unavailable("node is shutting down"))
    }
}
