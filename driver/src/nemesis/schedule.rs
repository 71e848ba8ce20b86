//! The fault schedule: seeded fault / heal alternation as plain data.
//!
//! The schedule is computed before the run from the seed and written to
//! test.json, and each event's resolved form goes into the history, so a
//! later `replay` can re-apply it exactly. Targets that depend on the
//! cluster at that moment (the current leader) are resolved when applied.

use super::generate::ScheduleStyle;
use super::scenario::{ChurnStep, LateSuccessor, LeaderFault, CRASH_AFTER_APPEND};
use crate::net::messages::MessageFaults;
use crate::target::Capabilities;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// A kind of fault, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NemesisKind {
    /// SIGSTOP nodes, SIGCONT them later.
    Pause,
    /// SIGKILL nodes, restart them later on the same data dir.
    Kill,
    /// Cut links between nodes.
    Partition,
    /// Latency and loss on every link.
    Slow,
    /// Ask the leader to hand leadership to another node.
    LeaderTransfer,
    /// Remove a node through the admin API, add it back later.
    Membership,
    /// Split the nodes into two sides that share one voter, and crash that
    /// voter right after each vote it grants (raft-node's crash-after-vote
    /// failpoint), restarting it after a delay.
    VoteCrash,
    /// Cut a follower off until it lags, then heal it as the leader is cut
    /// off, killed or paused: an election with a lagging candidate.
    LaggingLeader,
    /// Cut the leader off while it appends writes it cannot commit; bring
    /// it back (perhaps after a crash) once another leader committed.
    DeposedLeader,
    /// Several elections in a row with writes in flight.
    LeaderChurn,
    /// Crash nodes at a hard moment (a target failpoint: after an append,
    /// during a snapshot install, during compaction, before applying) and
    /// restart them, again and again.
    CrashPoint,
    /// Duplicate, reorder, delay and replay whole peer messages on links.
    Messages,
    /// SIGKILL nodes and cut their disk's power: what they did not fsync
    /// is lost (or torn), then they restart on what survived. The data
    /// dirs live on faultfs mounts for the whole run.
    PowerCut,
    /// Skew, step and strobe the wall and monotonic clocks of nodes
    /// (libfaketime preloaded into every node for the whole run).
    Clock,
}

impl NemesisKind {
    /// Every kind, in the order `all` uses.
    pub const ALL: [NemesisKind; 14] = [
        NemesisKind::Partition,
        NemesisKind::Kill,
        NemesisKind::Pause,
        NemesisKind::Slow,
        NemesisKind::LeaderTransfer,
        NemesisKind::Membership,
        NemesisKind::VoteCrash,
        NemesisKind::LaggingLeader,
        NemesisKind::DeposedLeader,
        NemesisKind::LeaderChurn,
        NemesisKind::CrashPoint,
        NemesisKind::Messages,
        NemesisKind::PowerCut,
        NemesisKind::Clock,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            NemesisKind::Pause => "pause",
            NemesisKind::Kill => "kill",
            NemesisKind::Partition => "partition",
            NemesisKind::Slow => "slow",
            NemesisKind::LeaderTransfer => "leader-transfer",
            NemesisKind::Membership => "membership",
            NemesisKind::VoteCrash => "vote-crash",
            NemesisKind::LaggingLeader => "lagging-leader",
            NemesisKind::DeposedLeader => "deposed-leader",
            NemesisKind::LeaderChurn => "leader-churn",
            NemesisKind::CrashPoint => "crash-point",
            NemesisKind::Messages => "messages",
            NemesisKind::PowerCut => "power-cut",
            NemesisKind::Clock => "clock",
        }
    }

    /// Whether the kind changes the machine every node runs on for the
    /// whole run (a FUSE mount under each data dir, libfaketime in each
    /// process), so that it is asked for by name, never by `all`.
    pub fn changes_the_machine(self) -> bool {
        matches!(self, NemesisKind::PowerCut | NemesisKind::Clock)
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Whether a target with `caps` can take this fault; None if it can,
    /// else what it lacks, in words.
    pub fn unsupported_by(self, caps: &Capabilities) -> Option<&'static str> {
        let (ok, lack) = match self {
            NemesisKind::Pause
            | NemesisKind::Kill
            | NemesisKind::Partition
            // On framed peer messages one by one; on other traffic (etcd's
            // HTTP) as whole-chunk stalls and connection resets.
            | NemesisKind::Messages
            | NemesisKind::LaggingLeader
            | NemesisKind::DeposedLeader
            | NemesisKind::LeaderChurn => (true, ""),
            NemesisKind::Slow => (caps.slow_links, "latency on its peer links"),
            NemesisKind::LeaderTransfer => (caps.leader_transfer, "a leader-transfer admin call"),
            NemesisKind::Membership => (caps.membership, "membership admin calls"),
            NemesisKind::VoteCrash => (caps.failpoints, "a crash-after-vote failpoint"),
            NemesisKind::CrashPoint => (
                caps.failpoints && !caps.crash_points.is_empty(),
                "crash-point failpoints",
            ),
            NemesisKind::PowerCut => (caps.data_dir_files, "state in files under its data dir"),
            NemesisKind::Clock => (
                caps.libc_clock,
                "clocks read through libc (a Go binary reads them through the vDSO itself, so libfaketime cannot move them)",
            ),
        };
        (!ok).then_some(lack)
    }
}

/// How a partition splits the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionShape {
    /// Isolate one random node.
    One,
    /// Isolate the current leader.
    Leader,
    /// Two random halves (the smaller one a minority).
    Halves,
    /// Every node hears a majority, no two the same one (asymmetric).
    MajoritiesRing,
    /// Two halves that share one node, which hears everyone.
    Bridge,
}

impl PartitionShape {
    /// Every shape.
    pub const ALL: [PartitionShape; 5] = [
        PartitionShape::One,
        PartitionShape::Leader,
        PartitionShape::Halves,
        PartitionShape::MajoritiesRing,
        PartitionShape::Bridge,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            PartitionShape::One => "one",
            PartitionShape::Leader => "leader",
            PartitionShape::Halves => "halves",
            PartitionShape::MajoritiesRing => "majorities-ring",
            PartitionShape::Bridge => "bridge",
        }
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// Which nodes a pause or kill hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// One random node.
    One,
    /// The current leader.
    Leader,
    /// A random majority.
    Majority,
    /// Every node.
    All,
}

