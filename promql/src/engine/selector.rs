//! Selectors: with `range_stream` (range-function arguments decoded one series at a
//! time), the only place the engine reads storage. Each selector evaluation opens one
//! querier covering every step it needs, selects once, decodes each series once and slides
//! over the steps: instant selectors take the newest sample in the left-open lookback window
//! `(ref - lookback, ref]`, range selectors and subqueries yield left-open windows
//! `(ref - range, ref]`. Stale markers end a series and are never returned. `@` pins the
//! reference time, `offset` shifts it. When the query uses start timestamps, the
//! selectors feeding `rate`/`increase`/`irate`/`resets` and `start_timestamp()` also fetch
//! them (see `start_ts`) and keep them parallel to the points; subqueries never carry
//! them. This module never evaluates operators.

use std::sync::Arc;

use vigil_storage::chunkenc::is_stale_nan;
use vigil_storage::{Labels, Sample};

use super::error::Result;
use super::eval::Evaluator;
use super::start_ts::{align, UNKNOWN_START_TIMESTAMP};
use super::value::{total_points, ESeries, Metric, Point};
use crate::kernels::Point as KernelPoint;
use crate::parser::ast::{Expr, SubqueryExpr, VectorSelector};

/// Milliseconds per second, for `timestamp()`.
const MS_PER_SECOND: f64 = 1000.0;

/// What an instant vector selector yields per step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SelectorOutput {
    /// The selected sample's value.
    Value,
    /// The selected sample's timestamp in seconds (`timestamp()`).
    Timestamp,
    /// The selected sample's start timestamp in seconds, 0 when unknown
    /// (`start_timestamp()`); series are dropped when start timestamps are not in use.
    StartTimestamp,
}

/// A selected series: its evaluator series, decoded samples and, when requested and
/// known, the start timestamps parallel to the samples (else empty).
type Loaded = (ESeries, Vec<Sample>, Vec<i64>);

/// Range-vector input of a function: series with their points and, per step, the window end
/// (`ref`); each step's window is `(ref - range - ext_back, ref + ext_fwd]`. The extensions
/// are zero except for `anchored` (back by the lookback delta) and `smoothed` (both ways)
/// selectors, whose kernels need the samples around the range boundaries.
pub(crate) struct RangeInput {
    pub series: Vec<ESeries>,
    pub refs: Vec<i64>,
    pub range: i64,
    pub ext_back: i64,
    pub ext_fwd: i64,
}

impl RangeInput {
    /// Calls `f(step, window)` for every step of series `si`, windows sliding forward.
    pub fn for_each_window(&self, si: usize, mut f: impl FnMut(usize, &[Point])) {
        let pts = &self.series[si].points;
        self.for_each_window_range(si, |step, lo, hi| f(step, &pts[lo..hi]));
    }

    /// Calls `f(step, lo, hi)` for every step of series `si`, where `points[lo..hi]` is
    /// the step's window, windows sliding forward.
    pub fn for_each_window_range(&self, si: usize, f: impl FnMut(usize, usize, usize)) {
        let pts = &self.series[si].points;
        self.grid().for_each_window(pts.len(), |i| pts[i].t, f);
    }

    /// The window grid of this input.
    pub fn grid(&self) -> WindowGrid<'_> {
        WindowGrid {
            refs: &self.refs,
            range: self.range,
            ext_back: self.ext_back,
            ext_fwd: self.ext_fwd,
        }
    }
}

/// The windows of a range-vector argument: per step the window end (`ref`), and each
/// step's window is `(ref - range - ext_back, ref + ext_fwd]` (see [`RangeInput`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct WindowGrid<'r> {
    pub refs: &'r [i64],
    pub range: i64,
    pub ext_back: i64,
    pub ext_fwd: i64,
}

impl WindowGrid<'_> {
    /// Calls `f(step, lo, hi)` for every step over a series of `len` samples whose
    /// timestamps `ts(i)` ascend: samples `lo..hi` form the step's window. The bounds slide
    /// forward (each sample is passed over once per direction) and restart only when the
    /// reference time moves backwards.
    pub fn for_each_window(
        &self,
        len: usize,
        ts: impl Fn(usize) -> i64,
        mut f: impl FnMut(usize, usize, usize),
    ) {
        let (mut lo, mut hi) = (0usize, 0usize);
        let mut prev_ref = i64::MIN;
        for (step, &r) in self.refs.iter().enumerate() {
            if r < prev_ref {
                lo = 0;
                hi = 0;
            }
            prev_ref = r;
            let from = r.saturating_sub(self.range).saturating_sub(self.ext_back);
            let to = r.saturating_add(self.ext_fwd);
            while hi < len && ts(hi) <= to {
                hi += 1;
            }
            while lo < hi && ts(lo) <= from {
                lo += 1;
            }
            if lo > hi {
                lo = hi;
            }
            f(step, lo, hi);
        }
    }
}

