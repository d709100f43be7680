//! Range-vector functions (`rate`, `increase`, `delta`, `irate`, `idelta`, `deriv`,
//! `predict_linear`, `resets`, `changes`, `*_over_time`, `ts_of_*_over_time`,
//! `double_exponential_smoothing`, `absent_over_time`): argument checks, then one series
//! at a time — windows sliding across the steps over that series' samples (no per-step
//! copies), counter resets of `rate`/`increase` found once per series — with the results
//! handed to a consumer. The consumer either collects output series
//! ([`Evaluator::eval_range_function`]) or folds them straight into an aggregation
//! (`sum by (job) (rate(x[5m]))`, see `aggregate`), so the input's samples are never all
//! held at once. Numerics live in `crate::kernels`; this module never reads storage except
//! through `selector`, and must not change results by a single bit versus evaluating each
//! window on its own.

use vigil_storage::labels::METRIC_NAME;

use super::annotations::Annotation;
use super::error::{exec_err, Result};
use super::eval::Evaluator;
use super::selector::{RangeSeries, WindowGrid};
use super::value::{ESeries, EVal, Metric, Point};
use crate::functions::FunctionId;
use crate::kernels as kn;
use crate::kernels::over_time as ko;
use crate::kernels::range as kr;
use crate::parser::ast::{Call, Expr};

/// Window samples passed over between two timeout/cancellation checks inside one series
/// (each step counts at least one): frequent enough that a huge window stops at the
/// deadline, rare enough that reading the clock costs nothing next to the kernels.
const INTERRUPT_CHECK_POINTS: usize = 4096;

/// Metric name suffixes of counters; `rate`/`increase` of anything else gets an info.
const COUNTER_SUFFIXES: [&str; 4] = ["_total", "_sum", "_count", "_bucket"];

/// One function result of a series: (step index, value).
pub(crate) type StepValue = (usize, f64);

/// Whether `id` is a range-vector function evaluated window by window here (every
/// range function except `absent_over_time`, whose output does not come per series).
pub(crate) fn is_windowed_range_function(id: FunctionId) -> bool {
    use FunctionId as F;
    matches!(
        id,
        F::Rate
            | F::Increase
            | F::Delta
            | F::Irate
            | F::Idelta
            | F::Deriv
            | F::PredictLinear
            | F::AvgOverTime
            | F::SumOverTime
            | F::CountOverTime
            | F::MinOverTime
            | F::MaxOverTime
            | F::StddevOverTime
            | F::StdvarOverTime
            | F::LastOverTime
            | F::FirstOverTime
            | F::PresentOverTime
            | F::QuantileOverTime
            | F::MadOverTime
            | F::Changes
            | F::Resets
            | F::TsOfFirstOverTime
            | F::TsOfLastOverTime
            | F::TsOfMaxOverTime
            | F::TsOfMinOverTime
            | F::DoubleExponentialSmoothing
    )
}

/// A range-function call with its arguments checked and its scalar parameters evaluated.
struct RangeCall<'c> {
    id: FunctionId,
    /// The range-vector argument.
    arg: &'c Expr,
    /// Scalar parameters, one value per step each.
    params: Vec<Vec<f64>>,
    /// `anchored` or `smoothed` selector.
    extended: bool,
    smoothed: bool,
    /// Whether the function sees start timestamps (as in Prometheus, only these do).
    uses_st: bool,
}

/// Buffers reused from one series to the next.
#[derive(Default)]
struct Scratch {
    resets: kr::CounterResets,
    values: Vec<StepValue>,
}

/// What evaluating one series left besides its values.
struct SeriesOutcome {
    /// The largest window of the series (for the sample limit).
    peak_window: usize,
    /// Two consecutive start timestamps overlapped (Prometheus warns once per series).
    start_time_overlap: bool,
}

