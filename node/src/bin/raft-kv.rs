//! raft-kv: a small command-line client for a raft-node cluster, for
//! trying a cluster by hand. It follows NotLeader redirects among the
//! nodes given with --node, and waits a few seconds for nodes that are
//! still starting.

use clap::{Parser, Subcommand};
use raft_proto::kvpb::{self, kv_client::KvClient};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, ClientTlsConfig};

/// A command-line client for a raft-node cluster: reads, writes and admin
/// calls, sent to the leader (NotLeader redirects are followed).
///
/// Exit codes: 0 done; 1 refused or failed (including a cas whose expected
/// value did not match), or no node answered; 2 bad usage.
#[derive(Debug, Parser)]
#[command(name = "raft-kv", version, about, long_about)]
struct Args {
    /// A node's client address, HOST:PORT; repeat to give several. A
    /// redirect goes to the leader's address when the node names it, else
    /// to the --node at the leader id's position (the first is id 1).
    #[arg(long = "node", value_name = "HOST:PORT", default_value = "127.0.0.1:7001", value_parser = parse_node)]
    nodes: Vec<String>,
    /// How long to wait for a node that refuses connections (still
    /// starting), or for the cluster to elect a leader, before giving up.
    #[arg(long, default_value_t = 5)]
    wait_secs: u64,
    /// Connect over mutual TLS: DIR holds ca.pem (the cluster's CA),
    /// cert.pem and key.pem (this client's certificate, signed by that CA;
    /// admin calls need one naming "admin"). For nodes started with
    /// --tls-dir.
    #[arg(long, value_name = "DIR")]
    tls_dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

fn parse_node(s: &str) -> Result<String, String> {
    raft_node::cli::check_addr(s, false)?;
    Ok(s.to_string())
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print KEY's value (a linearizable read), or "(absent)".
    Get {
        /// The key to read.
        key: String,
    },
    /// Set KEY to VALUE.
    Put {
        /// The key to write.
        key: String,
        /// Its new value.
        value: String,
    },
    /// Set KEY to NEW only if its value is EXPECTED (exit 1 if not).
    Cas {
        /// The key to compare and write.
        key: String,
        /// The value KEY must hold; leave out to require that KEY is absent.
        #[arg(long)]
        expected: Option<String>,
        /// Its new value if the comparison holds.
        new: String,
    },
    /// Append SUFFIX to KEY's value (an absent key counts as empty) and
    /// print the value after.
    Append {
        /// The key to append to.
        key: String,
        /// The text appended.
        suffix: String,
    },
    /// Remove KEY.
    Delete {
        /// The key to remove.
        key: String,
    },
    /// Print each --node's id, role, term, leader, commit and applied index.
    Status,
    /// Ask the leader to hand leadership to node TARGET.
    TransferLeader {
        /// The id of the node to lead.
        target: u64,
    },
    /// Make node ID a voter (it must have caught up as a learner first).
    AddVoter {
        /// The node's id.
        id: u64,
        /// Its address.
        #[arg(value_name = "HOST:PORT", value_parser = parse_node)]
        addr: String,
    },
    /// Add node ID as a learner: it receives the log but does not vote.
    AddLearner {
        /// The node's id.
        id: u64,
        /// Its address.
        #[arg(value_name = "HOST:PORT", value_parser = parse_node)]
        addr: String,
    },
    /// Remove node ID from the cluster.
    RemoveNode {
        /// The node's id.
        id: u64,
    },
}

/// What a node answered: its error (if any), what to print, and whether
/// the command did what was asked (a cas mismatch did not).
struct Answer {
    error: Option<kvpb::Error>,
    out: String,
    ok: bool,
}

impl Answer {
    fn done(error: Option<kvpb::Error>, out: impl Into<String>) -> Answer {
        Answer {
            error,
            out: out.into(),
            ok: true,
        }
    }
}

/// Connects to `addr`, waiting up to `wait` while the node refuses
/// connections (it may be starting); says so once on stderr.
async fn connect(
    addr: &str,
    wait: Duration,
    tls: Option<&ClientTlsConfig>,
) -> anyhow::Result<KvClient<Channel>> {
    let ep = match tls {
        None => tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?,
        Some(t) => tonic::transport::Endpoint::from_shared(format!("https://{addr}"))?
            .tls_config(t.clone())?,
    };
    let ep = ep
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10));
    let start = Instant::now();
    let mut said = false;
    loop {
        if tokio::net::lookup_host(addr).await.is_err() {
            anyhow::bail!("cannot resolve the host of {addr}");
        }
        match ep.connect().await {
            Ok(ch) => return Ok(KvClient::new(ch)),
            Err(e) if start.elapsed() < wait => {
                if !said {
                    eprintln!("raft-kv: waiting for {addr} ({})", cause(&e));
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => anyhow::bail!("cannot connect to {addr}: {}", cause(&e)),
        }
    }
}

/// A hint for a call that broke off below gRPC: a plaintext client at a
/// TLS node, or a certificate the node refused.
fn tls_hint(args: &Args, e: &tonic::Status) -> &'static str {
    use tonic::Code;
    if !matches!(
        e.code(),
        Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
    ) {
        return "";
    }
    if args.tls_dir.is_none() {
        " (if the node runs with --tls-dir, give raft-kv --tls-dir too)"
    } else {
        " (if the node refused this client's certificate, its log says why)"
    }
}

