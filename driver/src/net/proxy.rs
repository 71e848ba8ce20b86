//! TCP proxies between nodes: one per directed link i -> j, so the driver
//! owns every byte between nodes and can pass, hold, delay or lose it, and
//! on raft-node's peer streams duplicate, reorder, delay and replay whole
//! messages.
//!
//! Node i's `--peer j` points at the proxy of link i -> j. The connections
//! on that proxy are the ones node i opened to node j, so holding the link
//! stalls both directions of those connections (requests and replies),
//! which is what "i cannot reach j" means for an RPC system.
//!
//! The faults of a link are layers ([`LinkFaults`]) that each nemesis sets
//! and clears on its own, so that faults overlap without undoing each
//! other.

use super::frames::{FrameSplitter, Piece, StreamKind, MAGIC};
use super::link_state::{Holder, LinkFaults, Slowness};
use super::messages::{
    replay_frames, Count, Faulter, MessageCounts, MessageFaults, MessageTally, ReplayRing,
};
use anyhow::{Context, Result};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The extra delay a lost chunk costs: TCP recovers loss by retransmission,
/// so over a byte stream loss shows up as a minimum-RTO stall, not as a gap.
pub const LOSS_PENALTY: Duration = Duration::from_millis(200);

const CHUNK: usize = 16 * 1024;
/// Chunks in flight per direction while delayed or held (backpressure after).
const QUEUE_CHUNKS: usize = 16;

#[derive(Debug, Clone)]
struct LinkState {
    faults: LinkFaults,
    /// Bumped to sever every connection opened before.
    epoch: u64,
}

/// Counters of one link, for tests, the driver log and the history.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Bytes forwarded (both directions).
    pub bytes: AtomicU64,
    /// What the message faults did.
    pub messages: MessageCounts,
}

/// What the connections of one link share.
#[derive(Debug, Default)]
struct Shared {
    stats: LinkStats,
    /// The link's last peer-stream frames, replayed on a new connection.
    ring: Mutex<ReplayRing>,
}

impl Shared {
    fn ring(&self) -> std::sync::MutexGuard<'_, ReplayRing> {
        // Only a frame buffer: usable even if a holder panicked.
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The proxy of one directed link `from -> to`.
pub struct LinkProxy {
    /// Node whose traffic enters this proxy.
    pub from: u64,
    /// Node the proxy forwards to.
    pub to: u64,
    addr: SocketAddr,
    state: watch::Sender<LinkState>,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

impl LinkProxy {
    /// Binds 127.0.0.1:0 and starts forwarding to `upstream`.
    pub async fn start(from: u64, to: u64, upstream: SocketAddr, seed: u64) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a proxy port")?;
        let addr = listener.local_addr()?;
        let (state, rx) = watch::channel(LinkState {
            faults: LinkFaults::default(),
            epoch: 0,
        });
        let shared = Arc::new(Shared::default());
        let accept_task = tokio::spawn(accept_loop(listener, upstream, rx, shared.clone(), seed));
        Ok(LinkProxy {
            from,
            to,
            addr,
            state,
            shared,
            accept_task,
        })
    }

    /// The address node `from` must use to reach node `to`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The faults in effect.
    pub fn faults(&self) -> LinkFaults {
        self.state.borrow().faults.clone()
    }

    /// Whether the link forwards nothing now.
    pub fn is_held(&self) -> bool {
        self.state.borrow().faults.held()
    }

    /// `holder` holds the link (existing connections stall from their next
    /// chunk); true if it did not hold it already.
    pub fn hold(&self, holder: Holder) -> bool {
        self.state
            .send_if_modified(|s| s.faults.holders.insert(holder))
    }

    /// `holder` lets the link go; it passes again once no holder is left.
    pub fn release(&self, holder: Holder) {
        self.state
            .send_if_modified(|s| s.faults.holders.remove(holder));
    }

    /// Sets or clears the slowness.
    pub fn set_slow(&self, slow: Option<Slowness>) {
        self.state.send_if_modified(|s| {
            let changed = s.faults.slow != slow;
            s.faults.slow = slow;
            changed
        });
    }

    /// Sets or clears the message faults. The frames kept for replay stay:
    /// the next fault's first replays may carry frames of a window before
    /// it, of older terms (Raft must survive a message of any age).
    pub fn set_messages(&self, messages: Option<MessageFaults>) {
        self.state.send_if_modified(|s| {
            let changed = s.faults.messages != messages;
            s.faults.messages = messages;
            changed
        });
    }

    /// Clears every fault layer and forgets the frames kept for replay.
    pub fn clear(&self) {
        self.shared.ring().clear();
        self.state.send_if_modified(|s| {
            let changed = !s.faults.is_clear();
            s.faults = LinkFaults::default();
            changed
        });
    }

    /// Closes every connection currently open through this link.
    pub fn sever(&self) {
        self.state.send_modify(|s| s.epoch += 1);
    }

    /// Traffic counters.
    pub fn stats(&self) -> &LinkStats {
        &self.shared.stats
    }

