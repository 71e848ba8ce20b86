//! Without cuts, faultfs must behave as a normal filesystem: random
//! sequences of file operations give the same results and the same final
//! tree on the mount as in a plain temp dir.

mod common;

use common::{fuse_or_skip, Mount};
use proptest::prelude::*;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

const NAMES: [&str; 7] = ["f0", "f1", "d0", "d0/f0", "d0/f2", "d1", "d0/d2"];

#[derive(Debug, Clone)]
enum Op {
    WriteAt(usize, u64, usize, u8),
    Append(usize, usize, u8),
    Truncate(usize, u64),
    Read(usize, u64, usize),
    Stat(usize),
    Rename(usize, usize),
    Unlink(usize),
    Mkdir(usize),
    Rmdir(usize),
    ReadDir(usize),
    Fsync(usize),
    Link(usize, usize),
    Symlink(usize, usize),
    ReadLink(usize),
    Open(usize, usize, bool),
    WriteH(usize, u64, usize, u8),
    ReadH(usize, u64, usize),
    Close(usize),
    SyncAll,
}

fn op() -> impl Strategy<Value = Op> {
    let n = 0..NAMES.len();
    let h = 0usize..3;
    prop_oneof![
        4 => (n.clone(), 0u64..20_000, 0usize..6000, any::<u8>()).prop_map(|(p, o, l, b)| Op::WriteAt(p, o, l, b)),
        3 => (n.clone(), 0usize..3000, any::<u8>()).prop_map(|(p, l, b)| Op::Append(p, l, b)),
        2 => (n.clone(), 0u64..25_000).prop_map(|(p, l)| Op::Truncate(p, l)),
        3 => (n.clone(), 0u64..25_000, 0usize..9000).prop_map(|(p, o, l)| Op::Read(p, o, l)),
        2 => n.clone().prop_map(Op::Stat),
        2 => (n.clone(), n.clone()).prop_map(|(a, b)| Op::Rename(a, b)),
        1 => n.clone().prop_map(Op::Unlink),
        2 => n.clone().prop_map(Op::Mkdir),
        1 => n.clone().prop_map(Op::Rmdir),
        1 => n.clone().prop_map(Op::ReadDir),
        2 => n.clone().prop_map(Op::Fsync),
        1 => (n.clone(), n.clone()).prop_map(|(a, b)| Op::Link(a, b)),
        1 => (n.clone(), n.clone()).prop_map(|(a, b)| Op::Symlink(a, b)),
        1 => n.clone().prop_map(Op::ReadLink),
        2 => (h.clone(), n.clone(), any::<bool>()).prop_map(|(s, p, a)| Op::Open(s, p, a)),
        3 => (h.clone(), 0u64..20_000, 0usize..5000, any::<u8>()).prop_map(|(s, o, l, b)| Op::WriteH(s, o, l, b)),
        2 => (h.clone(), 0u64..25_000, 0usize..9000).prop_map(|(s, o, l)| Op::ReadH(s, o, l)),
        1 => h.prop_map(Op::Close),
        2 => Just(Op::SyncAll),
    ]
}

/// One side of the comparison: a root and its open handles.
struct Side {
    root: PathBuf,
    handles: HashMap<usize, File>,
}

type Outcome = Result<String, i32>;

