//! Feature tests beyond the paper's core: pre-vote, check-quorum and the
//! leader lease, ReadIndex, batching, pipelining, fast back-off, compaction
//! and InstallSnapshot, leadership transfer, the durability contract,
//! recovery, and refusal of bad input.

use crate::raft_support;

use raft_node::raft::{
    Config, Entry, EntryKind, InitialState, Message, MessageKind, Raft, RaftError, Role, Snapshot,
    SnapshotMeta,
};
use raft_support::*;

// ---- pre-vote, check-quorum, lease -------------------------------------------

#[test]
fn pre_vote_keeps_a_partitioned_node_from_raising_its_term() {
    let mut net = Net::new(&[1, 2, 3], with(|c| c.pre_vote = true));
    leader(&mut net, 1);
    let term = net.raft(1).status().term;
    net.isolate(3);
    for _ in 0..100 {
        net.raft(3).tick();
        net.stabilize();
    }
    assert_eq!(
        net.raft(3).status().term,
        term,
        "pre-vote rounds do not bump the term"
    );
    net.heal();
    net.tick_all();
    assert_eq!(
        net.raft(1).status().role,
        Role::Leader,
        "the rejoining node does not disrupt the leader"
    );
    assert_eq!(net.raft(1).status().term, term);
}

#[test]
fn without_pre_vote_a_partitioned_node_raises_its_term() {
    let mut net = Net::new(&[1, 2, 3], config);
    leader(&mut net, 1);
    let term = net.raft(1).status().term;
    net.isolate(3);
    for _ in 0..100 {
        net.raft(3).tick();
        net.stabilize();
    }
    assert!(
        net.raft(3).status().term > term + 2,
        "the control case: terms climb"
    );
}

#[test]
fn check_quorum_leader_steps_down_when_it_cannot_hear_a_majority() {
    let mut net = Net::new(&[1, 2, 3], with(|c| c.check_quorum = true));
    leader(&mut net, 1);
    net.isolate(1);
    for _ in 0..25 {
        net.raft(1).tick();
        net.stabilize();
    }
    assert_eq!(net.raft(1).status().role, Role::Follower);
}

#[test]
fn check_quorum_leader_stays_while_a_majority_answers() {
    let mut net = Net::new(&[1, 2, 3], with(|c| c.check_quorum = true));
    leader(&mut net, 1);
    net.cut(1, 3);
    for _ in 0..50 {
        net.raft(1).tick();
        net.stabilize();
    }
    assert_eq!(net.raft(1).status().role, Role::Leader);
}

#[test]
fn check_quorum_follower_ignores_vote_requests_within_the_leader_lease() {
    let mut net = Net::new(&[1, 2, 3], with(|c| c.check_quorum = true));
    leader(&mut net, 1);
    let term = net.raft(2).status().term;
    let last = net.raft(2).raft_log().last_index();
    let last_term = net.raft(2).raft_log().last_term();
    let kind = MessageKind::RequestVote {
        pre_vote: false,
        last_log_index: last,
        last_log_term: last_term,
        leader_transfer: false,
    };
    net.raft(2).step(msg(3, 2, term + 1, kind)).unwrap();
    assert_eq!(
        net.raft(2).status().term,
        term,
        "the request inside the lease is ignored"
    );
    assert!(net.drain(2).is_empty());
}

// ---- ReadIndex ------------------------------------------------------------------

#[test]
fn read_index_is_released_after_a_heartbeat_quorum_at_the_commit_index() {
    let mut net = Net::new(&[1, 2, 3], config);
    leader(&mut net, 1);
    let idx = net.propose(1, b"x");
    net.raft(1).read_index(b"r1".to_vec()).unwrap();
    assert!(net.node(1).reads.is_empty());
    net.stabilize();
    let reads = &net.node(1).reads;
    assert_eq!(reads.len(), 1);
    assert_eq!((reads[0].index, reads[0].ctx.as_slice()), (idx, &b"r1"[..]));
}

