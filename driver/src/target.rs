//! The system under test: raft-node (the default) or etcd. A [`Deployment`]
//! starts either as three (or N) processes on loopback, with or without the
//! driver's link proxies between them, and hands out workload clients and
//! the nemesis context, so that `run` and `bench` drive both the same way.

use crate::client::{open_channels, Client, RaftKvClient};
use crate::cluster::{self, Cluster, NodeSpec};
use crate::etcd;
use crate::nemesis::NemesisCtx;
use crate::proxy::Network;
use crate::run::{find_node_bin, node_version, UsageError};
use crate::schedule::NemesisKind;
use anyhow::Result;
use clap::ValueEnum;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::Channel;

/// Which system the driver tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// raft-node, this project's Raft KV store.
    #[default]
    Raft,
    /// etcd from PATH (3.4 or later), through its gRPC KV API.
    Etcd,
}

impl TargetKind {
    /// The name used on the command line and in bench.json.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Raft => "raft",
            TargetKind::Etcd => "etcd",
        }
    }

    /// The fault kinds this target supports (etcd has no driver-side admin
    /// calls for leadership transfer or membership, and no latency knob).
    pub fn nemeses(self) -> &'static [NemesisKind] {
        match self {
            TargetKind::Raft => &NemesisKind::ALL,
            TargetKind::Etcd => &[
                NemesisKind::Pause,
                NemesisKind::Kill,
                NemesisKind::Partition,
            ],
        }
    }
}

/// How reads are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReadConsistency {
    /// Through the leader's quorum (etcd's default Range, raft-node's reads).
    #[default]
    Linearizable,
    /// From any member's local state (etcd `serializable: true`); may be stale.
    Serializable,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// raft-node or etcd.
    pub kind: TargetKind,
    /// Number of nodes.
    pub nodes: usize,
    /// raft-node binary (raft only; default next to raft-driver).
    pub node_bin: Option<PathBuf>,
    /// Extra arguments for every process (raft-node flags, or etcd flags).
    pub extra_args: Vec<String>,
    /// Election timeout in ms (etcd's default when absent: 1000).
    pub election_timeout_ms: Option<u64>,
    /// Heartbeat in ms (etcd's default when absent: 100).
    pub heartbeat_ms: Option<u64>,
    /// Read mode of the workload clients (etcd only).
    pub read_consistency: ReadConsistency,
    /// Put the driver's link proxies between the nodes (needed for
    /// partitions; `bench` leaves them out so that both targets talk
    /// directly).
    pub proxied: bool,
    /// Whether starting a partition also closes the connections it cuts.
    pub sever_on_partition: bool,
    /// Seed of the link proxies.
    pub seed: u64,
}

/// A started cluster of the target.
pub struct Deployment {
    /// Which system runs.
    pub kind: TargetKind,
    /// Node ids, ascending.
    pub ids: Vec<u64>,
    /// The processes.
    pub cluster: Arc<Mutex<Cluster>>,
    /// The link proxies (empty when not proxied).
    pub net: Arc<Network>,
    /// What nemeses act on.
    pub ctx: Arc<NemesisCtx>,
    /// The binary that runs.
    pub bin: PathBuf,
    /// Its `--version` line.
    pub version: String,
    /// How each node was started (for test.json).
    pub nodes: Value,
    channels: BTreeMap<u64, Channel>,
    read_consistency: ReadConsistency,
    _routers: Option<etcd::peer_router::PeerRouters>,
}

fn free_addrs(ids: &[u64]) -> Result<BTreeMap<u64, SocketAddr>> {
    ids.iter()
        .map(|&id| Ok((id, cluster::free_local_addr()?)))
        .collect()
}

impl Deployment {
    /// Starts the target's processes under `dir` (data in dir/data/nN,
    /// logs in dir/nodes/nN.log); does not wait for a leader.
    pub async fn start(spec: &TargetSpec, dir: &Path) -> Result<Deployment> {
        match spec.kind {
            TargetKind::Raft => Self::start_raft(spec, dir).await,
            TargetKind::Etcd => Self::start_etcd(spec, dir).await,
        }
    }

