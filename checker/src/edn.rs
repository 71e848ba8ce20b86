//! A small EDN reader: the subset Jepsen histories use.
//!
//! Vectors, lists, maps, sets, keywords, symbols, integers, floats, strings,
//! characters, booleans and nil. Tagged literals (`#inst "..."`,
//! `#jepsen.history.Op{...}`) keep their form and drop the tag; `#_` discards
//! the next form; `;` starts a comment.

/// One EDN value.
#[derive(Debug, Clone, PartialEq)]
pub enum Edn {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A floating-point number (also big integers and decimals that do not fit).
    Float(f64),
    /// A string.
    Str(String),
    /// A character literal such as `\a`.
    Char(char),
    /// A keyword, without its leading colon.
    Keyword(String),
    /// A symbol.
    Symbol(String),
    /// `[...]`.
    Vector(Vec<Edn>),
    /// `(...)`.
    List(Vec<Edn>),
    /// `#{...}`.
    Set(Vec<Edn>),
    /// `{...}`, in source order.
    Map(Vec<(Edn, Edn)>),
}

/// A syntax error, with the line it was found on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdnError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for EdnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for EdnError {}

/// Nesting deeper than this is refused, so that hostile input cannot
/// overflow the stack.
const MAX_DEPTH: usize = 256;

