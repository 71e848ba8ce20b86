//! A simulated cluster for tests and benchmarks: N cores in one process, a
//! seeded RNG, an in-memory "disk" per node, and a network with per-link
//! drop, delay, duplication, reordering and partitions. After every step it
//! checks Raft's safety properties and reports the first violation.
//!
//! Everything is deterministic given the seed, so a failing seed re-runs
//! the same schedule.

use std::collections::BTreeMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use raft_node::raft::{ConfChange, ConfState, Config, Message, NodeId, Raft, Role};

mod checker;
mod mem_storage;
mod scenario;

use checker::Checker;
pub use mem_storage::{HashMachine, MemStorage};
use scenario::{Scenario, HISTORY};
use std::collections::VecDeque;

/// Probabilities and sizes of one simulated schedule.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Node ids are 1..=nodes.
    pub nodes: u64,
    /// Nodes 1..=initial_voters start as voters; the others start empty and
    /// wait to be added.
    pub initial_voters: u64,
    /// Steps (random events) to run.
    pub steps: usize,
    /// Probability that a message is lost.
    pub drop: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Messages are delayed by up to this many steps (and so reordered).
    pub max_delay: u64,
    /// Turn on crash-restart, partitions, membership changes, transfers, compaction.
    pub faults: bool,
    /// The core's config template (id and seed are set per node).
    pub raft: Config,
    /// After the schedule, heal everything and require a proposal to commit.
    pub check_liveness: bool,
    /// Draw batch size, window and drop rate per seed, up to the values above.
    pub vary: bool,
    /// Tick every live node together (no clock drift), as lease reads assume.
    pub synced_clocks: bool,
    /// With `faults`: compound faults (a lagging node given a chance to
    /// lead, a deposed leader with unique entries coming back, leader
    /// churn) and replays of stale messages.
    pub compound: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            nodes: 5,
            initial_voters: 3,
            steps: 1000,
            drop: 0.05,
            duplicate: 0.03,
            max_delay: 6,
            faults: true,
            raft: Config {
                election_tick: 6,
                heartbeat_tick: 1,
                max_msg_entries: 4,
                max_inflight: 4,
                ..Config::default()
            },
            check_liveness: true,
            vary: true,
            synced_clocks: false,
            compound: true,
        }
    }
}

struct SimNode {
    raft: Option<Raft>,
    disk: MemStorage,
    sm: HashMachine,
    restarts: u64,
}

/// The faults of one directed link.
#[derive(Debug, Clone, Copy)]
struct Link {
    drop: f64,
    max_delay: u64,
}

struct InFlight {
    due: u64,
    msg: Message,
}

/// A simulated cluster running one seeded schedule.
pub struct Sim {
    opts: SimOptions,
    rng: SmallRng,
    nodes: BTreeMap<NodeId, SimNode>,
    net: Vec<InFlight>,
    /// Links degraded beyond the defaults: (from, to) -> their faults.
    links: BTreeMap<(NodeId, NodeId), Link>,
    /// Partition group of each node; a link works within one group.
    group: BTreeMap<NodeId, u8>,
    now: u64,
    check: Checker,
    next_read: u64,
    next_cmd: u64,
    trace: Vec<String>,
    keep_trace: bool,
    /// The compound fault in progress, if any.
    scenario: Option<Scenario>,
    /// The last messages sent, for stale replays.
    history: VecDeque<Message>,
}

/// What a finished schedule did, for sanity checks on the schedule itself.
#[derive(Debug, Clone, Default)]
pub struct SimStats {
    /// The highest index committed anywhere.
    pub max_commit: u64,
    /// Distinct terms that had a leader.
    pub leader_terms: usize,
    /// Linearizable reads released and checked.
    pub reads_served: u64,
    /// Crash-restarts.
    pub restarts: u64,
    /// Membership changes committed (bootstrap entries included).
    pub conf_changes: u64,
    /// Snapshots installed from a leader.
    pub snapshots_installed: u64,
}

