//! The `vigil` binary's library: adapters around the storage and PromQL crates — the
//! exposition parsers (text 0.0.4 and OpenMetrics), the HTTP server, self-metrics,
//! flag parsing, the remote-write receiver, rule evaluation, the Alertmanager notifier and the
//! command-line data tools. Adapters parse input, call the libraries
//! and map their errors.

pub mod alerting;
pub mod api;
pub mod config;
pub mod exposition;
pub mod flags;
pub mod metrics;
pub mod notify;
pub mod reload;
pub mod remote;
pub mod rules;
pub mod scrape;
pub mod server;
pub mod slo;
pub mod template;
pub mod tsdb_tools;
