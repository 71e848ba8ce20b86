//! The run outputs: results.json's shape, and a page whose size is bounded
//! whatever the history's length.

use raft_checker::generate::{generate, GenOptions};
use raft_checker::history::{Event, EventType, Process};
use raft_checker::report::write_run_outputs;
use raft_checker::{check_history, CheckOptions, CheckResult, RegisterKind, Validity};

fn cas_opts() -> CheckOptions {
    CheckOptions {
        model: RegisterKind::CasRegister,
        ..CheckOptions::default()
    }
}

#[test]
fn page_size_is_bounded_for_long_histories_with_many_violations() {
    let mut events = generate(&GenOptions {
        ops: 40_000,
        keys: 200,
        processes: 30,
        info_rate: 0.05,
        values: 5,
        cas: true,
        appends: false,
        seed: 7,
        ..GenOptions::default()
    });
    // Break every ok read of a value: hundreds of invalid keys.
    for e in events.iter_mut() {
        if e.kind == EventType::Ok && e.f == "read" && e.index % 7 == 0 {
            e.value = serde_json::json!(123456);
        }
    }
    let nemesis = |index: u64, time: u64, f: &str| Event {
        index,
        time,
        process: Process::nemesis(),
        kind: EventType::Info,
        f: f.to_string(),
        key: None,
        value: serde_json::Value::Null,
        error: None,
    };
    let end = events.last().map(|e| e.time).unwrap_or(0);
    let n = events.len() as u64;
    events.push(nemesis(n, end / 3, "start-pause"));
    events.push(nemesis(n + 1, end / 2, "stop-pause"));
    events.sort_by_key(|e| e.time);
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i as u64;
    }
    let r = check_history(&events, &cas_opts()).expect("well formed");
    assert_eq!(r.valid, Validity::Invalid);
    assert!(r.invalid_keys.len() > 50, "{}", r.invalid_keys.len());
    let dir = tempfile::tempdir().expect("tempdir");
    let run = raft_checker::verdict::compose(Some(r), Vec::new());
    write_run_outputs(dir.path(), &events, &run).expect("write outputs");
    let size = |f: &str| {
        std::fs::metadata(dir.path().join(f))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    assert!(
        size("index.html") > 0 && size("index.html") < 400_000,
        "index.html is {} bytes",
        size("index.html")
    );
    for svg in ["latency-raw.svg", "latency-quantiles.svg", "rate.svg"] {
        assert!(
            size(svg) > 0 && size(svg) < 5_000_000,
            "{svg} is {} bytes",
            size(svg)
        );
    }
    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    assert!(html.contains("<svg"), "no timeline on the page");
    assert!(html.contains("cannot be linearized"));
    // Ten violations in full, the others one line each.
    assert_eq!(html.matches("<h3>key ").count(), 10);
    assert!(html.contains("more invalid keys</h3><ul class=\"compact\">"));
}

#[test]
fn results_json_round_trips_with_the_verdict_as_true_false_or_unknown() {
    let events = generate(&GenOptions {
        ops: 200,
        keys: 3,
        ..GenOptions::default()
    });
    let r = check_history(&events, &cas_opts()).expect("well formed");
    let text = serde_json::to_string(&r).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["valid"], serde_json::json!(true));
    assert_eq!(v["keys"].as_array().map(|k| k.len()), Some(3));
    // Floats may lose their last bit in JSON; everything else comes back.
    let back: CheckResult = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (back.valid, &back.counts, back.keys.len(), &back.summary),
        (r.valid, &r.counts, r.keys.len(), &r.summary)
    );

    let opts = CheckOptions {
        memory_limit: 0,
        ..cas_opts()
    };
    let big = generate(&GenOptions {
        ops: 2000,
        keys: 1,
        processes: 10,
        ..GenOptions::default()
    });
    let r = check_history(&big, &opts).expect("well formed");
    assert_eq!(r.valid, Validity::Unknown);
    assert_eq!(
        serde_json::to_value(&r).unwrap()["valid"],
        serde_json::json!("unknown")
    );
    assert!(r.keys[0]
        .reason
        .as_deref()
        .unwrap_or("")
        .contains("memory limit"));
    assert_eq!(Validity::Unknown.exit_code(), 3);
}

/// A history whose key "k" has a stale read: write 1 ok, then read null.
fn stale_read_history(value: serde_json::Value) -> Vec<Event> {
    let ev = |index: u64, process: u64, kind: EventType, f: &str, v: serde_json::Value| Event {
        index,
        time: 1_000_000 * (index + 1),
        process: Process::Client(process),
        kind,
        f: f.to_string(),
        key: Some("k".into()),
        value: v,
        error: None,
    };
    vec![
        ev(0, 1, EventType::Invoke, "write", value.clone()),
        ev(1, 1, EventType::Ok, "write", value),
        Event {
            index: 2,
            time: 2_500_000,
            process: Process::nemesis(),
            kind: EventType::Info,
            f: "start-partition".into(),
            key: None,
            value: serde_json::json!({"groups": [[1], [2, 3]]}),
            error: None,
        },
        ev(3, 2, EventType::Invoke, "read", serde_json::Value::Null),
        ev(4, 2, EventType::Ok, "read", serde_json::Value::Null),
    ]
}

