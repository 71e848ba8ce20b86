//! The bug zoo's core bugs are real: each `--bug` switch that lives in the
//! Raft core breaks the property it should, either in the random
//! simulator within a bounded number of seeds or in the scenario that
//! bug classes are known for. (The correct core passes both: `raft_sim`,
//! `raft_paper`, `raft_membership`.)

use crate::raft_support;

use raft_node::bugs::{Bug, Bugs};
use raft_node::raft::{ConfChange, ConfState, Config, MessageKind, Role};
use raft_support::sim::{Sim, SimOptions};
use raft_support::*;
use std::cell::RefCell;
use std::rc::Rc;

/// The first of `seeds` simulator schedules that `bug` makes fail, with
/// the property it broke. `tune` adjusts the options (a suite).
fn sim_catches(bug: Bug, seeds: u64, tune: impl Fn(&mut SimOptions)) -> (u64, String) {
    let mut opts = SimOptions::default();
    opts.raft.bugs = Bugs::new([bug]);
    tune(&mut opts);
    for seed in 0..seeds {
        if let Err(e) = Sim::new(seed, opts.clone(), false).run() {
            return (seed, e);
        }
    }
    panic!("--bug {bug} passed {seeds} simulator schedules");
}

fn without_check_quorum(o: &mut SimOptions) {
    o.raft.pre_vote = false;
    o.raft.check_quorum = false;
}

/// The test config with `bug` switched on (or none).
fn buggy(bug: Option<Bug>) -> impl Fn(u64) -> Config {
    with(move |c| c.bugs = Bugs::new(bug))
}

#[test]
fn vote_no_log_check_elects_a_leader_without_committed_entries() {
    let (_, e) = sim_catches(Bug::VoteNoLogCheck, 50, |_| {});
    assert!(e.starts_with("leader completeness"), "{e}");
}

#[test]
fn accept_stale_term_lets_a_deposed_leader_rewrite_committed_entries() {
    let (_, e) = sim_catches(Bug::AcceptStaleTerm, 300, |_| {});
    assert!(
        e.contains("append-conflicts-with-commit") || e.contains("safety"),
        "{e}"
    );
}

#[test]
fn truncate_on_append_loses_acknowledged_entries_to_a_late_duplicate() {
    let (_, e) = sim_catches(Bug::TruncateOnAppend, 50, |_| {});
    assert!(
        e.contains("commit-beyond-log") || e.contains("completeness"),
        "{e}"
    );
}

#[test]
fn commit_old_term_commits_an_entry_a_later_leader_overwrites() {
    let (_, e) = sim_catches(Bug::CommitOldTerm, 1000, |_| {});
    assert!(
        e.starts_with("leader completeness") || e.contains("append-conflicts-with-commit"),
        "{e}"
    );
}

#[test]
fn snapshot_rollback_takes_committed_state_back() {
    let (_, e) = sim_catches(Bug::SnapshotRollback, 1000, |_| {});
    assert!(
        e.contains("commit-regressed") || e.contains("rollback") || e.contains("commit-beyond-log"),
        "{e}"
    );
}

#[test]
fn heartbeat_commit_unmatched_is_reported_by_the_followers() {
    let (_, e) = sim_catches(Bug::HeartbeatCommitUnmatched, 10, |_| {});
    assert!(e.contains("commit-beyond-log"), "{e}");
}

/// Node 1 leads term 1, is cut off with a write nobody else gets, node 2
/// leads term 2 and commits at the same index: `(net, index)`.
fn deposed_leader_with_a_unique_entry(cfg: impl Fn(u64) -> Config) -> (Net, u64) {
    let mut net = Net::new(&[1, 2, 3], cfg);
    leader(&mut net, 1);
    net.propose(1, b"committed");
    net.isolate(1);
    let index = net.raft(1).propose(b"never committed".to_vec()).unwrap();
    net.stabilize();
    leader(&mut net, 2);
    net.propose(2, b"the real one");
    assert!(net.raft(2).status().commit >= index);
    (net, index)
}

#[test]
fn heartbeat_commit_unmatched_makes_a_returning_leader_apply_an_entry_never_committed() {
    for (bug, applies_it) in [(false, false), (true, true)] {
        let cfg = buggy(bug.then_some(Bug::HeartbeatCommitUnmatched));
        let (mut net, _) = deposed_leader_with_a_unique_entry(cfg);
        // Only a heartbeat reaches node 1 (the appends that would repair
        // its log are lost).
        net.heal();
        net.filter = Some(Box::new(|m| {
            m.to != 1
                || matches!(
                    m.kind,
                    MessageKind::AppendEntries {
                        heartbeat: true,
                        ..
                    }
                )
        }));
        net.raft(2).tick();
        net.stabilize();
        let applied = net.applied_data(1).contains(&b"never committed".to_vec());
        assert_eq!(applied, applies_it, "bug {bug}: {:?}", net.applied_data(1));
    }
}

