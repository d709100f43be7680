//! Numeric building blocks shared by functions and aggregations: Kahan–Neumaier
//! summation, the `quantile` estimator, and the running accumulators behind the `sum`,
//! `avg`, `stddev`/`stdvar`, `min`/`max` aggregation operators, each computing in the same
//! order as Prometheus' evaluator so float results agree to the last bit.
//! This module only does arithmetic on `f64`; it never sees labels, series or time.

/// One step of Kahan summation with Neumaier's improvement: adds `inc` to `sum` with
/// running compensation `c`, returning the new `(sum, c)`. When the sum becomes infinite
/// the compensation is reset to 0 (so `sum + c` stays infinite instead of NaN).
#[inline(never)]
pub fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    // Not inlined: like Prometheus, keep the compiler from fusing operations across the
    // call boundary; Kahan summation is sensitive to every rounding step.
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Sorts values ascending with NaN first, as Prometheus' value heap orders them.
pub fn sort_nan_first(values: &mut [f64]) {
    values.sort_unstable_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
}

/// The φ-quantile of `values` as PromQL's `quantile` aggregation and
/// `quantile_over_time` compute it: sort (NaN lowest), then interpolate linearly between
/// the two closest ranks (`rank = q * (n - 1)`). `values` is reordered.
///
/// Empty input or NaN `q` → NaN; `q < 0` → -Inf; `q > 1` → +Inf.
pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    sort_nan_first(values);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (n - 1.0).min(lower + 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Whether a quantile argument is outside [0, 1] (or NaN), for which Prometheus adds the
/// warning "quantile value should be between 0 and 1".
pub fn is_invalid_quantile(q: f64) -> bool {
    q.is_nan() || !(0.0..=1.0).contains(&q)
}

/// Running Kahan sum as the `sum` aggregation computes it (the first value starts the sum).
#[derive(Clone, Copy, Debug, Default)]
pub struct SumAcc {
    sum: f64,
    c: f64,
    seen: bool,
}

impl SumAcc {
    /// An empty accumulator.
    pub fn new() -> SumAcc {
        SumAcc::default()
    }

    /// Adds one value.
    pub fn add(&mut self, v: f64) {
        if self.seen {
            (self.sum, self.c) = kahan_inc(v, self.sum, self.c);
        } else {
            self.sum = v;
            self.seen = true;
        }
    }

    /// The compensated sum (0 when nothing was added).
    pub fn value(&self) -> f64 {
        self.sum + self.c
    }
}

/// Running mean as the `avg` aggregation and `avg_over_time` compute it: a Kahan-summed
/// direct mean while the running sum stays finite, switching to an incremental mean
/// (also Kahan-compensated) once the sum would overflow.
#[derive(Clone, Copy, Debug, Default)]
pub struct AvgAcc {
    sum: f64,
    mean: f64,
    c: f64,
    count: f64,
    incremental: bool,
}

impl AvgAcc {
    /// An empty accumulator.
    pub fn new() -> AvgAcc {
        AvgAcc::default()
    }

    /// Adds one value.
    pub fn add(&mut self, v: f64) {
        if self.count == 0.0 {
            self.sum = v;
            self.mean = v;
            self.count = 1.0;
            return;
        }
        self.count += 1.0;
        if !self.incremental {
            let (new_sum, new_c) = kahan_inc(v, self.sum, self.c);
            if !new_sum.is_infinite() {
                self.sum = new_sum;
                self.c = new_c;
                return;
            }
            self.incremental = true;
            self.mean = self.sum / (self.count - 1.0);
            self.c /= self.count - 1.0;
        }
        let q = (self.count - 1.0) / self.count;
        (self.mean, self.c) = kahan_inc(v / self.count, q * self.mean, q * self.c);
    }

    /// Number of values added.
    pub fn count(&self) -> f64 {
        self.count
    }

    /// The mean (NaN when nothing was added).
    pub fn value(&self) -> f64 {
        if self.incremental {
            self.mean + self.c
        } else {
            self.sum / self.count + self.c / self.count
        }
    }
}

/// Running variance as the `stddev`/`stdvar` aggregations compute it (Welford's online
/// algorithm without compensation; a NaN or ±Inf first value makes the result NaN).
#[derive(Clone, Copy, Debug, Default)]
pub struct VarianceAcc {
    m2: f64,
    mean: f64,
    count: f64,
}

impl VarianceAcc {
    /// An empty accumulator.
    pub fn new() -> VarianceAcc {
        VarianceAcc::default()
    }

    /// Adds one value.
    pub fn add(&mut self, v: f64) {
        if self.count == 0.0 {
            self.m2 = if v.is_finite() { 0.0 } else { f64::NAN };
            self.mean = v;
            self.count = 1.0;
            return;
        }
        self.count += 1.0;
        let delta = v - self.mean;
        self.mean += delta / self.count;
        self.m2 += delta * (v - self.mean);
    }

    /// The population variance (`stdvar`).
    pub fn stdvar(&self) -> f64 {
        self.m2 / self.count
    }

    /// The population standard deviation (`stddev`).
    pub fn stddev(&self) -> f64 {
        (self.m2 / self.count).sqrt()
    }
}

/// Variance as `stdvar_over_time` computes it: Welford's algorithm with Kahan-compensated
/// mean and sum of squares. Empty input → NaN.
pub fn variance_kahan(values: impl IntoIterator<Item = f64>) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for v in values {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Running `max` aggregation: a later value replaces the current one if it is greater or
/// the current one is NaN (so NaN only survives when every value is NaN).
pub fn max_step(current: f64, v: f64) -> f64 {
    if current < v || current.is_nan() {
        v
    } else {
        current
    }
}

/// Running `min` aggregation: a later value replaces the current one if it is smaller or
/// the current one is NaN.
pub fn min_step(current: f64, v: f64) -> f64 {
    if current > v || current.is_nan() {
        v
    } else {
        current
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sum(values: &[f64]) -> f64 {
        let mut acc = SumAcc::new();
        values.iter().for_each(|v| acc.add(*v));
        acc.value()
    }

    fn avg(values: &[f64]) -> f64 {
        let mut acc = AvgAcc::new();
        values.iter().for_each(|v| acc.add(*v));
        acc.value()
    }

    #[test]
    fn kahan_compensates_cancellation() {
        // aggregators.test: sum of {1, 1e100, 1, -1e100} is 2 with Kahan summation.
        assert_eq!(sum(&[1.0, 1e100, 1.0, -1e100]), 2.0);
        let naive: f64 = [1.0, 1e100, 1.0, -1e100].iter().sum();
        assert_eq!(naive, 0.0);
        // Infinity resets the compensation, so the sum stays infinite, not NaN.
        assert_eq!(sum(&[1.0, f64::INFINITY, 1.0]), f64::INFINITY);
        assert!(sum(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
        assert_eq!(SumAcc::new().value(), 0.0);
    }

    #[test]
    fn avg_matches_aggregators_test() {
        // aggregators.test "avg(data{test="ten"})" style inputs.
        assert_eq!(avg(&[1.0, 1e100, 1.0, -1e100]), 0.5);
        assert_eq!(avg(&[5.0]), 5.0);
        // Overflowing sum switches to the incremental mean.
        assert_eq!(avg(&[f64::MAX, f64::MAX]), f64::MAX);
        assert_eq!(avg(&[f64::MAX, -f64::MAX]), 0.0);
        assert_eq!(avg(&[f64::INFINITY, 1.0]), f64::INFINITY);
        assert!(avg(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
        assert!(avg(&[1.0, f64::NAN]).is_nan());
        assert!(AvgAcc::new().value().is_nan());
    }

    #[test]
    fn quantile_interpolates_like_prometheus() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(0.5, &mut v), 2.5);
        assert_eq!(v, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(quantile(0.0, &mut v), 1.0);
        assert_eq!(quantile(1.0, &mut v), 4.0);
        assert_eq!(quantile(0.75, &mut v), 3.25);
        assert_eq!(quantile(-1.0, &mut v), f64::NEG_INFINITY);
        assert_eq!(quantile(1.5, &mut v), f64::INFINITY);
        assert!(quantile(f64::NAN, &mut v).is_nan());
        assert!(quantile(0.5, &mut []).is_nan());
        // NaN sorts lowest.
        let mut n = vec![2.0, f64::NAN, 1.0];
        assert!(quantile(0.0, &mut n).is_nan());
        assert_eq!(quantile(1.0, &mut n), 2.0);
        assert!(is_invalid_quantile(-0.1) && is_invalid_quantile(f64::NAN));
        assert!(!is_invalid_quantile(0.0) && !is_invalid_quantile(1.0));
    }

    #[test]
    fn variance_accumulators() {
        // aggregators.test: stddev of {0, 10, 20, ..., 80}... population variance.
        let mut acc = VarianceAcc::new();
        for v in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            acc.add(v);
        }
        assert_eq!(acc.stdvar(), 4.0);
        assert_eq!(acc.stddev(), 2.0);
        let mut inf = VarianceAcc::new();
        inf.add(f64::INFINITY);
        assert!(inf.stdvar().is_nan());
        let mut one = VarianceAcc::new();
        one.add(3.0);
        assert_eq!(one.stdvar(), 0.0);
        assert_eq!(
            variance_kahan([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]),
            4.0
        );
        assert!(variance_kahan([]).is_nan());
    }

    #[test]
    fn min_max_skip_nan() {
        assert_eq!([f64::NAN, 1.0, 3.0].into_iter().reduce(max_step), Some(3.0));
        assert_eq!([f64::NAN, 1.0, 3.0].into_iter().reduce(min_step), Some(1.0));
        assert_eq!([1.0, f64::NAN].into_iter().reduce(max_step), Some(1.0));
        assert!([f64::NAN, f64::NAN]
            .into_iter()
            .reduce(max_step)
            .unwrap()
            .is_nan());
    }
}
