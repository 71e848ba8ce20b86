//! raft-node's command line: the flags, and every check a start makes
//! before it touches anything (`--check-config` runs exactly these and
//! stops). A bad value is a message for exit code 2, never a panic.

use crate::bugs::{Bug, Bugs};
use crate::failpoint::Failpoint;
use crate::raft::{self, NodeId};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How reads are made linearizable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadMode {
    /// The leader confirms its leadership with a heartbeat round per batch of reads.
    ReadIndex,
    /// The leader serves reads while its lease (check-quorum) holds. Clock
    /// dependent: correct only while clocks drift less than the election
    /// timeout and no process is paused longer than the lease.
    Lease,
}

/// A member of a Raft key-value cluster.
#[derive(Debug, Parser)]
#[command(name = "raft-node", version, about)]
pub struct Args {
    /// This node's id (a positive integer, unique in the cluster).
    #[arg(long)]
    pub id: NodeId,
    /// Address to serve peers and clients on (HOST:PORT).
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub listen: String,
    /// Directory for the log, hard state and snapshots (created if absent).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Another member, as ID=HOST:PORT (repeat for each). None: a one-node cluster.
    #[arg(long = "peer", value_parser = parse_peer)]
    pub peers: Vec<(NodeId, String)>,
    /// Identifies the cluster; messages from another cluster are refused.
    #[arg(long, default_value_t = 1)]
    pub cluster_id: u64,
    /// Minimum election timeout; each election waits a random time in [T, 2T).
    #[arg(long, default_value_t = 1000)]
    pub election_timeout_ms: u64,
    /// Interval between leader heartbeats.
    #[arg(long, default_value_t = 100)]
    pub heartbeat_ms: u64,
    /// Seeds the core's randomness (its election timeouts) instead of a
    /// fresh random draw per process: the driver passes one derived from
    /// its run seed, the node and its boot, so that a replayed run draws
    /// the same timeouts in the same order.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads of the node's runtime (its gRPC server, peer links
    /// and core loop). Each hop between tasks on different workers wakes a
    /// thread, which the client path pays for on a small machine.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub worker_threads: u16,
    /// Snapshot the state machine and compact the log every N applied entries (0: never).
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_every: u64,
    /// How reads are made linearizable.
    #[arg(long, value_enum, default_value_t = ReadMode::ReadIndex)]
    pub read_mode: ReadMode,
    /// How long a client request waits for its outcome before "outcome unknown".
    #[arg(long, default_value_t = 5000)]
    pub request_timeout_ms: u64,
    /// Campaign without a pre-vote round (a node that was cut off then
    /// disrupts the cluster by raising the term when it returns).
    #[arg(long)]
    pub no_pre_vote: bool,
    /// Do not step down as leader without a majority's heartbeat answers,
    /// and do not ignore vote requests within a leader's lease.
    #[arg(long)]
    pub no_check_quorum: bool,
    /// Batching: at most this many log entries per AppendEntries. Small
    /// batches spread a follower's catch-up over many round trips.
    #[arg(long, default_value_t = 256)]
    pub max_append_entries: usize,
    /// Keep dialling each --peer at the address given here even when a
    /// membership change adds it back with another address (for a harness
    /// whose proxies give each node its own route to each peer).
    #[arg(long)]
    pub pin_peer_addrs: bool,
    /// Print a timestamped line to stderr at each step of a write's path
    /// (for scripts/write-path-breakdown.py; costs latency while on).
    #[arg(long)]
    pub trace_write_path: bool,
    /// Append structured events (boot, role changes, broken invariants,
    /// failpoints) to this file as JSON lines.
    #[arg(long)]
    pub events_file: Option<PathBuf>,
    /// Allow the test hooks: --bug, --failpoint and the Failpoint call.
    /// Never on a node that serves anyone but a test harness.
    #[arg(long)]
    pub test_hooks: bool,
    /// Switch on a deliberate defect (needs --test-hooks; `raft-node
    /// --list-bugs` prints the names, the README describes each).
    #[arg(long = "bug")]
    pub bugs: Vec<Bug>,
    /// Arm a crash point from the start (needs --test-hooks): crash-after-vote,
    /// crash-after-append, crash-during-snapshot-install,
    /// crash-during-compaction, crash-before-apply (`raft-node
    /// --list-failpoints` prints the names).
    #[arg(long = "failpoint")]
    pub failpoints: Vec<Failpoint>,
    /// Serve and dial over mutual TLS: DIR holds ca.pem (the cluster's CA),
    /// cert.pem and key.pem (this node's certificate, signed by that CA,
    /// naming the host it is dialled at). Clients and peers must show a
    /// certificate signed by the CA; admin and Failpoint calls need one
    /// naming "admin". Absent: plaintext.
    #[arg(long, value_name = "DIR")]
    pub tls_dir: Option<PathBuf>,
    /// Check every flag as a start would, print whether the configuration
    /// is valid and exit (0 valid, 2 not) without binding the port or
    /// touching the data dir.
    #[arg(long)]
    pub check_config: bool,
}

