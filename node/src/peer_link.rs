//! One outgoing peer stream (see [`crate::peer_stream`], framed by
//! [`crate::peer_frame`]): the core loop writes a message straight into
//! the socket when the link is idle, so an
//! AppendEntries is on the wire before the leader's own fsync starts and an
//! ack leaves the moment the follower's fsync ends, with no task hand-off.
//! When the socket is busy, full, or not yet connected, frames wait in a
//! bounded byte buffer that the link's task writes out (connecting first);
//! frames beyond the bound are dropped, which Raft tolerates (it retries by
//! heartbeats and timeouts), so the core loop never waits on the network.
//!
//! Under TLS ([`PeerLink::spawn_tls`]) the direct path is off: every frame
//! goes through the buffer to the task, which owns the TLS stream (rustls
//! needs exclusive access to encrypt); the plaintext path is unchanged.

use crate::peer_frame::{self, MAGIC};
use raft_proto::raftpb::RaftMessage;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::Notify;

/// Bytes of frames waiting for the link task before new ones are dropped.
const MAX_PENDING: usize = 8 << 20;
/// Covers the TCP connect, which a held link can stall.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
const RECONNECT_BACKOFF: Duration = Duration::from_millis(50);

#[derive(Default)]
struct State {
    /// The open stream, its magic already sent.
    stream: Option<Arc<TcpStream>>,
    /// Frames (or the rest of one) the task must write, in order.
    pending: Vec<u8>,
    /// The task is writing a batch taken from `pending`: writing directly
    /// now would overtake it.
    writing: bool,
    /// The link was dropped: the task ends.
    closed: bool,
    /// Scratch space for the direct path's frame.
    frame: Vec<u8>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the task: frames are pending, or the link closed.
    wake: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update keeps State consistent; a panic elsewhere cannot
        // leave it half done.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sending end of one link; dropping it ends the link's task.
pub struct PeerLink {
    shared: Arc<Shared>,
}

impl PeerLink {
    /// Starts the link's task on `rt`; it connects to `addr` on the first
    /// message.
    pub fn spawn(addr: String, rt: &Handle) -> PeerLink {
        let shared = Self::shared();
        rt.spawn(run(Arc::clone(&shared), addr));
        PeerLink { shared }
    }

    /// Like [`PeerLink::spawn`], but the stream is TLS made by `connector`
    /// (the peer's certificate checked against the CA for the host of
    /// `addr`; ours shown to it).
    pub fn spawn_tls(addr: String, rt: &Handle, connector: tokio_rustls::TlsConnector) -> PeerLink {
        let shared = Self::shared();
        rt.spawn(run_tls(Arc::clone(&shared), addr, connector));
        PeerLink { shared }
    }

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
        })
    }

    /// Sends `m` without blocking: into the socket if the link is idle,
    /// else to the task's buffer (dropped when that is full).
    pub fn send(&self, m: &RaftMessage) {
        let mut st = self.shared.lock();
        if st.stream.is_some() && !st.writing && st.pending.is_empty() {
            let mut frame = std::mem::take(&mut st.frame);
            frame.clear();
            peer_frame::encode_frame(&mut frame, m);
            let written = match &st.stream {
                Some(stream) => stream.try_write(&frame),
                None => unreachable!("checked above"),
            };
            match written {
                Ok(n) if n == frame.len() => {
                    crate::write_path_trace::mark("net-wrote");
                    st.frame = frame;
                    return;
                }
                // The socket took part of the frame: the task writes the rest.
                Ok(n) => st.pending.extend_from_slice(&frame[n..]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    st.pending.extend_from_slice(&frame)
                }
                Err(_) => {
                    // Broken (the peer restarted, say): the task reconnects
                    // and sends this frame on the new stream.
                    st.stream = None;
                    st.pending.clear();
                    st.pending.extend_from_slice(&frame);
                }
            }
            st.frame = frame;
        } else if st.pending.len() < MAX_PENDING {
            peer_frame::encode_frame(&mut st.pending, m);
        } else {
            return; // dropped: the link is held or down
        }
        drop(st);
        self.shared.wake.notify_one();
    }
}

impl Drop for PeerLink {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
    }
}

/// What the task does next.
enum Work {
    Connect,
    Write(Arc<TcpStream>),
}

async fn run(shared: Arc<Shared>, addr: String) {
    let mut batch = Vec::new();
    loop {
        let work = loop {
            {
                let mut st = shared.lock();
                if st.closed {
                    return;
                }
                if !st.pending.is_empty() {
                    match st.stream.clone() {
                        Some(s) => {
                            std::mem::swap(&mut st.pending, &mut batch);
                            st.writing = true;
                            break Work::Write(s);
                        }
                        None => break Work::Connect,
                    }
                }
            }
            shared.wake.notified().await;
        };
        match work {
            Work::Connect => match connect(&addr).await {
                Some(s) => shared.lock().stream = Some(Arc::new(s)),
                None => {
                    // Frames queued while the peer was unreachable are stale.
                    shared.lock().pending.clear();
                    tokio::time::sleep(RECONNECT_BACKOFF).await;
                }
            },
            Work::Write(s) => {
                // A held link (a partition) waits here until it is released
                // or cut; meanwhile new frames gather in `pending`.
                let ok = write_all(&s, &batch).await;
                crate::write_path_trace::mark("link-wrote");
                batch.clear();
                {
                    let mut st = shared.lock();
                    st.writing = false;
                    if !ok {
                        st.stream = None;
                        st.pending.clear();
                    }
                }
                if !ok {
                    tokio::time::sleep(RECONNECT_BACKOFF).await;
                }
            }
        }
    }
}

