//! Paper tests: each is named after a sentence of the Raft paper (Ongaro and
//! Ousterhout, "In Search of an Understandable Consensus Algorithm",
//! extended version) and cites its section, in the style of etcd's
//! raft_paper_test.go.

use crate::raft_support;

use raft_node::raft::{MessageKind, Role};
use raft_support::*;

fn leader_of_three() -> Net {
    let mut net = Net::new(&[1, 2, 3], config);
    net.campaign(1);
    assert_eq!(net.raft(1).status().role, Role::Leader);
    net
}

/// §5.1: "If one server's current term is smaller than the other's, then it
/// updates its current term to the larger value. If a candidate or leader
/// discovers that its term is out of date, it immediately reverts to follower state."
#[test]
fn update_term_from_message_reverts_any_role_to_follower() {
    for role in [Role::Follower, Role::Candidate, Role::Leader] {
        let mut net = Net::new(&[1, 2, 3], config);
        match role {
            Role::Candidate => {
                net.isolate(1);
                net.campaign(1);
            }
            Role::Leader => net.campaign(1),
            _ => {}
        }
        assert_eq!(net.raft(1).status().role, role);
        let term = net.raft(1).status().term;
        net.raft(1)
            .step(msg(2, 1, term + 5, append(0, 0, vec![], 0)))
            .unwrap();
        let st = net.raft(1).status();
        assert_eq!(
            (st.term, st.role),
            (term + 5, Role::Follower),
            "from {role:?}"
        );
    }
}

/// §5.1: "If a server receives a request with a stale term number, it
/// rejects the request" (and its answer carries the newer term).
#[test]
fn reject_stale_term_message_and_answer_with_the_current_term() {
    let mut r = node_with_log(1, &[1, 2, 3], &[], 5, config(1));
    r.step(msg(2, 1, 3, append(0, 0, vec![entry(1, 3)], 0)))
        .unwrap();
    assert_eq!(
        r.raft_log().last_index(),
        0,
        "the stale append must not be applied"
    );
    let out = read_messages(&mut r);
    assert!(matches!(
        out.as_slice(),
        [m] if m.term == 5 && matches!(m.kind, MessageKind::AppendEntriesResponse { reject: true, .. })
    ));
}

/// §5.2: "When servers start up, they begin as followers."
#[test]
fn start_as_follower() {
    let r = node_with_log(1, &[1, 2, 3], &[], 0, config(1));
    assert_eq!(r.status().role, Role::Follower);
}

/// §5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that carry no
/// log entries) to all followers in order to maintain their authority."
#[test]
fn leader_bcast_beat_every_heartbeat_tick() {
    let mut net = leader_of_three();
    net.raft(1).tick();
    let out = net.drain(1);
    let beats: Vec<_> = out
        .iter()
        .filter(|m| matches!(&m.kind, MessageKind::AppendEntries { heartbeat: true, entries, .. } if entries.is_empty()))
        .map(|m| m.to)
        .collect();
    assert_eq!(beats, vec![2, 3]);
}

/// §5.2: "If a follower receives no communication over a period of time
/// called the election timeout, then it assumes there is no viable leader
/// and begins an election": it increments its term, votes for itself and
/// issues RequestVote RPCs to the other servers.
#[test]
fn nonleader_start_election_after_the_election_timeout() {
    for candidate_first in [false, true] {
        let mut r = node_with_log(1, &[1, 2, 3], &[], 1, config(1));
        if candidate_first {
            for _ in 0..20 {
                r.tick();
            }
            read_messages(&mut r);
            assert_eq!(r.status().role, Role::Candidate);
        }
        let term = r.status().term;
        for _ in 0..20 {
            // Drop the retried requests of an earlier candidacy (§5.1).
            read_messages(&mut r);
            r.tick();
            if r.status().term > term {
                break;
            }
        }
        let st = r.status();
        assert_eq!((st.role, st.term, st.vote), (Role::Candidate, term + 1, 1));
        let out = read_messages(&mut r);
        let to: Vec<_> = out
            .iter()
            .filter(|m| m.is_vote_request())
            .map(|m| (m.to, m.term))
            .collect();
        assert_eq!(to, vec![(2, term + 1), (3, term + 1)]);
    }
}

