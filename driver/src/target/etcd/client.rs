//! The workload client for etcd: read, write and cas map onto Range, Put and
//! a Txn comparing the value; append is a Txn loop (read the value and its
//! mod revision, then put the extended value if the revision is unchanged).
//! Outcomes are classified as in the raft-node client: a write that may
//! have reached etcd and got no answer is info, never fail.

use super::pb::compare::{CompareResult, CompareTarget, TargetUnion};
use super::pb::kv_client::KvClient;
use super::pb::request_op::Request;
use super::pb::{Compare, PutRequest, RangeRequest, RequestOp, TxnRequest};
use crate::target::ReadConsistency;
use crate::workload::client::{BoxFuture, Client};
use crate::workload::op::{Completion, KeyKind, Op, F};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use tonic::transport::Channel;

/// How long to wait before trying the next member after a refusal.
const REFUSED_BACKOFF: Duration = Duration::from_millis(50);

/// An etcd client bound to its home member (as a Jepsen client is bound to
/// its node): every operation starts there; a member that refuses the
/// connection or cannot serve a read is skipped for the next one. etcd
/// forwards writes to its leader itself.
pub struct EtcdClient {
    stubs: Vec<KvClient<Channel>>,
    home: usize,
    target: usize,
    op_timeout: Duration,
    serializable: bool,
}

/// What one attempt at a member said.
#[derive(Debug)]
enum Attempt {
    /// Done: the final completion.
    Done(Completion),
    /// Certainly not done; try another member.
    Refused(String),
    /// May have been done.
    Uncertain(String),
}

impl EtcdClient {
    /// A client whose first member is `home` (a key of `channels`).
    pub fn open(
        channels: &BTreeMap<u64, Channel>,
        home: u64,
        op_timeout: Duration,
        reads: ReadConsistency,
    ) -> Self {
        let target = channels.keys().position(|&i| i == home).unwrap_or(0);
        EtcdClient {
            stubs: channels
                .values()
                .map(|c| KvClient::new(c.clone()))
                .collect(),
            home: target,
            target,
            op_timeout,
            serializable: reads == ReadConsistency::Serializable,
        }
    }

    async fn execute(&mut self, op: &Op) -> Completion {
        let deadline = Instant::now() + self.op_timeout;
        self.target = self.home;
        let mut last_refusal = String::from("timed out before any member answered");
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Completion::fail(op.value.clone(), last_refusal);
            }
            let stub = self.stubs[self.target].clone();
            let attempt = match tokio::time::timeout(
                deadline - now,
                attempt(stub, op, self.serializable, deadline),
            )
            .await
            {
                Ok(a) => a,
                Err(_) => Attempt::Uncertain(format!("timeout at member {}", self.target + 1)),
            };
            match attempt {
                Attempt::Done(c) => return c,
                Attempt::Uncertain(why) if op.f.is_write() => {
                    return Completion::info(op.value.clone(), why)
                }
                Attempt::Uncertain(why) => return Completion::fail(op.value.clone(), why),
                Attempt::Refused(why) => {
                    last_refusal = why;
                    self.target = (self.target + 1) % self.stubs.len();
                    let left = deadline.saturating_duration_since(Instant::now());
                    tokio::time::sleep(REFUSED_BACKOFF.min(left)).await;
                }
            }
        }
    }
}

impl Client for EtcdClient {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(self.execute(op))
    }
}

/// A failed call: certainly not done if it never left, or if it was a
/// read (a read changes nothing); otherwise it may have been applied.
fn failed_call(status: tonic::Status, write: bool) -> Attempt {
    let why = format!("{:?}: {}", status.code(), status.message());
    if crate::target::never_sent(&status) || !write {
        Attempt::Refused(why)
    } else {
        Attempt::Uncertain(why)
    }
}

/// The stored bytes of a history value (registers are decimal text).
pub fn encode(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    }
}

/// The history value of stored bytes, `None` meaning the key is absent.
pub fn decode(kind: KeyKind, bytes: Option<&[u8]>) -> Value {
    let Some(bytes) = bytes else {
        return Value::Null;
    };
    let s = String::from_utf8_lossy(bytes);
    match kind {
        KeyKind::Append => Value::String(s.into_owned()),
        KeyKind::Register => match s.parse::<i64>() {
            Ok(n) => json!(n),
            Err(_) => Value::String(s.into_owned()),
        },
    }
}

fn put(key: &str, value: Vec<u8>) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key: key.as_bytes().to_vec(),
            value,
            ..Default::default()
        })),
    }
}

/// A comparison that holds when `key` does not exist (created at revision 0).
fn absent(key: &str) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Create as i32,
        key: key.as_bytes().to_vec(),
        target_union: Some(TargetUnion::CreateRevision(0)),
        range_end: Vec::new(),
    }
}

