//! vigil-promql: the PromQL lexer, parser and type checker, the function table, and the
//! evaluation engine. Reads storage only through `vigil_storage::Queryable`.

pub mod functions;
pub mod parser;
