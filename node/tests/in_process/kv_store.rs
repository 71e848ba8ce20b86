//! The KV state machine: each operation's semantics, client sessions that
//! apply a retried write once, and snapshots that carry map and sessions.

use raft_node::kv::{ApplyResult, Command, KvStore, Op, Session, WriteResult};

fn cmd(op: Op) -> Vec<u8> {
    Command { session: None, op }.encode()
}

fn with_session(client_id: u64, seq: u64, op: Op) -> Vec<u8> {
    Command {
        session: Some(Session { client_id, seq }),
        op,
    }
    .encode()
}

fn put(k: &str, v: &str) -> Op {
    Op::Put {
        key: k.into(),
        value: v.into(),
    }
}

fn append(k: &str, s: &str) -> Op {
    Op::Append {
        key: k.into(),
        suffix: s.into(),
    }
}

fn cas(k: &str, expected: Option<&str>, new: &str) -> Op {
    Op::Cas {
        key: k.into(),
        expected: expected.map(Into::into),
        new: new.into(),
    }
}

fn applied(r: ApplyResult) -> WriteResult {
    match r {
        ApplyResult::Applied(w) => w,
        other => panic!("expected Applied, got {other:?}"),
    }
}

#[test]
fn put_then_get_returns_the_value_and_put_overwrites() {
    let mut kv = KvStore::new();
    let w = applied(kv.apply(1, &cmd(put("a", "1"))));
    assert_eq!((w.index, w.succeeded, w.value), (1, true, None));
    assert_eq!(kv.get("a"), Some(&b"1"[..]));
    applied(kv.apply(2, &cmd(put("a", "2"))));
    assert_eq!(kv.get("a"), Some(&b"2"[..]));
    assert_eq!(kv.get("b"), None);
    assert_eq!(kv.applied_index(), 2);
}

#[test]
fn cas_writes_only_when_the_current_value_matches() {
    let mut kv = KvStore::new();
    // Expected "absent" on an absent key succeeds.
    let w = applied(kv.apply(1, &cmd(cas("k", None, "x"))));
    assert!(w.succeeded);
    assert_eq!(kv.get("k"), Some(&b"x"[..]));
    // Expected "absent" on a present key fails and reports the value.
    let w = applied(kv.apply(2, &cmd(cas("k", None, "y"))));
    assert!(!w.succeeded);
    assert_eq!(w.value.as_deref(), Some(&b"x"[..]));
    // A wrong expected value fails and leaves the value alone.
    let w = applied(kv.apply(3, &cmd(cas("k", Some("nope"), "y"))));
    assert!(!w.succeeded);
    assert_eq!(kv.get("k"), Some(&b"x"[..]));
    // The right one succeeds.
    let w = applied(kv.apply(4, &cmd(cas("k", Some("x"), "y"))));
    assert!(w.succeeded);
    assert_eq!(kv.get("k"), Some(&b"y"[..]));
    // A present expected value on an absent key fails with value None.
    let w = applied(kv.apply(5, &cmd(cas("other", Some(""), "z"))));
    assert!(!w.succeeded);
    assert_eq!(w.value, None);
    assert_eq!(kv.get("other"), None);
}

#[test]
fn append_treats_an_absent_key_as_empty_and_returns_the_value_after() {
    let mut kv = KvStore::new();
    let w = applied(kv.apply(1, &cmd(append("l", "1 "))));
    assert_eq!(w.value.as_deref(), Some(&b"1 "[..]));
    let w = applied(kv.apply(2, &cmd(append("l", "2 "))));
    assert_eq!(w.value.as_deref(), Some(&b"1 2 "[..]));
    assert_eq!(kv.get("l"), Some(&b"1 2 "[..]));
}

