//! The PromQL evaluation engine: `Engine::instant` / `Engine::range` parse a query, prepare
//! it (`@ start()/end()`, duration expressions, step-invariant subtrees), evaluate it over
//! a `vigil_storage::Queryable` with Prometheus 3 semantics, and return a typed `Value` with
//! warnings and infos. Limits (`timeout`, `max_samples`) and cancellation are enforced here.
//!
//! The engine reads storage only through `Queryable` (see `selector`); it never writes,
//! never caches data between queries and never panics on any input.

mod aggregate;
pub mod annotations;
mod binop;
pub mod error;
mod eval;
mod functions;
mod group_acc;
mod histogram;
mod info;
pub mod memstore;
mod range_fn;
mod range_kernel;
mod range_stream;
mod selector;
pub mod start_ts;
pub mod test_engine;
pub mod value;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use vigil_storage::Queryable;

pub use annotations::{Annotation, AnnotationKind, Annotations};
pub use error::{Error, Result};
pub use memstore::MemStorage;
pub use start_ts::{StartTimestampSource, UNKNOWN_START_TIMESTAMP};
pub use value::{Point, Sample, Series, Value};

use crate::parser::ast::{Expr, ValueType};
use crate::parser::{parse_expr_with, preprocess_expr, ParserOptions};
use binop::drop_metadata;
use eval::{Evaluator, Shared};
use value::{ESeries, EVal};

/// Prometheus' default lookback delta (5m).
pub const DEFAULT_LOOKBACK_DELTA_MS: i64 = 5 * 60 * 1000;
/// Prometheus' default `--query.max-samples`.
pub const DEFAULT_MAX_SAMPLES: usize = 50_000_000;
/// Prometheus' default `--query.timeout` (2m).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default step of subqueries written without one (`[5m:]`), as in the promqltest engine.
pub const DEFAULT_SUBQUERY_STEP_MS: i64 = 60 * 1000;
/// Step used for the single-step grid of an instant query.
const INSTANT_QUERY_INTERVAL_MS: i64 = 1;

/// Engine limits and feature switches.
#[derive(Clone, Debug)]
pub struct EngineOpts {
    pub timeout: Duration,
    pub max_samples: usize,
    pub lookback_delta_ms: i64,
    pub enable_at_modifier: bool,
    pub enable_negative_offset: bool,
    pub no_step_subquery_interval_ms: i64,
    pub parser_options: ParserOptions,
    /// Use start timestamps (from a [`StartTimestampSource`]) in `rate`, `increase`,
    /// `irate`, `resets` and `start_timestamp()`, like Prometheus' `UseStartTimestamps`
    /// (off by default there too).
    pub use_start_timestamps: bool,
    /// Threads one query may use to evaluate range functions (`rate`, `*_over_time`, ...)
    /// over many series; 1 keeps everything on the calling thread. Results do not depend
    /// on it. Default: the machine's parallelism, at most 4.
    pub max_query_threads: usize,
}

impl Default for EngineOpts {
    fn default() -> Self {
        EngineOpts {
            timeout: DEFAULT_TIMEOUT,
            max_samples: DEFAULT_MAX_SAMPLES,
            lookback_delta_ms: DEFAULT_LOOKBACK_DELTA_MS,
            enable_at_modifier: true,
            enable_negative_offset: true,
            no_step_subquery_interval_ms: DEFAULT_SUBQUERY_STEP_MS,
            parser_options: ParserOptions::default(),
            use_start_timestamps: false,
            max_query_threads: range_stream::default_query_threads(),
        }
    }
}

/// Query statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Samples decoded from storage.
    pub samples_read: usize,
}

/// A successful query: the value plus rendered annotations (`PromQL warning: ... (L:C)`).
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
    pub stats: QueryStats,
}

/// The PromQL engine. Cheap to share; holds only options.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    opts: EngineOpts,
}

impl Engine {
    pub fn new(opts: EngineOpts) -> Engine {
        Engine { opts }
    }

    pub fn opts(&self) -> &EngineOpts {
        &self.opts
    }

    /// Evaluates `query` at `ts_ms`.
    pub fn instant(&self, q: &dyn Queryable, query: &str, ts_ms: i64) -> Result<QueryResult> {
        self.exec(q, query, ts_ms, ts_ms, 0, None)
    }

