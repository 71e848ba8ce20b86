//! faultfs: lost unsynced writes as a fault of the machine.
//!
//! A FUSE passthrough over a backing directory that, like LazyFS, keeps
//! every write (and size change) in memory until the file is fsynced or
//! fdatasynced; only then does it reach the backing file. [`FaultFs::power_cut`]
//! drops what was never synced ([`CutMode::LoseAll`]) or writes back a
//! random prefix of it ([`CutMode::TornSeq`]), as a power cut would.
//! Processes see their own writes through the mount until then.
//!
//! Namespace operations (create, mkdir, rename, unlink, rmdir, link,
//! symlink) and metadata go straight to the backing directory: a cut never
//! undoes them (a file created and never fsynced survives, empty).
//!
//! Use: SIGKILL the processes using the mount, [`FaultFs::power_cut`], then
//! restart them. A clean [`FaultFs::unmount`] (or drop) writes everything
//! back. If the owning process dies, fusermount3's `auto_unmount` removes
//! the mount; a dead mount left at the same place is cleared on the next
//! mount.

mod cut;
mod fs;
mod helper;
mod inodes;
pub mod mountpoint;
mod overlay;
mod release_order;
mod sys;

pub use cut::{CutMode, CutReport, FileCut};
pub use mountpoint::fuse_unavailable;

use fs::{FaultFsOps, Shared};
use fuser::{BackgroundSession, Config, INodeNo, MountOption, Notifier, SessionACL};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a mount behaves.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Threads serving FUSE requests.
    pub threads: usize,
    /// How long the kernel may cache names and attributes.
    pub ttl: Duration,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            threads: 2,
            ttl: Duration::from_secs(1),
        }
    }
}

/// A mounted faultfs. Thread-safe; dropping it unmounts (writing everything
/// back first).
#[derive(Debug)]
pub struct FaultFs {
    shared: Arc<Shared>,
    session: Mutex<Option<BackgroundSession>>,
    notifier: Notifier,
    mountpoint: PathBuf,
    backing: PathBuf,
    helper: Option<i32>,
    /// Duplicates of the mount's /dev/fuse fds (see [`release_order`]);
    /// closed once the mount is gone.
    devices: Mutex<Vec<std::os::fd::OwnedFd>>,
}

impl FaultFs {
    /// Mounts a faultfs of `backing` at `mountpoint` (created if missing; a
    /// dead faultfs mount there is cleared, anything live is refused).
    pub fn mount(backing: &Path, mountpoint: &Path, opts: MountOptions) -> io::Result<FaultFs> {
        if let Some(why) = fuse_unavailable() {
            return Err(io::Error::new(io::ErrorKind::Unsupported, why));
        }
        let backing = backing.canonicalize().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("backing directory {}: {e}", backing.display()),
            )
        })?;
        if !backing.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("backing {} is not a directory", backing.display()),
            ));
        }
        let mountpoint = mountpoint::prepare(mountpoint, &backing)?;
        let shared = Arc::new(Shared::new(backing.clone(), opts.ttl)?);
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName(format!("faultfs:{}", backing.display())),
            MountOption::Subtype("faultfs".into()),
            MountOption::AutoUnmount,
            MountOption::DefaultPermissions,
        ];
        // auto_unmount needs allow_other (fusermount3's rule).
        config.acl = SessionACL::All;
        config.n_threads = Some(opts.threads.max(1));
        let fuse_fds = release_order::before_mount();
        let session = fuser::spawn_mount(FaultFsOps(shared.clone()), &mountpoint, &config)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("mounting faultfs at {}: {e}", mountpoint.display()),
                )
            })?;
        let devices = release_order::hold_devices(&fuse_fds);
        let notifier = session.notifier();
        let helper = helper::find(&mountpoint);
        Ok(FaultFs {
            shared,
            session: Mutex::new(Some(session)),
            notifier,
            mountpoint,
            backing,
            helper,
            devices: Mutex::new(devices),
        })
    }

    /// Where the filesystem is mounted (absolute).
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The directory holding what survives (canonical).
    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// Bytes written and not yet synced, over all files.
    pub fn unsynced_bytes(&self) -> u64 {
        self.shared.unsynced_bytes()
    }

    /// Writes every unsynced change back and syncs it (a clean shutdown).
    pub fn sync_all(&self) -> io::Result<()> {
        self.shared.sync_all()
    }

    /// Cuts the power: every unsynced change is lost, or torn per `mode`.
    /// Kill the processes using the mount first; afterwards the kernel's
    /// caches of the files cut are invalidated, so a restarted process sees
    /// only what survived.
    pub fn power_cut(&self, mode: CutMode) -> io::Result<CutReport> {
        let (report, touched) = self.shared.power_cut(mode);
        for ino in touched {
            // ENOENT: the kernel holds nothing for this inode.
            let _ = self.notifier.inval_inode(INodeNo(ino), 0, 0);
        }
        report
    }

    /// Writes everything back and unmounts. If files under the mount are
    /// still open the mount is detached lazily and an error says so.
    pub fn unmount(self) -> io::Result<()> {
        self.unmount_inner()
    }

    fn unmount_inner(&self) -> io::Result<()> {
        let Some(session) = self
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return Ok(());
        };
        let synced = self.shared.sync_all();
        let unmounted = match unmount_when_idle(&self.mountpoint) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                mountpoint::detach(&self.mountpoint)?;
                Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!(
                        "{} was busy (files open under it); detached lazily",
                        self.mountpoint.display()
                    ),
                ))
            }
            other => other,
        };
        // Dropping the rest of the session closes the auto_unmount socket:
        // the helper sees the mount gone and exits.
        let guard = {
            let s = session;
            let BackgroundSession { guard, .. } = s;
            guard
        };
        if let Some(pid) = self.helper {
            helper::reap(pid, Duration::from_secs(10));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !guard.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if guard.is_finished() {
            let _ = guard.join();
        }
        self.devices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        unmounted.and(synced)
    }
}

impl Drop for FaultFs {
    fn drop(&mut self) {
        let _ = self.unmount_inner();
    }
}

/// How long an unmount refused as busy is tried again before the mount is
/// detached lazily.
const BUSY_GRACE: Duration = Duration::from_millis(500);

/// Unmounts, trying again for [`BUSY_GRACE`] while the kernel says busy: a
/// process that forks while another of its threads has a file open under
/// the mount holds that file in the child until the child execs, a moment
/// that passes (a test harness spawning a node, a mount's own helper).
fn unmount_when_idle(path: &Path) -> io::Result<()> {
    let deadline = Instant::now() + BUSY_GRACE;
    loop {
        match mountpoint::unmount(path) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_mount_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<super::FaultFs>();
    }
}
