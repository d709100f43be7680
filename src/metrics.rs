//! Vigil's own `/metrics`: the counters and gauges of the storage engine under Prometheus'
//! metric names (so existing dashboards for Prometheus' TSDB work), plus process metrics,
//! rendered in the text exposition format 0.0.4.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::server::AppState;

/// An exposition being built.
struct Out(String);

impl Out {
    fn metric(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.header(name, kind, help);
        self.sample(name, "", value);
    }

    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: f64) {
        let v = crate::tsdb_tools::format_g(value);
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {v}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {v}");
        }
    }

    fn counter(&mut self, name: &str, help: &str, c: &AtomicU64) {
        self.metric(name, "counter", help, c.load(Ordering::Relaxed) as f64);
    }
}

/// Renders all metrics.
pub fn render(state: &AppState) -> String {
    let mut o = Out(String::with_capacity(8192));
    o.counter(
        "vigil_api_queries_canceled_total",
        "Queries stopped because their client disconnected or they were canceled.",
        &state.api.queries_canceled,
    );
    o.metric(
        "prometheus_engine_queries",
        "gauge",
        "The current number of queries being executed or waiting.",
        state.api.queries_running.load(Ordering::Relaxed) as f64,
    );
    let db = &state.db;
    let head = db.head();
    let hs = &head.stats;
    o.metric(
        "prometheus_tsdb_head_series",
        "gauge",
        "Total number of series in the head block.",
        head.num_series() as f64,
    );
    o.header(
        "prometheus_tsdb_head_samples_appended_total",
        "counter",
        "Total number of appended samples.",
    );
    o.sample(
        "prometheus_tsdb_head_samples_appended_total",
        "type=\"float\"",
        hs.samples_appended.load(Ordering::Relaxed) as f64,
    );
    o.counter(
        "prometheus_tsdb_head_series_created_total",
        "Total number of series created in the head",
        &hs.series_created,
    );
    o.counter(
        "prometheus_tsdb_head_series_removed_total",
        "Total number of series removed in the head",
        &hs.series_removed,
    );
    o.counter(
        "prometheus_tsdb_head_chunks_created_total",
        "Total number of chunks created in the head",
        &hs.chunks_created,
    );
    o.counter(
        "prometheus_tsdb_head_chunks_removed_total",
        "Total number of chunks removed in the head",
        &hs.chunks_removed,
    );
    o.counter(
        "prometheus_tsdb_head_truncations_total",
        "Total number of head truncations attempted.",
        &hs.truncations,
    );
    o.header(
        "prometheus_tsdb_out_of_order_samples_total",
        "counter",
        "Total number of out of order samples ingestion failed attempts.",
    );
    o.sample(
        "prometheus_tsdb_out_of_order_samples_total",
        "type=\"float\"",
        hs.out_of_order_samples.load(Ordering::Relaxed) as f64,
    );
    o.header(
        "prometheus_tsdb_out_of_bound_samples_total",
        "counter",
        "Total number of out of bound samples ingestion failed attempts.",
    );
    o.sample(
        "prometheus_tsdb_out_of_bound_samples_total",
        "type=\"float\"",
        hs.out_of_bounds_samples.load(Ordering::Relaxed) as f64,
    );
    o.counter(
        "vigil_tsdb_duplicate_samples_total",
        "Samples rejected for repeating a timestamp with a different value.",
        &hs.duplicate_samples,
    );
    o.counter(
        "vigil_tsdb_too_far_in_future_samples_total",
        "Samples rejected for a timestamp too far in the future.",
        &hs.too_far_in_future_samples,
    );
    let (min, max) = if head.is_empty() {
        (i64::MAX as f64, i64::MIN as f64)
    } else {
        (head.min_time() as f64, head.max_time() as f64)
    };
    o.metric(
        "prometheus_tsdb_head_min_time",
        "gauge",
        "Minimum time bound of the head block.",
        min,
    );
    o.metric(
        "prometheus_tsdb_head_max_time",
        "gauge",
        "Maximum timestamp of the head block.",
        max,
    );
    let blocks = db.blocks();
    o.metric(
        "prometheus_tsdb_blocks_loaded",
        "gauge",
        "Number of currently loaded data blocks",
        blocks.len() as f64,
    );
    o.metric(
        "prometheus_tsdb_storage_blocks_bytes",
        "gauge",
        "The number of bytes that are currently used for local storage by all blocks.",
        blocks.iter().map(|b| b.size_bytes()).sum::<u64>() as f64,
    );
    o.metric(
        "prometheus_tsdb_lowest_timestamp",
        "gauge",
        "Lowest timestamp value stored in the database.",
        db.min_time().unwrap_or(i64::MAX) as f64,
    );
    let ds = &db.stats;
    o.counter(
        "prometheus_tsdb_compactions_total",
        "Total number of compactions that were executed for the partition.",
        &ds.compactions,
    );
    o.counter(
        "prometheus_tsdb_compactions_failed_total",
        "Total number of compactions that failed for the partition.",
        &ds.compactions_failed,
    );
    o.counter(
        "prometheus_tsdb_reloads_total",
        "Number of times the database reloaded block data from disk.",
        &ds.reloads,
    );
    o.counter(
        "prometheus_tsdb_time_retentions_total",
        "The number of times that blocks were deleted because the maximum time limit was exceeded.",
        &ds.blocks_deleted_retention_time,
    );
    o.counter(
        "prometheus_tsdb_size_retentions_total",
        "The number of times that blocks were deleted because the maximum number of bytes was exceeded.",
        &ds.blocks_deleted_retention_size,
    );
    o.metric(
        "prometheus_tsdb_compaction_duration_seconds_sum",
        "counter",
        "Total seconds spent compacting.",
        ds.compaction_duration_ms_sum.load(Ordering::Relaxed) as f64 / 1000.0,
    );
    wal_metrics(&mut o, db.wal());
    process_metrics(&mut o, state);
    crate::remote::render_metrics(&mut o.0);
    o.0
}

