//! The verdict in words, as `raft-checker check` prints it: the verdict,
//! the first invalid key's witness (a few rows) and its sentence, a count
//! of the other keys, tens of lines whatever the history. Long values are
//! cut short here; results.json keeps them whole.

use crate::check::{plural, CheckResult, Explanation, Validity};
use crate::operation::pair_lenient;
use std::fmt::Write as _;

/// Witness rows printed before "… and N more".
pub const WITNESS_ROWS: usize = 12;
/// Unknown keys listed one per line.
pub const UNKNOWN_SHOWN: usize = 10;
/// Quoted values longer than this are cut.
pub const VALUE_CHARS: usize = 200;

/// The report for a terminal.
pub fn text_report(r: &CheckResult) -> String {
    let mut s = String::new();
    let headline = match r.valid {
        Validity::Invalid => format!(
            "NOT linearizable: {} of {} have a violation",
            r.invalid_keys.len(),
            plural(r.keys.len(), "key")
        ),
        _ => r.summary.clone(),
    };
    let _ = writeln!(s, "{}", shorten_quoted(&headline, VALUE_CHARS));
    let _ = writeln!(
        s,
        "{} events, {} operations, {} keys, checked in {:.0} ms",
        r.event_count,
        r.op_count,
        r.keys.len(),
        r.elapsed_ms
    );
    if let Some(e) = r.explanations.first() {
        s.push('\n');
        explanation(&mut s, e);
        if r.explanations.len() > 1 {
            let others: Vec<&str> = r.explanations[1..]
                .iter()
                .take(UNKNOWN_SHOWN)
                .map(|e| e.key.as_str())
                .collect();
            let more = r.explanations.len() - 1 - others.len();
            let _ = writeln!(
                s,
                "\n{} more invalid {}: {}{} (all in results.json)",
                r.explanations.len() - 1,
                if r.explanations.len() == 2 {
                    "key"
                } else {
                    "keys"
                },
                shorten_quoted(&others.join(", "), VALUE_CHARS),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
    }
    let unknown: Vec<_> = r
        .keys
        .iter()
        .filter(|k| r.unknown_keys.contains(&k.key))
        .collect();
    for k in unknown.iter().take(UNKNOWN_SHOWN) {
        let _ = writeln!(
            s,
            "key {}: unknown ({})",
            shorten_quoted(&format!("{:?}", k.key), VALUE_CHARS),
            k.reason.as_deref().unwrap_or("")
        );
    }
    if unknown.len() > UNKNOWN_SHOWN {
        let _ = writeln!(
            s,
            "… and {} more unknown keys",
            unknown.len() - UNKNOWN_SHOWN
        );
    }
    if !r.not_checked_keys.is_empty() {
        let _ = writeln!(
            s,
            "{} not checked (--fail-fast)",
            plural(r.not_checked_keys.len(), "key")
        );
    }
    let _ = writeln!(s, "verdict: {}", r.valid.as_str());
    s
}

/// One invalid key: its witness as a small table, its sentence, and the
/// message.
fn explanation(s: &mut String, e: &Explanation) {
    let ops = pair_lenient(&e.witness);
    if ops.is_empty() {
        let _ = writeln!(s, "{}", shorten_quoted(&e.message, VALUE_CHARS));
        return;
    }
    let _ = writeln!(
        s,
        "key {}: these {} cannot all be linearized ({}):",
        shorten_quoted(&format!("{:?}", e.key), VALUE_CHARS),
        plural(ops.len(), "operation"),
        if e.witness_minimal {
            "minimal: without any one of them the rest is linearizable, or reads a value none \
             of the rest wrote"
        } else {
            "there was no time to make this witness minimal"
        }
    );
    if let Some(shape) = &e.witness_shape {
        let _ = writeln!(s, "  {}", shorten_quoted(shape, VALUE_CHARS));
    }
    let index = |p: Option<usize>| p.map(|p| e.witness[p].index);
    // The operations the sentence or the message names come first.
    let named = |o: &crate::operation::Operation| {
        [index(Some(o.invoke)), index(o.complete)]
            .into_iter()
            .flatten()
            .any(|i| {
                i == e.op.index
                    || e.witness_shape
                        .as_deref()
                        .is_some_and(|t| t.contains(&format!("(index {i})")))
            })
    };
    let mut shown: Vec<usize> = (0..ops.len()).filter(|&k| named(&ops[k])).collect();
    shown.extend((0..ops.len()).filter(|&k| !named(&ops[k])));
    shown.truncate(WITNESS_ROWS);
    shown.sort_unstable();
    let _ = writeln!(
        s,
        "  {:>8} {:>8} {:<7} {:<10} {:>12} {:>12}  value",
        "index", "process", "f", "outcome", "invoked s", "done s"
    );
    for &k in &shown {
        let o = &ops[k];
        let _ = writeln!(
            s,
            "  {:>8} {:>8} {:<7} {:<10} {:>12.6} {:>12}  {}",
            index(o.complete).or(index(Some(o.invoke))).unwrap_or(0),
            o.process,
            o.f,
            o.outcome.as_str(),
            o.invoke_time as f64 / 1e9,
            o.complete_time
                .map_or("-".to_string(), |t| format!("{:.6}", t as f64 / 1e9)),
            shorten(&o.value().to_string(), VALUE_CHARS)
        );
    }
    if ops.len() > shown.len() {
        let _ = writeln!(
            s,
            "  … and {} more (all in results.json)",
            ops.len() - shown.len()
        );
    }
    let _ = writeln!(s, "{}", shorten_quoted(&e.message, VALUE_CHARS));
}

/// `text` cut to `max` characters, with an ellipsis.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// `text` with every double-quoted string longer than `max` characters cut
/// short (the quotes kept), so that a message quoting a huge value stays a
/// line.
pub fn shorten_quoted(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(4 * max));
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '"' {
            continue;
        }
        let mut inner = String::new();
        let mut closed = false;
        while let Some(d) = chars.next() {
            if d == '\\' {
                inner.push(d);
                if let Some(e) = chars.next() {
                    inner.push(e);
                }
            } else if d == '"' {
                closed = true;
                break;
            } else {
                inner.push(d);
            }
        }
        out.push_str(&shorten(&inner, max));
        if closed {
            out.push('"');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_quoted_values_are_cut_and_the_rest_is_kept() {
        let long = "1,".repeat(500);
        let text =
            format!("process 3 read \"{long}\" (ok, index 9) cannot be linearized: \"a\\\"b\"");
        let short = shorten_quoted(&text, 20);
        assert!(short.len() < 120, "{short}");
        assert!(short.starts_with("process 3 read \"1,1,1,"), "{short}");
        assert!(
            short.contains("…\" (ok, index 9) cannot be linearized: \"a\\\"b\""),
            "{short}"
        );
    }
}
