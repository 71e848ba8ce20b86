//! Membership change, one server at a time (Ongaro's thesis, chapter 4):
//! learners, promotion, removal (of the leader too), the one-change-at-a-time
//! rule, configurations undone by truncation, and nodes that join empty.

use crate::raft_support;

use raft_node::raft::{ConfChange, ConfState, EntryKind, MessageKind, RaftError, Role};
use raft_support::*;

fn add_voter(id: u64) -> ConfChange {
    ConfChange::AddVoter {
        id,
        context: format!("127.0.0.1:{id}").into_bytes(),
    }
}

fn add_learner(id: u64) -> ConfChange {
    ConfChange::AddLearner {
        id,
        context: vec![],
    }
}

fn cluster_with_joiner() -> Net {
    let mut net = Net::new(&[1, 2, 3], config);
    net.add_node(4, ConfState::default(), config(4));
    net.campaign(1);
    net.tick_all();
    net
}

fn change(net: &mut Net, leader: u64, cc: ConfChange) -> u64 {
    let idx = net.raft(leader).propose_conf_change(cc).expect("accepted");
    net.stabilize();
    net.tick_all();
    idx
}

#[test]
fn a_learner_receives_the_log_but_does_not_vote_or_count_for_commit() {
    let mut net = cluster_with_joiner();
    change(&mut net, 1, add_learner(4));
    let idx = net.propose(1, b"x");
    net.tick_all();
    assert_eq!(
        net.raft(4).status().commit,
        idx,
        "the learner follows the log"
    );
    assert_eq!(net.raft(4).status().conf.learners, vec![4]);
    assert_eq!(
        net.raft(4).status().conf.voters,
        vec![1, 2, 3],
        "it learned the bootstrap voters from the log"
    );
    // With two voters down the learner cannot complete a quorum.
    net.isolate(2);
    net.isolate(3);
    let idx = net.raft(1).propose(b"y".to_vec()).unwrap();
    net.stabilize();
    assert!(net.raft(1).status().commit < idx);
    // And it never campaigns.
    for _ in 0..50 {
        net.raft(4).tick();
    }
    assert_eq!(net.raft(4).status().role, Role::Follower);
}

#[test]
fn a_node_votes_only_after_catching_up_as_a_learner() {
    let mut net = cluster_with_joiner();
    assert!(matches!(
        net.raft(1).propose_conf_change(add_voter(4)),
        Err(RaftError::InvalidConfChange(_))
    ));
    net.isolate(4);
    change(&mut net, 1, add_learner(4));
    assert!(
        matches!(
            net.raft(1).propose_conf_change(add_voter(4)),
            Err(RaftError::InvalidConfChange(_))
        ),
        "the learner has not caught up"
    );
    net.heal();
    net.tick_all();
    net.tick_all();
    assert!(net.raft(1).propose_conf_change(add_voter(4)).is_ok());
}

#[test]
fn a_promoted_learner_votes_and_counts_for_commit() {
    let mut net = cluster_with_joiner();
    change(&mut net, 1, add_learner(4));
    change(&mut net, 1, add_voter(4));
    assert_eq!(net.raft(1).status().conf.voters, vec![1, 2, 3, 4]);
    net.isolate(3);
    let idx = net.propose(1, b"x");
    assert_eq!(
        net.raft(1).status().commit,
        idx,
        "1, 2 and 4 are a majority of four"
    );
    net.isolate(2);
    let idx = net.raft(1).propose(b"y".to_vec()).unwrap();
    net.stabilize();
    assert!(
        net.raft(1).status().commit < idx,
        "1 and 4 are not a majority of four"
    );
}

#[test]
fn a_removed_follower_no_longer_counts_for_commit() {
    let mut net = Net::new(&[1, 2, 3], config);
    net.campaign(1);
    net.tick_all();
    change(&mut net, 1, ConfChange::Remove { id: 3 });
    net.isolate(3);
    let idx = net.propose(1, b"x");
    assert_eq!(
        net.raft(1).status().commit,
        idx,
        "1 and 2 are the whole cluster"
    );
    assert_eq!(net.raft(1).status().conf.voters, vec![1, 2]);
}

