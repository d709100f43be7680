//! The promqltest glue: `PromqlTestEngine` implements `promqltest::TestEngine` with this
//! engine over an in-memory `MemStorage`, configured as the upstream test files expect
//! (lookback 5m, subquery step 1m, max samples 10 000, every parser feature on, delayed
//! name removal), and rewrites queries for the `@` variants through the AST printer. Test
//! tooling only: the query path must never depend on it.

use std::time::Duration;

use vigil_storage::Labels;

use super::memstore::{AppendError, MemStorage};
use super::{Engine, EngineOpts, Value};
use crate::parser::ast::Expr;
use crate::parser::preprocess::children_mut;
use crate::parser::{parse_expr_with, ParserOptions};
use crate::promqltest::{
    Capabilities, LoadedSeries, MatrixSeries, QueryOutcome, SampleValue, TestEngine, TestValue,
    VectorSample,
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
        ..EngineOpts::default()
    }
}

/// A `TestEngine` over in-memory storage.
pub struct PromqlTestEngine {
    pub store: MemStorage,
    pub engine: Engine,
}

impl Default for PromqlTestEngine {
    fn default() -> Self {
        PromqlTestEngine {
            store: MemStorage::new(),
            engine: Engine::new(test_engine_opts()),
        }
    }
}

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
            native_histograms: false,
            start_timestamps: false,
        }
    }

    fn clear(&mut self) {
        self.store.clear();
    }

    fn load(&mut self, series: &[LoadedSeries]) -> Result<(), AppendError> {
        let batch: Vec<(Labels, Vec<(i64, f64)>)> = series
            .iter()
            .map(|s| {
                let samples = s
                    .samples
                    .iter()
                    .filter_map(|x| match x.value {
                        SampleValue::Float(v) => Some((x.t_ms, v)),
                        SampleValue::Histogram(_) => None,
                    })
                    .collect();
                (s.labels.clone(), samples)
            })
            .collect();
        self.store.append_batch(&batch)
    }

    fn instant(&mut self, query: &str, ts_ms: i64) -> QueryOutcome {
        outcome(self.engine.instant(&self.store, query, ts_ms))
    }

    fn range(&mut self, query: &str, start_ms: i64, end_ms: i64, step_ms: i64) -> QueryOutcome {
        outcome(
            self.engine
                .range(&self.store, query, start_ms, end_ms, step_ms),
        )
    }

    fn pin_at_modifiers(&mut self, query: &str, ts_ms: i64) -> Option<String> {
        let mut e = parse_expr_with(query, &self.engine.opts().parser_options).ok()?;
        pin(&mut e, ts_ms);
        Some(e.to_string())
    }
}
