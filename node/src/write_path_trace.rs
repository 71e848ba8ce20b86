//! Opt-in timestamps of the steps a write takes through a node
//! (`raft-node --trace-write-path`), so that a single-client write latency
//! can be split into its hops across the three nodes' logs
//! (`scripts/write-path-breakdown.py`): thread hand-offs, the network, the
//! fsyncs. Off, each mark costs one relaxed atomic load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static ON: AtomicBool = AtomicBool::new(false);

/// Turns the marks on for this process.
pub fn enable() {
    ON.store(true, Ordering::Relaxed);
}

/// Writes `write-path <unix micros> <event>` to stderr when enabled. The
/// wall clock (not `Instant`) lets marks from different processes on one
/// machine be merged.
#[inline]
pub fn mark(event: &'static str) {
    if ON.load(Ordering::Relaxed) {
        let us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        eprintln!("write-path {us} {event}");
    }
}
