//! A timeline a person can read: one row per operation, its label in a
//! column of its own (so labels never run into each other, whatever the
//! overlap of the bars), the bar from invoke to completion on a shared
//! time axis, the impossible operation marked. Hovering a bar (an SVG
//! `<title>`) gives process, f, value, times and history indexes.
//!
//! Drawn for a violation's witness (a handful of operations), or, when
//! there was no time to find one, for the operations around it.

use crate::history::Event;
use crate::operation::{Operation, Outcome};
use crate::palette::{hex, op_colour};
use crate::report::escape;
use crate::verdict_text::shorten;
use std::fmt::Write as _;

const WIDTH: f64 = 1000.0;
/// The label column.
const LABEL_W: f64 = 330.0;
/// Right of the bars: room for the "impossible" mark.
const RIGHT_W: f64 = 110.0;
const ROW_H: f64 = 22.0;
const TOP: f64 = 24.0;
/// Characters of a value in a label (all of it, up to the page's limit,
/// on hover).
const LABEL_VALUE_CHARS: usize = 24;
const HOVER_VALUE_CHARS: usize = 200;

/// One operation to draw.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    /// The operation.
    pub op: &'a Operation,
    /// History index of its invoke.
    pub invoke_index: u64,
    /// History index of its completion, if any.
    pub complete_index: Option<u64>,
    /// Whether this is the operation that cannot be linearized.
    pub impossible: bool,
    /// Whether the violation's sentence names it (by history index): the
    /// other operation of the story, e.g. the write a stale read missed.
    pub named: bool,
}

/// The history indexes a sentence names as "(index N)" or "index N".
pub fn indexes_named(text: &str) -> Vec<u64> {
    text.match_indices("index ")
        .filter_map(|(i, m)| {
            let digits: String = text[i + m.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

/// The rows of `ops` (paired from `events`), the operation invoked at
/// history index `bad_invoke` by process `bad_process` marked, and those
/// with an index in `named` (see [`indexes_named`]) picked out.
pub fn rows<'a>(
    ops: &'a [Operation],
    events: &[Event],
    bad_invoke: u64,
    bad_process: u64,
    named: &[u64],
) -> Vec<Row<'a>> {
    rows_by(ops, |p| events[p].index, bad_invoke, bad_process, named)
}

/// [`rows`], with `index_of` giving the `index` of the event at a position.
pub fn rows_by<'a>(
    ops: &'a [Operation],
    index_of: impl Fn(usize) -> u64,
    bad_invoke: u64,
    bad_process: u64,
    named: &[u64],
) -> Vec<Row<'a>> {
    ops.iter()
        .map(|o| {
            let invoke_index = index_of(o.invoke);
            let complete_index = o.complete.map(&index_of);
            let impossible = invoke_index == bad_invoke && o.process == bad_process;
            Row {
                op: o,
                invoke_index,
                complete_index,
                impossible,
                named: !impossible
                    && (named.contains(&invoke_index)
                        || complete_index.is_some_and(|c| named.contains(&c))),
            }
        })
        .collect()
}

fn seconds(ns: u64, untimed: bool) -> String {
    if untimed {
        format!("{ns}")
    } else {
        format!("{:.6} s", ns as f64 / 1e9)
    }
}

