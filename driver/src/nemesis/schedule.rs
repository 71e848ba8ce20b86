//! The fault schedule: seeded fault / heal alternation as plain data.
//!
//! The schedule is computed before the run from the seed and written to
//! test.json, and each event's resolved form goes into the history, so a
//! later `replay` can re-apply it exactly. Targets that depend on the
//! cluster at that moment (the current leader) are resolved when applied.

use crate::net::messages::MessageFaults;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
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
    /// Duplicate, reorder, delay and replay whole peer messages on links.
    Messages,
}

impl NemesisKind {
    /// Every kind, in the order `all` uses.
    pub const ALL: [NemesisKind; 8] = [
        NemesisKind::Partition,
        NemesisKind::Kill,
        NemesisKind::Pause,
        NemesisKind::Slow,
        NemesisKind::LeaderTransfer,
        NemesisKind::Membership,
        NemesisKind::VoteCrash,
        NemesisKind::Messages,
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
            NemesisKind::Messages => "messages",
        }
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
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
    /// Remove `node` (another one if it leads) from the configuration.
    StartMembership {
        /// Node to remove.
        node: u64,
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
            FaultOp::StartMessages { .. } => "start-messages",
            FaultOp::StopMessages => "stop-messages",
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
            FaultOp::StartMessages { .. } => FaultOp::StopMessages,
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
}

impl Schedule {
    /// A seeded schedule: a quiet start, then fault and heal phases of about
    /// `interval` each (jittered +-25% by the seed), kinds taken round-robin
    /// from a reshuffled list so that every kind comes up early.
    pub fn generate(spec: &ScheduleSpec) -> Schedule {
        let mut rng = SmallRng::seed_from_u64(spec.seed ^ 0x5C4E_D01E);
        let mut events = Vec::new();
        if spec.kinds.is_empty() || spec.nodes.is_empty() {
            return Schedule { events };
        }
        let limit = spec.time_limit.as_millis() as u64;
        let interval = spec.interval.as_millis().max(1) as f64;
        let jittered = |rng: &mut SmallRng, lo: f64, hi: f64| -> u64 {
            (interval * rng.gen_range(lo..=hi)).round().max(1.0) as u64
        };
        let mut t = jittered(&mut rng, 0.5, 1.0);
        let mut round: Vec<NemesisKind> = Vec::new();
        // A fault starts only with at least half an interval left to last.
        while t + (interval / 2.0) as u64 <= limit {
            if round.is_empty() {
                round = spec.kinds.to_vec();
                round.shuffle(&mut rng);
            }
            let kind = round.pop().expect("refilled above");
            let op = start_op(kind, spec, &mut rng);
            let stop = op.stop().expect("start op");
            events.push(ScheduledFault { at_ms: t, op });
            let stop_at = (t + jittered(&mut rng, 0.75, 1.25)).min(limit);
            events.push(ScheduledFault {
                at_ms: stop_at,
                op: stop,
            });
            t = stop_at + jittered(&mut rng, 0.75, 1.25);
        }
        Schedule { events }
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

fn start_op(kind: NemesisKind, spec: &ScheduleSpec, rng: &mut SmallRng) -> FaultOp {
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
        NemesisKind::Membership => FaultOp::StartMembership {
            node: *nodes.choose(rng).expect("non-empty"),
        },
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
        NemesisKind::Messages => crate::nemesis::messages::draw_start(nodes, rng),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(kinds: &'a [NemesisKind], nodes: &'a [u64], secs: u64) -> ScheduleSpec<'a> {
        ScheduleSpec {
            seed: 11,
            kinds,
            shapes: &PartitionShape::ALL,
            nodes,
            interval: Duration::from_secs(2),
            time_limit: Duration::from_secs(secs),
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
