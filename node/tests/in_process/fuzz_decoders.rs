//! Byte fuzzers (proptest) for every place raft-node decodes bytes it did
//! not write itself, or that a crash or a disk may have mangled: peer frames
//! and the messages in them, snapshot chunk reassembly, WAL recovery, the
//! snapshot file, client commands and the state machine's snapshot. The
//! property is the same everywhere: a bad input is an error, never a panic,
//! a hang or an allocation sized by a length field rather than by the bytes
//! that arrived.
//!
//! CI runs a bounded number of cases (`FUZZ_CASES`, default 300 per target,
//! a few seconds in all); the nightly fuzzing the README describes sets
//! FUZZ_CASES to millions. A failure prints the shrunk input: add it to the
//! regression cases at the end of this file.

use proptest::prelude::*;
use prost::Message as _;
use raft_node::peer_frame::{read_frame, MAX_FRAME};
use raft_node::storage::{Storage, StorageOptions};
use raft_node::wire::{from_wire, SnapshotAssembler, MAX_SNAPSHOT_BYTES};
use raft_proto::raftpb;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// Reads frames from `bytes` until the stream ends or fails; returns how
/// many decoded and the largest buffer the reader held.
fn read_all_frames(bytes: &[u8]) -> (usize, usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut r = bytes;
        let mut body = Vec::new();
        let mut n = 0;
        let mut biggest = 0;
        loop {
            let res = read_frame(&mut r, &mut body).await;
            biggest = biggest.max(body.capacity());
            match res {
                Ok(Some(m)) => {
                    n += 1;
                    // What the node does next with a frame.
                    let _ = from_wire(7, 2, m);
                }
                Ok(None) | Err(_) => return (n, biggest),
            }
        }
    })
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn header() -> impl Strategy<Value = Option<raftpb::Header>> {
    proptest::option::of((0u64..3, 0u64..4, 0u64..4, any::<u64>()).prop_map(
        |(c, from, to, term)| raftpb::Header {
            cluster_id: 6 + c,
            from,
            to,
            term,
        },
    ))
}

