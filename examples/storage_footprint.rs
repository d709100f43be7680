//! Storage footprint measurement: 100k series (half counters increasing by small integers,
//! half gauges with quarter-unit precision, each changing at some scrapes only) scraped every 15s for 4h are appended through a `Db`;
//! then the first 2h are compacted into a block. Reports append throughput, head memory
//! per active series (RSS delta and the head's own accounting) and block bytes per sample.
//!
//! Run: `cargo run --release --example storage_footprint [DATA_DIR]` (a temporary
//! directory by default). A measurement tool: prints its report, asserts nothing.

use std::path::{Path, PathBuf};
use std::time::Instant;

use vigil_storage::{Db, DbOptions, Labels};

const SERIES: usize = 100_000;
const METRICS: usize = 100;
const INTERVAL_MS: i64 = 15_000;
const HOURS: i64 = 4;
const RANGE_MS: i64 = 2 * 3600 * 1000;
/// Series per commit.
const BATCH: usize = 10_000;
/// Page size for /proc/self/statm.
const PAGE_BYTES: u64 = 4096;

/// xorshift64*, to make values look like real counters and gauges.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|x| x.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * PAGE_BYTES)
}

fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir: PathBuf = std::env::args()
        .nth(1)
        .map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    let labels: Vec<Labels> = (0..SERIES)
        .map(|i| {
            let m = i % METRICS;
            let kind = if m % 2 == 0 { "total" } else { "bytes" };
            Labels::from_pairs(&[
                ("__name__", format!("app_metric_{m:03}_{kind}")),
                ("job", format!("service-{}", i / 10_000)),
                (
                    "instance",
                    format!("10.1.{}.{}:8080", (i / METRICS) / 250, (i / METRICS) % 250),
                ),
                ("env", "prod".to_string()),
            ])
        })
        .collect::<Result<_, _>>()?;
    let rss_before = rss_bytes();
    let db = Db::open(
        &dir,
        DbOptions {
            retention_ms: 0,
            ..DbOptions::default()
        },
    )?;
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut values: Vec<f64> = (0..SERIES).map(|i| (i % 1000) as f64).collect();
    let mut refs = vec![0u64; SERIES];
    let steps = HOURS * 3600 * 1000 / INTERVAL_MS;
    let mut appended = 0u64;
    let mut append_time = std::time::Duration::ZERO;
    for step in 0..steps {
        let t = step * INTERVAL_MS;
        for start in (0..SERIES).step_by(BATCH) {
            // Values are computed outside the timed section. Like real exporters, not
            // every series changes at every scrape: a counter grows by 1..=4 at about a
            // third of scrapes; a gauge (quarter-unit precision) moves at half of them.
            for (i, v) in values.iter_mut().enumerate().skip(start).take(BATCH) {
                let r = rng.next();
                if (i % METRICS) % 2 == 0 {
                    if r % 3 == 0 {
                        *v += ((r >> 8) % 4 + 1) as f64;
                    }
                } else if r % 2 == 0 {
                    let delta = ((r >> 8) % 9) as f64 * 0.25 - 1.0;
                    *v = (*v + delta).max(0.0);
                }
            }
            let t0 = Instant::now();
            let mut app = db.appender();
            for i in start..(start + BATCH).min(SERIES) {
                refs[i] = if refs[i] == 0 {
                    app.append(&labels[i], t, values[i])?
                } else {
                    app.append_ref(refs[i], t, values[i])?
                };
            }
            appended += app.commit()?.appended;
            append_time += t0.elapsed();
        }
    }
    let rss_after = rss_bytes();
    let head_bytes = db.head().approx_memory_bytes() as u64;
    let series = db.head().num_series();
    let t0 = Instant::now();
    db.compact_head_range(0, RANGE_MS)?;
    let compact_time = t0.elapsed();
    let blocks = db.blocks();
    let block = blocks.first().ok_or("no block written")?;
    let block_samples = block.meta().stats.num_samples;
    let chunk_bytes = dir_size(&block.dir().join("chunks"));
    let block_bytes = dir_size(block.dir());

    println!("series:                    {series}");
    println!("samples appended:          {appended}");
    println!(
        "append throughput:         {:.2} M samples/s (1 thread, WAL on, {BATCH} samples/commit)",
        appended as f64 / append_time.as_secs_f64() / 1e6
    );
    println!(
        "head memory / series:      {} B (Head::approx_memory_bytes)",
        head_bytes / series.max(1)
    );
    println!(
        "RSS delta / series:        {} B (includes labels, postings, page cache of mmapped head chunks)",
        rss_after.saturating_sub(rss_before) / series.max(1)
    );
    println!(
        "block (first 2h):          {block_samples} samples, {block_bytes} B total, {chunk_bytes} B chunks"
    );
    println!(
        "bytes / sample:            {:.3} total, {:.3} chunks only",
        block_bytes as f64 / block_samples.max(1) as f64,
        chunk_bytes as f64 / block_samples.max(1) as f64
    );
    println!(
        "head compaction (2h):      {:.2} s",
        compact_time.as_secs_f64()
    );
    db.close()?;
    Ok(())
}