#[test]
fn read_without_quorum_serves_a_deposed_leader_stale_data() {
    for (bug, stale) in [(false, false), (true, true)] {
        let cfg = buggy(bug.then_some(Bug::ReadWithoutQuorum));
        let (mut net, index) = deposed_leader_with_a_unique_entry(cfg);
        assert_eq!(
            net.raft(1).status().role,
            Role::Leader,
            "no check-quorum here"
        );
        net.raft(1).read_index(b"r".to_vec()).unwrap();
        net.stabilize();
        let released = net.node(1).reads.iter().any(|rs| rs.index < index);
        assert_eq!(released, stale, "bug {bug}: {:?}", net.node(1).reads);
    }
    let (_, e) = sim_catches(Bug::ReadWithoutQuorum, 2000, without_check_quorum);
    assert!(e.starts_with("read linearizability"), "{e}");
}

#[test]
fn read_before_term_commit_serves_a_new_leader_its_stale_commit_index() {
    for (bug, stale) in [(false, false), (true, true)] {
        let cfg = buggy(bug.then_some(Bug::ReadBeforeTermCommit));
        let mut net = Net::new(&[1, 2, 3], cfg);
        leader(&mut net, 1);
        // Node 2 gets the entry but never learns that it committed.
        net.filter = Some(Box::new(|m| {
            !(m.to == 2
                && matches!(
                    m.kind,
                    MessageKind::AppendEntries {
                        heartbeat: true,
                        ..
                    }
                ))
        }));
        let index = net.propose(1, b"x");
        net.isolate(1);
        assert!(net.raft(2).status().commit < index);
        // Node 2 is elected; its first entry does not commit before the read.
        net.filter = Some(Box::new(|m| {
            !matches!(
                m.kind,
                MessageKind::AppendEntries {
                    heartbeat: false,
                    ..
                }
            )
        }));
        net.campaign(2);
        assert_eq!(net.raft(2).status().role, Role::Leader);
        net.raft(2).read_index(b"r".to_vec()).unwrap();
        net.tick_all();
        let released = net.node(2).reads.iter().any(|rs| rs.index < index);
        assert_eq!(released, stale, "bug {bug}: {:?}", net.node(2).reads);
    }
    let (_, e) = sim_catches(Bug::ReadBeforeTermCommit, 50, |_| {});
    assert!(e.starts_with("read linearizability"), "{e}");
}

/// Lease reads on three nodes whose clocks tick together. Node 1 leads; one
/// heartbeat round reaches the followers, but their answers arrive `late`
/// ticks after it was sent, by which time node 1 is cut off. Nodes 2 and 3
/// elect a leader once their promise ran out and commit a write; then
/// node 1 reads. Returns whether it served the read (from its stale state).
fn lease_read_after_late_answers(bugs: Bugs, late: u32) -> bool {
    let cfg = with(move |c| {
        c.check_quorum = true;
        c.lease_read = true;
        c.bugs = bugs;
    });
    let mut net = Net::new(&[1, 2, 3], cfg);
    lease_leader(&mut net, 1);
    let held = Rc::new(RefCell::new(Vec::new()));
    let keep = Rc::clone(&held);
    net.filter = Some(Box::new(move |m| {
        let answer = m.to == 1 && matches!(m.kind, MessageKind::AppendEntriesResponse { .. });
        if answer {
            keep.borrow_mut().push(m.clone());
        }
        !answer
    }));
    net.tick_all();
    net.isolate(1);
    net.filter = None;
    for _ in 1..late {
        net.tick_all();
    }
    for m in held.borrow_mut().drain(..) {
        net.raft(1).step(m).unwrap();
    }
    net.drain(1);
    let mut ticks = late;
    let new_leader = loop {
        net.tick_all();
        ticks += 1;
        if let Some(&id) = [2, 3]
            .iter()
            .find(|&&id| net.raft(id).status().role == Role::Leader)
        {
            break id;
        }
        assert!(ticks < 30, "no new leader");
    };
    let index = net.propose(new_leader, b"newer");
    assert_eq!(
        net.raft(1).status().role,
        Role::Leader,
        "still leads after {ticks} ticks"
    );
    net.raft(1).read_index(b"r".to_vec()).unwrap();
    net.drain(1);
    net.node(1).reads.iter().any(|rs| rs.index < index)
}

#[test]
fn lease_from_ack_serves_a_read_after_another_leader_committed() {
    assert!(!lease_read_after_late_answers(Bugs::NONE, 10));
    assert!(lease_read_after_late_answers(
        Bugs::new([Bug::LeaseFromAck]),
        10
    ));
}

fn add_voter(id: u64) -> ConfChange {
    ConfChange::AddVoter {
        id,
        context: vec![],
    }
}

/// Voters {1, 2, 3} and caught-up learners 4 and 5, node 1 leading.
fn three_voters_two_learners(cfg: impl Fn(u64) -> Config) -> Net {
    let mut net = Net::new(&[1, 2, 3], &cfg);
    net.add_node(4, ConfState::default(), cfg(4));
    net.add_node(5, ConfState::default(), cfg(5));
    leader(&mut net, 1);
    for id in [4, 5] {
        net.raft(1)
            .propose_conf_change(ConfChange::AddLearner {
                id,
                context: vec![],
            })
            .unwrap();
        net.stabilize();
        net.tick_all();
    }
    net
}

