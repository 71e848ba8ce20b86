//! Snapshots on disk: saved atomically, they cut the log prefix they cover
//! while the entries after them (and the hard state) survive; an installed
//! snapshot resets the log, even when the install was interrupted.

use raft_node::raft::{ConfState, Entry, EntryKind, HardState, Snapshot, SnapshotMeta};
use raft_node::storage::{dir, snapshot, Storage, StorageError, StorageOptions};
use std::fs;
use std::path::Path;

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term,
        index,
        kind: EntryKind::Normal,
        data: format!("entry {index} of term {term} padded to be larger").into_bytes(),
    }
}

fn snap(index: u64, term: u64, data: &str) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            index,
            term,
            conf: ConfState {
                voters: vec![1, 2, 3],
                learners: vec![],
                voters_outgoing: vec![],
            },
        },
        data: data.as_bytes().to_vec(),
    }
}

fn small() -> StorageOptions {
    StorageOptions {
        segment_size: 1024,
        ..StorageOptions::default()
    }
}

fn open(dir: &Path) -> (Storage, raft_node::storage::Recovered) {
    Storage::open(dir, 1, 7, small()).unwrap()
}

fn fill(s: &mut Storage, from: u64, to: u64, term: u64) {
    for i in from..=to {
        s.append(&[entry(i, term)]).unwrap();
        s.sync().unwrap();
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn snapshot_drops_the_covered_log_prefix_and_keeps_later_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let hs = HardState {
        term: 1,
        vote: 1,
        commit: 100,
    };
    {
        let (mut s, _) = open(tmp.path());
        s.set_hard_state(hs).unwrap();
        fill(&mut s, 1, 100, 1);
        let before = s.stats().segments;
        s.save_snapshot(&snap(60, 1, "image at 60")).unwrap();
        let after = s.stats().segments;
        assert!(after < before, "segments {before} -> {after}");
        assert_eq!(s.first_index(), 61);
        fill(&mut s, 101, 110, 1);
    }
    let (s, rec) = open(tmp.path());
    let got = rec.snapshot.as_ref().unwrap();
    assert_eq!(got, &snap(60, 1, "image at 60"));
    assert_eq!(rec.conf.as_ref().unwrap().voters, vec![1, 2, 3]);
    let want: Vec<Entry> = (61..=110).map(|i| entry(i, 1)).collect();
    assert_eq!(rec.entries, want);
    assert_eq!(rec.hard_state, hs, "hard state survives segment removal");
    assert_eq!((s.first_index(), s.last_index()), (61, 110));
}

#[test]
fn a_newer_snapshot_replaces_the_older_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut s, _) = open(tmp.path());
    fill(&mut s, 1, 50, 1);
    s.save_snapshot(&snap(20, 1, "a")).unwrap();
    s.save_snapshot(&snap(40, 1, "b")).unwrap();
    // Older than the current one: nothing to do.
    s.save_snapshot(&snap(30, 1, "c")).unwrap();
    let snaps: Vec<String> = names(tmp.path())
        .into_iter()
        .filter(|n| n.ends_with(".snap"))
        .collect();
    assert_eq!(snaps, vec![snapshot::file_name(40)]);
    drop(s);
    let (_, rec) = open(tmp.path());
    assert_eq!(rec.snapshot.unwrap().data, b"b");
    assert_eq!(rec.entries.first().unwrap().index, 41);
}

#[test]
fn a_snapshot_beyond_the_last_index_must_be_installed_not_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut s, _) = open(tmp.path());
    fill(&mut s, 1, 5, 1);
    assert!(matches!(
        s.save_snapshot(&snap(9, 1, "x")),
        Err(StorageError::Invalid(_))
    ));
}

#[test]
fn installed_snapshot_resets_the_log_and_later_appends_follow_it() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(tmp.path());
        // A divergent log (term 1) that reaches past the leader's snapshot.
        fill(&mut s, 1, 100, 1);
        s.set_hard_state(HardState {
            term: 3,
            vote: 0,
            commit: 80,
        })
        .unwrap();
        s.install_snapshot(&snap(80, 3, "leader image")).unwrap();
        assert_eq!((s.first_index(), s.last_index()), (81, 80));
        assert_eq!(s.stats().segments, 1);
        // Appends before the snapshot's end are refused.
        assert!(s.append(&[entry(80, 3)]).is_err());
        s.append(&[entry(81, 3), entry(82, 3)]).unwrap();
        s.sync().unwrap();
    }
    let (s, rec) = open(tmp.path());
    assert_eq!(rec.snapshot.unwrap().meta.index, 80);
    assert_eq!(rec.entries, vec![entry(81, 3), entry(82, 3)]);
    assert_eq!(rec.hard_state.term, 3);
    assert_eq!((s.first_index(), s.last_index()), (81, 82));
}

#[test]
fn entries_buffered_before_an_install_do_not_outlive_it() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(tmp.path());
        fill(&mut s, 1, 10, 1);
        s.append(&[entry(11, 1), entry(12, 1)]).unwrap();
        s.install_snapshot(&snap(5, 2, "img")).unwrap();
    }
    let (s, rec) = open(tmp.path());
    assert!(rec.entries.is_empty());
    assert_eq!(s.last_index(), 5);
}

