//! What ok, fail, info and pending mean to the checker, one scenario each.
//! Histories are written as in the file format: `process type f value`.

use raft_checker::history::read_jsonl;
use raft_checker::{check_history, CheckOptions, CheckResult, RegisterKind, Validity};
use serde_json::json;

/// Builds a history from lines like `1 invoke write 3` (key "k" unless a
/// fifth column names one; `n` as process means the nemesis).
fn history(text: &str) -> Vec<raft_checker::Event> {
    let mut out = String::new();
    for (i, line) in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let process = if cols[0] == "n" {
            json!("nemesis")
        } else {
            json!(cols[0].parse::<u64>().unwrap())
        };
        let value: serde_json::Value = serde_json::from_str(cols[3]).unwrap();
        let key = cols.get(4).copied().unwrap_or("k");
        let mut e = json!({"index": i, "time": i * 1000, "process": process, "type": cols[1], "f": cols[2], "value": value});
        if cols[0] != "n" {
            e["key"] = json!(key);
        }
        out.push_str(&e.to_string());
        out.push('\n');
    }
    read_jsonl(out.as_bytes())
        .expect("test history parses")
        .events
}

fn check(text: &str) -> CheckResult {
    let opts = CheckOptions {
        model: RegisterKind::Kv,
        ..CheckOptions::default()
    };
    check_history(&history(text), &opts).expect("well formed")
}

#[test]
fn an_ok_write_happens_within_its_interval() {
    let r = check(
        "1 invoke write 1
         1 ok write 1
         2 invoke read null
         2 ok read null",
    );
    assert_eq!(
        r.valid,
        Validity::Invalid,
        "a read after an ok write must see it"
    );
}

#[test]
fn concurrent_read_may_see_either_side_of_a_write() {
    for seen in ["null", "1"] {
        let r = check(&format!(
            "1 invoke write 1
             2 invoke read null
             2 ok read {seen}
             1 ok write 1"
        ));
        assert_eq!(r.valid, Validity::Valid, "read {seen}");
    }
}

#[test]
fn a_failed_write_never_happened() {
    let r = check(
        "1 invoke write 1
         1 fail write 1
         2 invoke read null
         2 ok read 1",
    );
    assert_eq!(r.valid, Validity::Invalid);
}

#[test]
fn an_info_write_may_take_effect_long_after_its_info_line() {
    let r = check(
        "1 invoke write 1
         1 info write 1
         2 invoke read null
         2 ok read null
         3 invoke read null
         3 ok read 1",
    );
    assert_eq!(r.valid, Validity::Valid, "{}", r.summary);
}

#[test]
fn an_info_write_may_never_take_effect() {
    let r = check(
        "1 invoke write 1
         1 info write 1
         2 invoke write 2
         2 ok write 2
         3 invoke read null
         3 ok read 2",
    );
    assert_eq!(r.valid, Validity::Valid);
}

#[test]
fn an_info_write_cannot_take_effect_before_its_invoke() {
    let r = check(
        "2 invoke read null
         2 ok read 1
         1 invoke write 1
         1 info write 1",
    );
    assert_eq!(r.valid, Validity::Invalid);
}

#[test]
fn an_info_write_takes_effect_at_most_once() {
    let r = check(
        "1 invoke write 1
         1 info write 1
         2 invoke read null
         2 ok read 1
         3 invoke write 2
         3 ok write 2
         4 invoke read null
         4 ok read 1",
    );
    assert_eq!(
        r.valid,
        Validity::Invalid,
        "1 cannot come back after 2 overwrote it"
    );
}

#[test]
fn an_info_cas_may_have_happened() {
    let r = check(
        "1 invoke write 1
         1 ok write 1
         2 invoke cas [1,5]
         2 info cas [1,5]
         3 invoke read null
         3 ok read 5",
    );
    assert_eq!(r.valid, Validity::Valid);
}

#[test]
fn a_read_that_timed_out_constrains_nothing() {
    let r = check(
        "1 invoke read null
         1 info read 42
         2 invoke read null
         2 ok read null",
    );
    assert_eq!(r.valid, Validity::Valid);
}

#[test]
fn an_invoke_cut_off_by_the_end_of_the_history_counts_as_info() {
    let r = check(
        "1 invoke write 1
         2 invoke read null
         2 ok read 1",
    );
    assert_eq!(r.valid, Validity::Valid);
    assert_eq!(r.counts["write"]["pending"], 1);
}

#[test]
fn appends_concatenate_from_absent_as_empty() {
    let ok = check(
        "1 invoke append \"a\"
         1 ok append \"a\"
         2 invoke append \"b\"
         2 ok append \"b\"
         3 invoke read null
         3 ok read \"ab\"",
    );
    assert_eq!(ok.valid, Validity::Valid);
    let bad = check(
        "1 invoke append \"a\"
         1 ok append \"a\"
         2 invoke append \"b\"
         2 ok append \"b\"
         3 invoke read null
         3 ok read \"ba\"",
    );
    assert_eq!(bad.valid, Validity::Invalid);
}

