//! Comparison of query outcomes with an eval's expectations (DSL.md §7, §8.4): the float
//! tolerance (`almost.Equal` with ε = 1e-6, stale markers, NaN), scalar/string/vector/matrix
//! matching with ordering and sortedness rules, expected failures and annotation checks.
//! Failure texts follow Prometheus' runner (`expected … but got …`).
//!
//! Pure functions of (expectations, outcome); this module must never run queries.

use std::collections::HashSet;

use vigil_storage::Labels;

use super::expect::{ExpectedSeries, MessageMatch};
use super::histogram::{histograms_match, FloatHistogram};
use super::number::format_go_float;
use super::parse::EvalCmd;
use super::series::{is_stale_nan, SeqValue};
use super::value::{MatrixSeries, SampleValue, TestValue, VectorSample};

/// Relative tolerance for sample values.
pub const DEFAULT_EPSILON: f64 = 1e-6;
/// Smallest positive normal float64.
const MIN_NORMAL: f64 = 2.225_073_858_507_201_4e-308;

/// Float equality of the test runner (DSL.md §7.1).
pub fn almost_equal(actual: f64, expected: f64) -> bool {
    if is_stale_nan(actual) || is_stale_nan(expected) {
        return is_stale_nan(actual) && is_stale_nan(expected);
    }
    if actual.is_nan() && expected.is_nan() {
        return true;
    }
    if actual == expected {
        return true;
    }
    let diff = (actual - expected).abs();
    let sum = actual.abs() + expected.abs();
    if actual == 0.0 || expected == 0.0 || sum < MIN_NORMAL {
        return diff < DEFAULT_EPSILON * MIN_NORMAL;
    }
    diff / sum.min(f64::MAX) < DEFAULT_EPSILON
}

/// The time grid of a matrix expectation: value k belongs to `start + k*step`, up to `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
}

fn format_vals(vals: &[SeqValue]) -> String {
    let parts: Vec<String> = vals.iter().map(|v| v.to_string()).collect();
    format!("[{}]", parts.join(" "))
}

fn find<'a>(ev: &'a EvalCmd, labels: &Labels) -> Option<&'a ExpectedSeries> {
    ev.expected_series.iter().find(|s| &s.labels == labels)
}

/// Compares a successful result with the eval's expectations. `ordered` enables the
/// position check for vectors; `grid` places matrix values in time.
pub fn compare_result(
    ev: &EvalCmd,
    value: &TestValue,
    ordered: bool,
    grid: Grid,
) -> Result<(), String> {
    match value {
        TestValue::Matrix(m) => compare_matrix(ev, m, ordered, grid),
        TestValue::Vector(v) => compare_vector(ev, v, ordered),
        TestValue::Scalar { value, .. } => {
            let Some(expected) = ev.expected_scalar else {
                return Err(format!(
                    "expected vector or matrix result, but got {}",
                    format_go_float(*value)
                ));
            };
            if !almost_equal(*value, expected) {
                return Err(format!(
                    "expected scalar {} but got {}",
                    format_go_float(expected),
                    format_go_float(*value)
                ));
            }
            Ok(())
        }
        TestValue::String { value, .. } => {
            let expected = ev.expected_string.as_deref().unwrap_or("");
            if expected != value {
                return Err(format!(
                    "expected string \"{expected}\" but got \"{value}\""
                ));
            }
            Ok(())
        }
    }
}

