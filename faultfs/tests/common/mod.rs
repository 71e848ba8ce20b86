//! Helpers for tests that mount a real faultfs.

#![allow(dead_code)]

use raft_faultfs::{fuse_unavailable, FaultFs, MountOptions};
use std::path::{Path, PathBuf};

/// Whether FUSE mounts work here. Without them a test prints why and
/// passes, except under CI (`CI` set), where it fails.
pub fn fuse_or_skip(test: &str) -> bool {
    match fuse_unavailable() {
        None => true,
        Some(why) if std::env::var_os("CI").is_some() => {
            panic!("{test}: FUSE is required under CI: {why}")
        }
        Some(why) => {
            eprintln!("{test}: skipped: {why}");
            false
        }
    }
}

/// A faultfs over a fresh backing dir, both in one temp dir.
pub struct Mount {
    pub fs: FaultFs,
    pub dir: tempfile::TempDir,
}

impl Mount {
    pub fn new() -> Mount {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("backing")).unwrap();
        let fs = FaultFs::mount(
            &dir.path().join("backing"),
            &dir.path().join("mnt"),
            MountOptions::default(),
        )
        .expect("mount faultfs");
        Mount { fs, dir }
    }

    /// A path seen through the mount.
    pub fn m(&self, rel: &str) -> PathBuf {
        self.fs.mountpoint().join(rel)
    }

    /// The same path in the backing dir (what survives).
    pub fn b(&self, rel: &str) -> PathBuf {
        self.fs.backing().join(rel)
    }
}

/// A binary built next to this test's own (cargo build --release --workspace --bins).
pub fn sibling_bin(name: &str) -> PathBuf {
    let me = PathBuf::from(env!("CARGO_BIN_EXE_raft-faultfs"));
    let p = me.parent().unwrap().join(name);
    assert!(
        p.is_file(),
        "{} is missing: build the binaries first (cargo build --release --workspace --bins, \
         as scripts/test.sh does)",
        p.display()
    );
    p
}

/// Whether `path` is a mount point now.
pub fn is_mounted(path: &Path) -> bool {
    raft_faultfs::mountpoint::mounted_at(path)
        .map(|m| !m.is_empty())
        .unwrap_or(false)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