    async fn start_raft(spec: &TargetSpec, dir: &Path) -> Result<Deployment> {
        let bin = find_node_bin(spec.node_bin.as_deref())?;
        let version = node_version(&bin)?;
        let ids: Vec<u64> = (1..=spec.nodes as u64).collect();
        let listen = free_addrs(&ids)?;
        let net = Arc::new(if spec.proxied {
            start_network_keeping_ports(&listen, spec.seed).await?
        } else {
            Network::start(&BTreeMap::new(), spec.seed).await?
        });
        let specs: Vec<NodeSpec> = ids
            .iter()
            .map(|&id| {
                let (data_dir, log_path) = cluster::node_paths(dir, id);
                let peers = ids
                    .iter()
                    .filter(|&&p| p != id)
                    .map(|&p| (p, net.addr(id, p).unwrap_or(listen[&p])))
                    .collect();
                NodeSpec {
                    id,
                    listen: listen[&id],
                    peers,
                    data_dir,
                    log_path,
                }
            })
            .collect();
        let mut extra = Vec::new();
        if let Some(ms) = spec.election_timeout_ms {
            extra.extend(["--election-timeout-ms".to_string(), ms.to_string()]);
        }
        if let Some(ms) = spec.heartbeat_ms {
            extra.extend(["--heartbeat-ms".to_string(), ms.to_string()]);
        }
        extra.extend(spec.extra_args.iter().cloned());
        let nodes = nodes_json(&specs);
        let mut c = Cluster::new(bin.clone(), extra, specs);
        c.start_all()?;
        let cluster = Arc::new(Mutex::new(c));
        let channels = open_channels(&listen)?;
        let ctx = Arc::new(NemesisCtx {
            cluster: cluster.clone(),
            net: net.clone(),
            channels: channels.clone(),
            sever_on_partition: spec.sever_on_partition,
            status_probe: None,
        });
        Ok(Deployment {
            kind: TargetKind::Raft,
            ids,
            cluster,
            net,
            ctx,
            bin,
            version,
            nodes,
            channels,
            read_consistency: spec.read_consistency,
            _routers: None,
        })
    }

    async fn start_etcd(spec: &TargetSpec, dir: &Path) -> Result<Deployment> {
        let bin = etcd::find_etcd().map_err(UsageError)?;
        let version = node_version(&bin)?;
        let ids: Vec<u64> = (1..=spec.nodes as u64).collect();
        let client = free_addrs(&ids)?;
        let peer_listen = free_addrs(&ids)?;
        let (net, routers, advertised) = if spec.proxied {
            let (mut routers, listeners) = etcd::peer_router::PeerRouters::bind(&ids).await?;
            let net = Arc::new(start_network_keeping_ports(&peer_listen, spec.seed).await?);
            routers.start(listeners, &peer_listen, net.clone());
            let adv: BTreeMap<u64, SocketAddr> = ids
                .iter()
                .map(|&id| (id, routers.addr(id).unwrap_or(peer_listen[&id])))
                .collect();
            (net, Some(routers), adv)
        } else {
            let net = Arc::new(Network::start(&BTreeMap::new(), spec.seed).await?);
            (net, None, peer_listen.clone())
        };
        let members: BTreeMap<u64, etcd::members::Member> = ids
            .iter()
            .map(|&id| {
                (
                    id,
                    etcd::members::Member {
                        client: client[&id],
                        peer_listen: peer_listen[&id],
                        peer_advertised: advertised[&id],
                    },
                )
            })
            .collect();
        let token = format!(
            "raft-driver-{}-{}",
            std::process::id(),
            dir.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        let settings = etcd::members::Settings {
            election_timeout_ms: spec.election_timeout_ms.unwrap_or(1000),
            heartbeat_ms: spec.heartbeat_ms.unwrap_or(100),
            token,
            extra_args: spec.extra_args.clone(),
        };
        let specs: Vec<NodeSpec> = ids
            .iter()
            .map(|&id| {
                let (data_dir, log_path) = cluster::node_paths(dir, id);
                NodeSpec {
                    id,
                    listen: client[&id],
                    peers: BTreeMap::new(),
                    data_dir,
                    log_path,
                }
            })
            .collect();
        for s in &specs {
            // etcd wants its data dir private (0700).
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&s.data_dir)?;
        }
        let mut nodes = nodes_json(&specs);
        if let Value::Array(list) = &mut nodes {
            for n in list.iter_mut() {
                let id = n["id"].as_u64().unwrap_or(0);
                if let Some(m) = members.get(&id) {
                    n["peer_listen"] = json!(m.peer_listen.to_string());
                    n["peer_advertised"] = json!(m.peer_advertised.to_string());
                }
            }
        }
        let command_line = etcd::members::command_line(members, settings);
        let mut c = Cluster::with_command_line(bin.clone(), specs, command_line);
        c.start_all()?;
        let cluster = Arc::new(Mutex::new(c));
        let channels = open_channels(&client)?;
        let ctx = Arc::new(NemesisCtx {
            cluster: cluster.clone(),
            net: net.clone(),
            channels: channels.clone(),
            sever_on_partition: spec.sever_on_partition,
            status_probe: Some(Arc::new(etcd::status::EtcdStatusProbe::new(
                channels.clone(),
            ))),
        });
        Ok(Deployment {
            kind: TargetKind::Etcd,
            ids,
            cluster,
            net,
            ctx,
            bin,
            version,
            nodes,
            channels,
            read_consistency: spec.read_consistency,
            _routers: routers,
        })
    }

