//! The raft-node workload client: Jepsen's open / invoke / close over the
//! node's KV API, following NotLeader redirects, and classifying every
//! outcome as ok, fail (certainly not done) or info (may or may not be done).

use crate::workload::client::{BoxFuture, Client};
use crate::workload::op::{Completion, KeyKind, Op, F};
use raft_proto::kvpb::kv_client::KvClient;
use raft_proto::kvpb::{
    AppendRequest, CasRequest, Code, Error as KvError, GetRequest, PutRequest, Session,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use tonic::transport::Channel;

/// How long to wait before retrying when no leader is known.
const NO_LEADER_BACKOFF: Duration = Duration::from_millis(50);

/// The raft-node KV client, bound to its home node as a Jepsen client is
/// bound to its node: every operation starts there, so each node's request
/// path (a follower's reads included) is exercised; a NotLeader refusal is
/// followed to the leader hint, and a node that cannot be reached is skipped
/// for the next one.
pub struct RaftKvClient {
    ids: Vec<u64>,
    stubs: Vec<KvClient<Channel>>,
    home: usize,
    target: usize,
    client_id: u64,
    seq: u64,
    op_timeout: Duration,
    sticky: bool,
}

/// What one attempt at a node said.
enum Attempt {
    /// Done: the final completion.
    Done(Completion),
    /// Certainly not done; maybe try node `redirect`.
    Refused {
        reason: String,
        redirect: Option<u64>,
    },
    /// May have been done.
    Uncertain(String),
}

impl RaftKvClient {
    /// A client whose first target is `home`; `client_id` names its write
    /// session (nonzero, unique per client).
    pub fn open(
        channels: &BTreeMap<u64, Channel>,
        home: u64,
        client_id: u64,
        op_timeout: Duration,
    ) -> Self {
        let ids: Vec<u64> = channels.keys().copied().collect();
        let stubs = channels
            .values()
            .map(|c| KvClient::new(c.clone()))
            .collect();
        let target = ids.iter().position(|&i| i == home).unwrap_or(0);
        RaftKvClient {
            ids,
            stubs,
            home: target,
            target,
            client_id,
            seq: 0,
            op_timeout,
            sticky: false,
        }
    }

    /// Makes each operation start at the node that answered the previous
    /// one (the leader, once found) instead of at home, as a production
    /// client would; `bench` uses this, `run` keeps Jepsen's home binding.
    pub fn sticky(mut self) -> Self {
        self.sticky = true;
        self
    }

    /// The node this client is trying now.
    pub fn target(&self) -> u64 {
        self.ids[self.target]
    }

    fn rotate(&mut self) {
        self.target = (self.target + 1) % self.ids.len();
    }

    async fn execute(&mut self, op: &Op) -> Completion {
        let deadline = Instant::now() + self.op_timeout;
        if !self.sticky {
            self.target = self.home;
        }
        // One session seq per operation: a retry of the same operation on
        // another node is applied at most once.
        let session = if op.f.is_write() {
            self.seq += 1;
            Some(Session {
                client_id: self.client_id,
                seq: self.seq,
            })
        } else {
            None
        };
        let mut last_refusal = String::from("timed out before any node answered");
        let mut redirects = 0u32;
        let mut blind = 0usize;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Completion::fail(op.value.clone(), last_refusal);
            }
            let stub = self.stubs[self.target].clone();
            let attempt =
                match tokio::time::timeout(deadline - now, attempt(stub, op, session)).await {
                    Ok(a) => a,
                    Err(_) => Attempt::Uncertain(format!("timeout at node {}", self.target())),
                };
            match attempt {
                Attempt::Done(c) => return c,
                Attempt::Uncertain(why) => {
                    return if op.f.is_write() {
                        Completion::info(op.value.clone(), why)
                    } else {
                        Completion::fail(op.value.clone(), why)
                    };
                }
                Attempt::Refused { reason, redirect } => {
                    last_refusal = reason;
                    match redirect.and_then(|l| self.ids.iter().position(|&i| i == l)) {
                        Some(pos) if pos != self.target && redirects < 3 => {
                            redirects += 1;
                            self.target = pos;
                        }
                        _ => {
                            redirects = 0;
                            self.rotate();
                            // Try every node at once; wait only after a full
                            // round without a leader (an election is on).
                            blind += 1;
                            if blind.is_multiple_of(self.ids.len()) {
                                let left = deadline.saturating_duration_since(Instant::now());
                                tokio::time::sleep(NO_LEADER_BACKOFF.min(left)).await;
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Client for RaftKvClient {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(self.execute(op))
    }
}

fn decode(kind: KeyKind, found: bool, bytes: &[u8]) -> Value {
    if !found {
        return Value::Null;
    }
    let s = String::from_utf8_lossy(bytes);
    match kind {
        KeyKind::Append => Value::String(s.into_owned()),
        // Register values are integers as decimal strings on the wire.
        KeyKind::Register => match s.parse::<i64>() {
            Ok(n) => json!(n),
            Err(_) => Value::String(s.into_owned()),
        },
    }
}

fn encode(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    }
}

/// Classifies a reply's error (absent means OK).
fn classify(err: Option<&KvError>, f: F) -> Result<(), Attempt> {
    let Some(e) = err else { return Ok(()) };
    match Code::try_from(e.code).unwrap_or(Code::OutcomeUnknown) {
        Code::Ok => Ok(()),
        Code::NotLeader => Err(Attempt::Refused {
            reason: format!("not leader: {}", e.message),
            redirect: (e.leader_id != 0).then_some(e.leader_id),
        }),
        Code::Unavailable => Err(Attempt::Refused {
            reason: format!("unavailable: {}", e.message),
            redirect: None,
        }),
        Code::OutcomeUnknown if f.is_write() => Err(Attempt::Uncertain(format!(
            "outcome unknown: {}",
            e.message
        ))),
        // A read changes nothing: an unknown read is a failed read.
        Code::OutcomeUnknown => Err(Attempt::Refused {
            reason: format!("read outcome unknown: {}", e.message),
            redirect: None,
        }),
        Code::BadRequest => Err(Attempt::Done(Completion {
            kind: raft_checker::history::EventType::Fail,
            value: Value::Null,
            error: Some(format!("bad request: {}", e.message)),
        })),
    }
}

fn transport_error(status: tonic::Status, f: F) -> Attempt {
    let why = format!("{:?}: {}", status.code(), status.message());
    if crate::target::never_sent(&status) || !f.is_write() {
        Attempt::Refused {
            reason: why,
            redirect: None,
        }
    } else {
        Attempt::Uncertain(why)
    }
}

async fn attempt(mut stub: KvClient<Channel>, op: &Op, session: Option<Session>) -> Attempt {
    let key = op.key.clone();
    match op.f {
        F::Read => match stub.get(GetRequest { key }).await {
            Err(s) => transport_error(s, op.f),
            Ok(r) => {
                let r = r.into_inner();
                if let Err(a) = classify(r.error.as_ref(), op.f) {
                    return with_value(a, &op.value);
                }
                Attempt::Done(Completion::ok(decode(op.kind, r.found, &r.value)))
            }
        },
        F::Write | F::Append => {
            let reply = if op.f == F::Write {
                stub.put(PutRequest {
                    key,
                    value: encode(&op.value),
                    session,
                })
                .await
            } else {
                stub.append(AppendRequest {
                    key,
                    suffix: encode(&op.value),
                    session,
                })
                .await
            };
            match reply {
                Err(s) => transport_error(s, op.f),
                Ok(r) => match classify(r.into_inner().error.as_ref(), op.f) {
                    Err(a) => with_value(a, &op.value),
                    Ok(()) => Attempt::Done(Completion::ok(op.value.clone())),
                },
            }
        }
        F::Cas => {
            let expected = match &op.value[0] {
                Value::Null => None,
                v => Some(encode(v)),
            };
            let reply = stub
                .cas(CasRequest {
                    key,
                    expected,
                    new_value: encode(&op.value[1]),
                    session,
                })
                .await;
            match reply {
                Err(s) => transport_error(s, op.f),
                Ok(r) => {
                    let r = r.into_inner();
                    match classify(r.error.as_ref(), op.f) {
                        Err(a) => with_value(a, &op.value),
                        Ok(()) if r.succeeded => Attempt::Done(Completion::ok(op.value.clone())),
                        // The comparison failed: certainly not written.
                        Ok(()) => Attempt::Done(Completion::fail(
                            op.value.clone(),
                            format!(
                                "cas mismatch: current {}",
                                decode(op.kind, r.found, &r.value)
                            ),
                        )),
                    }
                }
            }
        }
    }
}

/// Completions built by `classify` do not know the op's value yet.
fn with_value(a: Attempt, value: &Value) -> Attempt {
    match a {
        Attempt::Done(mut c) => {
            c.value = value.clone();
            Attempt::Done(c)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_refused_is_never_sent() {
        let s = tonic::Status::unavailable("tcp connect error: Connection refused (os error 111)");
        assert!(crate::target::never_sent(&s));
        let s = tonic::Status::unavailable("connection reset by peer");
        assert!(!crate::target::never_sent(&s));
        let s = tonic::Status::unknown("tcp connect error");
        assert!(!crate::target::never_sent(&s));
    }

    #[test]
    fn a_transport_error_on_a_write_is_uncertain_but_on_a_read_is_a_refusal() {
        let s = || tonic::Status::unavailable("connection reset by peer");
        assert!(matches!(
            transport_error(s(), F::Write),
            Attempt::Uncertain(_)
        ));
        assert!(matches!(
            transport_error(s(), F::Cas),
            Attempt::Uncertain(_)
        ));
        assert!(matches!(
            transport_error(s(), F::Append),
            Attempt::Uncertain(_)
        ));
        assert!(matches!(
            transport_error(s(), F::Read),
            Attempt::Refused { .. }
        ));
    }

    fn err(code: Code, leader: u64) -> KvError {
        KvError {
            code: code as i32,
            message: "m".into(),
            leader_id: leader,
            leader_addr: String::new(),
        }
    }

    #[test]
    fn error_codes_are_classified_by_certainty() {
        assert!(classify(None, F::Write).is_ok());
        assert!(classify(Some(&err(Code::Ok, 0)), F::Write).is_ok());
        assert!(matches!(
            classify(Some(&err(Code::NotLeader, 2)), F::Write),
            Err(Attempt::Refused {
                redirect: Some(2),
                ..
            })
        ));
        assert!(matches!(
            classify(Some(&err(Code::NotLeader, 0)), F::Write),
            Err(Attempt::Refused { redirect: None, .. })
        ));
        assert!(matches!(
            classify(Some(&err(Code::OutcomeUnknown, 0)), F::Append),
            Err(Attempt::Uncertain(_))
        ));
        assert!(matches!(
            classify(Some(&err(Code::OutcomeUnknown, 0)), F::Read),
            Err(Attempt::Refused { .. })
        ));
        assert!(matches!(
            classify(Some(&err(Code::Unavailable, 0)), F::Cas),
            Err(Attempt::Refused { .. })
        ));
        match classify(Some(&err(Code::BadRequest, 0)), F::Write) {
            Err(Attempt::Done(c)) => assert_eq!(c.kind, raft_checker::history::EventType::Fail),
            _ => panic!("bad request must be a certain failure"),
        }
    }

    #[test]
    fn register_values_decode_as_integers_and_appends_as_strings() {
        assert_eq!(decode(KeyKind::Register, true, b"42"), json!(42));
        assert_eq!(decode(KeyKind::Register, false, b""), Value::Null);
        assert_eq!(decode(KeyKind::Append, true, b"1,2,"), json!("1,2,"));
        assert_eq!(encode(&json!(7)), b"7");
        assert_eq!(encode(&json!("3,")), b"3,");
    }
}
