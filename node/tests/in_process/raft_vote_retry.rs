//! Vote requests are retried within one candidacy (§5.1: "Servers retry
//! RPCs if they do not receive a response in a timely manner"): a request
//! lost on the way, or sent to a voter that was down, is asked again every
//! heartbeat interval, and never to a voter that has already answered.

use crate::raft_support;

use raft_node::raft::{Config, Message, MessageKind, NodeId, Raft, Role};
use raft_support::*;

/// Election timeout 10 ticks (so an election starts within 20), heartbeat 2.
fn cfg(id: NodeId, pre_vote: bool) -> Config {
    Config {
        heartbeat_tick: 2,
        pre_vote,
        ..config(id)
    }
}

/// Ticks `r` until it leaves the follower role; returns its first requests.
fn start_campaign(r: &mut Raft) -> Vec<Message> {
    for _ in 0..40 {
        r.tick();
        if r.status().role != Role::Follower {
            return read_messages(r);
        }
    }
    panic!("no campaign within 40 ticks");
}

/// The (pre-)vote requests among `msgs`, as (to, term, pre_vote).
fn requests(msgs: &[Message]) -> Vec<(NodeId, u64, bool)> {
    let mut v: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m.kind {
            MessageKind::RequestVote { pre_vote, .. } => Some((m.to, m.term, pre_vote)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn vote(from: NodeId, term: u64, pre_vote: bool, granted: bool) -> Message {
    msg(
        from,
        1,
        term,
        MessageKind::RequestVoteResponse { pre_vote, granted },
    )
}

#[test]
fn a_candidate_whose_request_was_lost_asks_again_in_the_same_term() {
    let mut r = node_with_log(1, &[1, 2, 3, 4, 5], &[], 1, cfg(1, false));
    let first = requests(&start_campaign(&mut r));
    let term = r.status().term;
    assert_eq!(
        first,
        vec![
            (2, term, false),
            (3, term, false),
            (4, term, false),
            (5, term, false)
        ]
    );
    // Every request was lost: one heartbeat interval later all are asked again.
    r.tick();
    assert!(requests(&read_messages(&mut r)).is_empty(), "too early");
    r.tick();
    assert_eq!(requests(&read_messages(&mut r)), first);
    assert_eq!(r.status().term, term, "a retry is not a new election");
    assert_eq!(r.status().role, Role::Candidate);
}

#[test]
fn a_candidate_does_not_ask_again_a_voter_that_already_answered() {
    let mut r = node_with_log(1, &[1, 2, 3, 4, 5], &[], 1, cfg(1, false));
    start_campaign(&mut r);
    let term = r.status().term;
    // Node 2 granted and node 3 refused: only 4 and 5 are asked again.
    r.step(vote(2, term, false, true)).unwrap();
    r.step(vote(3, term, false, false)).unwrap();
    read_messages(&mut r);
    r.tick();
    r.tick();
    assert_eq!(
        requests(&read_messages(&mut r)),
        vec![(4, term, false), (5, term, false)]
    );
    // A retried request that is then granted wins the election.
    r.step(vote(4, term, false, true)).unwrap();
    assert_eq!(r.status().role, Role::Leader);
    let after: Vec<Message> = read_messages(&mut r);
    assert!(requests(&after).is_empty(), "a leader asks for no votes");
}

#[test]
fn a_pre_candidate_retries_its_pre_vote_requests_for_the_next_term() {
    let mut r = node_with_log(1, &[1, 2, 3], &[], 1, cfg(1, true));
    let first = requests(&start_campaign(&mut r));
    let term = r.status().term;
    assert_eq!(r.status().role, Role::PreCandidate);
    assert_eq!(first, vec![(2, term + 1, true), (3, term + 1, true)]);
    // A refusal carries the voter's own term (it did not move).
    r.step(vote(2, term, true, false)).unwrap();
    read_messages(&mut r);
    r.tick();
    r.tick();
    assert_eq!(
        requests(&read_messages(&mut r)),
        vec![(3, term + 1, true)],
        "only the silent voter is asked again, for the same next term"
    );
    assert_eq!(r.status().term, term, "a pre-candidate keeps its term");
}

#[test]
fn a_voter_that_comes_back_gets_the_retried_request_and_elects_the_candidate() {
    let mut net = Net::new(&[1, 2, 3], |id| cfg(id, false));
    // Node 1 campaigns while both voters are unreachable: its requests are lost.
    net.isolate(1);
    for _ in 0..40 {
        net.raft(1).tick();
        if net.raft(1).status().role == Role::Candidate {
            break;
        }
    }
    net.stabilize();
    let term = net.raft(1).status().term;
    assert_eq!(net.raft(1).status().role, Role::Candidate);
    // The voters come back before the candidate's election timeout: the
    // next retry reaches them and the election ends in the same term.
    net.heal();
    net.raft(1).tick();
    net.raft(1).tick();
    net.stabilize();
    assert_eq!(net.raft(1).status().role, Role::Leader);
    assert_eq!(net.raft(1).status().term, term);
}
