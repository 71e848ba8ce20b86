//! What a run page says about the run it judges, from the run folder:
//! test.json (written by raft-driver) for target, seed, nemesis, options,
//! versions and duration; the commands that replay and re-check it; links
//! to the files a reader opens next (history, driver and node logs).
//!
//! test.json is read as plain JSON, not as the driver's types: the checker
//! does not link the driver, and a field the driver adds or renames later
//! should cost a line of context, never the page.

use crate::compact::Facts;
use crate::report::escape;
use crate::verdict_text::shorten;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Values longer than this are cut on the page.
const VALUE_CHARS: usize = 200;
/// Node files linked at most (a cluster has a few nodes, two files each).
const NODE_FILES_SHOWN: usize = 60;
/// Options shown elsewhere on the page, or of no use to a reader.
const OPTIONS_SKIPPED: [&str; 5] = ["results", "nemesis", "seed", "target", "nemesis_label"];

/// The run folder's context.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    /// The run folder, absolute when it could be resolved (for commands).
    pub dir: PathBuf,
    /// test.json, when the folder has a readable one.
    pub test: Option<Value>,
    /// Files in the folder worth a link, relative to it.
    pub files: Vec<String>,
}

impl RunContext {
    /// Reads the context of run folder `dir`; a folder without test.json
    /// (a bare history checked by raft-checker) gives an empty context.
    pub fn load(dir: &Path) -> Self {
        let test = std::fs::read(dir.join("test.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let mut files: Vec<String> = ["history.jsonl", "test.json", "driver.log"]
            .into_iter()
            .filter(|f| dir.join(f).is_file())
            .map(String::from)
            .collect();
        if let Ok(rd) = std::fs::read_dir(dir.join("nodes")) {
            let mut nodes: Vec<String> = rd
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| format!("nodes/{}", e.file_name().to_string_lossy()))
                .collect();
            nodes.sort();
            nodes.truncate(NODE_FILES_SHOWN);
            files.extend(nodes);
        }
        RunContext {
            dir: dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()),
            test,
            files,
        }
    }

    fn get(&self, path: &[&str]) -> Option<&Value> {
        let mut v = self.test.as_ref()?;
        for p in path {
            v = v.get(p)?;
        }
        (!v.is_null()).then_some(v)
    }
}

/// A JSON value as a person reads it: strings bare, `{secs, nanos}`
/// durations in seconds, lists comma-separated, cut to a line.
pub fn plain(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Object(m) if m.contains_key("secs") && m.contains_key("nanos") => {
            let secs = m["secs"].as_f64().unwrap_or(0.0) + m["nanos"].as_f64().unwrap_or(0.0) / 1e9;
            format!("{secs} s")
        }
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), String::from))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    shorten(&s, VALUE_CHARS)
}

/// Quotes `s` for a POSIX shell when it holds anything but safe characters.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// How long the history ran: its last event's time (seconds), when timed.
fn history_seconds(facts: &Facts) -> Option<f64> {
    let last = facts.max_time?;
    (!facts.untimed).then_some(last as f64 / 1e9)
}