/// A partition as the set of directed links that stop forwarding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cut {
    /// The node groups, for symmetric shapes (a node hears only nodes it
    /// shares a group with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Vec<u64>>>,
    /// Directed links `[from, to]` that are held.
    pub blocked: Vec<(u64, u64)>,
}

impl Cut {
    /// Blocks every link between nodes that share no group.
    pub fn from_groups(groups: Vec<Vec<u64>>) -> Self {
        let nodes: BTreeSet<u64> = groups.iter().flatten().copied().collect();
        let mut blocked = Vec::new();
        for &a in &nodes {
            for &b in &nodes {
                let share = groups.iter().any(|g| g.contains(&a) && g.contains(&b));
                if a != b && !share {
                    blocked.push((a, b));
                }
            }
        }
        Cut {
            groups: Some(groups),
            blocked,
        }
    }

    /// Two sides that share only `middle`, which hears everyone; the other
    /// nodes, ascending, fill the sides (the first one gets the odd node).
    pub fn bridge_around(middle: u64, nodes: &[u64]) -> Self {
        let rest: Vec<u64> = sorted(nodes).into_iter().filter(|&n| n != middle).collect();
        let (a, b) = rest.split_at(rest.len().div_ceil(2));
        let side = |s: &[u64]| {
            let mut v = s.to_vec();
            v.push(middle);
            sorted(&v)
        };
        Cut::from_groups(vec![side(a), side(b)])
    }

    /// Isolates `node` from all `others`.
    pub fn isolate(node: u64, nodes: &[u64]) -> Self {
        let rest: Vec<u64> = nodes.iter().copied().filter(|&n| n != node).collect();
        Cut::from_groups(vec![vec![node], rest])
    }

    /// The blocked links as a set.
    pub fn blocked_set(&self) -> BTreeSet<(u64, u64)> {
        self.blocked.iter().copied().collect()
    }

    /// Builds a seeded cut of `shape` over `nodes` (not `Leader`, which
    /// needs the cluster; it is resolved when applied).
    pub fn generate(shape: PartitionShape, nodes: &[u64], rng: &mut SmallRng) -> Option<Self> {
        let mut shuffled = nodes.to_vec();
        shuffled.shuffle(rng);
        let n = shuffled.len();
        match shape {
            PartitionShape::Leader => None,
            PartitionShape::One => Some(Cut::isolate(shuffled[0], nodes)),
            PartitionShape::Halves => {
                let (a, b) = shuffled.split_at(n / 2);
                Some(Cut::from_groups(vec![sorted(a), sorted(b)]))
            }
            PartitionShape::Bridge => {
                let mid = n / 2;
                Some(Cut::from_groups(vec![
                    sorted(&shuffled[..=mid]),
                    sorted(&shuffled[mid..]),
                ]))
            }
            PartitionShape::MajoritiesRing => {
                // Around a shuffled ring, the node at position p hears the m
                // nodes at p - (m-1)/2 ..= p + m/2 and drops the rest inbound.
                let m = n / 2 + 1;
                let mut blocked = Vec::new();
                for p in 0..n {
                    let to = shuffled[p];
                    let heard: BTreeSet<u64> = (0..m)
                        .map(|k| shuffled[(p + n + k - (m - 1) / 2) % n])
                        .collect();
                    for &from in &shuffled {
                        if !heard.contains(&from) {
                            blocked.push((from, to));
                        }
                    }
                }
                blocked.sort();
                Some(Cut {
                    groups: None,
                    blocked,
                })
            }
        }
    }
}

fn sorted(s: &[u64]) -> Vec<u64> {
    let mut v = s.to_vec();
    v.sort();
    v
}

