//! Network faults on the driver's link proxies: partitions (cut links) and
//! slow links (latency and loss). Each sets and clears only its own layer
//! of the links' faults, so they overlap with each other and with the
//! message faults.

use super::schedule::{Cut, FaultOp, NemesisKind, PartitionShape};
use super::{Nemesis, NemesisCtx};
use crate::net::link_state::{Holder, Slowness};
use crate::workload::client::BoxFuture;
use serde_json::{json, Value};

/// The name under which the partition nemesis holds links.
pub const PARTITION: Holder = "partition";

/// Cuts links by holding their proxies; a new partition replaces the cut
/// in effect (a partition-to-partition change, without a heal between).
#[derive(Default)]
pub struct PartitionNemesis {
    /// What is cut now.
    cut: Option<Cut>,
}

impl PartitionNemesis {
    /// The cut in effect, if any.
    pub fn cut(&self) -> Option<&Cut> {
        self.cut.as_ref()
    }

    async fn start(&mut self, ctx: &NemesisCtx, shape: PartitionShape, cut: &Option<Cut>) -> Value {
        let cut = match (cut, shape) {
            (Some(c), _) => Some(c.clone()),
            (None, PartitionShape::Leader) => {
                ctx.leader().await.map(|l| Cut::isolate(l, &ctx.ids()))
            }
            (None, _) => None,
        };
        // Without a cut (no leader to isolate) nothing is cut now either,
        // so that the value's `blocked` is always what is cut, as replay
        // reads it.
        let blocked = cut.as_ref().map(Cut::blocked_set).unwrap_or_default();
        ctx.net.cut(PARTITION, &blocked, ctx.sever_on_partition);
        let replaced = std::mem::replace(&mut self.cut, cut.clone());
        let mut v = match cut {
            Some(cut) => serde_json::to_value(&cut).unwrap_or(Value::Null),
            None => json!({"blocked": [], "error": "no leader"}),
        };
        v["shape"] = json!(shape);
        if let Some(old) = replaced {
            v["replaced"] = json!(old.blocked);
        }
        v
    }

    fn stop(&mut self, ctx: &NemesisCtx) -> Value {
        ctx.net.uncut(PARTITION);
        let healed = self.cut.take().map(|c| c.blocked).unwrap_or_default();
        json!({"healed": healed})
    }
}

impl Nemesis for PartitionNemesis {
    fn kind(&self) -> NemesisKind {
        NemesisKind::Partition
    }
    fn invoke<'a>(&'a mut self, ctx: &'a NemesisCtx, op: &'a FaultOp) -> BoxFuture<'a, Value> {
        Box::pin(async move {
            match op {
                FaultOp::StartPartition { shape, cut } => self.start(ctx, *shape, cut).await,
                _ => self.stop(ctx),
            }
        })
    }
    fn teardown<'a>(&'a mut self, ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.stop(ctx);
        })
    }
}

/// Adds latency and loss to every link.
#[derive(Default)]
pub struct SlowNemesis;

impl Nemesis for SlowNemesis {
    fn kind(&self) -> NemesisKind {
        NemesisKind::Slow
    }
    fn invoke<'a>(&'a mut self, ctx: &'a NemesisCtx, op: &'a FaultOp) -> BoxFuture<'a, Value> {
        Box::pin(async move {
            match op {
                FaultOp::StartSlow {
                    delay_ms,
                    jitter_ms,
                    loss,
                } => {
                    ctx.net.set_slow(Some(Slowness {
                        delay_ms: *delay_ms,
                        jitter_ms: *jitter_ms,
                        loss: *loss,
                    }));
                    json!({"delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss": loss})
                }
                _ => {
                    ctx.net.set_slow(None);
                    json!({})
                }
            }
        })
    }
    fn teardown<'a>(&'a mut self, ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move { ctx.net.set_slow(None) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::tests::unstarted_ctx;
    use std::collections::BTreeSet;

    fn start(cut: &Cut) -> FaultOp {
        FaultOp::StartPartition {
            shape: PartitionShape::Halves,
            cut: Some(cut.clone()),
        }
    }

    #[tokio::test]
    async fn stopping_slow_keeps_a_partition_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = unstarted_ctx(dir.path()).await;
        let (mut part, mut slow) = (PartitionNemesis::default(), SlowNemesis);
        let cut = Cut::isolate(1, &[1, 2, 3]);
        part.invoke(&ctx, &start(&cut)).await;
        let slow_op = FaultOp::StartSlow {
            delay_ms: 50.0,
            jitter_ms: 10.0,
            loss: 0.0,
        };
        slow.invoke(&ctx, &slow_op).await;
        assert!(ctx.net.link(2, 3).unwrap().faults().slow.is_some());
        slow.invoke(&ctx, &FaultOp::StopSlow).await;
        assert_eq!(ctx.net.held_links(), cut.blocked_set());
        assert!(ctx.net.link(2, 3).unwrap().faults().slow.is_none());
        // And a partition's end leaves a slow link slow.
        slow.invoke(&ctx, &slow_op).await;
        part.invoke(&ctx, &FaultOp::StopPartition).await;
        assert!(ctx.net.held_links().is_empty());
        assert!(ctx.net.link(1, 2).unwrap().faults().slow.is_some());
        slow.teardown(&ctx).await;
    }

    #[tokio::test]
    async fn a_new_partition_replaces_the_cut_and_the_history_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = unstarted_ctx(dir.path()).await;
        let mut part = PartitionNemesis::default();
        let first = Cut::isolate(1, &[1, 2, 3]);
        let second = Cut::isolate(3, &[1, 2, 3]);
        let v = part.invoke(&ctx, &start(&first)).await;
        assert!(v.get("replaced").is_none());
        let v = part.invoke(&ctx, &start(&second)).await;
        assert_eq!(ctx.net.held_links(), second.blocked_set());
        assert_eq!(part.cut(), Some(&second));
        assert_eq!(v["blocked"], json!(second.blocked));
        assert_eq!(v["replaced"], json!(first.blocked));
        let v = part.invoke(&ctx, &FaultOp::StopPartition).await;
        assert_eq!(v["healed"], json!(second.blocked));
        assert!(ctx.net.held_links().is_empty());
    }

    #[tokio::test]
    async fn a_partition_without_a_leader_to_isolate_leaves_nothing_cut() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = unstarted_ctx(dir.path()).await;
        let mut part = PartitionNemesis::default();
        part.invoke(&ctx, &start(&Cut::isolate(1, &[1, 2, 3])))
            .await;
        // The nodes are not running: there is no leader to isolate.
        let v = part
            .invoke(
                &ctx,
                &FaultOp::StartPartition {
                    shape: PartitionShape::Leader,
                    cut: None,
                },
            )
            .await;
        assert_eq!(v["error"], json!("no leader"));
        assert_eq!(v["blocked"], json!([]));
        assert_eq!(ctx.net.held_links(), BTreeSet::new());
        assert_eq!(part.cut(), None);
    }

    #[tokio::test]
    async fn a_partition_ending_leaves_another_holders_links_held() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = unstarted_ctx(dir.path()).await;
        let mut part = PartitionNemesis::default();
        let other: BTreeSet<(u64, u64)> = [(2, 3)].into_iter().collect();
        ctx.net.cut("vote-crash", &other, false);
        part.invoke(&ctx, &start(&Cut::isolate(1, &[1, 2, 3])))
            .await;
        part.teardown(&ctx).await;
        assert_eq!(ctx.net.held_links(), other);
    }
}
