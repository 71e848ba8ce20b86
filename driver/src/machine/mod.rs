//! The machine the nodes run on, for the faults of the machine rather than
//! of a process or a link: each node's data dir on a faultfs mount
//! ([`disks`], for `power-cut`) and each node's clocks behind libfaketime
//! ([`clocks`], for `clock`). Prepared before the target starts any node
//! (a node must be started on the mount and with the library preloaded),
//! finished after every node is stopped. Files of the harness live under
//! `RUN/harness/`.

pub mod clocks;
pub mod disks;

use crate::nemesis::schedule::NemesisKind;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a run's nemeses need of the machine, prepared for every node.
#[derive(Default)]
pub struct Machine {
    /// The faultfs mounts, when the run has power cuts.
    pub disks: Option<disks::Disks>,
    /// The faketime control files, when the run has clock faults.
    pub clocks: Option<clocks::Clocks>,
}

/// The folder of the harness's own files in a run folder.
pub fn harness_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("harness")
}

impl Machine {
    /// Why the kinds in `kinds` cannot run on this machine (a message for
    /// the user, exit 2), or None.
    pub fn unavailable(kinds: &[NemesisKind]) -> Option<String> {
        if kinds.contains(&NemesisKind::PowerCut) {
            if let Some(why) = raft_faultfs::fuse_unavailable() {
                return Some(format!(
                    "--nemesis power-cut needs FUSE (Debian package fuse3): {why}"
                ));
            }
        }
        if kinds.contains(&NemesisKind::Clock) {
            if let Err(why) = clocks::libfaketime() {
                return Some(format!("--nemesis clock: {why}"));
            }
        }
        None
    }

    /// Mounts the disks and writes the clock files that `kinds` need for
    /// nodes `ids` of the run in `run_dir`.
    pub fn prepare(run_dir: &Path, ids: &[u64], kinds: &[NemesisKind]) -> Result<Machine> {
        let mut m = Machine::default();
        if kinds.contains(&NemesisKind::Clock) {
            m.clocks = Some(clocks::Clocks::create(run_dir, ids)?);
        }
        if kinds.contains(&NemesisKind::PowerCut) {
            m.disks = Some(disks::Disks::mount(run_dir, ids)?);
        }
        Ok(m)
    }

    /// The environment each node is started with.
    pub fn node_env(&self) -> BTreeMap<u64, Vec<(String, String)>> {
        self.clocks
            .as_ref()
            .map(|c| c.node_env())
            .unwrap_or_default()
    }

    /// Unmounts the disks (writing everything back, as a clean shutdown
    /// would) once the nodes are stopped; returns what went wrong.
    pub fn finish(&self) -> Vec<String> {
        self.disks
            .as_ref()
            .map(|d| d.unmount_all())
            .unwrap_or_default()
    }
}
