//! Splits the forward byte stream of a proxied connection into what the
//! message faults act on: a raft-node peer stream (the 8 bytes `RAFTMSG1`,
//! then frames of a 4-byte big-endian length and a `raftpb.RaftMessage`)
//! is cut at frame boundaries; any other stream passes as it came.
//!
//! Frames are taken whole only when asked (message faults on): otherwise
//! their bytes pass on as they arrive and only the boundaries are tracked,
//! so a link without message faults costs no copy and adds no latency.

/// The first bytes of a raft-node peer stream (`node/src/peer_stream.rs`).
pub const MAGIC: &[u8; 8] = b"RAFTMSG1";

/// A length above raft-node's own limit means the stream is not what it
/// seems: it is passed on unchanged from there.
pub const MAX_FRAME: usize = 256 << 20;

/// Bytes that tell an HTTP/1 request (etcd's rafthttp) from HTTP/2 (gRPC).
const SNIFF: usize = 4;

/// What a connection carries, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// A raft-node peer stream of frames.
    RaftFrames,
    /// An HTTP/1 request, as etcd's peer traffic is.
    Http1,
    /// A TLS stream (raft-node with `--tls-dir`: a ClientHello record
    /// first): its frames cannot be read, so message faults act on whole
    /// chunks, as on HTTP/1.
    Tls,
    /// Anything else (raft-node's gRPC snapshots): never touched.
    Other,
}

impl StreamKind {
    /// Message faults act on its chunks (stalls, resets), not on frames.
    pub fn chunked(self) -> bool {
        matches!(self, StreamKind::Http1 | StreamKind::Tls)
    }
}

/// A piece of the forward stream, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Bytes to pass on unchanged.
    Raw(Vec<u8>),
    /// The magic that opens a peer stream: frames follow.
    Magic,
    /// One whole frame, length prefix included.
    Frame(bytes::Bytes),
}

#[derive(Debug)]
enum State {
    /// The first bytes, while they do not yet tell what the stream is.
    Opening(Vec<u8>),
    /// Inside a peer stream.
    Frames(FramePos),
    /// Not a peer stream (or one out of step): bytes pass unchanged.
    Opaque,
}

/// Where the splitter is within the current frame.
#[derive(Debug, Default)]
struct FramePos {
    header: [u8; 4],
    header_len: usize,
    body_left: usize,
    /// The frame so far, when it is taken whole.
    whole: Option<Vec<u8>>,
}

/// The splitter of one connection's forward direction.
#[derive(Debug)]
pub struct FrameSplitter {
    state: State,
    kind: Option<StreamKind>,
}

impl Default for FrameSplitter {
    fn default() -> Self {
        FrameSplitter {
            state: State::Opening(Vec::new()),
            kind: None,
        }
    }
}

fn push_raw(out: &mut Vec<Piece>, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    if let Some(Piece::Raw(last)) = out.last_mut() {
        last.extend_from_slice(bytes);
    } else {
        out.push(Piece::Raw(bytes.to_vec()));
    }
}

/// How HTTP/1 requests start (etcd's peers send GET streams and POSTs).
const HTTP1_STARTS: [&[u8]; 5] = [b"GET ", b"POST", b"PUT ", b"HEAD", b"DELE"];

fn sniff(head: &[u8]) -> StreamKind {
    if HTTP1_STARTS.iter().any(|m| head.starts_with(m)) {
        StreamKind::Http1
    } else if is_tls_handshake(head) {
        StreamKind::Tls
    } else {
        StreamKind::Other
    }
}

impl FrameSplitter {
    /// What the stream is, once its first bytes have told.
    pub fn kind(&self) -> Option<StreamKind> {
        self.kind
    }

    /// The stream ended: bytes still held while sniffing are passed on.
    pub fn finish(&mut self, out: &mut Vec<Piece>) {
        if let State::Opening(seen) = &mut self.state {
            push_raw(out, seen);
            seen.clear();
            self.kind.get_or_insert(StreamKind::Other);
            self.state = State::Opaque;
        }
    }

    /// Splits the next bytes read; frames that start from here on are taken
    /// whole if `take_whole` (a frame already begun keeps its way).
    pub fn push(&mut self, mut data: &[u8], take_whole: bool, out: &mut Vec<Piece>) {
        while !data.is_empty() {
            match &mut self.state {
                State::Opening(seen) => {
                    let take = (MAGIC.len() - seen.len()).min(data.len());
                    seen.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if seen[..] == MAGIC[..] {
                        self.kind = Some(StreamKind::RaftFrames);
                        self.state = State::Frames(FramePos::default());
                        out.push(Piece::Magic);
                    } else if !MAGIC.starts_with(seen) {
                        // Not a peer stream. Wait for enough bytes to tell
                        // HTTP/1 from the rest, unless they cannot change it.
                        if seen.len() < SNIFF && could_be_http1(seen) {
                            return;
                        }
                        self.kind = Some(sniff(seen));
                        push_raw(out, seen);
                        self.state = State::Opaque;
                    }
                }
                State::Opaque => {
                    push_raw(out, data);
                    return;
                }
                State::Frames(pos) => {
                    data = Self::frame_bytes(pos, data, take_whole, out);
                    if pos.header_len == 4 && pos.body_left > MAX_FRAME {
                        // Out of step: pass what was gathered and the rest.
                        if let Some(w) = pos.whole.take() {
                            push_raw(out, &w);
                        }
                        self.state = State::Opaque;
                    }
                }
            }
        }
    }

