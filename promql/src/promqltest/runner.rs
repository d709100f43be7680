//! Runs parsed scripts against an engine (DSL.md §5, §8): `clear`, `load` (with feature-based
//! skipping when the engine lacks native histograms or start timestamps), range evals, and
//! instant evals with their `@` variants and the range-mode cross-check. Every eval command is
//! one test; its variants and cross-checks are part of it. Produces a [`FileReport`] whose
//! summary ends with `N passed, M failed`.
//!
//! The engine is reached only through [`TestEngine`]; this module must never parse PromQL
//! itself beyond the textual checks the spec allows (function names, `start()` etc.).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::compare::{
    assert_matrix_sorted, check_annotations, check_expected_failure, compare_result, Grid,
};
use super::load::expand_load;
use super::parse::{parse_test, Command, EvalCmd, EvalMode, LoadCmd};
use super::value::{LoadedSeries, QueryOutcome, SampleValue, TestValue, VectorSample};

/// What an engine supports; unsupported data is not loaded and the evals depending on it are
/// skipped with a reason instead of failing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub native_histograms: bool,
    pub start_timestamps: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            native_histograms: true,
            start_timestamps: true,
        }
    }
}

/// Skip reason for evals that need native histograms.
pub const SKIP_NATIVE_HISTOGRAMS: &str = "native histograms not supported";
/// Skip reason for evals after a load that carried start timestamps.
pub const SKIP_START_TIMESTAMPS: &str = "start timestamps not supported";

/// The engine under test. Implement this once to run every script.
pub trait TestEngine {
    type Error: std::fmt::Display;

    /// Features the engine supports (all by default).
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Drops all stored series.
    fn clear(&mut self);

    /// Appends one load block's samples and commits them together. Must reject out-of-order
    /// samples and same-timestamp samples with a different value, like a TSDB head.
    fn load(&mut self, series: &[LoadedSeries]) -> Result<(), Self::Error>;

    /// Runs an instant query at `ts_ms`. Warnings and infos are rendered as Prometheus renders
    /// them (`PromQL warning: <text> (L:C)`, positions against `query` exactly as given,
    /// de-duplicated by text); the error text carries no position suffix.
    fn instant(&mut self, query: &str, ts_ms: i64) -> QueryOutcome;

    /// Runs a range query.
    fn range(&mut self, query: &str, start_ms: i64, end_ms: i64, step_ms: i64) -> QueryOutcome;

    /// The `@` rewrite of DSL.md §8.2 step 1: `query` with every vector/matrix selector and
    /// subquery lacking an explicit `@` (or using `@ start()`/`@ end()`) pinned to `@ <ts>`,
    /// printed back to text. `None` (the default) means no `@` variants are run.
    fn pin_at_modifiers(&mut self, _query: &str, _ts_ms: i64) -> Option<String> {
        None
    }

    /// A reason to skip this eval (e.g. syntax the engine does not implement yet), or `None`.
    fn skip_reason(&mut self, _eval: &EvalCmd) -> Option<String> {
        None
    }
}

/// Which automatic checks to run besides the eval itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// Re-run instant evals with `@` pinned at the variant times (§8.2).
    pub at_variants: bool,
    /// Re-run instant evals as a range query around the evaluation time (§8.3).
    pub range_cross_check: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            at_variants: true,
            range_cross_check: true,
        }
    }
}

/// The outcome of one eval command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvalOutcome {
    Passed,
    Failed(String),
    Skipped(String),
}

/// One eval command's report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalReport {
    pub line: usize,
    pub expr: String,
    pub outcome: EvalOutcome,
}

/// The report of one script.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileReport {
    pub file: String,
    /// The script did not parse; nothing ran. Counts as one failure.
    pub parse_error: Option<String>,
    /// Load commands that failed: (line, error). Each counts as one failure.
    pub load_errors: Vec<(usize, String)>,
    pub evals: Vec<EvalReport>,
}

impl FileReport {
    /// Evals that passed.
    pub fn passed(&self) -> usize {
        self.evals
            .iter()
            .filter(|e| e.outcome == EvalOutcome::Passed)
            .count()
    }

    /// Failed evals plus failed loads plus a parse error.
    pub fn failed(&self) -> usize {
        self.evals
            .iter()
            .filter(|e| matches!(e.outcome, EvalOutcome::Failed(_)))
            .count()
            + self.load_errors.len()
            + usize::from(self.parse_error.is_some())
    }

