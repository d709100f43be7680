//! Classic-histogram kernels: `histogram_quantile` and `histogram_fraction` over the
//! cumulative `le` buckets of one series group at one step, as Prometheus' bucket
//! algorithms compute them (sort by upper bound, +Inf bucket required, duplicate bounds
//! merged, precision artefacts ignored, monotonicity forced and reported, linear
//! interpolation with a natural lower bound of 0). Native histograms are out of scope.
//! This module never groups series or parses `le` labels; the caller does.

use std::cmp::Ordering;

/// Relative difference between neighbouring bucket counts below which the difference is
/// treated as a floating-point artefact and silently removed.
pub const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// A cumulative classic-histogram bucket: (upper bound `le`, count of observations ≤ it).
pub type Bucket = (f64, f64);

/// The result of [`bucket_quantile`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketQuantile {
    pub value: f64,
    /// Counts had to be raised to make them monotonic; Prometheus then adds the info
    /// annotation "input to histogram_quantile needed to be fixed for monotonicity (see
    /// <https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile>)"
    /// followed by ", from buckets {min_bucket} to {max_bucket}, with a max diff of
    /// {max_diff:.2g}, over N samples from T1 to T2" (merged over the steps it occurs in).
    pub forced_monotonicity: bool,
    /// Tiny (relative < [`SMALL_DELTA_TOLERANCE`]) differences were ignored.
    pub fixed_precision: bool,
    /// Smallest upper bound whose count was raised (+Inf if none).
    pub min_bucket: f64,
    /// Largest upper bound whose count was raised (-Inf if none).
    pub max_bucket: f64,
    /// Largest amount by which a count was raised (0 if none).
    pub max_diff: f64,
}

impl BucketQuantile {
    fn value_only(value: f64) -> BucketQuantile {
        BucketQuantile {
            value,
            forced_monotonicity: false,
            fixed_precision: false,
            min_bucket: 0.0,
            max_bucket: 0.0,
            max_diff: 0.0,
        }
    }
}

/// Sorts by upper bound (NaN bounds are not expected and compare equal).
fn sort_by_upper_bound(buckets: &mut [Bucket]) {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
}

/// Merges neighbouring buckets with the same upper bound (summing counts); input sorted.
fn coalesce(buckets: &mut Vec<Bucket>) {
    buckets.dedup_by(|next, kept| {
        if next.0 == kept.0 {
            kept.1 += next.1;
            true
        } else {
            false
        }
    });
}

/// Whether two counts are equal up to a relative `tolerance` (NaN equals NaN).
fn almost_equal(a: f64, b: f64, tolerance: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < tolerance * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < tolerance
}

/// Removes numerically insignificant differences between neighbouring counts, then
/// raises every count that is below its predecessor. Fills the report fields of `out`.
fn ensure_monotonic(buckets: &mut [Bucket], tolerance: f64, out: &mut BucketQuantile) {
    out.min_bucket = f64::INFINITY;
    out.max_bucket = f64::NEG_INFINITY;
    let Some(first) = buckets.first() else {
        return;
    };
    let mut prev = first.1;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, tolerance) {
            b.1 = prev;
            out.fixed_precision = true;
            continue;
        }
        if curr < prev {
            b.1 = prev;
            out.forced_monotonicity = true;
            out.min_bucket = out.min_bucket.min(b.0);
            out.max_bucket = out.max_bucket.max(b.0);
            out.max_diff = out.max_diff.max(prev - curr);
            continue;
        }
        prev = curr;
    }
}

/// Go's `sort.Search(n, pred)`.
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

