//! Process faults: SIGSTOP / SIGCONT (pause) and SIGKILL / restart (kill).

use super::schedule::{FaultOp, NemesisKind};
use super::{resolve, Nemesis, NemesisCtx};
use crate::target::cluster::NodeState;
use crate::workload::client::BoxFuture;
use serde_json::{json, Value};

/// SIGSTOPs nodes and SIGCONTs them.
#[derive(Default)]
pub struct PauseNemesis {
    paused: Vec<u64>,
}

impl Nemesis for PauseNemesis {
    fn kind(&self) -> NemesisKind {
        NemesisKind::Pause
    }
    fn invoke<'a>(&'a mut self, ctx: &'a NemesisCtx, op: &'a FaultOp) -> BoxFuture<'a, Value> {
        Box::pin(async move {
            match op {
                FaultOp::StartPause { target, nodes } => {
                    let nodes = resolve(ctx, *target, nodes).await;
                    let mut c = ctx.cluster();
                    let mut done = Vec::new();
                    for &id in &nodes {
                        if c.state(id) == Some(NodeState::Running) && c.pause(id).is_ok() {
                            done.push(id);
                        }
                    }
                    self.paused.extend(&done);
                    json!({"target": target, "nodes": done})
                }
                _ => {
                    let nodes = std::mem::take(&mut self.paused);
                    let mut c = ctx.cluster();
                    for &id in &nodes {
                        let _ = c.resume(id);
                    }
                    json!({"nodes": nodes})
                }
            }
        })
    }
    fn teardown<'a>(&'a mut self, ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut c = ctx.cluster();
            for id in std::mem::take(&mut self.paused) {
                let _ = c.resume(id);
            }
        })
    }
}

/// SIGKILLs nodes and restarts them on their data dirs.
#[derive(Default)]
pub struct KillNemesis {
    killed: Vec<u64>,
}

impl Nemesis for KillNemesis {
    fn kind(&self) -> NemesisKind {
        NemesisKind::Kill
    }
    fn invoke<'a>(&'a mut self, ctx: &'a NemesisCtx, op: &'a FaultOp) -> BoxFuture<'a, Value> {
        Box::pin(async move {
            match op {
                FaultOp::StartKill { target, nodes } => {
                    let nodes = resolve(ctx, *target, nodes).await;
                    let mut c = ctx.cluster();
                    let mut done = Vec::new();
                    for &id in &nodes {
                        if c.state(id) != Some(NodeState::Down) && c.kill(id).is_ok() {
                            done.push(id);
                        }
                    }
                    self.killed.extend(&done);
                    json!({"target": target, "nodes": done})
                }
                _ => {
                    let nodes = std::mem::take(&mut self.killed);
                    let mut c = ctx.cluster();
                    let mut errors = Vec::new();
                    for &id in &nodes {
                        if let Err(e) = c.start(id) {
                            errors.push(format!("n{id}: {e:#}"));
                        }
                    }
                    json!({"nodes": nodes, "errors": errors})
                }
            }
        })
    }
    fn teardown<'a>(&'a mut self, ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut c = ctx.cluster();
            for id in std::mem::take(&mut self.killed) {
                let _ = c.start(id);
            }
        })
    }
}
