//! The command line of each etcd member: names, loopback URLs, the initial
//! cluster, and the same election timeout and heartbeat as raft-node gets.

use crate::target::cluster::{CommandLine, NodeSpec};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// The addresses of one etcd member.
#[derive(Debug, Clone)]
pub struct Member {
    /// Client URL's address (the gRPC KV API).
    pub client: SocketAddr,
    /// Where the member listens for peers.
    pub peer_listen: SocketAddr,
    /// The peer address the other members dial (a router when proxied).
    pub peer_advertised: SocketAddr,
}

/// etcd's timing and extra flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--election-timeout` in ms.
    pub election_timeout_ms: u64,
    /// `--heartbeat-interval` in ms.
    pub heartbeat_ms: u64,
    /// `--initial-cluster-token`, unique per run so that stray members of
    /// another run cannot join.
    pub token: String,
    /// Appended to every member's command line.
    pub extra_args: Vec<String>,
}

/// The member name of node `id`.
pub fn name(id: u64) -> String {
    format!("n{id}")
}

/// Builds each member's arguments from its node spec (id, data dir).
pub fn command_line(members: BTreeMap<u64, Member>, settings: Settings) -> CommandLine {
    let initial: Vec<String> = members
        .iter()
        .map(|(id, m)| format!("{}=http://{}", name(*id), m.peer_advertised))
        .collect();
    let initial = initial.join(",");
    Arc::new(move |spec: &NodeSpec| {
        let Some(m) = members.get(&spec.id) else {
            // Unknown ids are a driver bug; etcd refuses the empty name loudly.
            return vec!["--name".into(), String::new()];
        };
        let mut a: Vec<String> = [
            "--name",
            &name(spec.id),
            "--data-dir",
            &spec.data_dir.to_string_lossy(),
            "--listen-client-urls",
            &format!("http://{}", m.client),
            "--advertise-client-urls",
            &format!("http://{}", m.client),
            "--listen-peer-urls",
            &format!("http://{}", m.peer_listen),
            "--initial-advertise-peer-urls",
            &format!("http://{}", m.peer_advertised),
            "--initial-cluster",
            &initial,
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            &settings.token,
            "--election-timeout",
            &settings.election_timeout_ms.to_string(),
            "--heartbeat-interval",
            &settings.heartbeat_ms.to_string(),
            "--logger",
            "zap",
            "--log-outputs",
            "stderr",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(settings.extra_args.iter().cloned());
        a
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn every_member_gets_the_same_initial_cluster_and_its_own_urls() {
        let addr = |p: u16| -> SocketAddr { format!("127.0.0.1:{p}").parse().unwrap() };
        let members: BTreeMap<u64, Member> = (1..=3)
            .map(|i| {
                (
                    i,
                    Member {
                        client: addr(2000 + i as u16),
                        peer_listen: addr(3000 + i as u16),
                        peer_advertised: addr(4000 + i as u16),
                    },
                )
            })
            .collect();
        let cl = command_line(
            members,
            Settings {
                election_timeout_ms: 1000,
                heartbeat_ms: 100,
                token: "t".into(),
                extra_args: vec!["--x".into()],
            },
        );
        let spec = NodeSpec {
            id: 2,
            listen: addr(2002),
            peers: BTreeMap::new(),
            data_dir: PathBuf::from("/d/n2"),
            log_path: PathBuf::from("/d/n2.log"),
            env: Vec::new(),
            boot: 0,
        };
        let line = cl(&spec).join(" ");
        assert!(line.starts_with("--name n2 --data-dir /d/n2 "), "{line}");
        assert!(
            line.contains("--listen-peer-urls http://127.0.0.1:3002"),
            "{line}"
        );
        assert!(
            line.contains("--initial-advertise-peer-urls http://127.0.0.1:4002"),
            "{line}"
        );
        assert!(line.contains(
            "--initial-cluster n1=http://127.0.0.1:4001,n2=http://127.0.0.1:4002,n3=http://127.0.0.1:4003"
        ));
        assert!(line.contains("--election-timeout 1000 --heartbeat-interval 100"));
        assert!(line.ends_with("--x"));
    }
}