#[test]
fn a_run_page_shows_its_context_the_fault_schedule_plots_before_violations_and_short_values() {
    let long = "v".repeat(5_000);
    let events = stale_read_history(serde_json::json!(long));
    let r = check_history(&events, &cas_opts()).expect("well formed");
    assert_eq!(r.valid, Validity::Invalid);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("test.json"),
        serde_json::json!({
            "seed": 987654321, "target": "raft", "driver_version": "raft-driver 0.1.0",
            "node_version": "raft-node 0.1.0",
            "options": {"nemesis": ["partition"], "nemesis_label": "partition",
                        "time_limit": {"secs": 5, "nanos": 0}, "nodes": 3}
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(dir.path().join("driver.log"), "log").unwrap();
    std::fs::create_dir(dir.path().join("nodes")).unwrap();
    std::fs::write(dir.path().join("nodes/n2.events.jsonl"), "").unwrap();
    let run = raft_checker::verdict::compose(Some(r), Vec::new());
    write_run_outputs(dir.path(), &events, &run).expect("write outputs");
    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    for want in [
        "987654321",
        "raft-node 0.1.0",
        "raft-driver replay ",
        "raft-checker check ",
        "href=\"driver.log\"",
        "href=\"nodes/n2.events.jsonl\"",
        "Fault schedule",
        "[[1],[2,3]]",
        "◀ impossible",
    ] {
        assert!(html.contains(want), "{want} is missing from the page");
    }
    let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("no {s}"));
    assert!(at("<h2>Run") < at("<h2>Plots"), "context comes first");
    assert!(
        at("<h2>Plots") < at("<h2>Violations"),
        "plots come before violations"
    );
    assert!(
        !html.contains(&"v".repeat(201)),
        "a 5,000-character value is shown whole"
    );

    // The same history with no test.json beside it still gets a page.
    let bare = tempfile::tempdir().expect("tempdir");
    let r = check_history(&events, &cas_opts()).expect("well formed");
    let run = raft_checker::verdict::compose(Some(r), Vec::new());
    write_run_outputs(bare.path(), &events, &run).expect("write outputs");
    let html = std::fs::read_to_string(bare.path().join("index.html")).unwrap();
    assert!(!html.contains("<h2>Run") && !html.contains("raft-driver replay"));
    assert!(html.contains("<h2>Violations") && html.contains("◀ impossible"));
}

#[test]
fn plots_say_how_many_ok_operations_they_draw_and_show_overlapping_faults_in_their_own_lanes() {
    let mut events = generate(&GenOptions {
        ops: 30_000,
        keys: 20,
        processes: 20,
        info_rate: 0.01,
        seed: 5,
        ..GenOptions::default()
    });
    let end = events.last().map(|e| e.time).unwrap_or(0);
    let nemesis = |time: u64, f: &str| Event {
        index: 0,
        time,
        process: Process::nemesis(),
        kind: EventType::Info,
        f: f.to_string(),
        key: None,
        value: serde_json::Value::Null,
        error: None,
    };
    // A kill inside a partition: the two overlap.
    events.extend([
        nemesis(end / 4, "start-partition"),
        nemesis(end / 3, "start-kill"),
        nemesis(end / 2, "stop-kill"),
        nemesis(end * 3 / 4, "stop-partition"),
    ]);
    events.sort_by_key(|e| e.time);
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i as u64;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    raft_checker::plot::write_plots(dir.path(), &events).expect("plots");
    let svg = std::fs::read_to_string(dir.path().join("latency-raw.svg")).unwrap();
    let ok = raft_checker::operation::pair_lenient(&events)
        .iter()
        .filter(|o| o.outcome == raft_checker::operation::Outcome::Ok && o.complete.is_some())
        .count();
    let caption = format!("of {ok} ok operations drawn");
    let at = svg.find(&caption).expect("the plot says how much it drew");
    let drawn: usize = svg[..at]
        .rsplit(": ")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .expect("a count before the total");
    // The dense cloud fills the budget; the slowest 1% come on top of it.
    let max = raft_checker::plot::MAX_RAW_POINTS;
    assert!(
        drawn >= max && drawn <= max + ok / 100 + 1,
        "{drawn} of {ok}"
    );
    let upper = svg.to_uppercase();
    for (kind, colour) in [("partition", "#E41A1C"), ("kill", "#377EB8")] {
        // The lane's name, the legend's, and bands in the kind's own colour.
        // (plotters writes each text on a line of its own.)
        assert!(svg.matches(&format!("\n{kind}\n")).count() >= 2, "{kind}");
        assert!(upper.contains(colour), "{kind} is not drawn in {colour}");
    }
}
