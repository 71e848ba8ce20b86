//! Import of Jepsen EDN histories (as in Knossos' test data).
//!
//! A history is a vector or list of operation maps, or just a sequence of
//! maps, one per line, as Jepsen's `history.edn` is written. Each map needs
//! `:process`, `:type` and `:f`; `:value`, `:time`, `:key` and `:error` are
//! optional. An event's index is its position in the file.

use crate::edn::{Edn, Reader};
use crate::history::{Event, EventType, History, Process, SourcePos};
use crate::HistoryError;

/// Reads a Jepsen EDN history from text.
pub fn read_edn(text: &str) -> Result<History, HistoryError> {
    let mut r = Reader::new(text);
    let syntax = |e: crate::edn::EdnError, index: usize| {
        HistoryError::at(
            SourcePos::Form {
                index,
                line: e.line,
            },
            format!("bad EDN: {}", e.message),
        )
    };
    let mut history = History::default();
    let close = match r.skip_ws() {
        None => return Ok(history),
        Some(b'[') => Some(b']'),
        Some(b'(') => Some(b')'),
        Some(b'{') => None,
        Some(c) => {
            return Err(HistoryError::at(
                SourcePos::Form {
                    index: 0,
                    line: r.line(),
                },
                format!(
                    "an EDN history is a vector or list of maps, found '{}'",
                    c as char
                ),
            ))
        }
    };
    if let Some(c) = close {
        r.eat(if c == b']' { b'[' } else { b'(' });
    }
    loop {
        let index = history.events.len();
        let next = r.skip_ws();
        let line = r.line();
        let pos = SourcePos::Form { index, line };
        match (next, close) {
            (None, Some(c)) => {
                return Err(HistoryError::at(
                    pos,
                    format!("the history ends without its closing '{}'", c as char),
                ))
            }
            (None, None) => break,
            (Some(c), Some(close)) if c == close => {
                r.eat(close);
                if let Some(c) = r.skip_ws() {
                    return Err(HistoryError::at(
                        SourcePos::Form {
                            index,
                            line: r.line(),
                        },
                        format!("unexpected '{}' after the end of the history", c as char),
                    ));
                }
                break;
            }
            _ => {}
        }
        let form = r.read().map_err(|e| syntax(e, index))?;
        let Some(form) = form else { break };
        let event = event_from_edn(&form, index as u64).map_err(|m| HistoryError::at(pos, m))?;
        history.events.push(event);
        history.positions.push(pos);
    }
    Ok(history)
}

/// Reads a Jepsen EDN history file.
pub fn read_edn_file(path: &std::path::Path) -> Result<History, HistoryError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| HistoryError::general(format!("cannot read {}: {e}", path.display())))?;
    read_edn(&text)
}

fn name_of(e: &Edn) -> Option<String> {
    match e {
        Edn::Keyword(s) | Edn::Symbol(s) | Edn::Str(s) => Some(s.clone()),
        _ => None,
    }
}

/// Converts one operation map into an event.
fn event_from_edn(form: &Edn, index: u64) -> Result<Event, String> {
    if !matches!(form, Edn::Map(_)) {
        return Err(format!("an operation must be a map, found {}", form.kind()));
    }
    let process = match form.get("process") {
        Some(Edn::Int(n)) if *n >= 0 => Process::Client(*n as u64),
        Some(Edn::Int(n)) => return Err(format!(":process {n} is negative")),
        Some(e @ (Edn::Keyword(_) | Edn::Symbol(_) | Edn::Str(_))) => {
            Process::Named(name_of(e).unwrap_or_default())
        }
        Some(e) => {
            return Err(format!(
                ":process must be an integer or a keyword, found {}",
                e.kind()
            ))
        }
        None => return Err("missing :process".into()),
    };
    let kind = match form.get("type").and_then(name_of).as_deref() {
        Some("invoke") => EventType::Invoke,
        Some("ok") => EventType::Ok,
        Some("fail") => EventType::Fail,
        Some("info") => EventType::Info,
        Some(other) => {
            return Err(format!(
                "unknown :type {other} (expected invoke, ok, fail or info)"
            ))
        }
        None => return Err("missing or malformed :type".into()),
    };
    let f = match form.get("f") {
        Some(e) => name_of(e).ok_or_else(|| format!(":f must be a keyword, found {}", e.kind()))?,
        None => return Err("missing :f".into()),
    };
    let time = match form.get("time") {
        Some(Edn::Int(t)) if *t >= 0 => *t as u64,
        Some(Edn::Nil) | None => index,
        Some(e) => {
            return Err(format!(
                ":time must be a non-negative integer, found {}",
                e.kind()
            ))
        }
    };
    let key = match form.get("key") {
        None | Some(Edn::Nil) => None,
        Some(Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s)) => Some(s.clone()),
        Some(Edn::Int(i)) => Some(i.to_string()),
        Some(e) => {
            return Err(format!(
                ":key must be a string or an integer, found {}",
                e.kind()
            ))
        }
    };
    let error = match form.get("error") {
        None | Some(Edn::Nil) => None,
        Some(Edn::Str(s)) => Some(s.clone()),
        Some(e) => Some(e.to_json().to_string()),
    };
    Ok(Event {
        index,
        time,
        process,
        kind,
        f,
        key,
        value: form.get("value").map(Edn::to_json).unwrap_or_default(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_sequence_of_maps_is_a_history_and_index_stands_in_for_time() {
        let h = read_edn(
            "{:process 0, :type :invoke, :f :write, :value 1}\n{:process :nemesis, :type :info, :f :start, :value nil}\n{:process 0, :type :ok, :f :write, :value 1, :time 99}",
        )
        .unwrap();
        assert_eq!(h.events.len(), 3);
        assert_eq!(h.events[1].process, Process::nemesis());
        assert_eq!((h.events[0].time, h.events[2].time), (0, 99));
        assert_eq!(h.positions[2], SourcePos::Form { index: 2, line: 3 });
    }

    #[test]
    fn errors_are_values_of_the_wrong_shape_named_by_form() {
        let e = read_edn(
            "[{:process 0, :type :invoke, :f :read}\n {:process -1, :type :ok, :f :read}]",
        )
        .unwrap_err();
        assert_eq!(e.pos, Some(SourcePos::Form { index: 1, line: 2 }));
        assert!(e.message.contains("negative"), "{e}");
        let e = read_edn("[{:process 0, :type :invoke, :f [1]}]").unwrap_err();
        assert!(e.message.contains(":f must be a keyword"), "{e}");
        let e = read_edn("[1 2] 3").unwrap_err();
        assert!(e.message.contains("must be a map"), "{e}");
    }
}
