//! Reports: the verdict in words, results.json, and index.html.

use crate::check::{CheckResult, Explanation};
use crate::faults::fault_intervals;
use crate::history::Event;
use crate::operation::{pair_lenient, Operation, Outcome};
use crate::plot::{write_plots, PLOTS};
use crate::verdict::RunResult;
use std::fmt::Write as _;
use std::path::Path;

/// Operations shown before the impossible one on a timeline.
pub const TIMELINE_BEFORE: usize = 30;
/// Operations shown after it.
pub const TIMELINE_AFTER: usize = 10;
/// Explanations shown in full on the page (all are in results.json).
pub const EXPLANATIONS_SHOWN: usize = 10;
/// Rows of the per-key table on the page.
pub const KEYS_SHOWN: usize = 100;

/// The verdict and explanations in words, as `raft-checker check` prints
/// (see [`crate::verdict_text`]).
pub fn text_report(r: &CheckResult) -> String {
    crate::verdict_text::text_report(r)
}

/// Writes results.json, the plots (PNG and SVG) and index.html into `dir`:
/// the verdict written once. results.json and the page are replaced
/// atomically (a temporary file, then a rename), so a reader never sees
/// half of one; any failure is returned.
pub fn write_run_outputs(dir: &Path, events: &[Event], result: &RunResult) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_results_json(dir, result)?;
    write_plots(dir, events)?;
    write_atomic(
        &dir.join("index.html"),
        index_html(events, result).as_bytes(),
    )
}

/// Writes results.json alone (atomically).
pub fn write_results_json(dir: &Path, result: &RunResult) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(result).map_err(std::io::Error::other)?;
    write_atomic(&dir.join("results.json"), (json + "\n").as_bytes())
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it
/// over `path`: readers see the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Cuts long text (values can be anything) to `max` characters.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}
.verdict{padding:.8em 1.2em;border-radius:6px;font-size:1.3em;font-weight:bold}
.valid{background:#d4f4dd}.invalid{background:#f8d0d0}.unknown{background:#fbe9c0}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}
th{background:#f2f2f2}td.l,th.l{text-align:left}img{max-width:100%;border:1px solid #ddd;margin:.5em 0}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto}";

/// The report page: the composed verdict and each checker's, counts,
/// latency, plots, explanations with a timeline each. Its size is bounded
/// whatever the history's length.
pub fn index_html(events: &[Event], run: &RunResult) -> String {
    let mut h = String::new();
    let class = run.valid.as_str();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>raft-checker: {class}</title><style>{STYLE}</style></head><body>\n"
    );
    let _ = writeln!(h, "<h1>Check</h1>");
    let _ = writeln!(
        h,
        "<div class=\"verdict {class}\">{}</div>\n<p>{}</p>",
        escape(&class.to_uppercase()),
        escape(&clip(&run.summary, 600))
    );
    checkers_table(&mut h, run);
    if let Some(r) = &run.linearizability {
        linearizability_sections(&mut h, events, r);
    }
    plots_and_faults(&mut h, events);
    if let Some(r) = &run.linearizability {
        keys_table(&mut h, r);
    }
    let _ = writeln!(
        h,
        "<p><a href=\"results.json\">results.json</a></p></body></html>"
    );
    h
}

fn checkers_table(h: &mut String, run: &RunResult) {
    let _ = writeln!(h, "<h2>Checkers</h2><table><tr><th class=\"l\">checker</th><th class=\"l\">verdict</th><th class=\"l\">summary</th></tr>");
    for c in &run.checkers {
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l {}\">{}</td><td class=\"l\">{}</td></tr>",
            escape(&c.name),
            c.valid.as_str(),
            c.valid.as_str(),
            escape(&clip(&c.summary, 400))
        );
    }
    let _ = writeln!(h, "</table>");
}

