//! Crash points a test can arm at run time, after etcd's gofail
//! (`raftAfterSave` and friends): the process dies at one precise instant
//! that a SIGKILL could also hit, but only by rare luck. The harness uses
//! them to make rare interleavings common (a voter that crashes right after
//! it granted a vote, and so may forget it if the vote was not persisted).
//!
//! A process runs one node, so the armed set is process-wide, like gofail's.
//! Nothing is armed unless `--failpoint` or the `Failpoint` RPC asks for it.

use crate::raft::{Message, MessageKind};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Exit code of a process that a failpoint crashed (distinct from the
/// usage (2) and fatal-error (1) codes, so that logs tell them apart).
pub const CRASH_EXIT_CODE: i32 = 86;

/// How long the crashing thread waits for the messages of its round to
/// leave: the crash must come after the vote grant is on the wire, or it
/// would be a crash before the vote, which proves nothing.
const FLUSH: Duration = Duration::from_millis(50);

/// One crash point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// Exit right after a round that persisted and sent a granted
    /// (non-pre-) vote, before the node handles anything else.
    CrashAfterVote,
}

impl Failpoint {
    /// Every failpoint, for help texts.
    pub const ALL: [Failpoint; 1] = [Failpoint::CrashAfterVote];

    /// The name used on the command line and in the RPC.
    pub fn name(self) -> &'static str {
        match self {
            Failpoint::CrashAfterVote => "crash-after-vote",
        }
    }

    fn flag(self) -> &'static AtomicBool {
        match self {
            Failpoint::CrashAfterVote => &CRASH_AFTER_VOTE,
        }
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

static CRASH_AFTER_VOTE: AtomicBool = AtomicBool::new(false);

/// Arms (`on`) or disarms `p` for this process.
pub fn set(p: Failpoint, on: bool) {
    p.flag().store(on, Ordering::SeqCst);
    tracing::info!(failpoint = %p, armed = on, "failpoint set");
}

/// Whether `p` is armed.
pub fn is_armed(p: Failpoint) -> bool {
    p.flag().load(Ordering::SeqCst)
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

/// Called by the event loop once a round's messages were handed to the
/// transport: if `granted_vote` and [`Failpoint::CrashAfterVote`] is armed,
/// lets the messages leave and ends the process at once, without running
/// destructors or flushing anything else (as a crash would).
pub fn after_round(granted_vote: bool) {
    if granted_vote && is_armed(Failpoint::CrashAfterVote) {
        std::thread::sleep(FLUSH);
        eprintln!(
            "raft-node: failpoint {} fired: exiting with code {CRASH_EXIT_CODE}",
            Failpoint::CrashAfterVote
        );
        // SAFETY: _exit only ends the process; it touches no Rust state.
        unsafe { libc::_exit(CRASH_EXIT_CODE) };
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
}
