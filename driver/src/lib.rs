//! raft-driver as a library: cluster control, proxies, nemeses, clients,
//! generators and the `run` command, so that tests and later commands
//! (campaign, replay, bench) reuse the same parts.

pub mod bench;
pub mod campaign;
pub mod client;
pub mod cluster;
pub mod election_safety;
pub mod etcd;
pub mod generator;
pub mod nemesis;
pub mod op;
pub mod options;
pub mod progress;
pub mod proxy;
pub mod recorder;
pub mod replay;
pub mod results_index;
pub mod run;
pub mod schedule;
pub mod summary;
pub mod target;
pub mod verdict;
