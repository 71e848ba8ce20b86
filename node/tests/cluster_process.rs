//! End-to-end tests of real `raft-node` processes on loopback: election,
//! replication, SIGKILL of the leader, catch-up by log and by snapshot, and
//! the command line's refusals. Every process is killed and reaped by the
//! cluster's Drop, so a failing assertion leaves nothing behind.

use raft_proto::kvpb::{self, kv_client::KvClient};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const NODE: &str = env!("CARGO_BIN_EXE_raft-node");
/// Upper bound for anything the tests wait for (elections, catch-up).
const PATIENCE: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Cluster {
    dir: tempfile::TempDir,
    ports: Vec<u16>,
    procs: Vec<Option<Child>>,
    extra: Vec<String>,
}

impl Cluster {
    fn start(n: usize, extra: &[&str]) -> Cluster {
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

    fn addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}", self.ports[id as usize - 1])
    }

    fn spawn(&mut self, id: u64) {
        let log = std::fs::File::create(self.dir.path().join(format!("n{id}.log"))).unwrap();
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
        cmd.args(&self.extra);
        cmd.stdout(Stdio::null()).stderr(log);
        self.procs[id as usize - 1] = Some(cmd.spawn().expect("spawn raft-node"));
    }

    fn kill(&mut self, id: u64) {
        if let Some(mut p) = self.procs[id as usize - 1].take() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }

    fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("n{id}.log"))).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 1..=self.procs.len() as u64 {
            self.kill(i);
        }
    }
}

async fn client(addr: &str) -> Option<KvClient<Channel>> {
    let ep = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .ok()?
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(3));
    Some(KvClient::new(ep.connect().await.ok()?))
}

async fn status(addr: &str) -> Option<kvpb::StatusResponse> {
    let mut c = client(addr).await?;
    c.status(kvpb::StatusRequest {})
        .await
        .ok()
        .map(|r| r.into_inner())
}

/// Waits until the live nodes agree on one leader, and returns its id.
async fn wait_leader(c: &Cluster, live: &[u64]) -> u64 {
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

fn code(e: &Option<kvpb::Error>) -> kvpb::Code {
    e.as_ref().map_or(kvpb::Code::Ok, |e| {
        kvpb::Code::try_from(e.code).unwrap_or(kvpb::Code::BadRequest)
    })
}

/// Puts through `via`, following NotLeader redirects; panics on anything
/// but a clean "ok" within the patience.
async fn put(c: &Cluster, via: u64, key: &str, value: &str, seq: u64) {
    let mut target = via;
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        if let Some(mut cl) = client(&c.addr(target)).await {
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
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("put {key} did not succeed within {PATIENCE:?}");
}

async fn get(c: &Cluster, via: u64, key: &str) -> Option<String> {
    let mut target = via;
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        if let Some(mut cl) = client(&c.addr(target)).await {
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
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("get {key} did not succeed within {PATIENCE:?}");
}

async fn wait_caught_up(c: &Cluster, id: u64, leader: u64) -> kvpb::StatusResponse {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_of_the_leader_and_the_old_leader_catches_up() {
    let mut c = Cluster::start(3, &[]);
    let leader = wait_leader(&c, &[1, 2, 3]).await;
    // Write through a follower, so redirects are exercised.
    let via = if leader == 1 { 2 } else { 1 };
    for i in 0..30 {
        put(&c, via, &format!("k{i}"), &format!("v{i}"), i + 1).await;
    }
    c.kill(leader);
    let live: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();
    let new_leader = wait_leader(&c, &live).await;
    assert_ne!(new_leader, leader);
    for i in 0..30 {
        assert_eq!(
            get(&c, live[0], &format!("k{i}")).await,
            Some(format!("v{i}")),
            "acknowledged write k{i} lost"
        );
    }
    for i in 30..40 {
        put(&c, live[0], &format!("k{i}"), &format!("v{i}"), i + 1).await;
    }
    c.spawn(leader);
    let s = wait_caught_up(&c, leader, new_leader).await;
    assert!(
        s.applied_index >= 40,
        "restarted node applied only {}",
        s.applied_index
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_log_was_compacted_away_catches_up_by_snapshot() {
    let mut c = Cluster::start(3, &["--snapshot-every", "20"]);
    let leader = wait_leader(&c, &[1, 2, 3]).await;
    let lagger = if leader == 3 { 2 } else { 3 };
    c.kill(lagger);
    for i in 0..80 {
        put(&c, leader, &format!("s{i}"), &format!("{i}"), i + 1).await;
    }
    let ls = status(&c.addr(leader)).await.unwrap();
    assert!(ls.snapshot_index > 0, "the leader never compacted its log");
    c.spawn(lagger);
    let s = wait_caught_up(&c, lagger, leader).await;
    assert!(
        s.snapshot_index > 0,
        "the lagging node caught up without a snapshot\n{}",
        c.log(lagger)
    );
    // The lagging node can now serve as leader with all the data.
    c.kill(leader);
    let live: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();
    wait_leader(&c, &live).await;
    for i in [0, 41, 79] {
        assert_eq!(
            get(&c, lagger, &format!("s{i}")).await,
            Some(format!("{i}"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_peers_elects_itself_and_serves() {
    let c = Cluster::start(1, &[]);
    assert_eq!(wait_leader(&c, &[1]).await, 1);
    put(&c, 1, "solo", "yes", 1).await;
    assert_eq!(get(&c, 1, "solo").await.as_deref(), Some("yes"));
    assert_eq!(get(&c, 1, "absent").await, None);
}

fn run_node(args: &[&str]) -> (i32, String) {
    let out = Command::new(NODE)
        .args(args)
        .output()
        .expect("run raft-node");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_flags_exit_2_with_a_message() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_str().unwrap();
    for args in [
        vec!["--id", "0", "--data-dir", dir],
        vec!["--id", "1"],
        vec!["--id", "1", "--data-dir", dir, "--peer", "nonsense"],
        vec!["--id", "1", "--data-dir", dir, "--peer", "1=127.0.0.1:1"],
        vec!["--id", "1", "--data-dir", dir, "--bug", "no-such-bug"],
        vec!["--id", "1", "--data-dir", dir, "--read-mode", "guess"],
    ] {
        let (code, err) = run_node(&args);
        assert_eq!(code, 2, "{args:?} exited {code}: {err}");
        assert!(!err.trim().is_empty(), "{args:?} gave no message");
    }
}

#[test]
fn a_data_dir_of_another_node_or_in_use_is_refused_with_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("n");
    let dir = dir.to_str().unwrap();
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut first = Command::new(NODE)
        .args(["--id", "1", "--data-dir", dir, "--listen", &listen])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first node holds the lock (it has created its files).
    let start = Instant::now();
    while std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0) == 0 && start.elapsed() < PATIENCE
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let listen2 = format!("127.0.0.1:{}", free_port());
    let (code, err) = run_node(&["--id", "1", "--data-dir", dir, "--listen", &listen2]);
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(
        code, 2,
        "a second process on a locked data dir exited {code}: {err}"
    );
    let (code, err) = run_node(&["--id", "2", "--data-dir", dir, "--listen", &listen2]);
    assert_eq!(
        code, 2,
        "a data dir of node 1 opened as node 2 exited {code}: {err}"
    );
    assert!(
        err.contains('1') && err.contains('2'),
        "message should name both ids: {err}"
    );
}