/// The innermost cause of an error (tonic wraps the useful one deep down).
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

fn describe(e: &Option<kvpb::Error>) -> Option<(kvpb::Code, &kvpb::Error)> {
    let e = e.as_ref()?;
    let code = kvpb::Code::try_from(e.code).unwrap_or(kvpb::Code::BadRequest);
    (code != kvpb::Code::Ok).then_some((code, e))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Sends `cmd` (anything but Status) to one node.
async fn request(c: &mut KvClient<Channel>, cmd: &Cmd) -> Result<Answer, tonic::Status> {
    Ok(match cmd {
        Cmd::Get { key } => {
            let r = c
                .get(kvpb::GetRequest { key: key.clone() })
                .await?
                .into_inner();
            let out = if r.found {
                text(&r.value)
            } else {
                "(absent)".into()
            };
            Answer::done(r.error, out)
        }
        Cmd::Put { key, value } => {
            let req = kvpb::PutRequest {
                key: key.clone(),
                value: value.clone().into_bytes(),
                session: None,
            };
            let r = c.put(req).await?.into_inner();
            Answer::done(r.error, format!("ok (index {})", r.index))
        }
        Cmd::Cas { key, expected, new } => {
            let req = kvpb::CasRequest {
                key: key.clone(),
                expected: expected.clone().map(String::into_bytes),
                new_value: new.clone().into_bytes(),
                session: None,
            };
            let r = c.cas(req).await?.into_inner();
            let out = match (r.succeeded, r.found) {
                (true, _) => "ok".to_string(),
                (false, true) => format!("mismatch: the value is {}", text(&r.value)),
                (false, false) => "mismatch: the key is absent".to_string(),
            };
            Answer {
                error: r.error,
                out,
                ok: r.succeeded,
            }
        }
        Cmd::Append { key, suffix } => {
            let req = kvpb::AppendRequest {
                key: key.clone(),
                suffix: suffix.clone().into_bytes(),
                session: None,
            };
            let r = c.append(req).await?.into_inner();
            Answer::done(r.error, text(&r.value))
        }
        Cmd::Delete { key } => {
            let req = kvpb::DeleteRequest {
                key: key.clone(),
                session: None,
            };
            Answer::done(c.delete(req).await?.into_inner().error, "ok")
        }
        Cmd::TransferLeader { target } => {
            let req = kvpb::TransferLeaderRequest { target_id: *target };
            let r = c.transfer_leader(req).await?.into_inner();
            Answer::done(r.error, "transfer started")
        }
        Cmd::AddVoter { id, addr } | Cmd::AddLearner { id, addr } => {
            let req = kvpb::MemberRequest {
                node_id: *id,
                addr: addr.clone(),
            };
            let r = if matches!(cmd, Cmd::AddVoter { .. }) {
                c.add_voter(req).await?
            } else {
                c.add_learner(req).await?
            };
            Answer::done(r.into_inner().error, "ok")
        }
        Cmd::RemoveNode { id } => {
            let req = kvpb::MemberRequest {
                node_id: *id,
                addr: String::new(),
            };
            Answer::done(c.remove_node(req).await?.into_inner().error, "ok")
        }
        Cmd::Status => unreachable!("status asks every node"),
    })
}

async fn status(args: &Args, tls: Option<&ClientTlsConfig>) -> ExitCode {
    let wait = Duration::from_secs(args.wait_secs);
    for a in &args.nodes {
        let answer = match connect(a, wait, tls).await {
            Ok(mut c) => c
                .status(kvpb::StatusRequest {})
                .await
                .map(|s| s.into_inner())
                .map_err(|e| e.message().to_string()),
            Err(e) => Err(e.to_string()),
        };
        match answer {
            Ok(s) => println!(
                "{a}: id {} {} term {} leader {} commit {} applied {} voters {:?} state {:016x}",
                s.id,
                s.role,
                s.term,
                s.leader_id,
                s.commit_index,
                s.applied_index,
                s.voters,
                s.state_digest
            ),
            Err(e) => println!("{a}: unreachable ({e})"),
        }
    }
    ExitCode::SUCCESS
}

/// Runs `args.cmd` at the first --node, following redirects, and waiting
/// (up to --wait-secs) while the cluster has no leader yet.
async fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let tls = match &args.tls_dir {
        None => None,
        Some(dir) => Some(
            raft_node::tls::TlsFiles::load(dir)
                .map_err(anyhow::Error::msg)?
                .tonic_client(),
        ),
    };
    let tls = tls.as_ref();
    if let Cmd::Status = args.cmd {
        return Ok(status(args, tls).await);
    }
    let wait = Duration::from_secs(args.wait_secs);
    let deadline = Instant::now() + wait;
    let mut target = args.nodes[0].clone();
    let (mut redirects, mut said, mut next) = (0, false, 0);
    loop {
        let mut c = connect(
            &target,
            deadline.saturating_duration_since(Instant::now()),
            tls,
        )
        .await?;
        let answer = request(&mut c, &args.cmd)
            .await
            .map_err(|e| anyhow::anyhow!("{target}: {}{}", e.message(), tls_hint(args, &e)))?;
        let Some((code, e)) = describe(&answer.error) else {
            println!("{}", answer.out);
            return Ok(ExitCode::from(if answer.ok { 0 } else { 1 }));
        };
        let known = match (e.leader_addr.as_str(), e.leader_id as usize) {
            ("", id) if id >= 1 && id <= args.nodes.len() => Some(args.nodes[id - 1].clone()),
            ("", _) => None,
            (addr, _) => Some(addr.to_string()),
        };
        match (code, known) {
            (kvpb::Code::NotLeader, Some(leader)) if redirects < 5 => {
                redirects += 1;
                target = leader;
                continue;
            }
            (kvpb::Code::NotLeader | kvpb::Code::Unavailable, _) if Instant::now() < deadline => {
                // An election is on: ask around until a leader answers.
                if !said {
                    eprintln!("raft-kv: waiting for a leader ({}: {})", target, e.message);
                    said = true;
                }
                redirects = 0;
                next = (next + 1) % args.nodes.len();
                target = args.nodes[next].clone();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => {
                eprintln!("raft-kv: {target}: {code:?}: {}", e.message);
                return Ok(ExitCode::from(1));
            }
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(dir) = &args.tls_dir {
        if let Err(e) = raft_node::tls::TlsFiles::load(dir) {
            eprintln!("raft-kv: {e}");
            return ExitCode::from(2);
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raft-kv: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(&args)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("raft-kv: {e:#}");
            ExitCode::from(1)
        }
    }
}
