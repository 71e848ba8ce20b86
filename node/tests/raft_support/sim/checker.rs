//! Raft's safety properties, checked as the simulated cluster runs; each
//! check returns the first violation as a message naming the property.

use std::collections::{BTreeMap, HashMap};

use raft_node::raft::{EntryKind, NodeId, Raft, ReadState, Ready, Role};

use super::mem_storage::{HashMachine, MemStorage};

/// What the checks remember across steps.
#[derive(Default)]
pub struct Checker {
    /// Election safety: the leader of each term.
    pub leaders: HashMap<u64, NodeId>,
    /// Log matching: (index, term) -> (term at index-1, kind, data) of the first entry seen there.
    entries: HashMap<(u64, u64), (u64, EntryKind, Vec<u8>)>,
    /// The term of every entry known committed, by index.
    committed: BTreeMap<u64, u64>,
    /// The highest commit index any node ever reported.
    pub max_commit: u64,
    /// State machine safety: the chain hash after applying each index.
    applied: HashMap<u64, u64>,
    /// Reads in flight: ctx -> commit index before the read began.
    reads: HashMap<Vec<u8>, u64>,
    /// Per node, the commit index already recorded.
    commit_seen: HashMap<NodeId, u64>,
    /// Per node, the term it led at its previous Ready.
    led: HashMap<NodeId, u64>,
    pub reads_served: u64,
    pub conf_changes: u64,
    pub snapshots_installed: u64,
}

impl Checker {
    /// A Ready of node `id`, before it is persisted: no broken invariant
    /// reported, leader append-only, log matching.
    pub fn ready(
        &mut self,
        id: NodeId,
        rd: &Ready,
        r: &Raft,
        disk: &MemStorage,
    ) -> Result<(), String> {
        if let Some(v) = rd.violations.first() {
            return Err(format!("node invariant: node {id} reported {v}"));
        }
        let st = r.status();
        // Leader append-only (section 5.3): a node that led this term at its
        // previous Ready only appends to its durable log.
        let led_before = self.led.get(&id) == Some(&st.term);
        if st.role == Role::Leader && led_before {
            if let Some(first) = rd.entries.first() {
                let snap = disk.snapshot.as_ref().map_or(0, |s| s.meta.index);
                let durable_last = disk.entries.last().map_or(snap, |e| e.index);
                if first.index <= durable_last {
                    return Err(format!(
                        "leader append-only: leader {id} of term {} rewrote its log from {}",
                        st.term, first.index
                    ));
                }
            }
        }
        if st.role == Role::Leader {
            self.led.insert(id, st.term);
        } else {
            self.led.remove(&id);
        }
        // Log matching, inductively: entries with the same index and term
        // have the same content and the same predecessor term.
        for e in &rd.entries {
            let prev_term = r.raft_log().term(e.index - 1).unwrap_or(0);
            let key = (e.index, e.term);
            match self.entries.get(&key) {
                Some((pt, kind, data)) => {
                    if *pt != prev_term || *kind != e.kind || *data != e.data {
                        return Err(format!(
                            "log matching: node {id} holds a different entry {} of term {} than seen before",
                            e.index, e.term
                        ));
                    }
                }
                None => {
                    self.entries
                        .insert(key, (prev_term, e.kind, e.data.clone()));
                }
            }
        }
        Ok(())
    }

    /// Node `id`'s state after its Ready was handled: election safety,
    /// leader completeness, commit safety.
    pub fn node(&mut self, id: NodeId, r: &Raft) -> Result<(), String> {
        let st = r.status();
        if st.role == Role::Leader {
            match self.leaders.get(&st.term) {
                Some(&other) if other != id => {
                    return Err(format!(
                        "election safety: nodes {other} and {id} both lead term {}",
                        st.term
                    ));
                }
                Some(_) => {}
                None => {
                    self.leaders.insert(st.term, id);
                    // Leader completeness: a new leader holds every committed entry.
                    for (&index, &term) in self.committed.range(st.snapshot_index + 1..) {
                        if r.raft_log().term(index) != Some(term) {
                            return Err(format!(
                                "leader completeness: leader {id} of term {} lacks committed entry {index} (term {term})",
                                st.term
                            ));
                        }
                    }
                }
            }
        }
        let seen = self
            .commit_seen
            .get(&id)
            .copied()
            .unwrap_or(0)
            .max(st.snapshot_index);
        for index in seen + 1..=st.commit {
            let Some(term) = r.raft_log().term(index) else {
                continue;
            };
            match self.committed.get(&index) {
                Some(&t) if t != term => {
                    return Err(format!(
                        "commit safety: node {id} committed term {term} at {index}, another node term {t}"
                    ));
                }
                Some(_) => {}
                None => {
                    self.committed.insert(index, term);
                }
            }
        }
        self.commit_seen.insert(id, st.commit);
        self.max_commit = self.max_commit.max(st.commit);
        Ok(())
    }

    /// Node `id`'s state machine restored from a snapshot (`before` is the
    /// one it replaces): never older than what it applied.
    pub fn restored(
        &mut self,
        id: NodeId,
        before: &HashMachine,
        after: &HashMachine,
    ) -> Result<(), String> {
        self.snapshots_installed += 1;
        if after.applied < before.applied {
            return Err(format!(
                "state machine rollback: node {id} replaced its state at {} with a snapshot at {}",
                before.applied, after.applied
            ));
        }
        self.applied(id, after)
    }

    /// Node `id` applied `e` (already folded into `sm`).
    pub fn applied_entry(
        &mut self,
        id: NodeId,
        kind: EntryKind,
        sm: &HashMachine,
    ) -> Result<(), String> {
        if kind == EntryKind::ConfChange && !self.applied.contains_key(&sm.applied) {
            self.conf_changes += 1;
        }
        self.applied(id, sm)
    }

    /// State machine safety: no two nodes reach different states at one index.
    fn applied(&mut self, id: NodeId, sm: &HashMachine) -> Result<(), String> {
        if sm.applied == 0 {
            return Ok(());
        }
        match self.applied.get(&sm.applied) {
            Some(&h) if h != sm.hash => Err(format!(
                "state machine safety: node {id} applied different entries up to index {}",
                sm.applied
            )),
            Some(_) => Ok(()),
            None => {
                self.applied.insert(sm.applied, sm.hash);
                Ok(())
            }
        }
    }

    /// A read started now must see everything committed so far.
    pub fn read_started(&mut self, ctx: Vec<u8>) -> u64 {
        let floor = self.max_commit;
        self.reads.insert(ctx, floor);
        floor
    }

    /// Read linearizability: a released read is at least its floor.
    pub fn read_released(&mut self, id: NodeId, rs: &ReadState) -> Result<(), String> {
        let Some(floor) = self.reads.remove(&rs.ctx) else {
            return Err(format!(
                "node {id} released an unknown or duplicate read {:?}",
                rs.ctx
            ));
        };
        if rs.index < floor {
            return Err(format!(
                "read linearizability: node {id} released a read at {} but {floor} was committed before it began",
                rs.index
            ));
        }
        self.reads_served += 1;
        Ok(())
    }
}
