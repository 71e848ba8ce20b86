//! Keys of reads and appends with many concurrent appends: the case where
//! every order of the appends is a distinct state and only pruning by the
//! reads still to come keeps the search small.

use raft_checker::bench::scenarios;
use raft_checker::generate::generate;
use raft_checker::{check_history, CheckOptions, EventType, RegisterKind, Validity};
use std::time::Duration;

fn opts() -> CheckOptions {
    CheckOptions {
        model: RegisterKind::Kv,
        threads: 1,
        // Far beyond what the pruned search needs; reached only if the
        // pruning is lost, which then fails the test instead of hanging it.
        time_limit: Some(Duration::from_secs(60)),
        ..CheckOptions::default()
    }
}

fn append_scenario() -> raft_checker::generate::GenOptions {
    scenarios()
        .into_iter()
        .find(|s| s.name == "c")
        .expect("bench scenario c: one append key, 30 processes")
        .gen
}

#[test]
fn thirty_concurrent_appenders_on_one_key_are_checked_valid() {
    for seed in 0..5 {
        let g = raft_checker::generate::GenOptions {
            seed,
            ..append_scenario()
        };
        let events = generate(&g);
        let appends = events
            .iter()
            .filter(|e| e.kind == EventType::Invoke && e.f == "append")
            .count();
        assert!(appends > 100, "seed {seed}: only {appends} appends");
        let r = check_history(&events, &opts()).expect("well formed");
        assert_eq!(r.valid, Validity::Valid, "seed {seed}: {}", r.summary);
    }
}

/// The ok reads of the history, longest value first.
fn ok_reads_longest_first(events: &[raft_checker::Event]) -> Vec<usize> {
    let mut reads: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].kind == EventType::Ok && events[i].f == "read")
        .collect();
    reads.sort_by_key(|&i| std::cmp::Reverse(events[i].value.as_str().map_or(0, str::len)));
    reads
}

#[test]
fn a_read_of_a_piece_never_appended_makes_thirty_appenders_invalid() {
    for seed in 0..5 {
        let g = raft_checker::generate::GenOptions {
            seed,
            ..append_scenario()
        };
        let mut events = generate(&g);
        // A read in the middle of the history (by value length) gets a
        // piece nobody appended: no order of appends produces that text,
        // since every piece ends in a comma and so splits one way only.
        let reads = ok_reads_longest_first(&events);
        let i = reads[reads.len() / 2];
        let seen = events[i].value.as_str().unwrap_or_default().to_string();
        events[i].value = serde_json::json!(format!("{seen}999999,"));
        let r = check_history(&events, &opts()).expect("well formed");
        assert_eq!(r.valid, Validity::Invalid, "seed {seed}: {}", r.summary);
        assert_eq!(r.invalid_keys, vec!["k0".to_string()]);
        let e = &r.explanations[0];
        assert!(e.message.contains("cannot be linearized"), "{}", e.message);
    }
}

#[test]
fn two_reads_neither_a_prefix_of_the_other_are_named_quickly() {
    let mut events = generate(&append_scenario());
    let reads = ok_reads_longest_first(&events);
    let i = reads[0];
    let seen = events[i].value.as_str().unwrap_or_default().to_string();
    let pieces: Vec<&str> = seen.split_inclusive(',').collect();
    assert!(pieces.len() >= 3, "the longest read saw {seen:?}");
    // Replace the first piece by one nobody appended: the value no longer
    // extends any shorter non-empty read.
    let altered = format!("999999,{}", pieces[1..].concat());
    events[i].value = serde_json::json!(altered);
    let starved = CheckOptions {
        memory_limit: 0,
        ..opts()
    };
    // With no memory for the search, only the quick look can decide.
    let r = check_history(&events, &starved).expect("well formed");
    assert_eq!(r.valid, Validity::Invalid, "{}", r.summary);
    let e = &r.explanations[0];
    assert!(
        e.message.contains("neither is a prefix of the other"),
        "{}",
        e.message
    );
    let r = check_history(&events, &opts()).expect("well formed");
    assert_eq!(r.valid, Validity::Invalid, "{}", r.summary);
}
