//! Message faults on a raft-node peer stream: duplicate, reorder and delay
//! whole frames, and replay frames of earlier connections at the start of
//! a new one (so old messages, possibly of an older term, arrive after
//! newer ones). Frames are only ever moved or copied whole, so the framing
//! stays valid: a malformed frame would make the node close the stream,
//! which tests nothing.
//!
//! Everything here is driven by the caller's clock and a seeded generator,
//! so it is tested without sleeping.

use super::frames::{frame_field, frame_is_log_append, frame_term, APPEND_ENTRIES};
use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::seq::index;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// What the message faults of a link do; all chances are per frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MessageFaults {
    /// Chance that a frame is sent twice (if it is also held back, one copy
    /// passes now and the other later: a stale duplicate).
    pub duplicate: f64,
    /// Chance that a frame is held back until 1 to `reorder_depth` later
    /// frames have passed it (or `delay_ms` at most, if traffic stops).
    pub reorder: f64,
    /// Most frames that overtake a reordered one.
    pub reorder_depth: u32,
    /// Chance that a frame is held for `delay_ms` while later ones pass.
    pub delay: f64,
    /// How long a delayed frame is held.
    pub delay_ms: u64,
    /// Frames of earlier connections of the link sent at the start of each
    /// new one, before its own traffic (see [`ReplayRing`]).
    pub replay: u32,
    /// Mean lifetime of a peer connection before the proxy resets it, so
    /// that the node reconnects and replays happen (0: never reset).
    pub reset_ms: u64,
    /// Every AppendEntries that is not a heartbeat (entries, probes) is held
    /// this long, in order, while heartbeats, votes and answers pass: the
    /// log moves slowly while leadership and reads are confirmed at full
    /// speed, so a commit index learnt by heartbeat runs ahead of the log
    /// and a new leader's first entry is slow to commit (0: off).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub append_lag_ms: u64,
    /// Seeds the draws (with the link and the connection).
    pub seed: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Bytes of lagging AppendEntries one connection holds; beyond that they
/// pass (a bound on memory, not a fault).
const MAX_LAGGING_BYTES: usize = 64 << 20;

/// The last frames of a link kept for replay.
pub const RECENT_FRAMES: usize = 32;
/// Older frames of a link kept for replay, one per [`AGED_EVERY`].
pub const AGED_FRAMES: usize = 32;
/// How far apart the older frames kept for replay are.
pub const AGED_EVERY: Duration = Duration::from_millis(100);
/// Bytes of frames in each of the two queues (the oldest go first beyond).
const RING_BYTES: usize = 2 << 20;
/// Frames one connection holds back at once; beyond that frames pass.
const MAX_HELD: usize = 64;

/// What the message faults of one link did, counted as it happens.
#[derive(Debug, Default)]
pub struct MessageCounts {
    duplicated: AtomicU64,
    reordered: AtomicU64,
    delayed: AtomicU64,
    replayed: AtomicU64,
    replayed_appends: AtomicU64,
    replayed_older_term: AtomicU64,
    lagged_appends: AtomicU64,
    replayed_connections: AtomicU64,
    resets: AtomicU64,
    stalled_chunks: AtomicU64,
}

/// A reading of [`MessageCounts`], or the difference of two.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageTally {
    /// Frames sent twice.
    pub duplicated: u64,
    /// Frames overtaken by later ones (held back by count).
    pub reordered: u64,
    /// Frames held back by time.
    pub delayed: u64,
    /// Old frames sent at the start of a new connection.
    pub replayed: u64,
    /// Of the replayed frames, AppendEntries (heartbeats included).
    pub replayed_appends: u64,
    /// Of the replayed frames, those of a term older than the newest the
    /// link kept.
    pub replayed_older_term: u64,
    /// AppendEntries held back by the append lag.
    #[serde(default)]
    pub lagged_appends: u64,
    /// Opaque connections (raft-node's snapshot calls) sent again whole,
    /// late, on a new connection.
    #[serde(default)]
    pub replayed_connections: u64,
    /// Connections the proxy reset (peer streams and etcd's HTTP).
    pub resets: u64,
    /// etcd HTTP chunks held for `delay_ms` (with every chunk behind them).
    pub stalled_chunks: u64,
}

