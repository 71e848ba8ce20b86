//! raft-node's write-ahead log on faultfs: fsynced writes survive a kill
//! and a power cut; with `--bug no-fsync` a power cut loses acknowledged
//! writes that a plain kill does not.

mod common;

use common::{free_port, fuse_or_skip, sibling_bin, Mount};
use raft_faultfs::{CutMode, CutReport};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One node at a time: both tests load the machine.
static SERIAL: Mutex<()> = Mutex::new(());

struct Node {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Node {
    fn start(data_dir: &Path, addr: &str, bugs: &[&str], log: &Path) -> Node {
        let mut cmd = Command::new(sibling_bin("raft-node"));
        cmd.args([
            "--id",
            "1",
            "--listen",
            addr,
            "--election-timeout-ms",
            "200",
            "--heartbeat-ms",
            "50",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        );
        if !bugs.is_empty() {
            // Bugs are test hooks: a node takes them only when told so.
            cmd.arg("--test-hooks");
        }
        for b in bugs {
            cmd.args(["--bug", b]);
        }
        Node {
            child: cmd.spawn().unwrap(),
            addr: addr.to_string(),
            log: log.to_path_buf(),
        }
    }

    fn kv(&self, args: &[&str]) -> Option<String> {
        let out = Command::new(sibling_bin("raft-kv"))
            .args(["--node", &self.addr])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn put(&self, key: &str, value: &str) -> bool {
        self.kv(&["put", key, value])
            .is_some_and(|o| o.starts_with("ok"))
    }

    fn get(&self, key: &str) -> Option<String> {
        self.kv(&["get", key])
    }

    /// Waits (at most 30 s) until the node serves a linearizable read.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("raft-node exited ({status}); log:\n{}", self.log_text());
            }
            if self.get("ready-probe").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("raft-node not ready in 30 s; log:\n{}", self.log_text());
    }

    fn sigkill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one kill (and maybe cut) did to the writes acknowledged before it.
struct Outcome {
    acked: Vec<String>,
    lost: Vec<String>,
    unsynced_before_kill: u64,
    cut: Option<CutReport>,
}

/// Writes `n` keys of `value_len` bytes to a fresh node on the mount,
/// SIGKILLs it, cuts the power in `cut`'s mode if given, restarts it and reads every
/// acknowledged key back.
fn kill_and_restart(
    m: &Mount,
    dir: &str,
    bugs: &[&str],
    n: usize,
    value_len: usize,
    cut: Option<CutMode>,
) -> Outcome {
    let data = m.m(dir);
    let log = m.dir.path().join(format!("{dir}.log"));
    let addr = format!("127.0.0.1:{}", free_port());
    let mut node = Node::start(&data, &addr, bugs, &log);
    node.wait_ready();
    let value = |i: usize| format!("{i}-{}", "v".repeat(value_len));
    let acked: Vec<String> = (0..n)
        .map(|i| format!("k{i}"))
        .filter(|k| node.put(k, &value(k[1..].parse().unwrap())))
        .collect();
    assert!(
        !acked.is_empty(),
        "no write acknowledged; log:\n{}",
        node.log_text()
    );
    let unsynced_before_kill = m.fs.unsynced_bytes();
    node.sigkill();
    let cut = cut.map(|mode| m.fs.power_cut(mode).unwrap());
    let mut node = Node::start(&data, &addr, bugs, &log);
    node.wait_ready();
    let lost = acked
        .iter()
        .filter(|k| node.get(k) != Some(value(k[1..].parse().unwrap())))
        .cloned()
        .collect();
    Outcome {
        acked,
        lost,
        unsynced_before_kill,
        cut,
    }
}

#[test]
fn every_acknowledged_write_survives_a_kill_and_a_power_cut() {
    if !fuse_or_skip("raft_node") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = Mount::new();
    let o = kill_and_restart(&m, "node", &[], 60, 100, Some(CutMode::LoseAll));
    assert_eq!(o.acked.len(), 60);
    assert!(o.lost.is_empty(), "acknowledged writes lost: {:?}", o.lost);
}

#[test]
fn with_no_fsync_a_power_cut_loses_acknowledged_writes_that_a_kill_alone_keeps() {
    if !fuse_or_skip("raft_node") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = Mount::new();
    // Past 1 MiB so that the node's own buffer (if it still has one) has
    // handed the first records to the kernel, unsynced.
    let (n, len) = (200, 8_000);

    let control = kill_and_restart(&m, "killed", &["no-fsync"], n, len, None);
    assert!(
        control.unsynced_before_kill > 0,
        "the node's writes never reached faultfs"
    );
    assert!(
        !control.lost.contains(&"k0".to_string()),
        "a kill alone lost k0, which had reached the kernel"
    );

    let cut = kill_and_restart(&m, "cut", &["no-fsync"], n, len, Some(CutMode::LoseAll));
    let report = cut.cut.expect("cut");
    assert!(report.bytes_lost > 0, "{report:?}");
    assert!(
        cut.lost.contains(&"k0".to_string()),
        "the power cut did not lose k0; lost {} of {}",
        cut.lost.len(),
        cut.acked.len()
    );
    eprintln!(
        "no-fsync: a kill lost {} of {} acknowledged writes, a kill and a power cut lost {} of {} ({} bytes)",
        control.lost.len(),
        control.acked.len(),
        cut.lost.len(),
        cut.acked.len(),
        report.bytes_lost
    );
}

#[test]
fn with_no_fsync_a_torn_cut_loses_a_suffix_of_the_writes_and_the_node_still_recovers() {
    if !fuse_or_skip("raft_node") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = Mount::new();
    // Past 1 MiB so that records reach faultfs even through the node's own
    // buffer; whatever the tear, the log must read back as a prefix.
    let mut any_lost = false;
    for seed in [1u64, 2, 3] {
        let o = kill_and_restart(
            &m,
            &format!("torn{seed}"),
            &["no-fsync"],
            100,
            16_000,
            Some(CutMode::TornSeq { seed }),
        );
        // Keys were acknowledged in order; the survivors must be a prefix.
        let first_lost = o
            .acked
            .iter()
            .position(|k| o.lost.contains(k))
            .unwrap_or(o.acked.len());
        assert!(
            o.acked[first_lost..].iter().all(|k| o.lost.contains(k)),
            "seed {seed}: a key survived after a lost one: lost {:?}",
            o.lost
        );
        let cut = o.cut.as_ref().expect("cut");
        assert!(
            cut.bytes_kept + cut.bytes_lost > 0,
            "seed {seed}: nothing to tear"
        );
        any_lost |= !o.lost.is_empty();
        eprintln!(
            "torn seed {seed}: kept {} of {} acknowledged writes ({:?})",
            first_lost,
            o.acked.len(),
            (cut.bytes_kept, cut.bytes_lost)
        );
    }
    assert!(any_lost, "no torn cut lost anything");
}
