//! What a node reports about itself for the harness's checkers: its role
//! as it changes (`role` events; election safety is read from them) and
//! the broken invariants it detects (`invariant` events, also logged at
//! error level). See [`crate::events`] for the file format.

use crate::events;
use crate::raft::{ConfState, NodeId, Raft, Role, Violation};
use std::collections::HashSet;

/// The role a node reports: the core's role, with a non-voting follower
/// called a learner.
pub fn role_name(role: Role, conf: &ConfState, id: NodeId) -> &'static str {
    match role {
        Role::Leader => "leader",
        Role::Candidate => "candidate",
        Role::PreCandidate => "pre-candidate",
        Role::Follower if conf.learners.contains(&id) => "learner",
        Role::Follower => "follower",
    }
}

/// One `role` line's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleView {
    /// As [`role_name`] says.
    pub role: &'static str,
    /// The current term.
    pub term: u64,
    /// The known leader, 0 if none.
    pub leader: NodeId,
}

impl RoleView {
    /// A core's current view.
    pub fn of(r: &Raft) -> RoleView {
        RoleView {
            role: role_name(r.role(), r.conf(), r.id()),
            term: r.term(),
            leader: r.leader(),
        }
    }
}

/// Writes a `role` event whenever the role, the term or the known leader
/// changes.
#[derive(Debug, Default)]
pub struct RoleWatch {
    last: Option<RoleView>,
}

impl RoleWatch {
    /// Records `now`; returns whether it differs from the last one (and so
    /// was written).
    pub fn observe(&mut self, now: RoleView) -> bool {
        if self.last == Some(now) {
            return false;
        }
        self.last = Some(now);
        events::emit(
            "role",
            &[
                ("role", now.role.into()),
                ("term", now.term.into()),
                ("leader", now.leader.into()),
            ],
        );
        true
    }
}

/// Reports broken invariants, each kind once per term: a broken node may
/// break the same one on every heartbeat, and the first says it all.
#[derive(Debug, Default)]
pub struct ViolationLog {
    seen: HashSet<(&'static str, u64)>,
}

impl ViolationLog {
    /// Reports `v` unless its kind was already reported in its term
    /// (those are logged at debug level only); returns whether it was.
    pub fn report(&mut self, v: &Violation) -> bool {
        let term = v
            .context
            .iter()
            .find(|(k, _)| *k == "term")
            .map_or(0, |(_, t)| *t);
        if !self.seen.insert((v.invariant, term)) {
            tracing::debug!(invariant = v.invariant, "broken again: {}", v.detail);
            return false;
        }
        violation(v);
        true
    }
}

/// Reports a broken invariant: an error log line and an `invariant` event
/// with its context.
pub fn violation(v: &Violation) {
    tracing::error!(invariant = v.invariant, context = ?v.context, "broken invariant: {}", v.detail);
    let mut fields: Vec<(&str, serde_json::Value)> = vec![
        ("level", "error".into()),
        ("invariant", v.invariant.into()),
        ("detail", v.detail.clone().into()),
    ];
    fields.extend(v.context.iter().map(|(k, n)| (*k, (*n).into())));
    events::emit("invariant", &fields);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_that_does_not_vote_reports_itself_as_a_learner() {
        let conf = ConfState {
            voters: vec![1, 2],
            learners: vec![3],
            ..Default::default()
        };
        assert_eq!(role_name(Role::Follower, &conf, 3), "learner");
        assert_eq!(role_name(Role::Follower, &conf, 2), "follower");
        assert_eq!(role_name(Role::PreCandidate, &conf, 2), "pre-candidate");
        assert_eq!(role_name(Role::Leader, &conf, 1), "leader");
    }

    #[test]
    fn an_invariant_is_reported_once_per_term() {
        let v = |term| Violation::new("commit-beyond-log", "x", &[("term", term)]);
        let mut log = ViolationLog::default();
        assert!(log.report(&v(3)));
        assert!(!log.report(&v(3)));
        assert!(log.report(&v(4)));
        assert!(log.report(&Violation::new("ack-beyond-sent", "y", &[("term", 4)])));
    }

    #[test]
    fn a_role_line_is_written_only_when_something_changed() {
        let mut w = RoleWatch::default();
        let v = RoleView {
            role: "follower",
            term: 3,
            leader: 0,
        };
        assert!(w.observe(v));
        assert!(!w.observe(v));
        assert!(w.observe(RoleView { leader: 2, ..v }));
        assert!(w.observe(RoleView { term: 4, ..v }));
    }
}
