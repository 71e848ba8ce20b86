//! Targeted compound faults: short choreographies that make the
//! situations Raft bugs live in, on purpose rather than by luck.
//!
//! - `lagging-leader`: a follower is cut off until it lags, then healed at
//!   the moment the leader is cut off, killed or paused, so the election
//!   that follows is one the lagging node takes part in (a voter that does
//!   not check logs elects it, and committed entries vanish).
//! - `deposed-leader`: the leader is cut off while clients keep sending it
//!   writes it can append but not commit; the others elect a new leader and
//!   commit; then it comes back (optionally after a crash and restart on
//!   its disk) holding entries nobody else has, which must be overwritten,
//!   never committed. Its clocks may be slowed to a crawl meanwhile (a
//!   zombie that goes on serving its clients), and it may crash again just
//!   after it is back, while its overwritten suffix is on its disk.
//! - `leader-churn`: several elections in a row with writes in flight: the
//!   leader of the moment is cut off, paused, killed or asked to hand over,
//!   briefly, again and again.
//!
//! Each runs as a task from its start operation and logs every step; its
//! stop operation waits for it, undoes whatever is still in effect and
//! reports the steps in the history.

use super::schedule::{Cut, FaultOp, NemesisKind};
use super::{Nemesis, NemesisCtx};
use crate::target::cluster::NodeState;
use crate::target::AdminReq;
use crate::workload::client::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The name under which scenarios hold the links they cut (partitions and
/// vote-crash hold theirs under their own names).
const HOLDER: &str = "scenario";

/// What is done to a leader in a scenario step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaderFault {
    /// Cut it off from every other node (clients still reach it).
    Isolate,
    /// SIGKILL it; it is restarted on its data dir afterwards.
    Kill,
    /// SIGSTOP it; SIGCONT afterwards.
    Pause,
    /// Ask it to hand leadership to another node (targets with transfer).
    Transfer,
    /// Cut it off from every other node and slow its clocks to a crawl
    /// ([`ZOMBIE_RATE`]): its timers stop, so it never notices that it
    /// lost its quorum and goes on answering the clients that still reach
    /// it, as a leader in a VM or GC pause that the network does not see
    /// would. Its clocks come back to real time when it is undone. Needs
    /// the clocks of the machine (runs with `clock`); without them it is
    /// an isolation.
    Zombie,
}

/// How fast a zombie leader's clocks run: its election timeout (1 s)
/// takes 50 s, longer than any hold.
pub const ZOMBIE_RATE: f64 = 0.02;

impl LeaderFault {
    fn name(self) -> &'static str {
        match self {
            LeaderFault::Isolate => "isolate",
            LeaderFault::Kill => "kill",
            LeaderFault::Pause => "pause",
            LeaderFault::Transfer => "transfer",
            LeaderFault::Zombie => "zombie",
        }
    }
}

/// One step of leader churn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnStep {
    /// What is done to the leader of the moment.
    pub fault: LeaderFault,
    /// How long it lasts (ms) before it is undone.
    pub hold_ms: u64,
    /// Pause after undoing it (ms), before the next step.
    pub gap_ms: u64,
}

/// The plan of one scenario, from its start operation.
#[derive(Debug, Clone)]
enum Plan {
    Lagging {
        node: Option<u64>,
        lag_ms: u64,
        leader_fault: LeaderFault,
        elect_ms: u64,
    },
    Deposed {
        fault: LeaderFault,
        hold_ms: u64,
        crash: bool,
        crash_after_ms: Option<u64>,
    },
    Churn {
        steps: Vec<ChurnStep>,
    },
}

/// A fault the scenario has in effect, to undo when it ends or stops.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Undo {
    /// Heal the cut.
    Cut,
    /// Restart this node.
    Restart(u64),
    /// Resume this node.
    Resume(u64),
    /// Set this node's clocks back to real time.
    Clock(u64),
}

/// What the scenario task shares with its nemesis.
struct Shared {
    ctx: Arc<NemesisCtx>,
    began: Instant,
    log: Mutex<Vec<Value>>,
    undo: Mutex<Vec<Undo>>,
}

