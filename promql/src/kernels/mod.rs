//! Function kernels: the numeric core of every PromQL function and aggregation, as pure
//! functions over primitive inputs (timestamps in ms, `f64` values, bucket lists, label
//! sets). The evaluator (`crate::engine`) selects samples, removes stale markers, walks
//! series and steps, and attaches annotations; the kernels only compute, reproducing
//! Prometheus 3.x numerics (summation order, Kahan compensation, NaN/Inf handling) so
//! that results match to the last bit where Prometheus' own tests require it.
//! This module must never depend on engine types, storage queries or wall-clock time.
//!
//! # Map
//!
//! | file | functions |
//! |---|---|
//! | [`range`] | `rate`, `increase`, `delta` (incl. anchored/smoothed and start timestamps), `irate`, `idelta`, `resets`, `changes`, `deriv`, `predict_linear` |
//! | [`over_time`] | `*_over_time`, `ts_of_*_over_time`, `double_exponential_smoothing` |
//! | [`stats`] | Kahan summation, `quantile`, and the `sum`/`avg`/`stddev`/`stdvar`/`min`/`max` aggregation accumulators |
//! | [`math`] | `abs` … `atanh`, `round`, `clamp*`, `sgn`, `deg`, `rad`, `pi` |
//! | [`time`] | `year`, `month`, `day_of_*`, `days_in_month`, `hour`, `minute` |
//! | [`histogram`] | classic-histogram `histogram_quantile` / `histogram_fraction` over `le` buckets |
//! | [`labels`] | `label_replace`, `label_join` |
//! | [`mod@format`] | Go-compatible float formatting for messages and label values |
//!
//! # Which kernel backs which function
//!
//! * `rate`/`increase`/`delta`: [`range::extrapolated_rate`] (`is_counter`, `is_rate`) =
//!   (true, true) / (true, false) / (false, false); with start timestamps
//!   [`range::extrapolated_rate_st`] (warn once per series on `start_time_overlap`);
//!   `anchored`/`smoothed` selectors: [`range::extended_rate`] over the extended selection.
//!   Many windows of one series without start timestamps (range queries):
//!   [`range::IndexedRate`] over a [`range::CounterResets`] of the series, bit-identical.
//! * `irate`/`idelta`/`resets`/`changes`/`deriv`/`predict_linear`: same-named functions in
//!   [`range`]; for anchored `resets`/`changes` slice the points from
//!   [`range::anchored_first_index`].
//! * `*_over_time`, `ts_of_*_over_time`, `mad_over_time`, `quantile_over_time`,
//!   `double_exponential_smoothing`: same-named functions in [`over_time`].
//! * Aggregations: `sum` → [`stats::SumAcc`], `avg` → [`stats::AvgAcc`],
//!   `stddev`/`stdvar` → [`stats::VarianceAcc`], `min`/`max` → [`stats::min_step`] /
//!   [`stats::max_step`], `quantile` → [`stats::quantile`] (warn when
//!   [`stats::is_invalid_quantile`]).
//! * Element-wise functions: [`math`] and [`time`] (date functions without an argument
//!   use [`time::unix_seconds_from_eval_ts`] and [`time::civil_from_unix`]).
//! * `histogram_quantile(s)`/`histogram_fraction` on classic buckets:
//!   [`histogram::bucket_quantile`] (report `forced_monotonicity` as the info
//!   annotation) / [`histogram::bucket_fraction`].
//! * `label_replace`/`label_join`: [`labels::LabelReplace`] / [`labels::label_join`];
//!   errors are [`KernelError`]s whose text is Prometheus' message.
//!
//! # Conventions
//!
//! * A range-vector kernel receives one series at one step as a [`Window`]: the float
//!   points with timestamps in `(start_ms, end_ms]`, sorted, stale markers removed.
//!   Kernels that return `Option<f64>` return `None` exactly when Prometheus emits no
//!   sample for that series at that step.
//! * Histogram samples are out of scope: the caller drops series/steps that Prometheus
//!   handles as native histograms, or emits the mixed-type annotations itself.

