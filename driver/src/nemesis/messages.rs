//! The message-fault nemesis: on chosen links, raft-node's peer messages
//! are duplicated, reordered, delayed, and replayed from earlier
//! connections after the proxy resets a connection (see
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
