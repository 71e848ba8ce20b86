//! The faults in effect on one link, as independent layers that compose:
//! who holds it (a partition, the vote-crash nemesis...), how slow it is,
//! and which message faults it applies. Each nemesis sets and clears only
//! its own layer, so faults can overlap: a slow link stays slow through a
//! partition, and a partition stays when the slowness ends.

use super::messages::MessageFaults;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Who holds a link (a nemesis, by name); it forwards nothing while any
/// holder holds it.
pub type Holder = &'static str;

/// Latency and loss on a link's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slowness {
    /// Mean one-way delay of each chunk, in milliseconds.
    pub delay_ms: f64,
    /// Half-width of the uniform jitter around the mean, in milliseconds.
    pub jitter_ms: f64,
    /// Fraction of chunks lost, in [0, 1] (each lost chunk is delayed by
    /// the retransmission penalty, as TCP would).
    pub loss: f64,
}

/// The layers of faults on one link.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkFaults {
    /// Who holds the link: held (no byte moves, either way) while any does.
    pub holders: BTreeSet<Holder>,
    /// Latency and loss, if slowed.
    pub slow: Option<Slowness>,
    /// Faults on whole peer messages, if any.
    pub messages: Option<MessageFaults>,
}

impl LinkFaults {
    /// Whether the link forwards nothing.
    pub fn held(&self) -> bool {
        !self.holders.is_empty()
    }

    /// Whether no fault is in effect.
    pub fn is_clear(&self) -> bool {
        *self == LinkFaults::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_held_while_any_holder_holds_it() {
        let mut f = LinkFaults::default();
        assert!(!f.held() && f.is_clear());
        f.holders.insert("partition");
        f.holders.insert("vote-crash");
        f.holders.remove("partition");
        assert!(f.held(), "the other holder still holds it");
        f.holders.remove("vote-crash");
        assert!(!f.held());
    }
}
