//! Recovery after crashes and disk damage: a torn record at the very tail is
//! truncated (whatever byte the crash stopped at), while a bad record
//! anywhere else stops the node with the file and offset.

use raft_node::raft::{Entry, EntryKind, HardState};
use raft_node::storage::{Storage, StorageError, StorageOptions};
use std::fs;
use std::path::{Path, PathBuf};

fn entry(index: u64, term: u64, len: usize) -> Entry {
    Entry {
        term,
        index,
        kind: EntryKind::Normal,
        data: (0..len).map(|i| (i as u64 * 31 + index) as u8).collect(),
    }
}

fn opts(segment_size: u64) -> StorageOptions {
    StorageOptions {
        segment_size,
        ..StorageOptions::default()
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

fn file_len(p: &Path) -> u64 {
    fs::metadata(p).unwrap().len()
}

/// Writes entries 1..=5 (one sync each) and then `last` as its own sync;
/// returns the segment path and the byte offsets where each record of the
/// entries 1..=5 starts, plus where the last record starts and ends.
struct Written {
    seg: PathBuf,
    starts: Vec<u64>,
    last_start: u64,
    last_end: u64,
}

fn write_five_then(dir: &Path, last: impl FnOnce(&mut Storage)) -> Written {
    let (mut s, _) = Storage::open(dir, 1, 7, opts(64 << 20)).unwrap();
    let seg = segments(dir).pop().unwrap();
    let mut starts = Vec::new();
    for i in 1..=5 {
        starts.push(s.stats().active_len);
        s.append(&[entry(i, 1, 40)]).unwrap();
        s.sync().unwrap();
    }
    let last_start = s.stats().active_len;
    last(&mut s);
    s.sync().unwrap();
    let last_end = s.stats().active_len;
    assert!(last_end > last_start);
    Written {
        seg,
        starts,
        last_start,
        last_end,
    }
}

/// A copy of `src` (identity and segments) in a new temp dir, with the
/// segment `seg_name` replaced by `seg_bytes`.
fn copy_with(src: &Path, seg_name: &str, seg_bytes: &[u8]) -> tempfile::TempDir {
    let dst = tempfile::tempdir().unwrap();
    for e in fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name == "LOCK" {
            continue;
        }
        if name == seg_name {
            fs::write(dst.path().join(&name), seg_bytes).unwrap();
        } else {
            fs::copy(&p, dst.path().join(&name)).unwrap();
        }
    }
    dst
}

#[test]
fn torn_last_entry_is_truncated_at_every_byte_offset_and_earlier_records_kept() {
    let src = tempfile::tempdir().unwrap();
    let w = write_five_then(src.path(), |s| s.append(&[entry(6, 1, 40)]).unwrap());
    let bytes = fs::read(&w.seg).unwrap();
    let name = w.seg.file_name().unwrap().to_str().unwrap();
    let want: Vec<Entry> = (1..=5).map(|i| entry(i, 1, 40)).collect();
    for cut in w.last_start..w.last_end {
        let d = copy_with(src.path(), name, &bytes[..cut as usize]);
        let (mut s, rec) = Storage::open(d.path(), 1, 7, opts(64 << 20))
            .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(rec.entries, want, "cut at {cut}");
        assert_eq!(s.last_index(), 5);
        assert_eq!(
            file_len(&d.path().join(name)),
            w.last_start,
            "the torn bytes are truncated (cut at {cut})"
        );
        // The log is writable again where the torn record was.
        s.append(&[entry(6, 2, 8)]).unwrap();
        s.sync().unwrap();
        drop(s);
        let (_, rec) = Storage::open(d.path(), 1, 7, opts(64 << 20)).unwrap();
        assert_eq!(rec.entries.len(), 6, "cut at {cut}");
        assert_eq!(rec.entries[5], entry(6, 2, 8));
    }
    // The untouched file recovers all six.
    let (_, rec) = Storage::open(src.path(), 1, 7, opts(64 << 20)).unwrap();
    assert_eq!(rec.entries.len(), 6);
}

#[test]
fn torn_last_hard_state_is_truncated_and_the_previous_one_kept() {
    let src = tempfile::tempdir().unwrap();
    let newer = HardState {
        term: 5,
        vote: 2,
        commit: 5,
    };
    let w = write_five_then(src.path(), |s| s.set_hard_state(newer).unwrap());
    let bytes = fs::read(&w.seg).unwrap();
    let name = w.seg.file_name().unwrap().to_str().unwrap();
    for cut in w.last_start..w.last_end {
        let d = copy_with(src.path(), name, &bytes[..cut as usize]);
        let (_, rec) = Storage::open(d.path(), 1, 7, opts(64 << 20)).unwrap();
        assert_eq!(rec.hard_state, HardState::default(), "cut at {cut}");
        assert_eq!(rec.entries.len(), 5);
    }
    let (_, rec) = Storage::open(src.path(), 1, 7, opts(64 << 20)).unwrap();
    assert_eq!(rec.hard_state, newer);
}

#[test]
fn torn_tail_followed_by_zero_fill_is_truncated() {
    // Some file systems extend a file before the data lands: the tail then
    // reads as zeros.
    let src = tempfile::tempdir().unwrap();
    let w = write_five_then(src.path(), |s| s.append(&[entry(6, 1, 40)]).unwrap());
    let mut bytes = fs::read(&w.seg).unwrap();
    let name = w.seg.file_name().unwrap().to_str().unwrap();
    for b in &mut bytes[w.last_start as usize + 5..] {
        *b = 0;
    }
    bytes.extend_from_slice(&[0u8; 4096]);
    let d = copy_with(src.path(), name, &bytes);
    let (_, rec) = Storage::open(d.path(), 1, 7, opts(64 << 20)).unwrap();
    assert_eq!(rec.entries.len(), 5);
}

#[test]
fn a_flipped_byte_in_an_earlier_record_refuses_to_open_naming_file_and_offset() {
    let src = tempfile::tempdir().unwrap();
    let w = write_five_then(src.path(), |s| s.append(&[entry(6, 1, 40)]).unwrap());
    let bytes = fs::read(&w.seg).unwrap();
    let name = w.seg.file_name().unwrap().to_str().unwrap();
    // Every byte of the third entry's record: header, length and body.
    let (start, end) = (w.starts[2], w.starts[3]);
    for at in start..end {
        let mut damaged = bytes.clone();
        damaged[at as usize] ^= 0x40;
        let d = copy_with(src.path(), name, &damaged);
        let e = Storage::open(d.path(), 1, 7, opts(64 << 20)).unwrap_err();
        match &e {
            StorageError::Corrupt { path, offset, .. } => {
                assert_eq!(path.file_name().unwrap(), name, "flip at {at}");
                assert_eq!(*offset, start, "flip at {at}");
            }
            other => panic!("flip at {at}: expected Corrupt, got {other}"),
        }
        let msg = e.to_string();
        assert!(
            msg.contains(name) && msg.contains(&format!("offset {start}")),
            "{msg}"
        );
        // Nothing was truncated: the evidence stays for the operator.
        assert_eq!(fs::read(d.path().join(name)).unwrap(), damaged);
    }
}

#[test]
fn damage_in_a_segment_that_is_not_the_last_refuses_to_open() {
    let src = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = Storage::open(src.path(), 1, 7, opts(1024)).unwrap();
        for i in 1..=100 {
            s.append(&[entry(i, 1, 40)]).unwrap();
            s.sync().unwrap();
        }
    }
    let segs = segments(src.path());
    assert!(segs.len() >= 3);
    let first = &segs[0];
    let name = first.file_name().unwrap().to_str().unwrap();
    // Damage the final record of the first segment: a tail, but not the
    // log's tail, so it may hold acknowledged entries.
    let mut bytes = fs::read(first).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    let d = copy_with(src.path(), name, &bytes);
    match Storage::open(d.path(), 1, 7, opts(1024)).unwrap_err() {
        StorageError::Corrupt { path, .. } => assert_eq!(path.file_name().unwrap(), name),
        other => panic!("expected Corrupt, got {other}"),
    }
    // Truncating it (a lost tail in an old segment) is refused the same way.
    let d = copy_with(src.path(), name, &fs::read(first).unwrap()[..n - 3]);
    assert!(matches!(
        Storage::open(d.path(), 1, 7, opts(1024)),
        Err(StorageError::Corrupt { .. })
    ));
}

