//! vigil-promql: the PromQL lexer, parser and type checker, the function table, the
//! evaluation engine, and the promqltest runner. Reads storage only through
//! `vigil_storage::Queryable`.

pub mod engine;
pub mod functions;
pub mod kernels;
pub mod parser;
pub mod promqltest;
