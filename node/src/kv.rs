//! The replicated key-value state machine: string keys, byte-string values,
//! `put`, `cas`, `append`, `delete` applied from committed log entries, and
//! client sessions (Raft thesis section 6.3) so that a retried write is
//! applied once.
//!
//! Everything here is deterministic in the entries applied, so every replica
//! reaches the same map and the same session table (session eviction is by
//! log index, not by clock). Commands are encoded by hand in a compact
//! binary form; decoding never panics and rejects trailing bytes.
//!
//! What a server answers for each [`ApplyResult`]: `Applied` and
//! `Duplicate` are OK (with the result); `SessionExpired` is "outcome
//! unknown" (an earlier copy may have been applied); `Malformed` is a bad
//! request (validate with [`Command::decode`] before proposing, so it never
//! reaches the log); `Noop` and `AlreadyApplied` have no client waiting.
//!
//! Sessions start at seq 1 and a client has one write outstanding at a time
//! (thesis section 6.3). A session is created by the client's first write;
//! once the bounded table has evicted any session, an unknown client whose
//! seq is past 1 may be a forgotten one, so it gets `SessionExpired` and
//! must start over with a new client id.
//!
//! ```
//! use raft_node::kv::{ApplyResult, Command, KvStore, Op, Session};
//! let mut kv = KvStore::new();
//! let put = Command {
//!     session: Some(Session { client_id: 9, seq: 1 }),
//!     op: Op::Put { key: "k".into(), value: b"v".to_vec() },
//! }
//! .encode();
//! assert!(matches!(kv.apply(1, &put), ApplyResult::Applied(_)));
//! // The same write committed again (a retry) is not applied twice.
//! assert!(matches!(kv.apply(2, &put), ApplyResult::Duplicate(_)));
//! assert_eq!(kv.get("k"), Some(&b"v"[..]));
//! ```

use crate::state_digest::{SessionView, StateDigest};
use std::collections::{btree_map, BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// How many client sessions a store keeps by default; beyond it the client
/// whose last write is oldest is forgotten. Every replica must use the same
/// bound.
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;

const COMMAND_VERSION: u8 = 1;
const SNAPSHOT_MAGIC: &[u8; 8] = b"RRKVSNP1";

const OP_PUT: u8 = 1;
const OP_CAS: u8 = 2;
const OP_APPEND: u8 = 3;
const OP_DELETE: u8 = 4;

/// A client's session position: its id and the sequence number of this
/// request. A client id of 0 means "no session".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Session {
    /// The client's id, unique per client process (0: no session).
    pub client_id: u64,
    /// The request's sequence number within the session, starting at 1.
    pub seq: u64,
}

/// One write operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Sets `key` to `value`.
    Put {
        /// The key written.
        key: String,
        /// Its new value.
        value: Vec<u8>,
    },
    /// Sets `key` to `new` if its value equals `expected` (`None`: absent).
    Cas {
        /// The key compared and written.
        key: String,
        /// The value it must hold (`None`: it must be absent).
        expected: Option<Vec<u8>>,
        /// Its value if the comparison holds.
        new: Vec<u8>,
    },
    /// Appends `suffix` to the value of `key` (an absent key counts as empty).
    Append {
        /// The key appended to.
        key: String,
        /// The bytes appended.
        suffix: Vec<u8>,
    },
    /// Removes `key`.
    Delete {
        /// The key removed.
        key: String,
    },
}

/// A write as it travels through the log: the operation and the client
/// session it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The client session, for deduplication of retries.
    pub session: Option<Session>,
    /// What to do.
    pub op: Op,
}

/// Why bytes are not a valid command or snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(
    /// What was wrong, with the byte offset where it helps.
    pub String,
);

fn err<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

fn put_varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn put_bytes(b: &mut Vec<u8>, s: &[u8]) {
    put_varint(b, s.len() as u64);
    b.extend_from_slice(s);
}