impl Shared {
    fn log(&self, mut v: Value) {
        v["at_ms"] = json!(self.began.elapsed().as_millis() as u64);
        tracing::info!("scenario: {v}");
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push(v);
    }

    fn push_undo(&self, u: Undo) {
        self.undo.lock().unwrap_or_else(|e| e.into_inner()).push(u);
    }

    /// Undoes everything in effect, newest first.
    fn undo_all(&self) -> Vec<String> {
        let undo = std::mem::take(&mut *self.undo.lock().unwrap_or_else(|e| e.into_inner()));
        let mut done = Vec::new();
        for u in undo.into_iter().rev() {
            match u {
                Undo::Cut => {
                    self.ctx.net.uncut(HOLDER);
                    done.push("healed".into());
                }
                Undo::Restart(n) => {
                    let mut c = self.ctx.cluster();
                    if c.state(n) == Some(NodeState::Down) {
                        match c.start(n) {
                            Ok(()) => done.push(format!("restarted n{n}")),
                            Err(e) => done.push(format!("n{n} did not restart: {e:#}")),
                        }
                    }
                }
                Undo::Resume(n) => {
                    let _ = self.ctx.cluster().resume(n);
                    done.push(format!("resumed n{n}"));
                }
                Undo::Clock(n) => {
                    if let Some(clocks) = self.ctx.machine.clocks.as_ref() {
                        let set = super::clock::change(clocks, &self.ctx.cluster, n, |_, _| {
                            crate::machine::clocks::ClockSetting::TRUE
                        });
                        done.push(format!("n{n}'s clocks back to real time: {set}"));
                    }
                }
            }
        }
        done
    }

    /// Cuts `node` off from every other node.
    fn isolate(&self, node: u64) {
        let cut = Cut::isolate(node, &self.ctx.ids());
        self.ctx
            .net
            .cut(HOLDER, &cut.blocked_set(), self.ctx.sever_on_partition);
        self.push_undo(Undo::Cut);
    }

    /// Applies `fault` to `leader`; what it did, in words.
    async fn strike(&self, leader: u64, fault: LeaderFault) -> String {
        match fault {
            LeaderFault::Isolate => {
                self.isolate(leader);
                format!("isolated n{leader}")
            }
            LeaderFault::Kill => {
                let killed = self.ctx.cluster().kill(leader).is_ok();
                self.push_undo(Undo::Restart(leader));
                format!("killed n{leader}: {killed}")
            }
            LeaderFault::Pause => {
                let paused = self.ctx.cluster().pause(leader).is_ok();
                self.push_undo(Undo::Resume(leader));
                format!("paused n{leader}: {paused}")
            }
            LeaderFault::Zombie => {
                // The clock first: cut off with running timers, it would
                // step down within an election timeout.
                let slowed = self.ctx.machine.clocks.as_ref().map(|clocks| {
                    super::clock::change(clocks, &self.ctx.cluster, leader, |s, age| {
                        s.with_rate(age, ZOMBIE_RATE)
                    })
                });
                if slowed.is_some() {
                    self.push_undo(Undo::Clock(leader));
                }
                self.isolate(leader);
                match slowed {
                    Some(v) => format!("isolated n{leader} with its clocks at x{ZOMBIE_RATE}: {v}"),
                    None => format!(
                        "isolated n{leader} (no clocks to slow: the nodes run without libfaketime)"
                    ),
                }
            }
            LeaderFault::Transfer => {
                let ids = self.ctx.ids();
                let to = ids.iter().copied().find(|&i| i != leader).unwrap_or(leader);
                let r = self
                    .ctx
                    .admin(AdminReq::Transfer(to), Duration::from_secs(2))
                    .await;
                format!("asked n{leader} to hand over to n{to}: {r}")
            }
        }
    }
}

/// The leader, waiting up to 3 s for one (other faults may have left the
/// cluster between leaders); None if `stop` came first or none was found.
async fn leader_soon(s: &Shared, stop: &mut watch::Receiver<bool>) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Some(l) = s.ctx.leader().await {
            return Some(l);
        }
        if Instant::now() >= deadline || !wait(100, stop).await {
            return None;
        }
    }
}

