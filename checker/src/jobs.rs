//! A history's operations prepared for the model and split into one job
//! per key, with what no search needs already left out.

use crate::compact::CompactHistory;
use crate::hints::SearchHints;
use crate::model::SearchOp;
use crate::operation::{Operation, Outcome};
use crate::HistoryError;
use std::collections::HashMap;

/// Prepared operations of one key.
pub struct KeyJob<O> {
    /// The key.
    pub key: String,
    /// What the search sees.
    pub ops: Vec<SearchOp<O>>,
    /// `ids[i]` is the operation (index into the paired list) of `ops[i]`.
    pub ids: Vec<usize>,
}

/// One job per key, biggest first: failed operations, uncertain reads and
/// uncertain writes nobody could observe are left out (they constrain
/// nothing).
pub fn key_jobs<M: SearchHints>(
    model: &M,
    operations: &[Operation],
) -> Result<Vec<KeyJob<M::Op>>, HistoryError> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut jobs: Vec<KeyJob<M::Op>> = Vec::new();
    for (id, op) in operations.iter().enumerate() {
        let prepared = prepare(model, op)?;
        let key = model.partition(op);
        let slot = *index.entry(key.clone()).or_insert_with(|| {
            jobs.push(KeyJob {
                key,
                ops: Vec::new(),
                ids: Vec::new(),
            });
            jobs.len() - 1
        });
        if let Some(so) = prepared.and_then(|p| search_op(model, op, p)) {
            jobs[slot].ops.push(so);
            jobs[slot].ids.push(id);
        }
    }
    for job in &mut jobs {
        drop_redundant(model, job);
    }
    // Biggest keys first, so that one slow key does not start last.
    jobs.sort_by_key(|j| std::cmp::Reverse(j.ops.len()));
    Ok(jobs)
}

/// One key's operations before the search takes the key up: which rows of
/// the history it will see, nothing prepared yet. A million operations'
/// prepared forms would take ~100 MB at once; prepared a key at a time
/// (see [`job_of`]), only the keys being searched hold theirs.
#[derive(Debug, Clone)]
pub struct KeyGroup {
    /// The key.
    pub key: String,
    /// The operations (ids in the history) the search sees, in its order,
    /// exactly those [`key_jobs`] would give the key.
    pub ids: Vec<u32>,
}

/// [`key_jobs`] for a compact history, without the prepared operations:
/// the same keys in the same order, each with the same operations, and
/// the same error for the same bad operation.
pub fn key_groups<M: SearchHints>(
    model: &M,
    history: &CompactHistory,
) -> Result<Vec<KeyGroup>, HistoryError> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<KeyGroup> = Vec::new();
    for id in 0..history.len() {
        let op = history.op(id);
        let prepared = prepare(model, &op)?;
        let key = model.partition(&op);
        let slot = *index.entry(key.clone()).or_insert_with(|| {
            groups.push(KeyGroup {
                key,
                ids: Vec::new(),
            });
            groups.len() - 1
        });
        if prepared.and_then(|p| search_op(model, &op, p)).is_some() {
            groups[slot].ids.push(id as u32);
        }
    }
    for g in &mut groups {
        let mut job = job_of(model, history, g);
        drop_redundant(model, &mut job);
        g.ids = job.ids.into_iter().map(|id| id as u32).collect();
    }
    // Biggest keys first, so that one slow key does not start last.
    groups.sort_by_key(|g| std::cmp::Reverse(g.ids.len()));
    Ok(groups)
}

/// The job of `group`: its operations prepared for the search.
pub fn job_of<M: SearchHints>(
    model: &M,
    history: &CompactHistory,
    group: &KeyGroup,
) -> KeyJob<M::Op> {
    let mut job = KeyJob {
        key: group.key.clone(),
        ops: Vec::with_capacity(group.ids.len()),
        ids: Vec::with_capacity(group.ids.len()),
    };
    for &id in &group.ids {
        let op = history.op(id as usize);
        // Prepared once already without error: the same again.
        let Some(so) = prepare(model, &op)
            .ok()
            .flatten()
            .and_then(|p| search_op(model, &op, p))
        else {
            continue;
        };
        job.ops.push(so);
        job.ids.push(id as usize);
    }
    job
}

fn prepare<M: SearchHints>(model: &M, op: &Operation) -> Result<Option<M::Op>, HistoryError> {
    model.prepare(op).map_err(|m| {
        HistoryError::event(
            op.complete.filter(|_| op.f == "read").unwrap_or(op.invoke),
            m,
        )
    })
}

/// What the search sees of `op`, or `None` when it constrains nothing
/// (failed, or an uncertain read).
fn search_op<M: SearchHints>(
    model: &M,
    op: &Operation,
    prepared: M::Op,
) -> Option<SearchOp<M::Op>> {
    let ret = match op.outcome {
        Outcome::Fail => return None,
        Outcome::Ok => op.complete,
        Outcome::Info | Outcome::Pending if model.is_read_only(&prepared) => return None,
        Outcome::Info | Outcome::Pending => None,
    };
    Some(SearchOp {
        op: prepared,
        call: op.invoke,
        ret,
    })
}

fn drop_redundant<M: SearchHints>(model: &M, job: &mut KeyJob<M::Op>) {
    let prepared: Vec<M::Op> = job.ops.iter().map(|o| o.op.clone()).collect();
    let uncertain: Vec<bool> = job.ops.iter().map(|o| o.ret.is_none()).collect();
    let drop = model.redundant(&prepared, &uncertain);
    if !drop.iter().any(|&d| d) {
        return;
    }
    let mut keep = drop.iter().map(|d| !d);
    let mut keep2 = drop.iter().map(|d| !d);
    job.ops.retain(|_| keep.next().unwrap_or(true));
    job.ids.retain(|_| keep2.next().unwrap_or(true));
}
