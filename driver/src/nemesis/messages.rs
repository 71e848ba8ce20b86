//! The message-fault nemesis: on chosen links, raft-node's peer messages
//! are duplicated, reordered, delayed, and replayed from earlier
//! connections after the proxy resets a connection, and log appends may
//! lag behind heartbeats (see
//! [`crate::net::messages`]); etcd's HTTP peer connections get what a
//! byte stream allows, chunk stalls and resets. Only the message layer of
//! the links is touched, so partitions and slowness stay as they are.

use super::schedule::{FaultOp, NemesisKind};
use super::{Nemesis, NemesisCtx};
use crate::net::messages::{MessageFaults, MessageTally};
use crate::workload::client::BoxFuture;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Chances per frame the schedule draws from, for each of duplicate,
/// reorder and delay: with a leader's hundreds of frames a second on a
/// link, even the lowest gives a faulted AppendEntries every few hundred ms.
const CHANCES: [f64; 3] = [0.01, 0.03, 0.08];
/// How long a delayed frame is held (heartbeats are 100 ms, elections 1 s
/// by default).
const DELAYS_MS: [u64; 3] = [50, 200, 600];
/// Old frames replayed on each new connection.
const REPLAYS: [u32; 3] = [4, 16, 32];
/// Mean lifetime of a faulted connection.
const RESETS_MS: [u64; 3] = [500, 1500, 3000];
/// How long AppendEntries lag behind heartbeats when they do (a heartbeat
/// is 100 ms, an election timeout 1 s, by default).
const APPEND_LAGS_MS: [u64; 3] = [100, 300, 800];

/// Draws a seeded `start-messages`: the links (every one, those out of a
/// node, or those into a node) and the chances and sizes of each fault.
pub fn draw_start(nodes: &[u64], rng: &mut SmallRng) -> FaultOp {
    let node = *nodes.choose(rng).expect("non-empty");
    let pairs = || {
        nodes
            .iter()
            .flat_map(|&a| nodes.iter().map(move |&b| (a, b)))
            .filter(|(a, b)| a != b)
    };
    let links = match rng.gen_range(0..10) {
        0..=3 => None,
        4..=6 => Some(pairs().filter(|(a, _)| *a == node).collect()),
        _ => Some(pairs().filter(|(_, b)| *b == node).collect()),
    };
    let mut pick = |xs: &[f64]| *xs.choose(rng).expect("non-empty");
    let (duplicate, reorder, delay) = (pick(&CHANCES), pick(&CHANCES), pick(&CHANCES));
    FaultOp::StartMessages {
        links,
        faults: MessageFaults {
            duplicate,
            reorder,
            reorder_depth: rng.gen_range(1..=4),
            delay,
            delay_ms: *DELAYS_MS.choose(rng).expect("non-empty"),
            replay: *REPLAYS.choose(rng).expect("non-empty"),
            reset_ms: *RESETS_MS.choose(rng).expect("non-empty"),
            append_lag_ms: if rng.gen_bool(0.4) {
                *APPEND_LAGS_MS.choose(rng).expect("non-empty")
            } else {
                0
            },
            seed: rng.gen(),
        },
    }
}

/// What a start put in effect.
struct Active {
    links: BTreeSet<(u64, u64)>,
    /// Each link's counters when the fault started.
    before: BTreeMap<(u64, u64), MessageTally>,
}

/// Sets and clears the message faults of the links.
#[derive(Default)]
pub struct MessagesNemesis {
    active: Option<Active>,
}

impl MessagesNemesis {
    fn start(
        &mut self,
        ctx: &NemesisCtx,
        links: &Option<Vec<(u64, u64)>>,
        faults: &MessageFaults,
    ) -> Value {
        // A new start replaces the one in effect; what that one did is
        // reported here, as its stop would have.
        let replaced = self.active.is_some().then(|| self.stop(ctx));
        let all = ctx.net.link_ids();
        let links: BTreeSet<(u64, u64)> = match links {
            Some(l) => l.iter().copied().filter(|k| all.contains(k)).collect(),
            None => all.into_iter().collect(),
        };
        let before = links
            .iter()
            .filter_map(|&(a, b)| Some(((a, b), ctx.net.link(a, b)?.message_tally())))
            .collect();
        ctx.net.set_messages(&links, Some(*faults));
        let mut v = json!({"links": links, "faults": faults});
        if let Some(r) = replaced {
            v["replaced"] = r;
        }
        self.active = Some(Active { links, before });
        v
    }

