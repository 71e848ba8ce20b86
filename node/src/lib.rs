//! raft-node: a Raft key-value server.
//!
//! - [`cli`]: the flags and every check a start makes.
//! - [`raft`]: the consensus core, a deterministic state machine with no I/O.
//! - [`storage`]: the write-ahead log, hard state and snapshots on disk.
//! - [`kv`]: the replicated key-value state machine; [`state_digest`]: its
//!   running digest, compared across replicas.
//! - [`node_loop`]: the task that drives the core, storage and state machine;
//!   [`loop_api`]: the requests it takes and the answers it gives;
//!   [`blocking`]: how it blocks (fsync) without stalling its worker.
//! - [`server`], [`peer_stream`], [`peer_link`], [`peer_frame`],
//!   [`transport`], [`wire`]: the tonic services, the framed peer message
//!   streams (incoming, outgoing, and their framing), the set of outgoing
//!   links, and conversion between core messages and the wire.
//! - [`tls`]: mutual TLS (`--tls-dir`): the files, the rustls configs,
//!   and who may make admin calls.
//! - [`write_path_trace`]: opt-in timestamps of a write's steps.
//! - [`bugs`], [`failpoint`]: deliberate defects and run-time crash points
//!   that prove the harness catches what it claims to (`--test-hooks` only).
//! - [`events`], [`reporting`]: the structured events file (boot, role
//!   changes, broken invariants, failpoints) the harness's checkers read.

pub mod blocking;
pub mod bugs;
pub mod cli;
pub mod events;
pub mod failpoint;
pub mod kv;
pub mod loop_api;
pub mod node_loop;
pub mod peer_frame;
pub mod peer_link;
pub mod peer_stream;
pub mod raft;
pub mod reporting;
pub mod server;
pub mod state_digest;
pub mod storage;
pub mod tls;
pub mod transport;
pub mod wire;
pub mod write_path_trace;
