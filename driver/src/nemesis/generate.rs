//! Seeded fault timelines. Two styles:
//!
//! - `serial`: one fault at a time, each followed by a full heal (the
//!   classic alternation; every fault's effect is seen alone).
//! - `mixed` (the default), as Jepsen's combined nemesis packages do: faults
//!   of different kinds overlap (a kill during a partition, a pause during
//!   a slow link), a partition is changed into another without a heal
//!   between, bursts start several short faults 0.2 to 1 s apart, and quiet
//!   gaps let the cluster heal and catch up now and then. A lagging node so
//!   gets to run an election, and a deposed leader comes back with entries
//!   nobody else has; the targeted scenarios make those situations on
//!   purpose.
//!
//! Kinds that shape the whole cluster (a partition, vote-crash, the
//! scenarios, membership) never overlap one another; any other pair may.
//! Everything is decided here, from the seed, and written to test.json, so
//! `replay` plays the same timeline.

use super::schedule::{start_op, FaultOp, NemesisKind, Schedule, ScheduleSpec, ScheduledFault};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How faults are laid out in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleStyle {
    /// Faults overlap, change into one another, come in bursts; quiet gaps
    /// between.
    #[default]
    Mixed,
    /// One fault at a time, each followed by a full heal.
    Serial,
}

/// What a kind holds while it is in effect (no other kind may hold or use
/// it meanwhile), and what it only uses (others may use it too).
fn holds_uses(kind: NemesisKind) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        NemesisKind::Partition => (&["cut"], &[]),
        // Choreographies of their own: they need the cluster's shape to
        // themselves, and a majority that other faults do not take away.
        NemesisKind::VoteCrash
        | NemesisKind::LaggingLeader
        | NemesisKind::DeposedLeader
        | NemesisKind::LeaderChurn => (&["cut", "choreography", "majority"], &[]),
        // It may cut the leader off itself.
        NemesisKind::Membership => (&["configuration", "choreography", "cut"], &[]),
        // Faults that take nodes away may overlap one another.
        NemesisKind::Kill
        | NemesisKind::Pause
        | NemesisKind::CrashPoint
        | NemesisKind::PowerCut => (&[], &["majority"]),
        // A clock fault takes nothing away and may overlap anything.
        _ => (&[], &[]),
    }
}

/// Whether `a` and `b` may be in effect at once.
pub fn may_overlap(a: NemesisKind, b: NemesisKind) -> bool {
    let (ha, ua) = holds_uses(a);
    let (hb, ub) = holds_uses(b);
    let clash = |h: &[&str], other: &[&str]| h.iter().any(|r| other.contains(r));
    a != b && !clash(ha, hb) && !clash(ha, ub) && !clash(hb, ua)
}

/// A seeded timeline in `spec.style`.
pub fn generate(spec: &ScheduleSpec) -> Schedule {
    let mut rng = SmallRng::seed_from_u64(spec.seed ^ 0x5C4E_D01E);
    if spec.kinds.is_empty() || spec.nodes.is_empty() {
        return Schedule { events: Vec::new() };
    }
    match spec.style {
        ScheduleStyle::Serial => serial(spec, &mut rng),
        ScheduleStyle::Mixed => Mixed::new(spec).run(&mut rng),
    }
}

/// `interval` times a factor drawn from `lo..=hi`, in whole milliseconds.
fn scaled(interval_ms: f64, rng: &mut SmallRng, lo: f64, hi: f64) -> u64 {
    (interval_ms * rng.gen_range(lo..=hi)).round().max(1.0) as u64
}

/// A quiet start, then fault and heal phases of about `interval` each
/// (jittered +-25%), kinds round-robin from a reshuffled list so that
/// every kind comes up early.
fn serial(spec: &ScheduleSpec, rng: &mut SmallRng) -> Schedule {
    let limit = spec.time_limit.as_millis() as u64;
    let interval = spec.interval.as_millis().max(1) as f64;
    let mut events = Vec::new();
    let mut t = scaled(interval, rng, 0.5, 1.0);
    let mut round: Vec<NemesisKind> = Vec::new();
    // A fault starts only with at least half an interval left to last.
    while t + (interval / 2.0) as u64 <= limit {
        if round.is_empty() {
            round = spec.kinds.to_vec();
            round.shuffle(rng);
        }
        let kind = round.pop().expect("refilled above");
        let op = start_op(kind, spec, rng);
        let stop = op.stop().expect("start op");
        events.push(ScheduledFault::new(t, op));
        let stop_at = (t + scaled(interval, rng, 0.75, 1.25)).min(limit);
        events.push(ScheduledFault::new(stop_at, stop));
        t = stop_at + scaled(interval, rng, 0.75, 1.25);
    }
    Schedule { events }
}

