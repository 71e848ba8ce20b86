//! What a person or a gate reads: the run's verdict (computed by the
//! checker's composed checkers), campaign summaries and the results index.

pub mod index;
pub mod summary;
pub mod trend;