fn linearizability_sections(h: &mut String, events: &[Event], r: &CheckResult) {
    let _ = writeln!(
        h,
        "<p>{} events, {} operations, {} keys ({} invalid, {} unknown), model <code>{}</code>, checked in {:.0} ms.</p>",
        r.event_count,
        r.op_count,
        r.keys.len(),
        r.invalid_keys.len(),
        r.unknown_keys.len(),
        escape(&r.model),
        r.elapsed_ms
    );

    // Counts and latency.
    let _ = writeln!(h, "<h2>Operations</h2><table><tr><th class=\"l\">f</th><th>ok</th><th>fail</th><th>info</th><th>pending</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th></tr>");
    for (f, c) in &r.counts {
        let n = |k: &str| c.get(k).copied().unwrap_or(0);
        let q = r
            .latency
            .by_f
            .get(f)
            .and_then(|m| m.get("ok"))
            .cloned()
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
            escape(f),
            n("ok"),
            n("fail"),
            n("info"),
            n("pending"),
            q.p50_ms,
            q.p95_ms,
            q.p99_ms,
            q.max_ms
        );
    }
    let _ = writeln!(h, "</table><p>Latency columns are for ok operations.</p>");

    // Explanations.
    if !r.explanations.is_empty() {
        let ops = pair_lenient(events);
        let _ = writeln!(h, "<h2>Violations</h2>");
        for e in r.explanations.iter().take(EXPLANATIONS_SHOWN) {
            let _ = writeln!(
                h,
                "<h3>key {}</h3><p>{}</p>",
                escape(&format!("{:?}", e.key)),
                escape(&e.message)
            );
            if !e.prefix_tail.is_empty() {
                let _ = writeln!(h, "<p>Last operations of the longest linearizable prefix ({} in all), in linearization order:</p><pre>", e.prefix_len);
                for op in &e.prefix_tail {
                    let _ = writeln!(h, "{}", escape(&clip(&op.describe(), 200)));
                }
                let _ = writeln!(h, "</pre>");
            }
            h.push_str(&timeline_svg(events, &ops, e));
        }
        if r.explanations.len() > EXPLANATIONS_SHOWN {
            let _ = writeln!(
                h,
                "<p>{} more violations are in results.json.</p>",
                r.explanations.len() - EXPLANATIONS_SHOWN
            );
        }
    }
}

fn plots_and_faults(h: &mut String, events: &[Event]) {
    // Plots.
    let _ = writeln!(h, "<h2>Plots</h2>");
    for p in PLOTS {
        let _ = writeln!(
            h,
            "<a href=\"{p}.svg\"><img src=\"{p}.png\" alt=\"{p}\"></a>"
        );
    }
    let faults = fault_intervals(events);
    if !faults.is_empty() {
        let _ = writeln!(h, "<h2>Faults</h2><table><tr><th class=\"l\">fault</th><th>start s</th><th>end s</th></tr>");
        for f in faults.iter().take(KEYS_SHOWN) {
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{}</td><td>{:.3}</td><td>{:.3}{}</td></tr>",
                escape(&f.name),
                f.start_ns as f64 / 1e9,
                f.end_ns as f64 / 1e9,
                if f.closed { "" } else { " (never stopped)" }
            );
        }
        let _ = writeln!(h, "</table>");
        if faults.len() > KEYS_SHOWN {
            let _ = writeln!(h, "<p>… and {} more.</p>", faults.len() - KEYS_SHOWN);
        }
    }
}

fn keys_table(h: &mut String, r: &CheckResult) {
    // Keys.
    let _ = writeln!(h, "<h2>Keys</h2><table><tr><th class=\"l\">key</th><th class=\"l\">verdict</th><th>operations</th><th>states</th><th>ms</th><th class=\"l\">note</th></tr>");
    for k in r.keys.iter().take(KEYS_SHOWN) {
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l {}\">{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td class=\"l\">{}</td></tr>",
            escape(&clip(&k.key, 60)),
            k.valid.as_str(),
            k.valid.as_str(),
            k.ops,
            k.states_explored,
            k.elapsed_ms,
            escape(k.reason.as_deref().unwrap_or(""))
        );
    }
    let _ = writeln!(h, "</table>");
    if r.keys.len() > KEYS_SHOWN {
        let _ = writeln!(
            h,
            "<p>{} more keys, all in results.json.</p>",
            r.keys.len() - KEYS_SHOWN
        );
    }
}

