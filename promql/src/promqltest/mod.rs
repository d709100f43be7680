//! The promqltest script language (Prometheus' PromQL acceptance-test DSL, specified in
//! `shared/testdata/promqltest/DSL.md`): parsing scripts into commands, series notation and
//! histogram literals, expected-result comparison with Prometheus' tolerances, and a runner
//! that drives any engine through the [`TestEngine`] trait and reports per-eval outcomes.
//!
//! This module owns everything about the test language that does not need the engine; it must
//! never depend on the PromQL parser or evaluator, so that plugging the engine in is a single
//! trait impl. It is test tooling: nothing in the query path may call it.

pub mod compare;
pub mod expect;
pub mod histogram;
pub mod load;
pub mod number;
pub mod parse;
pub mod runner;
pub mod series;
pub mod value;

pub use compare::{almost_equal, DEFAULT_EPSILON};
pub use histogram::{CounterResetHint, FloatHistogram, HistogramLiteral, Span};
pub use parse::{
    parse_test, parse_test_file, Command, EvalCmd, EvalMode, LoadCmd, LoadSeries, TestFile,
};
pub use runner::{
    run_file, run_file_with, run_test, summarize, Capabilities, EvalOutcome, EvalReport,
    FileReport, RunOptions, TestEngine,
};
pub use series::{is_stale_nan, stale_nan, SeqValue, STALE_NAN_BITS};
pub use value::{
    LoadedSample, LoadedSeries, MatrixSeries, QueryOutcome, SampleValue, TestValue, VectorSample,
};

/// Errors of the test DSL: a script that does not parse (naming `file:line`) or cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DslError {
    /// The script is malformed at the given 1-based line.
    #[error("{file}:{line}: {message}")]
    Parse {
        file: String,
        line: usize,
        message: String,
    },
    /// The script file could not be read.
    #[error("reading {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests;