/// Reads EDN text form by form, tracking the line.
pub struct Reader<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `src`.
    pub fn new(src: &'a str) -> Self {
        Reader {
            src: src.as_bytes(),
            pos: 0,
            line: 1,
        }
    }

    /// The current line (1-based).
    pub fn line(&self) -> usize {
        self.line
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, EdnError> {
        Err(EdnError {
            line: self.line,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// Skips whitespace, commas and comments; returns the next byte, if any.
    pub fn skip_ws(&mut self) -> Option<u8> {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                    self.bump();
                }
                b';' => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                _ => return Some(c),
            }
        }
        None
    }

    /// Consumes `c` if it is the next significant byte.
    pub fn eat(&mut self, c: u8) -> bool {
        if self.skip_ws() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// Reads the next form; `Ok(None)` at the end of input.
    pub fn read(&mut self) -> Result<Option<Edn>, EdnError> {
        if self.skip_ws().is_none() {
            return Ok(None);
        }
        self.form(0).map(Some)
    }

    fn form(&mut self, depth: usize) -> Result<Edn, EdnError> {
        if depth > MAX_DEPTH {
            return self.err("forms nested too deeply");
        }
        let Some(c) = self.skip_ws() else {
            return self.err("unexpected end of input");
        };
        match c {
            b'[' => {
                self.bump();
                Ok(Edn::Vector(self.seq(b']', depth)?))
            }
            b'(' => {
                self.bump();
                Ok(Edn::List(self.seq(b')', depth)?))
            }
            b'{' => {
                self.bump();
                self.map(depth)
            }
            b'"' => {
                self.bump();
                self.string().map(Edn::Str)
            }
            b'\\' => {
                self.bump();
                self.character()
            }
            b'#' => {
                self.bump();
                match self.peek() {
                    Some(b'{') => {
                        self.bump();
                        Ok(Edn::Set(self.seq(b'}', depth)?))
                    }
                    Some(b'_') => {
                        self.bump();
                        self.form(depth + 1)?;
                        self.form(depth)
                    }
                    Some(c) if c.is_ascii_alphabetic() => {
                        // A tagged literal: keep the value, drop the tag.
                        self.token();
                        self.form(depth + 1)
                    }
                    _ => self.err("unsupported dispatch after '#'"),
                }
            }
            b']' | b')' | b'}' => self.err(format!("unexpected '{}'", c as char)),
            b':' => {
                self.bump();
                let t = self.token();
                if t.is_empty() {
                    return self.err("empty keyword");
                }
                Ok(Edn::Keyword(t))
            }
            _ => {
                let t = self.token();
                if t.is_empty() {
                    return self.err(format!("unexpected character '{}'", c as char));
                }
                self.atom(t)
            }
        }
    }

    fn seq(&mut self, close: u8, depth: usize) -> Result<Vec<Edn>, EdnError> {
        let mut items = Vec::new();
        loop {
            match self.skip_ws() {
                None => return self.err(format!("missing '{}'", close as char)),
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(_) => items.push(self.form(depth + 1)?),
            }
        }
    }

    fn map(&mut self, depth: usize) -> Result<Edn, EdnError> {
        let items = self.seq(b'}', depth)?;
        if items.len() % 2 != 0 {
            return self.err("a map needs an even number of forms");
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            pairs.push((k, v));
        }
        Ok(Edn::Map(pairs))
    }

    fn token(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace()
                || matches!(
                    c,
                    b',' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';'
                )
            {
                break;
            }
            self.bump();
        }
        String::from_utf8_lossy(&self.src[start..self.pos]).into_owned()
    }

    fn string(&mut self) -> Result<String, EdnError> {
        let mut out = Vec::new();
        loop {
            let Some(c) = self.bump() else {
                return self.err("unterminated string");
            };
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.bump() else {
                        return self.err("unterminated string");
                    };
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'u' => {
                            let hex: String =
                                (0..4).filter_map(|_| self.bump().map(char::from)).collect();
                            let Some(ch) =
                                u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
                            else {
                                return self.err(format!("bad unicode escape \\u{hex}"));
                            };
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return self.err(format!("bad escape \\{}", e as char)),
                    }
                }
                _ => out.push(c),
            }
        }
        match String::from_utf8(out) {
            Ok(s) => Ok(s),
            Err(_) => self.err("string is not valid UTF-8"),
        }
    }

    fn character(&mut self) -> Result<Edn, EdnError> {
        // The first character is taken even if it is a delimiter (`\(`).
        let start = self.pos;
        if self.bump().is_none() {
            return self.err("unterminated character literal");
        }
        let rest = self.token();
        let first = String::from_utf8_lossy(&self.src[start..start + 1]).into_owned();
        let name = first + &rest;
        let ch = match name.as_str() {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            "backspace" => '\u{8}',
            "formfeed" => '\u{c}',
            s if s.chars().count() == 1 => s.chars().next().unwrap_or(' '),
            s if s.starts_with('u') && s.len() == 5 => {
                match u32::from_str_radix(&s[1..], 16)
                    .ok()
                    .and_then(char::from_u32)
                {
                    Some(c) => c,
                    None => return self.err(format!("bad character literal \\{s}")),
                }
            }
            s => return self.err(format!("bad character literal \\{s}")),
        };
        Ok(Edn::Char(ch))
    }

    fn atom(&self, t: String) -> Result<Edn, EdnError> {
        match t.as_str() {
            "nil" => return Ok(Edn::Nil),
            "true" => return Ok(Edn::Bool(true)),
            "false" => return Ok(Edn::Bool(false)),
            _ => {}
        }
        let b = t.as_bytes();
        let numeric = b[0].is_ascii_digit()
            || ((b[0] == b'-' || b[0] == b'+') && b.len() > 1 && b[1].is_ascii_digit());
        if !numeric {
            return Ok(Edn::Symbol(t));
        }
        let body = t.strip_suffix('N').unwrap_or(&t);
        if let Ok(i) = body.parse::<i64>() {
            return Ok(Edn::Int(i));
        }
        let body = t.strip_suffix('M').unwrap_or(body);
        if let Ok(f) = body.parse::<f64>() {
            return Ok(Edn::Float(f));
        }
        if let Some((n, d)) = body.split_once('/') {
            if let (Ok(n), Ok(d)) = (n.parse::<f64>(), d.parse::<f64>()) {
                return Ok(Edn::Float(n / d));
            }
        }
        self.err(format!("bad number {t}"))
    }
}

