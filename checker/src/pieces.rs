//! Append-only keys whose values split into pieces one way only, decided
//! exactly without a search.
//!
//! On a key of only appends and reads where every appended value is
//! distinct, non-empty, and ends with one delimiter that appears nowhere
//! else in it (the driver's `"1,"`, `"2,"`, ...; Porcupine's `"x 0 0 y"`),
//! the state is always the initial text followed by appended pieces, each
//! at most once, and a text splits into pieces in one way only. Then the
//! longest read fixes the whole order: the appends it shows are linearized
//! in its order (a_1 .. a_m); a read of j pieces sits between a_j and
//! a_{j+1}; the other certain appends come after every read; uncertain
//! appends it does not show are left out (nothing observes them). That is
//! a sequence of groups G_0 < a_1 < G_1 < ... < a_m < G_m < T, free inside
//! a group. Real time must agree with it: a linearization exists exactly
//! when no operation of a later group returned before an operation of an
//! earlier group was invoked (then ordering each group by call order gives
//! one). Every linearization has this group order, so a violation of it is
//! certain. One pass over the operations, against the earliest return of
//! each later group, decides the key.

use crate::hints::{Decision, Finding};
use crate::impossible::unordered_text_reads;
use crate::model::SearchOp;
use crate::register::{append_only, text, RegOp, Val};
use std::collections::HashMap;

/// Decides an append-only key whose appended values are pieces; `None`
/// when the key is not of that shape (or its initial value is not text),
/// which leaves it to the search.
pub fn decide(ops: &[SearchOp<RegOp>], initial: &Val) -> Option<Decision> {
    let init = text(initial)?;
    if !append_only(ops) {
        return None;
    }
    let piece_of = piece_map(ops)?;
    let reads: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].ret.is_some() && matches!(ops[i].op, RegOp::Read(_)))
        .collect();
    let mut findings: Vec<(usize, Finding)> = Vec::new();
    let mut texts: Vec<(usize, &str)> = Vec::new();
    for &r in &reads {
        let RegOp::Read(v) = &ops[r].op else { continue };
        match read_text(v, initial, init) {
            Ok(t) => texts.push((r, t)),
            Err(why) => findings.push((moment(ops, r), finding(r, Vec::new(), why))),
        }
    }
    if let Some(f) = unordered_text_reads(ops) {
        findings.push((moment(ops, f.op), f));
    } else {
        // The reads form a chain: the longest fixes the order.
        let longest = texts.iter().max_by_key(|(_, t)| t.len()).copied();
        match parse(longest.map_or(init, |(_, t)| t), init, &piece_of) {
            Err(why) => {
                let r = longest.map_or(0, |(r, _)| r);
                findings.push((moment(ops, r), finding(r, Vec::new(), why)));
            }
            Ok(order) => match groups(ops, &texts, init, &order) {
                Ok(group) => {
                    if let Some(f) = backward(ops, &group, &order) {
                        findings.push((moment(ops, f.op), f));
                    }
                }
                Err(f) => findings.push((moment(ops, f.op), f)),
            },
        }
    }
    Some(match findings.into_iter().min_by_key(|(m, f)| (*m, f.op)) {
        None => Decision::Linearizable,
        Some((_, f)) => Decision::Violation(f),
    })
}

fn finding(op: usize, with: Vec<usize>, why: String) -> Finding {
    Finding { op, with, why }
}

/// When an operation's fate is sealed: its return, or its call.
fn moment(ops: &[SearchOp<RegOp>], i: usize) -> usize {
    ops[i].ret.unwrap_or(ops[i].call)
}

/// The appended values by text, when they are pieces: distinct, non-empty,
/// ending with one delimiter found nowhere else in them.
pub(crate) fn piece_map(ops: &[SearchOp<RegOp>]) -> Option<HashMap<&str, usize>> {
    let mut delim = None;
    let mut piece_of = HashMap::new();
    for (i, o) in ops.iter().enumerate() {
        let RegOp::Append(s) = &o.op else { continue };
        let last = s.chars().next_back()?;
        if *delim.get_or_insert(last) != last || s.matches(last).count() != 1 {
            return None;
        }
        if piece_of.insert(&**s, i).is_some() {
            return None;
        }
    }
    Some(piece_of)
}

/// The text of a read's value, or why no state of the key is that value.
fn read_text<'a>(v: &'a Val, initial: &Val, init: &str) -> Result<&'a str, String> {
    match (v, initial) {
        (Val::Absent, Val::Absent) => Ok(""),
        (Val::Absent, _) => Err(format!(
            "it read null, but the key starts at {} and appends only extend it",
            initial.to_json()
        )),
        (Val::Str(s), Val::Absent) if s.is_empty() => Err(
            "it read \"\", but the key starts absent and every append adds a non-empty piece"
                .to_string(),
        ),
        (Val::Str(s), _) if s.starts_with(init) => Ok(s),
        (Val::Str(_), _) => Err(format!(
            "its value does not start with the initial value {}, and appends only extend it",
            initial.to_json()
        )),
        _ => Err(
            "the key only ever sees appends, which make strings, and this value is not a string"
                .to_string(),
        ),
    }
}

