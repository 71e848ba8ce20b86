//! The Raft core: a plain struct driven by `step`, `tick`, `propose`,
//! `read_index`, and drained through `ready` / `advance`. No tokio, no
//! sockets, no files, no clock.

pub mod types;
pub use types::*;
