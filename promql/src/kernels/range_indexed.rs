//! Range-vector `rate`/`increase`/`delta` over many windows of one series, as a range
//! query evaluates them: the series' counter resets are found once ([`CounterResets`]),
//! and the extrapolation factor is reused while consecutive windows have the same shape
//! ([`IndexedRate`]). Every value is bit-identical to `range::extrapolated_rate` on the
//! window alone. This module never selects samples and never handles start timestamps.

use super::range::{zero_point_beyond, WindowShape};
use super::Point;

/// The counter resets of one whole series (a value below its predecessor), found once so
/// that each step's window adds only its own resets instead of rescanning every sample:
/// `rate`/`increase` over a range query then cost O(log n + resets in the window) per
/// step. Resets are kept in sample order, so a window's corrections are added in exactly
/// the order [`extrapolated_rate`](super::range::extrapolated_rate) adds them (bit-identical results).
#[derive(Clone, Debug, Default)]
pub struct CounterResets {
    /// Index of the sample after each reset (always >= 1), ascending.
    at: Vec<usize>,
    /// The value before each reset, parallel to `at`.
    pre: Vec<f64>,
}

impl CounterResets {
    /// No resets (reuse the allocation with [`CounterResets::rebuild`]).
    pub fn new() -> CounterResets {
        CounterResets::default()
    }

    /// Finds the resets of `points` (one whole series), replacing the previous contents.
    pub fn rebuild(&mut self, points: &[Point]) {
        self.at.clear();
        self.pre.clear();
        for (i, pair) in points.windows(2).enumerate() {
            if pair[1].1 < pair[0].1 {
                self.at.push(i + 1);
                self.pre.push(pair[0].1);
            }
        }
    }

    /// Number of resets in the series.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether the series has no reset.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// Adds to `acc`, in sample order, the pre-reset values of the resets between two
    /// samples of the window `points[lo..hi]` (the series' indices), and returns the sum.
    pub fn add_within(&self, lo: usize, hi: usize, mut acc: f64) -> f64 {
        let first = self.at.partition_point(|&i| i <= lo);
        for (&i, &pre) in self.at[first..].iter().zip(&self.pre[first..]) {
            if i >= hi {
                break;
            }
            acc += pre;
        }
        acc
    }
}

/// `rate`/`increase`/`delta` of many windows of one series (no start timestamps), each
/// bit-identical to [`extrapolated_rate`](super::range::extrapolated_rate) on the window alone: counter resets come from a
/// [`CounterResets`] of the whole series instead of a scan of the window, and the
/// extrapolation factor — a chain of divisions that depends only on the window's shape
/// (sample offsets from the boundaries, spacing, count and range) — is reused while the
/// shape repeats, as it does for regular scrapes on a step grid, unless the counter's
/// zero point limits it.
pub struct IndexedRate<'a> {
    series: &'a [Point],
    resets: &'a CounterResets,
    is_counter: bool,
    is_rate: bool,
    /// The last shape and its factor without a zero-point limit.
    memo: Option<(WindowShape, f64)>,
}

impl<'a> IndexedRate<'a> {
    /// `resets` must have been built from `series`.
    pub fn new(
        series: &'a [Point],
        resets: &'a CounterResets,
        is_counter: bool,
        is_rate: bool,
    ) -> IndexedRate<'a> {
        IndexedRate {
            series,
            resets,
            is_counter,
            is_rate,
            memo: None,
        }
    }

    /// The value over the window `series[lo..hi]` between `start_ms` and `end_ms`.
    pub fn window(&mut self, lo: usize, hi: usize, start_ms: i64, end_ms: i64) -> Option<f64> {
        let points = self.series.get(lo..hi)?;
        let (Some(&(first_t, first_v)), Some(&(last_t, last_v))) = (points.first(), points.last())
        else {
            return None;
        };
        let num_minus_one = points.len() - 1;
        if num_minus_one == 0 {
            return None;
        }
        let mut result = last_v - first_v;
        if self.is_counter && !self.resets.is_empty() {
            result = self.resets.add_within(lo, hi, result);
        }
        let shape = WindowShape {
            to_start_ms: first_t - start_ms,
            to_end_ms: end_ms - last_t,
            sampled_ms: last_t - first_t,
            num_minus_one,
            range_ms: end_ms - start_ms,
        };
        let range_seconds = super::duration_seconds(shape.range_ms);
        if self.is_counter && !zero_point_beyond(num_minus_one, first_v, result) {
            return Some(
                result * shape.factor(Some((first_v, result)), self.is_rate, range_seconds),
            );
        }
        let factor = match self.memo {
            Some((memo_shape, factor)) if memo_shape == shape => factor,
            _ => {
                let factor = shape.factor(None, self.is_rate, range_seconds);
                self.memo = Some((shape, factor));
                factor
            }
        };
        Some(result * factor)
    }
}
