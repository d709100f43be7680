//! The promqltest glue: `PromqlTestEngine` implements `promqltest::TestEngine` with this
//! engine over an in-memory `MemStorage`, configured as the upstream test files expect
//! (lookback 5m, subquery step 1m, max samples 10 000, every parser feature on, delayed
//! name removal, start timestamps on), and rewrites queries for the `@` variants through
//! the AST printer. Start timestamps from `@st` lines are stored in `MemStorage` and read
//! through its `StartTimestampSource`.
//! Native histogram samples are not stored: the engine remembers which series carried them
//! and skips exactly the evals whose selectors can reach such a series (or that expect
//! histogram results), so every float-only eval of a file runs. Test tooling only: the
//! query path must never depend on it.

use std::time::Duration;

use vigil_storage::Labels;

use super::memstore::{AppendError, MemStorage, SampleWithStart};
use super::{Engine, EngineOpts, Value, UNKNOWN_START_TIMESTAMP};
use crate::parser::ast::Expr;
use crate::parser::preprocess::children_mut;
use crate::parser::{parse_expr_with, ParserOptions};
use crate::promqltest::runner::SKIP_NATIVE_HISTOGRAMS;
use crate::promqltest::{
    Capabilities, EvalCmd, LoadedSeries, MatrixSeries, QueryOutcome, SampleValue, TestEngine,
    TestValue, VectorSample,
};

/// Max samples per query assumed by the shipped test files.
pub const TEST_MAX_SAMPLES: usize = 10_000;
/// Timeout assumed by the shipped test files.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(100);

/// The engine options of the upstream promqltest runner.
pub fn test_engine_opts() -> EngineOpts {
    EngineOpts {
        timeout: TEST_TIMEOUT,
        max_samples: TEST_MAX_SAMPLES,
        parser_options: ParserOptions::all(),
        use_start_timestamps: true,
        ..EngineOpts::default()
    }
}

/// A `TestEngine` over in-memory storage.
pub struct PromqlTestEngine {
    pub store: MemStorage,
    pub engine: Engine,
    /// Series that had native histogram samples in a load since the last `clear`.
    histogram_series: Vec<Labels>,
}

impl Default for PromqlTestEngine {
    fn default() -> Self {
        PromqlTestEngine {
            store: MemStorage::new(),
            engine: Engine::new(test_engine_opts()),
            histogram_series: Vec::new(),
        }
    }
}

impl PromqlTestEngine {
    /// Whether `expr` can read a series that had native histogram samples: some selector
    /// (including `info()`'s label selector and its implicit `target_info`) matches one.
    fn touches_histograms(&self, expr: &Expr) -> bool {
        let hits = |matchers: &[vigil_storage::Matcher]| {
            self.histogram_series.iter().any(|l| {
                matchers
                    .iter()
                    .all(|m| m.matches(l.get(&m.name).unwrap_or("")))
            })
        };
        let mut touched = false;
        expr.walk(&mut |e, _| {
            match e {
                Expr::VectorSelector(v) => touched |= hits(&v.matchers),
                Expr::MatrixSelector(m) => touched |= hits(&m.vector_selector.matchers),
                Expr::Call(c) if c.func.name == "info" && c.args.len() == 1 => {
                    touched |= self
                        .histogram_series
                        .iter()
                        .any(|l| l.metric_name() == Some(INFO_DEFAULT_METRIC));
                }
                _ => {}
            }
            !touched
        });
        touched
    }
}

/// The info metric `info(v)` joins when no selector names one.
const INFO_DEFAULT_METRIC: &str = "target_info";

