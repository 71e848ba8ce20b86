//! The checker agrees with a brute-force checker that tries every order, on
//! thousands of small random histories (info, fail and pending included).

use crate::common;

use common::{brute_force, random_append_history, random_history};
use raft_checker::{check_history, CheckOptions, RegisterKind, Validity};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde_json::{json, Value};

/// Options for one random key: the kv model, one thread.
fn kv(initial: &Value) -> CheckOptions {
    CheckOptions {
        model: RegisterKind::Kv,
        initial_value: initial.clone(),
        threads: 1,
        ..CheckOptions::default()
    }
}

/// What the brute force says, counted.
fn verdict(brute: &[common::BruteOp], initial: &Value, counts: &mut (usize, usize)) -> Validity {
    if brute_force(brute, initial) {
        counts.0 += 1;
        Validity::Valid
    } else {
        counts.1 += 1;
        Validity::Invalid
    }
}

/// A history as JSON lines, for failure messages.
fn text(events: &[raft_checker::Event]) -> String {
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn checker_agrees_with_brute_force_on_small_random_histories() {
    // DIFFERENTIAL_CASES, DIFFERENTIAL_SEED and DIFFERENTIAL_MAX_OPS widen
    // the search locally.
    let cases: usize = std::env::var("DIFFERENTIAL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let seed: u64 = std::env::var("DIFFERENTIAL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261130);
    let max_ops: usize = std::env::var("DIFFERENTIAL_MAX_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut counts = (0, 0);
    let mut quick_invalid = 0;
    for case in 0..cases {
        let (events, brute) = random_history(&mut rng, max_ops);
        let initial = if case % 2 == 0 { Value::Null } else { json!(0) };
        let want = verdict(&brute, &initial, &mut counts);
        let opts = kv(&initial);
        let got = check_history(&events, &opts).expect("generated histories are well formed");
        assert_eq!(
            got.valid,
            want,
            "case {case}, initial {initial}: checker says {:?}, brute force {:?}\n{}",
            got.valid,
            want,
            text(&events)
        );
        // With no memory for the search, only the quick impossibility check
        // can decide: it may say invalid (then rightly) or unknown.
        let starved = CheckOptions {
            memory_limit: 0,
            ..opts
        };
        let quick = check_history(&events, &starved).expect("well formed").valid;
        assert!(
            quick == Validity::Unknown || quick == want,
            "case {case}: the quick check says {quick:?}, brute force {want:?}"
        );
        if quick == Validity::Invalid {
            quick_invalid += 1;
        }
    }
    // The generator must exercise both verdicts, or the test proves little.
    let (valid, invalid) = counts;
    assert!(
        valid > cases / 8 && invalid > cases / 8,
        "valid {valid}, invalid {invalid}"
    );
    assert!(
        quick_invalid > cases / 20,
        "the quick check decided only {quick_invalid} cases"
    );
}

#[test]
fn checker_agrees_with_brute_force_on_many_concurrent_appends() {
    let cases: usize = std::env::var("DIFFERENTIAL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut rng = SmallRng::seed_from_u64(7_20261130);
    let mut counts = (0, 0);
    for case in 0..cases {
        let (events, brute) = random_append_history(&mut rng, 9);
        let initial = [Value::Null, json!("0,"), json!(0)][case % 3].clone();
        let want = verdict(&brute, &initial, &mut counts);
        let opts = kv(&initial);
        let got = check_history(&events, &opts).expect("generated histories are well formed");
        assert_eq!(
            got.valid,
            want,
            "case {case}, initial {initial}: {}\n{}",
            got.summary,
            text(&events)
        );
        let starved = CheckOptions {
            memory_limit: 0,
            ..opts
        };
        let quick = check_history(&events, &starved).expect("well formed").valid;
        assert!(
            quick == Validity::Unknown || quick == want,
            "case {case}: the quick check says {quick:?}, brute force {want:?}"
        );
    }
    let (valid, invalid) = counts;
    assert!(
        valid > cases / 4 && invalid > cases / 8,
        "valid {valid}, invalid {invalid}"
    );
}

/// Keys of pieces are decided without a search (`raft_checker::pieces`):
/// the order the longest read shows, each read at its length, real time
/// checked against it. Here with appends that take effect long after their
/// info line or never, reads among many appends in flight, and reads made
/// stale, reordered, cut or padded.
#[test]
fn keys_of_pieces_with_crashed_appends_are_decided_as_the_brute_force_does() {
    let cases: usize = std::env::var("DIFFERENTIAL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let mut rng = SmallRng::seed_from_u64(15_20261130);
    let (mut counts, mut decided) = ((0, 0), 0);
    for case in 0..cases {
        let initial = [Value::Null, json!("0,"), json!("")][case % 3].clone();
        let (events, brute) = common::crash_append_history(&mut rng, 9, &initial);
        let want = verdict(&brute, &initial, &mut counts);
        let opts = kv(&initial);
        let history = || text(&events);
        let got = check_history(&events, &opts).expect("well formed");
        assert_eq!(
            got.valid,
            want,
            "case {case}, initial {initial}: {}\n{}",
            got.summary,
            history()
        );
        // With no memory at all the search can decide nothing: a key with
        // an append is decided by the pieces alone, and rightly.
        if brute.iter().any(|o| o.f == "append") {
            let starved = CheckOptions {
                memory_limit: 0,
                ..opts
            };
            let quick = check_history(&events, &starved).expect("well formed");
            assert_eq!(
                quick.valid,
                want,
                "case {case}, initial {initial}, no memory: {}\n{}",
                quick.summary,
                history()
            );
            decided += 1;
        }
    }
    let (valid, invalid) = counts;
    assert!(
        valid > cases / 4 && invalid > cases / 5 && decided > cases / 2,
        "valid {valid}, invalid {invalid}, decided by pieces {decided}"
    );
}
