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
//!
//! Under TLS ([`accept_tls`], `--tls-dir`) every connection first completes
//! a TLS handshake with a client certificate signed by the cluster's CA; a
//! plaintext connection (a peer without TLS, or anything else) fails the
//! handshake and is closed. ALPN then tells the two apart: `raftmsg1` is a
//! peer stream (its magic and frames follow inside TLS), anything else goes
//! to tonic.

use crate::loop_api::{LoopHandle, Request};
use crate::peer_frame::{read_frame, MAGIC};
use crate::wire;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedSender;

/// How long a new connection may take to send its first bytes.
const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Accepts connections on `listener` for ever under TLS: each must
/// complete a handshake with a CA-signed client certificate; peer streams
/// (ALPN `raftmsg1`) are served here, the rest handed to `to_tonic`.
pub async fn accept_tls(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    to_tonic: UnboundedSender<io::Result<tokio_rustls::server::TlsStream<TcpStream>>>,
    handle: LoopHandle,
) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (to_tonic, handle, acceptor) = (to_tonic.clone(), handle.clone(), acceptor.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(FIRST_BYTES_TIMEOUT, acceptor.accept(stream)).await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::warn!(%from, error = %e, "TLS handshake failed; connection refused");
                    return;
                }
                Err(_) => {
                    tracing::warn!(%from, "no TLS handshake in time; connection closed");
                    return;
                }
            };
            if tls.get_ref().1.alpn_protocol() == Some(crate::tls::ALPN_PEER) {
                serve(tls, handle).await
            } else {
                let _ = to_tonic.send(Ok(tls));
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
async fn serve<S: AsyncRead + Unpin>(stream: S, handle: LoopHandle) {
    let mut r = BufReader::with_capacity(64 << 10, stream);
    let mut magic = [0u8; MAGIC.len()];
    if r.read_exact(&mut magic).await.is_err() {
        return;
    }
    if magic != *MAGIC {
        // Only under TLS, where ALPN, not the magic, chose this path.
        tracing::warn!("peer stream without the RAFTMSG1 magic; closing it");
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
