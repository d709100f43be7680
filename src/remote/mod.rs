//! The remote-write receiver behind `POST /api/v1/write`: content negotiation (RW 1.0
//! `prometheus.WriteRequest` and RW 2.0 `io.prometheus.write.v2.Request`, snappy block
//! encoding), limits enforced before memory is spent, decoding, per-series validation and
//! appending through the one storage `Appender`, and the response (204 only after the WAL
//! commit; 400 naming every rejection; RW 2.0 `X-Prometheus-Remote-Write-*-Written`
//! headers). Good series and samples of a request are stored even when others are rejected.
//! Native histograms and exemplars are decoded, counted and rejected with a 400 (the storage
//! has no place for them yet). This module never touches storage internals and never
//! answers 2xx for data it did not commit.

mod cache;
pub mod error;
pub mod handler;
mod ingest;
pub mod limits;
pub mod metrics;
pub mod proto;
mod series;
pub mod v1;
pub mod v2;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

pub use error::{Error, Result};
pub use handler::{handle, Protocol};
pub use ingest::{Outcome, Rejected};
pub use limits::{LimitKind, Limits};
pub use metrics::Metrics;

/// The response header with the count of float samples written (RW 2.0).
pub const HEADER_SAMPLES_WRITTEN: &str = "X-Prometheus-Remote-Write-Samples-Written";
/// The response header with the count of native histogram samples written (RW 2.0).
pub const HEADER_HISTOGRAMS_WRITTEN: &str = "X-Prometheus-Remote-Write-Histograms-Written";
/// The response header with the count of exemplars written (RW 2.0).
pub const HEADER_EXEMPLARS_WRITTEN: &str = "X-Prometheus-Remote-Write-Exemplars-Written";

/// A metric-metadata cache entry: what was logged for a series ref, as a fingerprint, so
/// that RW 2.0 senders repeating metadata in every request do not write a WAL record each
/// time. Bounded: cleared when it outgrows the head's series count by far.
const META_CACHE_SLACK: usize = 10_000;

/// The receiver: its limits, counters and metadata caches. One per server.
#[derive(Debug, Default)]
pub struct Receiver {
    /// Limits enforced on every request.
    pub limits: Limits,
    /// Counters rendered on `/metrics`.
    pub metrics: Metrics,
    /// RW 1.0 metadata by metric family name (1.0 senders send metadata apart from series).
    families: RwLock<HashMap<String, ingest::FamilyMeta>>,
    /// Series ref → fingerprint of the metadata last logged for it.
    logged_meta: Mutex<HashMap<u64, u64>>,
    /// RW 1.0 series recognised by their wire bytes.
    series_cache: cache::SharedCache,
}

impl Receiver {
    /// A receiver with the given limits.
    pub fn new(limits: Limits) -> Receiver {
        Receiver {
            limits,
            ..Receiver::default()
        }
    }
}

static GLOBAL: OnceLock<Arc<Receiver>> = OnceLock::new();

/// Sets the limits of the process-wide receiver used by the HTTP server. Only the first
/// call (or the first use of [`global`]) decides; returns whether these limits took effect.
pub fn configure(limits: Limits) -> bool {
    let mut took = false;
    let r = GLOBAL.get_or_init(|| {
        took = true;
        Arc::new(Receiver::new(limits.clone()))
    });
    took || r.limits == limits
}

/// The process-wide receiver used by the HTTP server (default limits unless
/// [`configure`] ran first).
pub fn global() -> Arc<Receiver> {
    GLOBAL
        .get_or_init(|| Arc::new(Receiver::new(Limits::default())))
        .clone()
}

/// Appends the receiver's counters to a `/metrics` exposition.
pub fn render_metrics(out: &mut String) {
    global().metrics.render_into(out);
}
