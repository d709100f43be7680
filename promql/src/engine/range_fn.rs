//! Range-vector functions (`rate`, `increase`, `delta`, `irate`, `idelta`, `deriv`,
//! `predict_linear`, `resets`, `changes`, `*_over_time`, `ts_of_*_over_time`,
//! `double_exponential_smoothing`, `absent_over_time`): argument checks, then the
//! argument's series one at a time through `range_kernel` (possibly on worker threads,
//! see `range_stream`), with each series' results handed in selection order to a
//! consumer and the per-series annotations added. The consumer either collects output
//! series ([`Evaluator::eval_range_function`]) or folds them straight into an aggregation
//! (`sum by (job) (rate(x[5m]))`, see `aggregate`), so the input's samples are never all
//! held at once. Numerics live in `crate::kernels`; this module never reads storage, and
//! must not change results by a single bit versus evaluating each window on its own.

use vigil_storage::labels::METRIC_NAME;

use super::annotations::Annotation;
use super::error::{exec_err, Result};
use super::eval::Evaluator;
use super::range_kernel::{RangeCall, Scratch, SeriesKernel, SeriesOutcome, StepValue};
use super::selector::SeriesMetric;
use super::value::{ESeries, EVal, Point};
use crate::functions::FunctionId;
use crate::parser::ast::{Call, Expr};

/// Per-thread state of a range-function evaluation.
struct WorkerState {
    scratch: Scratch,
    /// Per step, whether a series evaluated by this thread had a sample in its window.
    present: Vec<bool>,
}

/// What one series' evaluation hands from the thread that computed it to the fold,
/// besides its values.
struct SeriesResult {
    metric: SeriesMetric,
    drop_name: bool,
    outcome: SeriesOutcome,
}

/// Metric name suffixes of counters; `rate`/`increase` of anything else gets an info.
const COUNTER_SUFFIXES: [&str; 4] = ["_total", "_sum", "_count", "_bucket"];

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
    /// without any result are skipped. The per-series work may run on worker threads
    /// (see `range_stream`); `f` and the annotations run here, in order. Returns, per
    /// step, whether any series had a sample in its window (for `absent_over_time`).
    /// Enforces the sample limit on the sum of each series' largest window.
    pub(crate) fn stream_range_function(
        &self,
        c: &Call,
        mut f: impl FnMut(SeriesMetric, bool, &[StepValue]) -> Result<()>,
    ) -> Result<Vec<bool>> {
        use FunctionId as F;
        let rc = self.prepare_range_call(c)?;
        let steps = self.steps();
        let kernel = SeriesKernel {
            rc: &rc,
            start: self.start,
            interval: self.interval,
            deadline: self.shared.deadline,
            cancel: self.shared.cancel,
        };
        let mut window_samples = 0usize;
        let drop_name = !matches!(rc.id, F::LastOverTime | F::FirstOverTime);
        let mut warned = false;
        let states = self.map_range_series(
            rc.arg,
            rc.uses_st,
            || WorkerState {
                scratch: Scratch::default(),
                present: vec![false; steps],
            },
            |state, grid, s, values| {
                kernel.check_interrupt()?;
                let outcome =
                    kernel.values(grid, &s, &mut state.present, &mut state.scratch, values)?;
                Ok(SeriesResult {
                    metric: s.metric,
                    drop_name: s.drop_name,
                    outcome,
                })
            },
            |r, values| {
                if !warned {
                    warned = true;
                    self.warn_invalid_quantiles(&rc, c);
                }
                window_samples += r.outcome.peak_window;
                if r.outcome.start_time_overlap {
                    self.annotate().add(Annotation::warning(
                        format!(
                            "sample has start time that overlaps with previous sample timestamp for metric {:?}",
                            r.metric.labels().get(METRIC_NAME).unwrap_or("")
                        ),
                        rc.arg.pos(),
                    ));
                }
                if values.is_empty() {
                    return Ok(());
                }
                if matches!(rc.id, F::Rate | F::Increase) {
                    if let Some(name) = r.metric.labels().get(METRIC_NAME) {
                        if !COUNTER_SUFFIXES.iter().any(|x| name.ends_with(x)) {
                            self.annotate().add(Annotation::info(
                                format!("metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {name:?}"),
                                rc.arg.pos(),
                            ));
                        }
                    }
                }
                f(r.metric, drop_name || r.drop_name, values)
            },
        )?;
        if !warned {
            self.warn_invalid_quantiles(&rc, c);
        }
        self.check_samples(window_samples)?;
        let mut present = vec![false; steps];
        for st in &states {
            for (p, q) in present.iter_mut().zip(&st.present) {
                *p |= *q;
            }
        }
        Ok(present)
    }

    /// Evaluates a range-vector function call into one output series per input series.
    pub(super) fn eval_range_function(&self, c: &Call) -> Result<EVal> {
        let mut out: Vec<ESeries> = Vec::new();
        let present = self.stream_range_function(c, |metric, drop_name, values| {
            out.push(ESeries {
                metric: metric.into_shared(),
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
}
