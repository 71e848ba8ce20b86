//! raft-node as a target: the binary beside raft-driver, started with its
//! own flags; its KV API for clients, status, admin calls and failpoints;
//! the events file each node writes for the checkers.

pub mod client;
pub mod tls;

use super::cluster::{self, Cluster, CommandLine, NodeSpec};
use super::{
    ask_each, binary_version, held_addrs, hold_guards, nodes_json, squat_hook,
    start_network_keeping_ports, AdminReply, AdminReq, Capabilities, Deployment, NodeApi,
    NodeStatus, ReadConsistency, ReplicaState, Target, TargetOptions, TargetSpec,
};
use crate::nemesis::schedule::NemesisKind;
use crate::net::proxy::Network;
use crate::workload::client::{open_channels, BoxFuture, Client};
use anyhow::Result;
use client::RaftKvClient;
use raft_proto::kvpb::kv_client::KvClient;
use raft_proto::kvpb::{
    Code, FailpointRequest, MemberRequest, StatusRequest, StatusResponse, TransferLeaderRequest,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::Channel;

/// raft-node.
pub struct RaftTarget;

/// Applied entries between snapshots in the driver's runs (raft-node's
/// own default, 10,000, is a few runs' worth of writes).
pub const SNAPSHOT_EVERY: u64 = 1_000;

/// Entries per append in the runs drawn to batch small ([`small_batches`]).
pub const SMALL_BATCH: usize = 4;

/// Whether a run batches small, drawn from its seed, size and fault kinds
/// (what test.json records, so a replay does too): one run in two has its
/// nodes send at most [`SMALL_BATCH`] entries per AppendEntries, so that a
/// follower's catch-up takes many rounds and a new leader's entries of
/// older terms reach a follower before its own first one does (the window
/// in which counting replicas of an old-term entry commits it, Raft's
/// Figure 8). The size and kinds are in the draw because a campaign runs
/// every set and size with one seed: from the seed alone, all or none of
/// them batched small. Not when --node-arg sets the batch.
pub fn small_batches(
    seed: u64,
    nodes: usize,
    kinds: &[NemesisKind],
    node_args: &[String],
) -> Option<usize> {
    let set_by_user = node_args
        .iter()
        .any(|a| a.starts_with("--max-append-entries"));
    const MIX: u64 = 0x9E37_79B9_7F4A_7C15;
    let salt = kinds
        .iter()
        .fold(nodes as u64, |h, &k| (h ^ (k as u64 + 1)).wrapping_mul(MIX));
    // A mix of the bits, not `seed % 2`: campaign seeds are consecutive.
    let mixed = (seed ^ salt).wrapping_mul(MIX) >> 61;
    (!set_by_user && mixed.is_multiple_of(2)).then_some(SMALL_BATCH)
}

/// raft-node's `--seed` for one boot of one node of a run: its election
/// timeouts are drawn from the run's seed, so that a replay (same seed)
/// draws them again in the same order, each node and each restart its own.
pub fn node_seed(run_seed: u64, id: u64, boot: u64) -> u64 {
    // splitmix64's finalizer over the three, so that neighbouring seeds,
    // ids and boots give unrelated draws.
    let mut z = run_seed
        ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ boot.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The exit code of a raft-node that a failpoint crashed.
pub const FAILPOINT_EXIT_CODE: i32 = 86;

/// raft-node's argument list for a spec, followed by `extra`.
pub fn command_line(extra: Vec<String>) -> CommandLine {
    Arc::new(move |spec: &NodeSpec| {
        let mut a = vec![
            "--id".to_string(),
            spec.id.to_string(),
            "--listen".to_string(),
            spec.listen.to_string(),
            "--data-dir".to_string(),
            spec.data_dir.display().to_string(),
        ];
        for (peer, addr) in &spec.peers {
            a.push("--peer".into());
            a.push(format!("{peer}={addr}"));
        }
        a.extend(extra.iter().cloned());
        a
    })
}

/// The flags every node gets besides id, listen, data dir and peers.
pub fn node_flags(opts: &TargetOptions) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(ms) = opts.election_timeout_ms {
        a.extend(["--election-timeout-ms".to_string(), ms.to_string()]);
    }
    if let Some(ms) = opts.heartbeat_ms {
        a.extend(["--heartbeat-ms".to_string(), ms.to_string()]);
    }
    if let Some(id) = opts.cluster_id {
        a.extend(["--cluster-id".to_string(), id.to_string()]);
    }
    if let Some(b) = &opts.bug {
        a.extend(["--bug".to_string(), b.clone()]);
    }
    a.extend(opts.node_args.iter().cloned());
    a
}

impl Target for RaftTarget {
    fn name(&self) -> &'static str {
        "raft"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            leader_transfer: true,
            membership: true,
            failpoints: true,
            libc_clock: true,
            data_dir_files: true,
            slow_links: true,
            framed_peer_messages: true,
            crash_points: &[
                "crash-after-append",
                "crash-during-snapshot-install",
                "crash-during-compaction",
                "crash-before-apply",
            ],
        }
    }

    fn checkers(&self) -> &'static [&'static str] {
        // From the events file each node writes (`--events-file`).
        &["election-safety", "node-invariants", "convergence"]
    }

    fn label(&self) -> String {
        String::new()
    }

    fn validate(&self, opts: &TargetOptions) -> Result<(), String> {
        if opts.read_consistency != ReadConsistency::Linearizable {
            return Err("--read-consistency serializable needs --target etcd (raft-node's reads are linearizable)".into());
        }
        if let Some(b) = &opts.bug {
            if b.is_empty() || b.starts_with('-') {
                return Err(format!("--bug needs a defect name, got {b:?}"));
            }
        }
        if let Some(bin) = &opts.node_bin {
            if !bin.is_file() {
                return Err(format!("--node-bin {} is not a file", bin.display()));
            }
        }
        // Everything a node will be given, checked by the node itself
        // before any process starts (a typo in --bug or --node-arg is the
        // node's own message and exit 2, not a run that never starts).
        let bin = find_node_bin(opts.node_bin.as_deref())?;
        check_config(&bin, &node_flags(opts))
    }

    fn binary(&self, opts: &TargetOptions) -> Result<PathBuf, String> {
        find_node_bin(opts.node_bin.as_deref())
    }

    fn setup<'a>(
        &'a self,
        spec: &'a TargetSpec,
        dir: &'a Path,
    ) -> BoxFuture<'a, Result<Deployment>> {
        Box::pin(setup(spec, dir))
    }
}

