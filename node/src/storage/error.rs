//! The one error type of the storage layer.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong opening, writing or recovering a data dir.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An operating-system call failed on a named file or directory.
    #[error("{op} {path}: {err}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// To which file or directory.
        path: PathBuf,
        /// The operating system's answer.
        err: io::Error,
    },
    /// Another process holds the data dir's lock.
    #[error("data dir {dir} is locked by another process (is another raft-node running on it?)")]
    Locked {
        /// The data dir.
        dir: PathBuf,
    },
    /// The data dir was created for another node id or cluster id.
    #[error(
        "data dir {dir} belongs to node {found_node} of cluster {found_cluster}, \
         not node {node} of cluster {cluster}"
    )]
    WrongOwner {
        /// The data dir.
        dir: PathBuf,
        /// The node id this process runs as.
        node: u64,
        /// The cluster id this process runs in.
        cluster: u64,
        /// The node id recorded in the dir.
        found_node: u64,
        /// The cluster id recorded in the dir.
        found_cluster: u64,
    },
    /// The data dir holds log or snapshot files but no identity file, so it
    /// cannot be proven to belong to this node.
    #[error("data dir {dir} holds log or snapshot files but no IDENTITY file; refusing to use it")]
    MissingIdentity {
        /// The data dir.
        dir: PathBuf,
    },
    /// A record on disk failed its checksum (or is malformed) somewhere other
    /// than the torn tail a crash can leave: the node must not start.
    #[error("corrupt write-ahead log {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the bad record in it.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// A file other than the log (snapshot, identity) is damaged.
    #[error("corrupt file {path}: {reason}")]
    CorruptFile {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The caller asked for something the log cannot represent (a gap, an
    /// overwrite of compacted entries, an oversized record).
    #[error("invalid request to storage: {0}")]
    Invalid(String),
    /// An earlier write or fsync failed; after a failed fsync the page cache
    /// state is unknown, so nothing more may be written (fsyncgate).
    #[error("storage failed earlier and refuses further writes: {0}")]
    Poisoned(String),
}

impl StorageError {
    /// Wraps an `io::Error` with the operation and the path it concerned.
    pub fn io(op: &'static str, path: &Path, err: io::Error) -> StorageError {
        StorageError::Io {
            op,
            path: path.to_path_buf(),
            err,
        }
    }
}

/// Shorthand for results of this module.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
