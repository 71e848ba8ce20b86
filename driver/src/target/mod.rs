//! The system under test, behind one protocol (Jepsen's DB protocol): a
//! [`Target`] validates the options it gives meaning to, sets up a cluster
//! of processes on loopback (with or without the driver's link proxies
//! between them) and hands back a [`Deployment`]; the deployment's
//! [`NodeApi`] gives workload clients, node status and the optional
//! capabilities (admin calls, failpoints), and gathers what the nodes told
//! about themselves for the checkers. raft-node (`raft/`) and etcd
//! (`etcd/`) are the two implementations; nothing outside this folder asks
//! which one it has.

pub mod cluster;
pub mod etcd;
pub mod raft;

use crate::net::proxy::Network;
use crate::workload::client::{BoxFuture, Client};
use anyhow::Result;
use clap::ValueEnum;
use cluster::{Cluster, NodeSpec};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which system the driver tests, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// raft-node, this project's Raft KV store.
    #[default]
    Raft,
    /// etcd from PATH (3.4 or later), through its gRPC KV API.
    Etcd,
}

impl TargetKind {
    /// The implementation of this target.
    pub fn target(self) -> &'static dyn Target {
        match self {
            TargetKind::Raft => &raft::RaftTarget,
            TargetKind::Etcd => &etcd::EtcdTarget,
        }
    }

    /// The name used on the command line, in test.json and bench.json.
    pub fn name(self) -> &'static str {
        self.target().name()
    }
}

/// How reads are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReadConsistency {
    /// Through the leader's quorum (etcd's default Range, raft-node's reads).
    #[default]
    Linearizable,
    /// From any member's local state (etcd `serializable: true`); may be stale.
    Serializable,
}

/// The options a target may give meaning to, checked by
/// [`Target::validate`] before anything starts.
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    /// A known defect to switch on in every node.
    pub bug: Option<String>,
    /// How the workload's reads are served.
    pub read_consistency: ReadConsistency,
    /// Extra arguments for every node process.
    pub node_args: Vec<String>,
    /// Election timeout in ms (the target's default when absent).
    pub election_timeout_ms: Option<u64>,
    /// Heartbeat interval in ms (the target's default when absent).
    pub heartbeat_ms: Option<u64>,
    /// Cluster id (targets without one ignore it).
    pub cluster_id: Option<u64>,
    /// The node binary (the target's own default when absent).
    pub node_bin: Option<PathBuf>,
    /// Mutual TLS between nodes and for every client (`run --tls`).
    pub tls: bool,
    /// Keep the node's own snapshot interval instead of the frequent one
    /// the fault runs use to exercise InstallSnapshot (`bench` measures
    /// the node as shipped, as it does etcd).
    pub shipped_snapshot_interval: bool,
}

/// Whether a gRPC transport error proves the request never left this
/// process (so it certainly did not happen): the clients' and the admin
/// calls' line between "failed" and "unknown".
pub(crate) fn never_sent(status: &tonic::Status) -> bool {
    let m = status.message().to_ascii_lowercase();
    status.code() == tonic::Code::Unavailable
        && (m.contains("connection refused")
            || m.contains("tcp connect error")
            || m.contains("error trying to connect"))
}

/// What to start.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// Number of nodes.
    pub nodes: usize,
    /// The options, already validated by the target.
    pub options: TargetOptions,
    /// Put the driver's link proxies between the nodes (needed for
    /// partitions; `bench` leaves them out so that every target talks
    /// directly).
    pub proxied: bool,
    /// Seed of the link proxies.
    pub seed: u64,
    /// Extra environment of each node's process, by node id (the clock
    /// fault's libfaketime).
    pub node_env: BTreeMap<u64, Vec<(String, String)>>,
    /// Entries per append the nodes send where the run drew small batches
    /// (`raft::small_batches`); None: the target's own setting.
    pub max_append_entries: Option<usize>,
}

/// Jepsen's DB protocol: what the harness needs to know about a system
/// before it runs, and how to set up a cluster of it.
pub trait Target: Send + Sync {
    /// The name on the command line (`--target`).
    fn name(&self) -> &'static str;

