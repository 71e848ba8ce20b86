//! Each node's data dir on its own faultfs mount: the node's files live in
//! `RUN/harness/nK.backing` and are reached at the node's usual data dir
//! (`RUN/data/nK`, the mountpoint), so that a power cut can lose what the
//! node did not sync. After the run the mounts are gone and the data is in
//! the backing folders.

use super::harness_dir;
use anyhow::{Context, Result};
use raft_faultfs::{CutMode, CutReport, FaultFs, MountOptions};
use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The mounts, by node.
pub struct Disks {
    mounts: Mutex<BTreeMap<u64, FaultFs>>,
}

/// Where node `id`'s files really are.
pub fn backing_dir(run_dir: &Path, id: u64) -> PathBuf {
    harness_dir(run_dir).join(format!("n{id}.backing"))
}

impl Disks {
    /// Mounts a faultfs over each node's data dir.
    pub fn mount(run_dir: &Path, ids: &[u64]) -> Result<Disks> {
        let mut mounts = BTreeMap::new();
        for &id in ids {
            let backing = backing_dir(run_dir, id);
            // 0700: the mount root shows the backing folder's mode, and etcd
            // refuses a data dir others can read.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&backing)
                .with_context(|| format!("creating {}", backing.display()))?;
            let (data_dir, _) = crate::target::cluster::node_paths(run_dir, id);
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            let fs = FaultFs::mount(&backing, &data_dir, MountOptions::default())
                .with_context(|| format!("mounting faultfs for node {id}"))?;
            tracing::info!(
                "node {id}: data dir {} is a faultfs mount of {}",
                data_dir.display(),
                backing.display()
            );
            mounts.insert(id, fs);
        }
        Ok(Disks {
            mounts: Mutex::new(mounts),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, FaultFs>> {
        self.mounts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cuts node `id`'s power: what it did not sync is lost or torn per
    /// `mode`. The node must be dead (killed and reaped) already.
    pub fn power_cut(&self, id: u64, mode: CutMode) -> Result<CutReport> {
        let m = self.lock();
        let fs = m
            .get(&id)
            .with_context(|| format!("node {id} has no faultfs mount"))?;
        fs.power_cut(mode)
            .with_context(|| format!("power cut of node {id}"))
    }

    /// Bytes node `id` wrote and has not synced.
    pub fn unsynced_bytes(&self, id: u64) -> Option<u64> {
        self.lock().get(&id).map(|fs| fs.unsynced_bytes())
    }

    /// Unmounts every disk, writing back what is unsynced; the errors.
    pub fn unmount_all(&self) -> Vec<String> {
        let mounts = std::mem::take(&mut *self.lock());
        mounts
            .into_iter()
            .filter_map(|(id, fs)| fs.unmount().err().map(|e| format!("n{id}: {e}")))
            .collect()
    }
}