/// §5.2: "A candidate wins an election if it receives votes from a majority
/// of the servers in the full cluster for the same term."
#[test]
fn leader_election_in_one_round_needs_a_majority() {
    // (cluster size, granted votes besides its own, expected role)
    let cases = [
        (1, 0, Role::Leader),
        (3, 1, Role::Leader),
        (3, 2, Role::Leader),
        (5, 2, Role::Leader),
        (5, 1, Role::Candidate),
        (3, 0, Role::Candidate),
    ];
    for (size, grants, want) in cases {
        let voters: Vec<u64> = (1..=size).collect();
        let mut r = node_with_log(1, &voters, &[], 1, config(1));
        for _ in 0..20 {
            r.tick();
        }
        read_messages(&mut r);
        let term = r.status().term;
        for v in 2..2 + grants {
            let granted = MessageKind::RequestVoteResponse {
                pre_vote: false,
                granted: true,
            };
            r.step(msg(v, 1, term, granted)).unwrap();
        }
        assert_eq!(r.status().role, want, "size {size}, grants {grants}");
    }
}

/// §5.2: a candidate that a majority rejects cannot win and returns to follower.
#[test]
fn candidate_rejected_by_a_majority_becomes_follower() {
    let mut r = node_with_log(1, &[1, 2, 3], &[], 1, config(1));
    for _ in 0..20 {
        r.tick();
    }
    let term = r.status().term;
    for v in [2, 3] {
        r.step(msg(
            v,
            1,
            term,
            MessageKind::RequestVoteResponse {
                pre_vote: false,
                granted: false,
            },
        ))
        .unwrap();
    }
    assert_eq!(r.status().role, Role::Follower);
}

/// §5.2: "Each server will vote for at most one candidate in a given term,
/// on a first-come-first-served basis."
#[test]
fn follower_vote_at_most_once_per_term() {
    // (already voted for, candidate, granted)
    for (vote, candidate, granted) in [
        (0, 2, true),
        (0, 3, true),
        (2, 2, true),
        (3, 3, true),
        (2, 3, false),
        (3, 2, false),
    ] {
        let mut r = node_with_log(1, &[1, 2, 3], &[], 1, config(1));
        if vote != 0 {
            let kind = MessageKind::RequestVote {
                pre_vote: false,
                last_log_index: 0,
                last_log_term: 0,
                leader_transfer: false,
            };
            r.step(msg(vote, 1, 1, kind)).unwrap();
            read_messages(&mut r);
        }
        let kind = MessageKind::RequestVote {
            pre_vote: false,
            last_log_index: 0,
            last_log_term: 0,
            leader_transfer: false,
        };
        r.step(msg(candidate, 1, 1, kind)).unwrap();
        let out = read_messages(&mut r);
        assert!(
            matches!(out.as_slice(), [m] if m.kind == MessageKind::RequestVoteResponse { pre_vote: false, granted }),
            "vote {vote}, candidate {candidate}: {out:?}"
        );
    }
}

/// §5.2: "While waiting for votes, a candidate may receive an AppendEntries
/// RPC from another server claiming to be leader. If the leader's term is at
/// least as large as the candidate's current term, then the candidate
/// recognizes the leader as legitimate and returns to follower state."
#[test]
fn candidate_fallback_on_append_from_a_legitimate_leader() {
    for extra in [0, 1] {
        let mut r = node_with_log(1, &[1, 2, 3], &[], 1, config(1));
        for _ in 0..20 {
            r.tick();
        }
        let term = r.status().term;
        r.step(msg(2, 1, term + extra, append(0, 0, vec![], 0)))
            .unwrap();
        let st = r.status();
        assert_eq!(
            (st.role, st.leader, st.term),
            (Role::Follower, 2, term + extra)
        );
    }
}

/// §5.2: "Raft uses randomized election timeouts to ensure that split votes
/// are rare": the timeout is drawn from [election_tick, 2 * election_tick).
#[test]
fn election_timeout_is_randomized_within_one_to_two_timeouts() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let mut cfg = config(1);
        cfg.seed = seed;
        let mut r = node_with_log(1, &[1, 2, 3], &[], 1, cfg);
        let mut ticks = 0;
        while r.status().role == Role::Follower {
            r.tick();
            ticks += 1;
        }
        assert!((10..20).contains(&ticks), "timeout {ticks}");
        seen.insert(ticks);
    }
    assert!(seen.len() > 5, "timeouts are not spread: {seen:?}");
}

