//! Engine tests for start timestamps over `MemStorage`: which functions read them
//! (`rate`, `increase`, `irate`, `resets`), that subqueries and `delta` do not, that
//! `EngineOpts::use_start_timestamps` and the source switch them off, the overlap
//! warning, and `start_timestamp()`. Test-only; no production code.
#![allow(clippy::unwrap_used)]

use vigil_storage::Labels;

use super::memstore::SampleWithStart;
use super::{Engine, EngineOpts, MemStorage, QueryResult, Value};

const MIN: i64 = 60_000;
const SEC: i64 = 1_000;

/// An engine with every experimental parser feature on (`start_timestamp()`, anchored).
fn engine(use_start_timestamps: bool) -> Engine {
    Engine::new(EngineOpts {
        use_start_timestamps,
        parser_options: crate::parser::ParserOptions::all(),
        ..EngineOpts::default()
    })
}

/// A delta counter `d_total{}`: 60 every minute from 2m to 10m, each sample's start
/// timestamp being the previous sample's time (OTel delta temporality).
fn delta_store() -> MemStorage {
    let samples: Vec<SampleWithStart> = (2..=10).map(|m| (m * MIN, 60.0, (m - 1) * MIN)).collect();
    let s = MemStorage::new();
    s.append_batch_with_start_timestamps(&[(
        Labels::from_pairs(&[("__name__", "d_total")]).unwrap(),
        samples,
    )])
    .unwrap();
    s
}

fn run(e: &Engine, s: &MemStorage, with_source: bool, q: &str, t: i64) -> QueryResult {
    if with_source {
        e.instant_with_start_timestamps(s, s, q, t).unwrap()
    } else {
        e.instant(s, q, t).unwrap()
    }
}

/// The single value of an instant query, None for an empty vector.
fn value(e: &Engine, s: &MemStorage, with_source: bool, q: &str, t: i64) -> Option<f64> {
    match run(e, s, with_source, q, t).value {
        Value::Vector(v) => {
            assert!(v.len() <= 1, "{q}: {v:?}");
            v.first().map(|x| x.v)
        }
        other => panic!("expected a vector, got {other:?}"),
    }
}

#[test]
fn delta_counters_need_start_timestamps() {
    let s = delta_store();
    let on = engine(true);
    let t = 10 * MIN;
    // Every sample is a reset: the increase over 5m is 5 × 60.
    assert_eq!(
        value(&on, &s, true, "increase(d_total[5m])", t),
        Some(300.0)
    );
    assert_eq!(value(&on, &s, true, "rate(d_total[5m])", t), Some(1.0));
    assert_eq!(value(&on, &s, true, "irate(d_total[5m])", t), Some(1.0));
    assert_eq!(value(&on, &s, true, "resets(d_total[5m])", t), Some(4.0));
    // Without start timestamps the series looks constant.
    for (e, with_source) in [(&on, false), (&engine(false), true)] {
        assert_eq!(
            value(e, &s, with_source, "increase(d_total[5m])", t),
            Some(0.0)
        );
        assert_eq!(
            value(e, &s, with_source, "irate(d_total[5m])", t),
            Some(0.0)
        );
        assert_eq!(
            value(e, &s, with_source, "resets(d_total[5m])", t),
            Some(0.0)
        );
    }
    // Subqueries cut start timestamps; delta() and changes() never read them.
    assert_eq!(
        value(&on, &s, true, "increase(d_total[5m:1m])", t),
        Some(0.0)
    );
    assert_eq!(value(&on, &s, true, "delta(d_total[5m])", t), Some(0.0));
    assert_eq!(value(&on, &s, true, "changes(d_total[5m])", t), Some(0.0));
    // The anchored resets reads them too (the anchor sample at 5m included).
    assert_eq!(
        value(&on, &s, true, "resets(d_total[5m] anchored)", t),
        Some(5.0)
    );
}

