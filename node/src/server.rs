//! The tonic services on the node's one port: the peer service (snapshots;
//! other Raft messages travel on [`crate::peer_stream`]s) and the client
//! service (KV operations, Status, admin calls). Handlers only translate and
//! forward to the event loop.

use crate::kv::{Command, Op, Session};
use crate::loop_api::{AdminOp, LeaderHint, LoopHandle, ReadOutcome, Request, WriteOutcome};
use crate::wire::SnapshotAssembler;
use crate::write_path_trace as trace;
use raft_proto::kvpb::{self, kv_server::Kv};
use raft_proto::raftpb::{self, raft_server::Raft as RaftService};
use tokio::sync::oneshot;
use tonic::{Request as Req, Response, Status, Streaming};

/// The peer service: snapshots in chunks.
pub struct PeerService(pub LoopHandle);

#[tonic::async_trait]
impl RaftService for PeerService {
    async fn install_snapshot(
        &self,
        req: Req<Streaming<raftpb::InstallSnapshotChunk>>,
    ) -> Result<Response<raftpb::Ack>, Status> {
        let mut stream = req.into_inner();
        let mut asm = SnapshotAssembler::default();
        while let Some(c) = stream.message().await? {
            match asm.push(self.0.cluster_id, self.0.id, c) {
                Ok(Some(m)) => {
                    self.0.send(Request::Peer(m))?;
                    return Ok(Response::new(raftpb::Ack {}));
                }
                Ok(None) => {}
                Err(e) => return Err(Status::invalid_argument(e.to_string())),
            }
        }
        Err(Status::invalid_argument(
            "snapshot stream ended before its last chunk",
        ))
    }
}

/// The client service.
pub struct KvService(pub LoopHandle);

fn error(
    code: kvpb::Code,
    message: impl Into<String>,
    hint: Option<&LeaderHint>,
) -> Option<kvpb::Error> {
    Some(kvpb::Error {
        code: code as i32,
        message: message.into(),
        leader_id: hint.map_or(0, |h| h.id),
        leader_addr: hint.map_or(String::new(), |h| h.addr.clone()),
    })
}

fn ok() -> Option<kvpb::Error> {
    error(kvpb::Code::Ok, "", None)
}

impl KvService {
    async fn write(&self, cmd: Command) -> Result<kvpb::WriteResponse, Status> {
        trace::mark("grpc-got-write");
        let (reply, rx) = oneshot::channel();
        self.0.send(Request::Write {
            cmd: cmd.encode(),
            reply,
        })?;
        let out = write_response(self.await_outcome(rx).await);
        trace::mark("grpc-answered-write");
        Ok(out)
    }

    async fn await_outcome(&self, rx: oneshot::Receiver<WriteOutcome>) -> WriteOutcome {
        match tokio::time::timeout(self.0.request_timeout, rx).await {
            Ok(Ok(out)) => out,
            // Once handed to the loop, the request may have been appended.
            Ok(Err(_)) => WriteOutcome::Unknown("node stopped while the write was pending".into()),
            Err(_) => WriteOutcome::Unknown("timed out waiting for commit".into()),
        }
    }

    /// Under TLS, only a client whose certificate names `admin` may make
    /// admin and Failpoint calls; the refusal says why.
    fn authorize_admin<T>(&self, req: &Req<T>) -> Result<(), Status> {
        if !self.0.tls {
            return Ok(());
        }
        let certs = req.peer_certs();
        crate::tls::check_admin(certs.as_deref().map(Vec::as_slice))
            .map_err(Status::permission_denied)
    }

    async fn admin(&self, op: AdminOp) -> Result<Response<kvpb::AdminResponse>, Status> {
        let (reply, rx) = oneshot::channel();
        self.0.send(Request::Admin { op, reply })?;
        let w = write_response(self.await_outcome(rx).await);
        Ok(Response::new(kvpb::AdminResponse { error: w.error }))
    }
}

fn write_response(out: WriteOutcome) -> kvpb::WriteResponse {
    match out {
        WriteOutcome::Applied { index, result } => kvpb::WriteResponse {
            error: ok(),
            succeeded: result.succeeded,
            found: result.value.is_some(),
            value: result.value.unwrap_or_default(),
            index,
        },
        WriteOutcome::NotLeader(h) => kvpb::WriteResponse {
            error: error(kvpb::Code::NotLeader, "not the leader", Some(&h)),
            ..Default::default()
        },
        WriteOutcome::Unknown(why) => kvpb::WriteResponse {
            error: error(kvpb::Code::OutcomeUnknown, why, None),
            ..Default::default()
        },
        WriteOutcome::Unavailable(why) => kvpb::WriteResponse {
            error: error(kvpb::Code::Unavailable, why, None),
            ..Default::default()
        },
    }
}

fn session(s: Option<kvpb::Session>) -> Option<Session> {
    s.filter(|s| s.client_id != 0).map(|s| Session {
        client_id: s.client_id,
        seq: s.seq,
    })
}