/// A counter of [`MessageCounts`].
#[derive(Debug, Clone, Copy)]
pub enum Count {
    /// See [`MessageTally::duplicated`].
    Duplicated,
    /// See [`MessageTally::reordered`].
    Reordered,
    /// See [`MessageTally::delayed`].
    Delayed,
    /// See [`MessageTally::replayed`].
    Replayed,
    /// See [`MessageTally::replayed_appends`].
    ReplayedAppends,
    /// See [`MessageTally::replayed_older_term`].
    ReplayedOlderTerm,
    /// See [`MessageTally::lagged_appends`].
    LaggedAppends,
    /// See [`MessageTally::replayed_connections`].
    ReplayedConnections,
    /// See [`MessageTally::resets`].
    Resets,
    /// See [`MessageTally::stalled_chunks`].
    StalledChunks,
}

impl MessageCounts {
    /// Adds `n` to one counter.
    pub fn add(&self, c: Count, n: u64) {
        let a = match c {
            Count::Duplicated => &self.duplicated,
            Count::Reordered => &self.reordered,
            Count::Delayed => &self.delayed,
            Count::Replayed => &self.replayed,
            Count::ReplayedAppends => &self.replayed_appends,
            Count::ReplayedOlderTerm => &self.replayed_older_term,
            Count::LaggedAppends => &self.lagged_appends,
            Count::ReplayedConnections => &self.replayed_connections,
            Count::Resets => &self.resets,
            Count::StalledChunks => &self.stalled_chunks,
        };
        a.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn tally(&self) -> MessageTally {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MessageTally {
            duplicated: r(&self.duplicated),
            reordered: r(&self.reordered),
            delayed: r(&self.delayed),
            replayed: r(&self.replayed),
            replayed_appends: r(&self.replayed_appends),
            replayed_older_term: r(&self.replayed_older_term),
            lagged_appends: r(&self.lagged_appends),
            replayed_connections: r(&self.replayed_connections),
            resets: r(&self.resets),
            stalled_chunks: r(&self.stalled_chunks),
        }
    }
}

impl MessageTally {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &MessageTally) -> MessageTally {
        MessageTally {
            duplicated: self.duplicated - earlier.duplicated,
            reordered: self.reordered - earlier.reordered,
            delayed: self.delayed - earlier.delayed,
            replayed: self.replayed - earlier.replayed,
            replayed_appends: self.replayed_appends - earlier.replayed_appends,
            replayed_older_term: self.replayed_older_term - earlier.replayed_older_term,
            lagged_appends: self.lagged_appends - earlier.lagged_appends,
            replayed_connections: self.replayed_connections - earlier.replayed_connections,
            resets: self.resets - earlier.resets,
            stalled_chunks: self.stalled_chunks - earlier.stalled_chunks,
        }
    }

    /// The sum of two tallies.
    pub fn plus(&self, o: &MessageTally) -> MessageTally {
        MessageTally {
            duplicated: self.duplicated + o.duplicated,
            reordered: self.reordered + o.reordered,
            delayed: self.delayed + o.delayed,
            replayed: self.replayed + o.replayed,
            replayed_appends: self.replayed_appends + o.replayed_appends,
            replayed_older_term: self.replayed_older_term + o.replayed_older_term,
            lagged_appends: self.lagged_appends + o.lagged_appends,
            replayed_connections: self.replayed_connections + o.replayed_connections,
            resets: self.resets + o.resets,
            stalled_chunks: self.stalled_chunks + o.stalled_chunks,
        }
    }
}

/// A frame kept for replay.
#[derive(Debug)]
struct Kept {
    /// Order of arrival on the link.
    seq: u64,
    frame: Bytes,
    term: Option<u64>,
}

/// A bounded queue of kept frames.
#[derive(Debug, Default)]
struct KeptQueue {
    frames: VecDeque<Kept>,
    bytes: usize,
}

impl KeptQueue {
    fn push(&mut self, k: Kept, max_frames: usize) {
        self.bytes += k.frame.len();
        self.frames.push_back(k);
        while self.frames.len() > max_frames || (self.bytes > RING_BYTES && self.frames.len() > 1) {
            if let Some(old) = self.frames.pop_front() {
                self.bytes -= old.frame.len();
            }
        }
    }

    /// `n` of the frames before `before` (by arrival), chosen by `rng`.
    fn sample(&self, n: usize, before: u64, rng: &mut SmallRng) -> Vec<&Kept> {
        let older = self.frames.partition_point(|k| k.seq < before);
        index::sample(rng, older, n.min(older))
            .into_iter()
            .map(|i| &self.frames[i])
            .collect()
    }
}