    /// What can be done to it beyond what the harness does to any process
    /// and link (the nemeses check these; `--nemesis all` means every kind
    /// the target's capabilities allow).
    fn capabilities(&self) -> Capabilities;

    /// The checkers its runs bring beyond linearizability, completeness and
    /// recovery (names of `raft_checker::verdict` checkers, e.g.
    /// `election-safety`), recorded in test.json so that a re-check of the
    /// run folder runs the same ones.
    fn checkers(&self) -> &'static [&'static str];

    /// Checks the options this target gives meaning to (a `--bug` only
    /// raft-node has, a read mode only etcd has...); the message is for the
    /// user (exit code 2).
    fn validate(&self, opts: &TargetOptions) -> Result<(), String>;

    /// The binary that will run, or why there is none (exit code 2).
    fn binary(&self, opts: &TargetOptions) -> Result<PathBuf, String>;

    /// A prefix for run folder names ("" for the default target).
    fn label(&self) -> String {
        format!("{}-", self.name())
    }

    /// Starts the target's processes under `dir` (data in `dir/data/nN`,
    /// logs in `dir/nodes/nN.log`); does not wait for a leader.
    fn setup<'a>(
        &'a self,
        spec: &'a TargetSpec,
        dir: &'a Path,
    ) -> BoxFuture<'a, Result<Deployment>>;
}

/// What a target lets the harness do beyond pausing, killing and
/// restarting its processes, cutting its links and losing what it did not
/// sync (which work on any process).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// An admin call that hands leadership to a given node.
    pub leader_transfer: bool,
    /// Admin calls that remove a node and add it back (learner, voter).
    pub membership: bool,
    /// Failpoints a node can be started with or armed at run time (crash
    /// right after a vote, during a snapshot install...).
    pub failpoints: bool,
    /// The binary reads the time through libc's clock_gettime, so
    /// libfaketime preloaded into it moves its wall and monotonic clocks
    /// (the clock fault).
    pub libc_clock: bool,
    /// It keeps its state in files under its data dir, so a power cut of
    /// that filesystem can lose what it did not sync.
    pub data_dir_files: bool,
    /// Latency and loss on its peer links are worth injecting (its peer
    /// traffic goes through the driver's link proxies).
    pub slow_links: bool,
    /// Its peer messages travel as `RAFTMSG1` frames the link proxies can
    /// duplicate, reorder and replay message by message.
    pub framed_peer_messages: bool,
    /// Failpoints that crash a node at a hard moment (after an append,
    /// during a snapshot install, ...), for the crash-point fault.
    pub crash_points: &'static [&'static str],
}

/// One node's answer to a status probe.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    /// Node id.
    pub id: u64,
    /// "leader", "follower", "candidate", "pre-candidate", ...
    pub role: String,
    /// Current term.
    pub term: u64,
    /// Leader the node knows of (0 if none).
    pub leader_id: u64,
}

/// What one node says its replica holds, for the end-of-run convergence
/// check (`run/convergence.rs`): once the clients stopped and the faults
/// healed, every node should reach one point with one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    /// Node id.
    pub id: u64,
    /// Its role, as [`NodeStatus::role`].
    pub role: String,
    /// Its current term.
    pub term: u64,
    /// The point its state machine reached: raft-node's applied index,
    /// etcd's revision. Digests compare only at equal points.
    pub at: u64,
    /// The commit point it knows of, where the target says.
    pub commit: Option<u64>,
    /// The voters of its configuration, where the target says.
    pub voters: Option<Vec<u64>>,
    /// The learners of its configuration, where the target says.
    pub learners: Option<Vec<u64>>,
    /// A digest of its state at `at` (raft-node's state digest, etcd's
    /// HashKV), where the target has one.
    pub digest: Option<String>,
}

