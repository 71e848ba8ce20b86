//! ReadIndex bookkeeping: reads waiting for a heartbeat round to confirm
//! that the leader is still the leader.

use std::collections::{HashSet, VecDeque};

use super::quorum;
use super::types::{ConfState, NodeId};

/// A read the state machine may serve once it has applied `index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadState {
    /// The commit index when the read arrived.
    pub index: u64,
    /// The caller's context, returned unchanged.
    pub ctx: Vec<u8>,
}

#[derive(Debug)]
struct PendingRead {
    seq: u64,
    index: u64,
    ctx: Vec<u8>,
    acks: HashSet<NodeId>,
}

/// Reads waiting for leadership confirmation, in arrival order. Each gets a
/// sequence number that the heartbeat round carries as its context.
#[derive(Debug, Default)]
pub struct ReadOnly {
    pending: VecDeque<PendingRead>,
    next_seq: u64,
}

impl ReadOnly {
    /// Registers a read at commit index `index`; returns the sequence
    /// number to send as heartbeat context.
    pub fn add(&mut self, index: u64, ctx: Vec<u8>, self_id: NodeId) -> u64 {
        self.next_seq += 1;
        let seq = self.next_seq;
        self.pending.push_back(PendingRead {
            seq,
            index,
            ctx,
            acks: HashSet::from([self_id]),
        });
        seq
    }

    /// Records that `from` answered the heartbeat carrying `seq`, and
    /// returns the reads now released: the acked one has a quorum, and so do
    /// all earlier ones, since the heartbeat left after they arrived.
    pub fn ack(&mut self, seq: u64, from: NodeId, conf: &ConfState) -> Vec<ReadState> {
        let Some(pos) = self.pending.iter().position(|r| r.seq == seq) else {
            return Vec::new();
        };
        self.pending[pos].acks.insert(from);
        let acks = &self.pending[pos].acks;
        if !quorum::has_quorum(conf, |id| acks.contains(&id)) {
            return Vec::new();
        }
        self.pending
            .drain(..=pos)
            .map(|r| ReadState {
                index: r.index,
                ctx: r.ctx,
            })
            .collect()
    }

    /// Releases every read that already has a quorum (after a membership
    /// change shrank the voter set, or for a single-voter cluster).
    pub fn release_quorate(&mut self, conf: &ConfState) -> Vec<ReadState> {
        let last = self
            .pending
            .iter()
            .rposition(|r| quorum::has_quorum(conf, |id| r.acks.contains(&id)));
        match last {
            Some(pos) => self
                .pending
                .drain(..=pos)
                .map(|r| ReadState {
                    index: r.index,
                    ctx: r.ctx,
                })
                .collect(),
            None => Vec::new(),
        }
    }

    /// Drops every pending read (leadership lost: they cannot be confirmed).
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    /// The number of reads waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no read is waiting.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Encodes a read sequence number as heartbeat context.
pub fn encode_seq(seq: u64) -> Vec<u8> {
    seq.to_le_bytes().to_vec()
}

/// Decodes heartbeat context written by [`encode_seq`]; `None` for anything else.
pub fn decode_seq(ctx: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(ctx.try_into().ok()?))
}
