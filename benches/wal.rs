//! WAL write benchmarks: realistic records (1–4 KiB, sample-like text that snappy can
//! shrink) logged in batches, each batch acknowledged only after its fsync; one writer,
//! and four concurrent writers sharing fsyncs through group commit. Criterion reports
//! MB/s (bytes group) and records/s (records group). Measures only; asserts nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vigil_wal::{Wal, WalOptions};

const RECORDS_PER_BATCH: usize = 16;
const WRITERS: [usize; 2] = [1, 4];

/// A deterministic record of 1–4 KiB that looks like encoded series/samples.
fn make_records(count: usize) -> Vec<Vec<u8>> {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    (0..count)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = 1024 + (state % 3072) as usize;
            let mut rec = Vec::with_capacity(len);
            while rec.len() < len {
                rec.extend_from_slice(b"http_requests_total{job=\"api\",instance=\"10.0.0.");
                rec.extend_from_slice(&(state as u32 ^ i as u32).to_le_bytes());
                rec.extend_from_slice(&(state >> 7).to_le_bytes());
            }
            rec.truncate(len);
            rec
        })
        .collect()
}

/// Runs `iters` batches on each of `writers` threads; returns the wall time.
fn run(wal: &Arc<Wal>, records: &Arc<Vec<Vec<u8>>>, writers: usize, iters: u64) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let wal = wal.clone();
            let records = records.clone();
            std::thread::spawn(move || {
                for i in 0..iters as usize {
                    let at = ((i * writers + w) * RECORDS_PER_BATCH)
                        % (records.len() - RECORDS_PER_BATCH);
                    let batch: Vec<&[u8]> = records[at..at + RECORDS_PER_BATCH]
                        .iter()
                        .map(|r| r.as_slice())
                        .collect();
                    if let Err(e) = wal.log(&batch) {
                        panic!("benchmark write failed: {e}");
                    }
                }
            })
        })
        .collect();
    for h in handles {
        if h.join().is_err() {
            panic!("benchmark writer panicked");
        }
    }
    start.elapsed()
}

fn bench_wal(c: &mut Criterion) {
    let records = Arc::new(make_records(4096));
    let avg_batch_bytes: u64 = records.iter().map(|r| r.len() as u64).sum::<u64>()
        / records.len() as u64
        * RECORDS_PER_BATCH as u64;
    for (group_name, bytes) in [("wal_write_bytes", true), ("wal_write_records", false)] {
        let mut group = c.benchmark_group(group_name);
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(5));
        for writers in WRITERS {
            let per_iter = writers as u64;
            group.throughput(if bytes {
                Throughput::Bytes(avg_batch_bytes * per_iter)
            } else {
                Throughput::Elements(RECORDS_PER_BATCH as u64 * per_iter)
            });
            let tmp = match tempfile::tempdir() {
                Ok(t) => t,
                Err(e) => panic!("tempdir: {e}"),
            };
            let wal = match Wal::open(tmp.path(), WalOptions::default()) {
                Ok(w) => Arc::new(w),
                Err(e) => panic!("open WAL: {e}"),
            };
            group.bench_with_input(
                BenchmarkId::new("fsync_per_batch_writers", writers),
                &writers,
                |b, &writers| b.iter_custom(|iters| run(&wal, &records, writers, iters)),
            );
            let stats = wal.stats();
            eprintln!(
                "{group_name}/{writers} writers: {} records, {} fsyncs, {:.1} records per fsync",
                stats.records_written,
                stats.fsyncs,
                stats.records_written as f64 / stats.fsyncs.max(1) as f64
            );
        }
        group.finish();
    }
}

criterion_group!(benches, bench_wal);
criterion_main!(benches);
