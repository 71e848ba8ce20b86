//! The two ways a command ends without a verdict, as error types that
//! `main` maps to exit codes: what the user asked for is wrong (2), or the
//! run could not produce a verdict (3).

/// A problem with what the user asked for (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The run could not produce a verdict (exit code 3), e.g. the cluster
/// never became available.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoVerdict(pub String);
