//! A history held compactly: one 72-byte row per client operation instead
//! of two parsed events and an [`Operation`] (about 1 KiB in all, with the
//! file's bytes, before), so that `raft-checker check` on a long run stays
//! within a small memory budget (README, Performance).
//!
//! Rows are built while the history is read, event by event (see
//! [`crate::stream`]), pairing invokes with completions on the way: this is
//! the one implementation of pairing, [`crate::operation::pair`] and
//! [`crate::operation::pair_lenient`] are built on it. Strings (`f`, keys,
//! errors) are interned and values kept as handles (see
//! [`crate::compact_store`]), and every event and operation can be rebuilt
//! exactly as it was read: the search prepares a key's operations from
//! rows when it takes the key up, and a witness quotes its events whole.
//! Events of named processes (the nemesis, the driver) are few and kept as
//! they are.

use crate::compact_store::{Interner, ValRef, ValueStore};
use crate::history::{Event, EventType, History, Process, SourcePos};
use crate::operation::{Operation, Outcome};
use crate::verdict::completeness::{is_driver_record, DRIVER_RECORD_WITHIN, START_OF_RUN};
use crate::HistoryError;
use std::collections::HashMap;

/// "No position": an operation that never completed.
const NONE: u32 = u32::MAX;
/// The invoke event carried the key.
const KEY_ON_INVOKE: u8 = 1;
/// The completion event carried the key.
const KEY_ON_COMPLETE: u8 = 2;

/// One client operation.
#[derive(Debug, Clone)]
struct Row {
    invoke_time: u64,
    /// Meaningful only when `complete_pos != NONE`.
    complete_time: u64,
    process: u64,
    invoke_value: ValRef,
    complete_value: ValRef,
    invoke_pos: u32,
    complete_pos: u32,
    /// Interned key (0: none); `flags` say which event carried it.
    key: u32,
    invoke_error: u32,
    complete_error: u32,
    f: u32,
    outcome: Outcome,
    flags: u8,
}

/// How invokes and completions are paired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// As the check needs: a malformed history is an error naming the
    /// event ([`crate::operation::pair`]).
    Strict,
    /// As plots of a possibly malformed history need: what cannot be
    /// paired is skipped ([`crate::operation::pair_lenient`]). Completion
    /// events cannot be rebuilt from such a history.
    Lenient,
}

/// What the small checkers and the report need of the whole history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Events (lines) in the history.
    pub events: usize,
    /// Events of client processes.
    pub client_events: usize,
    /// Invoke events of client processes.
    pub invokes: usize,
    /// Every event's time equals its index (Jepsen histories without
    /// times; vacuously true of an empty history).
    pub untimed: bool,
    /// The latest event time.
    pub max_time: Option<u64>,
    /// The driver's start-of-run record is among the first events (see
    /// [`crate::verdict::completeness::is_driver_history`]).
    pub driver_history: bool,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            events: 0,
            client_events: 0,
            invokes: 0,
            untimed: true,
            max_time: None,
            driver_history: false,
        }
    }
}

/// Where events came from in their file, for error messages.
#[derive(Debug, Clone, Default)]
enum Positions {
    /// Not known (events handed over in memory).
    #[default]
    Unknown,
    /// JSON lines: runs `(position, line)` from which each next event is on
    /// the next line (blank lines start a new run).
    Lines(Vec<(u32, u32)>),
    /// Anything else, one per event (EDN histories, small).
    Each(Vec<SourcePos>),
}

/// A history as rows of operations plus the named processes' events.
#[derive(Debug, Clone)]
pub struct CompactHistory {
    pairing: Pairing,
    rows: Vec<Row>,
    named: Vec<Event>,
    strings: Interner,
    values: ValueStore,
    /// Each event's `index` field, once one differs from its position.
    indexes: Option<Vec<u64>>,
    positions: Positions,
    facts: Facts,
}

impl Default for CompactHistory {
    fn default() -> Self {
        Builder::new(Pairing::Strict).finish()
    }
}

/// Builds a [`CompactHistory`] one event at a time.
#[derive(Debug)]
pub struct Builder {
    h: CompactHistory,
    /// Process to its operation in flight (a row).
    in_flight: HashMap<u64, u32>,
}