/// An inline SVG timeline of the operations on the violation's key around
/// the impossible operation: one lane per process, x is history order.
pub fn timeline_svg(events: &[Event], ops: &[Operation], e: &Explanation) -> String {
    let key_ops: Vec<&Operation> = ops
        .iter()
        .filter(|o| o.key.as_deref().unwrap_or("") == e.key)
        .collect();
    let Some(bad) = key_ops
        .iter()
        .position(|o| events[o.invoke].index == e.op.invoke_index && o.process == e.op.process)
    else {
        return String::new();
    };
    let lo = bad.saturating_sub(TIMELINE_BEFORE);
    let hi = (bad + TIMELINE_AFTER + 1).min(key_ops.len());
    let shown = &key_ops[lo..hi];
    let prefix: std::collections::HashSet<u64> =
        e.prefix_tail.iter().map(|o| o.invoke_index).collect();

    let x_min = shown.iter().map(|o| o.invoke).min().unwrap_or(0);
    let x_end = shown
        .iter()
        .map(|o| o.complete.unwrap_or(o.invoke))
        .max()
        .unwrap_or(0)
        + 1;
    let mut lanes: Vec<u64> = shown.iter().map(|o| o.process).collect();
    lanes.sort();
    lanes.dedup();
    let (w, lane_h, left) = (1000.0, 24.0, 90.0);
    let height = lanes.len() as f64 * lane_h + 40.0;
    let scale = (w - left - 20.0) / (x_end.saturating_sub(x_min)).max(1) as f64;
    let x = |pos: usize| left + (pos - x_min) as f64 * scale;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<p>Operations on this key around the violation (x: order in the history; red: cannot be linearized; blue: end of the linearizable prefix; dashed: no certain completion).</p>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"10\">"
    );
    for (i, p) in lanes.iter().enumerate() {
        let y = 20.0 + i as f64 * lane_h;
        let _ = writeln!(s, "<text x=\"4\" y=\"{:.1}\">process {p}</text><line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/>", y + 14.0, w - 10.0, y + 10.0, y + 10.0);
    }
    for o in shown {
        let lane = lanes.iter().position(|p| *p == o.process).unwrap_or(0);
        let y = 20.0 + lane as f64 * lane_h;
        let x0 = x(o.invoke);
        let x1 = match (o.outcome, o.complete) {
            (Outcome::Ok | Outcome::Fail, Some(c)) => x(c),
            _ => w - 10.0,
        };
        let is_bad = events[o.invoke].index == e.op.invoke_index && o.process == e.op.process;
        let (fill, stroke) = if is_bad {
            ("#f4a6a6", "#c00000")
        } else if prefix.contains(&events[o.invoke].index) {
            ("#b9d3f0", "#3a6ea5")
        } else if o.outcome == Outcome::Fail {
            ("#eeeeee", "#bbbbbb")
        } else {
            ("#dddddd", "#888888")
        };
        let dash = if o.outcome.is_uncertain() {
            " stroke-dasharray=\"4 2\""
        } else {
            ""
        };
        let width = if is_bad { 2.5 } else { 1.0 };
        let label = clip(&format!("{} {} {}", o.f, o.value(), o.outcome.as_str()), 40);
        let _ = writeln!(
            s,
            "<g><title>{}</title><rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{width}\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            escape(&format!("index {}: process {} {} {} -> {}", events[o.invoke].index, o.process, o.f, o.value(), o.outcome.as_str())),
            (x1 - x0).max(2.0),
            lane_h - 6.0,
            x0 + 2.0,
            y + 12.0,
            escape(&label)
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}
