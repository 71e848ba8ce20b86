//! A router in front of each etcd member's peer port. etcd members dial
//! each other at the URLs in the cluster membership, which are the same for
//! every sender, so one address per directed link (as raft-node gets) is
//! impossible. Instead every peer request names its sender's URLs in the
//! `X-PeerURLs` header: the router reads the request head, finds the
//! sender, and passes the connection through the driver's link proxy for
//! (sender, member), so that partitions hold etcd's peer traffic exactly as
//! they hold raft-node's. Requests without the header (version probes) go
//! straight to the member.

use crate::net::proxy::Network;
use anyhow::Result;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Longest request head the router reads before giving up on finding the
/// sender (etcd's heads are a few hundred bytes).
const MAX_HEAD: usize = 16 * 1024;
/// How long a new connection may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// The routers of all members; dropping it stops them.
pub struct PeerRouters {
    addrs: BTreeMap<u64, SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl PeerRouters {
    /// Binds one router per member on a free loopback port; routing starts
    /// with [`PeerRouters::start`] once the link proxies exist.
    pub async fn bind(ids: &[u64]) -> Result<(Self, Vec<TcpListener>)> {
        let mut addrs = BTreeMap::new();
        let mut listeners = Vec::new();
        for &id in ids {
            let l = TcpListener::bind("127.0.0.1:0").await?;
            addrs.insert(id, l.local_addr()?);
            listeners.push(l);
        }
        Ok((
            PeerRouters {
                addrs,
                tasks: Vec::new(),
            },
            listeners,
        ))
    }

    /// The address other members dial for member `id`.
    pub fn addr(&self, id: u64) -> Option<SocketAddr> {
        self.addrs.get(&id).copied()
    }

    /// Starts routing: connections to member `id`'s router go through the
    /// link proxy (sender, id) of `net` once the sender is known.
    pub fn start(
        &mut self,
        listeners: Vec<TcpListener>,
        peer_listen: &BTreeMap<u64, SocketAddr>,
        net: Arc<Network>,
    ) {
        let senders: Arc<BTreeMap<String, u64>> = Arc::new(
            self.addrs
                .iter()
                .map(|(id, a)| (format!("http://{a}"), *id))
                .collect(),
        );
        for ((&id, _), listener) in self.addrs.iter().zip(listeners) {
            let direct = peer_listen[&id];
            let (net, senders) = (net.clone(), senders.clone());
            self.tasks.push(tokio::spawn(async move {
                while let Ok((conn, _)) = listener.accept().await {
                    let (net, senders) = (net.clone(), senders.clone());
                    tokio::spawn(async move {
                        let _ = route(conn, id, direct, &net, &senders).await;
                    });
                }
            }));
        }
    }
}

impl Drop for PeerRouters {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The sender named by the `X-PeerURLs` header of a request head.
pub fn sender_of(head: &[u8], senders: &BTreeMap<String, u64>) -> Option<u64> {
    let text = String::from_utf8_lossy(head);
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if !name.trim().eq_ignore_ascii_case("x-peerurls") {
            return None;
        }
        value
            .split(',')
            .find_map(|url| senders.get(url.trim().trim_end_matches('/')).copied())
    })
}

async fn route(
    mut conn: TcpStream,
    to: u64,
    direct: SocketAddr,
    net: &Network,
    senders: &BTreeMap<String, u64>,
) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            let n = conn.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<(), std::io::Error>(())
    };
    match tokio::time::timeout(HEAD_TIMEOUT, read_head).await {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    }
    let upstream = sender_of(&head, senders)
        .and_then(|from| net.addr(from, to))
        .unwrap_or(direct);
    let mut up = TcpStream::connect(upstream).await?;
    up.set_nodelay(true)?;
    up.write_all(&head).await?;
    tokio::io::copy_bidirectional(&mut conn, &mut up).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sender_is_found_by_its_advertised_peer_url() {
        let senders: BTreeMap<String, u64> = [
            ("http://127.0.0.1:4001".to_string(), 1),
            ("http://127.0.0.1:4002".to_string(), 2),
        ]
        .into_iter()
        .collect();
        let head = b"GET /raft/stream/msgapp/abc HTTP/1.1\r\nHost: x\r\nX-Server-From: 1f\r\nX-PeerURLs: http://127.0.0.1:4002\r\n\r\n";
        assert_eq!(sender_of(head, &senders), Some(2));
        let head = b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(sender_of(head, &senders), None);
        let head =
            b"POST /raft HTTP/1.1\r\nx-peerurls: http://10.0.0.1:1,http://127.0.0.1:4001\r\n\r\n";
        assert_eq!(sender_of(head, &senders), Some(1));
    }
}