    /// Skipped evals by reason.
    pub fn skipped(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for e in &self.evals {
            if let EvalOutcome::Skipped(r) = &e.outcome {
                *out.entry(r.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    /// Human-readable report: one line per failure, one per skip reason, and last
    /// `N passed, M failed`.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        if let Some(e) = &self.parse_error {
            out.push_str(&format!("FAIL {}: parse error: {e}\n", self.file));
        }
        for (line, e) in &self.load_errors {
            out.push_str(&format!("FAIL {}:{line}: load: {e}\n", self.file));
        }
        for e in &self.evals {
            if let EvalOutcome::Failed(msg) = &e.outcome {
                out.push_str(&format!(
                    "FAIL {}:{}: {}: {msg}\n",
                    self.file, e.line, e.expr
                ));
            }
        }
        for (reason, n) in self.skipped() {
            out.push_str(&format!("{n} skipped ({reason})\n"));
        }
        out.push_str(&format!(
            "{} passed, {} failed",
            self.passed(),
            self.failed()
        ));
        out
    }
}

/// A multi-file summary: one `file: N passed, M failed[, K skipped]` line per report, then
/// the totals as `N passed, M failed` (with `, K skipped` when any were skipped).
pub fn summarize(reports: &[FileReport]) -> String {
    let mut out = String::new();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for r in reports {
        let k: usize = r.skipped().values().sum();
        out.push_str(&format!(
            "{}: {} passed, {} failed",
            r.file,
            r.passed(),
            r.failed()
        ));
        if k > 0 {
            out.push_str(&format!(", {k} skipped"));
        }
        out.push('\n');
        passed += r.passed();
        failed += r.failed();
        skipped += k;
    }
    out.push_str(&format!("{passed} passed, {failed} failed"));
    if skipped > 0 {
        out.push_str(&format!(", {skipped} skipped"));
    }
    out
}

/// Reads, parses and runs a script file with default options.
pub fn run_file<E: TestEngine>(path: &Path, engine: &mut E) -> FileReport {
    run_file_with(path, engine, RunOptions::default())
}

/// Reads, parses and runs a script file.
pub fn run_file_with<E: TestEngine>(path: &Path, engine: &mut E, opts: RunOptions) -> FileReport {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(src) => run_test(&name, &src, engine, opts),
        Err(e) => FileReport {
            file: name,
            parse_error: Some(format!("cannot read file: {e}")),
            ..FileReport::default()
        },
    }
}

/// Parses and runs a script given as text; `name` appears in messages.
pub fn run_test<E: TestEngine>(
    name: &str,
    source: &str,
    engine: &mut E,
    opts: RunOptions,
) -> FileReport {
    let mut report = FileReport {
        file: name.to_string(),
        ..FileReport::default()
    };
    let file = match parse_test(name, source) {
        Ok(f) => f,
        Err(e) => {
            report.parse_error = Some(e.to_string());
            return report;
        }
    };
    let mut state = RunState::default();
    engine.clear();
    for cmd in &file.commands {
        match cmd {
            Command::Clear { .. } => {
                engine.clear();
                state = RunState::default();
            }
            Command::Load(l) => {
                if let Err(e) = run_load(engine, l, &mut state) {
                    report.load_errors.push((l.line, e));
                }
            }
            Command::Eval(ev) => {
                let outcome = match skip_reason(engine, ev, &state) {
                    Some(reason) => EvalOutcome::Skipped(reason),
                    None => match run_eval(engine, ev, opts) {
                        Ok(()) => EvalOutcome::Passed,
                        Err(e) => EvalOutcome::Failed(e),
                    },
                };
                report.evals.push(EvalReport {
                    line: ev.line,
                    expr: ev.expr.clone(),
                    outcome,
                });
            }
        }
    }
    report
}

/// What the runner dropped from storage since the last `clear`.
#[derive(Default)]
struct RunState {
    /// Metric names whose histogram samples could not be loaded.
    histogram_metrics: BTreeSet<String>,
    /// Start timestamps were dropped.
    dropped_start_timestamps: bool,
}

fn run_load<E: TestEngine>(
    engine: &mut E,
    cmd: &LoadCmd,
    state: &mut RunState,
) -> Result<(), String> {
    let caps = engine.capabilities();
    let mut series = if cmd.with_nhcb && !caps.native_histograms {
        // Load the classic series only; remember the names the conversion would have made.
        let mut plain = cmd.clone();
        plain.with_nhcb = false;
        for s in &cmd.series {
            if let Some(name) = s.labels.metric_name() {
                for suffix in ["_bucket", "_sum", "_count"] {
                    if let Some(base) = name.strip_suffix(suffix) {
                        state.histogram_metrics.insert(base.to_string());
                        break;
                    }
                }
            }
        }
        expand_load(&plain)?
    } else {
        expand_load(cmd)?
    };
    if !caps.native_histograms {
        for s in &mut series {
            let before = s.samples.len();
            s.samples
                .retain(|x| matches!(x.value, SampleValue::Float(_)));
            if s.samples.len() != before {
                if let Some(name) = s.labels.metric_name() {
                    state.histogram_metrics.insert(name.to_string());
                }
            }
        }
        series.retain(|s| !s.samples.is_empty());
    }
    if !caps.start_timestamps {
        for s in &mut series {
            for x in &mut s.samples {
                if x.st_ms.take().is_some() {
                    state.dropped_start_timestamps = true;
                }
            }
        }
    }
    engine.load(&series).map_err(|e| e.to_string())
}

/// Identifier-like tokens of a PromQL expression outside string literals.
fn identifiers(expr: &str) -> Vec<(&str, usize)> {
    let b = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' || c == b'`' {
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' && c != b'`' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                i += 1;
            }
            out.push((&expr[start..i], i));
        } else {
            i += 1;
        }
    }
    out
}