/// The mixed timeline under construction.
struct Mixed<'a> {
    spec: &'a ScheduleSpec<'a>,
    limit: u64,
    interval: f64,
    events: Vec<ScheduledFault>,
    /// Kinds in effect: when each stops, and its stop operation.
    active: BTreeMap<NemesisKind, (u64, FaultOp)>,
    /// Kinds not yet used in the current round (so every kind comes up).
    round: Vec<NemesisKind>,
}

impl<'a> Mixed<'a> {
    fn new(spec: &'a ScheduleSpec<'a>) -> Self {
        Mixed {
            spec,
            limit: spec.time_limit.as_millis() as u64,
            interval: spec.interval.as_millis().max(1) as f64,
            events: Vec::new(),
            active: BTreeMap::new(),
            round: Vec::new(),
        }
    }

    fn run(mut self, rng: &mut SmallRng) -> Schedule {
        // A short quiet start: the first faults hit a cluster under load.
        let mut t = scaled(self.interval, rng, 0.3, 0.6);
        while t + 300 <= self.limit {
            self.stop_due(t);
            let roll = rng.gen_range(0..100);
            t = if roll < 15 {
                self.burst(t, rng)
            } else if roll < 27 {
                self.quiet(t, rng)
            } else {
                self.one(t, rng)
            };
        }
        self.stop_due(u64::MAX);
        self.events.sort_by_key(|e| e.at_ms);
        Schedule {
            events: self.events,
        }
    }

    /// Writes the stops due by `t`.
    fn stop_due(&mut self, t: u64) {
        let due: Vec<NemesisKind> = self
            .active
            .iter()
            .filter(|(_, (end, _))| *end <= t)
            .map(|(&k, _)| k)
            .collect();
        for k in due {
            if let Some((end, stop)) = self.active.remove(&k) {
                self.events
                    .push(ScheduledFault::new(end.min(self.limit), stop));
            }
        }
    }

    /// The next kind to start at `t` that may overlap everything in effect
    /// (a partition in effect may be changed into another), or None.
    fn pick(&mut self, rng: &mut SmallRng) -> Option<NemesisKind> {
        if self.round.is_empty() {
            let first = self.events.is_empty();
            self.round = self.spec.kinds.to_vec();
            self.round.shuffle(rng);
            let deposed = self
                .round
                .iter()
                .position(|&k| k == NemesisKind::DeposedLeader);
            if let (true, Some(pos)) = (first, deposed) {
                // A deposed leader's choreography takes up to 20 s, and
                // one drawn late in a short run has no time to play out:
                // in the first round it comes in the first half (the
                // round is taken from its end).
                let kind = self.round.remove(pos);
                let len = self.round.len();
                let at = rng.gen_range(len / 2..=len);
                self.round.insert(at, kind);
            }
        }
        let fits = |k: NemesisKind, active: &BTreeMap<NemesisKind, (u64, FaultOp)>| {
            active
                .keys()
                .all(|&a| may_overlap(a, k) || (a == k && k == NemesisKind::Partition))
        };
        // A kind that does not fit now keeps its place in the round and
        // comes up once what it clashes with has ended.
        let pos = self.round.iter().rposition(|&k| fits(k, &self.active))?;
        Some(self.round.remove(pos))
    }

    /// Starts `kind` at `t` for `len` ms (a partition in effect is changed
    /// and lasts until the later of the two stops).
    fn start(&mut self, kind: NemesisKind, t: u64, len: u64, rng: &mut SmallRng) {
        let mut op = start_op(kind, self.spec, rng);
        op.fit_within(self.limit.saturating_sub(t));
        let Some(stop) = op.stop() else { return };
        // A choreography lasts as long as its steps need.
        let len = len.max(op.min_duration_ms());
        let end = (t + len).min(self.limit);
        let end = self.active.get(&kind).map_or(end, |(e, _)| (*e).max(end));
        self.active.insert(kind, (end, stop));
        self.events.push(ScheduledFault::new(t, op));
    }

