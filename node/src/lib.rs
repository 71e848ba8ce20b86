//! raft-node: a Raft key-value server.
//!
//! - [`raft`]: the consensus core, a deterministic state machine with no I/O.
//! - [`storage`]: the write-ahead log, hard state and snapshots on disk.
//! - [`kv`]: the replicated key-value state machine.

pub mod kv;
pub mod raft;
pub mod storage;
