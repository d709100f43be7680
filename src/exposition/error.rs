//! The exposition parsers' error type. Every error names the 1-based input line it was
//! detected on and a human-readable reason; this module never decides what is an error.

use thiserror::Error;

/// Why an exposition document was rejected. `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The line does not follow the format's grammar (tokens, quoting, numbers).
    #[error("line {line}: {reason}")]
    Syntax { line: usize, reason: String },
    /// The line is well formed but breaks a semantic rule of the format (OpenMetrics
    /// families, grouping, histogram buckets, metadata placement, …).
    #[error("line {line}: {reason}")]
    Invalid { line: usize, reason: String },
    /// OpenMetrics input ended without the mandatory `# EOF` line.
    #[error("line {line}: input does not end with \"# EOF\"")]
    MissingEof { line: usize },
    /// OpenMetrics input has bytes after the `# EOF` line.
    #[error("line {line}: unexpected data after \"# EOF\"")]
    DataAfterEof { line: usize },
}

impl ParseError {
    /// The 1-based line the error was detected on.
    pub fn line(&self) -> usize {
        match self {
            ParseError::Syntax { line, .. }
            | ParseError::Invalid { line, .. }
            | ParseError::MissingEof { line }
            | ParseError::DataAfterEof { line } => *line,
        }
    }

    pub(crate) fn syntax(line: usize, reason: impl Into<String>) -> Self {
        ParseError::Syntax {
            line,
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(line: usize, reason: impl Into<String>) -> Self {
        ParseError::Invalid {
            line,
            reason: reason.into(),
        }
    }
}
