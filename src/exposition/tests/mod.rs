//! Tests of the exposition parsers: the OpenMetrics conformance corpus, the Prometheus
//! sample pages, and unit tests per rule. Test data is read in place, never copied.

#![allow(clippy::unwrap_used)]

mod conformance;
mod openmetrics;
mod robustness;
mod text;
mod textparse;
