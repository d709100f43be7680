//! Head → block compaction: a head holding 10k series × 2h at a 15s interval (4.8M
//! samples, counters and gauges) is written into one 2h block and truncated. The head is
//! filled outside the measurement, once per sample. Benchmarks only; never asserts on time.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use vigil_storage::{Db, DbOptions, Labels};

const SERIES: usize = 10_000;
const RANGE_MS: i64 = 2 * 3600 * 1000;
const INTERVAL_MS: i64 = 15_000;
const SAMPLES_PER_SERIES: i64 = RANGE_MS / INTERVAL_MS;
const BATCH_SERIES: usize = 1_000;

fn labels() -> Vec<Labels> {
    (0..SERIES)
        .map(|i| {
            Labels::from_pairs(&[
                ("__name__", format!("app_metric_{:02}", i % 50)),
                ("job", "app".to_string()),
                ("instance", format!("pod-{}", i / 50)),
            ])
            .expect("valid labels")
        })
        .collect()
}

/// A database whose head holds `[0, 2h)` plus one sample after it.
fn filled(labels: &[Labels]) -> (tempfile::TempDir, std::sync::Arc<Db>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(
        dir.path(),
        DbOptions {
            retention_ms: 0,
            ..DbOptions::default()
        },
    )
    .expect("open");
    let mut refs = vec![0u64; SERIES];
    for step in 0..=SAMPLES_PER_SERIES {
        let t = step * INTERVAL_MS;
        for chunk in (0..SERIES).collect::<Vec<_>>().chunks(BATCH_SERIES) {
            let mut app = db.appender();
            for &i in chunk {
                // Even series count up by small integers, odd ones are 2-decimal gauges.
                let v = if i % 2 == 0 {
                    (step * (i as i64 % 7 + 1)) as f64
                } else {
                    ((step * 37 + i as i64) % 1000) as f64 / 100.0
                };
                refs[i] = if refs[i] == 0 {
                    app.append(&labels[i], t, v)
                } else {
                    app.append_ref(refs[i], t, v)
                }
                .expect("append");
            }
            app.commit().expect("commit");
        }
    }
    (dir, db)
}

fn bench_compaction(c: &mut Criterion) {
    let labels = labels();
    let mut g = c.benchmark_group("compaction");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(
        SERIES as u64 * SAMPLES_PER_SERIES as u64,
    ));
    g.bench_function("head_to_2h_block_10k_series", |b| {
        b.iter_batched(
            || filled(&labels),
            |(dir, db)| {
                db.compact_head_range(0, RANGE_MS).expect("compact");
                assert_eq!(db.blocks().len(), 1);
                (dir, db)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_compaction);
criterion_main!(benches);
