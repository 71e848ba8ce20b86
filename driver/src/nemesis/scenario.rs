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
use super::vote_crash::CRASH_AFTER_VOTE;
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

/// The crash point a late successor's returning leader may be crashed at.
pub const CRASH_AFTER_APPEND: &str = "crash-after-append";

/// How a deposed leader meets a successor that was elected late (see
/// `FaultOp::StartDeposedLeader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LateSuccessor {
    /// How long after a successor is seen the deposed leader comes back.
    pub return_after_ms: u64,
    /// Arm the target's `crash-after-append` on it as it comes back: it
    /// crashes right after it persists and acknowledges its first append
    /// from the successor, the one that overwrites the start of its
    /// suffix, and is restarted from its disk 200 ms later.
    #[serde(default)]
    pub crash_on_overwrite: bool,
    /// Play Raft's Figure 8 instead ([`figure8`]): the successor is cut
    /// off the moment it is elected, before its first entry reaches the
    /// voters, which crash right after their votes; the deposed leader
    /// wins them back and sends them its old suffix, and they crash again
    /// right after they persist its first append (entries of its old term
    /// only, in runs that batch small); then the successor wins them
    /// back and overwrites that suffix. A leader that commits entries of
    /// an older term by counting replicas has committed what is now lost.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub old_term_commit: bool,
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
        late_successor: Option<LateSuccessor>,
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
                    if let Some(set) = clocks_back(self, n) {
                        done.push(format!("n{n}'s clocks back to real time: {set}"));
                    }
                }
            }
        }
        done
    }

    /// Cuts `node` off from every other node.
    fn isolate(&self, node: u64) {
        self.cut(&Cut::isolate(node, &self.ctx.ids()));
    }

    /// Holds the links `cut` blocks (replacing what the scenario held).
    fn cut(&self, cut: &Cut) {
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

/// How a deposed leader comes back.
#[derive(Debug, Clone, Copy)]
struct Return {
    crash_after_ms: Option<u64>,
    late_successor: Option<LateSuccessor>,
}

async fn deposed(
    s: &Shared,
    fault: LeaderFault,
    hold_ms: u64,
    crash: bool,
    back: Return,
    stop: &mut watch::Receiver<bool>,
) {
    let Some(leader) = leader_soon(s, stop).await else {
        s.log(json!({"step": "no leader: nothing done"}));
        return;
    };
    let did = s.strike(leader, fault).await;
    s.log(json!({"step": "deposed the leader", "leader": leader, "did": did}));
    if back.late_successor.is_some() {
        // Nobody can be elected while it is away: its suffix grows, and
        // the successor's log will start only when the hold ends.
        s.cut(&Cut::from_groups(
            s.ctx.ids().iter().map(|&n| vec![n]).collect(),
        ));
        s.log(json!({"step": "cut every node apart: no successor can be elected"}));
    }
    if !wait(hold_ms, stop).await {
        return;
    }
    if back.late_successor.is_some_and(|l| l.old_term_commit) {
        figure8(s, leader, stop).await;
        let undone = s.undo_all();
        s.log(
            json!({"step": "healed: the deposed leader is back", "node": leader, "undone": undone}),
        );
        return;
    }
    let mut successor = s.ctx.leader().await;
    if let Some(late) = back.late_successor {
        s.cut(&Cut::isolate(leader, &s.ctx.ids()));
        let Some(elected) = successor_soon(s, leader, stop).await else {
            s.log(
                json!({"step": "the others rejoined but elected nobody in time", "node": leader}),
            );
            return;
        };
        successor = Some(elected);
        s.log(json!({"step": "the others rejoined and elected a successor", "successor": elected}));
        if !wait(late.return_after_ms, stop).await {
            return;
        }
    }
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
    let crash_point = back.late_successor.is_some_and(|l| l.crash_on_overwrite);
    if crash_point {
        let armed = s
            .ctx
            .set_failpoint(leader, CRASH_AFTER_APPEND, true, Duration::from_secs(2))
            .await;
        s.log(json!({"step": "armed the crash point", "node": leader, "failpoint": CRASH_AFTER_APPEND, "armed": armed}));
        // Should the scenario be stopped before it restarts the node.
        s.push_undo(Undo::Restart(leader));
    }
    let undone = s.undo_all();
    s.log(json!({"step": "the deposed leader is back", "node": leader, "successor": successor, "undone": undone}));
    if crash_point {
        crash_at_overwrite(s, leader, stop).await;
    }
    let Some(after) = back.crash_after_ms else {
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

/// Raft's Figure 8 with real processes (see [`LateSuccessor::old_term_commit`]);
/// `old` is the deposed leader, every node cut apart from every other.
async fn figure8(s: &Shared, old: u64, stop: &mut watch::Receiver<bool>) {
    let ids = s.ctx.ids();
    let Some(append_boot) = s.ctx.api.failpoint_boot_args(CRASH_AFTER_APPEND) else {
        s.log(json!({"step": "the target has no crash points: no figure 8"}));
        return;
    };
    let pos = ids.iter().position(|&i| i == old).unwrap_or(0);
    let quorum = ids.len() / 2 + 1;
    // The quorum that elects the successor: the nodes after the old leader.
    let group: Vec<u64> = (1..=quorum).map(|k| ids[(pos + k) % ids.len()]).collect();
    let apart = |with: &[u64]| {
        let mut groups = vec![with.to_vec()];
        groups.extend(ids.iter().filter(|n| !with.contains(n)).map(|&n| vec![n]));
        Cut::from_groups(groups)
    };
    for &n in &group {
        let armed = s
            .ctx
            .set_failpoint(n, CRASH_AFTER_VOTE, true, Duration::from_secs(1))
            .await;
        s.log(json!({"step": "armed a crash after its vote", "node": n, "armed": armed}));
    }
    s.cut(&apart(&group));
    let Some((successor, mut crashed)) = elect_with_crashing_voters(s, old, &group, stop).await
    else {
        s.log(json!({"step": "no successor elected in time: no figure 8", "group": group}));
        restart(s, &group, &[]);
        disarm(s, &group, CRASH_AFTER_VOTE).await;
        return;
    };
    // Cut off before its first entry reaches anyone: the voters crashed
    // right after their votes.
    s.cut(&apart(&[]));
    let voters: Vec<u64> = group.iter().copied().filter(|&n| n != successor).collect();
    s.log(json!({"step": "a successor was elected and cut off at once", "successor": successor, "voters": voters}));
    disarm(s, &group, CRASH_AFTER_VOTE).await;
    for n in crashes(s, &voters, Duration::from_secs(2), stop).await {
        if !crashed.contains(&n) {
            crashed.push(n);
        }
    }
    crashed.retain(|n| voters.contains(n));
    s.log(json!({"step": "the voters crashed after their votes", "crashed": crashed}));
    // The old leader, with real clocks again, wins the voters back; each
    // crashes right after it persists the first append it accepts.
    clocks_back(s, old);
    let restarted = restart(s, &voters, &append_boot);
    for &n in voters.iter().filter(|n| !crashed.contains(n)) {
        let _ = s
            .ctx
            .set_failpoint(n, CRASH_AFTER_APPEND, true, Duration::from_millis(500))
            .await;
    }
    let mut side = vec![old];
    side.extend(&voters);
    s.cut(&apart(&side));
    let led = leads_soon(s, old, stop).await;
    s.log(json!({"step": "the voters, restarted to crash after an append, rejoined the old leader", "restarted": restarted, "old_leader_leads": led}));
    let crashed = crashes(s, &voters, Duration::from_secs(3), stop).await;
    s.log(json!({"step": "the voters crashed after the old leader's first append", "crashed": crashed}));
    // Now the successor: its entry is of a later term than the voters'
    // last, so they elect it and it overwrites what the old leader sent.
    // Armed again: the successor's first append overwrites the old
    // leader's entries with fewer of its own, and they crash right after
    // persisting it, so recovery must not bring the rest back.
    let restarted = restart(s, &voters, &append_boot);
    let mut side = vec![successor];
    side.extend(&voters);
    s.cut(&apart(&side));
    let led = leads_soon(s, successor, stop).await;
    s.log(json!({"step": "the voters, restarted to crash after an append, rejoined the successor, the old leader cut off", "restarted": restarted, "successor_leads": led}));
    let crashed = crashes(s, &voters, Duration::from_secs(3), stop).await;
    // The old leader back at once, while the successor's log still holds
    // the overwritten entries (it compacts them soon after it commits
    // again): a leader that committed them by counting is sent entries
    // that contradict its commit, and says so.
    s.cut(&apart(&ids));
    let restarted = restart(s, &voters, &[]);
    disarm(s, &voters, CRASH_AFTER_APPEND).await;
    s.log(json!({"step": "the voters crashed after the successor's first append and restarted, the old leader rejoined", "crashed": crashed, "restarted": restarted}));
    wait(1_000, stop).await;
}

/// A leader of `group` (which is cut off with every member armed to crash
/// after its vote), polled every 10 ms for up to 6 s, and the members that
/// crashed meanwhile. A split vote leaves every voter dead with nobody
/// elected (likelier with three of five nodes): a member that crashed
/// while nobody leads is restarted after 300 ms, armed again, to vote in
/// the next term.
async fn elect_with_crashing_voters(
    s: &Shared,
    old: u64,
    group: &[u64],
    stop: &mut watch::Receiver<bool>,
) -> Option<(u64, Vec<u64>)> {
    let vote_boot = s.ctx.api.failpoint_boot_args(CRASH_AFTER_VOTE)?;
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut crashed: Vec<(u64, Instant)> = Vec::new();
    while Instant::now() < deadline {
        match s.ctx.leader().await {
            Some(l) if l != old && group.contains(&l) => {
                return Some((l, crashed.iter().map(|&(n, _)| n).collect()));
            }
            _ => {}
        }
        for &n in group {
            let exit = s.ctx.cluster().take_exit(n);
            if exit.is_some_and(|e| s.ctx.api.is_intended_exit(e.code)) {
                crashed.retain(|&(c, _)| c != n);
                crashed.push((n, Instant::now()));
            }
        }
        let due: Vec<u64> = crashed
            .iter()
            .filter(|(_, at)| at.elapsed() >= Duration::from_millis(300))
            .map(|&(n, _)| n)
            .collect();
        if !due.is_empty() {
            let again = restart(s, &due, &vote_boot);
            crashed.retain(|(n, _)| !again.contains(n));
            s.log(json!({"step": "nobody elected: restarted the voters that crashed, armed again", "restarted": again}));
        }
        if !wait(10, stop).await {
            return None;
        }
    }
    None
}

/// Disarms `failpoint` on each of `nodes` that answers (briefly).
async fn disarm(s: &Shared, nodes: &[u64], failpoint: &str) {
    for &n in nodes {
        let _ = s
            .ctx
            .set_failpoint(n, failpoint, false, Duration::from_millis(300))
            .await;
    }
}

/// The nodes of `nodes` that crashed at a crash point within `limit`.
async fn crashes(
    s: &Shared,
    nodes: &[u64],
    limit: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Vec<u64> {
    let deadline = Instant::now() + limit;
    let mut crashed = Vec::new();
    while crashed.len() < nodes.len() && Instant::now() < deadline {
        for &n in nodes {
            if crashed.contains(&n) {
                continue;
            }
            let exit = s.ctx.cluster().take_exit(n);
            if exit.is_some_and(|e| s.ctx.api.is_intended_exit(e.code)) {
                crashed.push(n);
            }
        }
        if !wait(10, stop).await {
            break;
        }
    }
    crashed
}

/// Starts each of `nodes` that is down, with `args`; the ones started.
fn restart(s: &Shared, nodes: &[u64], args: &[String]) -> Vec<u64> {
    let mut c = s.ctx.cluster();
    c.reap_exited();
    let mut started = Vec::new();
    for &n in nodes {
        let _ = c.take_exit(n);
        if c.state(n) == Some(NodeState::Down) && c.start_with_args(n, args).is_ok() {
            started.push(n);
        }
    }
    // Should the scenario stop early, they come back unarmed.
    drop(c);
    for &n in &started {
        s.push_undo(Undo::Restart(n));
    }
    started
}

/// Sets `node`'s clocks back to real time, if the scenario slowed them.
/// What was set, or None when the nodes run without controllable clocks.
fn clocks_back(s: &Shared, node: u64) -> Option<Value> {
    let clocks = s.ctx.machine.clocks.as_ref()?;
    Some(super::clock::change(
        clocks,
        &s.ctx.cluster,
        node,
        |_, _| crate::machine::clocks::ClockSetting::TRUE,
    ))
}

/// Whether `node` leads (in the highest term) within 5 s.
async fn leads_soon(s: &Shared, node: u64, stop: &mut watch::Receiver<bool>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if s.ctx.leader().await == Some(node) {
            return true;
        }
        if !wait(10, stop).await {
            return false;
        }
    }
    false
}

/// A leader other than `old`, polled every 10 ms for up to 5 s (the
/// moment it appears matters: the old one comes back just after).
async fn successor_soon(s: &Shared, old: u64, stop: &mut watch::Receiver<bool>) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match s.ctx.leader().await {
            Some(l) if l != old => return Some(l),
            _ => {}
        }
        if !wait(10, stop).await {
            return None;
        }
    }
    None
}

/// Waits up to 3 s for `node` to crash at its armed crash point, restarts
/// it from its disk 200 ms later, and disarms the point if it never fired
/// (a restarted node starts unarmed).
async fn crash_at_overwrite(s: &Shared, node: u64, stop: &mut watch::Receiver<bool>) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if !wait(10, stop).await {
            break;
        }
        let exit = s.ctx.cluster().take_exit(node);
        let Some(exit) = exit else { continue };
        if !s.ctx.api.is_intended_exit(exit.code) {
            s.log(json!({"step": "the returned leader exited otherwise", "node": node, "status": exit.status}));
            return;
        }
        s.log(json!({"step": "the returned leader crashed after persisting its first overwrite", "node": node, "status": exit.status}));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let restarted = s.ctx.cluster().start(node).map_err(|e| format!("{e:#}"));
        s.log(json!({"step": "restarted it from its disk", "node": node, "restarted": restarted.is_ok()}));
        return;
    }
    let disarmed = s
        .ctx
        .set_failpoint(node, CRASH_AFTER_APPEND, false, Duration::from_secs(2))
        .await;
    s.log(json!({"step": "it acknowledged no append in time: disarmed", "node": node, "disarmed": disarmed}));
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
                late_successor,
            } => Plan::Deposed {
                fault: *fault,
                hold_ms: *hold_ms,
                crash: *crash,
                crash_after_ms: *crash_after_ms,
                late_successor: *late_successor,
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
                // A scenario picks its nodes by role as it goes.
                roles: None,
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
                    late_successor,
                } => {
                    let back = Return {
                        crash_after_ms,
                        late_successor,
                    };
                    deposed(&s, fault, hold_ms, crash, back, &mut stop_rx).await
                }
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
