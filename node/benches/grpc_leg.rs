//! Where a client's gRPC unary call spends its time (issue 15.4).
//!
//! One raft-node (a one-node cluster, so a Status call is one hop into its
//! core loop and back with no peers and no disk) and, from this process,
//! round trips of each kind one at a time, interleaved in rounds so that
//! the machine's drift falls on all of them alike:
//!
//! - `tcp std threads`: 64 bytes to an echo thread and back (the floor
//!   `raft-driver bench --floor` measures);
//! - `tcp tokio tasks`: the same between two tokio tasks (the client's
//!   runtime and an echo runtime of two workers), the cost of tokio's
//!   wakeups on both ends;
//! - `tonic Channel`: Status through tonic's `Channel`, as raft-driver and
//!   raft-kv call the node (a tower Buffer task in front of hyper's
//!   connection task);
//! - `hyper direct`: the same call through hyper's HTTP/2 `SendRequest`
//!   with no Buffer task in between;
//! - `tonic bare server`: Status through tonic's `Channel` to a tonic
//!   server in another process (this bench run again, two workers) that
//!   answers at once, with no core loop behind it: tonic alone, on both
//!   ends;
//!
//! each from a client runtime of two workers (as raft-driver's) and from a
//! current-thread runtime, against a node with its default two workers and
//! with one (`--worker-threads 1`).
//!
//!     cargo bench -p raft-node --bench grpc_leg [-- ROUNDS CALLS]

use raft_proto::kvpb::{
    self,
    kv_client::KvClient,
    kv_server::{Kv, KvServer},
};
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{Request, Response, Status};

const PING_BYTES: usize = 64;

/// A raft-node killed and reaped when dropped (its data dir with it).
struct Node {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn start_node(worker_threads: u16) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let child = Command::new(env!("CARGO_BIN_EXE_raft-node"))
        .args(["--id", "1", "--listen", &addr.to_string()])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--worker-threads", &worker_threads.to_string()])
        .args(["--election-timeout-ms", "150", "--heartbeat-ms", "50"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning raft-node");
    Node {
        child,
        addr,
        _dir: dir,
    }
}

/// hyper's HTTP/2 sender as the tower service tonic's generated client
/// calls: no Buffer task between the caller and the connection task.
#[derive(Clone)]
struct Direct(hyper::client::conn::http2::SendRequest<tonic::body::Body>);

impl tower_service::Service<http::Request<tonic::body::Body>> for Direct {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.0.send_request(req))
    }
}

async fn direct_client(addr: SocketAddr) -> KvClient<Direct> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let origin = format!("http://{addr}").parse().unwrap();
    KvClient::with_origin(Direct(sender), origin)
}

async fn channel_client(addr: SocketAddr) -> KvClient<tonic::transport::Channel> {
    let ch = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .tcp_nodelay(true)
        .connect()
        .await
        .unwrap();
    KvClient::new(ch)
}