impl Sim {
    /// A cluster for `seed`; with `keep_trace` every event is recorded for the failure report.
    pub fn new(seed: u64, opts: SimOptions, keep_trace: bool) -> Sim {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut opts = opts;
        if opts.vary {
            // Small batches and windows split a new leader's no-op from the
            // older entries before it, which is when the commit rule matters.
            opts.raft.max_msg_entries = rng.gen_range(1..=opts.raft.max_msg_entries.max(1));
            opts.raft.max_inflight = rng.gen_range(1..=opts.raft.max_inflight.max(1));
            opts.drop = rng.gen_range(0.0..=opts.drop * 2.0);
        }
        let mut nodes = BTreeMap::new();
        let voters: Vec<NodeId> = (1..=opts.initial_voters).collect();
        for id in 1..=opts.nodes {
            let bootstrap = if id <= opts.initial_voters {
                ConfState {
                    voters: voters.clone(),
                    ..Default::default()
                }
            } else {
                ConfState::default()
            };
            let disk = MemStorage {
                bootstrap,
                ..Default::default()
            };
            nodes.insert(
                id,
                SimNode {
                    raft: None,
                    disk,
                    sm: HashMachine::default(),
                    restarts: 0,
                },
            );
        }
        let mut sim = Sim {
            opts,
            rng,
            nodes,
            net: Vec::new(),
            links: BTreeMap::new(),
            group: BTreeMap::new(),
            now: 0,
            check: Checker::default(),
            next_read: 0,
            next_cmd: 0,
            trace: Vec::new(),
            keep_trace,
            scenario: None,
            history: VecDeque::with_capacity(HISTORY),
        };
        for id in 1..=sim.opts.nodes {
            sim.start(id, seed);
        }
        sim
    }

    fn start(&mut self, id: NodeId, seed: u64) {
        let node = self.nodes.get_mut(&id).expect("node exists");
        let cfg = Config {
            id,
            seed: seed ^ (node.restarts << 32),
            ..self.opts.raft.clone()
        };
        let init = node.disk.initial_state();
        node.sm = node
            .disk
            .snapshot
            .as_ref()
            .map_or_else(HashMachine::default, |s| HashMachine::decode(&s.data));
        node.raft = Some(Raft::new(cfg, init).expect("recovered state is valid"));
    }

    fn log(&mut self, event: impl FnOnce() -> String) {
        if self.keep_trace {
            let line = format!("[{}] {}", self.now, event());
            self.trace.push(line);
        }
    }

    /// The recorded events (empty unless `keep_trace`).
    pub fn trace(&self) -> &[String] {
        &self.trace
    }

    /// Runs the whole schedule; the error names the violated property.
    pub fn run(&mut self) -> Result<SimStats, String> {
        for _ in 0..self.opts.steps {
            self.step()?;
        }
        if self.opts.check_liveness {
            self.heal_and_commit()?;
        }
        Ok(SimStats {
            max_commit: self.check.max_commit,
            leader_terms: self.check.leaders.len(),
            reads_served: self.check.reads_served,
            restarts: self.nodes.values().map(|n| n.restarts).sum(),
            conf_changes: self.check.conf_changes,
            snapshots_installed: self.check.snapshots_installed,
        })
    }

    fn live_ids(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.raft.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| {
                n.raft
                    .as_ref()
                    .is_some_and(|r| r.status().role == Role::Leader)
            })
            .map(|(id, _)| *id)
            .collect()
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> Option<T> {
        if xs.is_empty() {
            None
        } else {
            Some(xs[self.rng.gen_range(0..xs.len())])
        }
    }

    /// One random event, then every node's Ready, then the checks.
    pub fn step(&mut self) -> Result<(), String> {
        self.now += 1;
        let faults = self.opts.faults;
        if faults && self.opts.compound {
            if self.scenario.is_some() {
                self.advance_scenario();
            } else if self.rng.gen_bool(0.004) {
                self.start_scenario();
            }
            if self.rng.gen_bool(0.01) {
                self.replay_stale();
            }
        }
        let roll = self.rng.gen_range(0..100);
        match roll {
            0..=39 => {
                let n = self.rng.gen_range(1..=4);
                for _ in 0..n {
                    self.deliver_one()?;
                }
            }
            40..=64 => {
                if self.opts.synced_clocks || self.rng.gen_bool(0.5) {
                    for id in self.live_ids() {
                        self.tick(id);
                    }
                } else if let Some(id) = self
                    .pick(&self.leaders())
                    .filter(|_| self.rng.gen_bool(0.5))
                    .or_else(|| self.pick(&self.live_ids()))
                {
                    self.tick(id);
                }
            }
            65..=77 => self.propose(),
            78..=82 => self.read(),
            83..=88 if faults => self.crash_or_restart(),
            89..=90 if faults && self.scenario.is_none() => self.partition(),
            91 => self.degrade_link(),
            92..=93 if faults => self.transfer(),
            94..=96 if faults => self.conf_change(),
            97..=99 if faults => self.compact(),
            _ => self.deliver_one()?,
        }
        self.drain_all()
    }