/// The labels of a range-vector argument's series: owned when just read from storage
/// (shared only if an output series needs them), or already shared (subqueries).
pub(crate) enum SeriesMetric {
    Owned(Labels),
    Shared(Metric),
}

impl SeriesMetric {
    pub fn labels(&self) -> &Labels {
        match self {
            SeriesMetric::Owned(l) => l,
            SeriesMetric::Shared(m) => m,
        }
    }

    pub fn into_shared(self) -> Metric {
        match self {
            SeriesMetric::Owned(l) => Arc::new(l),
            SeriesMetric::Shared(m) => m,
        }
    }
}

/// One series of a range-vector argument, handed to a consumer one at a time: its labels,
/// delayed name removal, float samples without stale markers (as kernel points) and, when
/// known, start timestamps parallel to them (else empty).
pub(crate) struct RangeSeries<'b> {
    pub metric: SeriesMetric,
    pub drop_name: bool,
    pub points: &'b [KernelPoint],
    pub start_timestamps: &'b [i64],
}

impl Evaluator<'_, '_> {
    /// How far an `anchored` (back) or `smoothed` (both ways) range selection reaches
    /// beyond its window: one lookback delta; `(back, forward)` in ms.
    pub(super) fn range_extension(&self, vs: &VectorSelector) -> (i64, i64) {
        let lookback = self.shared.opts.lookback_delta_ms;
        match (vs.anchored, vs.smoothed) {
            (true, _) => (lookback, 0),
            (_, true) => (lookback, lookback),
            _ => (0, 0),
        }
    }

    /// Reference times of a selector for every step.
    pub(super) fn selector_refs(&self, timestamp: Option<i64>, offset: i64) -> Vec<i64> {
        (0..self.steps())
            .map(|i| timestamp.unwrap_or_else(|| self.step_ts(i)) - offset)
            .collect()
    }

    /// Selects the series of `vs` with samples in `[mint, maxt]`, decoded, with their start
    /// timestamps when `with_start_timestamps` and the query uses them.
    fn load(
        &self,
        vs: &VectorSelector,
        mint: i64,
        maxt: i64,
        with_start_timestamps: bool,
    ) -> Result<Vec<Loaded>> {
        let querier = self.shared.queryable.querier(mint, maxt)?;
        let series = querier.select(&vs.matchers)?;
        let st_source = self
            .shared
            .start_timestamps
            .filter(|_| with_start_timestamps);
        let mut out = Vec::with_capacity(series.len());
        let mut total = 0usize;
        for s in series {
            self.check_interrupt()?;
            let samples = s.samples()?;
            total += samples.len();
            let sts = match st_source {
                Some(src) => align(&samples, &src.start_timestamps(&s.labels, mint, maxt)?),
                None => Vec::new(),
            };
            out.push((
                ESeries {
                    metric: Arc::new(s.labels),
                    points: Vec::new(),
                    drop_name: false,
                },
                samples,
                sts,
            ));
        }
        *self.shared.samples_read.borrow_mut() += total;
        Ok(out)
    }

    /// Whether start timestamps are in use for this query (`start_timestamp()` yields
    /// nothing otherwise, as in Prometheus).
    pub fn uses_start_timestamps(&self) -> bool {
        self.shared.start_timestamps.is_some()
    }

    /// Evaluates an instant vector selector at every step, yielding `output` of the
    /// selected sample.
    pub fn eval_vector_selector(
        &self,
        vs: &VectorSelector,
        output: SelectorOutput,
    ) -> Result<Vec<ESeries>> {
        if output == SelectorOutput::StartTimestamp && !self.uses_start_timestamps() {
            return Ok(Vec::new());
        }
        let refs = self.selector_refs(vs.timestamp, vs.original_offset);
        let (Some(&first), Some(&last)) = (refs.first(), refs.last()) else {
            return Ok(Vec::new());
        };
        let lookback = self.shared.opts.lookback_delta_ms;
        if vs.smoothed {
            return self.eval_smoothed_selector(vs, &refs, output);
        }
        let with_st = output == SelectorOutput::StartTimestamp;
        let loaded = self.load(vs, first - lookback + 1, last, with_st)?;
        let mut out = Vec::with_capacity(loaded.len());
        for (mut es, samples, sts) in loaded {
            let mut c = 0usize;
            for (step, &r) in refs.iter().enumerate() {
                while c < samples.len() && samples[c].t <= r {
                    c += 1;
                }
                if c == 0 {
                    continue;
                }
                let s = samples[c - 1];
                if s.t <= r - lookback || is_stale_nan(s.v) {
                    continue;
                }
                let v = match output {
                    SelectorOutput::Value => s.v,
                    SelectorOutput::Timestamp => s.t as f64 / MS_PER_SECOND,
                    SelectorOutput::StartTimestamp => {
                        sts.get(c - 1).copied().unwrap_or(UNKNOWN_START_TIMESTAMP) as f64
                            / MS_PER_SECOND
                    }
                };
                es.points.push(Point {
                    t: self.step_ts(step),
                    v,
                });
            }
            if !es.points.is_empty() {
                out.push(es);
            }
        }
        self.check_samples(total_points(&out))?;
        Ok(out)
    }

