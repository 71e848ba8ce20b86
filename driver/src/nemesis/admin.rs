//! Faults through the target's admin calls: leadership transfer, and
//! membership (remove a node, add it back as learner, then voter).

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

/// Removes a node through the admin API and adds it back as a voter.
#[derive(Default)]
pub struct MembershipNemesis {
    removed: Option<u64>,
}

impl MembershipNemesis {
    /// Adds the removed node back: as a learner first (a voter must catch
    /// up before it counts in a quorum), then as a voter, retried until the
    /// learner has caught up. A node that is still out stays recorded, so
    /// teardown tries again.
    async fn re_add(&mut self, ctx: &NemesisCtx) -> Value {
        let Some(node) = self.removed else {
            return json!({"node": null, "result": "nothing removed"});
        };
        // A node may exit once removed; it comes back on its data dir.
        let restarted = {
            let mut c = ctx.cluster();
            if c.check_exited(node).is_some() || c.state(node) == Some(NodeState::Down) {
                c.start(node).is_ok()
            } else {
                false
            }
        };
        let leader = ctx.leader().await.unwrap_or(node);
        let addr = ctx
            .net
            .addr(leader, node)
            .map(|a| a.to_string())
            .unwrap_or_default();
        let learner = ctx
            .admin(
                AdminReq::AddLearner(node, addr.clone()),
                Duration::from_secs(5),
            )
            .await;
        let result = ctx
            .admin(AdminReq::AddVoter(node, addr), Duration::from_secs(10))
            .await;
        if result == "ok" || result.starts_with("unknown") {
            self.removed = None;
        }
        json!({"node": node, "restarted": restarted, "learner": learner, "result": result})
    }
}

impl Nemesis for MembershipNemesis {
    fn kind(&self) -> NemesisKind {
        NemesisKind::Membership
    }
    fn invoke<'a>(&'a mut self, ctx: &'a NemesisCtx, op: &'a FaultOp) -> BoxFuture<'a, Value> {
        Box::pin(async move {
            match op {
                FaultOp::StartMembership { node } => {
                    let leader = ctx.leader().await;
                    let ids = ctx.ids();
                    let node = if Some(*node) == leader {
                        let pos = ids.iter().position(|i| i == node).unwrap_or(0);
                        ids[(pos + 1) % ids.len()]
                    } else {
                        *node
                    };
                    let result = ctx
                        .admin(AdminReq::Remove(node), Duration::from_secs(5))
                        .await;
                    // Only a removal that may have happened needs undoing.
                    if result == "ok" || result.starts_with("unknown") {
                        self.removed = Some(node);
                    }
                    json!({"node": node, "result": result})
                }
                _ => self.re_add(ctx).await,
            }
        })
    }
    fn teardown<'a>(&'a mut self, ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if self.removed.is_some() {
                let v = self.re_add(ctx).await;
                tracing::info!("membership teardown: {v}");
            }
        })
    }
}
