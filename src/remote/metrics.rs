//! Counters of the remote-write receiver and their rendering in the text exposition format
//! for Vigil's own `/metrics` (`vigil_remote_write_…`). Only counts; never decides anything.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::limits::LimitKind;

/// HTTP status codes the receiver answers with, for the `code` label.
pub const STATUS_CODES: [u16; 5] = [204, 400, 405, 415, 500];

/// Reasons a sample is rejected, for the `reason` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    OutOfOrder,
    OutOfBounds,
    Duplicate,
    TooFarInFuture,
    InvalidSeries,
    LimitExceeded,
}

impl RejectReason {
    /// All reasons, in rendering order.
    pub const ALL: [RejectReason; 6] = [
        RejectReason::OutOfOrder,
        RejectReason::OutOfBounds,
        RejectReason::Duplicate,
        RejectReason::TooFarInFuture,
        RejectReason::InvalidSeries,
        RejectReason::LimitExceeded,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::OutOfOrder => "out_of_order",
            RejectReason::OutOfBounds => "out_of_bounds",
            RejectReason::Duplicate => "duplicate",
            RejectReason::TooFarInFuture => "too_far_in_future",
            RejectReason::InvalidSeries => "invalid_series",
            RejectReason::LimitExceeded => "limit_exceeded",
        }
    }
}

/// The receiver's counters.
#[derive(Default, Debug)]
pub struct Metrics {
    /// Requests by protocol: index 0 = RW 1.0, 1 = RW 2.0 (after content negotiation).
    pub requests_by_protocol: [AtomicU64; 2],
    /// Responses by status code, indexed like [`STATUS_CODES`].
    pub responses_by_code: [AtomicU64; STATUS_CODES.len()],
    /// Float samples committed.
    pub samples_written: AtomicU64,
    /// Float samples rejected, indexed like [`RejectReason::ALL`].
    pub samples_rejected: [AtomicU64; 6],
    /// Native histogram samples rejected (not supported by the storage).
    pub histograms_rejected: AtomicU64,
    /// Exemplars rejected (not supported by the storage).
    pub exemplars_rejected: AtomicU64,
    /// Series skipped for invalid labels.
    pub invalid_series: AtomicU64,
    /// Limits exceeded, indexed like [`LimitKind::ALL`].
    pub limit_exceeded: [AtomicU64; 5],
    /// Metadata entries logged to storage.
    pub metadata_applied: AtomicU64,
}

impl Metrics {
    /// Counts one response.
    pub fn response(&self, code: u16) {
        if let Some(i) = STATUS_CODES.iter().position(|c| *c == code) {
            self.responses_by_code[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts rejected samples.
    pub fn rejected(&self, reason: RejectReason, n: u64) {
        if n > 0 {
            self.samples_rejected[reason as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts an exceeded limit.
    pub fn limit(&self, kind: LimitKind) {
        self.limit_exceeded[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the counters in text format 0.0.4 to `out`.
    pub fn render_into(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        header(
            out,
            "vigil_remote_write_requests_total",
            "Remote-write requests received, by protocol version.",
        );
        for (i, p) in ["1.0", "2.0"].iter().enumerate() {
            let _ = writeln!(
                out,
                "vigil_remote_write_requests_total{{protocol=\"{p}\"}} {}",
                get(&self.requests_by_protocol[i])
            );
        }
        header(
            out,
            "vigil_remote_write_responses_total",
            "Remote-write responses, by HTTP status code.",
        );
        for (i, code) in STATUS_CODES.iter().enumerate() {
            let _ = writeln!(
                out,
                "vigil_remote_write_responses_total{{code=\"{code}\"}} {}",
                get(&self.responses_by_code[i])
            );
        }
        single(
            out,
            "vigil_remote_write_samples_written_total",
            "Float samples received by remote write and committed to storage.",
            get(&self.samples_written),
        );
        header(
            out,
            "vigil_remote_write_samples_rejected_total",
            "Float samples received by remote write and rejected, by reason.",
        );
        for r in RejectReason::ALL {
            let _ = writeln!(
                out,
                "vigil_remote_write_samples_rejected_total{{reason=\"{}\"}} {}",
                r.as_str(),
                get(&self.samples_rejected[r as usize])
            );
        }
        single(
            out,
            "vigil_remote_write_histograms_rejected_total",
            "Native histogram samples rejected by remote write (not supported).",
            get(&self.histograms_rejected),
        );
        single(
            out,
            "vigil_remote_write_exemplars_rejected_total",
            "Exemplars rejected by remote write (not supported).",
            get(&self.exemplars_rejected),
        );
        single(
            out,
            "vigil_remote_write_invalid_series_total",
            "Series skipped by remote write for invalid labels.",
            get(&self.invalid_series),
        );
        header(
            out,
            "vigil_remote_write_limit_exceeded_total",
            "Remote-write requests or series refused for exceeding a limit, by limit.",
        );
        for k in LimitKind::ALL {
            let _ = writeln!(
                out,
                "vigil_remote_write_limit_exceeded_total{{limit=\"{}\"}} {}",
                k.as_str(),
                get(&self.limit_exceeded[k.index()])
            );
        }
        single(
            out,
            "vigil_remote_write_metadata_applied_total",
            "Metric metadata entries received by remote write and logged to storage.",
            get(&self.metadata_applied),
        );
    }
}

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
}

fn single(out: &mut String, name: &str, help: &str, v: u64) {
    header(out, name, help);
    let _ = writeln!(out, "{name} {v}");
}
