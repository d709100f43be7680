//! Head append throughput: batches of 1000 samples per commit over ~10k series with
//! realistic label sets, single-threaded and with 2 and 4 writer threads, both through a
//! full `Db` (WAL logged and fsynced per commit, group-committed across threads) and on a
//! head without a WAL (the in-memory cost alone). A second group measures the series
//! lookup a remote-write receiver does per sample over 50k series (the end-to-end
//! workload's size): owned `Labels` built per sample and `append`, against
//! `append_borrowed` with borrowed pairs. Benchmarks only; never asserts on time.

use std::hint::black_box;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vigil_storage::head::{Head, HeadOptions};
use vigil_storage::{Db, DbOptions, Labels};

/// Series in the working set.
const SERIES: usize = 10_000;
/// Samples per commit.
const BATCH: usize = 1_000;
/// Scrape interval between rounds over the series (ms).
const INTERVAL_MS: i64 = 15_000;
/// Metric names × instances = SERIES.
const METRICS: usize = 50;
const INSTANCES: usize = SERIES / METRICS;

fn series_labels() -> Vec<Labels> {
    let mut out = Vec::with_capacity(SERIES);
    for m in 0..METRICS {
        for i in 0..INSTANCES {
            out.push(
                Labels::from_pairs(&[
                    ("__name__", format!("node_metric_{m:02}_total")),
                    ("job", "node".to_string()),
                    ("instance", format!("10.0.{}.{}:9100", i / 250, i % 250)),
                    (
                        "env",
                        if i % 3 == 0 { "prod" } else { "staging" }.to_string(),
                    ),
                    ("region", format!("eu-west-{}", i % 4)),
                ])
                .expect("valid labels"),
            );
        }
    }
    out
}

/// Something that hands out appenders.
trait Target: Send + Sync {
    fn appender(&self) -> vigil_storage::Appender;
}
impl Target for Arc<Db> {
    fn appender(&self) -> vigil_storage::Appender {
        Db::appender(self)
    }
}
impl Target for Arc<Head> {
    fn appender(&self) -> vigil_storage::Appender {
        Head::appender(self)
    }
}

/// Writer `w` of `writers` owns series `w, w+writers, …`; one commit appends one sample
/// to each of the next `BATCH` of them. Each writer keeps its own clock so timestamps stay
/// in order per series.
struct Writer {
    refs: Vec<u64>,
    mine: Vec<usize>,
    pos: usize,
    t: i64,
}

impl Writer {
    fn new(w: usize, writers: usize, start: i64) -> Writer {
        let mine: Vec<usize> = (w..SERIES).step_by(writers).collect();
        Writer {
            refs: vec![0; mine.len()],
            mine,
            pos: 0,
            t: start,
        }
    }

    fn commit(&mut self, target: &dyn Target, labels: &[Labels]) {
        let mut app = target.appender();
        for _ in 0..BATCH {
            let k = self.pos;
            let v = (self.t / 1000) as f64;
            let r = if self.refs[k] != 0 {
                app.append_ref(self.refs[k], self.t, v)
            } else {
                app.append(&labels[self.mine[k]], self.t, v)
            };
            self.refs[k] = r.expect("append");
            self.pos += 1;
            if self.pos == self.mine.len() {
                self.pos = 0;
                self.t += INTERVAL_MS;
            }
        }
        black_box(app.commit().expect("commit"));
    }
}

/// Runs `iters` commits per writer on `writers` threads and returns the wall time.
fn run(
    target: &Arc<dyn Target>,
    labels: &Arc<Vec<Labels>>,
    writers: usize,
    iters: u64,
    clock: &AtomicI64,
) -> Duration {
    // Each measurement starts later than anything written before, per writer.
    let start = clock.fetch_add(
        iters as i64 * INTERVAL_MS * 8 + 3_600_000,
        Ordering::Relaxed,
    );
    let mut ws: Vec<Writer> = (0..writers)
        .map(|w| Writer::new(w, writers, start))
        .collect();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for w in ws.iter_mut() {
            let target = target.clone();
            let labels = labels.clone();
            s.spawn(move || {
                for _ in 0..iters {
                    w.commit(&*target, &labels);
                }
            });
        }
    });
    t0.elapsed()
}

