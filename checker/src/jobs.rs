//! A history's operations prepared for the model and split into one job
//! per key, with what no search needs already left out.

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
        let prepared = model.prepare(op).map_err(|m| {
            HistoryError::event(
                op.complete.filter(|_| op.f == "read").unwrap_or(op.invoke),
                m,
            )
        })?;
        let key = model.partition(op);
        let slot = *index.entry(key.clone()).or_insert_with(|| {
            jobs.push(KeyJob {
                key,
                ops: Vec::new(),
                ids: Vec::new(),
            });
            jobs.len() - 1
        });
        let Some(prepared) = prepared else { continue };
        let ret = match op.outcome {
            Outcome::Fail => continue,
            Outcome::Ok => op.complete,
            Outcome::Info | Outcome::Pending if model.is_read_only(&prepared) => continue,
            Outcome::Info | Outcome::Pending => None,
        };
        jobs[slot].ops.push(SearchOp {
            op: prepared,
            call: op.invoke,
            ret,
        });
        jobs[slot].ids.push(id);
    }
    for job in &mut jobs {
        drop_redundant(model, job);
    }
    // Biggest keys first, so that one slow key does not start last.
    jobs.sort_by_key(|j| std::cmp::Reverse(j.ops.len()));
    Ok(jobs)
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
