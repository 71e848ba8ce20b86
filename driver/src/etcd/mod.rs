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
