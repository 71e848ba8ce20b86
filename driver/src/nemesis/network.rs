//! Network faults on the driver's link proxies: partitions (cut links) and
//! slow links (latency and loss).

use super::schedule::{Cut, FaultOp, NemesisKind, PartitionShape};
use super::{Nemesis, NemesisCtx};
use crate::net::proxy::LinkMode;
use crate::workload::client::BoxFuture;
use serde_json::{json, Value};

/// Cuts links by holding their proxies; heals them all.
#[derive(Default)]
pub struct PartitionNemesis {
    active: bool,
}

impl Nemesis for PartitionNemesis {
    fn kind(&self) -> NemesisKind {
        NemesisKind::Partition
    }
    fn invoke<'a>(&'a mut self, ctx: &'a NemesisCtx, op: &'a FaultOp) -> BoxFuture<'a, Value> {
        Box::pin(async move {
            match op {
                FaultOp::StartPartition { shape, cut } => {
                    let cut = match (cut, shape) {
                        (Some(c), _) => Some(c.clone()),
                        (None, PartitionShape::Leader) => {
                            ctx.leader().await.map(|l| Cut::isolate(l, &ctx.ids()))
                        }
                        (None, _) => None,
                    };
                    match cut {
                        Some(cut) => {
                            ctx.net
                                .partition(&cut.blocked_set(), ctx.sever_on_partition);
                            self.active = true;
                            let mut v = serde_json::to_value(&cut).unwrap_or(Value::Null);
                            v["shape"] = json!(shape);
                            v
                        }
                        // No leader to isolate: nothing was cut, and the
                        // history says so.
                        None => json!({"shape": shape, "blocked": [], "error": "no leader"}),
                    }
                }
                _ => {
                    ctx.net.heal();
                    self.active = false;
                    json!({})
                }
            }
        })
    }
    fn teardown<'a>(&'a mut self, ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            ctx.net.heal();
            self.active = false;
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
                    ctx.net.set_all(LinkMode::Slow {
                        delay_ms: *delay_ms,
                        jitter_ms: *jitter_ms,
                        loss: *loss,
                    });
                    json!({"delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss": loss})
                }
                _ => {
                    ctx.net.heal();
                    json!({})
                }
            }
        })
    }
    fn teardown<'a>(&'a mut self, ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move { ctx.net.heal() })
    }
}
