//! Faults through the target's admin calls: leadership transfer, and
//! membership (remove nodes, one or several at once, perhaps just after a
//! leader change; add them back as learners, then voters).

use super::schedule::{FaultOp, NemesisKind};
use super::{Nemesis, NemesisCtx};
use crate::target::cluster::NodeState;
use crate::target::AdminReq;
use crate::workload::client::BoxFuture;
use serde_json::{json, Value};
use std::time::Duration;

/// Asks the leader to hand leadership to another node.
#[derive(Default)]
pub struct TransferNemesis;

impl Nemesis for TransferNemesis {
    fn kind(&self) -> NemesisKind {
        NemesisKind::LeaderTransfer
    }
    fn invoke<'a>(&'a mut self, ctx: &'a NemesisCtx, op: &'a FaultOp) -> BoxFuture<'a, Value> {
        Box::pin(async move {
            match op {
                FaultOp::StartTransfer { to } => {
                    let from = ctx.leader().await;
                    let ids = ctx.ids();
                    // Never ask a leader to transfer to itself.
                    let to = if Some(*to) == from {
                        let pos = ids.iter().position(|i| i == to).unwrap_or(0);
                        ids[(pos + 1) % ids.len()]
                    } else {
                        *to
                    };
                    let result = ctx
                        .admin(AdminReq::Transfer(to), Duration::from_secs(3))
                        .await;
                    json!({"from": from, "to": to, "result": result})
                }
                _ => json!({"leader": ctx.leader().await}),
            }
        })
    }
    fn teardown<'a>(&'a mut self, _ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// Removes nodes through the admin API, several at once if asked (perhaps
/// right after a leader change), and adds them back as voters.
#[derive(Default)]
pub struct MembershipNemesis {
    /// Nodes whose removal may have happened, so they must be added back.
    removed: Vec<u64>,
    /// Whether it holds a cut of the leader, healed when the nodes are back.
    cut: bool,
}

/// The name under which membership holds the links it cuts.
const HOLDER: crate::net::link_state::Holder = "membership";

/// How long a transfer may take before the changes go anyway.
const SUCCESSOR_WAIT: Duration = Duration::from_secs(2);

/// Sends every request in `reqs` to the leader at the same moment; their
/// outcomes, in order.
async fn concurrently(ctx: &NemesisCtx, reqs: Vec<AdminReq>, budget: Duration) -> Vec<String> {
    futures_util::future::join_all(reqs.into_iter().map(|r| ctx.admin(r, budget))).await
}

/// Whether an admin outcome means the change may have happened.
pub(super) fn may_have_happened(result: &str) -> bool {
    result == "ok" || result.starts_with("unknown")
}

