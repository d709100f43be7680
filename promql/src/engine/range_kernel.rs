//! Per-series evaluation of range-vector functions: one series' windows slide across the
//! steps (no per-step copies) and each window goes to its kernel; plain `rate`/`increase`
//! find counter resets once per series and reuse extrapolation factors
//! ([`kr::IndexedRate`]). A [`SeriesKernel`] holds only plain, shareable data (no
//! evaluator state), so worker threads can run it; results are bit-identical whichever
//! thread computes them. This module never reads storage and never adds annotations.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::error::Result;
use super::eval::interrupt_status;
use super::selector::{RangeSeries, WindowGrid};
use crate::functions::FunctionId;
use crate::kernels as kn;
use crate::kernels::over_time as ko;
use crate::kernels::range as kr;
use crate::parser::ast::Expr;

/// Window samples passed over between two timeout/cancellation checks inside one series
/// (each step counts at least one): frequent enough that a huge window stops at the
/// deadline, rare enough that reading the clock costs nothing next to the kernels.
const INTERRUPT_CHECK_POINTS: usize = 4096;

/// One function result of a series: (step index, value).
pub(crate) type StepValue = (usize, f64);

/// A range-function call with its arguments checked and its scalar parameters evaluated.
pub(crate) struct RangeCall<'c> {
    pub id: FunctionId,
    /// The range-vector argument.
    pub arg: &'c Expr,
    /// Scalar parameters, one value per step each.
    pub params: Vec<Vec<f64>>,
    /// `anchored` or `smoothed` selector.
    pub extended: bool,
    pub smoothed: bool,
    /// Whether the function sees start timestamps (as in Prometheus, only these do).
    pub uses_st: bool,
}

/// Buffers reused from one series to the next.
#[derive(Default)]
pub(crate) struct Scratch {
    resets: kr::CounterResets,
}

/// What evaluating one series left besides its values.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SeriesOutcome {
    /// The largest window of the series (for the sample limit).
    pub peak_window: usize,
    /// Two consecutive start timestamps overlapped (Prometheus warns once per series).
    pub start_time_overlap: bool,
}

/// Evaluates one range-function call series by series; shareable between threads.
pub(crate) struct SeriesKernel<'x> {
    pub rc: &'x RangeCall<'x>,
    /// The evaluation grid: first step and interval (ms).
    pub start: i64,
    pub interval: i64,
    pub deadline: Option<Instant>,
    pub cancel: Option<&'x AtomicBool>,
}