    /// What the message faults did so far on this link.
    pub fn message_tally(&self) -> MessageTally {
        self.shared.stats.messages.tally()
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        // Connection tasks end on their own: they see the watch sender gone.
        self.accept_task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    state: watch::Receiver<LinkState>,
    shared: Arc<Shared>,
    seed: u64,
) {
    let mut conn_no = 0u64;
    loop {
        let (inbound, _) = match listener.accept().await {
            Ok(c) => c,
            Err(_) => {
                // Out of file descriptors or similar: back off, keep serving.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        conn_no += 1;
        shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = inbound.set_nodelay(true);
        tokio::spawn(serve_connection(
            inbound,
            upstream,
            state.clone(),
            shared.clone(),
            seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ conn_no,
        ));
    }
}

/// Waits while the link is held; returns false if the connection must close
/// (severed, or the proxy is gone).
async fn wait_while_held(state: &mut watch::Receiver<LinkState>, epoch: u64) -> bool {
    loop {
        let (held, current) = {
            let s = state.borrow_and_update();
            (s.faults.held(), s.epoch)
        };
        if current != epoch {
            return false;
        }
        if !held {
            return true;
        }
        if state.changed().await.is_err() {
            return false;
        }
    }
}

/// One direction of one connection: what its reader needs.
struct Direction {
    state: watch::Receiver<LinkState>,
    shared: Arc<Shared>,
    seed: u64,
    /// What the connection carries, told by the forward direction's first
    /// bytes (the backward one only reads it).
    kind: Arc<OnceLock<StreamKind>>,
    /// Where the connection goes (a replay of it opens another).
    upstream: SocketAddr,
}

/// Most bytes of an opaque connection kept to replay it whole; a longer
/// one is not replayed.
const MAX_REPLAYED_CONNECTION: usize = 4 << 20;

/// Sends the forward bytes of a finished connection again, on a new one,
/// after `after`: the target takes a late duplicate of every request the
/// connection carried (for raft-node, an InstallSnapshot that arrives
/// after the follower moved past it). Its answers are read and dropped.
/// Nothing is sent if the link is cut or its message faults are off by
/// then.
async fn replay_connection(
    bytes: Vec<u8>,
    after: Duration,
    upstream: SocketAddr,
    state: watch::Receiver<LinkState>,
    shared: Arc<Shared>,
) {
    tokio::time::sleep(after).await;
    {
        let s = state.borrow();
        if s.faults.messages.is_none() || s.faults.held() {
            return;
        }
    }
    let Ok(Ok(mut c)) =
        tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(upstream)).await
    else {
        return;
    };
    shared.stats.messages.add(Count::ReplayedConnections, 1);
    let _ = c.set_nodelay(true);
    let talk = async {
        c.write_all(&bytes).await?;
        let mut sink = vec![0u8; CHUNK];
        while c.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), talk).await;
}

async fn serve_connection(
    inbound: TcpStream,
    upstream: SocketAddr,
    mut state: watch::Receiver<LinkState>,
    shared: Arc<Shared>,
    seed: u64,
) {
    let epoch = state.borrow().epoch;
    // A held link accepts but does not even connect upstream.
    if !wait_while_held(&mut state, epoch).await {
        return;
    }
    let outbound = match TcpStream::connect(upstream).await {
        Ok(s) => s,
        // The node is down: closing the inbound side tells the peer so.
        Err(_) => return,
    };
    let _ = outbound.set_nodelay(true);
    let (in_r, in_w) = inbound.into_split();
    let (out_r, out_w) = outbound.into_split();
    let kind = Arc::new(OnceLock::new());
    let dir = |seed| Direction {
        state: state.clone(),
        shared: shared.clone(),
        seed,
        kind: kind.clone(),
        upstream,
    };
    let forward = pump(in_r, out_w, dir(seed), epoch, true);
    let backward = pump(out_r, in_w, dir(seed ^ 1), epoch, false);
    let severed = async {
        loop {
            if state.borrow_and_update().epoch != epoch {
                return;
            }
            if state.changed().await.is_err() {
                return;
            }
        }
    };
    // Either direction ending (EOF, error, sever, a message-fault reset)
    // closes the whole connection: gRPC does not use half-closed TCP.
    tokio::select! {
        _ = forward => {}
        _ = backward => {}
        _ = severed => {}
    }
}

fn sample_delay(slow: Option<Slowness>, rng: &mut SmallRng) -> Duration {
    let Some(Slowness {
        delay_ms,
        jitter_ms,
        loss,
    }) = slow
    else {
        return Duration::ZERO;
    };
    let jitter = if jitter_ms > 0.0 {
        rng.gen_range(-jitter_ms..=jitter_ms)
    } else {
        0.0
    };
    let mut d = Duration::from_secs_f64((delay_ms + jitter).max(0.0) / 1000.0);
    if loss > 0.0 && rng.gen_bool(loss.clamp(0.0, 1.0)) {
        d += LOSS_PENALTY;
    }
    d
}

/// How long a faulted connection lives before the proxy resets it: uniform
/// in [0.5, 1.5] x `reset_ms`.
fn lifetime(reset_ms: u64, rng: &mut SmallRng) -> Duration {
    Duration::from_secs_f64(reset_ms as f64 * rng.gen_range(0.5..=1.5) / 1000.0)
}

/// Whether an etcd HTTP chunk is held back: the chance of a delayed or a
/// reordered message, since a stalled chunk lets the link's other streams
/// overtake it (the only reordering a byte stream without frames allows).
fn stalls(m: &MessageFaults, rng: &mut SmallRng) -> bool {
    rng.gen_bool((m.delay + m.reorder).clamp(0.0, 1.0))
}

/// Copies one direction: a reader stamps each piece with its due time
/// (applying the message faults on the way), a writer parks while the
/// link is held and delivers pieces in order when due.
async fn pump(r: OwnedReadHalf, w: OwnedWriteHalf, dir: Direction, epoch: u64, forward: bool) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE_CHUNKS);
    let writer = deliver(rx, w, dir.state.clone(), dir.shared.clone(), epoch);
    tokio::select! {
        _ = async {
            if forward {
                read_forward(r, tx, dir).await
            } else {
                read_backward(r, tx, dir).await
            }
        } => {}
        _ = writer => {}
    }
}

