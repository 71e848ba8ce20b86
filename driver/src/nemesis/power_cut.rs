//! Power cuts: the chosen nodes are SIGKILLed and reaped (their in-flight
//! FUSE requests finish first), then their disks lose what was never
//! fsynced, or keep a seeded torn prefix of it (`raft_faultfs::CutMode`);
//! the stop restarts them on what survived. What each cut lost is in the
//! history. Needs the run's data dirs on faultfs mounts
//! ([`crate::machine::disks`]).

use super::schedule::{FaultOp, NemesisKind};
use super::{resolve, Nemesis, NemesisCtx};
use crate::target::cluster::NodeState;
use crate::workload::client::BoxFuture;
use raft_faultfs::CutMode;
use serde_json::{json, Value};

/// The power-cut nemesis.
#[derive(Default)]
pub struct PowerCutNemesis {
    down: Vec<u64>,
}

/// The mode node `id` is cut with: a torn cut's seed mixed with the id, so
/// that nodes holding the same writes do not tear at the same byte.
pub fn mode_for(mode: CutMode, id: u64) -> CutMode {
    match mode {
        CutMode::LoseAll => CutMode::LoseAll,
        CutMode::TornSeq { seed } => CutMode::TornSeq {
            seed: seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        },
    }
}

impl PowerCutNemesis {
    fn cut(&mut self, ctx: &NemesisCtx, nodes: &[u64], mode: CutMode) -> Value {
        let Some(disks) = ctx.machine.disks.as_ref() else {
            return json!({"error": "the data dirs are not on faultfs mounts"});
        };
        let mut cuts = Vec::new();
        for &id in nodes {
            // The process table stays locked from the kill to the end of the
            // cut: no other fault may start the node on a disk half cut.
            let mut c = ctx.cluster();
            let was_down = c.state(id) == Some(NodeState::Down);
            if !was_down {
                if let Err(e) = c.kill(id) {
                    cuts.push(json!({"node": id, "error": format!("{e:#}")}));
                    continue;
                }
                self.down.push(id);
            }
            // A node another fault took down has its disk cut all the same
            // (no process uses it), but that fault restarts it.
            let unsynced = disks.unsynced_bytes(id);
            match disks.power_cut(id, mode_for(mode, id)) {
                Ok(report) => cuts.push(json!({
                    "node": id,
                    "was_down": was_down,
                    "unsynced_bytes": unsynced,
                    "bytes_lost": report.bytes_lost,
                    "bytes_kept": report.bytes_kept,
                    "report": report,
                })),
                Err(e) => cuts.push(json!({"node": id, "error": format!("{e:#}")})),
            }
        }
        let lost: u64 = cuts.iter().filter_map(|c| c["bytes_lost"].as_u64()).sum();
        // `nodes`: every node cut (what a replay cuts again); `killed`: those
        // this fault took down and restarts.
        json!({"nodes": nodes, "killed": self.down.clone(), "mode": mode, "bytes_lost": lost, "cuts": cuts})
    }

    fn restart(&mut self, ctx: &NemesisCtx) -> Value {
        let nodes = std::mem::take(&mut self.down);
        let mut c = ctx.cluster();
        let mut errors = Vec::new();
        for &id in &nodes {
            if c.state(id) == Some(NodeState::Down) {
                if let Err(e) = c.start(id) {
                    errors.push(format!("n{id}: {e:#}"));
                }
            }
        }
        json!({"nodes": nodes, "errors": errors})
    }
}

impl Nemesis for PowerCutNemesis {
    fn kind(&self) -> NemesisKind {
        NemesisKind::PowerCut
    }

    fn invoke<'a>(&'a mut self, ctx: &'a NemesisCtx, op: &'a FaultOp) -> BoxFuture<'a, Value> {
        Box::pin(async move {
            match op {
                FaultOp::StartPowerCut {
                    target,
                    nodes,
                    mode,
                } => {
                    let nodes = resolve(ctx, *target, nodes).await;
                    let mut v = self.cut(ctx, &nodes, *mode);
                    v["target"] = json!(target);
                    v
                }
                _ => self.restart(ctx),
            }
        })
    }

    fn teardown<'a>(&'a mut self, ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if !self.down.is_empty() {
                let v = self.restart(ctx);
                tracing::info!("power-cut teardown: {v}");
            }
        })
    }
}

#[cfg(test)]
// The serialising lock is held across awaits on purpose (see nemesis::tests).
#[allow(clippy::await_holding_lock)]
mod tests {
    use super::*;
    use crate::machine::{disks::Disks, Machine};
    use crate::nemesis::schedule::Target;
    use crate::target::cluster::tests::serial;
    use crate::target::cluster::{node_paths, proc_state};
    use std::io::Write;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_power_cut_kills_the_node_loses_its_unsynced_writes_and_the_stop_restarts_it() {
        if let Some(why) = raft_faultfs::fuse_unavailable() {
            eprintln!("skipped: FUSE is unavailable: {why}");
            return;
        }
        let _serial = serial();
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = crate::nemesis::tests::unstarted_ctx(dir.path()).await;
        ctx.machine = Arc::new(Machine {
            disks: Some(Disks::mount(dir.path(), &[1, 2, 3]).unwrap()),
            clocks: None,
        });
        ctx.cluster().start_all().unwrap();
        let (data2, _) = node_paths(dir.path(), 2);
        let (data3, _) = node_paths(dir.path(), 3);
        // A synced file and an unsynced one on node 2's disk, an unsynced
        // one on node 3's (which is not cut).
        let mut synced = std::fs::File::create(data2.join("synced")).unwrap();
        synced.write_all(b"kept").unwrap();
        synced.sync_all().unwrap();
        // Closed, or the unmount at the end would find the mount busy.
        drop(synced);
        std::fs::write(data2.join("unsynced"), b"lost on the cut").unwrap();
        std::fs::write(data3.join("unsynced"), b"not cut").unwrap();
        let before = ctx.cluster().pids();

        let mut n = PowerCutNemesis::default();
        let v = n
            .invoke(
                &ctx,
                &FaultOp::StartPowerCut {
                    target: Target::One,
                    nodes: Some(vec![2]),
                    mode: CutMode::LoseAll,
                },
            )
            .await;
        assert_eq!(v["nodes"], json!([2]), "{v}");
        assert_eq!(v["bytes_lost"], json!(15), "{v}");
        assert_eq!(ctx.cluster().state(2), Some(NodeState::Down));
        assert_eq!(proc_state(before[1]), None, "the cut node must be reaped");
        assert_eq!(std::fs::read(data2.join("synced")).unwrap(), b"kept");
        // Created but never synced: the name survives, the bytes do not.
        assert_eq!(std::fs::read(data2.join("unsynced")).unwrap(), b"");
        assert_eq!(std::fs::read(data3.join("unsynced")).unwrap(), b"not cut");

        let v = n.invoke(&ctx, &FaultOp::StopPowerCut).await;
        assert_eq!(v["nodes"], json!([2]));
        assert_eq!(ctx.cluster().state(2), Some(NodeState::Running));
        ctx.cluster().shutdown();
        let errors = ctx.machine.finish();
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn torn_cuts_of_different_nodes_draw_differently_and_lose_all_is_kept() {
        let m = CutMode::TornSeq { seed: 7 };
        assert_ne!(mode_for(m, 1), mode_for(m, 2));
        assert_eq!(mode_for(m, 1), mode_for(m, 1));
        assert_eq!(mode_for(CutMode::LoseAll, 3), CutMode::LoseAll);
    }
}