/// Frames a link carried, across its connections and fault windows: the
/// last ones, and one every [`AGED_EVERY`] for longer, so that a replay
/// also carries frames seconds old, of an older term after an election (a
/// leader sends hundreds of frames a second: the last ones alone are all
/// of the current moment).
#[derive(Debug, Default)]
pub struct ReplayRing {
    recent: KeptQueue,
    aged: KeptQueue,
    last_aged: Option<Instant>,
    seq: u64,
}

impl ReplayRing {
    /// Keeps `frame`, read at `now`, dropping the oldest beyond the bounds.
    pub fn record(&mut self, frame: Bytes, now: Instant) {
        self.seq += 1;
        let term = frame_term(&frame);
        if self.last_aged.is_none_or(|t| now >= t + AGED_EVERY) {
            self.last_aged = Some(now);
            let k = Kept {
                seq: self.seq,
                frame: frame.clone(),
                term,
            };
            self.aged.push(k, AGED_FRAMES);
        }
        let k = Kept {
            seq: self.seq,
            frame,
            term,
        };
        self.recent.push(k, RECENT_FRAMES);
    }

    /// Up to `n` kept frames chosen by `rng`, half recent and half aged
    /// (more of one if the other is short), oldest first, each with whether
    /// its term is older than the newest kept.
    pub fn pick(&self, n: usize, rng: &mut SmallRng) -> Vec<(Bytes, bool)> {
        let all = || self.recent.frames.iter().chain(&self.aged.frames);
        let newest = all().filter_map(|k| k.term).max();
        // Aged frames still among the recent ones are picked as recent.
        let first_recent = self.recent.frames.front().map_or(u64::MAX, |k| k.seq);
        let aged_len = self.aged.frames.partition_point(|k| k.seq < first_recent);
        let aged_n = (n - n / 2).min(aged_len);
        let recent_n = (n - aged_n).min(self.recent.frames.len());
        let mut picked = self.recent.sample(recent_n, u64::MAX, rng);
        picked.extend(self.aged.sample(n - recent_n, first_recent, rng));
        picked.sort_by_key(|k| k.seq);
        picked
            .into_iter()
            .map(|k| (k.frame.clone(), k.term.is_some() && k.term < newest))
            .collect()
    }

    /// Forgets every frame.
    pub fn clear(&mut self) {
        *self = ReplayRing::default();
    }

    /// Frames kept (a frame kept both as recent and as aged counts twice).
    pub fn len(&self) -> usize {
        self.recent.frames.len() + self.aged.frames.len()
    }

    /// Whether no frame is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A frame held back, and when it goes.
#[derive(Debug)]
struct Held {
    frame: Bytes,
    /// Frames that must still pass it (reorder), if held by count.
    after: Option<u32>,
    /// When it goes at the latest.
    until: Instant,
    /// Frames that passed it so far.
    overtaken: u32,
}

/// The message faults of one connection: what it holds back and its draws.
#[derive(Debug)]
pub struct Faulter {
    rng: SmallRng,
    held: Vec<Held>,
    /// AppendEntries held by the append lag, oldest first, with when each
    /// goes (the same lag for all, so they leave in order).
    lagging: VecDeque<(Bytes, Instant)>,
    lagging_bytes: usize,
}

impl Faulter {
    /// A faulter drawing from `rng`.
    pub fn new(rng: SmallRng) -> Self {
        Faulter {
            rng,
            held: Vec::new(),
            lagging: VecDeque::new(),
            lagging_bytes: 0,
        }
    }

    /// The generator (the replay draws come from it too).
    pub fn rng(&mut self) -> &mut SmallRng {
        &mut self.rng
    }

    /// Frames held back now.
    pub fn held(&self) -> usize {
        self.held.len() + self.lagging.len()
    }

    /// When the next held frame is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        let lag = self.lagging.front().map(|(_, at)| *at);
        self.held.iter().map(|h| h.until).chain(lag).min()
    }

