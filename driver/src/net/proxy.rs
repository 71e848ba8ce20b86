//! TCP proxies between nodes: one per directed link i -> j, so the driver
//! owns every byte between nodes and can pass, hold, delay or lose it.
//!
//! Node i's `--peer j` points at the proxy of link i -> j. The connections
//! on that proxy are the ones node i opened to node j, so holding the link
//! stalls both directions of those connections (requests and replies),
//! which is what "i cannot reach j" means for an RPC system.

use anyhow::{Context, Result};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// What a link does with the bytes it carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum LinkMode {
    /// Forward at once.
    Pass,
    /// Blackhole: accept connections but forward nothing, in either
    /// direction, existing connections included, until the mode changes.
    Hold,
    /// Delay each chunk by `delay_ms` +- `jitter_ms` (uniform), and lose a
    /// `loss` fraction of chunks (each lost chunk is delayed by
    /// [`LOSS_PENALTY`], as TCP retransmission would).
    Slow {
        /// Mean one-way delay in milliseconds.
        delay_ms: f64,
        /// Half-width of the uniform jitter around the mean, in milliseconds.
        jitter_ms: f64,
        /// Fraction of chunks lost, in [0, 1].
        loss: f64,
    },
}

#[derive(Debug, Clone)]
struct LinkState {
    mode: LinkMode,
    /// Bumped to sever every connection opened before.
    epoch: u64,
}

/// Counters of one link, for tests and the driver log.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Bytes forwarded (both directions).
    pub bytes: AtomicU64,
}

