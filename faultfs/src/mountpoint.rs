//! The mountpoint before a mount: made if missing, cleared of a dead faultfs
//! mount that a crashed owner left behind, refused when anything live is
//! mounted there.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The filesystem type faultfs mounts show in /proc/self/mountinfo.
pub const FSTYPE: &str = "fuse.faultfs";

/// One line of /proc/self/mountinfo, the fields we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounted {
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
}

/// Why FUSE cannot be used here, if it cannot.
pub fn fuse_unavailable() -> Option<String> {
    if std::fs::metadata("/dev/fuse").is_err() {
        return Some("/dev/fuse is missing (no FUSE in this kernel or container)".into());
    }
    if fusermount().is_none() {
        return Some("fusermount3 is not on PATH (install the fuse3 package)".into());
    }
    // auto_unmount needs allow_other, which fusermount3 grants users other
    // than root only with user_allow_other in /etc/fuse.conf.
    let allowed = std::fs::read_to_string("/etc/fuse.conf")
        .is_ok_and(|c| c.lines().any(|l| l.trim() == "user_allow_other"));
    if unsafe { libc::geteuid() } != 0 && !allowed {
        return Some("not root and /etc/fuse.conf lacks user_allow_other".into());
    }
    None
}

/// The fusermount3 binary fuser will run.
pub fn fusermount() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FUSERMOUNT_PATH") {
        return Some(PathBuf::from(p));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("fusermount3"))
        .find(|p| p.is_file())
}

/// `path` made absolute without touching it (a dead FUSE mount cannot be
/// stat'ed): its parent is canonicalized, its name kept.
pub fn absolute(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("mountpoint {} has no final name", path.display()),
        )
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(parent.canonicalize()?.join(name))
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let s = std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("0");
            out.push(u8::from_str_radix(s, 8).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text (see proc(5)).
pub fn parse_mountinfo(text: &str) -> Vec<Mounted> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let mount_point = pre.split(' ').nth(4)?;
            let mut post = post.split(' ');
            let fstype = post.next()?;
            let source = post.next().unwrap_or("");
            Some(Mounted {
                mount_point: PathBuf::from(unescape(mount_point)),
                fstype: fstype.to_string(),
                source: unescape(source),
            })
        })
        .collect()
}

/// What is mounted exactly at `path` (absolute).
pub fn mounted_at(path: &Path) -> io::Result<Vec<Mounted>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(parse_mountinfo(&text)
        .into_iter()
        .filter(|m| m.mount_point == path)
        .collect())
}

/// Readies `mountpoint` for a faultfs mount over `backing` (canonical) and
/// returns it absolute.
pub fn prepare(mountpoint: &Path, backing: &Path) -> io::Result<PathBuf> {
    let abs = absolute(mountpoint)?;
    if abs.starts_with(backing) || backing.starts_with(&abs) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "mountpoint {} and backing directory {} must not contain one another",
                abs.display(),
                backing.display()
            ),
        ));
    }
    for m in mounted_at(&abs)? {
        if m.fstype != FSTYPE {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} is already a mount point ({} from {}); refusing to mount over it",
                    abs.display(),
                    m.fstype,
                    m.source
                ),
            ));
        }
        match std::fs::symlink_metadata(&abs) {
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => detach(&abs)?,
            Err(e) => return Err(e),
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} already has a live faultfs mount (of {}), owned by another process; \
                         unmount it first: fusermount3 -u {}",
                        abs.display(),
                        m.source,
                        abs.display()
                    ),
                ))
            }
        }
    }
    if !mounted_at(&abs)?.is_empty() {
        return Err(io::Error::other(format!(
            "{} is still a mount point after clearing a dead faultfs mount",
            abs.display()
        )));
    }
    std::fs::create_dir_all(&abs)?;
    Ok(abs)
}

/// Detaches a dead mount: directly as root, else through fusermount3.
pub fn detach(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EPERM) {
        return Err(err);
    }
    let bin = fusermount().unwrap_or_else(|| PathBuf::from("fusermount3"));
    let out = Command::new(bin)
        .args(["-u", "-z", "--"])
        .arg(path)
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "fusermount3 -u -z {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Unmounts `path` now; fails with EBUSY while files under it are open.
pub fn unmount(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EPERM) {
        return Err(err);
    }
    let bin = fusermount().unwrap_or_else(|| PathBuf::from("fusermount3"));
    let out = Command::new(bin).args(["-u", "--"]).arg(path).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "fusermount3 -u {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_give_mount_point_type_and_source_unescaped() {
        let text = "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n\
                    50 22 0:45 / /tmp/m rw,nosuid,nodev,relatime shared:3 - fuse.faultfs faultfs:/tmp/b rw,user_id=0\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mount_point, PathBuf::from("/mnt/with space"));
        assert_eq!(m[0].fstype, "ext3");
        assert_eq!(m[1].fstype, FSTYPE);
        assert_eq!(m[1].source, "faultfs:/tmp/b");
    }

    #[test]
    fn a_mountpoint_inside_the_backing_dir_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let backing = d.path().canonicalize().unwrap();
        let e = prepare(&backing.join("m"), &backing).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_mountpoint_that_is_another_mount_is_refused() {
        // /proc is a mount point on any Linux system.
        let e = prepare(Path::new("/proc"), Path::new("/nonexistent-backing")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
        assert!(e.to_string().contains("refusing"), "{e}");
    }
}