fn compare_vector(ev: &EvalCmd, vector: &[VectorSample], ordered: bool) -> Result<(), String> {
    if ev.expected_scalar.is_some() {
        return Err(format!(
            "expected scalar result, but got vector {}",
            TestValue::Vector(vector.to_vec())
        ));
    }
    let mut seen: HashSet<&Labels> = HashSet::new();
    for (i, s) in vector.iter().enumerate() {
        let Some(exp) = find(ev, &s.labels) else {
            return Err(format!(
                "unexpected metric {} in result, has value {}",
                s.labels, s.value
            ));
        };
        if ordered && exp.pos != i + 1 {
            return Err(format!(
                "expected metric {} with {} at position {} but was at {}",
                s.labels,
                format_vals(&exp.values),
                exp.pos,
                i + 1
            ));
        }
        let Some(exp0) = exp.values.first() else {
            return Err(format!("no expected value given for metric {}", s.labels));
        };
        match (exp0, &s.value) {
            (SeqValue::Histogram(e), SampleValue::Histogram(a)) => {
                if !histograms_match(&e.histogram, a, e.hint_set) {
                    return Err(format!(
                        "expected {} for {} but got {}",
                        e.histogram.test_expression(),
                        s.labels,
                        a.test_expression()
                    ));
                }
            }
            (SeqValue::Histogram(e), SampleValue::Float(a)) => {
                return Err(format!(
                    "expected histogram {} for {} but got float value {}",
                    e.histogram.test_expression(),
                    s.labels,
                    format_go_float(*a)
                ));
            }
            (e, SampleValue::Histogram(a)) => {
                return Err(format!(
                    "expected float value {} for {} but got histogram {}",
                    e,
                    s.labels,
                    a.test_expression()
                ));
            }
            (SeqValue::Float(e), SampleValue::Float(a)) => {
                if !almost_equal(*a, *e) {
                    return Err(format!(
                        "expected {} for {} but got {}",
                        format_go_float(*e),
                        s.labels,
                        format_go_float(*a)
                    ));
                }
            }
            (SeqValue::Omitted, SampleValue::Float(a)) => {
                return Err(format!(
                    "expected no value for {} but got {}",
                    s.labels,
                    format_go_float(*a)
                ));
            }
        }
        seen.insert(&s.labels);
    }
    for exp in &ev.expected_series {
        if !seen.contains(&exp.labels) {
            return Err(format!(
                "expected metric {} with {} not found",
                exp.labels,
                format_vals(&exp.values)
            ));
        }
    }
    Ok(())
}

/// Checks that matrix series are sorted by label set (Prometheus' `labels.Compare`).
pub fn assert_matrix_sorted(m: &[MatrixSeries]) -> Result<(), String> {
    for (i, w) in m.windows(2).enumerate() {
        if w[0].labels > w[1].labels {
            return Err(format!(
                "matrix results should always be sorted by labels, but matrix is not sorted: series at index {} with labels {} sorts before series at index {} with labels {}",
                i + 1,
                w[1].labels,
                i,
                w[0].labels
            ));
        }
    }
    Ok(())
}

fn compare_matrix(
    ev: &EvalCmd,
    matrix: &[MatrixSeries],
    ordered: bool,
    grid: Grid,
) -> Result<(), String> {
    if ordered {
        return Err("expected ordered result, but query returned a matrix".to_string());
    }
    if ev.expected_scalar.is_some() {
        return Err(format!(
            "expected scalar result, but got matrix {}",
            TestValue::Matrix(matrix.to_vec())
        ));
    }
    assert_matrix_sorted(matrix)?;
    let mut seen: HashSet<&Labels> = HashSet::new();
    for s in matrix {
        let Some(exp) = find(ev, &s.labels) else {
            return Err(format!("unexpected metric {} in result, has {s}", s.labels));
        };
        seen.insert(&s.labels);
        let mut exp_floats: Vec<(i64, f64)> = Vec::new();
        let mut exp_hists: Vec<(i64, &FloatHistogram, bool)> = Vec::new();
        for (k, v) in exp.values.iter().enumerate() {
            let t = i64::try_from(k)
                .ok()
                .and_then(|k| k.checked_mul(grid.step_ms))
                .and_then(|o| o.checked_add(grid.start_ms))
                .filter(|t| *t <= grid.end_ms);
            let Some(t) = t else {
                return Err(format!(
                    "expected {} points for {}, but query time range cannot return this many points",
                    exp.values.len(),
                    exp.labels
                ));
            };
            match v {
                SeqValue::Histogram(h) => exp_hists.push((t, &h.histogram, h.hint_set)),
                SeqValue::Float(f) => exp_floats.push((t, *f)),
                SeqValue::Omitted => {}
            }
        }
        if exp_floats.len() != s.floats.len() || exp_hists.len() != s.histograms.len() {
            return Err(format!(
                "expected {} float points and {} histogram points for {}, but got {s}",
                exp_floats.len(),
                exp_hists.len(),
                exp.labels
            ));
        }
        for (i, ((et, ev_), (at, av))) in exp_floats.iter().zip(&s.floats).enumerate() {
            if et != at {
                return Err(format!(
                    "expected float value at index {i} for {} to have timestamp {et}, but it had timestamp {at} (result has {s})",
                    exp.labels
                ));
            }
            if !almost_equal(*av, *ev_) {
                return Err(format!(
                    "expected float value at index {i} (t={at}) for {} to be {}, but got {} (result has {s})",
                    exp.labels,
                    format_go_float(*ev_),
                    format_go_float(*av)
                ));
            }
        }
        for (i, ((et, eh, hint_set), (at, ah))) in exp_hists.iter().zip(&s.histograms).enumerate() {
            if et != at {
                return Err(format!(
                    "expected histogram value at index {i} for {} to have timestamp {et}, but it had timestamp {at} (result has {s})",
                    exp.labels
                ));
            }
            if !histograms_match(eh, ah, *hint_set) {
                return Err(format!(
                    "expected histogram value at index {i} (t={at}) for {} to be {}, but got {} (result has {s})",
                    exp.labels,
                    eh.test_expression(),
                    ah.test_expression()
                ));
            }
        }
    }
    for exp in &ev.expected_series {
        if !seen.contains(&exp.labels) {
            return Err(format!("expected metric {} not found", exp.labels));
        }
    }
    Ok(())
}