fn bench_append(c: &mut Criterion) {
    let labels = Arc::new(series_labels());
    let mut g = c.benchmark_group("head_append");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(4));
    for with_wal in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let target: Arc<dyn Target> = if with_wal {
            Arc::new(
                Db::open(
                    dir.path(),
                    DbOptions {
                        retention_ms: 0,
                        ..DbOptions::default()
                    },
                )
                .expect("open db"),
            )
        } else {
            Arc::new(Arc::new(
                Head::new(dir.path(), HeadOptions::default()).expect("head"),
            ))
        };
        let clock = AtomicI64::new(0);
        for writers in [1usize, 2, 4] {
            g.throughput(Throughput::Elements((BATCH * writers) as u64));
            let name = format!(
                "{}/{writers}_threads",
                if with_wal { "wal" } else { "memory" }
            );
            g.bench_function(name, |b| {
                b.iter_custom(|iters| run(&target, &labels, writers, iters, &clock))
            });
        }
    }
    g.finish();
}

/// Series in the lookup benchmark: the end-to-end benchmark's count.
const LOOKUP_SERIES: usize = 50_000;
/// Samples per commit in the lookup benchmark: one remote-write request of the workload.
const LOOKUP_BATCH: usize = 2_000;

/// node_exporter-like label pairs, sorted by name, 9 per series.
fn lookup_pairs() -> Vec<Vec<(String, String)>> {
    (0..LOOKUP_SERIES)
        .map(|i| {
            let target = i / 100;
            vec![
                (
                    "__name__".into(),
                    format!("node_metric_{}_total", i % 100 / 8),
                ),
                ("az".into(), format!("az-{}", target % 3)),
                ("cpu".into(), format!("{}", i % 8)),
                ("env".into(), "prod".into()),
                (
                    "instance".into(),
                    format!("10.1.{}.{}:9100", target / 250, target % 250),
                ),
                ("job".into(), format!("job-{}", target % 10)),
                ("mode".into(), format!("mode-{}", i % 100 % 8)),
                ("region".into(), format!("eu-{}", target % 4)),
                ("team".into(), format!("team-{}", target % 7)),
            ]
        })
        .collect()
}

/// Appends one sample to each of the next `LOOKUP_BATCH` series per commit.
fn lookup_round(
    head: &Arc<Head>,
    series: &[Vec<(String, String)>],
    pos: &mut usize,
    borrowed: bool,
) {
    let mut app = head.appender();
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(16);
    for _ in 0..LOOKUP_BATCH {
        let k = *pos % LOOKUP_SERIES;
        let t = (*pos / LOOKUP_SERIES) as i64 * INTERVAL_MS;
        let s = &series[k];
        let r = if borrowed {
            pairs.clear();
            pairs.extend(s.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            app.append_borrowed(&pairs, t, 1.0)
        } else {
            let labels = Labels::from_pairs(s).expect("valid labels");
            app.append(&labels, t, 1.0)
        };
        black_box(r.expect("append"));
        *pos += 1;
    }
    black_box(app.commit().expect("commit"));
}

fn bench_lookup(c: &mut Criterion) {
    let series = lookup_pairs();
    let mut g = c.benchmark_group("head_lookup_50k_series");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(LOOKUP_BATCH as u64));
    for (name, borrowed) in [("owned_labels_per_sample", false), ("borrowed", true)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let head = Arc::new(Head::new(dir.path(), HeadOptions::default()).expect("head"));
        let mut pos = 0usize;
        // Create every series first: the benchmark measures lookups of existing series.
        while pos < LOOKUP_SERIES {
            lookup_round(&head, &series, &mut pos, borrowed);
        }
        g.bench_function(name, |b| {
            b.iter(|| lookup_round(&head, &series, &mut pos, borrowed))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_append, bench_lookup);
criterion_main!(benches);
