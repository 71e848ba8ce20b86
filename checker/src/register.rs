//! Registers: read, write, compare-and-set and append over JSON values, one
//! independent register per key.
//!
//! `read` returns the current value (null means absent); `write` sets it;
//! `cas` with value `[expected, new]` sets it to `new` if it was `expected`
//! (a failed cas is recorded as `fail` and did not happen); `append` with a
//! string value concatenates onto the current string (absent counts as "").

use crate::model::Model;
use crate::operation::{Operation, Outcome};
use crate::search::SearchOp;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Which operations a register accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegisterKind {
    /// `read` and `write`.
    Register,
    /// `read`, `write` and `cas`.
    CasRegister,
    /// `read`, `write`, `cas` and `append`: a key-value map of registers.
    Kv,
}

impl RegisterKind {
    /// The name used on the command line and in results.json.
    pub fn name(self) -> &'static str {
        match self {
            RegisterKind::Register => "register",
            RegisterKind::CasRegister => "cas-register",
            RegisterKind::Kv => "kv",
        }
    }

    fn accepts(self) -> &'static [&'static str] {
        match self {
            RegisterKind::Register => &["read", "write"],
            RegisterKind::CasRegister => &["read", "write", "cas"],
            RegisterKind::Kv => &["read", "write", "cas", "append"],
        }
    }
}

/// A register value: JSON, compared by its canonical text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Val {
    /// null: the key is absent.
    Absent,
    /// An integer (the common case, kept unboxed).
    Int(i64),
    /// A string (raw contents, so appends can extend it).
    Str(Arc<str>),
    /// Any other JSON value, as canonical JSON text.
    Other(Arc<str>),
}

impl Val {
    /// Converts a JSON value.
    pub fn from_json(v: &Value) -> Val {
        match v {
            Value::Null => Val::Absent,
            Value::String(s) => Val::Str(s.as_str().into()),
            Value::Number(n) if n.is_i64() => Val::Int(n.as_i64().unwrap_or_default()),
            other => {
                let mut text = String::new();
                canonical(other, &mut text);
                Val::Other(text.into())
            }
        }
    }

    /// Converts back to JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Val::Absent => Value::Null,
            Val::Int(i) => Value::from(*i),
            Val::Str(s) => Value::String(s.to_string()),
            Val::Other(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        }
    }
}

/// Writes `v` as JSON with object keys sorted at every level, so that equal
/// values have equal text whatever order their keys came in.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A register operation, prepared for the search.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RegOp {
    /// A read that returned this value.
    Read(Val),
    /// A write of this value.
    Write(Val),
    /// Compare-and-set from the first value to the second.
    Cas(Val, Val),
    /// Append of this string.
    Append(Arc<str>),
}

/// The register model: one register per key, all starting at `initial`.
#[derive(Debug, Clone)]
pub struct RegisterModel {
    /// Which operations are accepted.
    pub kind: RegisterKind,
    /// Every key's value before the first operation.
    pub initial: Val,
    /// Knossos semantics: a read that returned null (nil) constrains
    /// nothing, rather than meaning "absent". Used for EDN histories.
    pub null_read_is_unknown: bool,
}

impl RegisterModel {
    /// A model of `kind` whose registers start at `initial` (JSON null = absent).
    pub fn new(kind: RegisterKind, initial: &Value) -> Self {
        RegisterModel {
            kind,
            initial: Val::from_json(initial),
            null_read_is_unknown: false,
        }
    }
}

impl Model for RegisterModel {
    type State = Val;
    type Op = RegOp;

    fn init(&self) -> Val {
        self.initial.clone()
    }

    fn step(&self, state: &Val, op: &RegOp) -> Option<Val> {
        match op {
            RegOp::Read(v) => (v == state).then(|| state.clone()),
            RegOp::Write(v) => Some(v.clone()),
            RegOp::Cas(from, to) => (from == state).then(|| to.clone()),
            RegOp::Append(s) => match state {
                Val::Absent => Some(Val::Str(s.clone())),
                Val::Str(cur) => Some(Val::Str(format!("{cur}{s}").into())),
                _ => None,
            },
        }
    }

    fn partition(&self, op: &Operation) -> String {
        op.key.clone().unwrap_or_default()
    }