/// One fault or heal operation, as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum FaultOp {
    /// Cut links; `cut` is None for the `leader` shape until applied.
    StartPartition {
        /// The shape.
        shape: PartitionShape,
        /// The links to cut, when known in advance.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cut: Option<Cut>,
    },
    /// Heal every link.
    StopPartition,
    /// SIGSTOP nodes.
    StartPause {
        /// How the nodes were chosen.
        target: Target,
        /// The nodes, when known in advance.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nodes: Option<Vec<u64>>,
    },
    /// SIGCONT the paused nodes.
    StopPause,
    /// SIGKILL nodes.
    StartKill {
        /// How the nodes were chosen.
        target: Target,
        /// The nodes, when known in advance.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nodes: Option<Vec<u64>>,
    },
    /// Restart the killed nodes.
    StopKill,
    /// Latency and loss on every link.
    StartSlow {
        /// Mean one-way delay per chunk.
        delay_ms: f64,
        /// Uniform jitter half-width.
        jitter_ms: f64,
        /// Fraction of chunks lost.
        loss: f64,
    },
    /// Back to full speed.
    StopSlow,
    /// Ask the leader to transfer leadership (to `to` unless it leads).
    StartTransfer {
        /// Preferred new leader.
        to: u64,
    },
    /// Observe who leads after the transfer.
    StopTransfer,
    /// Remove `node` (another one if it leads) from the configuration,
    /// with the nodes of `also` at the same moment (concurrent changes, of
    /// which a correct target takes one at a time), perhaps right after a
    /// leader change.
    StartMembership {
        /// Node to remove.
        node: u64,
        /// More nodes to remove concurrently (never the leader, never all).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        also: Vec<u64>,
        /// Ask the leader to hand over first, and send the changes to its
        /// successor the moment it leads, before it committed anything of
        /// its term.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        transfer_first: bool,
        /// Cut the leader off from every other node first (its clients
        /// still reach it) and send the changes to it there; heal when the
        /// nodes are added back. A leader that takes two changes at once
        /// can then commit alone while the others elect.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        isolate_leader: bool,
        /// Race two changes instead (`nemesis::conf_race`): a cut-off
        /// leader's uncommitted removal against its successor's removal
        /// of it before the successor committed anything, then the two
        /// sides held apart this long (ms). Needs four or five nodes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        race_split_ms: Option<u64>,
    },
    /// Add the removed node back as a voter.
    StopMembership,
    /// Cut the nodes into two sides that share `node` (with 3 nodes or
    /// more; [`Cut::bridge_around`]), SIGKILL it, and restart it each time
    /// it dies, the i-th time after `restart_after_ms[i % len]`, with its
    /// crash-after-vote failpoint armed.
    StartVoteCrash {
        /// The voter both sides share; None: the leader when applied (its
        /// followers then hold the same log, so both sides' leaders can
        /// commit once it votes twice).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<u64>,
        /// Delays before each restart, in turn.
        restart_after_ms: Vec<u64>,
    },
    /// Disarm the failpoint, heal, and restart the node if it is down.
    StopVoteCrash,
    /// Isolate a follower (`node`, or the next after the leader) for
    /// `lag_ms`, then heal it while `leader_fault` strikes the leader for
    /// `elect_ms`.
    StartLaggingLeader {
        /// The follower that lags (None: the next node after the leader).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<u64>,
        /// How long it is cut off, in ms.
        lag_ms: u64,
        /// What is done to the leader when the lagging node comes back.
        leader_fault: LeaderFault,
        /// How long that lasts, in ms: time for an election.
        elect_ms: u64,
    },
    /// Undo what the lagging-leader scenario still has in effect.
    StopLaggingLeader,
    /// Strike the leader (`fault`) for `hold_ms`; with `crash`, kill and
    /// restart it before it comes back.
    StartDeposedLeader {
        /// What is done to the leader.
        fault: LeaderFault,
        /// How long, in ms.
        hold_ms: u64,
        /// Crash and restart it (from its disk) before it comes back.
        crash: bool,
        /// Crash and restart it again this long after it is back: its log
        /// has just had its suffix overwritten, and it recovers from disk
        /// what the overwrite left.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        crash_after_ms: Option<u64>,
        /// The others are cut apart from each other too while it is
        /// deposed, so nobody is elected until the hold ends; then they
        /// rejoin and it comes back `return_after_ms` after they elect:
        /// it meets a successor whose log holds fewer new entries than
        /// its own uncommitted suffix, so the overwrite leaves a tail of
        /// its old entries after the new ones until the next append.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        late_successor: Option<LateSuccessor>,
    },
    /// Undo what the deposed-leader scenario still has in effect.
    StopDeposedLeader,
    /// Strike the leader of the moment, step after step.
    StartLeaderChurn {
        /// The steps.
        steps: Vec<ChurnStep>,
    },
    /// Undo what the churn still has in effect.
    StopLeaderChurn,
    /// Arm `failpoint` on the nodes; restart each after it crashes there,
    /// the i-th time after `restart_after_ms[i % len]`, armed again.
    StartCrashPoint {
        /// The target's failpoint name.
        failpoint: String,
        /// How the nodes were chosen.
        target: Target,
        /// The nodes, when known in advance.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nodes: Option<Vec<u64>>,
        /// Delays before each restart, in turn.
        restart_after_ms: Vec<u64>,
    },
    /// Disarm the failpoint and restart every node that is down.
    StopCrashPoint,
    /// Message faults on the peer streams of `links` (see
    /// [`crate::nemesis::messages`]).
    StartMessages {
        /// Directed links `[from, to]`; None: every link.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        links: Option<Vec<(u64, u64)>>,
        /// What is done to the messages.
        faults: MessageFaults,
    },
    /// Messages pass unchanged again.
    StopMessages,
    /// SIGKILL the nodes, then cut the power of their disks (`mode`: lose
    /// every unsynced byte, or keep a seeded torn prefix).
    StartPowerCut {
        /// How the nodes were chosen.
        target: Target,
        /// The nodes, when known in advance.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nodes: Option<Vec<u64>>,
        /// What the cut does to unsynced writes (a torn cut's seed is
        /// mixed with each node's id).
        mode: raft_faultfs::CutMode,
    },
    /// Restart the nodes on what survived.
    StopPowerCut,
    /// Change the clocks of the nodes.
    StartClock {
        /// How the nodes were chosen.
        target: Target,
        /// The nodes, when known in advance.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nodes: Option<Vec<u64>>,
        /// What is done to their clocks.
        change: crate::nemesis::clock::ClockChange,
    },
    /// Set the clocks true again (a step back to real time).
    StopClock,
}

