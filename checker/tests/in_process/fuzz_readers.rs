//! Byte fuzzers (proptest) for the histories the checker reads from other
//! tools and from crashed runs: JSON lines and Jepsen EDN. Any input is read
//! or refused with a line-numbered error, and whatever reads is checked to a
//! verdict (or a clear error): never a panic, a stack overflow or a hang.
//!
//! `FUZZ_CASES` (default 300 per target) sets the cases; the nightly fuzzing
//! the README describes sets it to millions. A failure prints the shrunk
//! input: add it as a regression case at the end of this file.

use proptest::prelude::*;
use raft_checker::input::{read_history, read_history_tolerant, Format};
use raft_checker::jepsen::read_edn;
use raft_checker::{check_history, CheckOptions};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn opts() -> CheckOptions {
    CheckOptions {
        time_limit: Some(std::time::Duration::from_secs(2)),
        threads: 1,
        progress: false,
        ..CheckOptions::default()
    }
}

/// Plausible history lines: the right fields, any values, sometimes wrong
/// types, so that fuzzing gets past the JSON parser into the history rules.
fn jsonl_line() -> impl Strategy<Value = String> {
    let ty = prop_oneof![
        Just("\"invoke\""),
        Just("\"ok\""),
        Just("\"fail\""),
        Just("\"info\""),
        Just("\"bogus\""),
        Just("3")
    ];
    let f = prop_oneof![
        Just("\"read\""),
        Just("\"write\""),
        Just("\"cas\""),
        Just("\"append\""),
        Just("\"start-kill\""),
        Just("null")
    ];
    let process = prop_oneof![
        (0u8..4).prop_map(|p| p.to_string()),
        Just("\"nemesis\"".to_string()),
        Just("\"driver\"".to_string()),
        Just("-1".to_string())
    ];
    let value = prop_oneof![
        Just("null".to_string()),
        (0u8..4).prop_map(|v| v.to_string()),
        (0u8..4).prop_map(|v| format!("\"{v},\"")),
        (0u8..4, 0u8..4).prop_map(|(a, b)| format!("[{a},{b}]")),
        Just("{\"x\":1}".to_string()),
    ];
    let key = prop_oneof![
        Just("\"k0\"".to_string()),
        Just("\"k1\"".to_string()),
        Just("7".to_string())
    ];
    (ty, f, process, value, key, 0u32..1_000_000, any::<bool>()).prop_map(
        |(ty, f, process, value, key, time, with_key)| {
            let key = if with_key {
                format!(",\"key\":{key}")
            } else {
                String::new()
            };
            format!(
                "{{\"type\":{ty},\"f\":{f},\"process\":{process},\"value\":{value}{key},\"time\":{time}}}"
            )
        },
    )
}

fn edn_text() -> impl Strategy<Value = String> {
    let tokens = prop_oneof![
        Just("{"),
        Just("}"),
        Just("["),
        Just("]"),
        Just("("),
        Just(")"),
        Just(":type"),
        Just(":invoke"),
        Just(":ok"),
        Just(":fail"),
        Just(":info"),
        Just(":f"),
        Just(":read"),
        Just(":write"),
        Just(":cas"),
        Just(":process"),
        Just(":value"),
        Just(":time"),
        Just("nil"),
        Just("1"),
        Just("-3"),
        Just("2.5e3"),
        Just("\"s\\\"x\""),
        Just("#{"),
        Just("#_"),
        Just("; c\n"),
        Just("\\a"),
        Just(" "),
        Just("\n"),
    ];
    proptest::collection::vec(tokens, 0..80).prop_map(|t| t.concat())
}

fn write_file(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Any bytes as a JSON-lines history: read (strictly and tolerantly)
    /// or refused; what reads is checked.
    #[test]
    fn any_bytes_as_jsonl_are_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().unwrap();
        let p = write_file(dir.path(), "h.jsonl", &bytes);
        if let Ok(h) = read_history(&p, Some(Format::Jsonl)) {
            let _ = check_history(&h.events, &opts());
        }
        let _ = read_history_tolerant(&p, Some(Format::Jsonl));
    }

    /// Plausible lines with wrong details: read and checked, or refused
    /// naming the line.
    #[test]
    fn plausible_jsonl_histories_are_checked_or_refused_by_line(lines in proptest::collection::vec(jsonl_line(), 0..24)) {
        let dir = tempfile::tempdir().unwrap();
        let text = lines.join("\n");
        let p = write_file(dir.path(), "h.jsonl", text.as_bytes());
        match read_history(&p, Some(Format::Jsonl)) {
            Ok(h) => { let _ = check_history(&h.events, &opts()); }
            Err(e) => prop_assert!(e.to_string().contains("line"), "{e}"),
        }
    }

    /// Any text as EDN: read or refused; what reads is checked.
    #[test]
    fn any_text_as_edn_is_read_or_refused(text in "\\PC{0,200}") {
        if let Ok(h) = read_edn(&text) {
            let _ = check_history(&h.events, &opts());
        }
    }

    /// EDN made of the right tokens in any order.
    #[test]
    fn edn_token_soup_is_read_or_refused(text in edn_text()) {
        if let Ok(h) = read_edn(&text) {
            let _ = check_history(&h.events, &opts());
        }
    }
}

/// Nesting deeper than any history needs is an error, not a stack overflow.
#[test]
fn deeply_nested_edn_and_json_are_refused_without_overflowing_the_stack() {
    let deep = "[".repeat(200_000);
    assert!(read_edn(&deep).is_err());
    let dir = tempfile::tempdir().unwrap();
    let line = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    let p = write_file(dir.path(), "h.jsonl", line.as_bytes());
    let e = read_history(&p, Some(Format::Jsonl)).unwrap_err();
    assert!(e.to_string().contains("line 1"), "{e}");
}
