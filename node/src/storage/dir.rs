//! The data directory itself: its lock, its owner, and the atomic file
//! replacement (temp, fsync, rename, fsync dir) every metadata file uses.

use super::error::{Result, StorageError};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Name of the lock file; held with an exclusive flock while open.
pub const LOCK_FILE: &str = "LOCK";
/// Name of the file recording which node of which cluster owns the dir.
pub const IDENTITY_FILE: &str = "IDENTITY";
/// Suffix of temporary files; leftovers of a crash are removed on open.
pub const TMP_SUFFIX: &str = ".tmp";

const IDENTITY_MAGIC: &[u8; 8] = b"RRIDENT1";
const IDENTITY_LEN: usize = 8 + 8 + 8 + 4;

/// An exclusive lock on a data dir, released when dropped (or when the
/// process dies, which is why flock and not a pid file).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock without blocking; another holder gives `Locked`.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StorageError::io("open lock file", &path, e))?;
        // SAFETY: flock on a valid open descriptor has no memory effects.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(StorageError::Locked {
                    dir: dir.to_path_buf(),
                });
            }
            return Err(StorageError::io("flock", &path, err));
        }
        Ok(DirLock { _file: file })
    }
}

/// fsyncs a directory so that creations, renames and removals in it are
/// durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(|e| StorageError::io("open dir", dir, e))?;
    f.sync_all()
        .map_err(|e| StorageError::io("fsync dir", dir, e))
}

/// First half of an atomic replacement: writes `bytes` to `name.tmp` and
/// fsyncs it. A crash after this leaves the old `name` untouched.
pub fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&tmp)
        .map_err(|e| StorageError::io("create", &tmp, e))?;
    f.write_all(bytes)
        .map_err(|e| StorageError::io("write", &tmp, e))?;
    f.sync_all()
        .map_err(|e| StorageError::io("fsync", &tmp, e))?;
    Ok(tmp)
}

/// Second half of an atomic replacement: renames `tmp` over `name` and
/// fsyncs the directory, after which the new content is durable.
pub fn commit_temp(dir: &Path, tmp: &Path, name: &str) -> Result<()> {
    let dst = dir.join(name);
    fs::rename(tmp, &dst).map_err(|e| StorageError::io("rename", tmp, e))?;
    fsync_dir(dir)
}

/// Replaces `dir/name` with `bytes` atomically and durably.
pub fn atomic_write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = write_temp(dir, name, bytes)?;
    commit_temp(dir, &tmp, name)
}

/// Removes leftover temporary files of an interrupted atomic write.
pub fn remove_temp_files(dir: &Path) -> Result<()> {
    let mut removed = false;
    for name in list_names(dir)? {
        if name.ends_with(TMP_SUFFIX) {
            let p = dir.join(&name);
            tracing::warn!(file = %p.display(), "removing leftover temporary file of an interrupted write");
            fs::remove_file(&p).map_err(|e| StorageError::io("remove", &p, e))?;
            removed = true;
        }
    }
    if removed {
        fsync_dir(dir)?;
    }
    Ok(())
}

/// The file names in a directory (non-UTF-8 names are skipped: none of ours
/// are).
pub fn list_names(dir: &Path) -> Result<Vec<String>> {
    let rd = fs::read_dir(dir).map_err(|e| StorageError::io("read dir", dir, e))?;
    let mut names = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| StorageError::io("read dir", dir, e))?;
        if let Ok(name) = ent.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Who owns a data dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// The node's id within its cluster.
    pub node_id: u64,
    /// The cluster's id.
    pub cluster_id: u64,
}

impl Identity {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(IDENTITY_LEN);
        b.extend_from_slice(IDENTITY_MAGIC);
        b.extend_from_slice(&self.node_id.to_le_bytes());
        b.extend_from_slice(&self.cluster_id.to_le_bytes());
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> std::result::Result<Identity, String> {
        if b.len() != IDENTITY_LEN {
            return Err(format!("{} bytes, expected {IDENTITY_LEN}", b.len()));
        }
        if &b[..8] != IDENTITY_MAGIC {
            return Err("bad magic".into());
        }
        let crc = u32::from_le_bytes(b[24..28].try_into().expect("4 bytes"));
        if crc32c::crc32c(&b[..24]) != crc {
            return Err("checksum mismatch".into());
        }
        Ok(Identity {
            node_id: u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
            cluster_id: u64::from_le_bytes(b[16..24].try_into().expect("8 bytes")),
        })
    }

    /// Checks the identity recorded in `dir` against `self`, recording it if
    /// the dir is new. `has_data` says whether log or snapshot files exist:
    /// data without an identity is refused rather than adopted.
    pub fn check_or_record(&self, dir: &Path, has_data: bool) -> Result<()> {
        let path = dir.join(IDENTITY_FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                let found =
                    Identity::decode(&bytes).map_err(|reason| StorageError::CorruptFile {
                        path: path.clone(),
                        reason,
                    })?;
                if found != *self {
                    return Err(StorageError::WrongOwner {
                        dir: dir.to_path_buf(),
                        node: self.node_id,
                        cluster: self.cluster_id,
                        found_node: found.node_id,
                        found_cluster: found.cluster_id,
                    });
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if has_data {
                    return Err(StorageError::MissingIdentity {
                        dir: dir.to_path_buf(),
                    });
                }
                atomic_write(dir, IDENTITY_FILE, &self.encode())
            }
            Err(e) => Err(StorageError::io("read", &path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_and_detects_damage() {
        let id = Identity {
            node_id: 3,
            cluster_id: 0xfeed,
        };
        let b = id.encode();
        assert_eq!(Identity::decode(&b), Ok(id));
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 0x10;
            assert!(Identity::decode(&d).is_err(), "byte {i}");
        }
        assert!(Identity::decode(&b[..10]).is_err());
    }
}