impl Builder {
    /// An empty history.
    pub fn new(pairing: Pairing) -> Self {
        Builder {
            h: CompactHistory {
                pairing,
                rows: Vec::new(),
                named: Vec::new(),
                strings: Interner::default(),
                values: ValueStore::default(),
                indexes: None,
                positions: Positions::Unknown,
                facts: Facts::default(),
            },
            in_flight: HashMap::new(),
        }
    }

    /// Adds the next event, read from line `line` when known. With
    /// [`Pairing::Strict`], an event that makes the history malformed is an
    /// error naming its position (as [`crate::operation::pair`]'s); the
    /// builder should then be dropped.
    pub fn push(&mut self, e: Event, line: Option<usize>) -> Result<(), HistoryError> {
        let h = &mut self.h;
        let i = h.facts.events;
        let pos = u32::try_from(i)
            .ok()
            .filter(|&p| p != NONE)
            .ok_or_else(|| HistoryError::event(i, "the history has more than 2^32 - 2 events"))?;
        h.note(i, &e, line);
        let p = match &e.process {
            Process::Client(p) => *p,
            // A number in a string is a client that would silently be taken
            // for the nemesis, and its operations left unchecked.
            Process::Named(name)
                if h.pairing == Pairing::Strict && name.trim().parse::<u64>().is_ok() =>
            {
                return Err(HistoryError::event(
                    i,
                    format!("process {name:?} is a string: client processes are numbers"),
                ));
            }
            Process::Named(_) => {
                h.named.push(e);
                return Ok(());
            }
        };
        match h.pairing {
            Pairing::Strict => self.pair_strict(i, pos, p, e),
            Pairing::Lenient => {
                self.pair_lenient(pos, p, e);
                Ok(())
            }
        }
    }

    fn new_row(&mut self, pos: u32, p: u64, e: &Event) -> u32 {
        let h = &mut self.h;
        let row = Row {
            invoke_time: e.time,
            complete_time: 0,
            process: p,
            invoke_value: h.values.put(&e.value),
            complete_value: ValRef::default(),
            invoke_pos: pos,
            complete_pos: NONE,
            key: h.strings.intern_opt(e.key.as_deref()),
            invoke_error: h.strings.intern_opt(e.error.as_deref()),
            complete_error: 0,
            f: h.strings.intern(&e.f),
            outcome: Outcome::Pending,
            flags: if e.key.is_some() { KEY_ON_INVOKE } else { 0 },
        };
        h.rows.push(row);
        (h.rows.len() - 1) as u32
    }

    fn complete(&mut self, id: u32, pos: u32, e: &Event) {
        let h = &mut self.h;
        let row = &mut h.rows[id as usize];
        row.outcome = match e.kind {
            EventType::Ok => Outcome::Ok,
            EventType::Fail => Outcome::Fail,
            _ => Outcome::Info,
        };
        row.complete_pos = pos;
        row.complete_value = h.values.put_or_reuse(&e.value, row.invoke_value);
        row.complete_time = e.time.max(row.invoke_time);
        row.complete_error = h.strings.intern_opt(e.error.as_deref());
    }

    /// [`crate::operation::pair`]'s rules, its messages word for word.
    fn pair_strict(&mut self, i: usize, pos: u32, p: u64, e: Event) -> Result<(), HistoryError> {
        if e.f.is_empty() {
            return Err(HistoryError::event(i, "empty f"));
        }
        if e.kind == EventType::Invoke {
            if let Some(&prev) = self.in_flight.get(&p) {
                let prev = &self.h.rows[prev as usize];
                return Err(HistoryError::event(
                    i,
                    format!(
                        "process {p} invokes {} while its {} (index {}) is still in flight",
                        e.f,
                        self.h.strings.get(prev.f),
                        self.h.index_of(prev.invoke_pos as usize)
                    ),
                ));
            }
            let id = self.new_row(pos, p, &e);
            self.in_flight.insert(p, id);
            return Ok(());
        }
        let Some(id) = self.in_flight.remove(&p) else {
            return Err(HistoryError::event(
                i,
                format!(
                    "{} {} on process {p} without a pending invoke",
                    e.kind.as_str(),
                    e.f
                ),
            ));
        };
        let h = &mut self.h;
        let row = &h.rows[id as usize];
        let op_f = h.strings.get(row.f);
        if op_f != e.f {
            return Err(HistoryError::event(
                i,
                format!(
                    "{} {} on process {p} completes an invoke of {} (index {})",
                    e.kind.as_str(),
                    e.f,
                    op_f,
                    h.index_of(row.invoke_pos as usize)
                ),
            ));
        }
        let op_key = h.strings.get_opt(row.key);
        if let (Some(k), Some(op_key)) = (e.key.as_deref(), op_key) {
            if k != op_key {
                return Err(HistoryError::event(
                    i,
                    format!("completion on key {k:?} for an invoke on key {op_key:?}"),
                ));
            }
        }
        if e.time < row.invoke_time {
            return Err(HistoryError::event(
                i,
                format!(
                    "completes at time {} before its invoke at time {}",
                    e.time, row.invoke_time
                ),
            ));
        }
        if let Some(k) = e.key.as_deref() {
            let key = h.strings.intern(k);
            let row = &mut h.rows[id as usize];
            row.key = key;
            row.flags |= KEY_ON_COMPLETE;
        }
        self.complete(id, pos, &e);
        Ok(())
    }