/// Runs `raft-node --check-config` with `flags` (and placeholder id,
/// address and data dir, which it does not touch): Ok, or the node's own
/// words for what is wrong.
pub fn check_config(bin: &Path, flags: &[String]) -> Result<(), String> {
    let out = std::process::Command::new(bin)
        .args([
            "--check-config",
            "--test-hooks",
            "--id",
            "1",
            "--listen",
            "127.0.0.1:1",
        ])
        .arg("--data-dir")
        .arg(std::env::temp_dir().join("raft-driver-check-config"))
        .args(flags)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let reason: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("For more information") && !l.starts_with("Usage:")
        })
        .collect();
    Err(format!(
        "raft-node refuses the node options: {}",
        if reason.is_empty() {
            format!("exit status {}", out.status)
        } else {
            reason.join(" ")
        }
    ))
}

/// The names `raft-node --list-bugs` (or `--list-failpoints`) prints.
pub fn list(bin: &Path, what: &str) -> Result<Vec<String>, String> {
    let out = std::process::Command::new(bin)
        .arg(format!("--list-{what}"))
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} --list-{what} failed ({})",
            bin.display(),
            out.status
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Locates raft-node: `explicit`, else next to this executable.
pub fn find_node_bin(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let exe = std::env::current_exe().map_err(|e| format!("locating raft-driver: {e}"))?;
    let dir = exe
        .parent()
        .ok_or_else(|| "raft-driver has no parent folder".to_string())?;
    let beside = dir.join("raft-node");
    if beside.is_file() {
        return Ok(beside);
    }
    // Test binaries live one folder down, in target/<profile>/deps.
    if let Some(up) = dir
        .parent()
        .map(|d| d.join("raft-node"))
        .filter(|p| p.is_file())
    {
        if dir.file_name().is_some_and(|n| n == "deps") {
            return Ok(up);
        }
    }
    Err(format!(
        "raft-node not found at {} (build it with `cargo build --release --workspace`, or pass --node-bin PATH)",
        beside.display()
    ))
}