fn outcome(r: super::Result<super::QueryResult>) -> QueryOutcome {
    match r {
        Err(e) => QueryOutcome::err(e.to_string()),
        Ok(res) => {
            let value = match res.value {
                Value::Scalar { t, v } => TestValue::Scalar { t_ms: t, value: v },
                Value::String { t, v } => TestValue::String { t_ms: t, value: v },
                Value::Vector(v) => TestValue::Vector(
                    v.into_iter()
                        .map(|s| VectorSample {
                            labels: s.labels,
                            t_ms: s.t,
                            value: SampleValue::Float(s.v),
                        })
                        .collect(),
                ),
                Value::Matrix(m) => TestValue::Matrix(
                    m.into_iter()
                        .map(|s| MatrixSeries {
                            labels: s.labels,
                            floats: s.points.into_iter().map(|p| (p.t, p.v)).collect(),
                            histograms: Vec::new(),
                        })
                        .collect(),
                ),
            };
            QueryOutcome {
                result: Ok(value),
                warnings: res.warnings,
                infos: res.infos,
            }
        }
    }
}

/// Pins every selector and subquery without an explicit `@` (or with `@ start()/end()`) to
/// `ts_ms`, not descending into subqueries.
fn pin(e: &mut Expr, ts_ms: i64) {
    match e {
        Expr::VectorSelector(v) => {
            if v.timestamp.is_none() || v.start_or_end.is_some() {
                v.timestamp = Some(ts_ms);
                v.start_or_end = None;
            }
            return;
        }
        Expr::MatrixSelector(m) => {
            let v = &mut m.vector_selector;
            if v.timestamp.is_none() || v.start_or_end.is_some() {
                v.timestamp = Some(ts_ms);
                v.start_or_end = None;
            }
            return;
        }
        Expr::Subquery(s) => {
            if s.timestamp.is_none() || s.start_or_end.is_some() {
                s.timestamp = Some(ts_ms);
                s.start_or_end = None;
            }
            return;
        }
        _ => {}
    }
    for c in children_mut(e) {
        pin(c, ts_ms);
    }
}

impl TestEngine for PromqlTestEngine {
    type Error = AppendError;

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            native_histograms: true,
            start_timestamps: true,
        }
    }

    fn clear(&mut self) {
        self.store.clear();
        self.histogram_series.clear();
    }

    fn load(&mut self, series: &[LoadedSeries]) -> Result<(), AppendError> {
        for s in series {
            let has_histograms = s
                .samples
                .iter()
                .any(|x| matches!(x.value, SampleValue::Histogram(_)));
            if has_histograms && !self.histogram_series.contains(&s.labels) {
                self.histogram_series.push(s.labels.clone());
            }
        }
        let batch: Vec<(Labels, Vec<SampleWithStart>)> = series
            .iter()
            .map(|s| {
                let samples = s
                    .samples
                    .iter()
                    .filter_map(|x| match x.value {
                        SampleValue::Float(v) => {
                            Some((x.t_ms, v, x.st_ms.unwrap_or(UNKNOWN_START_TIMESTAMP)))
                        }
                        SampleValue::Histogram(_) => None,
                    })
                    .collect();
                (s.labels.clone(), samples)
            })
            .collect();
        self.store.append_batch_with_start_timestamps(&batch)
    }

    fn instant(&mut self, query: &str, ts_ms: i64) -> QueryOutcome {
        outcome(
            self.engine
                .instant_with_start_timestamps(&self.store, &self.store, query, ts_ms),
        )
    }

    fn range(&mut self, query: &str, start_ms: i64, end_ms: i64, step_ms: i64) -> QueryOutcome {
        outcome(self.engine.range_with_start_timestamps(
            &self.store,
            &self.store,
            query,
            start_ms,
            end_ms,
            step_ms,
        ))
    }

    fn skip_reason(&mut self, eval: &EvalCmd) -> Option<String> {
        if eval.expects_histograms() {
            return Some(SKIP_NATIVE_HISTOGRAMS.to_string());
        }
        let expr = parse_expr_with(&eval.expr, &self.engine.opts().parser_options).ok()?;
        self.touches_histograms(&expr)
            .then(|| SKIP_NATIVE_HISTOGRAMS.to_string())
    }

    fn pin_at_modifiers(&mut self, query: &str, ts_ms: i64) -> Option<String> {
        let mut e = parse_expr_with(query, &self.engine.opts().parser_options).ok()?;
        pin(&mut e, ts_ms);
        Some(e.to_string())
    }
}
