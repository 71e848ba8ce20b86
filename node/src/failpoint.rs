//! Crash points a test can arm at run time, after etcd's gofail
//! (`raftAfterSave` and friends): the process dies at one precise instant
//! that a SIGKILL could also hit, but only by rare luck. The harness uses
//! them to make rare interleavings common (a voter that crashes right after
//! it granted a vote, and so may forget it if the vote was not persisted).
//!
//! A process runs one node, so the armed set is process-wide, like gofail's.
//! Nothing is armed unless `--failpoint` or the `Failpoint` RPC asks for
//! it, and both need `--test-hooks`.

use crate::raft::{Message, MessageKind};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Exit code of a process that a failpoint crashed (distinct from the
/// usage (2) and fatal-error (1) codes, so that logs tell them apart).
pub const CRASH_EXIT_CODE: i32 = 86;

/// How long the crashing thread waits for the messages of its round to
/// leave: a crash after a vote or an ack must come after it is on the
/// wire, or it would be a crash before it, which proves nothing.
const FLUSH: Duration = Duration::from_millis(50);

/// One crash point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// Exit right after a round that persisted and sent a granted
    /// (non-pre-) vote, before the node handles anything else.
    CrashAfterVote,
    /// Exit right after a follower's round that persisted appended entries
    /// it does not know committed, or that replace part of its log, and
    /// sent its acknowledgement (the ack is on the wire: the leader may
    /// count it, so the entries must survive). A round that only caught up
    /// on committed entries does not fire it.
    CrashAfterAppend,
    /// Exit between writing a snapshot received from the leader and
    /// resetting the log to start after it.
    CrashDuringSnapshotInstall,
    /// Exit between writing a snapshot of the local state machine and
    /// removing the log segments it covers.
    CrashDuringCompaction,
    /// Exit when a round has committed entries to apply, before applying
    /// any of them.
    CrashBeforeApply,
}

impl Failpoint {
    /// Every failpoint, for help texts.
    pub const ALL: [Failpoint; 5] = [
        Failpoint::CrashAfterVote,
        Failpoint::CrashAfterAppend,
        Failpoint::CrashDuringSnapshotInstall,
        Failpoint::CrashDuringCompaction,
        Failpoint::CrashBeforeApply,
    ];

    /// The name used on the command line and in the RPC.
    pub fn name(self) -> &'static str {
        match self {
            Failpoint::CrashAfterVote => "crash-after-vote",
            Failpoint::CrashAfterAppend => "crash-after-append",
            Failpoint::CrashDuringSnapshotInstall => "crash-during-snapshot-install",
            Failpoint::CrashDuringCompaction => "crash-during-compaction",
            Failpoint::CrashBeforeApply => "crash-before-apply",
        }
    }

    fn flag(self) -> &'static AtomicBool {
        &ARMED[self as usize]
    }

    /// Whether the crash must wait for the round's messages to leave (it
    /// is meant to come after them).
    fn after_messages(self) -> bool {
        matches!(
            self,
            Failpoint::CrashAfterVote | Failpoint::CrashAfterAppend
        )
    }
}

impl fmt::Display for Failpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Failpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Failpoint::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Failpoint::ALL.iter().map(|p| p.name()).collect();
                format!("unknown failpoint {s:?}; known: {}", names.join(", "))
            })
    }
}

static ARMED: [AtomicBool; Failpoint::ALL.len()] = [const { AtomicBool::new(false) }; 5];

/// Arms (`on`) or disarms `p` for this process.
pub fn set(p: Failpoint, on: bool) {
    p.flag().store(on, Ordering::SeqCst);
    tracing::info!(failpoint = %p, armed = on, "failpoint set");
}

/// Whether `p` is armed.
pub fn is_armed(p: Failpoint) -> bool {
    p.flag().load(Ordering::SeqCst)
}

