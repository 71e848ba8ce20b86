//! The unsynced state of one regular file: what was written or truncated
//! since its last fsync, kept in memory over the backing file. The backing
//! file holds only what was synced (or survived a cut), so losing this state
//! is exactly what a power cut does to a page cache.
//!
//! Two views of the same changes are kept: 4 KiB pages (the file as the
//! application sees it, for reads) and the log of operations in the order
//! they came (to write back a prefix of them on a torn cut).

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Page size of the in-memory copy.
pub const PAGE: u64 = 4096;

/// One change to the file's data, as the application made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Write { off: u64, data: Vec<u8> },
    SetLen(u64),
}

impl Op {
    /// Applies this change (or its first `keep` bytes, for a write) to the
    /// backing file.
    pub fn apply(&self, file: &File, keep: Option<usize>) -> io::Result<()> {
        match self {
            Op::Write { off, data } => {
                let n = keep.unwrap_or(data.len()).min(data.len());
                file.write_all_at(&data[..n], *off)
            }
            Op::SetLen(len) => file.set_len(*len),
        }
    }
}

/// The unsynced changes of one file over its backing file.
#[derive(Debug)]
pub struct Overlay {
    /// Size as the application sees it.
    size: u64,
    /// Backing bytes at or past `floor` are not part of the file any more
    /// (a truncate went below them); they read as zeros. Always <= `size`.
    floor: u64,
    /// Pages changed since the last sync, holding the whole page as seen.
    pages: BTreeMap<u64, Box<[u8]>>,
    log: Vec<Op>,
    /// Payload bytes of the writes in `log`.
    written: u64,
}

impl Overlay {
    /// A clean overlay over a backing file of `backing_len` bytes.
    pub fn new(backing_len: u64) -> Self {
        Overlay {
            size: backing_len,
            floor: backing_len,
            pages: BTreeMap::new(),
            log: Vec::new(),
            written: 0,
        }
    }

    /// Whether anything changed since the last sync.
    pub fn is_dirty(&self) -> bool {
        !self.log.is_empty()
    }

    /// The file size as the application sees it.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes written since the last sync (rewrites of one range count each time).
    pub fn unsynced_bytes(&self) -> u64 {
        self.written
    }

    /// The changes since the last sync, in the order they were made.
    pub fn log(&self) -> &[Op] {
        &self.log
    }

    /// Reads up to `len` bytes at `off` as the application sees them.
    pub fn read(&self, backing: &File, off: u64, len: u64) -> io::Result<Vec<u8>> {
        let end = off.saturating_add(len).min(self.size);
        if off >= end {
            return Ok(Vec::new());
        }
        let mut out = vec![0u8; (end - off) as usize];
        let mut pos = off;
        while pos < end {
            let idx = pos / PAGE;
            let at = (pos - off) as usize;
            if let Some(page) = self.pages.get(&idx) {
                let stop = end.min((idx + 1) * PAGE);
                let from = (pos - idx * PAGE) as usize;
                let n = (stop - pos) as usize;
                out[at..at + n].copy_from_slice(&page[from..from + n]);
                pos = stop;
            } else {
                // A run of clean pages up to the next changed one.
                let next = self.pages.range(idx..).next().map_or(u64::MAX, |(i, _)| *i);
                let stop = end.min(next.saturating_mul(PAGE));
                let visible = stop.min(self.floor);
                if pos < visible {
                    read_full_at(backing, &mut out[at..at + (visible - pos) as usize], pos)?;
                }
                pos = stop;
            }
        }
        Ok(out)
    }

    /// Records a write of `data` at `off`.
    pub fn write(&mut self, backing: &File, off: u64, data: &[u8]) -> io::Result<()> {
        let end = off + data.len() as u64;
        let mut pos = off;
        while pos < end {
            let idx = pos / PAGE;
            let stop = end.min((idx + 1) * PAGE);
            let page = self.page_mut(backing, idx)?;
            let from = (pos - idx * PAGE) as usize;
            let src = (pos - off) as usize;
            let n = (stop - pos) as usize;
            page[from..from + n].copy_from_slice(&data[src..src + n]);
            pos = stop;
        }
        self.size = self.size.max(end);
        self.written += data.len() as u64;
        self.log.push(Op::Write {
            off,
            data: data.to_vec(),
        });
        Ok(())
    }

    /// Records a truncate or extension to `len`.
    pub fn set_len(&mut self, len: u64) {
        if len < self.size {
            let first_gone = len.div_ceil(PAGE);
            self.pages.split_off(&first_gone);
            if !len.is_multiple_of(PAGE) {
                if let Some(page) = self.pages.get_mut(&(len / PAGE)) {
                    page[(len % PAGE) as usize..].fill(0);
                }
            }
            self.floor = self.floor.min(len);
        }
        self.size = len;
        self.log.push(Op::SetLen(len));
    }

