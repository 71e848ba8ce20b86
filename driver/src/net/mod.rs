//! The network the driver owns: one TCP proxy per directed link between
//! nodes, so that every byte between them passes through the harness, with
//! the faults of each link as layers that compose (`link_state`), and the
//! message faults on raft-node's peer streams (`frames`, `messages`).

pub mod frames;
pub mod link_state;
pub mod messages;
pub mod proxy;
