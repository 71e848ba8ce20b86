//! Makes the kernel drop a SIGKILLed owner's FUSE connection before it
//! wakes fusermount3's `auto_unmount` helper.
//!
//! When the owning process dies, the helper wakes as the owner's end of
//! their socket is released, then opens the mountpoint and unmounts only if
//! that fails with ENOTCONN (libfuse 3.14's `should_auto_unmount`). An
//! exiting process releases its files in reverse order of their fd numbers
//! (each last `fput` is queued as task work, and task work runs newest
//! first). fuser opens /dev/fuse before the socket, so the socket went
//! first: the helper's open raced the connection's end, got a live answer
//! or ECONNABORTED, and the helper left without unmounting: a dead mount
//! outlived its owner (about one SIGKILL in ten on a loaded machine). A
//! duplicate of each /dev/fuse fd above every fd open makes the device the
//! last reference released first.

use std::collections::BTreeSet;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

/// This process's open fds, and those among them on /dev/fuse.
fn open_fds() -> (BTreeSet<i32>, BTreeSet<i32>) {
    let mut all = BTreeSet::new();
    let mut fuse = BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for e in dir.flatten() {
            let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            all.insert(fd);
            if std::fs::read_link(e.path()).is_ok_and(|p| p == Path::new("/dev/fuse")) {
                fuse.insert(fd);
            }
        }
    }
    (all, fuse)
}

/// The /dev/fuse fds open before a mount.
pub fn before_mount() -> BTreeSet<i32> {
    open_fds().1
}

/// Duplicates, above every fd open now, each /dev/fuse fd opened since
/// `before` (the mount's): hold them as long as the mount, and drop them
/// after it is gone. A duplicate that cannot be made is skipped (the mount
/// works the same; only the race above stays open).
pub fn hold_devices(before: &BTreeSet<i32>) -> Vec<OwnedFd> {
    let (all, fuse) = open_fds();
    let above = all.last().copied().unwrap_or(2) + 1;
    fuse.difference(before)
        .filter_map(|&fd| {
            // SAFETY: fcntl on an fd this process holds; the new fd is ours
            // alone (close-on-exec, so no child inherits the device).
            let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, above) };
            (dup >= 0).then(|| unsafe { OwnedFd::from_raw_fd(dup) })
        })
        .collect()
}
