//! The Raft algorithm: one struct, one `step` dispatch by role, logical time.

use std::collections::{BTreeMap, HashMap};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::conf::{self, ConfChange};
use super::config::Config;
use super::error::RaftError;
use super::invariant::{self, Violation};
use super::message::{Message, MessageKind};
use super::progress::{Progress, ProgressState};
use super::quorum::{self, VoteResult};
use super::raft_log::RaftLog;
use super::read_only::{self, ReadOnly, ReadState};
use super::ready::{Ready, Role, SoftState, Status};
use super::types::{ConfState, Entry, EntryKind, HardState, NodeId, Snapshot, SnapshotMeta};
use crate::bugs::Bug;

/// What the node recovered from disk.
#[derive(Debug, Clone, Default)]
pub struct InitialState {
    /// The last durable term, vote and commit.
    pub hard_state: HardState,
    /// Membership as of the snapshot, or the bootstrap configuration (empty
    /// for a node that waits to be added by a running cluster). Ignored when
    /// `snapshot` is given: its own configuration is used.
    pub conf: ConfState,
    /// The latest snapshot (meta and data), if any. The caller restores its
    /// state machine from it itself; the core keeps it to send to followers.
    pub snapshot: Option<Snapshot>,
    /// The durable log after the snapshot.
    pub entries: Vec<Entry>,
}

/// A Raft node's consensus state. Drive it with [`Raft::tick`],
/// [`Raft::step`], [`Raft::propose`] and [`Raft::read_index`]; drain it with
/// [`Raft::ready`] and [`Raft::advance`].
pub struct Raft {
    id: NodeId,
    cfg: Config,
    term: u64,
    vote: NodeId,
    leader: NodeId,
    role: Role,
    log: RaftLog,
    /// The membership in effect: the latest change in the log.
    conf: ConfState,
    /// The membership as of the snapshot point.
    conf_base: ConfState,
    /// Each membership change in the log after the snapshot: (index, result).
    conf_history: Vec<(u64, ConfState)>,
    conf_changed: bool,
    /// Leader only: one per member.
    prs: BTreeMap<NodeId, Progress>,
    votes: HashMap<NodeId, bool>,
    msgs: Vec<Message>,
    election_elapsed: u64,
    heartbeat_elapsed: u64,
    randomized_election_timeout: u64,
    rng: SmallRng,
    lead_transferee: NodeId,
    /// Ticks since the transfer started; it is abandoned after an election timeout.
    transfer_elapsed: u64,
    /// Ticks since this node became leader (the lease clock).
    leader_ticks: u64,
    /// Whether the current candidacy was started by a leadership transfer
    /// (its vote requests, retries included, may cut a lease short).
    campaign_transfer: bool,
    /// Ticks since this core was built, up to an election timeout.
    ticks_since_start: u64,
    read_only: ReadOnly,
    /// Reads that arrived before the leader committed an entry of its term.
    reads_before_commit: Vec<Vec<u8>>,
    read_states: Vec<ReadState>,
    prev_soft: SoftState,
    prev_hard: HardState,
    /// New entries to stream to followers when the next Ready is built, so
    /// that many proposals share one AppendEntries.
    pending_bcast: bool,
    /// Leader only: the highest index sent to each follower in this term
    /// (an ack beyond it is a broken invariant).
    sent_max: HashMap<NodeId, u64>,
    /// Broken invariants not yet handed out.
    violations: Vec<Violation>,
}

