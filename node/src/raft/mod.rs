//! The Raft core: a plain struct driven by `step`, `tick`, `propose`,
//! `read_index`, and drained through `ready` / `advance`. No tokio, no
//! sockets, no files, no clock.
//!
//! # The caller's loop
//!
//! ```text
//! loop {
//!     feed: raft.tick() every tick, raft.step(msg) for each peer message,
//!           raft.propose(cmd) / raft.read_index(ctx) for clients
//!     if raft.has_ready() {
//!         let rd = raft.ready();
//!         persist rd.snapshot, rd.entries, rd.hard_state   (one fsync)
//!         send rd.messages                                  (only now)
//!         restore rd.snapshot, apply rd.committed_entries   (in order)
//!         serve rd.read_states once applied >= index
//!         raft.advance(rd);
//!     }
//! }
//! ```
//!
//! Every message in a Ready depends only on state that the same or an
//! earlier Ready asked to persist, so "persist, then send" is the whole
//! durability contract. Many proposals between two Readys share one
//! AppendEntries and one fsync (group commit).
//!
//! # Recovery
//!
//! On restart the caller restores its state machine from the latest
//! snapshot itself and builds the core with [`InitialState`]; the core
//! starts with `applied` at the snapshot index and hands out the committed
//! entries after it again in the first Ready.
//!
//! # Memory
//!
//! The core keeps the whole log since the last snapshot in memory (storage
//! only persists it): the caller takes a snapshot of its state machine and
//! calls [`Raft::compact`] regularly, which also bounds what a restart replays.
//!
//! # Membership
//!
//! Single-server changes ([`ConfChange`]), in effect as soon as appended and
//! undone if truncated; see [`conf`]. The first leader of a new cluster
//! writes the bootstrap configuration into the log as `AddVoter` entries
//! with an empty context, so that nodes added later learn it; the caller's
//! peer table should keep the addresses it was started with when such an
//! entry commits. A node joins as a learner (`AddLearner`) and becomes a
//! voter (`AddVoter`) once it has caught up; [`Ready::conf`] reports every
//! change of the configuration in effect.
//!
//! # Broken invariants
//!
//! Facts no correct cluster produces (an append that contradicts the
//! committed log, two leaders in one term, an ack of something never sent,
//! a commit index going back, a recovered log that contradicts itself) are
//! refused and reported in [`Ready::violations`]; see [`invariant`].

#![warn(missing_docs)]

pub mod conf;
pub mod config;
pub mod error;
pub mod invariant;
pub mod message;
pub mod progress;
pub mod quorum;
#[allow(clippy::module_inception)]
pub mod raft;
pub mod raft_log;
pub mod read_only;
pub mod ready;
pub mod types;

pub use conf::ConfChange;
pub use config::Config;
pub use error::RaftError;
pub use invariant::Violation;
pub use message::{Message, MessageKind};
pub use raft::{InitialState, Raft};
pub use read_only::ReadState;
pub use ready::{Ready, Role, SoftState, Status};
pub use types::*;
