//! The event loop that drives the Raft core. One task owns the core, the
//! storage and the state machine; everything else talks to it through a
//! channel. Each round drains every queued request before it calls
//! `ready()`, so many proposals share one write and one fdatasync (group
//! commit), and the messages of a round leave only after that sync (but a
//! leader's AppendEntries, which leave before it).

use crate::bugs::{Bug, Bugs};
use crate::failpoint::{self, Failpoint};
use crate::kv::{self, KvStore};
use crate::loop_api::{AdminOp, LeaderHint, NodeStatus, ReadOutcome, Request, WriteOutcome};
use crate::raft::invariant;
use crate::raft::{
    ConfChange, Entry, EntryKind, HardState, Message, MessageKind, NodeId, Raft, RaftError,
    ReadState, Ready, Snapshot, Violation,
};
use crate::reporting::{self, RoleView, RoleWatch, ViolationLog};
use crate::storage::Storage;
use crate::transport::Transport;
use crate::write_path_trace as trace;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Applied entries between two `applied-digest` events (only written with
/// an events file).
pub const DIGEST_EVERY: u64 = 100;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;

/// Ticks missed by a late wake-up that are caught up at once, at most.
const MAX_TICK_CATCH_UP: u32 = 10;

/// How many queued requests one round takes at most before it persists.
const MAX_BATCH: usize = 8192;

/// Settings of the loop that are not the core's.
pub struct LoopConfig {
    pub tick: Duration,
    /// Take a snapshot every this many applied entries (0: never).
    pub snapshot_every: u64,
    pub bugs: Bugs,
}

/// A write waiting for its entry to be applied.
struct PendingWrite {
    term: u64,
    reply: oneshot::Sender<WriteOutcome>,
    /// For an admin call: nothing to compute on apply.
    admin: bool,
}

/// Reads that share one ReadIndex round.
type ReadBatch = Vec<(String, oneshot::Sender<ReadOutcome>)>;

/// The loop's state: the core and everything it drives.
pub struct NodeLoop {
    raft: Raft,
    storage: Storage,
    kv: KvStore,
    transport: Transport,
    cfg: LoopConfig,
    id: NodeId,
    applied: u64,
    last_snapshot: u64,
    leader: NodeId,
    is_leader: bool,
    pending_writes: BTreeMap<u64, PendingWrite>,
    /// Writes acknowledged early (`--bug early-ack`) once the local append is durable.
    early_acks: Vec<(u64, oneshot::Sender<WriteOutcome>, kv::WriteResult)>,
    next_read_ctx: u64,
    reads_awaiting_index: HashMap<u64, ReadBatch>,
    reads_awaiting_apply: BTreeMap<u64, Vec<ReadBatch>>,
    new_reads: ReadBatch,
    roles: RoleWatch,
    violations: ViolationLog,
}

impl NodeLoop {
    /// Builds the loop around a recovered core, storage and state machine.
    pub fn new(
        id: NodeId,
        raft: Raft,
        storage: Storage,
        kv: KvStore,
        applied: u64,
        transport: Transport,
        cfg: LoopConfig,
    ) -> Self {
        NodeLoop {
            raft,
            storage,
            kv,
            transport,
            cfg,
            id,
            applied,
            last_snapshot: applied,
            leader: 0,
            is_leader: false,
            pending_writes: BTreeMap::new(),
            early_acks: Vec::new(),
            next_read_ctx: 1,
            reads_awaiting_index: HashMap::new(),
            reads_awaiting_apply: BTreeMap::new(),
            new_reads: Vec::new(),
            roles: RoleWatch::default(),
            violations: ViolationLog::default(),
        }
    }

    /// Runs until every sender of `rx` is gone. A storage error is fatal:
    /// a node that cannot persist must stop rather than answer.
    ///
    /// The loop is a task on the node's tokio runtime, not a thread of its
    /// own: a request from a gRPC handler or a message from a peer stream wakes
    /// it on the same worker thread (tokio's LIFO slot), where a separate
    /// thread cost a cross-thread wake-up per hop (about 40-50 us each on
    /// a 2-core VM, four of them on a write's critical path). Its fsync
    /// hands the worker's other tasks to another thread while it blocks
    /// ([`crate::blocking::off_worker`]), so the network is served
    /// meanwhile whatever the number of workers.
    pub async fn run(mut self, mut rx: UnboundedReceiver<Request>) -> anyhow::Result<()> {
        let mut next_tick = Instant::now() + self.cfg.tick;
        loop {
            tokio::select! {
                biased;
                req = rx.recv() => match req {
                    Some(req) => {
                        self.handle(req);
                        for _ in 0..MAX_BATCH {
                            match rx.try_recv() {
                                Ok(req) => self.handle(req),
                                Err(_) => break,
                            }
                        }
                    }
                    None => return Ok(()),
                },
                _ = tokio::time::sleep_until(next_tick.into()) => {}
            }
            // Logical time follows the wall clock: ticks missed by a late
            // wake-up (a busy machine, a long fsync) are caught up, so that
            // election and heartbeat timeouts keep their length. After a
            // long stall (SIGSTOP) the backlog is dropped rather than
            // replayed in one burst.
            let now = Instant::now();
            let mut caught_up = 0;
            while now >= next_tick && caught_up < MAX_TICK_CATCH_UP {
                self.raft.tick();
                next_tick += self.cfg.tick;
                caught_up += 1;
            }
            if now >= next_tick {
                next_tick = now + self.cfg.tick;
            }
            self.start_reads();
            while self.raft.has_ready() {
                let rd = self.raft.ready();
                self.on_ready(rd)?;
            }
        }
    }

    fn hint(&self) -> LeaderHint {
        let addr = self
            .transport
            .addr(self.leader)
            .unwrap_or_default()
            .to_string();
        LeaderHint {
            id: self.leader,
            addr,
        }
    }

    fn handle(&mut self, req: Request) {
        match req {
            Request::Peer(m) => {
                match m.kind {
                    MessageKind::AppendEntries { .. } => trace::mark("loop-got-append"),
                    MessageKind::AppendEntriesResponse { .. } => trace::mark("loop-got-ack"),
                    _ => {}
                }
                if let Err(e) = self.raft.step(m) {
                    tracing::debug!(error = ?e, "peer message refused");
                }
            }
            Request::Write { cmd, reply } => {
                trace::mark("loop-got-write");
                self.propose(cmd, reply)
            }
            Request::Read { key, reply } => {
                if self.cfg.bugs.has(Bug::StaleRead) {
                    // The defect: no ReadIndex, no leader check.
                    let v = self.kv.get(&key).map(|v| v.to_vec());
                    let _ = reply.send(ReadOutcome::Value(v));
                } else {
                    self.new_reads.push((key, reply));
                }
            }
            Request::Admin { op, reply } => self.admin(op, reply),
            Request::Status { reply } => {
                let _ = reply.send(self.status());
            }
        }
    }

    fn propose(&mut self, cmd: Vec<u8>, reply: oneshot::Sender<WriteOutcome>) {
        let early = if self.cfg.bugs.has(Bug::EarlyAck) {
            kv::Command::decode(&cmd)
                .ok()
                .map(|c| self.kv.evaluate(&c.op))
        } else {
            None
        };
        match self.raft.propose(cmd) {
            Ok(index) => {
                let term = self.entry_term(index);
                match early {
                    Some(result) => self.early_acks.push((index, reply, result)),
                    None => {
                        self.pending_writes.insert(
                            index,
                            PendingWrite {
                                term,
                                reply,
                                admin: false,
                            },
                        );
                    }
                }
            }
            Err(e) => {
                let _ = reply.send(self.refusal(e));
            }
        }
    }

    /// The term of the entry just appended at `index`.
    fn entry_term(&self, index: u64) -> u64 {
        self.raft.raft_log().term(index).unwrap_or_default()
    }

    /// A proposal the core refused was never appended: a certain "not done".
    fn refusal(&self, e: RaftError) -> WriteOutcome {
        match e {
            RaftError::NotLeader { .. } => WriteOutcome::NotLeader(self.hint()),
            other => WriteOutcome::Unavailable(format!("{other:?}")),
        }
    }

    fn admin(&mut self, op: AdminOp, reply: oneshot::Sender<WriteOutcome>) {
        let cc = match op {
            AdminOp::TransferLeader(to) => {
                let out = match self.raft.transfer_leader(to) {
                    Ok(()) => WriteOutcome::Applied {
                        index: 0,
                        result: no_result(0),
                    },
                    Err(e) => self.refusal(e),
                };
                let _ = reply.send(out);
                return;
            }
            AdminOp::AddVoter(id, addr) => ConfChange::AddVoter {
                id,
                context: addr.into_bytes(),
            },
            AdminOp::AddLearner(id, addr) => ConfChange::AddLearner {
                id,
                context: addr.into_bytes(),
            },
            AdminOp::Remove(id) => ConfChange::Remove { id },
        };
        match self.raft.propose_conf_change(cc) {
            Ok(index) => {
                let term = self.entry_term(index);
                self.pending_writes.insert(
                    index,
                    PendingWrite {
                        term,
                        reply,
                        admin: true,
                    },
                );
            }
            Err(e) => {
                let _ = reply.send(self.refusal(e));
            }
        }
    }

    /// Starts one ReadIndex round for every read that arrived this round.
    fn start_reads(&mut self) {
        if self.new_reads.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.new_reads);
        let ctx = self.next_read_ctx;
        self.next_read_ctx += 1;
        match self.raft.read_index(ctx.to_be_bytes().to_vec()) {
            Ok(()) => {
                self.reads_awaiting_index.insert(ctx, batch);
            }
            Err(e) => {
                let out = |h: &LeaderHint| match &e {
                    RaftError::NotLeader { .. } => ReadOutcome::NotLeader(h.clone()),
                    other => ReadOutcome::Unavailable(format!("{other:?}")),
                };
                let h = self.hint();
                for (_, reply) in batch {
                    let _ = reply.send(out(&h));
                }
            }
        }
    }

    fn on_ready(&mut self, mut rd: Ready) -> anyhow::Result<()> {
        if rd.soft_state.is_some() || rd.hard_state.is_some() {
            // Role, term and leader only change with one of these.
            self.roles.observe(RoleView::of(&self.raft));
        }
        if let Some(ss) = &rd.soft_state {
            self.on_soft_state(ss.leader);
        }
        for v in &rd.violations {
            self.violations.report(v);
        }
        let rest = self.send_appends_before_persisting(&mut rd);
        // Entries that replace part of the durable log (not after a
        // snapshot, which resets it): an overwrite, a hard moment to crash.
        let durable_last = self.storage.last_index();
        let overwrote =
            rd.snapshot.is_none() && rd.entries.first().is_some_and(|e| e.index <= durable_last);
        self.persist(&rd)?;
        self.release_early_acks();
        if let Some(conf) = &rd.conf {
            tracing::info!(voters = ?conf.voters, learners = ?conf.learners, "membership changed");
        }
        // Entries past what the node knows committed (the ack is what the
        // leader may count to commit them), or an overwrite; catching up
        // on committed entries is not a hard moment.
        let committed = self.raft.raft_log().committed();
        let past_commit = rd.entries.last().is_some_and(|e| e.index > committed);
        let round = failpoint::Round {
            granted_vote: failpoint::grants_vote(&rest),
            acked_append: (past_commit || overwrote) && failpoint::acks_append(&rest),
        };
        for m in rest {
            if matches!(m.kind, MessageKind::AppendEntriesResponse { .. }) {
                trace::mark("loop-sent-ack");
            }
            self.transport.send(m);
        }
        failpoint::after_round(round);
        if !rd.committed_entries.is_empty() {
            failpoint::hit(Failpoint::CrashBeforeApply);
        }
        for e in &rd.committed_entries {
            self.apply(e)?;
        }
        self.queue_released_reads(&rd.read_states);
        self.serve_reads();
        self.raft.advance(rd);
        self.maybe_snapshot()?;
        Ok(())
    }

    /// Leadership moved: pending reads can no longer be confirmed here.
    fn on_soft_state(&mut self, leader: NodeId) {
        self.leader = leader;
        let was_leader = self.is_leader;
        self.is_leader = leader == self.id;
        if was_leader && !self.is_leader {
            tracing::info!(leader, "lost leadership");
            // Reads not yet confirmed by a quorum can no longer be.
            for (_, batch) in self.reads_awaiting_index.drain() {
                for (_, reply) in batch {
                    let _ = reply.send(ReadOutcome::Unavailable("leadership lost".into()));
                }
            }
        } else if !was_leader && self.is_leader {
            // Old run folders are checked for election safety by this line.
            tracing::info!(term = self.raft.status().term, "became leader");
        }
    }

    /// A leader's AppendEntries may leave before its own append is durable
    /// (Raft thesis 10.2.1): the leader's term was persisted when it
    /// campaigned, and no follower's ack is processed before this round's
    /// fsync completes, so an entry is never counted as replicated on the
    /// leader before it is on the leader's disk. Returns every other
    /// message (votes, acks, and appends that must wait: see
    /// [`split_early_appends`]), which waits for the fsync.
    fn send_appends_before_persisting(&mut self, rd: &mut Ready) -> Vec<Message> {
        let msgs = std::mem::take(&mut rd.messages);
        if !self.is_leader {
            return msgs;
        }
        // Every earlier round that appended entries synced them (entries
        // make a Ready `must_sync`), so the log's last index is durable.
        let (early, rest) = split_early_appends(msgs, self.storage.last_index());
        for m in early {
            trace::mark("loop-sent-append");
            self.transport.send(m);
        }
        rest
    }

    /// Makes the Ready's snapshot, entries and hard state durable.
    fn persist(&mut self, rd: &Ready) -> anyhow::Result<()> {
        if let Some(snap) = &rd.snapshot {
            self.install_snapshot(snap)?;
        }
        if !rd.entries.is_empty() {
            self.storage.append(&rd.entries)?;
            self.learn_addresses(&rd.entries);
        }
        if let Some(hs) = rd.hard_state {
            self.storage
                .set_hard_state(self.hard_state_to_persist(hs))?;
        }
        if rd.must_sync() {
            trace::mark("loop-fsync-start");
            let storage = &mut self.storage;
            crate::blocking::off_worker(|| storage.sync())?;
            trace::mark("loop-fsync-done");
        }
        Ok(())
    }

    /// The defect of --bug early-ack: the local append is durable, a
    /// majority may not have it, and the client is told "ok" anyway.
    fn release_early_acks(&mut self) {
        if self.early_acks.is_empty() {
            return;
        }
        let last = self.storage.last_index();
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.early_acks)
            .into_iter()
            .partition(|(i, _, _)| *i <= last);
        self.early_acks = later;
        for (index, reply, result) in now {
            let _ = reply.send(WriteOutcome::Applied { index, result });
        }
    }

    /// Confirmed reads wait until the state machine reaches their index.
    fn queue_released_reads(&mut self, read_states: &[ReadState]) {
        for rs in read_states {
            let mut b = [0u8; 8];
            if rs.ctx.len() == 8 {
                b.copy_from_slice(&rs.ctx);
            }
            if let Some(batch) = self.reads_awaiting_index.remove(&u64::from_be_bytes(b)) {
                self.reads_awaiting_apply
                    .entry(rs.index)
                    .or_default()
                    .push(batch);
            }
        }
    }

    /// The hard state as written to disk; `--bug forget-vote` drops the vote.
    fn hard_state_to_persist(&self, hs: HardState) -> HardState {
        if self.cfg.bugs.has(Bug::ForgetVote) {
            HardState { vote: 0, ..hs }
        } else {
            hs
        }
    }

    fn install_snapshot(&mut self, snap: &Snapshot) -> anyhow::Result<()> {
        if snap.meta.index < self.applied {
            // Refused: the state machine would go back in time.
            let applied = self.applied;
            self.violations.report(&Violation::new(
                invariant::SNAPSHOT_ROLLS_BACK_APPLIED,
                format!(
                    "a snapshot at index {} would replace a state machine that applied {applied}",
                    snap.meta.index
                ),
                &[("index", snap.meta.index), ("applied", applied)],
            ));
            return Ok(());
        }
        tracing::info!(
            index = snap.meta.index,
            term = snap.meta.term,
            "installing snapshot from leader"
        );
        self.storage.install_snapshot(snap)?;
        self.kv.restore(&snap.data)?;
        self.applied = snap.meta.index;
        self.last_snapshot = snap.meta.index;
        // Whatever was pending at or below the snapshot was decided
        // elsewhere; this node cannot tell how.
        let rest = self.pending_writes.split_off(&(snap.meta.index + 1));
        for (_, p) in std::mem::replace(&mut self.pending_writes, rest) {
            let _ = p
                .reply
                .send(WriteOutcome::Unknown("superseded by a snapshot".into()));
        }
        Ok(())
    }

    /// Learns the address of every node that a membership change in
    /// `entries` adds: a change takes effect when appended, so the address
    /// must be known before the entry commits.
    pub fn learn_addresses(&mut self, entries: &[Entry]) {
        for e in entries.iter().filter(|e| e.kind == EntryKind::ConfChange) {
            if let Ok(
                ConfChange::AddVoter { id, context } | ConfChange::AddLearner { id, context },
            ) = ConfChange::decode(&e.data)
            {
                if id != self.id && !context.is_empty() {
                    if let Ok(addr) = String::from_utf8(context) {
                        self.transport.set_peer(id, addr);
                    }
                }
            }
        }
    }

    fn apply(&mut self, e: &Entry) -> anyhow::Result<()> {
        if e.index <= self.applied {
            // Already in the state (after a refused snapshot rollback).
            return Ok(());
        }
        if e.index != self.applied + 1 {
            // Refused: applying it would skip the entries in between.
            let applied = self.applied;
            self.violations.report(&Violation::new(
                invariant::APPLY_OUT_OF_ORDER,
                format!("entry {} handed out to apply after {applied}", e.index),
                &[("index", e.index), ("applied", applied)],
            ));
            return Ok(());
        }
        let result = match e.kind {
            EntryKind::Normal => self.kv.apply(e.index, &e.data),
            EntryKind::ConfChange => {
                self.kv.skip(e.index);
                kv::ApplyResult::Noop
            }
        };
        self.applied = e.index;
        if e.index.is_multiple_of(DIGEST_EVERY) && crate::events::enabled() {
            self.emit_digest(e);
        }
        if let Some(p) = self.pending_writes.remove(&e.index) {
            let out = if p.term != e.term {
                // Another leader's entry took this index: ours was dropped,
                // but say "unknown" rather than guess.
                WriteOutcome::Unknown("entry replaced by another leader".into())
            } else if p.admin {
                WriteOutcome::Applied {
                    index: e.index,
                    result: no_result(e.index),
                }
            } else {
                match result {
                    kv::ApplyResult::Applied(r) | kv::ApplyResult::Duplicate(r) => {
                        WriteOutcome::Applied {
                            index: e.index,
                            result: r,
                        }
                    }
                    kv::ApplyResult::SessionExpired { .. } => WriteOutcome::Unknown(
                        "client session expired: the write may have been applied before".into(),
                    ),
                    kv::ApplyResult::Malformed(err) => {
                        WriteOutcome::Unavailable(format!("malformed command: {err}"))
                    }
                    kv::ApplyResult::Noop | kv::ApplyResult::AlreadyApplied => {
                        WriteOutcome::Unknown("entry applied without a result".into())
                    }
                }
            };
            trace::mark("loop-replied");
            let _ = p.reply.send(out);
        }
        Ok(())
    }

    /// Reports a digest of the whole state machine after applying `e`: a
    /// deterministic state machine fed the same committed entries is the
    /// same on every replica at the same index (State Machine Safety), so
    /// digests that differ at one index, across nodes or across restarts
    /// of one node, mean some replica applied something else there. The
    /// checkers compare them (`replicas-diverged`).
    fn emit_digest(&self, e: &Entry) {
        crate::events::emit(
            "applied-digest",
            &[
                ("index", e.index.into()),
                ("term", e.term.into()),
                ("digest", format!("{:016x}", self.kv.digest()).into()),
            ],
        );
    }

    fn serve_reads(&mut self) {
        let later = self.reads_awaiting_apply.split_off(&(self.applied + 1));
        for (_, batches) in std::mem::replace(&mut self.reads_awaiting_apply, later) {
            for batch in batches {
                for (key, reply) in batch {
                    let _ = reply.send(ReadOutcome::Value(self.kv.get(&key).map(|v| v.to_vec())));
                }
            }
        }
    }

    fn maybe_snapshot(&mut self) -> anyhow::Result<()> {
        let every = self.cfg.snapshot_every;
        if every == 0 || self.applied < self.last_snapshot + every {
            return Ok(());
        }
        // The core works out the snapshot's term and membership at `applied`.
        self.raft.compact(self.applied, self.kv.snapshot())?;
        let snap = self
            .raft
            .raft_log()
            .snapshot()
            .expect("compact keeps the snapshot");
        let storage = &mut self.storage;
        crate::blocking::off_worker(|| storage.save_snapshot(snap))?;
        self.last_snapshot = self.applied;
        tracing::info!(index = self.applied, "snapshot taken, log compacted");
        Ok(())
    }

    fn status(&self) -> NodeStatus {
        let st = self.raft.status();
        NodeStatus {
            id: self.id,
            role: reporting::role_name(st.role, &st.conf, st.id).to_string(),
            term: st.term,
            leader_id: st.leader,
            commit: st.commit,
            applied: self.applied,
            last_index: st.last_index,
            snapshot_index: st.snapshot_index,
            conf: st.conf.clone(),
            state_digest: self.kv.digest(),
        }
    }
}

