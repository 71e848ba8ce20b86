//! Leader failover: under a light write load, SIGKILL the leader and
//! measure the time from the kill to the first acknowledged write that was
//! issued after the kill; then restart the killed node and wait until the
//! cluster is whole again.

use crate::target::Deployment;
use crate::workload::op::{KeyKind, Op, F};
use anyhow::{bail, Result};
use raft_checker::history::EventType;
use serde::Serialize;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Writers of the light load.
pub const WRITERS: usize = 8;
/// Pause of each writer between its operations.
const PACE: Duration = Duration::from_millis(20);
/// Per-write timeout during failover: short, so that a writer stuck on a
/// write the dead leader will never answer tries again soon.
const OP_TIMEOUT: Duration = Duration::from_millis(200);
/// Longest wait for a write after the kill, and for recovery afterwards.
const LIMIT: Duration = Duration::from_secs(30);

/// One failover.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// The leader that was killed.
    pub killed: u64,
    /// Milliseconds from the SIGKILL to the first acknowledged write.
    pub ms: f64,
    /// Milliseconds from the SIGKILL until Status first showed another
    /// leader (polled every 20 ms), if seen before the first write.
    pub elected_ms: Option<f64>,
    /// The node that took over, if seen.
    pub new_leader: Option<u64>,
}

/// Waits until some node claims leadership.
pub async fn wait_leader(dep: &Deployment, limit: Duration) -> Result<u64> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(l) = crate::nemesis::NemesisCtx::of(dep, false).leader().await {
            return Ok(l);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{} elected no leader within {limit:?}", dep.target)
}

/// Waits until every node answers Status and one claims leadership.
async fn wait_whole(dep: &Deployment, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let s = dep.api.status_all(Duration::from_millis(500)).await;
        if s.len() == dep.ids.len() && s.iter().any(|n| n.role == "leader") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{} did not recover all nodes within {limit:?}", dep.target)
}

/// Kills the leader once under load and measures the failover; `client_base`
/// is the first of `WRITERS` unused client ids.
pub async fn measure_once(dep: &Deployment, client_base: u64) -> Result<Sample> {
    let leader = wait_leader(dep, LIMIT).await?;
    // (invoked, completed, ok) of every write.
    let log: Arc<Mutex<Vec<(Instant, Instant, bool)>>> = Arc::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let home = dep.ids[w % dep.ids.len()];
        let mut client = dep.bench_client(home, client_base + w as u64, OP_TIMEOUT);
        let (log, stop) = (log.clone(), stop_rx.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !*stop.borrow() {
                n += 1;
                let op = Op {
                    f: F::Write,
                    key: format!("failover-{w}"),
                    kind: KeyKind::Register,
                    value: json!(n),
                };
                let t0 = Instant::now();
                let c = client.invoke(&op).await;
                let t1 = Instant::now();
                log.lock().unwrap_or_else(|e| e.into_inner()).push((
                    t0,
                    t1,
                    c.kind == EventType::Ok,
                ));
                tokio::time::sleep(PACE).await;
            }
        }));
    }
    // Let the load settle, then kill.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed_at = Instant::now();
    dep.cluster
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .kill(leader)?;
    let deadline = killed_at + LIMIT;
    let elected: Arc<Mutex<Option<(Instant, u64)>>> = Arc::default();
    let watcher = {
        let (ctx, elected, mut stop) = (
            crate::nemesis::NemesisCtx::of(dep, false),
            elected.clone(),
            stop_rx.clone(),
        );
        tokio::spawn(async move {
            while !*stop.borrow() {
                let s = ctx.status_all(Duration::from_millis(100)).await;
                if let Some(l) = s.iter().find(|n| n.role == "leader" && n.id != leader) {
                    *elected.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some((Instant::now(), l.id));
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = stop.changed() => {}
                }
            }
        })
    };
    let first = loop {
        let found = log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(t0, _, ok)| *ok && *t0 >= killed_at)
            .map(|(_, t1, _)| *t1)
            .min();
        if let Some(t) = found {
            break Some(t);
        }
        if Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let _ = stop_tx.send(true);
    for w in writers {
        let _ = w.await;
    }
    let _ = watcher.await;
    let elected = *elected.lock().unwrap_or_else(|e| e.into_inner());
    dep.cluster
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .start(leader)?;
    let Some(first) = first else {
        bail!(
            "{}: no write was acknowledged within {LIMIT:?} of killing leader {leader}",
            dep.target
        );
    };
    wait_whole(dep, LIMIT).await?;
    // Let the restarted node catch up before the next kill.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(Sample {
        killed: leader,
        ms: first.duration_since(killed_at).as_secs_f64() * 1000.0,
        elected_ms: elected.map(|(t, _)| t.duration_since(killed_at).as_secs_f64() * 1000.0),
        new_leader: elected.map(|(_, id)| id),
    })
}
