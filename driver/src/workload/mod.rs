//! The workload: operations as data, the generator that yields them, the
//! client protocol each target implements, the workers that run clients,
//! and the recorder that writes every event into the history.

pub mod client;
pub mod generator;
pub mod op;
pub mod recorder;
pub mod worker;