#[test]
fn delete_removes_the_key_and_deleting_an_absent_key_is_fine() {
    let mut kv = KvStore::new();
    applied(kv.apply(1, &cmd(put("a", "1"))));
    applied(kv.apply(2, &cmd(Op::Delete { key: "a".into() })));
    assert_eq!(kv.get("a"), None);
    let w = applied(kv.apply(3, &cmd(Op::Delete { key: "a".into() })));
    assert!(w.succeeded);
    assert!(kv.is_empty());
}

#[test]
fn an_empty_entry_is_a_noop_that_only_advances_the_applied_index() {
    let mut kv = KvStore::new();
    assert_eq!(kv.apply(1, &[]), ApplyResult::Noop);
    assert_eq!(kv.applied_index(), 1);
    assert!(kv.is_empty());
}

#[test]
fn entries_at_or_below_the_applied_index_are_ignored() {
    let mut kv = KvStore::new();
    applied(kv.apply(5, &cmd(append("l", "a"))));
    assert_eq!(
        kv.apply(5, &cmd(append("l", "a"))),
        ApplyResult::AlreadyApplied
    );
    assert_eq!(
        kv.apply(3, &cmd(append("l", "a"))),
        ApplyResult::AlreadyApplied
    );
    assert_eq!(kv.get("l"), Some(&b"a"[..]));
    kv.skip(9);
    assert_eq!(
        kv.apply(8, &cmd(put("x", "y"))),
        ApplyResult::AlreadyApplied
    );
    assert_eq!(kv.applied_index(), 9);
}

