//! The `run` command's options: parsed by clap, validated into a
//! [`RunConfig`] that is written verbatim to test.json.

use crate::nemesis::generate::ScheduleStyle;
use crate::nemesis::schedule::{NemesisKind, PartitionShape};
use crate::target::{ReadConsistency, TargetKind, TargetOptions};
use crate::workload::generator::GeneratorConfig;
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// Largest cluster the driver starts.
pub const MAX_NODES: usize = 5;

/// Command-line options of `raft-driver run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Number of nodes (1 to 5).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Length of the workload phase, in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub time_limit: f64,
    /// Client workers issuing operations concurrently.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// Total operations per second across all workers (unlimited if absent).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Faults: all, none, or a comma list of pause, kill, partition, slow,
    /// leader-transfer, membership, vote-crash, lagging-leader,
    /// deposed-leader, leader-churn, crash-point, messages, power-cut,
    /// clock (each described in docs/ARCHITECTURE.md; `all` is every kind
    /// but power-cut and clock, which change the machine the nodes run on
    /// and are asked for by name).
    #[arg(long, default_value = "all")]
    pub nemesis: String,
    /// Partition shapes: all, or a comma list of one, leader, halves,
    /// majorities-ring, bridge.
    #[arg(long, default_value = "all")]
    pub partition_shapes: String,
    /// Mean seconds of each fault and of each healed phase between faults.
    #[arg(long, default_value_t = 5.0)]
    pub nemesis_interval: f64,
    /// How faults are laid out: mixed (they overlap, change into one
    /// another, come in bursts, with quiet gaps) or serial (one at a time,
    /// each followed by a full heal).
    #[arg(long, value_enum, default_value_t)]
    pub schedule: ScheduleStyle,
    /// Seed of the workload and the fault schedule (random if absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Known defect to switch on in every node (passed as `--bug NAME`).
    #[arg(long)]
    pub bug: Option<String>,
    /// The raft-node binary (default: next to raft-driver).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Folder receiving one sub-folder per run, and the `latest` link.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Per-operation timeout in milliseconds; a write that times out is info.
    #[arg(long, default_value_t = 2000)]
    pub op_timeout_ms: u64,
    /// Operations on one key before it is retired for a fresh one.
    #[arg(long, default_value_t = 200)]
    pub ops_per_key: u64,
    /// Keys in use at once (default: max(6, concurrency / 2), so that each
    /// key sees about two concurrent clients and stays quick to check).
    #[arg(long)]
    pub active_keys: Option<usize>,
    /// Share of reads among operations, in [0, 1].
    #[arg(long, default_value_t = 0.5)]
    pub read_fraction: f64,
    /// Passed to nodes as `--election-timeout-ms`.
    #[arg(long)]
    pub election_timeout_ms: Option<u64>,
    /// Passed to nodes as `--heartbeat-ms`.
    #[arg(long)]
    pub heartbeat_ms: Option<u64>,
    /// Passed to nodes as `--cluster-id`.
    #[arg(long)]
    pub cluster_id: Option<u64>,
    /// Extra argument for every node (repeatable), e.g. --node-arg=--read-mode=lease.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// Close open connections on cut links when a partition starts.
    #[arg(long)]
    pub sever_on_partition: bool,
    /// Seconds to wait for a leader at start-up, and for recovery at the end.
    #[arg(long, default_value_t = 30.0)]
    pub recovery_timeout: f64,
    /// Seconds the checker may search before undecided keys are "unknown".
    #[arg(long, default_value_t = 300.0)]
    pub check_time_limit: f64,
    /// System under test: raft (raft-node) or etcd (spawned from PATH).
    #[arg(long, value_enum, default_value_t)]
    pub target: TargetKind,
    /// etcd's read mode: linearizable, or serializable (served from any
    /// member's local state, so possibly stale).
    #[arg(long, value_enum, default_value_t)]
    pub read_consistency: ReadConsistency,
    /// Leave history.jsonl as plain text after the check (by default it is
    /// replaced by history.jsonl.zst once the verdict is written; every
    /// reader, `raft-checker check` included, takes either, and
    /// `zstd -d` restores the text).
    #[arg(long)]
    pub keep_history_uncompressed: bool,
    /// Mutual TLS: a throwaway CA and certificates are made in RUN/tls/,
    /// each node gets --tls-dir, and the driver's clients, admin and
    /// nemesis calls use TLS (the proxies forward the encrypted bytes;
    /// message faults then act on whole chunks). raft target only.
    #[arg(long)]
    pub tls: bool,
}

