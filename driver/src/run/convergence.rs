//! The run's last look at the cluster: once the clients stopped and every
//! fault healed, the replicas should converge. Every node the run started
//! answers, every node counts all of them as voters, and all stand at one
//! point of their state machines with nothing committed left to apply;
//! then they must hold one state, which the checker's `convergence`
//! decides from the digests recorded here. Without this, a node left
//! outside the configuration, a follower that never catches up, or
//! replicas that diverged after their last periodic digest pass unseen:
//! the clients only ever read through a leader.

use crate::target::{NodeApi, ReplicaState};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often the nodes are asked while they have not converged.
const POLL: Duration = Duration::from_millis(200);

/// Asks every node for its replica state until they converge or `timeout`
/// passes; the end-of-run record's `convergence` (the last answers, and
/// why they had not converged if they had not).
pub async fn wait(api: &dyn NodeApi, ids: &[u64], timeout: Duration) -> Value {
    let start = Instant::now();
    loop {
        let mut states = api.replica_states(Duration::from_millis(500)).await;
        states.sort_by_key(|s| s.id);
        let why = unsettled(ids, &states);
        if why.is_none() || start.elapsed() >= timeout {
            return record(&states, why, start.elapsed());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The record of one set of answers.
fn record(states: &[ReplicaState], why: Option<String>, waited: Duration) -> Value {
    json!({
        "settled": why.is_none(),
        "unsettled": why,
        "waited_ms": waited.as_millis() as u64,
        "nodes": states.iter().map(|s| json!({
            "node": s.id,
            "role": s.role,
            "term": s.term,
            "at": s.at,
            "commit": s.commit,
            "voters": s.voters,
            "learners": s.learners,
            "digest": s.digest,
        })).collect::<Vec<_>>(),
    })
}

/// Why the replicas in `states` have not converged on the cluster of
/// `ids`, or None once they have.
pub fn unsettled(ids: &[u64], states: &[ReplicaState]) -> Option<String> {
    let mut why = Vec::new();
    let silent: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| !states.iter().any(|s| s.id == *id))
        .collect();
    if !silent.is_empty() {
        why.push(format!("node(s) {} did not answer", join(&silent)));
    }
    // The views of the configuration that leave a node out, each with the
    // nodes that hold it.
    let mut views: BTreeMap<(Vec<u64>, Vec<u64>), Vec<u64>> = BTreeMap::new();
    for s in states {
        let voters = s.voters.clone().unwrap_or_else(|| ids.to_vec());
        let learners = s.learners.clone().unwrap_or_default();
        if ids.iter().any(|id| !voters.contains(id)) || !learners.is_empty() {
            views.entry((voters, learners)).or_default().push(s.id);
        }
    }
    for ((voters, learners), holders) in views {
        let outside: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| !voters.contains(id))
            .collect();
        let mut parts = vec![format!("voters {}", join(&voters))];
        if !learners.is_empty() {
            parts.push(format!("learners {}", join(&learners)));
        }
        why.push(format!(
            "node(s) {} hold the configuration {}{}",
            join(&holders),
            parts.join(", "),
            if outside.is_empty() {
                String::new()
            } else {
                format!(" (node(s) {} not voters)", join(&outside))
            }
        ));
    }
    let mut points: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for s in states {
        points.entry(s.at).or_default().push(s.id);
    }
    if points.len() > 1 {
        why.push(format!(
            "the nodes stand at different points: {}",
            points
                .iter()
                .map(|(at, nodes)| format!("{} at {at}", join(nodes)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let committed = states.iter().filter_map(|s| s.commit).max();
    if let Some(c) = committed {
        let behind: Vec<u64> = states.iter().filter(|s| s.at < c).map(|s| s.id).collect();
        if !behind.is_empty() {
            why.push(format!(
                "node(s) {} have not applied everything committed (through {c})",
                join(&behind)
            ));
        }
    }
    (!why.is_empty()).then(|| why.join("; "))
}

fn join(ids: &[u64]) -> String {
    ids.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64, at: u64, voters: &[u64]) -> ReplicaState {
        ReplicaState {
            id,
            role: "follower".into(),
            term: 2,
            at,
            commit: Some(at),
            voters: Some(voters.to_vec()),
            learners: Some(Vec::new()),
            digest: Some("ab".into()),
        }
    }

    #[test]
    fn every_node_a_voter_at_one_point_with_nothing_left_to_apply_has_converged() {
        let all = [1, 2, 3];
        let states: Vec<_> = all.iter().map(|&i| node(i, 40, &all)).collect();
        assert_eq!(unsettled(&all, &states), None);
    }

    #[test]
    fn a_node_outside_the_configuration_has_not_converged() {
        let all = [1, 2, 3];
        let states: Vec<_> = all.iter().map(|&i| node(i, 40, &[1, 2])).collect();
        let why = unsettled(&all, &states).expect("node 3 was left out");
        assert!(
            why.contains(
                "node(s) 1, 2, 3 hold the configuration voters 1, 2 (node(s) 3 not voters)"
            ),
            "{why}"
        );
        let mut states: Vec<_> = all.iter().map(|&i| node(i, 40, &all)).collect();
        states[1].learners = Some(vec![3]);
        let why = unsettled(&all, &states).expect("node 3 is still a learner in node 2's view");
        assert!(
            why.contains("node(s) 2 hold the configuration voters 1, 2, 3, learners 3"),
            "{why}"
        );
    }

    #[test]
    fn a_lagging_or_silent_node_has_not_converged() {
        let all = [1, 2, 3];
        let states = vec![node(1, 40, &all), node(2, 37, &all)];
        let why = unsettled(&all, &states).expect("node 2 lags, node 3 is silent");
        assert!(why.contains("node(s) 3 did not answer"), "{why}");
        assert!(why.contains("different points: 2 at 37, 1 at 40"), "{why}");
        assert!(
            why.contains("node(s) 2 have not applied everything committed (through 40)"),
            "{why}"
        );
    }

    #[test]
    fn nodes_at_one_point_below_a_known_commit_have_not_converged() {
        let all = [1, 2];
        let mut states = vec![node(1, 40, &all), node(2, 40, &all)];
        states[0].commit = Some(41);
        let why = unsettled(&all, &states).expect("entry 41 is committed, not applied");
        assert!(why.contains("through 41"), "{why}");
    }

    #[test]
    fn a_target_that_names_no_configuration_converges_on_its_points_alone() {
        let all = [1, 2];
        let mut states = vec![node(1, 9, &all), node(2, 9, &all)];
        for s in &mut states {
            s.voters = None;
            s.learners = None;
            s.commit = None;
        }
        assert_eq!(unsettled(&all, &states), None);
    }
}