    /// [`Engine::instant`] with start timestamps (see [`Engine::exec_with_start_timestamps`]).
    pub fn instant_with_start_timestamps(
        &self,
        q: &dyn Queryable,
        start_timestamps: &dyn StartTimestampSource,
        query: &str,
        ts_ms: i64,
    ) -> Result<QueryResult> {
        self.exec_with_start_timestamps(q, Some(start_timestamps), query, ts_ms, ts_ms, 0, None)
    }

    /// [`Engine::range`] with start timestamps (see [`Engine::exec_with_start_timestamps`]).
    pub fn range_with_start_timestamps(
        &self,
        q: &dyn Queryable,
        start_timestamps: &dyn StartTimestampSource,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult> {
        check_range(start_ms, end_ms, step_ms)?;
        self.exec_with_start_timestamps(
            q,
            Some(start_timestamps),
            query,
            start_ms,
            end_ms,
            step_ms,
            None,
        )
    }

    /// Evaluates `query` over `[start_ms, end_ms]` every `step_ms`.
    pub fn range(
        &self,
        q: &dyn Queryable,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult> {
        check_range(start_ms, end_ms, step_ms)?;
        self.exec(q, query, start_ms, end_ms, step_ms, None)
    }

    /// Like `instant`/`range` (step 0 means instant) with a cancellation flag checked
    /// between steps and series.
    pub fn exec(
        &self,
        q: &dyn Queryable,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        cancel: Option<&AtomicBool>,
    ) -> Result<QueryResult> {
        self.exec_with_start_timestamps(q, None, query, start_ms, end_ms, step_ms, cancel)
    }

    /// Like [`Engine::exec`], reading start timestamps from `start_timestamps` when
    /// `EngineOpts::use_start_timestamps` is on (otherwise it is ignored).
    #[allow(clippy::too_many_arguments)]
    pub fn exec_with_start_timestamps(
        &self,
        q: &dyn Queryable,
        start_timestamps: Option<&dyn StartTimestampSource>,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        cancel: Option<&AtomicBool>,
    ) -> Result<QueryResult> {
        let expr = parse_expr_with(query, &self.opts.parser_options)?;
        self.check_features(&expr)?;
        let expr = preprocess_expr(expr, start_ms, end_ms, step_ms).map_err(Error::Execution)?;
        let instant = step_ms == 0;
        if !instant && !matches!(expr.value_type(), ValueType::Scalar | ValueType::Vector) {
            return Err(Error::BadQuery(format!(
                "invalid expression type {:?} for range query, must be Scalar or instant Vector",
                expr.value_type().documented()
            )));
        }
        let shared = Shared {
            queryable: q,
            start_timestamps: start_timestamps.filter(|_| self.opts.use_start_timestamps),
            opts: &self.opts,
            annotations: RefCell::new(Annotations::default()),
            deadline: Instant::now().checked_add(self.opts.timeout),
            cancel,
            samples_read: RefCell::new(0),
            query_start_ms: start_ms,
            query_end_ms: end_ms,
            query_step_ms: step_ms,
        };
        let ev = Evaluator {
            shared: &shared,
            start: start_ms,
            end: end_ms,
            interval: if instant {
                INSTANT_QUERY_INTERVAL_MS
            } else {
                step_ms
            },
        };
        let value = if instant {
            match expr.value_type() {
                ValueType::Matrix => {
                    let input = ev.eval_range_input(&expr)?;
                    let mut out = Vec::new();
                    for si in 0..input.series.len() {
                        let mut pts = Vec::new();
                        let extended = input.ext_back > 0 || input.ext_fwd > 0;
                        input.for_each_window(si, |step, w| {
                            if !extended {
                                pts.extend_from_slice(w);
                                return;
                            }
                            // anchored/smoothed: the boundary points the kernels would see.
                            let r = input.refs[step];
                            let raw: Vec<(i64, f64)> = w.iter().map(|p| (p.t, p.v)).collect();
                            let smoothed = input.ext_fwd > 0;
                            pts.extend(
                                crate::kernels::range::extend_points(
                                    &raw,
                                    r - input.range,
                                    r,
                                    smoothed,
                                )
                                .into_iter()
                                .map(|(t, v)| Point { t, v }),
                            );
                        });
                        if !pts.is_empty() {
                            // A subquery's series carry delayed name removal (e.g. from
                            // `rate`): apply it like for any other result.
                            let s = &input.series[si];
                            let labels = if s.drop_name {
                                drop_metadata(&s.metric)
                            } else {
                                (*s.metric).clone()
                            };
                            out.push(Series {
                                labels,
                                points: pts,
                            });
                        }
                    }
                    out.sort_by(|a, b| a.labels.cmp(&b.labels));
                    Value::Matrix(out)
                }
                _ => match ev.eval(&expr)? {
                    EVal::Scalar(s) => Value::Scalar {
                        t: start_ms,
                        v: s.first().copied().unwrap_or(f64::NAN),
                    },
                    EVal::String(s) => Value::String { t: start_ms, v: s },
                    EVal::Vector(m) => Value::Vector(finish_vector(m, start_ms)?),
                },
            }
        } else {
            match ev.eval(&expr)? {
                EVal::Scalar(s) => Value::Matrix(vec![Series {
                    labels: vigil_storage::Labels::empty(),
                    points: s
                        .iter()
                        .enumerate()
                        .map(|(i, v)| Point {
                            t: ev.step_ts(i),
                            v: *v,
                        })
                        .collect(),
                }]),
                EVal::Vector(m) => Value::Matrix(finish_matrix(m)?),
                EVal::String(_) => {
                    return Err(Error::BadQuery(
                        "invalid expression type \"string\" for range query, must be Scalar or instant Vector".into(),
                    ))
                }
            }
        };
        let (warnings, infos) = shared.annotations.borrow().render(query);
        let samples_read = *shared.samples_read.borrow();
        Ok(QueryResult {
            value,
            warnings,
            infos,
            stats: QueryStats { samples_read },
        })
    }

    fn check_features(&self, expr: &Expr) -> Result<()> {
        let mut err = None;
        expr.walk(&mut |e, _| {
            let (at, offset) = match e {
                Expr::VectorSelector(v) => (
                    v.timestamp.is_some() || v.start_or_end.is_some(),
                    v.original_offset,
                ),
                Expr::MatrixSelector(m) => (
                    m.vector_selector.timestamp.is_some()
                        || m.vector_selector.start_or_end.is_some(),
                    m.vector_selector.original_offset,
                ),
                Expr::Subquery(s) => (
                    s.timestamp.is_some() || s.start_or_end.is_some(),
                    s.original_offset,
                ),
                _ => (false, 0),
            };
            if at && !self.opts.enable_at_modifier {
                err = Some(Error::BadQuery("@ modifier is disabled".into()));
            }
            if offset < 0 && !self.opts.enable_negative_offset {
                err = Some(Error::BadQuery("negative offset is disabled".into()));
            }
            true
        });
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Rejects a range query's grid as Prometheus' API does.
fn check_range(start_ms: i64, end_ms: i64, step_ms: i64) -> Result<()> {
    if step_ms <= 0 {
        return Err(Error::BadQuery(
            "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
        ));
    }
    if end_ms < start_ms {
        return Err(Error::BadQuery(
            "end timestamp must not be before start time".into(),
        ));
    }
    Ok(())
}

/// Final instant vector: delayed name removal, then the duplicate-labelset check.
fn finish_vector(m: Vec<ESeries>, t: i64) -> Result<Vec<Sample>> {
    let mut out = Vec::with_capacity(m.len());
    let mut seen = std::collections::HashSet::new();
    for s in m {
        let Some(p) = s.points.first() else { continue };
        let labels = if s.drop_name {
            drop_metadata(&s.metric)
        } else {
            (*s.metric).clone()
        };
        if !seen.insert(labels.clone()) {
            return error::exec_err("vector cannot contain metrics with the same labelset");
        }
        out.push(Sample { labels, t, v: p.v });
    }
    Ok(out)
}

/// Final range result: delayed name removal, merging series that became equal (overlap is
/// an error), sorted by labels.
fn finish_matrix(m: Vec<ESeries>) -> Result<Vec<Series>> {
    let mut out: Vec<Series> = Vec::with_capacity(m.len());
    let mut index: HashMap<vigil_storage::Labels, usize> = HashMap::new();
    for s in m {
        if s.points.is_empty() {
            continue;
        }
        let labels = if s.drop_name {
            drop_metadata(&s.metric)
        } else {
            (*s.metric).clone()
        };
        match index.get(&labels) {
            Some(&i) => {
                let t = &mut out[i];
                t.points.extend(s.points);
                t.points.sort_by_key(|p| p.t);
                if t.points.windows(2).any(|w| w[0].t == w[1].t) {
                    return error::exec_err("vector cannot contain metrics with the same labelset");
                }
            }
            None => {
                index.insert(labels.clone(), out.len());
                out.push(Series {
                    labels,
                    points: s.points,
                });
            }
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

#[cfg(test)]
mod range_fn_tests;
#[cfg(test)]
mod start_ts_tests;
#[cfg(test)]
mod tests;
