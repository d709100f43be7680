//! Range-vector function kernels used by the dispatch until the shared numeric kernels
//! (`crate::kernels`) take over: counter rate extrapolation, instant rates, `*_over_time`,
//! linear regression, Holt-Winters smoothing. Pure functions over a window of points; they
//! never touch storage, labels or annotations.

use super::aggregate::{kahan_inc, quantile};
use super::value::Point;

const MS_PER_SECOND: f64 = 1000.0;
/// Samples closer to the range boundary than 110% of the average spacing extrapolate to it.
const EXTRAPOLATION_THRESHOLD_FACTOR: f64 = 1.1;

/// `rate`/`increase`/`delta` with Prometheus' extrapolation over `(range_end - range,
/// range_end]`.
pub(crate) fn extrapolated_rate(
    pts: &[Point],
    range_end: i64,
    range_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let range_start = range_end - range_ms;
    let first = pts[0];
    let last = pts[pts.len() - 1];
    let mut result = last.v - first.v;
    if is_counter {
        for w in pts.windows(2) {
            if w[1].v < w[0].v {
                result += w[0].v;
            }
        }
    }
    let mut to_start = (first.t - range_start) as f64 / MS_PER_SECOND;
    let mut to_end = (range_end - last.t) as f64 / MS_PER_SECOND;
    let sampled = (last.t - first.t) as f64 / MS_PER_SECOND;
    let avg = sampled / (pts.len() - 1) as f64;
    let threshold = avg * EXTRAPOLATION_THRESHOLD_FACTOR;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if is_counter {
        let mut to_zero = to_start;
        if result > 0.0 && first.v >= 0.0 {
            to_zero = sampled * (first.v / result);
        }
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = 1.0;
    if sampled != 0.0 {
        factor = (sampled + to_start + to_end) / sampled;
    }
    if is_rate {
        factor /= range_ms as f64 / MS_PER_SECOND;
    }
    Some(result * factor)
}

/// `irate`/`idelta` from the last two points.
pub(crate) fn instant_value(pts: &[Point], is_rate: bool) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let a = pts[pts.len() - 2];
    let b = pts[pts.len() - 1];
    let dt = b.t - a.t;
    if dt == 0 {
        return None;
    }
    let mut v = b.v;
    if !is_rate || b.v >= a.v {
        v = b.v - a.v;
    }
    if is_rate {
        v /= dt as f64 / MS_PER_SECOND;
    }
    Some(v)
}

/// Least-squares slope and intercept at `intercept_t` (Kahan-compensated sums).
pub(crate) fn linear_regression(pts: &[Point], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = pts[0].v;
    let mut const_y = true;
    for (i, p) in pts.iter().enumerate() {
        if const_y && i > 0 && p.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_t) as f64 / MS_PER_SECOND;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(p.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * p.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

pub(crate) fn avg_over_time(pts: &[Point]) -> f64 {
    let mut sum = pts[0].v;
    let (mut count, mut mean, mut c) = (1.0, 0.0, 0.0);
    let mut incremental = false;
    for (i, p) in pts[1..].iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(p.v, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.v / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

pub(crate) fn sum_over_time(pts: &[Point]) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for p in pts {
        (sum, c) = kahan_inc(p.v, sum, c);
    }
    if sum.is_infinite() {
        sum
    } else {
        sum + c
    }
}

pub(crate) fn variance_over_time(pts: &[Point]) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in pts {
        count += 1.0;
        let delta = p.v - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (p.v - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}

pub(crate) fn max_over_time(pts: &[Point]) -> f64 {
    let mut m = pts[0].v;
    for p in pts {
        if p.v > m || m.is_nan() {
            m = p.v;
        }
    }
    m
}

pub(crate) fn min_over_time(pts: &[Point]) -> f64 {
    let mut m = pts[0].v;
    for p in pts {
        if p.v < m || m.is_nan() {
            m = p.v;
        }
    }
    m
}

pub(crate) fn quantile_over_time(q: f64, pts: &[Point]) -> f64 {
    let mut v: Vec<f64> = pts.iter().map(|p| p.v).collect();
    quantile(q, &mut v)
}

pub(crate) fn mad_over_time(pts: &[Point]) -> f64 {
    if pts.iter().any(|p| p.v.is_nan()) {
        return f64::NAN;
    }
    let mut v: Vec<f64> = pts.iter().map(|p| p.v).collect();
    let median = quantile(0.5, &mut v);
    for x in v.iter_mut() {
        *x = (*x - median).abs();
    }
    quantile(0.5, &mut v)
}

pub(crate) fn changes(pts: &[Point]) -> f64 {
    let mut n = 0;
    for w in pts.windows(2) {
        if w[1].v != w[0].v && !(w[1].v.is_nan() && w[0].v.is_nan()) {
            n += 1;
        }
    }
    n as f64
}

pub(crate) fn resets(pts: &[Point]) -> f64 {
    pts.windows(2).filter(|w| w[1].v < w[0].v).count() as f64
}

/// Holt's double exponential smoothing with smoothing factor `sf` and trend factor `tf`.
pub(crate) fn double_exponential_smoothing(pts: &[Point], sf: f64, tf: f64) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let mut s0 = 0.0;
    let mut s1 = pts[0].v;
    let mut b = pts[1].v - pts[0].v;
    for (i, p) in pts.iter().enumerate().skip(1) {
        let x = sf * p.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}
