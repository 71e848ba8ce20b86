//! Deliberate defects behind `--bug NAME` (only with `--test-hooks`). Each
//! is a real bug class that Raft implementations have shipped, written
//! where that bug lives (the core's vote, append, commit and read logic,
//! membership, snapshots, the state machine's sessions, the log's
//! recovery); the harness uses them to prove it catches what it claims
//! to. With no `--bug` the node is correct. README's bug table gives each
//! one's precedent and what catches it.

use std::fmt;
use std::str::FromStr;

/// One deliberate defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// Serve `get` from the local state machine on any node, without ReadIndex.
    StaleRead,
    /// Persist the term but never the vote: a restarted node can vote twice in one term.
    ForgetVote,
    /// Acknowledge a write once the leader has appended it locally, before a majority has it.
    EarlyAck,
    /// Skip fdatasync: acknowledged writes live only in the page cache.
    NoFsync,
    /// Grant a vote without the up-to-date log check (section 5.4.1).
    VoteNoLogCheck,
    /// Take AppendEntries from a leader of an older term as if current (section 5.1).
    AcceptStaleTerm,
    /// Cut the log after every AppendEntries' last entry, conflict or not,
    /// so a late duplicate deletes entries already acknowledged.
    TruncateOnAppend,
    /// Send the leader's whole commit index in heartbeats instead of
    /// min(commit, the follower's match): a follower whose log ends in
    /// another leader's entries commits and applies them.
    HeartbeatCommitUnmatched,
    /// Commit an old-term entry by counting replicas (section 5.4.2, Figure 8).
    CommitOldTerm,
    /// Release ReadIndex reads at once, without the heartbeat quorum round.
    ReadWithoutQuorum,
    /// Serve ReadIndex before the new leader commits an entry of its term (section 6.4).
    ReadBeforeTermCommit,
    /// Count the lease from when a quorum's heartbeat answers arrived, not
    /// from when the round was sent.
    LeaseFromAck,
    /// Install a snapshot older than the commit index, rolling state back.
    SnapshotRollback,
    /// Accept a membership change while another is uncommitted.
    ConcurrentConfChanges,
    /// Accept a membership change before the leader committed an entry of
    /// its term (the single-server change bug Ongaro reported in 2015).
    ConfChangeBeforeTermCommit,
    /// Expire idle client sessions by each replica's own clock at apply
    /// time, so replicas disagree on which retries they refuse.
    SessionExpiryLocalClock,
    /// Log recovery that rewrites entries in place without dropping the
    /// suffix a truncation removed: truncated entries come back after a restart.
    ReplayKeepsTruncated,
}

impl Bug {
    /// Every bug, for help texts and campaigns.
    pub const ALL: [Bug; 17] = [
        Bug::StaleRead,
        Bug::ForgetVote,
        Bug::EarlyAck,
        Bug::NoFsync,
        Bug::VoteNoLogCheck,
        Bug::AcceptStaleTerm,
        Bug::TruncateOnAppend,
        Bug::HeartbeatCommitUnmatched,
        Bug::CommitOldTerm,
        Bug::ReadWithoutQuorum,
        Bug::ReadBeforeTermCommit,
        Bug::LeaseFromAck,
        Bug::SnapshotRollback,
        Bug::ConcurrentConfChanges,
        Bug::ConfChangeBeforeTermCommit,
        Bug::SessionExpiryLocalClock,
        Bug::ReplayKeepsTruncated,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Bug::StaleRead => "stale-read",
            Bug::ForgetVote => "forget-vote",
            Bug::EarlyAck => "early-ack",
            Bug::NoFsync => "no-fsync",
            Bug::VoteNoLogCheck => "vote-no-log-check",
            Bug::AcceptStaleTerm => "accept-stale-term",
            Bug::TruncateOnAppend => "truncate-on-append",
            Bug::HeartbeatCommitUnmatched => "heartbeat-commit-unmatched",
            Bug::CommitOldTerm => "commit-old-term",
            Bug::ReadWithoutQuorum => "read-without-quorum",
            Bug::ReadBeforeTermCommit => "read-before-term-commit",
            Bug::LeaseFromAck => "lease-from-ack",
            Bug::SnapshotRollback => "snapshot-rollback",
            Bug::ConcurrentConfChanges => "concurrent-conf-changes",
            Bug::ConfChangeBeforeTermCommit => "conf-change-before-term-commit",
            Bug::SessionExpiryLocalClock => "session-expiry-local-clock",
            Bug::ReplayKeepsTruncated => "replay-keeps-truncated",
        }
    }

    /// The node options without which the buggy code never runs (the read
    /// mode it lives in), so that a harness trying every bug runs each one
    /// where it lives. `raft-node --list-bugs` prints them after the name.
    pub fn needs(self) -> &'static [&'static str] {
        match self {
            Bug::LeaseFromAck => &["--read-mode=lease"],
            _ => &[],
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Bug {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Bug::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| {
            let names: Vec<_> = Bug::ALL.iter().map(|b| b.name()).collect();
            format!("unknown bug {s:?}; known: {}", names.join(", "))
        })
    }
}

/// The set of bugs switched on (a bit set: checked on hot paths).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs(u32);

impl Bugs {
    /// No bug: a correct node.
    pub const NONE: Bugs = Bugs(0);

    /// Bugs from the command line.
    pub fn new(list: impl IntoIterator<Item = Bug>) -> Self {
        Bugs(list.into_iter().fold(0, |acc, b| acc | b.bit()))
    }

    /// Whether `b` is switched on.
    pub fn has(self, b: Bug) -> bool {
        self.0 & b.bit() != 0
    }

    /// Whether any bug is switched on.
    pub fn any(self) -> bool {
        self.0 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bug_name_parses_back_and_sets_only_its_own_bit() {
        for b in Bug::ALL {
            assert_eq!(b.name().parse::<Bug>(), Ok(b));
            let set = Bugs::new([b]);
            for other in Bug::ALL {
                assert_eq!(set.has(other), other == b, "{b} vs {other}");
            }
        }
        assert!(!Bugs::NONE.any());
        let err = "stale-reed".parse::<Bug>().unwrap_err();
        assert!(
            err.contains("unknown bug") && err.contains("stale-read"),
            "{err}"
        );
    }
}
