//! A digest of the key-value state machine that costs O(1) to keep and to
//! read: a wrapping sum of one keyed hash per key-value pair and one per
//! client session, so that any order of the same updates reaches the same
//! sums (replicas apply the same entries, but a restored snapshot rebuilds
//! its maps in another order than the writes that made them). The
//! `applied-digest` events compare it across replicas every
//! [`crate::node_loop::DIGEST_EVERY`] entries; before it, each one
//! serialized the whole store, which cost a node a few percent of its CPU
//! under load.

use std::hash::Hasher;

/// The running sums; [`StateDigest::finish`] mixes in the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateDigest {
    pairs: u64,
    sessions: u64,
}

fn hasher(tag: u8) -> std::collections::hash_map::DefaultHasher {
    // DefaultHasher::new() has fixed keys: the same on every replica
    // running the same binary, which is what the comparison needs.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write_u8(tag);
    h
}

/// The hash of one key-value pair.
fn pair_hash(key: &str, value: &[u8]) -> u64 {
    let mut h = hasher(1);
    h.write_usize(key.len());
    h.write(key.as_bytes());
    h.write(value);
    h.finish()
}

/// What a session holds, as the digest sees it.
pub struct SessionView<'a> {
    pub client: u64,
    pub seq: u64,
    pub last_index: u64,
    pub result_index: u64,
    pub succeeded: bool,
    pub value: Option<&'a [u8]>,
}

fn session_hash(s: &SessionView<'_>) -> u64 {
    let mut h = hasher(2);
    for v in [s.client, s.seq, s.last_index, s.result_index] {
        h.write_u64(v);
    }
    h.write_u8(u8::from(s.succeeded));
    match s.value {
        Some(v) => {
            h.write_u8(1);
            h.write(v);
        }
        None => h.write_u8(0),
    }
    h.finish()
}

impl StateDigest {
    pub fn add_pair(&mut self, key: &str, value: &[u8]) {
        self.pairs = self.pairs.wrapping_add(pair_hash(key, value));
    }

    pub fn remove_pair(&mut self, key: &str, value: &[u8]) {
        self.pairs = self.pairs.wrapping_sub(pair_hash(key, value));
    }

    pub fn add_session(&mut self, s: &SessionView<'_>) {
        self.sessions = self.sessions.wrapping_add(session_hash(s));
    }

    pub fn remove_session(&mut self, s: &SessionView<'_>) {
        self.sessions = self.sessions.wrapping_sub(session_hash(s));
    }

    /// The digest of a store with these sums and counters.
    pub fn finish(&self, applied: u64, evictions: u64, keys: usize, sessions: usize) -> u64 {
        let mut h = hasher(3);
        for v in [
            applied,
            evictions,
            keys as u64,
            sessions as u64,
            self.pairs,
            self.sessions,
        ] {
            h.write_u64(v);
        }
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sums_do_not_depend_on_the_order_of_updates() {
        let (mut a, mut b) = (StateDigest::default(), StateDigest::default());
        a.add_pair("x", b"1");
        a.add_pair("y", b"2");
        b.add_pair("y", b"2");
        b.add_pair("x", b"1");
        assert_eq!(a, b);
        a.remove_pair("x", b"1");
        a.add_pair("x", b"3");
        assert_ne!(a, b);
        assert_ne!(a.finish(5, 0, 2, 0), b.finish(5, 0, 2, 0));
        a.remove_pair("x", b"3");
        a.add_pair("x", b"1");
        assert_eq!(a.finish(5, 0, 2, 0), b.finish(5, 0, 2, 0));
        assert_ne!(a.finish(5, 0, 2, 0), a.finish(6, 0, 2, 0));
    }

    #[test]
    fn a_pair_is_told_apart_from_the_same_bytes_split_elsewhere() {
        let (mut a, mut b) = (StateDigest::default(), StateDigest::default());
        a.add_pair("ab", b"c");
        b.add_pair("a", b"bc");
        assert_ne!(a, b);
    }
}