    /// Clears the faults and says what they did.
    fn stop(&mut self, ctx: &NemesisCtx) -> Value {
        ctx.net.set_messages(&BTreeSet::new(), None);
        let Some(active) = self.active.take() else {
            return json!({"links": []});
        };
        let mut total = MessageTally::default();
        let mut per_link = Vec::new();
        for (&(a, b), before) in &active.before {
            let Some(link) = ctx.net.link(a, b) else {
                continue;
            };
            let done = link.message_tally().since(before);
            total = total.plus(&done);
            if done != MessageTally::default() {
                per_link.push(json!({"link": [a, b], "counts": done}));
            }
        }
        let mut v = serde_json::to_value(total).unwrap_or_else(|_| json!({}));
        v["links"] = json!(active.links);
        v["per_link"] = json!(per_link);
        v
    }
}

impl Nemesis for MessagesNemesis {
    fn kind(&self) -> NemesisKind {
        NemesisKind::Messages
    }
    fn invoke<'a>(&'a mut self, ctx: &'a NemesisCtx, op: &'a FaultOp) -> BoxFuture<'a, Value> {
        Box::pin(async move {
            match op {
                FaultOp::StartMessages { links, faults } => self.start(ctx, links, faults),
                _ => self.stop(ctx),
            }
        })
    }
    fn teardown<'a>(&'a mut self, ctx: &'a NemesisCtx) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if self.active.is_some() {
                let v = self.stop(ctx);
                tracing::info!("messages teardown: {v}");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::tests::unstarted_ctx;
    use rand::SeedableRng;

    fn op(links: Option<Vec<(u64, u64)>>) -> FaultOp {
        FaultOp::StartMessages {
            links,
            faults: MessageFaults {
                duplicate: 0.1,
                reorder: 0.1,
                reorder_depth: 2,
                delay: 0.1,
                delay_ms: 50,
                replay: 4,
                reset_ms: 1000,
                append_lag_ms: 0,
                seed: 3,
            },
        }
    }

    #[tokio::test]
    async fn start_faults_only_its_links_and_stop_reports_what_was_done() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = unstarted_ctx(dir.path()).await;
        let mut n = MessagesNemesis::default();
        let v = n.invoke(&ctx, &op(Some(vec![(1, 2), (9, 9)]))).await;
        assert_eq!(v["links"], json!([[1, 2]]), "unknown links are dropped");
        assert_eq!(v["faults"]["replay"], json!(4));
        assert!(ctx.net.link(1, 2).unwrap().faults().messages.is_some());
        assert!(ctx.net.link(2, 1).unwrap().faults().messages.is_none());
        let v = n.invoke(&ctx, &FaultOp::StopMessages).await;
        assert_eq!(v["links"], json!([[1, 2]]));
        for k in ["duplicated", "reordered", "delayed", "replayed", "resets"] {
            assert_eq!(v[k], json!(0), "{k}: nothing crossed the link");
        }
        assert!(ctx.net.link(1, 2).unwrap().faults().messages.is_none());
    }

    #[tokio::test]
    async fn a_new_start_replaces_the_last_and_leaves_partitions_alone() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = unstarted_ctx(dir.path()).await;
        let cut: BTreeSet<(u64, u64)> = [(1, 3), (3, 1)].into_iter().collect();
        ctx.net.cut("partition", &cut, false);
        let mut n = MessagesNemesis::default();
        n.invoke(&ctx, &op(None)).await;
        assert!(ctx.net.link_ids().iter().all(|&(a, b)| ctx
            .net
            .link(a, b)
            .unwrap()
            .faults()
            .messages
            .is_some()));
        let v = n.invoke(&ctx, &op(Some(vec![(2, 3)]))).await;
        assert_eq!(v["replaced"]["links"].as_array().unwrap().len(), 6);
        assert!(ctx.net.link(1, 2).unwrap().faults().messages.is_none());
        n.teardown(&ctx).await;
        assert!(ctx.net.link(2, 3).unwrap().faults().messages.is_none());
        assert_eq!(ctx.net.held_links(), cut);
    }

    #[test]
    fn drawn_starts_name_real_links_and_repeat_with_the_seed() {
        let nodes = [1, 2, 3, 4, 5];
        let draw = |seed| {
            let mut rng = SmallRng::seed_from_u64(seed);
            (0..50)
                .map(|_| draw_start(&nodes, &mut rng))
                .collect::<Vec<_>>()
        };
        let ops = draw(7);
        assert_eq!(ops, draw(7));
        let mut shapes = BTreeSet::new();
        for op in &ops {
            let FaultOp::StartMessages { links, faults } = op else {
                panic!("{op:?}");
            };
            shapes.insert(links.as_ref().map(|l| l.len()));
            for &(a, b) in links.iter().flatten() {
                assert!(a != b && nodes.contains(&a) && nodes.contains(&b));
            }
            for p in [faults.duplicate, faults.reorder, faults.delay] {
                assert!(CHANCES.contains(&p));
            }
            assert!((1..=4).contains(&faults.reorder_depth));
            assert!(faults.replay > 0 && faults.reset_ms > 0);
        }
        // Every link, or the 4 links out of (or into) one node.
        assert_eq!(shapes, [None, Some(4)].into_iter().collect());
    }
}
