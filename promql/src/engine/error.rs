//! The engine's error type: who is at fault (parse, execution, limits, storage) and the
//! texts Prometheus uses for each. This module only describes errors; it never evaluates.

use crate::parser::ParseErrors;

/// Where Prometheus reports the sample limit and cancellation (its `env` string).
pub const QUERY_EXECUTION_ENV: &str = "query execution";
/// Where Prometheus reports timeouts and cancellation during evaluation.
pub const EXPRESSION_EVALUATION_ENV: &str = "expression evaluation";

/// Errors of query evaluation, sorted by who is at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The query text does not parse or type-check (HTTP 400 `bad_data`).
    #[error("{0}")]
    Parse(#[from] ParseErrors),
    /// The query is well-formed but cannot be evaluated with these parameters (HTTP 400).
    #[error("{0}")]
    BadQuery(String),
    /// Evaluation failed (HTTP 422 `execution`).
    #[error("{0}")]
    Execution(String),
    /// The query would hold more samples in memory than `EngineOpts::max_samples` allows.
    #[error("query processing would load too many samples into memory in {QUERY_EXECUTION_ENV}")]
    TooManySamples,
    /// The query ran longer than `EngineOpts::timeout`.
    #[error("query timed out in {EXPRESSION_EVALUATION_ENV}")]
    Timeout,
    /// The caller cancelled the query.
    #[error("query was canceled in {EXPRESSION_EVALUATION_ENV}")]
    Canceled,
    /// Reading storage failed (HTTP 500 / 422).
    #[error("{0}")]
    Storage(#[from] vigil_storage::Error),
}

/// The engine's result alias.
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for an execution error.
pub(crate) fn exec_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Execution(msg.into()))
}
