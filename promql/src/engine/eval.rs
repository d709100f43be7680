//! The evaluator: walks a preprocessed AST over a grid of steps `[start, end]` every
//! `interval` ms and produces step-aligned series, like Prometheus' range evaluation (an
//! instant query is a grid of one step). It owns expression dispatch, the per-step driver
//! used by operators, step-invariant replication, subquery timing and the limits (sample
//! count, timeout, cancellation). It reads storage only through `selector`, never directly.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use vigil_storage::{Labels, Queryable};

use super::annotations::Annotations;
use super::error::{exec_err, Error, Result};
use super::selector::SelectorOutput;
use super::start_ts::StartTimestampSource;
use super::value::{total_points, ESample, ESeries, EVal, Metric, Point};
use super::EngineOpts;
use crate::parser::ast::{Expr, SubqueryExpr, UnaryOp};

/// State shared by every (sub-)evaluator of one query.
pub(crate) struct Shared<'a> {
    pub queryable: &'a dyn Queryable,
    /// Where start timestamps come from; None when they are not used.
    pub start_timestamps: Option<&'a dyn StartTimestampSource>,
    pub opts: &'a EngineOpts,
    pub annotations: RefCell<Annotations>,
    pub deadline: Option<Instant>,
    pub cancel: Option<&'a AtomicBool>,
    /// Total samples read from storage (for stats).
    pub samples_read: RefCell<usize>,
    /// The query's start, end and step (0 for an instant query), for `start()`, `end()`,
    /// `range()` and `step()`; they do not change inside subqueries.
    pub query_start_ms: i64,
    pub query_end_ms: i64,
    pub query_step_ms: i64,
}

/// One sample of a per-step input vector: the index of its series in the input and its value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StepSample {
    pub idx: usize,
    pub v: f64,
}

/// An evaluator over one grid of steps.
#[derive(Clone, Copy)]
pub(crate) struct Evaluator<'a, 's> {
    pub shared: &'s Shared<'a>,
    pub start: i64,
    pub end: i64,
    pub interval: i64,
}

impl<'a, 's> Evaluator<'a, 's> {
    /// Number of steps in the grid.
    pub fn steps(&self) -> usize {
        if self.end < self.start || self.interval <= 0 {
            return 0;
        }
        ((self.end - self.start) / self.interval) as usize + 1
    }