#[test]
fn concurrent_conf_changes_let_two_disjoint_majorities_elect_in_one_term() {
    let mut correct = three_voters_two_learners(buggy(None));
    correct.raft(1).propose_conf_change(add_voter(4)).unwrap();
    assert!(correct.raft(1).propose_conf_change(add_voter(5)).is_err());

    let mut net = three_voters_two_learners(buggy(Some(Bug::ConcurrentConfChanges)));
    // Both promotions reach 4 and 5 only: 1, 4 and 5 see five voters,
    // 2 and 3 still see three.
    net.cut(1, 2);
    net.cut(1, 3);
    net.raft(1).propose_conf_change(add_voter(4)).unwrap();
    net.raft(1).propose_conf_change(add_voter(5)).unwrap();
    net.stabilize();
    assert_eq!(net.raft(5).status().conf.voters, vec![1, 2, 3, 4, 5]);
    assert_eq!(net.raft(2).status().conf.voters, vec![1, 2, 3]);
    // Split {1, 4, 5} from {2, 3}; both sides elect in the same term.
    net.heal();
    for a in [1, 4, 5] {
        for b in [2, 3] {
            net.cut(a, b);
        }
    }
    net.campaign(2);
    net.campaign(4);
    let (t2, t4) = (net.raft(2).status(), net.raft(4).status());
    assert_eq!((t2.role, t4.role), (Role::Leader, Role::Leader));
    assert_eq!(t2.term, t4.term, "two leaders in one term");
}

/// What became of Ongaro's 2015 scenario.
#[derive(Debug, PartialEq, Eq)]
enum OneAddOneRemove {
    /// The early removal was refused (the fix).
    Refused,
    /// A leader was elected without the committed removal.
    LeaderLacksCommittedEntry,
    /// It played out safely.
    Safe,
}

/// Ongaro's "one add, one remove" (raft-dev, 2015): voters {1, 2, 3, 4},
/// learner 5. Leader 1 adds 5 as a voter, but only 5 gets the entry. Node
/// 2 leads the next term with 3 and 4 and removes 1 at once, before an
/// entry of its own term committed; 2 and 3 commit the removal. Node 1
/// comes back to 4 and 5: with its five-voter configuration it can win
/// 1, 4 and 5, none of which holds the committed removal.
fn one_add_one_remove(cfg: impl Fn(u64) -> Config) -> OneAddOneRemove {
    let mut net = Net::new(&[1, 2, 3, 4], &cfg);
    net.add_node(5, ConfState::default(), cfg(5));
    leader(&mut net, 1);
    let learner = ConfChange::AddLearner {
        id: 5,
        context: vec![],
    };
    net.raft(1).propose_conf_change(learner).unwrap();
    net.stabilize();
    net.tick_all();
    for b in [2, 3, 4] {
        net.cut(1, b);
    }
    net.raft(1).propose_conf_change(add_voter(5)).unwrap();
    net.stabilize();
    // Node 2 is elected by 3 and 4; its first entry reaches 3 only.
    net.isolate(1);
    net.isolate(5);
    net.filter = Some(Box::new(|m| {
        !(m.to == 4 && matches!(m.kind, MessageKind::AppendEntries { .. }))
    }));
    net.campaign(2);
    assert_eq!(net.raft(2).status().role, Role::Leader);
    let Ok(remove) = net
        .raft(2)
        .propose_conf_change(ConfChange::Remove { id: 1 })
    else {
        return OneAddOneRemove::Refused;
    };
    net.stabilize();
    assert!(
        net.raft(2).status().commit >= remove,
        "{:?}",
        net.raft(2).status()
    );
    let committed_term = net.raft(2).raft_log().term(remove);
    // Node 1 comes back, to 4 and 5 only.
    net.filter = None;
    net.heal();
    for a in [1, 4, 5] {
        for b in [2, 3] {
            net.cut(a, b);
        }
    }
    for _ in 0..5 {
        net.campaign(1);
        if net.raft(1).status().role == Role::Leader {
            break;
        }
    }
    let lacks = net.raft(1).raft_log().term(remove) != committed_term;
    if net.raft(1).status().role == Role::Leader && lacks {
        OneAddOneRemove::LeaderLacksCommittedEntry
    } else {
        OneAddOneRemove::Safe
    }
}

#[test]
fn conf_change_before_term_commit_elects_a_leader_without_a_committed_removal() {
    assert_eq!(one_add_one_remove(buggy(None)), OneAddOneRemove::Refused);
    assert_eq!(
        one_add_one_remove(buggy(Some(Bug::ConfChangeBeforeTermCommit))),
        OneAddOneRemove::LeaderLacksCommittedEntry
    );
}
