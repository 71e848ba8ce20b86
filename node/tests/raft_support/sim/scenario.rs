//! Compound faults, layered over the random schedule: multi-step patterns
//! that create the situations where Raft bugs live (issue 11's targets),
//! and stale-message replay. While a pattern runs it owns the partition.

use rand::Rng;

use raft_node::raft::NodeId;

use super::Sim;

/// How many sent messages are kept for replaying later.
pub const HISTORY: usize = 256;

/// One compound fault in progress.
#[derive(Debug, Clone, Copy)]
pub enum Scenario {
    /// A node cut off until it lags, then let back just as the leader is
    /// cut off: a lagging node gets a chance to lead.
    LagThenLead {
        lagger: NodeId,
        /// 0: lagging; 1: back, leader cut off.
        phase: u8,
        next_at: u64,
    },
    /// The leader cut off while it takes writes nobody else gets, then let
    /// back after the others elected a new leader and moved on. A zombie
    /// does not tick meanwhile (its clock stalled, as the driver's zombie
    /// leader's does): it never notices it lost its quorum and goes on
    /// taking reads.
    DeposedLeaderReturns {
        old: NodeId,
        back_at: u64,
        zombie: bool,
    },
    /// Leader after leader, each cut off soon after it is found, with
    /// writes in flight.
    LeaderChurn { rounds_left: u32, next_at: u64 },
}

impl Sim {
    /// Whether `id` is a zombie leader now, whose ticks do not come.
    pub(super) fn stalled(&self, id: NodeId) -> bool {
        matches!(
            self.scenario,
            Some(Scenario::DeposedLeaderReturns { old, zombie: true, .. }) if old == id
        )
    }

    /// Starts a random compound fault, if the cluster has a leader.
    pub(super) fn start_scenario(&mut self) {
        let Some(leader) = self.pick(&self.leaders()) else {
            return;
        };
        let scenario = match self.rng.gen_range(0..3) {
            0 => {
                let others: Vec<NodeId> = self
                    .live_ids()
                    .into_iter()
                    .filter(|&id| id != leader)
                    .collect();
                let Some(lagger) = self.pick(&others) else {
                    return;
                };
                self.cut_off(&[lagger]);
                Scenario::LagThenLead {
                    lagger,
                    phase: 0,
                    next_at: self.now + self.rng.gen_range(40..120),
                }
            }
            1 => {
                self.cut_off(&[leader]);
                let n = self.rng.gen_range(1..=3);
                self.propose_at(leader, n);
                Scenario::DeposedLeaderReturns {
                    old: leader,
                    back_at: self.now + self.rng.gen_range(40..120),
                    // Only where clocks may drift: the lease suite assumes
                    // they run alike.
                    zombie: !self.opts.synced_clocks && self.rng.gen_bool(0.5),
                }
            }
            _ => Scenario::LeaderChurn {
                rounds_left: self.rng.gen_range(2..=5),
                next_at: self.now,
            },
        };
        self.log(|| format!("scenario {scenario:?}"));
        self.scenario = Some(scenario);
    }

    /// Moves the running compound fault on by one step.
    pub(super) fn advance_scenario(&mut self) {
        let Some(s) = self.scenario else { return };
        match s {
            Scenario::LagThenLead {
                lagger,
                phase: 0,
                next_at,
            } if self.now >= next_at => {
                // Back just as the leader goes: an election, before catch-up.
                let leaders = self.leaders();
                self.cut_off(&leaders);
                let next_at = self.now + self.rng.gen_range(30..90);
                self.scenario = Some(Scenario::LagThenLead {
                    lagger,
                    phase: 1,
                    next_at,
                });
                self.log(|| format!("scenario: {lagger} back, leaders {leaders:?} cut off"));
            }
            Scenario::LagThenLead { next_at, .. }
            | Scenario::DeposedLeaderReturns {
                back_at: next_at, ..
            } if self.now >= next_at => {
                self.end_scenario();
            }
            Scenario::LeaderChurn {
                rounds_left,
                next_at,
            } if self.now >= next_at => {
                if rounds_left == 0 {
                    self.end_scenario();
                    return;
                }
                if let Some(leader) = self.pick(&self.leaders()) {
                    let n = self.rng.gen_range(1..=2);
                    self.propose_at(leader, n);
                    self.cut_off(&[leader]);
                    self.log(|| format!("scenario: churn, leader {leader} cut off"));
                }
                self.scenario = Some(Scenario::LeaderChurn {
                    rounds_left: rounds_left - 1,
                    next_at: self.now + self.rng.gen_range(15..45),
                });
            }
            _ => {}
        }
    }

    /// Ends the running compound fault and heals its partition.
    pub(super) fn end_scenario(&mut self) {
        if self.scenario.take().is_some() {
            self.group.clear();
            self.log(|| "scenario over: heal".to_string());
        }
    }

    /// Puts `ids` in a partition group of their own.
    fn cut_off(&mut self, ids: &[NodeId]) {
        self.group.clear();
        for &id in ids {
            self.group.insert(id, 1);
        }
    }

    /// Proposes `n` commands at `id` directly (entries only it may get).
    fn propose_at(&mut self, id: NodeId, n: u32) {
        for _ in 0..n {
            self.next_cmd += 1;
            let data = format!("cmd-{}", self.next_cmd).into_bytes();
            if let Some(r) = self.nodes.get_mut(&id).and_then(|n| n.raft.as_mut()) {
                let _ = r.propose(data);
            }
        }
    }

    /// Delivers a few messages sent long ago again: a stale AppendEntries
    /// after newer ones, an old vote, a duplicate snapshot.
    pub(super) fn replay_stale(&mut self) {
        if self.history.is_empty() {
            return;
        }
        let n = self.rng.gen_range(3..=12);
        for _ in 0..n {
            let i = self.rng.gen_range(0..self.history.len());
            let msg = self.history[i].clone();
            let due = self.now + self.rng.gen_range(0..=self.opts.max_delay);
            self.net.push(super::InFlight { due, msg });
        }
        self.log(|| format!("replay {n} stale messages"));
    }
}