/// The proxy of one directed link `from -> to`.
pub struct LinkProxy {
    /// Node whose traffic enters this proxy.
    pub from: u64,
    /// Node the proxy forwards to.
    pub to: u64,
    addr: SocketAddr,
    state: watch::Sender<LinkState>,
    stats: Arc<LinkStats>,
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
            mode: LinkMode::Pass,
            epoch: 0,
        });
        let stats = Arc::new(LinkStats::default());
        let accept_task = tokio::spawn(accept_loop(listener, upstream, rx, stats.clone(), seed));
        Ok(LinkProxy {
            from,
            to,
            addr,
            state,
            stats,
            accept_task,
        })
    }

    /// The address node `from` must use to reach node `to`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The current mode.
    pub fn mode(&self) -> LinkMode {
        self.state.borrow().mode.clone()
    }

    /// Sets the mode; existing connections follow it from their next chunk.
    pub fn set_mode(&self, mode: LinkMode) {
        self.state.send_modify(|s| s.mode = mode);
    }

    /// Closes every connection currently open through this link.
    pub fn sever(&self) {
        self.state.send_modify(|s| s.epoch += 1);
    }

    /// Traffic counters.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
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
    stats: Arc<LinkStats>,
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
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = inbound.set_nodelay(true);
        tokio::spawn(serve_connection(
            inbound,
            upstream,
            state.clone(),
            stats.clone(),
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
            (s.mode == LinkMode::Hold, s.epoch)
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

async fn serve_connection(
    inbound: TcpStream,
    upstream: SocketAddr,
    mut state: watch::Receiver<LinkState>,
    stats: Arc<LinkStats>,
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
    let forward = pump(in_r, out_w, state.clone(), stats.clone(), epoch, seed);
    let backward = pump(out_r, in_w, state.clone(), stats, epoch, seed ^ 1);
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
    // Either direction ending (EOF, error, sever) closes the whole
    // connection: gRPC does not use half-closed TCP.
    tokio::select! {
        _ = forward => {}
        _ = backward => {}
        _ = severed => {}
    }
}

fn sample_delay(mode: &LinkMode, rng: &mut SmallRng) -> Duration {
    match mode {
        LinkMode::Slow {
            delay_ms,
            jitter_ms,
            loss,
        } => {
            let jitter = if *jitter_ms > 0.0 {
                rng.gen_range(-jitter_ms..=*jitter_ms)
            } else {
                0.0
            };
            let mut d = Duration::from_secs_f64((delay_ms + jitter).max(0.0) / 1000.0);
            if *loss > 0.0 && rng.gen_bool(loss.clamp(0.0, 1.0)) {
                d += LOSS_PENALTY;
            }
            d
        }
        _ => Duration::ZERO,
    }
}

/// Copies one direction: a reader stamps each chunk with its due time, a
/// writer parks while the link is held and delivers chunks in order when due.
async fn pump(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    state: watch::Receiver<LinkState>,
    stats: Arc<LinkStats>,
    epoch: u64,
    seed: u64,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE_CHUNKS);
    let reader_state = state.clone();
    let reader = async move {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut last_due = Instant::now();
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            buf.truncate(n);
            let mode = reader_state.borrow().mode.clone();
            // A byte stream keeps its order: a chunk is never due before the
            // one read before it.
            let due = (Instant::now() + sample_delay(&mode, &mut rng)).max(last_due);
            last_due = due;
            if tx.send((due, buf)).await.is_err() {
                return;
            }
        }
    };
    let writer = async move {
        let mut state = state;
        while let Some((due, buf)) = rx.recv().await {
            if !wait_while_held(&mut state, epoch).await {
                return;
            }
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
                // The link may have been cut while this chunk was in flight.
                if !wait_while_held(&mut state, epoch).await {
                    return;
                }
            }
            if w.write_all(&buf).await.is_err() {
                return;
            }
            stats.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
    };
    tokio::select! {
        _ = reader => {}
        _ = writer => {}
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

    /// Holds exactly the `blocked` links and passes all others, in one step;
    /// with `sever`, connections on newly blocked links are closed too.
    pub fn partition(&self, blocked: &BTreeSet<(u64, u64)>, sever: bool) {
        for (key, link) in &self.links {
            if blocked.contains(key) {
                link.set_mode(LinkMode::Hold);
                if sever {
                    link.sever();
                }
            } else {
                link.set_mode(LinkMode::Pass);
            }
        }
    }

    /// Sets every link to `mode`.
    pub fn set_all(&self, mode: LinkMode) {
        for link in self.links.values() {
            link.set_mode(mode.clone());
        }
    }

    /// Passes every link.
    pub fn heal(&self) {
        self.set_all(LinkMode::Pass);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    async fn roundtrip(s: &mut TcpStream, msg: &[u8], within: Duration) -> Option<Vec<u8>> {
        s.write_all(msg).await.ok()?;
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(within, s.read_exact(&mut got))
            .await
            .ok()?
            .ok()?;
        Some(got)
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
    async fn hold_stalls_an_existing_connection_until_healed() {
        let up = echo_server().await;
        let p = LinkProxy::start(1, 2, up, 7).await.unwrap();
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert!(roundtrip(&mut s, b"a", Duration::from_secs(10))
            .await
            .is_some());
        p.set_mode(LinkMode::Hold);
        assert!(
            roundtrip(&mut s, b"b", Duration::from_millis(300))
                .await
                .is_none(),
            "a held link forwarded bytes"
        );
        p.set_mode(LinkMode::Pass);
        // The held byte is delivered after the heal, then the echo returns.
        let mut got = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut got))
            .await
            .expect("held bytes were not delivered after heal")
            .unwrap();
        assert_eq!(&got, b"b");
    }

    #[tokio::test]
    async fn hold_accepts_new_connections_but_forwards_nothing() {
        let up = echo_server().await;
        let p = LinkProxy::start(1, 2, up, 7).await.unwrap();
        p.set_mode(LinkMode::Hold);
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert!(roundtrip(&mut s, b"x", Duration::from_millis(300))
            .await
            .is_none());
        p.set_mode(LinkMode::Pass);
        let mut got = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut got))
            .await
            .expect("connection accepted while held never came through")
            .unwrap();
        assert_eq!(&got, b"x");
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
        p.set_mode(LinkMode::Slow {
            delay_ms: 100.0,
            jitter_ms: 0.0,
            loss: 0.0,
        });
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
        p.set_mode(LinkMode::Slow {
            delay_ms: 0.0,
            jitter_ms: 0.0,
            loss: 1.0,
        });
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        let start = Instant::now();
        assert!(roundtrip(&mut s, b"a", Duration::from_secs(10))
            .await
            .is_some());
        assert!(start.elapsed() >= LOSS_PENALTY * 2);
    }

    #[tokio::test]
    async fn partition_holds_exactly_the_blocked_links() {
        let mut listen = BTreeMap::new();
        for id in 1..=3 {
            listen.insert(id, echo_server().await);
        }
        let net = Network::start(&listen, 1).await.unwrap();
        let blocked: BTreeSet<(u64, u64)> = [(1, 2), (2, 1)].into_iter().collect();
        net.partition(&blocked, false);
        for from in 1..=3u64 {
            for to in 1..=3u64 {
                if from == to {
                    continue;
                }
                let link = net.link(from, to).unwrap();
                let expect = if blocked.contains(&(from, to)) {
                    LinkMode::Hold
                } else {
                    LinkMode::Pass
                };
                assert_eq!(link.mode(), expect, "link {from}->{to}");
            }
        }
        let mut open = TcpStream::connect(net.addr(1, 3).unwrap()).await.unwrap();
        assert!(roundtrip(&mut open, b"z", Duration::from_secs(10))
            .await
            .is_some());
        let mut cut = TcpStream::connect(net.addr(1, 2).unwrap()).await.unwrap();
        assert!(roundtrip(&mut cut, b"z", Duration::from_millis(300))
            .await
            .is_none());
        net.heal();
        assert_eq!(net.link(1, 2).unwrap().mode(), LinkMode::Pass);
    }
}
