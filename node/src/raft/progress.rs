//! What a leader knows about one follower's log, and its in-flight window.

use std::collections::VecDeque;

/// How the leader currently sends to a follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressState {
    /// The match point is unknown: one AppendEntries at a time until the
    /// follower accepts one.
    Probe,
    /// The follower is known to match: stream entries optimistically, up to
    /// the in-flight window.
    Replicate,
    /// A snapshot is on its way; nothing else is sent until it lands or
    /// times out.
    Snapshot,
}

/// The leader's view of one member.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The highest index known to match the leader's log.
    pub matched: u64,
    /// The next index to send.
    pub next: u64,
    /// The sending mode.
    pub state: ProgressState,
    /// In `Probe`: a probe is unanswered, so sending is paused.
    pub probe_sent: bool,
    /// In `Snapshot`: the index of the snapshot sent.
    pub pending_snapshot: u64,
    /// In `Snapshot`: ticks since it was sent (it is resent after a timeout).
    pub snapshot_ticks: u64,
    /// Heard from since the last check-quorum round.
    pub recent_active: bool,
    /// `matched` when the previous heartbeat answer arrived.
    pub matched_at_last_beat: u64,
    /// Heartbeat answers in a row without progress while entries were
    /// outstanding: after a few, something was lost and the leader probes
    /// again (a few, not one, so that a slow disk does not cause resends).
    pub stalled_beats: u32,
    /// Last index of each AppendEntries in flight (Replicate only).
    inflight: VecDeque<u64>,
    max_inflight: usize,
}

impl Progress {
    /// A follower about which nothing is known yet: probe from `next`.
    pub fn new(next: u64, max_inflight: usize) -> Progress {
        Progress {
            matched: 0,
            next,
            state: ProgressState::Probe,
            probe_sent: false,
            pending_snapshot: 0,
            snapshot_ticks: 0,
            recent_active: false,
            matched_at_last_beat: 0,
            stalled_beats: 0,
            inflight: VecDeque::new(),
            max_inflight,
        }
    }

    /// Whether the leader must wait before sending more.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflight.len() >= self.max_inflight,
            ProgressState::Snapshot => true,
        }
    }

    /// Switches to probing from just after the match point (or after the
    /// snapshot that was sent, which the follower has by now or will refuse).
    pub fn become_probe(&mut self) {
        let after_snapshot = if self.state == ProgressState::Snapshot {
            self.pending_snapshot + 1
        } else {
            0
        };
        self.state = ProgressState::Probe;
        self.next = (self.matched + 1).max(after_snapshot);
        self.probe_sent = false;
        self.pending_snapshot = 0;
        self.inflight.clear();
    }

    /// Switches to streaming from just after the match point.
    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next = self.matched + 1;
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Records that a snapshot at `index` was sent.
    pub fn become_snapshot(&mut self, index: u64) {
        self.state = ProgressState::Snapshot;
        self.pending_snapshot = index;
        self.snapshot_ticks = 0;
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Records an AppendEntries whose last index is `last` (the previous
    /// index for an empty probe).
    pub fn sent(&mut self, last: u64) {
        match self.state {
            ProgressState::Replicate => {
                self.next = last + 1;
                self.inflight.push_back(last);
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot => {}
        }
    }

    /// The follower matches up to `index`: returns whether that is news.
    pub fn maybe_update(&mut self, index: u64) -> bool {
        let updated = index > self.matched;
        if updated {
            self.matched = index;
            self.probe_sent = false;
        }
        self.next = self.next.max(index + 1);
        while self.inflight.front().is_some_and(|&last| last <= index) {
            self.inflight.pop_front();
        }
        updated
    }

    /// The follower rejected an AppendEntries at `rejected`; `hint` is where
    /// the leader thinks the logs may agree. Returns false for a stale
    /// rejection (one that does not answer what is in flight).
    pub fn maybe_decr_to(&mut self, rejected: u64, hint: u64) -> bool {
        match self.state {
            ProgressState::Replicate => {
                if rejected <= self.matched {
                    return false;
                }
                self.become_probe();
                self.next = (self.matched + 1).max(hint.min(rejected));
                true
            }
            ProgressState::Probe => {
                if self.next == 0 || self.next - 1 != rejected {
                    return false;
                }
                self.next = (self.matched + 1).max(hint.min(rejected)).max(1);
                self.probe_sent = false;
                true
            }
            ProgressState::Snapshot => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicate_pauses_when_the_window_is_full_and_resumes_on_ack() {
        let mut pr = Progress::new(1, 2);
        pr.become_replicate();
        pr.sent(3);
        assert!(!pr.is_paused());
        pr.sent(5);
        assert!(pr.is_paused());
        assert!(pr.maybe_update(3));
        assert!(!pr.is_paused());
        assert_eq!(pr.next, 6);
    }

    #[test]
    fn a_stale_rejection_does_not_move_next_back() {
        let mut pr = Progress::new(10, 4);
        pr.sent(9);
        assert!(!pr.maybe_decr_to(5, 3), "the probe in flight was at 9");
        assert!(pr.maybe_decr_to(9, 4));
        assert_eq!(pr.next, 4);
        assert!(!pr.is_paused());
    }

    #[test]
    fn probe_sends_one_message_at_a_time() {
        let mut pr = Progress::new(5, 4);
        assert!(!pr.is_paused());
        pr.sent(4);
        assert!(pr.is_paused());
    }
}
