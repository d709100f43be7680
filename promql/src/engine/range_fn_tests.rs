//! Tests of the streamed range-function evaluation and of aggregations folded into it
//! (`sum by (job) (rate(x[5m]))`): results must be bit-identical to aggregating the
//! function's full output step by step, in the same output order, on data with counter
//! resets, NaN, ±Inf, stale markers and gaps. Test-only; no production code.
#![allow(clippy::unwrap_used)]

use vigil_storage::chunkenc::stale_nan;
use vigil_storage::Labels;

use super::{Engine, EngineOpts, MemStorage, Series, Value};
use crate::kernels::stats::{AvgAcc, SumAcc, VarianceAcc};

const SCRAPE_MS: i64 = 15_000;
const STEPS: i64 = 80;
const QUERY_START_MS: i64 = 10 * SCRAPE_MS;
const QUERY_END_MS: i64 = STEPS * SCRAPE_MS;
const QUERY_STEP_MS: i64 = 30_000;

/// A deterministic pseudo-random sequence (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// 24 counter-like series over 4 jobs: irregular increments, resets, gaps, a stale marker
/// here and there, and a few NaN / +Inf samples; some series start late or end early.
fn store() -> MemStorage {
    let mut rng = Rng(7);
    let mut batch = Vec::new();
    for i in 0..24 {
        let labels = Labels::from_pairs(&[
            ("__name__", "x_total".to_string()),
            ("job", format!("j{}", i % 4)),
            ("instance", format!("i{i:02}")),
        ])
        .unwrap();
        let first = if i % 5 == 0 { 40 } else { 0 };
        let last = if i % 7 == 3 { 50 } else { STEPS };
        let mut v = 0.0;
        let mut samples = Vec::new();
        for k in first..=last {
            if rng.below(10) == 0 {
                continue; // a missed scrape
            }
            let t = k * SCRAPE_MS + rng.below(2_000) as i64;
            v = match rng.below(40) {
                0 => rng.below(5) as f64, // reset
                1 => f64::NAN,
                2 if i == 5 => f64::INFINITY,
                3 => stale_nan(),
                _ if v.is_finite() => v + rng.below(1_000) as f64 / 7.0,
                _ => 1.0,
            };
            samples.push((t, v));
        }
        batch.push((labels, samples));
    }
    let s = MemStorage::new();
    s.append_batch(&batch).unwrap();
    s
}

/// An engine with the experimental functions on (`limitk`).
fn engine() -> Engine {
    Engine::new(EngineOpts {
        parser_options: crate::parser::ParserOptions::all(),
        ..EngineOpts::default()
    })
}

fn range(s: &MemStorage, q: &str) -> Vec<Series> {
    match engine()
        .range(s, q, QUERY_START_MS, QUERY_END_MS, QUERY_STEP_MS)
        .unwrap()
        .value
    {
        Value::Matrix(m) => m,
        other => panic!("expected a matrix, got {other:?}"),
    }
}

/// The aggregation `op` by `job` of `input` computed step by step, adding each step's
/// values in input order, as Prometheus does.
fn reference(op: &str, input: &[Series]) -> Vec<(String, Vec<(i64, u64)>)> {
    let mut jobs: Vec<String> = input
        .iter()
        .map(|s| s.labels.get("job").unwrap().to_string())
        .collect();
    jobs.sort();
    jobs.dedup();
    let mut out = Vec::new();
    for job in jobs {
        let mut points = Vec::new();
        let mut t = QUERY_START_MS;
        while t <= QUERY_END_MS {
            let vals: Vec<f64> = input
                .iter()
                .filter(|s| s.labels.get("job") == Some(job.as_str()))
                .filter_map(|s| s.points.iter().find(|p| p.t == t).map(|p| p.v))
                .collect();
            if let Some(&first) = vals.first() {
                let v = match op {
                    "sum" => {
                        let mut a = SumAcc::new();
                        vals.iter().for_each(|v| a.add(*v));
                        a.value()
                    }
                    "avg" => {
                        let mut a = AvgAcc::new();
                        vals.iter().for_each(|v| a.add(*v));
                        a.value()
                    }
                    "stdvar" => {
                        let mut a = VarianceAcc::new();
                        vals.iter().for_each(|v| a.add(*v));
                        a.stdvar()
                    }
                    "count" => vals.len() as f64,
                    "group" => 1.0,
                    "max" => vals[1..].iter().fold(
                        first,
                        |m, &v| {
                            if m < v || m.is_nan() {
                                v
                            } else {
                                m
                            }
                        },
                    ),
                    _ => unreachable!("op {op}"),
                };
                points.push((t, v.to_bits()));
            }
            t += QUERY_STEP_MS;
        }
        if !points.is_empty() {
            out.push((job, points));
        }
    }
    out
}

