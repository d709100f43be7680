//! The PromQL front end: lexer, parser, AST, type checker, printer and preprocessing.
//! Entry points are [`parse_expr`] / [`parse_expr_with`] (text → checked AST) and
//! [`parse_metric_selector`]. This module never evaluates queries or touches storage; errors
//! carry byte positions and render exactly like Prometheus' (`1:14: parse error: ...`).

pub mod ast;
pub mod check;
pub mod duration;
pub mod lexer;
mod modifiers;
pub mod parse;
pub mod preprocess;
pub mod printer;
pub mod quote;
pub mod token;

use std::fmt;

pub use ast::{
    AggregateExpr, AggregateOp, AtModifier, BinaryExpr, BinaryOp, Call, DurationExpr, DurationOp,
    Expr, FillValues, MatrixSelector, NumberLiteral, ParenExpr, PosRange, StepInvariantExpr,
    StringLiteral, SubqueryExpr, UnaryExpr, UnaryOp, ValueType, VectorMatchCardinality,
    VectorMatching, VectorSelector,
};
pub use duration::{format_duration, parse_duration};
pub use parse::MAX_NESTING_DEPTH;
pub use preprocess::preprocess_expr;
pub use printer::prettify;

use vigil_storage::Matcher;

/// Parser feature flags, mirroring Prometheus' `--enable-feature` switches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParserOptions {
    /// `promql-experimental-functions`: `info`, `limitk`, `sort_by_label`, ...
    pub enable_experimental_functions: bool,
    /// `promql-duration-expr`: `[5m+1m]`, `offset step()`, `min_of`/`max_of`, ...
    pub enable_duration_expressions: bool,
    /// `promql-extended-range-selectors`: `anchored` and `smoothed`.
    pub enable_extended_range_selectors: bool,
    /// `promql-binop-fill-modifiers`: `fill`, `fill_left`, `fill_right`.
    pub enable_binop_fill: bool,
}

impl ParserOptions {
    /// Every experimental feature on (what the promqltest files need).
    pub fn all() -> ParserOptions {
        ParserOptions {
            enable_experimental_functions: true,
            enable_duration_expressions: true,
            enable_extended_range_selectors: true,
            enable_binop_fill: true,
        }
    }
}

/// One parse error: where and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseErr {
    pub pos: PosRange,
    pub msg: String,
    /// The query, kept to render `line:col`.
    pub query: String,
}

impl fmt::Display for ParseErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: parse error: {}",
            self.pos.start_pos_input(&self.query),
            self.msg
        )
    }
}

impl std::error::Error for ParseErr {}

/// All errors of one parse. Renders like Prometheus: only the first error is shown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ParseErrors {
    pub errors: Vec<ParseErr>,
}

impl ParseErrors {
    /// The first error (there is always at least one).
    pub fn first(&self) -> Option<&ParseErr> {
        self.errors.first()
    }
}

impl fmt::Display for ParseErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errors.first() {
            Some(e) => fmt::Display::fmt(e, f),
            None => f.write_str("error contains no error message"),
        }
    }
}

/// Parses and type-checks a PromQL expression with default (non-experimental) options.
pub fn parse_expr(input: &str) -> Result<Expr, ParseErrors> {
    parse_expr_with(input, &ParserOptions::default())
}

/// Parses and type-checks a PromQL expression.
pub fn parse_expr_with(input: &str, opts: &ParserOptions) -> Result<Expr, ParseErrors> {
    let mut expr = parse::Parser::new(input, opts)
        .parse_top()
        .map_err(|e| ParseErrors { errors: vec![e] })?;
    let errors = check::check_ast(&mut expr, input);
    if errors.is_empty() {
        Ok(expr)
    } else {
        Err(ParseErrors { errors })
    }
}

/// Parses a series selector such as `foo{job="x"}` or `{__name__=~"a.*"}` into matchers.
pub fn parse_metric_selector(input: &str) -> Result<Vec<Matcher>, ParseErrors> {
    parse::Parser::new(input, &ParserOptions::default())
        .parse_metric_selector()
        .map_err(|e| ParseErrors { errors: vec![e] })
}
