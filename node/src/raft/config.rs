//! The core's tunables.

use super::error::RaftError;
use super::types::NodeId;
use crate::bugs::Bugs;

/// How one core behaves. Times are in ticks: the caller decides how long a
/// tick is (the node uses its heartbeat interval).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// This node's id (non-zero).
    pub id: NodeId,
    /// Base election timeout; the real one is drawn in
    /// `[election_tick, 2 * election_tick)` after every reset, so that
    /// candidates rarely split the vote. Must exceed `heartbeat_tick`.
    pub election_tick: u64,
    /// A leader sends heartbeats every `heartbeat_tick` ticks.
    pub heartbeat_tick: u64,
    /// Campaign with a pre-vote round first, so that a node that was cut off
    /// does not bump the term of a healthy cluster when it comes back.
    pub pre_vote: bool,
    /// A leader that has not heard from a majority within an election
    /// timeout steps down; followers that heard from a leader within that
    /// timeout ignore vote requests (a leader lease).
    pub check_quorum: bool,
    /// Batching: at most this many entries per AppendEntries.
    pub max_msg_entries: usize,
    /// Batching: at most this many bytes of entry data per AppendEntries
    /// (one entry is always sent, however large).
    pub max_msg_bytes: u64,
    /// Pipelining: at most this many AppendEntries in flight per follower.
    /// Throughput is about window / round-trip (Little's law), so the window
    /// must cover one round-trip of traffic; a larger one only adds memory
    /// and wasted resends after a loss.
    pub max_inflight: usize,
    /// Seeds the core's own PRNG (the randomized election timeout).
    pub seed: u64,
    /// Serve ReadIndex from the leader lease without a heartbeat round
    /// while a quorum confirmed leadership less than an election timeout
    /// ago. Saves a round trip per read, but is correct only if the nodes'
    /// ticks run at similar speeds (a paused or slow leader clock breaks
    /// it); requires `check_quorum`. A node built with it ignores vote
    /// requests for its first election timeout, since it may have promised
    /// a lease before a restart.
    pub lease_read: bool,
    /// Deliberate defects (`--bug`) that live in the core; none by default.
    pub bugs: Bugs,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            id: 1,
            election_tick: 10,
            heartbeat_tick: 1,
            pre_vote: true,
            check_quorum: true,
            max_msg_entries: 256,
            max_msg_bytes: 1 << 20,
            max_inflight: 256,
            seed: 0,
            lease_read: false,
            bugs: Bugs::NONE,
        }
    }
}

impl Config {
    /// Checks the values the core relies on.
    pub fn validate(&self) -> Result<(), RaftError> {
        let bad = |s: &str| Err(RaftError::InvalidConfig(s.to_string()));
        if self.id == 0 {
            return bad("id must be non-zero");
        }
        if self.heartbeat_tick == 0 {
            return bad("heartbeat_tick must be at least 1");
        }
        if self.election_tick <= self.heartbeat_tick {
            return bad("election_tick must be greater than heartbeat_tick");
        }
        if self.election_tick > u32::MAX as u64 {
            return bad("election_tick must fit in 32 bits");
        }
        if self.max_msg_entries == 0 {
            return bad("max_msg_entries must be at least 1");
        }
        if self.max_inflight == 0 {
            return bad("max_inflight must be at least 1");
        }
        if self.lease_read && !self.check_quorum {
            return bad("lease_read requires check_quorum");
        }
        Ok(())
    }
}
