//! Committed proposals per second of a 3-node cluster in one process: the
//! core, an in-memory storage and a function-call network (the setting of
//! openraft's framework benchmark), with 1 and with 64 proposals in flight.
//!
//! cargo bench -p raft-node --bench core
//!
//! Two groups: wall time (comparable with published figures) and thread CPU
//! time (stable on a loaded machine).

use std::collections::VecDeque;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use raft_node::raft::{
    ConfState, Config, Entry, HardState, InitialState, Message, NodeId, Raft, Ready, Role,
};

/// The durable state of one node, kept in memory.
#[derive(Default)]
struct MemDisk {
    hard_state: HardState,
    entries: Vec<Entry>,
}

impl MemDisk {
    fn persist(&mut self, rd: &mut Ready) {
        if let Some(first) = rd.entries.first() {
            let keep = self
                .entries
                .iter()
                .take_while(|e| e.index < first.index)
                .count();
            self.entries.truncate(keep);
            self.entries.append(&mut rd.entries);
        }
        if let Some(hs) = rd.hard_state {
            self.hard_state = hs;
        }
    }
}

struct Cluster {
    nodes: Vec<Raft>,
    disks: Vec<MemDisk>,
    queue: VecDeque<Message>,
    leader: usize,
    /// Entries the leader applied (the committed proposals).
    applied: u64,
}

impl Cluster {
    fn new() -> Cluster {
        let voters: Vec<NodeId> = vec![1, 2, 3];
        let mut nodes = Vec::new();
        for id in 1..=3 {
            let cfg = Config {
                id,
                seed: id,
                max_msg_entries: 512,
                max_inflight: 64,
                ..Config::default()
            };
            let init = InitialState {
                conf: ConfState {
                    voters: voters.clone(),
                    ..Default::default()
                },
                ..Default::default()
            };
            nodes.push(Raft::new(cfg, init).expect("valid"));
        }
        let mut c = Cluster {
            nodes,
            disks: (0..3).map(|_| MemDisk::default()).collect(),
            queue: VecDeque::new(),
            leader: 0,
            applied: 0,
        };
        while c.nodes[0].status().role != Role::Leader {
            c.nodes[0].tick();
            c.pump();
        }
        c.pump();
        c
    }

    fn handle_ready(&mut self, i: usize) {
        while self.nodes[i].has_ready() {
            let mut rd = self.nodes[i].ready();
            self.disks[i].persist(&mut rd);
            self.queue.extend(rd.messages.drain(..));
            if i == self.leader {
                self.applied += rd.committed_entries.len() as u64;
            }
            self.nodes[i].advance(rd);
        }
    }

    /// Delivers messages until the cluster is quiet.
    fn pump(&mut self) {
        for i in 0..3 {
            self.handle_ready(i);
        }
        while let Some(m) = self.queue.pop_front() {
            let to = (m.to - 1) as usize;
            self.nodes[to].step(m).expect("valid message");
            self.handle_ready(to);
        }
    }

    /// Keeps `window` proposals in flight until `count` more have committed.
    fn run(&mut self, count: u64, window: u64) {
        let target = self.applied + count;
        let mut in_flight = 0u64;
        let mut proposed = 0u64;
        while self.applied < target {
            while in_flight < window && proposed < count {
                self.nodes[self.leader]
                    .propose(vec![0u8; 16])
                    .expect("leader");
                in_flight += 1;
                proposed += 1;
            }
            let before = self.applied;
            self.pump();
            in_flight -= (self.applied - before).min(in_flight);
        }
        self.maybe_compact();
    }

    /// Keeps memory flat: drop the log every 100,000 entries.
    fn maybe_compact(&mut self) {
        for (raft, disk) in self.nodes.iter_mut().zip(&mut self.disks) {
            let st = raft.status();
            if st.applied > st.snapshot_index + 100_000 {
                raft.compact(st.applied, Vec::new()).expect("applied");
                disk.entries.retain(|e| e.index > st.applied);
            }
        }
    }
}

/// The CPU time this thread has used: unlike wall time, it barely moves
/// when other processes load the machine.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The same workload timed in thread CPU time, for figures that a busy
/// machine does not distort (the cluster runs on this one thread).
fn committed_proposals_cpu_time(c: &mut Criterion) {
    let mut group = c.benchmark_group("cluster_of_3_committed_proposals_cpu_time");
    for window in [1u64, 64] {
        group.throughput(Throughput::Elements(window * 16));
        group.bench_with_input(
            BenchmarkId::new("in_flight", window),
            &window,
            |b, &window| {
                let mut cluster = Cluster::new();
                b.iter_custom(|iters| {
                    let start = thread_cpu_time();
                    for _ in 0..iters {
                        cluster.run(window * 16, window);
                    }
                    thread_cpu_time() - start
                });
            },
        );
    }
    group.finish();
}

fn committed_proposals(c: &mut Criterion) {
    let mut group = c.benchmark_group("cluster_of_3_committed_proposals");
    for window in [1u64, 64] {
        group.throughput(Throughput::Elements(window * 16));
        group.bench_with_input(
            BenchmarkId::new("in_flight", window),
            &window,
            |b, &window| {
                let mut cluster = Cluster::new();
                b.iter(|| cluster.run(window * 16, window));
            },
        );
    }
    group.finish();
}

criterion_group!(benches, committed_proposals, committed_proposals_cpu_time);
criterion_main!(benches);
