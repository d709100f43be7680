//! The `vigil` binary's library: adapters around the storage and PromQL crates — the
//! exposition parsers (text 0.0.4 and OpenMetrics), the HTTP server, configuration and the
//! command-line tools. Adapters parse input, call the libraries and map their errors.

pub mod exposition;
