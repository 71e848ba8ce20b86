//! The peer message stream: one TCP connection per directed link that
//! carries length-prefixed `raftpb.RaftMessage` frames, on the node's one
//! port. A connection that opens with [`MAGIC`] is a peer stream; any other
//! (an HTTP/2 preface) goes on to the tonic server, which serves the client
//! API and snapshots.
//!
//! Why not a gRPC stream: each message on an HTTP/2 stream passed through
//! the link task, hyper's body pipe and the connection task on the way out,
//! and the connection and handler tasks on the way in; on a write's
//! critical path (AppendEntries out, its ack back) that cost about 100 us
//! per direction on a 2-core machine, against 10 us for the bare loopback
//! hop. Framing is all HTTP/2 gave here: TCP already orders and checks the
//! bytes, and Raft needs no reply per message (etcd's raft transport and
//! hashicorp/raft frame their own streams for the same reason).

use crate::node_loop::Request;
use crate::server::LoopHandle;
use crate::wire;
use prost::Message as _;
use raft_proto::raftpb::RaftMessage;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedSender;

/// The first bytes a peer stream sends; an HTTP/2 client starts with
/// "PRI * HTTP/2.0", so the two never mix.
pub const MAGIC: &[u8; 8] = b"RAFTMSG1";

/// The largest frame accepted (the limit the gRPC peer service had).
pub const MAX_FRAME: usize = 256 << 20;

/// How long a new connection may take to send its first bytes.
const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(5);

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
    body.resize(n, 0);
    r.read_exact(body).await?;
    RaftMessage::decode(&body[..])
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad peer frame: {e}")))
}

/// Accepts connections on `listener` for ever: peer streams are served
/// here, everything else is handed to `to_tonic`.
pub async fn accept(
    listener: TcpListener,
    to_tonic: UnboundedSender<io::Result<TcpStream>>,
    handle: LoopHandle,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off, go on.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (to_tonic, handle) = (to_tonic.clone(), handle.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(FIRST_BYTES_TIMEOUT, opens_with_magic(&stream)).await {
                Ok(Ok(true)) => serve(stream, handle).await,
                Ok(Ok(false)) => {
                    let _ = to_tonic.send(Ok(stream));
                }
                // Closed, failed or silent before saying what it is.
                Ok(Err(_)) | Err(_) => {}
            }
        });
    }
}

/// Whether the stream's first bytes are [`MAGIC`], looking without taking
/// them (tonic must see an HTTP/2 preface whole).
async fn opens_with_magic(stream: &TcpStream) -> io::Result<bool> {
    let mut head = [0u8; MAGIC.len()];
    loop {
        let n = stream.peek(&mut head).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if head[..n] != MAGIC[..n] {
            return Ok(false);
        }
        if n == MAGIC.len() {
            return Ok(true);
        }
        // A prefix of the magic so far: wait for the rest.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Reads a peer's frames into the core loop until the stream ends or goes
/// wrong.
async fn serve(stream: TcpStream, handle: LoopHandle) {
    let mut r = BufReader::with_capacity(64 << 10, stream);
    let mut magic = [0u8; MAGIC.len()];
    if r.read_exact(&mut magic).await.is_err() {
        return;
    }
    let mut body = Vec::new();
    loop {
        let m = match read_frame(&mut r, &mut body).await {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "peer stream closed");
                return;
            }
        };
        match wire::from_wire(handle.cluster_id, handle.id, m) {
            Ok(m) => {
                if matches!(m.kind, crate::raft::MessageKind::AppendEntries { .. }) {
                    crate::write_path_trace::mark("net-got-append");
                }
                if handle.tx.send(Request::Peer(m)).is_err() {
                    return; // shutting down
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "refused peer message; closing its stream");
                return;
            }
        }
    }
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
