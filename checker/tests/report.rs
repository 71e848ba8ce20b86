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