impl FaultOp {
    /// The history `f` of this operation.
    pub fn f(&self) -> &'static str {
        match self {
            FaultOp::StartPartition { .. } => "start-partition",
            FaultOp::StopPartition => "stop-partition",
            FaultOp::StartPause { .. } => "start-pause",
            FaultOp::StopPause => "stop-pause",
            FaultOp::StartKill { .. } => "start-kill",
            FaultOp::StopKill => "stop-kill",
            FaultOp::StartSlow { .. } => "start-slow",
            FaultOp::StopSlow => "stop-slow",
            FaultOp::StartTransfer { .. } => "start-transfer",
            FaultOp::StopTransfer => "stop-transfer",
            FaultOp::StartMembership { .. } => "start-membership",
            FaultOp::StopMembership => "stop-membership",
            FaultOp::StartVoteCrash { .. } => "start-vote-crash",
            FaultOp::StopVoteCrash => "stop-vote-crash",
            FaultOp::StartLaggingLeader { .. } => "start-lagging-leader",
            FaultOp::StopLaggingLeader => "stop-lagging-leader",
            FaultOp::StartDeposedLeader { .. } => "start-deposed-leader",
            FaultOp::StopDeposedLeader => "stop-deposed-leader",
            FaultOp::StartLeaderChurn { .. } => "start-leader-churn",
            FaultOp::StopLeaderChurn => "stop-leader-churn",
            FaultOp::StartCrashPoint { .. } => "start-crash-point",
            FaultOp::StopCrashPoint => "stop-crash-point",
            FaultOp::StartMessages { .. } => "start-messages",
            FaultOp::StopMessages => "stop-messages",
            FaultOp::StartPowerCut { .. } => "start-power-cut",
            FaultOp::StopPowerCut => "stop-power-cut",
            FaultOp::StartClock { .. } => "start-clock",
            FaultOp::StopClock => "stop-clock",
        }
    }

    /// The nemesis kind that applies this operation.
    pub fn kind(&self) -> NemesisKind {
        match self {
            FaultOp::StartPartition { .. } | FaultOp::StopPartition => NemesisKind::Partition,
            FaultOp::StartPause { .. } | FaultOp::StopPause => NemesisKind::Pause,
            FaultOp::StartKill { .. } | FaultOp::StopKill => NemesisKind::Kill,
            FaultOp::StartSlow { .. } | FaultOp::StopSlow => NemesisKind::Slow,
            FaultOp::StartTransfer { .. } | FaultOp::StopTransfer => NemesisKind::LeaderTransfer,
            FaultOp::StartMembership { .. } | FaultOp::StopMembership => NemesisKind::Membership,
            FaultOp::StartVoteCrash { .. } | FaultOp::StopVoteCrash => NemesisKind::VoteCrash,
            FaultOp::StartMessages { .. } | FaultOp::StopMessages => NemesisKind::Messages,
            FaultOp::StartLaggingLeader { .. } | FaultOp::StopLaggingLeader => {
                NemesisKind::LaggingLeader
            }
            FaultOp::StartDeposedLeader { .. } | FaultOp::StopDeposedLeader => {
                NemesisKind::DeposedLeader
            }
            FaultOp::StartLeaderChurn { .. } | FaultOp::StopLeaderChurn => NemesisKind::LeaderChurn,
            FaultOp::StartCrashPoint { .. } | FaultOp::StopCrashPoint => NemesisKind::CrashPoint,
            FaultOp::StartPowerCut { .. } | FaultOp::StopPowerCut => NemesisKind::PowerCut,
            FaultOp::StartClock { .. } | FaultOp::StopClock => NemesisKind::Clock,
        }
    }

    /// The same operation with every node id passed through `f` (for aiming
    /// a replayed operation by role).
    pub fn remap(&self, f: &dyn Fn(u64) -> u64) -> FaultOp {
        let nodes = |v: &Option<Vec<u64>>| v.as_ref().map(|n| n.iter().map(|&i| f(i)).collect());
        match self {
            FaultOp::StartPartition { shape, cut } => FaultOp::StartPartition {
                shape: *shape,
                cut: cut.as_ref().map(|c| Cut {
                    groups: c.groups.as_ref().map(|g| {
                        g.iter()
                            .map(|g| sorted(&g.iter().map(|&i| f(i)).collect::<Vec<_>>()))
                            .collect()
                    }),
                    blocked: {
                        let mut b: Vec<(u64, u64)> =
                            c.blocked.iter().map(|&(a, b)| (f(a), f(b))).collect();
                        b.sort();
                        b
                    },
                }),
            },
            FaultOp::StartPause { target, nodes: n } => FaultOp::StartPause {
                target: *target,
                nodes: nodes(n),
            },
            FaultOp::StartKill { target, nodes: n } => FaultOp::StartKill {
                target: *target,
                nodes: nodes(n),
            },
            FaultOp::StartPowerCut {
                target,
                nodes: n,
                mode,
            } => FaultOp::StartPowerCut {
                target: *target,
                nodes: nodes(n),
                mode: *mode,
            },
            FaultOp::StartClock {
                target,
                nodes: n,
                change,
            } => FaultOp::StartClock {
                target: *target,
                nodes: nodes(n),
                change: change.clone(),
            },
            FaultOp::StartTransfer { to } => FaultOp::StartTransfer { to: f(*to) },
            FaultOp::StartMembership {
                node,
                also,
                transfer_first,
                isolate_leader,
                race_split_ms,
            } => FaultOp::StartMembership {
                node: f(*node),
                also: also.iter().map(|&i| f(i)).collect(),
                transfer_first: *transfer_first,
                isolate_leader: *isolate_leader,
                race_split_ms: *race_split_ms,
            },
            FaultOp::StartVoteCrash {
                node,
                restart_after_ms,
            } => FaultOp::StartVoteCrash {
                node: node.map(f),
                restart_after_ms: restart_after_ms.clone(),
            },
            FaultOp::StartLaggingLeader {
                node,
                lag_ms,
                leader_fault,
                elect_ms,
            } => FaultOp::StartLaggingLeader {
                node: node.map(f),
                lag_ms: *lag_ms,
                leader_fault: *leader_fault,
                elect_ms: *elect_ms,
            },
            FaultOp::StartMessages { links, faults } => FaultOp::StartMessages {
                links: links
                    .as_ref()
                    .map(|l| l.iter().map(|&(a, b)| (f(a), f(b))).collect()),
                faults: *faults,
            },
            FaultOp::StartCrashPoint {
                failpoint,
                target,
                nodes: n,
                restart_after_ms,
            } => FaultOp::StartCrashPoint {
                failpoint: failpoint.clone(),
                target: *target,
                nodes: nodes(n),
                restart_after_ms: restart_after_ms.clone(),
            },
            other => other.clone(),
        }
    }

    /// How long this start must stay in effect for its steps to play out
    /// (the choreographies); 0 for faults that simply hold until stopped.
    pub fn min_duration_ms(&self) -> u64 {
        match self {
            FaultOp::StartLaggingLeader {
                lag_ms, elect_ms, ..
            } => lag_ms + elect_ms + 1_000,
            FaultOp::StartDeposedLeader {
                hold_ms,
                crash_after_ms,
                late_successor,
                ..
            } => {
                // A late successor needs an election after the hold
                // (Figure 8 three, with crashes and restarts between: 5-6 s
                // when every step goes quickly, up to 12 s when a split vote
                // or a slow election makes a step wait).
                let elect = late_successor.map_or(0, |l| {
                    l.return_after_ms + if l.old_term_commit { 12_000 } else { 3_000 }
                });
                hold_ms + crash_after_ms.unwrap_or(0) + elect + 1_500
            }
            FaultOp::StartLeaderChurn { steps } => {
                steps.iter().map(|s| s.hold_ms + s.gap_ms).sum::<u64>() + 1_000
            }
            _ => 0,
        }
    }

    /// Drops what a choreography could not play out in `avail_ms`, the
    /// time left in the run: Figure 8 first, then the late successor. Cut
    /// off by the end of the run half-way, it would cost a run and test
    /// nothing (both need every step: the last ones do the damage).
    pub fn fit_within(&mut self, avail_ms: u64) {
        while self.min_duration_ms() > avail_ms {
            let FaultOp::StartDeposedLeader {
                late_successor: late @ Some(_),
                ..
            } = self
            else {
                return;
            };
            match late {
                Some(l) if l.old_term_commit => l.old_term_commit = false,
                _ => *late = None,
            }
        }
    }

    /// The heal operation matching a start (None for heals).
    pub fn stop(&self) -> Option<FaultOp> {
        Some(match self {
            FaultOp::StartPartition { .. } => FaultOp::StopPartition,
            FaultOp::StartPause { .. } => FaultOp::StopPause,
            FaultOp::StartKill { .. } => FaultOp::StopKill,
            FaultOp::StartSlow { .. } => FaultOp::StopSlow,
            FaultOp::StartTransfer { .. } => FaultOp::StopTransfer,
            FaultOp::StartMembership { .. } => FaultOp::StopMembership,
            FaultOp::StartVoteCrash { .. } => FaultOp::StopVoteCrash,
            FaultOp::StartLaggingLeader { .. } => FaultOp::StopLaggingLeader,
            FaultOp::StartDeposedLeader { .. } => FaultOp::StopDeposedLeader,
            FaultOp::StartLeaderChurn { .. } => FaultOp::StopLeaderChurn,
            FaultOp::StartCrashPoint { .. } => FaultOp::StopCrashPoint,
            FaultOp::StartMessages { .. } => FaultOp::StopMessages,
            FaultOp::StartPowerCut { .. } => FaultOp::StopPowerCut,
            FaultOp::StartClock { .. } => FaultOp::StopClock,
            _ => return None,
        })
    }
}