fn check_key(key: &str) -> Result<(), kvpb::WriteResponse> {
    if key.is_empty() {
        return Err(kvpb::WriteResponse {
            error: error(kvpb::Code::BadRequest, "empty key", None),
            ..Default::default()
        });
    }
    Ok(())
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn get(&self, req: Req<kvpb::GetRequest>) -> Result<Response<kvpb::GetResponse>, Status> {
        let key = req.into_inner().key;
        let (reply, rx) = oneshot::channel();
        self.0.send(Request::Read { key, reply })?;
        let out = match tokio::time::timeout(self.0.request_timeout, rx).await {
            Ok(Ok(out)) => out,
            // A read changes nothing: not answering it is a certain "not done".
            Ok(Err(_)) => ReadOutcome::Unavailable("node stopped".into()),
            Err(_) => ReadOutcome::Unavailable("timed out confirming leadership".into()),
        };
        let resp = match out {
            ReadOutcome::Value(v) => kvpb::GetResponse {
                error: ok(),
                found: v.is_some(),
                value: v.unwrap_or_default(),
            },
            ReadOutcome::NotLeader(h) => kvpb::GetResponse {
                error: error(kvpb::Code::NotLeader, "not the leader", Some(&h)),
                ..Default::default()
            },
            ReadOutcome::Unavailable(why) => kvpb::GetResponse {
                error: error(kvpb::Code::Unavailable, why, None),
                ..Default::default()
            },
        };
        Ok(Response::new(resp))
    }

    async fn put(
        &self,
        req: Req<kvpb::PutRequest>,
    ) -> Result<Response<kvpb::WriteResponse>, Status> {
        let r = req.into_inner();
        if let Err(e) = check_key(&r.key) {
            return Ok(Response::new(e));
        }
        let cmd = Command {
            op: Op::Put {
                key: r.key,
                value: r.value,
            },
            session: session(r.session),
        };
        Ok(Response::new(self.write(cmd).await?))
    }

    async fn cas(
        &self,
        req: Req<kvpb::CasRequest>,
    ) -> Result<Response<kvpb::WriteResponse>, Status> {
        let r = req.into_inner();
        if let Err(e) = check_key(&r.key) {
            return Ok(Response::new(e));
        }
        let op = Op::Cas {
            key: r.key,
            expected: r.expected,
            new: r.new_value,
        };
        let cmd = Command {
            op,
            session: session(r.session),
        };
        Ok(Response::new(self.write(cmd).await?))
    }

    async fn append(
        &self,
        req: Req<kvpb::AppendRequest>,
    ) -> Result<Response<kvpb::WriteResponse>, Status> {
        let r = req.into_inner();
        if let Err(e) = check_key(&r.key) {
            return Ok(Response::new(e));
        }
        let cmd = Command {
            op: Op::Append {
                key: r.key,
                suffix: r.suffix,
            },
            session: session(r.session),
        };
        Ok(Response::new(self.write(cmd).await?))
    }

    async fn delete(
        &self,
        req: Req<kvpb::DeleteRequest>,
    ) -> Result<Response<kvpb::WriteResponse>, Status> {
        let r = req.into_inner();
        if let Err(e) = check_key(&r.key) {
            return Ok(Response::new(e));
        }
        let cmd = Command {
            op: Op::Delete { key: r.key },
            session: session(r.session),
        };
        Ok(Response::new(self.write(cmd).await?))
    }

    async fn status(
        &self,
        _req: Req<kvpb::StatusRequest>,
    ) -> Result<Response<kvpb::StatusResponse>, Status> {
        let (reply, rx) = oneshot::channel();
        self.0.send(Request::Status { reply })?;
        let s = tokio::time::timeout(self.0.request_timeout, rx)
            .await
            .map_err(|_| Status::deadline_exceeded("status timed out"))?
            .map_err(|_| Status::unavailable("node stopped"))?;
        Ok(Response::new(kvpb::StatusResponse {
            id: s.id,
            role: s.role,
            term: s.term,
            leader_id: s.leader_id,
            commit_index: s.commit,
            applied_index: s.applied,
            voters: s.conf.voters,
            learners: s.conf.learners,
            last_index: s.last_index,
            snapshot_index: s.snapshot_index,
            cluster_id: self.0.cluster_id,
            state_digest: s.state_digest,
        }))
    }

    async fn transfer_leader(
        &self,
        req: Req<kvpb::TransferLeaderRequest>,
    ) -> Result<Response<kvpb::AdminResponse>, Status> {
        self.authorize_admin(&req)?;
        self.admin(AdminOp::TransferLeader(req.into_inner().target_id))
            .await
    }

    async fn add_voter(
        &self,
        req: Req<kvpb::MemberRequest>,
    ) -> Result<Response<kvpb::AdminResponse>, Status> {
        self.authorize_admin(&req)?;
        let r = req.into_inner();
        self.admin(AdminOp::AddVoter(r.node_id, r.addr)).await
    }

    async fn add_learner(
        &self,
        req: Req<kvpb::MemberRequest>,
    ) -> Result<Response<kvpb::AdminResponse>, Status> {
        self.authorize_admin(&req)?;
        let r = req.into_inner();
        self.admin(AdminOp::AddLearner(r.node_id, r.addr)).await
    }

    async fn remove_node(
        &self,
        req: Req<kvpb::MemberRequest>,
    ) -> Result<Response<kvpb::AdminResponse>, Status> {
        self.authorize_admin(&req)?;
        self.admin(AdminOp::Remove(req.into_inner().node_id)).await
    }

    async fn failpoint(
        &self,
        req: Req<kvpb::FailpointRequest>,
    ) -> Result<Response<kvpb::AdminResponse>, Status> {
        if !self.0.test_hooks {
            return Err(Status::permission_denied(
                "failpoints are test hooks: this node was started without --test-hooks",
            ));
        }
        self.authorize_admin(&req)?;
        let r = req.into_inner();
        // Handled here, not by the loop: arming must work while the loop is
        // busy, and the loop only reads the flag.
        let error = match r.name.parse::<crate::failpoint::Failpoint>() {
            Ok(p) => {
                crate::failpoint::set(p, r.armed);
                ok()
            }
            Err(e) => error(kvpb::Code::BadRequest, e, None),
        };
        Ok(Response::new(kvpb::AdminResponse { error }))
    }
}
