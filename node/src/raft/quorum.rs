//! Quorum arithmetic for a majority configuration and for a joint one.

use super::types::{ConfState, NodeId};

/// The outcome of an election so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteResult {
    /// Neither a majority of grants nor of rejections yet.
    Pending,
    /// A majority granted.
    Won,
    /// A majority rejected: the election cannot be won.
    Lost,
}

/// The largest index that a majority of `voters` has matched; `u64::MAX`
/// for an empty set so that it never limits a joint configuration.
fn majority_index(voters: &[NodeId], matched: &impl Fn(NodeId) -> u64) -> u64 {
    if voters.is_empty() {
        return u64::MAX;
    }
    let mut idx: Vec<u64> = voters.iter().map(|&v| matched(v)).collect();
    idx.sort_unstable_by(|a, b| b.cmp(a));
    idx[voters.len() / 2]
}

/// The largest index committed by `conf`: a majority of the voters (and of
/// the outgoing voters too, in a joint configuration) has matched it.
pub fn committed_index(conf: &ConfState, matched: impl Fn(NodeId) -> u64) -> u64 {
    let idx =
        majority_index(&conf.voters, &matched).min(majority_index(&conf.voters_outgoing, &matched));
    if idx == u64::MAX {
        0
    } else {
        idx
    }
}

fn majority_vote(voters: &[NodeId], vote: &impl Fn(NodeId) -> Option<bool>) -> VoteResult {
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let (mut yes, mut missing) = (0, 0);
    for &v in voters {
        match vote(v) {
            Some(true) => yes += 1,
            Some(false) => {}
            None => missing += 1,
        }
    }
    let q = voters.len() / 2 + 1;
    if yes >= q {
        VoteResult::Won
    } else if yes + missing >= q {
        VoteResult::Pending
    } else {
        VoteResult::Lost
    }
}

/// The result of an election given each voter's answer (`None`: no answer yet).
pub fn vote_result(conf: &ConfState, vote: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
    if conf.voters.is_empty() && conf.voters_outgoing.is_empty() {
        // Nobody can be elected by an empty configuration.
        return VoteResult::Lost;
    }
    let a = majority_vote(&conf.voters, &vote);
    let b = majority_vote(&conf.voters_outgoing, &vote);
    match (a, b) {
        (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
        (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
        _ => VoteResult::Pending,
    }
}

/// Whether the nodes for which `yes` holds form a quorum of `conf`.
pub fn has_quorum(conf: &ConfState, yes: impl Fn(NodeId) -> bool) -> bool {
    vote_result(conf, |id| Some(yes(id))) == VoteResult::Won
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(voters: &[NodeId], outgoing: &[NodeId]) -> ConfState {
        ConfState {
            voters: voters.to_vec(),
            voters_outgoing: outgoing.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn committed_index_is_the_median_of_a_majority() {
        let c = conf(&[1, 2, 3], &[]);
        assert_eq!(committed_index(&c, |id| [0, 5, 3, 9][id as usize]), 5);
        let c = conf(&[1, 2, 3, 4], &[]);
        assert_eq!(committed_index(&c, |id| [0, 5, 3, 9, 1][id as usize]), 3);
    }

    #[test]
    fn joint_commit_needs_both_majorities() {
        let c = conf(&[1, 2, 3], &[3, 4, 5]);
        assert_eq!(committed_index(&c, |id| [0, 9, 9, 4, 2, 1][id as usize]), 2);
    }

    #[test]
    fn vote_is_lost_once_a_majority_rejects() {
        let c = conf(&[1, 2, 3], &[]);
        let votes = |v: [Option<bool>; 4]| vote_result(&c, move |id| v[id as usize]);
        assert_eq!(votes([None, Some(true), None, None]), VoteResult::Pending);
        assert_eq!(votes([None, Some(true), Some(true), None]), VoteResult::Won);
        assert_eq!(
            votes([None, Some(true), Some(false), Some(false)]),
            VoteResult::Lost
        );
    }

    proptest::proptest! {
        #[test]
        fn committed_index_is_the_highest_index_a_majority_has(matched in proptest::collection::vec(0u64..20, 1..8)) {
            let voters: Vec<NodeId> = (1..=matched.len() as u64).collect();
            let c = conf(&voters, &[]);
            let got = committed_index(&c, |id| matched[id as usize - 1]);
            let majority = matched.len() / 2 + 1;
            let brute = (0..20).filter(|&i| matched.iter().filter(|&&m| m >= i).count() >= majority).max().unwrap();
            proptest::prop_assert_eq!(got, brute);
        }
    }

    #[test]
    fn an_empty_configuration_elects_nobody() {
        assert_eq!(
            vote_result(&conf(&[], &[]), |_| Some(true)),
            VoteResult::Lost
        );
    }
}