/// One scheduled operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledFault {
    /// Offset from the start of the workload, in milliseconds.
    pub at_ms: u64,
    /// What to do.
    pub op: FaultOp,
    /// For a replay: aim by role (see [`Aim`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aim: Option<Aim>,
}

/// How a replayed operation is aimed: its node ids were resolved in the
/// recorded run while `leader` led; before it is applied, the ids are
/// mapped so that the node leading now stands where `leader` stood (the two
/// swap places), and the history says so. A replayed cluster rarely elects
/// the same leader, and "pause the leader" must still pause the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aim {
    /// The leader when the recorded run applied the operation.
    pub leader: u64,
}

impl ScheduledFault {
    /// `op` at `at_ms`, applied as written.
    pub fn new(at_ms: u64, op: FaultOp) -> Self {
        ScheduledFault {
            at_ms,
            op,
            aim: None,
        }
    }
}

/// The whole fault schedule of a run: starts and stops alternate, and every
/// start is followed by its stop no later than the time limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Operations in time order.
    pub events: Vec<ScheduledFault>,
}

/// What a schedule is generated from.
#[derive(Debug, Clone)]
pub struct ScheduleSpec<'a> {
    /// Seed of the run.
    pub seed: u64,
    /// Enabled fault kinds.
    pub kinds: &'a [NemesisKind],
    /// Enabled partition shapes.
    pub shapes: &'a [PartitionShape],
    /// Node ids.
    pub nodes: &'a [u64],
    /// Mean fault and heal duration.
    pub interval: Duration,
    /// Length of the workload phase.
    pub time_limit: Duration,
    /// How faults are laid out in time.
    pub style: ScheduleStyle,
    /// What the target allows (leader churn asks for transfers only where
    /// the target has them).
    pub caps: Capabilities,
    /// The run's nodes send a few entries per append (see
    /// `target::raft::small_batches`): the only runs where a new leader's
    /// first append can carry old-term entries alone, so the only ones
    /// that play Raft's Figure 8.
    pub small_batches: bool,
}

impl Schedule {
    /// A seeded timeline of faults in `spec.style` (see
    /// [`super::generate`]).
    pub fn generate(spec: &ScheduleSpec) -> Schedule {
        super::generate::generate(spec)
    }

    /// The kinds that occur in this schedule.
    pub fn kinds(&self) -> BTreeSet<NemesisKind> {
        self.events.iter().map(|e| e.op.kind()).collect()
    }
}

/// Restart delays the vote-crash nemesis draws from.
const VOTE_CRASH_RESTART_MS: [u64; 4] = [100, 200, 400, 800];

fn pick_nodes(target: Target, nodes: &[u64], rng: &mut SmallRng) -> Option<Vec<u64>> {
    let mut shuffled = nodes.to_vec();
    shuffled.shuffle(rng);
    let k = match target {
        Target::Leader => return None,
        Target::One => 1,
        Target::Majority => nodes.len() / 2 + 1,
        Target::All => nodes.len(),
    };
    Some(sorted(&shuffled[..k]))
}

fn pick_target(rng: &mut SmallRng) -> Target {
    match rng.gen_range(0..100) {
        0..=39 => Target::One,
        40..=69 => Target::Leader,
        70..=84 => Target::Majority,
        _ => Target::All,
    }
}