/// Splits a leader's messages into the appends that may leave before this
/// round's fsync and the rest, in order. An append whose commit index is
/// beyond what is already durable here (`durable_last`) waits: when the
/// leader alone is a quorum (one voter, learners beside it) it commits an
/// entry the moment it appends it, and an early append would tell a
/// learner that entries are committed which a crash before the fsync then
/// loses from the leader, whose next entries at those indexes the learner
/// refuses (`append-conflicts-with-commit`, found by a fault campaign:
/// membership changes had left one voter). With more voters the commit
/// index needs an ack, processed only after the leader's own fsync, so
/// appends still leave early. Once an append to a peer waits, the later
/// appends to that peer wait too, so that it gets them in the order the
/// core made them.
fn split_early_appends(msgs: Vec<Message>, durable_last: u64) -> (Vec<Message>, Vec<Message>) {
    let mut early = Vec::with_capacity(msgs.len());
    let mut rest = Vec::new();
    let mut held: Vec<NodeId> = Vec::new();
    for m in msgs {
        let MessageKind::AppendEntries { commit, .. } = m.kind else {
            rest.push(m);
            continue;
        };
        if commit <= durable_last && !held.contains(&m.to) {
            early.push(m);
        } else {
            held.push(m.to);
            rest.push(m);
        }
    }
    (early, rest)
}