/// Ends the process at `p` if it is armed: writes the `failpoint` event,
/// lets the round's messages leave first if `p` comes after them, and
/// exits with [`CRASH_EXIT_CODE`] without running destructors or flushing
/// anything else (as a crash would).
pub fn hit(p: Failpoint) {
    if !is_armed(p) {
        return;
    }
    if p.after_messages() {
        flush_wait();
    }
    crate::events::emit("failpoint", &[("name", p.name().into())]);
    eprintln!("raft-node: failpoint {p} fired: exiting with code {CRASH_EXIT_CODE}");
    // SAFETY: _exit only ends the process; it touches no Rust state.
    unsafe { libc::_exit(CRASH_EXIT_CODE) };
}

/// Waits [`FLUSH`] for the round's messages to reach the wire. Called on
/// the event loop's task, which must not run again: on a worker of the
/// multi-threaded runtime the sleep is `block_in_place`, which hands the
/// worker's other tasks to another thread. A plain sleep there held the
/// peer writer that the round just woke (tokio's LIFO slot is not stolen
/// by the other worker), so the acknowledgement a crash point is meant to
/// come after was lost with the process (`crash-after-append` left the
/// leader without the ack that Raft's Figure 8 needs it to count).
fn flush_wait() {
    crate::blocking::off_worker(|| std::thread::sleep(FLUSH));
}

/// Whether `msgs` grant a real (not pre-) vote: the trigger of
/// [`Failpoint::CrashAfterVote`].
pub fn grants_vote(msgs: &[Message]) -> bool {
    msgs.iter().any(|m| {
        matches!(
            m.kind,
            MessageKind::RequestVoteResponse {
                pre_vote: false,
                granted: true
            }
        )
    })
}

/// Whether `msgs` acknowledge appended entries (not a heartbeat, not a
/// rejection): with entries persisted in the same round, the trigger of
/// [`Failpoint::CrashAfterAppend`].
pub fn acks_append(msgs: &[Message]) -> bool {
    msgs.iter().any(|m| {
        matches!(
            m.kind,
            MessageKind::AppendEntriesResponse {
                reject: false,
                heartbeat: false,
                ..
            }
        )
    })
}

/// What a round did that a crash point waits for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Round {
    /// It sent a granted vote.
    pub granted_vote: bool,
    /// It persisted entries from a leader, some past its commit index or
    /// replacing part of its log, and acknowledged them.
    pub acked_append: bool,
}

/// Called by the event loop once a round's messages were handed to the
/// transport.
pub fn after_round(round: Round) {
    if round.granted_vote {
        hit(Failpoint::CrashAfterVote);
    }
    if round.acked_append {
        hit(Failpoint::CrashAfterAppend);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote_response(pre_vote: bool, granted: bool) -> Message {
        Message {
            from: 1,
            to: 2,
            term: 3,
            kind: MessageKind::RequestVoteResponse { pre_vote, granted },
        }
    }

    #[test]
    fn only_a_granted_real_vote_triggers_the_crash_after_vote() {
        assert!(grants_vote(&[vote_response(false, true)]));
        assert!(!grants_vote(&[vote_response(true, true)]));
        assert!(!grants_vote(&[vote_response(false, false)]));
        assert!(!grants_vote(&[]));
    }

    #[test]
    fn names_parse_back_and_unknown_names_are_refused() {
        for p in Failpoint::ALL {
            assert_eq!(p.name().parse::<Failpoint>(), Ok(p));
        }
        let err = "crash-everywhere".parse::<Failpoint>().unwrap_err();
        assert!(err.contains("crash-after-vote"), "{err}");
    }

    #[test]
    fn only_an_accepting_non_heartbeat_answer_counts_as_an_acked_append() {
        let ack = |reject, heartbeat| Message {
            from: 2,
            to: 1,
            term: 3,
            kind: MessageKind::AppendEntriesResponse {
                reject,
                index: 7,
                conflict_term: 0,
                conflict_index: 0,
                heartbeat,
                context: vec![],
            },
        };
        assert!(acks_append(&[ack(false, false)]));
        assert!(!acks_append(&[ack(true, false)]));
        assert!(!acks_append(&[ack(false, true)]));
    }
}