/// Sleeps `ms`, or returns false early when `stop` turns true.
async fn wait(ms: u64, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(ms)) => true,
        _ = stop.wait_for(|s| *s) => false,
    }
}

async fn lagging(
    s: &Shared,
    node: Option<u64>,
    lag_ms: u64,
    fault: LeaderFault,
    elect_ms: u64,
    stop: &mut watch::Receiver<bool>,
) {
    let Some(leader) = leader_soon(s, stop).await else {
        s.log(json!({"step": "no leader: nothing done"}));
        return;
    };
    let ids = s.ctx.ids();
    // The lagging node: the one planned if it is not the leader, else the
    // next follower after the leader.
    let lagger = node
        .filter(|&n| n != leader && ids.contains(&n))
        .unwrap_or_else(|| {
            let pos = ids.iter().position(|&i| i == leader).unwrap_or(0);
            ids[(pos + 1) % ids.len()]
        });
    s.isolate(lagger);
    s.log(json!({"step": "isolated the lagging node", "node": lagger, "leader": leader}));
    if !wait(lag_ms, stop).await {
        return;
    }
    // Heal the lagger and strike the leader in one step: the election that
    // follows starts while the lagger is still behind.
    s.undo_all();
    let did = s.strike(leader, fault).await;
    s.log(json!({"step": "healed the lagging node and struck the leader", "node": lagger, "leader": leader, "did": did}));
    if !wait(elect_ms, stop).await {
        return;
    }
    let undone = s.undo_all();
    let now = s.ctx.leader().await;
    s.log(json!({"step": "restored the old leader", "undone": undone, "leader_now": now, "lagging_node_leads": now == Some(lagger)}));
}

async fn deposed(
    s: &Shared,
    fault: LeaderFault,
    hold_ms: u64,
    crash: bool,
    crash_after_ms: Option<u64>,
    stop: &mut watch::Receiver<bool>,
) {
    let Some(leader) = leader_soon(s, stop).await else {
        s.log(json!({"step": "no leader: nothing done"}));
        return;
    };
    let did = s.strike(leader, fault).await;
    s.log(json!({"step": "deposed the leader", "leader": leader, "did": did}));
    if !wait(hold_ms, stop).await {
        return;
    }
    let successor = s.ctx.leader().await;
    if crash {
        // It comes back from its disk: what it appended but never
        // committed is still in its log.
        let mut c = s.ctx.cluster();
        let _ = c.resume(leader);
        let killed = c.kill(leader).is_ok();
        let restarted = c.start(leader).map_err(|e| format!("{e:#}"));
        drop(c);
        s.log(json!({"step": "crashed and restarted the deposed leader", "node": leader, "killed": killed, "restarted": restarted.is_ok()}));
    }
    let undone = s.undo_all();
    s.log(json!({"step": "the deposed leader is back", "node": leader, "successor": successor, "undone": undone}));
    let Some(after) = crash_after_ms else {
        return;
    };
    if !wait(after, stop).await {
        return;
    }
    // Its suffix was just overwritten (or is being, entry batch by batch):
    // what it recovers from disk now must be the new log, never the old
    // suffix back.
    let mut c = s.ctx.cluster();
    let killed = c.kill(leader).is_ok();
    let restarted = c.start(leader).map_err(|e| format!("{e:#}"));
    drop(c);
    s.log(json!({"step": "crashed and restarted the returned leader", "node": leader, "after_ms": after, "killed": killed, "restarted": restarted.is_ok()}));
}

async fn churn(s: &Shared, steps: &[ChurnStep], stop: &mut watch::Receiver<bool>) {
    for (i, step) in steps.iter().enumerate() {
        let Some(leader) = leader_soon(s, stop).await else {
            s.log(json!({"step": i, "did": "no leader now: waited"}));
            if !wait(step.hold_ms + step.gap_ms, stop).await {
                return;
            }
            continue;
        };
        let did = s.strike(leader, step.fault).await;
        s.log(json!({"step": i, "fault": step.fault.name(), "leader": leader, "did": did}));
        if !wait(step.hold_ms, stop).await {
            return;
        }
        s.undo_all();
        if !wait(step.gap_ms, stop).await {
            return;
        }
    }
}

