//! The storage error type. Every failure that a caller can act on has its own variant;
//! damage found on disk is always `Corruption` naming the file, the offset and the reason.

use std::path::PathBuf;

/// Result alias for the storage crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors from storage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bytes on disk do not decode: the file, the byte offset where damage was found, and why.
    #[error("corruption in {file} at offset {offset}: {reason}")]
    Corruption {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Labels that cannot be stored (empty name, bad UTF-8, duplicate names, empty set, …).
    #[error("invalid labels: {0}")]
    InvalidLabels(String),
    /// A matcher that cannot be built (bad regex).
    #[error("invalid matcher: {0}")]
    InvalidMatcher(String),
    /// A sample older than the newest sample of its series.
    #[error("out of order sample")]
    OutOfOrderSample,
    /// A sample older than the head can accept (before the head's appendable window).
    #[error("out of bounds")]
    OutOfBounds,
    /// A sample at an existing timestamp with a different value.
    #[error("duplicate sample for timestamp")]
    DuplicateSample,
    /// A sample too far in the future.
    #[error("sample timestamp too far in the future")]
    TooFarInFuture,
    /// A write-ahead log failure.
    #[error("wal: {0}")]
    Wal(#[from] vigil_wal::Error),
    /// The database was closed, or a previous fsync failure poisoned writes.
    #[error("storage closed: {0}")]
    Closed(String),
    /// Anything else that is a bug or a broken invariant, with an explanation.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Builds an `Io` error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Builds a `Corruption` error.
    pub fn corruption(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corruption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }
}
