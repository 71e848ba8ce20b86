//! The concurrent group-commit front: every append returns only once its
//! record is durable, numbers are unique and dense, and what was
//! acknowledged is there after reopening.

use raft_node::storage::{GroupCommit, StorageError, StorageOptions};
use std::collections::HashSet;
use std::sync::Arc;

#[test]
fn concurrent_appends_are_all_durable_with_unique_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    const THREADS: u64 = 16;
    const PER_THREAD: u64 = 100;
    let opts = StorageOptions {
        segment_size: 64 << 10,
        ..StorageOptions::default()
    };
    let (gc, existing) = GroupCommit::open(tmp.path(), opts.clone()).unwrap();
    assert_eq!(existing, 0);
    let gc = Arc::new(gc);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let gc = Arc::clone(&gc);
            std::thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|i| {
                        gc.append(format!("t{t}-r{i}-{}", "p".repeat(200)).as_bytes())
                            .unwrap()
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut numbers = HashSet::new();
    for h in handles {
        for n in h.join().unwrap() {
            assert!(numbers.insert(n), "record number {n} given twice");
        }
    }
    let total = THREADS * PER_THREAD;
    assert_eq!(numbers, (1..=total).collect::<HashSet<u64>>());
    let stats = gc.stats();
    assert_eq!(stats.records, total);
    assert_eq!(stats.fsyncs, stats.batches);
    assert!(stats.batches >= 1 && stats.batches <= total);
    drop(gc);
    // Everything acknowledged is recovered, and numbering continues.
    let (gc, existing) = GroupCommit::open(tmp.path(), opts).unwrap();
    assert_eq!(existing, total);
    assert_eq!(gc.append(b"one more").unwrap(), total + 1);
}

#[test]
fn a_group_commit_dir_is_locked_against_a_second_opener() {
    let tmp = tempfile::tempdir().unwrap();
    let (_gc, _) = GroupCommit::open(tmp.path(), StorageOptions::default()).unwrap();
    assert!(matches!(
        GroupCommit::open(tmp.path(), StorageOptions::default()),
        Err(StorageError::Locked { .. })
    ));
}