async fn setup(spec: &TargetSpec, dir: &Path) -> Result<Deployment> {
    let bin = find_node_bin(spec.options.node_bin.as_deref()).map_err(crate::error::UsageError)?;
    let version = binary_version(&bin).map_err(crate::error::UsageError)?;
    let ids: Vec<u64> = (1..=spec.nodes as u64).collect();
    // Held until the deployment is dropped: no other process can take a
    // node's port before it listens, nor while it is down.
    let (listen, holds) = held_addrs(&ids)?;
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
                env: spec.node_env.get(&id).cloned().unwrap_or_default(),
                boot: 0,
            }
        })
        .collect();
    let nodes = nodes_json(&specs);
    // The driver's own runs may use the test hooks (bugs, failpoints); each
    // node reports its role changes and broken invariants in its events
    // file for the checkers.
    // Every directed link has a proxy of its own, so each node dials each
    // peer at its own address: a membership change that adds a node back
    // (with the address one link uses) must not re-route the others
    // through that link, or a cut of it would cut them too.
    let mut flags = vec!["--test-hooks".to_string(), "--pin-peer-addrs".to_string()];
    // Snapshots taken often, so that runs send InstallSnapshot to nodes
    // that were away (a follower behind the compacted log), unless asked
    // otherwise with --node-arg or measuring the node as shipped.
    if !spec.options.shipped_snapshot_interval
        && !spec
            .options
            .node_args
            .iter()
            .any(|a| a.starts_with("--snapshot-every"))
    {
        flags.extend(["--snapshot-every".to_string(), SNAPSHOT_EVERY.to_string()]);
    }
    if let Some(n) = spec.max_append_entries {
        tracing::info!("this run's nodes send at most {n} entries per append");
        flags.extend(["--max-append-entries".to_string(), n.to_string()]);
    }
    flags.extend(node_flags(&spec.options));
    let events_dir = dir.join("nodes");
    // `run --tls`: a throwaway CA and certificates in RUN/tls/, each node
    // started with its own --tls-dir.
    let tls_root = if spec.options.tls {
        let root = tls::root(dir);
        tls::generate(&root, &ids)?;
        Some(root)
    } else {
        None
    };
    let base = command_line(flags);
    let node_tls = tls_root.clone();
    let run_seed = (!spec
        .options
        .node_args
        .iter()
        .any(|a| a.starts_with("--seed")))
    .then_some(spec.seed);
    let with_events: CommandLine = Arc::new(move |s: &NodeSpec| {
        let mut a = base(s);
        if let Some(seed) = run_seed {
            a.push("--seed".into());
            a.push(node_seed(seed, s.id, s.boot).to_string());
        }
        a.push("--events-file".into());
        a.push(
            events_dir
                .join(format!("n{}.events.jsonl", s.id))
                .display()
                .to_string(),
        );
        if let Some(root) = &node_tls {
            a.push("--tls-dir".into());
            a.push(tls::node_dir(root, s.id).display().to_string());
        }
        a
    });
    let squatted = squat_hook(&listen);
    let mut c = Cluster::new(bin.clone(), specs, with_events);
    c.start_all()?;
    let cluster = Arc::new(Mutex::new(c));
    let channels = match &tls_root {
        None => open_channels(&listen)?,
        Some(root) => tls::open_channels(&listen, &tls::client_config(&tls::client_dir(root))?)?,
    };
    let api: Arc<dyn NodeApi> = Arc::new(RaftApi { channels });
    Ok(Deployment {
        target: "raft",
        ids,
        cluster,
        net,
        api,
        bin,
        version,
        nodes,
        _guards: hold_guards(holds).chain(squatted).collect(),
    })
}

/// raft-node's KV API, one lazily connected channel per node.
pub struct RaftApi {
    channels: BTreeMap<u64, Channel>,
}

impl RaftApi {
    /// The API over these channels (keyed by node id).
    pub fn new(channels: BTreeMap<u64, Channel>) -> Self {
        RaftApi { channels }
    }

    /// Every node's Status answer that came within `timeout`, asked at once.
    async fn statuses(&self, timeout: Duration) -> Vec<(u64, StatusResponse)> {
        ask_each(&self.channels, timeout, |ch| async move {
            KvClient::new(ch).status(StatusRequest {}).await
        })
        .await
    }

