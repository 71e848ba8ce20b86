//! raft-driver as a library, grouped by role as Jepsen is: the `workload`
//! (operations, generator, clients, recorder), the `nemesis` (faults and
//! their schedule), the `net` (link proxies), the `target` (the system
//! under test behind one protocol: raft-node or etcd), the `report`
//! (verdict, summaries, index), and the commands (`run`, `campaign`,
//! `replay`, `bench`).

pub mod bench;
pub mod campaign;
pub mod error;
pub mod machine;
pub mod nemesis;
pub mod net;
pub mod progress;
pub mod prune;
pub mod replay;
pub mod report;
pub mod run;
pub mod target;
pub mod teeth;
pub mod workload;