    /// Consumes bytes of the current frame; returns the rest.
    fn frame_bytes<'d>(
        pos: &mut FramePos,
        mut data: &'d [u8],
        take_whole: bool,
        out: &mut Vec<Piece>,
    ) -> &'d [u8] {
        let emit = |pos: &mut FramePos, bytes: &[u8], out: &mut Vec<Piece>| match &mut pos.whole {
            Some(w) => w.extend_from_slice(bytes),
            None => push_raw(out, bytes),
        };
        if pos.header_len == 0 {
            pos.whole = take_whole.then(Vec::new);
        }
        if pos.header_len < 4 {
            let take = (4 - pos.header_len).min(data.len());
            pos.header[pos.header_len..pos.header_len + take].copy_from_slice(&data[..take]);
            pos.header_len += take;
            emit(pos, &data[..take], out);
            data = &data[take..];
            if pos.header_len < 4 {
                return data;
            }
            pos.body_left = u32::from_be_bytes(pos.header) as usize;
            if pos.body_left > MAX_FRAME {
                return data;
            }
        }
        let take = pos.body_left.min(data.len());
        emit(pos, &data[..take], out);
        pos.body_left -= take;
        data = &data[take..];
        if pos.body_left == 0 {
            if let Some(w) = pos.whole.take() {
                out.push(Piece::Frame(w.into()));
            }
            pos.header_len = 0;
        }
        data
    }
}

/// Whether a stream that opened with `seen` may still turn out HTTP/1.
fn could_be_http1(seen: &[u8]) -> bool {
    HTTP1_STARTS.iter().any(|m| m.starts_with(seen))
        || (!seen.is_empty() && TLS_HANDSHAKE.iter().zip(seen).all(|(a, b)| a == b))
}

/// A TLS handshake record's first bytes: content type 22, version 3.x.
const TLS_HANDSHAKE: [u8; 2] = [0x16, 0x03];

fn is_tls_handshake(head: &[u8]) -> bool {
    head.len() >= 3 && head[..2] == TLS_HANDSHAKE && (1..=4).contains(&head[2])
}

/// The `raftpb.RaftMessage` field of a whole frame (1 AppendEntries, 2 its
/// response, 3 RequestVote, 4 its response, 5 TimeoutNow), read from the
/// body's first key byte without decoding the rest.
pub fn frame_field(frame: &[u8]) -> Option<u8> {
    frame.get(4).map(|key| key >> 3)
}

/// `raftpb.RaftMessage.append_entries`.
pub const APPEND_ENTRIES: u8 = 1;

/// `raftpb.AppendEntriesRequest` read for its heartbeat flag only.
#[derive(Clone, PartialEq, prost::Message)]
struct HeartbeatFlag {
    #[prost(bool, tag = "7")]
    heartbeat: bool,
}

/// `raftpb.RaftMessage` read for its AppendEntries' heartbeat flag only.
#[derive(Clone, PartialEq, prost::Message)]
struct AppendOnly {
    #[prost(message, optional, tag = "1")]
    append_entries: Option<HeartbeatFlag>,
}

/// Whether a whole frame is an AppendEntries that is not a heartbeat (it
/// carries entries, or probes for where the follower's log matches).
pub fn frame_is_log_append(frame: &[u8]) -> bool {
    if frame_field(frame) != Some(APPEND_ENTRIES) {
        return false;
    }
    let Some(body) = frame.get(4..) else {
        return false;
    };
    <AppendOnly as prost::Message>::decode(body)
        .ok()
        .and_then(|m| m.append_entries)
        .is_some_and(|a| !a.heartbeat)
}

/// Any message of `raftpb.RaftMessage`, read for its header only: prost
/// skips the other fields (entries included) without copying them.
#[derive(Clone, PartialEq, prost::Message)]
struct HeaderOf {
    #[prost(message, optional, tag = "1")]
    header: Option<raft_proto::raftpb::Header>,
}

