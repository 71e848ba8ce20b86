//! Write-ahead log benchmark: 256-byte records from 64 concurrent writers
//! through group commit, against the single-writer fdatasync rate.
//!
//! `cargo bench -p raft-node --bench wal` (WAL_BENCH_SECS=3 per phase,
//! WAL_BENCH_DIR to choose the disk; the default is the target dir, which
//! must not be tmpfs for the figures to mean anything).

use raft_node::raft::{Entry, EntryKind, HardState};
use raft_node::storage::{GroupCommit, Storage, StorageOptions};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RECORD: usize = 256;
const WRITERS: usize = 64;
/// Caps every loop, whatever the disk's speed.
const MAX_RECORDS_PER_WRITER: u64 = 2_000_000;

fn bench_dir() -> PathBuf {
    std::env::var_os("WAL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
}

fn secs() -> Duration {
    let s = std::env::var("WAL_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(s.clamp(0.1, 60.0))
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// What fio measures: one 4 KiB write + fdatasync at a time.
fn raw_fdatasync(dir: &Path, run: Duration) -> (f64, Duration) {
    let path = dir.join("raw.dat");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .unwrap();
    let block = [7u8; 4096];
    let mut lat = Vec::new();
    let start = Instant::now();
    while start.elapsed() < run && (lat.len() as u64) < MAX_RECORDS_PER_WRITER {
        let t = Instant::now();
        f.write_all(&block).unwrap();
        f.sync_data().unwrap();
        lat.push(t.elapsed());
    }
    let rate = lat.len() as f64 / start.elapsed().as_secs_f64();
    lat.sort();
    (rate, quantile(&lat, 0.5))
}

struct Run {
    records: u64,
    fsyncs: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

fn group_commit(dir: &Path, writers: usize, run: Duration) -> Run {
    let (gc, _) = GroupCommit::open(dir, StorageOptions::default()).unwrap();
    let gc = Arc::new(gc);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let gc = Arc::clone(&gc);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let payload = vec![w as u8; RECORD - 13]; // framed size: 256 bytes
                let mut lat = Vec::with_capacity(1 << 16);
                while !stop.load(Ordering::Relaxed) && (lat.len() as u64) < MAX_RECORDS_PER_WRITER {
                    let t = Instant::now();
                    gc.append(&payload).unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let elapsed = start.elapsed();
    let stats = gc.stats();
    lat.sort();
    Run {
        records: stats.records,
        fsyncs: stats.fsyncs,
        elapsed,
        p50: quantile(&lat, 0.5),
        p99: quantile(&lat, 0.99),
    }
}

/// The facade as the node drives it: a Ready of `batch` entries and a hard
/// state, one sync.
fn storage_batches(dir: &Path, batch: usize, run: Duration) -> (f64, f64) {
    let (mut s, _) = Storage::open(dir, 1, 1, StorageOptions::default()).unwrap();
    let mut entries: Vec<Entry> = (0..batch)
        .map(|_| Entry {
            term: 1,
            index: 0,
            kind: EntryKind::Normal,
            data: vec![1u8; RECORD - 30], // framed size: 256 bytes
        })
        .collect();
    let mut next = 1u64;
    let mut syncs = 0u64;
    let start = Instant::now();
    while start.elapsed() < run && next < MAX_RECORDS_PER_WRITER * 8 {
        for e in entries.iter_mut() {
            e.index = next;
            next += 1;
        }
        s.append(&entries).unwrap();
        s.set_hard_state(HardState {
            term: 1,
            vote: 1,
            commit: next - 1,
        })
        .unwrap();
        s.sync().unwrap();
        syncs += 1;
    }
    let e = start.elapsed().as_secs_f64();
    ((next - 1) as f64 / e, syncs as f64 / e)
}

fn main() {
    let base = bench_dir();
    std::fs::create_dir_all(&base).unwrap();
    let run = secs();
    println!(
        "wal bench: dir {} ({}s per phase), records of {RECORD} bytes",
        base.display(),
        run.as_secs_f64()
    );

    let d = tempfile::tempdir_in(&base).unwrap();
    let (raw, raw_p50) = raw_fdatasync(d.path(), run);
    println!("baseline  4 KiB write+fdatasync, 1 writer : {raw:>10.0} fsyncs/s   p50 {raw_p50:?}");

    let d = tempfile::tempdir_in(&base).unwrap();
    let one = group_commit(d.path(), 1, run);
    let one_rate = one.records as f64 / one.elapsed.as_secs_f64();
    println!(
        "group commit, 1 writer                    : {one_rate:>10.0} records/s {:>8.0} fsyncs/s   p50 {:?} p99 {:?}",
        one.fsyncs as f64 / one.elapsed.as_secs_f64(),
        one.p50,
        one.p99
    );

    let d = tempfile::tempdir_in(&base).unwrap();
    let many = group_commit(d.path(), WRITERS, run);
    let e = many.elapsed.as_secs_f64();
    let rate = many.records as f64 / e;
    let fsyncs = many.fsyncs as f64 / e;
    println!(
        "group commit, {WRITERS} writers                  : {rate:>10.0} records/s {fsyncs:>8.0} fsyncs/s   p50 {:?} p99 {:?}",
        many.p50, many.p99
    );
    println!(
        "  records per fsync {:.1}; records/s = {:.1} x the 1-writer rate, {:.1} x the raw fdatasync rate",
        rate / fsyncs.max(1e-9),
        rate / one_rate.max(1e-9),
        rate / raw.max(1e-9)
    );

    let d = tempfile::tempdir_in(&base).unwrap();
    let (entries, syncs) = storage_batches(d.path(), 64, run);
    println!(
        "Storage facade, 64-entry batches          : {entries:>10.0} entries/s {syncs:>8.0} syncs/s"
    );
}
