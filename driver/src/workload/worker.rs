//! The client workers: each runs one client, takes operations from the
//! shared generator at the shared rate, and records every invoke and
//! completion; after an info it continues as a new process, as in Jepsen.
//! At the end, [`final_reads`] reads every key once.

use crate::workload::client::Client;
use crate::workload::generator::{Generator, RateLimiter};
use crate::workload::op::{KeyKind, Op, F};
use crate::workload::recorder::Recorder;
use raft_checker::history::{EventType, Process};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// What every worker shares.
pub struct Shared {
    /// The operation stream.
    pub gen: Mutex<Generator>,
    /// The total rate.
    pub limiter: RateLimiter,
    /// The history.
    pub recorder: Recorder,
}

/// Records `op`'s invoke, runs it, records its completion; true when it
/// ended as info (the process must not issue again).
pub async fn invoke_recorded(
    client: &mut dyn Client,
    rec: &Recorder,
    process: u64,
    op: &Op,
) -> bool {
    let p = Process::Client(process);
    rec.record(
        p.clone(),
        EventType::Invoke,
        op.f.name(),
        Some(&op.key),
        op.value.clone(),
        None,
    );
    let c = client.invoke(op).await;
    let info = c.kind == EventType::Info;
    rec.record(p, c.kind, op.f.name(), Some(&op.key), c.value, c.error);
    info
}

/// One client worker: issues operations until `stop`; after an info it
/// continues as a new process (`process + stride`). Returns the next
/// process number it would have used.
pub async fn worker(
    first_process: u64,
    stride: u64,
    mut client: Box<dyn Client>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> u64 {
    let mut process = first_process;
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            _ = shared.limiter.acquire() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let op = shared
            .gen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_op();
        if invoke_recorded(&mut *client, &shared.recorder, process, &op).await {
            process += stride;
        }
    }
    client.close();
    process
}

/// Reads every key in `keys` once with `clients` (one task each), numbering
/// processes from `first_process` with `stride`; returns how many reads
/// were issued.
pub async fn final_reads(
    keys: Vec<(String, KeyKind)>,
    clients: Vec<Box<dyn Client>>,
    recorder: &Recorder,
    first_process: u64,
    stride: u64,
) -> anyhow::Result<usize> {
    let total = keys.len();
    let keys = Arc::new(Mutex::new(keys.into_iter()));
    let mut readers = Vec::new();
    for (w, mut client) in clients.into_iter().enumerate() {
        let keys = keys.clone();
        let rec = recorder.clone();
        let mut process = first_process + w as u64;
        readers.push(tokio::spawn(async move {
            loop {
                let next = keys.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some((key, kind)) = next else { break };
                let op = Op {
                    f: F::Read,
                    key,
                    kind,
                    value: Value::Null,
                };
                if invoke_recorded(&mut *client, &rec, process, &op).await {
                    process += stride;
                }
            }
        }));
    }
    for r in readers {
        r.await?;
    }
    Ok(total)
}
