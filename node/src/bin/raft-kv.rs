//! raft-kv: a small command-line client for a raft-node cluster, for
//! trying a cluster by hand. It follows NotLeader redirects among the
//! nodes given with --node.

use clap::{Parser, Subcommand};
use raft_proto::kvpb::{self, kv_client::KvClient};
use std::process::ExitCode;
use std::time::Duration;

/// Talk to a raft-node cluster.
#[derive(Debug, Parser)]
#[command(name = "raft-kv", version, about)]
struct Args {
    /// A node's client address; repeat to give several (redirects are
    /// followed by matching the leader's id to its position: the first
    /// --node is id 1, the second id 2, ...).
    #[arg(long = "node", default_value = "127.0.0.1:7001")]
    nodes: Vec<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Linearizable read.
    Get {
        key: String,
    },
    Put {
        key: String,
        value: String,
    },
    /// Compare-and-set; `--expected` absent means "the key must be absent".
    Cas {
        key: String,
        #[arg(long)]
        expected: Option<String>,
        new: String,
    },
    Append {
        key: String,
        suffix: String,
    },
    Delete {
        key: String,
    },
    /// Id, role, term, leader, commit and applied index of every --node.
    Status,
    /// Ask the leader to hand leadership to `target`.
    TransferLeader {
        target: u64,
    },
    AddVoter {
        id: u64,
        addr: String,
    },
    AddLearner {
        id: u64,
        addr: String,
    },
    RemoveNode {
        id: u64,
    },
}

async fn connect(addr: &str) -> anyhow::Result<KvClient<tonic::transport::Channel>> {
    let ep = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10));
    Ok(KvClient::new(ep.connect().await?))
}

fn describe(e: &Option<kvpb::Error>) -> Option<(kvpb::Code, String, u64)> {
    let e = e.as_ref()?;
    let code = kvpb::Code::try_from(e.code).unwrap_or(kvpb::Code::BadRequest);
    (code != kvpb::Code::Ok).then(|| (code, e.message.clone(), e.leader_id))
}

/// Runs `cmd` against node `i`, following at most a few redirects.
async fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if let Cmd::Status = args.cmd {
        for a in &args.nodes {
            match connect(a).await?.status(kvpb::StatusRequest {}).await {
                Ok(s) => {
                    let s = s.into_inner();
                    println!(
                        "{a}: id {} {} term {} leader {} commit {} applied {} voters {:?}",
                        s.id,
                        s.role,
                        s.term,
                        s.leader_id,
                        s.commit_index,
                        s.applied_index,
                        s.voters
                    );
                }
                Err(e) => println!("{a}: unreachable ({})", e.message()),
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut target = 0usize;
    for _ in 0..5 {
        let mut c = connect(&args.nodes[target]).await?;
        let (err, out) = match &args.cmd {
            Cmd::Get { key } => {
                let r = c
                    .get(kvpb::GetRequest { key: key.clone() })
                    .await?
                    .into_inner();
                let out = if r.found {
                    String::from_utf8_lossy(&r.value).into_owned()
                } else {
                    "(absent)".into()
                };
                (r.error, out)
            }
            Cmd::Put { key, value } => {
                let r = c
                    .put(kvpb::PutRequest {
                        key: key.clone(),
                        value: value.clone().into_bytes(),
                        session: None,
                    })
                    .await?
                    .into_inner();
                (r.error, format!("ok (index {})", r.index))
            }
            Cmd::Cas { key, expected, new } => {
                let r = c
                    .cas(kvpb::CasRequest {
                        key: key.clone(),
                        expected: expected.clone().map(String::into_bytes),
                        new_value: new.clone().into_bytes(),
                        session: None,
                    })
                    .await?
                    .into_inner();
                let out = if r.succeeded {
                    "ok".to_string()
                } else if r.found {
                    format!(
                        "mismatch: current value {}",
                        String::from_utf8_lossy(&r.value)
                    )
                } else {
                    "mismatch: key absent".to_string()
                };
                (r.error, out)
            }
            Cmd::Append { key, suffix } => {
                let r = c
                    .append(kvpb::AppendRequest {
                        key: key.clone(),
                        suffix: suffix.clone().into_bytes(),
                        session: None,
                    })
                    .await?
                    .into_inner();
                (r.error, String::from_utf8_lossy(&r.value).into_owned())
            }
            Cmd::Delete { key } => {
                let r = c
                    .delete(kvpb::DeleteRequest {
                        key: key.clone(),
                        session: None,
                    })
                    .await?
                    .into_inner();
                (r.error, "ok".into())
            }
            Cmd::TransferLeader { target } => {
                let r = c
                    .transfer_leader(kvpb::TransferLeaderRequest { target_id: *target })
                    .await?
                    .into_inner();
                (r.error, "transfer started".into())
            }
            Cmd::AddVoter { id, addr } => {
                let r = c
                    .add_voter(kvpb::MemberRequest {
                        node_id: *id,
                        addr: addr.clone(),
                    })
                    .await?
                    .into_inner();
                (r.error, "ok".into())
            }
            Cmd::AddLearner { id, addr } => {
                let r = c
                    .add_learner(kvpb::MemberRequest {
                        node_id: *id,
                        addr: addr.clone(),
                    })
                    .await?
                    .into_inner();
                (r.error, "ok".into())
            }
            Cmd::RemoveNode { id } => {
                let r = c
                    .remove_node(kvpb::MemberRequest {
                        node_id: *id,
                        addr: String::new(),
                    })
                    .await?
                    .into_inner();
                (r.error, "ok".into())
            }
            Cmd::Status => unreachable!("handled above"),
        };
        match describe(&err) {
            None => {
                println!("{out}");
                return Ok(ExitCode::SUCCESS);
            }
            Some((kvpb::Code::NotLeader, _, leader))
                if leader >= 1 && (leader as usize) <= args.nodes.len() =>
            {
                target = leader as usize - 1;
            }
            Some((code, msg, _)) => {
                eprintln!("raft-kv: {code:?}: {msg}");
                return Ok(ExitCode::from(1));
            }
        }
    }
    eprintln!("raft-kv: too many redirects");
    Ok(ExitCode::from(1))
}

fn main() -> ExitCode {
    let args = Args::parse();
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
