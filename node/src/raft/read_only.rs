//! ReadIndex bookkeeping: heartbeat rounds that confirm leadership, the
//! reads waiting on them, and the leader lease they renew.
//!
//! Every heartbeat broadcast is a numbered round whose number travels as the
//! heartbeat context and comes back in the answers. A read that arrives is
//! tied to a fresh round; once a quorum has answered that round, or any later
//! one, the leader was still the leader after the read arrived, so the read
//! may be served at the commit index it recorded on arrival.

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
struct Round {
    id: u64,
    sent_at: u64,
    acks: HashSet<NodeId>,
}

#[derive(Debug)]
struct PendingRead {
    round: u64,
    index: u64,
    ctx: Vec<u8>,
}

/// Heartbeat rounds awaiting a quorum and the reads waiting on them.
#[derive(Debug, Default)]
pub struct ReadOnly {
    rounds: VecDeque<Round>,
    reads: VecDeque<PendingRead>,
    next_round: u64,
    /// When (in leader ticks) the latest round a quorum answered was sent.
    confirmed_at: Option<u64>,
}

/// Rounds older than this many ticks are forgotten; later rounds serve
/// their reads.
const MAX_ROUNDS: usize = 64;

impl ReadOnly {
    /// Starts a heartbeat round at leader tick `now`; returns its number, to
    /// send as heartbeat context.
    pub fn new_round(&mut self, now: u64, self_id: NodeId) -> u64 {
        self.next_round += 1;
        if self.rounds.len() >= MAX_ROUNDS {
            self.rounds.pop_front();
        }
        self.rounds.push_back(Round {
            id: self.next_round,
            sent_at: now,
            acks: HashSet::from([self_id]),
        });
        self.next_round
    }

    /// Registers a read at commit index `index`, confirmed by round `round`
    /// (started after the read arrived) or any later one.
    pub fn add_read(&mut self, round: u64, index: u64, ctx: Vec<u8>) {
        self.reads.push_back(PendingRead { round, index, ctx });
    }

    /// Records that `from` answered round `id`; returns the reads released.
    pub fn ack(&mut self, id: u64, from: NodeId, conf: &ConfState) -> Vec<ReadState> {
        let Some(round) = self.rounds.iter_mut().find(|r| r.id == id) else {
            return Vec::new();
        };
        round.acks.insert(from);
        self.release_quorate(conf)
    }

    /// Releases every read whose round (or a later one) has a quorum, for
    /// instance after a membership change shrank the voter set.
    pub fn release_quorate(&mut self, conf: &ConfState) -> Vec<ReadState> {
        let Some(pos) = self
            .rounds
            .iter()
            .rposition(|r| quorum::has_quorum(conf, |id| r.acks.contains(&id)))
        else {
            return Vec::new();
        };
        let confirmed = &self.rounds[pos];
        let (id, sent_at) = (confirmed.id, confirmed.sent_at);
        self.confirmed_at = Some(self.confirmed_at.map_or(sent_at, |t| t.max(sent_at)));
        self.rounds.drain(..=pos);
        let n = self.reads.iter().take_while(|r| r.round <= id).count();
        self.reads
            .drain(..n)
            .map(|r| ReadState {
                index: r.index,
                ctx: r.ctx,
            })
            .collect()
    }

    /// When the latest quorum-confirmed round was sent, in leader ticks.
    pub fn confirmed_at(&self) -> Option<u64> {
        self.confirmed_at
    }

    /// Overrides the confirmation time (`--bug lease-from-ack` only).
    pub fn confirm_at(&mut self, ticks: u64) {
        self.confirmed_at = Some(ticks);
    }

    /// Forgets everything (leadership lost: nothing can be confirmed).
    pub fn clear(&mut self) {
        self.rounds.clear();
        self.reads.clear();
        self.confirmed_at = None;
    }

    /// The number of reads waiting.
    pub fn len(&self) -> usize {
        self.reads.len()
    }

    /// Whether no read is waiting.
    pub fn is_empty(&self) -> bool {
        self.reads.is_empty()
    }
}

/// Encodes a round number as heartbeat context.
pub fn encode_round(id: u64) -> Vec<u8> {
    id.to_le_bytes().to_vec()
}

/// Decodes heartbeat context written by [`encode_round`]; `None` for anything else.
pub fn decode_round(ctx: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(ctx.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> ConfState {
        ConfState {
            voters: vec![1, 2, 3],
            ..Default::default()
        }
    }

    #[test]
    fn a_read_is_released_by_a_quorum_on_its_round_or_a_later_one() {
        let mut ro = ReadOnly::default();
        let r1 = ro.new_round(0, 1);
        ro.add_read(r1, 5, b"a".to_vec());
        let r2 = ro.new_round(1, 1);
        ro.add_read(r2, 6, b"b".to_vec());
        assert!(
            ro.ack(r1, 1, &three()).is_empty(),
            "the leader alone is no quorum"
        );
        let released = ro.ack(r2, 3, &three());
        assert_eq!(
            released.iter().map(|r| r.index).collect::<Vec<_>>(),
            vec![5, 6]
        );
        assert_eq!(ro.confirmed_at(), Some(1));
        assert!(ro.is_empty());
    }

    #[test]
    fn an_earlier_round_does_not_release_a_later_read() {
        let mut ro = ReadOnly::default();
        let r1 = ro.new_round(0, 1);
        let r2 = ro.new_round(0, 1);
        ro.add_read(r2, 5, vec![]);
        assert!(ro.ack(r1, 2, &three()).is_empty());
        assert_eq!(ro.len(), 1);
    }
}