/// Stamps and queues the bytes of one direction, in order: a byte stream
/// keeps its order, so nothing is due before what was queued before it.
struct Stamper {
    tx: mpsc::Sender<(Instant, Vec<u8>)>,
    rng: SmallRng,
    last_due: Instant,
}

impl Stamper {
    /// Queues `bytes` after the link's slowness plus `extra`; false if the
    /// writer is gone.
    async fn send(&mut self, bytes: Vec<u8>, slow: Option<Slowness>, extra: Duration) -> bool {
        if bytes.is_empty() {
            return true;
        }
        let due = (Instant::now() + sample_delay(slow, &mut self.rng) + extra).max(self.last_due);
        self.last_due = due;
        self.tx.send((due, bytes)).await.is_ok()
    }
}

/// The faults a reader reads at each step.
fn current(state: &mut watch::Receiver<LinkState>) -> (Option<Slowness>, Option<MessageFaults>) {
    let s = state.borrow_and_update();
    (s.faults.slow, s.faults.messages)
}

/// The backward direction: replies, and for etcd the stream bodies that
/// carry the other member's messages (rafthttp streams are dialed by the
/// receiver); its HTTP chunks stall as the forward ones do.
async fn read_backward(
    mut r: OwnedReadHalf,
    tx: mpsc::Sender<(Instant, Vec<u8>)>,
    mut dir: Direction,
) {
    let mut out = Stamper {
        tx,
        rng: SmallRng::seed_from_u64(dir.seed),
        last_due: Instant::now(),
    };
    let mut stall_rng: Option<SmallRng> = None;
    loop {
        let mut buf = vec![0u8; CHUNK];
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.truncate(n);
        let (slow, messages) = current(&mut dir.state);
        let mut extra = Duration::ZERO;
        if let (Some(m), Some(true)) = (messages, dir.kind.get().map(|k| k.chunked())) {
            let rng = stall_rng.get_or_insert_with(|| SmallRng::seed_from_u64(dir.seed ^ m.seed));
            if stalls(&m, rng) {
                extra = Duration::from_millis(m.delay_ms);
                dir.shared.stats.messages.add(Count::StalledChunks, 1);
            }
        }
        if !out.send(buf, slow, extra).await {
            return;
        }
    }
}

