//! Crashes at the hard moments: a failpoint of the target (after an append
//! is persisted, during a snapshot install, during compaction, before an
//! entry is applied) is armed on some nodes; each time one crashes there,
//! it is restarted after a short seeded delay with the failpoint armed from
//! its first instant, so it can crash there again; the stop disarms it and
//! brings every node back. A SIGKILL hits such an instant only by rare
//! luck; a failpoint hits it every time.

use super::schedule::{FaultOp, NemesisKind};
use super::{resolve, Nemesis, NemesisCtx};
use crate::target::cluster::{Cluster, NodeState};
use crate::target::NodeApi;
use crate::workload::client::BoxFuture;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often the watcher looks for a crashed node.
const POLL: Duration = Duration::from_millis(20);

/// One crash-point fault in effect.
struct Armed {
    failpoint: String,
    nodes: Vec<u64>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    log: Arc<Mutex<Vec<Value>>>,
}

/// The crash-point nemesis.
#[derive(Default)]
pub struct CrashPointNemesis {
    armed: Option<Armed>,
}

impl CrashPointNemesis {
    async fn start(
        &mut self,
        ctx: &NemesisCtx,
        failpoint: &str,
        nodes: Vec<u64>,
        restart_after_ms: &[u64],
    ) -> Value {
        if self.armed.is_some() {
            self.stop(ctx).await;
        }
        let Some(boot_args) = ctx.api.failpoint_boot_args(failpoint) else {
            return json!({"failpoint": failpoint, "error": "the target cannot start a node with a failpoint armed"});
        };
        let mut armed = Vec::new();
        for &n in &nodes {
            let r = ctx
                .set_failpoint(n, failpoint, true, Duration::from_secs(1))
                .await;
            armed.push(json!({"node": n, "armed": r}));
        }
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stop, stop_rx) = watch::channel(false);
        let delays = if restart_after_ms.is_empty() {
            vec![200]
        } else {
            restart_after_ms.to_vec()
        };
        let task = tokio::spawn(watch_crashes(
            ctx.cluster.clone(),
            ctx.api.clone(),
            nodes.clone(),
            boot_args,
            delays,
            log.clone(),
            stop_rx,
        ));
        self.armed = Some(Armed {
            failpoint: failpoint.to_string(),
            nodes: nodes.clone(),
            stop,
            task,
            log,
        });
        json!({"failpoint": failpoint, "nodes": nodes, "armed": armed})
    }

    async fn stop(&mut self, ctx: &NemesisCtx) -> Value {
        let Some(a) = self.armed.take() else {
            return json!({"nodes": []});
        };
        let _ = a.stop.send(true);
        let _ = a.task.await;
        let mut restarted = Vec::new();
        {
            let mut c = ctx.cluster();
            c.reap_exited();
            for &n in &a.nodes {
                if c.state(n) == Some(NodeState::Down) {
                    restarted.push(json!({"node": n, "ok": c.start(n).is_ok()}));
                }
            }
        }
        let mut disarmed = Vec::new();
        for &n in &a.nodes {
            let r = ctx
                .set_failpoint(n, &a.failpoint, false, Duration::from_secs(3))
                .await;
            disarmed.push(json!({"node": n, "disarmed": r}));
        }
        let log = std::mem::take(&mut *a.log.lock().unwrap_or_else(|e| e.into_inner()));
        let crashes = log.iter().filter(|e| e["crashed"].is_string()).count();
        json!({
            "failpoint": a.failpoint,
            "nodes": a.nodes,
            "crashes": crashes,
            "events": log,
            "restarted": restarted,
            "disarmed": disarmed,
        })
    }
}

/// Restarts each of `nodes` that its failpoint crashed, after the next of
/// `delays`, armed from boot; logs every crash and restart.
async fn watch_crashes(
    cluster: Arc<Mutex<Cluster>>,
    api: Arc<dyn NodeApi>,
    nodes: Vec<u64>,
    boot_args: Vec<String>,
    delays: Vec<u64>,
    log: Arc<Mutex<Vec<Value>>>,
    mut stop: watch::Receiver<bool>,
) {
    let began = Instant::now();
    let lock = || cluster.lock().unwrap_or_else(|e| e.into_inner());
    let push = |v: Value| {
        tracing::info!("crash-point: {v}");
        log.lock().unwrap_or_else(|e| e.into_inner()).push(v);
    };
    let mut restarts = 0usize;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        for &n in &nodes {
            let Some(exit) = lock().take_exit(n) else {
                continue;
            };
            let at = began.elapsed().as_millis() as u64;
            // Only the failpoint's own crash is this fault's; a node that
            // died otherwise is left to the run's exit watcher.
            if !api.is_intended_exit(exit.code) {
                push(json!({"at_ms": at, "node": n, "exited_otherwise": exit.status}));
                continue;
            }
            push(json!({"at_ms": at, "node": n, "crashed": exit.status}));
            let delay = delays[restarts % delays.len()];
            restarts += 1;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let started = lock()
                .start_with_args(n, &boot_args)
                .map_err(|e| format!("{e:#}"));
            push(
                json!({"at_ms": began.elapsed().as_millis() as u64, "node": n, "restarted_after_ms": delay, "ok": started.is_ok()}),
            );
        }
    }
}

impl Nemesis for CrashPointNemesis {
    fn kind(&self) -> NemesisKind {
        NemesisKind::CrashPoint
    }

    fn invoke<'a>(&'a mut self, ctx: &'a NemesisCtx, op: &'a FaultOp) -> BoxFuture<'a, Value> {
        Box::pin(async move {
            match op {
                FaultOp::StartCrashPoint {
                    failpoint,
                    target,
                    nodes,
                    restart_after_ms,
                } => {
                    let nodes = resolve(ctx, *target, nodes).await;
                    let mut v = self.start(ctx, failpoint, nodes, restart_after_ms).await;
                    v["target"] = json!(target);
                    v
                }
                _ => self.stop(ctx).await,
            }
        })
    }

    fn teardown<'a>(&'a mut self, ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if self.armed.is_some() {
                let v = self.stop(ctx).await;
                tracing::info!("crash-point teardown: {v}");
            }
        })
    }
}
