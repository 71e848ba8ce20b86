//! The physical floor of a replicated write on this machine: one 4 KiB
//! append + fdatasync, and one loopback TCP round trip. A write acknowledged
//! after commit needs at least one fsync and two round trips (client to
//! leader and back, leader to a follower and back).

use super::stats::quantile;
use anyhow::{Context, Result};
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes of each synced write.
pub const SYNC_BYTES: usize = 4096;
/// Bytes of each round-trip message (a small gRPC request's size).
pub const PING_BYTES: usize = 64;

/// The measured floor, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    /// Number of synced writes (of each pattern).
    pub fsync_samples: usize,
    /// Median of a 4 KiB write + fdatasync: the lower of the two patterns
    /// below (the physical floor).
    pub fsync_p50_us: u64,
    /// 99th percentile of the pattern with the lower median.
    pub fsync_p99_us: u64,
    /// Median when each write grows the file (fdatasync also commits the
    /// new size, as a log without preallocation does).
    pub fsync_append_p50_us: u64,
    /// Median when each write lands in preallocated space (as etcd's
    /// preallocated WAL segments do).
    pub fsync_prealloc_p50_us: u64,
    /// Number of round trips.
    pub rtt_samples: usize,
    /// Median loopback TCP round trip.
    pub rtt_p50_us: u64,
    /// 99th percentile of the same.
    pub rtt_p99_us: u64,
    /// fsync p50 + 2 x rtt p50: the least a committed write can take.
    pub write_floor_us: u64,
    /// Median of the preallocated pattern while `shared_writers` threads
    /// each sync their own file at once, as the nodes of a local cluster
    /// share one disk: a follower's fsync runs while the leader's does.
    pub fsync_shared_p50_us: u64,
    /// Writers syncing at once for `fsync_shared_p50_us`.
    pub shared_writers: usize,
    /// fsync_shared p50 + 2 x rtt p50: the floor of a cluster whose nodes
    /// share this disk (context for `write_floor_us`, not a replacement).
    pub shared_disk_write_floor_us: u64,
    /// How the round trip was measured.
    pub rtt_method: String,
}

/// Writes `n` blocks of 4 KiB one after another into a new file in `dir`,
/// each followed by fdatasync, as a write-ahead log does; with `prealloc`
/// the file's blocks are written and synced first, so that the timed
/// writes allocate nothing. The file is removed afterwards.
pub fn fsync_latencies(dir: &Path, n: usize, prealloc: bool) -> Result<Vec<u64>> {
    fsync_latencies_in(&dir.join("floor-fsync.bin"), n, prealloc)
}

/// [`fsync_latencies`] with the preallocated pattern in `writers` threads at
/// once, each on its own file; all their samples together.
pub fn shared_fsync_latencies(dir: &Path, n: usize, writers: usize) -> Result<Vec<u64>> {
    let threads: Vec<_> = (0..writers)
        .map(|i| {
            let path = dir.join(format!("floor-fsync-{i}.bin"));
            std::thread::spawn(move || fsync_latencies_in(&path, n, true))
        })
        .collect();
    let mut out = Vec::with_capacity(n * writers);
    for t in threads {
        let v = t
            .join()
            .map_err(|_| anyhow::anyhow!("fsync thread panicked"))??;
        out.extend(v);
    }
    out.sort_unstable();
    Ok(out)
}

fn fsync_latencies_in(path: &Path, n: usize, prealloc: bool) -> Result<Vec<u64>> {
    let path = path.to_path_buf();
    let mut f =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let block = vec![0x5au8; SYNC_BYTES];
    if prealloc {
        use std::io::{Seek, SeekFrom};
        for _ in 0..n {
            f.write_all(&block)?;
        }
        f.sync_all()?;
        f.seek(SeekFrom::Start(0))?;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        out.push(t.elapsed().as_micros() as u64);
    }
    drop(f);
    let _ = std::fs::remove_file(&path);
    out.sort_unstable();
    Ok(out)
}

/// Round trips of a 64-byte message to an echo server on 127.0.0.1 (a
/// thread of this process: the same syscalls and loopback path as between
/// two processes).
pub fn rtt_latencies(n: usize) -> Result<Vec<u64>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; PING_BYTES];
        loop {
            if s.read_exact(&mut buf).is_err() {
                return Ok(());
            }
            s.write_all(&buf)?;
        }
    });
    let mut c = TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [7u8; PING_BYTES];
    let mut out = Vec::with_capacity(n);
    // A few untimed trips wake both threads up.
    for i in 0..n + 50 {
        let t = Instant::now();
        c.write_all(&buf)?;
        c.read_exact(&mut buf)?;
        if i >= 50 {
            out.push(t.elapsed().as_micros() as u64);
        }
    }
    drop(c);
    let _ = echo.join();
    out.sort_unstable();
    Ok(out)
}

/// Measures both parts of the floor (`n` samples each), and the fsync of
/// `nodes` writers sharing the disk.
pub fn measure(dir: &Path, n: usize, nodes: usize) -> Result<Floor> {
    let append = fsync_latencies(dir, n, false)?;
    let prealloc = fsync_latencies(dir, n, true)?;
    let shared = shared_fsync_latencies(dir, n, nodes.max(1))?;
    let rtt = rtt_latencies(n * 4)?;
    let (append_p50, prealloc_p50) = (quantile(&append, 0.5), quantile(&prealloc, 0.5));
    let fsync = if prealloc_p50 <= append_p50 {
        &prealloc
    } else {
        &append
    };
    let (fsync_p50, rtt_p50) = (quantile(fsync, 0.5), quantile(&rtt, 0.5));
    let shared_p50 = quantile(&shared, 0.5);
    Ok(Floor {
        fsync_samples: fsync.len(),
        fsync_p50_us: fsync_p50,
        fsync_p99_us: quantile(fsync, 0.99),
        fsync_append_p50_us: append_p50,
        fsync_prealloc_p50_us: prealloc_p50,
        rtt_samples: rtt.len(),
        rtt_p50_us: rtt_p50,
        rtt_p99_us: quantile(&rtt, 0.99),
        write_floor_us: fsync_p50 + 2 * rtt_p50,
        fsync_shared_p50_us: shared_p50,
        shared_writers: nodes.max(1),
        shared_disk_write_floor_us: shared_p50 + 2 * rtt_p50,
        rtt_method: format!("{PING_BYTES}-byte ping-pong, TCP_NODELAY, echo thread on 127.0.0.1"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_one_sync_plus_two_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let f = measure(dir.path(), 20, 3).unwrap();
        assert_eq!(f.fsync_samples, 20);
        assert_eq!(f.rtt_samples, 80);
        assert_eq!(f.write_floor_us, f.fsync_p50_us + 2 * f.rtt_p50_us);
        assert_eq!(
            f.fsync_p50_us,
            f.fsync_append_p50_us.min(f.fsync_prealloc_p50_us)
        );
        assert!(f.fsync_p99_us >= f.fsync_p50_us);
        assert_eq!(f.shared_writers, 3);
        assert_eq!(
            f.shared_disk_write_floor_us,
            f.fsync_shared_p50_us + 2 * f.rtt_p50_us
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "files left behind: {left:?}");
    }
}
