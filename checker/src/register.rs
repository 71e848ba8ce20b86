//! Registers: read, write, compare-and-set and append over JSON values, one
//! independent register per key.
//!
//! `read` returns the current value (null means absent); `write` sets it;
//! `cas` with value `[expected, new]` sets it to `new` if it was `expected`
//! (a failed cas is recorded as `fail` and did not happen); `append` with a
//! string value concatenates onto the current string (absent counts as "").

use crate::model::{Model, SearchOp};
use crate::operation::{Operation, Outcome};
use serde_json::Value;
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

    fn describe_state(&self, state: &Val) -> Value {
        state.to_json()
    }
}

/// The text an append extends: "" for absent, the string itself; `None`
/// for a value no append accepts.
pub(crate) fn text(v: &Val) -> Option<&str> {
    match v {
        Val::Absent => Some(""),
        Val::Str(s) => Some(s),
        _ => None,
    }
}

/// Whether a key's operations are only appends and reads (its state only
/// grows by extension).
pub(crate) fn append_only(ops: &[SearchOp<RegOp>]) -> bool {
    ops.iter().any(|o| matches!(o.op, RegOp::Append(_)))
        && ops
            .iter()
            .all(|o| matches!(o.op, RegOp::Append(_) | RegOp::Read(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hints::SearchHints;
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
