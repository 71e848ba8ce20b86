//! The network the driver owns: one TCP proxy per directed link between
//! nodes, so that every byte between them passes through the harness.

pub mod proxy;