/// A start operation of `kind` with its parameters drawn from `rng`.
pub fn start_op(kind: NemesisKind, spec: &ScheduleSpec, rng: &mut SmallRng) -> FaultOp {
    let nodes = spec.nodes;
    match kind {
        NemesisKind::Partition => {
            let shapes = if spec.shapes.is_empty() {
                &PartitionShape::ALL[..]
            } else {
                spec.shapes
            };
            let shape = *shapes.choose(rng).expect("non-empty");
            FaultOp::StartPartition {
                shape,
                cut: Cut::generate(shape, nodes, rng),
            }
        }
        NemesisKind::Pause => {
            let target = pick_target(rng);
            FaultOp::StartPause {
                target,
                nodes: pick_nodes(target, nodes, rng),
            }
        }
        NemesisKind::Kill => {
            let target = pick_target(rng);
            FaultOp::StartKill {
                target,
                nodes: pick_nodes(target, nodes, rng),
            }
        }
        NemesisKind::Slow => FaultOp::StartSlow {
            delay_ms: *[20.0, 50.0, 100.0].choose(rng).expect("non-empty"),
            jitter_ms: 10.0,
            loss: *[0.0, 0.02, 0.1].choose(rng).expect("non-empty"),
        },
        NemesisKind::LeaderTransfer => FaultOp::StartTransfer {
            to: *nodes.choose(rng).expect("non-empty"),
        },
        NemesisKind::Membership => {
            let node = *nodes.choose(rng).expect("non-empty");
            let others: Vec<u64> = nodes.iter().copied().filter(|&n| n != node).collect();
            let also = match others.choose(rng) {
                Some(&n) if rng.gen_bool(0.7) => vec![n],
                _ => Vec::new(),
            };
            let transfer_first = spec.caps.leader_transfer && rng.gen_bool(0.3);
            // The race needs four voters and a voter that crashes after it
            // votes (a failpoint).
            let race = nodes.len() >= 4 && spec.caps.failpoints && rng.gen_bool(0.5);
            FaultOp::StartMembership {
                node,
                also,
                transfer_first: transfer_first && !race,
                isolate_leader: !transfer_first && !race && rng.gen_bool(0.6),
                race_split_ms: race.then(|| rng.gen_range(2_000..=4_000)),
            }
        }
        NemesisKind::VoteCrash => {
            // Short: a candidate of the same term must still be asking when
            // the node comes back (the first restart also waits until every
            // other node campaigns).
            let restart_after_ms = (0..4)
                .map(|_| *VOTE_CRASH_RESTART_MS.choose(rng).expect("non-empty"))
                .collect();
            FaultOp::StartVoteCrash {
                node: None,
                restart_after_ms,
            }
        }
        NemesisKind::LaggingLeader => FaultOp::StartLaggingLeader {
            node: nodes.choose(rng).copied(),
            lag_ms: rng.gen_range(1_500..=4_000),
            leader_fault: *[
                LeaderFault::Isolate,
                LeaderFault::Isolate,
                LeaderFault::Kill,
                LeaderFault::Pause,
            ]
            .choose(rng)
            .expect("non-empty"),
            elect_ms: rng.gen_range(2_500..=4_000),
        },
        NemesisKind::DeposedLeader => {
            // A zombie needs clocks to slow: runs with the clock fault have
            // them on every node.
            let fault = if spec.kinds.contains(&NemesisKind::Clock) && rng.gen_bool(0.7) {
                LeaderFault::Zombie
            } else if rng.gen_bool(0.7) {
                LeaderFault::Isolate
            } else {
                LeaderFault::Pause
            };
            // A zombie holds longer: its clients notice it only by their
            // writes' timeouts, and the others need an election first.
            let mut hold_ms = if fault == LeaderFault::Zombie {
                rng.gen_range(4_000..=8_000)
            } else {
                rng.gen_range(2_500..=5_000)
            };
            // A paused leader appends nothing while it is away, so only
            // one that goes on serving its clients meets a late successor.
            let crash_points = spec.caps.crash_points.contains(&CRASH_AFTER_APPEND);
            // Where batches are small, most late successors play Figure 8,
            // which no other run can.
            let figure8 = crash_points && spec.small_batches;
            // A zombie is mostly for stale reads, which need a successor
            // committing writes while it still answers: one that meets a
            // late successor has nobody else elected during its hold, so
            // only a quarter do (a lease-read bug went uncaught in 19 runs
            // when most did). An isolated leader steps down by itself.
            let p_late = match fault {
                LeaderFault::Zombie => 0.25,
                _ if figure8 => 0.9,
                _ => 0.4,
            };
            let late_successor =
                (fault != LeaderFault::Pause && rng.gen_bool(p_late)).then(|| LateSuccessor {
                    return_after_ms: *[0, 5, 20, 60].choose(rng).expect("non-empty"),
                    crash_on_overwrite: crash_points && rng.gen_bool(0.7),
                    old_term_commit: figure8 && rng.gen_bool(0.8),
                });
            if late_successor.is_some_and(|l| l.old_term_commit) {
                // A few seconds of its clients' writes are suffix enough
                // (far more than one small append): the rest of the time
                // goes to Figure 8's steps, so it fits in more runs.
                hold_ms = hold_ms.min(rng.gen_range(2_500..=4_000));
            }
            FaultOp::StartDeposedLeader {
                fault,
                hold_ms,
                crash: rng.gen_bool(0.4),
                crash_after_ms: rng.gen_bool(0.4).then(|| rng.gen_range(50..=1_500)),
                late_successor,
            }
        }
        NemesisKind::LeaderChurn => {
            let mut faults = vec![LeaderFault::Isolate, LeaderFault::Pause, LeaderFault::Kill];
            if spec.caps.leader_transfer {
                faults.push(LeaderFault::Transfer);
            }
            if spec.kinds.contains(&NemesisKind::Clock) {
                faults.push(LeaderFault::Zombie);
            }
            let steps = (0..rng.gen_range(3..=6))
                .map(|_| ChurnStep {
                    fault: *faults.choose(rng).expect("non-empty"),
                    hold_ms: rng.gen_range(300..=1_500),
                    gap_ms: rng.gen_range(200..=1_000),
                })
                .collect();
            FaultOp::StartLeaderChurn { steps }
        }
        NemesisKind::CrashPoint => {
            let target = match rng.gen_range(0..100) {
                0..=49 => Target::One,
                50..=79 => Target::Leader,
                _ => Target::Majority,
            };
            FaultOp::StartCrashPoint {
                failpoint: spec
                    .caps
                    .crash_points
                    .choose(rng)
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                target,
                nodes: pick_nodes(target, nodes, rng),
                restart_after_ms: (0..4)
                    .map(|_| *[50, 200, 500, 1_000].choose(rng).expect("non-empty"))
                    .collect(),
            }
        }
        NemesisKind::Messages => crate::nemesis::messages::draw_start(nodes, rng),
        NemesisKind::PowerCut => {
            // Like kill, but a cut of every node at once loses a write the
            // whole cluster acknowledged, which a single node's cut cannot.
            let target = pick_target(rng);
            FaultOp::StartPowerCut {
                target,
                nodes: pick_nodes(target, nodes, rng),
                mode: if rng.gen_bool(0.5) {
                    raft_faultfs::CutMode::LoseAll
                } else {
                    raft_faultfs::CutMode::TornSeq { seed: rng.gen() }
                },
            }
        }
        NemesisKind::Clock => {
            let target = pick_target(rng);
            FaultOp::StartClock {
                target,
                nodes: pick_nodes(target, nodes, rng),
                change: crate::nemesis::clock::ClockChange::draw(rng),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Target;
    use rand::SeedableRng;

    #[test]
    fn schedules_recorded_before_the_new_fault_fields_still_parse_and_replay_as_they_ran() {
        let old: FaultOp = serde_json::from_str(r#"{"f":"start-membership","node":2}"#).unwrap();
        assert_eq!(
            old,
            FaultOp::StartMembership {
                node: 2,
                also: Vec::new(),
                transfer_first: false,
                isolate_leader: false,
                race_split_ms: None,
            }
        );
        let old: FaultOp = serde_json::from_str(
            r#"{"f":"start-deposed-leader","fault":"isolate","hold_ms":3000,"crash":true}"#,
        )
        .unwrap();
        assert!(matches!(
            old,
            FaultOp::StartDeposedLeader {
                crash_after_ms: None,
                ..
            }
        ));
        let old: MessageFaults = serde_json::from_str(
            r#"{"duplicate":0.1,"reorder":0.1,"reorder_depth":2,"delay":0.1,"delay_ms":50,"replay":4,"reset_ms":1000,"seed":3}"#,
        )
        .unwrap();
        assert_eq!(old.append_lag_ms, 0);
        // And what is off is not written, so such files stay as they were.
        let v = serde_json::to_value(FaultOp::StartMembership {
            node: 2,
            also: Vec::new(),
            transfer_first: false,
            isolate_leader: false,
            race_split_ms: None,
        })
        .unwrap();
        assert_eq!(v, serde_json::json!({"f": "start-membership", "node": 2}));
    }

    #[test]
    fn choreographies_are_drawn_only_where_they_can_play_out() {
        use crate::target::Target;
        let raft = crate::target::raft::RaftTarget.capabilities();
        let draw_in =
            |kind: NemesisKind, nodes: &[u64], caps: Capabilities, small: bool, seed: u64| {
                let kinds = [kind, NemesisKind::Clock];
                let spec = ScheduleSpec {
                    seed,
                    kinds: &kinds,
                    shapes: &PartitionShape::ALL,
                    nodes,
                    interval: Duration::from_secs(3),
                    time_limit: Duration::from_secs(30),
                    style: ScheduleStyle::Mixed,
                    caps,
                    small_batches: small,
                };
                let mut rng = SmallRng::seed_from_u64(seed);
                start_op(kind, &spec, &mut rng)
            };
        let draw = |kind, nodes: &[u64], caps, seed| draw_in(kind, nodes, caps, true, seed);
        let late = |op: &FaultOp| match op {
            FaultOp::StartDeposedLeader {
                late_successor,
                fault,
                ..
            } => {
                // A paused leader appends nothing: it never meets one.
                assert!(late_successor.is_none() || *fault != LeaderFault::Pause);
                *late_successor
            }
            _ => panic!("not a deposed leader: {op:?}"),
        };
        let raft_draws: Vec<LateSuccessor> = (0..300)
            .filter_map(|s| late(&draw(NemesisKind::DeposedLeader, &[1, 2, 3], raft, s)))
            .collect();
        assert!(raft_draws.iter().any(|l| l.old_term_commit));
        assert!(raft_draws.iter().any(|l| l.crash_on_overwrite));
        assert!(raft_draws
            .iter()
            .any(|l| !l.old_term_commit && !l.crash_on_overwrite));
        // Without crash points (etcd): late successors, but never a crash
        // point nor Figure 8, which needs them.
        let bare: Vec<LateSuccessor> = (0..300)
            .filter_map(|s| {
                late(&draw(
                    NemesisKind::DeposedLeader,
                    &[1, 2, 3],
                    Capabilities::default(),
                    s,
                ))
            })
            .collect();
        assert!(!bare.is_empty());
        assert!(bare
            .iter()
            .all(|l| !l.old_term_commit && !l.crash_on_overwrite));
        // The membership race needs four voters and failpoints.
        let race = |nodes: &[u64], caps: Capabilities, s: u64| {
            matches!(
                draw(NemesisKind::Membership, nodes, caps, s),
                FaultOp::StartMembership {
                    race_split_ms: Some(_),
                    ..
                }
            )
        };
        assert!((0..100).any(|s| race(&[1, 2, 3, 4, 5], raft, s)));
        assert!(!(0..300).any(|s| race(&[1, 2, 3], raft, s)));
        assert!(!(0..300).any(|s| race(&[1, 2, 3, 4, 5], Capabilities::default(), s)));
    }

    #[test]
    fn clock_runs_draw_zombie_leaders_and_others_never_do() {
        let nodes = [1, 2, 3];
        let draw = |kinds: &[NemesisKind], seed: u64| {
            let spec = ScheduleSpec {
                seed,
                kinds,
                shapes: &PartitionShape::ALL,
                nodes: &nodes,
                interval: Duration::from_secs(3),
                time_limit: Duration::from_secs(30),
                style: ScheduleStyle::Mixed,
                caps: Capabilities::default(),
                small_batches: false,
            };
            let mut rng = SmallRng::seed_from_u64(seed);
            start_op(NemesisKind::DeposedLeader, &spec, &mut rng)
        };
        let zombie = |op: &FaultOp| {
            matches!(
                op,
                FaultOp::StartDeposedLeader {
                    fault: LeaderFault::Zombie,
                    ..
                }
            )
        };
        let with_clock = [NemesisKind::DeposedLeader, NemesisKind::Clock];
        assert!((0..50).any(|s| zombie(&draw(&with_clock, s))));
        assert!(!(0..200).any(|s| zombie(&draw(&[NemesisKind::DeposedLeader], s))));
    }

    fn spec<'a>(kinds: &'a [NemesisKind], nodes: &'a [u64], secs: u64) -> ScheduleSpec<'a> {
        ScheduleSpec {
            seed: 11,
            kinds,
            shapes: &PartitionShape::ALL,
            nodes,
            interval: Duration::from_secs(2),
            time_limit: Duration::from_secs(secs),
            style: ScheduleStyle::Serial,
            caps: crate::target::raft::RaftTarget.capabilities(),
            small_batches: false,
        }
    }

    #[test]
    fn starts_and_stops_alternate_and_end_healed_by_the_time_limit() {
        let s = Schedule::generate(&spec(&NemesisKind::ALL, &[1, 2, 3], 60));
        assert!(s.events.len() >= 10);
        for pair in s.events.chunks(2) {
            assert_eq!(pair.len(), 2, "every start has its stop");
            assert_eq!(pair[0].op.stop().as_ref(), Some(&pair[1].op));
            assert!(pair[0].at_ms < pair[1].at_ms);
        }
        assert!(s.events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert!(s.events.iter().all(|e| e.at_ms <= 60_000));
        assert_eq!(s.kinds().len(), NemesisKind::ALL.len());
    }

    #[test]
    fn a_short_run_sees_every_enabled_kind() {
        let kinds = [
            NemesisKind::Partition,
            NemesisKind::Kill,
            NemesisKind::Pause,
        ];
        let s = Schedule::generate(&ScheduleSpec {
            interval: Duration::from_millis(1500),
            ..spec(&kinds, &[1, 2, 3], 15)
        });
        assert_eq!(s.kinds().len(), 3, "{s:?}");
    }

    #[test]
    fn same_seed_same_schedule_and_it_round_trips_through_json() {
        let a = Schedule::generate(&spec(&NemesisKind::ALL, &[1, 2, 3, 4, 5], 30));
        let b = Schedule::generate(&spec(&NemesisKind::ALL, &[1, 2, 3, 4, 5], 30));
        assert_eq!(a, b);
        let json = serde_json::to_string(&a).unwrap();
        let back: Schedule = serde_json::from_str(&json).unwrap();
        assert_eq!(a, back);
    }

    #[test]
    fn no_kinds_means_an_empty_schedule() {
        assert!(Schedule::generate(&spec(&[], &[1, 2, 3], 30))
            .events
            .is_empty());
    }

    #[test]
    fn halves_and_one_leave_a_majority_connected() {
        let nodes = [1, 2, 3, 4, 5];
        let mut rng = SmallRng::seed_from_u64(1);
        for shape in [PartitionShape::One, PartitionShape::Halves] {
            let cut = Cut::generate(shape, &nodes, &mut rng).unwrap();
            let groups = cut.groups.clone().unwrap();
            assert!(groups.iter().any(|g| g.len() >= 3), "{shape:?} {groups:?}");
            // Symmetric: a cut link is cut both ways.
            let set = cut.blocked_set();
            assert!(set.iter().all(|(a, b)| set.contains(&(*b, *a))));
        }
    }

    #[test]
    fn bridge_node_hears_everyone_and_the_sides_do_not_hear_each_other() {
        let nodes = [1, 2, 3, 4, 5];
        let mut rng = SmallRng::seed_from_u64(2);
        let cut = Cut::generate(PartitionShape::Bridge, &nodes, &mut rng).unwrap();
        let groups = cut.groups.clone().unwrap();
        let bridge: Vec<u64> = groups[0]
            .iter()
            .copied()
            .filter(|n| groups[1].contains(n))
            .collect();
        assert_eq!(bridge.len(), 1);
        let set = cut.blocked_set();
        assert!(set.iter().all(|(a, b)| *a != bridge[0] && *b != bridge[0]));
        assert_eq!(set.len(), 2 * 2 * 2, "2x2 nodes cut both ways");
    }

    #[test]
    fn majorities_ring_gives_each_node_a_distinct_majority() {
        for nodes in [vec![1, 2, 3], vec![1, 2, 3, 4, 5]] {
            let mut rng = SmallRng::seed_from_u64(3);
            let cut = Cut::generate(PartitionShape::MajoritiesRing, &nodes, &mut rng).unwrap();
            let set = cut.blocked_set();
            let mut heard_sets = BTreeSet::new();
            for &to in &nodes {
                let heard: BTreeSet<u64> = nodes
                    .iter()
                    .copied()
                    .filter(|&from| !set.contains(&(from, to)))
                    .collect();
                assert!(heard.contains(&to));
                assert_eq!(
                    heard.len(),
                    nodes.len() / 2 + 1,
                    "node {to} hears {heard:?}"
                );
                heard_sets.insert(heard);
            }
            assert_eq!(heard_sets.len(), nodes.len(), "majorities must differ");
        }
    }

    #[test]
    fn vote_crash_aims_at_the_leader_with_seeded_restart_delays() {
        let kinds = [NemesisKind::VoteCrash];
        let s = Schedule::generate(&spec(&kinds, &[1, 2, 3], 30));
        assert!(!s.events.is_empty());
        for e in &s.events {
            match &e.op {
                FaultOp::StartVoteCrash {
                    node,
                    restart_after_ms,
                } => {
                    assert_eq!(*node, None);
                    assert!(!restart_after_ms.is_empty());
                }
                other => assert_eq!(*other, FaultOp::StopVoteCrash),
            }
        }
    }

    #[test]
    fn a_bridge_around_a_node_gives_each_side_a_majority_through_it() {
        for (nodes, middle) in [(vec![1, 2, 3], 2), (vec![1, 2, 3, 4, 5], 4)] {
            let cut = Cut::bridge_around(middle, &nodes);
            let groups = cut.groups.clone().unwrap();
            assert_eq!(groups.len(), 2);
            let shared: Vec<u64> = groups[0]
                .iter()
                .copied()
                .filter(|n| groups[1].contains(n))
                .collect();
            assert_eq!(shared, vec![middle]);
            assert!(groups.iter().all(|g| g.len() > nodes.len() / 2));
            // The middle hears everyone; the sides do not hear each other.
            let set = cut.blocked_set();
            assert!(set.iter().all(|(a, b)| *a != middle && *b != middle));
            assert_eq!(set.len(), 2 * (nodes.len() / 2).pow(2));
        }
    }

    #[test]
    fn machine_faults_are_drawn_as_data_that_replays_and_is_aimed_by_role() {
        let kinds = [NemesisKind::PowerCut, NemesisKind::Clock];
        let s = Schedule::generate(&spec(&kinds, &[1, 2, 3], 60));
        assert_eq!(s.kinds().len(), 2, "{s:?}");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Schedule>(&json).unwrap(), s);
        let swap = |i: u64| {
            if i == 1 {
                3
            } else if i == 3 {
                1
            } else {
                i
            }
        };
        let cut = FaultOp::StartPowerCut {
            target: super::Target::One,
            nodes: Some(vec![1]),
            mode: raft_faultfs::CutMode::TornSeq { seed: 5 },
        };
        assert_eq!(
            cut.remap(&swap),
            FaultOp::StartPowerCut {
                target: super::Target::One,
                nodes: Some(vec![3]),
                mode: raft_faultfs::CutMode::TornSeq { seed: 5 },
            }
        );
        let skew = FaultOp::StartClock {
            target: super::Target::Majority,
            nodes: Some(vec![1, 2]),
            change: crate::nemesis::clock::ClockChange::Skew { rate: 0.5 },
        };
        assert!(
            matches!(skew.remap(&swap), FaultOp::StartClock { nodes: Some(n), .. } if n == vec![3, 2])
        );
        assert_eq!(cut.stop(), Some(FaultOp::StopPowerCut));
        assert_eq!(skew.stop(), Some(FaultOp::StopClock));
    }

    #[test]
    fn names_parse_back() {
        for k in NemesisKind::ALL {
            assert_eq!(NemesisKind::parse(k.name()), Some(k));
        }
        for s in PartitionShape::ALL {
            assert_eq!(PartitionShape::parse(s.name()), Some(s));
        }
        assert_eq!(NemesisKind::parse("flood"), None);
    }
}
