//! The membership race: a cut-off leader holds an uncommitted membership
//! change while its successor makes another before it has committed
//! anything of its term (the single-server change bug Ongaro reported on
//! raft-dev in 2015). With four voters {L, P, A, X}:
//!
//! 1. the leader L is cut off and asked to remove A: its log ends with
//!    C1 = {L, P, X}, uncommitted (L alone is no quorum of it);
//! 2. X is armed to crash right after it grants a vote, and the others
//!    elect a successor N (P or A) with X's vote: X dies before any entry
//!    of N's term reaches it;
//! 3. N is asked at once to remove L: C2 = {P, A, X}. A correct N refuses
//!    until an entry of its term commits, which needs three of the four
//!    old voters, so X (restarted) must hold it first; a buggy N commits
//!    C2 with P and A alone;
//! 4. L and X are put on one side, P and A (and the removed fifth node) on
//!    the other, and X is restarted there: X's log is no newer than L's,
//!    so L wins a quorum of C1 with X. After a buggy step 3 both sides
//!    commit (two leaders, two histories); after a correct one only L's
//!    side can, and nothing N had committed is lost.
//!
//! The stop heals and adds the removed nodes back. Needs four voters: a
//! five-node cluster first removes one node (the one the schedule named);
//! three nodes cannot race (no two quorums of the two changes can miss
//! each other), so there the fault is an ordinary removal.

use super::vote_crash::CRASH_AFTER_VOTE;
use super::NemesisCtx;
use crate::net::link_state::Holder;
use crate::target::AdminReq;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::Instant;

/// How long the others have to elect a successor with X's vote.
const ELECTION_WAIT: Duration = Duration::from_secs(8);

/// How long the successor is asked to remove the old leader: a correct one
/// keeps refusing while X is down.
const SUCCESSOR_CHANGE_BUDGET: Duration = Duration::from_millis(1_500);

/// How long after the first removal commits the leader is cut off.
const COMMIT_SPREAD: Duration = Duration::from_millis(500);

/// How often the race looks at leaders and at X's process.
const POLL: Duration = Duration::from_millis(10);

/// How long the race waits for a leader to start from: it often begins
/// while another fault (a kill, a partition) has just taken the leader
/// away, and the cluster elects another within an election timeout or two.
/// Giving up at once lost half the races drawn (teeth10).
const LEADER_WAIT: Duration = Duration::from_secs(4);

/// What the race did: the nodes whose removal may have happened (the stop
/// adds them back) and the steps, for the history.
pub struct Raced {
    /// Nodes that may be out of the configuration now.
    pub removed: Vec<u64>,
    /// Every step, in order.
    pub steps: Vec<Value>,
}

