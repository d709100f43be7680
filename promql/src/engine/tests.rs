//! Engine unit tests for core selection semantics over `MemStorage`: the lookback window,
//! stale markers, left-open range windows, anchored/smoothed selectors, vector matching
//! errors, `info()` and the classic histogram functions. Test-only; no production code.
#![allow(clippy::unwrap_used)]

use vigil_storage::chunkenc::stale_nan;
use vigil_storage::Labels;

use super::{Engine, EngineOpts, Error, MemStorage, Value, DEFAULT_LOOKBACK_DELTA_MS};

const MIN: i64 = 60_000;

/// An engine with every experimental parser feature on (anchored, info, ...).
fn engine() -> Engine {
    Engine::new(EngineOpts {
        parser_options: crate::parser::ParserOptions::all(),
        ..EngineOpts::default()
    })
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs).unwrap()
}

/// Label pairs of a test series.
type Pairs<'a> = &'a [(&'a str, &'a str)];
/// A test series: its label pairs and `(t, v)` samples.
type TestSeries<'a> = (Pairs<'a>, Vec<(i64, f64)>);

/// A store holding the given series.
fn store(series: &[TestSeries<'_>]) -> MemStorage {
    let s = MemStorage::new();
    let batch: Vec<(Labels, Vec<(i64, f64)>)> = series
        .iter()
        .map(|(l, samples)| (labels(l), samples.clone()))
        .collect();
    s.append_batch(&batch).unwrap();
    s
}

/// The instant-vector values of `q` at `t`, sorted by labels.
fn instant(s: &MemStorage, q: &str, t: i64) -> Vec<(Labels, f64)> {
    match engine().instant(s, q, t).unwrap().value {
        Value::Vector(v) => {
            let mut out: Vec<(Labels, f64)> = v.into_iter().map(|x| (x.labels, x.v)).collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("expected a vector, got {other:?}"),
    }
}

fn values(s: &MemStorage, q: &str, t: i64) -> Vec<f64> {
    instant(s, q, t).into_iter().map(|(_, v)| v).collect()
}

#[test]
fn lookback_takes_newest_sample_within_five_minutes() {
    let s = store(&[(&[("__name__", "m")], vec![(0, 1.0), (MIN, 2.0)])]);
    assert_eq!(values(&s, "m", MIN), vec![2.0]);
    assert_eq!(values(&s, "m", MIN + 30_000), vec![2.0]);
    // The window is (t - 5m, t]: a sample exactly 5m old is out.
    assert_eq!(
        values(&s, "m", MIN + DEFAULT_LOOKBACK_DELTA_MS - 1),
        vec![2.0]
    );
    assert!(values(&s, "m", MIN + DEFAULT_LOOKBACK_DELTA_MS).is_empty());
    // Nothing before the first sample.
    assert!(values(&s, "m", -1).is_empty());
}

#[test]
fn lookback_delta_is_an_engine_option() {
    let s = store(&[(&[("__name__", "m")], vec![(0, 1.0)])]);
    let e = Engine::new(EngineOpts {
        lookback_delta_ms: MIN,
        ..EngineOpts::default()
    });
    let at = |t| match e.instant(&s, "m", t).unwrap().value {
        Value::Vector(v) => v.len(),
        _ => usize::MAX,
    };
    assert_eq!(at(MIN - 1), 1);
    assert_eq!(at(MIN), 0);
}

#[test]
fn stale_marker_ends_series_until_next_sample() {
    let s = store(&[(
        &[("__name__", "m")],
        vec![(0, 1.0), (MIN, stale_nan()), (3 * MIN, 3.0)],
    )]);
    assert_eq!(values(&s, "m", 30_000), vec![1.0]);
    assert!(values(&s, "m", MIN).is_empty());
    assert!(values(&s, "m", 2 * MIN).is_empty());
    assert_eq!(values(&s, "m", 3 * MIN), vec![3.0]);
    // Range selectors never return the marker.
    assert_eq!(values(&s, "count_over_time(m[5m])", 3 * MIN), vec![2.0]);
}

#[test]
fn range_windows_are_left_open() {
    let pts: Vec<(i64, f64)> = (0..=4).map(|i| (i * MIN, i as f64)).collect();
    let s = store(&[(&[("__name__", "m")], pts)]);
    // (1m, 3m] holds the samples at 2m and 3m only.
    assert_eq!(values(&s, "count_over_time(m[2m])", 3 * MIN), vec![2.0]);
    assert_eq!(values(&s, "sum_over_time(m[2m])", 3 * MIN), vec![5.0]);
    // One ms more includes the sample on the left boundary.
    assert_eq!(values(&s, "count_over_time(m[2m1ms])", 3 * MIN), vec![3.0]);
    // An instant matrix query returns the raw samples of the window.
    match engine().instant(&s, "m[2m]", 3 * MIN).unwrap().value {
        Value::Matrix(m) => {
            let ts: Vec<i64> = m[0].points.iter().map(|p| p.t).collect();
            assert_eq!(ts, vec![2 * MIN, 3 * MIN]);
        }
        other => panic!("expected a matrix, got {other:?}"),
    }
}

#[test]
fn anchored_and_smoothed_selectors() {
    // Counter 1, 2, 3 at 0s, 15s, 30s.
    let s = store(&[(
        &[("__name__", "c_total")],
        vec![(0, 1.0), (15_000, 2.0), (30_000, 3.0)],
    )]);
    // Anchored: the last sample at or before the range start is the baseline.
    assert_eq!(
        values(&s, "increase(c_total[20s] anchored)", 30_000),
        vec![2.0]
    );
    // Smoothed: both boundaries interpolated; (10s, 25s] → 1.667 .. 2.667.
    let v = values(&s, "increase(c_total[15s] smoothed)", 25_000)[0];
    assert!((v - 1.0).abs() < 1e-9, "{v}");
    // A smoothed instant selector interpolates between neighbours.
    assert_eq!(values(&s, "c_total smoothed", 7_500), vec![1.5]);
    // Only some functions accept the modifiers.
    let err = engine()
        .instant(&s, "max_over_time(c_total[1m] anchored)", 30_000)
        .unwrap_err();
    assert!(err
        .to_string()
        .contains("anchored modifier can only be used with"));
}

#[test]
fn vector_matching_errors() {
    let s = store(&[
        (
            &[("__name__", "a"), ("job", "x"), ("i", "1")],
            vec![(0, 1.0)],
        ),
        (
            &[("__name__", "a"), ("job", "x"), ("i", "2")],
            vec![(0, 2.0)],
        ),
        (&[("__name__", "b"), ("job", "x")], vec![(0, 10.0)]),
        (
            &[("__name__", "b"), ("job", "x"), ("k", "y")],
            vec![(0, 20.0)],
        ),
    ]);
    let e = engine();
    // Many on the left without group_left.
    let err = e.instant(&s, "a + on(job) b{k=\"y\"}", 0).unwrap_err();
    assert!(matches!(err, Error::Execution(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("many-to-one matching must be explicit")
            || err.to_string().contains("multiple matches for labels"),
        "{err}"
    );
    // Duplicates on the "one" side.
    let err = e.instant(&s, "a + on(job) group_left b", 0).unwrap_err();
    assert!(
        err.to_string()
            .contains("found duplicate series for the match group"),
        "{err}"
    );
    // The explicit form works.
    assert_eq!(
        values(&s, "a + on(job) group_left b{k=\"y\"}", 0),
        vec![21.0, 22.0]
    );
}

#[test]
fn info_adds_target_info_data_labels() {
    let s = store(&[
        (
            &[("__name__", "m"), ("instance", "a"), ("job", "j")],
            vec![(0, 5.0)],
        ),
        (
            &[
                ("__name__", "target_info"),
                ("instance", "a"),
                ("job", "j"),
                ("version", "v1"),
            ],
            vec![(0, 1.0)],
        ),
    ]);
    let got = instant(&s, "info(m)", 0);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.get("version"), Some("v1"));
    assert_eq!(got[0].1, 5.0);
    // A data matcher that no info series satisfies drops the series.
    assert!(instant(&s, "info(m, {version=\"v2\"})", 0).is_empty());
}

#[test]
fn classic_histogram_quantiles_and_fraction() {
    let b = |le: &'static str, v: f64| -> TestSeries<'static> {
        let l: Pairs<'static> = match le {
            "1" => &[("__name__", "h_bucket"), ("le", "1")],
            "2" => &[("__name__", "h_bucket"), ("le", "2")],
            _ => &[("__name__", "h_bucket"), ("le", "+Inf")],
        };
        (l, vec![(0, v)])
    };
    let s = store(&[b("1", 2.0), b("2", 4.0), b("+Inf", 4.0)]);
    assert_eq!(
        values(&s, "histogram_quantile(0.5, h_bucket)", 0),
        vec![1.0]
    );
    assert_eq!(
        values(&s, "histogram_fraction(0, 1, h_bucket)", 0),
        vec![0.5]
    );
    let got = instant(&s, "histogram_quantiles(h_bucket, \"q\", 0.25, 1)", 0);
    let qs: Vec<(&str, f64)> = got
        .iter()
        .map(|(l, v)| (l.get("q").unwrap_or(""), *v))
        .collect();
    assert_eq!(qs, vec![("0.25", 0.5), ("1.0", 2.0)]);
}
