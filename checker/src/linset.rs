//! The set of linearized operations, laid out so that its memo key is small.
//!
//! Certain operations are numbered in call order: every one called long ago
//! is linearized, so their bits are a run of ones followed by a short window
//! as wide as the concurrency. The key stores the run's length and the
//! window only. Uncertain operations never have to be linearized, so they
//! get bits of their own after it.

use crate::model::SearchOp;

/// Which operations are linearized.
#[derive(Debug, Clone)]
pub struct LinSet {
    /// For each operation: whether it is certain, and its rank among its kind.
    slot: Vec<(bool, u32)>,
    certain: Vec<u64>,
    uncertain: Vec<u64>,
    /// Number of certain operations.
    n_certain: usize,
}

impl LinSet {
    /// An empty set over `ops`.
    pub fn new<O>(ops: &[SearchOp<O>]) -> Self {
        let mut certain: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_some()).collect();
        certain.sort_by_key(|&i| ops[i].call);
        let mut uncertain: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_none()).collect();
        uncertain.sort_by_key(|&i| ops[i].call);
        let mut slot = vec![(false, 0u32); ops.len()];
        for (rank, &i) in certain.iter().enumerate() {
            slot[i] = (true, rank as u32);
        }
        for (rank, &i) in uncertain.iter().enumerate() {
            slot[i] = (false, rank as u32);
        }
        LinSet {
            slot,
            certain: vec![0; certain.len().div_ceil(64)],
            uncertain: vec![0; uncertain.len().div_ceil(64)],
            n_certain: certain.len(),
        }
    }

    fn place(&self, op: usize) -> (bool, usize, u64) {
        let (is_certain, rank) = self.slot[op];
        (is_certain, rank as usize / 64, 1u64 << (rank % 64))
    }

    /// Whether `op` is linearized.
    pub fn get(&self, op: usize) -> bool {
        let (c, w, bit) = self.place(op);
        let words = if c { &self.certain } else { &self.uncertain };
        words[w] & bit != 0
    }

    /// Marks `op` linearized.
    pub fn set(&mut self, op: usize) {
        let (c, w, bit) = self.place(op);
        let words = if c {
            &mut self.certain
        } else {
            &mut self.uncertain
        };
        words[w] |= bit;
    }

    /// Marks `op` not linearized.
    pub fn clear(&mut self, op: usize) {
        let (c, w, bit) = self.place(op);
        let words = if c {
            &mut self.certain
        } else {
            &mut self.uncertain
        };
        words[w] &= !bit;
    }

    /// The set as a compact, unambiguous key: the number of leading full
    /// words of certain bits, the window's length, the window, then the
    /// uncertain bits without trailing zero words.
    pub fn key(&self) -> Box<[u64]> {
        let cw = self.certain.len();
        let full = |i: usize| {
            if i + 1 == cw && self.n_certain & 63 != 0 {
                (1u64 << (self.n_certain % 64)) - 1
            } else {
                u64::MAX
            }
        };
        let mut start = 0;
        while start < cw && self.certain[start] == full(start) {
            start += 1;
        }
        let mut end = cw;
        while end > start && self.certain[end - 1] == 0 {
            end -= 1;
        }
        let mut u_end = self.uncertain.len();
        while u_end > 0 && self.uncertain[u_end - 1] == 0 {
            u_end -= 1;
        }
        let mut key = Vec::with_capacity(2 + end - start + u_end);
        key.push(start as u64);
        key.push((end - start) as u64);
        key.extend_from_slice(&self.certain[start..end]);
        key.extend_from_slice(&self.uncertain[..u_end]);
        key.into_boxed_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(rets: &[Option<usize>]) -> Vec<SearchOp<()>> {
        rets.iter()
            .enumerate()
            .map(|(i, &ret)| SearchOp {
                op: (),
                call: i,
                ret,
            })
            .collect()
    }

    #[test]
    fn keys_are_equal_exactly_when_the_sets_are() {
        let ops = ops(&(0..200)
            .map(|i| if i % 10 == 3 { None } else { Some(1000 + i) })
            .collect::<Vec<_>>());
        let mut a = LinSet::new(&ops);
        let mut b = LinSet::new(&ops);
        for i in 0..150 {
            if i % 10 != 3 {
                a.set(i);
            }
        }
        for i in (0..150).rev() {
            if i % 10 != 3 {
                b.set(i);
            }
        }
        assert_eq!(a.key(), b.key());
        assert!(
            a.key().len() < 6,
            "long runs of ones compress: {:?}",
            a.key()
        );
        a.set(3);
        assert_ne!(a.key(), b.key());
        assert!(a.get(3) && !b.get(3));
        a.clear(3);
        assert_eq!(a.key(), b.key());
        b.set(199);
        assert_ne!(a.key(), b.key());
        // Distinct sets never share a key, whatever their layout.
        let small = self::ops(&[Some(9), None, Some(9)]);
        let mut seen = std::collections::HashSet::new();
        for mask in 0..8u32 {
            let mut s = LinSet::new(&small);
            for op in 0..3 {
                if mask >> op & 1 == 1 {
                    s.set(op);
                }
            }
            assert!(seen.insert(s.key()), "mask {mask}");
        }
    }
}
