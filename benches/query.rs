//! Storage read-path benchmarks: select (postings, labels, chunk handles) and select +
//! decode of 10k counter series x 1h at 15s, once from the head and once from a persisted
//! block, through the public `Queryable`/`Querier`/`Series` API that PromQL uses. Also a
//! narrow selector (100 of the 10k series) to show the per-query fixed cost. No assertions
//! on time; results are checked only for the expected series and sample counts.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use vigil_storage::{Db, DbOptions, Labels, Matcher, Queryable, Sample};

const SERIES: usize = 10_000;
const JOBS: usize = 100;
const SCRAPE_MS: i64 = 15_000;
const HOUR_MS: i64 = 3_600_000;
/// Samples per series in `[0, HOUR_MS]` at `SCRAPE_MS`.
const SAMPLES_PER_SERIES: usize = (HOUR_MS / SCRAPE_MS) as usize + 1;
/// The default smallest block range (2h): the block written for the block benchmarks.
const BLOCK_RANGE_MS: i64 = 2 * HOUR_MS;

fn build_db(dir: &std::path::Path) -> Arc<Db> {
    let db = Db::open(dir, DbOptions::default()).unwrap();
    let series: Vec<Labels> = (0..SERIES)
        .map(|i| {
            Labels::from_pairs(&[
                ("__name__", "x".to_string()),
                ("job", format!("job{}", i % JOBS)),
                ("instance", format!("i{i}")),
            ])
            .unwrap()
        })
        .collect();
    let mut t = 0;
    while t <= HOUR_MS {
        let mut app = db.appender();
        let n = (t / SCRAPE_MS) as f64;
        for (i, l) in series.iter().enumerate() {
            app.append(l, t, n * (1 + i % 7) as f64 + (i % 13) as f64 * 0.25)
                .unwrap();
        }
        app.commit().unwrap();
        t += SCRAPE_MS;
    }
    db
}

/// Selects `matchers` over the hour; returns the number of series.
fn select(db: &Db, matchers: &[Matcher]) -> usize {
    let q = db.querier(0, HOUR_MS).unwrap();
    q.select(matchers).unwrap().len()
}

/// Selects and decodes every series; returns the total number of samples.
fn select_decode(db: &Db, matchers: &[Matcher], buf: &mut Vec<Sample>) -> usize {
    let q = db.querier(0, HOUR_MS).unwrap();
    let mut n = 0;
    for s in q.select(matchers).unwrap() {
        s.samples_into(buf).unwrap();
        n += buf.len();
    }
    n
}

fn bench(c: &mut Criterion) {
    let head_dir = tempfile::tempdir().unwrap();
    let head_db = build_db(head_dir.path());
    let block_dir = tempfile::tempdir().unwrap();
    let block_db = build_db(block_dir.path());
    block_db.compact_head_range(0, BLOCK_RANGE_MS).unwrap();
    assert_eq!(block_db.blocks().len(), 1);
    assert!(block_db.head().is_empty());

    let all = [Matcher::equal("__name__", "x")];
    let one_job = [
        Matcher::equal("__name__", "x"),
        Matcher::equal("job", "job7"),
    ];
    let mut buf = Vec::new();
    for db in [&head_db, &block_db] {
        assert_eq!(select(db, &all), SERIES);
        assert_eq!(
            select_decode(db, &all, &mut buf),
            SERIES * SAMPLES_PER_SERIES
        );
        assert_eq!(select(db, &one_job), SERIES / JOBS);
    }

    let mut g = c.benchmark_group("query");
    g.sample_size(10);
    for (name, db) in [("head", &head_db), ("block", &block_db)] {
        g.bench_function(format!("{name}/select_10k"), |b| {
            b.iter(|| select(db, &all))
        });
        g.bench_function(format!("{name}/select_decode_10k"), |b| {
            b.iter(|| select_decode(db, &all, &mut buf))
        });
        g.bench_function(format!("{name}/select_decode_100"), |b| {
            b.iter(|| select_decode(db, &one_job, &mut buf))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