impl MembershipNemesis {
    /// Asks the leader to hand over, and waits until another node leads
    /// (or [`SUCCESSOR_WAIT`] passed); what happened, for the history.
    async fn hand_over(ctx: &NemesisCtx, leader: Option<u64>) -> Value {
        let ids = ctx.ids();
        let Some(from) = leader else {
            return json!({"result": "no leader"});
        };
        let to = ids.iter().copied().find(|&i| i != from).unwrap_or(from);
        let result = ctx
            .admin(AdminReq::Transfer(to), Duration::from_secs(2))
            .await;
        let deadline = tokio::time::Instant::now() + SUCCESSOR_WAIT;
        let successor = loop {
            match ctx.leader().await {
                Some(l) if l != from => break Some(l),
                _ if tokio::time::Instant::now() >= deadline => break None,
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        json!({"from": from, "to": to, "result": result, "successor": successor})
    }

    async fn remove(
        &mut self,
        ctx: &NemesisCtx,
        node: u64,
        also: &[u64],
        transfer_first: bool,
        isolate_leader: bool,
    ) -> (Vec<u64>, Value) {
        let mut leader = ctx.leader().await;
        let ids = ctx.ids();
        // Cut off, the leader keeps the largest minority with it (itself
        // and the followers that come next in id order), and the changes
        // remove every node outside it: all of them taken at once, the
        // minority is a majority of what is left and commits on its own
        // while the old majority elects.
        let isolated = leader
            .filter(|_| isolate_leader && ids.len() >= 3)
            .map(|l| {
                let pos = ids.iter().position(|&i| i == l).unwrap_or(0);
                let minority: Vec<u64> = (0..(ids.len() - 1) / 2)
                    .map(|k| ids[(pos + k) % ids.len()])
                    .collect();
                let rest: Vec<u64> = ids
                    .iter()
                    .copied()
                    .filter(|i| !minority.contains(i))
                    .collect();
                let cut = super::schedule::Cut::from_groups(vec![minority.clone(), rest.clone()]);
                ctx.net
                    .cut(HOLDER, &cut.blocked_set(), ctx.sever_on_partition);
                self.cut = true;
                (l, minority, rest)
            });
        let handed_over = if transfer_first {
            let v = Self::hand_over(ctx, leader).await;
            leader = v["successor"].as_u64().or(leader);
            Some(v)
        } else {
            None
        };
        // The leader is never removed (its stand-in is the next node), and
        // at least one voter stays.
        let mut nodes: Vec<u64> = Vec::new();
        let wanted: Vec<u64> = match &isolated {
            Some((_, _, rest)) => rest.clone(),
            None => std::iter::once(node).chain(also.iter().copied()).collect(),
        };
        for &n in &wanted {
            let n = if Some(n) == leader {
                let pos = ids.iter().position(|&i| i == n).unwrap_or(0);
                ids[(pos + 1) % ids.len()]
            } else {
                n
            };
            if !nodes.contains(&n) && Some(n) != leader && nodes.len() + 1 < ids.len() {
                nodes.push(n);
            }
        }
        let results = match &isolated {
            // Straight to the cut-off leader: it still believes it leads.
            Some((l, _, _)) => {
                let l = *l;
                futures_util::future::join_all(
                    nodes
                        .iter()
                        .map(|&n| ctx.admin_at(l, AdminReq::Remove(n), Duration::from_secs(3))),
                )
                .await
            }
            None => {
                let reqs = nodes.iter().map(|&n| AdminReq::Remove(n)).collect();
                concurrently(ctx, reqs, Duration::from_secs(5)).await
            }
        };
        let removed: Vec<u64> = nodes
            .iter()
            .zip(&results)
            .filter(|(_, r)| may_have_happened(r))
            .map(|(&n, _)| n)
            .collect();
        let v = json!({
            "node": nodes.first(),
            "also": nodes.get(1..).unwrap_or_default(),
            "leader": leader,
            "isolated_leader": isolated.as_ref().map(|(l, _, _)| l),
            "isolated_with": isolated.as_ref().map(|(_, m, _)| m),
            "handed_over": handed_over,
            "results": results,
            "result": results.first(),
        });
        (removed, v)
    }

    /// Adds the removed nodes back: as learners first (a voter must catch
    /// up before it counts in a quorum), then as voters, retried until each
    /// learner has caught up; the requests of all nodes at once. A node
    /// that is still out stays recorded, so teardown tries again.
    async fn re_add(&mut self, ctx: &NemesisCtx) -> Value {
        let healed = std::mem::take(&mut self.cut);
        if healed {
            ctx.net.uncut(HOLDER);
        }
        if self.removed.is_empty() {
            return json!({"node": null, "result": "nothing removed", "healed": healed});
        }
        let nodes = self.removed.clone();
        // A node may exit once removed; it comes back on its data dir.
        let restarted: Vec<bool> = {
            let mut c = ctx.cluster();
            nodes
                .iter()
                .map(|&node| {
                    if c.check_exited(node).is_some() || c.state(node) == Some(NodeState::Down) {
                        c.start(node).is_ok()
                    } else {
                        false
                    }
                })
                .collect()
        };
        let (learners, results) = Self::add_back(ctx, &nodes).await;
        let mut not_added: Vec<u64> = nodes
            .iter()
            .zip(&results)
            .filter(|(_, r)| !may_have_happened(r))
            .map(|(&n, _)| n)
            .collect();
        // An "unknown" answer may stand for a change that never happened
        // (the leader lost its term before committing it): what the
        // leader's configuration still lacks is added again, so that a run
        // does not end with a node outside the cluster.
        let mut again = Vec::new();
        for _ in 0..VERIFY_ROUNDS {
            let Some(missing) = Self::not_voters(ctx, &nodes).await else {
                break;
            };
            if missing.is_empty() {
                not_added.clear();
                break;
            }
            let (_, r) = Self::add_back(ctx, &missing).await;
            again.push(json!({"nodes": missing, "results": r}));
            not_added = missing;
        }
        self.removed = not_added;
        json!({
            "node": nodes.first(),
            "nodes": nodes,
            "restarted": restarted,
            "learner": learners.first(),
            "learners": learners,
            "result": results.first(),
            "results": results,
            "added_again": again,
        })
    }

    /// Adds `nodes` back, as learners and then as voters, the requests of
    /// all nodes at once; the outcomes of both rounds.
    async fn add_back(ctx: &NemesisCtx, nodes: &[u64]) -> (Vec<String>, Vec<String>) {
        let leader = ctx.leader().await;
        let addr = |node: u64| {
            ctx.net
                .addr(leader.unwrap_or(node), node)
                .map(|a| a.to_string())
                .unwrap_or_default()
        };
        let learners = concurrently(
            ctx,
            nodes
                .iter()
                .map(|&n| AdminReq::AddLearner(n, addr(n)))
                .collect(),
            Duration::from_secs(5),
        )
        .await;
        let voters = concurrently(
            ctx,
            nodes
                .iter()
                .map(|&n| AdminReq::AddVoter(n, addr(n)))
                .collect(),
            Duration::from_secs(10),
        )
        .await;
        (learners, voters)
    }

    /// Which of `nodes` the leader's configuration does not hold as
    /// voters; None when no leader answered with its configuration.
    async fn not_voters(ctx: &NemesisCtx, nodes: &[u64]) -> Option<Vec<u64>> {
        let states = ctx.api.replica_states(Duration::from_millis(500)).await;
        let leader = states
            .iter()
            .filter(|s| s.role == "leader")
            .max_by_key(|s| s.term)?;
        let voters = leader.voters.as_ref()?;
        let learners = leader.learners.clone().unwrap_or_default();
        Some(
            nodes
                .iter()
                .copied()
                .filter(|n| !voters.contains(n) || learners.contains(n))
                .collect(),
        )
    }
}

/// How many times a re-add checks the leader's configuration and adds
/// again what it lacks.
const VERIFY_ROUNDS: usize = 3;

impl Nemesis for MembershipNemesis {
    fn kind(&self) -> NemesisKind {
        NemesisKind::Membership
    }
    fn invoke<'a>(&'a mut self, ctx: &'a NemesisCtx, op: &'a FaultOp) -> BoxFuture<'a, Value> {
        Box::pin(async move {
            match op {
                FaultOp::StartMembership {
                    node,
                    also,
                    transfer_first,
                    isolate_leader,
                    race_split_ms,
                } => {
                    let (removed, v) = match race_split_ms {
                        Some(split_ms) if ctx.ids.len() >= 4 => {
                            // The race holds its cut until the nodes are back.
                            self.cut = true;
                            let raced = super::conf_race::race(ctx, HOLDER, *node, *split_ms).await;
                            let first = raced.removed.first().copied();
                            (raced.removed, json!({"node": first, "race": raced.steps}))
                        }
                        _ => {
                            self.remove(ctx, *node, also, *transfer_first, *isolate_leader)
                                .await
                        }
                    };
                    for n in removed {
                        if !self.removed.contains(&n) {
                            self.removed.push(n);
                        }
                    }
                    v
                }
                _ => self.re_add(ctx).await,
            }
        })
    }
    fn teardown<'a>(&'a mut self, ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if !self.removed.is_empty() || self.cut {
                let v = self.re_add(ctx).await;
                tracing::info!("membership teardown: {v}");
            }
        })
    }
}