    /// Timestamp of step `i`.
    pub fn step_ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.interval
    }

    /// An evaluator over another grid sharing this query's state.
    pub fn with_grid(&self, start: i64, end: i64, interval: i64) -> Evaluator<'a, 's> {
        Evaluator {
            shared: self.shared,
            start,
            end,
            interval,
        }
    }

    pub fn is_instant(&self) -> bool {
        self.start == self.end
    }

    /// Fails when the query timed out or was cancelled.
    pub fn check_interrupt(&self) -> Result<()> {
        interrupt_status(self.shared.cancel, self.shared.deadline)
    }

    /// Fails when `n` samples would exceed the sample limit.
    pub fn check_samples(&self, n: usize) -> Result<()> {
        if n > self.shared.opts.max_samples {
            return Err(Error::TooManySamples);
        }
        Ok(())
    }

    pub fn annotate(&self) -> std::cell::RefMut<'_, Annotations> {
        self.shared.annotations.borrow_mut()
    }

    /// Evaluates any expression of scalar, string or instant-vector type.
    pub fn eval(&self, e: &Expr) -> Result<EVal> {
        self.check_interrupt()?;
        match e {
            Expr::NumberLiteral(n) => Ok(EVal::Scalar(vec![n.val; self.steps()])),
            Expr::StringLiteral(s) => Ok(EVal::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Duration(d) => {
                let secs = d
                    .evaluate(
                        self.shared.query_step_ms,
                        self.shared.query_end_ms - self.shared.query_start_ms,
                    )
                    .map_err(Error::Execution)?;
                Ok(EVal::Scalar(vec![secs; self.steps()]))
            }
            Expr::Unary(u) => {
                let v = self.eval(&u.expr)?;
                if u.op == UnaryOp::Add {
                    return Ok(v);
                }
                Ok(match v {
                    EVal::Scalar(s) => EVal::Scalar(s.into_iter().map(|x| -x).collect()),
                    EVal::Vector(mut m) => {
                        for s in &mut m {
                            s.drop_name = true;
                            for p in &mut s.points {
                                p.v = -p.v;
                            }
                        }
                        EVal::Vector(m)
                    }
                    other => other,
                })
            }
            Expr::VectorSelector(vs) => Ok(EVal::Vector(
                self.eval_vector_selector(vs, SelectorOutput::Value)?,
            )),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => exec_err(format!(
                "cannot evaluate range vector expression {e} in this context"
            )),
            Expr::Call(c) => self.eval_call(c),
            Expr::Aggregate(a) => self.eval_aggregate(a),
            Expr::Binary(b) => self.eval_binary(b),
            Expr::StepInvariant(si) => self.eval_step_invariant(&si.expr),
        }
    }

    /// Evaluates an expression that must be an instant vector.
    pub fn eval_vector(&self, e: &Expr) -> Result<Vec<ESeries>> {
        match self.eval(e)? {
            EVal::Vector(m) => Ok(m),
            _ => exec_err(format!("expected instant vector, got {e}")),
        }
    }

    /// Evaluates an expression that must be a scalar (one value per step).
    pub fn eval_scalar(&self, e: &Expr) -> Result<Vec<f64>> {
        match self.eval(e)? {
            EVal::Scalar(s) => Ok(s),
            _ => exec_err(format!("expected scalar, got {e}")),
        }
    }

    /// Evaluates a string-typed expression.
    pub fn eval_string(&self, e: &Expr) -> Result<String> {
        match e.unwrap_parens() {
            Expr::StringLiteral(s) => Ok(s.val.clone()),
            other => match self.eval(other)? {
                EVal::String(s) => Ok(s),
                _ => exec_err(format!("expected string, got {e}")),
            },
        }
    }

    /// Evaluates `e` once at the first step and repeats the result at every step.
    fn eval_step_invariant(&self, e: &Expr) -> Result<EVal> {
        if self.is_instant() {
            return self.eval(e);
        }
        let once = self.with_grid(self.start, self.start, self.interval);
        let n = self.steps();
        Ok(match once.eval(e)? {
            EVal::Scalar(s) => EVal::Scalar(vec![s.first().copied().unwrap_or(f64::NAN); n]),
            EVal::String(s) => EVal::String(s),
            EVal::Vector(m) => {
                let mut out = Vec::with_capacity(m.len());
                for s in m {
                    let Some(p) = s.points.first() else { continue };
                    let points = (0..n)
                        .map(|i| Point {
                            t: self.step_ts(i),
                            v: p.v,
                        })
                        .collect();
                    out.push(ESeries {
                        metric: s.metric,
                        points,
                        drop_name: s.drop_name,
                    });
                }
                self.check_samples(total_points(&out))?;
                EVal::Vector(out)
            }
        })
    }

    /// The inner grid of a subquery evaluated for this grid: (start, end, step), with the
    /// start aligned to a multiple of the step as Prometheus does.
    pub fn subquery_grid(&self, sq: &SubqueryExpr) -> (i64, i64, i64) {
        let step = if sq.step > 0 {
            sq.step
        } else {
            self.shared.opts.no_step_subquery_interval_ms
        };
        let (lo, hi) = match sq.timestamp {
            Some(ts) => (ts, ts),
            None => (self.start, self.end),
        };
        let first = lo - sq.original_offset - sq.range;
        let end = hi - sq.original_offset;
        let mut start = step * (first / step);
        if start <= first {
            start += step;
        }
        (start, end, step)
    }

    /// Runs `f` at every step on the per-step vectors of `inputs`; collects the returned
    /// samples into series. For an instant grid the output keeps `f`'s order.
    pub fn range_eval(
        &self,
        inputs: &[&[ESeries]],
        mut f: impl FnMut(usize, i64, &[Vec<StepSample>]) -> Result<Vec<ESample>>,
    ) -> Result<Vec<ESeries>> {
        let n = self.steps();
        let mut cursors: Vec<Vec<usize>> = inputs.iter().map(|m| vec![0; m.len()]).collect();
        let mut vectors: Vec<Vec<StepSample>> = inputs.iter().map(|_| Vec::new()).collect();
        let mut out: Vec<ESeries> = Vec::new();
        let mut index: HashMap<Metric, usize> = HashMap::new();
        for step in 0..n {
            self.check_interrupt()?;
            let t = self.step_ts(step);
            for (k, m) in inputs.iter().enumerate() {
                let vec = &mut vectors[k];
                vec.clear();
                for (si, s) in m.iter().enumerate() {
                    let c = &mut cursors[k][si];
                    while *c < s.points.len() && s.points[*c].t < t {
                        *c += 1;
                    }
                    if let Some(p) = s.points.get(*c) {
                        if p.t == t {
                            vec.push(StepSample { idx: si, v: p.v });
                        }
                    }
                }
            }
            let result = f(step, t, &vectors)?;
            if n == 1 {
                return Ok(result
                    .into_iter()
                    .map(|s| ESeries {
                        metric: s.metric,
                        points: vec![Point { t, v: s.v }],
                        drop_name: s.drop_name,
                    })
                    .collect());
            }
            for s in result {
                match index.get(&s.metric) {
                    Some(&i) => {
                        let series = &mut out[i];
                        if series.points.last().is_some_and(|p| p.t == t) {
                            return exec_err(
                                "vector cannot contain metrics with the same labelset",
                            );
                        }
                        series.points.push(Point { t, v: s.v });
                    }
                    None => {
                        index.insert(s.metric.clone(), out.len());
                        out.push(ESeries {
                            metric: s.metric,
                            points: vec![Point { t, v: s.v }],
                            drop_name: s.drop_name,
                        });
                    }
                }
            }
        }
        self.check_samples(total_points(&out))?;
        Ok(out)
    }
}

/// Fails when `cancel` is set or `deadline` has passed (usable from worker threads).
pub(crate) fn interrupt_status(
    cancel: Option<&AtomicBool>,
    deadline: Option<Instant>,
) -> Result<()> {
    if let Some(c) = cancel {
        if c.load(Ordering::Relaxed) {
            return Err(Error::Canceled);
        }
    }
    if let Some(d) = deadline {
        if Instant::now() >= d {
            return Err(Error::Timeout);
        }
    }
    Ok(())
}

/// Empty labels as a shared metric.
pub(crate) fn empty_metric() -> Metric {
    Arc::new(Labels::empty())
}
