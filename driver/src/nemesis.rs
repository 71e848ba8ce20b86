//! Nemeses: the fault injectors, each a small setup / invoke / teardown
//! object over plain-data operations, composed into one, and the task that
//! plays a schedule through them into the history.

use crate::client::BoxFuture;
use crate::cluster::{Cluster, NodeState};
use crate::proxy::{LinkMode, Network};
use crate::recorder::Recorder;
use crate::schedule::{Cut, FaultOp, NemesisKind, PartitionShape, Schedule, Target};
use raft_proto::kvpb::kv_client::KvClient;
use raft_proto::kvpb::{
    Code, FailpointRequest, MemberRequest, StatusRequest, TransferLeaderRequest,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::transport::Channel;

/// What nemeses act on: the processes, the links, and the nodes' admin API.
pub struct NemesisCtx {
    /// The node processes.
    pub cluster: Arc<Mutex<Cluster>>,
    /// The link proxies.
    pub net: Arc<Network>,
    /// A channel to each node's client API (direct, not proxied).
    pub channels: BTreeMap<u64, Channel>,
    /// Whether starting a partition also closes the connections it cuts.
    pub sever_on_partition: bool,
    /// Where node status comes from for targets other than raft-node (None:
    /// raft-node's Status RPC over `channels`).
    pub status_probe: Option<Arc<dyn StatusProbe>>,
}

/// Asks the nodes of a target other than raft-node for their status.
pub trait StatusProbe: Send + Sync {
    /// Every node's status that answered within `timeout`.
    fn status_all(&self, timeout: Duration) -> BoxFuture<'_, Vec<NodeStatus>>;
}

/// One node's answer to Status.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    /// Node id.
    pub id: u64,
    /// "leader", "follower", ...
    pub role: String,
    /// Current term.
    pub term: u64,
    /// Leader the node knows of (0 if none).
    pub leader_id: u64,
}

impl NemesisCtx {
    fn cluster(&self) -> std::sync::MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The node ids.
    pub fn ids(&self) -> Vec<u64> {
        self.channels.keys().copied().collect()
    }

    /// Asks every node for its status (each within `timeout`).
    pub async fn status_all(&self, timeout: Duration) -> Vec<NodeStatus> {
        if let Some(probe) = &self.status_probe {
            return probe.status_all(timeout).await;
        }
        let calls = self.channels.iter().map(|(&id, ch)| {
            let mut c = KvClient::new(ch.clone());
            async move {
                let r = tokio::time::timeout(timeout, c.status(StatusRequest {})).await;
                match r {
                    Ok(Ok(s)) => {
                        let s = s.into_inner();
                        Some(NodeStatus {
                            id,
                            role: s.role,
                            term: s.term,
                            leader_id: s.leader_id,
                        })
                    }
                    _ => None,
                }
            }
        });
        let mut out = Vec::new();
        for h in calls.map(tokio::spawn).collect::<Vec<_>>() {
            if let Ok(Some(s)) = h.await {
                out.push(s);
            }
        }
        out
    }

    /// The node that claims leadership in the highest term, if any.
    pub async fn leader(&self) -> Option<u64> {
        self.status_all(Duration::from_millis(500))
            .await
            .into_iter()
            .filter(|s| s.role == "leader")
            .max_by_key(|s| s.term)
            .map(|s| s.id)
    }