    fn stub(&self, node: u64) -> Option<KvClient<Channel>> {
        self.channels.get(&node).map(|c| KvClient::new(c.clone()))
    }
}

/// A reply's error as an admin outcome.
fn admin_reply(e: Option<raft_proto::kvpb::Error>) -> AdminReply {
    let Some(e) = e else {
        return AdminReply::Ok;
    };
    match Code::try_from(e.code) {
        Ok(Code::Ok) => AdminReply::Ok,
        Ok(Code::BadRequest) => AdminReply::Unsupported(e.message),
        Ok(Code::OutcomeUnknown) => AdminReply::Unknown(e.message),
        _ => AdminReply::Retry(format!("{}: {}", e.code, e.message)),
    }
}

impl NodeApi for RaftApi {
    fn client(&self, home: u64, client_id: u64, op_timeout: Duration) -> Box<dyn Client> {
        Box::new(RaftKvClient::open(
            &self.channels,
            home,
            client_id,
            op_timeout,
        ))
    }

    fn bench_client(&self, home: u64, client_id: u64, op_timeout: Duration) -> Box<dyn Client> {
        Box::new(RaftKvClient::open(&self.channels, home, client_id, op_timeout).sticky())
    }

    fn status_all(&self, timeout: Duration) -> BoxFuture<'_, Vec<NodeStatus>> {
        Box::pin(async move {
            self.statuses(timeout)
                .await
                .into_iter()
                .map(|(id, s)| NodeStatus {
                    id,
                    role: s.role,
                    term: s.term,
                    leader_id: s.leader_id,
                })
                .collect()
        })
    }

    fn replica_states(&self, timeout: Duration) -> BoxFuture<'_, Vec<ReplicaState>> {
        Box::pin(async move {
            self.statuses(timeout)
                .await
                .into_iter()
                .map(|(id, s)| ReplicaState {
                    id,
                    role: s.role,
                    term: s.term,
                    at: s.applied_index,
                    commit: Some(s.commit_index),
                    voters: Some(s.voters),
                    learners: Some(s.learners),
                    digest: Some(format!("{:016x}", s.state_digest)),
                })
                .collect()
        })
    }

    fn admin<'a>(&'a self, node: u64, req: &'a AdminReq) -> BoxFuture<'a, AdminReply> {
        Box::pin(async move {
            let Some(mut c) = self.stub(node) else {
                return AdminReply::Unsupported(format!("no node {node}"));
            };
            let member = |id: u64, addr: &str| MemberRequest {
                node_id: id,
                addr: addr.to_string(),
            };
            let call = async {
                match req {
                    AdminReq::Transfer(to) => c
                        .transfer_leader(TransferLeaderRequest { target_id: *to })
                        .await
                        .map(|r| r.into_inner().error),
                    AdminReq::Remove(id) => c
                        .remove_node(member(*id, ""))
                        .await
                        .map(|r| r.into_inner().error),
                    AdminReq::AddLearner(id, addr) => c
                        .add_learner(member(*id, addr))
                        .await
                        .map(|r| r.into_inner().error),
                    AdminReq::AddVoter(id, addr) => c
                        .add_voter(member(*id, addr))
                        .await
                        .map(|r| r.into_inner().error),
                }
            };
            // A call that left and got no answer may have been appended
            // (a leader killed or cut off mid-call keeps the entry, and a
            // later leader commits it): unknown, never "failed", or the
            // nemesis forgets to add a removed node back.
            match tokio::time::timeout(Duration::from_secs(2), call).await {
                Err(_) => AdminReply::Unknown(format!("no answer from node {node} within 2 s")),
                Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => {
                    AdminReply::Unsupported(s.message().to_string())
                }
                Ok(Err(s)) if super::never_sent(&s) => {
                    AdminReply::Retry(format!("{:?}: {}", s.code(), s.message()))
                }
                Ok(Err(s)) => AdminReply::Unknown(format!("{:?}: {}", s.code(), s.message())),
                Ok(Ok(e)) => admin_reply(e),
            }
        })
    }

    fn set_failpoint<'a>(
        &'a self,
        node: u64,
        name: &'a str,
        armed: bool,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let Some(mut c) = self.stub(node) else {
                return Err(format!("unsupported: no node {node}"));
            };
            let req = FailpointRequest {
                name: name.into(),
                armed,
            };
            match tokio::time::timeout(Duration::from_millis(500), c.failpoint(req)).await {
                Ok(Ok(r)) => match r.into_inner().error {
                    Some(e) if e.code != Code::Ok as i32 => Err(format!("refused: {}", e.message)),
                    _ => Ok(()),
                },
                Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => {
                    Err(format!("unsupported: {}", s.message()))
                }
                Ok(Err(s)) => Err(format!("{:?}: {}", s.code(), s.message())),
                Err(_) => Err("timeout".into()),
            }
        })
    }

    fn is_intended_exit(&self, code: Option<i32>) -> bool {
        code == Some(FAILPOINT_EXIT_CODE)
    }

    fn failpoint_boot_args(&self, name: &str) -> Option<Vec<String>> {
        Some(vec!["--failpoint".to_string(), name.to_string()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_at(port: u16) -> RaftApi {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect_timeout(Duration::from_millis(300))
            .connect_lazy();
        RaftApi::new(BTreeMap::from([(1, ch)]))
    }

    #[tokio::test]
    async fn an_admin_call_that_got_no_answer_is_unknown_and_one_never_sent_is_retried() {
        // A node that takes the call and never answers (killed or cut off
        // mid-call): the change may be in its log.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((c, _)) = silent.accept().await {
                conns.push(c);
            }
        });
        let reply = api_at(port).admin(1, &AdminReq::Remove(2)).await;
        assert!(matches!(reply, AdminReply::Unknown(_)), "{reply:?}");
        held.abort();
        // Nothing listening: the call never left, so it certainly did not
        // happen and may be sent again.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let reply = api_at(port).admin(1, &AdminReq::Remove(2)).await;
        assert!(matches!(reply, AdminReply::Retry(_)), "{reply:?}");
    }

    #[test]
    fn a_nodes_seed_comes_from_the_run_and_differs_by_node_and_boot() {
        // A replay has the run's seed: every boot draws as it did.
        assert_eq!(node_seed(7, 2, 1), node_seed(7, 2, 1));
        let mut seen = std::collections::BTreeSet::new();
        for run in [7, 8] {
            for id in 1..=5 {
                for boot in 0..4 {
                    seen.insert(node_seed(run, id, boot));
                }
            }
        }
        assert_eq!(seen.len(), 2 * 5 * 4, "two draws collided");
    }

    #[test]
    fn some_runs_batch_small_by_their_seed_and_a_node_arg_overrides_it() {
        use NemesisKind::*;
        let kinds = [Partition, Kill, DeposedLeader, Clock];
        let draw = |s: u64| small_batches(s, 3, &kinds, &[]);
        let drawn: Vec<Option<usize>> = (0..64).map(draw).collect();
        let small = drawn.iter().filter(|d| d.is_some()).count();
        assert!(
            (10..=40).contains(&small),
            "{small} of 64 consecutive seeds"
        );
        assert!(drawn.iter().flatten().all(|&n| n == SMALL_BATCH));
        // The same run draws the same way (a replay batches as the run did).
        assert_eq!(drawn, (0..64).map(draw).collect::<Vec<_>>());
        // One campaign seed: some of its sets and sizes batch small, some
        // do not (from the seed alone, all or none of them did).
        let sets: [&[NemesisKind]; 4] = [
            &[Partition, Kill, Pause],
            &[Partition, Kill, Pause, LaggingLeader, DeposedLeader, Clock],
            &[Partition, VoteCrash, Membership],
            &[PowerCut, Clock, CrashPoint, DeposedLeader],
        ];
        for seed in 0..16 {
            let per_run: Vec<bool> = sets
                .iter()
                .flat_map(|k| [3, 5].map(|n| small_batches(seed, n, k, &[]).is_some()))
                .collect();
            assert!(
                per_run.iter().any(|&s| s) && per_run.iter().any(|&s| !s),
                "seed {seed}: {per_run:?}"
            );
        }
        let user = ["--max-append-entries=64".to_string()];
        assert!((0..64).all(|s| small_batches(s, 3, &kinds, &user).is_none()));
    }
}