/// The forward direction: splits a peer stream into frames while message
/// faults are on and passes them through the connection's [`Faulter`];
/// stalls etcd's HTTP chunks; resets faulted connections after their
/// lifetime; passes anything else unchanged.
async fn read_forward(
    mut r: OwnedReadHalf,
    tx: mpsc::Sender<(Instant, Vec<u8>)>,
    mut dir: Direction,
) {
    let mut out = Stamper {
        tx,
        rng: SmallRng::seed_from_u64(dir.seed),
        last_due: Instant::now(),
    };
    let counts = &dir.shared.stats.messages;
    let mut splitter = FrameSplitter::default();
    let mut faulter: Option<Faulter> = None;
    let mut reset_at: Option<Instant> = None;
    // The bytes of an opaque connection (raft-node's snapshot calls) while
    // replays are on, to send it again whole once it ends.
    let mut opaque: Option<Vec<u8>> = Some(Vec::new());
    let mut pieces = Vec::new();
    let mut frames = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let (slow, messages) = current(&mut dir.state);
        if let (Some(m), None) = (messages, &faulter) {
            faulter = Some(Faulter::new(SmallRng::seed_from_u64(dir.seed ^ m.seed)));
        }
        let mut bytes = Vec::new();
        let mut extra = Duration::ZERO;
        // The faults went off: what is held back goes now.
        if let (None, Some(held)) = (messages, faulter.as_mut()) {
            held.drain(counts, &mut frames);
        }
        let resettable = matches!(
            splitter.kind(),
            Some(StreamKind::RaftFrames | StreamKind::Http1 | StreamKind::Tls)
        );
        reset_at = match (messages.filter(|m| m.reset_ms > 0), faulter.as_mut()) {
            (Some(m), Some(f)) if resettable => {
                Some(reset_at.unwrap_or_else(|| Instant::now() + lifetime(m.reset_ms, f.rng())))
            }
            _ => None,
        };
        let held_due = faulter.as_ref().and_then(|f| f.next_due());
        if frames.is_empty() {
            tokio::select! {
                read = r.read(&mut buf) => {
                    let n = match read {
                        Ok(0) | Err(_) => 0,
                        Ok(n) => n,
                    };
                    if n == 0 {
                        // The bytes held while sniffing still go through.
                        splitter.finish(&mut pieces);
                        for p in pieces.drain(..) {
                            if let Piece::Raw(b) = p {
                                bytes.extend_from_slice(&b);
                            }
                        }
                        let _ = out.send(bytes, slow, extra).await;
                        let replayed = match (messages, faulter.as_mut(), opaque.take()) {
                            (Some(m), Some(f), Some(log))
                                if m.replay > 0
                                    && !log.is_empty()
                                    && splitter.kind() == Some(StreamKind::Other) =>
                            {
                                Some((log, lifetime(m.reset_ms.max(500), f.rng())))
                            }
                            _ => None,
                        };
                        if let Some((log, after)) = replayed {
                            tokio::spawn(replay_connection(
                                log,
                                after,
                                dir.upstream,
                                dir.state.clone(),
                                dir.shared.clone(),
                            ));
                        }
                        return;
                    }
                    splitter.push(&buf[..n], messages.is_some(), &mut pieces);
                    if let Some(k) = splitter.kind() {
                        let _ = dir.kind.set(k);
                    }
                    // Kept only while the connection may still be replayed:
                    // opaque, faulted from its start, and not too long.
                    opaque = opaque.filter(|log| {
                        messages.is_some()
                            && matches!(splitter.kind(), None | Some(StreamKind::Other))
                            && log.len() + n <= MAX_REPLAYED_CONNECTION
                    });
                    if let Some(log) = opaque.as_mut() {
                        log.extend_from_slice(&buf[..n]);
                    }
                    for p in pieces.drain(..) {
                        match p {
                            // Most reads are one raw piece: moved, not copied.
                            Piece::Raw(b) if bytes.is_empty() => bytes = b,
                            Piece::Raw(b) => bytes.extend_from_slice(&b),
                            Piece::Magic => {
                                bytes.extend_from_slice(MAGIC);
                                if let (Some(m), Some(f)) = (messages, faulter.as_mut()) {
                                    let old = replay_frames(&dir.shared.ring(), m.replay, f.rng(), counts);
                                    frames.extend(old);
                                }
                            }
                            Piece::Frame(frame) => match (messages, faulter.as_mut()) {
                                (Some(m), Some(f)) => {
                                    dir.shared.ring().record(frame.clone(), Instant::now());
                                    f.on_frame(&m, frame, Instant::now(), counts, &mut frames);
                                }
                                _ => frames.push(frame),
                            },
                        }
                        for fr in frames.drain(..) {
                            bytes.extend_from_slice(&fr);
                        }
                    }
                    if let (Some(m), Some(f), Some(true)) = (messages, faulter.as_mut(), splitter.kind().map(StreamKind::chunked)) {
                        if stalls(&m, f.rng()) {
                            extra = Duration::from_millis(m.delay_ms);
                            counts.add(Count::StalledChunks, 1);
                        }
                    }
                }
                _ = sleep_until_some(held_due) => {
                    if let Some(f) = faulter.as_mut() {
                        f.release_due(Instant::now(), counts, &mut frames);
                    }
                }
                _ = sleep_until_some(reset_at) => {
                    counts.add(Count::Resets, 1);
                    return;
                }
                changed = dir.state.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
        for fr in frames.drain(..) {
            bytes.extend_from_slice(&fr);
        }
        if !out.send(bytes, slow, extra).await {
            return;
        }
    }
}

/// Sleeps until `at`, or for ever if there is none.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Delivers queued pieces when due, parking while the link is held.
async fn deliver(
    mut rx: mpsc::Receiver<(Instant, Vec<u8>)>,
    mut w: OwnedWriteHalf,
    mut state: watch::Receiver<LinkState>,
    shared: Arc<Shared>,
    epoch: u64,
) {
    while let Some((due, buf)) = rx.recv().await {
        if !wait_while_held(&mut state, epoch).await {
            return;
        }
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
            // The link may have been cut while this piece was in flight.
            if !wait_while_held(&mut state, epoch).await {
                return;
            }
        }
        if w.write_all(&buf).await.is_err() {
            return;
        }
        shared
            .stats
            .bytes
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
    }
}