/// Runs the race (see the module docs); `first` is the node a five-node
/// cluster removes first, `split_ms` how long the two sides are held
/// apart at the end. The cut it holds under `holder` stays for the stop.
pub async fn race(ctx: &NemesisCtx, holder: Holder, first: u64, split_ms: u64) -> Raced {
    let mut out = Raced {
        removed: Vec::new(),
        steps: Vec::new(),
    };
    let began = Instant::now();
    let step = |out: &mut Raced, v: Value| {
        let mut v = v;
        v["at_ms"] = json!(began.elapsed().as_millis() as u64);
        tracing::info!("membership race: {v}");
        out.steps.push(v);
    };
    let leader = match ctx.leader().await {
        Some(l) => Some(l),
        None => {
            let l = ctx.leader_within(LEADER_WAIT).await;
            step(
                &mut out,
                json!({"step": "waited for a leader", "leader": l}),
            );
            l
        }
    };
    let Some(leader) = leader else {
        step(&mut out, json!({"step": "no leader: nothing done"}));
        return out;
    };
    let ids = ctx.ids();
    let mut voters: Vec<u64> = ids.clone();
    if ids.len() == 5 {
        // Four voters: the only size where the two changes can race.
        let r = if first == leader {
            next_after(&ids, leader, &[])
        } else {
            first
        };
        let answers =
            ask_until_certain(|| ctx.admin(AdminReq::Remove(r), Duration::from_secs(5))).await;
        if answers.iter().any(|a| super::admin::may_have_happened(a)) {
            out.removed.push(r);
        }
        let res = answers.last().cloned().unwrap_or_default();
        step(
            &mut out,
            json!({"step": "removed a fifth node first", "node": r, "result": res, "answers": answers}),
        );
        if res != "ok" {
            return out;
        }
        voters.retain(|&n| n != r);
        // The followers learn that the removal committed from the leader's
        // next message: without it, any successor would hold it pending
        // and refuse every change, buggy or not.
        tokio::time::sleep(COMMIT_SPREAD).await;
    }
    if voters.len() != 4 {
        step(
            &mut out,
            json!({"step": "not four voters: no race", "voters": voters}),
        );
        return out;
    }
    // The roles, in id order after the leader, so a replay steered to the
    // same leader gives every node the same part.
    let x = next_after(&voters, leader, &[]);
    let a = next_after(&voters, x, &[leader]);
    let others: Vec<u64> = ids.iter().copied().filter(|&n| n != leader).collect();
    // Armed before anyone campaigns: its first vote is the one that counts.
    let armed = ctx
        .set_failpoint(x, CRASH_AFTER_VOTE, true, Duration::from_secs(1))
        .await;
    step(
        &mut out,
        json!({"step": "armed the voter to crash after its vote", "node": x, "armed": armed}),
    );
    ctx.net.cut(
        holder,
        &super::schedule::Cut::isolate(leader, &ids).blocked_set(),
        ctx.sever_on_partition,
    );
    // The leader appends the change the moment it gets it, but answers
    // only once it commits, which it cannot: the answer is not awaited.
    // It may have happened whatever it says.
    let api = ctx.api.clone();
    let removal = tokio::spawn(async move {
        let req = AdminReq::Remove(a);
        api.admin(leader, &req).await
    });
    out.removed.push(a);
    step(
        &mut out,
        json!({"step": "cut the leader off and asked it to remove a node", "leader": leader, "node": a}),
    );
    let successor = elect_with_crashing_voter(ctx, leader, x).await;
    step(
        &mut out,
        json!({"step": "the others elected", "successor": successor, "voter": x}),
    );
    let Some(successor) = successor.filter(|&s| s != x) else {
        // X leads (or nobody): it never voted, the race is off.
        let disarmed = ctx
            .set_failpoint(x, CRASH_AFTER_VOTE, false, Duration::from_secs(1))
            .await;
        restart_if_down(ctx, x);
        removal.abort();
        step(
            &mut out,
            json!({"step": "no race: the crashing voter did not vote for another leader", "disarmed": disarmed}),
        );
        return out;
    };
    let res = ctx
        .admin_at(successor, AdminReq::Remove(leader), SUCCESSOR_CHANGE_BUDGET)
        .await;
    if super::admin::may_have_happened(&res) {
        out.removed.push(leader);
    }
    step(
        &mut out,
        json!({"step": "asked the successor to remove the old leader at once", "successor": successor, "node": leader, "result": res}),
    );
    // X rejoins on the old leader's side only, so that what the successor
    // committed without it never reaches it.
    let side: Vec<u64> = vec![leader, x];
    let rest: Vec<u64> = others.iter().copied().filter(|&n| n != x).collect();
    ctx.net.cut(
        holder,
        &super::schedule::Cut::from_groups(vec![side, rest]).blocked_set(),
        ctx.sever_on_partition,
    );
    let restarted = restart_if_down(ctx, x);
    // Up all along (it crashed at no vote), it is still armed: disarmed,
    // it can vote for the old leader and live.
    let disarmed = if restarted {
        Value::Null
    } else {
        json!(
            ctx.set_failpoint(x, CRASH_AFTER_VOTE, false, Duration::from_millis(500))
                .await
        )
    };
    step(
        &mut out,
        json!({"step": "put the old leader and the voter on one side and restarted the voter", "restarted": restarted, "disarmed": disarmed}),
    );
    tokio::time::sleep(Duration::from_millis(split_ms)).await;
    let leaders: Vec<Value> = ctx
        .status_all(Duration::from_millis(500))
        .await
        .into_iter()
        .filter(|s| s.role == "leader")
        .map(|s| json!({"node": s.id, "term": s.term}))
        .collect();
    step(
        &mut out,
        json!({"step": "held the two sides apart", "ms": split_ms, "leaders": leaders}),
    );
    let answer = match removal.await {
        Ok(r) => format!("{r:?}"),
        Err(e) => format!("{e}"),
    };
    step(
        &mut out,
        json!({"step": "the old leader answered its removal request", "answer": answer}),
    );
    out
}