    /// Takes one frame read at `now`: appends to `out` the frames to send
    /// now, in order (this one, copies, and held ones it released).
    pub fn on_frame(
        &mut self,
        f: &MessageFaults,
        frame: Bytes,
        now: Instant,
        counts: &MessageCounts,
        out: &mut Vec<Bytes>,
    ) {
        self.release_due(now, counts, out);
        if f.append_lag_ms > 0
            && self.lagging_bytes + frame.len() <= MAX_LAGGING_BYTES
            && frame_is_log_append(&frame)
        {
            counts.add(Count::LaggedAppends, 1);
            self.lagging_bytes += frame.len();
            let due = now + Duration::from_millis(f.append_lag_ms);
            self.lagging.push_back((frame, due));
            return;
        }
        let dup = self.rng.gen_bool(f.duplicate.clamp(0.0, 1.0));
        let fate: f64 = self.rng.gen();
        let room = self.held.len() < MAX_HELD;
        let hold_for = Duration::from_millis(f.delay_ms);
        let held = if room && fate < f.delay {
            counts.add(Count::Delayed, 1);
            Some(None)
        } else if room && fate < f.delay + f.reorder {
            Some(Some(self.rng.gen_range(1..=f.reorder_depth.max(1))))
        } else {
            None
        };
        if dup {
            counts.add(Count::Duplicated, 1);
        }
        match held {
            Some(after) => {
                // A duplicate's first copy goes now: the held one is stale.
                if dup {
                    self.pass(frame.clone(), counts, out);
                }
                self.held.push(Held {
                    frame,
                    after,
                    until: now + hold_for,
                    overtaken: 0,
                });
            }
            None => {
                if dup {
                    out.push(frame.clone());
                }
                self.pass(frame, counts, out);
            }
        }
    }

    /// Sends `frame` now and releases the reordered frames it was the last
    /// to overtake, right behind it.
    fn pass(&mut self, frame: Bytes, counts: &MessageCounts, out: &mut Vec<Bytes>) {
        out.push(frame);
        for h in &mut self.held {
            h.overtaken += 1;
            if let Some(a) = &mut h.after {
                *a = a.saturating_sub(1);
            }
        }
        self.release_where(|h| h.after == Some(0), counts, out);
    }

    /// Releases, in the order they were held, the frames due by `now`.
    pub fn release_due(&mut self, now: Instant, counts: &MessageCounts, out: &mut Vec<Bytes>) {
        self.release_lagging(|due| due <= now, out);
        self.release_where(|h| h.until <= now, counts, out);
    }

    /// Releases every held frame (the faults were switched off).
    pub fn drain(&mut self, counts: &MessageCounts, out: &mut Vec<Bytes>) {
        self.release_lagging(|_| true, out);
        self.release_where(|_| true, counts, out);
    }

    /// Releases lagging AppendEntries from the oldest while `go(due)`.
    fn release_lagging(&mut self, go: impl Fn(Instant) -> bool, out: &mut Vec<Bytes>) {
        while self.lagging.front().is_some_and(|(_, due)| go(*due)) {
            let (frame, _) = self.lagging.pop_front().expect("checked");
            self.lagging_bytes -= frame.len();
            out.push(frame);
        }
    }

    fn release_where(
        &mut self,
        go: impl Fn(&Held) -> bool,
        counts: &MessageCounts,
        out: &mut Vec<Bytes>,
    ) {
        let mut i = 0;
        while i < self.held.len() {
            if go(&self.held[i]) {
                let h = self.held.remove(i);
                if h.after.is_some() && h.overtaken > 0 {
                    counts.add(Count::Reordered, 1);
                }
                out.push(h.frame);
            } else {
                i += 1;
            }
        }
    }
}

