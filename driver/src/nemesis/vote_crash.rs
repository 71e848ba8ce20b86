//! The vote-crash fault: a voter both sides of a partition share crashes
//! right after each vote it grants (the target's `crash-after-vote`
//! failpoint) and is restarted, so that a voter which forgets its vote
//! across a crash grants two candidates of one term.

use super::schedule::{Cut, FaultOp, NemesisKind};
use super::{set_failpoint, Nemesis, NemesisCtx};
use crate::net::link_state::Holder;
use crate::net::proxy::Network;
use crate::target::cluster::{Cluster, NodeState};
use crate::target::NodeApi;
use crate::workload::client::BoxFuture;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The failpoint the vote-crash nemesis arms (raft-node's name).
pub const CRASH_AFTER_VOTE: &str = "crash-after-vote";

/// How often the vote-crash watcher looks for a crashed node.
const CRASH_POLL: Duration = Duration::from_millis(10);

/// How long the vote-crash nemesis keeps its node down after the kill that
/// starts the fault, at most, waiting for every other node to campaign.
const VOTE_CRASH_GATE_LIMIT: Duration = Duration::from_secs(8);

/// How long, after a crashed node restarts, the link from the leader it
/// voted for to it stays held, so that a candidate still asking in the
/// same term reaches it first (a network delay on one link).
const VOTE_CRASH_LEADER_HOLD: Duration = Duration::from_millis(500);

/// The name under which the vote-crash nemesis cuts its two sides.
pub const VOTE_CRASH: Holder = "vote-crash";

/// The name under which it holds the link from the leader to its node.
pub const VOTE_CRASH_LEADER: Holder = "vote-crash-leader";

/// The nodes among `others` that answer Status as leader.
async fn leaders_among(api: &dyn NodeApi, others: &[u64]) -> Vec<u64> {
    api.status_all(Duration::from_millis(300))
        .await
        .into_iter()
        .filter(|s| others.contains(&s.id) && s.role == "leader")
        .map(|s| s.id)
        .collect()
}

/// Whether every node of `others` answers Status as a (pre-)candidate: each
/// side has lost its leader and asks for votes.
async fn all_campaigning(api: &dyn NodeApi, others: &[u64]) -> bool {
    let statuses = api.status_all(Duration::from_millis(300)).await;
    others.iter().all(|id| {
        statuses
            .iter()
            .any(|s| s.id == *id && s.role.ends_with("candidate"))
    })
}

/// What the vote-crash watcher acts on.
struct Watched {
    cluster: Arc<Mutex<Cluster>>,
    net: Arc<Network>,
    api: Arc<dyn NodeApi>,
    /// The voter that crashes.
    node: u64,
    /// Every other node.
    others: Vec<u64>,
    /// The arguments that start `node` with its failpoint armed.
    boot_args: Vec<String>,
}

/// One vote-crash fault in effect: the watcher task and what it saw.
struct VoteCrashRun {
    node: u64,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    events: Arc<Mutex<Vec<Value>>>,
}

/// Crashes one voter right after each vote it grants while two sides that
/// share it cannot hear each other: a candidate of each side may ask it in
/// the same term, and a voter that forgot its vote across the crash grants
/// both. The node is SIGKILLed when the fault starts (so that it drops any
/// leader it follows and the sides campaign), then restarted after each
/// death on its data dir with the failpoint armed from boot. The fault is
/// aimed at the leader by default: its followers then hold the same log.
#[derive(Default)]
pub struct VoteCrashNemesis {
    run: Option<VoteCrashRun>,
}

impl VoteCrashNemesis {
    async fn start(
        &mut self,
        ctx: &NemesisCtx,
        node: Option<u64>,
        restart_after_ms: &[u64],
    ) -> Value {
        let ids = ctx.ids();
        // No leader right now: the lowest id stands in, so the fault still
        // happens (and the history says which node it hit).
        let node = match node {
            Some(n) => n,
            None => match ctx.leader().await {
                Some(l) => l,
                None => ids.first().copied().unwrap_or(1),
            },
        };
        if !ids.contains(&node) {
            return json!({"node": node, "error": "no such node"});
        }
        let Some(boot_args) = ctx.api.failpoint_boot_args(CRASH_AFTER_VOTE) else {
            return json!({"node": node, "error": "the target cannot start a node with a failpoint armed"});
        };
        let cut = (ids.len() >= 3).then(|| Cut::bridge_around(node, &ids));
        if let Some(cut) = &cut {
            ctx.net
                .cut(VOTE_CRASH, &cut.blocked_set(), ctx.sever_on_partition);
        }
        let killed = {
            let mut c = ctx.cluster();
            c.state(node) != Some(NodeState::Down) && c.kill(node).is_ok()
        };
        let events = Arc::new(Mutex::new(Vec::new()));
        let (stop, stop_rx) = watch::channel(false);
        let delays: Vec<u64> = if restart_after_ms.is_empty() {
            vec![0]
        } else {
            restart_after_ms.to_vec()
        };
        let others: Vec<u64> = ids.iter().copied().filter(|&id| id != node).collect();
        let task = tokio::spawn(watch_vote_crash(
            Watched {
                cluster: ctx.cluster.clone(),
                net: ctx.net.clone(),
                api: ctx.api.clone(),
                node,
                others,
                boot_args,
            },
            delays,
            events.clone(),
            stop_rx,
        ));
        self.run = Some(VoteCrashRun {
            node,
            stop,
            task,
            events,
        });
        let mut v = cut
            .as_ref()
            .and_then(|c| serde_json::to_value(c).ok())
            .unwrap_or_else(|| json!({}));
        v["node"] = json!(node);
        v["killed"] = json!(killed);
        v["restart_after_ms"] = json!(restart_after_ms);
        v
    }

    async fn stop(&mut self, ctx: &NemesisCtx) -> Value {
        // Only its own holds: a partition of the partition nemesis stays.
        ctx.net.uncut(VOTE_CRASH);
        let Some(run) = self.run.take() else {
            return json!({"node": null});
        };
        let _ = run.stop.send(true);
        let _ = run.task.await;
        // The watcher lets its link go when it stops; this covers a panic.
        ctx.net.uncut(VOTE_CRASH_LEADER);
        let restarted = {
            let mut c = ctx.cluster();
            let down =
                c.check_exited(run.node).is_some() || c.state(run.node) == Some(NodeState::Down);
            down.then(|| c.start(run.node).map_err(|e| format!("{e:#}")))
        };
        let disarmed = ctx
            .set_failpoint(run.node, CRASH_AFTER_VOTE, false, Duration::from_secs(3))
            .await;
        let events = std::mem::take(&mut *run.events.lock().unwrap_or_else(|e| e.into_inner()));
        let crashes = events.iter().filter(|e| e["exit"].is_string()).count();
        json!({
            "node": run.node,
            "crashes": crashes,
            "events": events,
            "restarted": match restarted {
                None => json!(false),
                Some(Ok(())) => json!(true),
                Some(Err(e)) => json!(e),
            },
            "disarmed": disarmed,
        })
    }
}

/// What a restart's "armed" says when the node crashed (by its failpoint,
/// armed from boot) before it answered the confirming RPC.
pub const EXITED_BEFORE_CONFIRMING: &str = "exited before confirming";

/// Restarts `node` after each death, the i-th time after `delays[i % len]`,
/// with its crash-after-vote failpoint armed (`--failpoint`), and waits
/// until it answers the Failpoint RPC; logs each step
/// in `events`. After the kill that starts the fault it first waits (up to
/// [`VOTE_CRASH_GATE_LIMIT`]) until every other node campaigns, so that
/// candidates of both sides are asking when it comes back. After a crash
/// that left one leader, the link from that leader to the node is held
/// until [`VOTE_CRASH_LEADER_HOLD`] after the restart.
async fn watch_vote_crash(
    w: Watched,
    delays: Vec<u64>,
    events: Arc<Mutex<Vec<Value>>>,
    mut stop: watch::Receiver<bool>,
) {
    let Watched {
        cluster,
        net,
        api,
        node,
        others,
        boot_args,
    } = w;
    let began = Instant::now();
    let log = |v: Value| {
        tracing::info!("vote-crash n{node}: {v}");
        events.lock().unwrap_or_else(|e| e.into_inner()).push(v);
    };
    let lock = || cluster.lock().unwrap_or_else(|e| e.into_inner());
    let mut restarts = 0usize;
    let mut down = lock().state(node) == Some(NodeState::Down);
    // An exit noticed while confirming a restart, not yet handled.
    let mut exit_seen: Option<String> = None;
    // The leader whose link to the node is held, and when to let it go.
    let mut held: Option<u64> = None;
    let mut release_at: Option<Instant> = None;
    let release = |held: &mut Option<u64>| {
        if let Some(link) = held.take().and_then(|leader| net.link(leader, node)) {
            link.release(VOTE_CRASH_LEADER);
        }
    };
    loop {
        if down {
            let delay = delays[restarts % delays.len()];
            if restarts == 0 {
                let gate = async {
                    let deadline = Instant::now() + VOTE_CRASH_GATE_LIMIT;
                    while Instant::now() < deadline && !all_campaigning(&*api, &others).await {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                };
                tokio::select! {
                    _ = gate => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                let campaigning = began.elapsed().as_millis() as u64;
                log(json!({"at_ms": campaigning, "others_campaigning": true}));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
                // The stop operation restarts a node that is still down.
                _ = stop.wait_for(|s| *s) => {
                    release(&mut held);
                    return;
                }
            }
            restarts += 1;
            let at = began.elapsed().as_millis() as u64;
            // Armed from the first instant: a vote granted before an RPC
            // could arm it would slip through.
            if let Err(e) = lock().start_with_args(node, &boot_args) {
                log(json!({"at_ms": at, "restart_error": format!("{e:#}")}));
                return;
            }
            down = false;
            if held.is_some() {
                release_at = Some(Instant::now() + VOTE_CRASH_LEADER_HOLD);
            }
            // Confirms the node is up and armed (it was started armed). A
            // candidate may ask it for a vote at once, so it can crash
            // before it answers: watch for that meanwhile.
            let confirm =
                set_failpoint(&*api, node, CRASH_AFTER_VOTE, true, Duration::from_secs(5));
            tokio::pin!(confirm);
            let armed = loop {
                tokio::select! {
                    a = &mut confirm => break a,
                    _ = tokio::time::sleep(CRASH_POLL) => {
                        if let Some(status) = lock().check_exited(node) {
                            exit_seen = Some(status);
                            break EXITED_BEFORE_CONFIRMING.to_string();
                        }
                    }
                    _ = stop.wait_for(|s| *s) => {
                        release(&mut held);
                        return;
                    }
                }
            };
            log(json!({"at_ms": at, "restarted_after_ms": delay, "armed": armed}));
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(CRASH_POLL) => {}
            _ = stop.wait_for(|s| *s) => {
                release(&mut held);
                return;
            }
        }
        if release_at.is_some_and(|t| Instant::now() >= t) {
            release_at = None;
            release(&mut held);
        }
        let exited = exit_seen.take().or_else(|| lock().check_exited(node));
        if let Some(status) = exited {
            let at = began.elapsed().as_millis() as u64;
            release(&mut held);
            // The leader it voted for is the one that must not reach it
            // first when it comes back. Once two nodes lead (it voted
            // twice), nothing is held: both should reach it and commit.
            let leaders = leaders_among(&*api, &others).await;
            let leader = match leaders[..] {
                [l] => Some(l),
                _ => None,
            };
            if let Some(link) = leader.and_then(|l| net.link(l, node)) {
                held = leader;
                link.hold(VOTE_CRASH_LEADER);
            }
            log(json!({"at_ms": at, "exit": status, "leaders": leaders, "held_from": leader}));
            down = true;
        }
    }
}

impl Nemesis for VoteCrashNemesis {
    fn kind(&self) -> NemesisKind {
        NemesisKind::VoteCrash
    }
    fn invoke<'a>(&'a mut self, ctx: &'a NemesisCtx, op: &'a FaultOp) -> BoxFuture<'a, Value> {
        Box::pin(async move {
            match op {
                FaultOp::StartVoteCrash {
                    node,
                    restart_after_ms,
                } => {
                    if self.run.is_some() {
                        self.stop(ctx).await;
                    }
                    self.start(ctx, *node, restart_after_ms).await
                }
                _ => self.stop(ctx).await,
            }
        })
    }
    fn teardown<'a>(&'a mut self, ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if self.run.is_some() {
                let v = self.stop(ctx).await;
                tracing::info!("vote-crash teardown: {v}");
            }
        })
    }
}