/// The link's task under TLS: it alone holds the stream and writes every
/// frame (`State::stream` stays empty, so `send` always buffers).
async fn run_tls(shared: Arc<Shared>, addr: String, connector: tokio_rustls::TlsConnector) {
    use tokio::io::AsyncWriteExt;
    let name = match crate::tls::server_name(&addr) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "peer address has no usable TLS name; link disabled");
            return;
        }
    };
    let mut batch = Vec::new();
    let mut conn: Option<tokio_rustls::client::TlsStream<TcpStream>> = None;
    loop {
        loop {
            {
                let mut st = shared.lock();
                if st.closed {
                    return;
                }
                if !st.pending.is_empty() {
                    if conn.is_some() {
                        std::mem::swap(&mut st.pending, &mut batch);
                    }
                    break;
                }
            }
            shared.wake.notified().await;
        }
        match conn.as_mut() {
            None => match connect_tls(&addr, &connector, name.clone()).await {
                Some(s) => conn = Some(s),
                None => {
                    shared.lock().pending.clear();
                    tokio::time::sleep(RECONNECT_BACKOFF).await;
                }
            },
            Some(s) => {
                let ok = s.write_all(&batch).await.is_ok() && s.flush().await.is_ok();
                crate::write_path_trace::mark("link-wrote");
                batch.clear();
                if !ok {
                    conn = None;
                    shared.lock().pending.clear();
                    tokio::time::sleep(RECONNECT_BACKOFF).await;
                }
            }
        }
    }
}

/// Opens a TLS peer stream to `addr` (TCP connect and handshake within
/// the connect timeout) and sends its magic.
async fn connect_tls(
    addr: &str,
    connector: &tokio_rustls::TlsConnector,
    name: tokio_rustls::rustls::pki_types::ServerName<'static>,
) -> Option<tokio_rustls::client::TlsStream<TcpStream>> {
    use tokio::io::AsyncWriteExt;
    let open = async {
        let s = TcpStream::connect(addr).await.ok()?;
        s.set_nodelay(true).ok()?;
        match connector.connect(name, s).await {
            Ok(mut t) => {
                t.write_all(MAGIC).await.ok()?;
                t.flush().await.ok()?;
                Some(t)
            }
            Err(e) => {
                tracing::warn!(addr, error = %e, "TLS handshake with peer failed");
                None
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, open).await.ok()?
}

/// Opens a peer stream to `addr` and sends its magic.
async fn connect(addr: &str) -> Option<TcpStream> {
    let s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    s.set_nodelay(true).ok()?;
    write_all(&s, MAGIC).await.then_some(s)
}

/// Writes all of `buf`, waiting for the socket as needed; false if the
/// stream broke.
async fn write_all(s: &TcpStream, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        if s.writable().await.is_err() {
            return false;
        }
        match s.try_write(buf) {
            Ok(0) => return false,
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer_frame::test_frames::{msg, term};
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    async fn accept_stream(l: &TcpListener) -> TcpStream {
        let (mut s, _) = tokio::time::timeout(Duration::from_secs(10), l.accept())
            .await
            .expect("no connection")
            .unwrap();
        let mut magic = [0u8; 8];
        s.read_exact(&mut magic).await.unwrap();
        assert_eq!(&magic, MAGIC);
        s
    }

    async fn read_terms(s: &mut TcpStream, n: usize) -> Vec<u64> {
        let mut body = Vec::new();
        let mut out = Vec::new();
        for _ in 0..n {
            let m = tokio::time::timeout(
                Duration::from_secs(10),
                peer_frame::read_frame(s, &mut body),
            )
            .await
            .expect("frame did not arrive")
            .unwrap()
            .expect("stream ended");
            out.push(term(m));
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn messages_arrive_in_order_whether_written_directly_or_by_the_task() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let link = PeerLink::spawn(l.local_addr().unwrap().to_string(), &Handle::current());
        // Not connected yet: the first frames go through the task.
        for t in 1..=3 {
            link.send(&msg(t));
        }
        let mut s = accept_stream(&l).await;
        assert_eq!(read_terms(&mut s, 3).await, vec![1, 2, 3]);
        // Connected and idle: straight into the socket, in order with a
        // burst large enough to spill into the task's buffer.
        for t in 4..=2000 {
            link.send(&msg(t));
        }
        assert_eq!(
            read_terms(&mut s, 1997).await,
            (4..=2000).collect::<Vec<_>>()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restarted_peer_gets_a_new_stream_and_later_messages() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let link = PeerLink::spawn(l.local_addr().unwrap().to_string(), &Handle::current());
        link.send(&msg(1));
        let mut s = accept_stream(&l).await;
        assert_eq!(read_terms(&mut s, 1).await, vec![1]);
        drop(s); // the peer goes away
                 // Sends into the dead stream fail (at the latest on the second try
                 // after the reset), and the link reconnects.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut next = 2;
        let mut s = loop {
            link.send(&msg(next));
            next += 1;
            if let Ok(Ok((mut s, _))) =
                tokio::time::timeout(Duration::from_millis(20), l.accept()).await
            {
                let mut magic = [0u8; 8];
                s.read_exact(&mut magic).await.unwrap();
                break s;
            }
            assert!(std::time::Instant::now() < deadline, "never reconnected");
        };
        link.send(&msg(1000));
        let got = read_terms(&mut s, 1).await[0];
        assert!(
            (2..1000).contains(&got),
            "first frame on the new stream: {got}"
        );
    }

    #[tokio::test]
    async fn dropping_the_link_ends_its_task() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let link = PeerLink::spawn(l.local_addr().unwrap().to_string(), &Handle::current());
        let shared = Arc::clone(&link.shared);
        drop(link);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&shared) > 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "task still holds the link"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