    /// One fault of about an interval; the next one starts before it ends
    /// more often than not.
    fn one(&mut self, t: u64, rng: &mut SmallRng) -> u64 {
        if let Some(kind) = self.pick(rng) {
            let len = scaled(self.interval, rng, 0.5, 1.5);
            self.start(kind, t, len, rng);
        }
        t + scaled(self.interval, rng, 0.25, 0.9)
    }

    /// Three to six short faults, 0.2 to 1 s apart.
    fn burst(&mut self, mut t: u64, rng: &mut SmallRng) -> u64 {
        for _ in 0..rng.gen_range(3..=6) {
            if t + 300 > self.limit {
                break;
            }
            self.stop_due(t);
            if let Some(kind) = self.pick(rng) {
                let len = rng.gen_range(300..=2_000);
                self.start(kind, t, len, rng);
            }
            t += rng.gen_range(200..=1_000);
        }
        t
    }

    /// Lets every fault in effect end, then a healed gap of about an
    /// interval: the cluster heals and catches up before what comes next.
    fn quiet(&mut self, t: u64, rng: &mut SmallRng) -> u64 {
        let last = self
            .active
            .values()
            .map(|(e, _)| *e)
            .max()
            .unwrap_or(t)
            .max(t);
        self.stop_due(last);
        last + scaled(self.interval, rng, 0.5, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::scenario::{LateSuccessor, LeaderFault};
    use crate::nemesis::schedule::PartitionShape;
    use crate::target::Target;
    use std::time::Duration;

    fn spec<'a>(
        kinds: &'a [NemesisKind],
        nodes: &'a [u64],
        secs: u64,
        seed: u64,
    ) -> ScheduleSpec<'a> {
        ScheduleSpec {
            seed,
            kinds,
            shapes: &PartitionShape::ALL,
            nodes,
            interval: Duration::from_secs(3),
            time_limit: Duration::from_secs(secs),
            style: ScheduleStyle::Mixed,
            caps: crate::target::raft::RaftTarget.capabilities(),
            small_batches: false,
        }
    }

    /// (kind, start, stop) of every fault in effect, from the events.
    fn spans(s: &Schedule) -> Vec<(NemesisKind, u64, u64)> {
        let mut open: BTreeMap<NemesisKind, u64> = BTreeMap::new();
        let mut out = Vec::new();
        for e in &s.events {
            let k = e.op.kind();
            if e.op.stop().is_some() {
                open.entry(k).or_insert(e.at_ms);
            } else if let Some(start) = open.remove(&k) {
                out.push((k, start, e.at_ms));
            }
        }
        assert!(open.is_empty(), "a fault never stopped: {open:?}");
        out
    }

