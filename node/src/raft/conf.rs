//! Membership changes, one server at a time.
//!
//! A change takes effect on a node as soon as its entry is in the node's log
//! (committed or not, as in Ongaro's thesis, section 4.1), and is undone if
//! that entry is truncated. Because any majority of the old and of the new
//! configuration intersect when they differ by one voter, two leaders can
//! never be elected in one term, whatever mix of the two configurations the
//! nodes hold. The leader proposes a change only when no other change is
//! uncommitted in its log and after it has committed an entry of its own term
//! (the fix for the single-server bug Ongaro reported in 2015). A node
//! becomes a voter only after it has caught up as a learner (section 4.2.1),
//! so that adding it never leaves the cluster waiting for a lagging vote.

use super::error::RaftError;
use super::types::{ConfState, NodeId};

/// A membership change, carried by an `EntryKind::ConfChange` entry.
/// `context` is opaque to the core (the server puts the node's address there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfChange {
    /// Makes `id` a voter (promoting it if it is a learner).
    AddVoter {
        /// The node.
        id: NodeId,
        /// Opaque to the core (the node's address).
        context: Vec<u8>,
    },
    /// Makes `id` a learner: it receives the log but neither votes nor
    /// counts for commit. A voter named here is demoted.
    AddLearner {
        /// The node.
        id: NodeId,
        /// Opaque to the core (the node's address).
        context: Vec<u8>,
    },
    /// Removes `id` from the cluster.
    Remove {
        /// The node.
        id: NodeId,
    },
}

const TAG_ADD_VOTER: u8 = 1;
const TAG_ADD_LEARNER: u8 = 2;
const TAG_REMOVE: u8 = 3;

impl ConfChange {
    /// The node the change is about.
    pub fn node_id(&self) -> NodeId {
        match self {
            ConfChange::AddVoter { id, .. }
            | ConfChange::AddLearner { id, .. }
            | ConfChange::Remove { id } => *id,
        }
    }

    /// The opaque context (empty for `Remove`).
    pub fn context(&self) -> &[u8] {
        match self {
            ConfChange::AddVoter { context, .. } | ConfChange::AddLearner { context, .. } => {
                context
            }
            ConfChange::Remove { .. } => &[],
        }
    }

    /// Encodes the change as entry data: tag, id (u64 LE), context length
    /// (u32 LE), context.
    pub fn encode(&self) -> Vec<u8> {
        let tag = match self {
            ConfChange::AddVoter { .. } => TAG_ADD_VOTER,
            ConfChange::AddLearner { .. } => TAG_ADD_LEARNER,
            ConfChange::Remove { .. } => TAG_REMOVE,
        };
        let ctx = self.context();
        let mut out = Vec::with_capacity(13 + ctx.len());
        out.push(tag);
        out.extend_from_slice(&self.node_id().to_le_bytes());
        out.extend_from_slice(&(ctx.len() as u32).to_le_bytes());
        out.extend_from_slice(ctx);
        out
    }

    /// Decodes entry data written by [`ConfChange::encode`].
    pub fn decode(data: &[u8]) -> Result<ConfChange, RaftError> {
        let bad = |s: &str| Err(RaftError::InvalidConfChange(s.to_string()));
        if data.len() < 13 {
            return bad("conf change entry shorter than its 13-byte header");
        }
        let id = u64::from_le_bytes(data[1..9].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(data[9..13].try_into().expect("4 bytes")) as usize;
        if data.len() != 13 + len {
            return bad("conf change context length does not match the entry size");
        }
        if id == 0 {
            return bad("conf change names node 0");
        }
        let context = data[13..].to_vec();
        match data[0] {
            TAG_ADD_VOTER => Ok(ConfChange::AddVoter { id, context }),
            TAG_ADD_LEARNER => Ok(ConfChange::AddLearner { id, context }),
            TAG_REMOVE if len == 0 => Ok(ConfChange::Remove { id }),
            TAG_REMOVE => bad("a remove carries no context"),
            _ => bad("unknown conf change tag"),
        }
    }

    /// The configuration after this change. Changes are idempotent: adding
    /// a voter twice or removing an absent node changes nothing.
    pub fn apply(&self, conf: &ConfState) -> ConfState {
        let mut next = conf.clone();
        let id = self.node_id();
        next.voters.retain(|&v| v != id);
        next.learners.retain(|&v| v != id);
        match self {
            ConfChange::AddVoter { .. } => next.voters.push(id),
            ConfChange::AddLearner { .. } => next.learners.push(id),
            ConfChange::Remove { .. } => {}
        }
        next.voters.sort_unstable();
        next.learners.sort_unstable();
        next
    }
}

/// Whether `id` votes in `conf` (in either half of a joint configuration).
pub fn is_voter(conf: &ConfState, id: NodeId) -> bool {
    conf.voters.contains(&id) || conf.voters_outgoing.contains(&id)
}

/// Whether `id` is a voter or a learner in `conf`.
pub fn is_member(conf: &ConfState, id: NodeId) -> bool {
    is_voter(conf, id) || conf.learners.contains(&id)
}

/// Every member of `conf`, voters first, without duplicates.
pub fn members(conf: &ConfState) -> Vec<NodeId> {
    let mut all: Vec<NodeId> = conf
        .voters
        .iter()
        .chain(&conf.voters_outgoing)
        .chain(&conf.learners)
        .copied()
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode_returns_the_same_change() {
        for cc in [
            ConfChange::AddVoter {
                id: 7,
                context: b"127.0.0.1:9".to_vec(),
            },
            ConfChange::AddLearner {
                id: 1 << 40,
                context: vec![],
            },
            ConfChange::Remove { id: 3 },
        ] {
            assert_eq!(ConfChange::decode(&cc.encode()).unwrap(), cc);
        }
    }

    #[test]
    fn decoding_garbage_is_an_error_not_a_panic() {
        assert!(ConfChange::decode(&[]).is_err());
        assert!(ConfChange::decode(&[9; 13]).is_err());
        let mut data = ConfChange::AddVoter {
            id: 2,
            context: b"x".to_vec(),
        }
        .encode();
        data.pop();
        assert!(ConfChange::decode(&data).is_err());
    }

    #[test]
    fn add_voter_promotes_a_learner_and_remove_drops_both_roles() {
        let conf = ConfState {
            voters: vec![1, 2],
            learners: vec![3],
            ..Default::default()
        };
        let promoted = ConfChange::AddVoter {
            id: 3,
            context: vec![],
        }
        .apply(&conf);
        assert_eq!(promoted.voters, vec![1, 2, 3]);
        assert!(promoted.learners.is_empty());
        let removed = ConfChange::Remove { id: 3 }.apply(&promoted);
        assert_eq!(removed.voters, vec![1, 2]);
    }
}