/// A cursor over bytes being decoded; every read is bounds-checked.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8]) -> Self {
        Cursor { b, at: 0 }
    }

    fn remaining(&self) -> usize {
        self.b.len() - self.at
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let Some(&v) = self.b.get(self.at) else {
            return err(format!("truncated at byte {}", self.at));
        };
        self.at += 1;
        Ok(v)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return err(format!(
                "length {n} at byte {} exceeds the {} bytes left",
                self.at,
                self.remaining()
            ));
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn u64_le(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let byte = self.u8()?;
            if i == 9 && byte > 1 {
                return err("varint overflows 64 bits");
            }
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        err("varint longer than 10 bytes")
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        if n > self.remaining() as u64 {
            return err(format!(
                "length {n} at byte {} exceeds the {} bytes left",
                self.at,
                self.remaining()
            ));
        }
        Ok(n as usize)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let n = self.len()?;
        Ok(self.take(n)?.to_vec())
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let at = self.at;
        String::from_utf8(self.bytes()?)
            .map_err(|_| DecodeError(format!("key at byte {at} is not UTF-8")))
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() != 0 {
            return err(format!("{} trailing bytes", self.remaining()));
        }
        Ok(())
    }
}

impl Command {
    /// The key the command writes.
    pub fn key(&self) -> &str {
        match &self.op {
            Op::Put { key, .. }
            | Op::Cas { key, .. }
            | Op::Append { key, .. }
            | Op::Delete { key } => key,
        }
    }

    /// Appends the binary encoding of the command to `buf`.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.push(COMMAND_VERSION);
        let tag = match self.op {
            Op::Put { .. } => OP_PUT,
            Op::Cas { .. } => OP_CAS,
            Op::Append { .. } => OP_APPEND,
            Op::Delete { .. } => OP_DELETE,
        };
        buf.push(tag);
        match self.session {
            Some(s) => {
                buf.push(1);
                put_varint(buf, s.client_id);
                put_varint(buf, s.seq);
            }
            None => buf.push(0),
        }
        put_bytes(buf, self.key().as_bytes());
        match &self.op {
            Op::Put { value, .. } => put_bytes(buf, value),
            Op::Cas { expected, new, .. } => {
                match expected {
                    Some(e) => {
                        buf.push(1);
                        put_bytes(buf, e);
                    }
                    None => buf.push(0),
                }
                put_bytes(buf, new);
            }
            Op::Append { suffix, .. } => put_bytes(buf, suffix),
            Op::Delete { .. } => {}
        }
    }

    /// The binary encoding of the command (never empty: empty entry data is
    /// a Raft no-op).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(32 + self.key().len());
        self.encode_into(&mut b);
        b
    }

    /// Decodes a command; malformed input is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        let mut c = Cursor::new(bytes);
        let version = c.u8()?;
        if version != COMMAND_VERSION {
            return err(format!("unknown command version {version}"));
        }
        let tag = c.u8()?;
        let session = match c.u8()? {
            0 => None,
            1 => Some(Session {
                client_id: c.varint()?,
                seq: c.varint()?,
            }),
            f => return err(format!("bad session flag {f}")),
        };
        let key = c.string()?;
        let op = match tag {
            OP_PUT => Op::Put {
                key,
                value: c.bytes()?,
            },
            OP_CAS => {
                let expected = match c.u8()? {
                    0 => None,
                    1 => Some(c.bytes()?),
                    f => return err(format!("bad expected-value flag {f}")),
                };
                Op::Cas {
                    key,
                    expected,
                    new: c.bytes()?,
                }
            }
            OP_APPEND => Op::Append {
                key,
                suffix: c.bytes()?,
            },
            OP_DELETE => Op::Delete { key },
            t => return err(format!("unknown operation {t}")),
        };
        c.finish()?;
        Ok(Command { session, op })
    }
}

/// What a write did, as the client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteResult {
    /// The log index at which the write was applied.
    pub index: u64,
    /// For cas: whether the comparison held and `new` was written; true for
    /// the other operations.
    pub succeeded: bool,
    /// The value after applying, for append and for a cas that did not
    /// succeed (`None`: the key is absent); `None` for put, delete and a
    /// successful cas, whose result the client already knows.
    pub value: Option<Vec<u8>>,
}

/// The outcome of applying one committed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyResult {
    /// The entry was empty (a leader's no-op): only the applied index moved.
    Noop,
    /// The write was applied now.
    Applied(WriteResult),
    /// The same (client id, seq) was applied before: it was not applied
    /// again, and this is the result it had then.
    Duplicate(WriteResult),
    /// The session has moved past this sequence number, or was evicted: the
    /// request was not applied now but may have been earlier, so the client
    /// must be told "outcome unknown".
    SessionExpired {
        /// The client whose request was refused.
        client_id: u64,
        /// The refused sequence number.
        seq: u64,
    },
    /// The entry is not a valid command; the state is unchanged (every
    /// replica decides the same).
    Malformed(DecodeError),
    /// The index is at or below the applied index (already in the state,
    /// e.g. replayed after a snapshot restore): ignored.
    AlreadyApplied,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SessionEntry {
    seq: u64,
    /// Index of the write that last updated the session (its age).
    last_index: u64,
    result: WriteResult,
}