fn chunk() -> impl Strategy<Value = raftpb::InstallSnapshotChunk> {
    (
        header(),
        any::<u64>(),
        any::<u64>(),
        proptest::option::of(proptest::collection::vec(0u64..5, 0..4)),
        prop_oneof![Just(0u64), 0u64..64, any::<u64>()],
        proptest::collection::vec(any::<u8>(), 0..48),
        any::<bool>(),
    )
        .prop_map(|(header, li, lt, voters, offset, data, done)| {
            raftpb::InstallSnapshotChunk {
                header,
                last_index: li,
                last_term: lt,
                conf: voters.map(|voters| raftpb::ConfState {
                    voters,
                    ..Default::default()
                }),
                offset,
                data,
                done,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Any byte stream on a peer connection: frames decode or the stream is
    /// refused; the buffer never grows past what arrived.
    #[test]
    fn peer_streams_of_any_bytes_never_panic_or_allocate_by_length(
        bytes in proptest::collection::vec(any::<u8>(), 0..512)
    ) {
        let (_, biggest) = read_all_frames(&bytes);
        prop_assert!(biggest <= 2 * bytes.len() + 64, "held {biggest} bytes of {}", bytes.len());
    }

    /// Well-framed garbage: each body is decoded as a RaftMessage and
    /// converted for the core, or refused.
    #[test]
    fn framed_garbage_bodies_are_refused_or_converted(
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..96), 1..6)
    ) {
        let bytes: Vec<u8> = bodies.iter().flat_map(|b| frame(b)).collect();
        read_all_frames(&bytes);
    }

    /// Messages that decode but say anything (any kind, header, indices).
    #[test]
    fn decoded_messages_with_any_fields_convert_or_are_refused(
        term in any::<u64>(),
        prev in any::<u64>(),
        commit in any::<u64>(),
        entries in proptest::collection::vec((any::<u64>(), any::<u64>(), any::<i32>(), proptest::collection::vec(any::<u8>(), 0..16)), 0..5),
        h in header(),
    ) {
        let m = raftpb::RaftMessage {
            msg: Some(raftpb::raft_message::Msg::AppendEntries(raftpb::AppendEntriesRequest {
                header: h.map(|mut h| { h.term = term; h }),
                prev_log_index: prev,
                prev_log_term: term,
                leader_commit: commit,
                entries: entries
                    .into_iter()
                    .map(|(index, term, kind, data)| raftpb::Entry { index, term, kind, data })
                    .collect(),
                ..Default::default()
            })),
        };
        let bytes = frame(&m.encode_to_vec());
        read_all_frames(&bytes);
    }

    /// Any sequence of snapshot chunks: a snapshot, an error, or waiting
    /// for more; never a panic.
    #[test]
    fn snapshot_chunks_in_any_order_never_panic(chunks in proptest::collection::vec(chunk(), 1..8)) {
        let mut asm = SnapshotAssembler::default();
        for c in chunks {
            match asm.push(7, 2, c) {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) => {}
            }
        }
    }

    /// A data dir whose segments, hard state or snapshot hold any bytes:
    /// recovery opens or refuses with a reason.
    #[test]
    fn recovery_from_any_bytes_on_disk_opens_or_refuses(
        files in proptest::collection::vec((0usize..4, proptest::collection::vec(any::<u8>(), 0..256)), 1..4),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        // A real log first, so that damage lands in real records too.
        {
            let (mut s, _) = Storage::open(dir.path(), 1, 7, StorageOptions::default()).unwrap();
            for i in 1..=3u64 {
                s.append(&[raft_node::raft::Entry {
                    term: 1,
                    index: i,
                    kind: raft_node::raft::EntryKind::Normal,
                    data: vec![i as u8; 20],
                }]).unwrap();
                s.sync().unwrap();
            }
        }
        let mut names: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().is_some_and(|n| n != "LOCK"))
            .collect();
        names.sort();
        for (which, bytes) in files {
            let target = match which {
                0 => dir.path().join("00000000000000000009-00000000000000000004.wal"),
                1 => dir.path().join("snapshot"),
                _ => names[which % names.len()].clone(),
            };
            std::fs::write(&target, &bytes).unwrap();
        }
        for (at, byte) in flips {
            let p = &names[at.index(names.len())];
            if let Ok(mut b) = std::fs::read(p) {
                if !b.is_empty() {
                    let i = at.index(b.len());
                    b[i] ^= byte | 1;
                    std::fs::write(p, b).unwrap();
                }
            }
        }
        let _ = Storage::open(dir.path(), 1, 7, StorageOptions::default());
    }

    /// Client commands and state-machine snapshots from any bytes (both
    /// reach the node from the log, which a peer or a disk may have filled).
    #[test]
    fn commands_and_state_snapshots_from_any_bytes_decode_or_fail(
        bytes in proptest::collection::vec(any::<u8>(), 0..256)
    ) {
        let _ = raft_node::kv::Command::decode(&bytes);
        let _ = raft_node::kv::KvStore::new().restore(&bytes);
        let _ = raft_node::storage::snapshot::decode(&bytes);
        let _ = raft_node::storage::record::decode_body(&bytes);
        let _ = raft_node::storage::record::check_frame(&bytes);
    }
}

/// A length field at the limit with nothing behind it: refused, with a
/// buffer the size of what arrived, not the 256 MiB the field promised.
#[test]
fn a_frame_length_at_the_limit_with_no_body_allocates_nothing_like_it() {
    let mut bytes = (MAX_FRAME as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 10]);
    let (n, biggest) = read_all_frames(&bytes);
    assert_eq!(n, 0);
    assert!(biggest < 1 << 20, "held {biggest} bytes");
}

/// A peer that streams snapshot chunks forever is cut off at the limit
/// instead of filling the node's memory.
#[test]
fn a_snapshot_stream_past_the_limit_is_refused() {
    // The default limit is MAX_SNAPSHOT_BYTES (1 GiB); a small one keeps
    // the test light.
    let limit = 8 << 20;
    assert!(limit < MAX_SNAPSHOT_BYTES);
    let mut asm = SnapshotAssembler::with_limit(limit);
    let piece = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    let mut refused = false;
    while offset <= limit + (1 << 20) {
        let c = raftpb::InstallSnapshotChunk {
            header: Some(raftpb::Header {
                cluster_id: 7,
                from: 1,
                to: 2,
                term: 1,
            }),
            offset,
            data: piece.clone(),
            done: false,
            ..Default::default()
        };
        match asm.push(7, 2, c) {
            Ok(None) => offset += piece.len() as u64,
            Ok(Some(_)) => panic!("a snapshot without a last chunk was assembled"),
            Err(e) => {
                assert!(e.to_string().contains("limit"), "{e}");
                refused = true;
                break;
            }
        }
    }
    assert!(refused, "{offset} bytes of snapshot were taken in");
}
