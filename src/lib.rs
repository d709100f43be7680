//! The `vigil` binary's library: adapters around the storage and PromQL crates — the
//! exposition parsers (text 0.0.4 and OpenMetrics), the HTTP server, self-metrics,
//! flag parsing and the command-line data tools. Adapters parse input, call the libraries
//! and map their errors.

pub mod api;
pub mod exposition;
pub mod flags;
pub mod metrics;
pub mod server;
pub mod tsdb_tools;