/// Picks up to `n` frames of `ring` to replay and counts them.
pub fn replay_frames(
    ring: &ReplayRing,
    n: u32,
    rng: &mut SmallRng,
    counts: &MessageCounts,
) -> Vec<Bytes> {
    let picked = ring.pick(n as usize, rng);
    let appends = picked
        .iter()
        .filter(|(f, _)| frame_field(f) == Some(APPEND_ENTRIES))
        .count();
    let older = picked.iter().filter(|(_, older)| *older).count();
    counts.add(Count::Replayed, picked.len() as u64);
    counts.add(Count::ReplayedAppends, appends as u64);
    counts.add(Count::ReplayedOlderTerm, older as u64);
    picked.into_iter().map(|(f, _)| f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::frames::tests::{frame, frame_at};
    use rand::SeedableRng;

    fn faults() -> MessageFaults {
        MessageFaults {
            duplicate: 0.0,
            reorder: 0.0,
            reorder_depth: 1,
            delay: 0.0,
            delay_ms: 100,
            replay: 0,
            reset_ms: 0,
            append_lag_ms: 0,
            seed: 1,
        }
    }

    fn bytes(n: u64) -> Bytes {
        frame(n, false).into()
    }

    fn n_of(b: &Bytes) -> u64 {
        crate::net::frames::tests::decode_stream(&[&crate::net::frames::MAGIC[..], b].concat())[0]
    }

    /// Feeds frames 0..count at 1 ms apart, then lets every held one go;
    /// returns the frames' `n` in the order they were sent.
    fn run(f: &MessageFaults, count: u64, counts: &MessageCounts) -> Vec<u64> {
        let mut faulter = Faulter::new(SmallRng::seed_from_u64(f.seed));
        let start = Instant::now();
        let mut out = Vec::new();
        for n in 0..count {
            faulter.on_frame(
                f,
                bytes(n),
                start + Duration::from_millis(n),
                counts,
                &mut out,
            );
        }
        faulter.release_due(start + Duration::from_secs(3600), counts, &mut out);
        assert_eq!(faulter.held(), 0);
        out.iter().map(n_of).collect()
    }

    #[test]
    fn log_appends_lag_in_order_while_heartbeats_and_votes_pass() {
        use crate::net::frames::tests::heartbeat;
        let counts = MessageCounts::default();
        let f = MessageFaults {
            append_lag_ms: 100,
            ..faults()
        };
        let mut faulter = Faulter::new(SmallRng::seed_from_u64(1));
        let start = Instant::now();
        let mut out = Vec::new();
        let frames: [Bytes; 5] = [
            frame(0, false).into(),
            heartbeat(1).into(),
            frame(2, true).into(),
            frame(3, false).into(),
            heartbeat(4).into(),
        ];
        for (i, fr) in frames.into_iter().enumerate() {
            let at = start + Duration::from_millis(i as u64);
            faulter.on_frame(&f, fr, at, &counts, &mut out);
        }
        assert_eq!(out.iter().map(n_of).collect::<Vec<_>>(), vec![1, 2, 4]);
        assert_eq!(faulter.next_due(), Some(start + Duration::from_millis(100)));
        out.clear();
        faulter.release_due(start + Duration::from_millis(100), &counts, &mut out);
        assert_eq!(out.iter().map(n_of).collect::<Vec<_>>(), vec![0]);
        out.clear();
        faulter.drain(&counts, &mut out);
        assert_eq!(out.iter().map(n_of).collect::<Vec<_>>(), vec![3]);
        assert_eq!(faulter.held(), 0);
        assert_eq!(counts.tally().lagged_appends, 2);
    }

    #[test]
    fn a_duplicated_frame_arrives_twice_and_nothing_else_changes() {
        let counts = MessageCounts::default();
        let f = MessageFaults {
            duplicate: 1.0,
            ..faults()
        };
        let got = run(&f, 5, &counts);
        assert_eq!(got, vec![0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
        assert_eq!(counts.tally().duplicated, 5);
    }

    #[test]
    fn reordering_keeps_every_frame_and_lets_later_ones_overtake() {
        let counts = MessageCounts::default();
        let f = MessageFaults {
            reorder: 0.3,
            reorder_depth: 3,
            ..faults()
        };
        let got = run(&f, 200, &counts);
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..200).collect::<Vec<_>>(), "every frame once");
        assert_ne!(got, sorted, "some frame was overtaken");
        assert!(counts.tally().reordered > 0);
    }

    #[test]
    fn a_delayed_frame_goes_after_later_frames_once_its_time_is_up() {
        let counts = MessageCounts::default();
        let f = MessageFaults {
            delay: 1.0,
            delay_ms: 10,
            ..faults()
        };
        let mut faulter = Faulter::new(SmallRng::seed_from_u64(3));
        let t0 = Instant::now();
        let mut out = Vec::new();
        faulter.on_frame(&f, bytes(1), t0, &counts, &mut out);
        assert!(out.is_empty(), "held for its delay");
        assert_eq!(faulter.next_due(), Some(t0 + Duration::from_millis(10)));
        let f_pass = MessageFaults { delay: 0.0, ..f };
        faulter.on_frame(&f_pass, bytes(2), t0, &counts, &mut out);
        faulter.release_due(t0 + Duration::from_millis(9), &counts, &mut out);
        assert_eq!(out.iter().map(n_of).collect::<Vec<_>>(), vec![2]);
        faulter.release_due(t0 + Duration::from_millis(10), &counts, &mut out);
        assert_eq!(out.iter().map(n_of).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(counts.tally().delayed, 1);
    }

    #[test]
    fn a_duplicate_of_a_held_frame_passes_first_and_the_copy_comes_later() {
        let counts = MessageCounts::default();
        let f = MessageFaults {
            duplicate: 1.0,
            delay: 1.0,
            ..faults()
        };
        let mut faulter = Faulter::new(SmallRng::seed_from_u64(4));
        let t0 = Instant::now();
        let mut out = Vec::new();
        faulter.on_frame(&f, bytes(1), t0, &counts, &mut out);
        let f_pass = MessageFaults {
            duplicate: 0.0,
            delay: 0.0,
            ..f
        };
        faulter.on_frame(&f_pass, bytes(2), t0, &counts, &mut out);
        faulter.drain(&counts, &mut out);
        assert_eq!(out.iter().map(n_of).collect::<Vec<_>>(), vec![1, 2, 1]);
    }

    #[test]
    fn the_same_seed_makes_the_same_choices() {
        let f = MessageFaults {
            duplicate: 0.1,
            reorder: 0.1,
            reorder_depth: 4,
            delay: 0.05,
            ..faults()
        };
        let a = run(&f, 300, &MessageCounts::default());
        let b = run(&f, 300, &MessageCounts::default());
        assert_eq!(a, b);
        let c = run(
            &MessageFaults { seed: 2, ..f },
            300,
            &MessageCounts::default(),
        );
        assert_ne!(a, c);
    }

    #[test]
    fn the_ring_keeps_the_last_frames_and_older_ones_spread_in_time() {
        let mut ring = ReplayRing::default();
        let t0 = Instant::now();
        // 10 s of traffic, a frame every 10 ms.
        for n in 0..1000 {
            ring.record(bytes(n), t0 + Duration::from_millis(10 * n));
        }
        assert_eq!(ring.len(), RECENT_FRAMES + AGED_FRAMES);
        let counts = MessageCounts::default();
        let picked: Vec<u64> = replay_frames(&ring, 8, &mut SmallRng::seed_from_u64(5), &counts)
            .iter()
            .map(n_of)
            .collect();
        assert_eq!(picked.len(), 8);
        assert!(
            picked.windows(2).all(|w| w[0] < w[1]),
            "oldest first: {picked:?}"
        );
        let recent = 1000 - RECENT_FRAMES as u64;
        assert_eq!(
            picked.iter().filter(|&&n| n >= recent).count(),
            4,
            "{picked:?}"
        );
        // The aged ones are 100 ms apart, over the last 3.2 s.
        let aged: Vec<u64> = picked.iter().copied().filter(|&n| n < recent).collect();
        assert!(
            aged.iter()
                .all(|n| n % 10 == 0 && *n >= 1000 - 10 * AGED_FRAMES as u64),
            "{aged:?}"
        );
        let t = counts.tally();
        assert_eq!((t.replayed, t.replayed_appends), (8, 8));
        assert_eq!(t.replayed_older_term, 0, "one term only");
    }

    #[test]
    fn replayed_frames_of_an_older_term_are_counted() {
        let mut ring = ReplayRing::default();
        let t0 = Instant::now();
        ring.record(frame_at(1, false, 2).into(), t0);
        ring.record(frame_at(2, true, 2).into(), t0);
        ring.record(frame_at(3, false, 5).into(), t0);
        let counts = MessageCounts::default();
        // All three are recent (the first is also aged: picked once).
        let all = replay_frames(&ring, 6, &mut SmallRng::seed_from_u64(1), &counts);
        assert_eq!(all.iter().map(n_of).collect::<Vec<_>>(), vec![1, 2, 3]);
        let t = counts.tally();
        assert_eq!(
            (t.replayed, t.replayed_appends, t.replayed_older_term),
            (3, 2, 2)
        );
    }

    #[test]
    fn tallies_subtract_and_add() {
        let c = MessageCounts::default();
        let before = c.tally();
        c.add(Count::Duplicated, 2);
        c.add(Count::Resets, 1);
        let d = c.tally().since(&before);
        assert_eq!((d.duplicated, d.resets), (2, 1));
        assert_eq!(d.plus(&d).duplicated, 4);
    }
}
