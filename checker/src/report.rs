//! Reports: the verdict in words, results.json, and index.html.

use crate::check::{CheckResult, Explanation};
use crate::compact::{CompactHistory, Pairing};
use crate::fault_table::fault_table_html;
use crate::history::Event;
use crate::operation::{pair_lenient, Operation};
use crate::plot::{write_history_plots, PLOTS};
use crate::run_context::{context_html, RunContext};
use crate::verdict::RunResult;
use crate::verdict_text::{shorten, shorten_quoted, VALUE_CHARS};
use crate::witness_timeline::{indexes_named, rows, rows_by, timeline_svg};
use std::fmt::Write as _;
use std::path::Path;

/// Operations shown before the impossible one on a timeline.
pub const TIMELINE_BEFORE: usize = 30;
/// Operations shown after it.
pub const TIMELINE_AFTER: usize = 10;
/// Explanations shown in full on the page (all are in results.json).
pub const EXPLANATIONS_SHOWN: usize = 10;
/// Invalid keys past those listed one line each.
pub const COMPACT_SHOWN: usize = 300;
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
    write_history_outputs(dir, &lenient(events), result)
}

/// [`write_run_outputs`] of a compact history (as `raft-checker check`
/// holds it).
pub fn write_history_outputs(
    dir: &Path,
    history: &CompactHistory,
    result: &RunResult,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_results_json(dir, result)?;
    write_history_plots(dir, history)?;
    let ctx = RunContext::load(dir);
    write_atomic(
        &dir.join("index.html"),
        history_page(&ctx, history, result).as_bytes(),
    )
}

/// `events` held compactly, paired as the plots pair them.
fn lenient(events: &[Event]) -> CompactHistory {
    CompactHistory::from_events(events, Pairing::Lenient).unwrap_or_default()
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

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}
.verdict{padding:.8em 1.2em;border-radius:6px;font-size:1.3em;font-weight:bold}
.valid{background:#d4f4dd}.invalid{background:#f8d0d0}.unknown{background:#fbe9c0}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}
th{background:#f2f2f2}td.l,th.l{text-align:left}img{max-width:100%;border:1px solid #ddd;margin:.5em 0}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto}pre.cmd{user-select:all}
.sw{display:inline-block;width:.8em;height:.8em;margin-right:.4em;vertical-align:middle;border-radius:2px}
.files a{white-space:nowrap}svg.timeline{max-width:100%;height:auto;border:1px solid #ddd}
.shape{font-weight:bold}ul.compact{font-size:.9em}";

/// The page for a history with no run folder around it (see [`run_page`]).
pub fn index_html(events: &[Event], run: &RunResult) -> String {
    run_page(&RunContext::default(), events, run)
}

/// The report page of `events` (see [`history_page`]).
pub fn run_page(ctx: &RunContext, events: &[Event], run: &RunResult) -> String {
    history_page(ctx, &lenient(events), run)
}

/// The report page: the verdict, the run's context (from test.json, when
/// the folder has one), the fault schedule, each checker's verdict, counts
/// and latency, the plots, then the violations (a timeline of each
/// witness) and the keys. Its size is bounded whatever the history's
/// length: long values, lists and tables are cut, results.json has all.
pub fn history_page(ctx: &RunContext, history: &CompactHistory, run: &RunResult) -> String {
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
        escape(&shorten(&shorten_quoted(&run.summary, VALUE_CHARS), 600))
    );
    context_html(&mut h, ctx, history.facts());
    fault_table_html(&mut h, history.named(), history.facts().untimed);
    checkers_table(&mut h, run);
    if let Some(r) = &run.linearizability {
        operations_table(&mut h, r);
    }
    plots(&mut h);
    if let Some(r) = &run.linearizability {
        violations(&mut h, history, r);
        keys_table(&mut h, r);
    }
    let _ = writeln!(
        h,
        "<p><a href=\"results.json\">results.json</a> has every key, every violation and whole values.</p></body></html>"
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
            escape(&shorten(&shorten_quoted(&c.summary, VALUE_CHARS), 400))
        );
    }
    let _ = writeln!(h, "</table>");
}

fn operations_table(h: &mut String, r: &CheckResult) {
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
}

fn plots(h: &mut String) {
    let _ = writeln!(h, "<h2>Plots</h2>");
    for p in PLOTS {
        let _ = writeln!(
            h,
            "<a href=\"{p}.svg\"><img class=\"plot\" src=\"{p}.png\" alt=\"{p} plot\"></a>"
        );
    }
}

fn violations(h: &mut String, history: &CompactHistory, r: &CheckResult) {
    if r.explanations.is_empty() {
        return;
    }
    let _ = writeln!(h, "<h2>Violations</h2>");
    for e in r.explanations.iter().take(EXPLANATIONS_SHOWN) {
        explanation(h, history, e);
    }
    let rest = &r.explanations[r.explanations.len().min(EXPLANATIONS_SHOWN)..];
    if !rest.is_empty() {
        let _ = writeln!(
            h,
            "<h3>{} more invalid keys</h3><ul class=\"compact\">",
            rest.len()
        );
        for e in rest.iter().take(COMPACT_SHOWN) {
            let _ = writeln!(
                h,
                "<li><code>{}</code>: {}</li>",
                escape(&shorten(&e.key, 60)),
                escape(&shorten(&shorten_quoted(&e.message, VALUE_CHARS), 300))
            );
        }
        let _ = writeln!(h, "</ul>");
        if rest.len() > COMPACT_SHOWN {
            let _ = writeln!(
                h,
                "<p>… and {} more, all in results.json.</p>",
                rest.len() - COMPACT_SHOWN
            );
        }
    }
}

fn explanation(h: &mut String, history: &CompactHistory, e: &Explanation) {
    let _ = writeln!(
        h,
        "<h3>key {}</h3>",
        escape(&shorten(&format!("{:?}", e.key), 80))
    );
    if let Some(shape) = &e.witness_shape {
        let _ = writeln!(
            h,
            "<p class=\"shape\">{}</p>",
            escape(&shorten_quoted(shape, VALUE_CHARS))
        );
    }
    let _ = writeln!(
        h,
        "<p>{}</p>",
        escape(&shorten_quoted(&e.message, VALUE_CHARS))
    );
    let witness = pair_lenient(&e.witness);
    if !witness.is_empty() {
        let _ = writeln!(
            h,
            "<p>These {} operations cannot all be linearized, checked alone ({}). Red: where the search got stuck; blue: named in the sentence above; dashed: uncertain (info or never completed); fill: the operation's colour in the plots.</p>",
            witness.len(),
            if e.witness_minimal {
                "minimal: without any one of them the rest is linearizable, or reads a value none of the rest wrote"
            } else {
                "there was no time to make this witness minimal"
            }
        );
        let untimed = e.witness.iter().all(|ev| ev.time == ev.index);
        let named = indexes_named(e.witness_shape.as_deref().unwrap_or(&e.message));
        let rs = rows(
            &witness,
            &e.witness,
            e.op.invoke_index,
            e.op.process,
            &named,
        );
        h.push_str(&timeline_svg(&rs, untimed));
        witness_table(h, &witness, &e.witness);
    } else {
        if let Some(svg) = around(history, e) {
            let _ = writeln!(
                h,
                "<p>No witness (no time to shrink one); the operations on this key around the impossible one:</p>"
            );
            h.push_str(&svg);
        }
    }
    if !e.prefix_tail.is_empty() {
        let _ = writeln!(h, "<details><summary>Last operations of the longest linearizable prefix ({} in all), in linearization order</summary><pre>", e.prefix_len);
        for op in &e.prefix_tail {
            let _ = writeln!(h, "{}", escape(&shorten(&op.describe(), VALUE_CHARS)));
        }
        let _ = writeln!(h, "</pre></details>");
    }
}

/// The witness as a table, for copying and for readers without hover.
fn witness_table(h: &mut String, ops: &[Operation], events: &[Event]) {
    let _ = writeln!(h, "<details><summary>The witness as a table</summary><table><tr><th>index</th><th>process</th><th class=\"l\">f</th><th class=\"l\">outcome</th><th>invoked s</th><th>done s</th><th class=\"l\">value</th></tr>");
    for o in ops {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{:.6}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            events[o.invoke].index,
            o.process,
            escape(&o.f),
            o.outcome.as_str(),
            o.invoke_time as f64 / 1e9,
            o.complete_time
                .map_or("-".to_string(), |t| format!("{:.6}", t as f64 / 1e9)),
            escape(&shorten(&o.value().to_string(), VALUE_CHARS))
        );
    }
    let _ = writeln!(h, "</table></details>");
}