/// Calls every node at once (one call per channel, keyed by node id, each
/// bounded by `timeout`); the answers that came, by node id.
pub(crate) async fn ask_each<T, F, Fut>(
    channels: &BTreeMap<u64, tonic::transport::Channel>,
    timeout: Duration,
    call: F,
) -> Vec<(u64, T)>
where
    F: Fn(tonic::transport::Channel) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send + 'static,
    T: Send + 'static,
{
    let calls: Vec<_> = channels
        .iter()
        .map(|(&id, ch)| {
            let fut = call(ch.clone());
            (id, tokio::spawn(tokio::time::timeout(timeout, fut)))
        })
        .collect();
    let mut out = Vec::new();
    for (id, h) in calls {
        if let Ok(Ok(Ok(r))) = h.await {
            out.push((id, r.into_inner()));
        }
    }
    out
}

/// An administrative request a target may support.
#[derive(Debug, Clone)]
pub enum AdminReq {
    /// Hand leadership to this node.
    Transfer(u64),
    /// Remove this node from the configuration.
    Remove(u64),
    /// Add this node (at this peer address) as a learner.
    AddLearner(u64, String),
    /// Add (or promote) this node (at this peer address) as a voter.
    AddVoter(u64, String),
}

/// How one admin call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminReply {
    /// Done.
    Ok,
    /// The target cannot do this at all (do not retry).
    Unsupported(String),
    /// It may or may not have happened.
    Unknown(String),
    /// Not done now (not the leader, busy, no answer): may be retried.
    Retry(String),
}

/// What the harness asks of a running cluster through the target's own API.
pub trait NodeApi: Send + Sync {
    /// A workload client whose first node is `home`; `client_id` names its
    /// write session where the target has sessions (nonzero, unique).
    fn client(&self, home: u64, client_id: u64, op_timeout: Duration) -> Box<dyn Client>;

    /// A client for `bench`: like [`NodeApi::client`], but it may stay with
    /// the node that served it last, as a production client would.
    fn bench_client(&self, home: u64, client_id: u64, op_timeout: Duration) -> Box<dyn Client> {
        self.client(home, client_id, op_timeout)
    }

    /// Every node's status that answered within `timeout`.
    fn status_all(&self, timeout: Duration) -> BoxFuture<'_, Vec<NodeStatus>>;

    /// Every node's [`ReplicaState`] that answered within `timeout`.
    fn replica_states(&self, timeout: Duration) -> BoxFuture<'_, Vec<ReplicaState>>;

    /// Sends an admin request to `node` (the caller finds the leader).
    fn admin<'a>(&'a self, node: u64, req: &'a AdminReq) -> BoxFuture<'a, AdminReply> {
        let _ = (node, req);
        Box::pin(async { AdminReply::Unsupported("this target has no admin calls".into()) })
    }

    /// Arms or disarms failpoint `name` on `node` at run time: Ok, or the
    /// reason (prefixed `unsupported:` when the target has none).
    fn set_failpoint<'a>(
        &'a self,
        node: u64,
        name: &'a str,
        armed: bool,
    ) -> BoxFuture<'a, Result<(), String>> {
        let _ = (node, name, armed);
        Box::pin(async { Err("unsupported: this target has no failpoints".into()) })
    }

    /// The extra arguments that start a node with failpoint `name` armed
    /// from its first instant (None: the target cannot).
    fn failpoint_boot_args(&self, name: &str) -> Option<Vec<String>> {
        let _ = name;
        None
    }

    /// Whether a node process that exited with `code` did so on purpose of
    /// the harness (a failpoint's crash), not by a fault of its own.
    fn is_intended_exit(&self, code: Option<i32>) -> bool {
        let _ = code;
        false
    }

    /// Gathers what the nodes told about themselves into the run folder as
    /// `nodes/nN.events.jsonl` (role changes, broken invariants), after the
    /// processes stopped. raft-node writes these files itself; other
    /// targets translate their logs here.
    fn collect_events(&self, dir: &Path, ids: &[u64]) -> Result<()> {
        let _ = (dir, ids);
        Ok(())
    }
}

