//! What a witness must keep for its reads to make sense: an operation that
//! observes a value (a read, a successful cas, a read of appended pieces)
//! needs a producer of that value in the sub-history too, whenever some
//! operation of the key produced it. Values nothing in the key produced
//! need nothing: such a read is impossible on its own.

use crate::hints::Need;
use crate::model::SearchOp;
use crate::pieces::{piece_map, split};
use crate::register::{append_only, text, RegOp, Val};
use std::collections::HashMap;

/// How many of the writes that could have come before a read its need
/// names (the latest ones): a witness keeps one of them.
const SOURCES: usize = 64;

/// What each of the key's operations needs in a witness, as a function of
/// its index (the indexes it needs are built once).
pub fn needs<'a>(all: &'a [SearchOp<RegOp>], initial: &'a Val) -> Box<dyn Fn(usize) -> Need + 'a> {
    if all.iter().any(|o| matches!(o.op, RegOp::Append(_))) {
        let (Some(init), true, Some(piece_of)) = (text(initial), append_only(all), piece_map(all))
        else {
            // Appends mixed with writes, or values that are not pieces:
            // nothing is required.
            return Box::new(|_| Need::default());
        };
        return Box::new(move |i| {
            let (RegOp::Read(v), Some(_)) = (&all[i].op, all[i].ret) else {
                return Need::default();
            };
            let all_of = text(v)
                .and_then(|t| t.strip_prefix(init))
                .map(|rest| {
                    split(rest, &piece_of)
                        .filter_map(|p| piece_of.get(p).map(|&a| a as u32))
                        .collect()
                })
                .unwrap_or_default();
            Need {
                all_of,
                any_of: Vec::new(),
            }
        });
    }
    let mut writers: HashMap<&Val, Vec<usize>> = HashMap::new();
    for (i, o) in all.iter().enumerate() {
        if let RegOp::Write(v) | RegOp::Cas(_, v) = &o.op {
            writers.entry(v).or_default().push(i);
        }
    }
    for w in writers.values_mut() {
        w.sort_by_key(|&p| all[p].call);
    }
    Box::new(move |i| {
        let (RegOp::Read(v) | RegOp::Cas(v, _), Some(ret)) = (&all[i].op, all[i].ret) else {
            return Need::default();
        };
        let Some(w) = writers.get(v).filter(|_| v != initial) else {
            return Need::default();
        };
        let before = w.partition_point(|&p| all[p].call < ret);
        Need {
            all_of: Vec::new(),
            any_of: w[before.saturating_sub(SOURCES)..before]
                .iter()
                .rev()
                .map(|&p| p as u32)
                .collect(),
        }
    })
}