/// Checks an error against the eval's expected failure (DSL.md §7.4). `Ok` when the error is
/// the expected one.
pub fn check_expected_failure(ev: &EvalCmd, expr: &str, error: &str) -> Result<(), String> {
    if let Some(msg) = &ev.expected_fail_message {
        if msg != error {
            return Err(format!(
                "expected error {msg:?} evaluating query {expr:?} (line {}), but got: {error}",
                ev.line
            ));
        }
    }
    if let Some(re) = &ev.expected_fail_regexp {
        if !re.is_match(error) {
            return Err(format!(
                "expected error matching pattern {:?} evaluating query {expr:?} (line {}), but got: {error}",
                re.as_str(),
                ev.line
            ));
        }
    }
    if let Some(m) = &ev.expect.fail {
        if !m.matches(error) {
            return Err(format!(
                "expected error matching {} {:?} evaluating query {expr:?} (line {}), but got: {error}",
                m.kind(),
                m.text(),
                ev.line
            ));
        }
    }
    Ok(())
}

fn check_annotations_of_type(
    expr: &str,
    line: usize,
    expected: &[MessageMatch],
    actual: &[String],
    kind: &str,
) -> Result<(), String> {
    if expected.is_empty() {
        return Ok(());
    }
    if actual.is_empty() {
        return Err(format!(
            "expected {kind} annotations but none were found for query {expr:?} (line {line})"
        ));
    }
    for e in expected {
        if !actual.iter().any(|a| e.matches_annotation(a)) {
            return Err(format!(
                "expected {kind} annotation matching {} {:?} but no matching annotation was found for query {expr:?} (line {line}), found: {actual:?}",
                e.kind(),
                e.text()
            ));
        }
    }
    for a in actual {
        if !expected.iter().any(|e| e.matches_annotation(a)) {
            return Err(format!(
                "unexpected {kind} annotation {a:?} found for query {expr} (line {line})"
            ));
        }
    }
    Ok(())
}

/// Checks warnings and infos against the eval's expectations (DSL.md §8.4).
pub fn check_annotations(
    ev: &EvalCmd,
    expr: &str,
    warnings: &[String],
    infos: &[String],
) -> Result<(), String> {
    if ev.legacy.warn && warnings.is_empty() {
        return Err(format!(
            "expected warnings evaluating query {expr:?} (line {}) but got none",
            ev.line
        ));
    }
    if ev.legacy.info && infos.is_empty() {
        return Err(format!(
            "expected info annotations evaluating query {expr:?} (line {}) but got none",
            ev.line
        ));
    }
    check_annotations_of_type(expr, ev.line, &ev.expect.warn, warnings, "warn")?;
    check_annotations_of_type(expr, ev.line, &ev.expect.info, infos, "info")?;
    if ev.expect.no_warn && !warnings.is_empty() {
        return Err(format!(
            "unexpected warning annotations evaluating query {expr:?} (line {}): {warnings:?}",
            ev.line
        ));
    }
    if ev.expect.no_info && !infos.is_empty() {
        return Err(format!(
            "unexpected info annotations evaluating query {expr:?} (line {}): {infos:?}",
            ev.line
        ));
    }
    Ok(())
}
