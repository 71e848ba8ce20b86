//! The Raft core: a plain struct driven by `step`, `tick`, `propose`,
//! `read_index`, and drained through `ready` / `advance`. No tokio, no
//! sockets, no files, no clock.
//!
//! The contract with the caller: for each [`Ready`], persist the snapshot,
//! entries and hard state (fsync), then send the messages, then apply the
//! committed entries, then call [`Raft::advance`]. Every message in a Ready
//! depends only on state that the same or an earlier Ready asked to persist.

pub mod conf;
pub mod config;
pub mod error;
pub mod message;
pub mod progress;
pub mod quorum;
#[allow(clippy::module_inception)]
pub mod raft;
pub mod raft_log;
pub mod read_only;
pub mod ready;
pub mod sim;
pub mod types;

pub use conf::ConfChange;
pub use config::Config;
pub use error::RaftError;
pub use message::{Message, MessageKind};
pub use raft::{InitialState, Raft};
pub use read_only::ReadState;
pub use ready::{Ready, Role, SoftState, Status};
pub use types::*;
