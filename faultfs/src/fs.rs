//! The FUSE side: a passthrough over the backing directory whose file data
//! goes through the overlays. Namespace operations (create, mkdir, rename,
//! unlink, rmdir, link, symlink, mknod) and metadata (mode, owner, times)
//! go straight to the backing directory: only file data and sizes wait for
//! an fsync.

use crate::cut::{CutMode, CutReport, Survivors};
use crate::inodes::{FileData, Inode, Table};
use crate::sys;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{DirEntryExt, FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An open file or directory.
#[derive(Debug)]
enum Handle {
    File { inode: Arc<Inode>, flags: i32 },
    Dir(Vec<DirEntry>),
}

#[derive(Debug)]
struct DirEntry {
    name: OsString,
    ino: u64,
    kind: FileType,
}

/// The changes one setattr asks for (None: leave as is).
#[derive(Debug)]
struct AttrChange {
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
    atime: Option<TimeOrNow>,
    mtime: Option<TimeOrNow>,
}

/// State shared by the FUSE threads and the owner of the mount.
#[derive(Debug)]
pub(crate) struct Shared {
    table: Mutex<Table>,
    handles: Mutex<HashMap<u64, Handle>>,
    next_fh: AtomicU64,
    /// Canonical backing directory (for the paths in cut reports).
    backing_root: PathBuf,
    ttl: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn enoent() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOENT)
}

fn kind_of(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

fn system_time(sec: i64, nsec: i64) -> SystemTime {
    let d = Duration::new(sec.unsigned_abs(), nsec.clamp(0, 999_999_999) as u32);
    if sec >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

fn timespec(t: TimeOrNow) -> Option<libc::timespec> {
    let TimeOrNow::SpecificTime(t) = t else {
        return None;
    };
    let (sec, nsec) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos() as i64),
        Err(e) => (-(e.duration().as_secs() as i64), 0),
    };
    Some(libc::timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    })
}

impl Shared {
    pub(crate) fn new(backing_root: PathBuf, ttl: Duration) -> io::Result<Self> {
        let root = sys::open_dir_path(&backing_root)?;
        Ok(Shared {
            table: Mutex::new(Table::new(root)?),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            backing_root,
            ttl,
        })
    }

    fn inode(&self, ino: INodeNo) -> io::Result<Arc<Inode>> {
        lock(&self.table).get(ino.0).ok_or_else(enoent)
    }

    fn attr(&self, inode: &Inode) -> io::Result<FileAttr> {
        let st = sys::stat_fd(inode.fd.as_fd())?;
        let kind = kind_of(st.st_mode);
        let (mut size, mut blocks) = (st.st_size as u64, st.st_blocks as u64);
        if kind == FileType::RegularFile {
            if let Some(ov) = &inode.lock().overlay {
                size = ov.size();
                blocks = size.div_ceil(512);
            }
        }
        Ok(FileAttr {
            ino: INodeNo(inode.ino),
            size,
            blocks,
            atime: system_time(st.st_atime, st.st_atime_nsec),
            mtime: system_time(st.st_mtime, st.st_mtime_nsec),
            ctime: system_time(st.st_ctime, st.st_ctime_nsec),
            crtime: UNIX_EPOCH,
            kind,
            perm: (st.st_mode & 0o7777) as u16,
            nlink: st.st_nlink as u32,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev as u32,
            blksize: 4096,
            flags: 0,
        })
    }

    /// Looks `name` up in `parent`, counting one kernel reference.
    fn lookup_entry(&self, parent: INodeNo, name: &OsStr) -> io::Result<FileAttr> {
        let dir = self.inode(parent)?;
        let fd = sys::open_path(dir.fd.as_fd(), name)?;
        let st = sys::stat_fd(fd.as_fd())?;
        let inode = lock(&self.table).looked_up(fd, &st);
        self.attr(&inode)
    }

    /// New files belong to the caller, as on a normal filesystem (only
    /// possible when the mount runs as root).
    fn give_to_caller(&self, req: &Request, dir: &Inode, name: &OsStr) -> io::Result<()> {
        if sys::euid() == 0 && (req.uid() != 0 || req.gid() != 0) {
            sys::chown_at(dir.fd.as_fd(), name, req.uid(), req.gid())?;
        }
        Ok(())
    }

