//! Outgoing peer links: one long-lived peer stream per peer (framed
//! messages over TCP, see [`crate::peer_link`]), and a gRPC InstallSnapshot
//! call per snapshot. The core loop never waits on the network: when a link
//! is slow, held by a partition or down, messages are dropped, which Raft
//! tolerates (it retries by heartbeats and timeouts). With
//! [`Transport::with_tls`] both go over mutual TLS.

use crate::peer_link::PeerLink;
use crate::raft::{Message, MessageKind, NodeId};
use crate::wire;
use raft_proto::raftpb::raft_client::RaftClient;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// Snapshot data per InstallSnapshot chunk.
const SNAPSHOT_CHUNK: usize = 1 << 20;
/// Covers the TCP connect and the HTTP/2 handshake of a snapshot call.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

struct Link {
    addr: String,
    out: PeerLink,
    snap_tx: mpsc::Sender<Message>,
}

/// The set of outgoing links, owned by the core loop.
pub struct Transport {
    cluster_id: u64,
    rt: Handle,
    links: HashMap<NodeId, Link>,
    tls: Option<TransportTls>,
    /// Peers whose address is fixed (`--pin-peer-addrs`): a membership
    /// change that names another address for them does not re-address them.
    pinned: HashSet<NodeId>,
}

/// How a transport dials its peers under TLS.
#[derive(Clone)]
pub struct TransportTls {
    /// Peer streams.
    pub peer: tokio_rustls::TlsConnector,
    /// Snapshot calls.
    pub grpc: tonic::transport::ClientTlsConfig,
}

impl TransportTls {
    /// Both, from a TLS dir's files.
    pub fn new(files: &crate::tls::TlsFiles) -> Result<Self, String> {
        Ok(TransportTls {
            peer: tokio_rustls::TlsConnector::from(files.peer_client_config()?),
            grpc: files.tonic_client(),
        })
    }
}

impl Transport {
    /// Creates an empty transport that spawns its link tasks on `rt`.
    pub fn new(cluster_id: u64, rt: Handle) -> Self {
        Transport {
            cluster_id,
            rt,
            links: HashMap::new(),
            tls: None,
            pinned: HashSet::new(),
        }
    }

    /// Dials every peer (streams and snapshot calls) over TLS.
    pub fn with_tls(mut self, tls: TransportTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Adds a peer whose address no membership change replaces: a
    /// harness that routes each directed link through a proxy of its own
    /// gives every node its own address for each peer, while a change
    /// carries one address for all.
    pub fn pin_peer(&mut self, id: NodeId, addr: String) {
        self.pinned.remove(&id);
        self.set_peer(id, addr);
        self.pinned.insert(id);
    }

    /// Adds or re-addresses a peer (not a pinned one).
    pub fn set_peer(&mut self, id: NodeId, addr: String) {
        if self.pinned.contains(&id) || self.links.get(&id).is_some_and(|l| l.addr == addr) {
            return;
        }
        let (snap_tx, snap_rx) = mpsc::channel(1);
        let out = match &self.tls {
            None => PeerLink::spawn(addr.clone(), &self.rt),
            Some(t) => PeerLink::spawn_tls(addr.clone(), &self.rt, t.peer.clone()),
        };
        let grpc_tls = self.tls.as_ref().map(|t| t.grpc.clone());
        self.rt.spawn(run_snapshots(
            addr.clone(),
            self.cluster_id,
            snap_rx,
            grpc_tls,
        ));
        self.links.insert(id, Link { addr, out, snap_tx });
    }

    /// Drops a peer; its tasks end when their queues close.
    pub fn remove_peer(&mut self, id: NodeId) {
        self.links.remove(&id);
    }

    /// The address this node uses for `id`, if known.
    pub fn addr(&self, id: NodeId) -> Option<&str> {
        self.links.get(&id).map(|l| l.addr.as_str())
    }

    /// Sends `m` to its destination without blocking; drops it when the
    /// destination is unknown or its link is backed up.
    pub fn send(&mut self, m: Message) {
        let Some(link) = self.links.get(&m.to) else {
            tracing::debug!(to = m.to, "no address for peer; message dropped");
            return;
        };
        if matches!(m.kind, MessageKind::InstallSnapshot { .. }) {
            // One snapshot in flight per peer; the core sends it again later.
            let _ = link.snap_tx.try_send(m);
            return;
        }
        if let Some(w) = wire::to_wire(self.cluster_id, m) {
            link.out.send(&w);
        }
    }
}

async fn connect(addr: &str, tls: Option<&ClientTlsConfig>) -> Option<Channel> {
    let ep = match tls {
        None => Endpoint::from_shared(format!("http://{addr}")).ok()?,
        Some(t) => Endpoint::from_shared(format!("https://{addr}"))
            .ok()?
            .tls_config(t.clone())
            .map_err(|e| tracing::warn!(error = %e, "snapshot channel: TLS settings refused"))
            .ok()?,
    }
    .tcp_nodelay(true)
    .connect_timeout(CONNECT_TIMEOUT);
    tokio::time::timeout(CONNECT_TIMEOUT, ep.connect())
        .await
        .ok()?
        .ok()
}

/// Streams snapshots to `addr` in chunks, one at a time.
async fn run_snapshots(
    addr: String,
    cluster_id: u64,
    mut rx: mpsc::Receiver<Message>,
    tls: Option<ClientTlsConfig>,
) {
    while let Some(m) = rx.recv().await {
        let chunks = wire::snapshot_chunks(cluster_id, &m, SNAPSHOT_CHUNK);
        let Some(channel) = connect(&addr, tls.as_ref()).await else {
            continue;
        };
        let mut client = RaftClient::new(channel);
        let n = chunks.len();
        match client.install_snapshot(tokio_stream::iter(chunks)).await {
            Ok(_) => tracing::info!(to = m.to, chunks = n, "snapshot sent"),
            Err(e) => tracing::warn!(to = m.to, error = %e, "snapshot send failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_peer_keeps_its_address_when_a_membership_change_names_another() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut t = Transport::new(1, rt.handle().clone());
        t.pin_peer(2, "127.0.0.1:1002".into());
        t.set_peer(3, "127.0.0.1:1003".into());
        // What a change that adds the nodes back at other addresses does.
        t.set_peer(2, "127.0.0.1:2002".into());
        t.set_peer(3, "127.0.0.1:2003".into());
        assert_eq!(t.addr(2), Some("127.0.0.1:1002"));
        assert_eq!(t.addr(3), Some("127.0.0.1:2003"));
    }
}