fn skip_reason<E: TestEngine>(engine: &mut E, ev: &EvalCmd, state: &RunState) -> Option<String> {
    let caps = engine.capabilities();
    if !caps.native_histograms
        && (ev.expects_histograms()
            || identifiers(&ev.expr)
                .iter()
                .any(|(id, _)| state.histogram_metrics.contains(*id)))
    {
        return Some(SKIP_NATIVE_HISTOGRAMS.to_string());
    }
    if state.dropped_start_timestamps {
        return Some(SKIP_START_TIMESTAMPS.to_string());
    }
    engine.skip_reason(ev)
}

/// Functions whose presence disables the `@` variants (DSL.md §8.2 rule 2).
const AT_VARIANT_EXCLUDED_FUNCTIONS: [&str; 15] = [
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "time",
    "timestamp",
    "predict_linear",
    "start",
    "end",
    "range",
    "step",
];

/// Calls whose presence in the text disables the range-mode cross-check (§8.3 (b)).
const RANGE_CHECK_EXCLUDED_CALLS: [&str; 4] = ["start()", "end()", "range()", "step()"];

/// Distance either side of the evaluation time for the range-mode cross-check, and its step.
const RANGE_CHECK_WINDOW_MS: i64 = 60_000;

/// Evaluation time used for variants when the original time is 0.
const ZERO_TIME_VARIANT_MS: i64 = 1_000;
/// Multiplier for the variants before and after the original time.
const VARIANT_FACTOR: i64 = 10;
/// Divisor for the variant between 0 and the original time.
const VARIANT_DIVISOR: i64 = 5;

fn calls_excluded_function(expr: &str) -> bool {
    identifiers(expr).iter().any(|(id, end)| {
        AT_VARIANT_EXCLUDED_FUNCTIONS.contains(id) && expr[*end..].trim_start().starts_with('(')
    })
}

/// Evaluation times of the `@` variants (DSL.md §8.2 rule 3).
pub fn at_variant_times(t_ms: i64) -> Vec<i64> {
    if t_ms == 0 {
        return vec![-ZERO_TIME_VARIANT_MS, 0, ZERO_TIME_VARIANT_MS];
    }
    vec![
        t_ms.saturating_mul(-VARIANT_FACTOR),
        0,
        t_ms / VARIANT_DIVISOR,
        t_ms,
        t_ms.saturating_mul(VARIANT_FACTOR),
    ]
}

fn run_eval<E: TestEngine>(engine: &mut E, ev: &EvalCmd, opts: RunOptions) -> Result<(), String> {
    match ev.mode {
        EvalMode::Range {
            start_ms,
            end_ms,
            step_ms,
        } => {
            let out = engine.range(&ev.expr, start_ms, end_ms, step_ms);
            let grid = Grid {
                start_ms,
                end_ms,
                step_ms,
            };
            check_outcome(ev, &ev.expr, out, grid, ev.is_ordered())?;
            Ok(())
        }
        EvalMode::Instant { at_ms } => {
            let t = ev.instant_time_ms().unwrap_or(at_ms);
            run_instant_once(engine, ev, &ev.expr, t, opts)?;
            if opts.at_variants && !calls_excluded_function(&ev.expr) {
                if let Some(rewritten) = engine.pin_at_modifiers(&ev.expr, t) {
                    for vt in at_variant_times(t) {
                        run_instant_once(engine, ev, &rewritten, vt, opts).map_err(|e| {
                            format!("@ variant {rewritten:?} evaluated at t={vt}ms: {e}")
                        })?;
                    }
                }
            }
            Ok(())
        }
    }
}

