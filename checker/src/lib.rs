//! raft-checker: histories, models, the linearizability search, reports.
//!
//! The driver links this crate: [`check_history`] decides whether a history
//! is linearizable, [`report::write_run_outputs`] writes results.json, the
//! plots and index.html into a run folder, and [`Validity::exit_code`] maps
//! the verdict to the process exit code.

#![warn(missing_docs)]

pub mod bench;
pub mod check;
pub mod closure;
pub mod compact;
pub mod compact_store;
pub mod compressed;
pub mod edn;
pub mod error;
pub mod fault_lanes;
pub mod fault_table;
pub mod faults;
pub mod generate;
pub mod hints;
pub mod history;
pub mod history_check;
pub mod impossible;
pub mod input;
pub mod jepsen;
pub mod jobs;
pub mod key_check;
pub mod linset;
pub mod memory;
pub mod model;
pub mod operation;
pub mod palette;
pub mod pieces;
pub mod plot;
pub mod plot_legend;
pub mod plot_sample;
pub mod register;
pub mod register_hints;
pub mod report;
pub mod run_context;
pub mod search;
pub mod shape;
pub mod stats;
pub mod stream;
pub mod verdict;
pub mod verdict_text;
pub mod witness;
pub mod witness_timeline;

pub use check::{CheckOptions, CheckResult, Explanation, KeyResult, OpRef, Validity};
pub use error::HistoryError;
pub use history::{Event, EventType, History, HistoryWriter, Process};
pub use history_check::{check_history, check_with_model};
pub use register::RegisterKind;

/// Exit code: the history is linearizable.
pub const EXIT_VALID: i32 = 0;
/// Exit code: a violation was found.
pub const EXIT_INVALID: i32 = 1;
/// Exit code: bad usage or bad input.
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit code: the checker ran out of time or memory.
pub const EXIT_UNKNOWN: i32 = 3;