    /// [`crate::operation::pair_lenient`]'s rules: an invoke replaces
    /// whatever its process had in flight, a completion with nothing in
    /// flight is skipped, the invoke's f and key stand.
    fn pair_lenient(&mut self, pos: u32, p: u64, e: Event) {
        if e.kind == EventType::Invoke {
            let id = self.new_row(pos, p, &e);
            self.in_flight.insert(p, id);
        } else if let Some(id) = self.in_flight.remove(&p) {
            self.complete(id, pos, &e);
        }
    }

    /// `e` with its file position filled in from the events pushed so far.
    pub fn locate(&self, e: HistoryError) -> HistoryError {
        self.h.locate(e)
    }

    /// The history built so far.
    pub fn finish(mut self) -> CompactHistory {
        self.h.rows.shrink_to_fit();
        self.h.values.shrink_to_fit();
        self.h
    }
}

impl CompactHistory {
    /// Events in memory (no file positions), paired as `pairing` says.
    pub fn from_events(events: &[Event], pairing: Pairing) -> Result<Self, HistoryError> {
        let mut b = Builder::new(pairing);
        for e in events {
            b.push(e.clone(), None)?;
        }
        Ok(b.finish())
    }

    /// A history read from a file: errors name its lines or forms.
    pub fn from_history(history: &History, pairing: Pairing) -> Result<Self, HistoryError> {
        let mut h = Self::from_events(&history.events, pairing).map_err(|e| e.locate(history))?;
        h.positions = Positions::Each(history.positions.clone());
        Ok(h)
    }

    /// Notes what [`Facts`], indexes and positions need of event `i`.
    fn note(&mut self, i: usize, e: &Event, line: Option<usize>) {
        let f = &mut self.facts;
        f.events += 1;
        f.untimed &= e.time == e.index;
        f.max_time = Some(f.max_time.map_or(e.time, |t| t.max(e.time)));
        if e.is_client() {
            f.client_events += 1;
            f.invokes += usize::from(e.kind == EventType::Invoke);
        }
        if i < DRIVER_RECORD_WITHIN && is_driver_record(e, START_OF_RUN) {
            f.driver_history = true;
        }
        match &mut self.indexes {
            Some(v) => v.push(e.index),
            None if e.index != i as u64 => {
                let mut v: Vec<u64> = (0..i as u64).collect();
                v.push(e.index);
                self.indexes = Some(v);
            }
            None => {}
        }
        if let Some(line) = line {
            let line = u32::try_from(line).unwrap_or(u32::MAX);
            if let Positions::Unknown = self.positions {
                self.positions = Positions::Lines(Vec::new());
            }
            if let Positions::Lines(runs) = &mut self.positions {
                let follows = runs
                    .last()
                    .is_some_and(|&(p, l)| l as u64 + (i as u64 - p as u64) == line as u64);
                if !follows {
                    runs.push((i as u32, line));
                }
            }
        }
    }

    /// What the small checkers need of the whole history.
    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    /// Events of named processes (nemesis, driver), in history order.
    pub fn named(&self) -> &[Event] {
        &self.named
    }

