//! raft-node: one member of a Raft key-value cluster.

use clap::Parser;
use raft_node::bugs::{Bug, Bugs};
use raft_node::failpoint::{self, Failpoint};
use raft_node::kv::KvStore;
use raft_node::loop_api::LoopHandle;
use raft_node::node_loop::{LoopConfig, NodeLoop};
use raft_node::peer_stream;
use raft_node::raft::{self, ConfState, InitialState, NodeId, Raft};
use raft_node::server::{KvService, PeerService};
use raft_node::storage::{Storage, StorageOptions};
use raft_node::transport::Transport;
use raft_proto::kvpb::kv_server::KvServer;
use raft_proto::raftpb::raft_server::RaftServer;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// How reads are made linearizable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReadMode {
    /// The leader confirms its leadership with a heartbeat round per batch of reads.
    ReadIndex,
    /// The leader serves reads while its lease (check-quorum) holds. Clock
    /// dependent: correct only while clocks drift less than the election
    /// timeout and no process is paused longer than the lease.
    Lease,
}

/// A member of a Raft key-value cluster.
#[derive(Debug, Parser)]
#[command(name = "raft-node", version, about)]
struct Args {
    /// This node's id (a positive integer, unique in the cluster).
    #[arg(long)]
    id: NodeId,
    /// Address to serve peers and clients on.
    #[arg(long, default_value = "127.0.0.1:7001")]
    listen: String,
    /// Directory for the log, hard state and snapshots (created if absent).
    #[arg(long)]
    data_dir: PathBuf,
    /// Another member, as ID=HOST:PORT (repeat for each). None: a one-node cluster.
    #[arg(long = "peer", value_parser = parse_peer)]
    peers: Vec<(NodeId, String)>,
    /// Identifies the cluster; messages from another cluster are refused.
    #[arg(long, default_value_t = 1)]
    cluster_id: u64,
    /// Minimum election timeout; each election waits a random time in [T, 2T).
    #[arg(long, default_value_t = 1000)]
    election_timeout_ms: u64,
    /// Interval between leader heartbeats.
    #[arg(long, default_value_t = 100)]
    heartbeat_ms: u64,
    /// Snapshot the state machine and compact the log every N applied entries (0: never).
    #[arg(long, default_value_t = 10_000)]
    snapshot_every: u64,
    /// How reads are made linearizable.
    #[arg(long, value_enum, default_value_t = ReadMode::ReadIndex)]
    read_mode: ReadMode,
    /// How long a client request waits for its outcome before "outcome unknown".
    #[arg(long, default_value_t = 5000)]
    request_timeout_ms: u64,
    /// Campaign without a pre-vote round (a node that was cut off then
    /// disrupts the cluster by raising the term when it returns).
    #[arg(long)]
    no_pre_vote: bool,
    /// Do not step down as leader without a majority's heartbeat answers,
    /// and do not ignore vote requests within a leader's lease.
    #[arg(long)]
    no_check_quorum: bool,
    /// Print a timestamped line to stderr at each step of a write's path
    /// (for scripts/write-path-breakdown.py; costs latency while on).
    #[arg(long)]
    trace_write_path: bool,
    /// Switch on a deliberate defect (stale-read, forget-vote, early-ack, no-fsync).
    #[arg(long = "bug")]
    bugs: Vec<Bug>,
    /// Arm a crash point from the start (crash-after-vote); tests can also
    /// arm one at run time with the Failpoint RPC.
    #[arg(long = "failpoint")]
    failpoints: Vec<Failpoint>,
}

fn parse_peer(s: &str) -> Result<(NodeId, String), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ID=HOST:PORT, got {s:?}"))?;
    let id: NodeId = id.parse().map_err(|_| format!("bad peer id in {s:?}"))?;
    if id == 0 {
        return Err("peer id 0 is reserved".into());
    }
    if addr.parse::<std::net::SocketAddr>().is_err() && !addr.contains(':') {
        return Err(format!("bad peer address in {s:?}"));
    }
    Ok((id, addr.to_string()))
}

/// A problem with the command line or the data dir: exit 2.
fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("raft-node: {msg}");
    ExitCode::from(2)
}

