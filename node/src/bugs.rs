//! Deliberate defects behind `--bug NAME`. Each is a real bug that Raft
//! implementations have shipped; the harness uses them to prove that it
//! catches what it claims to catch. With no `--bug` the node is correct.

use std::fmt;
use std::str::FromStr;

/// One deliberate defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// Serve `get` from the local state machine on any node, without ReadIndex.
    StaleRead,
    /// Persist the term but never the vote: a restarted node can vote twice in one term.
    ForgetVote,
    /// Acknowledge a write once the leader has appended it locally, before a majority has it.
    EarlyAck,
    /// Skip fdatasync: acknowledged writes live only in the page cache.
    NoFsync,
}

impl Bug {
    /// Every bug, for help texts and campaigns.
    pub const ALL: [Bug; 4] = [Bug::StaleRead, Bug::ForgetVote, Bug::EarlyAck, Bug::NoFsync];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Bug::StaleRead => "stale-read",
            Bug::ForgetVote => "forget-vote",
            Bug::EarlyAck => "early-ack",
            Bug::NoFsync => "no-fsync",
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Bug {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Bug::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| {
            let names: Vec<_> = Bug::ALL.iter().map(|b| b.name()).collect();
            format!("unknown bug {s:?}; known: {}", names.join(", "))
        })
    }
}

/// The set of bugs switched on for this process.
#[derive(Debug, Clone, Default)]
pub struct Bugs(Vec<Bug>);

impl Bugs {
    /// Bugs from the command line.
    pub fn new(list: Vec<Bug>) -> Self {
        Bugs(list)
    }
    /// Whether `b` is switched on.
    pub fn has(&self, b: Bug) -> bool {
        self.0.contains(&b)
    }
}