impl Raft {
    /// Builds a core from its config and what was recovered from disk.
    pub fn new(cfg: Config, init: InitialState) -> Result<Raft, RaftError> {
        cfg.validate()?;
        let (snap_index, snap_term) = init
            .snapshot
            .as_ref()
            .map_or((0, 0), |s| (s.meta.index, s.meta.term));
        let (entries, bad_terms) = recovered_entries(snap_index, snap_term, init.entries)?;
        let mut log = RaftLog::new(snap_index, snap_term, entries);
        // The snapshot's configuration is authoritative when there is one.
        let conf = init
            .snapshot
            .as_ref()
            .map_or(init.conf, |s| s.meta.conf.clone());
        if let Some(s) = init.snapshot {
            log.set_recovered_snapshot(s);
        }
        let hs = init.hard_state;
        let last_index = log.last_index();
        log.commit_to(hs.commit.min(last_index));
        let rng = SmallRng::seed_from_u64(cfg.seed ^ cfg.id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut r = Raft {
            id: cfg.id,
            cfg,
            term: hs.term,
            vote: hs.vote,
            leader: 0,
            role: Role::Follower,
            log,
            conf: conf.clone(),
            conf_base: conf,
            conf_history: Vec::new(),
            conf_changed: false,
            prs: BTreeMap::new(),
            votes: HashMap::new(),
            msgs: Vec::new(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_timeout: 0,
            rng,
            lead_transferee: 0,
            transfer_elapsed: 0,
            leader_ticks: 0,
            campaign_transfer: false,
            ticks_since_start: 0,
            read_only: ReadOnly::default(),
            reads_before_commit: Vec::new(),
            read_states: Vec::new(),
            prev_soft: SoftState::default(),
            prev_hard: HardState {
                term: hs.term,
                vote: hs.vote,
                commit: 0,
            },
            pending_bcast: false,
            sent_max: HashMap::new(),
            violations: Vec::new(),
        };
        if let Some(v) = bad_terms {
            r.violations.push(v);
        }
        if hs.commit > last_index {
            r.violate(
                invariant::RECOVERED_COMMIT_BEYOND_LOG,
                format!(
                    "the recovered commit index {} is beyond the recovered log, which ends at {last_index}",
                    hs.commit
                ),
                &[("commit", hs.commit), ("last_index", last_index)],
            );
        }
        r.prev_hard = r.hard_state();
        r.replay_conf_entries()?;
        r.conf_changed = false;
        r.become_follower(hs.term, 0);
        Ok(r)
    }

    /// Puts the membership changes of the recovered log into effect.
    fn replay_conf_entries(&mut self) -> Result<(), RaftError> {
        let conf_entries: Vec<(u64, Vec<u8>)> = self
            .log
            .entries()
            .iter()
            .filter(|e| e.kind == EntryKind::ConfChange)
            .map(|e| (e.index, e.data.clone()))
            .collect();
        for (index, data) in conf_entries {
            let cc = ConfChange::decode(&data)
                .map_err(|e| RaftError::InvalidConfig(format!("recovered entry {index}: {e}")))?;
            self.apply_conf_entry(index, &cc);
        }
        Ok(())
    }

    // ---- public API -------------------------------------------------------

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        if self.ticks_since_start < self.cfg.election_tick {
            self.ticks_since_start += 1;
        }
        match self.role {
            Role::Leader => self.tick_heartbeat(),
            _ => self.tick_election(),
        }
    }

    /// Feeds one message from a peer.
    pub fn step(&mut self, m: Message) -> Result<(), RaftError> {
        self.validate(&m)?;
        if m.term > self.term {
            match &m.kind {
                MessageKind::RequestVote {
                    pre_vote,
                    leader_transfer,
                    ..
                } => {
                    let heard_leader_recently =
                        self.leader != 0 && self.election_elapsed < self.cfg.election_tick;
                    // A restarted node may have promised a lease it no
                    // longer remembers: it waits out one election timeout.
                    let just_started =
                        self.cfg.lease_read && self.ticks_since_start + 1 < self.cfg.election_tick;
                    let in_lease = self.cfg.check_quorum && (heard_leader_recently || just_started);
                    if in_lease && !leader_transfer {
                        // A leader was heard from recently: this candidate is
                        // probably a node that was cut off (section 4.2.3).
                        return Ok(());
                    }
                    if !pre_vote {
                        self.become_follower(m.term, 0);
                    }
                }
                MessageKind::RequestVoteResponse {
                    pre_vote: true,
                    granted: true,
                } => {
                    // The term of a granted pre-vote is the one we would campaign in.
                }
                MessageKind::AppendEntries { .. }
                | MessageKind::InstallSnapshot { .. }
                | MessageKind::TimeoutNow => self.become_follower(m.term, m.from),
                _ => self.become_follower(m.term, 0),
            }
        } else if m.term < self.term {
            match &m.kind {
                MessageKind::AppendEntries { .. }
                    if self.cfg.bugs.has(Bug::AcceptStaleTerm) && self.role != Role::Leader =>
                {
                    // The defect: a deposed leader's appends still go into the log.
                    return self.handle_append(m);
                }
                MessageKind::AppendEntries { .. } | MessageKind::InstallSnapshot { .. } => {
                    // Section 5.1: answer with our term so that a stale leader
                    // steps down; with pre-vote or a lease it might otherwise
                    // never hear a higher term.
                    self.send(m.from, self.term, reject_response(0, 0, 0));
                }
                MessageKind::RequestVote { pre_vote: true, .. } => {
                    let kind = MessageKind::RequestVoteResponse {
                        pre_vote: true,
                        granted: false,
                    };
                    self.send(m.from, self.term, kind);
                }
                _ => {}
            }
            return Ok(());
        }
        if let MessageKind::RequestVote { .. } = m.kind {
            self.handle_vote_request(m);
            return Ok(());
        }
        if self.is_second_leader(&m) {
            return Ok(());
        }
        match self.role {
            Role::Leader => self.step_leader(m),
            Role::Candidate | Role::PreCandidate => self.step_candidate(m),
            Role::Follower => self.step_follower(m),
        }
    }

    /// Appends a client command; returns its log index.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<u64, RaftError> {
        self.check_can_propose()?;
        Ok(self.append_new_entry(EntryKind::Normal, data))
    }

    /// Appends a membership change; returns its log index. It takes effect
    /// at once (see [`super::conf`]); the next one is accepted once it commits.
    pub fn propose_conf_change(&mut self, cc: ConfChange) -> Result<u64, RaftError> {
        self.check_can_propose()?;
        let bugs = self.cfg.bugs;
        let term_committed = self.log.term(self.log.committed()) == Some(self.term);
        if !term_committed && !bugs.has(Bug::ConfChangeBeforeTermCommit) {
            return Err(RaftError::ConfChangePending);
        }
        let pending = self
            .conf_history
            .last()
            .is_some_and(|(i, _)| *i > self.log.committed());
        if pending && !bugs.has(Bug::ConcurrentConfChanges) {
            return Err(RaftError::ConfChangePending);
        }
        if cc.node_id() == 0 {
            return Err(RaftError::InvalidConfChange("node id 0 is reserved".into()));
        }
        if let ConfChange::AddVoter { id, .. } = &cc {
            // A new voter that lags would add nothing to the quorum but its
            // absence (section 4.2.1): it must first catch up as a learner.
            let committed = self.log.committed();
            match self.prs.get(id) {
                _ if conf::is_voter(&self.conf, *id) => {}
                Some(pr) if pr.matched >= committed => {}
                Some(pr) => {
                    return Err(RaftError::InvalidConfChange(format!(
                        "learner {id} has not caught up (matched {} of commit {committed})",
                        pr.matched
                    )))
                }
                None => {
                    return Err(RaftError::InvalidConfChange(format!(
                        "node {id} must join as a learner and catch up before it votes"
                    )))
                }
            }
        }
        let next = cc.apply(&self.conf);
        if next.voters.is_empty() {
            return Err(RaftError::InvalidConfChange(
                "cannot remove the last voter".into(),
            ));
        }
        Ok(self.append_new_entry(EntryKind::ConfChange, cc.encode()))
    }

    /// Starts a linearizable read: a later Ready carries `ReadState { index,
    /// ctx }`, and the read may be served once the state machine has applied
    /// `index`. Only the leader serves reads; pending reads are dropped if it
    /// loses leadership, so the caller must time them out.
    pub fn read_index(&mut self, ctx: Vec<u8>) -> Result<(), RaftError> {
        if self.role != Role::Leader {
            return Err(RaftError::NotLeader {
                leader: self.leader,
            });
        }
        let term_committed = self.log.term(self.log.committed()) == Some(self.term);
        if !term_committed && !self.cfg.bugs.has(Bug::ReadBeforeTermCommit) {
            // The commit index of a new leader may lag (section 6.4): wait
            // until an entry of this term commits.
            self.reads_before_commit.push(ctx);
            return Ok(());
        }
        self.start_read(ctx);
        Ok(())
    }