    #[test]
    fn mixed_faults_of_different_kinds_overlap_and_every_fault_stops_by_the_limit() {
        let s = generate(&spec(&NemesisKind::ALL, &[1, 2, 3], 120, 5));
        assert!(s.events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert!(s.events.iter().all(|e| e.at_ms <= 120_000));
        let sp = spans(&s);
        let overlapping = sp.iter().enumerate().any(|(i, a)| {
            sp[i + 1..]
                .iter()
                .any(|b| a.0 != b.0 && b.1 < a.2 && a.1 < b.2)
        });
        assert!(overlapping, "no two faults overlap: {sp:?}");
        assert_eq!(s.kinds().len(), NemesisKind::ALL.len(), "{:?}", s.kinds());
    }

    #[test]
    fn a_deposed_leaders_choreography_is_scheduled_only_where_it_can_play_out() {
        // The default sets' shape: 30 s runs, small batches (Figure 8).
        let kinds = [
            NemesisKind::Partition,
            NemesisKind::Kill,
            NemesisKind::Pause,
            NemesisKind::LaggingLeader,
            NemesisKind::DeposedLeader,
            NemesisKind::LeaderChurn,
            NemesisKind::Membership,
            NemesisKind::Messages,
            NemesisKind::Clock,
        ];
        let (mut figure8, mut late) = (0, 0);
        for seed in 0..300 {
            let mut sp = spec(&kinds, &[1, 2, 3], 30, seed);
            sp.small_batches = true;
            for e in generate(&sp).events {
                if let FaultOp::StartDeposedLeader {
                    late_successor: Some(l),
                    ..
                } = &e.op
                {
                    assert!(
                        e.at_ms + e.op.min_duration_ms() <= 30_000,
                        "seed {seed}: {e:?} cannot play out by the end"
                    );
                    late += 1;
                    figure8 += usize::from(l.old_term_commit);
                }
            }
        }
        // Fitting drops steps, not the whole kind, and the deposed leader
        // comes early: 107 late successors and 44 Figure 8s play out in
        // these 300 runs (with the late-successor odds of an earlier
        // commit, 184 and 93 did; 77 and 50 when the deposed leader came
        // anywhere in the round and was cut off by the end).
        assert!(late > 80 && figure8 > 30, "late {late}, figure 8 {figure8}");
    }

    #[test]
    fn fitting_drops_figure_8_then_the_late_successor_and_nothing_else() {
        let op = |old_term_commit| FaultOp::StartDeposedLeader {
            fault: LeaderFault::Zombie,
            hold_ms: 3_000,
            crash: false,
            crash_after_ms: None,
            late_successor: Some(LateSuccessor {
                return_after_ms: 0,
                crash_on_overwrite: true,
                old_term_commit,
            }),
        };
        let fitted = |mut o: FaultOp, avail| {
            o.fit_within(avail);
            o
        };
        assert_eq!(fitted(op(true), 60_000), op(true));
        let mut shorter = op(true);
        shorter.fit_within(op(false).min_duration_ms());
        assert_eq!(shorter, op(false));
        let FaultOp::StartDeposedLeader {
            late_successor,
            hold_ms,
            ..
        } = fitted(op(true), 1_000)
        else {
            unreachable!()
        };
        assert_eq!((late_successor, hold_ms), (None, 3_000));
    }

    #[test]
    fn kinds_that_hold_the_cluster_shape_never_overlap() {
        for seed in 0..200 {
            let s = generate(&spec(&NemesisKind::ALL, &[1, 2, 3, 4, 5], 60, seed));
            let sp = spans(&s);
            for (i, a) in sp.iter().enumerate() {
                for b in &sp[i + 1..] {
                    if b.1 < a.2 && a.1 < b.2 {
                        assert!(may_overlap(a.0, b.0), "seed {seed}: {a:?} overlaps {b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_partition_is_changed_into_another_without_a_heal_in_some_seed() {
        let changed = (0..100).any(|seed| {
            let s = generate(&spec(
                &[NemesisKind::Partition, NemesisKind::Kill],
                &[1, 2, 3],
                60,
                seed,
            ));
            s.events.windows(2).any(|w| {
                matches!(w[0].op, FaultOp::StartPartition { .. })
                    && matches!(w[1].op, FaultOp::StartPartition { .. })
            })
        });
        assert!(changed);
    }

    #[test]
    fn a_power_cut_takes_nodes_away_like_a_kill_and_a_clock_fault_overlaps_anything() {
        assert!(may_overlap(NemesisKind::PowerCut, NemesisKind::Kill));
        assert!(!may_overlap(
            NemesisKind::PowerCut,
            NemesisKind::LeaderChurn
        ));
        for k in NemesisKind::ALL {
            if k != NemesisKind::Clock {
                assert!(may_overlap(NemesisKind::Clock, k), "{k:?}");
            }
        }
    }

    #[test]
    fn bursts_start_faults_under_a_second_apart() {
        let bursty = (0..50).any(|seed| {
            let s = generate(&spec(&NemesisKind::ALL, &[1, 2, 3], 60, seed));
            let starts: Vec<u64> = s
                .events
                .iter()
                .filter(|e| e.op.stop().is_some())
                .map(|e| e.at_ms)
                .collect();
            starts.windows(3).any(|w| w[2] - w[0] <= 2_000)
        });
        assert!(bursty);
    }

    #[test]
    fn the_same_seed_gives_the_same_timeline_and_serial_never_overlaps() {
        let a = generate(&spec(&NemesisKind::ALL, &[1, 2, 3], 40, 9));
        let b = generate(&spec(&NemesisKind::ALL, &[1, 2, 3], 40, 9));
        assert_eq!(a, b);
        let s = generate(&ScheduleSpec {
            style: ScheduleStyle::Serial,
            ..spec(&NemesisKind::ALL, &[1, 2, 3], 40, 9)
        });
        let sp = spans(&s);
        assert!(sp.windows(2).all(|w| w[0].2 <= w[1].1), "{sp:?}");
    }
}