/// §5.3: "Once a leader has been elected, it begins servicing client
/// requests... The leader appends the command to its log as a new entry,
/// then issues AppendEntries RPCs in parallel to each of the other servers."
#[test]
fn leader_start_replication_of_a_new_entry() {
    let mut net = leader_of_three();
    let before = net.raft(1).raft_log().last_index();
    let idx = net.raft(1).propose(b"x".to_vec()).unwrap();
    assert_eq!(idx, before + 1);
    let out = net.drain(1);
    let to: Vec<_> = out
        .iter()
        .filter(|m| matches!(&m.kind, MessageKind::AppendEntries { entries, .. } if entries.iter().any(|e| e.index == idx)))
        .map(|m| m.to)
        .collect();
    assert_eq!(to, vec![2, 3]);
}

/// §5.3: "A log entry is committed once the leader that created the entry
/// has replicated it on a majority of the servers... The leader... applies
/// the entry to its state machine."
#[test]
fn leader_commit_entry_once_a_majority_has_it() {
    let mut net = leader_of_three();
    net.cut(1, 3);
    let idx = net.propose(1, b"x");
    assert_eq!(
        net.raft(1).status().commit,
        idx,
        "leader and node 2 form a majority"
    );
    assert_eq!(net.applied_data(1), vec![b"x".to_vec()]);

    let mut net = leader_of_three();
    net.isolate(1);
    let idx = net.propose(1, b"y");
    assert!(
        net.raft(1).status().commit < idx,
        "the leader alone is no majority"
    );
}

/// §5.3: "The leader keeps track of the highest index it knows to be
/// committed, and it includes that index in future AppendEntries RPCs... Once
/// a follower learns that a log entry is committed, it applies the entry to
/// its local state machine."
#[test]
fn follower_commit_entry_learned_from_the_leader() {
    let mut net = leader_of_three();
    let idx = net.propose(1, b"x");
    net.tick_all();
    for id in [2, 3] {
        assert_eq!(net.raft(id).status().commit, idx);
        assert_eq!(net.applied_data(id), vec![b"x".to_vec()]);
    }
}

/// §5.3: "When sending an AppendEntries RPC, the leader includes the index
/// and term of the entry in its log that immediately precedes the new
/// entries. If the follower does not find an entry in its log with the same
/// index and term, then it refuses the new entries."
#[test]
fn follower_check_append_refuses_a_mismatched_predecessor() {
    // Follower log: terms [1, 2]. (prev index, prev term, rejected)
    for (pi, pt, reject) in [
        (0, 0, false),
        (1, 1, false),
        (2, 2, false),
        (2, 1, true),
        (3, 2, true),
        (1, 2, true),
    ] {
        let mut r = node_with_log(1, &[1, 2, 3], &[1, 2], 2, config(1));
        r.step(msg(2, 1, 2, append(pi, pt, vec![], 0))).unwrap();
        let out = read_messages(&mut r);
        assert!(
            matches!(&out[..], [m] if matches!(m.kind, MessageKind::AppendEntriesResponse { reject: r, .. } if r == reject)),
            "prev ({pi}, {pt}): {out:?}"
        );
    }
}

/// §5.3: "If an existing entry conflicts with a new one (same index but
/// different terms), delete the existing entry and all that follow it;
/// append any new entries not already in the log."
#[test]
fn follower_append_entries_replaces_a_conflicting_suffix() {
    // (prev index, prev term, new entries as (index, term), resulting terms)
    type Case = (u64, u64, Vec<(u64, u64)>, Vec<u64>);
    let cases: [Case; 4] = [
        (2, 2, vec![(3, 3)], vec![1, 2, 3]),
        (1, 1, vec![(2, 3), (3, 4)], vec![1, 3, 4]),
        (0, 0, vec![(1, 1)], vec![1, 2]),
        (0, 0, vec![(1, 3)], vec![3]),
    ];
    for (pi, pt, new, want) in cases {
        let mut r = node_with_log(1, &[1, 2, 3], &[1, 2], 4, config(1));
        let ents = new.iter().map(|&(i, t)| entry(i, t)).collect();
        r.step(msg(2, 1, 4, append(pi, pt, ents, 0))).unwrap();
        let terms: Vec<u64> = r.raft_log().entries().iter().map(|e| e.term).collect();
        assert_eq!(terms, want, "prev ({pi}, {pt})");
    }
}