#[test]
fn interrupted_install_drops_a_stale_suffix_that_disagrees_with_the_snapshot() {
    // A crash after the snapshot file was written but before the log reset:
    // the old log says term 1 at index 50, the snapshot says term 2.
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(tmp.path());
        fill(&mut s, 1, 100, 1);
    }
    snapshot::save(tmp.path(), &snap(50, 2, "leader image")).unwrap();
    let (s, rec) = open(tmp.path());
    assert_eq!(rec.snapshot.unwrap().meta.index, 50);
    assert!(
        rec.entries.is_empty(),
        "{} stale entries kept",
        rec.entries.len()
    );
    assert_eq!(s.last_index(), 50);
}

#[test]
fn a_suffix_that_agrees_with_the_snapshot_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(tmp.path());
        fill(&mut s, 1, 100, 1);
    }
    snapshot::save(tmp.path(), &snap(50, 1, "same history")).unwrap();
    let (_, rec) = open(tmp.path());
    let want: Vec<Entry> = (51..=100).map(|i| entry(i, 1)).collect();
    assert_eq!(rec.entries, want);
}

#[test]
fn a_crash_between_temp_write_and_rename_leaves_the_old_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(tmp.path());
        fill(&mut s, 1, 40, 1);
        s.save_snapshot(&snap(30, 1, "old")).unwrap();
    }
    // The first half of an atomic replacement, then the "crash".
    let tmp_file = dir::write_temp(
        tmp.path(),
        &snapshot::file_name(40),
        &snapshot::encode(&snap(40, 1, "new")),
    )
    .unwrap();
    assert!(tmp_file.exists());
    let (s, rec) = open(tmp.path());
    assert_eq!(rec.snapshot.unwrap().data, b"old");
    assert_eq!(s.first_index(), 31);
    assert!(!tmp_file.exists(), "leftover temp file is removed on open");
    let want: Vec<Entry> = (31..=40).map(|i| entry(i, 1)).collect();
    assert_eq!(rec.entries, want);
}

#[test]
fn a_damaged_snapshot_refuses_to_open_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(tmp.path());
        fill(&mut s, 1, 40, 1);
        s.save_snapshot(&snap(30, 1, "image")).unwrap();
    }
    let p = tmp.path().join(snapshot::file_name(30));
    let mut b = fs::read(&p).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    fs::write(&p, b).unwrap();
    match Storage::open(tmp.path(), 1, 7, small()).unwrap_err() {
        StorageError::CorruptFile { path, .. } => assert_eq!(path, p),
        other => panic!("expected CorruptFile, got {other}"),
    }
}

fn wal_files(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".wal"))
        .collect()
}

/// Puts back segment files saved before an operation that removed them: the
/// state a crash right before their removal leaves.
fn restore_files(saved: &Path, dir: &Path) {
    for n in wal_files(saved) {
        if !dir.join(&n).exists() {
            fs::copy(saved.join(&n), dir.join(&n)).unwrap();
        }
    }
}

#[test]
fn segments_left_by_a_crash_during_install_are_void_and_removed_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let saved = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = open(tmp.path());
        fill(&mut s, 1, 100, 1);
        for n in wal_files(tmp.path()) {
            fs::copy(tmp.path().join(&n), saved.path().join(&n)).unwrap();
        }
        // The install's rotation first cuts the zeros written ahead of the
        // open segment's records, so that is how a crash leaves it.
        let newest = saved.path().join(wal_files(saved.path()).last().unwrap());
        let f = fs::OpenOptions::new().write(true).open(&newest).unwrap();
        f.set_len(s.stats().active_len).unwrap();
        s.install_snapshot(&snap(50, 2, "leader image")).unwrap();
        s.append(&[entry(51, 2)]).unwrap();
        s.sync().unwrap();
    }
    restore_files(saved.path(), tmp.path());
    assert!(wal_files(tmp.path()).len() > 2);
    let (s, rec) = open(tmp.path());
    assert_eq!(rec.entries, vec![entry(51, 2)]);
    assert_eq!(s.last_index(), 51);
    assert_eq!(wal_files(tmp.path()).len(), 1, "void segments removed");
}

#[test]
fn segments_left_by_a_crash_during_compaction_are_removed_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let saved = tempfile::tempdir().unwrap();
    let before;
    {
        let (mut s, _) = open(tmp.path());
        fill(&mut s, 1, 100, 1);
        before = wal_files(tmp.path()).len();
        for n in wal_files(tmp.path()) {
            fs::copy(tmp.path().join(&n), saved.path().join(&n)).unwrap();
        }
        s.save_snapshot(&snap(90, 1, "image")).unwrap();
    }
    restore_files(saved.path(), tmp.path());
    assert_eq!(wal_files(tmp.path()).len(), before);
    let (_, rec) = open(tmp.path());
    let want: Vec<Entry> = (91..=100).map(|i| entry(i, 1)).collect();
    assert_eq!(rec.entries, want);
    assert!(wal_files(tmp.path()).len() < before);
}

#[test]
fn storage_can_move_to_the_thread_that_drives_it() {
    fn assert_send<T: Send>() {}
    assert_send::<Storage>();
}