    /// Sends an admin request to the leader, following NotLeader, for up to
    /// `budget`; returns a short outcome for the history.
    async fn admin(&self, req: AdminReq, budget: Duration) -> String {
        let deadline = Instant::now() + budget;
        let mut last = String::from("no leader found");
        while Instant::now() < deadline {
            let Some(leader) = self.leader().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let mut c = KvClient::new(self.channels[&leader].clone());
            let call = async {
                match &req {
                    AdminReq::Transfer(to) => {
                        c.transfer_leader(TransferLeaderRequest { target_id: *to })
                            .await
                    }
                    AdminReq::Remove(id) => {
                        c.remove_node(MemberRequest {
                            node_id: *id,
                            addr: String::new(),
                        })
                        .await
                    }
                    AdminReq::AddLearner(id, addr) => {
                        c.add_learner(MemberRequest {
                            node_id: *id,
                            addr: addr.clone(),
                        })
                        .await
                    }
                    AdminReq::AddVoter(id, addr) => {
                        c.add_voter(MemberRequest {
                            node_id: *id,
                            addr: addr.clone(),
                        })
                        .await
                    }
                }
            };
            match tokio::time::timeout(Duration::from_secs(2), call).await {
                Err(_) => last = format!("timeout at node {leader}"),
                Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => {
                    return format!("unsupported: {}", s.message())
                }
                Ok(Err(s)) => last = format!("{:?}: {}", s.code(), s.message()),
                Ok(Ok(r)) => {
                    let Some(e) = r.into_inner().error else {
                        return "ok".into();
                    };
                    match Code::try_from(e.code) {
                        Ok(Code::Ok) => return "ok".into(),
                        Ok(Code::BadRequest) => return format!("unsupported: {}", e.message),
                        Ok(Code::OutcomeUnknown) => return format!("unknown: {}", e.message),
                        _ => last = format!("{}: {}", e.code, e.message),
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        format!("failed: {last}")
    }
}

enum AdminReq {
    Transfer(u64),
    Remove(u64),
    AddLearner(u64, String),
    AddVoter(u64, String),
}

/// A fault injector: set up once, invoked with its operations, torn down at
/// the end (where it must undo whatever it still has in effect).
pub trait Nemesis: Send {
    /// The kind of fault this nemesis injects.
    fn kind(&self) -> NemesisKind;
    /// Prepares before the first operation.
    fn setup<'a>(&'a mut self, _ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// Applies `op` and returns the history value describing what was done.
    fn invoke<'a>(&'a mut self, ctx: &'a NemesisCtx, op: &'a FaultOp) -> BoxFuture<'a, Value>;
    /// Undoes anything still in effect.
    fn teardown<'a>(&'a mut self, ctx: &'a NemesisCtx) -> BoxFuture<'a, ()>;
}

/// Resolves a target to node ids (the leader is looked up now).
async fn resolve(ctx: &NemesisCtx, target: Target, nodes: &Option<Vec<u64>>) -> Vec<u64> {
    if let Some(n) = nodes {
        return n.clone();
    }
    match target {
        Target::Leader => match ctx.leader().await {
            Some(l) => vec![l],
            None => vec![],
        },
        Target::All => ctx.ids(),
        // Not generated without nodes; fall back to the first node.
        _ => ctx.ids().into_iter().take(1).collect(),
    }
}

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

/// The nodes among `others` that answer Status as leader.
async fn leaders_among(others: &BTreeMap<u64, Channel>) -> Vec<u64> {
    let mut out = Vec::new();
    for (id, ch) in others {
        let mut c = KvClient::new(ch.clone());
        let r = tokio::time::timeout(Duration::from_millis(300), c.status(StatusRequest {})).await;
        if matches!(&r, Ok(Ok(s)) if s.get_ref().role == "leader") {
            out.push(*id);
        }
    }
    out
}

/// Whether every node behind `others` answers Status as a (pre-)candidate:
/// each side has lost its leader and asks for votes.
async fn all_campaigning(others: &BTreeMap<u64, Channel>) -> bool {
    for ch in others.values() {
        let mut c = KvClient::new(ch.clone());
        let r = tokio::time::timeout(Duration::from_millis(300), c.status(StatusRequest {})).await;
        match r {
            Ok(Ok(s)) if s.get_ref().role.ends_with("candidate") => {}
            _ => return false,
        }
    }
    true
}

/// Arms or disarms `name` on the node behind `channel`, retrying while the
/// node starts, for up to `budget`; returns a short outcome for the history.
pub async fn set_failpoint(channel: &Channel, name: &str, armed: bool, budget: Duration) -> String {
    let deadline = Instant::now() + budget;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        let mut c = KvClient::new(channel.clone());
        let req = FailpointRequest {
            name: name.into(),
            armed,
        };
        match tokio::time::timeout(Duration::from_millis(500), c.failpoint(req)).await {
            Ok(Ok(r)) => {
                return match r.into_inner().error {
                    Some(e) if e.code != Code::Ok as i32 => format!("refused: {}", e.message),
                    _ => "ok".into(),
                }
            }
            Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => {
                return format!("unsupported: {}", s.message())
            }
            Ok(Err(s)) => last = format!("{:?}: {}", s.code(), s.message()),
            Err(_) => last = "timeout".into(),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    format!("failed: {last}")
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
        let Some(channel) = ctx.channels.get(&node).cloned() else {
            return json!({"node": node, "error": "no such node"});
        };
        let cut = (ids.len() >= 3).then(|| Cut::bridge_around(node, &ids));
        if let Some(cut) = &cut {
            ctx.net
                .partition(&cut.blocked_set(), ctx.sever_on_partition);
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
        let others: BTreeMap<u64, Channel> = ctx
            .channels
            .iter()
            .filter(|(id, _)| **id != node)
            .map(|(id, ch)| (*id, ch.clone()))
            .collect();
        let task = tokio::spawn(watch_vote_crash(
            ctx.cluster.clone(),
            ctx.net.clone(),
            channel,
            others,
            node,
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
        ctx.net.heal();
        let Some(run) = self.run.take() else {
            return json!({"node": null});
        };
        let _ = run.stop.send(true);
        let _ = run.task.await;
        let restarted = {
            let mut c = ctx.cluster();
            let down =
                c.check_exited(run.node).is_some() || c.state(run.node) == Some(NodeState::Down);
            down.then(|| c.start(run.node).map_err(|e| format!("{e:#}")))
        };
        let disarmed = match ctx.channels.get(&run.node) {
            Some(ch) => set_failpoint(ch, CRASH_AFTER_VOTE, false, Duration::from_secs(3)).await,
            None => "no such node".into(),
        };
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
#[allow(clippy::too_many_arguments)]
async fn watch_vote_crash(
    cluster: Arc<Mutex<Cluster>>,
    net: Arc<Network>,
    channel: Channel,
    others: BTreeMap<u64, Channel>,
    node: u64,
    delays: Vec<u64>,
    events: Arc<Mutex<Vec<Value>>>,
    mut stop: watch::Receiver<bool>,
) {
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
    // The held link (leader, previous mode) and when to let it go.
    let mut held: Option<(u64, LinkMode)> = None;
    let mut release_at: Option<Instant> = None;
    let release = |held: &mut Option<(u64, LinkMode)>| {
        if let Some((leader, mode)) = held.take() {
            if let Some(link) = net.link(leader, node) {
                link.set_mode(mode);
            }
        }
    };
    loop {
        if down {
            let delay = delays[restarts % delays.len()];
            if restarts == 0 {
                let gate = async {
                    let deadline = Instant::now() + VOTE_CRASH_GATE_LIMIT;
                    while Instant::now() < deadline && !all_campaigning(&others).await {
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
            let armed_at_boot = ["--failpoint".to_string(), CRASH_AFTER_VOTE.to_string()];
            if let Err(e) = lock().start_with_args(node, &armed_at_boot) {
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
            let confirm = set_failpoint(&channel, CRASH_AFTER_VOTE, true, Duration::from_secs(5));
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
            let leaders = leaders_among(&others).await;
            let leader = match leaders[..] {
                [l] => Some(l),
                _ => None,
            };
            if let Some(link) = leader.and_then(|l| net.link(l, node)) {
                held = leader.map(|l| (l, link.mode()));
                link.set_mode(LinkMode::Hold);
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

/// Builds the nemesis of one kind.
pub fn nemesis_for(kind: NemesisKind) -> Box<dyn Nemesis> {
    match kind {
        NemesisKind::Pause => Box::<PauseNemesis>::default(),
        NemesisKind::Kill => Box::<KillNemesis>::default(),
        NemesisKind::Partition => Box::<PartitionNemesis>::default(),
        NemesisKind::Slow => Box::<SlowNemesis>::default(),
        NemesisKind::LeaderTransfer => Box::<TransferNemesis>::default(),
        NemesisKind::Membership => Box::<MembershipNemesis>::default(),
        NemesisKind::VoteCrash => Box::<VoteCrashNemesis>::default(),
    }
}

/// Several nemeses as one: each operation goes to the nemesis of its kind.
pub struct Composite {
    parts: Vec<Box<dyn Nemesis>>,
}

impl Composite {
    /// One nemesis per kind.
    pub fn new(kinds: &[NemesisKind]) -> Self {
        Composite {
            parts: kinds.iter().map(|&k| nemesis_for(k)).collect(),
        }
    }
}

impl Nemesis for Composite {
    fn kind(&self) -> NemesisKind {
        // A composite has no single kind; the first part stands for it.
        self.parts
            .first()
            .map(|p| p.kind())
            .unwrap_or(NemesisKind::Partition)
    }
    fn setup<'a>(&'a mut self, ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            for p in &mut self.parts {
                p.setup(ctx).await;
            }
        })
    }
    fn invoke<'a>(&'a mut self, ctx: &'a NemesisCtx, op: &'a FaultOp) -> BoxFuture<'a, Value> {
        Box::pin(async move {
            match self.parts.iter_mut().find(|p| p.kind() == op.kind()) {
                Some(p) => p.invoke(ctx, op).await,
                None => json!({"error": format!("no {} nemesis", op.kind().name())}),
            }
        })
    }
    fn teardown<'a>(&'a mut self, ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            for p in &mut self.parts {
                p.teardown(ctx).await;
            }
        })
    }
}

/// Plays `schedule` (offsets from `start`) through `nemesis`, recording each
/// applied operation, until the schedule ends or `stop` turns true; then
/// applies the stop of any fault still active, and tears everything down.
pub async fn run_schedule(
    schedule: Schedule,
    mut nemesis: Box<dyn Nemesis>,
    ctx: Arc<NemesisCtx>,
    recorder: Recorder,
    start: Instant,
    mut stop: watch::Receiver<bool>,
    current: Arc<Mutex<String>>,
) {
    nemesis.setup(&ctx).await;
    let mut active: Option<FaultOp> = None;
    for ev in schedule.events {
        let due = start + Duration::from_millis(ev.at_ms);
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        apply(
            &mut *nemesis,
            &ctx,
            &recorder,
            &ev.op,
            Some(ev.at_ms),
            &current,
        )
        .await;
        active = ev.op.stop().map(|_| ev.op.clone());
    }
    if let Some(stop_op) = active.and_then(|op| op.stop()) {
        apply(&mut *nemesis, &ctx, &recorder, &stop_op, None, &current).await;
    }
    nemesis.teardown(&ctx).await;
    *current.lock().unwrap_or_else(|e| e.into_inner()) = "none".into();
}

async fn apply(
    nemesis: &mut dyn Nemesis,
    ctx: &NemesisCtx,
    recorder: &Recorder,
    op: &FaultOp,
    at_ms: Option<u64>,
    current: &Mutex<String>,
) {
    let mut value = nemesis.invoke(ctx, op).await;
    if let (Some(at), Value::Object(m)) = (at_ms, &mut value) {
        m.insert("scheduled_at_ms".into(), json!(at));
    }
    tracing::info!("nemesis {} {}", op.f(), value);
    *current.lock().unwrap_or_else(|e| e.into_inner()) = if op.stop().is_some() {
        format!("{} {}", op.kind().name(), brief(&value))
    } else {
        "none".into()
    };
    recorder.nemesis(op.f(), value);
}

fn brief(v: &Value) -> String {
    for key in ["nodes", "groups", "node", "to"] {
        if let Some(x) = v.get(key) {
            return x.to_string();
        }
    }
    if let Some(b) = v.get("blocked") {
        return format!("{} links", b.as_array().map(|a| a.len()).unwrap_or(0));
    }
    if let Some(d) = v.get("delay_ms") {
        return format!("{d}ms");
    }
    String::new()
}

#[cfg(test)]
// The serialising lock is held across awaits on purpose: it orders whole
// tests on different threads, and each test runs on its own runtime.
#[allow(clippy::await_holding_lock)]
mod tests {
    use super::*;
    use crate::cluster::proc_state;
    use crate::cluster::tests::{serial, sleep_cluster};
    use std::net::SocketAddr;

    fn wait_state(pid: i32, want: Option<char>) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if proc_state(pid) == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    async fn ctx(dir: &std::path::Path) -> NemesisCtx {
        let mut listen: BTreeMap<u64, SocketAddr> = BTreeMap::new();
        for id in 1..=3 {
            listen.insert(id, crate::cluster::free_local_addr().unwrap());
        }
        let mut cluster = sleep_cluster(dir, 3);
        cluster.start_all().unwrap();
        NemesisCtx {
            cluster: Arc::new(Mutex::new(cluster)),
            net: Arc::new(Network::start(&listen, 1).await.unwrap()),
            channels: crate::client::open_channels(&listen).unwrap(),
            sever_on_partition: false,
            status_probe: None,
        }
    }

    fn pid(ctx: &NemesisCtx, id: u64) -> i32 {
        let c = ctx.cluster();
        let ids = c.ids();
        c.pids()[ids.iter().position(|&i| i == id).unwrap()]
    }

    #[tokio::test]
    async fn composite_routes_faults_and_teardown_undoes_them() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let ctx = ctx(dir.path()).await;
        let mut n = Composite::new(&[NemesisKind::Pause, NemesisKind::Partition]);
        n.setup(&ctx).await;

        let p2 = pid(&ctx, 2);
        let v = n
            .invoke(
                &ctx,
                &FaultOp::StartPause {
                    target: Target::One,
                    nodes: Some(vec![2]),
                },
            )
            .await;
        assert_eq!(v["nodes"], json!([2]));
        assert!(wait_state(p2, Some('T')), "node 2 was not stopped");

        let cut = Cut::isolate(1, &[1, 2, 3]);
        let v = n
            .invoke(
                &ctx,
                &FaultOp::StartPartition {
                    shape: PartitionShape::One,
                    cut: Some(cut.clone()),
                },
            )
            .await;
        assert_eq!(v["shape"], json!("one"));
        for (from, to) in [(1, 2), (2, 1), (1, 3), (3, 1)] {
            assert_eq!(ctx.net.link(from, to).unwrap().mode(), LinkMode::Hold);
        }
        assert_eq!(ctx.net.link(2, 3).unwrap().mode(), LinkMode::Pass);

        // A kind the composite does not hold is refused in the value.
        let v = n.invoke(&ctx, &FaultOp::StopKill).await;
        assert!(v["error"].as_str().unwrap().contains("no kill nemesis"));

        n.teardown(&ctx).await;
        assert!(wait_state(p2, Some('S')) || proc_state(p2) == Some('R'));
        assert_ne!(proc_state(p2), Some('T'), "teardown left node 2 stopped");
        assert_eq!(ctx.net.link(1, 2).unwrap().mode(), LinkMode::Pass);
        ctx.cluster().shutdown();
    }

    #[tokio::test]
    async fn kill_then_stop_kill_restarts_the_same_nodes() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let ctx = ctx(dir.path()).await;
        let mut n = KillNemesis::default();
        let before = pid(&ctx, 3);
        let v = n
            .invoke(
                &ctx,
                &FaultOp::StartKill {
                    target: Target::One,
                    nodes: Some(vec![3]),
                },
            )
            .await;
        assert_eq!(v["nodes"], json!([3]));
        assert_eq!(proc_state(before), None, "killed node must be reaped");
        assert_eq!(ctx.cluster().state(3), Some(NodeState::Down));
        let v = n.invoke(&ctx, &FaultOp::StopKill).await;
        assert_eq!(v["nodes"], json!([3]));
        assert_eq!(ctx.cluster().state(3), Some(NodeState::Running));
        assert_ne!(pid(&ctx, 3), before);
        ctx.cluster().shutdown();
    }
}
