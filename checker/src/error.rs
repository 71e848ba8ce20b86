//! The one error type for bad histories: what is wrong, and where.

use crate::history::{History, SourcePos};

/// A history that cannot be checked, with the place in the file that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryError {
    /// Where in the source file, once known.
    pub pos: Option<SourcePos>,
    /// The event's position in the event list, when the error is about one event.
    pub event: Option<usize>,
    /// What is wrong, in words.
    pub message: String,
}

impl HistoryError {
    /// An error at a known place in the source file.
    pub fn at(pos: SourcePos, message: impl Into<String>) -> Self {
        HistoryError {
            pos: Some(pos),
            event: None,
            message: message.into(),
        }
    }

    /// An error about event number `event` (its position in the event list).
    pub fn event(event: usize, message: impl Into<String>) -> Self {
        HistoryError {
            pos: None,
            event: Some(event),
            message: message.into(),
        }
    }

    /// An error about the input as a whole (for example an unreadable file).
    pub fn general(message: impl Into<String>) -> Self {
        HistoryError {
            pos: None,
            event: None,
            message: message.into(),
        }
    }

    /// Fills in the source position from the history the events came from.
    pub fn locate(mut self, history: &History) -> Self {
        if self.pos.is_none() {
            if let Some(i) = self.event {
                self.pos = history.position(i);
            }
        }
        self
    }
}

impl std::fmt::Display for HistoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.pos, self.event) {
            (Some(pos), _) => write!(f, "{pos}: {}", self.message),
            (None, Some(i)) => write!(f, "event {i}: {}", self.message),
            (None, None) => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for HistoryError {}
