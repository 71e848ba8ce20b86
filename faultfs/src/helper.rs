//! The fusermount3 helper that fuser starts for `auto_unmount`: it stays
//! alive beside its owner and unmounts when the owner dies (even by
//! SIGKILL). On a clean unmount it must be waited for, both so that it does
//! not linger as a zombie and so that it cannot unmount a later mount at the
//! same place.

use std::path::Path;
use std::time::{Duration, Instant};

/// The pid of this process's fusermount3 child serving `mountpoint`.
pub fn find(mountpoint: &Path) -> Option<i32> {
    let me = std::process::id() as i32;
    let want = mountpoint.as_os_str().as_encoded_bytes();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name, which is in parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<i32>().ok());
        if ppid != Some(me) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let mut args = cmdline.split(|b| *b == 0);
        let is_fusermount = args
            .next()
            .is_some_and(|a0| a0.ends_with(b"fusermount3") || a0.ends_with(b"fusermount"));
        if is_fusermount && args.any(|a| a == want) {
            return Some(pid);
        }
    }
    None
}

/// Waits up to `timeout` for child `pid` to exit; false if it is still running.
pub fn reap(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid || r < 0 {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