#[test]
fn first_sample_rises_from_zero_at_its_start_timestamp() {
    // One sample of 60 created 30s before it, inside the window: increase 60, no
    // extrapolation; with a start timestamp outside the window, no result.
    let s = MemStorage::new();
    let l = |n: &str| Labels::from_pairs(&[("__name__", n)]).unwrap();
    s.append_batch_with_start_timestamps(&[
        (l("inside_total"), vec![(4 * MIN, 60.0, 4 * MIN - 30 * SEC)]),
        (l("outside_total"), vec![(4 * MIN, 60.0, MIN)]),
    ])
    .unwrap();
    let on = engine(true);
    assert_eq!(
        value(&on, &s, true, "increase(inside_total[2m])", 4 * MIN),
        Some(60.0)
    );
    assert_eq!(
        value(&on, &s, true, "increase(outside_total[2m])", 4 * MIN),
        None
    );
    assert_eq!(
        value(&on, &s, false, "increase(inside_total[2m])", 4 * MIN),
        None
    );
}

#[test]
fn overlapping_start_timestamps_warn_once() {
    // Each start timestamp points two minutes back, before the previous sample.
    let samples: Vec<SampleWithStart> = (2..=4)
        .map(|m| (m * MIN, 60.0 * m as f64, (m - 2) * MIN + 1))
        .collect();
    let s = MemStorage::new();
    s.append_batch_with_start_timestamps(&[(
        Labels::from_pairs(&[("__name__", "c_total")]).unwrap(),
        samples,
    )])
    .unwrap();
    let want = "PromQL warning: sample has start time that overlaps with previous sample timestamp for metric \"c_total\" (1:6)";
    let res = run(&engine(true), &s, true, "rate(c_total[3m])", 4 * MIN);
    assert_eq!(res.warnings, vec![want.to_string()]);
    let res = run(&engine(false), &s, true, "rate(c_total[3m])", 4 * MIN);
    assert!(res.warnings.is_empty());
    // Valid delta start timestamps do not warn.
    let res = run(
        &engine(true),
        &delta_store(),
        true,
        "rate(d_total[3m])",
        4 * MIN,
    );
    assert!(res.warnings.is_empty(), "{:?}", res.warnings);
}

#[test]
fn start_timestamp_function() {
    let s = delta_store();
    let on = engine(true);
    // The selected sample's start timestamp in seconds; the name is dropped.
    let res = run(
        &on,
        &s,
        true,
        "start_timestamp(d_total)",
        5 * MIN + 30 * SEC,
    );
    match res.value {
        Value::Vector(v) => {
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].v, 240.0);
            assert!(v[0].labels.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        value(&on, &s, true, "start_timestamp(d_total @ 180)", 10 * MIN),
        Some(120.0)
    );
    // Expressions carry no start timestamps; nor do queries without them.
    assert_eq!(
        value(&on, &s, true, "start_timestamp(d_total * 1)", 5 * MIN),
        None
    );
    assert_eq!(
        value(&on, &s, false, "start_timestamp(d_total)", 5 * MIN),
        None
    );
    assert_eq!(
        value(
            &engine(false),
            &s,
            true,
            "start_timestamp(d_total)",
            5 * MIN
        ),
        None
    );
    // A sample without one yields 0.
    let plain = MemStorage::new();
    plain
        .append_batch(&[(
            Labels::from_pairs(&[("__name__", "p")]).unwrap(),
            vec![(MIN, 1.0)],
        )])
        .unwrap();
    assert_eq!(
        value(&on, &plain, true, "start_timestamp(p)", MIN),
        Some(0.0)
    );
}

/// Where the shared acceptance scripts live, relative to this crate, unless overridden
/// (as for the promqltest runner's own tests).
const TESTDATA_ENV: &str = "VIGIL_PROMQLTEST_DIR";

#[test]
fn start_timestamps_test_file_runs_every_float_eval() {
    use crate::promqltest::runner::{run_test, RunOptions, SKIP_NATIVE_HISTOGRAMS};
    let dir = std::env::var_os(TESTDATA_ENV).map_or_else(
        || {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/testdata/promqltest")
        },
        std::path::PathBuf::from,
    );
    let name = "start_timestamps.test";
    let src = std::fs::read_to_string(dir.join(name)).unwrap();
    let mut engine = super::test_engine::PromqlTestEngine::default();
    let report = run_test(name, &src, &mut engine, RunOptions::default());
    assert_eq!(report.failed(), 0, "{report:?}");
    // Only evals over native histograms may be skipped; every float eval runs.
    let skipped = report.skipped();
    assert!(
        skipped.keys().all(|r| r == SKIP_NATIVE_HISTOGRAMS),
        "{skipped:?}"
    );
    assert_eq!(report.passed(), 16);
}