    fn tick(&mut self, id: NodeId) {
        if self.stalled(id) {
            return;
        }
        if let Some(r) = self.nodes.get_mut(&id).and_then(|n| n.raft.as_mut()) {
            r.tick();
        }
    }

    fn deliver_one(&mut self) -> Result<(), String> {
        let due: Vec<usize> = (0..self.net.len())
            .filter(|&i| self.net[i].due <= self.now)
            .collect();
        let Some(i) = self.pick(&due) else {
            return Ok(());
        };
        let m = self.net.swap_remove(i).msg;
        self.deliver(m)
    }

    fn deliver(&mut self, m: Message) -> Result<(), String> {
        if !self.linked(m.from, m.to) {
            return Ok(());
        }
        let Some(r) = self.nodes.get_mut(&m.to).and_then(|n| n.raft.as_mut()) else {
            return Ok(());
        };
        let desc = if self.keep_trace {
            format!("deliver {m:?}")
        } else {
            String::new()
        };
        r.step(m)
            .map_err(|e| format!("step refused a message from a correct peer: {e}"))?;
        self.log(|| desc);
        Ok(())
    }

    fn link(&self, from: NodeId, to: NodeId) -> Link {
        self.links.get(&(from, to)).copied().unwrap_or(Link {
            drop: self.opts.drop,
            max_delay: self.opts.max_delay,
        })
    }

    /// Degrades one directed link (heavy loss, long delays) or restores it.
    fn degrade_link(&mut self) {
        let from = self.rng.gen_range(1..=self.opts.nodes);
        let to = self.rng.gen_range(1..=self.opts.nodes);
        if from == to {
            return;
        }
        if self.links.remove(&(from, to)).is_some() {
            self.log(|| format!("restore link {from} -> {to}"));
            return;
        }
        let link = Link {
            drop: self.rng.gen_range(0.0..0.8),
            max_delay: self.rng.gen_range(0..=self.opts.max_delay * 4),
        };
        self.links.insert((from, to), link);
        self.log(|| format!("degrade link {from} -> {to}: {link:?}"));
    }

    fn linked(&self, a: NodeId, b: NodeId) -> bool {
        self.group.get(&a).copied().unwrap_or(0) == self.group.get(&b).copied().unwrap_or(0)
    }

    fn propose(&mut self) {
        let target = self
            .pick(&self.leaders())
            .or_else(|| self.pick(&self.live_ids()));
        let Some(id) = target else { return };
        self.next_cmd += 1;
        let data = format!("cmd-{}", self.next_cmd).into_bytes();
        let r = self
            .nodes
            .get_mut(&id)
            .and_then(|n| n.raft.as_mut())
            .expect("live");
        let res = r.propose(data);
        self.log(|| format!("propose at {id}: {res:?}"));
    }

    fn read(&mut self) {
        let target = self
            .pick(&self.leaders())
            .or_else(|| self.pick(&self.live_ids()));
        let Some(id) = target else { return };
        self.next_read += 1;
        let ctx = self.next_read.to_le_bytes().to_vec();
        let r = self
            .nodes
            .get_mut(&id)
            .and_then(|n| n.raft.as_mut())
            .expect("live");
        if r.read_index(ctx.clone()).is_ok() {
            // Linearizability: the read must see everything committed before it began.
            let floor = self.check.read_started(ctx);
            let n = self.next_read;
            self.log(|| format!("read {n} at {id}, floor {floor}"));
        }
    }