/// One scenario in effect.
struct Running {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The nemesis of one scenario kind.
pub struct ScenarioNemesis {
    kind: NemesisKind,
    running: Option<Running>,
}

impl ScenarioNemesis {
    /// A scenario nemesis of `kind` (lagging-leader, deposed-leader,
    /// leader-churn).
    pub fn new(kind: NemesisKind) -> Self {
        ScenarioNemesis {
            kind,
            running: None,
        }
    }

    fn plan(op: &FaultOp) -> Option<Plan> {
        Some(match op {
            FaultOp::StartLaggingLeader {
                node,
                lag_ms,
                leader_fault,
                elect_ms,
            } => Plan::Lagging {
                node: *node,
                lag_ms: *lag_ms,
                leader_fault: *leader_fault,
                elect_ms: *elect_ms,
            },
            FaultOp::StartDeposedLeader {
                fault,
                hold_ms,
                crash,
                crash_after_ms,
            } => Plan::Deposed {
                fault: *fault,
                hold_ms: *hold_ms,
                crash: *crash,
                crash_after_ms: *crash_after_ms,
            },
            FaultOp::StartLeaderChurn { steps } => Plan::Churn {
                steps: steps.clone(),
            },
            _ => return None,
        })
    }

    async fn start(&mut self, ctx: &NemesisCtx, plan: Plan) -> Value {
        if self.running.is_some() {
            self.stop().await;
        }
        let shared = Arc::new(Shared {
            ctx: Arc::new(NemesisCtx {
                cluster: ctx.cluster.clone(),
                net: ctx.net.clone(),
                api: ctx.api.clone(),
                ids: ctx.ids.clone(),
                sever_on_partition: ctx.sever_on_partition,
                machine: ctx.machine.clone(),
            }),
            began: Instant::now(),
            log: Mutex::new(Vec::new()),
            undo: Mutex::new(Vec::new()),
        });
        let leader = ctx.leader().await;
        let (stop, mut stop_rx) = watch::channel(false);
        let s = shared.clone();
        let p = plan.clone();
        let task = tokio::spawn(async move {
            match p {
                Plan::Lagging {
                    node,
                    lag_ms,
                    leader_fault,
                    elect_ms,
                } => lagging(&s, node, lag_ms, leader_fault, elect_ms, &mut stop_rx).await,
                Plan::Deposed {
                    fault,
                    hold_ms,
                    crash,
                    crash_after_ms,
                } => deposed(&s, fault, hold_ms, crash, crash_after_ms, &mut stop_rx).await,
                Plan::Churn { steps } => churn(&s, &steps, &mut stop_rx).await,
            }
        });
        self.running = Some(Running { shared, stop, task });
        json!({"leader": leader, "plan": format!("{plan:?}")})
    }

    async fn stop(&mut self) -> Value {
        let Some(r) = self.running.take() else {
            return json!({"steps": []});
        };
        let _ = r.stop.send(true);
        let _ = r.task.await;
        let undone = r.shared.undo_all();
        let steps = std::mem::take(&mut *r.shared.log.lock().unwrap_or_else(|e| e.into_inner()));
        json!({"steps": steps, "undone": undone})
    }
}

impl Nemesis for ScenarioNemesis {
    fn kind(&self) -> NemesisKind {
        self.kind
    }

    fn invoke<'a>(&'a mut self, ctx: &'a NemesisCtx, op: &'a FaultOp) -> BoxFuture<'a, Value> {
        Box::pin(async move {
            match Self::plan(op) {
                Some(plan) => self.start(ctx, plan).await,
                None => self.stop().await,
            }
        })
    }

    fn teardown<'a>(&'a mut self, _ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if self.running.is_some() {
                let v = self.stop().await;
                tracing::info!("scenario teardown: {v}");
            }
        })
    }
}