/// `histogram_quantile(q, buckets)` for a classic histogram. `buckets` is reordered and
/// rewritten (sorted, merged, made monotonic).
///
/// NaN `q` → NaN; `q < 0` → -Inf; `q > 1` → +Inf; no +Inf bucket, fewer than two
/// buckets, or zero observations → NaN. A quantile in the +Inf bucket returns the
/// second-highest bound; in the lowest bucket it interpolates from 0 (or returns the
/// bound itself if it is ≤ 0).
pub fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> BucketQuantile {
    if q.is_nan() {
        return BucketQuantile::value_only(f64::NAN);
    }
    if q < 0.0 {
        return BucketQuantile::value_only(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return BucketQuantile::value_only(f64::INFINITY);
    }
    sort_by_upper_bound(buckets);
    if !matches!(buckets.last(), Some(b) if b.0 == f64::INFINITY) {
        return BucketQuantile::value_only(f64::NAN);
    }
    coalesce(buckets);
    let mut out = BucketQuantile::value_only(f64::NAN);
    ensure_monotonic(buckets, SMALL_DELTA_TOLERANCE, &mut out);
    let n = buckets.len();
    if n < 2 {
        return out;
    }
    let observations = buckets[n - 1].1;
    if observations == 0.0 {
        return out;
    }
    let mut rank = q * observations;
    let b = search(n - 1, |i| buckets[i].1 >= rank);
    out.value = if b == n - 1 {
        buckets[n - 2].0
    } else if b == 0 && buckets[0].0 <= 0.0 {
        buckets[0].0
    } else {
        let (bucket_end, mut count) = buckets[b];
        let mut bucket_start = 0.0;
        if b > 0 {
            bucket_start = buckets[b - 1].0;
            count -= buckets[b - 1].1;
            rank -= buckets[b - 1].1;
        }
        bucket_start + (bucket_end - bucket_start) * (rank / count)
    };
    out
}

/// `histogram_fraction(lower, upper, buckets)` for a classic histogram: the estimated
/// fraction of observations in `[lower, upper]`, interpolating linearly inside buckets
/// (no interpolation inside infinitely wide buckets). `buckets` is reordered and merged.
///
/// No +Inf bucket, zero observations, or a NaN bound → NaN; `lower >= upper` → 0.
pub fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<Bucket>) -> f64 {
    sort_by_upper_bound(buckets);
    if !matches!(buckets.last(), Some(b) if b.0 == f64::INFINITY) {
        return f64::NAN;
    }
    coalesce(buckets);
    let count = buckets[buckets.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    // Positive buckets only: the first bucket starts at 0; otherwise at -Inf.
    let mut lower_bound = if buckets[0].0 <= 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    for (i, &(upper_bound, bucket_count)) in buckets.iter().enumerate() {
        if i > 0 {
            lower_bound = buckets[i - 1].0;
        }
        let interpolate = |v: f64| {
            if lower_bound == f64::NEG_INFINITY {
                bucket_count
            } else {
                rank + (bucket_count - rank) * (v - lower_bound) / (upper_bound - lower_bound)
            }
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = bucket_count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;

    /// histograms.test `testhistogram_bucket` at 50m (counts = 10 × the increments).
    fn positive() -> Vec<Bucket> {
        vec![(0.1, 50.0), (0.2, 70.0), (1.0, 110.0), (INF, 120.0)]
    }
    fn negative() -> Vec<Bucket> {
        vec![(-0.2, 10.0), (-0.1, 20.0), (0.3, 20.0), (INF, 30.0)]
    }

    fn q(q: f64, mut b: Vec<Bucket>) -> f64 {
        bucket_quantile(q, &mut b).value
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn quantiles_match_histograms_test() {
        let cases = [
            (0.0, 0.0, -0.2),
            (1.0, 1.0, 0.3),
            (0.2, 0.048, -0.2),
            (0.5, 0.15, -0.15),
            (0.8, 0.72, 0.3),
        ];
        for (quant, pos, neg) in cases {
            assert!(
                close(q(quant, positive()), pos),
                "q={quant}: {}",
                q(quant, positive())
            );
            assert!(
                close(q(quant, negative()), neg),
                "q={quant}: {}",
                q(quant, negative())
            );
        }
        assert_eq!(q(-0.1, positive()), f64::NEG_INFINITY);
        assert_eq!(q(1.01, positive()), INF);
        assert!(q(f64::NAN, positive()).is_nan());
        // Unsorted input is sorted first.
        let mut shuffled = positive();
        shuffled.reverse();
        assert!(close(q(0.5, shuffled), 0.15));
    }

    #[test]
    fn quantile_special_cases() {
        assert!(
            q(0.5, vec![(0.1, 1.0), (1.0, 2.0)]).is_nan(),
            "no +Inf bucket"
        );
        assert!(q(0.5, vec![(INF, 5.0)]).is_nan(), "only +Inf bucket");
        assert!(
            q(0.5, vec![(0.1, 0.0), (INF, 0.0)]).is_nan(),
            "no observations"
        );
        assert!(q(0.5, vec![]).is_nan());
        // Duplicate bounds (e.g. le="1" and le="1.0") are merged.
        let merged = q(0.5, vec![(0.1, 1.0), (0.2, 1.0), (0.2, 1.0), (INF, 2.0)]);
        assert!(close(merged, 0.1 + 0.1 * 0.0), "{merged}");
    }

    #[test]
    fn nonmonotonic_buckets_are_fixed_and_reported() {
        // histograms.test `nonmonotonic_bucket` at 50m.
        let input = vec![
            (0.1, 20.0),
            (1.0, 10.0),
            (10.0, 50.0),
            (100.0, 40.0),
            (1000.0, 90.0),
            (INF, 80.0),
        ];
        for (quant, want) in [(0.01, 0.0045), (0.5, 8.5), (0.99, 979.75)] {
            let r = bucket_quantile(quant, &mut input.clone());
            assert!(close(r.value, want), "q={quant}: {}", r.value);
            assert!(r.forced_monotonicity);
            assert_eq!((r.min_bucket, r.max_bucket, r.max_diff), (1.0, INF, 10.0));
        }
        let ok = bucket_quantile(0.5, &mut positive());
        assert!(!ok.forced_monotonicity && !ok.fixed_precision);
        // A tiny float artefact is ignored silently.
        let mut tiny = vec![(1.0, 10.0), (2.0, 10.0 - 1e-14), (INF, 10.0)];
        let r = bucket_quantile(0.5, &mut tiny);
        assert!(r.fixed_precision && !r.forced_monotonicity);
        assert_eq!(r.value, 0.5);
    }

    #[test]
    fn fractions_match_histograms_test() {
        let h2 = || {
            vec![
                (0.0, 0.0),
                (2.0, 10.0),
                (4.0, 20.0),
                (6.0, 30.0),
                (INF, 30.0),
            ]
        };
        assert!(close(
            bucket_fraction(0.0, 4.0, &mut h2()),
            0.6666666666666666
        ));
        assert!(close(bucket_fraction(0.0, 6.0, &mut h2()), 1.0));
        assert!(close(
            bucket_fraction(0.0, 3.5, &mut h2()),
            0.5833333333333334
        ));
        let pos3 = || {
            vec![
                (0.0, 0.0),
                (0.1, 50.0),
                (0.2, 70.0),
                (1.0, 110.0),
                (INF, 110.0),
            ]
        };
        assert!(close(
            bucket_fraction(0.0, 0.2, &mut pos3()),
            0.6363636363636364
        ));
        let first = || vec![(1.0, 1.0), (2.0, 3.0), (3.0, 6.0), (INF, 100.0)];
        assert!(close(bucket_fraction(0.0, 1.5, &mut first()), 0.02));
        assert!(close(bucket_fraction(-INF, INF, &mut first()), 1.0));
        let neg = || vec![(-3.0, 10.0), (-2.0, 12.0), (-1.0, 15.0), (INF, 100.0)];
        assert!(close(bucket_fraction(-4.0, -2.0, &mut neg()), 0.02));
        assert!(close(bucket_fraction(-INF, -1.5, &mut neg()), 0.135));
        assert!(close(bucket_fraction(-INF, INF, &mut neg()), 1.0));
        assert_eq!(bucket_fraction(2.0, 1.0, &mut neg()), 0.0);
        assert!(bucket_fraction(f64::NAN, 1.0, &mut neg()).is_nan());
        assert!(bucket_fraction(0.0, 1.0, &mut vec![(1.0, 1.0)]).is_nan());
        assert!(bucket_fraction(0.0, 1.0, &mut vec![(1.0, 0.0), (INF, 0.0)]).is_nan());
    }
}