fn bits(m: &[Series]) -> Vec<(String, Vec<(i64, u64)>)> {
    m.iter()
        .map(|s| {
            (
                s.labels.get("job").unwrap_or("").to_string(),
                s.points.iter().map(|p| (p.t, p.v.to_bits())).collect(),
            )
        })
        .collect()
}

#[test]
fn folded_aggregations_match_step_by_step_aggregation() {
    let s = store();
    for func in [
        "rate(x_total[1m])",
        "rate(x_total[5m])",
        "increase(x_total[3m])",
        "delta(x_total[2m])",
        "avg_over_time(x_total[5m])",
        "max_over_time(x_total[90s])",
        "resets(x_total[10m])",
        "irate(x_total[5m] offset 1m)",
        "rate(x_total[4m:30s])",
    ] {
        let input = range(&s, func);
        assert!(input.len() > 10, "{func}: {} series", input.len());
        for op in ["sum", "avg", "stdvar", "count", "group", "max"] {
            let q = format!("{op} by (job) ({func})");
            assert_eq!(bits(&range(&s, &q)), reference(op, &input), "{q}");
        }
    }
}

#[test]
fn folded_and_materialised_aggregations_agree() {
    // `-(-f)` is the same values through the ordinary (materialising) path.
    let s = store();
    for q in [
        "sum by (job) (rate(x_total[5m]))",
        "avg without (instance) (increase(x_total[5m]))",
        "min(delta(x_total[3m]))",
        "stddev by (job) (rate(x_total[2m]))",
        "count by (instance) (rate(x_total[5m]))",
    ] {
        let negated = q
            .replacen("(rate", "(-(-rate", 1)
            .replacen("(increase", "(-(-increase", 1)
            .replacen("(delta", "(-(-delta", 1);
        let negated = format!("{negated})");
        assert_ne!(q, negated);
        assert_eq!(bits(&range(&s, q)), bits(&range(&s, &negated)), "{q}");
        let folded = engine().instant(&s, q, QUERY_END_MS).unwrap().value;
        let materialised = engine().instant(&s, &negated, QUERY_END_MS).unwrap().value;
        assert_eq!(format!("{folded:?}"), format!("{materialised:?}"), "{q}");
    }
}

#[test]
fn folded_aggregation_keeps_group_order() {
    // limitk keeps the first series in evaluation order. The aggregation's output order is
    // that of step-by-step evaluation: groups by the first step they appear at, so j1
    // (from the first step) precedes j0 (from the second) although j0's series is
    // selected first.
    let s = MemStorage::new();
    let l = |job: &str, inst: &str| {
        Labels::from_pairs(&[
            ("__name__", "c_total".to_string()),
            ("job", job.to_string()),
            ("instance", inst.to_string()),
        ])
        .unwrap()
    };
    let samples =
        |from: i64| -> Vec<(i64, f64)> { (from..=10).map(|k| (k * SCRAPE_MS, k as f64)).collect() };
    s.append_batch(&[
        (l("j0", "a"), samples(4)),
        (l("j1", "b"), samples(0)),
        (l("j2", "c"), samples(0)),
    ])
    .unwrap();
    let q = "limitk(1, sum by (job) (increase(c_total[1m])))";
    let m = match engine()
        .range(&s, q, 30_000, 150_000, 60_000)
        .unwrap()
        .value
    {
        Value::Matrix(m) => m,
        other => panic!("expected a matrix, got {other:?}"),
    };
    let jobs: Vec<(&str, usize)> = m
        .iter()
        .map(|s| (s.labels.get("job").unwrap_or(""), s.points.len()))
        .collect();
    assert_eq!(jobs, vec![("j1", 3)]);
}

#[test]
fn streamed_selection_counts_every_sample_read() {
    let s = store();
    let full = engine()
        .instant(&s, "x_total[1h]", QUERY_END_MS)
        .unwrap()
        .stats
        .samples_read;
    let r = engine()
        .instant(&s, "sum(rate(x_total[1h]))", QUERY_END_MS)
        .unwrap();
    assert!(full > 1000, "{full}");
    assert_eq!(r.stats.samples_read, full);
}

