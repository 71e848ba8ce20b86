//! The inode table: each file the kernel knows about, held by an O_PATH fd
//! on the backing file (so renames and hard links need no path bookkeeping)
//! with its unsynced data. Lock order: the table, then one inode's data.

use crate::overlay::Overlay;
use crate::sys;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

/// The FUSE inode number of the mount's root.
pub const ROOT: u64 = 1;

/// One backing file the kernel holds a reference to.
#[derive(Debug)]
pub struct Inode {
    pub ino: u64,
    /// O_PATH handle on the backing file.
    pub fd: OwnedFd,
    pub data: Mutex<FileData>,
}

/// The I/O side of a regular file.
#[derive(Debug, Default)]
pub struct FileData {
    /// Read-write (or read-only) handle on the backing file, opened on demand.
    pub backing: Option<File>,
    /// Unsynced changes; None when the file is clean.
    pub overlay: Option<Overlay>,
    /// Open FUSE file handles.
    pub open: u32,
}

impl Inode {
    /// The inode's data (a poisoned lock is taken over: the data stays
    /// consistent between whole operations).
    pub fn lock(&self) -> MutexGuard<'_, FileData> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FileData {
    /// The backing file, opened through the inode's O_PATH fd if needed.
    pub fn backing(&mut self, inode: &Inode) -> io::Result<&File> {
        if self.backing.is_none() {
            let path = sys::proc_path(inode.fd.as_fd());
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .or_else(|_| File::open(&path))?;
            self.backing = Some(f);
        }
        Ok(self.backing.as_ref().expect("opened above"))
    }

    /// The overlay, created clean over the backing file if there is none.
    pub fn overlay(&mut self, inode: &Inode) -> io::Result<(&File, &mut Overlay)> {
        if self.overlay.is_none() {
            let len = self.backing(inode)?.metadata()?.len();
            self.overlay = Some(Overlay::new(len));
        }
        let backing = self.backing.as_ref().expect("opened by backing()");
        Ok((backing, self.overlay.as_mut().expect("set above")))
    }

    pub fn is_dirty(&self) -> bool {
        self.overlay.as_ref().is_some_and(Overlay::is_dirty)
    }

    /// Writes the unsynced changes to the backing file and syncs it
    /// (fdatasync, or fsync when `metadata`).
    pub fn sync(&mut self, inode: &Inode, metadata: bool) -> io::Result<()> {
        let dirty = self.overlay.take();
        let backing = self.backing(inode)?;
        if let Some(mut ov) = dirty {
            if let Err(e) = ov.flush(backing) {
                // Keep the changes: a later fsync may succeed.
                self.overlay = Some(ov);
                return Err(e);
            }
        }
        if metadata {
            backing.sync_all()
        } else {
            backing.sync_data()
        }
    }
}

#[derive(Debug)]
struct Entry {
    inode: Arc<Inode>,
    /// Kernel lookups not yet forgotten.
    nlookup: u64,
}

/// All inodes, by FUSE number and by backing (device, inode).
#[derive(Debug)]
pub struct Table {
    by_ino: HashMap<u64, Entry>,
    by_key: HashMap<(u64, u64), u64>,
    next: u64,
}

fn key(st: &libc::stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

impl Table {
    /// A table holding the root, `root` being an O_PATH fd on the backing dir.
    pub fn new(root: OwnedFd) -> io::Result<Self> {
        let st = sys::stat_fd(root.as_fd())?;
        let mut t = Table {
            by_ino: HashMap::new(),
            by_key: HashMap::new(),
            next: ROOT + 1,
        };
        t.by_key.insert(key(&st), ROOT);
        t.by_ino.insert(
            ROOT,
            Entry {
                inode: Arc::new(Inode {
                    ino: ROOT,
                    fd: root,
                    data: Mutex::default(),
                }),
                // The root is never forgotten.
                nlookup: 1,
            },
        );
        Ok(t)
    }

    pub fn get(&self, ino: u64) -> Option<Arc<Inode>> {
        self.by_ino.get(&ino).map(|e| e.inode.clone())
    }

    /// Counts one kernel lookup of the file behind `fd` (whose stat is
    /// `st`), adding it if new; `fd` is dropped if the file is known.
    pub fn looked_up(&mut self, fd: OwnedFd, st: &libc::stat) -> Arc<Inode> {
        if let Some(ino) = self.by_key.get(&key(st)) {
            let e = self.by_ino.get_mut(ino).expect("keys and inodes agree");
            e.nlookup += 1;
            return e.inode.clone();
        }
        let ino = self.next;
        self.next += 1;
        let inode = Arc::new(Inode {
            ino,
            fd,
            data: Mutex::default(),
        });
        self.by_key.insert(key(st), ino);
        self.by_ino.insert(
            ino,
            Entry {
                inode: inode.clone(),
                nlookup: 1,
            },
        );
        inode
    }

    /// The kernel dropped `n` references.
    pub fn forget(&mut self, ino: u64, n: u64) {
        if let Some(e) = self.by_ino.get_mut(&ino) {
            e.nlookup = e.nlookup.saturating_sub(n);
        }
        self.drop_if_unused(ino);
    }

    /// Drops an inode nobody refers to and with nothing unsynced (unsynced
    /// data must stay findable by a later lookup of the same file).
    pub fn drop_if_unused(&mut self, ino: u64) {
        let Some(e) = self.by_ino.get(&ino) else {
            return;
        };
        if ino == ROOT || e.nlookup > 0 {
            return;
        }
        {
            let d = e.inode.lock();
            if d.open > 0 || d.is_dirty() {
                return;
            }
        }
        let e = self.by_ino.remove(&ino).expect("present");
        if let Ok(st) = sys::stat_fd(e.inode.fd.as_fd()) {
            self.by_key.remove(&key(&st));
        } else {
            self.by_key.retain(|_, v| *v != ino);
        }
    }

    /// Every inode, for whole-filesystem work (sync, cut).
    pub fn all(&self) -> Vec<Arc<Inode>> {
        self.by_ino.values().map(|e| e.inode.clone()).collect()
    }
}