/// Checks failure expectations, annotations and the result; returns the value when the
/// query succeeded.
fn check_outcome(
    ev: &EvalCmd,
    expr: &str,
    out: QueryOutcome,
    grid: Grid,
    ordered: bool,
) -> Result<Option<TestValue>, String> {
    match out.result {
        Err(e) => {
            if ev.expects_failure() {
                check_expected_failure(ev, expr, &e)?;
                Ok(None)
            } else {
                Err(format!(
                    "error evaluating query {expr:?} (line {}): {e}",
                    ev.line
                ))
            }
        }
        Ok(value) => {
            if ev.expects_failure() {
                return Err(format!(
                    "expected error evaluating query {expr:?} (line {}) but got none",
                    ev.line
                ));
            }
            check_annotations(ev, expr, &out.warnings, &out.infos)?;
            compare_result(ev, &value, ordered, grid)
                .map_err(|e| format!("error in eval {expr} (line {}): {e}", ev.line))?;
            Ok(Some(value))
        }
    }
}

fn run_instant_once<E: TestEngine>(
    engine: &mut E,
    ev: &EvalCmd,
    expr: &str,
    t: i64,
    opts: RunOptions,
) -> Result<(), String> {
    let out = engine.instant(expr, t);
    let grid = match ev.range_vector {
        Some(r) => Grid {
            start_ms: r.from_ms,
            end_ms: r.to_ms,
            step_ms: r.step_ms,
        },
        None => Grid {
            start_ms: t,
            end_ms: t,
            step_ms: 0,
        },
    };
    let value = check_outcome(ev, expr, out, grid, ev.is_ordered())?;
    let cross_check = opts.range_cross_check
        && ev.range_vector.is_none()
        && ev.expected_string.is_none()
        && !ev.expects_failure()
        && !RANGE_CHECK_EXCLUDED_CALLS.iter().any(|c| expr.contains(c));
    match value {
        Some(v) if cross_check => range_cross_check(engine, ev, expr, t, &v),
        _ => Ok(()),
    }
}

/// DSL.md §8.3: the instant query as a range query from t−1m to t+1m, step 1m; the points at
/// exactly t must match the instant expectations.
fn range_cross_check<E: TestEngine>(
    engine: &mut E,
    ev: &EvalCmd,
    expr: &str,
    t: i64,
    instant_value: &TestValue,
) -> Result<(), String> {
    let out = engine.range(
        expr,
        t.saturating_sub(RANGE_CHECK_WINDOW_MS),
        t.saturating_add(RANGE_CHECK_WINDOW_MS),
        RANGE_CHECK_WINDOW_MS,
    );
    let matrix = match out.result {
        Ok(TestValue::Matrix(m)) => m,
        Ok(other) => {
            return Err(format!(
                "range mode query for {expr:?} (line {}) returned a non-matrix result: {other}",
                ev.line
            ))
        }
        Err(e) => {
            return Err(format!(
                "error evaluating query {expr:?} in range mode (line {}): {e}",
                ev.line
            ))
        }
    };
    if ev.is_ordered() {
        return Ok(());
    }
    assert_matrix_sorted(&matrix).map_err(|e| format!("range mode (line {}): {e}", ev.line))?;
    let mut vector = Vec::new();
    for s in &matrix {
        if let Some((_, v)) = s.floats.iter().find(|(ts, _)| *ts == t) {
            vector.push(VectorSample {
                labels: s.labels.clone(),
                t_ms: t,
                value: SampleValue::Float(*v),
            });
        } else if let Some((_, h)) = s.histograms.iter().find(|(ts, _)| *ts == t) {
            vector.push(VectorSample {
                labels: s.labels.clone(),
                t_ms: t,
                value: SampleValue::Histogram(h.clone()),
            });
        }
    }
    let value = if matches!(instant_value, TestValue::Scalar { .. }) {
        match vector.first() {
            Some(VectorSample {
                value: SampleValue::Float(v),
                ..
            }) => TestValue::Scalar {
                t_ms: t,
                value: *v,
            },
            _ => {
                return Err(format!(
                    "range mode query for {expr:?} (line {}) has no float point at t={t} for the scalar result",
                    ev.line
                ))
            }
        }
    } else {
        TestValue::Vector(vector)
    };
    let grid = Grid {
        start_ms: t,
        end_ms: t,
        step_ms: 0,
    };
    compare_result(ev, &value, false, grid).map_err(|e| {
        format!(
            "error in eval {expr} (line {}) in range mode at t={t}: {e}",
            ev.line
        )
    })
}
