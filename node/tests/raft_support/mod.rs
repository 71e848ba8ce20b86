//! A small deterministic network of cores for scenario tests: messages are
//! delivered in order until the cluster is quiet, with per-link cuts and an
//! optional filter. Each node persists its Ready into a `MemStorage` first,
//! as the real node does.
#![allow(dead_code)]

pub mod sim;

use sim::MemStorage;

use std::collections::{BTreeMap, HashSet, VecDeque};

use raft_node::raft::{
    ConfState, Config, Entry, EntryKind, InitialState, Message, MessageKind, NodeId, Raft,
    ReadState, Role, Violation,
};

/// One node: its core, its "disk", what it applied and the reads it released.
pub struct Node {
    pub raft: Raft,
    pub disk: MemStorage,
    pub applied: Vec<Entry>,
    pub reads: Vec<ReadState>,
    pub sent: Vec<Message>,
    pub snapshots_received: usize,
    /// Broken invariants the core reported.
    pub violations: Vec<Violation>,
}

/// Decides whether a message is delivered.
pub type Filter = Box<dyn FnMut(&Message) -> bool>;

/// A cluster wired by function calls.
pub struct Net {
    pub nodes: BTreeMap<NodeId, Node>,
    cut: HashSet<(NodeId, NodeId)>,
    pub filter: Option<Filter>,
    /// Every message delivered, in order.
    pub delivered: Vec<Message>,
}

/// A config for tests: fixed timeouts, no pre-vote or check-quorum unless asked.
pub fn config(id: NodeId) -> Config {
    Config {
        id,
        election_tick: 10,
        heartbeat_tick: 1,
        pre_vote: false,
        check_quorum: false,
        seed: 7,
        ..Config::default()
    }
}

impl Net {
    /// Nodes `ids`, all voters, with `cfg` for each.
    pub fn new(ids: &[NodeId], cfg: impl Fn(NodeId) -> Config) -> Net {
        let conf = ConfState {
            voters: ids.to_vec(),
            ..Default::default()
        };
        let mut net = Net {
            nodes: BTreeMap::new(),
            cut: HashSet::new(),
            filter: None,
            delivered: Vec::new(),
        };
        for &id in ids {
            net.add_node(id, conf.clone(), cfg(id));
        }
        net
    }

    /// Adds a node that boots with `conf` (empty for a node joining later).
    pub fn add_node(&mut self, id: NodeId, conf: ConfState, cfg: Config) {
        let disk = MemStorage {
            bootstrap: conf,
            ..Default::default()
        };
        let raft = Raft::new(cfg, disk.initial_state()).expect("valid config");
        self.nodes.insert(
            id,
            Node {
                raft,
                disk,
                applied: Vec::new(),
                reads: Vec::new(),
                sent: Vec::new(),
                snapshots_received: 0,
                violations: Vec::new(),
            },
        );
    }

    /// Restarts `id` from its disk, as after a crash.
    pub fn restart(&mut self, id: NodeId, cfg: Config) {
        let node = self.nodes.get_mut(&id).expect("node");
        node.raft = Raft::new(cfg, node.disk.initial_state()).expect("recovered state");
        node.applied.clear();
    }

    pub fn raft(&mut self, id: NodeId) -> &mut Raft {
        &mut self.nodes.get_mut(&id).expect("node").raft
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[&id]
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut(&mut self, a: NodeId, b: NodeId) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    /// Cuts `id` off from everyone.
    pub fn isolate(&mut self, id: NodeId) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for other in ids {
            if other != id {
                self.cut(id, other);
            }
        }
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Runs `id`'s Ready loop (persist, apply, advance) and returns what it sends.
    pub fn drain(&mut self, id: NodeId) -> Vec<Message> {
        let node = self.nodes.get_mut(&id).expect("node");
        let mut out = Vec::new();
        while node.raft.has_ready() {
            let rd = node.raft.ready();
            node.disk.persist(&rd);
            if rd.snapshot.is_some() {
                node.snapshots_received += 1;
            }
            node.applied.extend(rd.committed_entries.iter().cloned());
            node.reads.extend(rd.read_states.iter().cloned());
            node.violations.extend(rd.violations.iter().cloned());
            out.extend(rd.messages.iter().cloned());
            node.raft.advance(rd);
        }
        node.sent.extend(out.iter().cloned());
        out
    }

    /// Collects every node's outgoing messages.
    pub fn drain_all(&mut self) -> Vec<Message> {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        ids.into_iter().flat_map(|id| self.drain(id)).collect()
    }

    /// Delivers `msgs`, and everything they cause, until the cluster is quiet.
    pub fn send(&mut self, msgs: Vec<Message>) {
        let mut queue: VecDeque<Message> = msgs.into();
        queue.extend(self.drain_all());
        let mut budget = 100_000;
        while let Some(m) = queue.pop_front() {
            budget -= 1;
            assert!(budget > 0, "the cluster never went quiet");
            if self.cut.contains(&(m.from, m.to)) || !self.nodes.contains_key(&m.to) {
                continue;
            }
            if let Some(f) = self.filter.as_mut() {
                if !f(&m) {
                    continue;
                }
            }
            self.delivered.push(m.clone());
            let to = m.to;
            self.raft(to)
                .step(m)
                .expect("a correct peer's message is accepted");
            queue.extend(self.drain(to));
        }
    }

    /// Delivers what is pending until quiet.
    pub fn stabilize(&mut self) {
        self.send(Vec::new());
    }

    /// Ticks `id` until it starts a campaign, then lets the election finish.
    pub fn campaign(&mut self, id: NodeId) {
        for _ in 0..100 {
            let before = self.raft(id).status().role;
            if before != Role::Follower {
                break;
            }
            self.raft(id).tick();
        }
        self.stabilize();
    }

    /// Ticks every node once and delivers the consequences.
    pub fn tick_all(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.raft(id).tick();
        }
        self.stabilize();
    }

