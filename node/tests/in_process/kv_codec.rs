//! Property tests of the command and snapshot encodings: every command
//! round-trips, and no byte string makes a decoder panic.

use proptest::prelude::*;
use raft_node::kv::{Command, KvStore, Op, Session};

fn op() -> impl Strategy<Value = Op> {
    let key = "\\PC{0,12}";
    let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        (key, bytes()).prop_map(|(key, value)| Op::Put { key, value }),
        (key, proptest::option::of(bytes()), bytes()).prop_map(|(key, expected, new)| Op::Cas {
            key,
            expected,
            new
        }),
        (key, bytes()).prop_map(|(key, suffix)| Op::Append { key, suffix }),
        key.prop_map(|key| Op::Delete { key }),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    (proptest::option::of((any::<u64>(), any::<u64>())), op()).prop_map(|(s, op)| Command {
        session: s.map(|(client_id, seq)| Session { client_id, seq }),
        op,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn every_command_round_trips_through_its_encoding(c in command()) {
        let b = c.encode();
        prop_assert!(!b.is_empty());
        prop_assert_eq!(Command::decode(&b), Ok(c));
    }

    #[test]
    fn decoding_random_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = Command::decode(&b);
        let mut kv = KvStore::new();
        let _ = kv.restore(&b);
        let _ = kv.apply(1, &b);
    }

    #[test]
    fn a_truncated_or_extended_command_is_rejected(c in command(), extra in any::<u8>()) {
        let b = c.encode();
        for n in 0..b.len() {
            prop_assert!(Command::decode(&b[..n]).is_err());
        }
        let mut longer = b.clone();
        longer.push(extra);
        prop_assert!(Command::decode(&longer).is_err());
    }

    #[test]
    fn a_mutated_command_decodes_or_errors_but_never_panics(
        c in command(), at in any::<prop::sample::Index>(), byte in any::<u8>()
    ) {
        let mut b = c.encode();
        let i = at.index(b.len());
        b[i] = byte;
        let _ = Command::decode(&b);
    }

    #[test]
    fn a_store_snapshot_round_trips(cs in proptest::collection::vec(command(), 0..30)) {
        let mut kv = KvStore::new();
        for (i, c) in cs.iter().enumerate() {
            kv.apply(i as u64 + 1, &c.encode());
        }
        let mut r = KvStore::new();
        r.restore(&kv.snapshot()).unwrap();
        prop_assert_eq!(r, kv);
    }

    /// The running digest (kept by each write) is the one a store rebuilt
    /// from the same state has, through overwrites, deletes, appends and
    /// session evictions (a bound of 3 sessions, client ids drawn small).
    #[test]
    fn the_running_digest_is_the_digest_of_the_state(
        cs in proptest::collection::vec((0u64..6, 1u64..4, op()), 0..40)
    ) {
        let mut kv = KvStore::with_max_sessions(3);
        for (i, (client, seq, op)) in cs.into_iter().enumerate() {
            let c = Command { session: Some(Session { client_id: client, seq }), op };
            kv.apply(i as u64 + 1, &c.encode());
        }
        let mut r = KvStore::with_max_sessions(3);
        r.restore(&kv.snapshot()).unwrap();
        prop_assert_eq!(r.digest(), kv.digest());
    }

    /// Stores whose images differ have different digests.
    #[test]
    fn different_states_have_different_digests(
        a in proptest::collection::vec(command(), 0..12),
        b in proptest::collection::vec(command(), 0..12),
    ) {
        let build = |cs: &[Command]| {
            let mut kv = KvStore::new();
            for (i, c) in cs.iter().enumerate() {
                kv.apply(i as u64 + 1, &c.encode());
            }
            kv
        };
        let (x, y) = (build(&a), build(&b));
        prop_assert_eq!(x.snapshot() == y.snapshot(), x.digest() == y.digest());
    }
}
