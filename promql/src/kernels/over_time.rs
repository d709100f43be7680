//! `<aggregation>_over_time` kernels: reduce the float points of one series' [`Window`]
//! to one value, in Prometheus' summation order (Kahan-compensated sums and means,
//! compensated Welford variance), plus `double_exponential_smoothing`. Each returns
//! `None` exactly when Prometheus emits no sample (an empty window, or too few points).
//! This module never selects samples and never handles histogram samples.

use super::stats::{kahan_inc, quantile, variance_kahan, AvgAcc};
use super::{ms_to_seconds, KernelError, Window};

/// `avg_over_time`: Kahan-summed mean, switching to an incremental mean on overflow.
pub fn avg_over_time(w: &Window) -> Option<f64> {
    if w.points.is_empty() {
        return None;
    }
    let mut acc = AvgAcc::new();
    w.points.iter().for_each(|p| acc.add(p.1));
    Some(acc.value())
}

/// `sum_over_time`: Kahan–Neumaier sum (an infinite sum is returned without its
/// compensation).
pub fn sum_over_time(w: &Window) -> Option<f64> {
    if w.points.is_empty() {
        return None;
    }
    let (mut sum, mut c) = (0.0, 0.0);
    for p in w.points {
        (sum, c) = kahan_inc(p.1, sum, c);
    }
    if sum.is_infinite() {
        return Some(sum);
    }
    Some(sum + c)
}

/// `count_over_time` of the float points (the caller adds histogram samples, which
/// Prometheus counts too).
pub fn count_over_time(w: &Window) -> Option<f64> {
    if w.points.is_empty() {
        return None;
    }
    Some(w.points.len() as f64)
}

/// `present_over_time`: 1 if the window has any point.
pub fn present_over_time(w: &Window) -> Option<f64> {
    (!w.points.is_empty()).then_some(1.0)
}

/// Scans for the extreme point: a point replaces the current choice when `replace(cur,
/// best)` holds or the current choice is NaN. Returns the chosen (timestamp, value).
fn extreme(w: &Window, replace: impl Fn(f64, f64) -> bool) -> Option<(i64, f64)> {
    let first = *w.points.first()?;
    Some(w.points.iter().fold(first, |best, &p| {
        if replace(p.1, best.1) || best.1.is_nan() {
            p
        } else {
            best
        }
    }))
}

/// `max_over_time`: the largest value; NaN only if every value is NaN.
pub fn max_over_time(w: &Window) -> Option<f64> {
    extreme(w, |cur, best| cur > best).map(|p| p.1)
}

/// `min_over_time`: the smallest value; NaN only if every value is NaN.
pub fn min_over_time(w: &Window) -> Option<f64> {
    extreme(w, |cur, best| cur < best).map(|p| p.1)
}

/// `ts_of_max_over_time`: timestamp (seconds) of the last occurrence of the maximum.
pub fn ts_of_max_over_time(w: &Window) -> Option<f64> {
    extreme(w, |cur, best| cur >= best).map(|p| ms_to_seconds(p.0))
}

/// `ts_of_min_over_time`: timestamp (seconds) of the last occurrence of the minimum.
pub fn ts_of_min_over_time(w: &Window) -> Option<f64> {
    extreme(w, |cur, best| cur <= best).map(|p| ms_to_seconds(p.0))
}

/// `last_over_time`: the most recent value.
pub fn last_over_time(w: &Window) -> Option<f64> {
    w.points.last().map(|p| p.1)
}

/// `first_over_time`: the oldest value.
pub fn first_over_time(w: &Window) -> Option<f64> {
    w.points.first().map(|p| p.1)
}

/// `ts_of_last_over_time`: timestamp (seconds) of the most recent point.
pub fn ts_of_last_over_time(w: &Window) -> Option<f64> {
    w.points.last().map(|p| ms_to_seconds(p.0))
}

/// `ts_of_first_over_time`: timestamp (seconds) of the oldest point.
pub fn ts_of_first_over_time(w: &Window) -> Option<f64> {
    w.points.first().map(|p| ms_to_seconds(p.0))
}

