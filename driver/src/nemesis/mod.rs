//! Nemeses: the fault injectors, each a small setup / invoke / teardown
//! object over plain-data operations (`schedule`), grouped by fault family
//! (`process`: pause and kill; `network`: partition and slow links;
//! `messages`: faults on whole peer messages; `admin`: leader transfer and
//! membership; `vote_crash`; the faults of the machine: `power_cut`,
//! `clock`), composed into
//! one, and the task that plays a schedule through them into the history.

pub mod admin;
pub mod clock;
pub mod conf_race;
pub mod crash_point;
pub mod generate;
pub mod messages;
pub mod network;
pub mod power_cut;
pub mod process;
pub mod roles;
pub mod scenario;
pub mod schedule;
pub mod vote_crash;

use crate::net::proxy::Network;
use crate::target::cluster::Cluster;
use crate::target::{AdminReply, AdminReq, NodeApi, NodeStatus};
use crate::workload::client::BoxFuture;
use crate::workload::recorder::Recorder;
use schedule::{FaultOp, NemesisKind, Schedule, Target};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// What nemeses act on: the processes, the links, and the target's API.
pub struct NemesisCtx {
    /// The node processes.
    pub cluster: Arc<Mutex<Cluster>>,
    /// The link proxies.
    pub net: Arc<Network>,
    /// The target's API (status, admin calls, failpoints).
    pub api: Arc<dyn NodeApi>,
    /// The node ids, ascending.
    pub ids: Vec<u64>,
    /// Whether starting a partition also closes the connections it cuts.
    pub sever_on_partition: bool,
    /// The nodes' disks and clocks, for the faults of the machine.
    pub machine: Arc<crate::machine::Machine>,
    /// In a replay: where the recorded run's nodes stand (see
    /// [`roles::RoleMap`]); None in a run of its own.
    pub roles: Option<Mutex<roles::RoleMap>>,
}

impl NemesisCtx {
    /// What nemeses act on in a started deployment.
    pub fn of(d: &crate::target::Deployment, sever_on_partition: bool) -> Arc<NemesisCtx> {
        Arc::new(NemesisCtx {
            cluster: d.cluster.clone(),
            net: d.net.clone(),
            api: d.api.clone(),
            ids: d.ids.clone(),
            sever_on_partition,
            machine: Arc::default(),
            roles: None,
        })
    }

    /// Like [`NemesisCtx::of`], on the `machine` the run prepared; a
    /// replay passes the mapping its faults go through.
    pub fn on_machine(
        d: &crate::target::Deployment,
        sever_on_partition: bool,
        machine: Arc<crate::machine::Machine>,
        roles: Option<roles::RoleMap>,
    ) -> Arc<NemesisCtx> {
        let mut ctx = Arc::into_inner(Self::of(d, sever_on_partition)).expect("just made");
        ctx.machine = machine;
        ctx.roles = roles.map(Mutex::new);
        Arc::new(ctx)
    }

    /// In a replay, moves recorded node `recorded` onto `now` (see
    /// [`roles::RoleMap::align`]).
    pub fn align_roles(&self, recorded: u64, now: u64) {
        if let Some(r) = &self.roles {
            r.lock()
                .unwrap_or_else(|e| e.into_inner())
                .align(recorded, now);
        }
    }

    /// The process table (a poisoned lock is still usable: it only guards
    /// bookkeeping).
    pub fn cluster(&self) -> std::sync::MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The node ids.
    pub fn ids(&self) -> Vec<u64> {
        self.ids.clone()
    }

    /// Asks every node for its status (each within `timeout`).
    pub async fn status_all(&self, timeout: Duration) -> Vec<NodeStatus> {
        self.api.status_all(timeout).await
    }

