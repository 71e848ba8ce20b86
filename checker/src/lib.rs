//! raft-checker: histories, models, the linearizability search, reports.

pub mod history;
