//! The shape of a register or append violation, in one plain sentence:
//! stale read, lost write, read of a value never written, two appends seen
//! in two orders, a cas against a value that was not there, ... Read off a
//! minimal witness, whose few operations make the shape plain.

use crate::hints::Shape;
use crate::model::SearchOp;
use crate::pieces::{piece_map, split};
use crate::register::{text, RegOp, Val};
use std::collections::HashMap;

/// The shape `witness` (indexes into the key's `all`) shows, if known.
pub fn shape(all: &[SearchOp<RegOp>], initial: &Val, witness: &[usize]) -> Option<Shape> {
    if all.iter().any(|o| matches!(o.op, RegOp::Append(_))) {
        append_shape(all, initial, witness)
    } else {
        register_shape(all, initial, witness)
    }
}

fn shape_of(text: String, ops: Vec<usize>) -> Option<Shape> {
    Some(Shape { text, ops })
}

/// A value as a sentence shows it: JSON, cut short.
fn show(v: &Val) -> String {
    let s = v.to_json().to_string();
    if s.chars().count() <= 60 {
        s
    } else {
        format!("{}…", s.chars().take(59).collect::<String>())
    }
}

fn register_shape(all: &[SearchOp<RegOp>], initial: &Val, w: &[usize]) -> Option<Shape> {
    let sets = |i: usize| match &all[i].op {
        RegOp::Write(v) | RegOp::Cas(_, v) => Some(v),
        _ => None,
    };
    for &o in w {
        let (Some(ret), need, is_read) = (
            all[o].ret,
            match &all[o].op {
                RegOp::Read(v) | RegOp::Cas(v, _) => v,
                _ => continue,
            },
            matches!(all[o].op, RegOp::Read(_)),
        ) else {
            continue;
        };
        let (what, did) = if is_read {
            ("read", "returned")
        } else {
            ("cas", "expected")
        };
        if need != initial {
            let producers: Vec<usize> = (0..all.len()).filter(|&p| sets(p) == Some(need)).collect();
            if producers.is_empty() {
                return shape_of(
                    format!(
                        "a {what} of a value never written: {{0}} {did} {}, which no operation wrote",
                        show(need)
                    ),
                    vec![o],
                );
            }
            if let Some(&first) = producers.iter().min_by_key(|&&p| all[p].call) {
                if all[first].call > ret {
                    return shape_of(
                        format!(
                            "a {what} of a value not yet written: {{0}} {did} {}, but its first \
                             write, {{1}}, began after that",
                            show(need)
                        ),
                        vec![o, first],
                    );
                }
            }
        }
        // Stale: another value was certainly written over it before o began.
        for &s in w {
            let (Some(v), Some(s_ret)) = (sets(s), all[s].ret) else {
                continue;
            };
            if v == need || s_ret >= all[o].call {
                continue;
            }
            let source = w
                .iter()
                .copied()
                .find(|&p| sets(p) == Some(need) && all[p].ret.is_some_and(|r| r < all[s].call));
            if source.is_none() && need != initial {
                continue;
            }
            let after = match source {
                Some(_) => format!(", after {{2}} wrote {}", show(need)),
                None => " (it held the initial value before)".to_string(),
            };
            let text = if is_read {
                format!(
                    "stale read: {{0}} returned {}, but {{1}} had written {} over it and was \
                     acknowledged before the read began{after}",
                    show(need),
                    show(v)
                )
            } else {
                format!(
                    "a cas succeeded against a value that was not there: {{0}} expected {}, but \
                     {{1}} had written {} over it and was acknowledged before the cas began{after}",
                    show(need),
                    show(v)
                )
            };
            return shape_of(text, [o, s].into_iter().chain(source).collect());
        }
    }
    None
}

/// A read of an append key, as the search sees it: its pieces (the
/// appending operation, or `None` for a piece nothing appended) in order.
struct PieceRead<'a> {
    op: usize,
    pieces: Vec<(&'a str, Option<usize>)>,
}

fn append_shape(all: &[SearchOp<RegOp>], initial: &Val, w: &[usize]) -> Option<Shape> {
    let init = text(initial)?;
    let piece_of = piece_map(all)?;
    let read_of = |i: usize| -> Option<PieceRead> {
        let (RegOp::Read(v), Some(_)) = (&all[i].op, all[i].ret) else {
            return None;
        };
        let rest = text(v)?.strip_prefix(init)?;
        Some(PieceRead {
            op: i,
            pieces: split(rest, &piece_of)
                .map(|p| (p, piece_of.get(p).copied()))
                .collect(),
        })
    };
    let reads: Vec<PieceRead> = w.iter().filter_map(|&i| read_of(i)).collect();
    let appends: Vec<usize> = w
        .iter()
        .copied()
        .filter(|&i| matches!(all[i].op, RegOp::Append(_)))
        .collect();
    let piece = |a: usize| match &all[a].op {
        RegOp::Append(s) => format!("{s:?}"),
        _ => String::new(),
    };
    for r in &reads {
        let ret = all[r.op].ret.unwrap_or(0);
        for &(p, by) in &r.pieces {
            match by {
                None => {
                    return shape_of(
                        format!(
                            "a read of a value never written: {{0}} shows {p:?}, which nothing appended"
                        ),
                        vec![r.op],
                    )
                }
                Some(a) if all[a].call > ret => {
                    return shape_of(
                        format!(
                            "a read saw an append before it began: {{0}} shows {p:?}, but {{1}} \
                             was invoked after the read returned"
                        ),
                        vec![r.op, a],
                    )
                }
                _ => {}
            }
        }
    }
    let w = PieceWitness {
        all,
        reads: &reads,
        appends: &appends,
        piece: &piece,
    };
    w.two_orders()
        .or_else(|| w.missed())
        .or_else(|| w.wrong_order())
}

