//! The write-ahead log through the `Storage` facade: what is synced comes
//! back after a crash (a drop without sync), in order, with Raft truncation
//! applied, and one sync costs one fdatasync however much it carries.

use raft_node::raft::{Entry, EntryKind, HardState};
use raft_node::storage::{Storage, StorageError, StorageOptions};
use std::path::Path;

fn entry(index: u64, term: u64, data: &str) -> Entry {
    Entry {
        term,
        index,
        kind: EntryKind::Normal,
        data: data.as_bytes().to_vec(),
    }
}

fn entries(from: u64, to: u64, term: u64) -> Vec<Entry> {
    (from..=to)
        .map(|i| entry(i, term, &format!("cmd-{i}-t{term}")))
        .collect()
}

fn open(dir: &Path) -> (Storage, raft_node::storage::Recovered) {
    Storage::open(dir, 1, 7, StorageOptions::default()).expect("open")
}

#[test]
fn a_new_dir_opens_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, rec) = open(&tmp.path().join("data"));
    assert_eq!(rec.hard_state, HardState::default());
    assert!(rec.entries.is_empty());
    assert!(rec.snapshot.is_none());
    assert_eq!((s.first_index(), s.last_index()), (1, 0));
}

#[test]
fn synced_entries_and_hard_state_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let hs = HardState {
        term: 2,
        vote: 3,
        commit: 4,
    };
    {
        let (mut s, _) = open(tmp.path());
        s.append(&entries(1, 5, 1)).unwrap();
        s.set_hard_state(hs).unwrap();
        s.sync().unwrap();
        s.append(&entries(6, 10, 2)).unwrap();
        s.sync().unwrap();
        assert_eq!(s.last_index(), 10);
    }
    let (s, rec) = open(tmp.path());
    let mut want = entries(1, 5, 1);
    want.extend(entries(6, 10, 2));
    assert_eq!(rec.entries, want);
    assert_eq!(rec.hard_state, hs);
    assert_eq!((s.first_index(), s.last_index()), (1, 10));
}

#[test]
fn unsynced_records_are_not_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(tmp.path());
        s.append(&entries(1, 3, 1)).unwrap();
        s.sync().unwrap();
        s.append(&entries(4, 6, 1)).unwrap();
        s.set_hard_state(HardState {
            term: 9,
            vote: 1,
            commit: 6,
        })
        .unwrap();
        // Dropped without sync: a crash before the fdatasync.
    }
    let (_, rec) = open(tmp.path());
    assert_eq!(rec.entries, entries(1, 3, 1));
    assert_eq!(rec.hard_state, HardState::default());
}

#[test]
fn appending_over_a_suffix_truncates_it_and_the_truncation_survives_recovery() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(tmp.path());
        s.append(&entries(1, 10, 1)).unwrap();
        s.sync().unwrap();
        // A new leader overwrites 6.. with a shorter log of term 2.
        s.append(&entries(6, 7, 2)).unwrap();
        s.sync().unwrap();
        assert_eq!(s.last_index(), 7);
    }
    let (s, rec) = open(tmp.path());
    let mut want = entries(1, 5, 1);
    want.extend(entries(6, 7, 2));
    assert_eq!(rec.entries, want);
    assert_eq!(s.last_index(), 7);
}

#[test]
fn newest_hard_state_wins_on_replay() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(tmp.path());
        for term in 1..=20 {
            s.set_hard_state(HardState {
                term,
                vote: term % 3,
                commit: 0,
            })
            .unwrap();
            s.sync().unwrap();
        }
    }
    let (_, rec) = open(tmp.path());
    assert_eq!(
        rec.hard_state,
        HardState {
            term: 20,
            vote: 2,
            commit: 0
        }
    );
}

#[test]
fn group_commit_writes_many_entries_with_one_fsync() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut s, _) = open(tmp.path());
    let before = s.stats().wal;
    for i in 1..=500 {
        s.append(&[entry(i, 1, "x")]).unwrap();
    }
    s.set_hard_state(HardState {
        term: 1,
        vote: 1,
        commit: 250,
    })
    .unwrap();
    s.sync().unwrap();
    let after = s.stats().wal;
    assert_eq!(after.fsyncs - before.fsyncs, 1);
    assert_eq!(after.writes - before.writes, 1);
    // A sync with nothing buffered costs nothing.
    s.sync().unwrap();
    assert_eq!(s.stats().wal.fsyncs, after.fsyncs);
    drop(s);
    let (_, rec) = open(tmp.path());
    assert_eq!(rec.entries.len(), 500);
    assert_eq!(rec.hard_state.commit, 250);
}

#[test]
fn rotation_keeps_every_entry_and_the_hard_state_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = StorageOptions {
        segment_size: 4096,
        ..StorageOptions::default()
    };
    let hs = HardState {
        term: 3,
        vote: 2,
        commit: 100,
    };
    {
        let (mut s, _) = Storage::open(tmp.path(), 1, 7, opts.clone()).unwrap();
        s.set_hard_state(hs).unwrap();
        for i in 1..=300 {
            s.append(&[entry(i, 3, &"v".repeat(40))]).unwrap();
            if i % 10 == 0 {
                s.sync().unwrap();
            }
        }
        s.sync().unwrap();
        assert!(s.stats().segments > 3, "{:?}", s.stats());
    }
    let (s, rec) = Storage::open(tmp.path(), 1, 7, opts).unwrap();
    assert_eq!(rec.entries.len(), 300);
    assert!(rec
        .entries
        .iter()
        .enumerate()
        .all(|(i, e)| e.index == i as u64 + 1));
    assert_eq!(rec.hard_state, hs);
    assert_eq!(s.last_index(), 300);
}