    /// Writes the file as the application sees it to `backing` (not synced)
    /// and becomes clean.
    pub fn flush(&mut self, backing: &File) -> io::Result<()> {
        if !self.is_dirty() {
            return Ok(());
        }
        let mut len = backing.metadata()?.len();
        if len > self.floor {
            backing.set_len(self.floor)?;
            len = self.floor;
        }
        for (idx, page) in &self.pages {
            let start = idx * PAGE;
            if start < self.size {
                let n = (self.size - start).min(PAGE);
                backing.write_all_at(&page[..n as usize], start)?;
                len = len.max(start + n);
            }
        }
        // ftruncate even to the same size costs a timestamp update.
        if len != self.size {
            backing.set_len(self.size)?;
        }
        *self = Overlay::new(self.size);
        Ok(())
    }

    /// The page `idx`, loaded from the backing file the first time.
    fn page_mut(&mut self, backing: &File, idx: u64) -> io::Result<&mut Box<[u8]>> {
        if !self.pages.contains_key(&idx) {
            let mut page = vec![0u8; PAGE as usize].into_boxed_slice();
            let start = idx * PAGE;
            let visible = self.floor.min(start + PAGE);
            if start < visible {
                read_full_at(backing, &mut page[..(visible - start) as usize], start)?;
            }
            self.pages.insert(idx, page);
        }
        Ok(self.pages.get_mut(&idx).expect("inserted above"))
    }
}

/// Fills `buf` from `off`, leaving zeros past the end of the file.
fn read_full_at(file: &File, buf: &mut [u8], off: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], off + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The file as a plain byte vector: what every view must agree with.
    fn apply_model(model: &mut Vec<u8>, op: &Op) {
        match op {
            Op::Write { off, data } => {
                let end = *off as usize + data.len();
                if model.len() < end {
                    model.resize(end, 0);
                }
                model[*off as usize..end].copy_from_slice(data);
            }
            Op::SetLen(len) => model.resize(*len as usize, 0),
        }
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u64..20_000, prop::collection::vec(any::<u8>(), 0..6000))
                .prop_map(|(off, data)| Op::Write { off, data }),
            1 => (0u64..20_000).prop_map(Op::SetLen),
        ]
    }

    fn backing_with(content: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, content).unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (dir, f)
    }

    fn record(ov: &mut Overlay, f: &File, op: &Op) {
        match op {
            Op::Write { off, data } => ov.write(f, *off, data).unwrap(),
            Op::SetLen(len) => ov.set_len(*len),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Reads through the overlay, the flushed backing file, and any
        /// prefix of the log applied to the old backing file all agree with
        /// a plain byte vector given the same operations.
        #[test]
        fn overlay_reads_flushes_and_prefixes_match_a_byte_vector(
            initial in prop::collection::vec(any::<u8>(), 0..12_000),
            ops in prop::collection::vec(op_strategy(), 0..24),
            cut in any::<prop::sample::Index>(),
        ) {
            let (_dir, f) = backing_with(&initial);
            let mut ov = Overlay::new(initial.len() as u64);
            let mut model = initial.clone();
            for op in &ops {
                record(&mut ov, &f, op);
                apply_model(&mut model, op);
                prop_assert_eq!(ov.size(), model.len() as u64);
            }
            prop_assert_eq!(ov.read(&f, 0, u64::MAX).unwrap(), model.clone());
            // Reads at odd offsets and lengths.
            for (off, len) in [(1u64, 4095u64), (4095, 2), (5000, 9000), (19_999, 10)] {
                let want: Vec<u8> = model.iter().skip(off as usize).take(len as usize).copied().collect();
                prop_assert_eq!(ov.read(&f, off, len).unwrap(), want);
            }
            // The log's prefixes are what a torn writeback leaves.
            let k = cut.index(ops.len() + 1);
            let (_dir2, g) = backing_with(&initial);
            let mut prefix_model = initial.clone();
            for op in &ov.log()[..k] {
                op.apply(&g, None).unwrap();
                apply_model(&mut prefix_model, op);
            }
            prop_assert_eq!(std::fs::read(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&g))).unwrap(), prefix_model);
            ov.flush(&f).unwrap();
            prop_assert!(!ov.is_dirty());
            prop_assert_eq!(std::fs::read(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&f))).unwrap(), model);
        }
    }

    #[test]
    fn bytes_a_truncate_cut_off_read_as_zeros_when_the_file_grows_again() {
        let (_dir, f) = backing_with(&[7u8; 10_000]);
        let mut ov = Overlay::new(10_000);
        ov.set_len(100);
        ov.write(&f, 9000, b"x").unwrap();
        let all = ov.read(&f, 0, u64::MAX).unwrap();
        assert_eq!(all.len(), 9001);
        assert!(all[..100].iter().all(|b| *b == 7));
        assert!(all[100..9000].iter().all(|b| *b == 0));
        assert_eq!(all[9000], b'x');
    }

    #[test]
    fn unsynced_bytes_count_every_write_until_the_flush() {
        let (_dir, f) = backing_with(b"");
        let mut ov = Overlay::new(0);
        ov.write(&f, 0, b"abc").unwrap();
        ov.write(&f, 0, b"de").unwrap();
        assert_eq!(ov.unsynced_bytes(), 5);
        ov.flush(&f).unwrap();
        assert_eq!(ov.unsynced_bytes(), 0);
        assert_eq!(f.metadata().unwrap().len(), 3);
    }
}