impl Edn {
    /// Looks up a keyword key in a map.
    pub fn get(&self, key: &str) -> Option<&Edn> {
        match self {
            Edn::Map(pairs) => pairs.iter().find_map(|(k, v)| match k {
                Edn::Keyword(k) if k == key => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    /// Converts to JSON: keywords and symbols become strings, every
    /// collection an array, map keys their printed name.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(*b),
            Edn::Int(i) => Value::from(*i),
            Edn::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Edn::Str(s) => Value::String(s.clone()),
            Edn::Char(c) => Value::String(c.to_string()),
            Edn::Keyword(k) | Edn::Symbol(k) => Value::String(k.clone()),
            Edn::Vector(v) | Edn::List(v) | Edn::Set(v) => {
                Value::Array(v.iter().map(Edn::to_json).collect())
            }
            Edn::Map(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => s.clone(),
                            other => other.to_json().to_string(),
                        };
                        (key, v.to_json())
                    })
                    .collect(),
            ),
        }
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Edn::Nil => "nil",
            Edn::Bool(_) => "a boolean",
            Edn::Int(_) => "an integer",
            Edn::Float(_) => "a float",
            Edn::Str(_) => "a string",
            Edn::Char(_) => "a character",
            Edn::Keyword(_) => "a keyword",
            Edn::Symbol(_) => "a symbol",
            Edn::Vector(_) => "a vector",
            Edn::List(_) => "a list",
            Edn::Set(_) => "a set",
            Edn::Map(_) => "a map",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str) -> Result<Vec<Edn>, EdnError> {
        let mut r = Reader::new(text);
        let mut out = Vec::new();
        while let Some(f) = r.read()? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn reads_the_subset_jepsen_histories_use() {
        let forms = read_all(
            "; a comment\n{:a 1, :b -2.5, :c \"x\\\"y\", :d nil, :e true, :f [1 (2 3) #{4}], :g sym, :h \\a, :i 12N}",
        )
        .unwrap();
        let m = &forms[0];
        assert_eq!(m.get("a"), Some(&Edn::Int(1)));
        assert_eq!(m.get("b"), Some(&Edn::Float(-2.5)));
        assert_eq!(m.get("c"), Some(&Edn::Str("x\"y".into())));
        assert_eq!(m.get("d"), Some(&Edn::Nil));
        assert_eq!(m.get("e"), Some(&Edn::Bool(true)));
        assert_eq!(
            m.get("f"),
            Some(&Edn::Vector(vec![
                Edn::Int(1),
                Edn::List(vec![Edn::Int(2), Edn::Int(3)]),
                Edn::Set(vec![Edn::Int(4)])
            ]))
        );
        assert_eq!(m.get("g"), Some(&Edn::Symbol("sym".into())));
        assert_eq!(m.get("h"), Some(&Edn::Char('a')));
        assert_eq!(m.get("i"), Some(&Edn::Int(12)));
    }

    #[test]
    fn tagged_literals_keep_their_value_and_discard_drops_a_form() {
        let forms = read_all("#inst \"2026-11-30\" #_ 99 #jepsen.history.Op{:type :ok}").unwrap();
        assert_eq!(forms[0], Edn::Str("2026-11-30".into()));
        assert_eq!(forms[1].get("type"), Some(&Edn::Keyword("ok".into())));
        assert_eq!(forms.len(), 2);
    }

    #[test]
    fn errors_name_the_line() {
        let e = read_all("[1 2\n 3\n {:a}]").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("even number"), "{e}");
        let e = read_all("[1 2\n\n").unwrap_err();
        assert!(e.message.contains("missing ']'"), "{e}");
        let e = read_all("(1 ]").unwrap_err();
        assert!(e.message.contains("unexpected ']'"), "{e}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = "[".repeat(100_000);
        let e = read_all(&text).unwrap_err();
        assert!(e.message.contains("nested too deeply"), "{e}");
    }
}