fn errno(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

fn read_at(f: &File, off: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = f.read_at(&mut buf[done..], off + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

impl Side {
    fn p(&self, i: usize) -> PathBuf {
        self.root.join(NAMES[i])
    }

    fn apply(&mut self, op: &Op, sync_all: &dyn Fn()) -> Outcome {
        let r: std::io::Result<String> = (|| match op {
            Op::WriteAt(p, off, len, b) => {
                let f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(self.p(*p))?;
                f.write_all_at(&vec![*b; *len], *off)?;
                Ok(String::new())
            }
            Op::Append(p, len, b) => {
                let mut f = OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(self.p(*p))?;
                f.write_all(&vec![*b; *len])?;
                Ok(String::new())
            }
            Op::Truncate(p, len) => {
                OpenOptions::new()
                    .write(true)
                    .open(self.p(*p))?
                    .set_len(*len)?;
                Ok(String::new())
            }
            Op::Read(p, off, len) => {
                let data = read_at(&File::open(self.p(*p))?, *off, *len)?;
                Ok(format!("{data:?}"))
            }
            Op::Stat(p) => {
                let m = fs::symlink_metadata(self.p(*p))?;
                let size = if m.is_file() { m.len() } else { 0 };
                Ok(format!(
                    "{:?} {} nlink {}",
                    m.file_type(),
                    size,
                    if m.is_dir() { 0 } else { m.nlink() }
                ))
            }
            Op::Rename(a, b) => fs::rename(self.p(*a), self.p(*b)).map(|_| String::new()),
            Op::Unlink(p) => fs::remove_file(self.p(*p)).map(|_| String::new()),
            Op::Mkdir(p) => fs::create_dir(self.p(*p)).map(|_| String::new()),
            Op::Rmdir(p) => fs::remove_dir(self.p(*p)).map(|_| String::new()),
            Op::ReadDir(p) => {
                let mut names: Vec<String> = fs::read_dir(self.p(*p))?
                    .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect::<Result<_, _>>()?;
                names.sort();
                Ok(names.join(","))
            }
            Op::Fsync(p) => File::open(self.p(*p))?.sync_all().map(|_| String::new()),
            Op::Link(a, b) => fs::hard_link(self.p(*a), self.p(*b)).map(|_| String::new()),
            Op::Symlink(target, p) => {
                std::os::unix::fs::symlink(NAMES[*target], self.p(*p)).map(|_| String::new())
            }
            Op::ReadLink(p) => fs::read_link(self.p(*p)).map(|t| t.display().to_string()),
            Op::Open(s, p, append) => {
                let f = OpenOptions::new()
                    .read(true)
                    .write(!append)
                    .append(*append)
                    .create(true)
                    .truncate(false)
                    .open(self.p(*p))?;
                self.handles.insert(*s, f);
                Ok(String::new())
            }
            Op::WriteH(s, off, len, b) => {
                let Some(f) = self.handles.get_mut(s) else {
                    return Ok("no handle".into());
                };
                if off % 2 == 0 {
                    // The descriptor's offset (with O_APPEND: the end).
                    f.write_all(&vec![*b; *len])?;
                } else {
                    f.write_all_at(&vec![*b; *len], *off)?;
                }
                Ok(String::new())
            }
            Op::ReadH(s, off, len) => {
                let Some(f) = self.handles.get_mut(s) else {
                    return Ok("no handle".into());
                };
                let data = if off % 2 == 0 {
                    let mut buf = vec![0u8; *len];
                    let n = f.read(&mut buf)?;
                    buf.truncate(n);
                    buf
                } else {
                    read_at(f, *off, *len)?
                };
                Ok(format!("{data:?}"))
            }
            Op::Close(s) => Ok(if self.handles.remove(s).is_some() {
                "closed"
            } else {
                "no handle"
            }
            .into()),
            Op::SyncAll => {
                sync_all();
                Ok(String::new())
            }
        })();
        r.map_err(errno)
    }
}

/// Every entry under `root`: path, kind, and content for files and links.
fn tree(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            let t = e.file_type().unwrap();
            let what = if t.is_dir() {
                stack.push(e.path());
                "dir".to_string()
            } else if t.is_symlink() {
                format!("link {}", fs::read_link(e.path()).unwrap().display())
            } else {
                let data = fs::read(e.path()).unwrap();
                format!("file {} {:?}", data.len(), &data)
            };
            out.push((rel, what));
        }
    }
    out.sort();
    out
}

#[test]
fn random_operation_sequences_match_a_plain_directory() {
    if !fuse_or_skip("differential") {
        return;
    }
    let m = Mount::new();
    let plain = tempfile::tempdir().unwrap();
    let case = std::sync::atomic::AtomicUsize::new(0);
    let config = ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in prop::collection::vec(op(), 1..40))| {
        let name = format!("case{}", case.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        fs::create_dir(m.m(&name)).unwrap();
        fs::create_dir(plain.path().join(&name)).unwrap();
        let mut ours = Side { root: m.m(&name), handles: HashMap::new() };
        let mut theirs = Side { root: plain.path().join(&name), handles: HashMap::new() };
        for (i, op) in ops.iter().enumerate() {
            let a = ours.apply(op, &|| m.fs.sync_all().unwrap());
            let b = theirs.apply(op, &|| ());
            prop_assert_eq!(a, b, "op {} {:?}", i, op);
        }
        drop(ours);
        drop(theirs);
        prop_assert_eq!(tree(&m.m(&name)), tree(&plain.path().join(&name)));
        // A clean shutdown writes back exactly what was seen.
        m.fs.sync_all().unwrap();
        prop_assert_eq!(tree(&m.b(&name)), tree(&plain.path().join(&name)));
    });
}