    fn add_handle(&self, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.handles).insert(fh, h);
        fh
    }

    fn file_handle_flags(&self, fh: FileHandle) -> i32 {
        match lock(&self.handles).get(&fh.0) {
            Some(Handle::File { flags, .. }) => *flags,
            _ => 0,
        }
    }

    fn setattr_inner(&self, ino: INodeNo, c: AttrChange) -> io::Result<FileAttr> {
        let inode = self.inode(ino)?;
        let path = sys::proc_path(inode.fd.as_fd());
        let AttrChange {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        } = c;
        if let Some(mode) = mode {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777))?;
        }
        if uid.is_some() || gid.is_some() {
            sys::chown_fd(
                inode.fd.as_fd(),
                uid.unwrap_or(u32::MAX),
                gid.unwrap_or(u32::MAX),
            )?;
        }
        if let Some(size) = size {
            let mut d = inode.lock();
            let (_, ov) = d.overlay(&inode)?;
            ov.set_len(size);
        }
        if atime.is_some() || mtime.is_some() {
            sys::set_times(&path, atime.map(timespec), mtime.map(timespec))?;
        }
        self.attr(&inode)
    }

    fn create_inner(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> io::Result<(FileAttr, u64)> {
        let dir = self.inode(parent)?;
        let mode = mode & !umask & 0o7777;
        let base = libc::O_RDWR | libc::O_NOFOLLOW;
        // O_EXCL first, to know whether the file is new.
        let (file, created) = match sys::open_at(
            dir.fd.as_fd(),
            name,
            base | libc::O_CREAT | libc::O_EXCL,
            mode,
        ) {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && flags & libc::O_EXCL == 0 => {
                (sys::open_at(dir.fd.as_fd(), name, base, 0)?, false)
            }
            Err(e) => return Err(e),
        };
        if created {
            self.give_to_caller(req, &dir, name)?;
        }
        let fd = sys::open_path(dir.fd.as_fd(), name)?;
        let st = sys::stat_fd(fd.as_fd())?;
        let inode = lock(&self.table).looked_up(fd, &st);
        {
            let mut d = inode.lock();
            if d.backing.is_none() {
                d.backing = Some(file);
            }
            if !created && flags & libc::O_TRUNC != 0 {
                let (_, ov) = d.overlay(&inode)?;
                if ov.size() > 0 {
                    ov.set_len(0);
                }
            }
            d.open += 1;
        }
        let attr = self.attr(&inode)?;
        let fh = self.add_handle(Handle::File { inode, flags });
        Ok((attr, fh))
    }

    fn open_inner(&self, ino: INodeNo, flags: OpenFlags) -> io::Result<u64> {
        let inode = self.inode(ino)?;
        {
            let mut d = inode.lock();
            d.backing(&inode)?;
            d.open += 1;
        }
        Ok(self.add_handle(Handle::File {
            inode,
            flags: flags.0,
        }))
    }

    fn read_inner(&self, ino: INodeNo, off: u64, size: u32) -> io::Result<Vec<u8>> {
        let inode = self.inode(ino)?;
        let mut d = inode.lock();
        let overlay = d.overlay.take();
        let result = read_data(&mut d, &inode, overlay.as_ref(), off, size);
        d.overlay = overlay;
        result
    }

    fn write_inner(&self, ino: INodeNo, off: u64, data: &[u8], flags: i32) -> io::Result<()> {
        let inode = self.inode(ino)?;
        let mut d = inode.lock();
        let (backing, ov) = d.overlay(&inode)?;
        ov.write(backing, off, data)?;
        if flags & libc::O_DSYNC != 0 {
            d.sync(&inode, flags & libc::O_SYNC == libc::O_SYNC)?;
        }
        Ok(())
    }

    fn opendir_inner(&self, ino: INodeNo) -> io::Result<u64> {
        let inode = self.inode(ino)?;
        let mut entries = vec![
            DirEntry {
                name: ".".into(),
                ino: ino.0,
                kind: FileType::Directory,
            },
            DirEntry {
                name: "..".into(),
                ino: crate::inodes::ROOT,
                kind: FileType::Directory,
            },
        ];
        for e in std::fs::read_dir(sys::proc_path(inode.fd.as_fd()))? {
            let e = e?;
            let kind = match e.file_type() {
                Ok(t) => FileType::from_std(t).unwrap_or(FileType::RegularFile),
                Err(_) => FileType::RegularFile,
            };
            entries.push(DirEntry {
                name: e.file_name(),
                ino: e.ino(),
                kind,
            });
        }
        Ok(self.add_handle(Handle::Dir(entries)))
    }

    fn statfs_inner(&self) -> io::Result<libc::statvfs> {
        let root = self.inode(INodeNo(crate::inodes::ROOT))?;
        let dir = File::open(sys::proc_path(root.fd.as_fd()))?;
        sys::statvfs_fd(dir.as_raw_fd())
    }

    fn fallocate_inner(&self, ino: INodeNo, off: u64, len: u64, mode: i32) -> io::Result<()> {
        match mode {
            // Space reservation changes no content.
            libc::FALLOC_FL_KEEP_SIZE => Ok(()),
            0 => {
                let inode = self.inode(ino)?;
                let mut d = inode.lock();
                let (_, ov) = d.overlay(&inode)?;
                if off + len > ov.size() {
                    ov.set_len(off + len);
                }
                Ok(())
            }
            _ => Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
        }
    }

    /// The file's path under the backing directory, for reports.
    fn report_path(&self, inode: &Inode) -> String {
        let link = std::fs::read_link(sys::proc_path(inode.fd.as_fd())).unwrap_or_default();
        let rel = link.strip_prefix(&self.backing_root).unwrap_or(&link);
        rel.to_string_lossy().into_owned()
    }

    /// Writes every unsynced change to the backing files and syncs them.
    pub(crate) fn sync_all(&self) -> io::Result<()> {
        let inodes = lock(&self.table).all();
        let mut first_err = None;
        for inode in inodes {
            let mut d = inode.lock();
            if d.is_dirty() {
                if let Err(e) = d.sync(&inode, false) {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    pub(crate) fn unsynced_bytes(&self) -> u64 {
        let inodes = lock(&self.table).all();
        inodes
            .iter()
            .map(|i| i.lock().overlay.as_ref().map_or(0, |o| o.unsynced_bytes()))
            .sum()
    }

    /// Drops (or partly writes back) every unsynced change; returns the
    /// report and the inodes whose kernel caches must be invalidated.
    pub(crate) fn power_cut(&self, mode: CutMode) -> (io::Result<CutReport>, Vec<u64>) {
        let inodes = lock(&self.table).all();
        let mut files = Vec::new();
        let mut touched = Vec::new();
        let mut first_err = None;
        for inode in inodes {
            let mut d = inode.lock();
            let Some(ov) = d.overlay.take() else {
                continue;
            };
            if !ov.is_dirty() {
                continue;
            }
            let path = self.report_path(&inode);
            let survivors = Survivors::draw(mode, &path, ov.log());
            if survivors.whole > 0 || survivors.partial.is_some() {
                if let Err(e) = write_back(&mut d, &inode, ov.log(), survivors) {
                    first_err.get_or_insert(e);
                }
            }
            files.push(survivors.account(path, ov.log()));
            touched.push(inode.ino);
        }
        let mut table = lock(&self.table);
        for ino in &touched {
            table.drop_if_unused(*ino);
        }
        drop(table);
        let report = CutReport::new(mode, files);
        (first_err.map_or(Ok(report), Err), touched)
    }
}

/// Reads through `overlay` if the file has one, else from the backing file.
fn read_data(
    d: &mut FileData,
    inode: &Inode,
    overlay: Option<&crate::overlay::Overlay>,
    off: u64,
    size: u32,
) -> io::Result<Vec<u8>> {
    let backing = d.backing(inode)?;
    if let Some(ov) = overlay {
        return ov.read(backing, off, u64::from(size));
    }
    let mut buf = vec![0u8; size as usize];
    let mut done = 0;
    while done < buf.len() {
        match backing.read_at(&mut buf[done..], off + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(done);
    Ok(buf)
}

/// Writes the surviving prefix of `log` to the backing file and syncs it.
fn write_back(
    d: &mut FileData,
    inode: &Inode,
    log: &[crate::overlay::Op],
    survivors: Survivors,
) -> io::Result<()> {
    let backing = d.backing(inode)?;
    for op in &log[..survivors.whole] {
        op.apply(backing, None)?;
    }
    if let (Some(n), Some(op)) = (survivors.partial, log.get(survivors.whole)) {
        op.apply(backing, Some(n))?;
    }
    backing.sync_data()
}

/// The fuser adapter over [`Shared`].
#[derive(Debug)]
pub(crate) struct FaultFsOps(pub(crate) Arc<Shared>);

fn reply_entry(r: io::Result<FileAttr>, ttl: Duration, reply: ReplyEntry) {
    match r {
        Ok(attr) => reply.entry(&ttl, &attr, Generation(0)),
        Err(e) => reply.error(Errno::from(e)),
    }
}

fn reply_empty(r: io::Result<()>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(Errno::from(e)),
    }
}

impl FaultFsOps {
    fn dir_op(&self, parent: INodeNo, f: impl FnOnce(&Inode) -> io::Result<()>) -> io::Result<()> {
        let dir = self.0.inode(parent)?;
        f(&dir)
    }

    /// Creates something named `name` in `parent` with `make`, hands it to
    /// the caller, and answers with its entry.
    fn make(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        make: impl FnOnce(&Inode) -> io::Result<()>,
    ) -> io::Result<FileAttr> {
        let dir = self.0.inode(parent)?;
        make(&dir)?;
        self.0.give_to_caller(req, &dir, name)?;
        self.0.lookup_entry(parent, name)
    }
}

impl Filesystem for FaultFsOps {
    fn destroy(&mut self) {
        // A clean unmount writes everything back.
        let _ = self.0.sync_all();
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        reply_entry(self.0.lookup_entry(parent, name), self.0.ttl, reply);
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        lock(&self.0.table).forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.0.inode(ino).and_then(|i| self.0.attr(&i)) {
            Ok(attr) => reply.attr(&self.0.ttl, &attr),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        match self.0.setattr_inner(
            ino,
            AttrChange {
                mode,
                uid,
                gid,
                size,
                atime,
                mtime,
            },
        ) {
            Ok(attr) => reply.attr(&self.0.ttl, &attr),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self
            .0
            .inode(ino)
            .and_then(|i| sys::readlink_fd(i.fd.as_fd()))
        {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let r = self.make(req, parent, name, |dir| {
            sys::mknod_at(dir.fd.as_fd(), name, mode & !umask, rdev)
        });
        reply_entry(r, self.0.ttl, reply);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = self.make(req, parent, name, |dir| {
            sys::mkdir_at(dir.fd.as_fd(), name, mode & !umask)
        });
        reply_entry(r, self.0.ttl, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.dir_op(parent, |dir| sys::unlink_at(dir.fd.as_fd(), name, 0));
        reply_empty(r, reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.dir_op(parent, |dir| {
            sys::unlink_at(dir.fd.as_fd(), name, libc::AT_REMOVEDIR)
        });
        reply_empty(r, reply);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let r = self.make(req, parent, link_name, |dir| {
            sys::symlink_at(target, dir.fd.as_fd(), link_name)
        });
        reply_entry(r, self.0.ttl, reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = self.0.inode(parent).and_then(|from| {
            let to = self.0.inode(newparent)?;
            sys::rename_at(from.fd.as_fd(), name, to.fd.as_fd(), newname, flags.bits())
        });
        reply_empty(r, reply);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let r = self.0.inode(ino).and_then(|src| {
            let dir = self.0.inode(newparent)?;
            sys::link_at(src.fd.as_fd(), dir.fd.as_fd(), newname)?;
            self.0.lookup_entry(newparent, newname)
        });
        reply_entry(r, self.0.ttl, reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        // No FOPEN_KEEP_CACHE: each open drops the kernel's cached pages,
        // so a restarted process never reads data a cut took away.
        match self.0.open_inner(ino, flags) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.0.read_inner(ino, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let flags = flags.0 | self.0.file_handle_flags(fh);
        match self.0.write_inner(ino, offset, data, flags) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close() is not a sync.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let handle = lock(&self.0.handles).remove(&fh.0);
        if let Some(Handle::File { inode, .. }) = handle {
            let mut d = inode.lock();
            d.open = d.open.saturating_sub(1);
        }
        lock(&self.0.table).drop_if_unused(ino.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let r = self.0.inode(ino).and_then(|inode| {
            let mut d = inode.lock();
            d.sync(&inode, !datasync)
        });
        reply_empty(r, reply);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.0.opendir_inner(ino) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let handles = lock(&self.0.handles);
        let Some(Handle::Dir(entries)) = handles.get(&fh.0) else {
            drop(handles);
            reply.error(Errno::EBADF);
            return;
        };
        for (i, e) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(e.ino), i as u64 + 1, e.kind, &e.name) {
                break;
            }
        }
        drop(handles);
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        lock(&self.0.handles).remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Namespace changes are already in the backing directory; make
        // them durable there.
        let r = self
            .0
            .inode(ino)
            .and_then(|d| File::open(sys::proc_path(d.fd.as_fd()))?.sync_all());
        reply_empty(r, reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.0.statfs_inner() {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self.0.create_inner(req, parent, name, mode, umask, flags) {
            Ok((attr, fh)) => reply.created(
                &self.0.ttl,
                &attr,
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        reply_empty(self.0.fallocate_inner(ino, offset, length, mode), reply);
    }
}