/// All link proxies of a cluster, changed together.
pub struct Network {
    links: BTreeMap<(u64, u64), LinkProxy>,
}

impl Network {
    /// Starts one proxy per ordered pair of distinct nodes in `listen`.
    pub async fn start(listen: &BTreeMap<u64, SocketAddr>, seed: u64) -> Result<Self> {
        let mut links = BTreeMap::new();
        for &from in listen.keys() {
            for (&to, &addr) in listen {
                if from != to {
                    let link_seed = seed ^ (from << 32) ^ to;
                    links.insert(
                        (from, to),
                        LinkProxy::start(from, to, addr, link_seed).await?,
                    );
                }
            }
        }
        Ok(Network { links })
    }

    /// The address node `from` uses for peer `to`.
    pub fn addr(&self, from: u64, to: u64) -> Option<SocketAddr> {
        self.links.get(&(from, to)).map(|l| l.addr())
    }

    /// One link's proxy.
    pub fn link(&self, from: u64, to: u64) -> Option<&LinkProxy> {
        self.links.get(&(from, to))
    }

    /// Every directed link, ascending.
    pub fn link_ids(&self) -> Vec<(u64, u64)> {
        self.links.keys().copied().collect()
    }

    /// The links held now (by anyone).
    pub fn held_links(&self) -> BTreeSet<(u64, u64)> {
        self.links
            .iter()
            .filter(|(_, l)| l.is_held())
            .map(|(k, _)| *k)
            .collect()
    }

    /// `holder` holds exactly the `blocked` links, in one step: links it
    /// held before and not now are released (a new cut replaces its last
    /// one); other holders' links stay held. With `sever`, connections on
    /// links `holder` newly holds are closed too.
    pub fn cut(&self, holder: Holder, blocked: &BTreeSet<(u64, u64)>, sever: bool) {
        for (key, link) in &self.links {
            if blocked.contains(key) {
                if link.hold(holder) && sever {
                    link.sever();
                }
            } else {
                link.release(holder);
            }
        }
    }

    /// `holder` lets every link go.
    pub fn uncut(&self, holder: Holder) {
        for link in self.links.values() {
            link.release(holder);
        }
    }

    /// Sets or clears the slowness of every link.
    pub fn set_slow(&self, slow: Option<Slowness>) {
        for link in self.links.values() {
            link.set_slow(slow);
        }
    }

    /// Sets the message faults on exactly `links` (clears them elsewhere).
    pub fn set_messages(&self, links: &BTreeSet<(u64, u64)>, faults: Option<MessageFaults>) {
        for (key, link) in &self.links {
            link.set_messages(faults.filter(|_| links.contains(key)));
        }
    }