    /// Proposes `data` at `id` and delivers the consequences.
    pub fn propose(&mut self, id: NodeId, data: &[u8]) -> u64 {
        let idx = self
            .raft(id)
            .propose(data.to_vec())
            .expect("leader accepts the proposal");
        self.stabilize();
        idx
    }

    /// The data of the normal, non-empty entries `id` applied.
    pub fn applied_data(&self, id: NodeId) -> Vec<Vec<u8>> {
        self.nodes[&id]
            .applied
            .iter()
            .filter(|e| e.kind == EntryKind::Normal && !e.data.is_empty())
            .map(|e| e.data.clone())
            .collect()
    }

    /// The (index, term) of every entry in `id`'s in-memory log.
    pub fn log_terms(&self, id: NodeId) -> Vec<(u64, u64)> {
        self.nodes[&id]
            .raft
            .raft_log()
            .entries()
            .iter()
            .map(|e| (e.index, e.term))
            .collect()
    }
}

/// The test config changed by `f`, for [`Net::new`].
pub fn with(f: impl Fn(&mut Config)) -> impl Fn(u64) -> Config {
    move |id| {
        let mut c = config(id);
        f(&mut c);
        c
    }
}

/// With lease reads, fresh nodes ignore votes for most of an election
/// timeout (they may have promised a lease before a restart): age them first.
pub fn lease_leader(net: &mut Net, id: u64) {
    let ids: Vec<u64> = net.nodes.keys().copied().filter(|&n| n != id).collect();
    for _ in 0..9 {
        for &n in &ids {
            net.raft(n).tick();
        }
    }
    leader(net, id);
}

/// Elects `id` and lets a heartbeat round settle.
pub fn leader(net: &mut Net, id: u64) {
    net.campaign(id);
    assert_eq!(net.raft(id).status().role, Role::Leader);
    net.tick_all();
}

/// A message to `to` from `from` in `term`.
pub fn msg(from: NodeId, to: NodeId, term: u64, kind: MessageKind) -> Message {
    Message {
        from,
        to,
        term,
        kind,
    }
}

/// An entry with empty data.
pub fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        kind: EntryKind::Normal,
        data: Vec::new(),
    }
}

/// A core recovered with the given log and term, for the paper's log scenarios.
pub fn node_with_log(
    _id: NodeId,
    voters: &[NodeId],
    terms: &[u64],
    term: u64,
    cfg: Config,
) -> Raft {
    let hs = raft_node::raft::HardState {
        term,
        vote: 0,
        commit: 0,
    };
    recovered_node(voters, terms, hs, cfg)
}

/// A core recovered with entries 1.. of the given terms and hard state.
pub fn recovered_node(
    voters: &[NodeId],
    terms: &[u64],
    hard_state: raft_node::raft::HardState,
    cfg: Config,
) -> Raft {
    let entries: Vec<Entry> = terms
        .iter()
        .enumerate()
        .map(|(i, &t)| entry(i as u64 + 1, t))
        .collect();
    let init = InitialState {
        hard_state,
        conf: ConfState {
            voters: voters.to_vec(),
            ..Default::default()
        },
        snapshot: None,
        entries,
    };
    Raft::new(cfg, init).expect("valid state")
}

/// A follower's acceptance of entries up to `index`.
pub fn ack(index: u64) -> MessageKind {
    MessageKind::accept(index)
}

/// Takes the messages out of `r`'s next Ready (and advances it).
pub fn read_messages(r: &mut Raft) -> Vec<Message> {
    let mut out = Vec::new();
    while r.has_ready() {
        let rd = r.ready();
        out.extend(rd.messages.iter().cloned());
        r.advance(rd);
    }
    out
}

/// An AppendEntries from the leader.
pub fn append(
    prev_log_index: u64,
    prev_log_term: u64,
    entries: Vec<Entry>,
    commit: u64,
) -> MessageKind {
    MessageKind::AppendEntries {
        prev_log_index,
        prev_log_term,
        entries,
        commit,
        heartbeat: false,
        context: Vec::new(),
    }
}