#[test]
fn a_removed_leader_steps_down_once_its_removal_commits() {
    let mut net = Net::new(&[1, 2, 3], config);
    net.campaign(1);
    net.tick_all();
    change(&mut net, 1, ConfChange::Remove { id: 1 });
    assert_eq!(net.raft(1).status().role, Role::Follower);
    for _ in 0..30 {
        net.tick_all();
    }
    let leaders: Vec<u64> = [2, 3]
        .into_iter()
        .filter(|&id| net.raft(id).status().role == Role::Leader)
        .collect();
    assert_eq!(leaders.len(), 1, "the remaining voters elect a leader");
    for _ in 0..30 {
        net.raft(1).tick();
    }
    assert_eq!(
        net.raft(1).status().role,
        Role::Follower,
        "the removed node never campaigns"
    );
}

#[test]
fn only_one_conf_change_may_be_uncommitted_at_a_time() {
    let mut net = cluster_with_joiner();
    net.isolate(2);
    net.isolate(3);
    net.raft(1).propose_conf_change(add_learner(4)).unwrap();
    assert_eq!(
        net.raft(1).propose_conf_change(add_voter(4)),
        Err(RaftError::ConfChangePending)
    );
    net.heal();
    net.tick_all();
    net.tick_all();
    assert!(
        net.raft(1).propose_conf_change(add_voter(4)).is_ok(),
        "accepted once the first commits"
    );
}

#[test]
fn a_new_leader_proposes_no_conf_change_before_committing_an_entry_of_its_term() {
    let mut net = Net::new(&[1, 2, 3], config);
    net.campaign(1);
    net.tick_all();
    net.filter = Some(Box::new(|m| {
        !matches!(m.kind, MessageKind::AppendEntries { .. })
    }));
    net.campaign(2);
    assert_eq!(net.raft(2).status().role, Role::Leader);
    assert_eq!(
        net.raft(2).propose_conf_change(add_learner(4)),
        Err(RaftError::ConfChangePending)
    );
}

#[test]
fn removing_the_last_voter_is_refused() {
    let mut net = Net::new(&[1], config);
    net.campaign(1);
    assert!(matches!(
        net.raft(1)
            .propose_conf_change(ConfChange::Remove { id: 1 }),
        Err(RaftError::InvalidConfChange(_))
    ));
}

#[test]
fn a_conf_change_takes_effect_on_append_and_is_undone_by_truncation() {
    let mut net = Net::new(&[1, 2, 3], config);
    net.campaign(1);
    net.tick_all();
    // Only the leader holds the change: in effect at once, not committed.
    net.isolate(1);
    net.raft(1).propose_conf_change(add_learner(4)).unwrap();
    net.stabilize();
    let st = net.raft(1).status();
    assert_eq!(st.conf.learners, vec![4], "in effect as soon as appended");
    assert!(st.commit < st.last_index);
    // Node 3 leads a new term without it; node 1's copy is truncated.
    net.campaign(3);
    assert_eq!(net.raft(3).status().role, Role::Leader);
    net.heal();
    net.tick_all();
    net.tick_all();
    assert_eq!(net.raft(1).status().role, Role::Follower);
    assert!(
        net.raft(1).status().conf.learners.is_empty(),
        "undone with the truncated entry"
    );
    assert_eq!(net.log_terms(1), net.log_terms(3));
}

#[test]
fn ready_reports_the_new_configuration_and_the_entry_carries_the_context() {
    let mut net = cluster_with_joiner();
    change(&mut net, 1, add_learner(4));
    let idx = net.raft(1).propose_conf_change(add_voter(4)).unwrap();
    let rd = net.raft(1).ready();
    assert_eq!(
        rd.conf.as_ref().map(|c| c.voters.clone()),
        Some(vec![1, 2, 3, 4])
    );
    let e = rd
        .entries
        .iter()
        .find(|e| e.index == idx)
        .expect("the change is in the entries");
    assert_eq!(e.kind, EntryKind::ConfChange);
    assert_eq!(ConfChange::decode(&e.data).unwrap(), add_voter(4));
    net.raft(1).advance(rd);
}

#[test]
fn a_joining_node_catches_up_from_a_snapshot_that_carries_the_configuration() {
    let mut net = cluster_with_joiner();
    for i in 0..3u8 {
        net.propose(1, &[i]);
    }
    net.tick_all();
    let applied = net.raft(1).status().applied;
    net.raft(1).compact(applied, b"image".to_vec()).unwrap();
    change(&mut net, 1, add_learner(4));
    change(&mut net, 1, add_voter(4));
    net.tick_all();
    let st = net.raft(4).status();
    assert_eq!(st.snapshot_index, applied);
    assert_eq!(st.conf.voters, vec![1, 2, 3, 4]);
    assert_eq!(st.commit, net.raft(1).status().commit);
}