    /// A workload client whose first node is `home`; `client_id` names its
    /// raft-node write session (nonzero, unique per client).
    pub fn client(&self, home: u64, client_id: u64, op_timeout: Duration) -> Box<dyn Client> {
        match self.kind {
            TargetKind::Raft => Box::new(RaftKvClient::open(
                &self.channels,
                home,
                client_id,
                op_timeout,
            )),
            TargetKind::Etcd => Box::new(etcd::client::EtcdClient::open(
                &self.channels,
                home,
                op_timeout,
                self.read_consistency,
            )),
        }
    }

    /// A client for `bench`: like [`Deployment::client`], but a raft-node
    /// client stays with the leader once found instead of starting every
    /// operation at home (etcd members forward to their leader themselves).
    pub fn bench_client(&self, home: u64, client_id: u64, op_timeout: Duration) -> Box<dyn Client> {
        match self.kind {
            TargetKind::Raft => {
                Box::new(RaftKvClient::open(&self.channels, home, client_id, op_timeout).sticky())
            }
            TargetKind::Etcd => self.client(home, client_id, op_timeout),
        }
    }

    /// Kills every process and reaps them.
    pub fn shutdown(&self) {
        self.cluster
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .shutdown();
    }
}

fn nodes_json(specs: &[NodeSpec]) -> Value {
    Value::Array(
        specs
            .iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "listen": s.listen.to_string(),
                    "peers": s.peers.iter().map(|(p, a)| (p.to_string(), a.to_string())).collect::<BTreeMap<_, _>>(),
                    "data_dir": s.data_dir,
                })
            })
            .collect(),
    )
}

/// Starts the proxies while every node's port is held by a listener, so
/// that a proxy's port-0 bind cannot take a node's port (which made a node
/// exit with "Address already in use" in about one run in fifteen).
async fn start_network_keeping_ports(
    listen: &BTreeMap<u64, SocketAddr>,
    seed: u64,
) -> Result<Network> {
    // A port that cannot be re-bound now is simply not held; the node will
    // report it if it is really taken.
    let held: Vec<std::net::TcpListener> = listen
        .values()
        .filter_map(|a| std::net::TcpListener::bind(a).ok())
        .collect();
    let net = Network::start(listen, seed).await;
    drop(held);
    net
}
