//! The integration tests that run wholly in this process (no child
//! processes, no clusters, no sockets), linked as one test binary: in
//! release mode each test binary is a separate link, and the links were a
//! large share of the test build (issue 14). Each file keeps its module
//! name, so a test is still `<file>::<test>`, e.g.
//! `cargo test --release -p raft-node --test in_process storage_log::`.
//!
//! The tests that spawn processes (`cluster_process`, `kv_cli`, `node_cli`,
//! `node_failpoints`, `node_tls`, `storage_sigkill`) stay binaries of their
//! own, and so does `raft_sim` (run alone with `SEEDS`, `BUG` ...).

#[path = "../raft_support/mod.rs"]
mod raft_support;

mod fuzz_decoders;
mod kv_codec;
mod kv_store;
mod raft_bugs;
mod raft_features;
mod raft_invariants;
mod raft_membership;
mod raft_paper;
mod raft_vote_retry;
mod storage_crash;
mod storage_dir;
mod storage_group_commit;
mod storage_log;
mod storage_model;
mod storage_snapshot;
