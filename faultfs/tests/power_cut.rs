//! What a power cut takes away, and what it leaves, on a real mount.

mod common;

use common::{fuse_or_skip, Mount};
use raft_faultfs::CutMode;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};

macro_rules! need_fuse {
    () => {
        if !fuse_or_skip(module_path!()) {
            return;
        }
    };
}

#[test]
fn unsynced_writes_are_visible_before_a_cut_and_gone_after() {
    need_fuse!();
    let m = Mount::new();
    fs::write(m.m("a"), b"not synced").unwrap();
    assert_eq!(fs::read(m.m("a")).unwrap(), b"not synced");
    assert_eq!(
        fs::read(m.b("a")).unwrap(),
        b"",
        "reached the backing file unsynced"
    );
    assert_eq!(m.fs.unsynced_bytes(), 10);

    let r = m.fs.power_cut(CutMode::LoseAll).unwrap();
    assert_eq!(r.bytes_lost, 10);
    assert_eq!(r.files.len(), 1);
    assert_eq!(r.files[0].path, "a");
    // The file was created (a namespace operation): it survives, empty.
    assert_eq!(fs::read(m.m("a")).unwrap(), b"");
    assert_eq!(fs::metadata(m.m("a")).unwrap().len(), 0);
    assert_eq!(m.fs.unsynced_bytes(), 0);
}

#[test]
fn fsynced_data_survives_a_cut_and_later_writes_do_not() {
    need_fuse!();
    let m = Mount::new();
    let mut f = fs::File::create(m.m("log")).unwrap();
    f.write_all(b"durable;").unwrap();
    f.sync_all().unwrap();
    assert_eq!(fs::read(m.b("log")).unwrap(), b"durable;");
    f.write_all(b"volatile").unwrap();
    assert_eq!(fs::read(m.m("log")).unwrap(), b"durable;volatile");

    m.fs.power_cut(CutMode::LoseAll).unwrap();
    assert_eq!(fs::read(m.m("log")).unwrap(), b"durable;");
}

#[test]
fn fdatasync_of_one_file_does_not_sync_another() {
    need_fuse!();
    let m = Mount::new();
    let a = fs::File::create(m.m("a")).unwrap();
    let b = fs::File::create(m.m("b")).unwrap();
    a.write_all_at(b"aaaa", 0).unwrap();
    b.write_all_at(b"bbbb", 0).unwrap();
    a.sync_data().unwrap();

    let r = m.fs.power_cut(CutMode::LoseAll).unwrap();
    assert_eq!(
        r.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
    assert_eq!(fs::read(m.m("a")).unwrap(), b"aaaa");
    assert_eq!(fs::read(m.m("b")).unwrap(), b"");
}

#[test]
fn a_cut_undoes_an_unsynced_truncate() {
    need_fuse!();
    let m = Mount::new();
    let f = fs::File::create(m.m("t")).unwrap();
    f.write_all_at(b"0123456789", 0).unwrap();
    f.sync_data().unwrap();
    f.set_len(3).unwrap();
    assert_eq!(fs::read(m.m("t")).unwrap(), b"012");

    m.fs.power_cut(CutMode::LoseAll).unwrap();
    assert_eq!(fs::read(m.m("t")).unwrap(), b"0123456789");
}

#[test]
fn an_open_descriptor_reads_what_survived_after_the_cut_not_cached_pages() {
    need_fuse!();
    let m = Mount::new();
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(m.m("c"))
        .unwrap();
    f.write_all(b"synced").unwrap();
    f.sync_data().unwrap();
    f.write_all_at(b"SYNCED-and-more", 0).unwrap();
    let mut seen = String::new();
    f.read_to_string(&mut seen).unwrap_or_default();
    assert_eq!(fs::read(m.m("c")).unwrap(), b"SYNCED-and-more");

    m.fs.power_cut(CutMode::LoseAll).unwrap();
    // Same descriptor, no reopen: the kernel's page cache must not answer.
    let mut buf = Vec::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut buf).unwrap();
    assert_eq!(buf, b"synced");
    assert_eq!(f.metadata().unwrap().len(), 6);
}

#[test]
fn o_dsync_writes_survive_a_cut() {
    need_fuse!();
    let m = Mount::new();
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DSYNC)
        .open(m.m("d"))
        .unwrap();
    f.write_all_at(b"each write is durable", 0).unwrap();
    m.fs.power_cut(CutMode::LoseAll).unwrap();
    assert_eq!(fs::read(m.m("d")).unwrap(), b"each write is durable");
}

