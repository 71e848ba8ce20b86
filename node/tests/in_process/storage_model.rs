//! Model-based test: random sequences of appends (with Raft truncation),
//! hard-state changes, syncs, snapshots, installs and crashes, checked after
//! every reopen against a model of what was made durable.

use proptest::prelude::*;
use raft_node::raft::{ConfState, Entry, EntryKind, HardState, Snapshot, SnapshotMeta};
use raft_node::storage::{Storage, StorageOptions};
use std::path::Path;

#[derive(Debug, Clone)]
enum Op {
    /// Append `count` entries starting `back` entries before last+1, in a
    /// term `bump` higher than the current one.
    Append {
        back: u64,
        count: u64,
        bump: u64,
    },
    SetHardState {
        vote: u64,
        commit: u64,
    },
    Sync,
    /// Drop without sync, then reopen.
    Crash,
    /// Snapshot at the durable log's index `pick` (after a sync).
    SaveSnapshot {
        pick: u64,
    },
    /// Install a leader's snapshot `ahead` entries past the last index.
    Install {
        ahead: u64,
        bump: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4u64, 1..20u64, 0..2u64).prop_map(|(back, count, bump)| Op::Append { back, count, bump }),
        2 => (0..4u64, any::<u64>()).prop_map(|(vote, commit)| Op::SetHardState { vote, commit }),
        4 => Just(Op::Sync),
        2 => Just(Op::Crash),
        2 => any::<u64>().prop_map(|pick| Op::SaveSnapshot { pick }),
        1 => (0..5u64, 0..2u64).prop_map(|(ahead, bump)| Op::Install { ahead, bump }),
    ]
}

fn data(index: u64, term: u64) -> Vec<u8> {
    format!("{index}/{term}/{}", "x".repeat((index % 50) as usize)).into_bytes()
}

/// Durable (or pending) state as the model sees it.
#[derive(Debug, Clone, Default, PartialEq)]
struct State {
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
    hs: HardState,
}

impl State {
    fn base(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.meta.index)
    }
    fn last(&self) -> u64 {
        self.base() + self.entries.len() as u64
    }
    fn append(&mut self, es: &[Entry]) {
        let keep = (es[0].index - self.base() - 1) as usize;
        self.entries.truncate(keep);
        self.entries.extend_from_slice(es);
    }
}

fn opts() -> StorageOptions {
    StorageOptions {
        segment_size: 300,
        ..StorageOptions::default()
    }
}

fn reopen(dir: &Path, durable: &State) -> Storage {
    let (s, rec) = Storage::open(dir, 1, 7, opts()).unwrap();
    assert_eq!(rec.hard_state, durable.hs, "hard state");
    assert_eq!(rec.snapshot, durable.snapshot, "snapshot");
    assert_eq!(rec.entries, durable.entries, "entries");
    assert_eq!(s.first_index(), durable.base() + 1);
    assert_eq!(s.last_index(), durable.last());
    s
}

fn run(ops: Vec<Op>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut durable = State::default();
    let mut view = State::default();
    let mut term = 1u64;
    let mut s = reopen(dir, &durable);
    for op in ops {
        match op {
            Op::Append { back, count, bump } => {
                term += bump;
                let first = (view.last() + 1).saturating_sub(back).max(view.base() + 1);
                let es: Vec<Entry> = (first..first + count)
                    .map(|i| Entry {
                        term,
                        index: i,
                        kind: EntryKind::Normal,
                        data: data(i, term),
                    })
                    .collect();
                s.append(&es).unwrap();
                view.append(&es);
            }
            Op::SetHardState { vote, commit } => {
                let hs = HardState {
                    term,
                    vote,
                    commit: commit % (view.last() + 1),
                };
                s.set_hard_state(hs).unwrap();
                view.hs = hs;
            }
            Op::Sync => {
                s.sync().unwrap();
                durable = view.clone();
            }
            Op::Crash => {
                drop(s);
                view = durable.clone();
                s = reopen(dir, &durable);
            }
            Op::SaveSnapshot { pick } => {
                s.sync().unwrap();
                durable = view.clone();
                if view.last() > view.base() {
                    let index = view.base() + 1 + pick % (view.last() - view.base());
                    let e = &view.entries[(index - view.base() - 1) as usize];
                    let snap = Snapshot {
                        meta: SnapshotMeta {
                            index,
                            term: e.term,
                            conf: ConfState {
                                voters: vec![1, 2, 3],
                                ..ConfState::default()
                            },
                        },
                        data: format!("image {index}").into_bytes(),
                    };
                    s.save_snapshot(&snap).unwrap();
                    let drop_n = (index - view.base()) as usize;
                    view.entries.drain(..drop_n);
                    view.snapshot = Some(snap);
                    durable = view.clone();
                }
            }
            Op::Install { ahead, bump } => {
                term += bump;
                let index = view.last() + ahead;
                if index < view.base() {
                    continue;
                }
                let snap = Snapshot {
                    meta: SnapshotMeta {
                        index,
                        term,
                        conf: ConfState {
                            voters: vec![1, 2],
                            ..ConfState::default()
                        },
                    },
                    data: format!("leader image {index}").into_bytes(),
                };
                s.install_snapshot(&snap).unwrap();
                view.entries.clear();
                view.snapshot = Some(snap);
                durable = view.clone();
            }
        }
        assert_eq!(s.last_index(), view.last());
        assert_eq!(s.first_index(), view.base() + 1);
    }
    drop(s);
    reopen(dir, &durable);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn recovery_returns_exactly_what_was_made_durable(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops);
    }
}
