//! raft-node: one member of a Raft key-value cluster.

use clap::Parser;
use raft_node::bugs::Bug;
use raft_node::cli::Args;
use raft_node::events::{self, EventLog};
use raft_node::failpoint;
use raft_node::kv::KvStore;
use raft_node::loop_api::LoopHandle;
use raft_node::node_loop::{LoopConfig, NodeLoop};
use raft_node::peer_stream;
use raft_node::raft::{self, ConfState, InitialState, Raft};
use raft_node::server::{KvService, PeerService};
use raft_node::storage::{Recovered, Storage, StorageOptions};
use raft_node::transport::{Transport, TransportTls};
use raft_proto::kvpb::kv_server::KvServer;
use raft_proto::raftpb::raft_server::RaftServer;
use std::process::ExitCode;
use std::time::Duration;

/// A problem with the command line or the data dir: exit 2.
fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("raft-node: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    // `raft-node --list-bugs` / `--list-failpoints`: the names, one per
    // line, for harnesses that try every one (raft-driver teeth); a bug's
    // line goes on with the node options it needs to be reached.
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if let [flag] = raw.as_slice() {
        let names: Option<Vec<String>> = match flag.as_str() {
            "--list-bugs" => Some(
                Bug::ALL
                    .iter()
                    .map(|b| {
                        std::iter::once(b.name())
                            .chain(b.needs().iter().copied())
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect(),
            ),
            "--list-failpoints" => Some(
                failpoint::Failpoint::ALL
                    .iter()
                    .map(|p| p.name().to_string())
                    .collect(),
            ),
            _ => None,
        };
        if let Some(names) = names {
            for n in names {
                println!("{n}");
            }
            return ExitCode::SUCCESS;
        }
    }
    let args = Args::parse();
    if let Err(e) = args.validate() {
        return usage(e);
    }
    if args.check_config {
        println!("raft-node: the configuration is valid");
        return ExitCode::SUCCESS;
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

/// The node's durable state, recovered.
struct Opened {
    storage: Storage,
    rec: Recovered,
    kv: KvStore,
    applied: u64,
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.events_file {
        match EventLog::open(path, args.id) {
            Ok(log) => events::install(log),
            Err(e) => return Ok(usage(format!("--events-file {}: {e}", path.display()))),
        }
    }
    for p in &args.failpoints {
        failpoint::set(*p, true);
    }
    if args.trace_write_path {
        raft_node::write_path_trace::enable();
    }
    let opened = match open_state(&args) {
        Ok(o) => o,
        Err(code) => return Ok(code),
    };
    let Opened {
        storage,
        rec,
        kv,
        applied,
    } = opened;
    // Membership changes in the log carry the addresses of the nodes they add.
    let conf_entries: Vec<_> = rec
        .entries
        .iter()
        .filter(|e| e.kind == raft::EntryKind::ConfChange)
        .cloned()
        .collect();
    let core = build_core(&args, rec)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.worker_threads.into())
        .enable_all()
        .build()?;
    let listener = match rt.block_on(tokio::net::TcpListener::bind(&args.listen)) {
        Ok(l) => l,
        Err(e) => return Ok(usage(format!("cannot listen on {}: {e}", args.listen))),
    };
    tracing::info!(addr = %listener.local_addr()?, id = args.id, "listening");

    let tls = match &args.tls_dir {
        None => None,
        Some(dir) => match raft_node::tls::TlsFiles::load(dir) {
            Ok(f) => Some(f),
            Err(e) => return Ok(usage(e)),
        },
    };
    let mut transport = Transport::new(args.cluster_id, rt.handle().clone());
    if let Some(files) = &tls {
        match TransportTls::new(files) {
            Ok(t) => transport = transport.with_tls(t),
            Err(e) => return Ok(usage(e)),
        }
    }
    for (id, addr) in &args.peers {
        if args.pin_peer_addrs {
            transport.pin_peer(*id, addr.clone());
        } else {
            transport.set_peer(*id, addr.clone());
        }
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let cfg = LoopConfig {
        tick: args.tick(),
        snapshot_every: args.snapshot_every,
        bugs: args.bug_set(),
    };
    let mut node = NodeLoop::new(args.id, core, storage, kv, applied, transport, cfg);
    node.learn_addresses(&conf_entries);
    let core_task = rt.spawn(node.run(rx));
    let handle = LoopHandle {
        tx,
        cluster_id: args.cluster_id,
        id: args.id,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        test_hooks: args.test_hooks,
        tls: tls.is_some(),
    };
    let code = match &tls {
        None => {
            // Peer streams are served by peer_stream; every other
            // connection (clients, snapshots) goes on to tonic.
            let (to_tonic, incoming) = tokio::sync::mpsc::unbounded_channel();
            rt.spawn(peer_stream::accept(listener, to_tonic, handle.clone()));
            rt.block_on(serve(incoming, handle, core_task))?
        }
        Some(files) => {
            let acceptor = match files.server_config() {
                Ok(c) => tokio_rustls::TlsAcceptor::from(c),
                Err(e) => return Ok(usage(e)),
            };
            tracing::info!(dir = %files.dir().display(), "mutual TLS on");
            let (to_tonic, incoming) = tokio::sync::mpsc::unbounded_channel();
            rt.spawn(peer_stream::accept_tls(
                listener,
                acceptor,
                to_tonic,
                handle.clone(),
            ));
            rt.block_on(serve(incoming, handle, core_task))?
        }
    };
    // Do not wait for in-flight tasks: everything acknowledged is already durable.
    rt.shutdown_timeout(Duration::from_millis(100));
    Ok(code)
}

/// Opens the data dir and restores the state machine from its snapshot;
/// an unusable data dir is exit code 2.
fn open_state(args: &Args) -> Result<Opened, ExitCode> {
    let bugs = args.bug_set();
    let opts = StorageOptions {
        no_fsync: bugs.has(Bug::NoFsync),
        replay_keeps_truncated: bugs.has(Bug::ReplayKeepsTruncated),
        ..Default::default()
    };
    let (storage, rec) = Storage::open(&args.data_dir, args.id, args.cluster_id, opts)
        .map_err(|e| usage(format!("data dir {}: {e}", args.data_dir.display())))?;
    let mut kv = KvStore::new();
    if bugs.has(Bug::SessionExpiryLocalClock) {
        kv.expire_sessions_by_local_clock(Duration::from_millis(args.election_timeout_ms));
    }
    let mut applied = 0;
    if let Some(s) = &rec.snapshot {
        kv.restore(&s.data).map_err(|e| {
            usage(format!(
                "data dir {}: snapshot: {e}",
                args.data_dir.display()
            ))
        })?;
        applied = s.meta.index;
    }
    let hs = rec.hard_state;
    let last_index = applied + rec.entries.len() as u64;
    tracing::info!(
        id = args.id,
        term = hs.term,
        commit = hs.commit,
        entries = rec.entries.len(),
        snapshot = applied,
        "recovered"
    );
    events::emit(
        "boot",
        &[
            ("term", hs.term.into()),
            ("vote", hs.vote.into()),
            ("commit", hs.commit.into()),
            ("last_index", last_index.into()),
            ("snapshot_index", applied.into()),
        ],
    );
    Ok(Opened {
        storage,
        rec,
        kv,
        applied,
    })
}

fn build_core(args: &Args, rec: Recovered) -> anyhow::Result<Raft> {
    let config = raft::Config {
        seed: args
            .seed
            .unwrap_or_else(|| args.id ^ (std::process::id() as u64) << 16 ^ rand::random::<u64>()),
        ..args.core_config()
    };
    let conf = rec.conf.clone().unwrap_or(ConfState {
        voters: args.voters(),
        ..Default::default()
    });
    let init = InitialState {
        hard_state: rec.hard_state,
        conf,
        snapshot: rec.snapshot,
        entries: rec.entries,
    };
    Raft::new(config, init).map_err(|e| anyhow::anyhow!("cannot start the core: {e:?}"))
}

/// Serves clients and snapshots on the connections `peer_stream` hands
/// over (plain TCP, or TLS) until a signal or a fatal error of the core
/// loop.
async fn serve<IO>(
    incoming: tokio::sync::mpsc::UnboundedReceiver<std::io::Result<IO>>,
    handle: LoopHandle,
    core_task: tokio::task::JoinHandle<anyhow::Result<()>>,
) -> anyhow::Result<ExitCode>
where
    IO: tonic::transport::server::Connected
        + tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + Unpin
        + Send
        + 'static,
    IO::ConnectInfo: Clone + Send + Sync + 'static,
{
    let incoming = tokio_stream::wrappers::UnboundedReceiverStream::new(incoming);
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
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
    // The core loop only returns on a fatal error (its channel stays open
    // while the server runs).
    tokio::select! {
        r = server => r.map_err(anyhow::Error::from).map(|_| ExitCode::SUCCESS),
        r = core_task => match r {
            Ok(Ok(())) => Ok(ExitCode::SUCCESS),
            Ok(Err(e)) => Err(e.context("the core loop stopped")),
            Err(_) => Err(anyhow::anyhow!("the core loop panicked")),
        },
        r = shutdown => { r?; tracing::info!("shutting down"); Ok(ExitCode::SUCCESS) }
    }
}
