//! Wire types shared by raft-node (server) and raft-driver (client).
//!
//! `raftpb` is the peer protocol between nodes; `kvpb` is the client API.

/// Peer RPCs: AppendEntries, RequestVote (and pre-vote), InstallSnapshot, TimeoutNow.
pub mod raftpb {
    tonic::include_proto!("raftpb");
}

/// Client API: the KV operations, Status and the admin calls.
pub mod kvpb {
    tonic::include_proto!("kvpb");
}
