//! etcd as a second target: its members spawned from PATH on loopback, its
//! gRPC KV API as the workload client, its Status RPC for the leader, and
//! a router in front of each member's peer port so that the driver's link
//! proxies can cut etcd's peer traffic as they cut raft-node's.

pub mod client;
pub mod members;
pub mod peer_router;
pub mod status;

/// The generated client code for the subset of etcd's API in etcd.proto.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("etcdserverpb");
}

/// Locates `etcd` on PATH, or says why it cannot be used.
pub fn find_etcd() -> Result<std::path::PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("etcd");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err("etcd is not on PATH (Debian: apt-get install etcd-server)".into())
}

mod events;
mod setup;

use super::{
    AdminReply, AdminReq, Capabilities, Deployment, NodeApi, NodeStatus, ReadConsistency,
    ReplicaState, Target, TargetOptions, TargetSpec,
};
use crate::workload::client::{BoxFuture, Client};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::Channel;

/// etcd, spawned from PATH.
pub struct EtcdTarget;

impl Target for EtcdTarget {
    fn name(&self) -> &'static str {
        "etcd"
    }

    /// The driver has no etcd admin calls (leadership transfer,
    /// membership) and no failpoints to start it with; etcd is a Go binary,
    /// whose clock libfaketime cannot move; its peer traffic is HTTP, not
    /// frames the proxies can take apart (message faults become chunk
    /// stalls and connection resets). Pausing, killing, cutting and slowing
    /// links and power cuts apply to it as to any process.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            slow_links: true,
            // bbolt and the WAL are files in its data dir.
            data_dir_files: true,
            ..Capabilities::default()
        }
    }

    fn checkers(&self) -> &'static [&'static str] {
        // From its zap logs: "became leader at term N", and panics such as
        // "tocommit(N) is out of range" (its own invariant checks).
        &["election-safety", "node-invariants", "convergence"]
    }

    fn validate(&self, opts: &TargetOptions) -> Result<(), String> {
        if opts.bug.is_some() {
            return Err("--bug switches on defects of raft-node; it needs --target raft".into());
        }
        if opts.tls {
            return Err(
                "--tls is raft-node's mutual TLS (--tls-dir); the driver does not set up TLS for etcd: drop --tls or use --target raft"
                    .into(),
            );
        }
        Ok(())
    }

    fn binary(&self, _opts: &TargetOptions) -> Result<PathBuf, String> {
        find_etcd()
    }

    fn setup<'a>(
        &'a self,
        spec: &'a TargetSpec,
        dir: &'a Path,
    ) -> BoxFuture<'a, Result<Deployment>> {
        Box::pin(setup::setup(spec, dir))
    }
}

/// etcd's gRPC API, one lazily connected channel per member.
pub struct EtcdApi {
    channels: BTreeMap<u64, Channel>,
    read_consistency: ReadConsistency,
}

impl NodeApi for EtcdApi {
    fn client(&self, home: u64, _client_id: u64, op_timeout: Duration) -> Box<dyn Client> {
        Box::new(client::EtcdClient::open(
            &self.channels,
            home,
            op_timeout,
            self.read_consistency,
        ))
    }

    fn status_all(&self, timeout: Duration) -> BoxFuture<'_, Vec<NodeStatus>> {
        Box::pin(status::status_all(&self.channels, timeout))
    }

    fn replica_states(&self, timeout: Duration) -> BoxFuture<'_, Vec<ReplicaState>> {
        Box::pin(status::replica_states(&self.channels, timeout))
    }

    fn admin<'a>(&'a self, _node: u64, _req: &'a AdminReq) -> BoxFuture<'a, AdminReply> {
        Box::pin(async {
            AdminReply::Unsupported(
                "the driver has no etcd admin calls (transfer, membership)".into(),
            )
        })
    }

    fn collect_events(&self, dir: &Path, ids: &[u64]) -> Result<()> {
        events::translate_logs(dir, ids)
    }
}
