//! Range-vector kernels over counters and gauges: `rate`/`increase`/`delta` with
//! Prometheus' extrapolation rules (and their anchored/smoothed and start-timestamp
//! variants), `irate`/`idelta`, `resets`, `changes`, and the least-squares `deriv` /
//! `predict_linear`. Each takes one series' [`Window`] at one step and returns `None`
//! exactly when Prometheus emits no sample. This module never selects samples from
//! storage and never handles histograms.

pub use super::range_indexed::{CounterResets, IndexedRate};
use super::stats::kahan_inc;
use super::{Point, Window, MS_PER_SECOND};

/// Extrapolation reaches a range boundary only when the gap to it is below this multiple
/// of the average sample spacing; otherwise it extends half a spacing.
const EXTRAPOLATION_THRESHOLD_FACTOR: f64 = 1.1;

/// Result of [`extrapolated_rate_st`]: the value (None: no output sample) and whether the
/// start timestamps of two consecutive samples overlapped (Prometheus then warns once per
/// series).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateOutput {
    pub value: Option<f64>,
    pub start_time_overlap: bool,
}

/// `rate` (`is_counter`, `is_rate`), `increase` (`is_counter`) and `delta` (neither) of a
/// plain (not anchored, not smoothed) range selector, exactly as Prometheus 3 computes
/// them: counter resets add the pre-reset value; the result is extrapolated to the range
/// boundaries when the first/last sample lies within 1.1× the average spacing of them
/// (else by half a spacing), and for counters never to before the counter's zero point.
/// Needs two samples (or one with a start timestamp inside the window).
pub fn extrapolated_rate(w: &Window, is_counter: bool, is_rate: bool) -> Option<f64> {
    extrapolated_rate_st(w, is_counter, is_rate).value
}

/// Tells whether a start (created) timestamp marks a counter reset between two samples.
/// A start timestamp of 0 is unknown, one after its own sample is invalid, and one equal
/// to its own sample is OTel's "unknown start": none of these is a reset. A start
/// timestamp before the previous sample is an overlap, not a reset; one after it is.
/// When it equals the previous sample's timestamp the series is either a delta series
/// (reset) or a cumulative series with an unknown start (no reset): it is a delta when
/// the previous start timestamp is known and valid (neither 0, nor equal to or after
/// its own sample).
pub fn is_start_timestamp_reset(prev_st: i64, prev_t: i64, curr_st: i64, curr_t: i64) -> bool {
    if curr_st == 0 || curr_st >= curr_t || curr_st < prev_t {
        return false;
    }
    if curr_st > prev_t {
        return true;
    }
    prev_st != 0 && prev_st < prev_t
}

/// Whether a sample's start timestamp overlaps the previous sample (Prometheus warns).
pub fn is_start_time_overlap(prev_st: i64, prev_t: i64, curr_st: i64) -> bool {
    curr_st != 0 && curr_st < prev_t && curr_st != prev_st
}

/// [`extrapolated_rate`] honouring `w.start_timestamps`: a start-timestamp reset counts
/// as a counter reset, and a first sample whose start timestamp lies inside the window is
/// taken as rising from 0 at that time instead of extrapolating to the left.
pub fn extrapolated_rate_st(w: &Window, is_counter: bool, is_rate: bool) -> RateOutput {
    let mut out = RateOutput {
        value: None,
        start_time_overlap: false,
    };
    let points = w.points;
    let (Some(&(_, first_v)), Some(&(_, last_v))) = (points.first(), points.last()) else {
        return out;
    };
    let sts = w.start_timestamps;
    let mut result = last_v - first_v;
    if is_counter {
        for (i, pair) in points.windows(2).enumerate() {
            let ((prev_t, prev_v), (curr_t, curr_v)) = (pair[0], pair[1]);
            let st_known = i + 1 < sts.len();
            if !out.start_time_overlap
                && st_known
                && is_start_time_overlap(sts[i], prev_t, sts[i + 1])
            {
                out.start_time_overlap = true;
            }
            if curr_v < prev_v
                || (st_known && is_start_timestamp_reset(sts[i], prev_t, sts[i + 1], curr_t))
            {
                result += prev_v;
            }
        }
    }

    out.value = extrapolate(w, result, is_counter, is_rate);
    out
}

/// What the extrapolation factor of a window without start timestamps depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct WindowShape {
    /// First sample minus the range start.
    pub to_start_ms: i64,
    /// Range end minus the last sample.
    pub to_end_ms: i64,
    /// Last minus first sample.
    pub sampled_ms: i64,
    /// Samples minus one (> 0).
    pub num_minus_one: usize,
    pub range_ms: i64,
}

