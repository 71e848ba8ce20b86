//! The checker agrees with a brute-force checker that tries every order, on
//! thousands of small random histories (info, fail and pending included).

mod common;

use common::{brute_force, random_append_history, random_history};
use raft_checker::{check_history, CheckOptions, RegisterKind, Validity};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde_json::{json, Value};

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
    let (mut valid, mut invalid, mut quick_invalid) = (0, 0, 0);
    for case in 0..cases {
        let (events, brute) = random_history(&mut rng, max_ops);
        let initial = if case % 2 == 0 { Value::Null } else { json!(0) };
        let expected = brute_force(&brute, &initial);
        let opts = CheckOptions {
            model: RegisterKind::Kv,
            initial_value: initial.clone(),
            threads: 1,
            ..CheckOptions::default()
        };
        let got = check_history(&events, &opts).expect("generated histories are well formed");
        let want = if expected {
            Validity::Valid
        } else {
            Validity::Invalid
        };
        assert_eq!(
            got.valid,
            want,
            "case {case}, initial {initial}: checker says {:?}, brute force {:?}\n{}",
            got.valid,
            want,
            events
                .iter()
                .map(|e| serde_json::to_string(e).unwrap())
                .collect::<Vec<_>>()
                .join("\n")
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
        if expected {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    // The generator must exercise both verdicts, or the test proves little.
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
    let (mut valid, mut invalid) = (0, 0);
    for case in 0..cases {
        let (events, brute) = random_append_history(&mut rng, 9);
        let initial = [Value::Null, json!("0,"), json!(0)][case % 3].clone();
        let want = if brute_force(&brute, &initial) {
            valid += 1;
            Validity::Valid
        } else {
            invalid += 1;
            Validity::Invalid
        };
        let opts = CheckOptions {
            model: RegisterKind::Kv,
            initial_value: initial.clone(),
            threads: 1,
            ..CheckOptions::default()
        };
        let got = check_history(&events, &opts).expect("generated histories are well formed");
        assert_eq!(
            got.valid,
            want,
            "case {case}, initial {initial}: {}\n{}",
            got.summary,
            events
                .iter()
                .map(|e| serde_json::to_string(e).unwrap())
                .collect::<Vec<_>>()
                .join("\n")
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
    let (mut valid, mut invalid, mut decided) = (0, 0, 0);
    for case in 0..cases {
        let initial = [Value::Null, json!("0,"), json!("")][case % 3].clone();
        let (events, brute) = common::crash_append_history(&mut rng, 9, &initial);
        let want = if brute_force(&brute, &initial) {
            valid += 1;
            Validity::Valid
        } else {
            invalid += 1;
            Validity::Invalid
        };
        let opts = CheckOptions {
            model: RegisterKind::Kv,
            initial_value: initial.clone(),
            threads: 1,
            ..CheckOptions::default()
        };
        let history = || {
            events
                .iter()
                .map(|e| serde_json::to_string(e).unwrap())
                .collect::<Vec<_>>()
                .join("\n")
        };
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
    assert!(
        valid > cases / 4 && invalid > cases / 5 && decided > cases / 2,
        "valid {valid}, invalid {invalid}, decided by pieces {decided}"
    );
}