/// A validated run configuration (what test.json records as "options").
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    /// Number of nodes.
    pub nodes: usize,
    /// Workload phase length.
    pub time_limit: Duration,
    /// Client workers.
    pub concurrency: usize,
    /// Total ops/s limit.
    pub rate: Option<f64>,
    /// Enabled fault kinds.
    pub nemesis: Vec<NemesisKind>,
    /// The `--nemesis` text, used in the run folder's name.
    pub nemesis_label: String,
    /// Enabled partition shapes.
    pub partition_shapes: Vec<PartitionShape>,
    /// Mean fault / heal phase length.
    pub nemesis_interval: Duration,
    /// How faults are laid out in time.
    pub schedule: ScheduleStyle,
    /// Seed.
    pub seed: u64,
    /// Defect switched on in nodes.
    pub bug: Option<String>,
    /// Explicit node binary.
    pub node_bin: Option<PathBuf>,
    /// Results folder.
    pub results: PathBuf,
    /// Per-operation timeout.
    pub op_timeout: Duration,
    /// Workload shape.
    pub workload: GeneratorConfig,
    /// Election timeout passed to nodes.
    pub election_timeout_ms: Option<u64>,
    /// Heartbeat interval passed to nodes.
    pub heartbeat_ms: Option<u64>,
    /// Cluster id passed to nodes.
    pub cluster_id: Option<u64>,
    /// Extra node arguments.
    pub node_args: Vec<String>,
    /// Sever connections on partition.
    pub sever_on_partition: bool,
    /// Start-up and recovery wait.
    pub recovery_timeout: Duration,
    /// Checker search budget.
    pub check_time_limit: Duration,
    /// System under test.
    pub target: TargetKind,
    /// etcd's read mode.
    pub read_consistency: ReadConsistency,
    /// Keep history.jsonl as plain text after the check.
    pub keep_history_uncompressed: bool,
    /// Mutual TLS between nodes and for the driver's calls.
    pub tls: bool,
}

