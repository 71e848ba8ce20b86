//! Storage behind [`crate::compact`]: interned strings and JSON values kept
//! as 8-byte handles, so that a history of a million operations does not
//! hold a million `String`s and `serde_json::Value`s.
//!
//! A parsed `Event` costs about 200 bytes (its struct, a `String` for `f`,
//! one for the key, a `Value`, often an error); most of that repeats: `f`
//! is one of a few names, keys one of a few thousand, values small
//! integers. Here a name is a `u32`, an integer is stored inside its
//! handle, and only other values take room, once, as bytes in one arena.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Distinct strings, each stored once, named by `u32` ids from 1 (0 is
/// "none", so an optional string fits a `u32`).
#[derive(Debug, Default, Clone)]
pub struct Interner {
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
}

impl Interner {
    /// The id of `s`, adding it if new.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let name: Arc<str> = s.into();
        self.names.push(name.clone());
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 distinct strings");
        self.ids.insert(name, id);
        id
    }

    /// The id of an optional string (0 for none).
    pub fn intern_opt(&mut self, s: Option<&str>) -> u32 {
        s.map_or(0, |s| self.intern(s))
    }

    /// The id of `s` if it was interned.
    pub fn find(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// The string of `id` ("" for 0).
    pub fn get(&self, id: u32) -> &str {
        match id {
            0 => "",
            id => &self.names[id as usize - 1],
        }
    }

    /// The string of `id`, `None` for 0.
    pub fn get_opt(&self, id: u32) -> Option<&str> {
        (id != 0).then(|| self.get(id))
    }
}

/// A JSON value in 8 bytes: null, an integer of up to 62 bits inline, or
/// the place of its bytes in a [`ValueStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ValRef(u64);

const TAG_BITS: u32 = 2;
const TAG_MASK: u64 = 0b11;
/// Low bits of a handle: what it holds.
const TAG_INT: u64 = 0b01;
const TAG_STR: u64 = 0b10;
const TAG_JSON: u64 = 0b11;

/// JSON values as bytes in one growing arena: a string's contents, or any
/// other value's JSON text (parsed back exactly: serde_json prints numbers
/// so that they read back the same). Each entry is a LEB128 length, then
/// the bytes.
#[derive(Debug, Default, Clone)]
pub struct ValueStore {
    bytes: Vec<u8>,
}

impl ValueStore {
    /// Stores `v` (nothing for null and most integers).
    pub fn put(&mut self, v: &Value) -> ValRef {
        match v {
            Value::Null => ValRef(0),
            Value::Number(n) => match n.as_i64() {
                Some(i) if fits_inline(i) => ValRef(((i as u64) << TAG_BITS) | TAG_INT),
                _ => self.put_bytes(v.to_string().as_bytes(), TAG_JSON),
            },
            Value::String(s) => self.put_bytes(s.as_bytes(), TAG_STR),
            other => self.put_bytes(other.to_string().as_bytes(), TAG_JSON),
        }
    }

    /// Stores `v`, or returns `same` when `v` is the value `same` holds (a
    /// completion echoing its invoke's value shares its bytes).
    pub fn put_or_reuse(&mut self, v: &Value, same: ValRef) -> ValRef {
        let equal = match (v, same.0 & TAG_MASK) {
            (Value::String(s), TAG_STR) => self.entry(same) == s.as_bytes(),
            (Value::Null, _) | (Value::Number(_), _) => false,
            (_, TAG_JSON) => self.entry(same) == v.to_string().as_bytes(),
            _ => false,
        };
        if equal {
            same
        } else {
            self.put(v)
        }
    }

    fn put_bytes(&mut self, b: &[u8], tag: u64) -> ValRef {
        let at = self.bytes.len() as u64;
        let mut n = b.len();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.bytes.push(byte);
                break;
            }
            self.bytes.push(byte | 0x80);
        }
        self.bytes.extend_from_slice(b);
        ValRef((at << TAG_BITS) | tag)
    }

    fn entry(&self, r: ValRef) -> &[u8] {
        let mut at = (r.0 >> TAG_BITS) as usize;
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let byte = self.bytes[at];
            at += 1;
            len |= ((byte & 0x7f) as usize) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        &self.bytes[at..at + len]
    }

    /// The value `r` holds, as it was stored.
    pub fn get(&self, r: ValRef) -> Value {
        match r.0 & TAG_MASK {
            0 => Value::Null,
            TAG_INT => Value::from((r.0 as i64) >> TAG_BITS),
            TAG_STR => Value::String(String::from_utf8_lossy(self.entry(r)).into_owned()),
            _ => serde_json::from_slice(self.entry(r)).unwrap_or(Value::Null),
        }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Gives back the arena's unused capacity.
    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
    }
}

/// Whether `i` survives a shift left by the tag bits and back.
fn fits_inline(i: i64) -> bool {
    ((i << TAG_BITS) >> TAG_BITS) == i
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_read_back_exactly_as_stored() {
        let mut s = ValueStore::default();
        let values = [
            json!(null),
            json!(0),
            json!(-1),
            json!(5),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(1.5),
            json!(-0.0),
            json!(1e300),
            json!("1,2,3,"),
            json!(""),
            json!("x".repeat(300)),
            json!([1, [2, null]]),
            json!({"b": 1, "a": [true, false]}),
            json!(true),
        ];
        let refs: Vec<ValRef> = values.iter().map(|v| s.put(v)).collect();
        for (v, r) in values.iter().zip(&refs) {
            assert_eq!(&s.get(*r), v);
            // The same representation, not only an equal value.
            assert_eq!(s.get(*r).to_string(), v.to_string());
        }
        assert_eq!(s.put(&json!(7)), ValRef((7 << 2) | TAG_INT), "inline");
    }

    #[test]
    fn an_echoed_value_shares_its_bytes() {
        let mut s = ValueStore::default();
        let a = s.put(&json!("12,"));
        let len = s.len();
        assert_eq!(s.put_or_reuse(&json!("12,"), a), a);
        assert_eq!(s.len(), len);
        let b = s.put_or_reuse(&json!("13,"), a);
        assert_ne!(a, b);
        assert_eq!(s.get(b), json!("13,"));
        let c = s.put(&json!([1, 2]));
        assert_eq!(s.put_or_reuse(&json!([1, 2]), c), c);
        let d = s.put_or_reuse(&json!(3), c);
        assert_eq!(s.get(d), json!(3));
    }

    #[test]
    fn interned_strings_have_one_id_each_and_zero_is_none() {
        let mut i = Interner::default();
        let a = i.intern("read");
        assert_eq!(i.intern("read"), a);
        let b = i.intern("write");
        assert_ne!(a, b);
        assert_eq!((i.get(a), i.get(b), i.get(0)), ("read", "write", ""));
        assert_eq!(i.intern_opt(None), 0);
        assert_eq!(i.get_opt(0), None);
        assert_eq!(i.find("write"), Some(b));
        assert_eq!(i.find("cas"), None);
    }
}