#[test]
fn read_index_is_not_released_by_a_leader_cut_off_from_the_majority() {
    let mut net = Net::new(&[1, 2, 3], config);
    leader(&mut net, 1);
    net.isolate(1);
    net.raft(1).read_index(b"r".to_vec()).unwrap();
    for _ in 0..5 {
        net.tick_all();
    }
    assert!(net.node(1).reads.is_empty());
}

#[test]
fn read_index_waits_for_the_new_leader_to_commit_an_entry_of_its_term() {
    let mut net = Net::new(&[1, 2, 3], config);
    leader(&mut net, 1);
    // Leader 2 is elected but cannot replicate its no-op yet.
    net.filter = Some(Box::new(|m: &Message| {
        !matches!(m.kind, MessageKind::AppendEntries { .. })
    }));
    net.campaign(2);
    assert_eq!(net.raft(2).status().role, Role::Leader);
    net.raft(2).read_index(b"r".to_vec()).unwrap();
    net.tick_all();
    assert!(
        net.node(2).reads.is_empty(),
        "no entry of its term is committed yet"
    );
    net.filter = None;
    net.tick_all();
    net.tick_all();
    let commit = net.raft(2).status().commit;
    let reads = &net.node(2).reads;
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].index, commit);
}

#[test]
fn read_index_on_a_follower_names_the_leader() {
    let mut net = Net::new(&[1, 2, 3], config);
    leader(&mut net, 1);
    assert_eq!(
        net.raft(2).read_index(vec![]),
        Err(RaftError::NotLeader { leader: 1 })
    );
}

#[test]
fn lease_read_is_released_without_a_heartbeat_round() {
    let mut net = Net::new(
        &[1, 2, 3],
        with(|c| {
            c.check_quorum = true;
            c.lease_read = true;
        }),
    );
    lease_leader(&mut net, 1);
    net.isolate(1);
    net.raft(1).read_index(b"r".to_vec()).unwrap();
    net.drain(1);
    assert_eq!(net.node(1).reads.len(), 1);
}

// ---- replication: batching, pipelining, back-off ---------------------------

