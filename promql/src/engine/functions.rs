//! Function dispatch: maps every `FunctionId` of the function table to its evaluation —
//! pointwise math on instant vectors, time and date functions, label manipulation,
//! sorting, `absent`, `scalar`/`vector` and classic `histogram_quantile`; range-vector
//! functions are handed to `range_fn`. This module handles arguments, labels and name
//! dropping. It never reads storage except through selectors.

use std::collections::HashMap;
use std::sync::Arc;

use vigil_storage::labels::METRIC_NAME;
use vigil_storage::{Labels, LabelsBuilder, MatchType};

use super::annotations::Annotation;
use super::error::{exec_err, Result};
use super::eval::{empty_metric, Evaluator};
use super::histogram::{classic_histogram_fn, BucketFn};
use super::selector::SelectorOutput;
use super::value::{ESeries, EVal, Point};
use crate::functions::FunctionId;
use crate::parser::ast::{Call, Expr};

const MS_PER_SECOND: f64 = 1000.0;

/// Go's `math.Max` (NaN wins).
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min` (NaN wins).
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Civil date (year, month 1-12, day 1-31) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A date part of a Unix time in seconds (UTC).
fn date_part(id: FunctionId, secs: f64) -> f64 {
    if secs.is_nan() || secs.is_infinite() {
        return secs;
    }
    let s = secs as i64;
    let days = s.div_euclid(86_400);
    let sod = s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    match id {
        FunctionId::DayOfMonth => d as f64,
        FunctionId::DayOfWeek => (days + 4).rem_euclid(7) as f64,
        FunctionId::DayOfYear => {
            let mut doy = d;
            for mm in 1..m {
                doy += days_in_month(y, mm);
            }
            doy as f64
        }
        FunctionId::DaysInMonth => days_in_month(y, m) as f64,
        FunctionId::Hour => (sod / 3600) as f64,
        FunctionId::Minute => ((sod % 3600) / 60) as f64,
        FunctionId::Month => m as f64,
        FunctionId::Year => y as f64,
        _ => f64::NAN,
    }
}

/// Natural ordering of label values (digit runs compared numerically).
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let na = a[si..i].trim_start_matches('0');
            let nb = b[sj..j].trim_start_matches('0');
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            if ab[i] != bb[j] {
                return ab[i].cmp(&bb[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j))
}

/// Labels of `absent()`'s output, from the equality matchers of a selector argument.
fn absent_labels(e: &Expr) -> Labels {
    let matchers = match e {
        Expr::VectorSelector(v) => &v.matchers,
        Expr::MatrixSelector(m) => &m.vector_selector.matchers,
        _ => return Labels::empty(),
    };
    let mut b = LabelsBuilder::new();
    let mut has: Vec<&str> = Vec::new();
    for m in matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.match_type == MatchType::Equal && !has.contains(&m.name.as_str()) {
            b.set(&m.name, &m.value);
            has.push(&m.name);
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}

impl Evaluator<'_, '_> {
    pub(super) fn scalar_arg(&self, c: &Call, i: usize) -> Result<Vec<f64>> {
        match c.args.get(i) {
            Some(e) => self.eval_scalar(e),
            None => exec_err(format!("missing argument {i} of {}", c.func.name)),
        }
    }

    fn string_arg(&self, c: &Call, i: usize) -> Result<String> {
        match c.args.get(i) {
            Some(e) => self.eval_string(e),
            None => exec_err(format!("missing argument {i} of {}", c.func.name)),
        }
    }

    fn vector_arg(&self, c: &Call, i: usize) -> Result<Vec<ESeries>> {
        match c.args.get(i) {
            Some(e) => self.eval_vector(e),
            None => exec_err(format!("missing argument {i} of {}", c.func.name)),
        }
    }

    fn step_index(&self, t: i64) -> usize {
        ((t - self.start) / self.interval.max(1)) as usize
    }

    /// Applies `f(value, step)` to every point; `None` drops the point. Drops the name.
    fn pointwise(
        &self,
        mut m: Vec<ESeries>,
        mut f: impl FnMut(f64, usize) -> Option<f64>,
    ) -> Vec<ESeries> {
        for s in &mut m {
            s.drop_name = true;
            let start = self.start;
            let iv = self.interval.max(1);
            s.points
                .retain_mut(|p| match f(p.v, ((p.t - start) / iv) as usize) {
                    Some(v) => {
                        p.v = v;
                        true
                    }
                    None => false,
                });
        }
        m.retain(|s| !s.points.is_empty());
        m
    }

    pub fn eval_call(&self, c: &Call) -> Result<EVal> {
        use FunctionId as F;
        let n = self.steps();
        let id = c.func.id;
        let steps_secs = || -> Vec<f64> {
            (0..n)
                .map(|i| self.step_ts(i) as f64 / MS_PER_SECOND)
                .collect()
        };
        let simple = |f: fn(f64) -> f64| -> Result<EVal> {
            let m = self.vector_arg(c, 0)?;
            Ok(EVal::Vector(self.pointwise(m, |v, _| Some(f(v)))))
        };
        match id {
            F::Time => Ok(EVal::Scalar(steps_secs())),
            F::Pi => Ok(EVal::Scalar(vec![std::f64::consts::PI; n])),
            F::Start => Ok(EVal::Scalar(vec![
                self.shared.query_start_ms as f64
                    / MS_PER_SECOND;
                n
            ])),
            F::End => Ok(EVal::Scalar(vec![
                self.shared.query_end_ms as f64
                    / MS_PER_SECOND;
                n
            ])),
            F::Range => Ok(EVal::Scalar(vec![
                (self.shared.query_end_ms - self.shared.query_start_ms)
                    as f64
                    / MS_PER_SECOND;
                n
            ])),
            F::Step => Ok(EVal::Scalar(vec![
                self.shared.query_step_ms as f64
                    / MS_PER_SECOND;
                n
            ])),
            F::MinOf | F::MaxOf => {
                let a = self.scalar_arg(c, 0)?;
                let b = self.scalar_arg(c, 1)?;
                Ok(EVal::Scalar(
                    a.iter()
                        .zip(&b)
                        .map(|(x, y)| {
                            if id == F::MinOf {
                                go_min(*x, *y)
                            } else {
                                go_max(*x, *y)
                            }
                        })
                        .collect(),
                ))
            }
            F::Vector => {
                let s = self.scalar_arg(c, 0)?;
                let points = s
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Point {
                        t: self.step_ts(i),
                        v: *v,
                    })
                    .collect();
                Ok(EVal::Vector(vec![ESeries {
                    metric: empty_metric(),
                    points,
                    drop_name: false,
                }]))
            }
            F::Scalar => {
                let m = self.vector_arg(c, 0)?;
                let mut out = vec![f64::NAN; n];
                let mut counts = vec![0usize; n];
                for s in &m {
                    for p in &s.points {
                        let i = self.step_index(p.t);
                        if let Some(o) = out.get_mut(i) {
                            *o = p.v;
                            counts[i] += 1;
                        }
                    }
                }
                for (o, c) in out.iter_mut().zip(counts) {
                    if c != 1 {
                        *o = f64::NAN;
                    }
                }
                Ok(EVal::Scalar(out))
            }
            F::Abs => simple(f64::abs),
            F::Ceil => simple(f64::ceil),
            F::Floor => simple(f64::floor),
            F::Exp => simple(f64::exp),
            F::Sqrt => simple(f64::sqrt),
            F::Ln => simple(f64::ln),
            F::Log2 => simple(f64::log2),
            F::Log10 => simple(f64::log10),
            F::Sin => simple(f64::sin),
            F::Cos => simple(f64::cos),
            F::Tan => simple(f64::tan),
            F::Asin => simple(f64::asin),
            F::Acos => simple(f64::acos),
            F::Atan => simple(f64::atan),
            F::Sinh => simple(f64::sinh),
            F::Cosh => simple(f64::cosh),
            F::Tanh => simple(f64::tanh),
            F::Asinh => simple(f64::asinh),
            F::Acosh => simple(f64::acosh),
            F::Atanh => simple(f64::atanh),
            F::Deg => simple(|v| v * 180.0 / std::f64::consts::PI),
            F::Rad => simple(|v| v * std::f64::consts::PI / 180.0),
            F::Sgn => simple(|v| {
                if v < 0.0 {
                    -1.0
                } else if v > 0.0 {
                    1.0
                } else {
                    v
                }
            }),
            F::Round => {
                let to = if c.args.len() > 1 {
                    self.scalar_arg(c, 1)?
                } else {
                    vec![1.0; n]
                };
                let m = self.vector_arg(c, 0)?;
                Ok(EVal::Vector(self.pointwise(m, |v, i| {
                    let inv = 1.0 / to.get(i).copied().unwrap_or(1.0);
                    Some((v * inv + 0.5).floor() / inv)
                })))
            }
            F::Clamp => {
                let m = self.vector_arg(c, 0)?;
                let lo = self.scalar_arg(c, 1)?;
                let hi = self.scalar_arg(c, 2)?;
                Ok(EVal::Vector(self.pointwise(m, |v, i| {
                    let (l, h) = (lo[i], hi[i]);
                    if h < l {
                        None
                    } else {
                        Some(go_max(l, go_min(h, v)))
                    }
                })))
            }
            F::ClampMin | F::ClampMax => {
                let m = self.vector_arg(c, 0)?;
                let b = self.scalar_arg(c, 1)?;
                Ok(EVal::Vector(self.pointwise(m, |v, i| {
                    Some(if id == F::ClampMin {
                        go_max(v, b[i])
                    } else {
                        go_min(v, b[i])
                    })
                })))
            }
            F::DayOfMonth
            | F::DayOfWeek
            | F::DayOfYear
            | F::DaysInMonth
            | F::Hour
            | F::Minute
            | F::Month
            | F::Year => {
                if c.args.is_empty() {
                    let points = steps_secs()
                        .into_iter()
                        .enumerate()
                        .map(|(i, s)| Point {
                            t: self.step_ts(i),
                            v: date_part(id, s),
                        })
                        .collect();
                    return Ok(EVal::Vector(vec![ESeries {
                        metric: empty_metric(),
                        points,
                        drop_name: false,
                    }]));
                }
                let m = self.vector_arg(c, 0)?;
                Ok(EVal::Vector(
                    self.pointwise(m, |v, _| Some(date_part(id, v))),
                ))
            }
            F::Timestamp => {
                let arg = c.args.first().map(|a| a.unwrap_parens());
                let mut m = match arg {
                    Some(Expr::VectorSelector(vs)) => {
                        self.eval_vector_selector(vs, SelectorOutput::Timestamp)?
                    }
                    _ => {
                        let mut m = self.vector_arg(c, 0)?;
                        for s in &mut m {
                            for p in &mut s.points {
                                p.v = p.t as f64 / MS_PER_SECOND;
                            }
                        }
                        m
                    }
                };
                for s in &mut m {
                    s.drop_name = true;
                }
                Ok(EVal::Vector(m))
            }
            F::Sort | F::SortDesc | F::SortByLabel | F::SortByLabelDesc => self.eval_sort(c),
            F::LabelReplace | F::LabelJoin => self.eval_label_fn(c),
            F::Absent => {
                let m = self.vector_arg(c, 0)?;
                let mut present = vec![false; n];
                for s in &m {
                    for p in &s.points {
                        if let Some(x) = present.get_mut(self.step_index(p.t)) {
                            *x = true;
                        }
                    }
                }
                Ok(EVal::Vector(self.absent_series(c, &present)))
            }
            F::HistogramQuantile => {
                let q = self.scalar_arg(c, 0)?;
                let m = self.vector_arg(c, 1)?;
                classic_histogram_fn(self, c, &c.args[1], BucketFn::Quantile { q: &q }, &m)
                    .map(EVal::Vector)
            }
            F::HistogramQuantiles => {
                let m = self.vector_arg(c, 0)?;
                let label = self.string_arg(c, 1)?;
                let mut qs = Vec::new();
                for i in 2..c.args.len() {
                    qs.push(self.scalar_arg(c, i)?);
                }
                let f = BucketFn::Quantiles {
                    label: &label,
                    qs: &qs,
                };
                classic_histogram_fn(self, c, &c.args[0], f, &m).map(EVal::Vector)
            }
            F::HistogramFraction => {
                let lower = self.scalar_arg(c, 0)?;
                let upper = self.scalar_arg(c, 1)?;
                let m = self.vector_arg(c, 2)?;
                let f = BucketFn::Fraction {
                    lower: &lower,
                    upper: &upper,
                };
                classic_histogram_fn(self, c, &c.args[2], f, &m).map(EVal::Vector)
            }
            F::HistogramAvg
            | F::HistogramCount
            | F::HistogramStddev
            | F::HistogramStdvar
            | F::HistogramSum => {
                // Only native histograms feed these; float samples are ignored.
                for a in &c.args {
                    self.eval(a)?;
                }
                Ok(EVal::Vector(Vec::new()))
            }
            F::Info => self.eval_info(c),
            F::StartTimestamp => {
                // Only a selected sample has a start timestamp: any other argument is
                // evaluated (for its errors) and yields nothing, as in Prometheus.
                let arg = c.args.first().map(|a| match a {
                    Expr::StepInvariant(s) => &*s.expr,
                    a => a,
                });
                let mut m = match arg {
                    Some(Expr::VectorSelector(vs)) => {
                        self.eval_vector_selector(vs, SelectorOutput::StartTimestamp)?
                    }
                    _ => {
                        self.vector_arg(c, 0)?;
                        Vec::new()
                    }
                };
                for s in &mut m {
                    s.drop_name = true;
                }
                Ok(EVal::Vector(m))
            }
            _ => self.eval_range_function(c),
        }
    }

    /// The `absent`/`absent_over_time` output: 1 at every step where nothing was present.
    pub(super) fn absent_series(&self, c: &Call, present: &[bool]) -> Vec<ESeries> {
        let points: Vec<Point> = present
            .iter()
            .enumerate()
            .filter(|(_, p)| !**p)
            .map(|(i, _)| Point {
                t: self.step_ts(i),
                v: 1.0,
            })
            .collect();
        if points.is_empty() {
            return Vec::new();
        }
        let labels = c.args.first().map(absent_labels).unwrap_or_default();
        vec![ESeries {
            metric: Arc::new(labels),
            points,
            drop_name: false,
        }]
    }

    fn eval_sort(&self, c: &Call) -> Result<EVal> {
        use FunctionId as F;
        let mut m = self.vector_arg(c, 0)?;
        let mut label_names = Vec::new();
        for i in 1..c.args.len() {
            label_names.push(self.string_arg(c, i)?);
        }
        if !self.is_instant() {
            if matches!(
                c.func.id,
                F::Sort | F::SortDesc | F::SortByLabel | F::SortByLabelDesc
            ) {
                self.annotate().add(Annotation::warning(
                    "sort is ineffective for range queries since results are always ordered by labels",
                    c.pos,
                ));
            }
            return Ok(EVal::Vector(m));
        }
        let val = |s: &ESeries| s.points.first().map(|p| p.v).unwrap_or(f64::NAN);
        match c.func.id {
            F::Sort | F::SortDesc => {
                let desc = c.func.id == F::SortDesc;
                m.sort_by(|a, b| {
                    let (x, y) = (val(a), val(b));
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ if desc => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
                        _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                    }
                });
            }
            _ => {
                let desc = c.func.id == F::SortByLabelDesc;
                m.sort_by(|a, b| {
                    for l in &label_names {
                        let o = natural_cmp(
                            a.metric.get(l).unwrap_or(""),
                            b.metric.get(l).unwrap_or(""),
                        );
                        if o != std::cmp::Ordering::Equal {
                            return if desc { o.reverse() } else { o };
                        }
                    }
                    let o = a.metric.cmp(&b.metric);
                    if desc {
                        o.reverse()
                    } else {
                        o
                    }
                });
            }
        }
        Ok(EVal::Vector(m))
    }

    fn eval_label_fn(&self, c: &Call) -> Result<EVal> {
        let m = self.vector_arg(c, 0)?;
        let dst = self.string_arg(c, 1)?;
        let mut out: Vec<ESeries> = Vec::with_capacity(m.len());
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let relabel: Box<dyn Fn(&Labels) -> Labels> = if c.func.id == FunctionId::LabelReplace {
            let repl = self.string_arg(c, 2)?;
            let src = self.string_arg(c, 3)?;
            let re_s = self.string_arg(c, 4)?;
            let re = regex::Regex::new(&format!("^(?s:{re_s})$")).map_err(|e| {
                super::error::Error::Execution(format!(
                    "invalid regular expression in label_replace(): {re_s}: {e}"
                ))
            })?;
            if !is_valid_label_name(&dst) {
                return exec_err(format!(
                    "invalid destination label name in label_replace(): {dst}"
                ));
            }
            let dst = dst.clone();
            Box::new(move |l: &Labels| {
                let v = l.get(&src).unwrap_or("");
                match re.captures(v) {
                    Some(caps) => {
                        let mut res = String::new();
                        caps.expand(&repl, &mut res);
                        l.with(&dst, &res)
                    }
                    None => l.clone(),
                }
            })
        } else {
            let sep = self.string_arg(c, 2)?;
            let mut srcs = Vec::new();
            for i in 3..c.args.len() {
                srcs.push(self.string_arg(c, i)?);
            }
            if !is_valid_label_name(&dst) {
                return exec_err(format!(
                    "invalid destination label name in label_join(): {dst}"
                ));
            }
            let dst = dst.clone();
            Box::new(move |l: &Labels| {
                let joined: Vec<&str> = srcs.iter().map(|s| l.get(s).unwrap_or("")).collect();
                l.with(&dst, &joined.join(&sep))
            })
        };
        for s in m {
            let labels = relabel(&s.metric);
            let drop_name = if dst == METRIC_NAME {
                false
            } else {
                s.drop_name
            };
            match index.get(&labels) {
                Some(&i) => {
                    let t = &mut out[i];
                    t.points.extend(s.points);
                    t.points.sort_by_key(|p| p.t);
                    if t.points.windows(2).any(|w| w[0].t == w[1].t) {
                        return exec_err("vector cannot contain metrics with the same labelset");
                    }
                }
                None => {
                    index.insert(labels.clone(), out.len());
                    out.push(ESeries {
                        metric: Arc::new(labels),
                        points: s.points,
                        drop_name,
                    });
                }
            }
        }
        Ok(EVal::Vector(out))
    }
}

/// Whether `name` is a valid (UTF-8) label name. The parser turns byte escapes that are not
/// valid UTF-8 (`"\xff"`) into U+FFFD, so that character stands for the invalid bytes
/// Prometheus would reject here (see docs/promql-compat.md).
fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(char::REPLACEMENT_CHARACTER)
}