impl WindowShape {
    /// Prometheus' extrapolation factor: extrapolate to a boundary when the gap to it is
    /// below 1.1× the average spacing, else by half a spacing; with `zero_point =
    /// Some((first_v, result))` (counters) never to before the counter's zero point.
    /// Divided by the range for `rate`.
    pub(super) fn factor(
        &self,
        zero_point: Option<(f64, f64)>,
        is_rate: bool,
        range_seconds: f64,
    ) -> f64 {
        let ms = MS_PER_SECOND as f64;
        let mut duration_to_start = self.to_start_ms as f64 / ms;
        let mut duration_to_end = self.to_end_ms as f64 / ms;
        let sampled_interval = self.sampled_ms as f64 / ms;
        let average_spacing = sampled_interval / self.num_minus_one as f64;
        let threshold = average_spacing * EXTRAPOLATION_THRESHOLD_FACTOR;
        if duration_to_start >= threshold {
            duration_to_start = average_spacing / 2.0;
        }
        if let Some((first_v, result)) = zero_point {
            // Counters cannot go negative: do not extrapolate past the zero point.
            let mut duration_to_zero = duration_to_start;
            if result > 0.0 && first_v >= 0.0 {
                duration_to_zero = sampled_interval * (first_v / result);
            }
            if duration_to_zero < duration_to_start {
                duration_to_start = duration_to_zero;
            }
        }
        if duration_to_end >= threshold {
            duration_to_end = average_spacing / 2.0;
        }
        let mut factor = 1.0;
        if sampled_interval != 0.0 {
            factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
        }
        if is_rate {
            factor /= range_seconds;
        }
        factor
    }
}

/// Whether a counter's zero point provably lies beyond where extrapolation would reach,
/// so the limit cannot change the factor: with at least three samples and
/// `first_v >= result > 0`, the zero point lies at least the sampled interval back, and
/// the extrapolation reaches less than 0.55× of it (below 1.1× an average spacing that is
/// at most half the sampled interval, or half a spacing).
pub(super) fn zero_point_beyond(num_minus_one: usize, first_v: f64, result: f64) -> bool {
    num_minus_one >= 2 && result > 0.0 && first_v >= result
}

