//! A new model is a handful of functions: this counter has only its
//! sequential specification (init, step, prepare) and no search hints, and
//! the checker decides its histories and explains a violation.

use raft_checker::hints::SearchHints;
use raft_checker::history::read_jsonl;
use raft_checker::model::Model;
use raft_checker::operation::Operation;
use raft_checker::{check_with_model, CheckOptions, Validity};

/// A counter: `add` n, and `read` returning the total.
struct Counter;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CounterOp {
    Add(i64),
    Read(i64),
}

impl Model for Counter {
    type State = i64;
    type Op = CounterOp;

    fn init(&self) -> i64 {
        0
    }

    fn step(&self, total: &i64, op: &CounterOp) -> Option<i64> {
        match op {
            CounterOp::Add(n) => Some(total + n),
            CounterOp::Read(n) => (n == total).then_some(*total),
        }
    }

    fn prepare(&self, op: &Operation) -> Result<Option<CounterOp>, String> {
        let n = op.value().as_i64();
        match (op.f.as_str(), n) {
            ("add", Some(n)) => Ok(Some(CounterOp::Add(n))),
            ("read", Some(n)) => Ok(Some(CounterOp::Read(n))),
            // A read that never answered constrains nothing.
            ("read", None) => Ok(None),
            (f, _) => Err(format!(
                "a counter has add and read, not {f} of {}",
                op.value()
            )),
        }
    }
}

impl SearchHints for Counter {}

fn check(text: &str) -> raft_checker::CheckResult {
    let events = read_jsonl(text.as_bytes()).expect("test history").events;
    check_with_model(&Counter, "counter", &events, &CheckOptions::default()).expect("well formed")
}

const CONCURRENT_ADDS: &str = r#"{"index":0,"time":0,"process":1,"type":"invoke","f":"add","value":2}
{"index":1,"time":1,"process":2,"type":"invoke","f":"add","value":3}
{"index":2,"time":2,"process":3,"type":"invoke","f":"read","value":null}
{"index":3,"time":3,"process":3,"type":"ok","f":"read","value":3}
{"index":4,"time":4,"process":1,"type":"ok","f":"add","value":2}
{"index":5,"time":5,"process":2,"type":"ok","f":"add","value":3}
{"index":6,"time":6,"process":3,"type":"invoke","f":"read","value":null}
{"index":7,"time":7,"process":3,"type":"ok","f":"read","value":5}
"#;

#[test]
fn a_counter_with_only_its_specification_is_checked() {
    // The first read saw the add of 3 alone: the adds overlap it.
    let r = check(CONCURRENT_ADDS);
    assert_eq!(r.valid, Validity::Valid, "{}", r.summary);
    assert_eq!(r.model, "counter");

    // A read of 4 after both adds finished: no order gives 4.
    let bad = CONCURRENT_ADDS.replace(
        r#""type":"ok","f":"read","value":5"#,
        r#""type":"ok","f":"read","value":4"#,
    );
    let r = check(&bad);
    assert_eq!(r.valid, Validity::Invalid, "{}", r.summary);
    let e = &r.explanations[0];
    assert_eq!(e.op.index, 7, "{}", e.message);
    // With no hints every sub-history counts, and the read of 4 alone is
    // already impossible (the counter starts at 0): that is the witness.
    let indexes: Vec<u64> = e.witness.iter().map(|ev| ev.index).collect();
    assert_eq!(indexes, vec![6, 7], "{}", e.message);
    assert!(e.witness_minimal);
}