#[test]
fn a_missing_segment_in_the_middle_refuses_to_open() {
    let src = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = Storage::open(src.path(), 1, 7, opts(1024)).unwrap();
        for i in 1..=100 {
            s.append(&[entry(i, 1, 40)]).unwrap();
            s.sync().unwrap();
        }
    }
    let segs = segments(src.path());
    fs::remove_file(&segs[1]).unwrap();
    assert!(matches!(
        Storage::open(src.path(), 1, 7, opts(1024)),
        Err(StorageError::Corrupt { .. })
    ));
}

#[test]
fn a_segment_torn_while_being_created_is_removed_and_the_log_goes_on() {
    let src = tempfile::tempdir().unwrap();
    let hs = HardState {
        term: 4,
        vote: 1,
        commit: 10,
    };
    {
        let (mut s, _) = Storage::open(src.path(), 1, 7, opts(2048)).unwrap();
        s.set_hard_state(hs).unwrap();
        for i in 1..=100 {
            s.append(&[entry(i, 1, 40)]).unwrap();
            s.sync().unwrap();
        }
    }
    let segs = segments(src.path());
    let last = segs.last().unwrap();
    let name = last.file_name().unwrap().to_str().unwrap();
    let bytes = fs::read(last).unwrap();
    // Entries in earlier segments.
    let (_, full) = Storage::open(src.path(), 1, 7, opts(2048)).unwrap();
    for cut in [0usize, 1, 11, 12, 20] {
        let d = copy_with(src.path(), name, &bytes[..cut]);
        let (mut s, rec) = Storage::open(d.path(), 1, 7, opts(2048)).unwrap();
        assert!(rec.entries.len() <= full.entries.len());
        assert_eq!(rec.entries[..], full.entries[..rec.entries.len()]);
        assert_eq!(rec.hard_state, hs);
        let next = s.last_index() + 1;
        s.append(&[entry(next, 2, 3)]).unwrap();
        s.sync().unwrap();
        drop(s);
        let (_, again) = Storage::open(d.path(), 1, 7, opts(2048)).unwrap();
        assert_eq!(again.entries.last().unwrap().index, next);
    }
}