/// The SVG for `rows`, in invoke order; `untimed` when times are history
/// indexes.
pub fn timeline_svg(rows: &[Row], untimed: bool) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut rows: Vec<&Row> = rows.iter().collect();
    rows.sort_by_key(|r| (r.op.invoke_time, r.invoke_index));
    let t0 = rows.iter().map(|r| r.op.invoke_time).min().unwrap_or(0);
    let t1 = rows
        .iter()
        .map(|r| r.op.complete_time.unwrap_or(r.op.invoke_time))
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    let bars_w = WIDTH - LABEL_W - RIGHT_W;
    // Uncertain operations run past the last completion, to the edge.
    let edge = LABEL_W + bars_w;
    let x = |t: u64| LABEL_W + (t - t0) as f64 / (t1 - t0) as f64 * (bars_w - 20.0);
    let height = TOP + rows.len() as f64 * ROW_H + 30.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(
        s,
        "<text x=\"4\" y=\"14\" font-weight=\"bold\">operation</text><text x=\"{LABEL_W}\" y=\"14\" font-weight=\"bold\">invoke → completion (hover a bar for details)</text>"
    );
    for (i, r) in rows.iter().enumerate() {
        let o = r.op;
        let y = TOP + i as f64 * ROW_H;
        let value = o.value().to_string();
        let label = format!(
            "p{} {} {} {}",
            o.process,
            o.f,
            shorten(&value, LABEL_VALUE_CHARS),
            o.outcome.as_str()
        );
        let colour = hex(op_colour(&o.f, o.outcome.as_str()));
        let x0 = x(o.invoke_time);
        let x1 = match (o.outcome, o.complete_time) {
            (Outcome::Ok | Outcome::Fail, Some(c)) => x(c),
            _ => edge,
        };
        let dash = if o.outcome.is_uncertain() {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        let (stroke, width, weight) = if r.impossible {
            ("#c00000", 3, " font-weight=\"bold\"")
        } else if r.named {
            ("#0050c8", 3, " font-weight=\"bold\"")
        } else {
            ("#333333", 1, "")
        };
        let hover = format!(
            "index {}{}: process {} {} {} ({})\ninvoked {}\n{}",
            r.invoke_index,
            r.complete_index
                .map(|c| format!("–{c}"))
                .unwrap_or_default(),
            o.process,
            o.f,
            shorten(&value, HOVER_VALUE_CHARS),
            o.outcome.as_str(),
            seconds(o.invoke_time, untimed),
            match (o.outcome, o.complete_time) {
                (Outcome::Pending, _) | (_, None) => "never completed".to_string(),
                (Outcome::Info, Some(c)) => format!(
                    "uncertain since {} (may take effect later)",
                    seconds(c, untimed)
                ),
                (_, Some(c)) => format!("completed {}", seconds(c, untimed)),
            }
        );
        if i % 2 == 1 {
            let _ = writeln!(
                s,
                "<rect x=\"0\" y=\"{y}\" width=\"{WIDTH}\" height=\"{ROW_H}\" fill=\"#f7f7f7\"/>"
            );
        }
        let _ = writeln!(
            s,
            "<g class=\"op{}\"><title>{}</title><text x=\"4\" y=\"{:.1}\"{weight}>{}</text><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\" fill-opacity=\"0.55\" stroke=\"{stroke}\" stroke-width=\"{width}\"{dash}/></g>",
            if r.impossible { " impossible" } else { "" },
            escape(&hover),
            y + 15.0,
            escape(&label),
            y + 4.0,
            (x1 - x0).max(3.0),
            ROW_H - 8.0,
        );
        if r.impossible {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#c00000\" font-weight=\"bold\">◀ impossible</text>",
                edge + 6.0,
                y + 15.0
            );
        }
    }
    let axis_y = TOP + rows.len() as f64 * ROW_H + 14.0;
    let _ = writeln!(
        s,
        "<text x=\"{LABEL_W}\" y=\"{axis_y:.1}\" fill=\"#555\">{}</text><text x=\"{:.1}\" y=\"{axis_y:.1}\" fill=\"#555\" text-anchor=\"end\">{}</text>",
        escape(&seconds(t0, untimed)),
        x(t1),
        escape(&seconds(t1, untimed))
    );
    let _ = writeln!(s, "</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{EventType, Process};
    use crate::operation::pair_lenient;
    use serde_json::json;

    fn ev(index: u64, process: u64, kind: EventType, f: &str, value: serde_json::Value) -> Event {
        Event {
            index,
            time: 1_000 * index,
            process: Process::Client(process),
            kind,
            f: f.into(),
            key: Some("k".into()),
            value,
            error: None,
        }
    }

    #[test]
    fn indexes_are_read_from_the_sentence() {
        assert_eq!(
            indexes_named(
                "read (index 633) misses \"27,\", which process 0's append (index 613) appended"
            ),
            vec![633, 613]
        );
        assert!(indexes_named("no numbers here, index x").is_empty());
    }

    #[test]
    fn each_operation_gets_its_own_row_and_the_impossible_one_is_marked() {
        let events = vec![
            ev(10, 1, EventType::Invoke, "write", json!(1)),
            ev(11, 2, EventType::Invoke, "write", json!("x".repeat(500))),
            ev(12, 1, EventType::Ok, "write", json!(1)),
            ev(13, 3, EventType::Invoke, "read", json!(null)),
            ev(14, 2, EventType::Info, "write", json!("x".repeat(500))),
            ev(15, 3, EventType::Ok, "read", json!(7)),
        ];
        let ops = pair_lenient(&events);
        let rows = rows(&ops, &events, 13, 3, &indexes_named("misses 1 (index 12)"));
        assert!(rows[0].named && !rows[1].named && !rows[2].named);
        assert_eq!(rows.iter().filter(|r| r.impossible).count(), 1);
        let svg = timeline_svg(&rows, false);
        // One label per row, each on its own baseline: they cannot collide.
        let baselines: Vec<&str> = svg
            .match_indices("<text x=\"4\" y=\"")
            .map(|(i, _)| svg[i + 15..].split('"').next().unwrap_or(""))
            .collect();
        assert_eq!(baselines.len(), 4, "{svg}"); // header + 3 operations
        let mut unique = baselines.clone();
        unique.dedup();
        assert_eq!(unique.len(), baselines.len(), "{svg}");
        assert_eq!(svg.matches("class=\"op impossible\"").count(), 1);
        assert!(svg.contains("◀ impossible"));
        // Hover details: process, f, value, times, indexes.
        assert!(svg.contains("index 13–15: process 3 read 7 (ok)"), "{svg}");
        assert!(svg.contains("invoked 0.000013 s"), "{svg}");
        // A long value is cut in the label and on hover.
        assert!(!svg.contains(&"x".repeat(201)));
        assert!(svg.contains("uncertain since"), "{svg}");
    }
}