#[test]
fn keys_are_checked_independently_and_named() {
    let r = check(
        "1 invoke write 1 a
         1 ok write 1 a
         2 invoke read null b
         2 ok read 1 b
         3 invoke read null a
         3 ok read 1 a",
    );
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.invalid_keys, vec!["b".to_string()]);
    assert_eq!(r.keys.len(), 2);
    assert!(
        r.explanations[0].message.contains("key \"b\""),
        "{}",
        r.explanations[0].message
    );
}

#[test]
fn nemesis_events_are_ignored_by_the_search() {
    let r = check(
        "n info start-partition null
         1 invoke write 1
         n info stop-partition null
         1 ok write 1
         2 invoke read null
         2 ok read 1",
    );
    assert_eq!(r.valid, Validity::Valid);
    assert_eq!(r.op_count, 2);
}

#[test]
fn json_values_compare_by_value() {
    let r = check(
        "1 invoke write {\"a\":[1,2]}
         1 ok write {\"a\":[1,2]}
         2 invoke cas [{\"a\":[1,2]},\"x\"]
         2 ok cas [{\"a\":[1,2]},\"x\"]
         3 invoke read null
         3 ok read \"x\"",
    );
    assert_eq!(r.valid, Validity::Valid);
}

#[test]
fn the_explanation_names_the_op_the_prefix_and_the_possible_states() {
    let r = check(
        "1 invoke write 1
         1 ok write 1
         2 invoke write 2
         3 invoke read null
         3 ok read 3
         2 ok write 2",
    );
    let e = &r.explanations[0];
    assert_eq!(
        (e.op.process, e.op.f.as_str(), e.op.index, e.op.invoke_index),
        (3, "read", 4, 3)
    );
    assert_eq!(e.prefix_len, 2, "{e:?}");
    let mut states = e.states.clone();
    states.sort_by_key(|s| s.to_string());
    assert_eq!(states, vec![json!(1), json!(2)]);
}

#[test]
fn the_initial_value_option_sets_every_key() {
    let text = "1 invoke read null\n1 ok read 0";
    let opts = CheckOptions {
        model: RegisterKind::CasRegister,
        initial_value: json!(0),
        ..CheckOptions::default()
    };
    assert_eq!(
        check_history(&history(text), &opts).unwrap().valid,
        Validity::Valid
    );
    assert_eq!(
        check(text).valid,
        Validity::Invalid,
        "default initial value is null"
    );
}

#[test]
fn the_register_model_refuses_cas() {
    let opts = CheckOptions {
        model: RegisterKind::Register,
        ..CheckOptions::default()
    };
    let err = check_history(&history("1 invoke cas [1,2]\n1 ok cas [1,2]"), &opts).unwrap_err();
    assert!(err.message.contains("unknown f \"cas\""), "{err}");
}

#[test]
fn a_read_of_a_value_nothing_wrote_is_invalid_even_when_the_search_gives_up() {
    let starved = CheckOptions {
        model: RegisterKind::Kv,
        memory_limit: 0,
        ..CheckOptions::default()
    };
    let never = "1 invoke write 1
                 2 invoke read null
                 2 ok read 9
                 1 ok write 1";
    let r = check_history(&history(never), &starved).unwrap();
    assert_eq!(r.valid, Validity::Invalid);
    assert!(
        r.explanations[0].message.contains("nothing ever wrote 9"),
        "{}",
        r.explanations[0].message
    );
    // Here the search needs no memory to see it: the read is named either way.
    let future = "2 invoke read null
                  2 ok read 1
                  1 invoke write 1
                  1 ok write 1";
    let r = check_history(&history(future), &starved).unwrap();
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(
        (r.explanations[0].op.f.as_str(), r.explanations[0].op.index),
        ("read", 1)
    );
    // A stale read: 1 was overwritten by 2 before the read began.
    let stale = "1 invoke write 1
                 1 ok write 1
                 3 invoke write 5
                 2 invoke write 2
                 2 ok write 2
                 4 invoke read null
                 4 ok read 1
                 3 ok write 5";
    let r = check_history(&history(stale), &starved).unwrap();
    assert_eq!(r.valid, Validity::Invalid);
    assert!(
        r.explanations[0].message.contains("stale read"),
        "{}",
        r.explanations[0].message
    );
    // ... unless an uncertain write of 1 (here cut off by the end of the
    // history) may have landed in between.
    let maybe = "1 invoke write 1
                 1 ok write 1
                 3 invoke write 5
                 2 invoke write 2
                 2 ok write 2
                 5 invoke write 1
                 4 invoke read null
                 4 ok read 1
                 3 ok write 5";
    assert_eq!(check(maybe).valid, Validity::Valid);
    assert_eq!(
        check_history(&history(maybe), &starved).unwrap().valid,
        Validity::Unknown
    );
    // A possible read is never called impossible: the search just gives up.
    let fine = "1 invoke write 1
                2 invoke read null
                2 ok read 1
                1 ok write 1";
    assert_eq!(
        check_history(&history(fine), &starved).unwrap().valid,
        Validity::Unknown
    );
}
