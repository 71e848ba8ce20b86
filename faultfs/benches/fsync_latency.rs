//! Overhead of faultfs: 4 KiB appends, each followed by fdatasync (and
//! without it), on the mount against the backing directory itself.
//!
//! `cargo bench -p raft-faultfs --bench fsync_latency` (FAULTFS_BENCH_SECS=3
//! per phase; FAULTFS_BENCH_DIR to choose the disk, default the target dir).

use raft_faultfs::{fuse_unavailable, FaultFs, MountOptions};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Caps every loop, whatever the disk's speed.
const MAX_OPS: usize = 1_000_000;
/// Files start over past this size so the page cache stays small.
const FILE_CAP: u64 = 64 << 20;

fn secs() -> Duration {
    let s = std::env::var("FAULTFS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(s.clamp(0.1, 60.0))
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Appends 4 KiB blocks to `path` for `run`, with fdatasync after each if
/// `sync`; prints ops/s, p50 and p99.
fn phase(label: &str, path: &Path, sync: bool, run: Duration) {
    let open = || {
        OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)
            .unwrap()
    };
    let mut f = open();
    let block = [7u8; 4096];
    let mut lat = Vec::new();
    let mut written = 0u64;
    let start = Instant::now();
    while start.elapsed() < run && lat.len() < MAX_OPS {
        if written >= FILE_CAP {
            f.sync_data().unwrap();
            f = open();
            written = 0;
        }
        let t = Instant::now();
        f.write_all(&block).unwrap();
        if sync {
            f.sync_data().unwrap();
        }
        lat.push(t.elapsed());
        written += block.len() as u64;
    }
    f.sync_data().unwrap();
    lat.sort();
    println!(
        "{label:<34} {:>9.0} ops/s  p50 {:>8.1} us  p99 {:>8.1} us",
        lat.len() as f64 / start.elapsed().as_secs_f64(),
        quantile(&lat, 0.5).as_secs_f64() * 1e6,
        quantile(&lat, 0.99).as_secs_f64() * 1e6,
    );
}

fn main() {
    // cargo bench passes --bench; other arguments (filters) are ignored.
    if let Some(why) = fuse_unavailable() {
        println!("fsync_latency: skipped: {why}");
        return;
    }
    let base = std::env::var_os("FAULTFS_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    let dir = tempfile::tempdir_in(&base).unwrap();
    let backing = dir.path().join("backing");
    std::fs::create_dir(&backing).unwrap();
    let fs = FaultFs::mount(&backing, &dir.path().join("mnt"), MountOptions::default()).unwrap();
    let run = secs();
    println!(
        "4 KiB appends in {} ({} s per phase)",
        base.display(),
        run.as_secs_f64()
    );
    phase(
        "backing dir: write + fdatasync",
        &backing.join("plain"),
        true,
        run,
    );
    phase(
        "faultfs:     write + fdatasync",
        &fs.mountpoint().join("f"),
        true,
        run,
    );
    phase("backing dir: write", &backing.join("plain"), false, run);
    phase("faultfs:     write", &fs.mountpoint().join("f"), false, run);
    fs.unmount().unwrap();
}