fn appends_to(msgs: &[Message], to: u64) -> Vec<Vec<Entry>> {
    msgs.iter()
        .filter(|m| m.to == to)
        .filter_map(|m| match &m.kind {
            MessageKind::AppendEntries {
                entries,
                heartbeat: false,
                ..
            } => Some(entries.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn batching_caps_entries_and_bytes_per_append() {
    let mut net = Net::new(
        &[1, 2, 3],
        with(|c| {
            c.max_msg_entries = 3;
            c.max_msg_bytes = 10;
            c.max_inflight = 100;
        }),
    );
    leader(&mut net, 1);
    for i in 0..7u8 {
        net.raft(1).propose(vec![i; 2]).unwrap();
    }
    let out = net.drain(1);
    let batches = appends_to(&out, 2);
    assert_eq!(
        batches.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 1],
        "many proposals, few messages"
    );
    let mut big = Net::new(&[1, 2, 3], with(|c| c.max_msg_bytes = 10));
    leader(&mut big, 1);
    for _ in 0..3 {
        big.raft(1).propose(vec![0; 6]).unwrap();
    }
    let out = big.drain(1);
    assert_eq!(
        appends_to(&out, 2).iter().map(Vec::len).collect::<Vec<_>>(),
        vec![1, 1, 1]
    );
}

#[test]
fn pipelining_sends_ahead_but_never_beyond_the_inflight_window() {
    let mut net = Net::new(
        &[1, 2, 3],
        with(|c| {
            c.max_msg_entries = 1;
            c.max_inflight = 3;
        }),
    );
    leader(&mut net, 1);
    for i in 0..10u8 {
        net.raft(1).propose(vec![i]).unwrap();
    }
    let out = net.drain(1);
    assert_eq!(
        appends_to(&out, 2).len(),
        3,
        "three in flight without waiting for acks"
    );
    net.send(out);
    let last = net.raft(1).raft_log().last_index();
    assert_eq!(
        net.raft(2).raft_log().last_index(),
        last,
        "acks refill the window until all is sent"
    );
}

#[test]
fn fast_backoff_skips_a_whole_conflicting_term_per_round_trip() {
    // The follower has 50 entries of term 2 the leader never had.
    let mut leader_log = vec![1u64; 5];
    leader_log.extend([3; 5]);
    let mut follower_log = vec![1u64; 5];
    follower_log.extend([2; 50]);
    let mut net = Net::new(&[], config);
    for (id, log) in [(1u64, &leader_log), (2, &follower_log), (3, &leader_log)] {
        net.add_node(id, Default::default(), config(id));
        net.nodes.get_mut(&id).unwrap().raft = node_with_log(id, &[1, 2, 3], log, 3, config(id));
    }
    net.cut(1, 2);
    net.campaign(1);
    net.heal();
    net.delivered.clear();
    net.tick_all();
    net.tick_all();
    let rejects = net
        .delivered
        .iter()
        .filter(|m| {
            m.from == 2
                && matches!(
                    m.kind,
                    MessageKind::AppendEntriesResponse { reject: true, .. }
                )
        })
        .count();
    assert!(rejects <= 3, "{rejects} rejections for a 50-entry conflict");
    assert_eq!(net.log_terms(2), net.log_terms(1));
}

// ---- compaction and InstallSnapshot ------------------------------------------

#[test]
fn compaction_drops_the_log_prefix_and_refuses_unapplied_indexes() {
    let mut net = Net::new(&[1, 2, 3], config);
    leader(&mut net, 1);
    let idx = net.propose(1, b"x");
    net.tick_all();
    assert_eq!(net.raft(1).status().applied, idx);
    assert!(matches!(
        net.raft(1).compact(idx + 1, vec![]),
        Err(RaftError::InvalidArgument(_))
    ));
    net.raft(1).compact(idx, b"image".to_vec()).unwrap();
    assert_eq!(net.raft(1).status().snapshot_index, idx);
    assert!(net.raft(1).raft_log().entries().is_empty());
    assert!(matches!(
        net.raft(1).compact(idx, vec![]),
        Err(RaftError::InvalidArgument(_))
    ));
}

#[test]
fn a_follower_behind_the_compacted_log_receives_the_snapshot() {
    let mut net = Net::new(&[1, 2, 3], config);
    leader(&mut net, 1);
    net.isolate(3);
    for i in 0..5u8 {
        net.propose(1, &[i]);
    }
    net.tick_all();
    let applied = net.raft(1).status().applied;
    net.raft(1).compact(applied, b"image".to_vec()).unwrap();
    net.heal();
    // Its appends were lost: after a few heartbeat rounds without progress
    // the leader probes, finds the entries compacted and sends the snapshot.
    for _ in 0..4 {
        net.tick_all();
    }
    assert_eq!(net.node(3).snapshots_received, 1);
    let snap = net.node(3).disk.snapshot.clone().expect("persisted");
    assert_eq!(
        (snap.meta.index, snap.data.as_slice()),
        (applied, &b"image"[..])
    );
    assert_eq!(snap.meta.conf.voters, vec![1, 2, 3]);
    let idx = net.propose(1, b"after");
    net.tick_all();
    assert_eq!(net.raft(3).status().applied, idx);
    assert_eq!(
        net.applied_data(3),
        vec![b"after".to_vec()],
        "only entries after the snapshot are applied"
    );
}

#[test]
fn a_snapshot_the_follower_already_covers_is_acknowledged_not_installed() {
    let mut r = node_with_log(1, &[1, 2, 3], &[1, 1, 1], 1, config(1));
    let snap = Snapshot {
        meta: SnapshotMeta {
            index: 2,
            term: 1,
            conf: Default::default(),
        },
        data: vec![],
    };
    r.step(msg(
        2,
        1,
        1,
        MessageKind::InstallSnapshot { snapshot: snap },
    ))
    .unwrap();
    let rd = r.ready();
    assert!(rd.snapshot.is_none());
    assert_eq!(
        r.raft_log().last_index(),
        3,
        "the entry after the snapshot is kept"
    );
    assert_eq!(r.status().commit, 2);
}

// ---- leadership transfer ----------------------------------------------------

#[test]
fn transfer_leader_to_an_up_to_date_follower() {
    let mut net = Net::new(&[1, 2, 3], config);
    leader(&mut net, 1);
    net.raft(1).transfer_leader(2).unwrap();
    net.stabilize();
    assert_eq!(net.raft(2).status().role, Role::Leader);
    assert_eq!(net.raft(1).status().role, Role::Follower);
}

#[test]
fn transfer_leader_to_a_lagging_follower_catches_it_up_first() {
    let mut net = Net::new(&[1, 2, 3], config);
    leader(&mut net, 1);
    net.isolate(3);
    net.propose(1, b"x");
    net.heal();
    net.raft(1).transfer_leader(3).unwrap();
    assert_eq!(
        net.raft(1).propose(b"y".to_vec()),
        Err(RaftError::ProposalDropped)
    );
    net.stabilize();
    assert_eq!(net.raft(3).status().role, Role::Leader);
    assert!(net
        .raft(3)
        .raft_log()
        .entries()
        .iter()
        .any(|e| e.data == b"x"));
}

#[test]
fn transfer_leader_is_abandoned_after_an_election_timeout() {
    let mut net = Net::new(&[1, 2, 3], config);
    leader(&mut net, 1);
    net.isolate(3);
    net.raft(1).transfer_leader(3).unwrap();
    for _ in 0..10 {
        net.tick_all();
    }
    assert_eq!(net.raft(1).status().role, Role::Leader);
    assert!(
        net.raft(1).propose(b"y".to_vec()).is_ok(),
        "proposals resume"
    );
}

#[test]
fn transfer_leader_bypasses_the_lease_of_the_voters() {
    let mut net = Net::new(
        &[1, 2, 3],
        with(|c| {
            c.check_quorum = true;
            c.pre_vote = true;
        }),
    );
    leader(&mut net, 1);
    net.raft(1).transfer_leader(3).unwrap();
    net.stabilize();
    assert_eq!(net.raft(3).status().role, Role::Leader);
}

// ---- durability contract, recovery, bad input ------------------------------

#[test]
fn a_vote_leaves_only_in_a_ready_that_persists_it() {
    let mut r = node_with_log(1, &[1, 2, 3], &[], 1, config(1));
    let kind = MessageKind::RequestVote {
        pre_vote: false,
        last_log_index: 0,
        last_log_term: 0,
        leader_transfer: false,
    };
    r.step(msg(2, 1, 2, kind)).unwrap();
    let rd = r.ready();
    assert_eq!(rd.messages.len(), 1);
    let hs = rd
        .hard_state
        .expect("the vote is in the same Ready as the response");
    assert_eq!((hs.term, hs.vote), (2, 2));
    assert!(
        rd.must_sync(),
        "a vote must be on disk before the grant leaves"
    );
}

#[test]
fn a_commit_index_change_alone_needs_no_sync() {
    let mut r = node_with_log(1, &[1, 2, 3], &[], 1, config(1));
    r.step(msg(
        2,
        1,
        1,
        append(0, 0, vec![entry(1, 1), entry(2, 1)], 0),
    ))
    .unwrap();
    let rd = r.ready();
    assert!(rd.must_sync(), "new entries must be synced before the ack");
    r.advance(rd);
    // A heartbeat-like append that only moves the commit index.
    r.step(msg(2, 1, 1, append(2, 1, vec![], 2))).unwrap();
    let rd = r.ready();
    let hs = rd.hard_state.expect("the new commit index is handed out");
    assert_eq!((hs.term, hs.commit), (1, 2));
    assert!(
        !rd.must_sync(),
        "a commit index change alone forced an fsync before the reply"
    );
    assert_eq!(rd.committed_entries.len(), 2);
}

#[test]
fn appended_entries_are_acknowledged_only_in_the_ready_that_persists_them() {
    let mut r = node_with_log(1, &[1, 2, 3], &[], 1, config(1));
    r.step(msg(
        2,
        1,
        1,
        append(0, 0, vec![entry(1, 1), entry(2, 1)], 0),
    ))
    .unwrap();
    let rd = r.ready();
    assert_eq!(
        rd.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(rd
        .messages
        .iter()
        .any(|m| matches!(m.kind, MessageKind::AppendEntriesResponse { index: 2, .. })));
}

#[test]
fn a_restarted_node_recovers_term_vote_and_log_from_its_disk() {
    let mut net = Net::new(&[1, 2, 3], config);
    leader(&mut net, 1);
    let idx = net.propose(1, b"x");
    net.tick_all();
    let before = net.raft(2).status();
    net.restart(2, config(2));
    let after = net.raft(2).status();
    assert_eq!(
        (after.term, after.vote, after.last_index),
        (before.term, before.vote, before.last_index)
    );
    net.drain(2);
    assert_eq!(
        net.applied_data(2),
        vec![b"x".to_vec()],
        "committed entries are re-applied from the log"
    );
    assert!(after.commit >= idx);
}

#[test]
fn a_single_node_cluster_commits_alone() {
    let mut net = Net::new(&[1], config);
    net.campaign(1);
    assert_eq!(net.raft(1).status().role, Role::Leader);
    let idx = net.propose(1, b"solo");
    assert_eq!(net.raft(1).status().commit, idx);
    net.raft(1).read_index(b"r".to_vec()).unwrap();
    net.drain(1);
    assert_eq!(net.node(1).reads.len(), 1);
}

#[test]
fn bad_messages_are_refused_with_an_error() {
    let mut r = node_with_log(1, &[1, 2, 3], &[], 1, config(1));
    let ok = append(0, 0, vec![], 0);
    assert!(
        matches!(
            r.step(msg(2, 9, 1, ok.clone())),
            Err(RaftError::InvalidMessage(_))
        ),
        "wrong recipient"
    );
    assert!(
        matches!(
            r.step(msg(0, 1, 1, ok.clone())),
            Err(RaftError::InvalidMessage(_))
        ),
        "no sender"
    );
    assert!(
        matches!(r.step(msg(2, 1, 0, ok)), Err(RaftError::InvalidMessage(_))),
        "term 0"
    );
    let gap = append(0, 0, vec![entry(1, 1), entry(3, 1)], 0);
    assert!(
        matches!(r.step(msg(2, 1, 1, gap)), Err(RaftError::InvalidMessage(_))),
        "gap in entries"
    );
    let bad_cc = Entry {
        index: 1,
        term: 1,
        kind: EntryKind::ConfChange,
        data: vec![1, 2, 3],
    };
    let cc = append(0, 0, vec![bad_cc], 0);
    assert!(
        matches!(r.step(msg(2, 1, 1, cc)), Err(RaftError::InvalidMessage(_))),
        "undecodable conf change"
    );
    assert_eq!(r.raft_log().last_index(), 0);
}

#[test]
fn bad_configs_and_recovered_state_are_refused_with_an_error() {
    let bad = [
        Config { id: 0, ..config(1) },
        Config {
            heartbeat_tick: 0,
            ..config(1)
        },
        Config {
            election_tick: 1,
            ..config(1)
        },
        Config {
            max_inflight: 0,
            ..config(1)
        },
        Config {
            election_tick: u64::MAX,
            ..config(1)
        },
        Config {
            max_msg_entries: 0,
            ..config(1)
        },
        Config {
            lease_read: true,
            check_quorum: false,
            ..config(1)
        },
    ];
    for cfg in bad {
        assert!(matches!(
            Raft::new(cfg, InitialState::default()),
            Err(RaftError::InvalidConfig(_))
        ));
    }
    let gap = InitialState {
        entries: vec![entry(1, 1), entry(3, 1)],
        ..Default::default()
    };
    assert!(matches!(
        Raft::new(config(1), gap),
        Err(RaftError::InvalidConfig(_))
    ));
}

#[test]
fn followers_refuse_proposals_and_name_the_leader() {
    let mut net = Net::new(&[1, 2, 3], config);
    leader(&mut net, 1);
    assert_eq!(
        net.raft(2).propose(b"x".to_vec()),
        Err(RaftError::NotLeader { leader: 1 })
    );
}

#[test]
fn lease_read_falls_back_to_a_heartbeat_round_once_the_lease_expires() {
    let mut net = Net::new(
        &[1, 2, 3],
        with(|c| {
            c.check_quorum = true;
            c.lease_read = true;
        }),
    );
    lease_leader(&mut net, 1);
    net.cut(1, 2);
    net.cut(1, 3);
    for _ in 0..9 {
        net.raft(1).tick();
        net.stabilize();
    }
    assert_eq!(net.raft(1).status().role, Role::Leader);
    net.raft(1).read_index(b"r".to_vec()).unwrap();
    net.stabilize();
    assert!(
        net.node(1).reads.is_empty(),
        "the lease expired: the read needs a quorum"
    );
    net.heal();
    net.tick_all();
    assert_eq!(net.node(1).reads.len(), 1);
}

#[test]
fn lease_read_restarted_node_ignores_votes_for_one_election_timeout() {
    let cfg = with(|c| {
        c.check_quorum = true;
        c.lease_read = true;
    });
    let mut net = Net::new(&[1, 2, 3], &cfg);
    lease_leader(&mut net, 1);
    net.restart(2, cfg(2));
    let st = net.raft(2).status();
    let kind = MessageKind::RequestVote {
        pre_vote: false,
        last_log_index: st.last_index,
        last_log_term: st.last_term,
        leader_transfer: false,
    };
    net.raft(2).step(msg(3, 2, st.term + 1, kind)).unwrap();
    assert_eq!(
        net.raft(2).status().term,
        st.term,
        "ignored right after the restart"
    );
}

#[test]
fn a_node_restarted_after_compaction_resumes_from_its_snapshot() {
    let mut net = Net::new(&[1, 2, 3], config);
    leader(&mut net, 1);
    for i in 0..3u8 {
        net.propose(1, &[i]);
    }
    net.tick_all();
    let applied = net.raft(2).status().applied;
    net.raft(2).compact(applied, b"image".to_vec()).unwrap();
    let snap = net.raft(2).raft_log().snapshot().unwrap().clone();
    net.nodes.get_mut(&2).unwrap().disk.compact(snap);
    let idx = net.propose(1, b"after");
    net.tick_all();
    net.restart(2, config(2));
    let st = net.raft(2).status();
    assert_eq!((st.snapshot_index, st.applied), (applied, applied));
    net.drain(2);
    assert_eq!(
        net.applied_data(2),
        vec![b"after".to_vec()],
        "only what follows the snapshot is replayed"
    );
    assert_eq!(net.raft(2).status().applied, idx);
}

#[test]
fn a_snapshot_records_the_configuration_at_its_index_not_a_later_one() {
    let mut net = Net::new(&[1, 2, 3], config);
    net.add_node(4, Default::default(), config(4));
    leader(&mut net, 1);
    let before = net.raft(1).status().applied;
    net.isolate(2);
    net.isolate(3);
    net.raft(1)
        .propose_conf_change(raft_node::raft::ConfChange::AddLearner {
            id: 4,
            context: vec![],
        })
        .unwrap();
    net.stabilize();
    assert_eq!(
        net.raft(1).status().conf.learners,
        vec![4],
        "in effect, not committed"
    );
    net.raft(1).compact(before, vec![]).unwrap();
    let snap = net.raft(1).raft_log().snapshot().unwrap();
    assert!(
        snap.meta.conf.learners.is_empty(),
        "the change after the snapshot index is not in it"
    );
    assert_eq!(snap.meta.conf.voters, vec![1, 2, 3]);
}