fn parse_peer(s: &str) -> Result<(NodeId, String), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ID=HOST:PORT, got {s:?}"))?;
    let id: NodeId = id.parse().map_err(|_| format!("bad peer id in {s:?}"))?;
    if id == 0 {
        return Err("peer id 0 is reserved".into());
    }
    check_addr(addr, false).map_err(|e| format!("peer {id}: {e}"))?;
    Ok((id, addr.to_string()))
}

/// Checks that `addr` is HOST:PORT (a port of 0 only if `any_port`),
/// without resolving the host.
pub fn check_addr(addr: &str, any_port: bool) -> Result<(), String> {
    let port = match addr.parse::<SocketAddr>() {
        Ok(sa) => sa.port(),
        Err(_) => {
            let (host, port) = addr
                .rsplit_once(':')
                .ok_or_else(|| format!("address {addr:?} is not HOST:PORT"))?;
            let host_ok = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
            if !host_ok {
                return Err(format!("address {addr:?} has a bad host {host:?}"));
            }
            port.parse::<u16>()
                .map_err(|_| format!("address {addr:?} has a bad port {port:?}"))?
        }
    };
    if port == 0 && !any_port {
        return Err(format!("address {addr:?} has port 0"));
    }
    Ok(())
}

impl Args {
    /// The deliberate defects switched on.
    pub fn bug_set(&self) -> Bugs {
        Bugs::new(self.bugs.iter().copied())
    }

    /// Every voter of the bootstrap configuration, sorted.
    pub fn voters(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.peers.iter().map(|p| p.0).chain([self.id]).collect();
        v.sort_unstable();
        v
    }

