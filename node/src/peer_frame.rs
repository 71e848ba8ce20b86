//! The framing of a peer stream (see [`crate::peer_stream`]): the magic
//! bytes that open it, then `raftpb.RaftMessage` frames, each a 4-byte
//! big-endian length and the protobuf body. Shared by the sending end
//! ([`crate::peer_link`]) and the receiving end.

use prost::Message as _;
use raft_proto::raftpb::RaftMessage;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The first bytes a peer stream sends; an HTTP/2 client starts with
/// "PRI * HTTP/2.0", so the two never mix.
pub const MAGIC: &[u8; 8] = b"RAFTMSG1";

/// The largest frame accepted (the limit the gRPC peer service had).
pub const MAX_FRAME: usize = 256 << 20;

/// Appends `m` to `buf` as one frame: a 4-byte big-endian length, then the
/// protobuf body.
pub fn encode_frame(buf: &mut Vec<u8>, m: &RaftMessage) {
    let len = m.encoded_len();
    buf.extend_from_slice(&(len as u32).to_be_bytes());
    m.encode(buf).expect("a Vec grows to fit");
}

/// Reads one frame; `None` at a clean end of stream (between frames).
/// A frame over [`MAX_FRAME`] or a body that does not decode is an
/// `InvalidData` error, after which the stream is out of step and is closed.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    body: &mut Vec<u8>,
) -> io::Result<Option<RaftMessage>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("peer frame of {n} bytes exceeds the limit of {MAX_FRAME}"),
        ));
    }
    // Grow with what arrives, not with what the length field promises: a
    // peer that sends a 256 MiB length and stops costs nothing.
    body.clear();
    let got = (&mut *r).take(n as u64).read_to_end(body).await?;
    if got < n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("peer frame cut short: {got} of {n} bytes"),
        ));
    }
    RaftMessage::decode(&body[..])
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad peer frame: {e}")))
}

/// Small frames for the tests of this module and of `peer_link`.
#[cfg(test)]
pub(crate) mod test_frames {
    use raft_proto::raftpb::{raft_message::Msg, Header, RaftMessage, TimeoutNowRequest};

    /// A TimeoutNow from 1 to 2 in cluster 7 at `term`.
    pub fn msg(term: u64) -> RaftMessage {
        RaftMessage {
            msg: Some(Msg::TimeoutNow(TimeoutNowRequest {
                header: Some(Header {
                    cluster_id: 7,
                    from: 1,
                    to: 2,
                    term,
                }),
            })),
        }
    }

    /// The term of a message made by [`msg`].
    pub fn term(m: RaftMessage) -> u64 {
        match m.msg {
            Some(Msg::TimeoutNow(t)) => t.header.unwrap().term,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_frames::{msg, term};
    use super::*;

    #[tokio::test]
    async fn frames_read_back_in_order_and_the_stream_ends_cleanly() {
        let mut buf = Vec::new();
        for t in 1..=3 {
            encode_frame(&mut buf, &msg(t));
        }
        let mut r = &buf[..];
        let mut body = Vec::new();
        for t in 1..=3 {
            let m = read_frame(&mut r, &mut body).await.unwrap().unwrap();
            assert_eq!(term(m), t);
        }
        assert!(read_frame(&mut r, &mut body).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_oversized_or_undecodable_frame_is_invalid_data() {
        let mut big = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        big.extend_from_slice(&[0; 16]);
        let e = read_frame(&mut &big[..], &mut Vec::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let mut garbage = 4u32.to_be_bytes().to_vec();
        garbage.extend_from_slice(&[0xff; 4]);
        let e = read_frame(&mut &garbage[..], &mut Vec::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn a_stream_cut_inside_a_frame_is_an_error_not_an_end() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, &msg(9));
        let cut = &buf[..buf.len() - 1];
        let e = read_frame(&mut &cut[..], &mut Vec::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