#[test]
fn appends_that_would_leave_a_gap_or_break_contiguity_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut s, _) = open(tmp.path());
    s.append(&entries(1, 3, 1)).unwrap();
    let gap = s.append(&entries(5, 6, 1)).unwrap_err();
    assert!(matches!(gap, StorageError::Invalid(_)), "{gap}");
    let mut broken = entries(4, 5, 1);
    broken[1].index = 9;
    assert!(matches!(s.append(&broken), Err(StorageError::Invalid(_))));
    assert!(matches!(
        s.append(&entries(0, 0, 1)),
        Err(StorageError::Invalid(_))
    ));
    // The refused calls buffered nothing.
    s.sync().unwrap();
    drop(s);
    let (_, rec) = open(tmp.path());
    assert_eq!(rec.entries, entries(1, 3, 1));
}

#[test]
fn empty_and_conf_change_entries_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let es = vec![
        Entry {
            term: 1,
            index: 1,
            kind: EntryKind::Normal,
            data: vec![],
        },
        Entry {
            term: 1,
            index: 2,
            kind: EntryKind::ConfChange,
            data: vec![0, 1, 2, 255],
        },
    ];
    {
        let (mut s, _) = open(tmp.path());
        s.append(&es).unwrap();
        s.sync().unwrap();
    }
    let (_, rec) = open(tmp.path());
    assert_eq!(rec.entries, es);
}

#[test]
fn no_fsync_bug_writes_every_sync_to_the_file_but_never_calls_fdatasync() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = StorageOptions {
        no_fsync: true,
        ..StorageOptions::default()
    };
    {
        let (mut s, _) = Storage::open(tmp.path(), 1, 7, opts.clone()).unwrap();
        s.append(&entries(1, 3, 1)).unwrap();
        s.sync().unwrap();
        let wal = s.stats().wal;
        assert_eq!(wal.fsyncs, 0, "the bug skips fdatasync");
        assert_eq!(wal.writes, 1, "but the records reach the kernel at once");
        assert!(!s.has_pending(), "nothing waits in a user-space buffer");
    }
    // A process crash keeps the page cache: only a machine crash (a
    // power cut, the harness's filesystem fault) can lose these records.
    let (_, rec) = Storage::open(tmp.path(), 1, 7, opts).unwrap();
    assert_eq!(rec.entries, entries(1, 3, 1));
    let correct = tempfile::tempdir().unwrap();
    let (mut s, _) = open(correct.path());
    s.append(&entries(1, 1, 1)).unwrap();
    s.sync().unwrap();
    assert_eq!(
        s.stats().wal.fsyncs,
        1,
        "without the bug every sync fdatasyncs"
    );
}

#[test]
fn an_unchanged_hard_state_costs_no_write() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut s, _) = open(tmp.path());
    let hs = HardState {
        term: 1,
        vote: 1,
        commit: 0,
    };
    s.set_hard_state(hs).unwrap();
    s.sync().unwrap();
    let before = s.stats().wal;
    s.set_hard_state(hs).unwrap();
    assert!(!s.has_pending());
    s.sync().unwrap();
    assert_eq!(s.stats().wal, before);
}

#[test]
fn replay_keeps_truncated_bug_brings_a_truncated_suffix_back_and_the_core_reports_it() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(tmp.path());
        s.append(&entries(1, 5, 1)).unwrap();
        s.sync().unwrap();
        // A new leader's entries replace 3.. (Raft truncation).
        s.append(&entries(3, 4, 2)).unwrap();
        s.sync().unwrap();
    }
    let (_, rec) = open(tmp.path());
    let correct = [entries(1, 2, 1), entries(3, 4, 2)].concat();
    assert_eq!(rec.entries, correct);
    let opts = StorageOptions {
        replay_keeps_truncated: true,
        ..StorageOptions::default()
    };
    let (_, rec) = Storage::open(tmp.path(), 1, 7, opts).unwrap();
    assert_eq!(
        rec.entries,
        [correct, entries(5, 5, 1)].concat(),
        "entry 5 of term 1 came back"
    );
    let init = raft_node::raft::InitialState {
        hard_state: rec.hard_state,
        conf: raft_node::raft::ConfState {
            voters: vec![1, 2, 3],
            ..Default::default()
        },
        snapshot: None,
        entries: rec.entries,
    };
    let cfg = raft_node::raft::Config {
        id: 1,
        ..Default::default()
    };
    let mut core = raft_node::raft::Raft::new(cfg, init).unwrap();
    let rd = core.ready();
    assert_eq!(rd.violations.len(), 1);
    assert_eq!(rd.violations[0].invariant, "recovered-log-terms-decrease");
    assert_eq!(core.status().last_index, 4, "the resurrected entry is cut");
}
