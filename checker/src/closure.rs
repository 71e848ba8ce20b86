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

/// What each of the key's operations needs in a witness.
pub fn needs(all: &[SearchOp<RegOp>], initial: &Val) -> Vec<Need> {
    let mut out = vec![Need::default(); all.len()];
    if all.iter().any(|o| matches!(o.op, RegOp::Append(_))) {
        let (Some(init), true, Some(piece_of)) = (text(initial), append_only(all), piece_map(all))
        else {
            // Appends mixed with writes, or values that are not pieces:
            // nothing is required.
            return out;
        };
        for (i, o) in all.iter().enumerate() {
            let (RegOp::Read(v), Some(_)) = (&o.op, o.ret) else {
                continue;
            };
            if let Some(rest) = text(v).and_then(|t| t.strip_prefix(init)) {
                out[i].all_of = split(rest, &piece_of)
                    .filter_map(|p| piece_of.get(p).map(|&a| a as u32))
                    .collect();
            }
        }
        return out;
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
    for (i, o) in all.iter().enumerate() {
        let (RegOp::Read(v) | RegOp::Cas(v, _), Some(ret)) = (&o.op, o.ret) else {
            continue;
        };
        if v == initial {
            continue;
        }
        let Some(w) = writers.get(v) else { continue };
        let before = w.partition_point(|&p| all[p].call < ret);
        out[i].any_of = w[before.saturating_sub(SOURCES)..before]
            .iter()
            .rev()
            .map(|&p| p as u32)
            .collect();
    }
    out
}
