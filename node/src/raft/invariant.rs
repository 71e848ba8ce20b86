//! Broken invariants the core detects: facts that no correct cluster can
//! produce, whatever the network does (loss, duplication, reordering,
//! delay, stale messages) and however nodes crash and restart. The core
//! refuses the action and reports the violation in the next
//! [`super::Ready`]; the caller logs it as a finding.

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// A short kebab-case name (stable: checkers and people grep for it).
    pub invariant: &'static str,
    /// What happened, for people.
    pub detail: String,
    /// The numbers around it (`term`, `index`, `from`, ...).
    pub context: Vec<(&'static str, u64)>,
}

/// An AppendEntries disagrees with this node's log at or below its commit index.
pub const APPEND_CONFLICTS_WITH_COMMIT: &str = "append-conflicts-with-commit";
/// A leader's commit index (in a heartbeat) lies beyond this follower's
/// log, although the leader only sends what the follower acknowledged.
pub const COMMIT_BEYOND_LOG: &str = "commit-beyond-log";
/// Two nodes act as leader in one term.
pub const TWO_LEADERS_IN_TERM: &str = "two-leaders-in-term";
/// A follower acknowledged an index this leader never sent it in this term.
pub const ACK_BEYOND_SENT: &str = "ack-beyond-sent";
/// The commit index moved backwards.
pub const COMMIT_REGRESSED: &str = "commit-regressed";
/// The recovered hard state commits more than the recovered log holds.
pub const RECOVERED_COMMIT_BEYOND_LOG: &str = "recovered-commit-beyond-log";
/// The recovered log's terms go down somewhere.
pub const RECOVERED_LOG_TERMS_DECREASE: &str = "recovered-log-terms-decrease";
/// An entry handed out to apply is not the one after the last applied.
pub const APPLY_OUT_OF_ORDER: &str = "apply-out-of-order";
/// A snapshot would take the state machine back before what it applied.
pub const SNAPSHOT_ROLLS_BACK_APPLIED: &str = "snapshot-rolls-back-applied";

impl Violation {
    /// A violation of `invariant` with its explanation and numbers.
    pub fn new(
        invariant: &'static str,
        detail: impl Into<String>,
        context: &[(&'static str, u64)],
    ) -> Violation {
        Violation {
            invariant,
            detail: detail.into(),
            context: context.to_vec(),
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}