/// A started cluster of a target.
pub struct Deployment {
    /// The target's name.
    pub target: &'static str,
    /// Node ids, ascending.
    pub ids: Vec<u64>,
    /// The processes.
    pub cluster: Arc<Mutex<Cluster>>,
    /// The link proxies (empty when not proxied).
    pub net: Arc<Network>,
    /// The target's API.
    pub api: Arc<dyn NodeApi>,
    /// The binary that runs.
    pub bin: PathBuf,
    /// Its `--version` line.
    pub version: String,
    /// How each node was started (for test.json).
    pub nodes: Value,
    /// Held for the deployment's life (e.g. etcd's peer routers).
    pub _guards: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

impl Deployment {
    /// A workload client whose first node is `home`.
    pub fn client(&self, home: u64, client_id: u64, op_timeout: Duration) -> Box<dyn Client> {
        self.api.client(home, client_id, op_timeout)
    }

    /// A client for `bench` (see [`NodeApi::bench_client`]).
    pub fn bench_client(&self, home: u64, client_id: u64, op_timeout: Duration) -> Box<dyn Client> {
        self.api.bench_client(home, client_id, op_timeout)
    }

    /// Kills every process and reaps them.
    pub fn shutdown(&self) {
        self.cluster
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .shutdown();
    }
}

/// One loopback address per node, each held for the deployment's life
/// (keep the holds in [`Deployment::_guards`]): see [`cluster::PortHold`].
pub fn held_addrs(ids: &[u64]) -> Result<(BTreeMap<u64, SocketAddr>, Vec<cluster::PortHold>)> {
    let holds = ids
        .iter()
        .map(|_| cluster::PortHold::new())
        .collect::<Result<Vec<_>>>()?;
    let addrs = ids
        .iter()
        .zip(&holds)
        .map(|(&id, h)| (id, h.addr()))
        .collect();
    Ok((addrs, holds))
}

/// A test hook: with `RAFT_DRIVER_SQUAT_PORTS=1` the driver tries to take
/// every node address in `addrs` as another process's outgoing connection
/// would (a bind without SO_REUSEADDR) right before the nodes start, and
/// keeps what it got for the deployment's life. With the ports held
/// ([`held_addrs`]) it gets none; with ports merely found free, it got
/// them all and every node failed with "Address already in use".
pub fn squat_hook(addrs: &BTreeMap<u64, SocketAddr>) -> Vec<Box<dyn std::any::Any + Send + Sync>> {
    if std::env::var("RAFT_DRIVER_SQUAT_PORTS").as_deref() != Ok("1") {
        return Vec::new();
    }
    addrs
        .values()
        .filter_map(|&a| match bind_without_reuse(a) {
            Ok(l) => {
                tracing::warn!("test hook: took {a} before its node started");
                Some(Box::new(l) as Box<dyn std::any::Any + Send + Sync>)
            }
            Err(e) => {
                tracing::info!("test hook: could not take {a}: {e}");
                None
            }
        })
        .collect()
}

fn bind_without_reuse(a: SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.set_reuseaddr(false)?;
    s.bind(a)?;
    Ok(s)
}

/// The holds as deployment guards.
pub fn hold_guards(
    holds: Vec<cluster::PortHold>,
) -> impl Iterator<Item = Box<dyn std::any::Any + Send + Sync>> {
    holds
        .into_iter()
        .map(|h| Box::new(h) as Box<dyn std::any::Any + Send + Sync>)
}

/// test.json's description of how each node was started.
pub fn nodes_json(specs: &[NodeSpec]) -> Value {
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
/// exit with "Address already in use" in about one run in fifteen). Ports
/// from [`held_addrs`] are held for the whole run anyway; this also covers
/// addresses chosen otherwise.
pub async fn start_network_keeping_ports(
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

/// Runs `bin --version` (at most 10 s) and returns its first line, or why
/// it could not (a message for the user).
pub fn binary_version(bin: &Path) -> Result<String, String> {
    let mut child = std::process::Command::new(bin)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for {}: {e}", bin.display())),
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{} --version did not finish", bin.display()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("reading {} --version: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} --version failed ({}): {}",
            bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string())
}