    /// Clears every fault of every link (the end of a run).
    pub fn heal(&self) {
        for link in self.links.values() {
            link.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::frames::tests::{decode_stream, frame};

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    /// A server that reports the bytes each connection (numbered from 1)
    /// sends it, and when it ends (an empty report).
    async fn sink_server() -> (SocketAddr, mpsc::UnboundedReceiver<(u64, Vec<u8>)>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut no = 0;
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                no += 1;
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => {
                                let _ = tx.send((no, Vec::new()));
                                return;
                            }
                            Ok(n) => {
                                let _ = tx.send((no, buf[..n].to_vec()));
                            }
                        }
                    }
                });
            }
        });
        (addr, rx)
    }

    /// Collects what connection `conn` delivers until `done` says so.
    async fn collect(
        rx: &mut mpsc::UnboundedReceiver<(u64, Vec<u8>)>,
        conn: u64,
        done: impl Fn(&[u8]) -> bool,
    ) -> Vec<u8> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(&got) {
            let (no, bytes) = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .unwrap_or_else(|_| panic!("connection {conn} delivered only {got:?}"))
                .unwrap();
            if no == conn {
                got.extend_from_slice(&bytes);
            }
        }
        got
    }

    /// Whether `bytes` hold the magic and at least `n` whole frames.
    fn has_frames(bytes: &[u8], n: usize) -> bool {
        let mut rest = match bytes.strip_prefix(&MAGIC[..]) {
            Some(r) => r,
            None => return false,
        };
        let mut count = 0;
        while rest.len() >= 4 {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            if rest.len() < 4 + len {
                break;
            }
            rest = &rest[4 + len..];
            count += 1;
        }
        count >= n
    }

    fn peer_stream(ns: impl IntoIterator<Item = u64>) -> Vec<u8> {
        let mut s = MAGIC.to_vec();
        for n in ns {
            s.extend_from_slice(&frame(n, false));
        }
        s
    }

    fn faults() -> MessageFaults {
        MessageFaults {
            duplicate: 0.0,
            reorder: 0.0,
            reorder_depth: 1,
            delay: 0.0,
            delay_ms: 50,
            replay: 0,
            reset_ms: 0,
            append_lag_ms: 0,
            seed: 9,
        }
    }

    async fn roundtrip(s: &mut TcpStream, msg: &[u8], within: Duration) -> Option<Vec<u8>> {
        s.write_all(msg).await.ok()?;
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(within, s.read_exact(&mut got))
            .await
            .ok()?
            .ok()?;
        Some(got)
    }

    fn slow(delay_ms: f64, loss: f64) -> Option<Slowness> {
        Some(Slowness {
            delay_ms,
            jitter_ms: 0.0,
            loss,
        })
    }

    #[tokio::test]
    async fn pass_forwards_bytes_both_ways() {
        let up = echo_server().await;
        let p = LinkProxy::start(1, 2, up, 7).await.unwrap();
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        let got = roundtrip(&mut s, b"hello", Duration::from_secs(10)).await;
        assert_eq!(got.as_deref(), Some(&b"hello"[..]));
    }

    #[tokio::test]
    async fn hold_stalls_an_existing_connection_until_released() {
        let up = echo_server().await;
        let p = LinkProxy::start(1, 2, up, 7).await.unwrap();
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert!(roundtrip(&mut s, b"a", Duration::from_secs(10))
            .await
            .is_some());
        p.hold("test");
        assert!(
            roundtrip(&mut s, b"b", Duration::from_millis(300))
                .await
                .is_none(),
            "a held link forwarded bytes"
        );
        p.release("test");
        // The held byte is delivered after the release, then the echo returns.
        let mut got = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut got))
            .await
            .expect("held bytes were not delivered after the release")
            .unwrap();
        assert_eq!(&got, b"b");
    }

    #[tokio::test]
    async fn hold_accepts_new_connections_but_forwards_nothing() {
        let up = echo_server().await;
        let p = LinkProxy::start(1, 2, up, 7).await.unwrap();
        p.hold("test");
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert!(roundtrip(&mut s, b"x", Duration::from_millis(300))
            .await
            .is_none());
        p.release("test");
        let mut got = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut got))
            .await
            .expect("connection accepted while held never came through")
            .unwrap();
        assert_eq!(&got, b"x");
    }

    #[tokio::test]
    async fn a_link_passes_only_when_every_holder_let_it_go() {
        let up = echo_server().await;
        let p = LinkProxy::start(1, 2, up, 7).await.unwrap();
        assert!(p.hold("partition"));
        assert!(!p.hold("partition"), "already held by it");
        assert!(p.hold("vote-crash"));
        p.release("partition");
        assert!(p.is_held());
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert!(roundtrip(&mut s, b"x", Duration::from_millis(300))
            .await
            .is_none());
        p.release("vote-crash");
        assert!(!p.is_held());
        let mut got = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut got))
            .await
            .expect("released link stayed held")
            .unwrap();
    }

    #[tokio::test]
    async fn sever_closes_open_connections() {
        let up = echo_server().await;
        let p = LinkProxy::start(1, 2, up, 7).await.unwrap();
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert!(roundtrip(&mut s, b"a", Duration::from_secs(10))
            .await
            .is_some());
        p.sever();
        let mut buf = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("severed connection stayed open");
        assert!(matches!(r, Ok(0) | Err(_)));
        // New connections work again.
        let mut s2 = TcpStream::connect(p.addr()).await.unwrap();
        assert!(roundtrip(&mut s2, b"c", Duration::from_secs(10))
            .await
            .is_some());
    }

    #[tokio::test]
    async fn slow_delays_each_chunk_at_least_by_the_minimum() {
        let up = echo_server().await;
        let p = LinkProxy::start(1, 2, up, 7).await.unwrap();
        p.set_slow(slow(100.0, 0.0));
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        let start = Instant::now();
        assert!(roundtrip(&mut s, b"a", Duration::from_secs(10))
            .await
            .is_some());
        // Both directions cross the slow link: at least two delays. Only a
        // lower bound is asserted; an upper bound would be flaky on busy CPUs.
        assert!(start.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn total_loss_costs_the_retransmission_penalty_but_delivers() {
        let up = echo_server().await;
        let p = LinkProxy::start(1, 2, up, 7).await.unwrap();
        p.set_slow(slow(0.0, 1.0));
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        let start = Instant::now();
        assert!(roundtrip(&mut s, b"a", Duration::from_secs(10))
            .await
            .is_some());
        assert!(start.elapsed() >= LOSS_PENALTY * 2);
    }

    #[tokio::test]
    async fn a_duplicated_frame_arrives_twice_through_the_proxy() {
        let (up, mut rx) = sink_server().await;
        let p = LinkProxy::start(1, 2, up, 7).await.unwrap();
        p.set_messages(Some(MessageFaults {
            duplicate: 1.0,
            ..faults()
        }));
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        // Written a byte at a time: the magic and the frames arrive split.
        for b in peer_stream(1..=3) {
            s.write_all(&[b]).await.unwrap();
        }
        let got = collect(&mut rx, 1, |b| has_frames(b, 6)).await;
        assert_eq!(decode_stream(&got), vec![1, 1, 2, 2, 3, 3]);
        assert_eq!(p.message_tally().duplicated, 3);
    }

    #[tokio::test]
    async fn an_opaque_connection_is_sent_again_whole_on_a_new_connection_after_it_ends() {
        let (up, mut rx) = sink_server().await;
        let p = LinkProxy::start(1, 2, up, 7).await.unwrap();
        p.set_messages(Some(MessageFaults {
            replay: 4,
            reset_ms: 500,
            ..faults()
        }));
        // An HTTP/2 preface and a body: neither a peer stream nor HTTP/1.
        let request = [&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..], &[7u8; 3000][..]].concat();
        let mut first = TcpStream::connect(p.addr()).await.unwrap();
        first.write_all(&request).await.unwrap();
        let got = collect(&mut rx, 1, |b| b.len() >= request.len()).await;
        assert_eq!(got, request);
        drop(first);
        // A second connection, opened by the proxy alone, carries the same
        // bytes (its lifetime draw: 0.25 to 0.75 s later).
        let again = collect(&mut rx, 2, |b| b.len() >= request.len()).await;
        assert_eq!(again, request);
        assert_eq!(p.message_tally().replayed_connections, 1);
    }

    #[tokio::test]
    async fn a_peer_stream_or_an_unfaulted_connection_is_never_sent_again() {
        let (up, mut rx) = sink_server().await;
        let p = LinkProxy::start(1, 2, up, 7).await.unwrap();
        let mut plain = TcpStream::connect(p.addr()).await.unwrap();
        plain.write_all(b"PRI * HTTP/2.0").await.unwrap();
        collect(&mut rx, 1, |b| b.len() >= 14).await;
        drop(plain);
        p.set_messages(Some(MessageFaults {
            replay: 4,
            reset_ms: 500,
            ..faults()
        }));
        let mut peer = TcpStream::connect(p.addr()).await.unwrap();
        peer.write_all(&peer_stream(1..=3)).await.unwrap();
        collect(&mut rx, 2, |b| has_frames(b, 3)).await;
        drop(peer);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(p.message_tally().replayed_connections, 0);
        assert!(rx.try_recv().into_iter().all(|(no, _)| no <= 2));
    }

    #[tokio::test]
    async fn after_a_reconnect_old_frames_arrive_first_on_the_new_connection() {
        let (up, mut rx) = sink_server().await;
        let p = LinkProxy::start(1, 2, up, 7).await.unwrap();
        p.set_messages(Some(MessageFaults {
            replay: 4,
            ..faults()
        }));
        let mut first = TcpStream::connect(p.addr()).await.unwrap();
        first.write_all(&peer_stream(1..=10)).await.unwrap();
        let got = collect(&mut rx, 1, |b| has_frames(b, 10)).await;
        assert_eq!(decode_stream(&got), (1..=10).collect::<Vec<_>>());
        drop(first);
        let mut second = TcpStream::connect(p.addr()).await.unwrap();
        second.write_all(&peer_stream(100..=102)).await.unwrap();
        let got = collect(&mut rx, 2, |b| has_frames(b, 7)).await;
        let ns = decode_stream(&got);
        let (old, new) = ns.split_at(4);
        assert!(old.iter().all(|n| (1..=10).contains(n)), "{ns:?}");
        assert!(old.windows(2).all(|w| w[0] < w[1]), "oldest first: {ns:?}");
        assert_eq!(new, &[100, 101, 102]);
        let t = p.message_tally();
        assert_eq!((t.replayed, t.replayed_appends), (4, 4));
        // The next fault window replays frames of the one before it.
        p.set_messages(None);
        p.set_messages(Some(MessageFaults {
            replay: 2,
            ..faults()
        }));
        drop(second);
        let mut third = TcpStream::connect(p.addr()).await.unwrap();
        third.write_all(&peer_stream([200])).await.unwrap();
        let got = collect(&mut rx, 3, |b| has_frames(b, 3)).await;
        let ns = decode_stream(&got);
        assert!(ns[..2].iter().all(|&n| n < 200), "{ns:?}");
        assert_eq!(ns[2], 200);
    }

    #[tokio::test]
    async fn a_faulted_peer_connection_is_reset_and_counted() {
        let (up, mut rx) = sink_server().await;
        let p = LinkProxy::start(1, 2, up, 7).await.unwrap();
        p.set_messages(Some(MessageFaults {
            reset_ms: 20,
            ..faults()
        }));
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        s.write_all(&peer_stream([1])).await.unwrap();
        let mut buf = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("the proxy never reset the connection");
        assert!(matches!(r, Ok(0) | Err(_)));
        // The upstream side was closed too.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (no, bytes) = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .expect("the upstream side stayed open")
                .unwrap();
            if no == 1 && bytes.is_empty() {
                break;
            }
        }
        assert_eq!(p.message_tally().resets, 1);
    }

    #[tokio::test]
    async fn other_streams_pass_unchanged_under_message_faults() {
        let up = echo_server().await;
        let p = LinkProxy::start(1, 2, up, 7).await.unwrap();
        p.set_messages(Some(MessageFaults {
            duplicate: 1.0,
            reorder: 0.5,
            delay: 0.5,
            replay: 8,
            reset_ms: 20,
            ..faults()
        }));
        // An HTTP/2 preface, as a snapshot's gRPC connection opens.
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        let got = roundtrip(&mut s, preface, Duration::from_secs(10)).await;
        assert_eq!(got.as_deref(), Some(&preface[..]));
        // Outlives several reset lifetimes: such streams are never reset.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let got = roundtrip(&mut s, b"more", Duration::from_secs(10)).await;
        assert_eq!(got.as_deref(), Some(&b"more"[..]));
        assert_eq!(p.message_tally(), MessageTally::default());
    }

    #[tokio::test]
    async fn etcd_http_chunks_stall_but_pass_unchanged() {
        let up = echo_server().await;
        let p = LinkProxy::start(1, 2, up, 7).await.unwrap();
        p.set_messages(Some(MessageFaults {
            delay: 1.0,
            delay_ms: 10,
            ..faults()
        }));
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        let req = b"GET /raft/stream/message/2 HTTP/1.1\r\nHost: x\r\n\r\n";
        let got = roundtrip(&mut s, req, Duration::from_secs(10)).await;
        assert_eq!(got.as_deref(), Some(&req[..]));
        // The request going and the echo coming back each stalled.
        assert!(p.message_tally().stalled_chunks >= 2);
    }

    #[tokio::test]
    async fn switching_message_faults_off_releases_held_frames() {
        let (up, mut rx) = sink_server().await;
        let p = LinkProxy::start(1, 2, up, 7).await.unwrap();
        p.set_messages(Some(MessageFaults {
            delay: 1.0,
            delay_ms: 3_600_000,
            ..faults()
        }));
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        s.write_all(&peer_stream([1, 2])).await.unwrap();
        // Both held for an hour: once the counter says so, switch off.
        let deadline = Instant::now() + Duration::from_secs(10);
        while p.message_tally().delayed < 2 {
            assert!(Instant::now() < deadline, "frames were not held");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        p.set_messages(None);
        let got = collect(&mut rx, 1, |b| has_frames(b, 2)).await;
        assert_eq!(decode_stream(&got), vec![1, 2]);
    }

    async fn three_node_net() -> Network {
        let mut listen = BTreeMap::new();
        for id in 1..=3 {
            listen.insert(id, echo_server().await);
        }
        Network::start(&listen, 1).await.unwrap()
    }

    #[tokio::test]
    async fn partition_holds_exactly_the_blocked_links() {
        let net = three_node_net().await;
        let blocked: BTreeSet<(u64, u64)> = [(1, 2), (2, 1)].into_iter().collect();
        net.cut("partition", &blocked, false);
        assert_eq!(net.held_links(), blocked);
        let mut open = TcpStream::connect(net.addr(1, 3).unwrap()).await.unwrap();
        assert!(roundtrip(&mut open, b"z", Duration::from_secs(10))
            .await
            .is_some());
        let mut cut = TcpStream::connect(net.addr(1, 2).unwrap()).await.unwrap();
        assert!(roundtrip(&mut cut, b"z", Duration::from_millis(300))
            .await
            .is_none());
        net.uncut("partition");
        assert!(net.held_links().is_empty());
    }

    #[tokio::test]
    async fn a_new_cut_replaces_the_holders_last_one_and_keeps_the_others() {
        let net = three_node_net().await;
        let set = |v: &[(u64, u64)]| v.iter().copied().collect::<BTreeSet<_>>();
        net.cut("vote-crash", &set(&[(3, 1)]), false);
        net.cut("partition", &set(&[(1, 2), (2, 1)]), false);
        net.cut("partition", &set(&[(2, 3), (3, 2)]), false);
        assert_eq!(net.held_links(), set(&[(2, 3), (3, 2), (3, 1)]));
        net.uncut("partition");
        assert_eq!(net.held_links(), set(&[(3, 1)]));
    }

    #[tokio::test]
    async fn slowness_and_message_faults_are_layers_of_their_own() {
        let net = three_node_net().await;
        let set = |v: &[(u64, u64)]| v.iter().copied().collect::<BTreeSet<_>>();
        net.cut("partition", &set(&[(1, 2)]), false);
        net.set_slow(slow(50.0, 0.0));
        net.set_messages(&set(&[(2, 1)]), Some(faults()));
        let l12 = net.link(1, 2).unwrap().faults();
        assert!(l12.held() && l12.slow.is_some() && l12.messages.is_none());
        assert_eq!(net.link(2, 1).unwrap().faults().messages, Some(faults()));
        net.set_slow(None);
        assert!(net.link(1, 2).unwrap().is_held(), "slow's end kept the cut");
        net.set_messages(&BTreeSet::new(), None);
        assert!(net.link(1, 2).unwrap().is_held());
        net.uncut("partition");
        net.heal();
        assert!(net
            .link_ids()
            .iter()
            .all(|&(a, b)| net.link(a, b).unwrap().faults().is_clear()));
    }
}