pub mod format;
pub mod histogram;
pub mod labels;
pub mod math;
pub mod over_time;
pub mod range;
mod range_indexed;
pub mod stats;
pub mod time;

#[cfg(test)]
mod range_indexed_tests;

/// A float sample: (timestamp in ms, value).
pub type Point = (i64, f64);

/// Milliseconds per second, for converting ms timestamps and durations to seconds.
pub const MS_PER_SECOND: i64 = 1000;

/// A range-vector window of one series at one evaluation step.
///
/// `points` hold the samples with timestamps in `(start_ms, end_ms]` (already selected by
/// the caller, sorted by time, stale markers removed). `start_ms = t - range - offset` and
/// `end_ms = t - offset`, so `end_ms - start_ms` is the selector's range.
///
/// `start_timestamps`, when not empty, runs parallel to `points` and holds each sample's
/// start (created) timestamp, `0` meaning unknown (see `start_timestamps.test`).
#[derive(Clone, Copy, Debug)]
pub struct Window<'a> {
    pub points: &'a [Point],
    pub start_ms: i64,
    pub end_ms: i64,
    pub start_timestamps: &'a [i64],
}

impl<'a> Window<'a> {
    /// A window without start timestamps.
    pub fn new(points: &'a [Point], start_ms: i64, end_ms: i64) -> Window<'a> {
        Window {
            points,
            start_ms,
            end_ms,
            start_timestamps: &[],
        }
    }

    /// The same window with per-sample start timestamps (parallel to `points`).
    pub fn with_start_timestamps(mut self, start_timestamps: &'a [i64]) -> Window<'a> {
        self.start_timestamps = start_timestamps;
        self
    }

    /// The selector's range in ms (`end_ms - start_ms`).
    pub fn range_ms(&self) -> i64 {
        self.end_ms - self.start_ms
    }

    /// The selector's range in seconds, converted as Go's `time.Duration.Seconds()` does.
    pub fn range_seconds(&self) -> f64 {
        duration_seconds(self.range_ms())
    }
}

/// Converts a duration in ms to seconds the way Go's `time.Duration.Seconds()` does
/// (whole seconds plus the sub-second remainder), so results match bit for bit.
pub fn duration_seconds(ms: i64) -> f64 {
    const NS_PER_MS: i64 = 1_000_000;
    const NS_PER_SECOND: f64 = 1e9;
    let whole = ms / MS_PER_SECOND;
    let rem_ns = (ms % MS_PER_SECOND) * NS_PER_MS;
    if rem_ns == 0 {
        // Same value without the division (adding +0.0 changes nothing).
        return whole as f64;
    }
    whole as f64 + rem_ns as f64 / NS_PER_SECOND
}

/// Converts a timestamp in ms to float seconds, as Prometheus does (`float64(t) / 1000`).
pub fn ms_to_seconds(t_ms: i64) -> f64 {
    t_ms as f64 / MS_PER_SECOND as f64
}

/// Errors a kernel reports for invalid arguments. The texts are Prometheus' own, since
/// they reach users as execution errors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    #[error("invalid regular expression in label_replace(): {0}")]
    InvalidRegex(String),
    #[error("invalid destination label name in {func}(): {name}")]
    InvalidDestinationLabel { func: &'static str, name: String },
    #[error("invalid source label name in {func}(): {name}")]
    InvalidSourceLabel { func: &'static str, name: String },
    #[error("invalid smoothing factor. Expected: 0 < sf < 1, got: {0}")]
    InvalidSmoothingFactor(String),
    #[error("invalid trend factor. Expected: 0 < tf < 1, got: {0}")]
    InvalidTrendFactor(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_seconds_matches_go() {
        assert_eq!(duration_seconds(300_000), 300.0);
        assert_eq!(duration_seconds(1_500), 1.5);
        assert_eq!(duration_seconds(300_001), 300.001);
        assert_eq!(duration_seconds(-1_500), -1.5);
        let w = Window::new(&[], 1_000, 61_000);
        assert_eq!(w.range_ms(), 60_000);
        assert_eq!(w.range_seconds(), 60.0);
        assert_eq!(ms_to_seconds(1_234), 1.234);
    }
}
