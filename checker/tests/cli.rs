//! The raft-checker command: exit codes, malformed input named by line,
//! run folders, and the report files.

use std::path::Path;
use std::process::{Command, Output};

fn checker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raft-checker"))
        .args(args)
        .output()
        .expect("run raft-checker")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p.display().to_string()
}

const VALID: &str = r#"{"index":0,"time":10,"process":1,"type":"invoke","f":"write","key":"k","value":1}
{"index":1,"time":20,"process":1,"type":"ok","f":"write","key":"k","value":1}
{"index":2,"time":30,"process":2,"type":"invoke","f":"read","key":"k","value":null}
{"index":3,"time":35,"process":"nemesis","type":"info","f":"start-partition","value":{"groups":[[1],[2,3]]}}
{"index":4,"time":40,"process":2,"type":"ok","f":"read","key":"k","value":1}
{"index":5,"time":45,"process":"nemesis","type":"info","f":"stop-partition","value":null}
"#;

#[test]
fn malformed_histories_exit_2_naming_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = |p: u64, t: &str, f: &str, v: &str| {
        format!(
            r#"{{"index":0,"time":1,"process":{p},"type":"{t}","f":"{f}","key":"k","value":{v}}}"#
        )
    };
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "not-json",
            format!(
                "{}\n{}\nthis is not json\n",
                w(1, "invoke", "write", "1"),
                w(1, "ok", "write", "1")
            ),
            "line 3",
            "not a history event",
        ),
        (
            "bad-type",
            format!("{}\n", w(1, "done", "write", "1")),
            "line 1",
            "not a history event",
        ),
        (
            "orphan-ok",
            format!(
                "{}\n\n{}\n",
                w(1, "invoke", "write", "1"),
                w(2, "ok", "write", "1")
            ),
            "line 3",
            "without a pending invoke",
        ),
        (
            "double-invoke",
            format!(
                "{}\n{}\n",
                w(1, "invoke", "write", "1"),
                w(1, "invoke", "read", "null")
            ),
            "line 2",
            "still in flight",
        ),
        (
            "unknown-f",
            format!(
                "{}\n{}\n",
                w(1, "invoke", "frobnicate", "1"),
                w(1, "ok", "frobnicate", "1")
            ),
            "line 1",
            "unknown f",
        ),
        (
            "cas-shape",
            format!(
                "{}\n{}\n",
                w(1, "invoke", "cas", "5"),
                w(1, "ok", "cas", "5")
            ),
            "line 1",
            "cas needs a value [expected, new]",
        ),
        (
            "append-shape",
            format!(
                "{}\n{}\n",
                w(1, "invoke", "append", "[1]"),
                w(1, "ok", "append", "[1]")
            ),
            "line 1",
            "append needs a string",
        ),
        (
            "string-process",
            format!(
                "{}\n",
                w(1, "invoke", "read", "null").replace(r#""process":1"#, r#""process":"3""#)
            ),
            "line 1",
            "client processes are numbers",
        ),
        (
            "f-mismatch",
            format!(
                "{}\n{}\n",
                w(1, "invoke", "write", "1"),
                w(1, "ok", "read", "1")
            ),
            "line 2",
            "completes an invoke of write",
        ),
    ];
    for (name, text, line, what) in cases {
        let path = write(dir.path(), &format!("{name}.jsonl"), &text);
        let out = checker(&["check", &path]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(line),
            "{name}: expected {line:?} in {stderr:?}"
        );
        assert!(
            stderr.contains(what),
            "{name}: expected {what:?} in {stderr:?}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

#[test]
fn malformed_edn_histories_exit_2_naming_the_form() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("unclosed", "[{:process 0, :type :invoke, :f :read, :value nil}\n", "form 1", "closing ']'"),
        ("not-a-map", "[{:process 0, :type :invoke, :f :read, :value nil}\n 42]", "form 1 (line 2)", "must be a map"),
        ("no-type", "[{:process 0, :f :read, :value nil}]", "form 0 (line 1)", ":type"),
        ("bad-string", "[{:process 0, :type :invoke, :f :read, :value \"abc}]", "form 0", "unterminated string"),
        ("orphan", "[{:process 0, :type :invoke, :f :read, :value nil}\n{:process 0, :type :ok, :f :read, :value 1}\n{:process 3, :type :ok, :f :read, :value 1}]", "form 2 (line 3)", "without a pending invoke"),
        ("unknown-f", "[{:process 0, :type :invoke, :f :dance, :value nil}]", "form 0", "unknown f"),
    ];
    for (name, text, pos, what) in cases {
        let path = write(dir.path(), &format!("{name}.edn"), text);
        let out = checker(&["check", &path, "--model", "cas-register"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(pos),
            "{name}: expected {pos:?} in {stderr:?}"
        );
        assert!(
            stderr.contains(what),
            "{name}: expected {what:?} in {stderr:?}"
        );
    }
}

#[test]
fn bad_usage_exits_2() {
    for args in [
        vec!["check"],
        vec!["frobnicate"],
        vec!["check", "x.jsonl", "--model", "queue"],
        vec!["check", "/nonexistent/history.jsonl"],
    ] {
        let out = checker(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "h.jsonl", VALID);
    let out = checker(&["check", &path, "--initial-value", "{nope"]);
    assert_eq!(out.status.code(), Some(2));
    let out = checker(&["check", &path, "--time-limit", "-1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn exit_codes_say_valid_invalid_and_unknown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let valid = write(dir.path(), "valid.jsonl", VALID);
    assert_eq!(checker(&["check", &valid]).status.code(), Some(0));
    let invalid = write(
        dir.path(),
        "invalid.jsonl",
        &VALID.replace(
            r#""type":"ok","f":"read","key":"k","value":1"#,
            r#""type":"ok","f":"read","key":"k","value":7"#,
        ),
    );
    let out = checker(&["check", &invalid]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("process 2 read 7 (ok, index 4) cannot be linearized"),
        "{stdout}"
    );
    // A memory budget too small for the search to finish gives unknown.
    let events = raft_checker::generate::generate(&raft_checker::generate::GenOptions {
        ops: 3000,
        keys: 1,
        processes: 20,
        info_rate: 0.05,
        values: 5,
        cas: true,
        appends: false,
        seed: 2,
        ..raft_checker::generate::GenOptions::default()
    });
    let text: String = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    let big = write(dir.path(), "big.jsonl", &text);
    let out = checker(&[
        "check",
        &big,
        "--memory-mib",
        "0",
        "--model",
        "cas-register",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("memory limit"));
}

#[test]
fn a_run_folder_is_checked_in_place_and_gets_its_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "history.jsonl", VALID);
    let out = checker(&["check", &dir.path().display().to_string()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "results.json",
        "index.html",
        "latency-raw.png",
        "latency-raw.svg",
        "latency-quantiles.png",
        "latency-quantiles.svg",
        "rate.png",
        "rate.svg",
    ] {
        let p = dir.path().join(f);
        assert!(
            p.metadata().map(|m| m.len() > 0).unwrap_or(false),
            "{f} missing or empty"
        );
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["valid"], serde_json::json!(true));
    assert_eq!(results["op_count"], serde_json::json!(2));
    assert_eq!(results["counts"]["read"]["ok"], serde_json::json!(1));
    assert!(results["latency"]["all"]["p50_ms"].is_number());
    // Fault intervals reach the page.
    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(
        html.contains("partition"),
        "fault interval missing from the page"
    );
}

#[test]
fn plot_command_writes_the_three_plots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "h.jsonl", VALID);
    let out_dir = dir.path().join("plots");
    let out = checker(&["plot", &path, "--out", &out_dir.display().to_string()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["latency-raw.png", "latency-quantiles.svg", "rate.png"] {
        assert!(out_dir.join(f).exists(), "{f}");
    }
}

#[test]
fn check_has_a_default_time_limit_so_it_never_runs_unbounded() {
    let out = checker(&["check", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    assert!(help.contains("[default: 300]"), "{help}");
    assert_eq!(
        raft_checker::CheckOptions::default().time_limit,
        Some(raft_checker::check::DEFAULT_TIME_LIMIT)
    );
}

#[test]
fn an_append_key_with_two_unordered_reads_exits_1_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let history = [
        r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"append","key":"a","value":"1,"}"#,
        r#"{"index":1,"time":1,"process":1,"type":"invoke","f":"append","key":"a","value":"2,"}"#,
        r#"{"index":2,"time":2,"process":0,"type":"ok","f":"append","key":"a","value":"1,"}"#,
        r#"{"index":3,"time":3,"process":1,"type":"ok","f":"append","key":"a","value":"2,"}"#,
        r#"{"index":4,"time":4,"process":2,"type":"invoke","f":"read","key":"a","value":null}"#,
        r#"{"index":5,"time":5,"process":2,"type":"ok","f":"read","key":"a","value":"1,2,"}"#,
        r#"{"index":6,"time":6,"process":3,"type":"invoke","f":"read","key":"a","value":null}"#,
        r#"{"index":7,"time":7,"process":3,"type":"ok","f":"read","key":"a","value":"2,1,"}"#,
    ]
    .join("\n");
    let file = write(dir.path(), "h.jsonl", &history);
    let out = checker(&["check", &file]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("verdict: invalid"), "{text}");
    // The later read is the one no order explains, after "1,2," was seen.
    assert!(
        text.contains(r#"read "2,1," (ok, index 7) cannot be linearized"#),
        "{text}"
    );
}

#[test]
fn absurd_time_limits_exit_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "h.jsonl", VALID);
    for flag in ["--time-limit", "--key-time-limit"] {
        for value in ["1e300", "1e19", "-1", "NaN", "inf", "0"] {
            let out = checker(&["check", &file, &format!("{flag}={value}")]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{flag}={value}: {err}");
            assert!(err.contains(flag), "{flag}={value}: {err}");
        }
    }
    // The library takes any Duration without overflowing a clock.
    let events = raft_checker::history::read_jsonl(VALID.as_bytes())
        .unwrap()
        .events;
    let opts = raft_checker::CheckOptions {
        time_limit: Some(std::time::Duration::MAX),
        key_time_limit: Some(std::time::Duration::MAX),
        ..raft_checker::CheckOptions::default()
    };
    let r = raft_checker::check_history(&events, &opts).unwrap();
    assert_eq!(r.valid, raft_checker::Validity::Valid);
}

/// Register keys k0.. with one read of a value never written on `bad`.
fn registers_one_bad(bad: usize) -> Vec<raft_checker::Event> {
    let mut events = raft_checker::generate::generate(&raft_checker::generate::GenOptions {
        ops: 4000,
        keys: 8,
        processes: 10,
        values: 1000,
        seed: 5,
        ..raft_checker::generate::GenOptions::default()
    });
    let read = events
        .iter()
        .position(|e| {
            e.kind == raft_checker::EventType::Ok
                && e.f == "read"
                && e.key.as_deref() == Some(&format!("k{bad}"))
        })
        .expect("a read on the key");
    events[read].value = serde_json::json!(-7);
    events
}

fn jsonl(events: &[raft_checker::Event]) -> String {
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect()
}

#[test]
fn fail_fast_stops_at_the_first_invalid_key_and_names_the_others_not_checked() {
    let events = registers_one_bad(3);
    let opts = raft_checker::CheckOptions {
        fail_fast: true,
        threads: 1,
        ..raft_checker::CheckOptions::default()
    };
    let r = raft_checker::check_history(&events, &opts).unwrap();
    assert_eq!(r.valid, raft_checker::Validity::Invalid);
    assert_eq!(r.invalid_keys, vec!["k3".to_string()]);
    assert_eq!(r.not_checked_keys.len(), 7, "{:?}", r.keys);
    assert!(r.unknown_keys.is_empty());
    assert!(
        r.summary.ends_with("7 keys not checked (--fail-fast)"),
        "{}",
        r.summary
    );
    // Without it every key is checked.
    let all = raft_checker::check_history(&events, &raft_checker::CheckOptions::default()).unwrap();
    assert!(all.not_checked_keys.is_empty());
    assert_eq!(all.keys.len(), 8);

    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "h.jsonl", &jsonl(&events));
    let out = checker(&["check", &file, "--fail-fast"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("7 keys not checked (--fail-fast)"), "{text}");
    // A valid history is checked whole and stays valid.
    let valid = write(dir.path(), "v.jsonl", VALID);
    assert_eq!(
        checker(&["check", &valid, "--fail-fast"]).status.code(),
        Some(0)
    );
}

#[test]
fn the_witness_lines_alone_are_found_invalid_by_the_command() {
    // Appends with stale reads on two keys, and registers with a read of a
    // value never written.
    let mut events = raft_checker::generate::generate(&raft_checker::generate::GenOptions {
        ops: 3000,
        keys: 3,
        processes: 12,
        appends: true,
        info_rate: 0.1,
        late_info_ns: 5_000_000,
        stale_keys: 2,
        seed: 9,
        ..raft_checker::generate::GenOptions::default()
    });
    let n = events.len() as u64;
    for mut e in registers_one_bad(1) {
        e.index += n;
        if let raft_checker::Process::Client(p) = &mut e.process {
            *p += 1_000_000;
        }
        e.key = e.key.map(|k| format!("r{k}"));
        events.push(e);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "h.jsonl", &jsonl(&events));
    let out = checker(&["check", &file, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let r: raft_checker::CheckResult = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.explanations.len(), 3, "{}", r.summary);
    for e in &r.explanations {
        assert!(e.witness_minimal, "{}", e.key);
        let w = write(dir.path(), "w.jsonl", &jsonl(&e.witness));
        let again = checker(&["check", &w]);
        assert_eq!(
            again.status.code(),
            Some(1),
            "key {}: {}",
            e.key,
            String::from_utf8_lossy(&again.stdout)
        );
    }
}

#[test]
fn stdout_of_an_invalid_check_is_tens_of_short_lines() {
    let events = raft_checker::generate::generate(&raft_checker::generate::GenOptions {
        ops: 20_000,
        keys: 40,
        processes: 50,
        appends: true,
        stale_keys: 30,
        seed: 4,
        ..raft_checker::generate::GenOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "h.jsonl", &jsonl(&events));
    let out = checker(&["check", &file]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() <= 40, "{} lines:\n{text}", lines.len());
    assert!(
        lines.iter().all(|l| l.chars().count() <= 400),
        "a long line:\n{text}"
    );
    assert!(text.contains("cannot all be linearized"), "{text}");
    assert!(text.contains("more invalid keys"), "{text}");
    assert!(text.contains("stale read"), "{text}");
}

/// Peak resident memory of a child that exited, in bytes (wait4's rusage).
// wait4 reaps the child, which std's wait would not measure.
#[allow(clippy::zombie_processes)]
fn run_measured(args: &[&str]) -> (Option<i32>, String, u64) {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_raft-checker"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run raft-checker");
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out).expect("read stdout");
    }
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, whose pid we hold; nothing else waits for it.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (code, out, usage.ru_maxrss as u64 * 1024)
}

#[test]
fn the_memory_budget_holds_the_whole_process_within_ten_percent() {
    // The register scenario the search needs about 450 MiB for, with 150.
    let s = raft_checker::bench::scenarios()
        .into_iter()
        .find(|s| s.name == "hard-register")
        .expect("the hard-register bench scenario");
    let events = raft_checker::generate::generate(&s.gen);
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "h.jsonl", &jsonl(&events));
    let budget_mib = 150;
    let (code, out, peak) = run_measured(&[
        "check",
        &file,
        "--model",
        "cas-register",
        "--memory-mib",
        &budget_mib.to_string(),
    ]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("memory limit reached"), "{out}");
    let limit = (budget_mib << 20) as f64 * 1.1;
    assert!(
        (peak as f64) <= limit,
        "peak RSS {} MiB over the {budget_mib} MiB budget\n{out}",
        peak >> 20
    );
}