/// §5.3 (Figure 7): "the leader handles inconsistencies by forcing the
/// followers' logs to duplicate its own", whatever the followers hold.
#[test]
fn leader_sync_follower_log_of_figure_7() {
    let leader_log = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    let followers: [&[u64]; 6] = [
        &[1, 1, 1, 4, 4, 5, 5, 6, 6],
        &[1, 1, 1, 4],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
        &[1, 1, 1, 4, 4, 4, 4],
        &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    ];
    for f in followers {
        // Node 1 leads term 8 with node 3 (whose log equals its own) voting.
        let mut net = Net::new(&[], config);
        let voters = [1, 2, 3];
        for (id, log) in [(1u64, &leader_log[..]), (2, f), (3, &leader_log[..])] {
            net.add_node(id, Default::default(), config(id));
            let r = node_with_log(id, &voters, log, 7, config(id));
            net.nodes.get_mut(&id).unwrap().raft = r;
        }
        net.cut(1, 2);
        net.campaign(1);
        assert_eq!(
            net.raft(1).status().role,
            Role::Leader,
            "follower log {f:?}"
        );
        net.heal();
        net.propose(1, b"x");
        net.tick_all();
        assert_eq!(net.log_terms(2), net.log_terms(1), "follower log {f:?}");
    }
}

/// §5.4.1: "the voter denies its vote if its own log is more up-to-date than
/// that of the candidate... If the logs have last entries with different
/// terms, then the log with the later term is more up-to-date. If the logs
/// end with the same term, then whichever log is longer is more up-to-date."
#[test]
fn voter_denies_a_candidate_with_a_less_up_to_date_log() {
    // Voter log terms [1, 2]. (candidate last index, last term, granted)
    for (li, lt, granted) in [
        (2, 2, true),
        (3, 2, true),
        (1, 3, true),
        (1, 2, false),
        (3, 1, false),
        (0, 0, false),
    ] {
        let mut r = node_with_log(1, &[1, 2, 3], &[1, 2], 2, config(1));
        let kind = MessageKind::RequestVote {
            pre_vote: false,
            last_log_index: li,
            last_log_term: lt,
            leader_transfer: false,
        };
        r.step(msg(2, 1, 3, kind)).unwrap();
        let out = read_messages(&mut r);
        assert!(
            matches!(&out[..], [m] if m.kind == MessageKind::RequestVoteResponse { pre_vote: false, granted }),
            "candidate ({li}, {lt}): {out:?}"
        );
    }
}

/// §5.4.2: "Raft never commits log entries from previous terms by counting
/// replicas. Only log entries from the leader's current term are committed
/// by counting replicas."
#[test]
fn leader_only_commits_log_from_current_term() {
    let mut r = node_with_log(1, &[1, 2, 3], &[1, 2], 2, config(1));
    for _ in 0..20 {
        r.tick();
    }
    let term = r.status().term;
    r.step(msg(
        2,
        1,
        term,
        MessageKind::RequestVoteResponse {
            pre_vote: false,
            granted: true,
        },
    ))
    .unwrap();
    assert_eq!(r.status().role, Role::Leader);
    assert_eq!(
        r.status().last_index,
        3,
        "the new leader appended its no-op"
    );
    // Its appends leave (an ack can only answer what was sent).
    read_messages(&mut r);
    r.step(msg(2, 1, term, ack(2))).unwrap();
    assert_eq!(
        r.status().commit,
        0,
        "entry 2 (term 2) is on a majority but from an older term"
    );
    r.step(msg(2, 1, term, ack(3))).unwrap();
    assert_eq!(
        r.status().commit,
        3,
        "the no-op of the current term commits, and the entries before it"
    );
}