/// A store with enough series for the multi-threaded path, with resets, NaN and stale
/// markers; labels `job` (10 values) and `instance`.
fn big_store(series: usize) -> MemStorage {
    let mut rng = Rng(11);
    let mut batch = Vec::new();
    for i in 0..series {
        let labels = Labels::from_pairs(&[
            ("__name__", "y_total".to_string()),
            ("job", format!("j{}", i % 10)),
            ("instance", format!("i{i:04}")),
        ])
        .unwrap();
        let mut v = 0.0;
        let mut samples = Vec::new();
        for k in 0..=STEPS {
            if rng.below(8) == 0 {
                continue;
            }
            v = match rng.below(60) {
                0 => 0.0,
                1 => f64::NAN,
                2 => stale_nan(),
                _ if v.is_finite() => v + rng.below(500) as f64 / 3.0,
                _ => 1.0,
            };
            samples.push((k * SCRAPE_MS + (i as i64 % 7) * 100, v));
        }
        batch.push((labels, samples));
    }
    let s = MemStorage::new();
    s.append_batch(&batch).unwrap();
    s
}

fn engine_with_threads(threads: usize) -> Engine {
    Engine::new(EngineOpts {
        max_query_threads: threads,
        parser_options: crate::parser::ParserOptions::all(),
        ..EngineOpts::default()
    })
}

#[test]
fn results_do_not_depend_on_query_threads() {
    let s = big_store(3 * super::range_stream::PARALLEL_MIN_SERIES + 17);
    for q in [
        "sum by (job) (rate(y_total[5m]))",
        "avg(increase(y_total[2m]))",
        // Order-sensitive: Welford's variance rounds differently in another order, and
        // limitk keeps the first series in evaluation order.
        "stdvar by (job) (rate(y_total[5m]))",
        "limitk(3, rate(y_total[5m]))",
        "rate(y_total[1m])",
        "max_over_time(y_total[3m])",
        "absent_over_time(y_total{job=\"j3\"}[1m])",
        "count_over_time(y_total[30s])",
    ] {
        let run = |threads: usize| {
            let r = engine_with_threads(threads)
                .range(&s, q, QUERY_START_MS, QUERY_END_MS, QUERY_STEP_MS)
                .unwrap();
            let Value::Matrix(m) = r.value else {
                panic!("expected a matrix for {q}")
            };
            let bits: Vec<(Labels, Vec<(i64, u64)>)> = m
                .into_iter()
                .map(|s| {
                    (
                        s.labels,
                        s.points.iter().map(|p| (p.t, p.v.to_bits())).collect(),
                    )
                })
                .collect();
            (bits, r.warnings, r.infos, r.stats.samples_read)
        };
        let one = run(1);
        assert!(!one.0.is_empty() || q.starts_with("absent"), "{q}");
        for threads in [2, 3, 8] {
            assert_eq!(run(threads), one, "{q} with {threads} threads");
        }
    }
}

#[test]
fn worker_threads_stop_at_the_timeout() {
    // Thousands of steps over hundreds of series take far longer than the timeout: the
    // query fails with Timeout and returns (no worker is left waiting).
    let s = big_store(2 * super::range_stream::PARALLEL_MIN_SERIES);
    let engine = Engine::new(EngineOpts {
        max_query_threads: 4,
        timeout: std::time::Duration::from_millis(20),
        ..EngineOpts::default()
    });
    let err = engine
        .range(&s, "sum(max_over_time(y_total[1h]))", 0, QUERY_END_MS, 50)
        .unwrap_err();
    assert!(matches!(err, super::Error::Timeout), "{err}");
}

#[test]
fn sample_limit_counts_windows_of_every_thread() {
    let s = big_store(2 * super::range_stream::PARALLEL_MIN_SERIES);
    let q = "sum(rate(y_total[10m]))";
    let ok = |max_samples: usize, threads: usize| {
        Engine::new(EngineOpts {
            max_samples,
            max_query_threads: threads,
            ..EngineOpts::default()
        })
        .range(&s, q, QUERY_START_MS, QUERY_END_MS, QUERY_STEP_MS)
        .is_ok()
    };
    // Find the smallest limit that passes on one thread; threads must agree on it.
    let (mut lo, mut hi) = (0usize, 1usize << 24);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if ok(mid, 1) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    assert!(hi > 1000, "{hi}");
    assert!(ok(hi, 4));
    assert!(!ok(hi - 1, 4));
}