    /// The leader, waiting up to `wait` for one (polling every 10 ms).
    pub async fn leader_within(&self, wait: Duration) -> Option<u64> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(l) = self.leader().await {
                return Some(l);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
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

    /// Sends an admin request to the leader, following leadership, for up
    /// to `budget`; returns a short outcome for the history.
    pub async fn admin(&self, req: AdminReq, budget: Duration) -> String {
        self.admin_to(None, req, budget).await
    }

    /// Sends `req` to `node` itself (not to whoever leads), retrying its
    /// refusals for up to `budget`: for a leader the nemesis cut off,
    /// which still believes it leads.
    pub async fn admin_at(&self, node: u64, req: AdminReq, budget: Duration) -> String {
        self.admin_to(Some(node), req, budget).await
    }

    async fn admin_to(&self, node: Option<u64>, req: AdminReq, budget: Duration) -> String {
        let deadline = Instant::now() + budget;
        let mut last = String::from("no leader found");
        while Instant::now() < deadline {
            let to = match node {
                Some(n) => Some(n),
                None => self.leader().await,
            };
            let Some(to) = to else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            match self.api.admin(to, &req).await {
                AdminReply::Ok => return "ok".into(),
                AdminReply::Unsupported(m) => return format!("unsupported: {m}"),
                AdminReply::Unknown(m) => return format!("unknown: {m}"),
                AdminReply::Retry(m) => last = m,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        format!("failed: {last}")
    }

    /// Arms or disarms failpoint `name` on `node` (see [`set_failpoint`]).
    pub async fn set_failpoint(
        &self,
        node: u64,
        name: &str,
        armed: bool,
        budget: Duration,
    ) -> String {
        set_failpoint(&*self.api, node, name, armed, budget).await
    }
}

/// Arms or disarms failpoint `name` on `node`, retrying while the node
/// starts, for up to `budget`; returns a short outcome for the history.
pub async fn set_failpoint(
    api: &dyn NodeApi,
    node: u64,
    name: &str,
    armed: bool,
    budget: Duration,
) -> String {
    let deadline = Instant::now() + budget;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match api.set_failpoint(node, name, armed).await {
            Ok(()) => return "ok".into(),
            Err(e) if e.starts_with("unsupported") || e.starts_with("refused") => return e,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    format!("failed: {last}")
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
pub async fn resolve(ctx: &NemesisCtx, target: Target, nodes: &Option<Vec<u64>>) -> Vec<u64> {
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

/// Builds the nemesis of one kind.
pub fn nemesis_for(kind: NemesisKind) -> Box<dyn Nemesis> {
    match kind {
        NemesisKind::Pause => Box::<process::PauseNemesis>::default(),
        NemesisKind::Kill => Box::<process::KillNemesis>::default(),
        NemesisKind::Partition => Box::<network::PartitionNemesis>::default(),
        NemesisKind::Slow => Box::<network::SlowNemesis>::default(),
        NemesisKind::LeaderTransfer => Box::<admin::TransferNemesis>::default(),
        NemesisKind::Membership => Box::<admin::MembershipNemesis>::default(),
        NemesisKind::VoteCrash => Box::<vote_crash::VoteCrashNemesis>::default(),
        NemesisKind::CrashPoint => Box::<crash_point::CrashPointNemesis>::default(),
        NemesisKind::LaggingLeader | NemesisKind::DeposedLeader | NemesisKind::LeaderChurn => {
            Box::new(scenario::ScenarioNemesis::new(kind))
        }
        NemesisKind::Messages => Box::<messages::MessagesNemesis>::default(),
        NemesisKind::PowerCut => Box::<power_cut::PowerCutNemesis>::default(),
        NemesisKind::Clock => Box::<clock::ClockNemesis>::default(),
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

/// Plays `schedule` (offsets from `start`) until it ends or `stop` turns
/// true, recording each applied operation; then applies the stop of every
/// fault still in effect and tears every nemesis down. Each kind plays its
/// own operations in its own task, in order, so faults of different kinds
/// overlap as scheduled and a slow operation of one kind (a membership
/// change waiting for a leader) never delays another kind's heal.
pub async fn run_schedule(
    schedule: Schedule,
    kinds: Vec<NemesisKind>,
    ctx: Arc<NemesisCtx>,
    recorder: Recorder,
    start: Instant,
    stop: watch::Receiver<bool>,
    current: Arc<Mutex<String>>,
) {
    let active: Arc<Mutex<BTreeMap<NemesisKind, String>>> = Arc::default();
    let mut by_kind: BTreeMap<NemesisKind, Vec<schedule::ScheduledFault>> =
        kinds.into_iter().map(|k| (k, Vec::new())).collect();
    for ev in schedule.events {
        by_kind.entry(ev.op.kind()).or_default().push(ev);
    }
    let tasks: Vec<_> = by_kind
        .into_iter()
        .map(|(kind, events)| {
            let lane = Lane {
                nemesis: nemesis_for(kind),
                ctx: ctx.clone(),
                recorder: recorder.clone(),
                active: active.clone(),
                current: current.clone(),
            };
            tokio::spawn(lane.play(events, start, stop.clone()))
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    *current.lock().unwrap_or_else(|e| e.into_inner()) = "none".into();
}

/// One kind's operations and its nemesis.
struct Lane {
    nemesis: Box<dyn Nemesis>,
    ctx: Arc<NemesisCtx>,
    recorder: Recorder,
    active: Arc<Mutex<BTreeMap<NemesisKind, String>>>,
    current: Arc<Mutex<String>>,
}

impl Lane {
    async fn play(
        mut self,
        events: Vec<schedule::ScheduledFault>,
        start: Instant,
        mut stop: watch::Receiver<bool>,
    ) {
        self.nemesis.setup(&self.ctx).await;
        let mut in_effect: Option<FaultOp> = None;
        for ev in events {
            let due = start + Duration::from_millis(ev.at_ms);
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            let (op, aimed) = aim(&self.ctx, &ev).await;
            self.apply(&op, Some(ev.at_ms), aimed).await;
            in_effect = op.stop().map(|_| op.clone());
        }
        if let Some(stop_op) = in_effect.and_then(|op| op.stop()) {
            self.apply(&stop_op, None, None).await;
        }
        self.nemesis.teardown(&self.ctx).await;
    }

    async fn apply(&mut self, op: &FaultOp, at_ms: Option<u64>, aimed: Option<Value>) {
        let mut value = apply(
            &mut *self.nemesis,
            &self.ctx,
            &self.recorder,
            op,
            at_ms,
            aimed,
        )
        .await;
        if value.is_null() {
            value = json!({});
        }
        let mut a = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if op.stop().is_some() {
            a.insert(op.kind(), brief(&value));
        } else {
            a.remove(&op.kind());
        }
        show_active(&self.current, &a);
    }
}

/// The faults in effect, for the progress line.
fn show_active(current: &Mutex<String>, active: &BTreeMap<NemesisKind, String>) {
    let text = if active.is_empty() {
        "none".to_string()
    } else {
        active
            .iter()
            .map(|(k, b)| format!("{} {b}", k.name()).trim().to_string())
            .collect::<Vec<_>>()
            .join(" + ")
    };
    *current.lock().unwrap_or_else(|e| e.into_inner()) = text;
}

/// An operation aimed as its schedule entry says (see
/// [`schedule::Aim`]), and what was done about it, for the history. In a
/// replay every operation goes through the replay's one mapping of nodes
/// ([`roles::RoleMap`]); one recorded with its leader first moves that
/// leader onto the node leading now. A run of its own applies it as is.
async fn aim(ctx: &NemesisCtx, ev: &schedule::ScheduledFault) -> (FaultOp, Option<Value>) {
    let Some(roles) = &ctx.roles else {
        return (ev.op.clone(), None);
    };
    let now = match ev.aim {
        Some(_) => ctx.leader().await,
        None => None,
    };
    let mut m = roles.lock().unwrap_or_else(|e| e.into_inner());
    let swapped = match (ev.aim, now) {
        (Some(a), Some(now)) => m.align(a.leader, now),
        _ => None,
    };
    let op = ev.op.remap(&|i| m.get(i));
    let note = json!({
        "recorded_leader": ev.aim.map(|a| a.leader),
        "leader_now": now,
        "swapped": swapped.map(|(a, b)| [a, b]),
        "mapping": m.moved(),
    });
    (op, Some(note))
}

/// Applies `op`, records it in the history (with the leader when a fault
/// starts, so that a replay can aim it by role), and returns its value.
async fn apply(
    nemesis: &mut dyn Nemesis,
    ctx: &NemesisCtx,
    recorder: &Recorder,
    op: &FaultOp,
    at_ms: Option<u64>,
    aimed: Option<Value>,
) -> Value {
    let leader = if op.stop().is_some() {
        ctx.leader().await
    } else {
        None
    };
    let mut value = nemesis.invoke(ctx, op).await;
    if let Value::Object(m) = &mut value {
        if let Some(at) = at_ms {
            m.insert("scheduled_at_ms".into(), json!(at));
        }
        if op.stop().is_some() {
            m.entry("leader_at_start").or_insert(json!(leader));
        }
        if let Some(a) = aimed {
            m.insert("aimed".into(), a);
        }
    }
    tracing::info!("nemesis {} {}", op.f(), value);
    recorder.nemesis(op.f(), value.clone());
    value
}

fn brief(v: &Value) -> String {
    for key in ["nodes", "groups", "node", "to"] {
        if let Some(x) = v.get(key) {
            return x.to_string();
        }
    }
    if let Some(l) = v.get("links") {
        return format!("{} links", l.as_array().map(|a| a.len()).unwrap_or(0));
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
pub(crate) mod tests {
    use super::*;
    use crate::nemesis::process::KillNemesis;
    use crate::nemesis::schedule::{Cut, PartitionShape};
    use crate::target::cluster::tests::{serial, sleep_cluster};
    use crate::target::cluster::{proc_state, NodeState};
    use std::collections::BTreeMap;
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
        let ctx = unstarted_ctx(dir).await;
        ctx.cluster().start_all().unwrap();
        ctx
    }

    /// A context over 3 stand-in nodes, not started (for nemeses that act
    /// only on the links), with proxies in front of unused ports.
    pub(crate) async fn unstarted_ctx(dir: &std::path::Path) -> NemesisCtx {
        let mut listen: BTreeMap<u64, SocketAddr> = BTreeMap::new();
        for id in 1..=3 {
            listen.insert(id, crate::target::cluster::free_local_addr().unwrap());
        }
        let cluster = sleep_cluster(dir, 3);
        NemesisCtx {
            cluster: Arc::new(Mutex::new(cluster)),
            net: Arc::new(Network::start(&listen, 1).await.unwrap()),
            api: Arc::new(crate::target::raft::RaftApi::new(
                crate::workload::client::open_channels(&listen).unwrap(),
            )),
            ids: vec![1, 2, 3],
            sever_on_partition: false,
            machine: Arc::default(),
            roles: None,
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
            assert!(ctx.net.link(from, to).unwrap().is_held());
        }
        assert!(!ctx.net.link(2, 3).unwrap().is_held());

        // A kind the composite does not hold is refused in the value.
        let v = n.invoke(&ctx, &FaultOp::StopKill).await;
        assert!(v["error"].as_str().unwrap().contains("no kill nemesis"));

        n.teardown(&ctx).await;
        assert!(wait_state(p2, Some('S')) || proc_state(p2) == Some('R'));
        assert_ne!(proc_state(p2), Some('T'), "teardown left node 2 stopped");
        assert!(!ctx.net.link(1, 2).unwrap().is_held());
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