/// `stdvar_over_time`: population variance (compensated Welford).
pub fn stdvar_over_time(w: &Window) -> Option<f64> {
    if w.points.is_empty() {
        return None;
    }
    Some(variance_kahan(w.points.iter().map(|p| p.1)))
}

/// `stddev_over_time`: population standard deviation (compensated Welford).
pub fn stddev_over_time(w: &Window) -> Option<f64> {
    stdvar_over_time(w).map(f64::sqrt)
}

/// `quantile_over_time(q, v[r])`, as the `quantile` aggregation interpolates. The caller
/// warns when `q` is outside [0, 1] (see [`super::stats::is_invalid_quantile`]).
pub fn quantile_over_time(w: &Window, q: f64) -> Option<f64> {
    if w.points.is_empty() {
        return None;
    }
    let mut values: Vec<f64> = w.points.iter().map(|p| p.1).collect();
    Some(quantile(q, &mut values))
}

/// `mad_over_time`: the median of the absolute deviations from the median. A NaN point
/// makes the result NaN.
pub fn mad_over_time(w: &Window) -> Option<f64> {
    if w.points.is_empty() {
        return None;
    }
    if w.points.iter().any(|p| p.1.is_nan()) {
        return Some(f64::NAN);
    }
    let mut values: Vec<f64> = w.points.iter().map(|p| p.1).collect();
    let median = quantile(0.5, &mut values);
    values.iter_mut().for_each(|v| *v = (*v - median).abs());
    Some(quantile(0.5, &mut values))
}

/// Formats a factor as Go's `%f` does, for the error texts.
fn go_fixed(v: f64) -> String {
    match v {
        f64::INFINITY => "+Inf".to_string(),
        f64::NEG_INFINITY => "-Inf".to_string(),
        v if v.is_nan() => "NaN".to_string(),
        v => format!("{v:.6}"),
    }
}

/// Checks `double_exponential_smoothing`'s factors (both must lie strictly in (0, 1)).
/// Prometheus checks them whenever the range selects a series, before counting points.
pub fn check_smoothing_factors(sf: f64, tf: f64) -> Result<(), KernelError> {
    if sf <= 0.0 || sf >= 1.0 {
        return Err(KernelError::InvalidSmoothingFactor(go_fixed(sf)));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(KernelError::InvalidTrendFactor(go_fixed(tf)));
    }
    Ok(())
}