    /// The range-vector input for a matrix selector or subquery argument, every series'
    /// points held at once (for a range vector as an instant query's result; functions
    /// stream their input with [`Evaluator::map_range_series`] instead).
    pub fn eval_range_input(&self, e: &Expr) -> Result<RangeInput> {
        match e {
            Expr::Paren(p) => self.eval_range_input(&p.expr),
            Expr::StepInvariant(s) => self.eval_range_input(&s.expr),
            Expr::MatrixSelector(ms) => {
                let vs = &ms.vector_selector;
                let refs = self.selector_refs(vs.timestamp, vs.original_offset);
                let (ext_back, ext_fwd) = self.range_extension(vs);
                let (Some(&first), Some(&last)) = (refs.first(), refs.last()) else {
                    return Ok(RangeInput {
                        series: Vec::new(),
                        refs,
                        range: ms.range,
                        ext_back,
                        ext_fwd,
                    });
                };
                let loaded =
                    self.load(vs, first - ms.range - ext_back + 1, last + ext_fwd, false)?;
                let mut series = Vec::with_capacity(loaded.len());
                for (mut es, samples, _) in loaded {
                    es.points.extend(
                        samples
                            .iter()
                            .filter(|s| !is_stale_nan(s.v))
                            .map(|s| Point { t: s.t, v: s.v }),
                    );
                    if !es.points.is_empty() {
                        series.push(es);
                    }
                }
                Ok(RangeInput {
                    series,
                    refs,
                    range: ms.range,
                    ext_back,
                    ext_fwd,
                })
            }
            Expr::Subquery(sq) => self.eval_subquery(sq),
            other => super::error::exec_err(format!("expected range vector, got {other}")),
        }
    }

    /// Evaluates a subquery's inner expression on its own grid.
    pub(super) fn eval_subquery(&self, sq: &SubqueryExpr) -> Result<RangeInput> {
        let (start, end, step) = self.subquery_grid(sq);
        let inner = self.with_grid(start, end, step);
        let series = inner.eval_vector(&sq.expr)?;
        let refs = self.selector_refs(sq.timestamp, sq.original_offset);
        Ok(RangeInput {
            series,
            refs,
            range: sq.range,
            ext_back: 0,
            ext_fwd: 0,
        })
    }

    /// `selector smoothed`: at each step, the value linearly interpolated between the
    /// samples either side of the reference time within one lookback delta each way; an
    /// exact hit is taken as is, past the last sample its value is carried forward, and
    /// before the first sample nothing is produced. Stale markers are dropped first.
    fn eval_smoothed_selector(
        &self,
        vs: &VectorSelector,
        refs: &[i64],
        output: SelectorOutput,
    ) -> Result<Vec<ESeries>> {
        let (Some(&first), Some(&last)) = (refs.first(), refs.last()) else {
            return Ok(Vec::new());
        };
        let lookback = self.shared.opts.lookback_delta_ms;
        let loaded = self.load(vs, first - lookback + 1, last + lookback, false)?;
        let mut out = Vec::with_capacity(loaded.len());
        for (mut es, samples, _) in loaded {
            let pts: Vec<Sample> = samples.into_iter().filter(|s| !is_stale_nan(s.v)).collect();
            for (step, &r) in refs.iter().enumerate() {
                let lo = pts.partition_point(|s| s.t <= r - lookback);
                let hi = pts.partition_point(|s| s.t <= r + lookback);
                let w = &pts[lo..hi];
                let i = w.partition_point(|s| s.t < r);
                let v = match (w.get(i), i.checked_sub(1).and_then(|j| w.get(j))) {
                    (Some(next), _) if next.t == r => next.v,
                    (Some(next), Some(prev)) => {
                        prev.v + (next.v - prev.v) * (r - prev.t) as f64 / (next.t - prev.t) as f64
                    }
                    (None, Some(prev)) => prev.v,
                    _ => continue,
                };
                let v = match output {
                    SelectorOutput::Value => v,
                    SelectorOutput::Timestamp => self.step_ts(step) as f64 / MS_PER_SECOND,
                    // An interpolated point has no start timestamp.
                    SelectorOutput::StartTimestamp => continue,
                };
                es.points.push(Point {
                    t: self.step_ts(step),
                    v,
                });
            }
            if !es.points.is_empty() {
                out.push(es);
            }
        }
        self.check_samples(total_points(&out))?;
        Ok(out)
    }
}