impl SeriesKernel<'_> {
    /// Fails when the query timed out or was cancelled.
    pub fn check_interrupt(&self) -> Result<()> {
        interrupt_status(self.cancel, self.deadline)
    }

    fn step_ts(&self, step: usize) -> i64 {
        self.start + step as i64 * self.interval
    }

    /// The function's value at every step of one series, appended to `values`.
    pub fn values(
        &self,
        grid: &WindowGrid<'_>,
        s: &RangeSeries<'_>,
        present: &mut [bool],
        scratch: &mut Scratch,
        values: &mut Vec<StepValue>,
    ) -> Result<SeriesOutcome> {
        use FunctionId as F;
        let rc = self.rc;
        let id = rc.id;
        let pts = s.points;
        let sts = s.start_timestamps;
        let range_ms = grid.range;
        // rate/increase without start timestamps: resets found once for the whole series.
        let indexed_rate = !rc.extended && sts.is_empty() && matches!(id, F::Rate | F::Increase);
        if indexed_rate {
            scratch.resets.rebuild(pts);
            return self.indexed_rate_values(id == F::Rate, grid, pts, present, scratch, values);
        }
        let mut outcome = SeriesOutcome {
            peak_window: 0,
            start_time_overlap: false,
        };
        self.walk_windows(grid, pts, |step, lo, hi| {
            let w = &pts[lo..hi];
            let wsts = sts.get(lo..hi).unwrap_or(&[]);
            outcome.peak_window = outcome.peak_window.max(w.len());
            present[step] = true;
            let r = grid.refs[step];
            let p = |k: usize| {
                rc.params
                    .get(k)
                    .and_then(|v| v.get(step))
                    .copied()
                    .unwrap_or(f64::NAN)
            };
            let win = kn::Window::new(w, r - range_ms, r);
            let v = if rc.extended {
                let smoothed = rc.smoothed;
                match id {
                    F::Rate => kr::extended_rate(&win, smoothed, true, true),
                    F::Increase => kr::extended_rate(&win, smoothed, true, false),
                    F::Delta => kr::extended_rate(&win, smoothed, false, false),
                    F::Changes | F::Resets => {
                        kr::anchored_first_index(w, r - range_ms).and_then(|i| {
                            let sub = kn::Window::new(&w[i..], r - range_ms, r)
                                .with_start_timestamps(wsts.get(i..).unwrap_or(&[]));
                            if id == F::Changes {
                                kr::changes(&sub)
                            } else {
                                kr::resets(&sub)
                            }
                        })
                    }
                    _ => None,
                }
            } else {
                let win = win.with_start_timestamps(wsts);
                match id {
                    F::Rate | F::Increase => {
                        let out = kr::extrapolated_rate_st(&win, true, id == F::Rate);
                        outcome.start_time_overlap |= out.start_time_overlap;
                        out.value
                    }
                    F::Delta => kr::extrapolated_rate(&win, false, false),
                    F::Irate => kr::irate(&win),
                    F::Idelta => kr::idelta(&win),
                    F::Deriv => kr::deriv(&win),
                    F::PredictLinear => kr::predict_linear(&win, p(0), self.step_ts(step)),
                    F::AvgOverTime => ko::avg_over_time(&win),
                    F::SumOverTime => ko::sum_over_time(&win),
                    F::CountOverTime => ko::count_over_time(&win),
                    F::MinOverTime => ko::min_over_time(&win),
                    F::MaxOverTime => ko::max_over_time(&win),
                    F::StddevOverTime => ko::stddev_over_time(&win),
                    F::StdvarOverTime => ko::stdvar_over_time(&win),
                    F::LastOverTime => ko::last_over_time(&win),
                    F::FirstOverTime => ko::first_over_time(&win),
                    F::PresentOverTime => ko::present_over_time(&win),
                    F::QuantileOverTime => ko::quantile_over_time(&win, p(0)),
                    F::MadOverTime => ko::mad_over_time(&win),
                    F::Changes => kr::changes(&win),
                    F::Resets => kr::resets(&win),
                    F::TsOfFirstOverTime => ko::ts_of_first_over_time(&win),
                    F::TsOfLastOverTime => ko::ts_of_last_over_time(&win),
                    F::TsOfMaxOverTime => ko::ts_of_max_over_time(&win),
                    F::TsOfMinOverTime => ko::ts_of_min_over_time(&win),
                    F::DoubleExponentialSmoothing => {
                        ko::double_exponential_smoothing(&win, p(0), p(1))
                            .ok()
                            .flatten()
                    }
                    _ => None,
                }
            };
            if let Some(v) = v {
                values.push((step, v));
            }
        })?;
        Ok(outcome)
    }

    /// [`SeriesKernel::values`] of plain `rate` (`is_rate`) or `increase`
    /// without start timestamps: the counter resets in `scratch.resets` (built from
    /// `pts`) replace the per-window scan, and nothing else is done per step.
    fn indexed_rate_values(
        &self,
        is_rate: bool,
        grid: &WindowGrid<'_>,
        pts: &[kn::Point],
        present: &mut [bool],
        scratch: &mut Scratch,
        values: &mut Vec<StepValue>,
    ) -> Result<SeriesOutcome> {
        let resets = &scratch.resets;
        let mut rate = kr::IndexedRate::new(pts, resets, true, is_rate);
        let mut peak_window = 0usize;
        self.walk_windows(grid, pts, |step, lo, hi| {
            peak_window = peak_window.max(hi - lo);
            present[step] = true;
            let r = grid.refs[step];
            if let Some(v) = rate.window(lo, hi, r - grid.range, r) {
                values.push((step, v));
            }
        })?;
        Ok(SeriesOutcome {
            peak_window,
            start_time_overlap: false,
        })
    }

    /// Calls `f(step, lo, hi)` for every non-empty window (`lo < hi`) of `pts` on `grid`.
    /// Windows can be huge (e.g. `[30d:1s]`), so the deadline and cancellation are checked
    /// every `INTERRUPT_CHECK_POINTS` window samples within a series too, and the walk stops
    /// at the first interruption, so no query outlives its timeout.
    fn walk_windows(
        &self,
        grid: &WindowGrid<'_>,
        pts: &[kn::Point],
        mut f: impl FnMut(usize, usize, usize),
    ) -> Result<()> {
        let mut work = 0usize;
        let mut interrupted = None;
        grid.for_each_window(
            pts.len(),
            |i| pts[i].0,
            |step, lo, hi| {
                if interrupted.is_some() {
                    return;
                }
                work += hi - lo + 1;
                if work >= INTERRUPT_CHECK_POINTS {
                    work = 0;
                    if let Err(e) = self.check_interrupt() {
                        interrupted = Some(e);
                        return;
                    }
                }
                if lo < hi {
                    f(step, lo, hi);
                }
            },
        );
        interrupted.map_or(Ok(()), Err)
    }
}
