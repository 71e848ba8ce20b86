//! The data dir's lock and identity: one process per dir, and a dir belongs
//! to one node of one cluster.

use raft_node::storage::{Storage, StorageError, StorageOptions};
use std::fs;

#[test]
fn a_second_open_of_a_locked_dir_fails_until_the_first_closes() {
    let tmp = tempfile::tempdir().unwrap();
    let first = Storage::open(tmp.path(), 1, 7, StorageOptions::default()).unwrap();
    let e = Storage::open(tmp.path(), 1, 7, StorageOptions::default()).unwrap_err();
    assert!(matches!(e, StorageError::Locked { .. }), "{e}");
    assert!(e.to_string().contains("locked"), "{e}");
    drop(first);
    Storage::open(tmp.path(), 1, 7, StorageOptions::default()).unwrap();
}

#[test]
fn a_dir_of_another_node_or_cluster_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    drop(Storage::open(tmp.path(), 1, 7, StorageOptions::default()).unwrap());
    for (node, cluster) in [(2, 7), (1, 8)] {
        let e = Storage::open(tmp.path(), node, cluster, StorageOptions::default()).unwrap_err();
        match &e {
            StorageError::WrongOwner {
                found_node,
                found_cluster,
                ..
            } => assert_eq!((*found_node, *found_cluster), (1, 7)),
            other => panic!("expected WrongOwner, got {other}"),
        }
        let msg = e.to_string();
        assert!(msg.contains("node 1 of cluster 7"), "{msg}");
    }
    Storage::open(tmp.path(), 1, 7, StorageOptions::default()).unwrap();
}

#[test]
fn log_files_without_an_identity_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    drop(Storage::open(tmp.path(), 1, 7, StorageOptions::default()).unwrap());
    fs::remove_file(tmp.path().join("IDENTITY")).unwrap();
    let e = Storage::open(tmp.path(), 1, 7, StorageOptions::default()).unwrap_err();
    assert!(matches!(e, StorageError::MissingIdentity { .. }), "{e}");
}

#[test]
fn a_damaged_identity_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    drop(Storage::open(tmp.path(), 1, 7, StorageOptions::default()).unwrap());
    fs::write(tmp.path().join("IDENTITY"), b"garbage").unwrap();
    let e = Storage::open(tmp.path(), 1, 7, StorageOptions::default()).unwrap_err();
    assert!(matches!(e, StorageError::CorruptFile { .. }), "{e}");
}

#[test]
fn a_data_dir_path_that_is_a_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("not-a-dir");
    fs::write(&f, b"x").unwrap();
    let e = Storage::open(&f, 1, 7, StorageOptions::default()).unwrap_err();
    assert!(matches!(e, StorageError::Io { .. }), "{e}");
    assert!(e.to_string().contains("not-a-dir"), "{e}");
}

#[test]
fn an_unrelated_file_in_a_new_dir_does_not_block_it() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("README"), b"hello").unwrap();
    Storage::open(tmp.path(), 1, 7, StorageOptions::default()).unwrap();
}