/// The reads and appends of a witness on a key of pieces.
struct PieceWitness<'a> {
    all: &'a [SearchOp<RegOp>],
    reads: &'a [PieceRead<'a>],
    appends: &'a [usize],
    /// An append's piece, quoted.
    piece: &'a dyn Fn(usize) -> String,
}

impl PieceWitness<'_> {
    /// Two reads that show two appends in opposite orders, or neither of
    /// which extends the other.
    fn two_orders(&self) -> Option<Shape> {
        let (reads, piece) = (self.reads, self.piece);
        for (k, r1) in reads.iter().enumerate() {
            let pos1: HashMap<usize, usize> = r1
                .pieces
                .iter()
                .enumerate()
                .filter_map(|(j, &(_, a))| a.map(|a| (a, j)))
                .collect();
            for r2 in &reads[k + 1..] {
                let both: Vec<usize> = r2
                    .pieces
                    .iter()
                    .filter_map(|&(_, a)| a.filter(|a| pos1.contains_key(a)))
                    .collect();
                for (j, &b) in both.iter().enumerate() {
                    if let Some(&a) = both[j + 1..].iter().find(|&&a| pos1[&a] < pos1[&b]) {
                        return shape_of(
                            format!(
                                "two appends seen in two orders: {{0}} shows {} before {}, {{1}} \
                             shows {} before {}",
                                piece(a),
                                piece(b),
                                piece(b),
                                piece(a)
                            ),
                            vec![r1.op, r2.op],
                        );
                    }
                }
                let (short, long) = if r1.pieces.len() <= r2.pieces.len() {
                    (r1, r2)
                } else {
                    (r2, r1)
                };
                if !long.pieces.starts_with(&short.pieces) {
                    return shape_of(
                        "two reads no order of appends explains: neither {0}'s value nor {1}'s \
                     extends the other, and appends only extend the value"
                            .to_string(),
                        vec![short.op, long.op],
                    );
                }
            }
        }
        None
    }

    /// A read that misses an append acknowledged before it began.
    fn missed(&self) -> Option<Shape> {
        let (all, piece) = (self.all, self.piece);
        for r in self.reads {
            let shows = |a: usize| r.pieces.iter().any(|&(_, b)| b == Some(a));
            for &x in self.appends {
                if shows(x) || all[x].ret.is_none_or(|xr| xr >= all[r.op].call) {
                    continue;
                }
                let seen_elsewhere = all.iter().any(|o| match &o.op {
                    RegOp::Read(Val::Str(s)) => {
                        o.ret.is_some() && s.contains(&*Self::piece_text(all, x))
                    }
                    _ => false,
                });
                let text = if seen_elsewhere {
                    format!(
                        "stale read: {{0}} misses {}, which {{1}} appended and was acknowledged \
                     before the read began (other reads show it)",
                        piece(x)
                    )
                } else {
                    format!(
                    "lost write: {{1}} appended {} and was acknowledged, yet {{0}}, which began \
                     after that, misses it, and no read ever shows it",
                    piece(x)
                )
                };
                return shape_of(text, vec![r.op, x]);
            }
        }
        None
    }

    fn piece_text(all: &[SearchOp<RegOp>], a: usize) -> std::sync::Arc<str> {
        match &all[a].op {
            RegOp::Append(s) => s.clone(),
            _ => "".into(),
        }
    }

    /// Two appends, one acknowledged before the other began, that a read shows
    /// the other way round (or the later one without the earlier).
    fn wrong_order(&self) -> Option<Shape> {
        let (all, piece) = (self.all, self.piece);
        for r in self.reads {
            let pos = |a: usize| r.pieces.iter().position(|&(_, b)| b == Some(a));
            for &x in self.appends {
                for &y in self.appends {
                    let (Some(xr), Some(py)) = (all[x].ret, pos(y)) else {
                        continue;
                    };
                    if xr >= all[y].call || pos(x).is_some_and(|px| px < py) {
                        continue;
                    }
                    let how = if pos(x).is_some() {
                        "before"
                    } else {
                        "without"
                    };
                    return shape_of(
                        format!(
                            "two appends in the wrong order: {{1}} was acknowledged before {{2}} \
                         began, but {{0}} shows {} {how} {}",
                            piece(y),
                            piece(x)
                        ),
                        vec![r.op, x, y],
                    );
                }
            }
        }
        None
    }
}