impl Evaluator<'_, '_> {
    /// Checks the arguments of range function `c` and evaluates its scalar parameters.
    fn prepare_range_call<'c>(&self, c: &'c Call) -> Result<RangeCall<'c>> {
        use FunctionId as F;
        let id = c.func.id;
        let (matrix_idx, scalar_args): (usize, &[usize]) = match id {
            F::QuantileOverTime => (1, &[0]),
            F::PredictLinear => (0, &[1]),
            F::DoubleExponentialSmoothing => (0, &[1, 2]),
            _ => (0, &[]),
        };
        let mut params = Vec::new();
        for &i in scalar_args {
            params.push(self.scalar_arg(c, i)?);
        }
        let Some(arg) = c.args.get(matrix_idx) else {
            return exec_err(format!("missing range argument of {}", c.func.name));
        };
        let (anchored, smoothed) = match arg.unwrap_parens() {
            Expr::MatrixSelector(ms) => (ms.vector_selector.anchored, ms.vector_selector.smoothed),
            _ => (false, false),
        };
        let name = c.func.name;
        if smoothed && !matches!(id, F::Delta | F::Increase | F::Rate) {
            return exec_err(format!(
                "smoothed modifier can only be used with: delta, increase, rate - not with {name}"
            ));
        }
        if anchored
            && !matches!(
                id,
                F::Changes | F::Delta | F::Increase | F::Rate | F::Resets
            )
        {
            return exec_err(format!("anchored modifier can only be used with: changes, delta, increase, rate, resets - not with {name}"));
        }
        if id == F::DoubleExponentialSmoothing {
            for (i, v) in params[0].iter().enumerate() {
                if *v <= 0.0 || *v >= 1.0 {
                    return exec_err(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {v:.6}"
                    ));
                }
                let tf = params[1].get(i).copied().unwrap_or(f64::NAN);
                if tf <= 0.0 || tf >= 1.0 {
                    return exec_err(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                    ));
                }
            }
        }
        Ok(RangeCall {
            id,
            arg,
            params,
            extended: anchored || smoothed,
            smoothed,
            uses_st: matches!(id, F::Rate | F::Increase | F::Irate | F::Resets),
        })
    }

    /// Warns about `quantile_over_time` quantiles outside [0, 1]. Called once the range
    /// argument has been evaluated (before any per-series annotation), which keeps the
    /// annotations in Prometheus' order.
    fn warn_invalid_quantiles(&self, rc: &RangeCall<'_>, c: &Call) {
        if rc.id != FunctionId::QuantileOverTime {
            return;
        }
        for q in rc.params.first().map(Vec::as_slice).unwrap_or(&[]) {
            if q.is_nan() || *q < 0.0 || *q > 1.0 {
                self.annotate().add(Annotation::warning(
                    format!(
                        "quantile value should be between 0 and 1, got {}",
                        crate::kernels::format::format_go_float(*q)
                    ),
                    c.args[0].pos(),
                ));
            }
        }
    }

    /// Evaluates range function `c` and hands each input series' results to
    /// `f(metric, drop_name, values)`, in input order, one series at a time; series
    /// without any result are skipped. Returns, per step, whether any series had a sample
    /// in its window (for `absent_over_time`). Enforces the sample limit on the sum of
    /// each series' largest window, and adds the per-series annotations.
    pub(crate) fn stream_range_function(
        &self,
        c: &Call,
        mut f: impl FnMut(&Metric, bool, &[StepValue]) -> Result<()>,
    ) -> Result<Vec<bool>> {
        use FunctionId as F;
        let rc = self.prepare_range_call(c)?;
        let mut present = vec![false; self.steps()];
        let mut window_samples = 0usize;
        let mut scratch = Scratch::default();
        let drop_name = !matches!(rc.id, F::LastOverTime | F::FirstOverTime);
        let mut warned = false;
        self.for_each_range_series(rc.arg, rc.uses_st, |grid, s| {
            if !warned {
                warned = true;
                self.warn_invalid_quantiles(&rc, c);
            }
            self.check_interrupt()?;
            let outcome = self.range_series_values(&rc, grid, &s, &mut present, &mut scratch)?;
            window_samples += outcome.peak_window;
            if outcome.start_time_overlap {
                self.annotate().add(Annotation::warning(
                    format!(
                        "sample has start time that overlaps with previous sample timestamp for metric {:?}",
                        s.metric.get(METRIC_NAME).unwrap_or("")
                    ),
                    rc.arg.pos(),
                ));
            }
            if scratch.values.is_empty() {
                return Ok(());
            }
            if matches!(rc.id, F::Rate | F::Increase) {
                if let Some(name) = s.metric.get(METRIC_NAME) {
                    if !COUNTER_SUFFIXES.iter().any(|x| name.ends_with(x)) {
                        self.annotate().add(Annotation::info(
                            format!("metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {name:?}"),
                            rc.arg.pos(),
                        ));
                    }
                }
            }
            f(&s.metric, drop_name || s.drop_name, &scratch.values)
        })?;
        if !warned {
            self.warn_invalid_quantiles(&rc, c);
        }
        self.check_samples(window_samples)?;
        Ok(present)
    }

    /// Evaluates a range-vector function call into one output series per input series.
    pub(super) fn eval_range_function(&self, c: &Call) -> Result<EVal> {
        let mut out: Vec<ESeries> = Vec::new();
        let present = self.stream_range_function(c, |metric, drop_name, values| {
            out.push(ESeries {
                metric: metric.clone(),
                points: values
                    .iter()
                    .map(|&(step, v)| Point {
                        t: self.step_ts(step),
                        v,
                    })
                    .collect(),
                drop_name,
            });
            Ok(())
        })?;
        if c.func.id == FunctionId::AbsentOverTime {
            return Ok(EVal::Vector(self.absent_series(c, &present)));
        }
        Ok(EVal::Vector(out))
    }

    /// The function's value at every step of one series, into `scratch.values`.
    fn range_series_values(
        &self,
        rc: &RangeCall<'_>,
        grid: &WindowGrid<'_>,
        s: &RangeSeries<'_>,
        present: &mut [bool],
        scratch: &mut Scratch,
    ) -> Result<SeriesOutcome> {
        use FunctionId as F;
        let id = rc.id;
        let pts = s.points;
        let sts = s.start_timestamps;
        let range_ms = grid.range;
        // rate/increase without start timestamps: resets found once for the whole series.
        let indexed_rate = !rc.extended && sts.is_empty() && matches!(id, F::Rate | F::Increase);
        if indexed_rate {
            scratch.resets.rebuild(pts);
            return self.indexed_rate_values(id == F::Rate, grid, pts, present, scratch);
        }
        let values = &mut scratch.values;
        values.clear();
        let mut outcome = SeriesOutcome {
            peak_window: 0,
            start_time_overlap: false,
        };
        let mut work = 0usize;
        let mut interrupted = None;
        grid.for_each_window(
            pts.len(),
            |i| pts[i].0,
            |step, lo, hi| {
                if interrupted.is_some() {
                    return;
                }
                // Windows can be huge (e.g. `[30d:1s]`): check the deadline and
                // cancellation within a series too, so no query outlives its timeout.
                work += hi - lo + 1;
                if work >= INTERRUPT_CHECK_POINTS {
                    work = 0;
                    if let Err(e) = self.check_interrupt() {
                        interrupted = Some(e);
                        return;
                    }
                }
                if lo >= hi {
                    return;
                }
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
                        F::Changes | F::Resets => kr::anchored_first_index(w, r - range_ms)
                            .and_then(|i| {
                                let sub = kn::Window::new(&w[i..], r - range_ms, r)
                                    .with_start_timestamps(wsts.get(i..).unwrap_or(&[]));
                                if id == F::Changes {
                                    kr::changes(&sub)
                                } else {
                                    kr::resets(&sub)
                                }
                            }),
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
            },
        );
        match interrupted {
            Some(e) => Err(e),
            None => Ok(outcome),
        }
    }
    /// [`Evaluator::range_series_values`] of plain `rate` (`is_rate`) or `increase`
    /// without start timestamps: the counter resets in `scratch.resets` (built from
    /// `pts`) replace the per-window scan, and nothing else is done per step.
    fn indexed_rate_values(
        &self,
        is_rate: bool,
        grid: &WindowGrid<'_>,
        pts: &[kn::Point],
        present: &mut [bool],
        scratch: &mut Scratch,
    ) -> Result<SeriesOutcome> {
        let Scratch { resets, values } = scratch;
        values.clear();
        let mut rate = kr::IndexedRate::new(pts, resets, true, is_rate);
        let mut peak_window = 0usize;
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
                if lo >= hi {
                    return;
                }
                peak_window = peak_window.max(hi - lo);
                present[step] = true;
                let r = grid.refs[step];
                if let Some(v) = rate.window(lo, hi, r - grid.range, r) {
                    values.push((step, v));
                }
            },
        );
        match interrupted {
            Some(e) => Err(e),
            None => Ok(SeriesOutcome {
                peak_window,
                start_time_overlap: false,
            }),
        }
    }
}