    /// Client operations.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the history has no client operation.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The `index` field of the event at position `pos`.
    pub fn index_of(&self, pos: usize) -> u64 {
        self.indexes.as_ref().map_or(pos as u64, |v| v[pos])
    }

    /// Where event `i` came from in its file, when known.
    pub fn position(&self, i: usize) -> Option<SourcePos> {
        if i >= self.facts.events {
            return None;
        }
        match &self.positions {
            Positions::Unknown => None,
            Positions::Each(v) => v.get(i).copied(),
            Positions::Lines(runs) => {
                let run = runs
                    .partition_point(|&(p, _)| p as usize <= i)
                    .checked_sub(1)?;
                let (p, l) = runs[run];
                Some(SourcePos::Line(l as usize + (i - p as usize)))
            }
        }
    }

    /// `e` with its file position filled in (as [`HistoryError::locate`]).
    pub fn locate(&self, mut e: HistoryError) -> HistoryError {
        if e.pos.is_none() {
            if let Some(i) = e.event {
                e.pos = self.position(i);
            }
        }
        e
    }

    /// Operation `id` (in invoke order), as [`crate::operation::pair`]
    /// gives it: its key from the invoke, else from the completion.
    pub fn op(&self, id: usize) -> Operation {
        self.operation(id, true)
    }

    /// Operation `id` as [`crate::operation::pair_lenient`] gives it: its
    /// key from the invoke only.
    pub fn op_lenient(&self, id: usize) -> Operation {
        self.operation(id, false)
    }

    fn operation(&self, id: usize, key_from_completion: bool) -> Operation {
        let r = &self.rows[id];
        let completed = r.complete_pos != NONE;
        let keyed =
            r.flags & KEY_ON_INVOKE != 0 || (key_from_completion && r.flags & KEY_ON_COMPLETE != 0);
        Operation {
            process: r.process,
            f: self.strings.get(r.f).to_string(),
            key: keyed.then(|| self.strings.get(r.key).to_string()),
            outcome: r.outcome,
            invoke: r.invoke_pos as usize,
            complete: completed.then_some(r.complete_pos as usize),
            invoke_value: self.values.get(r.invoke_value),
            complete_value: if completed {
                self.values.get(r.complete_value)
            } else {
                serde_json::Value::Null
            },
            invoke_time: r.invoke_time,
            complete_time: completed.then_some(r.complete_time),
        }
    }

    /// Operation `id`'s f.
    pub fn op_f(&self, id: usize) -> &str {
        self.strings.get(self.rows[id].f)
    }

    /// Operation `id`'s f as an id (equal ids, equal names).
    pub fn op_f_id(&self, id: usize) -> u32 {
        self.rows[id].f
    }

    /// The name of an f id.
    pub fn f_name(&self, f: u32) -> &str {
        self.strings.get(f)
    }

    /// How operation `id` ended.
    pub fn op_outcome(&self, id: usize) -> Outcome {
        self.rows[id].outcome
    }

    /// Operation `id`'s invoke time and completion time.
    pub fn op_times(&self, id: usize) -> (u64, Option<u64>) {
        let r = &self.rows[id];
        (
            r.invoke_time,
            (r.complete_pos != NONE).then_some(r.complete_time),
        )
    }

    /// Operation `id`'s key as [`CompactHistory::op_lenient`] has it.
    pub fn op_key_lenient(&self, id: usize) -> Option<&str> {
        let r = &self.rows[id];
        (r.flags & KEY_ON_INVOKE != 0).then(|| self.strings.get(r.key))
    }

    /// Operation `id`'s invoke and completion positions.
    pub fn op_positions(&self, id: usize) -> (usize, Option<usize>) {
        let r = &self.rows[id];
        (
            r.invoke_pos as usize,
            (r.complete_pos != NONE).then_some(r.complete_pos as usize),
        )
    }

    /// The invoke event of operation `id`, exactly as it was read.
    pub fn invoke_event(&self, id: usize) -> Event {
        let r = &self.rows[id];
        Event {
            index: self.index_of(r.invoke_pos as usize),
            time: r.invoke_time,
            process: Process::Client(r.process),
            kind: EventType::Invoke,
            f: self.strings.get(r.f).to_string(),
            key: (r.flags & KEY_ON_INVOKE != 0).then(|| self.strings.get(r.key).to_string()),
            value: self.values.get(r.invoke_value),
            error: self.strings.get_opt(r.invoke_error).map(str::to_string),
        }
    }

