//! Broken invariants the core detects and refuses: each is reported (in
//! `Ready::violations`) for a message no correct cluster sends, and never
//! for the late, duplicated and reordered messages a correct cluster does
//! send (the simulator checks the latter across thousands of schedules).

use crate::raft_support;

use raft_node::raft::invariant::*;
use raft_node::raft::{HardState, MessageKind, Raft, Role, Violation};
use raft_support::*;

fn names(v: &[Violation]) -> Vec<&'static str> {
    v.iter().map(|v| v.invariant).collect()
}

fn heartbeat(commit: u64) -> MessageKind {
    MessageKind::AppendEntries {
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![],
        commit,
        heartbeat: true,
        context: vec![],
    }
}

fn elected() -> Net {
    let mut net = Net::new(&[1, 2, 3], config);
    leader(&mut net, 1);
    net.propose(1, b"a");
    net.propose(1, b"b");
    net
}

#[test]
fn a_second_leader_in_the_term_is_reported_by_the_leader_and_a_follower_and_ignored() {
    let mut net = elected();
    let term = net.raft(1).status().term;
    let last = net.raft(3).status().last_index;
    let rival = append(last, term, vec![entry(last + 1, term)], 0);
    net.raft(1).step(msg(2, 1, term, rival.clone())).unwrap();
    net.raft(3).step(msg(2, 3, term, rival)).unwrap();
    net.drain_all();
    assert_eq!(names(&net.node(1).violations), vec![TWO_LEADERS_IN_TERM]);
    assert_eq!(names(&net.node(3).violations), vec![TWO_LEADERS_IN_TERM]);
    assert_eq!(net.raft(1).status().role, Role::Leader);
    assert_eq!(net.raft(3).status().leader, 1);
    assert_eq!(
        net.raft(3).status().last_index,
        last,
        "the rival's entry was refused"
    );
}

#[test]
fn an_ack_of_an_index_never_sent_is_reported_and_does_not_commit() {
    let mut net = elected();
    let st = net.raft(1).status();
    net.raft(1)
        .step(msg(2, 1, st.term, ack(st.last_index + 5)))
        .unwrap();
    net.drain(1);
    assert_eq!(names(&net.node(1).violations), vec![ACK_BEYOND_SENT]);
    assert_eq!(net.raft(1).status().commit, st.commit);
    assert_eq!(net.raft(1).progress(2).unwrap().matched, st.last_index);
}

#[test]
fn an_append_that_contradicts_committed_entries_is_reported_and_refused() {
    let mut net = elected();
    let st = net.raft(2).status();
    assert!(st.commit >= 4);
    // A leader of a later term claims another entry at a committed index.
    let later = st.term + 1;
    let liar = append(
        st.commit - 2,
        st.term,
        vec![entry(st.commit - 1, later)],
        st.commit,
    );
    net.raft(2).step(msg(3, 2, later, liar)).unwrap();
    net.drain(2);
    assert_eq!(
        names(&net.node(2).violations),
        vec![APPEND_CONFLICTS_WITH_COMMIT]
    );
    assert_eq!(net.raft(2).raft_log().term(st.commit - 1), Some(st.term));
    // A wrong term at a committed prev index is the same lie.
    let liar = append(st.commit, later, vec![], st.commit);
    net.raft(2).step(msg(3, 2, later, liar)).unwrap();
    net.drain(2);
    assert_eq!(net.node(2).violations.len(), 2);
}

#[test]
fn a_heartbeat_commit_beyond_the_followers_log_is_reported_and_clamped() {
    let mut net = elected();
    let st = net.raft(2).status();
    net.raft(2)
        .step(msg(1, 2, st.term, heartbeat(st.last_index + 3)))
        .unwrap();
    net.drain(2);
    assert_eq!(names(&net.node(2).violations), vec![COMMIT_BEYOND_LOG]);
    assert_eq!(net.raft(2).status().commit, st.last_index);
}

#[test]
fn late_duplicated_and_reordered_messages_of_a_correct_cluster_raise_nothing() {
    let mut net = elected();
    for i in 0..5 {
        net.propose(1, format!("c{i}").as_bytes());
    }
    net.tick_all();
    // Everything delivered so far, again, newest first: stale appends,
    // acks, heartbeats and votes.
    let old: Vec<_> = net.delivered.iter().rev().cloned().collect();
    for m in old {
        let to = m.to;
        let _ = net.raft(to).step(m);
        net.drain(to);
    }
    net.tick_all();
    for id in 1..=3 {
        assert!(
            net.node(id).violations.is_empty(),
            "{id}: {:?}",
            net.node(id).violations
        );
    }
    assert_eq!(net.raft(1).status().role, Role::Leader);
}

fn recovered(terms: &[u64], commit: u64) -> Raft {
    let hs = HardState {
        term: 3,
        vote: 0,
        commit,
    };
    recovered_node(&[1, 2, 3], terms, hs, config(1))
}

#[test]
fn a_recovered_log_whose_terms_go_down_is_cut_there_and_reported() {
    let mut r = recovered(&[1, 2, 2, 1, 1], 2);
    let rd = r.ready();
    assert_eq!(names(&rd.violations), vec![RECOVERED_LOG_TERMS_DECREASE]);
    assert_eq!(r.status().last_index, 3);
    r.advance(rd);
    assert!(r.ready().violations.is_empty(), "reported once");
}

#[test]
fn a_recovered_commit_beyond_the_recovered_log_is_reported_and_clamped() {
    let mut r = recovered(&[1, 1, 2], 9);
    assert_eq!(
        names(&r.ready().violations),
        vec![RECOVERED_COMMIT_BEYOND_LOG]
    );
    assert_eq!(r.status().commit, 3);
    let mut fine = recovered(&[1, 1, 2], 3);
    assert!(fine.ready().violations.is_empty());
}