#[test]
fn a_renamed_unsynced_file_keeps_its_name_but_not_its_data() {
    // The classic write-then-rename without fsync: the rename is durable
    // here (namespace operations go straight through), the data is not.
    need_fuse!();
    let m = Mount::new();
    fs::write(m.m("state"), b"old").unwrap();
    m.fs.sync_all().unwrap();
    fs::write(m.m("state.tmp"), b"new").unwrap();
    fs::rename(m.m("state.tmp"), m.m("state")).unwrap();
    assert_eq!(fs::read(m.m("state")).unwrap(), b"new");

    let r = m.fs.power_cut(CutMode::LoseAll).unwrap();
    assert_eq!(r.files[0].path, "state");
    assert_eq!(fs::read(m.m("state")).unwrap(), b"");
    assert!(!m.m("state.tmp").exists());
}

#[test]
fn torn_seq_keeps_a_prefix_of_each_files_writes_in_order() {
    need_fuse!();
    let m = Mount::new();
    let records: Vec<Vec<u8>> = (0..40u8)
        .map(|i| vec![b'a' + i % 26; 100 + i as usize])
        .collect();
    let all: Vec<u8> = records.concat();
    let (mut some_kept, mut some_lost) = (false, false);
    for seed in 0..8u64 {
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .open(m.m("wal"))
            .unwrap();
        f.set_len(0).unwrap();
        f.sync_all().unwrap();
        for r in &records {
            f.write_all(r).unwrap();
        }
        drop(f);
        let r = m.fs.power_cut(CutMode::TornSeq { seed }).unwrap();
        let got = fs::read(m.m("wal")).unwrap();
        assert_eq!(
            got,
            all[..got.len()],
            "seed {seed}: not a prefix of the writes"
        );
        assert_eq!(r.bytes_kept, got.len() as u64, "seed {seed}");
        assert_eq!(r.bytes_kept + r.bytes_lost, all.len() as u64, "seed {seed}");
        assert_eq!(
            fs::read(m.b("wal")).unwrap(),
            got,
            "seed {seed}: kept bytes not in the backing file"
        );
        some_kept |= !got.is_empty();
        some_lost |= got.len() < all.len();
    }
    assert!(
        some_kept && some_lost,
        "8 seeds all kept everything or all kept nothing"
    );
}

#[test]
fn the_same_torn_seed_tears_the_same_writes_alike() {
    need_fuse!();
    let m = Mount::new();
    let mut lens = Vec::new();
    for _ in 0..2 {
        let f = fs::File::create(m.m("x")).unwrap();
        f.sync_all().unwrap();
        for i in 0..30u64 {
            f.write_all_at(&[7u8; 64], i * 64).unwrap();
        }
        m.fs.power_cut(CutMode::TornSeq { seed: 42 }).unwrap();
        lens.push(fs::metadata(m.m("x")).unwrap().len());
    }
    assert_eq!(lens[0], lens[1]);
}

#[test]
fn a_clean_unmount_writes_everything_back() {
    need_fuse!();
    let m = Mount::new();
    fs::create_dir(m.m("d")).unwrap();
    fs::write(m.m("d/f"), b"kept on unmount").unwrap();
    let Mount { fs: mounted, dir } = m;
    let mp = mounted.mountpoint().to_path_buf();
    mounted.unmount().unwrap();
    assert!(!common::is_mounted(&mp));
    assert_eq!(
        fs::read(dir.path().join("backing/d/f")).unwrap(),
        b"kept on unmount"
    );
}

#[test]
fn unsynced_bytes_count_writes_until_their_file_is_synced() {
    need_fuse!();
    let m = Mount::new();
    let a = fs::File::create(m.m("a")).unwrap();
    let b = fs::File::create(m.m("b")).unwrap();
    a.write_all_at(&[1; 5000], 0).unwrap();
    b.write_all_at(&[2; 300], 0).unwrap();
    assert_eq!(m.fs.unsynced_bytes(), 5300);
    a.sync_data().unwrap();
    assert_eq!(m.fs.unsynced_bytes(), 300);
}

#[test]
fn bytes_cut_off_by_an_unsynced_truncate_read_as_zeros_when_the_file_grows() {
    need_fuse!();
    let m = Mount::new();
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(m.m("g"))
        .unwrap();
    f.write_all_at(&[9u8; 10_000], 0).unwrap();
    f.sync_data().unwrap();
    f.set_len(100).unwrap();
    f.write_all_at(b"end", 8_000).unwrap();
    let seen = fs::read(m.m("g")).unwrap();
    assert_eq!(seen.len(), 8_003);
    assert!(seen[..100].iter().all(|b| *b == 9));
    assert!(
        seen[100..8_000].iter().all(|b| *b == 0),
        "old bytes showed through"
    );
    f.sync_data().unwrap();
    assert_eq!(fs::read(m.b("g")).unwrap(), seen);
}
