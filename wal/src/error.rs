//! The crate's single error type and `Result` alias. Owns how failures are described to
//! callers: every error that points at damage names the directory, segment and byte offset.
//! Must never hide an I/O error's source or describe damage without its location.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the WAL.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log is damaged (torn tail, bad checksum, impossible fragment sequence, …).
    /// `offset` is the byte offset inside segment `segment` of `dir` where the first
    /// damaged record (or fragment, when no record was in progress) starts: every record
    /// that ends at or before `offset` is intact. [`crate::repair`] cuts the log there.
    #[error("WAL corruption in {} segment {segment:08} at offset {offset}: {reason}", dir.display())]
    Corruption {
        dir: PathBuf,
        segment: u64,
        offset: u64,
        reason: String,
    },
    /// An operating-system I/O error, with what we were doing when it happened.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// An earlier write or fsync failed; the WAL refuses all further writes because the
    /// state of the file after a failed fsync is unknowable.
    #[error("WAL is poisoned by an earlier failure: {0}")]
    Poisoned(String),
    /// A record larger than one whole segment can hold.
    #[error("record of {0} bytes does not fit into one WAL segment")]
    RecordTooLarge(usize),
    /// The WAL writer has been shut down.
    #[error("WAL is closed")]
    Closed,
    /// A record written with a compression this crate does not implement (Prometheus'
    /// zstd WAL compression). Not `Corruption`: the data is probably fine, and repairing
    /// would throw it away.
    #[error("record in {} segment {segment:08} at offset {offset} uses {compression} compression, which is not supported; restart Prometheus with WAL compression off or snappy to convert", dir.display())]
    UnsupportedCompression {
        dir: PathBuf,
        segment: u64,
        offset: u64,
        compression: &'static str,
    },
    /// Segment files have a gap (a segment in the middle is missing).
    #[error("WAL segments in {} are not sequential: {prev:08} is followed by {next:08}", dir.display())]
    NotSequential { dir: PathBuf, prev: u64, next: u64 },
    /// A segment that an operation needs does not exist.
    #[error("WAL segment {segment:08} is missing from {}", dir.display())]
    MissingSegment { dir: PathBuf, segment: u64 },
    /// Options or arguments that cannot work (e.g. a segment size that is not a whole
    /// number of pages).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Adds context to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::io(context(), source))
    }
}
