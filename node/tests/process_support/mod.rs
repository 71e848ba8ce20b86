//! Real `raft-node` processes on loopback for the tests that spawn them:
//! a cluster on free ports whose processes are killed and reaped on drop,
//! each writing its log and its events file into the cluster's temp dir,
//! and small clients that follow redirects.
#![allow(dead_code)]

use raft_proto::kvpb::{self, kv_client::KvClient};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub const NODE: &str = env!("CARGO_BIN_EXE_raft-node");
/// Upper bound for anything the tests wait for (elections, catch-up).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A process that is killed and reaped when dropped (a failing assertion
/// leaves nothing behind).
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub ports: Vec<u16>,
    procs: Vec<Option<Child>>,
    extra: Vec<String>,
}

impl Cluster {
    /// Starts `n` nodes with `extra` flags each (short timeouts, test hooks on).
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        let mut c = Cluster {
            dir: tempfile::tempdir().unwrap(),
            ports: (0..n).map(|_| free_port()).collect(),
            procs: (0..n).map(|_| None).collect(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        for i in 1..=n as u64 {
            c.spawn(i);
        }
        c
    }

    pub fn addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}", self.ports[id as usize - 1])
    }

    /// (Re)starts node `id` with the cluster's flags.
    pub fn spawn(&mut self, id: u64) {
        self.spawn_with(id, &[]);
    }

    /// (Re)starts node `id` with the cluster's flags and `more`; its log
    /// and its events are appended to across restarts.
    pub fn spawn_with(&mut self, id: u64, more: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("n{id}.log")))
            .unwrap();
        let mut cmd = Command::new(NODE);
        cmd.arg("--id").arg(id.to_string());
        cmd.arg("--listen").arg(self.addr(id));
        cmd.arg("--data-dir")
            .arg(self.dir.path().join(format!("n{id}")));
        cmd.args(["--election-timeout-ms", "300", "--heartbeat-ms", "50"]);
        for p in 1..=self.ports.len() as u64 {
            if p != id {
                cmd.arg("--peer").arg(format!("{p}={}", self.addr(p)));
            }
        }
        cmd.arg("--events-file").arg(self.events_path(id));
        cmd.arg("--test-hooks");
        cmd.args(&self.extra).args(more);
        cmd.stdout(Stdio::null()).stderr(log);
        self.procs[id as usize - 1] = Some(cmd.spawn().expect("spawn raft-node"));
    }

    /// SIGKILLs node `id` (if it runs) and reaps it.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut p) = self.procs[id as usize - 1].take() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }

    /// Node `id`'s stderr so far.
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("n{id}.log"))).unwrap_or_default()
    }

    /// Where node `id` writes its events.
    pub fn events_path(&self, id: u64) -> std::path::PathBuf {
        self.dir.path().join(format!("n{id}.events.jsonl"))
    }

    /// Node `id`'s events so far, each line parsed (a line that is not
    /// one whole JSON object fails the test).
    pub fn events(&self, id: u64) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.events_path(id)).unwrap_or_default();
        text.lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event line {l:?}: {e}"))
            })
            .collect()
    }

    /// Waits up to `limit` for node `id` to exit on its own; its exit code.
    pub fn wait_exit(&mut self, id: u64, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            let p = self.procs[id as usize - 1].as_mut()?;
            if let Some(st) = p.try_wait().unwrap() {
                self.procs[id as usize - 1] = None;
                return Some(st.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Whether node `id`'s process is running.
    pub fn running(&mut self, id: u64) -> bool {
        match self.procs[id as usize - 1].as_mut() {
            Some(p) => p.try_wait().unwrap().is_none(),
            None => false,
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 1..=self.procs.len() as u64 {
            self.kill(i);
        }
    }
}

pub async fn client(addr: &str) -> Option<KvClient<Channel>> {
    let ep = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .ok()?
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(3));
    Some(KvClient::new(ep.connect().await.ok()?))
}

pub async fn status(addr: &str) -> Option<kvpb::StatusResponse> {
    let mut c = client(addr).await?;
    c.status(kvpb::StatusRequest {})
        .await
        .ok()
        .map(|r| r.into_inner())
}

/// Waits until the live nodes agree on one leader, and returns its id.
pub async fn wait_leader(c: &Cluster, live: &[u64]) -> u64 {
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        let mut leaders = Vec::new();
        for &id in live {
            if let Some(s) = status(&c.addr(id)).await {
                if s.role == "leader" {
                    leaders.push((s.term, id));
                }
            }
        }
        leaders.sort();
        if let Some(&(_, id)) = leaders.last() {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no leader among {live:?} within {PATIENCE:?}");
}

pub fn code(e: &Option<kvpb::Error>) -> kvpb::Code {
    e.as_ref().map_or(kvpb::Code::Ok, |e| {
        kvpb::Code::try_from(e.code).unwrap_or(kvpb::Code::BadRequest)
    })
}

/// Puts through `via`, following NotLeader redirects; panics on anything
/// but a clean "ok" within the patience.
pub async fn put(c: &Cluster, via: u64, key: &str, value: &str, seq: u64) {
    let mut target = via;
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        let Some(mut cl) = client(&c.addr(target)).await else {
            // A redirect to a node that cannot be reached (a test kills
            // leaders) is dropped: `via` learns the next leader.
            target = via;
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let req = kvpb::PutRequest {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            session: Some(kvpb::Session { client_id: 7, seq }),
        };
        if let Ok(r) = cl.put(req).await {
            let r = r.into_inner();
            match code(&r.error) {
                kvpb::Code::Ok => return,
                kvpb::Code::NotLeader if r.error.as_ref().unwrap().leader_id != 0 => {
                    target = r.error.unwrap().leader_id;
                    continue;
                }
                // Retrying with the same session is safe: applied at most once.
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("put {key} did not succeed within {PATIENCE:?}");
}

pub async fn get(c: &Cluster, via: u64, key: &str) -> Option<String> {
    let mut target = via;
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        let Some(mut cl) = client(&c.addr(target)).await else {
            // As in `put`: an unreachable redirect target is dropped.
            target = via;
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if let Ok(r) = cl.get(kvpb::GetRequest { key: key.into() }).await {
            let r = r.into_inner();
            match code(&r.error) {
                kvpb::Code::Ok => return r.found.then(|| String::from_utf8(r.value).unwrap()),
                kvpb::Code::NotLeader if r.error.as_ref().unwrap().leader_id != 0 => {
                    target = r.error.unwrap().leader_id;
                    continue;
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("get {key} did not succeed within {PATIENCE:?}");
}

pub async fn wait_caught_up(c: &Cluster, id: u64, leader: u64) -> kvpb::StatusResponse {
    let start = Instant::now();
    let target = status(&c.addr(leader))
        .await
        .expect("leader status")
        .commit_index;
    while start.elapsed() < PATIENCE {
        if let Some(s) = status(&c.addr(id)).await {
            if s.applied_index >= target {
                return s;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("node {id} did not catch up to {target}\n{}", c.log(id));
}