/// The extrapolation step of [`extrapolated_rate_st`]: `result` is the window's last
/// minus first value plus, for counters, the pre-reset values of its counter resets
/// (added in order). Returns None exactly when Prometheus emits no sample (an empty
/// window, or a single sample without a start timestamp inside the window).
fn extrapolate(w: &Window, result: f64, is_counter: bool, is_rate: bool) -> Option<f64> {
    let points = w.points;
    let (Some(&(first_t, first_v)), Some(&(last_t, _))) = (points.first(), points.last()) else {
        return None;
    };
    let num_minus_one = points.len() - 1;
    let range_seconds = w.range_seconds();
    match w.start_timestamps.first() {
        Some(&st0) if is_counter && st0 != 0 && st0 > w.start_ms && st0 < first_t => {
            // A zero-valued sample is assumed at the first sample's start timestamp: no
            // extrapolation to the left, the sampled interval starts there.
            let ms = MS_PER_SECOND as f64;
            let mut duration_to_end = (w.end_ms - last_t) as f64 / ms;
            let average_spacing = if num_minus_one > 0 {
                ((last_t - first_t) as f64 / ms) / num_minus_one as f64
            } else {
                0.0
            };
            let threshold = average_spacing * EXTRAPOLATION_THRESHOLD_FACTOR;
            let duration_to_start = 0.0;
            let sampled_interval = (last_t - st0) as f64 / ms;
            let result = result + first_v;
            if duration_to_end >= threshold {
                duration_to_end = average_spacing / 2.0;
            }
            let mut factor = 1.0;
            if sampled_interval != 0.0 {
                factor =
                    (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
            }
            if is_rate {
                factor /= range_seconds;
            }
            Some(result * factor)
        }
        _ if num_minus_one == 0 => None,
        _ => {
            let shape = WindowShape {
                to_start_ms: first_t - w.start_ms,
                to_end_ms: w.end_ms - last_t,
                sampled_ms: last_t - first_t,
                num_minus_one,
                range_ms: w.range_ms(),
            };
            let zero_point = (is_counter && !zero_point_beyond(num_minus_one, first_v, result))
                .then_some((first_v, result));
            Some(result * shape.factor(zero_point, is_rate, range_seconds))
        }
    }
}

/// Go's `sort.Search(n, pred)`: the smallest index in `[0, n)` where `pred` holds, or `n`.
fn search(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// Linear interpolation between two points at time `t`; for counters a decrease is read
/// as a reset, so the line starts from 0 at `p1`'s time.
fn interpolate(p1: Point, p2: Point, t: i64, is_counter: bool) -> f64 {
    let (y1, y2) = if is_counter && p2.1 < p1.1 {
        (0.0, p2.1)
    } else {
        (p1.1, p2.1)
    };
    y1 + (y2 - y1) * (t - p1.0) as f64 / (p2.0 - p1.0) as f64
}

/// The value at the left boundary: interpolated when smoothing and the chosen sample
/// lies before the boundary, else the sample itself.
fn pick_left(points: &[Point], first: usize, start: i64, smoothed: bool, is_counter: bool) -> f64 {
    match (points[first], points.get(first + 1)) {
        (p, Some(&next)) if smoothed && p.0 < start => interpolate(p, next, start, is_counter),
        (p, _) => p.1,
    }
}

/// The value at the right boundary: interpolated when smoothing and the chosen sample
/// lies after the boundary, else the sample itself.
fn pick_right(points: &[Point], last: usize, end: i64, smoothed: bool, is_counter: bool) -> f64 {
    let p = points[last];
    if smoothed && last > 0 && p.0 > end {
        return interpolate(points[last - 1], p, end, is_counter);
    }
    p.1
}

/// The index range `[first, last]` of an anchored/smoothed selection: `first` is the
/// last sample at or before `start` (or 0), `last` the final sample, or for smoothed
/// selections the first sample at or after `end`. None when no sample lies after `start`
/// (or, smoothed, none at or before `end`).
fn extended_bounds(
    points: &[Point],
    start: i64,
    end: i64,
    smoothed: bool,
) -> Option<(usize, usize)> {
    let mut last = points.len().checked_sub(1)?;
    let first = search(last, |i| points[i].0 > start).saturating_sub(1);
    if smoothed {
        last = search(last, |i| points[i].0 >= end);
    }
    if points[last].0 <= start || (smoothed && points[first].0 > end) {
        return None;
    }
    Some((first, last))
}

/// Sum of the pre-reset values of counter resets from `left` through `points` to `right`.
fn correct_for_counter_resets(left: f64, right: f64, points: &[Point]) -> f64 {
    let mut correction = 0.0;
    let mut prev = left;
    for &(_, v) in points {
        if v < prev {
            correction += prev;
        }
        prev = v;
    }
    if right < prev {
        correction += prev;
    }
    correction
}

/// `rate`/`increase`/`delta` over an `anchored` or `smoothed` range selector. `points`
/// is the extended selection: every sample in `(start_ms - lookback, end_ms]` (anchored)
/// or `(start_ms - lookback, end_ms + lookback]` (smoothed). Anchored takes the last
/// sample at or before the range start as the left value; smoothed interpolates both
/// boundaries. No extrapolation. `w.start_timestamps` is ignored.
pub fn extended_rate(w: &Window, smoothed: bool, is_counter: bool, is_rate: bool) -> Option<f64> {
    let points = w.points;
    let (mut first, last) = extended_bounds(points, w.start_ms, w.end_ms, smoothed)?;
    let left = pick_left(points, first, w.start_ms, smoothed, is_counter);
    let right = pick_right(points, last, w.end_ms, smoothed, is_counter);
    let mut result = right - left;
    if is_counter {
        // Only samples strictly inside the range; the boundaries handled resets already.
        if points[first].0 <= w.start_ms {
            first += 1;
        }
        let end_idx = if points[last].0 >= w.end_ms {
            last
        } else {
            last + 1
        };
        let inner = points.get(first..end_idx).unwrap_or(&[]);
        result += correct_for_counter_resets(left, right, inner);
    }
    if is_rate {
        result /= w.range_seconds();
    }
    Some(result)
}

/// The samples an `anchored` (`smoothed == false`) or `smoothed` selector yields for
/// functions other than rate/increase/delta: a point at `mint` (the anchor value, or the
/// interpolated value when smoothed), the samples strictly inside `(mint, maxt)`, and a
/// point at `maxt` (the last value, or interpolated when smoothed). Empty when no sample
/// lies after `mint`. `points` is the extended selection as for [`extended_rate`].
pub fn extend_points(points: &[Point], mint: i64, maxt: i64, smoothed: bool) -> Vec<Point> {
    let Some((mut first, mut last)) = extended_bounds(points, mint, maxt, smoothed) else {
        return Vec::new();
    };
    let left = pick_left(points, first, mint, smoothed, false);
    let right = pick_right(points, last, maxt, smoothed, false);
    if points[first].0 <= mint {
        first += 1;
    }
    if points[last].0 < maxt {
        last += 1;
    }
    let inner = points.get(first..last).unwrap_or(&[]);
    let mut out = Vec::with_capacity(inner.len() + 2);
    out.push((mint, left));
    out.extend_from_slice(inner);
    out.push((maxt, right));
    out
}

/// For `resets`/`changes` over an anchored selector: the index of the anchor (the last
/// sample at or before `start_ms`, or 0 if none), or None when no sample lies after
/// `start_ms`. `points` is the extended selection.
pub fn anchored_first_index(points: &[Point], start_ms: i64) -> Option<usize> {
    let after = search(points.len(), |i| points[i].0 > start_ms);
    if after >= points.len() {
        return None;
    }
    Some(after.saturating_sub(1))
}

/// `irate` (`is_rate`) and `idelta`: the per-second rate / difference of the last two
/// samples. For `irate` a decrease (or start-timestamp reset) means a counter reset, and
/// the last value itself is the increase. None with fewer than two samples or equal
/// timestamps.
pub fn instant_value(w: &Window, is_rate: bool) -> Option<f64> {
    let n = w.points.len();
    if n < 2 {
        return None;
    }
    let ((t0, v0), (t1, v1)) = (w.points[n - 2], w.points[n - 1]);
    let st = |i: usize| w.start_timestamps.get(i).copied().unwrap_or(0);
    let interval_ms = t1 - t0;
    if interval_ms == 0 {
        return None;
    }
    let mut result = v1;
    if !is_rate || !(v1 < v0 || is_start_timestamp_reset(st(n - 2), t0, st(n - 1), t1)) {
        result = v1 - v0;
    }
    if is_rate {
        result /= interval_ms as f64 / MS_PER_SECOND as f64;
    }
    Some(result)
}

/// `irate(v[r])`.
pub fn irate(w: &Window) -> Option<f64> {
    instant_value(w, true)
}

/// `idelta(v[r])`.
pub fn idelta(w: &Window) -> Option<f64> {
    instant_value(w, false)
}

/// `resets(v[r])`: how often a value decreased (or a start timestamp marked a reset).
/// None for an empty window. For anchored selectors pass the points from
/// [`anchored_first_index`] on.
pub fn resets(w: &Window) -> Option<f64> {
    if w.points.is_empty() {
        return None;
    }
    let st = |i: usize| w.start_timestamps.get(i).copied().unwrap_or(0);
    let count = w
        .points
        .windows(2)
        .enumerate()
        .filter(|(i, p)| {
            p[1].1 < p[0].1 || is_start_timestamp_reset(st(*i), p[0].0, st(i + 1), p[1].0)
        })
        .count();
    Some(count as f64)
}

/// `changes(v[r])`: how often the value changed (NaN to NaN is no change). None for an
/// empty window.
pub fn changes(w: &Window) -> Option<f64> {
    if w.points.is_empty() {
        return None;
    }
    let count = w
        .points
        .windows(2)
        .filter(|p| p[1].1 != p[0].1 && !(p[1].1.is_nan() && p[0].1.is_nan()))
        .count();
    Some(count as f64)
}

/// Least-squares fit of the points against time in seconds relative to
/// `intercept_time_ms`, with Kahan-compensated sums; returns `(slope, intercept)`.
/// Constant values give slope 0 (or NaN for a constant ±Inf).
pub fn linear_regression(points: &[Point], intercept_time_ms: i64) -> (f64, f64) {
    let Some(&(_, init_y)) = points.first() else {
        return (f64::NAN, f64::NAN);
    };
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let mut const_y = true;
    for (i, &(t, v)) in points.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_time_ms) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// `deriv(v[r])`: the per-second slope of the least-squares line. None with fewer than
/// two samples.
pub fn deriv(w: &Window) -> Option<f64> {
    if w.points.len() < 2 {
        return None;
    }
    Some(linear_regression(w.points, w.points[0].0).0)
}

/// `predict_linear(v[r], t_secs)`: the least-squares line's value `t_secs` seconds after
/// the evaluation timestamp `eval_ts_ms` (the step time, not shifted by `offset`). None
/// with fewer than two samples.
pub fn predict_linear(w: &Window, t_secs: f64, eval_ts_ms: i64) -> Option<f64> {
    if w.points.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(w.points, eval_ts_ms);
    Some(slope * t_secs + intercept)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    /// Samples `values[i]` at `i * step_ms` (None = missing, like `_` in .test files).
    fn series(step_ms: i64, values: &[Option<f64>]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i as i64 * step_ms, v)))
            .collect()
    }

    /// `start+incxN` of the .test DSL.
    fn expand(start: f64, inc: f64, n: usize) -> Vec<Option<f64>> {
        (0..=n).map(|i| Some(start + inc * i as f64)).collect()
    }

    fn vals(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().map(|v| Some(*v)).collect()
    }

    /// Points in `(t - range, t]`, like a range selector at time `t`.
    fn select(points: &[Point], t: i64, range: i64) -> Vec<Point> {
        points
            .iter()
            .copied()
            .filter(|p| p.0 > t - range && p.0 <= t)
            .collect()
    }

    fn at(points: &[Point], t: i64, range: i64, f: impl Fn(&Window) -> Option<f64>) -> Option<f64> {
        let sel = select(points, t, range);
        f(&Window::new(&sel, t - range, t))
    }

    /// Equal within the relative tolerance promqltest uses for decimal expectations.
    fn close(got: Option<f64>, want: f64) -> bool {
        got.is_some_and(|g| (g - want).abs() <= 1e-12 * want.abs().max(1.0))
    }

    fn rate(w: &Window) -> Option<f64> {
        extrapolated_rate(w, true, true)
    }
    fn increase(w: &Window) -> Option<f64> {
        extrapolated_rate(w, true, false)
    }
    fn delta(w: &Window) -> Option<f64> {
        extrapolated_rate(w, false, false)
    }

    #[test]
    fn increase_extrapolation_and_zero_point() {
        // functions.test "Tests for increase()".
        let foo = series(5 * MIN, &expand(0.0, 10.0, 10));
        let mut bar_v = expand(0.0, 18.0, 5);
        bar_v.extend(expand(0.0, 18.0, 5));
        let bar = series(5 * MIN, &bar_v);
        let dings = series(5 * MIN, &expand(10.0, 10.0, 10));
        let bumms = series(5 * MIN, &expand(1.0, 10.0, 10));
        let t = 50 * MIN;
        assert_eq!(at(&foo, t, 50 * MIN, increase), Some(100.0));
        assert_eq!(at(&bar, t, 50 * MIN, increase), Some(160.0));
        assert_eq!(at(&dings, t, 50 * MIN, increase), Some(100.0));
        assert_eq!(at(&bumms, t, 50 * MIN, increase), Some(100.0));
        assert_eq!(at(&foo, t, 100 * MIN, increase), Some(100.0));
        assert_eq!(at(&bar, t, 100 * MIN, increase), Some(162.0));
        assert_eq!(at(&dings, t, 100 * MIN, increase), Some(105.0));
        assert_eq!(at(&bumms, t, 100 * MIN, increase), Some(101.0));
        // Counter reset: 0 1 2 3 2 3 4 → 7.
        let reset = series(5 * MIN, &vals(&[0.0, 1.0, 2.0, 3.0, 2.0, 3.0, 4.0]));
        assert_eq!(at(&reset, 30 * MIN, 30 * MIN, increase), Some(7.0));
    }

    #[test]
    fn rate_matches_functions_test() {
        let mut middle = expand(0.0, 27.0, 4);
        middle.extend(expand(0.0, 27.0, 5));
        let middle = series(5 * MIN, &middle);
        assert_eq!(at(&middle, 50 * MIN, 50 * MIN, rate), Some(0.08));
        let mut end = expand(0.0, 10.0, 9);
        end.extend(vals(&[0.0, 10.0]));
        let end = series(5 * MIN, &end);
        assert_eq!(at(&end, 50 * MIN, 5 * MIN, rate), None);
        assert_eq!(at(&end, 50 * MIN, 6 * MIN, rate), Some(0.0));
        let window = series(5 * MIN, &expand(0.0, 80.0, 10));
        assert!(close(
            at(&window, 50 * MIN, 50 * MIN, rate),
            0.266_666_666_666_666_66
        ));
        // offset 5m: the window ends at 45m, the range is still 10m.
        let a = series(5 * MIN, &expand(0.0, 10.0, 10));
        let b = series(5 * MIN, &expand(0.0, 20.0, 10));
        assert!(close(
            at(&a, 45 * MIN, 10 * MIN, rate),
            0.033_333_333_333_333_33
        ));
        assert!(close(
            at(&b, 45 * MIN, 10 * MIN, rate),
            0.066_666_666_666_666_67
        ));
    }

    #[test]
    fn rate_zero_cutoff() {
        // functions.test testcounter_zero_cutoff_total, load 4m.
        let expected_10m = [0.5, 0.55, 0.6, 0.6, 0.6, 0.6];
        for (i, want) in expected_10m.iter().enumerate() {
            let s = series(4 * MIN, &expand(60.0 * i as f64, 240.0, 10));
            let got = at(&s, 10 * MIN, 20 * MIN, rate).unwrap();
            assert!((got - want).abs() < 1e-12, "start={i}m: {got} != {want}");
            let got = at(&s, 50 * MIN, 20 * MIN, rate).unwrap();
            assert!((got - 0.6).abs() < 1e-12, "start={i}m at 50m: {got}");
        }
    }

    #[test]
    fn delta_and_single_point() {
        let foo = series(5 * MIN, &vals(&[0.0, 50.0, 100.0, 150.0, 200.0]));
        let bar = series(5 * MIN, &vals(&[200.0, 150.0, 100.0, 50.0, 0.0]));
        assert_eq!(at(&foo, 20 * MIN, 20 * MIN, delta), Some(200.0));
        assert_eq!(at(&bar, 20 * MIN, 20 * MIN, delta), Some(-200.0));
        // One point: no result; empty: no result.
        assert_eq!(rate(&Window::new(&[(0, 1.0)], -MIN, 0)), None);
        assert_eq!(rate(&Window::new(&[], -MIN, 0)), None);
        // NaN propagates.
        let nan = [(0, 1.0), (MIN, f64::NAN)];
        assert!(delta(&Window::new(&nan, -MIN, MIN)).unwrap().is_nan());
    }

    #[test]
    fn start_timestamps_first_sample() {
        // A counter created inside the window rises from 0 at its start timestamp.
        let pts = [(2 * MIN, 60.0), (3 * MIN, 120.0)];
        let sts = [MIN, MIN];
        let w = Window::new(&pts, 0, 3 * MIN).with_start_timestamps(&sts);
        // increase = 120 over [1m, 3m], no left extrapolation, none to the right either.
        assert_eq!(extrapolated_rate(&w, true, false), Some(120.0));
        // One sample is enough when its start timestamp is inside the window.
        let one = [(2 * MIN, 60.0)];
        let w1 = Window::new(&one, 0, 2 * MIN).with_start_timestamps(&sts[..1]);
        assert_eq!(extrapolated_rate(&w1, true, false), Some(60.0));
        // A start timestamp reset between samples counts like a decrease.
        let pts = [(MIN, 10.0), (2 * MIN, 20.0), (3 * MIN, 30.0)];
        let sts = [1, 1, 2 * MIN + 1];
        let w = Window::new(&pts, MIN - 1, 3 * MIN).with_start_timestamps(&sts);
        let out = extrapolated_rate_st(&w, true, false);
        assert!(!out.start_time_overlap);
        assert_eq!(resets(&w), Some(1.0));
        // result = 30 - 10 + 20 = 40, extrapolated by (120 + 0.001 + 0) / 120.
        assert_eq!(out.value, Some(40.0 * (120.001 / 120.0)));
        let overlap = [1, 1, MIN];
        let w = Window::new(&pts, MIN - 1, 3 * MIN).with_start_timestamps(&overlap);
        assert!(extrapolated_rate_st(&w, true, false).start_time_overlap);
        assert!(is_start_timestamp_reset(5, 10, 10, 20));
        assert!(!is_start_timestamp_reset(0, 10, 10, 20));
        assert!(!is_start_timestamp_reset(5, 10, 30, 20));
        // ST == T is OTel's unknown start, never a reset.
        assert!(!is_start_timestamp_reset(5, 10, 20, 20));
        // The previous ST equal to or after its own sample is not a known start: the
        // current sample pointing at the previous one is then no delta reset.
        assert!(!is_start_timestamp_reset(10, 10, 10, 20));
        assert!(!is_start_timestamp_reset(15, 10, 10, 20));
        // Pointing before the previous sample is an overlap, not a reset.
        assert!(!is_start_timestamp_reset(5, 10, 9, 20));
        assert!(is_start_time_overlap(5, 10, 9));
        assert!(!is_start_time_overlap(9, 10, 9));
    }

    #[test]
    fn start_timestamps_resets_before_and_inside_window() {
        // start_timestamps.test: `series@st _ _ -1m -1s _ _`, `series _ _ 5 5 2 _`, load 1m,
        // increase(series[5m]) at 5m = 16: an ST reset (5 → 5), a value reset (5 → 2) and
        // the first sample rising from 0 at its ST (1m), extrapolated only to the right.
        let pts = [(2 * MIN, 5.0), (3 * MIN, 5.0), (4 * MIN, 2.0)];
        let sts = [MIN, 3 * MIN - 1000, 0];
        let w = Window::new(&pts, 0, 5 * MIN).with_start_timestamps(&sts);
        assert_eq!(extrapolated_rate(&w, true, false), Some(16.0));
        assert_eq!(resets(&w), Some(2.0));
    }

    #[test]
    fn irate_idelta() {
        let foo = series(5 * MIN, &expand(0.0, 10.0, 10));
        let mut bar = expand(0.0, 10.0, 5);
        bar.extend(expand(0.0, 10.0, 5));
        let bar = series(5 * MIN, &bar);
        let want = 0.033_333_333_333_333_33;
        assert!(close(at(&foo, 50 * MIN, 50 * MIN, irate), want));
        assert!(close(at(&bar, 50 * MIN, 50 * MIN, irate), want));
        assert!(close(at(&foo, 30 * MIN, 50 * MIN, irate), want));
        assert_eq!(at(&bar, 30 * MIN, 50 * MIN, irate), Some(0.0));
        let foo = series(5 * MIN, &vals(&[0.0, 50.0, 100.0, 150.0]));
        let bar = series(5 * MIN, &vals(&[0.0, 50.0, 100.0, 50.0]));
        assert_eq!(at(&foo, 20 * MIN, 20 * MIN, idelta), Some(50.0));
        assert_eq!(at(&bar, 20 * MIN, 20 * MIN, idelta), Some(-50.0));
        assert_eq!(idelta(&Window::new(&[(1, 1.0)], 0, 1)), None);
        assert_eq!(idelta(&Window::new(&[(1, 1.0), (1, 2.0)], 0, 1)), None);
        // NaN counters: no reset detected, the difference is NaN.
        let nan = [(0, f64::NAN), (MIN, 5.0)];
        assert!(irate(&Window::new(&nan, -1, MIN)).unwrap().is_nan());
    }

    #[test]
    fn resets_and_changes() {
        let foo = series(5 * MIN, &vals(&[1., 2., 3., 0., 1., 0., 0., 1., 2., 0.]));
        let bar = series(5 * MIN, &vals(&[1., 2., 3., 4., 5., 1., 2., 3., 4., 5.]));
        let biz = series(5 * MIN, &vals(&[0., 0., 0., 0., 0., 1., 1., 1., 1., 1.]));
        let t = 45 * MIN; // the last sample of a 10-sample 5m series
        for (range, want) in [
            (5, [0., 0., 0.]),
            (20, [1., 0., 0.]),
            (32, [2., 1., 0.]),
            (50, [3., 1., 0.]),
        ] {
            let got: Vec<f64> = [&foo, &bar, &biz]
                .iter()
                .map(|s| at(s, t + 5 * MIN, range * MIN, resets).unwrap_or(-1.0))
                .collect();
            let want: Vec<f64> = if range == 5 {
                vec![-1.0; 3] // no samples in (45m, 50m]
            } else {
                want.to_vec()
            };
            assert_eq!(got, want, "resets [{range}m]");
        }
        assert_eq!(at(&foo, 50 * MIN, 30 * MIN, changes), Some(3.0));
        assert_eq!(at(&bar, 50 * MIN, 30 * MIN, changes), Some(4.0));
        assert_eq!(at(&biz, 50 * MIN, 30 * MIN, changes), Some(0.0));
        assert_eq!(at(&foo, 50 * MIN, 20 * MIN, changes), Some(2.0));
        assert_eq!(at(&bar, 50 * MIN, 20 * MIN, changes), Some(2.0));
        assert_eq!(at(&foo, 50 * MIN, 50 * MIN, changes), Some(7.0));
        assert_eq!(at(&bar, 50 * MIN, 50 * MIN, changes), Some(8.0));
        assert_eq!(at(&biz, 50 * MIN, 50 * MIN, changes), Some(1.0));
        assert_eq!(at(&biz, 50 * MIN, 6 * MIN, changes), Some(0.0));
        let b = series(5 * MIN, &vals(&[f64::NAN, f64::NAN, f64::NAN]));
        let c = series(5 * MIN, &vals(&[0.0, f64::NAN, 0.0]));
        assert_eq!(at(&b, 15 * MIN, 20 * MIN, changes), Some(0.0));
        assert_eq!(at(&c, 15 * MIN, 20 * MIN, changes), Some(2.0));
        assert_eq!(changes(&Window::new(&[], 0, 1)), None);
    }

    #[test]
    fn deriv_predict_linear() {
        let mut v = expand(0.0, 10.0, 4);
        v.extend(expand(0.0, 10.0, 5));
        let s = series(5 * MIN, &v);
        assert!(close(
            at(&s, 50 * MIN, 100 * MIN, deriv),
            0.010_606_060_606_060_607
        ));
        let total = series(5 * MIN, &expand(0.0, 80.0, 10));
        assert!(close(
            at(&total, 50 * MIN, 50 * MIN, deriv),
            0.266_666_666_666_666_66
        ));
        let sel = select(&s, 50 * MIN, 50 * MIN);
        let w = Window::new(&sel, 0, 50 * MIN);
        assert_eq!(predict_linear(&w, 3600.0, 50 * MIN), Some(70.0));
        // `[55m] @ 3000` evaluated at 10m: the intercept is taken at the step time.
        let sel = select(&s, 50 * MIN, 55 * MIN);
        let w = Window::new(&sel, -5 * MIN, 50 * MIN);
        let got = predict_linear(&w, 3600.0, 50 * MIN).unwrap();
        assert!((got - 76.818_181_818_181_81).abs() < 1e-9, "{got}");
        let got = predict_linear(&w, 3600.0, 10 * MIN).unwrap();
        assert!((got - 51.363_636_363_636_37).abs() < 1e-9, "{got}");
        // ±Inf in the range → NaN.
        let mut inf = vec![Some(f64::NEG_INFINITY)];
        inf.extend(expand(0.0, 80.0, 10));
        inf.push(Some(f64::INFINITY));
        let inf = series(5 * MIN, &inf);
        assert!(at(&inf, 100 * MIN, 100 * MIN, deriv).unwrap().is_nan());
        assert_eq!(deriv(&Window::new(&[(0, 1.0)], -1, 0)), None);
        // Constant values: slope 0, constant Inf: NaN.
        assert_eq!(linear_regression(&[(0, 3.0), (1000, 3.0)], 0), (0.0, 3.0));
        assert!(
            linear_regression(&[(0, f64::INFINITY), (1000, f64::INFINITY)], 0)
                .0
                .is_nan()
        );
    }

    /// extended_vectors.test "PROM-52 complete dataset": load 15s, `1+1x4 9+1x4`.
    fn prom52() -> Vec<Point> {
        let mut v = expand(1.0, 1.0, 4);
        v.extend(expand(9.0, 1.0, 4));
        series(15_000, &v)
    }

    /// Anchored/smoothed increase over `[1m]` at `t_s` seconds; the caller's extended
    /// selection reaches one lookback (5m) back, and for smoothed one lookback ahead.
    fn extended_increase(t_s: i64, smoothed: bool) -> Option<f64> {
        let (t, range, lookback) = (t_s * 1000, MIN, 5 * MIN);
        let ahead = if smoothed { lookback } else { 0 };
        let sel: Vec<Point> = prom52()
            .into_iter()
            .filter(|p| p.0 > t - range - lookback && p.0 <= t + ahead)
            .collect();
        extended_rate(&Window::new(&sel, t - range, t), smoothed, true, false)
    }

    #[test]
    fn anchored_and_smoothed_increase() {
        let anchored = [
            (5, 0.0),
            (20, 1.0),
            (35, 2.0),
            (50, 3.0),
            (65, 4.0),
            (80, 7.0),
            (95, 7.0),
            (110, 7.0),
            (125, 7.0),
        ];
        for (t, want) in anchored {
            assert_eq!(extended_increase(t, false), Some(want), "anchored at {t}s");
        }
        let smoothed = [
            (5, 1.0 / 3.0),
            (20, 4.0 / 3.0),
            (35, 7.0 / 3.0),
            (50, 10.0 / 3.0),
            (65, 5.0),
            (80, 7.0),
            (95, 7.0),
            (110, 7.0),
            (125, 6.0),
        ];
        for (t, want) in smoothed {
            assert!(
                close(extended_increase(t, true), want),
                "smoothed at {t}s: {:?}",
                extended_increase(t, true)
            );
        }
        // Plain increase on the same data, for contrast (extrapolated).
        let plain = [(20, 1.833333333), (50, 4.0), (80, 8.0), (125, 4.0)];
        for (t, want) in plain {
            let got = at(&prom52(), t * 1000, MIN, increase).unwrap();
            assert!((got - want).abs() < 1e-6, "plain at {t}s: {got}");
        }
        assert_eq!(at(&prom52(), 5000, MIN, increase), None);
        // Nothing after the range start: no result.
        let old = [(0, 1.0)];
        assert_eq!(
            extended_rate(&Window::new(&old, 1000, 61_000), false, true, false),
            None
        );
        assert_eq!(
            extended_rate(&Window::new(&[], 1000, 61_000), true, true, false),
            None
        );
        // rate divides by the range.
        let sel: Vec<Point> = prom52().into_iter().filter(|p| p.0 <= 80_000).collect();
        assert_eq!(
            extended_rate(&Window::new(&sel, 20_000, 80_000), false, true, true),
            Some(7.0 / 60.0)
        );
    }

    #[test]
    fn extend_points_and_anchor() {
        let pts = prom52();
        // Anchored at 80s over [1m]: anchor value 2 at 20s, inner 30..75s, last value at 80s.
        let sel: Vec<Point> = pts.iter().copied().filter(|p| p.0 <= 80_000).collect();
        let ext = extend_points(&sel, 20_000, 80_000, false);
        assert_eq!(
            ext,
            vec![
                (20_000, 2.0),
                (30_000, 3.0),
                (45_000, 4.0),
                (60_000, 5.0),
                (75_000, 9.0),
                (80_000, 9.0)
            ]
        );
        // Smoothed: interpolated at both ends.
        let ext = extend_points(&pts, 5_000, 65_000, true);
        assert_eq!(ext.first().unwrap().0, 5_000);
        assert!((ext.first().unwrap().1 - 4.0 / 3.0).abs() < 1e-12);
        assert!((ext.last().unwrap().1 - 19.0 / 3.0).abs() < 1e-12);
        assert_eq!(ext.len(), 6); // 5s, 15s, 30s, 45s, 60s, 65s
        assert!(extend_points(&[], 0, 1, true).is_empty());
        assert_eq!(anchored_first_index(&pts, 20_000), Some(1));
        assert_eq!(anchored_first_index(&pts, -1), Some(0));
        assert_eq!(anchored_first_index(&pts, 135_000), None);
    }
}
