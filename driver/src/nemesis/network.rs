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