impl SessionEntry {
    fn view(&self, client: u64) -> SessionView<'_> {
        SessionView {
            client,
            seq: self.seq,
            last_index: self.last_index,
            result_index: self.result.index,
            succeeded: self.result.succeeded,
            value: self.result.value.as_deref(),
        }
    }
}

/// The key-value state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvStore {
    map: BTreeMap<String, Vec<u8>>,
    applied: u64,
    sessions: HashMap<u64, SessionEntry>,
    /// Sessions by age: last_index -> client_id (one write per index, so the
    /// keys are unique).
    by_age: BTreeMap<u64, u64>,
    max_sessions: usize,
    /// Sessions evicted so far: once any was, an unknown client with a seq
    /// past 1 may be a forgotten one and is refused.
    evictions: u64,
    /// `--bug session-expiry-local-clock` only.
    local_expiry: Option<LocalExpiry>,
    /// Kept in step with `map` and `sessions` by every change to them.
    digest: StateDigest,
}

/// The defect of `--bug session-expiry-local-clock`: a session idle for
/// longer than `idle` by this replica's own clock when it applies the
/// client's next write is forgotten. Replicas apply at different times (a
/// follower catching up applies a burst long after the leader did), so
/// they disagree on which writes they refuse; expiry must be decided by
/// the log (the index here, or a time the leader put in the entry).
#[derive(Debug, Clone, PartialEq, Eq)]
struct LocalExpiry {
    idle: Duration,
    last_seen: HashMap<u64, Instant>,
}

impl Default for KvStore {
    fn default() -> Self {
        KvStore::new()
    }
}

impl KvStore {
    /// An empty store with the default session bound.
    pub fn new() -> Self {
        KvStore::with_max_sessions(DEFAULT_MAX_SESSIONS)
    }

    /// An empty store keeping at most `max_sessions` (at least 1) sessions.
    pub fn with_max_sessions(max_sessions: usize) -> Self {
        KvStore {
            map: BTreeMap::new(),
            applied: 0,
            sessions: HashMap::new(),
            by_age: BTreeMap::new(),
            max_sessions: max_sessions.max(1),
            evictions: 0,
            local_expiry: None,
            digest: StateDigest::default(),
        }
    }

