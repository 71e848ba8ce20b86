//! The integration tests that run wholly in this process (none runs the
//! `raft-checker` binary), linked as one test binary: in release mode each
//! test binary is a separate link, and the links were a large share of the
//! test build (issue 14). Each file keeps its module name, so a test is
//! still `<file>::<test>`, e.g.
//! `cargo test --release -p raft-checker --test in_process witness::`.
//!
//! `cli` and `compressed_history` run the binary and stay binaries of their
//! own.

#[path = "../common/mod.rs"]
mod common;

mod appends;
mod corpus;
mod differential;
mod fuzz_readers;
mod generated;
mod model;
mod pairing;
mod report;
mod semantics;
mod witness;