/// `double_exponential_smoothing(v[r], sf, tf)` (Holt's linear method): smoothing factor
/// `sf` and trend factor `tf`, both in (0, 1). `Ok(None)` with fewer than two points.
pub fn double_exponential_smoothing(
    w: &Window,
    sf: f64,
    tf: f64,
) -> Result<Option<f64>, KernelError> {
    check_smoothing_factors(sf, tf)?;
    let points = w.points;
    if points.len() < 2 {
        return Ok(None);
    }
    // s1: the current smoothed value, s0: the previous one, b: the trend.
    let (mut s0, mut s1) = (0.0, points[0].1);
    let mut b = points[1].1 - points[0].1;
    for (i, p) in points.iter().enumerate().skip(1) {
        let x = sf * p.1;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Ok(Some(s1))
}

#[cfg(test)]
// Literals are copied verbatim from the .test files.
#[allow(clippy::unwrap_used, clippy::excessive_precision)]
mod tests {
    use super::*;
    use crate::kernels::Point;

    const SEC: i64 = 1000;

    /// Samples `values[i]` at `i * step_ms`, selected by a range `[range]` at time `t`.
    fn win(step_ms: i64, values: &[f64], t: i64, range: i64) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64 * step_ms, *v))
            .filter(|p| p.0 > t - range && p.0 <= t)
            .collect()
    }

    fn eval(
        step_ms: i64,
        values: &[f64],
        t: i64,
        range: i64,
        f: impl Fn(&Window) -> Option<f64>,
    ) -> Option<f64> {
        let pts = win(step_ms, values, t, range);
        f(&Window::new(&pts, t - range, t))
    }

    /// Same check as promqltest: exact for special values, relative 1e-6 otherwise.
    fn approx(got: Option<f64>, want: f64) -> bool {
        match got {
            Some(g) if want.is_nan() => g.is_nan(),
            Some(g) if want.is_infinite() || want == 0.0 => g == want,
            Some(g) => ((g - want) / want).abs() < 1e-6,
            None => false,
        }
    }

    const INF: f64 = f64::INFINITY;
    const NINF: f64 = f64::NEG_INFINITY;
    const NAN: f64 = f64::NAN;

    #[test]
    fn avg_over_time_special_values() {
        let t = 55 * SEC;
        let m = 60 * SEC;
        let avg = |v: &[f64]| eval(10 * SEC, v, t, m, avg_over_time);
        let sum_div_count = |v: &[f64]| {
            let s = eval(10 * SEC, v, t, m, sum_over_time).unwrap();
            Some(s / eval(10 * SEC, v, t, m, count_over_time).unwrap())
        };
        let metric = [1., 2., 3., 4., 5.];
        assert_eq!(eval(10 * SEC, &metric, t, 10 * SEC, avg_over_time), None);
        assert_eq!(
            eval(10 * SEC, &metric, t, 20 * SEC, avg_over_time),
            Some(5.0)
        );
        let cases: [(&[f64], f64, f64); 15] = [
            (&metric, 3.0, 3.0),
            (&[1., 2., 3., 4., INF], INF, INF),
            (&[1., 2., 3., 4., NINF], NINF, NINF),
            (&[1., 2., 3., INF, NINF], NAN, NAN),
            (&[INF, 0., INF], INF, INF),
            (&[INF, INF, INF, NINF], NAN, NAN),
            (&[1., 2., 3., NINF, NINF], NINF, NINF),
            (&[NINF, 0., NINF], NINF, NINF),
            (&[NINF, NINF, NINF, INF], NAN, NAN),
            (&[1., 2., NINF, NINF, INF], NAN, NAN),
            (
                &[9.988465674311579e307, 9.988465674311579e307],
                9.988465674311579e307,
                INF,
            ),
            (&[-9.988465674311579e307; 3], -9.988465674311579e307, NINF),
            (&[-9.988465674311579e307, 9.988465674311579e307], 0.0, 0.0),
            (&[1., 2., 3., NAN, NAN], NAN, NAN),
            (&[1.0, 1e100, 1.0, -1e100], 0.5, 0.5),
        ];
        for (values, want_avg, want_sum_div) in cases {
            assert!(
                approx(avg(values), want_avg),
                "avg {values:?}: {:?}",
                avg(values)
            );
            assert!(
                approx(sum_div_count(values), want_sum_div),
                "sum/count {values:?}: {:?}",
                sum_div_count(values)
            );
        }
        assert_eq!(
            eval(
                10 * SEC,
                &[1., 2., 3., NAN, NAN],
                20 * SEC,
                m,
                avg_over_time
            ),
            Some(2.0)
        );
        // Kahan: sum of 1, 1e100, 1, -1e100 is exactly 2.
        assert_eq!(
            eval(
                10 * SEC,
                &[1.0, 1e100, 1.0, -1e100],
                m,
                2 * m,
                sum_over_time
            ),
            Some(2.0)
        );
    }

    #[test]
    fn avg_over_time_extreme_magnitudes() {
        let t = 55 * SEC;
        let m = 60 * SEC;
        let cases: [(&[f64], f64); 10] = [
            (&[1e10, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6], 1.6666666666666675e9),
            (
                &[
                    5.30921651659898,
                    0.961118537914768,
                    1.62091361305318,
                    0.865089463758091,
                    0.323055185914577,
                    0.951811357687154,
                ],
                1.67186744582113,
            ),
            (
                &[1.78264e50, 0.76342771, 1.9592258, 7.69805412, 458.90154],
                3.56528e49,
            ),
            (
                &[0.76342771, 1.9592258, 7.69805412, 1.78264e50, 458.90154],
                3.56528e49,
            ),
            (
                &[
                    1.78264e50, 0.76342771, 1.9592258, 2.258e220, 7.69805412, 458.90154,
                ],
                3.76333333333333e219,
            ),
            (
                &[
                    -1.78264e50,
                    0.76342771,
                    1.9592258,
                    2.258e220,
                    7.69805412,
                    -458.90154,
                ],
                3.76333333333333e219,
            ),
            (
                &[
                    -1.78264e215,
                    0.76342771,
                    1.9592258,
                    2.258e220,
                    7.69805412,
                    -458.90154,
                ],
                3.76330362266667e219,
            ),
            (
                &[
                    -1.78264e215,
                    0.76342771,
                    1.9592258,
                    2.258e220,
                    7.69805412,
                    1.78264e215,
                    -458.90154,
                ],
                3.225714285714286e219,
            ),
            (
                &[
                    -1.78264e219,
                    0.76342771,
                    1.9592258,
                    2.3757689e217,
                    -2.3757689e217,
                    2.258e220,
                    7.69805412,
                    1.78264e219,
                    -458.90154,
                ],
                2.5088888888888888e219,
            ),
            (
                &[
                    -2.258e220,
                    -1.78264e219,
                    0.76342771,
                    1.9592258,
                    2.3757689e217,
                    -2.3757689e217,
                    2.258e220,
                    7.69805412,
                    1.78264e219,
                    -458.90154,
                ],
                0.0,
            ),
        ];
        for (values, want) in cases {
            let got = eval(5 * SEC, values, t, m, avg_over_time);
            assert!(approx(got, want), "{values:?}: {got:?} != {want}");
        }
        // Exact equality for a constant series (functions.test `== 52`).
        let foo = [52.0; 101];
        for range in [100, 110, 120, 130] {
            assert_eq!(
                eval(10 * SEC, &foo, 600 * SEC, range * SEC, avg_over_time),
                Some(52.0)
            );
        }
    }

    #[test]
    fn variance_and_mad() {
        let m = 60 * SEC;
        let metric = [0., 8., 8., 2., 3.];
        assert!(approx(
            eval(10 * SEC, &metric, m, 2 * m, stdvar_over_time),
            10.56
        ));
        assert!(approx(
            eval(10 * SEC, &metric, m, 2 * m, stddev_over_time),
            3.249615
        ));
        let same = [1.5990505637277868; 3];
        assert_eq!(
            eval(10 * SEC, &same, 55 * SEC, m, stdvar_over_time),
            Some(0.0)
        );
        assert_eq!(
            eval(10 * SEC, &same, 55 * SEC, m, stddev_over_time),
            Some(0.0)
        );
        let mad = |v: &[f64], t: i64, r: i64| eval(10 * SEC, v, t * SEC, r * SEC, mad_over_time);
        assert_eq!(mad(&[4., 6., 2., 1., 999., 1., 2.], 70, 70), Some(1.0));
        assert_eq!(mad(&[1., 2., 3., 4., 5.], 40, 50), Some(1.0));
        assert_eq!(mad(&[7.; 5], 40, 50), Some(0.0));
        assert_eq!(mad(&[5.], 0, 10), Some(0.0));
        assert!(mad(&[1., 2., NAN, 4.], 30, 40).unwrap().is_nan());
        assert_eq!(mad(&[], 30, 40), None);
    }

    #[test]
    fn min_max_first_last_count() {
        let m = 60 * SEC;
        let data: [(&[f64], f64, f64, f64, f64); 5] = [
            (&[2., 0., 3.], 0., 3., 2., 3.),
            (&[2., 0., NAN], 0., 2., 2., NAN),
            (&[2., NAN, 1.], 1., 2., 2., 1.),
            (&[NAN, 0., 1.], 0., 1., NAN, 1.),
            (&[NAN, NAN, NAN], NAN, NAN, NAN, NAN),
        ];
        for (values, min, max, first, last) in data {
            let run = |f: fn(&Window) -> Option<f64>| eval(10 * SEC, values, m, 2 * m, f);
            assert!(approx(run(min_over_time), min), "min {values:?}");
            assert!(approx(run(max_over_time), max), "max {values:?}");
            assert!(approx(run(first_over_time), first), "first {values:?}");
            assert!(approx(run(last_over_time), last), "last {values:?}");
            assert_eq!(run(count_over_time), Some(3.0));
            assert_eq!(run(present_over_time), Some(1.0));
        }
        let empty = Window::new(&[], 0, m);
        for f in [
            min_over_time,
            max_over_time,
            first_over_time,
            last_over_time,
            count_over_time,
            present_over_time,
            sum_over_time,
            stddev_over_time,
        ] {
            assert_eq!(f(&empty), None);
        }
    }

    #[test]
    fn timestamps_of_extremes() {
        // load 10s53ms: metric 1 2 3 0 5 6 2 1 4 at 90s over [90s].
        let step = 10_053;
        let values = [1., 2., 3., 0., 5., 6., 2., 1., 4.];
        let t = 90 * SEC;
        assert_eq!(eval(step, &values, t, t, ts_of_min_over_time), Some(30.159));
        assert_eq!(eval(step, &values, t, t, ts_of_max_over_time), Some(50.265));
        // Ties pick the last occurrence.
        let tie = [(1000, 5.0), (2000, 5.0), (3000, 1.0)];
        assert_eq!(ts_of_max_over_time(&Window::new(&tie, 0, 3000)), Some(2.0));
        assert_eq!(ts_of_min_over_time(&Window::new(&tie, 0, 3000)), Some(3.0));
        let three = [1., 2., 3.];
        assert_eq!(
            eval(step, &three, 95 * SEC, t, ts_of_last_over_time),
            Some(20.106)
        );
        let pts = [(20_106, 1.0), (30_159, 2.0)];
        assert_eq!(
            ts_of_first_over_time(&Window::new(&pts, 0, t)),
            Some(20.106)
        );
        assert_eq!(ts_of_first_over_time(&Window::new(&[], 0, t)), None);
    }

    #[test]
    fn quantile_over_time_matches() {
        let m = 60 * SEC;
        let two = [0., 1.];
        let three = [0., 1., 2.];
        let uneven = [0., 1., 4.];
        let cases = [
            (0.0, [0., 0., 0.]),
            (0.5, [0.5, 1., 1.]),
            (0.75, [0.75, 1.5, 2.5]),
            (0.8, [0.8, 1.6, 2.8]),
            (1.0, [1., 2., 4.]),
            (-1.0, [NINF; 3]),
            (2.0, [INF; 3]),
        ];
        for (q, want) in cases {
            for (values, want) in [&two[..], &three[..], &uneven[..]].iter().zip(want) {
                let got = eval(10 * SEC, values, m, 2 * m, |w| quantile_over_time(w, q));
                assert!(approx(got, want), "q={q} {values:?}: {got:?}");
            }
        }
    }

    #[test]
    fn double_exponential_smoothing_matches() {
        // Positive trend 0+10x1000 at 8000s over [1m] → 8000; negative 8000-10x1000 → 0.
        let up: Vec<f64> = (0..=1000).map(|i| 10.0 * i as f64).collect();
        let got = eval(10 * SEC, &up, 8000 * SEC, 60 * SEC, |w| {
            double_exponential_smoothing(w, 0.01, 0.1).unwrap()
        });
        assert!(approx(got, 8000.0), "{got:?}");
        let down: Vec<f64> = (0..=1000).map(|i| 8000.0 - 10.0 * i as f64).collect();
        let got = eval(10 * SEC, &down, 8000 * SEC, 60 * SEC, |w| {
            double_exponential_smoothing(w, 0.01, 0.1).unwrap()
        });
        assert!(got.unwrap().abs() < 1e-6, "{got:?}");
        let one = [(0, 1.0)];
        assert_eq!(
            double_exponential_smoothing(&Window::new(&one, -1, 0), 0.5, 0.5),
            Ok(None)
        );
        let err = double_exponential_smoothing(&Window::new(&one, -1, 0), 1.0, 0.5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000"
        );
        let err = check_smoothing_factors(0.5, 0.0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid trend factor. Expected: 0 < tf < 1, got: 0.000000"
        );
        // Hand-computed three-point run: s = [1, 2*0.5+0.5*(1+1)=2, ...].
        let pts = [(0, 1.0), (1, 2.0), (2, 3.0)];
        // i=1: b=1, s1 = 0.5*2 + 0.5*(1+1) = 2; i=2: b = 0.5*(2-1)+0.5*1 = 1, s1 = 1.5 + 0.5*3 = 3.
        assert_eq!(
            double_exponential_smoothing(&Window::new(&pts, -1, 2), 0.5, 0.5),
            Ok(Some(3.0))
        );
    }
}
