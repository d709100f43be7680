//! PromQL evaluation benchmarks over a tempdir `Db`: 10k counter series (100 jobs) and 10k
//! classic histogram bucket series (1000 groups x 10 `le`), 1h of samples at 15s, queried
//! with `sum by (job) (rate(x[5m]))` and
//! `histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))`, instant and range (1h at
//! 15s step). Measures the engine through the real storage read path; no assertions on time.
//! The range queries are also measured on one thread (`*/1_thread`, `max_query_threads =
//! 1`) and in process CPU time (`*/cpu`: all threads, from `/proc/self/stat` on Linux, 10 ms
//! resolution), which other load on a shared machine disturbs far less than wall time.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use vigil_promql::engine::{Engine, EngineOpts};
use vigil_storage::{Db, DbOptions, Labels};

const SERIES: usize = 10_000;
const JOBS: usize = 100;
const BUCKETS: [&str; 10] = [
    "0.005", "0.01", "0.05", "0.1", "0.5", "1", "2.5", "5", "10", "+Inf",
];
const SCRAPE_MS: i64 = 15_000;
const HOUR_MS: i64 = 3_600_000;

fn build_db(dir: &std::path::Path) -> Arc<Db> {
    let db = Db::open(dir, DbOptions::default()).unwrap();
    let counters: Vec<Labels> = (0..SERIES)
        .map(|i| {
            Labels::from_pairs(&[
                ("__name__", "x".to_string()),
                ("job", format!("job{}", i % JOBS)),
                ("instance", format!("i{i}")),
            ])
            .unwrap()
        })
        .collect();
    let groups = SERIES / BUCKETS.len();
    let buckets: Vec<(Labels, f64)> = (0..groups)
        .flat_map(|g| {
            BUCKETS.iter().enumerate().map(move |(bi, le)| {
                (
                    Labels::from_pairs(&[
                        ("__name__", "x_bucket".to_string()),
                        ("instance", format!("i{g}")),
                        ("le", le.to_string()),
                    ])
                    .unwrap(),
                    (bi + 1) as f64,
                )
            })
        })
        .collect();
    let mut t = 0;
    while t <= HOUR_MS {
        let mut app = db.appender();
        let n = (t / SCRAPE_MS) as f64;
        for (i, l) in counters.iter().enumerate() {
            app.append(l, t, n * (1 + i % 7) as f64).unwrap();
        }
        for (l, w) in &buckets {
            app.append(l, t, n * w).unwrap();
        }
        app.commit().unwrap();
        t += SCRAPE_MS;
    }
    db
}

/// Linux reports process CPU times in `/proc` in these ticks per second (`USER_HZ`).
const PROC_TICKS_PER_SECOND: u64 = 100;

/// CPU time (user + system) of the whole process so far, threads that have exited
/// included, from `/proc/self/stat` (10 ms resolution); None where unavailable.
fn process_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = s.get(s.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1000 / PROC_TICKS_PER_SECOND))
}

/// Runs `f` `iters` times; returns the process CPU time spent (wall time if unavailable).
fn cpu_time(iters: u64, mut f: impl FnMut()) -> Duration {
    let (cpu0, wall0) = (process_cpu(), Instant::now());
    for _ in 0..iters {
        f();
    }
    match (cpu0, process_cpu()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => wall0.elapsed(),
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = build_db(dir.path());
    let engine = Engine::new(EngineOpts::default());
    let one_thread = Engine::new(EngineOpts {
        max_query_threads: 1,
        ..EngineOpts::default()
    });
    let queries = [
        ("sum_rate", "sum by (job) (rate(x[5m]))"),
        (
            "histogram_quantile",
            "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))",
        ),
    ];
    let mut g = c.benchmark_group("promql_eval");
    g.sample_size(10);
    for (name, q) in queries {
        g.bench_function(format!("{name}/instant"), |b| {
            b.iter(|| engine.instant(db.as_ref(), q, HOUR_MS).unwrap())
        });
        g.bench_function(format!("{name}/range_1h_15s"), |b| {
            b.iter(|| engine.range(db.as_ref(), q, 0, HOUR_MS, SCRAPE_MS).unwrap())
        });
        g.bench_function(format!("{name}/range_1h_15s/1_thread"), |b| {
            b.iter(|| {
                one_thread
                    .range(db.as_ref(), q, 0, HOUR_MS, SCRAPE_MS)
                    .unwrap()
            })
        });
        g.bench_function(format!("{name}/range_1h_15s/cpu"), |b| {
            b.iter_custom(|iters| {
                cpu_time(iters, || {
                    engine.range(db.as_ref(), q, 0, HOUR_MS, SCRAPE_MS).unwrap();
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