#[test]
fn a_malformed_entry_changes_nothing_but_the_applied_index() {
    let mut kv = KvStore::new();
    applied(kv.apply(1, &cmd(put("a", "1"))));
    let before = kv.clone();
    match kv.apply(2, &[1, 200, 0, 0]) {
        ApplyResult::Malformed(e) => assert!(e.0.contains("operation"), "{e}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert_eq!(kv.get("a"), before.get("a"));
    assert_eq!(kv.applied_index(), 2);
}

#[test]
fn a_retried_write_with_the_same_session_seq_is_applied_once() {
    let mut kv = KvStore::new();
    let first = applied(kv.apply(1, &with_session(42, 1, append("l", "x"))));
    // The same request committed again (a client retry after a timeout).
    match kv.apply(2, &with_session(42, 1, append("l", "x"))) {
        ApplyResult::Duplicate(w) => assert_eq!(w, first),
        other => panic!("expected Duplicate, got {other:?}"),
    }
    assert_eq!(kv.get("l"), Some(&b"x"[..]));
    // The next request of the session applies.
    let w = applied(kv.apply(3, &with_session(42, 2, append("l", "y"))));
    assert_eq!(w.value.as_deref(), Some(&b"xy"[..]));
    // Another client is independent.
    applied(kv.apply(4, &with_session(43, 1, append("l", "z"))));
    assert_eq!(kv.get("l"), Some(&b"xyz"[..]));
}

#[test]
fn a_cas_retry_returns_the_original_outcome_even_after_the_value_changed() {
    let mut kv = KvStore::new();
    applied(kv.apply(1, &cmd(put("k", "a"))));
    let first = applied(kv.apply(2, &with_session(7, 1, cas("k", Some("a"), "b"))));
    assert!(first.succeeded);
    applied(kv.apply(3, &cmd(put("k", "a"))));
    // Re-executing would succeed again and overwrite; the session says no.
    match kv.apply(4, &with_session(7, 1, cas("k", Some("a"), "b"))) {
        ApplyResult::Duplicate(w) => assert_eq!(w, first),
        other => panic!("expected Duplicate, got {other:?}"),
    }
    assert_eq!(kv.get("k"), Some(&b"a"[..]));
}

#[test]
fn an_older_sequence_number_is_not_applied_and_reported_as_expired() {
    let mut kv = KvStore::new();
    applied(kv.apply(1, &with_session(9, 5, append("l", "5"))));
    assert_eq!(
        kv.apply(2, &with_session(9, 4, append("l", "4"))),
        ApplyResult::SessionExpired {
            client_id: 9,
            seq: 4
        }
    );
    assert_eq!(kv.get("l"), Some(&b"5"[..]));
}

#[test]
fn client_id_zero_means_no_session() {
    let mut kv = KvStore::new();
    applied(kv.apply(1, &with_session(0, 1, append("l", "a"))));
    applied(kv.apply(2, &with_session(0, 1, append("l", "a"))));
    assert_eq!(kv.get("l"), Some(&b"aa"[..]));
    assert_eq!(kv.session_count(), 0);
}

#[test]
fn sessions_are_bounded_by_evicting_the_least_recently_written_client() {
    let mut kv = KvStore::with_max_sessions(3);
    for (i, client) in [1u64, 2, 3].into_iter().enumerate() {
        applied(kv.apply(i as u64 + 1, &with_session(client, 1, append("l", "x"))));
    }
    // Client 1 writes again, so client 2 is now the oldest.
    applied(kv.apply(4, &with_session(1, 2, append("l", "x"))));
    applied(kv.apply(5, &with_session(4, 1, append("l", "x"))));
    assert_eq!(kv.session_count(), 3);
    // Client 2 was evicted: its retry of seq 1 would be applied twice, and a
    // later seq could be a forgotten duplicate, so it is refused.
    assert_eq!(
        kv.apply(6, &with_session(2, 2, append("l", "x"))),
        ApplyResult::SessionExpired {
            client_id: 2,
            seq: 2
        }
    );
    // Client 1 is still known and deduplicated.
    assert!(matches!(
        kv.apply(7, &with_session(1, 2, append("l", "x"))),
        ApplyResult::Duplicate(_)
    ));
    // A brand-new client starting at seq 1 is fine.
    applied(kv.apply(8, &with_session(5, 1, append("l", "x"))));
}

#[test]
fn snapshot_restore_round_trips_map_sessions_and_applied_index() {
    let mut kv = KvStore::with_max_sessions(100);
    applied(kv.apply(1, &cmd(put("a", "1"))));
    applied(kv.apply(2, &with_session(5, 1, append("b", "x"))));
    applied(kv.apply(3, &with_session(6, 1, cas("c", Some("q"), "r"))));
    applied(kv.apply(4, &cmd(put("\u{e9}t\u{e9}", "\u{0}\u{ff}"))));
    let image = kv.snapshot();
    let mut restored = KvStore::with_max_sessions(100);
    restored.restore(&image).unwrap();
    assert_eq!(restored, kv);
    assert_eq!(restored.applied_index(), 4);
    // The sessions came along: a retry is still a duplicate.
    assert!(matches!(
        restored.apply(5, &with_session(5, 1, append("b", "x"))),
        ApplyResult::Duplicate(_)
    ));
    assert_eq!(restored.get("b"), Some(&b"x"[..]));
    // And a snapshot is deterministic: same state, same bytes.
    assert_eq!(image, kv.snapshot());
}

#[test]
fn a_damaged_snapshot_is_refused_and_the_store_left_unchanged() {
    let mut kv = KvStore::new();
    applied(kv.apply(1, &cmd(put("a", "1"))));
    let image = kv.snapshot();
    let mut target = KvStore::new();
    applied(target.apply(1, &cmd(put("z", "9"))));
    let before = target.clone();
    for i in 0..image.len() {
        let mut d = image.clone();
        d[i] ^= 0x08;
        assert!(target.restore(&d).is_err(), "byte {i}");
        assert_eq!(target, before);
    }
    for n in 0..image.len() {
        assert!(target.restore(&image[..n]).is_err(), "truncated to {n}");
    }
    assert_eq!(target, before);
}

#[test]
fn replaying_the_same_log_on_two_stores_gives_identical_snapshots() {
    let log: Vec<Vec<u8>> = (0..200u64)
        .map(|i| {
            let key = format!("k{}", i % 7);
            let s = Some(Session {
                client_id: i % 5 + 1,
                seq: i / 5 + 1,
            });
            let op = match i % 4 {
                0 => put(&key, &i.to_string()),
                1 => append(&key, "+"),
                2 => cas(&key, Some("8"), "cas"),
                _ => Op::Delete { key },
            };
            Command { session: s, op }.encode()
        })
        .collect();
    let mut a = KvStore::with_max_sessions(3);
    let mut b = KvStore::with_max_sessions(3);
    for (i, e) in log.iter().enumerate() {
        a.apply(i as u64 + 1, e);
    }
    // b restores a mid-way snapshot of a replica, then applies the rest.
    let mut mid = KvStore::with_max_sessions(3);
    for (i, e) in log.iter().enumerate().take(120) {
        mid.apply(i as u64 + 1, e);
    }
    b.restore(&mid.snapshot()).unwrap();
    for (i, e) in log.iter().enumerate() {
        b.apply(i as u64 + 1, e);
    }
    assert_eq!(a.snapshot(), b.snapshot());
}

#[test]
fn evaluate_answers_what_apply_would_without_changing_the_state() {
    let mut kv = KvStore::new();
    kv.apply(1, &cmd(put("k", "a")));
    let ops = [
        put("k", "b"),
        append("k", "x"),
        append("fresh", "x"),
        Op::Cas {
            key: "k".into(),
            expected: Some("a".into()),
            new: "c".into(),
        },
        Op::Cas {
            key: "k".into(),
            expected: Some("zz".into()),
            new: "c".into(),
        },
        Op::Cas {
            key: "absent".into(),
            expected: None,
            new: "c".into(),
        },
        Op::Delete { key: "k".into() },
    ];
    for op in ops {
        let before = kv.clone();
        let guess = kv.evaluate(&op);
        assert_eq!(kv, before, "evaluate changed the state for {op:?}");
        let mut applied = kv.clone();
        let ApplyResult::Applied(real) = applied.apply(2, &cmd(op.clone())) else {
            panic!("{op:?} was not applied");
        };
        assert_eq!(
            (guess.succeeded, guess.value),
            (real.succeeded, real.value),
            "{op:?}"
        );
    }
}

#[test]
fn session_expiry_by_local_clock_makes_replicas_that_apply_late_diverge() {
    use std::time::{Duration, Instant};
    let entries = [
        with_session(9, 1, append("k", "a")),
        with_session(9, 2, append("k", "b")),
    ];
    let t0 = Instant::now();
    // The leader applies the second write 10 ms after the first; a
    // follower that was cut off applies it 5 s later, in its catch-up burst.
    let replay = |store: &mut KvStore, gap: Duration| {
        let r1 = store.apply_at(1, &entries[0], t0);
        let r2 = store.apply_at(2, &entries[1], t0 + gap);
        (r1, r2)
    };
    let (mut leader, mut follower) = (KvStore::new(), KvStore::new());
    replay(&mut leader, Duration::from_millis(10));
    replay(&mut follower, Duration::from_secs(5));
    assert_eq!(
        leader.snapshot(),
        follower.snapshot(),
        "correct: the log decides"
    );

    let idle = Duration::from_secs(1);
    let (mut leader, mut follower) = (KvStore::new(), KvStore::new());
    leader.expire_sessions_by_local_clock(idle);
    follower.expire_sessions_by_local_clock(idle);
    let (_, on_leader) = replay(&mut leader, Duration::from_millis(10));
    let (_, on_follower) = replay(&mut follower, Duration::from_secs(5));
    assert!(
        matches!(on_leader, ApplyResult::Applied(_)),
        "{on_leader:?}"
    );
    assert!(
        matches!(on_follower, ApplyResult::SessionExpired { .. }),
        "{on_follower:?}"
    );
    assert_eq!(leader.get("k"), Some(&b"ab"[..]));
    assert_eq!(follower.get("k"), Some(&b"a"[..]), "the replicas diverged");
}