#[test]
fn a_record_that_decodes_badly_despite_its_checksum_is_refused() {
    // A valid frame with an unknown record kind: a format this build does
    // not understand must stop the node, not be skipped.
    let src = tempfile::tempdir().unwrap();
    let w = write_five_then(src.path(), |s| s.append(&[entry(6, 1, 4)]).unwrap());
    let mut bytes = fs::read(&w.seg).unwrap();
    let name = w.seg.file_name().unwrap().to_str().unwrap();
    let at = w.starts[1] as usize;
    // Rewrite entry 2's kind byte and fix up both checksums.
    let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    bytes[at + 12] = 99;
    let body_crc = crc32c::crc32c(&bytes[at + 12..at + 12 + len]);
    bytes[at + 4..at + 8].copy_from_slice(&body_crc.to_le_bytes());
    let head_crc = crc32c::crc32c(&bytes[at..at + 8]);
    bytes[at + 8..at + 12].copy_from_slice(&head_crc.to_le_bytes());
    let d = copy_with(src.path(), name, &bytes);
    match Storage::open(d.path(), 1, 7, opts(64 << 20)).unwrap_err() {
        StorageError::Corrupt { offset, .. } => assert_eq!(offset, at as u64),
        other => panic!("expected Corrupt, got {other}"),
    }
}

#[test]
fn a_torn_record_whose_data_embeds_a_valid_frame_is_still_torn() {
    // A client value may contain bytes that look like a WAL record; once a
    // header is valid its length is trusted, so the torn body is not
    // mistaken for "valid data after the damage".
    let mut data = vec![0xabu8; 20];
    raft_node::storage::record::encode_raw(&mut data, b"I look like a record");
    data.extend_from_slice(&[0xcd; 20]);
    let src = tempfile::tempdir().unwrap();
    let w = write_five_then(src.path(), |s| {
        s.append(&[Entry {
            term: 1,
            index: 6,
            kind: EntryKind::Normal,
            data: data.clone(),
        }])
        .unwrap()
    });
    let bytes = fs::read(&w.seg).unwrap();
    let name = w.seg.file_name().unwrap().to_str().unwrap();
    for cut in w.last_start..w.last_end {
        let d = copy_with(src.path(), name, &bytes[..cut as usize]);
        let (_, rec) = Storage::open(d.path(), 1, 7, opts(64 << 20))
            .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(rec.entries.len(), 5, "cut at {cut}");
    }
}