    /// Hands leadership to `to` once its log has caught up (section 3.10).
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), RaftError> {
        if self.role != Role::Leader {
            return Err(RaftError::NotLeader {
                leader: self.leader,
            });
        }
        if to == self.id {
            return Ok(());
        }
        if !conf::is_voter(&self.conf, to) {
            return Err(RaftError::InvalidArgument(format!(
                "node {to} is not a voter"
            )));
        }
        if self.lead_transferee == to {
            return Ok(());
        }
        self.lead_transferee = to;
        self.transfer_elapsed = 0;
        let last_index = self.log.last_index();
        match self.prs.get_mut(&to) {
            Some(pr) if pr.matched == last_index => {
                self.send(to, self.term, MessageKind::TimeoutNow)
            }
            Some(pr) => {
                if pr.state == ProgressState::Replicate {
                    // Earlier appends may have been lost: catch up from the match point.
                    pr.become_probe();
                }
                self.send_append(to);
            }
            None => {}
        }
        Ok(())
    }

    /// Whether [`Raft::ready`] would return anything.
    pub fn has_ready(&self) -> bool {
        self.soft_state() != self.prev_soft
            || self.hard_state() != self.prev_hard
            || self.log.has_unstable()
            || self.log.has_pending_snapshot()
            || !self.msgs.is_empty()
            || self.log.has_next_committed()
            || !self.read_states.is_empty()
            || self.conf_changed
            || self.pending_bcast
            || !self.violations.is_empty()
    }

    /// Collects the work to do. Everything returned counts as handed out:
    /// the caller must persist it before sending, then call
    /// [`Raft::advance`] once done, before the next `ready`.
    pub fn ready(&mut self) -> Ready {
        if self.pending_bcast {
            self.pending_bcast = false;
            if self.role == Role::Leader {
                self.bcast_append();
            }
        }
        let mut rd = Ready::default();
        let ss = self.soft_state();
        if ss != self.prev_soft {
            rd.soft_state = Some(ss);
            self.prev_soft = ss;
        }
        let hs = self.hard_state();
        if hs.commit < self.prev_hard.commit {
            let prev = self.prev_hard.commit;
            self.violate(
                invariant::COMMIT_REGRESSED,
                format!("the commit index went back from {prev} to {}", hs.commit),
                &[("commit", hs.commit), ("previous_commit", prev)],
            );
        }
        if hs != self.prev_hard {
            rd.hard_state_must_sync =
                hs.term != self.prev_hard.term || hs.vote != self.prev_hard.vote;
            rd.hard_state = Some(hs);
            self.prev_hard = hs;
        }
        rd.snapshot = self.log.take_pending_snapshot();
        if self.log.has_unstable() {
            rd.entries = self.log.take_unstable();
        }
        rd.messages = std::mem::take(&mut self.msgs);
        rd.committed_entries = self.log.take_committed();
        rd.read_states = std::mem::take(&mut self.read_states);
        if self.conf_changed {
            self.conf_changed = false;
            rd.conf = Some(self.conf.clone());
        }
        rd.violations = std::mem::take(&mut self.violations);
        rd
    }

    /// The caller has persisted the last Ready, sent its messages and
    /// applied its committed entries. The core remembers what it handed
    /// out, so the Ready's vectors may have been moved out already.
    pub fn advance(&mut self, _ready: Ready) {
        self.log.applied_to_handed();
    }

    /// The state machine has a snapshot up to `index` (at most `applied`):
    /// keep `data` to send to lagging followers and drop the log up to it.
    pub fn compact(&mut self, index: u64, data: Vec<u8>) -> Result<(), RaftError> {
        if index > self.log.applied() {
            return Err(RaftError::InvalidArgument(format!(
                "cannot compact to {index}: only {} is applied",
                self.log.applied()
            )));
        }
        if index <= self.log.snapshot_index() {
            return Err(RaftError::InvalidArgument(format!(
                "cannot compact to {index}: already compacted to {}",
                self.log.snapshot_index()
            )));
        }
        let term = self
            .log
            .term(index)
            .expect("applied entries are in the log");
        let conf = self.conf_at(index);
        self.conf_history.retain(|(i, _)| *i > index);
        self.conf_base = conf.clone();
        self.log.compact(Snapshot {
            meta: SnapshotMeta { index, term, conf },
            data,
        });
        Ok(())
    }

    /// The core's state at a glance.
    pub fn status(&self) -> Status {
        Status {
            id: self.id,
            role: self.role,
            term: self.term,
            vote: self.vote,
            leader: self.leader,
            commit: self.log.committed(),
            applied: self.log.applied(),
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            snapshot_index: self.log.snapshot_index(),
            conf: self.conf.clone(),
        }
    }

    /// The in-memory log (read-only), for tests and diagnostics.
    pub fn raft_log(&self) -> &RaftLog {
        &self.log
    }

    /// The leader's view of a follower, if this node leads and `id` is a member.
    pub fn progress(&self, id: NodeId) -> Option<&Progress> {
        self.prs.get(&id)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Its role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Its current term.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// The leader it knows of (0: none).
    pub fn leader(&self) -> NodeId {
        self.leader
    }

    /// The configuration in effect.
    pub fn conf(&self) -> &ConfState {
        &self.conf
    }

    // ---- roles --------------------------------------------------------------

    fn soft_state(&self) -> SoftState {
        SoftState {
            leader: self.leader,
            role: self.role,
        }
    }

    fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed(),
        }
    }

    fn promotable(&self) -> bool {
        conf::is_voter(&self.conf, self.id)
    }

    fn reset(&mut self, term: u64) {
        if term != self.term {
            self.term = term;
            self.vote = 0;
        }
        self.leader = 0;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.randomized_election_timeout = self
            .rng
            .gen_range(self.cfg.election_tick..2 * self.cfg.election_tick);
        self.lead_transferee = 0;
        self.leader_ticks = 0;
        self.votes.clear();
        self.read_only.clear();
        self.reads_before_commit.clear();
        self.prs.clear();
        self.pending_bcast = false;
        self.sent_max.clear();
    }

    fn become_follower(&mut self, term: u64, leader: NodeId) {
        self.reset(term);
        self.role = Role::Follower;
        self.leader = leader;
    }

    fn become_pre_candidate(&mut self) {
        // A pre-candidate changes neither term nor vote (section 9.6).
        self.role = Role::PreCandidate;
        self.leader = 0;
        self.votes.clear();
        self.heartbeat_elapsed = 0;
    }

    fn become_candidate(&mut self) {
        self.reset(self.term + 1);
        self.vote = self.id;
        self.role = Role::Candidate;
    }

    fn become_leader(&mut self) {
        self.reset(self.term);
        self.role = Role::Leader;
        self.leader = self.id;
        self.sync_progress();
        for pr in self.prs.values_mut() {
            pr.recent_active = true;
        }
        if self.log.last_index() == 0 {
            // The very first leader writes the bootstrap configuration into
            // the log, so that a node added later, which starts with an
            // empty configuration, learns it by replaying the log. The
            // entries change nothing for the bootstrap members.
            let changes: Vec<ConfChange> = self
                .conf
                .voters
                .iter()
                .map(|&id| ConfChange::AddVoter {
                    id,
                    context: Vec::new(),
                })
                .chain(self.conf.learners.iter().map(|&id| ConfChange::AddLearner {
                    id,
                    context: Vec::new(),
                }))
                .collect();
            for cc in changes {
                self.append_new_entry(EntryKind::ConfChange, cc.encode());
            }
        } else {
            // The no-op lets the leader commit, and so learn the commit
            // index, in its own term (sections 5.4.2 and 6.4).
            self.append_new_entry(EntryKind::Normal, Vec::new());
        }
    }

    fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.promotable() && self.election_elapsed >= self.randomized_election_timeout {
            self.election_elapsed = 0;
            self.campaign(self.cfg.pre_vote, false);
            return;
        }
        if matches!(self.role, Role::Candidate | Role::PreCandidate) {
            self.heartbeat_elapsed += 1;
            if self.heartbeat_elapsed >= self.cfg.heartbeat_tick {
                self.heartbeat_elapsed = 0;
                // Section 5.1: RPCs are retried when no response comes. A
                // request lost on the way, or to a voter that was down,
                // is asked again within the same candidacy.
                self.request_votes(true);
            }
        }
    }

    fn tick_heartbeat(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        self.leader_ticks += 1;
        if self.lead_transferee != 0 {
            self.transfer_elapsed += 1;
            if self.transfer_elapsed >= self.cfg.election_tick {
                // The target did not take over in time: accept proposals again.
                self.lead_transferee = 0;
            }
        }
        for pr in self.prs.values_mut() {
            if pr.state == ProgressState::Snapshot {
                pr.snapshot_ticks += 1;
                if pr.snapshot_ticks >= self.cfg.election_tick {
                    // The snapshot or its answer was probably lost: probe again.
                    pr.become_probe();
                }
            }
        }
        if self.election_elapsed >= self.cfg.election_tick {
            self.election_elapsed = 0;
            if self.cfg.check_quorum {
                let id = self.id;
                let active =
                    |n: NodeId| n == id || self.prs.get(&n).is_some_and(|p| p.recent_active);
                if !quorum::has_quorum(&self.conf, active) {
                    let term = self.term;
                    self.become_follower(term, 0);
                    return;
                }
                for pr in self.prs.values_mut() {
                    pr.recent_active = false;
                }
            }
        }
        if self.heartbeat_elapsed >= self.cfg.heartbeat_tick {
            self.heartbeat_elapsed = 0;
            // Every heartbeat is a numbered round: its answers confirm
            // waiting reads and renew the lease.
            let round = self.read_only.new_round(self.leader_ticks, self.id);
            self.bcast_heartbeat_round(round);
        }
    }

    /// Starts an election: a pre-vote round first if `pre`, a real one otherwise.
    fn campaign(&mut self, pre: bool, transfer: bool) {
        if pre {
            self.become_pre_candidate();
        } else {
            self.become_candidate();
        }
        self.votes.insert(self.id, true);
        match self.poll() {
            VoteResult::Won => {
                if pre {
                    self.campaign(false, transfer);
                } else {
                    self.become_leader();
                }
                return;
            }
            VoteResult::Lost if !conf::is_voter(&self.conf, self.id) => return,
            _ => {}
        }
        self.campaign_transfer = transfer;
        self.request_votes(false);
    }

    /// Asks every other voter for its (pre-)vote in the current candidacy;
    /// with `only_unanswered`, only those whose answer has not come.
    fn request_votes(&mut self, only_unanswered: bool) {
        let pre = self.role == Role::PreCandidate;
        let term = if pre { self.term + 1 } else { self.term };
        let kind = MessageKind::RequestVote {
            pre_vote: pre,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            leader_transfer: self.campaign_transfer,
        };
        for id in conf::members(&self.conf) {
            let answered = only_unanswered && self.votes.contains_key(&id);
            if id != self.id && conf::is_voter(&self.conf, id) && !answered {
                self.send(id, term, kind.clone());
            }
        }
    }

    fn poll(&self) -> VoteResult {
        quorum::vote_result(&self.conf, |id| self.votes.get(&id).copied())
    }

    // ---- message handling -------------------------------------------------

    fn validate(&self, m: &Message) -> Result<(), RaftError> {
        if m.to != self.id {
            return Err(RaftError::InvalidMessage(format!(
                "addressed to {}, not to {}",
                m.to, self.id
            )));
        }
        if m.from == 0 || m.from == self.id {
            return Err(RaftError::InvalidMessage(format!("bad sender {}", m.from)));
        }
        if m.term == 0 {
            return Err(RaftError::InvalidMessage("term 0".into()));
        }
        if let MessageKind::AppendEntries {
            prev_log_index,
            entries,
            ..
        } = &m.kind
        {
            for (i, e) in entries.iter().enumerate() {
                if e.index != prev_log_index + 1 + i as u64 {
                    return Err(RaftError::InvalidMessage(format!(
                        "entry {} at position {i} after prev index {prev_log_index}",
                        e.index
                    )));
                }
                if e.term > m.term {
                    return Err(RaftError::InvalidMessage(format!(
                        "entry {} has a future term",
                        e.index
                    )));
                }
                if e.kind == EntryKind::ConfChange {
                    ConfChange::decode(&e.data).map_err(|err| {
                        RaftError::InvalidMessage(format!("entry {}: {err}", e.index))
                    })?;
                }
            }
        }
        if let MessageKind::InstallSnapshot { snapshot } = &m.kind {
            if snapshot.meta.index == 0 || snapshot.meta.term > m.term {
                return Err(RaftError::InvalidMessage(
                    "snapshot with index 0 or a future term".into(),
                ));
            }
        }
        Ok(())
    }

    /// Whether `m` is an append or snapshot of our own term from a node
    /// other than the leader we know (or from another node while we lead):
    /// two leaders in one term, which section 5.2 rules out. Reported, and
    /// the message is ignored.
    fn is_second_leader(&mut self, m: &Message) -> bool {
        if !matches!(
            m.kind,
            MessageKind::AppendEntries { .. } | MessageKind::InstallSnapshot { .. }
        ) {
            return false;
        }
        let known = match self.role {
            Role::Leader => self.id,
            Role::Follower => self.leader,
            Role::Candidate | Role::PreCandidate => 0,
        };
        if known == 0 || known == m.from {
            return false;
        }
        let term = self.term;
        self.violate(
            invariant::TWO_LEADERS_IN_TERM,
            format!(
                "node {} sent leader messages in term {term}, which node {known} leads",
                m.from
            ),
            &[("term", term), ("from", m.from), ("leader", known)],
        );
        true
    }

    /// Records a broken invariant for the next Ready.
    fn violate(&mut self, name: &'static str, detail: String, context: &[(&'static str, u64)]) {
        self.violations.push(Violation::new(name, detail, context));
    }

    fn handle_vote_request(&mut self, m: Message) {
        let MessageKind::RequestVote {
            pre_vote,
            last_log_index,
            last_log_term,
            ..
        } = m.kind
        else {
            return;
        };
        // Section 5.2: at most one vote per term, first come first served; a
        // pre-vote for a later term promises nothing.
        let can_vote = self.vote == m.from
            || (self.vote == 0 && self.leader == 0)
            || (pre_vote && m.term > self.term);
        // Section 5.4.1: only for a log at least as up to date as ours.
        let up_to_date = self.cfg.bugs.has(Bug::VoteNoLogCheck)
            || self.log.is_up_to_date(last_log_index, last_log_term);
        if can_vote && up_to_date {
            self.send(
                m.from,
                m.term,
                MessageKind::RequestVoteResponse {
                    pre_vote,
                    granted: true,
                },
            );
            if !pre_vote {
                self.election_elapsed = 0;
                self.vote = m.from;
            }
        } else {
            let kind = MessageKind::RequestVoteResponse {
                pre_vote,
                granted: false,
            };
            self.send(m.from, self.term, kind);
        }
    }

    fn step_follower(&mut self, m: Message) -> Result<(), RaftError> {
        match m.kind {
            MessageKind::AppendEntries { .. } => {
                self.election_elapsed = 0;
                self.leader = m.from;
                self.handle_append(m)
            }
            MessageKind::InstallSnapshot { .. } => {
                self.election_elapsed = 0;
                self.leader = m.from;
                self.handle_snapshot(m);
                Ok(())
            }
            MessageKind::TimeoutNow => {
                if self.promotable() {
                    self.campaign(false, true);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn step_candidate(&mut self, m: Message) -> Result<(), RaftError> {
        match m.kind {
            MessageKind::AppendEntries { .. } => {
                self.become_follower(m.term, m.from);
                self.handle_append(m)
            }
            MessageKind::InstallSnapshot { .. } => {
                self.become_follower(m.term, m.from);
                self.handle_snapshot(m);
                Ok(())
            }
            MessageKind::RequestVoteResponse { pre_vote, granted } => {
                if pre_vote != (self.role == Role::PreCandidate) {
                    return Ok(());
                }
                self.votes.entry(m.from).or_insert(granted);
                match self.poll() {
                    VoteResult::Won if pre_vote => self.campaign(false, false),
                    VoteResult::Won => self.become_leader(),
                    VoteResult::Lost => {
                        let term = self.term;
                        self.become_follower(term, 0);
                    }
                    VoteResult::Pending => {}
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn step_leader(&mut self, m: Message) -> Result<(), RaftError> {
        let from = m.from;
        let MessageKind::AppendEntriesResponse {
            reject,
            index,
            conflict_term,
            conflict_index,
            heartbeat,
            context,
        } = m.kind
        else {
            return Ok(());
        };
        let sent = self.sent_max.get(&from).copied().unwrap_or(0);
        if !reject && !heartbeat && index > sent {
            // Its answer can only cover what this leader sent it, or its
            // commit index, which never exceeds the first append sent.
            let term = self.term;
            self.violate(
                invariant::ACK_BEYOND_SENT,
                format!(
                    "node {from} acknowledged index {index}, but this leader sent it at most {sent} in term {term}"
                ),
                &[("term", term), ("from", from), ("index", index), ("sent", sent)],
            );
            return Ok(());
        }
        let Some(pr) = self.prs.get_mut(&from) else {
            return Ok(());
        };
        pr.recent_active = true;
        if heartbeat {
            self.handle_heartbeat_answer(from, &context);
            return Ok(());
        }
        let Some(pr) = self.prs.get_mut(&from) else {
            return Ok(());
        };
        if reject {
            let hint = if conflict_term != 0 {
                match self.log.last_index_of_term(conflict_term, index) {
                    Some(i) => i + 1,
                    None => conflict_index,
                }
            } else {
                conflict_index
            };
            if pr.maybe_decr_to(index, hint) {
                self.send_append(from);
            }
            return Ok(());
        }
        if !pr.maybe_update(index) {
            return Ok(());
        }
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Snapshot if pr.matched >= pr.pending_snapshot => pr.become_probe(),
            _ => {}
        }
        let matched = pr.matched;
        if self.maybe_commit() && self.role != Role::Leader {
            return Ok(());
        }
        while self.send_append(from) {}
        if from == self.lead_transferee && matched == self.log.last_index() {
            self.send(from, self.term, MessageKind::TimeoutNow);
        }
        Ok(())
    }

    /// A heartbeat answer: a follower that answers without progress while
    /// entries are outstanding lost some (probe again); its round number
    /// confirms waiting reads and renews the lease.
    fn handle_heartbeat_answer(&mut self, from: NodeId, context: &[u8]) {
        let last_index = self.log.last_index();
        let Some(pr) = self.prs.get_mut(&from) else {
            return;
        };
        pr.probe_sent = false;
        if pr.matched < last_index && pr.matched == pr.matched_at_last_beat {
            pr.stalled_beats += 1;
        } else {
            pr.stalled_beats = 0;
        }
        pr.matched_at_last_beat = pr.matched;
        let stalled = pr.stalled_beats >= STALLED_BEATS_BEFORE_PROBE;
        if pr.state == ProgressState::Replicate && stalled {
            // Several heartbeat rounds without progress: appends were lost.
            pr.become_probe();
            pr.stalled_beats = 0;
        }
        if pr.matched < last_index {
            while self.send_append(from) {}
        }
        if let Some(round) = read_only::decode_round(context) {
            let before = self.read_only.confirmed_at();
            let released = self.read_only.ack(round, from, &self.conf);
            if self.cfg.bugs.has(Bug::LeaseFromAck) && self.read_only.confirmed_at() != before {
                // The defect: the lease runs from the answers' arrival,
                // not from the round's sending, so it outlives the
                // followers' promise by the answers' delay.
                self.read_only.confirm_at(self.leader_ticks);
            }
            self.read_states.extend(released);
        }
    }

    fn handle_append(&mut self, m: Message) -> Result<(), RaftError> {
        let MessageKind::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            commit,
            heartbeat,
            context,
        } = m.kind
        else {
            return Ok(());
        };
        let (from, term) = (m.from, self.term);
        if heartbeat {
            self.handle_heartbeat(from, commit, context);
            return Ok(());
        }
        let committed = self.log.committed();
        if prev_log_index < committed {
            // Everything up to our commit index matches any leader's log.
            self.check_matches_committed(from, prev_log_index, prev_log_term, &entries);
            self.send(from, term, MessageKind::accept(committed));
            return Ok(());
        }
        if self.log.term(prev_log_index) != Some(prev_log_term) {
            if prev_log_index == committed {
                self.check_matches_committed(from, prev_log_index, prev_log_term, &[]);
            }
            // Section 5.3, with the back-off hint: tell the leader where our
            // log ends or where the conflicting term starts.
            let (conflict_index, conflict_term) = if prev_log_index > self.log.last_index() {
                (self.log.last_index() + 1, 0)
            } else {
                let t = self.log.term(prev_log_index).unwrap_or(0);
                (self.log.first_index_of_term_at(prev_log_index), t)
            };
            self.send(
                from,
                term,
                reject_response(prev_log_index, conflict_term, conflict_index),
            );
            return Ok(());
        }
        let last_new = prev_log_index + entries.len() as u64;
        if self.cfg.bugs.has(Bug::TruncateOnAppend) && !entries.is_empty() {
            // The defect: the log is cut after this message's entries even
            // when nothing conflicts, so a late duplicate deletes newer ones.
            self.append_to_log(entries);
        } else if let Some(pos) = self.log.find_conflict(&entries) {
            let mut entries = entries;
            let new = entries.split_off(pos);
            self.append_to_log(new);
        }
        // Figure 2: min(leaderCommit, index of last new entry); beyond the
        // last new entry our log may still hold another leader's entries.
        self.log.commit_to(commit.min(last_new));
        self.send(from, term, MessageKind::accept(last_new));
        Ok(())
    }

    /// A heartbeat carries min(match, commit) for this follower: our log up
    /// to there is the leader's, so it can never lie beyond our log.
    fn handle_heartbeat(&mut self, from: NodeId, commit: u64, context: Vec<u8>) {
        let last_index = self.log.last_index();
        if commit > last_index {
            let term = self.term;
            self.violate(
                invariant::COMMIT_BEYOND_LOG,
                format!(
                    "leader {from} says {commit} is committed and matched here, but this log ends at {last_index}"
                ),
                &[("term", term), ("from", from), ("commit", commit), ("last_index", last_index)],
            );
        }
        self.log.commit_to(commit.min(last_index));
        let kind = MessageKind::AppendEntriesResponse {
            reject: false,
            index: 0,
            conflict_term: 0,
            conflict_index: 0,
            heartbeat: true,
            context,
        };
        self.send(from, self.term, kind);
    }

    /// Reports an AppendEntries of the current leader that contradicts our
    /// log at or below our commit index: committed entries are in every
    /// later leader's log (leader completeness), and its log never changes
    /// below what it sent us, so a correct leader cannot send this.
    fn check_matches_committed(
        &mut self,
        from: NodeId,
        prev: u64,
        prev_term: u64,
        entries: &[Entry],
    ) {
        let committed = self.log.committed();
        let at_prev = std::iter::once((prev, prev_term)).filter(|(i, _)| *i > 0);
        let claims = at_prev.chain(entries.iter().map(|e| (e.index, e.term)));
        let conflict = claims
            .take_while(|(i, _)| *i <= committed)
            .find(|&(i, t)| self.log.term(i).is_some_and(|ours| ours != t));
        if let Some((index, theirs)) = conflict {
            let ours = self.log.term(index).unwrap_or(0);
            let term = self.term;
            self.violate(
                invariant::APPEND_CONFLICTS_WITH_COMMIT,
                format!(
                    "leader {from} sent term {theirs} at index {index}, but this node committed term {ours} there (commit {committed})"
                ),
                &[("term", term), ("from", from), ("index", index), ("commit", committed)],
            );
        }
    }

    fn handle_snapshot(&mut self, m: Message) {
        let MessageKind::InstallSnapshot { snapshot } = m.kind else {
            return;
        };
        let index = snapshot.meta.index;
        let term = self.term;
        let stale = index <= self.log.committed();
        if stale && !self.cfg.bugs.has(Bug::SnapshotRollback) {
            // A late or duplicated snapshot: we are past it already.
            let committed = self.log.committed();
            self.send(m.from, term, MessageKind::accept(committed));
            return;
        }
        if !stale && self.log.term(index) == Some(snapshot.meta.term) {
            // We already hold the snapshot's last entry, hence everything
            // before it: just learn that it is committed.
            self.log.commit_to(index);
        } else {
            self.conf_base = snapshot.meta.conf.clone();
            self.conf_history.clear();
            if self.conf != self.conf_base {
                self.conf = self.conf_base.clone();
                self.conf_changed = true;
            }
            self.log.restore(snapshot);
        }
        self.send(m.from, term, MessageKind::accept(index));
    }

    // ---- leader -------------------------------------------------------------

    fn check_can_propose(&self) -> Result<(), RaftError> {
        if self.role != Role::Leader {
            return Err(RaftError::NotLeader {
                leader: self.leader,
            });
        }
        if self.lead_transferee != 0 {
            return Err(RaftError::ProposalDropped);
        }
        Ok(())
    }

    fn append_new_entry(&mut self, kind: EntryKind, data: Vec<u8>) -> u64 {
        let index = self.log.last_index() + 1;
        let entry = Entry {
            term: self.term,
            index,
            kind,
            data,
        };
        if kind == EntryKind::ConfChange {
            let cc = ConfChange::decode(&entry.data).expect("the leader encoded it");
            self.log.push(entry);
            self.apply_conf_entry(index, &cc);
        } else {
            self.log.push(entry);
        }
        if let Some(pr) = self.prs.get_mut(&self.id) {
            pr.maybe_update(index);
        }
        self.pending_bcast = true;
        self.maybe_commit();
        index
    }

    /// Commits the highest index a quorum matches, if it is of this term
    /// (section 5.4.2). Returns whether the commit index moved.
    fn maybe_commit(&mut self) -> bool {
        let mci =
            quorum::committed_index(&self.conf, |id| self.prs.get(&id).map_or(0, |p| p.matched));
        // Section 5.4.2: only an entry of this term is committed by counting.
        let of_this_term = self.log.term(mci) == Some(self.term);
        if mci <= self.log.committed() || !(of_this_term || self.cfg.bugs.has(Bug::CommitOldTerm)) {
            return false;
        }
        self.log.commit_to(mci);
        if !self.reads_before_commit.is_empty() {
            for ctx in std::mem::take(&mut self.reads_before_commit) {
                self.start_read(ctx);
            }
        }
        let last_change = self.conf_history.last().map_or(0, |(i, _)| *i);
        if !conf::is_voter(&self.conf, self.id) && last_change <= mci {
            // Our own removal committed: hand over by stepping down (section 4.2.2).
            let term = self.term;
            self.become_follower(term, 0);
        }
        true
    }

    fn start_read(&mut self, ctx: Vec<u8>) {
        let index = self.log.committed();
        if self.in_lease() || self.cfg.bugs.has(Bug::ReadWithoutQuorum) {
            self.read_states.push(ReadState { index, ctx });
            return;
        }
        let round = self.read_only.new_round(self.leader_ticks, self.id);
        self.read_only.add_read(round, index, ctx);
        let released = self.read_only.release_quorate(&self.conf);
        if released.is_empty() {
            self.bcast_heartbeat_round(round);
        }
        self.read_states.extend(released);
    }

    /// Whether the leader lease covers now: a quorum confirmed a heartbeat
    /// round sent less than an election timeout ago (minus a tick of
    /// margin), so, with check-quorum, no voter of that quorum would help
    /// elect another leader yet. Assumes clocks that run at similar speeds.
    fn in_lease(&self) -> bool {
        self.cfg.lease_read
            && self.lead_transferee == 0
            && self
                .read_only
                .confirmed_at()
                .is_some_and(|t| self.leader_ticks + 1 < t + self.cfg.election_tick)
    }

    fn bcast_heartbeat_round(&mut self, round: u64) {
        self.bcast_heartbeat(read_only::encode_round(round));
    }

    fn bcast_heartbeat(&mut self, context: Vec<u8>) {
        let committed = self.log.committed();
        // Only up to what the follower is known to match: beyond it, its log
        // may hold another leader's entries, which must not commit.
        let unmatched = self.cfg.bugs.has(Bug::HeartbeatCommitUnmatched);
        let targets: Vec<(NodeId, u64)> = self
            .prs
            .iter()
            .filter(|(id, _)| **id != self.id)
            .map(|(id, pr)| {
                (
                    *id,
                    if unmatched {
                        committed
                    } else {
                        pr.matched.min(committed)
                    },
                )
            })
            .collect();
        for (to, commit) in targets {
            let kind = MessageKind::AppendEntries {
                prev_log_index: 0,
                prev_log_term: 0,
                entries: Vec::new(),
                commit,
                heartbeat: true,
                context: context.clone(),
            };
            self.send(to, self.term, kind);
        }
    }

    fn bcast_append(&mut self) {
        let ids: Vec<NodeId> = self
            .prs
            .keys()
            .copied()
            .filter(|&id| id != self.id)
            .collect();
        for id in ids {
            while self.send_append(id) {}
        }
    }

    /// Sends the next batch to `to` if its progress allows; returns whether
    /// something was sent and more might follow (Replicate mode).
    fn send_append(&mut self, to: NodeId) -> bool {
        let last_index = self.log.last_index();
        let committed = self.log.committed();
        let Some(pr) = self.prs.get_mut(&to) else {
            return false;
        };
        if pr.is_paused() {
            return false;
        }
        let prev = pr.next - 1;
        let Some(prev_log_term) = self.log.term(prev) else {
            // The entries it needs were compacted: send the snapshot.
            let Some(snap) = self.log.snapshot() else {
                return false;
            };
            pr.become_snapshot(snap.meta.index);
            let index = snap.meta.index;
            let kind = MessageKind::InstallSnapshot {
                snapshot: snap.clone(),
            };
            note_sent(&mut self.sent_max, to, index);
            self.send(to, self.term, kind);
            return false;
        };
        if pr.state == ProgressState::Replicate && pr.next > last_index {
            return false;
        }
        let entries = self
            .log
            .slice(pr.next, self.cfg.max_msg_entries, self.cfg.max_msg_bytes);
        let last = entries.last().map_or(prev, |e| e.index);
        pr.sent(last);
        note_sent(&mut self.sent_max, to, last);
        let more = pr.state == ProgressState::Replicate;
        let kind = MessageKind::AppendEntries {
            prev_log_index: prev,
            prev_log_term,
            entries,
            commit: committed,
            heartbeat: false,
            context: Vec::new(),
        };
        self.send(to, self.term, kind);
        more
    }

    // ---- membership ---------------------------------------------------------

    /// Appends entries received from the leader, undoing the membership
    /// changes of any truncated suffix and applying those appended.
    fn append_to_log(&mut self, entries: Vec<Entry>) {
        let Some(first) = entries.first().map(|e| e.index) else {
            return;
        };
        if self.conf_history.last().is_some_and(|(i, _)| *i >= first) {
            self.conf_history.retain(|(i, _)| *i < first);
            let conf = self
                .conf_history
                .last()
                .map_or_else(|| self.conf_base.clone(), |(_, c)| c.clone());
            self.set_conf(conf);
        }
        let changes: Vec<(u64, ConfChange)> = entries
            .iter()
            .filter(|e| e.kind == EntryKind::ConfChange)
            .filter_map(|e| ConfChange::decode(&e.data).ok().map(|cc| (e.index, cc)))
            .collect();
        self.log.append(entries);
        for (index, cc) in changes {
            self.apply_conf_entry(index, &cc);
        }
    }

    fn apply_conf_entry(&mut self, index: u64, cc: &ConfChange) {
        let next = cc.apply(&self.conf);
        self.conf_history.push((index, next.clone()));
        self.set_conf(next);
    }

    fn set_conf(&mut self, conf: ConfState) {
        if conf == self.conf {
            return;
        }
        self.conf = conf;
        self.conf_changed = true;
        if self.role == Role::Leader {
            self.sync_progress();
            if self.lead_transferee != 0 && !conf::is_voter(&self.conf, self.lead_transferee) {
                self.lead_transferee = 0;
            }
            let released = self.read_only.release_quorate(&self.conf);
            self.read_states.extend(released);
        }
    }

    /// Gives every member a progress entry and drops those of former members.
    fn sync_progress(&mut self) {
        let members = conf::members(&self.conf);
        self.prs.retain(|id, _| members.contains(id));
        let next = self.log.last_index() + 1;
        for id in members {
            let pr = self
                .prs
                .entry(id)
                .or_insert_with(|| Progress::new(next, self.cfg.max_inflight));
            if id == self.id {
                pr.matched = next - 1;
                pr.become_replicate();
            }
        }
    }

    fn conf_at(&self, index: u64) -> ConfState {
        self.conf_history
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or_else(|| self.conf_base.clone(), |(_, c)| c.clone())
    }

    fn send(&mut self, to: NodeId, term: u64, kind: MessageKind) {
        self.msgs.push(Message {
            from: self.id,
            to,
            term,
            kind,
        });
    }
}

/// Heartbeat answers without progress before the leader assumes appends
/// were lost and probes again.
const STALLED_BEATS_BEFORE_PROBE: u32 = 2;

fn reject_response(index: u64, conflict_term: u64, conflict_index: u64) -> MessageKind {
    MessageKind::AppendEntriesResponse {
        reject: true,
        index,
        conflict_term,
        conflict_index,
        heartbeat: false,
        context: Vec::new(),
    }
}

fn note_sent(sent_max: &mut HashMap<NodeId, u64>, to: NodeId, index: u64) {
    let e = sent_max.entry(to).or_insert(0);
    *e = (*e).max(index);
}

/// The recovered entries after the snapshot at `snap_index`: they must be
/// contiguous (an error otherwise); a suffix whose terms go down is cut
/// and reported.
fn recovered_entries(
    snap_index: u64,
    snap_term: u64,
    entries: Vec<Entry>,
) -> Result<(Vec<Entry>, Option<Violation>), RaftError> {
    let entries: Vec<Entry> = entries
        .into_iter()
        .filter(|e| e.index > snap_index)
        .collect();
    for (i, e) in entries.iter().enumerate() {
        if e.index != snap_index + 1 + i as u64 {
            return Err(RaftError::InvalidConfig(format!(
                "recovered log is not contiguous after the snapshot at {snap_index}: entry {} at position {i}",
                e.index
            )));
        }
    }
    Ok(keep_nondecreasing_terms(snap_term, entries))
}

/// A Raft log's terms never go down (each leader appends in its own term,
/// after entries of earlier ones). Keeps the recovered entries up to the
/// first one whose term is lower than its predecessor's (or the
/// snapshot's), and reports the cut.
fn keep_nondecreasing_terms(
    snap_term: u64,
    mut entries: Vec<Entry>,
) -> (Vec<Entry>, Option<Violation>) {
    let mut prev = snap_term;
    let Some(pos) = entries.iter().position(|e| {
        let down = e.term < prev;
        prev = e.term;
        down
    }) else {
        return (entries, None);
    };
    let e = &entries[pos];
    let before = if pos == 0 {
        snap_term
    } else {
        entries[pos - 1].term
    };
    let v = Violation::new(
        invariant::RECOVERED_LOG_TERMS_DECREASE,
        format!(
            "recovered entry {} has term {} after term {before}; the {} entries from it on are dropped",
            e.index,
            e.term,
            entries.len() - pos
        ),
        &[("index", e.index), ("term", e.term), ("previous_term", before)],
    );
    entries.truncate(pos);
    (entries, Some(v))
}