fn validate(a: &Args) -> Result<(), String> {
    if a.id == 0 {
        return Err("--id must be positive".into());
    }
    let mut ids: Vec<NodeId> = a.peers.iter().map(|p| p.0).collect();
    if ids.contains(&a.id) {
        return Err(format!("--peer lists this node's own id {}", a.id));
    }
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err("--peer lists an id twice".into());
    }
    if a.heartbeat_ms == 0 || a.election_timeout_ms < 2 * a.heartbeat_ms {
        return Err(
            "need --heartbeat-ms > 0 and --election-timeout-ms >= 2 x --heartbeat-ms".into(),
        );
    }
    if a.read_mode == ReadMode::Lease && a.no_check_quorum {
        return Err("--read-mode lease needs check-quorum (drop --no-check-quorum)".into());
    }
    if a.cluster_id == 0 {
        return Err("--cluster-id must be positive".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = validate(&args) {
        return usage(e);
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("raft-node: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    for p in &args.failpoints {
        failpoint::set(*p, true);
    }
    let bugs = Bugs::new(args.bugs.clone());
    if args.trace_write_path {
        raft_node::write_path_trace::enable();
    }
    let opts = StorageOptions {
        no_fsync: bugs.has(Bug::NoFsync),
        ..Default::default()
    };
    let (storage, rec) = match Storage::open(&args.data_dir, args.id, args.cluster_id, opts) {
        Ok(x) => x,
        Err(e) => return Ok(usage(format!("data dir {}: {e}", args.data_dir.display()))),
    };
    let mut kv = KvStore::new();
    let mut applied = 0;
    if let Some(s) = &rec.snapshot {
        kv.restore(&s.data)?;
        applied = s.meta.index;
    }
    let mut voters: Vec<NodeId> = args.peers.iter().map(|p| p.0).chain([args.id]).collect();
    voters.sort_unstable();
    let conf = rec.conf.clone().unwrap_or(ConfState {
        voters,
        ..Default::default()
    });
    tracing::info!(
        id = args.id,
        term = rec.hard_state.term,
        commit = rec.hard_state.commit,
        entries = rec.entries.len(),
        snapshot = applied,
        "recovered"
    );

    // Ticks are 10 ms (or the heartbeat, if shorter) so that timeouts keep
    // their resolution whatever the settings.
    let tick_ms = args.heartbeat_ms.min(10);
    let config = raft::Config {
        id: args.id,
        election_tick: args.election_timeout_ms / tick_ms,
        heartbeat_tick: (args.heartbeat_ms / tick_ms).max(1),
        pre_vote: !args.no_pre_vote,
        check_quorum: !args.no_check_quorum,
        lease_read: args.read_mode == ReadMode::Lease,
        seed: args.id ^ (std::process::id() as u64) << 16 ^ rand::random::<u64>(),
        ..Default::default()
    };
    // Membership changes in the log carry the addresses of the nodes they add.
    let conf_entries: Vec<_> = rec
        .entries
        .iter()
        .filter(|e| e.kind == raft::EntryKind::ConfChange)
        .cloned()
        .collect();
    let init = InitialState {
        hard_state: rec.hard_state,
        conf,
        snapshot: rec.snapshot,
        entries: rec.entries,
    };
    let core =
        Raft::new(config, init).map_err(|e| anyhow::anyhow!("cannot start the core: {e:?}"))?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = match rt.block_on(tokio::net::TcpListener::bind(&args.listen)) {
        Ok(l) => l,
        Err(e) => return Ok(usage(format!("cannot listen on {}: {e}", args.listen))),
    };
    tracing::info!(addr = %listener.local_addr()?, id = args.id, "listening");

    let mut transport = Transport::new(args.cluster_id, rt.handle().clone());
    for (id, addr) in &args.peers {
        transport.set_peer(*id, addr.clone());
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let cfg = LoopConfig {
        tick: Duration::from_millis(tick_ms),
        snapshot_every: args.snapshot_every,
        bugs,
    };
    let mut node = NodeLoop::new(args.id, core, storage, kv, applied, transport, cfg);
    node.learn_addresses(&conf_entries);
    let core_task = rt.spawn(node.run(rx));

    let handle = LoopHandle {
        tx,
        cluster_id: args.cluster_id,
        id: args.id,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
    };
    let serve = async move {
        // Peer streams are served by peer_stream; every other connection
        // (clients, snapshots) goes on to tonic.
        let (to_tonic, incoming) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(peer_stream::accept(listener, to_tonic, handle.clone()));
        let incoming = tokio_stream::wrappers::UnboundedReceiverStream::new(incoming);
        // The core loop only returns on a fatal error (its channel stays
        // open while the server runs).
        let core_failed = core_task;
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            Ok::<_, std::io::Error>(())
        };
        let server = tonic::transport::Server::builder()
            .add_service(
                RaftServer::new(PeerService(handle.clone())).max_decoding_message_size(256 << 20),
            )
            .add_service(KvServer::new(KvService(handle)))
            .serve_with_incoming(incoming);
        tokio::select! {
            r = server => r.map_err(anyhow::Error::from).map(|_| ExitCode::SUCCESS),
            r = core_failed => match r {
                Ok(Ok(())) => Ok(ExitCode::SUCCESS),
                Ok(Err(e)) => Err(e.context("the core loop stopped")),
                Err(_) => Err(anyhow::anyhow!("the core loop panicked")),
            },
            r = shutdown => { r?; tracing::info!("shutting down"); Ok(ExitCode::SUCCESS) }
        }
    };
    let code = rt.block_on(serve)?;
    // Do not wait for in-flight tasks: everything acknowledged is already durable.
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(code)
}