#[test]
fn every_single_byte_flip_in_the_log_is_refused_unless_it_hits_the_final_record() {
    let src = tempfile::tempdir().unwrap();
    let mut last_record_start = 0;
    let mut last_record_end = 0;
    let mut written_to = PathBuf::new();
    {
        let (mut s, _) = Storage::open(src.path(), 1, 7, opts(300)).unwrap();
        for i in 1..=20 {
            written_to = segments(src.path()).pop().unwrap();
            last_record_start = s.stats().active_len;
            s.append(&[entry(i, 1, 10)]).unwrap();
            s.sync().unwrap();
            last_record_end = s.stats().active_len;
        }
    }
    let segs = segments(src.path());
    assert!(segs.len() >= 3, "{} segments", segs.len());
    let last_seg = segs.last().unwrap().clone();
    // Entry 20's record is the last one of the last segment (no rotation
    // after it), so it is the only record a torn write may explain.
    assert_eq!(written_to, last_seg);
    assert!(last_record_start > 0 && last_record_end <= file_len(&last_seg));
    let all: Vec<Entry> = (1..=20).map(|i| entry(i, 1, 10)).collect();
    for seg in &segs {
        let name = seg.file_name().unwrap().to_str().unwrap();
        let bytes = fs::read(seg).unwrap();
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x01;
            let d = copy_with(src.path(), name, &damaged);
            let r = Storage::open(d.path(), 1, 7, opts(300));
            let in_last = *seg == last_seg;
            let in_final_record =
                in_last && (last_record_start..last_record_end).contains(&(at as u64));
            // Zeros written ahead of the end: damage there is a torn tail
            // after every record.
            let in_zeros_ahead = in_last && at as u64 >= last_record_end;
            match r {
                Ok((_, rec)) if in_zeros_ahead => {
                    assert_eq!(rec.entries, all, "{name} byte {at}");
                }
                Ok((_, rec)) => {
                    assert!(in_final_record, "{name} byte {at}: damage accepted");
                    assert_eq!(rec.entries, all[..19], "{name} byte {at}");
                }
                Err(StorageError::Corrupt { path, .. }) => {
                    assert!(
                        !in_final_record && !in_zeros_ahead,
                        "{name} byte {at}: a torn tail refused"
                    );
                    assert_eq!(path.file_name().unwrap(), name);
                }
                Err(e) => panic!("{name} byte {at}: unexpected error {e}"),
            }
        }
    }
}

#[test]
fn the_log_writes_zeros_ahead_and_a_reopen_appends_after_the_last_record() {
    // fdatasync over blocks that exist is about twice as fast as after an
    // append, so the open segment is longer than its records; the zeros
    // must read back as its unused end, not as damage, reopen after reopen.
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3u64 {
        let (mut s, rec) = Storage::open(dir.path(), 1, 7, opts(64 << 20)).unwrap();
        assert_eq!(rec.entries.len() as u64, round * 4, "round {round}");
        for i in 1..=4 {
            s.append(&[entry(round * 4 + i, 1, 40)]).unwrap();
            s.sync().unwrap();
        }
        let seg = segments(dir.path()).pop().unwrap();
        assert!(
            file_len(&seg) > s.stats().active_len,
            "no zeros ahead: file {} records {}",
            file_len(&seg),
            s.stats().active_len
        );
    }
    let (_, rec) = Storage::open(dir.path(), 1, 7, opts(64 << 20)).unwrap();
    let want: Vec<Entry> = (1..=12).map(|i| entry(i, 1, 40)).collect();
    assert_eq!(rec.entries, want);
}

#[test]
fn a_full_segment_loses_its_zeros_ahead_so_a_zeroed_tail_there_is_corruption() {
    let src = tempfile::tempdir().unwrap();
    {
        let (mut s, _) = Storage::open(src.path(), 1, 7, opts(1024)).unwrap();
        for i in 1..=40 {
            s.append(&[entry(i, 1, 40)]).unwrap();
            s.sync().unwrap();
        }
    }
    let segs = segments(src.path());
    assert!(segs.len() >= 3, "{} segments", segs.len());
    let first = &segs[0];
    let mut bytes = fs::read(first).unwrap();
    // Rotation cut the zeros: the file ends with its last record.
    let (_, rec) = Storage::open(src.path(), 1, 7, opts(1024)).unwrap();
    assert_eq!(rec.entries.len(), 40);
    bytes.extend_from_slice(&[0u8; 512]);
    let name = first.file_name().unwrap().to_str().unwrap();
    let d = copy_with(src.path(), name, &bytes);
    match Storage::open(d.path(), 1, 7, opts(1024)) {
        Err(StorageError::Corrupt { path, .. }) => {
            assert_eq!(path.file_name().unwrap(), name)
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("zeros after the records of an older segment were accepted"),
    }
}