    fn prepare(&self, op: &Operation) -> Result<Option<RegOp>, String> {
        let accepts = self.kind.accepts();
        if !accepts.contains(&op.f.as_str()) {
            return Err(format!(
                "unknown f {:?} for the {} model (expected {})",
                op.f,
                self.kind.name(),
                accepts.join(", ")
            ));
        }
        let v = op.value();
        Ok(Some(match op.f.as_str() {
            "read" => {
                if op.outcome == Outcome::Ok && v.is_null() && self.null_read_is_unknown {
                    return Ok(None);
                } else if op.outcome == Outcome::Ok {
                    RegOp::Read(Val::from_json(v))
                } else {
                    RegOp::Read(Val::Absent)
                }
            }
            "write" => RegOp::Write(Val::from_json(v)),
            "cas" => match v.as_array().map(|a| a.as_slice()) {
                Some([from, to]) => RegOp::Cas(Val::from_json(from), Val::from_json(to)),
                _ => return Err(format!("cas needs a value [expected, new], found {v}")),
            },
            _ => match v {
                Value::String(s) => RegOp::Append(s.as_str().into()),
                _ => return Err(format!("append needs a string value, found {v}")),
            },
        }))
    }

    fn reads_state(&self, op: &RegOp) -> bool {
        !matches!(op, RegOp::Write(_))
    }

    fn is_read_only(&self, op: &RegOp) -> bool {
        matches!(op, RegOp::Read(_))
    }

    /// An uncertain write (or cas) of a value that no kept operation ever
    /// observes (no read returned it, no cas expects it) is never needed:
    /// in any linearization that includes it, the next operation touching
    /// the register must overwrite it, so removing it changes no result.
    /// Appends read what came before, so a key with appends keeps everything.
    fn redundant(&self, ops: &[RegOp], uncertain: &[bool]) -> Vec<bool> {
        let mut out = vec![false; ops.len()];
        if ops.iter().any(|o| matches!(o, RegOp::Append(_))) {
            return out;
        }
        let mut observed: HashSet<&Val> = HashSet::new();
        for (op, &u) in ops.iter().zip(uncertain) {
            match op {
                RegOp::Read(v) if !u => {
                    observed.insert(v);
                }
                RegOp::Cas(from, _) => {
                    observed.insert(from);
                }
                _ => {}
            }
        }
        for (i, (op, &u)) in ops.iter().zip(uncertain).enumerate() {
            if !u {
                continue;
            }
            out[i] = match op {
                RegOp::Write(v) | RegOp::Cas(_, v) => !observed.contains(v),
                _ => false,
            };
        }
        out
    }

