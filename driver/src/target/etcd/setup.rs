//! Starting an etcd cluster: free ports for clients and peers, a router in
//! front of each member's peer port (so the driver's link proxies carry
//! etcd's peer traffic), and one member process per node.

use super::{find_etcd, members, peer_router, EtcdApi};
use crate::net::proxy::Network;
use crate::target::cluster::{self, Cluster, NodeSpec};
use crate::target::{
    binary_version, held_addrs, hold_guards, nodes_json, start_network_keeping_ports, Deployment,
    NodeApi, TargetSpec,
};
use crate::workload::client::open_channels;
use anyhow::Result;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Starts the members under `dir`; does not wait for a leader.
pub async fn setup(spec: &TargetSpec, dir: &Path) -> Result<Deployment> {
    let bin = find_etcd().map_err(crate::error::UsageError)?;
    let version = binary_version(&bin).map_err(crate::error::UsageError)?;
    let ids: Vec<u64> = (1..=spec.nodes as u64).collect();
    // Held until the deployment is dropped (see `cluster::PortHold`).
    let (client, client_holds) = held_addrs(&ids)?;
    let (peer_listen, peer_holds) = held_addrs(&ids)?;
    let (net, routers, advertised) = if spec.proxied {
        let (mut routers, listeners) = peer_router::PeerRouters::bind(&ids).await?;
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
    let members: BTreeMap<u64, members::Member> = ids
        .iter()
        .map(|&id| {
            (
                id,
                members::Member {
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
    let settings = members::Settings {
        election_timeout_ms: spec.options.election_timeout_ms.unwrap_or(1000),
        heartbeat_ms: spec.options.heartbeat_ms.unwrap_or(100),
        token,
        extra_args: spec.options.node_args.clone(),
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
                env: spec.node_env.get(&id).cloned().unwrap_or_default(),
                boot: 0,
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
    let command_line = members::command_line(members, settings);
    let mut c = Cluster::new(bin.clone(), specs, command_line);
    c.start_all()?;
    let cluster = Arc::new(Mutex::new(c));
    let api: Arc<dyn NodeApi> = Arc::new(EtcdApi {
        channels: open_channels(&client)?,
        read_consistency: spec.options.read_consistency,
    });
    let mut guards: Vec<Box<dyn std::any::Any + Send + Sync>> = hold_guards(client_holds)
        .chain(hold_guards(peer_holds))
        .collect();
    if let Some(r) = routers {
        guards.push(Box::new(r));
    }
    Ok(Deployment {
        target: "etcd",
        ids,
        cluster,
        net,
        api,
        bin,
        version,
        nodes,
        _guards: guards,
    })
}