/// The context section: the run's facts, commands and files. Writes
/// nothing but the links for a folder without test.json.
pub fn context_html(h: &mut String, ctx: &RunContext, facts: &Facts) {
    if ctx.test.is_some() {
        let _ = writeln!(h, "<h2>Run</h2><table class=\"facts\">");
        let mut row = |name: &str, value: String| {
            let _ = writeln!(
                h,
                "<tr><th class=\"l\">{}</th><td class=\"l\">{}</td></tr>",
                escape(name),
                escape(&value)
            );
        };
        let target = ctx
            .get(&["target"])
            .or_else(|| ctx.get(&["options", "target"]));
        row("target", target.map(plain).unwrap_or_else(|| "?".into()));
        if let Some(seed) = ctx.get(&["seed"]).or_else(|| ctx.get(&["options", "seed"])) {
            row("seed", plain(seed));
        }
        let label = ctx.get(&["options", "nemesis_label"]).map(plain);
        let kinds = ctx.get(&["options", "nemesis"]).map(plain);
        let nemesis = match (label, kinds) {
            (Some(l), Some(k)) if l != k => format!("{l}: {k}"),
            (Some(x), _) | (None, Some(x)) => x,
            (None, None) => "?".into(),
        };
        row("nemesis", nemesis);
        let versions: Vec<String> = ["driver_version", "node_version"]
            .iter()
            .filter_map(|k| ctx.get(&[k]).map(plain))
            .collect();
        if !versions.is_empty() {
            row("versions", versions.join("; "));
        }
        let mut duration = String::new();
        if let Some(limit) = ctx.get(&["options", "time_limit"]) {
            let _ = write!(duration, "time limit {}", plain(limit));
        }
        if let Some(s) = history_seconds(facts) {
            let sep = if duration.is_empty() { "" } else { "; " };
            let _ = write!(duration, "{sep}history spans {s:.1} s");
        }
        if !duration.is_empty() {
            row("duration", duration);
        }
        if let Some(started) = ctx.get(&["started"]) {
            row("started (UTC)", plain(started));
        }
        if let Some(of) = ctx.get(&["replay_of"]) {
            row("replay of", plain(of));
        }
        if let Some(Value::Object(opts)) = ctx.get(&["options"]) {
            let shown: Vec<String> = opts
                .iter()
                .filter(|(k, v)| !OPTIONS_SKIPPED.contains(&k.as_str()) && !v.is_null())
                .map(|(k, v)| format!("{k} = {}", plain(v)))
                .collect();
            row("options", shown.join("; "));
        }
        let _ = writeln!(h, "</table>");
        let dir = shell_quote(&ctx.dir.to_string_lossy());
        let _ = writeln!(
            h,
            "<p>Replay this run, or check its history again:</p><pre class=\"cmd\">raft-driver replay {}\nraft-checker check {}</pre>",
            escape(&dir),
            escape(&dir)
        );
    }
    if !ctx.files.is_empty() {
        let links: Vec<String> = ctx
            .files
            .iter()
            .map(|f| format!("<a href=\"{0}\">{0}</a>", escape(f)))
            .collect();
        let _ = writeln!(h, "<p class=\"files\">Files: {}</p>", links.join(" · "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_lists_and_long_values_read_plainly() {
        assert_eq!(plain(&json!({"secs": 5, "nanos": 500_000_000})), "5.5 s");
        assert_eq!(plain(&json!(["kill", "pause"])), "kill, pause");
        assert_eq!(plain(&json!("raft")), "raft");
        assert!(plain(&json!("x".repeat(1000))).chars().count() <= VALUE_CHARS);
    }

    #[test]
    fn paths_with_spaces_or_quotes_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("/tmp/r/2026-all"), "/tmp/r/2026-all");
        assert_eq!(shell_quote("/tmp/my runs"), "'/tmp/my runs'");
        assert_eq!(shell_quote("/tmp/it's"), "'/tmp/it'\\''s'");
    }

    #[test]
    fn a_folder_with_test_json_shows_its_facts_commands_and_existing_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("test.json"),
            json!({"seed": 42, "target": "raft", "driver_version": "raft-driver 9",
                   "options": {"nemesis": ["kill"], "nemesis_label": "kill",
                               "time_limit": {"secs": 5, "nanos": 0}, "nodes": 3,
                               "results": "/secret/elsewhere"}})
            .to_string(),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("nodes")).unwrap();
        std::fs::write(dir.path().join("nodes/n1.log"), "x").unwrap();
        std::fs::write(dir.path().join("history.jsonl"), "").unwrap();
        let ctx = RunContext::load(dir.path());
        let mut h = String::new();
        context_html(&mut h, &ctx, &Facts::default());
        for want in [
            "42",
            "raft-driver 9",
            "time limit 5 s",
            "nodes = 3",
            "raft-driver replay ",
            "raft-checker check ",
            "href=\"nodes/n1.log\"",
            "href=\"history.jsonl\"",
        ] {
            assert!(h.contains(want), "{want} missing from {h}");
        }
        assert!(!h.contains("driver.log"), "a missing file is linked: {h}");
        assert!(!h.contains("/secret/elsewhere"), "{h}");

        let bare = tempfile::tempdir().unwrap();
        let mut h = String::new();
        context_html(&mut h, &RunContext::load(bare.path()), &Facts::default());
        assert_eq!(h, "", "a bare folder has no context to show");
    }
}