fn wal_metrics(o: &mut Out, wal: &vigil_wal::Wal) {
    let s = wal.stats();
    o.header(
        "prometheus_tsdb_wal_fsync_duration_seconds",
        "summary",
        "Duration of write log fsync.",
    );
    o.sample(
        "prometheus_tsdb_wal_fsync_duration_seconds_sum",
        "",
        s.fsync_duration_seconds_sum,
    );
    o.sample(
        "prometheus_tsdb_wal_fsync_duration_seconds_count",
        "",
        s.fsyncs as f64,
    );
    o.metric(
        "prometheus_tsdb_wal_page_flushes_total",
        "counter",
        "Total number of page flushes.",
        s.page_flushes as f64,
    );
    o.metric(
        "prometheus_tsdb_wal_completed_pages_total",
        "counter",
        "Total number of completed pages.",
        s.page_completions as f64,
    );
    o.metric(
        "prometheus_tsdb_wal_truncations_total",
        "counter",
        "Total number of write log truncations attempted.",
        s.truncations as f64,
    );
    o.metric(
        "prometheus_tsdb_wal_corruptions_total",
        "counter",
        "Total number of WAL corruptions.",
        s.corruptions as f64,
    );
    o.metric(
        "prometheus_tsdb_wal_writes_bytes_total",
        "counter",
        "Total bytes written to the write log.",
        s.bytes_written as f64,
    );
}

fn process_metrics(o: &mut Out, state: &AppState) {
    let start = state
        .start_time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    o.metric(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        start,
    );
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name (which may contain spaces) start after ')'.
        if let Some(rest) = stat.rsplit_once(')').map(|x| x.1) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = 100.0; // USER_HZ on Linux
            if let (Some(ut), Some(st)) = (f.get(11), f.get(12)) {
                let cpu = ut.parse::<f64>().unwrap_or(0.0) + st.parse::<f64>().unwrap_or(0.0);
                o.metric(
                    "process_cpu_seconds_total",
                    "counter",
                    "Total user and system CPU time spent in seconds.",
                    cpu / ticks,
                );
            }
            if let Some(rss) = f.get(21) {
                o.metric(
                    "process_resident_memory_bytes",
                    "gauge",
                    "Resident memory size in bytes.",
                    rss.parse::<f64>().unwrap_or(0.0) * 4096.0,
                );
            }
        }
    }
}
