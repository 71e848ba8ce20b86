//! Conversion between the core's messages and the peer protocol
//! (raft.proto). Kept apart so that the core never sees a prost type.

use crate::raft::{
    ConfState, Entry, EntryKind, Message, MessageKind, NodeId, Snapshot, SnapshotMeta,
};
use raft_proto::raftpb::{self, raft_message::Msg};

/// Why an incoming peer message was refused.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("message from cluster {got}, this node belongs to cluster {want}")]
    WrongCluster { got: u64, want: u64 },
    #[error("message addressed to node {got}, this is node {want}")]
    WrongNode { got: u64, want: u64 },
    #[error("message without {0}")]
    Missing(&'static str),
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// The largest snapshot a node takes in (its chunks are buffered until the
/// last one): a peer streaming chunks forever must not fill the memory.
pub const MAX_SNAPSHOT_BYTES: u64 = 1 << 30;

fn header(cluster_id: u64, m: &Message) -> Option<raftpb::Header> {
    Some(raftpb::Header {
        cluster_id,
        from: m.from,
        to: m.to,
        term: m.term,
    })
}

fn entry_to_wire(e: Entry) -> raftpb::Entry {
    raftpb::Entry {
        term: e.term,
        index: e.index,
        kind: match e.kind {
            EntryKind::Normal => raftpb::EntryKind::Normal as i32,
            EntryKind::ConfChange => raftpb::EntryKind::ConfChange as i32,
        },
        data: e.data,
    }
}

fn entry_from_wire(e: raftpb::Entry) -> Entry {
    Entry {
        term: e.term,
        index: e.index,
        kind: if e.kind == raftpb::EntryKind::ConfChange as i32 {
            EntryKind::ConfChange
        } else {
            EntryKind::Normal
        },
        data: e.data,
    }
}

/// Converts a core message to the stream form. InstallSnapshot is not sent
/// on the stream (see [`snapshot_chunks`]); it returns `None` for it.
pub fn to_wire(cluster_id: u64, m: Message) -> Option<raftpb::RaftMessage> {
    let header = header(cluster_id, &m);
    let msg = match m.kind {
        MessageKind::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            commit,
            heartbeat,
            context,
        } => Msg::AppendEntries(raftpb::AppendEntriesRequest {
            header,
            prev_log_index,
            prev_log_term,
            entries: entries.into_iter().map(entry_to_wire).collect(),
            leader_commit: commit,
            context,
            heartbeat,
        }),
        MessageKind::AppendEntriesResponse {
            reject,
            index,
            conflict_term,
            conflict_index,
            heartbeat,
            context,
        } => Msg::AppendEntriesResponse(raftpb::AppendEntriesResponse {
            header,
            reject,
            index,
            conflict_term,
            conflict_index,
            context,
            heartbeat,
        }),
        MessageKind::RequestVote {
            pre_vote,
            last_log_index,
            last_log_term,
            leader_transfer,
        } => Msg::RequestVote(raftpb::RequestVoteRequest {
            header,
            last_log_index,
            last_log_term,
            pre_vote,
            leader_transfer,
        }),
        MessageKind::RequestVoteResponse { pre_vote, granted } => {
            Msg::RequestVoteResponse(raftpb::RequestVoteResponse {
                header,
                granted,
                pre_vote,
            })
        }
        MessageKind::TimeoutNow => Msg::TimeoutNow(raftpb::TimeoutNowRequest { header }),
        MessageKind::InstallSnapshot { .. } => return None,
    };
    Some(raftpb::RaftMessage { msg: Some(msg) })
}

fn check_header(
    h: Option<&raftpb::Header>,
    cluster_id: u64,
    me: NodeId,
) -> Result<raftpb::Header, WireError> {
    let h = h.ok_or(WireError::Missing("header"))?;
    if h.cluster_id != cluster_id {
        return Err(WireError::WrongCluster {
            got: h.cluster_id,
            want: cluster_id,
        });
    }
    if h.to != me {
        return Err(WireError::WrongNode {
            got: h.to,
            want: me,
        });
    }
    Ok(*h)
}

