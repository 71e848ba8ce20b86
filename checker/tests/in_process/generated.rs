//! Histories generated from a real sequential execution with random
//! overlapping intervals are always linearizable; the same with one read
//! altered to a value that was never current never are, and the checker
//! names that read.

use raft_checker::generate::{corrupt_one_read, generate, GenOptions};
use raft_checker::{check_history, CheckOptions, RegisterKind, Validity};

fn opts() -> CheckOptions {
    CheckOptions {
        // kv: read, write, cas and append (some cases are of appends).
        model: RegisterKind::Kv,
        time_limit: Some(std::time::Duration::from_secs(30)),
        ..CheckOptions::default()
    }
}

fn cases() -> impl Iterator<Item = GenOptions> {
    (0..60u64).map(|seed| GenOptions {
        ops: 50 + (seed as usize * 37) % 400,
        keys: 1 + (seed as usize % 4),
        processes: 2 + (seed as usize % 9),
        info_rate: [0.0, 0.05, 0.2][seed as usize % 3],
        values: [3, 5, 1000][seed as usize % 3],
        cas: true,
        // Every fifth history is of reads and appends.
        appends: seed % 5 == 4,
        seed,
        ..GenOptions::default()
    })
}

#[test]
fn histories_of_a_real_execution_are_linearizable() {
    for g in cases() {
        let events = generate(&g);
        let r = check_history(&events, &opts()).expect("well formed");
        assert_eq!(r.valid, Validity::Valid, "{g:?}: {}", r.summary);
    }
}

#[test]
fn a_read_of_a_value_never_current_is_caught_and_named() {
    for g in cases() {
        let mut events = generate(&g);
        let Some(i) = corrupt_one_read(&mut events, g.seed) else {
            continue;
        };
        let r = check_history(&events, &opts()).expect("well formed");
        assert_eq!(r.valid, Validity::Invalid, "{g:?}: {}", r.summary);
        assert_eq!(
            r.invalid_keys,
            vec![events[i].key.clone().unwrap_or_default()]
        );
        // The corrupted read can never be linearized; an earlier op on the
        // key is never blamed.
        let e = &r.explanations[0];
        assert_eq!(e.op.index, events[i].index, "{g:?}: {}", e.message);
    }
}

#[test]
fn uncertain_writes_that_took_effect_late_are_accepted() {
    // Many info writes on one key with few values: the case where dropping
    // info ops, or closing them at the info line, raises false alarms.
    for seed in 0..20 {
        let g = GenOptions {
            ops: 300,
            keys: 1,
            processes: 6,
            info_rate: 0.4,
            values: 3,
            cas: true,
            appends: false,
            seed,
            ..GenOptions::default()
        };
        let r = check_history(&generate(&g), &opts()).expect("well formed");
        assert_eq!(r.valid, Validity::Valid, "seed {seed}: {}", r.summary);
    }
}

#[test]
fn driver_shaped_histories_rotate_keys_mix_appends_and_are_linearizable() {
    for seed in 0..5 {
        let g = GenOptions {
            ops: 6_000,
            keys: 30,
            processes: 30,
            info_rate: 0.05,
            active_keys: 6,
            mixed: true,
            seed,
            ..GenOptions::default()
        };
        let events = generate(&g);
        // Every third key takes appends, the others writes and cas.
        let fs = |key: &str| -> Vec<String> {
            let mut fs: Vec<String> = events
                .iter()
                .filter(|e| e.key.as_deref() == Some(key))
                .map(|e| e.f.clone())
                .collect();
            fs.sort();
            fs.dedup();
            fs
        };
        assert_eq!(fs("k2"), ["append", "read"]);
        assert_eq!(fs("k3"), ["cas", "read", "write"]);
        // Rotated: the last key starts well after the first one ends.
        let span = |key: &str| {
            let at: Vec<usize> = (0..events.len())
                .filter(|&i| events[i].key.as_deref() == Some(key))
                .collect();
            (at[0], at[at.len() - 1])
        };
        assert!(
            span("k0").1 < span("k29").0,
            "{:?} {:?}",
            span("k0"),
            span("k29")
        );
        let r = check_history(&events, &opts()).expect("well formed");
        assert_eq!(r.valid, Validity::Valid, "seed {seed}: {}", r.summary);
        assert_eq!(r.keys.len(), 30);
    }
}