    fn crash_or_restart(&mut self) {
        let down: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.raft.is_none())
            .map(|(id, _)| *id)
            .collect();
        if !down.is_empty() && (self.rng.gen_bool(0.6) || down.len() >= 2) {
            let id = self.pick(&down).expect("non-empty");
            let seed = self.rng.gen();
            self.nodes.get_mut(&id).expect("exists").restarts += 1;
            self.start(id, seed);
            self.log(|| format!("restart {id}"));
        } else if let Some(id) = self
            .pick(&self.leaders())
            .filter(|_| self.rng.gen_bool(0.5))
            .or_else(|| self.pick(&self.live_ids()))
        {
            // A crash loses everything not persisted: the core and the state machine.
            self.nodes.get_mut(&id).expect("exists").raft = None;
            self.log(|| format!("crash {id}"));
        }
    }

    fn partition(&mut self) {
        if !self.group.is_empty() && self.rng.gen_bool(0.5) {
            self.group.clear();
            self.log(|| "heal".to_string());
            return;
        }
        self.group.clear();
        for id in 1..=self.opts.nodes {
            let g = self.rng.gen_range(0..2u8);
            self.group.insert(id, g);
        }
        let groups = self.group.clone();
        self.log(|| format!("partition {groups:?}"));
    }

    fn transfer(&mut self) {
        let Some(id) = self.pick(&self.leaders()) else {
            return;
        };
        let to = self.rng.gen_range(1..=self.opts.nodes);
        let r = self
            .nodes
            .get_mut(&id)
            .and_then(|n| n.raft.as_mut())
            .expect("live");
        let res = r.transfer_leader(to);
        self.log(|| format!("transfer {id} -> {to}: {res:?}"));
    }

    fn conf_change(&mut self) {
        let Some(id) = self.pick(&self.leaders()) else {
            return;
        };
        let target = self.rng.gen_range(1..=self.opts.nodes);
        let cc = match self.rng.gen_range(0..3) {
            0 => ConfChange::AddVoter {
                id: target,
                context: vec![],
            },
            1 => ConfChange::AddLearner {
                id: target,
                context: vec![],
            },
            _ => ConfChange::Remove { id: target },
        };
        let r = self
            .nodes
            .get_mut(&id)
            .and_then(|n| n.raft.as_mut())
            .expect("live");
        // Keep at least two voters so that the liveness check stays meaningful.
        if matches!(
            cc,
            ConfChange::Remove { .. } | ConfChange::AddLearner { .. }
        ) && r.status().conf.voters.len() <= 2
        {
            return;
        }
        let res = r.propose_conf_change(cc.clone());
        self.log(|| format!("conf change at {id}: {cc:?}: {res:?}"));
    }

    fn compact(&mut self) {
        let Some(id) = self.pick(&self.live_ids()) else {
            return;
        };
        let node = self.nodes.get_mut(&id).expect("exists");
        let r = node.raft.as_mut().expect("live");
        let applied = r.status().applied;
        if applied <= r.status().snapshot_index {
            return;
        }
        debug_assert_eq!(node.sm.applied, applied);
        r.compact(applied, node.sm.encode())
            .expect("compacting to applied is valid");
        let snap = r.raft_log().snapshot().expect("just compacted").clone();
        node.disk.compact(snap);
        self.log(|| format!("compact {id} to {applied}"));
    }

    fn drain_all(&mut self) -> Result<(), String> {
        for id in self.live_ids() {
            self.drain(id)?;
        }
        Ok(())
    }

    /// Runs one node's Ready loop: check, persist, send, apply, advance.
    fn drain(&mut self, id: NodeId) -> Result<(), String> {
        loop {
            let node = self.nodes.get_mut(&id).expect("exists");
            let r = node.raft.as_mut().expect("live");
            if !r.has_ready() {
                return Ok(());
            }
            let rd = r.ready();
            let node = self.nodes.get_mut(&id).expect("exists");
            let r = node.raft.as_ref().expect("live");
            self.check.ready(id, &rd, r, &node.disk)?;
            node.disk.persist(&rd);
            if let Some(s) = &rd.snapshot {
                let restored = HashMachine::decode(&s.data);
                self.check.restored(id, &node.sm, &restored)?;
                node.sm = restored;
            }
            for e in &rd.committed_entries {
                if e.index != node.sm.applied + 1 {
                    return Err(format!(
                        "node {id} applies {} after {}",
                        e.index, node.sm.applied
                    ));
                }
                node.sm.apply(e);
                self.check.applied_entry(id, e.kind, &node.sm)?;
            }
            for rs in &rd.read_states {
                self.check.read_released(id, rs)?;
            }
            let msgs = rd.messages.clone();
            let r = node.raft.as_mut().expect("live");
            r.advance(rd);
            for m in msgs {
                self.send(m);
            }
            let r = self.nodes[&id].raft.as_ref().expect("live");
            self.check.node(id, r)?;
        }
    }

    fn send(&mut self, m: Message) {
        if self.opts.compound {
            if self.history.len() == HISTORY {
                self.history.pop_front();
            }
            self.history.push_back(m.clone());
        }
        let link = self.link(m.from, m.to);
        if self.rng.gen_bool(link.drop) {
            return;
        }
        let copies = if self.rng.gen_bool(self.opts.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let due = self.now + self.rng.gen_range(0..=link.max_delay);
            self.net.push(InFlight {
                due,
                msg: m.clone(),
            });
        }
    }

    /// Heals every fault, then requires the cluster to elect a leader and
    /// commit a fresh proposal within a bounded number of rounds.
    fn heal_and_commit(&mut self) -> Result<(), String> {
        self.end_scenario();
        self.group.clear();
        for id in 1..=self.opts.nodes {
            if self.nodes[&id].raft.is_none() {
                let seed = self.rng.gen();
                self.start(id, seed);
            }
        }
        self.opts.drop = 0.0;
        self.opts.duplicate = 0.0;
        self.links.clear();
        let mut proposed: Option<(NodeId, u64, u64)> = None;
        for _ in 0..2000 {
            self.now += 1;
            for id in self.live_ids() {
                self.tick(id);
            }
            self.drain_all()?;
            let pending: Vec<Message> = std::mem::take(&mut self.net)
                .into_iter()
                .map(|f| f.msg)
                .collect();
            for m in pending {
                self.deliver(m)?;
            }
            self.drain_all()?;
            if let Some((id, term, index)) = proposed {
                let st = self.nodes[&id].raft.as_ref().expect("live").status();
                if st.term != term || st.role != Role::Leader {
                    proposed = None;
                } else if st.applied >= index {
                    return Ok(());
                }
            }
            if proposed.is_none() {
                // The leader of the highest term: a stale one may linger.
                let newest = self
                    .leaders()
                    .into_iter()
                    .max_by_key(|id| self.nodes[id].raft.as_ref().map(|r| r.status().term));
                if let Some(id) = newest {
                    let r = self
                        .nodes
                        .get_mut(&id)
                        .and_then(|n| n.raft.as_mut())
                        .expect("live");
                    if let Ok(index) = r.propose(b"liveness".to_vec()) {
                        proposed = Some((id, r.status().term, index));
                    }
                }
            }
        }
        let statuses: Vec<String> = self
            .nodes
            .values()
            .filter_map(|n| n.raft.as_ref())
            .map(|r| format!("{:?}", r.status()))
            .collect();
        Err(format!(
            "liveness: no proposal committed within 2000 rounds after healing; nodes: {}",
            statuses.join("; ")
        ))
    }
}

/// Runs `seeds` schedules starting at `first_seed`; returns the first failure
/// as (seed, message, trace).
pub fn run_seeds(
    first_seed: u64,
    seeds: u64,
    opts: &SimOptions,
) -> Result<SimStats, (u64, String)> {
    let mut total = SimStats::default();
    for seed in first_seed..first_seed + seeds {
        let mut sim = Sim::new(seed, opts.clone(), false);
        match sim.run() {
            Ok(s) => {
                total.max_commit += s.max_commit;
                total.leader_terms += s.leader_terms;
                total.reads_served += s.reads_served;
                total.restarts += s.restarts;
                total.conf_changes += s.conf_changes;
                total.snapshots_installed += s.snapshots_installed;
            }
            Err(e) => return Err((seed, e)),
        }
    }
    Ok(total)
}
