//! The remote-write receiver's request-level error: everything that makes a whole request
//! fail before any series is looked at (negotiation, limits, transport, snappy, protobuf)
//! or after (storage faults). Each variant knows its HTTP status; per-series and per-sample
//! rejections are not errors but counts in the ingest outcome. Never panics, never stores.

use hyper::StatusCode;

use super::limits::LimitKind;

/// Why a remote-write request failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Only POST is allowed.
    #[error("method {0} not allowed; remote write needs POST")]
    MethodNotAllowed(String),
    /// `Content-Type` names a media type or `proto=` message we do not speak.
    #[error("unsupported Content-Type {0:?}: expected application/x-protobuf with proto=prometheus.WriteRequest or proto=io.prometheus.write.v2.Request")]
    UnsupportedContentType(String),
    /// `Content-Encoding` is not snappy.
    #[error("unsupported Content-Encoding {0:?}: only snappy (block format) is supported")]
    UnsupportedEncoding(String),
    /// A configured limit was exceeded before memory was spent on it.
    #[error("{kind} limit exceeded: {detail} (limit {limit})")]
    Limit {
        kind: LimitKind,
        limit: u64,
        detail: String,
    },
    /// The request body could not be read from the connection.
    #[error("reading request body: {0}")]
    Body(String),
    /// The body is not a valid snappy block.
    #[error("snappy decompression failed: {reason}")]
    Snappy { reason: String },
    /// The decompressed bytes are not the expected protobuf message.
    #[error("protobuf decoding of {message} failed: {reason}")]
    Protobuf {
        message: &'static str,
        reason: String,
    },
    /// The message decoded but is invalid as a whole (e.g. symbol table not starting with "").
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Storage failed in a way the sender should retry (WAL write or fsync, closed database).
    #[error("storage error, retry later: {0}")]
    Storage(#[from] vigil_storage::Error),
    /// The ingest task died (a bug); the sender may retry.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result alias for the receiver.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::UnsupportedContentType(_) | Error::UnsupportedEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Error::Limit { .. }
            | Error::Body(_)
            | Error::Snappy { .. }
            | Error::Protobuf { .. }
            | Error::Invalid(_) => StatusCode::BAD_REQUEST,
            Error::Storage(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}
