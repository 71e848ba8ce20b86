//! Process control, for any target: spawns node processes, each in its own
//! process group with its own data dir and log file, and pauses, kills,
//! restarts and reaps them. What a process is started with comes from the
//! target (a [`CommandLine`]).
//!
//! Every spawned process group is also entered in a process-wide registry so
//! that a panic hook or a signal handler can resume and kill every node even
//! when the `Cluster` value is out of reach.

use anyhow::{bail, Context, Result};
use nix::sys::signal::{self, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Process groups (= leader PIDs) spawned by this process and not yet reaped.
static LIVE_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn register(pid: i32) {
    LIVE_GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(pid);
}

fn unregister(pid: i32) {
    LIVE_GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|p| *p != pid);
}

/// Resumes and kills every process group this process spawned and reaps the
/// group leaders; safe to call from a panic hook or after a signal.
pub fn kill_all_registered() {
    let groups: Vec<i32> =
        std::mem::take(&mut *LIVE_GROUPS.lock().unwrap_or_else(|e| e.into_inner()));
    for pid in &groups {
        // SIGCONT first: a stopped process would still die of SIGKILL, but
        // resuming makes the order of events in its log obvious.
        let _ = signal::killpg(Pid::from_raw(*pid), Signal::SIGCONT);
        let _ = signal::killpg(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    for pid in &groups {
        let _ = waitpid(Pid::from_raw(*pid), None);
    }
}

/// PIDs spawned by this process that are still registered (for tests).
pub fn registered_pids() -> Vec<i32> {
    LIVE_GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Finds a free TCP port on 127.0.0.1 by binding to port 0 (and releasing
/// it: anything may take it next; a node's port is a [`PortHold`]).
pub fn free_local_addr() -> Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// A loopback port the driver holds for one node for the whole run, so
/// that no other process can take it between the driver choosing it and
/// the node listening on it, nor while the node is down (killed, crashed)
/// and before it is restarted: a socket bound to the port with
/// SO_REUSEADDR that never listens.
///
/// On Linux two SO_REUSEADDR sockets may share a port as long as at most
/// one listens, so the node (raft-node's tokio listener and etcd's Go
/// listener both set SO_REUSEADDR) binds and listens beside the hold. What
/// took a node's port before is kept out: the kernel never hands a held
/// port to a port-0 bind (how other drivers and most programs pick ports)
/// nor to an outgoing connection, and a bind without SO_REUSEADDR fails
/// with "Address already in use". (A process that binds that very port on
/// purpose with SO_REUSEADDR and listens still can: that is a fixed port,
/// not a race.) As the hold never listens, a connection to a node that is
/// down is still refused, as it would be without the hold.
pub struct PortHold {
    socket: tokio::net::TcpSocket,
    addr: SocketAddr,
}

impl PortHold {
    /// Holds a free port on 127.0.0.1.
    pub fn new() -> Result<PortHold> {
        let socket = tokio::net::TcpSocket::new_v4().context("creating a socket")?;
        socket.set_reuseaddr(true).context("SO_REUSEADDR")?;
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .context("binding 127.0.0.1:0")?;
        let addr = socket.local_addr().context("the held port")?;
        Ok(PortHold { socket, addr })
    }

    /// The held address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl std::fmt::Debug for PortHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let _ = &self.socket;
        write!(f, "PortHold({})", self.addr)
    }
}

/// How to start one node: its id, its listen address, the addresses it uses
/// for its peers (proxy ports in a test), its data dir and its log file.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Raft id, 1-based.
    pub id: u64,
    /// Client and peer listen address of the node itself.
    pub listen: SocketAddr,
    /// `--peer ID=ADDR` entries.
    pub peers: BTreeMap<u64, SocketAddr>,
    /// Data directory, kept across restarts.
    pub data_dir: PathBuf,
    /// File receiving the node's stdout and stderr (appended across restarts).
    pub log_path: PathBuf,
    /// Environment variables set for the process (e.g. libfaketime's, for
    /// the clock fault), on top of the driver's own.
    pub env: Vec<(String, String)>,
    /// How many times this node's process was started before (0 on the
    /// first start; the cluster counts): a target may derive per-boot
    /// arguments from it (raft-node's `--seed`).
    pub boot: u64,
}

/// The state the driver believes a node is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Running (as far as the driver knows).
    Running,
    /// Stopped with SIGSTOP.
    Paused,
    /// Killed and reaped; can be restarted.
    Down,
}

struct NodeProc {
    spec: NodeSpec,
    child: Option<Child>,
    state: NodeState,
    /// When the running process was spawned (the clock fault computes the
    /// node's clock from its age).
    started: Option<Instant>,
    /// An exit seen by [`Cluster::reap_exited`] and not yet taken by
    /// [`Cluster::take_exit`] or [`Cluster::check_exited`].
    pending_exit: Option<ExitRecord>,
}

/// A node process that exited on its own (the driver did not kill it).
#[derive(Debug, Clone)]
pub struct ExitRecord {
    /// The node.
    pub id: u64,
    /// How it ended, in words ("exit status: 1", "signal: 6 (SIGABRT)").
    pub status: String,
    /// Its exit code, if it exited (not killed by a signal).
    pub code: Option<i32>,
    /// When the driver noticed.
    pub at: Instant,
}

/// A set of node processes started from one binary.
pub struct Cluster {
    bin: PathBuf,
    nodes: BTreeMap<u64, NodeProc>,
    command_line: CommandLine,
    /// Every exit the driver did not cause, in the order noticed.
    exits: Vec<ExitRecord>,
}

/// Builds the whole argument list of one process from its spec; each
/// target has its own.
pub type CommandLine = std::sync::Arc<dyn Fn(&NodeSpec) -> Vec<String> + Send + Sync>;

impl Cluster {
    /// Creates a cluster description; no process is started yet.
    pub fn new(bin: PathBuf, specs: Vec<NodeSpec>, command_line: CommandLine) -> Self {
        let nodes = specs
            .into_iter()
            .map(|spec| {
                (
                    spec.id,
                    NodeProc {
                        spec,
                        child: None,
                        state: NodeState::Down,
                        started: None,
                        pending_exit: None,
                    },
                )
            })
            .collect();
        Cluster {
            bin,
            nodes,
            command_line,
            exits: Vec::new(),
        }
    }

    /// The ids of all nodes, ascending.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// The spec of node `id`.
    pub fn spec(&self, id: u64) -> Option<&NodeSpec> {
        self.nodes.get(&id).map(|n| &n.spec)
    }

    /// The state of node `id` as the driver last set it.
    pub fn state(&self, id: u64) -> Option<NodeState> {
        self.nodes.get(&id).map(|n| n.state)
    }

    /// When node `id`'s process was spawned, if it runs (or is paused).
    pub fn started_at(&self, id: u64) -> Option<Instant> {
        self.nodes
            .get(&id)
            .filter(|n| n.child.is_some())
            .and_then(|n| n.started)
    }

    /// PIDs of node processes currently alive (running or paused).
    pub fn pids(&self) -> Vec<i32> {
        self.nodes
            .values()
            .filter_map(|n| n.child.as_ref().map(|c| c.id() as i32))
            .collect()
    }

    /// Starts every node that is down.
    pub fn start_all(&mut self) -> Result<()> {
        for id in self.ids() {
            if self.nodes[&id].state == NodeState::Down {
                self.start(id)?;
            }
        }
        Ok(())
    }

    /// Starts node `id` (which must be down) on its data dir.
    pub fn start(&mut self, id: u64) -> Result<()> {
        self.start_with_args(id, &[])
    }

    /// Starts node `id` like [`Cluster::start`], with `more` arguments for
    /// this start only (e.g. a failpoint armed from the first instant).
    pub fn start_with_args(&mut self, id: u64, more: &[String]) -> Result<()> {
        let bin = self.bin.clone();
        let command_line = self.command_line.clone();
        let node = self.node_mut(id)?;
        if node.state != NodeState::Down {
            bail!("node {id} is already running");
        }
        node.pending_exit = None;
        std::fs::create_dir_all(&node.spec.data_dir)
            .with_context(|| format!("creating {}", node.spec.data_dir.display()))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.spec.log_path)
            .with_context(|| format!("opening {}", node.spec.log_path.display()))?;
        let mut cmd = Command::new(&bin);
        cmd.args(command_line(&node.spec))
            .args(more)
            .envs(node.spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Own process group: signals to the group reach anything the node
            // forks, and a ctrl-c in the terminal does not hit nodes directly.
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; it makes the kernel kill the node
        // if the thread that spawned it dies (e.g. the driver is SIGKILLed).
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {} for node {id}", bin.display()))?;
        register(child.id() as i32);
        node.spec.boot += 1;
        node.started = Some(Instant::now());
        node.child = Some(child);
        node.state = NodeState::Running;
        Ok(())
    }

    /// Sends SIGSTOP to node `id`'s process group.
    pub fn pause(&mut self, id: u64) -> Result<()> {
        let node = self.node_mut(id)?;
        if node.state != NodeState::Running {
            return Ok(());
        }
        let pid = node.pid().context("no process")?;
        signal::killpg(Pid::from_raw(pid), Signal::SIGSTOP).context("SIGSTOP")?;
        node.state = NodeState::Paused;
        Ok(())
    }

    /// Sends SIGCONT to node `id`'s process group.
    pub fn resume(&mut self, id: u64) -> Result<()> {
        let node = self.node_mut(id)?;
        if node.state != NodeState::Paused {
            return Ok(());
        }
        let pid = node.pid().context("no process")?;
        signal::killpg(Pid::from_raw(pid), Signal::SIGCONT).context("SIGCONT")?;
        node.state = NodeState::Running;
        Ok(())
    }

    /// SIGKILLs node `id`'s process group and reaps it.
    pub fn kill(&mut self, id: u64) -> Result<()> {
        let node = self.node_mut(id)?;
        node.kill_and_reap();
        Ok(())
    }

    /// Kills (if needed) and starts node `id` again on the same data dir.
    pub fn restart(&mut self, id: u64) -> Result<()> {
        self.kill(id)?;
        self.start(id)
    }

    /// Reaps every node process that has exited on its own (the driver did
    /// not kill it): marks it down, logs it (see [`Cluster::exits`]) and
    /// keeps it for [`Cluster::check_exited`].
    pub fn reap_exited(&mut self) {
        for (&id, node) in self.nodes.iter_mut() {
            let Some(child) = node.child.as_mut() else {
                continue;
            };
            if let Ok(Some(status)) = child.try_wait() {
                unregister(child.id() as i32);
                node.child = None;
                node.state = NodeState::Down;
                let record = ExitRecord {
                    id,
                    status: status.to_string(),
                    code: status.code(),
                    at: Instant::now(),
                };
                node.pending_exit = Some(record.clone());
                self.exits.push(record);
            }
        }
    }

    /// Returns the exit description of node `id` if its process has exited
    /// on its own since the last call (the driver did not kill it), and
    /// marks it down.
    pub fn check_exited(&mut self, id: u64) -> Option<String> {
        self.take_exit(id).map(|e| e.status)
    }

    /// Like [`Cluster::check_exited`], with the whole record (exit code
    /// included).
    pub fn take_exit(&mut self, id: u64) -> Option<ExitRecord> {
        self.reap_exited();
        self.nodes.get_mut(&id)?.pending_exit.take()
    }

    /// Every exit the driver did not cause so far, oldest first.
    pub fn exits(&self) -> &[ExitRecord] {
        &self.exits
    }

    /// Resumes and kills every node and reaps them all.
    pub fn shutdown(&mut self) {
        for node in self.nodes.values_mut() {
            node.kill_and_reap();
        }
    }

    fn node_mut(&mut self, id: u64) -> Result<&mut NodeProc> {
        match self.nodes.get_mut(&id) {
            Some(n) => Ok(n),
            None => bail!("no node {id}"),
        }
    }
}

impl NodeProc {
    fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    fn kill_and_reap(&mut self) {
        self.pending_exit = None;
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            let _ = signal::killpg(Pid::from_raw(pid), Signal::SIGCONT);
            let _ = signal::killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = child.wait();
            unregister(pid);
        }
        self.state = NodeState::Down;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Reads the state letter of `/proc/PID/stat` ('R', 'S', 'T' for stopped,
/// 'Z' for zombie), or None if the process does not exist.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// Whether `pid` names a live process (not a zombie, not gone).
pub fn is_alive(pid: i32) -> bool {
    matches!(proc_state(pid), Some(c) if c != 'Z' && c != 'X')
}

/// Waits up to `timeout` for `pid` to be reaped or become a zombie.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !is_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !is_alive(pid)
}

/// Reaps any child that has exited without blocking (used by tests).
pub fn reap_any() {
    while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if matches!(status, WaitStatus::StillAlive) {
            break;
        }
    }
}

/// The data and log paths of node `id` under a run folder.
pub fn node_paths(run_dir: &Path, id: u64) -> (PathBuf, PathBuf) {
    (
        run_dir.join("data").join(format!("n{id}")),
        run_dir.join("nodes").join(format!("n{id}.log")),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The registry is process-wide: tests that spawn must not run at once,
    /// or one test's `kill_all_registered` would kill another's processes.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// Takes the lock every spawning test of this crate holds.
    pub(crate) fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A socket bound without SO_REUSEADDR, as an outgoing connection's
    /// source port is: what made a node's bind fail.
    pub(crate) fn bind_without_reuse(a: SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
        let s = tokio::net::TcpSocket::new_v4()?;
        s.set_reuseaddr(false)?;
        s.bind(a)?;
        Ok(s)
    }

    /// What a node's port hold promises: a bind of the port without
    /// SO_REUSEADDR fails, a port-0 bind is never given it, yet the node
    /// (binding as tokio does, with SO_REUSEADDR) listens on it, again
    /// after a restart, and a connection while it is down is refused.
    #[tokio::test]
    async fn a_held_port_is_the_nodes_alone_and_refuses_while_the_node_is_down() {
        let hold = PortHold::new().unwrap();
        let addr = hold.addr();
        // Without the hold, a port chosen by binding port 0 is anyone's.
        let free = free_local_addr().unwrap();
        let squatter = bind_without_reuse(free).unwrap();
        let e = tokio::net::TcpListener::bind(free).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        drop(squatter);
        // With it, another process cannot take the port...
        let e = bind_without_reuse(addr).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
        let given: Vec<SocketAddr> = (0..500).map(|_| free_local_addr().unwrap()).collect();
        assert!(
            !given.contains(&addr),
            "a port-0 bind was given the held port"
        );
        // ...but the node can, twice (a restart), and while it is down a
        // client is refused, not queued.
        for _ in 0..2 {
            let node = tokio::net::TcpListener::bind(addr).await.unwrap();
            let e = bind_without_reuse(addr).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
            let e = std::net::TcpListener::bind(addr).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
            let c = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (_s, _) = node.accept().await.unwrap();
            drop(c);
            drop(node);
            let e = tokio::net::TcpStream::connect(addr).await.unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        drop(hold);
        bind_without_reuse(addr).expect("the port is free once the hold is dropped");
    }

    /// A cluster of `n` stand-in nodes that ignore their flags and sleep.
    pub(crate) fn sleep_cluster(dir: &Path, n: u64) -> Cluster {
        // A script that ignores the node flags and sleeps stands in for a node.
        let script = dir.join("fake-node.sh");
        std::fs::write(&script, "#!/bin/sh\nexec sleep 300\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let specs = (1..=n)
            .map(|id| {
                let (data_dir, log_path) = node_paths(dir, id);
                std::fs::create_dir_all(log_path.parent().unwrap()).unwrap();
                NodeSpec {
                    id,
                    listen: "127.0.0.1:1".parse().unwrap(),
                    peers: BTreeMap::new(),
                    data_dir,
                    log_path,
                    env: Vec::new(),
                    boot: 0,
                }
            })
            .collect();
        Cluster::new(script, specs, crate::target::raft::command_line(Vec::new()))
    }

    #[test]
    fn pause_resume_kill_restart_change_process_state() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let mut c = sleep_cluster(dir.path(), 2);
        c.start_all().unwrap();
        let pid1 = c.nodes[&1].pid().unwrap();
        c.pause(1).unwrap();
        assert_eq!(c.state(1), Some(NodeState::Paused));
        // SIGSTOP delivery is asynchronous; wait for the kernel to show it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while proc_state(pid1) != Some('T') && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(proc_state(pid1), Some('T'));
        c.resume(1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while proc_state(pid1) == Some('T') && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_ne!(proc_state(pid1), Some('T'));
        c.kill(1).unwrap();
        assert_eq!(proc_state(pid1), None, "killed node must be reaped");
        assert_eq!(c.state(1), Some(NodeState::Down));
        c.restart(1).unwrap();
        let pid1b = c.nodes[&1].pid().unwrap();
        assert_ne!(pid1, pid1b);
        assert!(is_alive(pid1b));
        let all = c.pids();
        c.shutdown();
        for pid in all {
            assert_eq!(proc_state(pid), None, "pid {pid} outlived shutdown");
        }
    }

    #[test]
    fn each_start_of_a_node_tells_its_command_line_which_boot_it_is() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let mut c = sleep_cluster(dir.path(), 2);
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let inner = c.command_line.clone();
        let log = seen.clone();
        c.command_line = std::sync::Arc::new(move |s: &NodeSpec| {
            log.lock().unwrap().push((s.id, s.boot));
            inner(s)
        });
        c.start_all().unwrap();
        c.restart(2).unwrap();
        c.kill(2).unwrap();
        c.start(2).unwrap();
        c.shutdown();
        assert_eq!(*seen.lock().unwrap(), [(1, 0), (2, 0), (2, 1), (2, 2)]);
    }

    #[test]
    fn dropping_a_cluster_kills_paused_nodes() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let mut c = sleep_cluster(dir.path(), 3);
        c.start_all().unwrap();
        c.pause(2).unwrap();
        let pids = c.pids();
        assert_eq!(pids.len(), 3);
        drop(c);
        for pid in pids {
            assert_eq!(proc_state(pid), None, "pid {pid} outlived the cluster");
            assert!(!registered_pids().contains(&pid));
        }
    }

    #[test]
    fn kill_all_registered_kills_nodes_of_a_leaked_cluster() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let mut c = sleep_cluster(dir.path(), 2);
        c.start_all().unwrap();
        c.pause(1).unwrap();
        let pids = c.pids();
        // Simulates a panic path where the Cluster is never dropped.
        std::mem::forget(c);
        kill_all_registered();
        for pid in pids {
            assert_eq!(
                proc_state(pid),
                None,
                "pid {pid} survived kill_all_registered"
            );
        }
    }

    #[test]
    fn node_log_receives_the_node_output() {
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("echo-node.sh");
        std::fs::write(&script, "#!/bin/sh\necho \"args: $*\" >&2\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (data_dir, log_path) = node_paths(dir.path(), 1);
        std::fs::create_dir_all(log_path.parent().unwrap()).unwrap();
        let mut peers = BTreeMap::new();
        peers.insert(2, "127.0.0.1:4002".parse().unwrap());
        let spec = NodeSpec {
            id: 1,
            listen: "127.0.0.1:4001".parse().unwrap(),
            peers,
            data_dir: data_dir.clone(),
            log_path: log_path.clone(),
            env: Vec::new(),
            boot: 0,
        };
        let mut c = Cluster::new(
            script,
            vec![spec],
            crate::target::raft::command_line(vec!["--bug".into(), "x".into()]),
        );
        c.start(1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.check_exited(1).is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let log = std::fs::read_to_string(&log_path).unwrap();
        assert!(log.contains("--id 1 --listen 127.0.0.1:4001"), "{log}");
        assert!(log.contains("--peer 2=127.0.0.1:4002 --bug x"), "{log}");
        assert!(data_dir.is_dir());
    }
}