/// The first node of `ids` after `from` (cyclically) that is not `from`
/// and not in `skip`.
fn next_after(ids: &[u64], from: u64, skip: &[u64]) -> u64 {
    let pos = ids.iter().position(|&i| i == from).unwrap_or(0);
    (1..ids.len())
        .map(|k| ids[(pos + k) % ids.len()])
        .find(|n| !skip.contains(n))
        .unwrap_or(from)
}

/// Waits for a leader other than `old`; each time `voter` crashes at its
/// vote before one is seen (a vote for a candidate that lost), restarts it
/// armed again. The voter is left down once a successor is seen.
async fn elect_with_crashing_voter(ctx: &NemesisCtx, old: u64, voter: u64) -> Option<u64> {
    let deadline = Instant::now() + ELECTION_WAIT;
    let boot = ctx.api.failpoint_boot_args(CRASH_AFTER_VOTE)?;
    while Instant::now() < deadline {
        if let Some(l) = ctx.leader().await.filter(|&l| l != old) {
            return Some(l);
        }
        let exit = ctx.cluster().take_exit(voter);
        if let Some(exit) = exit {
            if ctx.api.is_intended_exit(exit.code) {
                // Its vote went to a candidate that has not won (yet):
                // give it a moment to win before bringing the voter back.
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Some(l) = ctx.leader().await.filter(|&l| l != old) {
                    return Some(l);
                }
                let _ = ctx.cluster().start_with_args(voter, &boot);
            }
        }
        tokio::time::sleep(POLL).await;
    }
    None
}

/// How many times a change with an uncertain answer is asked in all.
const UNCERTAIN_TRIES: usize = 3;

/// Asks `ask` until its answer is certain (not "unknown: ..."), at most
/// [`UNCERTAIN_TRIES`] times; every answer, in order. Asking a removal again
/// is safe: on raft-node, removing a node already out commits again as a
/// no-op, so the last answer says whether it is out now (a race that began
/// after a timed-out first removal used to give up, holding four voters).
async fn ask_until_certain<F, Fut>(mut ask: F) -> Vec<String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let mut answers = Vec::new();
    while answers.len() < UNCERTAIN_TRIES {
        let a = ask().await;
        let certain = !a.starts_with("unknown");
        answers.push(a);
        if certain {
            break;
        }
    }
    answers
}

/// Starts `node` on its data dir if it is down; whether it did.
fn restart_if_down(ctx: &NemesisCtx, node: u64) -> bool {
    let mut c = ctx.cluster();
    c.reap_exited();
    let _ = c.take_exit(node);
    c.state(node) == Some(crate::target::cluster::NodeState::Down) && c.start(node).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::tests::unstarted_ctx;

    #[tokio::test]
    async fn an_uncertain_removal_is_asked_again_until_its_answer_is_certain() {
        async fn asked(script: &[&str]) -> Vec<String> {
            let mut left = script.iter().map(|s| s.to_string());
            ask_until_certain(|| {
                let next = left.next().expect("asked more than scripted");
                async move { next }
            })
            .await
        }
        assert_eq!(asked(&["ok"]).await, ["ok"]);
        assert_eq!(
            asked(&["unknown: timeout", "ok"]).await,
            ["unknown: timeout", "ok"]
        );
        assert_eq!(
            asked(&["unknown: a", "refused: pending"]).await,
            ["unknown: a", "refused: pending"]
        );
        // Never certain: given up after the last try, the answers kept.
        assert_eq!(
            asked(&["unknown: a", "unknown: b", "unknown: c"]).await,
            ["unknown: a", "unknown: b", "unknown: c"]
        );
    }

    #[tokio::test]
    async fn a_race_begun_without_a_leader_waits_for_one_then_does_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // Nodes that never answer: nobody leads.
        let ctx = unstarted_ctx(dir.path()).await;
        let began = Instant::now();
        let raced = race(&ctx, "membership", 2, 2_000).await;
        assert!(began.elapsed() >= LEADER_WAIT, "gave up before its wait");
        let steps: Vec<&str> = raced
            .steps
            .iter()
            .filter_map(|s| s["step"].as_str())
            .collect();
        assert_eq!(steps, ["waited for a leader", "no leader: nothing done"]);
        assert!(raced.removed.is_empty());
        assert!(ctx.net.held_links().is_empty(), "cut nothing");
    }
}