fn compare(key: &str, target: CompareTarget, value: TargetUnion) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: target as i32,
        key: key.as_bytes().to_vec(),
        target_union: Some(value),
        range_end: Vec::new(),
    }
}

/// The value bytes and mod revision of `key`, or None if it is absent.
async fn range(
    stub: &mut KvClient<Channel>,
    key: &str,
    serializable: bool,
) -> Result<Option<(Vec<u8>, i64)>, tonic::Status> {
    let r = stub
        .range(RangeRequest {
            key: key.as_bytes().to_vec(),
            serializable,
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(r.kvs
        .into_iter()
        .next()
        .map(|kv| (kv.value, kv.mod_revision)))
}

async fn attempt(
    mut stub: KvClient<Channel>,
    op: &Op,
    serializable: bool,
    deadline: Instant,
) -> Attempt {
    let key = op.key.as_str();
    match op.f {
        F::Read => match range(&mut stub, key, serializable).await {
            Err(s) => failed_call(s, false),
            Ok(kv) => Attempt::Done(Completion::ok(decode(
                op.kind,
                kv.as_ref().map(|(v, _)| v.as_slice()),
            ))),
        },
        F::Write => {
            let req = PutRequest {
                key: key.as_bytes().to_vec(),
                value: encode(&op.value),
                ..Default::default()
            };
            match stub.put(req).await {
                Err(s) => failed_call(s, true),
                Ok(_) => Attempt::Done(Completion::ok(op.value.clone())),
            }
        }
        F::Cas => {
            let guard = match &op.value[0] {
                Value::Null => absent(key),
                v => compare(key, CompareTarget::Value, TargetUnion::Value(encode(v))),
            };
            let txn = TxnRequest {
                compare: vec![guard],
                success: vec![put(key, encode(&op.value[1]))],
                failure: vec![],
            };
            match stub.txn(txn).await {
                Err(s) => failed_call(s, true),
                Ok(r) if r.get_ref().succeeded => Attempt::Done(Completion::ok(op.value.clone())),
                // The comparison failed: certainly not written.
                Ok(_) => Attempt::Done(Completion::fail(op.value.clone(), "cas mismatch")),
            }
        }
        F::Append => append(stub, op, deadline).await,
    }
}

/// Appends by optimistic concurrency: each Txn that loses the race on the
/// mod revision is certainly not applied, so it is safe to try again.
async fn append(mut stub: KvClient<Channel>, op: &Op, deadline: Instant) -> Attempt {
    let key = op.key.as_str();
    let suffix = encode(&op.value);
    while Instant::now() < deadline {
        let current = match range(&mut stub, key, false).await {
            Ok(c) => c,
            // Nothing was written yet.
            Err(s) => return failed_call(s, false),
        };
        let (guard, mut value) = match current {
            None => (absent(key), Vec::new()),
            Some((v, rev)) => (
                compare(key, CompareTarget::Mod, TargetUnion::ModRevision(rev)),
                v,
            ),
        };
        value.extend_from_slice(&suffix);
        let txn = TxnRequest {
            compare: vec![guard],
            success: vec![put(key, value)],
            failure: vec![],
        };
        match stub.txn(txn).await {
            Err(s) => return failed_call(s, true),
            Ok(r) if r.get_ref().succeeded => {
                return Attempt::Done(Completion::ok(op.value.clone()))
            }
            Ok(_) => continue,
        }
    }
    Attempt::Refused("append lost every race on the key's revision".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_is_a_refusal_even_for_a_write() {
        let s = tonic::Status::unavailable("tcp connect error: Connection refused (os error 111)");
        assert!(matches!(failed_call(s, true), Attempt::Refused(_)));
    }

    #[test]
    fn an_unanswered_write_is_uncertain_but_an_unanswered_read_is_refused() {
        let s = || tonic::Status::unavailable("etcdserver: request timed out");
        assert!(matches!(failed_call(s(), true), Attempt::Uncertain(_)));
        assert!(matches!(failed_call(s(), false), Attempt::Refused(_)));
    }

    #[test]
    fn values_round_trip_through_their_stored_bytes() {
        assert_eq!(
            decode(KeyKind::Register, Some(&encode(&json!(42)))),
            json!(42)
        );
        assert_eq!(decode(KeyKind::Register, None), Value::Null);
        assert_eq!(
            decode(KeyKind::Append, Some(&encode(&json!("1,2,")))),
            json!("1,2,")
        );
    }

    #[test]
    fn cas_from_nothing_compares_the_create_revision_with_zero() {
        let c = absent("k");
        assert_eq!(c.target, CompareTarget::Create as i32);
        assert_eq!(c.target_union, Some(TargetUnion::CreateRevision(0)));
    }
}