/// The appends `t` shows, in order (an error if it is not the initial text
/// followed by distinct appended pieces).
fn parse(t: &str, init: &str, piece_of: &HashMap<&str, usize>) -> Result<Vec<usize>, String> {
    let mut order = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for piece in split(&t[init.len()..], piece_of) {
        let Some(&op) = piece_of.get(piece) else {
            return Err(format!("its value holds {piece:?}, which nothing appended"));
        };
        if !seen.insert(op) {
            return Err(format!(
                "its value holds {piece:?} twice, but it was appended once"
            ));
        }
        order.push(op);
    }
    Ok(order)
}

/// The pieces of `rest` (text after the initial value): cut after each
/// delimiter; a last piece without one is kept as it is.
pub(crate) fn split<'a>(
    rest: &'a str,
    piece_of: &HashMap<&str, usize>,
) -> impl Iterator<Item = &'a str> {
    let delim = piece_of
        .keys()
        .next()
        .and_then(|p| p.chars().next_back())
        .unwrap_or(',');
    rest.split_inclusive(delim)
}

/// The group of each operation (see the module doc): `2j - 1` for the
/// j-th append the longest read shows, `2j` for a read of j pieces,
/// `2m + 1` for other certain appends, `None` for uncertain appends the
/// longest read does not show. An error for a read that ends inside a
/// piece.
fn groups(
    ops: &[SearchOp<RegOp>],
    texts: &[(usize, &str)],
    init: &str,
    order: &[usize],
) -> Result<Vec<Option<usize>>, Finding> {
    let m = order.len();
    let mut group: Vec<Option<usize>> = ops
        .iter()
        .map(|o| match o.op {
            RegOp::Append(_) if o.ret.is_some() => Some(2 * m + 1),
            _ => None,
        })
        .collect();
    // Byte length of the state after j pieces.
    let mut len_after = Vec::with_capacity(m + 1);
    len_after.push(init.len());
    for (j, &a) in order.iter().enumerate() {
        group[a] = Some(2 * j + 1);
        if let RegOp::Append(s) = &ops[a].op {
            len_after.push(len_after[j] + s.len());
        }
    }
    for &(r, t) in texts {
        match len_after.binary_search(&t.len()) {
            Ok(j) => group[r] = Some(2 * j),
            Err(_) => {
                return Err(finding(
                    r,
                    Vec::new(),
                    format!("its value {t:?} ends inside an appended piece"),
                ))
            }
        }
    }
    Ok(group)
}

/// An operation the group order puts before another that returned before
/// it was invoked, named as a person would: the read that shows the
/// impossible order.
fn backward(ops: &[SearchOp<RegOp>], group: &[Option<usize>], order: &[usize]) -> Option<Finding> {
    let top = group.iter().flatten().max().copied()?;
    // For each group g: the op with the earliest return in a group above g.
    let mut first_ret: Vec<Option<(usize, usize)>> = vec![None; top + 2];
    for (i, g) in group.iter().enumerate() {
        if let (Some(g), Some(r)) = (g, ops[i].ret) {
            if first_ret[*g].is_none_or(|(best, _)| r < best) {
                first_ret[*g] = Some((r, i));
            }
        }
    }
    let mut above: Vec<Option<(usize, usize)>> = vec![None; top + 2];
    for g in (0..=top).rev() {
        above[g] = match (above[g + 1], first_ret[g + 1]) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let mut by_call: Vec<usize> = (0..ops.len()).filter(|&i| group[i].is_some()).collect();
    by_call.sort_by_key(|&i| (ops[i].call, i));
    let (y, x) = by_call.into_iter().find_map(|y| {
        let g = group[y]?;
        let (r, x) = above[g]?;
        (r < ops[y].call).then_some((y, x))
    })?;
    let is_read = |i: usize| matches!(ops[i].op, RegOp::Read(_));
    let shown = |i: usize| match &ops[i].op {
        RegOp::Append(s) | RegOp::Read(Val::Str(s)) => format!("{s:?}"),
        other => format!("{other:?}"),
    };
    Some(match (is_read(y), is_read(x)) {
        (true, _) => finding(
            y,
            vec![x],
            format!(
                "it misses {}, which was acknowledged (at event position {}) before this read \
                 began, and appends only extend the value",
                if is_read(x) {
                    "what an earlier read saw".to_string()
                } else {
                    shown(x)
                },
                ops[x].ret.unwrap_or(0)
            ),
        ),
        (false, true) => finding(
            x,
            vec![y],
            format!(
                "it shows {}, whose append was invoked (at event position {}) after this read \
                 returned",
                shown(y),
                ops[y].call
            ),
        ),
        (false, false) => {
            // Append x returned before append y began, yet the shortest
            // read showing y's piece shows it before x's, or without it.
            let pos_y = order.iter().position(|&a| a == y).unwrap_or(0);
            let read = (0..ops.len())
                .filter(|&i| is_read(i) && group[i].is_some_and(|g| g > 2 * pos_y))
                .min_by_key(|&i| (group[i], ops[i].ret));
            let shows_x = read.is_some_and(|r| group[x] < group[r]);
            let why = format!(
                "it shows {} {} {}, but {} was acknowledged (at event position {}) before {} \
                 was invoked (at event position {})",
                shown(y),
                if shows_x { "before" } else { "but not" },
                shown(x),
                shown(x),
                ops[x].ret.unwrap_or(0),
                shown(y),
                ops[y].call
            );
            match read {
                Some(r) => finding(r, vec![x, y], why),
                None => finding(y, vec![x], why),
            }
        }
    })
}