/// Waits until the one-node cluster leads (its Status says so).
async fn wait_leader(addr: SocketAddr) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok(ch) = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
        {
            if let Ok(s) = KvClient::new(ch).status(kvpb::StatusRequest {}).await {
                if s.into_inner().role == "leader" {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the one-node cluster at {addr} never led");
}

/// One series of measured round trips.
#[derive(Default)]
struct Series(Vec<u64>);

impl Series {
    fn pct(&mut self, p: f64) -> u64 {
        self.0.sort_unstable();
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0.get(i).copied().unwrap_or(0)
    }
}

/// Times `calls` awaits of `f`, after a few untimed ones.
async fn time_calls<F, Fut>(calls: usize, out: &mut Series, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..20 {
        f().await;
    }
    for _ in 0..calls {
        let t = Instant::now();
        f().await;
        out.0.push(t.elapsed().as_micros() as u64);
    }
}

/// A Kv server that answers Status at once and nothing else.
struct Bare;

type Answer<T> = Result<Response<T>, Status>;

fn no<T>() -> Answer<T> {
    Err(Status::unimplemented(
        "the bare bench server answers Status only",
    ))
}

#[tonic::async_trait]
impl Kv for Bare {
    async fn get(&self, _: Request<kvpb::GetRequest>) -> Answer<kvpb::GetResponse> {
        no()
    }
    async fn put(&self, _: Request<kvpb::PutRequest>) -> Answer<kvpb::WriteResponse> {
        no()
    }
    async fn cas(&self, _: Request<kvpb::CasRequest>) -> Answer<kvpb::WriteResponse> {
        no()
    }
    async fn append(&self, _: Request<kvpb::AppendRequest>) -> Answer<kvpb::WriteResponse> {
        no()
    }
    async fn delete(&self, _: Request<kvpb::DeleteRequest>) -> Answer<kvpb::WriteResponse> {
        no()
    }
    async fn status(&self, _: Request<kvpb::StatusRequest>) -> Answer<kvpb::StatusResponse> {
        Ok(Response::new(kvpb::StatusResponse {
            id: 1,
            role: "leader".into(),
            ..Default::default()
        }))
    }
    async fn transfer_leader(
        &self,
        _: Request<kvpb::TransferLeaderRequest>,
    ) -> Answer<kvpb::AdminResponse> {
        no()
    }
    async fn add_voter(&self, _: Request<kvpb::MemberRequest>) -> Answer<kvpb::AdminResponse> {
        no()
    }
    async fn add_learner(&self, _: Request<kvpb::MemberRequest>) -> Answer<kvpb::AdminResponse> {
        no()
    }
    async fn remove_node(&self, _: Request<kvpb::MemberRequest>) -> Answer<kvpb::AdminResponse> {
        no()
    }
    async fn failpoint(&self, _: Request<kvpb::FailpointRequest>) -> Answer<kvpb::AdminResponse> {
        no()
    }
}

/// Set in the environment of this bench run again as the bare server.
const BARE_ENV: &str = "GRPC_LEG_BARE_SERVER";

/// Serves `Bare` on two workers and prints its address; runs until killed.
fn serve_bare() -> ! {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let l = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    println!("{}", l.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    rt.block_on(
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(KvServer::new(Bare))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l)),
    )
    .unwrap();
    std::process::exit(0)
}

/// The bare server process, killed and reaped when dropped.
struct BareServer(Child, SocketAddr);

impl Drop for BareServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_bare() -> BareServer {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(BARE_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the bare server");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr = line.trim().parse().expect("the bare server's address");
    BareServer(child, addr)
}

fn std_echo() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                s.set_nodelay(true).unwrap();
                let mut buf = [0u8; PING_BYTES];
                while s.read_exact(&mut buf).is_ok() {
                    if s.write_all(&buf).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn tokio_echo(rt: &tokio::runtime::Runtime) -> SocketAddr {
    let l = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = l.local_addr().unwrap();
    rt.spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                s.set_nodelay(true).unwrap();
                let mut buf = [0u8; PING_BYTES];
                while s.read_exact(&mut buf).await.is_ok() {
                    if s.write_all(&buf).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

const KINDS: [&str; 5] = [
    "tcp std threads",
    "tcp tokio tasks",
    "tonic Channel",
    "hyper direct",
    "tonic bare server",
];

/// Where each kind of call goes.
#[derive(Clone, Copy)]
struct Targets {
    node: SocketAddr,
    std_echo: SocketAddr,
    tokio_echo: SocketAddr,
    bare: SocketAddr,
}

/// Times `calls` Status calls through the client `$connect` makes, on a
/// task of the runtime (where raft-driver's clients run), into `$series`.
macro_rules! status_on_task {
    ($series:expr, $calls:expr, $connect:expr) => {{
        let mut s = std::mem::take($series);
        let calls = $calls;
        *$series = tokio::spawn(async move {
            let cl = $connect.await;
            time_calls(calls, &mut s, || {
                let mut cl = cl.clone();
                async move {
                    cl.status(kvpb::StatusRequest {}).await.unwrap();
                }
            })
            .await;
            s
        })
        .await
        .unwrap();
    }};
}

/// One round of every kind from `rt`, `calls` each.
fn round(rt: &tokio::runtime::Runtime, to: Targets, calls: usize, series: &mut [Series; 5]) {
    let node = to.node;
    // std threads: this thread is the client.
    let mut c = TcpStream::connect(to.std_echo).unwrap();
    c.set_nodelay(true).unwrap();
    let mut buf = [7u8; PING_BYTES];
    for i in 0..calls + 20 {
        let t = Instant::now();
        c.write_all(&buf).unwrap();
        c.read_exact(&mut buf).unwrap();
        if i >= 20 {
            series[0].0.push(t.elapsed().as_micros() as u64);
        }
    }
    let [_, tcp, chan, direct, bare] = series;
    rt.block_on(async {
        // Each measured on a task of the runtime, as raft-driver's clients.
        let mut s = std::mem::take(tcp);
        s = tokio::spawn(async move {
            let mut c = tokio::net::TcpStream::connect(to.tokio_echo).await.unwrap();
            c.set_nodelay(true).unwrap();
            let mut buf = [7u8; PING_BYTES];
            for i in 0..calls + 20 {
                let t = Instant::now();
                c.write_all(&buf).await.unwrap();
                c.read_exact(&mut buf).await.unwrap();
                if i >= 20 {
                    s.0.push(t.elapsed().as_micros() as u64);
                }
            }
            s
        })
        .await
        .unwrap();
        *tcp = s;

        status_on_task!(chan, calls, channel_client(node));
        status_on_task!(direct, calls, direct_client(node));
        status_on_task!(bare, calls, channel_client(to.bare));
    });
}

fn main() {
    if std::env::var_os(BARE_ENV).is_some() {
        serve_bare();
    }
    // `cargo bench` passes `--bench`; the two numbers are ours.
    let nums: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rounds = nums.first().copied().unwrap_or(5);
    let calls = nums.get(1).copied().unwrap_or(400);

    let echo_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let std_addr = std_echo();
    let tokio_addr = tokio_echo(&echo_rt);
    let bare = start_bare();
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    println!(
        "grpc_leg: {rounds} rounds x {calls} calls per kind, one call at a time; microseconds"
    );
    println!(
        "{:<11} {:<22} {:<16} {:>6} {:>6}",
        "node", "client runtime", "call", "p50", "p99"
    );
    for node_threads in [2u16, 1] {
        let node = start_node(node_threads);
        multi.block_on(wait_leader(node.addr));
        let to = Targets {
            node: node.addr,
            std_echo: std_addr,
            tokio_echo: tokio_addr,
            bare: bare.1,
        };
        let mut by_client: Vec<(&str, [Series; 5])> = vec![
            ("multi-thread, 2", Default::default()),
            ("current-thread", Default::default()),
        ];
        for _ in 0..rounds {
            for (name, series) in by_client.iter_mut() {
                let rt = if name.starts_with("multi") {
                    &multi
                } else {
                    &single
                };
                round(rt, to, calls, series);
            }
        }
        for (name, series) in by_client.iter_mut() {
            for (kind, s) in KINDS.iter().zip(series.iter_mut()) {
                println!(
                    "{:<11} {:<22} {:<16} {:>6} {:>6}",
                    format!("{node_threads} worker(s)"),
                    name,
                    kind,
                    s.pct(0.5),
                    s.pct(0.99)
                );
            }
        }
    }
}