    /// Switches on `--bug session-expiry-local-clock`: sessions idle longer
    /// than `idle` by this replica's clock at apply time are forgotten.
    pub fn expire_sessions_by_local_clock(&mut self, idle: Duration) {
        self.local_expiry = Some(LocalExpiry {
            idle,
            last_seen: HashMap::new(),
        });
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.map.get(key).map(Vec::as_slice)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the store holds no keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The index of the last entry applied.
    pub fn applied_index(&self) -> u64 {
        self.applied
    }

    /// The number of client sessions held.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Marks `index` applied without changing the state (for entries that
    /// are not KV commands, such as membership changes).
    pub fn skip(&mut self, index: u64) {
        self.applied = self.applied.max(index);
    }

    /// Applies the committed entry at `index` with data `data`.
    pub fn apply(&mut self, index: u64, data: &[u8]) -> ApplyResult {
        self.apply_at(index, data, Instant::now())
    }

    /// [`KvStore::apply`] at local time `now`, which only the
    /// session-expiry bug reads (tests pass their own clock).
    pub fn apply_at(&mut self, index: u64, data: &[u8], now: Instant) -> ApplyResult {
        if index <= self.applied {
            return ApplyResult::AlreadyApplied;
        }
        self.applied = index;
        if data.is_empty() {
            return ApplyResult::Noop;
        }
        let cmd = match Command::decode(data) {
            Ok(c) => c,
            Err(e) => return ApplyResult::Malformed(e),
        };
        let Some(s) = cmd.session.filter(|s| s.client_id != 0) else {
            return ApplyResult::Applied(self.execute(index, cmd.op));
        };
        self.expire_by_local_clock(s.client_id, now);
        match self.sessions.get(&s.client_id) {
            Some(e) if s.seq == e.seq => return ApplyResult::Duplicate(e.result.clone()),
            Some(e) if s.seq < e.seq => {
                return ApplyResult::SessionExpired {
                    client_id: s.client_id,
                    seq: s.seq,
                }
            }
            Some(_) => {}
            None if self.evictions > 0 && s.seq > 1 => {
                return ApplyResult::SessionExpired {
                    client_id: s.client_id,
                    seq: s.seq,
                }
            }
            None => {}
        }
        let result = self.execute(index, cmd.op);
        let entry = SessionEntry {
            seq: s.seq,
            last_index: index,
            result: result.clone(),
        };
        self.digest.add_session(&entry.view(s.client_id));
        if let Some(old) = self.sessions.insert(s.client_id, entry) {
            self.digest.remove_session(&old.view(s.client_id));
            self.by_age.remove(&old.last_index);
        }
        self.by_age.insert(index, s.client_id);
        self.evict_beyond_bound();
        ApplyResult::Applied(result)
    }

    fn expire_by_local_clock(&mut self, client: u64, now: Instant) {
        let Some(le) = self.local_expiry.as_mut() else {
            return;
        };
        let idle = le
            .last_seen
            .insert(client, now)
            .is_some_and(|seen| now.saturating_duration_since(seen) > le.idle);
        if idle {
            if let Some(old) = self.sessions.remove(&client) {
                self.digest.remove_session(&old.view(client));
                self.by_age.remove(&old.last_index);
                self.evictions += 1;
            }
        }
    }

    fn evict_beyond_bound(&mut self) {
        while self.sessions.len() > self.max_sessions {
            let Some((_, client)) = self.by_age.pop_first() else {
                break;
            };
            if let Some(old) = self.sessions.remove(&client) {
                self.digest.remove_session(&old.view(client));
            }
            self.evictions += 1;
        }
    }

    /// What `op` would answer if applied now, without applying it: the
    /// answer `--bug early-ack` gives before the write is committed. Kept
    /// beside [`KvStore::execute`] so the two cannot drift apart.
    pub fn evaluate(&self, op: &Op) -> WriteResult {
        let (succeeded, value) = match op {
            Op::Put { .. } | Op::Delete { .. } => (true, None),
            Op::Cas { key, expected, .. } => {
                let current = self.map.get(key);
                if current.map(Vec::as_slice) == expected.as_deref() {
                    (true, None)
                } else {
                    (false, current.cloned())
                }
            }
            Op::Append { key, suffix } => {
                let mut v = self.map.get(key).cloned().unwrap_or_default();
                v.extend_from_slice(suffix);
                (true, Some(v))
            }
        };
        WriteResult {
            index: 0,
            succeeded,
            value,
        }
    }

    fn execute(&mut self, index: u64, op: Op) -> WriteResult {
        let (succeeded, value) = match op {
            Op::Put { key, value } => {
                self.set(key, value);
                (true, None)
            }
            Op::Cas { key, expected, new } => {
                let current = self.map.get(&key);
                if current.map(Vec::as_slice) == expected.as_deref() {
                    self.set(key, new);
                    (true, None)
                } else {
                    (false, current.cloned())
                }
            }
            Op::Append { key, suffix } => {
                // One lookup: the entry holds the key the digest hashes.
                let v = match self.map.entry(key) {
                    btree_map::Entry::Occupied(mut o) => {
                        self.digest.remove_pair(o.key(), o.get());
                        o.get_mut().extend_from_slice(&suffix);
                        self.digest.add_pair(o.key(), o.get());
                        o.get().clone()
                    }
                    btree_map::Entry::Vacant(e) => {
                        self.digest.add_pair(e.key(), &suffix);
                        e.insert(suffix).clone()
                    }
                };
                (true, Some(v))
            }
            Op::Delete { key } => {
                if let Some(old) = self.map.remove(&key) {
                    self.digest.remove_pair(&key, &old);
                }
                (true, None)
            }
        };
        WriteResult {
            index,
            succeeded,
            value,
        }
    }

    /// Writes `key`, keeping the digest in step.
    fn set(&mut self, key: String, value: Vec<u8>) {
        match self.map.entry(key) {
            btree_map::Entry::Occupied(mut o) => {
                self.digest.remove_pair(o.key(), o.get());
                self.digest.add_pair(o.key(), &value);
                o.insert(value);
            }
            btree_map::Entry::Vacant(e) => {
                self.digest.add_pair(e.key(), &value);
                e.insert(value);
            }
        }
    }

    /// A digest of the whole state (map, sessions, applied index,
    /// evictions) that costs O(1): equal states give equal digests on
    /// every replica, and different ones differ but for a 64-bit collision.
    pub fn digest(&self) -> u64 {
        self.digest.finish(
            self.applied,
            self.evictions,
            self.map.len(),
            self.sessions.len(),
        )
    }

    /// A checksummed image of the map, the sessions and the applied index.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(
            64 + self
                .map
                .iter()
                .map(|(k, v)| k.len() + v.len() + 4)
                .sum::<usize>(),
        );
        b.extend_from_slice(SNAPSHOT_MAGIC);
        b.extend_from_slice(&self.applied.to_le_bytes());
        b.extend_from_slice(&self.evictions.to_le_bytes());
        put_varint(&mut b, self.map.len() as u64);
        for (k, v) in &self.map {
            put_bytes(&mut b, k.as_bytes());
            put_bytes(&mut b, v);
        }
        put_varint(&mut b, self.sessions.len() as u64);
        // Oldest first: deterministic, and restore rebuilds the age order.
        for (&last_index, client) in &self.by_age {
            let e = &self.sessions[client];
            put_varint(&mut b, *client);
            put_varint(&mut b, e.seq);
            put_varint(&mut b, last_index);
            put_varint(&mut b, e.result.index);
            b.push(u8::from(e.result.succeeded));
            match &e.result.value {
                Some(v) => {
                    b.push(1);
                    put_bytes(&mut b, v);
                }
                None => b.push(0),
            }
        }
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Replaces the state with a snapshot image; on error the store is left
    /// unchanged. Keeps this store's session bound (evicting the oldest
    /// sessions if the image holds more).
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        if bytes.len() < SNAPSHOT_MAGIC.len() + 4 {
            return err(format!("snapshot of {} bytes is too short", bytes.len()));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().expect("4")) {
            return err("snapshot checksum mismatch");
        }
        if &body[..8] != SNAPSHOT_MAGIC {
            return err("not a KV snapshot (bad magic or version)");
        }
        let mut c = Cursor::new(&body[8..]);
        let mut restored = KvStore::with_max_sessions(self.max_sessions);
        restored.local_expiry = self.local_expiry.clone();
        restored.applied = c.u64_le()?;
        restored.evictions = c.u64_le()?;
        let keys = c.varint()?;
        let mut prev: Option<String> = None;
        for _ in 0..keys {
            let k = c.string()?;
            let v = c.bytes()?;
            if prev.as_ref().is_some_and(|p| *p >= k) {
                return err(format!("key {k:?} out of order"));
            }
            prev = Some(k.clone());
            restored.digest.add_pair(&k, &v);
            restored.map.insert(k, v);
        }
        let sessions = c.varint()?;
        for _ in 0..sessions {
            let client = c.varint()?;
            let seq = c.varint()?;
            let last_index = c.varint()?;
            let index = c.varint()?;
            let succeeded = match c.u8()? {
                0 => false,
                1 => true,
                f => return err(format!("bad succeeded flag {f}")),
            };
            let value = match c.u8()? {
                0 => None,
                1 => Some(c.bytes()?),
                f => return err(format!("bad value flag {f}")),
            };
            if restored.by_age.insert(last_index, client).is_some() {
                return err(format!("two sessions at index {last_index}"));
            }
            let entry = SessionEntry {
                seq,
                last_index,
                result: WriteResult {
                    index,
                    succeeded,
                    value,
                },
            };
            restored.digest.add_session(&entry.view(client));
            if restored.sessions.insert(client, entry).is_some() {
                return err(format!("client {client} has two sessions"));
            }
        }
        c.finish()?;
        restored.evict_beyond_bound();
        *self = restored;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0, 1, 127, 128, 16383, 16384, u64::MAX / 2, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut c = Cursor::new(&b);
            assert_eq!(c.varint(), Ok(v));
            assert!(c.finish().is_ok());
        }
    }

    #[test]
    fn an_overlong_varint_is_an_error() {
        let b = [0xffu8; 11];
        assert!(Cursor::new(&b).varint().is_err());
        let mut b = vec![0xffu8; 9];
        b.push(0x02); // would need bit 64
        assert!(Cursor::new(&b).varint().is_err());
    }
}