/// The result of a call that has no state-machine answer (admin calls).
fn no_result(index: u64) -> kv::WriteResult {
    kv::WriteResult {
        index,
        succeeded: true,
        value: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{Command, Op};
    use crate::raft::{ConfState, Config, InitialState, SnapshotMeta};
    use crate::storage::StorageOptions;

    fn put(key: &str) -> Vec<u8> {
        Command {
            session: None,
            op: Op::Put {
                key: key.into(),
                value: b"v".to_vec(),
            },
        }
        .encode()
    }

    /// A one-node loop whose state machine applied `applied` puts.
    fn node_loop(dir: &std::path::Path, applied: u64) -> NodeLoop {
        let (storage, _) = Storage::open(dir, 1, 1, StorageOptions::default()).unwrap();
        let mut kv = KvStore::new();
        for i in 1..=applied {
            kv.apply(i, &put(&format!("k{i}")));
        }
        let init = InitialState {
            conf: ConfState {
                voters: vec![1],
                ..Default::default()
            },
            ..Default::default()
        };
        let raft = Raft::new(Config::default(), init).unwrap();
        let transport = Transport::new(1, tokio::runtime::Handle::current());
        let cfg = LoopConfig {
            tick: Duration::from_millis(10),
            snapshot_every: 0,
            bugs: Bugs::NONE,
        };
        NodeLoop::new(1, raft, storage, kv, applied, transport, cfg)
    }

    fn append(to: NodeId, commit: u64) -> Message {
        Message {
            from: 1,
            to,
            term: 2,
            kind: MessageKind::AppendEntries {
                prev_log_index: 0,
                prev_log_term: 0,
                entries: Vec::new(),
                commit,
                heartbeat: false,
                context: Vec::new(),
            },
        }
    }

    fn recipients(msgs: &[Message]) -> Vec<(NodeId, u64)> {
        msgs.iter()
            .map(|m| match m.kind {
                MessageKind::AppendEntries { commit, .. } => (m.to, commit),
                _ => (m.to, u64::MAX),
            })
            .collect()
    }

    #[test]
    fn an_append_announcing_a_commit_not_yet_durable_waits_for_the_fsync_and_the_peers_later_ones_with_it(
    ) {
        let (early, rest) = split_early_appends(
            vec![append(2, 5), append(3, 7), append(2, 5), append(3, 6)],
            6,
        );
        assert_eq!(recipients(&early), vec![(2, 5), (2, 5)]);
        assert_eq!(recipients(&rest), vec![(3, 7), (3, 6)]);
    }

    /// What every other node answers to `m` as a healthy peer would: a
    /// granted vote, an append matched through its last entry.
    fn answer(m: &Message) -> Option<Message> {
        let kind = match &m.kind {
            MessageKind::RequestVote { pre_vote, .. } => MessageKind::RequestVoteResponse {
                pre_vote: *pre_vote,
                granted: true,
            },
            MessageKind::AppendEntries {
                prev_log_index,
                entries,
                heartbeat,
                context,
                ..
            } => MessageKind::AppendEntriesResponse {
                reject: false,
                index: entries.last().map_or(*prev_log_index, |e| e.index),
                conflict_term: 0,
                conflict_index: 0,
                heartbeat: *heartbeat,
                context: context.clone(),
            },
            _ => return None,
        };
        Some(Message {
            from: m.to,
            to: m.from,
            term: m.term,
            kind,
        })
    }

    /// A core with node 1 leading `conf`, every round persisted and
    /// answered; returns it and its last durable index.
    fn leader_of(conf: ConfState) -> (Raft, u64) {
        let init = InitialState {
            conf,
            ..Default::default()
        };
        let mut raft = Raft::new(Config::default(), init).unwrap();
        let mut durable = 0;
        for _ in 0..100 {
            raft.tick();
            while raft.has_ready() {
                let rd = raft.ready();
                if let Some(e) = rd.entries.last() {
                    durable = e.index;
                }
                let answers: Vec<Message> = rd.messages.iter().filter_map(answer).collect();
                raft.advance(rd);
                for a in answers {
                    let _ = raft.step(a);
                }
            }
            if raft.status().role == crate::raft::Role::Leader {
                return (raft, durable);
            }
        }
        panic!("node 1 was not elected");
    }

    /// The campaign's finding, on the core: one voter and a learner. The
    /// leader commits its entry the moment it appends it; the append that
    /// carries that commit to the learner must not leave before the fsync.
    #[test]
    fn a_sole_voter_does_not_tell_its_learner_of_a_commit_before_its_own_fsync() {
        let (mut raft, durable) = leader_of(ConfState {
            voters: vec![1],
            learners: vec![2],
            ..Default::default()
        });
        let index = raft.propose(put("k")).unwrap();
        let rd = raft.ready();
        assert!(rd.entries.iter().any(|e| e.index == index));
        assert!(
            raft.raft_log().committed() >= index,
            "a sole voter commits at once"
        );
        let (early, rest) = split_early_appends(rd.messages.clone(), durable);
        assert!(
            early.iter().all(|m| match m.kind {
                MessageKind::AppendEntries { commit, .. } => commit <= durable,
                _ => false,
            }),
            "nothing early announces a commit beyond {durable}: {early:?}"
        );
        assert!(
            rest.iter().any(|m| m.to == 2),
            "the learner's append waits for the fsync: {rest:?}"
        );
    }

    /// With three voters nothing is committed before an ack, so a new
    /// entry's append still leaves before the leader's fsync.
    #[test]
    fn with_three_voters_a_new_entrys_append_still_leaves_before_the_fsync() {
        let (mut raft, durable) = leader_of(ConfState {
            voters: vec![1, 2, 3],
            ..Default::default()
        });
        let index = raft.propose(put("k")).unwrap();
        let rd = raft.ready();
        let (early, rest) = split_early_appends(rd.messages.clone(), durable);
        let carries = |m: &Message| match &m.kind {
            MessageKind::AppendEntries { entries, .. } => entries.iter().any(|e| e.index == index),
            _ => false,
        };
        assert_eq!(
            early.iter().filter(|m| carries(m)).count(),
            2,
            "both followers get the new entry early: {early:?}"
        );
        assert!(rest.iter().all(|m| !carries(m)));
    }

    #[tokio::test]
    async fn a_snapshot_older_than_the_applied_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = node_loop(dir.path(), 5);
        let before = n.kv.snapshot();
        let old = Snapshot {
            meta: SnapshotMeta {
                index: 3,
                term: 1,
                conf: ConfState::default(),
            },
            data: KvStore::new().snapshot(),
        };
        n.install_snapshot(&old).unwrap();
        assert_eq!(n.applied, 5);
        assert_eq!(
            n.kv.snapshot(),
            before,
            "the state machine was not rolled back"
        );
        assert_eq!(
            n.storage.snapshot_index_term(),
            (0, 0),
            "nothing was installed"
        );
    }

    #[tokio::test]
    async fn an_entry_that_skips_indexes_is_not_applied() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = node_loop(dir.path(), 5);
        let gap = Entry {
            index: 7,
            term: 1,
            kind: EntryKind::Normal,
            data: put("late"),
        };
        n.apply(&gap).unwrap();
        assert_eq!(n.applied, 5);
        assert_eq!(n.kv.get("late"), None);
        let next = Entry { index: 6, ..gap };
        n.apply(&next).unwrap();
        assert_eq!((n.applied, n.kv.get("late")), (6, Some(&b"v"[..])));
    }
}