/// Converts a stream message to the core's form, refusing messages for
/// another cluster or another node.
pub fn from_wire(
    cluster_id: u64,
    me: NodeId,
    m: raftpb::RaftMessage,
) -> Result<Message, WireError> {
    let msg = m.msg.ok_or(WireError::Missing("body"))?;
    let (h, kind) = match msg {
        Msg::AppendEntries(r) => (
            {
                let h = check_header(r.header.as_ref(), cluster_id, me)?;
                // The core relies on entries following prev_log_index one by
                // one; a message that says otherwise is refused here.
                if let Some((i, e)) = r
                    .entries
                    .iter()
                    .enumerate()
                    .find(|(i, e)| r.prev_log_index.checked_add(1 + *i as u64) != Some(e.index))
                {
                    return Err(WireError::Malformed(format!(
                        "entry {i} of an append after index {} has index {}",
                        r.prev_log_index, e.index
                    )));
                }
                h
            },
            MessageKind::AppendEntries {
                prev_log_index: r.prev_log_index,
                prev_log_term: r.prev_log_term,
                entries: r.entries.into_iter().map(entry_from_wire).collect(),
                commit: r.leader_commit,
                heartbeat: r.heartbeat,
                context: r.context,
            },
        ),
        Msg::AppendEntriesResponse(r) => (
            check_header(r.header.as_ref(), cluster_id, me)?,
            MessageKind::AppendEntriesResponse {
                reject: r.reject,
                index: r.index,
                conflict_term: r.conflict_term,
                conflict_index: r.conflict_index,
                heartbeat: r.heartbeat,
                context: r.context,
            },
        ),
        Msg::RequestVote(r) => (
            check_header(r.header.as_ref(), cluster_id, me)?,
            MessageKind::RequestVote {
                pre_vote: r.pre_vote,
                last_log_index: r.last_log_index,
                last_log_term: r.last_log_term,
                leader_transfer: r.leader_transfer,
            },
        ),
        Msg::RequestVoteResponse(r) => (
            check_header(r.header.as_ref(), cluster_id, me)?,
            MessageKind::RequestVoteResponse {
                pre_vote: r.pre_vote,
                granted: r.granted,
            },
        ),
        Msg::TimeoutNow(r) => (
            check_header(r.header.as_ref(), cluster_id, me)?,
            MessageKind::TimeoutNow,
        ),
    };
    Ok(Message {
        from: h.from,
        to: h.to,
        term: h.term,
        kind,
    })
}

/// Splits an InstallSnapshot message into chunks of at most `chunk` bytes
/// of state-machine data; the last one has `done = true`.
pub fn snapshot_chunks(
    cluster_id: u64,
    m: &Message,
    chunk: usize,
) -> Vec<raftpb::InstallSnapshotChunk> {
    let MessageKind::InstallSnapshot { snapshot } = &m.kind else {
        return Vec::new();
    };
    let conf = Some(raftpb::ConfState {
        voters: snapshot.meta.conf.voters.clone(),
        learners: snapshot.meta.conf.learners.clone(),
        voters_outgoing: snapshot.meta.conf.voters_outgoing.clone(),
    });
    let data = &snapshot.data;
    let n = data.len().div_ceil(chunk.max(1)).max(1);
    (0..n)
        .map(|i| {
            let lo = i * chunk;
            let hi = (lo + chunk).min(data.len());
            raftpb::InstallSnapshotChunk {
                header: header(cluster_id, m),
                last_index: snapshot.meta.index,
                last_term: snapshot.meta.term,
                conf: if i == 0 { conf.clone() } else { None },
                offset: lo as u64,
                data: data[lo..hi].to_vec(),
                done: i + 1 == n,
            }
        })
        .collect()
}

/// Reassembles snapshot chunks (in order, offsets checked) into a core
/// InstallSnapshot message.
pub struct SnapshotAssembler {
    first: Option<raftpb::InstallSnapshotChunk>,
    data: Vec<u8>,
    limit: u64,
}

impl Default for SnapshotAssembler {
    fn default() -> Self {
        SnapshotAssembler::with_limit(MAX_SNAPSHOT_BYTES)
    }
}

impl SnapshotAssembler {
    /// An assembler that refuses snapshots over `limit` bytes.
    pub fn with_limit(limit: u64) -> Self {
        SnapshotAssembler {
            first: None,
            data: Vec::new(),
            limit,
        }
    }

    /// Adds a chunk; returns the whole message after the last one.
    pub fn push(
        &mut self,
        cluster_id: u64,
        me: NodeId,
        c: raftpb::InstallSnapshotChunk,
    ) -> Result<Option<Message>, WireError> {
        check_header(c.header.as_ref(), cluster_id, me)?;
        if c.offset != self.data.len() as u64 {
            return Err(WireError::Missing("snapshot chunk at the expected offset"));
        }
        if self.data.len() as u64 + c.data.len() as u64 > self.limit {
            return Err(WireError::Malformed(format!(
                "snapshot over the limit of {} bytes",
                self.limit
            )));
        }
        self.data.extend_from_slice(&c.data);
        let done = c.done;
        if self.first.is_none() {
            self.first = Some(c);
        }
        if !done {
            return Ok(None);
        }
        let first = self.first.take().expect("first chunk kept");
        let h = first.header.expect("checked");
        let conf = first
            .conf
            .ok_or(WireError::Missing("snapshot membership"))?;
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                index: first.last_index,
                term: first.last_term,
                conf: ConfState {
                    voters: conf.voters,
                    learners: conf.learners,
                    voters_outgoing: conf.voters_outgoing,
                },
            },
            data: std::mem::take(&mut self.data),
        };
        Ok(Some(Message {
            from: h.from,
            to: h.to,
            term: h.term,
            kind: MessageKind::InstallSnapshot { snapshot },
        }))
    }
}
