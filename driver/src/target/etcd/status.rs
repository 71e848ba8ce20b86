//! The leader and term of each etcd member, from Maintenance/Status, with
//! etcd's member ids mapped back to the driver's node ids; and each
//! member's store hash at its revision (Maintenance/HashKV) for the
//! end-of-run convergence check.

use super::pb::maintenance_client::MaintenanceClient;
use super::pb::{HashKvRequest, StatusRequest};
use crate::target::{ask_each, NodeStatus, ReplicaState};
use std::collections::BTreeMap;
use std::time::Duration;
use tonic::transport::Channel;

/// One member's raw answer: its own etcd id, the leader's etcd id, the term.
struct Raw {
    id: u64,
    member: u64,
    leader: u64,
    term: u64,
}

/// Turns raw answers into node statuses: a member leads when the leader it
/// names is itself; leaders are named by node id when that member answered.
fn statuses(raw: Vec<Raw>) -> Vec<NodeStatus> {
    let by_member: BTreeMap<u64, u64> = raw.iter().map(|r| (r.member, r.id)).collect();
    raw.iter()
        .map(|r| NodeStatus {
            id: r.id,
            role: if r.leader != 0 && r.leader == r.member {
                "leader".into()
            } else {
                "follower".into()
            },
            term: r.term,
            leader_id: by_member.get(&r.leader).copied().unwrap_or(0),
        })
        .collect()
}

/// Asks every member (one channel each, keyed by node id) for its status
/// over its client port; the members that answered within `timeout`.
pub async fn status_all(channels: &BTreeMap<u64, Channel>, timeout: Duration) -> Vec<NodeStatus> {
    let answers = ask_each(channels, timeout, |ch| async move {
        MaintenanceClient::new(ch).status(StatusRequest {}).await
    })
    .await;
    statuses(
        answers
            .into_iter()
            .map(|(id, r)| Raw {
                id,
                member: r.header.map(|h| h.member_id).unwrap_or(0),
                leader: r.leader,
                term: r.raft_term,
            })
            .collect(),
    )
}

/// Every member's revision and HashKV at it, with its role from
/// [`status_all`]; members that did not answer both within `timeout` are
/// left out. etcd names no configuration here (the harness changes none).
pub async fn replica_states(
    channels: &BTreeMap<u64, Channel>,
    timeout: Duration,
) -> Vec<ReplicaState> {
    let roles = status_all(channels, timeout).await;
    let hashes = ask_each(channels, timeout, |ch| async move {
        MaintenanceClient::new(ch)
            .hash_kv(HashKvRequest { revision: 0 })
            .await
    })
    .await;
    hashes
        .into_iter()
        .filter_map(|(id, r)| {
            let s = roles.iter().find(|s| s.id == id)?;
            Some(ReplicaState {
                id,
                role: s.role.clone(),
                term: s.term,
                at: r.header.map_or(0, |h| h.revision.max(0) as u64),
                commit: None,
                voters: None,
                learners: None,
                digest: Some(format!("{:08x}", r.hash)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_naming_itself_leader_leads_and_others_point_to_it() {
        let raw = vec![
            Raw {
                id: 1,
                member: 0xa,
                leader: 0xb,
                term: 3,
            },
            Raw {
                id: 2,
                member: 0xb,
                leader: 0xb,
                term: 3,
            },
            Raw {
                id: 3,
                member: 0xc,
                leader: 0,
                term: 3,
            },
        ];
        let s = statuses(raw);
        assert_eq!(s[0].role, "follower");
        assert_eq!(s[0].leader_id, 2);
        assert_eq!(s[1].role, "leader");
        assert_eq!(s[2].role, "follower");
        assert_eq!(s[2].leader_id, 0);
    }
}