fn positive_secs(name: &str, v: f64) -> Result<Duration, String> {
    if !v.is_finite() || v <= 0.0 || v > 1e7 {
        return Err(format!(
            "--{name} must be a positive number of seconds, got {v}"
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Parses `all`, `none` or a comma list of fault kinds.
pub fn parse_nemesis(s: &str) -> Result<Vec<NemesisKind>, String> {
    match s.trim() {
        // The faults of the machine change how every node runs for the
        // whole run (on a FUSE mount, under libfaketime): asked by name only.
        "all" => {
            return Ok(NemesisKind::ALL
                .into_iter()
                .filter(|k| !k.changes_the_machine())
                .collect())
        }
        "none" | "" => return Ok(vec![]),
        _ => {}
    }
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let k = NemesisKind::parse(part).ok_or_else(|| {
            let names: Vec<&str> = NemesisKind::ALL.iter().map(|k| k.name()).collect();
            format!(
                "unknown nemesis {part:?}; expected all, none or a comma list of {}",
                names.join(", ")
            )
        })?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    Ok(out)
}

/// Parses `all` or a comma list of partition shapes.
pub fn parse_shapes(s: &str) -> Result<Vec<PartitionShape>, String> {
    if s.trim() == "all" {
        return Ok(PartitionShape::ALL.to_vec());
    }
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let k = PartitionShape::parse(part).ok_or_else(|| {
            let names: Vec<&str> = PartitionShape::ALL.iter().map(|k| k.name()).collect();
            format!(
                "unknown partition shape {part:?}; expected all or a comma list of {}",
                names.join(", ")
            )
        })?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    Ok(out)
}

impl RunArgs {
    /// Checks every option and returns the run configuration, or a message
    /// for the user (exit code 2).
    pub fn validate(&self) -> Result<RunConfig, String> {
        if self.nodes == 0 || self.nodes > MAX_NODES {
            return Err(format!(
                "--nodes must be between 1 and {MAX_NODES}, got {}",
                self.nodes
            ));
        }
        if self.concurrency == 0 || self.concurrency > 10_000 {
            return Err(format!(
                "--concurrency must be between 1 and 10000, got {}",
                self.concurrency
            ));
        }
        if let Some(r) = self.rate {
            if !r.is_finite() || r <= 0.0 {
                return Err(format!(
                    "--rate must be a positive number of ops/s, got {r}"
                ));
            }
        }
        if self.op_timeout_ms == 0 {
            return Err("--op-timeout-ms must be positive".into());
        }
        let active_keys = self
            .active_keys
            .unwrap_or_else(|| self.concurrency.div_ceil(2).max(6));
        if self.ops_per_key == 0 || active_keys == 0 {
            return Err("--ops-per-key and --active-keys must be positive".into());
        }
        if !(0.0..=1.0).contains(&self.read_fraction) {
            return Err(format!(
                "--read-fraction must be in [0, 1], got {}",
                self.read_fraction
            ));
        }
        let nemesis = parse_nemesis(&self.nemesis)?;
        if nemesis.contains(&NemesisKind::Membership) && self.nodes < 3 {
            // Removing one of two voters leaves no majority to re-add it.
            if self.nemesis.trim() != "all" {
                return Err("--nemesis membership needs at least 3 nodes".into());
            }
        }
        let nemesis: Vec<NemesisKind> = if self.nodes < 3 {
            nemesis
                .into_iter()
                .filter(|k| *k != NemesisKind::Membership)
                .collect()
        } else {
            nemesis
        };
        let nemesis = target_nemeses(self.target, &self.nemesis, nemesis)?;
        if let Some(why) = crate::machine::Machine::unavailable(&nemesis) {
            return Err(why);
        }
        let seed = self.seed.unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            (t.as_nanos() as u64) ^ (std::process::id() as u64) << 32
        });
        let cfg = RunConfig {
            nodes: self.nodes,
            time_limit: positive_secs("time-limit", self.time_limit)?,
            concurrency: self.concurrency,
            rate: self.rate,
            nemesis_label: self.target.target().label()
                + &if nemesis.is_empty() {
                    String::from("none")
                } else if self.nemesis.trim() == "all" {
                    String::from("all")
                } else {
                    nemesis
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join("-")
                },
            nemesis,
            partition_shapes: parse_shapes(&self.partition_shapes)?,
            nemesis_interval: positive_secs("nemesis-interval", self.nemesis_interval)?,
            schedule: self.schedule,
            seed,
            bug: self.bug.clone(),
            node_bin: self.node_bin.clone(),
            results: self.results.clone(),
            op_timeout: Duration::from_millis(self.op_timeout_ms),
            workload: GeneratorConfig {
                ops_per_key: self.ops_per_key,
                active_keys,
                read_fraction: self.read_fraction,
            },
            election_timeout_ms: self.election_timeout_ms,
            heartbeat_ms: self.heartbeat_ms,
            cluster_id: self.cluster_id,
            node_args: self.node_args.clone(),
            sever_on_partition: self.sever_on_partition,
            recovery_timeout: positive_secs("recovery-timeout", self.recovery_timeout)?,
            check_time_limit: positive_secs("check-time-limit", self.check_time_limit)?,
            target: self.target,
            read_consistency: self.read_consistency,
            keep_history_uncompressed: self.keep_history_uncompressed,
            tls: self.tls,
        };
        self.target.target().validate(&cfg.target_options())?;
        Ok(cfg)
    }
}

/// Keeps the fault kinds the target supports: `all` means all of those; an
/// explicit list with an unsupported kind is refused, saying why.
fn target_nemeses(
    target: TargetKind,
    text: &str,
    kinds: Vec<NemesisKind>,
) -> Result<Vec<NemesisKind>, String> {
    let caps = target.target().capabilities();
    if text.trim() == "all" {
        return Ok(kinds
            .into_iter()
            .filter(|k| k.unsupported_by(&caps).is_none())
            .collect());
    }
    for k in &kinds {
        if let Some(lack) = k.unsupported_by(&caps) {
            let names: Vec<&str> = NemesisKind::ALL
                .iter()
                .filter(|k| k.unsupported_by(&caps).is_none())
                .map(|k| k.name())
                .collect();
            return Err(format!(
                "--target {} does not support --nemesis {}: it has no {lack}; it supports {}",
                target.name(),
                k.name(),
                names.join(", ")
            ));
        }
    }
    Ok(kinds)
}

impl RunConfig {
    /// The options the target gives meaning to.
    pub fn target_options(&self) -> TargetOptions {
        TargetOptions {
            bug: self.bug.clone(),
            read_consistency: self.read_consistency,
            node_args: self.node_args.clone(),
            election_timeout_ms: self.election_timeout_ms,
            heartbeat_ms: self.heartbeat_ms,
            cluster_id: self.cluster_id,
            node_bin: self.node_bin.clone(),
            tls: self.tls,
            shipped_snapshot_interval: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        run: RunArgs,
    }

    fn args(extra: &[&str]) -> RunArgs {
        let mut v = vec!["t"];
        v.extend(extra);
        T::try_parse_from(v).unwrap().run
    }

    #[test]
    fn defaults_are_three_nodes_all_faults_sixty_seconds() {
        let c = args(&[]).validate().unwrap();
        assert_eq!(c.nodes, 3);
        assert_eq!(c.time_limit, Duration::from_secs(60));
        assert_eq!(c.concurrency, 10);
        let everyday: Vec<NemesisKind> = NemesisKind::ALL
            .into_iter()
            .filter(|k| !k.changes_the_machine())
            .collect();
        assert_eq!(c.nemesis, everyday);
        assert_eq!(c.nemesis_label, "all");
        assert_eq!(c.nemesis_interval, Duration::from_secs(5));
        assert_eq!(c.workload.active_keys, 6);
    }

    #[test]
    fn active_keys_grow_with_concurrency() {
        let c = args(&["--concurrency", "100"]).validate().unwrap();
        assert_eq!(c.workload.active_keys, 50);
        let c = args(&["--concurrency", "100", "--active-keys", "7"])
            .validate()
            .unwrap();
        assert_eq!(c.workload.active_keys, 7);
    }

    #[test]
    fn bad_values_are_refused_with_a_message() {
        for (flags, needle) in [
            (vec!["--nodes", "0"], "--nodes"),
            (vec!["--nodes", "6"], "--nodes"),
            (vec!["--time-limit", "0"], "--time-limit"),
            (vec!["--time-limit=-3"], "--time-limit"),
            (vec!["--nemesis", "flood"], "unknown nemesis \"flood\""),
            (
                vec!["--partition-shapes", "ring"],
                "unknown partition shape",
            ),
            (vec!["--concurrency", "0"], "--concurrency"),
            (vec!["--rate", "0"], "--rate"),
            (vec!["--nemesis-interval", "0"], "--nemesis-interval"),
        ] {
            let err = args(&flags).validate().unwrap_err();
            assert!(err.contains(needle), "{flags:?}: {err}");
        }
    }

    #[test]
    fn nemesis_lists_parse_and_name_the_run() {
        let c = args(&["--nemesis", "partition,kill"]).validate().unwrap();
        assert_eq!(c.nemesis, vec![NemesisKind::Partition, NemesisKind::Kill]);
        assert_eq!(c.nemesis_label, "partition-kill");
        let c = args(&["--nemesis", "none"]).validate().unwrap();
        assert!(c.nemesis.is_empty());
        assert_eq!(c.nemesis_label, "none");
    }

    #[test]
    fn the_faults_of_the_machine_are_asked_by_name_and_refused_where_the_machine_lacks_them() {
        let all = args(&[]).validate().unwrap();
        assert!(all.nemesis.iter().all(|k| !k.changes_the_machine()));
        match (
            args(&["--nemesis", "power-cut"]).validate(),
            raft_faultfs::fuse_unavailable(),
        ) {
            (Ok(c), None) => assert_eq!(c.nemesis, vec![NemesisKind::PowerCut]),
            (Err(e), Some(why)) => assert!(e.contains("FUSE") && e.contains(&why), "{e}"),
            (r, why) => panic!("validate {r:?} while FUSE unavailable = {why:?}"),
        }
        match (
            args(&["--nemesis", "clock,partition"]).validate(),
            crate::machine::clocks::libfaketime(),
        ) {
            (Ok(c), Ok(_)) => {
                assert_eq!(c.nemesis, vec![NemesisKind::Clock, NemesisKind::Partition])
            }
            (Err(e), Err(_)) => assert!(e.contains("package faketime"), "{e}"),
            (r, lib) => panic!("validate {r:?} while libfaketime = {lib:?}"),
        }
    }

    #[test]
    fn etcd_runs_only_the_faults_etcd_supports() {
        let c = args(&["--target", "etcd"]).validate().unwrap();
        let mut kinds: Vec<&str> = c.nemesis.iter().map(|k| k.name()).collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [
                "deposed-leader",
                "kill",
                "lagging-leader",
                "leader-churn",
                "messages",
                "partition",
                "pause",
                "slow"
            ]
        );
        assert!(c.nemesis_label.starts_with("etcd-"), "{}", c.nemesis_label);
        let err = args(&["--target", "etcd", "--nemesis", "kill,membership"])
            .validate()
            .unwrap_err();
        assert!(
            err.contains("does not support --nemesis membership"),
            "{err}"
        );
        let err = args(&["--target", "etcd", "--bug", "x"])
            .validate()
            .unwrap_err();
        assert!(err.contains("--bug"), "{err}");
        let err = args(&["--read-consistency", "serializable"])
            .validate()
            .unwrap_err();
        assert!(err.contains("--target etcd"), "{err}");
        let err = args(&["--target", "etcd", "--tls"]).validate().unwrap_err();
        assert!(err.contains("--tls"), "{err}");
        let c = args(&["--target", "etcd", "--read-consistency", "serializable"])
            .validate()
            .unwrap();
        assert_eq!(c.read_consistency, ReadConsistency::Serializable);
    }

    #[test]
    fn node_args_carry_bug_and_timeouts() {
        let c = args(&[
            "--bug",
            "stale-read",
            "--election-timeout-ms",
            "500",
            "--node-arg=--read-mode=lease",
        ])
        .validate()
        .unwrap();
        assert_eq!(
            crate::target::raft::node_flags(&c.target_options()),
            vec![
                "--election-timeout-ms",
                "500",
                "--bug",
                "stale-read",
                "--read-mode=lease"
            ]
        );
    }
}