    /// How long a tick of the core is: 10 ms (or the heartbeat, if
    /// shorter), so that timeouts keep their resolution whatever the settings.
    pub fn tick(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms.clamp(1, 10))
    }

    /// The core's configuration (its `seed` is left for the caller).
    pub fn core_config(&self) -> raft::Config {
        let tick_ms = self.heartbeat_ms.clamp(1, 10);
        raft::Config {
            id: self.id,
            election_tick: self.election_timeout_ms / tick_ms,
            heartbeat_tick: (self.heartbeat_ms / tick_ms).max(1),
            pre_vote: !self.no_pre_vote,
            check_quorum: !self.no_check_quorum,
            lease_read: self.read_mode == ReadMode::Lease,
            bugs: self.bug_set(),
            max_msg_entries: self.max_append_entries,
            ..Default::default()
        }
    }

    /// Every check a start makes before it touches the network or the
    /// data dir; the message says what to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.id == 0 {
            return Err("--id must be positive".into());
        }
        self.validate_members()?;
        if self.heartbeat_ms == 0 || self.election_timeout_ms < 2 * self.heartbeat_ms {
            return Err(format!(
                "need --heartbeat-ms > 0 and --election-timeout-ms >= 2 x --heartbeat-ms \
                 (got --heartbeat-ms {} and --election-timeout-ms {})",
                self.heartbeat_ms, self.election_timeout_ms
            ));
        }
        if self.read_mode == ReadMode::Lease && self.no_check_quorum {
            return Err("--read-mode lease needs check-quorum (drop --no-check-quorum)".into());
        }
        if self.max_append_entries == 0 {
            return Err("--max-append-entries must be positive".into());
        }
        if self.cluster_id == 0 {
            return Err("--cluster-id must be positive".into());
        }
        if self.request_timeout_ms == 0 {
            return Err("--request-timeout-ms must be positive".into());
        }
        self.validate_test_hooks()?;
        if let Some(dir) = self.events_file.as_ref().and_then(|p| p.parent()) {
            if !dir.as_os_str().is_empty() && !dir.is_dir() {
                return Err(format!(
                    "--events-file: directory {} does not exist",
                    dir.display()
                ));
            }
        }
        if let Some(dir) = &self.tls_dir {
            crate::tls::TlsFiles::load(dir)?;
        }
        self.core_config()
            .validate()
            .map_err(|e| format!("timeouts: {e}"))
    }

    fn validate_members(&self) -> Result<(), String> {
        check_addr(&self.listen, true).map_err(|e| format!("--listen: {e}"))?;
        let mut ids: Vec<NodeId> = self.peers.iter().map(|p| p.0).collect();
        if ids.contains(&self.id) {
            return Err(format!("--peer lists this node's own id {}", self.id));
        }
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err("--peer lists an id twice".into());
        }
        Ok(())
    }

    fn validate_test_hooks(&self) -> Result<(), String> {
        if self.test_hooks {
            return Ok(());
        }
        if let Some(b) = self.bugs.first() {
            return Err(format!("--bug {b} needs --test-hooks"));
        }
        if let Some(p) = self.failpoints.first() {
            return Err(format!("--failpoint {p} needs --test-hooks"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<Args, String> {
        let base = ["raft-node", "--id", "1", "--data-dir", "/nonexistent/rr"];
        Args::try_parse_from(base.iter().chain(extra)).map_err(|e| e.to_string())
    }

    fn invalid(extra: &[&str]) -> String {
        match args(extra) {
            Ok(a) => a.validate().expect_err("must be refused"),
            Err(e) => e,
        }
    }

    #[test]
    fn the_defaults_are_valid() {
        args(&[]).unwrap().validate().unwrap();
    }

    #[test]
    fn timeouts_that_cannot_elect_are_refused_with_the_values() {
        let e = invalid(&["--election-timeout-ms", "0"]);
        assert!(e.contains("--election-timeout-ms 0"), "{e}");
        let e = invalid(&["--heartbeat-ms", "5000"]);
        assert!(e.contains("--heartbeat-ms 5000"), "{e}");
        assert!(invalid(&["--heartbeat-ms", "0"]).contains("--heartbeat-ms > 0"));
    }

    #[test]
    fn the_append_batch_reaches_the_core_and_zero_is_refused() {
        let a = args(&["--max-append-entries", "4"]).unwrap();
        a.validate().unwrap();
        assert_eq!(a.core_config().max_msg_entries, 4);
        assert_eq!(args(&[]).unwrap().core_config().max_msg_entries, 256);
        let e = invalid(&["--max-append-entries", "0"]);
        assert!(e.contains("--max-append-entries must be positive"), "{e}");
    }

    #[test]
    fn bugs_and_failpoints_need_test_hooks() {
        let e = invalid(&["--bug", "stale-read"]);
        assert_eq!(e, "--bug stale-read needs --test-hooks");
        let e = invalid(&["--failpoint", "crash-before-apply"]);
        assert_eq!(e, "--failpoint crash-before-apply needs --test-hooks");
        let ok = args(&[
            "--test-hooks",
            "--bug",
            "stale-read",
            "--failpoint",
            "crash-after-vote",
        ]);
        ok.unwrap().validate().unwrap();
    }

    #[test]
    fn misspelled_names_and_bad_addresses_are_refused() {
        let e = invalid(&["--test-hooks", "--bug", "stale-reed"]);
        assert!(e.contains("unknown bug \"stale-reed\""), "{e}");
        assert!(invalid(&["--failpoint", "crash-sometimes"]).contains("unknown failpoint"));
        assert!(invalid(&["--listen", "nonsense"]).contains("not HOST:PORT"));
        assert!(invalid(&["--peer", "2=host:99999"]).contains("bad port"));
        assert!(invalid(&["--peer", "2=127.0.0.1:0"]).contains("port 0"));
        assert!(invalid(&["--peer", "1=127.0.0.1:7002"]).contains("own id"));
        args(&["--listen", "localhost:0", "--peer", "2=node-2.local:7002"])
            .unwrap()
            .validate()
            .unwrap();
    }

    #[test]
    fn lease_reads_need_check_quorum() {
        let e = invalid(&["--read-mode", "lease", "--no-check-quorum"]);
        assert!(e.contains("needs check-quorum"), "{e}");
    }
}
