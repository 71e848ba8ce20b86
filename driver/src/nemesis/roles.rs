//! Where a recorded run's nodes stand in its replay.
//!
//! A replayed cluster elects whom it likes: the node that led the recorded
//! run may be a follower this time. A replay therefore keeps one mapping
//! of node ids, recorded to replayed, for the whole run: every fault's
//! nodes go through it, and whenever a fault was recorded with its leader,
//! the mapping first moves that leader onto the node leading now. One
//! mapping for all faults keeps the faults consistent with each other
//! ("pause the leader" and "kill nodes 1 and 2" still hit the same node
//! when they did in the recording), which a swap per fault did not.

use std::collections::BTreeMap;

/// A permutation of the node ids, recorded id to replayed id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMap {
    to_replayed: BTreeMap<u64, u64>,
}

impl RoleMap {
    /// Every node where it was.
    pub fn identity(ids: &[u64]) -> Self {
        RoleMap {
            to_replayed: ids.iter().map(|&i| (i, i)).collect(),
        }
    }

    /// Where recorded node `recorded` stands now (an id the map does not
    /// know, e.g. a node added later, stands where it was).
    pub fn get(&self, recorded: u64) -> u64 {
        self.to_replayed.get(&recorded).copied().unwrap_or(recorded)
    }

    /// Moves `recorded` onto `now`, swapping it with the recorded node
    /// that stood there; the two recorded ids swapped, or None if it
    /// already stood there (or `now` is unknown).
    pub fn align(&mut self, recorded: u64, now: u64) -> Option<(u64, u64)> {
        let here = self.get(recorded);
        if here == now || !self.to_replayed.contains_key(&recorded) {
            return None;
        }
        let other = *self.to_replayed.iter().find(|(_, &r)| r == now)?.0;
        self.to_replayed.insert(recorded, now);
        self.to_replayed.insert(other, here);
        Some((recorded, other))
    }

    /// The nodes that stand elsewhere, `[recorded, replayed]` pairs, for
    /// the history.
    pub fn moved(&self) -> Vec<[u64; 2]> {
        self.to_replayed
            .iter()
            .filter(|(a, b)| a != b)
            .map(|(&a, &b)| [a, b])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligning_a_leader_moves_it_and_the_node_that_stood_there_swaps_in() {
        let mut m = RoleMap::identity(&[1, 2, 3]);
        assert_eq!(m.align(1, 1), None, "already there");
        assert_eq!(m.align(1, 3), Some((1, 3)));
        assert_eq!((m.get(1), m.get(2), m.get(3)), (3, 2, 1));
        assert_eq!(m.moved(), vec![[1, 3], [3, 1]]);
    }

    #[test]
    fn later_alignments_compose_so_every_fault_sees_one_consistent_mapping() {
        let mut m = RoleMap::identity(&[1, 2, 3, 4, 5]);
        m.align(1, 3);
        // The recorded run's next leader was 2; the replay's is 1 now.
        assert_eq!(m.align(2, 1), Some((2, 3)));
        assert_eq!(m.get(2), 1);
        assert_eq!(m.get(1), 3, "the first alignment still holds");
        assert_eq!(m.get(3), 2);
        // Still a permutation: no two recorded nodes on one replayed node.
        let mut images: Vec<u64> = (1..=5).map(|i| m.get(i)).collect();
        images.sort();
        assert_eq!(images, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn unknown_ids_stand_where_they_were_and_are_never_aligned() {
        let mut m = RoleMap::identity(&[1, 2, 3]);
        assert_eq!(m.get(7), 7);
        assert_eq!(m.align(7, 1), None);
        assert_eq!(m.align(1, 7), None);
        assert_eq!(m, RoleMap::identity(&[1, 2, 3]));
    }
}