    /// A certain read (or cas) that needs value `v` when no linearization
    /// can give it `v`: nothing that may have happened wrote `v` before the
    /// operation returned; or `v` was certainly overwritten before it began
    /// (every certain write of `v` returned before some certain write of
    /// another value was invoked, that one returned before the operation was
    /// invoked, and no uncertain write of `v` was invoked before the
    /// operation returned). The second is the stale read. Appends build
    /// values from pieces, so a key with appends is skipped.
    fn impossible(&self, ops: &[SearchOp<RegOp>]) -> Option<(usize, String)> {
        if append_only(ops) {
            return unordered_reads(ops, &self.initial);
        }
        if ops.iter().any(|o| matches!(o.op, RegOp::Append(_))) {
            return None;
        }
        /// The earliest return of a setter, and its value.
        type Earliest<'a> = Option<(usize, &'a Val)>;
        /// What is known of the writes of one value.
        struct Writes {
            first_call: usize,
            /// Latest return of a certain write; -1 for the initial value.
            last_certain_ret: Option<i64>,
            first_uncertain_call: usize,
        }
        let mut writes: HashMap<&Val, Writes> = HashMap::new();
        writes.insert(
            &self.initial,
            Writes {
                first_call: 0,
                last_certain_ret: Some(-1),
                first_uncertain_call: usize::MAX,
            },
        );
        // Certain operations that set the state: (call, ret, value).
        let mut setters: Vec<(usize, usize, &Val)> = Vec::new();
        for o in ops {
            if let RegOp::Write(v) | RegOp::Cas(_, v) = &o.op {
                let w = writes.entry(v).or_insert(Writes {
                    first_call: usize::MAX,
                    last_certain_ret: None,
                    first_uncertain_call: usize::MAX,
                });
                w.first_call = w.first_call.min(o.call);
                match o.ret {
                    Some(r) => {
                        w.last_certain_ret =
                            Some(w.last_certain_ret.map_or(r as i64, |x| x.max(r as i64)));
                        setters.push((o.call, r, v));
                    }
                    None => w.first_uncertain_call = w.first_uncertain_call.min(o.call),
                }
            }
        }
        setters.sort_by_key(|s| s.0);
        // For each suffix of the setters (by call): the earliest return, and
        // the earliest return among those of another value than that one.
        let mut best: Vec<(Earliest, Earliest)> = vec![(None, None); setters.len() + 1];
        for i in (0..setters.len()).rev() {
            let (_, ret, v) = setters[i];
            let (mut b1, mut b2) = best[i + 1];
            if b1.is_none_or(|(r, _)| ret < r) {
                if b1.is_some_and(|(_, bv)| bv != v) {
                    b2 = b1;
                } else if b2.is_some_and(|(_, bv)| bv == v) {
                    b2 = None;
                }
                b1 = Some((ret, v));
            } else if b1.is_some_and(|(_, bv)| bv != v) && b2.is_none_or(|(r, _)| ret < r) {
                b2 = Some((ret, v));
            }
            best[i] = (b1, b2);
        }
        // The earliest return of a setter of a value other than `v` among
        // those invoked after `after`.
        let overwritten_by = |v: &Val, after: i64| -> Option<usize> {
            let i = setters.partition_point(|s| (s.0 as i64) <= after);
            let (b1, b2) = best[i];
            match b1 {
                Some((r, bv)) if bv != v => Some(r),
                _ => b2.map(|(r, _)| r),
            }
        };
        ops.iter()
            .enumerate()
            .filter_map(|(i, o)| {
                let ret = o.ret?;
                let needed = match &o.op {
                    RegOp::Read(v) | RegOp::Cas(v, _) => v,
                    _ => return None,
                };
                let why = match writes.get(needed) {
                    None => format!("nothing ever wrote {}", needed.to_json()),
                    Some(w) if w.first_call > ret => format!(
                        "{} was first written after this operation returned",
                        needed.to_json()
                    ),
                    Some(w) => {
                        let last = w.last_certain_ret?;
                        if w.first_uncertain_call < ret {
                            return None;
                        }
                        let over = overwritten_by(needed, last)?;
                        if over >= o.call {
                            return None;
                        }
                        format!(
                            "{} was overwritten before this operation began: every write of it \
                             had returned before another value was written, and that write \
                             returned before this operation was invoked (a stale read)",
                            needed.to_json()
                        )
                    }
                };
                Some((ret, i, why))
            })
            .min_by_key(|(ret, _, _)| *ret)
            .map(|(_, i, why)| (i, why))
    }

    fn describe_state(&self, state: &Val) -> Value {
        state.to_json()
    }

    /// On a key with only appends and reads, the certain reads, shortest
    /// value first.
    ///
    /// Why pruning with them is sound: on such a key every step either
    /// leaves the state as it is (a read) or appends to it, so the text of
    /// the state only ever grows by extension (and a non-string state, which
    /// no append accepts, never changes). A certain read must be linearized
    /// at some point after the current one, where the state extends the
    /// current state; so if its value does not extend the current state
    /// (see [`RegisterModel::reachable`]), no continuation linearizes it and
    /// the configuration can be dropped. Checking any one pending read is
    /// sound; the shortest pending one is the tightest when the reads form
    /// a chain, as they do on every linearizable key.
    ///
    /// This is what keeps many concurrent appends cheap: each order of them
    /// is a distinct state, so memoisation does not merge them, but all
    /// orders except the one the next read shows are cut at once.
    fn watched(&self, ops: &[SearchOp<RegOp>]) -> Vec<usize> {
        if !append_only(ops) {
            return Vec::new();
        }
        let mut reads: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i].ret.is_some() && matches!(ops[i].op, RegOp::Read(_)))
            .collect();
        reads.sort_by_key(|&i| match &ops[i].op {
            RegOp::Read(v) => text(v).map_or(0, str::len),
            _ => 0,
        });
        reads
    }

    /// For a read on an append-only key: whether its value extends the
    /// state's text (or, for a state or value that is not a string, whether
    /// they are equal, since no append changes a non-string state and no
    /// append makes one).
    fn reachable(&self, state: &Val, op: &RegOp) -> bool {
        match op {
            RegOp::Read(v) => match (text(state), text(v)) {
                (Some(now), Some(then)) => then.starts_with(now),
                _ => state == v,
            },
            _ => true,
        }
    }
}