    /// The completion event of operation `id`, exactly as it was read
    /// (strict pairing only: a lenient history may have paired events
    /// that disagree).
    pub fn complete_event(&self, id: usize) -> Option<Event> {
        let r = &self.rows[id];
        if r.complete_pos == NONE {
            return None;
        }
        Some(Event {
            index: self.index_of(r.complete_pos as usize),
            time: r.complete_time,
            process: Process::Client(r.process),
            kind: match r.outcome {
                Outcome::Ok => EventType::Ok,
                Outcome::Fail => EventType::Fail,
                Outcome::Info | Outcome::Pending => EventType::Info,
            },
            f: self.strings.get(r.f).to_string(),
            key: (r.flags & KEY_ON_COMPLETE != 0).then(|| self.strings.get(r.key).to_string()),
            value: self.values.get(r.complete_value),
            error: self.strings.get_opt(r.complete_error).map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(
        kind: EventType,
        process: u64,
        f: &str,
        key: Option<&str>,
        value: serde_json::Value,
    ) -> Event {
        Event {
            index: 0,
            time: 0,
            process: Process::Client(process),
            kind,
            f: f.into(),
            key: key.map(String::from),
            value,
            error: None,
        }
    }

    fn numbered(mut events: Vec<Event>) -> Vec<Event> {
        for (i, e) in events.iter_mut().enumerate() {
            e.index = i as u64;
            e.time = 10 * i as u64;
        }
        events
    }

    #[test]
    fn every_event_is_rebuilt_exactly() {
        let mut events = numbered(vec![
            ev(EventType::Invoke, 1, "write", Some("a"), json!(3)),
            ev(EventType::Invoke, 2, "read", None, json!(null)),
            Event {
                process: Process::nemesis(),
                ..ev(EventType::Info, 0, "start-kill", None, json!({"n": [1]}))
            },
            ev(EventType::Ok, 1, "write", None, json!(3)),
            ev(EventType::Info, 2, "read", Some("b"), json!(null)),
            ev(EventType::Invoke, 1, "cas", Some("a"), json!([3, 4.5])),
            ev(EventType::Invoke, 3, "append", Some("c"), json!("1,")),
        ]);
        events[4].error = Some("timeout".into());
        events[6].index = 60;
        let h = CompactHistory::from_events(&events, Pairing::Strict).unwrap();
        let mut rebuilt: Vec<(usize, Event)> = Vec::new();
        for id in 0..h.len() {
            let (i, c) = h.op_positions(id);
            rebuilt.push((i, h.invoke_event(id)));
            if let (Some(c), Some(e)) = (c, h.complete_event(id)) {
                rebuilt.push((c, e));
            }
        }
        rebuilt.push((2, h.named()[0].clone()));
        rebuilt.sort_by_key(|(p, _)| *p);
        let rebuilt: Vec<Event> = rebuilt.into_iter().map(|(_, e)| e).collect();
        assert_eq!(rebuilt, events);
        assert_eq!(h.op(1).key.as_deref(), Some("b"), "the completion's key");
        assert_eq!(h.op_lenient(1).key, None, "the invoke's only");
        assert_eq!(h.index_of(6), 60);
        assert!(!h.facts().untimed);
        assert_eq!(h.facts().events, 7);
        assert_eq!(h.facts().client_events, 6);
        assert_eq!(h.facts().invokes, 4);
    }

    #[test]
    fn line_positions_survive_blank_lines() {
        let events = numbered(vec![
            ev(EventType::Invoke, 1, "read", None, json!(null)),
            ev(EventType::Ok, 1, "read", None, json!(null)),
            ev(EventType::Invoke, 1, "read", None, json!(null)),
        ]);
        let mut b = Builder::new(Pairing::Strict);
        for (e, line) in events.into_iter().zip([1, 2, 5]) {
            b.push(e, Some(line)).unwrap();
        }
        let h = b.finish();
        let lines: Vec<_> = (0..4).map(|i| h.position(i)).collect();
        assert_eq!(
            lines,
            vec![
                Some(SourcePos::Line(1)),
                Some(SourcePos::Line(2)),
                Some(SourcePos::Line(5)),
                None
            ]
        );
    }
}