/// §5.4.2, Figure 8: "a log entry that has been stored on a majority of
/// servers [by a leader of a later term] could still be overwritten by a
/// future leader" — so the leader of term 4 must not commit the term-2 entry
/// it has replicated to a majority, and indeed the leader of term 5
/// overwrites it.
#[test]
fn figure_8_an_old_term_entry_on_a_majority_is_not_committed_and_may_be_overwritten() {
    let voters = [1, 2, 3, 4, 5];
    let mut net = Net::new(&[], config);
    let logs: [&[u64]; 5] = [&[1, 2], &[1, 2], &[1], &[1], &[1, 3]];
    for (i, log) in logs.iter().enumerate() {
        let id = i as u64 + 1;
        let mut cfg = config(id);
        cfg.max_msg_entries = 1;
        net.add_node(id, Default::default(), cfg.clone());
        net.nodes.get_mut(&id).unwrap().raft = node_with_log(id, &voters, log, 3, cfg);
    }
    // (c) S1 leads term 4 with S2 and S3 and copies the term-2 entry to S3,
    // but S3 never receives S1's own entry 3.
    net.isolate(5);
    net.cut(1, 4);
    let mut to_s3 = 0;
    net.filter = Some(Box::new(move |m| {
        let carries_3 = matches!(&m.kind, MessageKind::AppendEntries { entries, .. } if entries.iter().any(|e| e.index == 3));
        if m.to == 3 && carries_3 {
            to_s3 += 1;
            return to_s3 == 1; // only the first probe, which S3 rejects
        }
        true
    }));
    net.campaign(1);
    assert_eq!(net.raft(1).status().role, Role::Leader);
    assert_eq!(net.raft(1).status().term, 4);
    assert_eq!(
        net.raft(3).raft_log().term(2),
        Some(2),
        "the term-2 entry is on S1, S2 and S3"
    );
    assert!(net.raft(1).progress(3).unwrap().matched >= 2);
    assert!(net.raft(1).progress(2).unwrap().matched >= 2);
    assert!(
        net.raft(1).status().commit < 2,
        "Raft never commits an older term's entry by counting"
    );
    // (d) S1 crashes; S5 (last term 3) is elected by S3 and S4 and overwrites it.
    net.filter = None;
    net.heal();
    net.isolate(1);
    for _ in 0..100 {
        if net.raft(5).status().role == Role::Leader {
            break;
        }
        net.raft(5).tick();
        net.stabilize();
    }
    assert_eq!(net.raft(5).status().role, Role::Leader);
    net.tick_all();
    assert_eq!(
        net.raft(3).raft_log().term(2),
        Some(3),
        "S3's copy of the term-2 entry was overwritten"
    );
    for id in 1..=5 {
        assert!(
            !net.node(id)
                .applied
                .iter()
                .any(|e| e.index == 2 && e.term == 2),
            "node {id} applied the overwritten entry"
        );
    }
}

/// §5.2: "A server remains in follower state as long as it receives valid
/// RPCs from a leader or candidate."
#[test]
fn follower_stays_follower_while_it_hears_from_the_leader() {
    let mut net = leader_of_three();
    let term = net.raft(1).status().term;
    for _ in 0..100 {
        net.tick_all();
    }
    for id in [2, 3] {
        let st = net.raft(id).status();
        assert_eq!((st.role, st.term, st.leader), (Role::Follower, term, 1));
    }
}

/// §5.3: "When the entry has been safely replicated, the leader applies the
/// entry to its state machine... This also commits all preceding entries in
/// the leader's log, including entries created by previous leaders."
#[test]
fn leader_commit_preceding_entries_of_previous_leaders() {
    let mut net = Net::new(&[], config);
    for id in 1..=3 {
        net.add_node(id, Default::default(), config(id));
        let log: &[u64] = if id == 1 { &[1, 2, 2] } else { &[1] };
        net.nodes.get_mut(&id).unwrap().raft = node_with_log(id, &[1, 2, 3], log, 2, config(id));
    }
    net.campaign(1);
    assert_eq!(net.raft(1).status().role, Role::Leader);
    net.tick_all();
    let st = net.raft(1).status();
    assert_eq!(
        st.commit, 4,
        "the term-3 no-op commits the term-1 and term-2 entries before it"
    );
    let terms: Vec<u64> = net.node(1).applied.iter().map(|e| e.term).collect();
    assert_eq!(terms, vec![1, 2, 2, 3]);
}

/// §5.4.1: "Raft uses the voting process to prevent a candidate from
/// winning an election unless its log contains all committed entries."
#[test]
fn candidate_without_the_committed_entries_cannot_win() {
    let mut net = leader_of_three();
    net.isolate(3);
    net.propose(1, b"x");
    net.propose(1, b"y");
    net.heal();
    net.isolate(1);
    // Node 3 lacks the committed entries: node 2 refuses, node 1 is away.
    for _ in 0..60 {
        net.raft(3).tick();
        net.stabilize();
    }
    assert_ne!(net.raft(3).status().role, Role::Leader);
    // Node 2 has them and wins.
    for _ in 0..60 {
        if net.raft(2).status().role == Role::Leader {
            break;
        }
        net.raft(2).tick();
        net.stabilize();
    }
    assert_eq!(net.raft(2).status().role, Role::Leader);
}
