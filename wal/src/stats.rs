//! WAL counters for `/metrics` (Prometheus names: `prometheus_tsdb_wal_fsync_duration_seconds`,
//! `..._page_flushes_total`, `..._completed_pages_total`, `..._truncations_total`, …).
//! Owns the atomics and their snapshot; must never take a lock or do I/O.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Live counters, updated with relaxed atomics by the writer.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) fsyncs: AtomicU64,
    pub(crate) fsync_nanos: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) records_written: AtomicU64,
    pub(crate) page_flushes: AtomicU64,
    pub(crate) page_completions: AtomicU64,
    pub(crate) truncations: AtomicU64,
    pub(crate) truncations_failed: AtomicU64,
    pub(crate) corruptions: AtomicU64,
    pub(crate) writes_failed: AtomicU64,
    pub(crate) group_commits: AtomicU64,
    pub(crate) current_segment: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn observe_fsync(&self, took: Duration) {
        Self::add(&self.fsyncs, 1);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        Self::add(&self.fsync_nanos, nanos);
    }

    pub(crate) fn snapshot(&self) -> WalStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let fsyncs = get(&self.fsyncs);
        WalStats {
            fsyncs,
            fsync_duration_seconds_sum: get(&self.fsync_nanos) as f64 / NANOS_PER_SECOND,
            fsync_duration_seconds_count: fsyncs,
            bytes_written: get(&self.bytes_written),
            records_written: get(&self.records_written),
            page_flushes: get(&self.page_flushes),
            page_completions: get(&self.page_completions),
            truncations: get(&self.truncations),
            truncations_failed: get(&self.truncations_failed),
            corruptions: get(&self.corruptions),
            writes_failed: get(&self.writes_failed),
            group_commits: get(&self.group_commits),
            current_segment: get(&self.current_segment),
        }
    }
}

const NANOS_PER_SECOND: f64 = 1e9;

/// A snapshot of the WAL's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WalStats {
    /// fsync calls on segment files (`prometheus_tsdb_wal_fsync_duration_seconds_count`).
    pub fsyncs: u64,
    /// Total seconds spent in segment fsyncs (`..._fsync_duration_seconds_sum`).
    pub fsync_duration_seconds_sum: f64,
    /// Same as `fsyncs`; named for the summary's `_count`.
    pub fsync_duration_seconds_count: u64,
    /// Bytes written to segment files, including headers and padding.
    pub bytes_written: u64,
    /// Records accepted and made durable.
    pub records_written: u64,
    /// write(2) calls of page data (`prometheus_tsdb_wal_page_flushes_total`).
    pub page_flushes: u64,
    /// Pages filled or padded to their end (`prometheus_tsdb_wal_completed_pages_total`).
    pub page_completions: u64,
    /// Truncation attempts (`prometheus_tsdb_wal_truncations_total`).
    pub truncations: u64,
    /// Failed truncations (`prometheus_tsdb_wal_truncations_failed_total`).
    pub truncations_failed: u64,
    /// Corruptions reported via [`crate::Wal::note_corruption`] (`..._corruptions_total`).
    pub corruptions: u64,
    /// Failed writes or fsyncs (`prometheus_tsdb_wal_writes_failed_total`).
    pub writes_failed: u64,
    /// Group commits: one write + one fsync serving one or more `log` calls.
    pub group_commits: u64,
    /// Index of the segment being written (`prometheus_tsdb_wal_segment_current`).
    pub current_segment: u64,
}