/// The text an append extends: "" for absent, the string itself; `None`
/// for a value no append accepts.
fn text(v: &Val) -> Option<&str> {
    match v {
        Val::Absent => Some(""),
        Val::Str(s) => Some(s),
        _ => None,
    }
}

/// Whether a key's operations are only appends and reads (its state only
/// grows by extension).
fn append_only(ops: &[SearchOp<RegOp>]) -> bool {
    ops.iter().any(|o| matches!(o.op, RegOp::Append(_)))
        && ops
            .iter()
            .all(|o| matches!(o.op, RegOp::Append(_) | RegOp::Read(_)))
}

/// On an append-only key, the first certain read (by return) whose value is
/// neither a prefix nor an extension of an earlier-returning certain read's
/// value. Both reads must be linearized, and the state only grows by
/// extension, so the two values would both lie on one chain of prefixes:
/// no order explains both. (Keeping the longest value so far suffices: if
/// the new value is comparable with it, it is comparable with every value
/// before, since those are all prefixes of the longest.)
///
/// Also a certain read of a value that is not a string (nor absent) and not
/// the initial value: appends only make strings.
fn unordered_reads(ops: &[SearchOp<RegOp>], initial: &Val) -> Option<(usize, String)> {
    let not_text = ops
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match (&o.op, o.ret) {
            (RegOp::Read(v), Some(r)) if text(v).is_none() && v != initial => Some((r, i)),
            _ => None,
        })
        .min()
        .map(|(r, i)| {
            (
                r,
                i,
                "the key only ever sees appends, which make strings, and this value is \
                 not a string nor the initial value"
                    .to_string(),
            )
        });
    let unordered = unordered_text_reads(ops).map(|(i, why)| (ops[i].ret.unwrap_or(0), i, why));
    [not_text, unordered]
        .into_iter()
        .flatten()
        .min_by_key(|&(r, i, _)| (r, i))
        .map(|(_, i, why)| (i, why))
}

fn unordered_text_reads(ops: &[SearchOp<RegOp>]) -> Option<(usize, String)> {
    let mut reads: Vec<(usize, usize, &str)> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match (&o.op, o.ret) {
            (RegOp::Read(v), Some(r)) => text(v).map(|t| (r, i, t)),
            _ => None,
        })
        .collect();
    reads.sort_by_key(|&(r, i, _)| (r, i));
    let mut longest: Option<(usize, &str)> = None;
    for &(_, i, t) in &reads {
        match longest {
            None => longest = Some((i, t)),
            Some((_, l)) if t.starts_with(l) => longest = Some((i, t)),
            Some((_, l)) if l.starts_with(t) => {}
            Some((j, l)) => {
                return Some((
                    i,
                    format!(
                        "it read {:?} but an earlier-returning read (invoked at event position {}) \
                         saw {:?}; neither is a prefix of the other, and appends only extend \
                         the value, so no order explains both",
                        t, ops[j].call, l
                    ),
                ))
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_json_values_are_equal_whatever_their_key_order() {
        let a: Value = serde_json::from_str(r#"{"b":[1,{"y":2,"x":1}],"a":null}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":null,"b":[1,{"x":1,"y":2}]}"#).unwrap();
        assert_eq!(Val::from_json(&a), Val::from_json(&b));
        assert_ne!(Val::from_json(&json!(1)), Val::from_json(&json!("1")));
        assert_eq!(Val::from_json(&a).to_json(), a);
    }

    #[test]
    fn uncertain_writes_nobody_observes_are_redundant() {
        let m = RegisterModel::new(RegisterKind::CasRegister, &Value::Null);
        let ops = [
            RegOp::Write(Val::Int(1)),
            RegOp::Write(Val::Int(2)),
            RegOp::Read(Val::Int(1)),
            RegOp::Cas(Val::Int(3), Val::Int(4)),
            RegOp::Write(Val::Int(3)),
        ];
        let uncertain = [true, true, false, true, true];
        // 1 is read, 3 is expected by a cas; 2 and 4 are never observed.
        assert_eq!(
            m.redundant(&ops, &uncertain),
            vec![false, true, false, true, false]
        );
    }
}
