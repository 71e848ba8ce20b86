//! Outgoing peer links: one long-lived peer stream per peer (framed
//! messages over TCP, see [`crate::peer_link`]), and a gRPC InstallSnapshot
//! call per snapshot. The core loop never waits on the network: when a link
//! is slow, held by a partition or down, messages are dropped, which Raft
//! tolerates (it retries by heartbeats and timeouts).

use crate::peer_link::PeerLink;
use crate::raft::{Message, MessageKind, NodeId};
use crate::wire;
use raft_proto::raftpb::raft_client::RaftClient;
use std::collections::HashMap;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};

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
}

impl Transport {
    /// Creates an empty transport that spawns its link tasks on `rt`.
    pub fn new(cluster_id: u64, rt: Handle) -> Self {
        Transport {
            cluster_id,
            rt,
            links: HashMap::new(),
        }
    }

    /// Adds or re-addresses a peer.
    pub fn set_peer(&mut self, id: NodeId, addr: String) {
        if self.links.get(&id).is_some_and(|l| l.addr == addr) {
            return;
        }
        let (snap_tx, snap_rx) = mpsc::channel(1);
        let out = PeerLink::spawn(addr.clone(), &self.rt);
        self.rt
            .spawn(run_snapshots(addr.clone(), self.cluster_id, snap_rx));
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

async fn connect(addr: &str) -> Option<Channel> {
    let ep = Endpoint::from_shared(format!("http://{addr}"))
        .ok()?
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT);
    tokio::time::timeout(CONNECT_TIMEOUT, ep.connect())
        .await
        .ok()?
        .ok()
}

/// Streams snapshots to `addr` in chunks, one at a time.
async fn run_snapshots(addr: String, cluster_id: u64, mut rx: mpsc::Receiver<Message>) {
    while let Some(m) = rx.recv().await {
        let chunks = wire::snapshot_chunks(cluster_id, &m, SNAPSHOT_CHUNK);
        let Some(channel) = connect(&addr).await else {
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
