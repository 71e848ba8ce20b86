//! The quick pass: certain operations that no order can explain, found
//! without a search. A finding is certain, so it decides a key invalid
//! even when the search runs out of budget, and `--fail-fast` runs it over
//! every key before any search.

use crate::hints::Finding;
use crate::model::SearchOp;
use crate::register::{append_only, text, RegOp, Val};
use std::collections::HashMap;

/// A certain read (or cas) that needs value `v` when no linearization
/// can give it `v`: nothing that may have happened wrote `v` before the
/// operation returned; or `v` was certainly overwritten before it began
/// (every certain write of `v` returned before some certain write of
/// another value was invoked, that one returned before the operation was
/// invoked, and no uncertain write of `v` was invoked before the
/// operation returned). The second is the stale read. Appends build
/// values from pieces, so a key with appends is skipped.
pub fn impossible(ops: &[SearchOp<RegOp>], initial: &Val) -> Option<Finding> {
    if append_only(ops) {
        return unordered_reads(ops, initial);
    }
    if ops.iter().any(|o| matches!(o.op, RegOp::Append(_))) {
        return None;
    }
    /// The earliest return of a setter, and its value.
    type Earliest<'a> = Option<(usize, &'a Val)>;
    /// What is known of the writes of one value.
    struct Writes {
        first_call: usize,
        /// Latest return of a certain write; -1 for the initial value.
        last_certain_ret: Option<i64>,
        first_uncertain_call: usize,
    }
    let mut writes: HashMap<&Val, Writes> = HashMap::new();
    writes.insert(
        initial,
        Writes {
            first_call: 0,
            last_certain_ret: Some(-1),
            first_uncertain_call: usize::MAX,
        },
    );
    // Certain operations that set the state: (call, ret, value).
    let mut setters: Vec<(usize, usize, &Val)> = Vec::new();
    for o in ops {
        if let RegOp::Write(v) | RegOp::Cas(_, v) = &o.op {
            let w = writes.entry(v).or_insert(Writes {
                first_call: usize::MAX,
                last_certain_ret: None,
                first_uncertain_call: usize::MAX,
            });
            w.first_call = w.first_call.min(o.call);
            match o.ret {
                Some(r) => {
                    w.last_certain_ret =
                        Some(w.last_certain_ret.map_or(r as i64, |x| x.max(r as i64)));
                    setters.push((o.call, r, v));
                }
                None => w.first_uncertain_call = w.first_uncertain_call.min(o.call),
            }
        }
    }
    setters.sort_by_key(|s| s.0);
    // For each suffix of the setters (by call): the earliest return, and
    // the earliest return among those of another value than that one.
    let mut best: Vec<(Earliest, Earliest)> = vec![(None, None); setters.len() + 1];
    for i in (0..setters.len()).rev() {
        let (_, ret, v) = setters[i];
        let (mut b1, mut b2) = best[i + 1];
        if b1.is_none_or(|(r, _)| ret < r) {
            if b1.is_some_and(|(_, bv)| bv != v) {
                b2 = b1;
            } else if b2.is_some_and(|(_, bv)| bv == v) {
                b2 = None;
            }
            b1 = Some((ret, v));
        } else if b1.is_some_and(|(_, bv)| bv != v) && b2.is_none_or(|(r, _)| ret < r) {
            b2 = Some((ret, v));
        }
        best[i] = (b1, b2);
    }
    // The earliest return of a setter of a value other than `v` among
    // those invoked after `after`.
    let overwritten_by = |v: &Val, after: i64| -> Option<usize> {
        let i = setters.partition_point(|s| (s.0 as i64) <= after);
        let (b1, b2) = best[i];
        match b1 {
            Some((r, bv)) if bv != v => Some(r),
            _ => b2.map(|(r, _)| r),
        }
    };
    ops.iter()
        .enumerate()
        .filter_map(|(i, o)| {
            let ret = o.ret?;
            let needed = match &o.op {
                RegOp::Read(v) | RegOp::Cas(v, _) => v,
                _ => return None,
            };
            let why = match writes.get(needed) {
                None => format!("nothing ever wrote {}", needed.to_json()),
                Some(w) if w.first_call > ret => format!(
                    "{} was first written after this operation returned",
                    needed.to_json()
                ),
                Some(w) => {
                    let last = w.last_certain_ret?;
                    if w.first_uncertain_call < ret {
                        return None;
                    }
                    let over = overwritten_by(needed, last)?;
                    if over >= o.call {
                        return None;
                    }
                    format!(
                        "{} was overwritten before this operation began: every write of it \
                         had returned before another value was written, and that write \
                         returned before this operation was invoked (a stale read)",
                        needed.to_json()
                    )
                }
            };
            Some((ret, i, why))
        })
        .min_by_key(|(ret, _, _)| *ret)
        .map(|(_, i, why)| Finding {
            op: i,
            with: Vec::new(),
            why,
        })
}

/// On an append-only key, the first certain read (by return) whose value is
/// neither a prefix nor an extension of an earlier-returning certain read's
/// value. Both reads must be linearized, and the state only grows by
/// extension, so the two values would both lie on one chain of prefixes:
/// no order explains both. (Keeping the longest value so far suffices: if
/// the new value is comparable with it, it is comparable with every value
/// before, since those are all prefixes of the longest.)
///
/// Also a certain read of a value that is not a string (nor absent) and not
/// the initial value: appends only make strings.
fn unordered_reads(ops: &[SearchOp<RegOp>], initial: &Val) -> Option<Finding> {
    let not_text = ops
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match (&o.op, o.ret) {
            (RegOp::Read(v), Some(r)) if text(v).is_none() && v != initial => Some((r, i)),
            _ => None,
        })
        .min()
        .map(|(r, i)| {
            let why = "the key only ever sees appends, which make strings, and this value is \
                       not a string nor the initial value";
            (
                r,
                Finding {
                    op: i,
                    with: Vec::new(),
                    why: why.to_string(),
                },
            )
        });
    let unordered = unordered_text_reads(ops).map(|f| (ops[f.op].ret.unwrap_or(0), f));
    [not_text, unordered]
        .into_iter()
        .flatten()
        .min_by_key(|(r, f)| (*r, f.op))
        .map(|(_, f)| f)
}

/// The first certain read (by return) whose text is neither a prefix nor an
/// extension of the longest text read before it.
pub(crate) fn unordered_text_reads(ops: &[SearchOp<RegOp>]) -> Option<Finding> {
    let mut reads: Vec<(usize, usize, &str)> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match (&o.op, o.ret) {
            (RegOp::Read(v), Some(r)) => text(v).map(|t| (r, i, t)),
            _ => None,
        })
        .collect();
    reads.sort_by_key(|&(r, i, _)| (r, i));
    let mut longest: Option<(usize, &str)> = None;
    for &(_, i, t) in &reads {
        match longest {
            None => longest = Some((i, t)),
            Some((_, l)) if t.starts_with(l) => longest = Some((i, t)),
            Some((_, l)) if l.starts_with(t) => {}
            Some((j, l)) => {
                return Some(Finding {
                    op: i,
                    with: vec![j],
                    why: format!(
                        "it read {:?} but an earlier-returning read (invoked at event position {}) \
                         saw {:?}; neither is a prefix of the other, and appends only extend \
                         the value, so no order explains both",
                        t, ops[j].call, l
                    ),
                })
            }
        }
    }
    None
}
