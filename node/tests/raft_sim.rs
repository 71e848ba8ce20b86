//! The random schedule test: thousands of seeded schedules of crashes,
//! partitions, lost/duplicated/reordered messages, membership changes,
//! transfers and compactions, with Raft's safety properties checked after
//! every step.
//!
//! `RAFT_SEED=n` re-runs one seed and prints its trace; `SEEDS=n` runs more
//! seeds; `STEPS=n` lengthens each schedule; `BUG=name` switches on one of
//! the core's deliberate bugs (with `KEEP_GOING=1`, to count the seeds that
//! catch it).

mod raft_support;

use raft_node::bugs::{Bug, Bugs};
use raft_support::sim::{run_seeds, Sim, SimOptions};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}"))
    })
}

fn options() -> SimOptions {
    // Long schedules matter more than many seeds: breaking the commit rule
    // needs several leader changes with partial replication in one run.
    let mut opts = SimOptions {
        steps: 1000,
        ..SimOptions::default()
    };
    if let Some(steps) = env_u64("STEPS") {
        opts.steps = steps as usize;
    }
    if let Ok(name) = std::env::var("BUG") {
        let bug: Bug = name.parse().unwrap_or_else(|e| panic!("BUG: {e}"));
        opts.raft.bugs = Bugs::new([bug]);
    }
    opts
}

fn run_suite(name: &str, opts: SimOptions, default_seeds: u64, seed_offset: u64) {
    if let Some(seed) = env_u64("RAFT_SEED") {
        let mut sim = Sim::new(seed, opts, true);
        let res = sim.run();
        if let Err(e) = res {
            for line in sim.trace() {
                eprintln!("{line}");
            }
            panic!("{name}: seed {seed}: {e}");
        }
        return;
    }
    // CI runs release builds; an unoptimised build runs a tenth of the seeds.
    let default_seeds = if cfg!(debug_assertions) {
        default_seeds / 10
    } else {
        default_seeds
    };
    let seeds = env_u64("SEEDS").unwrap_or(default_seeds);
    if std::env::var("KEEP_GOING").is_ok() {
        // List every failing seed instead of stopping at the first one.
        let failures: Vec<String> = (seed_offset..seed_offset + seeds)
            .filter_map(|seed| {
                Sim::new(seed, opts.clone(), false)
                    .run()
                    .err()
                    .map(|e| format!("seed {seed}: {e}"))
            })
            .collect();
        assert!(
            failures.is_empty(),
            "{name}: {} of {seeds} seeds failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
        return;
    }
    match run_seeds(seed_offset, seeds, &opts) {
        Ok(stats) => {
            eprintln!("{name}: {seeds} seeds x {} steps: {stats:?}", opts.steps);
            // The schedules must actually exercise the cluster.
            assert!(stats.leader_terms as u64 >= seeds, "too few elections: {stats:?}");
            assert!(stats.max_commit >= seeds * 5, "too little committed: {stats:?}");
            assert!(stats.reads_served > 0, "no read was served: {stats:?}");
            // Lease nodes elect slowly after the compound faults cut
            // leaders off, so that suite changes members less often.
            if opts.faults && !opts.raft.lease_read {
                // Beyond the bootstrap entries (3 per seed), members changed.
                assert!(stats.conf_changes > seeds * 3, "no membership change: {stats:?}");
                assert!(stats.snapshots_installed > 0, "no snapshot was installed: {stats:?}");
            }
        }
        Err((seed, e)) => panic!(
            "{name}: seed {seed} failed: {e}\nre-run alone with: RAFT_SEED={seed} cargo test --release -p raft-node --test raft_sim {name} -- --nocapture"
        ),
    }
}

#[test]
fn random_schedules_with_all_faults_keep_raft_safe() {
    run_suite(
        "random_schedules_with_all_faults_keep_raft_safe",
        options(),
        5_000,
        0,
    );
}

#[test]
fn random_schedules_without_pre_vote_or_check_quorum_keep_raft_safe() {
    let mut opts = options();
    opts.raft.pre_vote = false;
    opts.raft.check_quorum = false;
    run_suite(
        "random_schedules_without_pre_vote_or_check_quorum_keep_raft_safe",
        opts,
        2000,
        1_000_000,
    );
}

#[test]
fn random_schedules_with_lossy_network_and_no_crashes_keep_raft_safe() {
    let mut opts = options();
    opts.faults = false;
    opts.drop = 0.2;
    opts.duplicate = 0.1;
    opts.max_delay = 12;
    run_suite(
        "random_schedules_with_lossy_network_and_no_crashes_keep_raft_safe",
        opts,
        1000,
        2_000_000,
    );
}

#[test]
fn random_schedules_with_lease_reads_and_synced_clocks_keep_reads_linearizable() {
    let mut opts = options();
    opts.raft.check_quorum = true;
    opts.raft.lease_read = true;
    opts.synced_clocks = true;
    run_suite(
        "random_schedules_with_lease_reads_and_synced_clocks_keep_reads_linearizable",
        opts,
        2000,
        3_000_000,
    );
}

#[test]
fn a_seed_replays_exactly_the_same_schedule() {
    let opts = SimOptions {
        steps: 300,
        ..SimOptions::default()
    };
    let run = |seed| {
        let mut sim = Sim::new(seed, opts.clone(), true);
        sim.run().expect("a correct core passes");
        sim.trace().to_vec()
    };
    let first = run(42);
    assert!(first.len() > 100, "the trace records the schedule");
    let again = run(42);
    let diverged = first.iter().zip(&again).position(|(a, b)| a != b);
    assert!(
        diverged.is_none() && first.len() == again.len(),
        "re-running seed 42 diverged at event {diverged:?}"
    );
    assert!(first != run(43), "another seed, another schedule");
}