/// `raftpb.RaftMessage` with every variant read as [`HeaderOf`] (each
/// variant's header is its field 1).
#[derive(Clone, PartialEq, prost::Message)]
struct AnyMessage {
    #[prost(message, optional, tag = "1")]
    append_entries: Option<HeaderOf>,
    #[prost(message, optional, tag = "2")]
    append_entries_response: Option<HeaderOf>,
    #[prost(message, optional, tag = "3")]
    request_vote: Option<HeaderOf>,
    #[prost(message, optional, tag = "4")]
    request_vote_response: Option<HeaderOf>,
    #[prost(message, optional, tag = "5")]
    timeout_now: Option<HeaderOf>,
}

/// The term in a whole frame's header, if it decodes.
pub fn frame_term(frame: &[u8]) -> Option<u64> {
    let m = <AnyMessage as prost::Message>::decode(frame.get(4..)?).ok()?;
    [
        m.append_entries,
        m.append_entries_response,
        m.request_vote,
        m.request_vote_response,
        m.timeout_now,
    ]
    .into_iter()
    .flatten()
    .find_map(|h| h.header)
    .map(|h| h.term)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use prost::Message as _;
    use raft_proto::raftpb::{
        raft_message::Msg, AppendEntriesRequest, Header, RaftMessage, RequestVoteRequest,
    };

    /// One encoded frame: an AppendEntries (or a RequestVote if `vote`)
    /// whose prev_log_index (last_log_index) is `n`, to tell frames apart.
    pub fn frame(n: u64, vote: bool) -> Vec<u8> {
        frame_at(n, vote, 3)
    }

    /// [`frame`] in `term`.
    pub fn frame_at(n: u64, vote: bool, term: u64) -> Vec<u8> {
        let header = Some(Header {
            cluster_id: 1,
            from: 1,
            to: 2,
            term,
        });
        let msg = if vote {
            Msg::RequestVote(RequestVoteRequest {
                header,
                last_log_index: n,
                ..Default::default()
            })
        } else {
            Msg::AppendEntries(AppendEntriesRequest {
                header,
                prev_log_index: n,
                context: vec![7; (n % 50) as usize],
                ..Default::default()
            })
        };
        let m = RaftMessage { msg: Some(msg) };
        let mut b = (m.encoded_len() as u32).to_be_bytes().to_vec();
        m.encode(&mut b).unwrap();
        b
    }

    /// A heartbeat (an AppendEntries with the flag) whose prev_log_index is `n`.
    pub fn heartbeat(n: u64) -> Vec<u8> {
        let msg = Msg::AppendEntries(AppendEntriesRequest {
            header: Some(Header {
                cluster_id: 1,
                from: 1,
                to: 2,
                term: 3,
            }),
            prev_log_index: n,
            heartbeat: true,
            ..Default::default()
        });
        let m = RaftMessage { msg: Some(msg) };
        let mut b = (m.encoded_len() as u32).to_be_bytes().to_vec();
        m.encode(&mut b).unwrap();
        b
    }

    #[test]
    fn log_appends_are_told_from_heartbeats_and_other_messages() {
        assert!(frame_is_log_append(&frame(5, false)));
        assert!(!frame_is_log_append(&heartbeat(5)));
        assert!(!frame_is_log_append(&frame(5, true)));
        assert!(!frame_is_log_append(&[0, 0, 0, 2, 0xff, 0xff]));
        assert!(!frame_is_log_append(&[]));
    }

    /// The `n` of each frame in a peer stream (magic first), decoding every
    /// frame: a malformed one fails the test.
    pub fn decode_stream(bytes: &[u8]) -> Vec<u64> {
        assert_eq!(&bytes[..8], MAGIC, "the stream must open with the magic");
        let mut rest = &bytes[8..];
        let mut ns = Vec::new();
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let m = RaftMessage::decode(&rest[4..4 + len]).expect("a frame that decodes");
            ns.push(match m.msg.unwrap() {
                Msg::AppendEntries(a) => a.prev_log_index,
                Msg::RequestVote(v) => v.last_log_index,
                other => panic!("unexpected {other:?}"),
            });
            rest = &rest[4 + len..];
        }
        ns
    }

    fn stream(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut s = MAGIC.to_vec();
        for f in frames {
            s.extend_from_slice(f);
        }
        s
    }

    /// Feeds `bytes` in reads of `step` bytes; returns the pieces.
    fn split(bytes: &[u8], step: usize, whole: bool) -> (Vec<Piece>, Option<StreamKind>) {
        let mut s = FrameSplitter::default();
        let mut out = Vec::new();
        for chunk in bytes.chunks(step) {
            s.push(chunk, whole, &mut out);
        }
        s.finish(&mut out);
        (out, s.kind())
    }

    fn reassemble(pieces: &[Piece]) -> Vec<u8> {
        let mut b = Vec::new();
        for p in pieces {
            match p {
                Piece::Raw(r) => b.extend_from_slice(r),
                Piece::Magic => b.extend_from_slice(MAGIC),
                Piece::Frame(f) => b.extend_from_slice(f),
            }
        }
        b
    }

    #[test]
    fn whole_frames_come_out_one_each_whatever_the_read_sizes() {
        let frames: Vec<Vec<u8>> = (0..20).map(|n| frame(n, n % 3 == 0)).collect();
        let bytes = stream(&frames);
        // Reads of 1, 3, 5... bytes split both the magic and the length
        // prefixes; one big read holds every frame.
        for step in [1, 2, 3, 5, 7, 13, 64, bytes.len()] {
            let (pieces, kind) = split(&bytes, step, true);
            assert_eq!(kind, Some(StreamKind::RaftFrames), "step {step}");
            assert_eq!(pieces[0], Piece::Magic, "step {step}");
            let got: Vec<Vec<u8>> = pieces[1..]
                .iter()
                .map(|p| match p {
                    Piece::Frame(f) => f.to_vec(),
                    other => panic!("step {step}: not a whole frame: {other:?}"),
                })
                .collect();
            assert_eq!(got, frames, "step {step}");
        }
    }

    #[test]
    fn without_faults_frames_pass_raw_and_the_stream_is_unchanged() {
        let frames: Vec<Vec<u8>> = (0..10).map(|n| frame(n, false)).collect();
        let bytes = stream(&frames);
        for step in [1, 3, 9, bytes.len()] {
            let (pieces, _) = split(&bytes, step, false);
            assert!(pieces.iter().all(|p| !matches!(p, Piece::Frame(_))));
            assert_eq!(reassemble(&pieces), bytes, "step {step}");
        }
    }

    #[test]
    fn switching_on_mid_frame_starts_whole_frames_at_the_next_boundary() {
        let frames: Vec<Vec<u8>> = (0..4).map(|n| frame(n + 10, false)).collect();
        let bytes = stream(&frames);
        let mut s = FrameSplitter::default();
        let mut out = Vec::new();
        // Off through the magic and half of the first frame, then on.
        let cut = 8 + frames[0].len() / 2;
        s.push(&bytes[..cut], false, &mut out);
        s.push(&bytes[cut..], true, &mut out);
        assert_eq!(reassemble(&out), bytes);
        let whole: Vec<&Piece> = out
            .iter()
            .filter(|p| matches!(p, Piece::Frame(_)))
            .collect();
        assert_eq!(whole.len(), 3, "the begun frame stays raw, the rest whole");
    }

    #[test]
    fn non_peer_streams_pass_unchanged_and_are_told_apart() {
        let h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04".to_vec();
        let http1 = b"GET /raft/stream/message/1 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        // "RAFT" then something else: a near miss is not a peer stream.
        let near = b"RAFTMSG2 and more bytes".to_vec();
        // A TLS 1.2/1.3 ClientHello record (raft-node with --tls-dir).
        let tls = b"\x16\x03\x01\x00\xf4\x01\x00\x00\xf0\x03\x03".to_vec();
        for (bytes, kind) in [
            (tls, StreamKind::Tls),
            (h2, StreamKind::Other),
            (http1, StreamKind::Http1),
            (near, StreamKind::Other),
        ] {
            for step in [1, 2, 5, bytes.len()] {
                let (pieces, got) = split(&bytes, step, true);
                assert_eq!(got, Some(kind), "step {step}");
                assert!(pieces.iter().all(|p| matches!(p, Piece::Raw(_))));
                assert_eq!(reassemble(&pieces), bytes, "step {step}");
            }
        }
    }

    #[test]
    fn a_stream_that_ends_inside_the_magic_passes_its_bytes() {
        let (pieces, kind) = split(b"RAFT", 1, true);
        assert_eq!(reassemble(&pieces), b"RAFT");
        assert_eq!(kind, Some(StreamKind::Other));
    }

    #[test]
    fn an_oversized_length_passes_the_rest_unchanged() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&frame(1, false));
        bytes.extend_from_slice(&((MAX_FRAME as u32) + 1).to_be_bytes());
        bytes.extend_from_slice(b"junk");
        let (pieces, _) = split(&bytes, 3, true);
        assert_eq!(reassemble(&pieces), bytes);
    }

    #[test]
    fn the_message_field_and_term_are_read_without_a_full_decode() {
        assert_eq!(frame_field(&frame(5, false)), Some(APPEND_ENTRIES));
        assert_eq!(frame_field(&frame(5, true)), Some(3));
        assert_eq!(frame_term(&frame(5, false)), Some(3));
        assert_eq!(frame_term(&frame(5, true)), Some(3));
        assert_eq!(frame_term(b"\0\0\0\x02\xff\xff"), None);
    }
}
