//! raft-node: a Raft key-value server.
//!
//! - [`raft`]: the consensus core, a deterministic state machine with no I/O.
//! - [`storage`]: the write-ahead log, hard state and snapshots on disk.
//! - [`kv`]: the replicated key-value state machine.
//! - [`node_loop`]: the thread that drives the core, storage and state machine.
//! - [`server`], [`transport`], [`wire`]: the tonic services, outgoing peer
//!   links, and conversion between core messages and the wire.
//! - [`bugs`], [`failpoint`]: deliberate defects and run-time crash points
//!   that prove the harness catches what it claims to.

pub mod bugs;
pub mod failpoint;
pub mod kv;
pub mod node_loop;
pub mod raft;
pub mod server;
pub mod storage;
pub mod transport;
pub mod wire;