/// The timeline of the operations on the violation's key around the
/// impossible one, when no witness was found (operations paired as the
/// plots pair them: the key is the invoke's).
fn around(history: &CompactHistory, e: &Explanation) -> Option<String> {
    let key_ops: Vec<Operation> = (0..history.len())
        .filter(|&id| history.op_key_lenient(id).unwrap_or("") == e.key)
        .map(|id| history.op_lenient(id))
        .collect();
    let index_of = |p: usize| history.index_of(p);
    let bad = key_ops
        .iter()
        .position(|o| index_of(o.invoke) == e.op.invoke_index && o.process == e.op.process)?;
    let lo = bad.saturating_sub(TIMELINE_BEFORE);
    let hi = (bad + TIMELINE_AFTER + 1).min(key_ops.len());
    let shown = &key_ops[lo..hi];
    let untimed = history.facts().untimed;
    Some(timeline_svg(
        &rows_by(
            shown,
            index_of,
            e.op.invoke_index,
            e.op.process,
            &indexes_named(&e.message),
        ),
        untimed,
    ))
}

fn keys_table(h: &mut String, r: &CheckResult) {
    let _ = writeln!(h, "<h2>Keys</h2><table><tr><th class=\"l\">key</th><th class=\"l\">verdict</th><th>operations</th><th>states</th><th>ms</th><th class=\"l\">note</th></tr>");
    for k in r.keys.iter().take(KEYS_SHOWN) {
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l {}\">{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td class=\"l\">{}</td></tr>",
            escape(&shorten(&k.key, 60)),
            k.valid.as_str(),
            k.valid.as_str(),
            k.ops,
            k.states_explored,
            k.elapsed_ms,
            escape(&shorten(k.reason.as_deref().unwrap_or(""), VALUE_CHARS))
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
