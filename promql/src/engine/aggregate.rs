//! Aggregation operators (`sum avg count min max group stddev stdvar topk bottomk quantile
//! count_values limitk limit_ratio`) with `by`/`without` grouping. Sums and means use
//! Kahan-Neumaier compensation and switch to an incremental mean on overflow, exactly like
//! Prometheus 3, so results match to the bit. It never reads storage.

use std::collections::HashMap;
use std::sync::Arc;

use vigil_storage::{Labels, LabelsBuilder};

use super::annotations::Annotation;
use super::error::{exec_err, Result};
use super::eval::Evaluator;
use super::group_acc::{grouping_labels, is_cell_op, StepGroups};
use super::range_fn::is_windowed_range_function;
use super::value::{total_points, ESample, ESeries, EVal, Metric};
use crate::kernels::stats::quantile;
use crate::parser::ast::{AggregateExpr, AggregateOp, Expr};

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub(crate) fn format_float_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

/// Per-step state of a `quantile` group.
#[derive(Clone, Default)]
struct QuantileGroup {
    seen: bool,
    values: Vec<f64>,
    drop_name: bool,
}

/// `e` without enclosing parentheses (but not through step-invariant wrappers, which
/// change how an expression is evaluated).
fn strip_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip_parens(&p.expr),
        e => e,
    }
}

/// A valid label name: `[a-zA-Z_][a-zA-Z0-9_]*` or any valid UTF-8 (Prometheus 3 accepts
/// UTF-8 names); only an empty name is invalid here.
fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
}

/// Whether `a` ranks before `b` in a topk heap ordering (NaN is always the worst).
fn worse_topk(a: f64, b: f64) -> bool {
    a.is_nan() || a < b
}
fn worse_bottomk(a: f64, b: f64) -> bool {
    a.is_nan() || a > b
}

impl Evaluator<'_, '_> {
    pub fn eval_aggregate(&self, a: &AggregateExpr) -> Result<EVal> {
        // Parameters first (Prometheus evaluates the parameter before the input).
        let mut param_f: Vec<f64> = Vec::new();
        let mut param_s = String::new();
        if let Some(p) = &a.param {
            if a.op == AggregateOp::CountValues {
                param_s = self.eval_string(p)?;
                if !valid_label_name(&param_s) {
                    return exec_err(format!("invalid label name {param_s:?}"));
                }
            } else {
                param_f = self.eval_scalar(p)?;
            }
        }
        let mut grouping: Vec<String> = a.grouping.clone();
        grouping.sort();
        if is_cell_op(a.op) {
            if let Expr::Call(c) = strip_parens(&a.expr) {
                if is_windowed_range_function(c.func.id) {
                    // `sum by (job) (rate(x[5m]))`: fold each series' function results
                    // into the groups as soon as they are computed.
                    return self.aggregate_range_call(a, &grouping, c).map(EVal::Vector);
                }
            }
        }
        let input = self.eval_vector(&a.expr)?;
        if a.op == AggregateOp::Quantile {
            for q in &param_f {
                if !(0.0..=1.0).contains(q) {
                    let pos = a.param.as_ref().map(|p| p.pos()).unwrap_or(a.pos);
                    self.annotate().add(Annotation::warning(
                        format!(
                            "quantile value should be between 0 and 1, got {}",
                            crate::kernels::format::format_go_float(*q)
                        ),
                        pos,
                    ));
                }
            }
        }
        match a.op {
            AggregateOp::Topk
            | AggregateOp::Bottomk
            | AggregateOp::Limitk
            | AggregateOp::LimitRatio => self
                .aggregate_k(a, &grouping, &input, &param_f)
                .map(EVal::Vector),
            AggregateOp::CountValues => self
                .count_values(a, &grouping, &input, &param_s)
                .map(EVal::Vector),
            _ => self
                .aggregate_simple(a, &grouping, &input, &param_f)
                .map(EVal::Vector),
        }
    }

    fn group_index(
        &self,
        a: &AggregateExpr,
        grouping: &[String],
        input: &[ESeries],
    ) -> (Vec<usize>, Vec<Metric>) {
        let mut by_key: HashMap<Labels, usize> = HashMap::new();
        let mut metrics = Vec::new();
        let idx = input
            .iter()
            .map(|s| {
                let g = grouping_labels(&s.metric, grouping, a.without);
                let n = by_key.len();
                *by_key.entry(g.clone()).or_insert_with(|| {
                    metrics.push(Arc::new(g));
                    n
                })
            })
            .collect();
        (idx, metrics)
    }

    /// Aggregates range function call `c` (any but `absent_over_time`) series by series,
    /// without materialising the function's output (see [`StepGroups`]).
    fn aggregate_range_call(
        &self,
        a: &AggregateExpr,
        grouping: &[String],
        c: &crate::parser::ast::Call,
    ) -> Result<Vec<ESeries>> {
        let mut groups = StepGroups::new(a.op, grouping, a.without, self.steps());
        self.stream_range_function(c, |metric, drop_name, values| {
            let g = groups.group_of(metric.labels());
            groups.add_series(g, values, drop_name);
            Ok(())
        })?;
        let out = groups.finish(|step| self.step_ts(step));
        if self.steps() > 1 {
            self.check_samples(total_points(&out))?;
        }
        Ok(out)
    }

    fn aggregate_simple(
        &self,
        a: &AggregateExpr,
        grouping: &[String],
        input: &[ESeries],
        param: &[f64],
    ) -> Result<Vec<ESeries>> {
        if a.op == AggregateOp::Quantile {
            return self.aggregate_quantile(a, grouping, input, param);
        }
        let n = self.steps();
        let interval = self.interval.max(1);
        let mut groups = StepGroups::new(a.op, grouping, a.without, n);
        for s in input {
            self.check_interrupt()?;
            let g = groups.group_of(&s.metric);
            // As the step-by-step evaluation: points on the grid, the first one per step.
            let mut last_step = None;
            for p in &s.points {
                let d = p.t - self.start;
                if d < 0 || d % interval != 0 {
                    continue;
                }
                let step = (d / interval) as usize;
                if step >= n || last_step == Some(step) {
                    continue;
                }
                last_step = Some(step);
                groups.add(g, step, p.v, s.drop_name);
            }
        }
        let out = groups.finish(|step| self.step_ts(step));
        if n > 1 {
            self.check_samples(total_points(&out))?;
        }
        Ok(out)
    }

    fn aggregate_quantile(
        &self,
        a: &AggregateExpr,
        grouping: &[String],
        input: &[ESeries],
        param: &[f64],
    ) -> Result<Vec<ESeries>> {
        let (gidx, metrics) = self.group_index(a, grouping, input);
        let mut groups: Vec<QuantileGroup> = vec![QuantileGroup::default(); metrics.len()];
        self.range_eval(&[input], |step, _, v| {
            for g in groups.iter_mut() {
                g.seen = false;
                g.values.clear();
            }
            for s in &v[0] {
                let g = &mut groups[gidx[s.idx]];
                let dn = input[s.idx].drop_name;
                if !g.seen {
                    g.seen = true;
                    g.drop_name = dn;
                } else if dn {
                    g.drop_name = true;
                }
                g.values.push(s.v);
            }
            let mut out = Vec::new();
            for (gi, g) in groups.iter_mut().enumerate() {
                if !g.seen {
                    continue;
                }
                let q = param.get(step).copied().unwrap_or(f64::NAN);
                out.push(ESample {
                    metric: metrics[gi].clone(),
                    v: quantile(q, &mut g.values),
                    drop_name: g.drop_name,
                });
            }
            Ok(out)
        })
    }

    fn aggregate_k(
        &self,
        a: &AggregateExpr,
        grouping: &[String],
        input: &[ESeries],
        param: &[f64],
    ) -> Result<Vec<ESeries>> {
        let op = a.op;
        let max_p = param.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let min_p = param.iter().copied().fold(f64::INFINITY, f64::min);
        match op {
            AggregateOp::LimitRatio => {
                if max_p == 0.0 && min_p == 0.0 {
                    return Ok(Vec::new());
                }
                if param.iter().any(|p| p.is_nan()) {
                    return exec_err("Ratio value is NaN");
                }
                if max_p > 1.0 || min_p < -1.0 {
                    let bad = if max_p > 1.0 { max_p } else { min_p };
                    let to = if max_p > 1.0 { 1.0 } else { -1.0 };
                    let pos = a.param.as_ref().map(|p| p.pos()).unwrap_or(a.pos);
                    self.annotate().add(Annotation::warning(
                        format!(
                            "ratio value should be between -1 and 1, got {}, capping to {}",
                            crate::kernels::format::format_go_float(bad),
                            crate::kernels::format::format_go_float(to)
                        ),
                        pos,
                    ));
                }
            }
            _ => {
                if param.iter().any(|p| p.is_nan()) {
                    return exec_err("Parameter value is NaN");
                }
                if max_p < 1.0 {
                    return Ok(Vec::new());
                }
                if min_p <= i64::MIN as f64 {
                    return exec_err(format!("Scalar value {min_p} underflows int64"));
                }
                if max_p >= i64::MAX as f64 {
                    return exec_err(format!("Scalar value {max_p} overflows int64"));
                }
            }
        }
        let (gidx, metrics) = self.group_index(a, grouping, input);
        let ngroups = metrics.len();
        let mut heaps: Vec<Vec<(usize, f64)>> = vec![Vec::new(); ngroups];
        let mut seen: Vec<bool> = vec![false; ngroups];
        self.range_eval(&[input], |step, _, v| {
            let p = param.get(step).copied().unwrap_or(f64::NAN);
            for h in heaps.iter_mut() {
                h.clear();
            }
            seen.iter_mut().for_each(|s| *s = false);
            let k = (p as i64).min(input.len() as i64);
            let r = p.clamp(-1.0, 1.0);
            match op {
                AggregateOp::LimitRatio if p == 0.0 => return Ok(Vec::new()),
                AggregateOp::LimitRatio => {}
                _ if k < 1 => return Ok(Vec::new()),
                _ => {}
            }
            let mut order: Vec<usize> = Vec::new();
            for s in &v[0] {
                let g = gidx[s.idx];
                if !seen[g] {
                    seen[g] = true;
                    order.push(g);
                }
                let h = &mut heaps[g];
                match op {
                    AggregateOp::Topk | AggregateOp::Bottomk => {
                        let worse = if op == AggregateOp::Topk {
                            worse_topk
                        } else {
                            worse_bottomk
                        };
                        if (h.len() as i64) < k {
                            h.push((s.idx, s.v));
                        } else if let Some((wi, _)) = h.iter().enumerate().reduce(|acc, x| {
                            if worse(x.1 .1, acc.1 .1) {
                                x
                            } else {
                                acc
                            }
                        }) {
                            if worse(h[wi].1, s.v) && !(h[wi].1.is_nan() && s.v.is_nan()) {
                                h[wi] = (s.idx, s.v);
                            }
                        }
                    }
                    AggregateOp::Limitk if (h.len() as i64) < k => h.push((s.idx, s.v)),
                    AggregateOp::LimitRatio if ratio_selects(r, &input[s.idx].metric) => {
                        h.push((s.idx, s.v))
                    }
                    _ => {}
                }
            }
            let mut out = Vec::new();
            for g in order {
                let h = &mut heaps[g];
                match op {
                    AggregateOp::Topk => h.sort_by(|a, b| cmp_desc_nan_last(a.1, b.1)),
                    AggregateOp::Bottomk => h.sort_by(|a, b| cmp_asc_nan_last(a.1, b.1)),
                    _ => {}
                }
                for (idx, v) in h.iter() {
                    out.push(ESample {
                        metric: input[*idx].metric.clone(),
                        v: *v,
                        drop_name: input[*idx].drop_name,
                    });
                }
            }
            Ok(out)
        })
    }

    fn count_values(
        &self,
        a: &AggregateExpr,
        grouping: &[String],
        input: &[ESeries],
        label: &str,
    ) -> Result<Vec<ESeries>> {
        // With `by`, the value label joins the grouping labels (as in Prometheus); with
        // `without`, it is set on each series before the listed labels are removed.
        let mut grouping = grouping.to_vec();
        if !a.without && !grouping.iter().any(|g| g == label) {
            grouping.push(label.to_string());
            grouping.sort();
        }
        self.range_eval(&[input], |_, _, v| {
            let mut order: Vec<Labels> = Vec::new();
            let mut counts: HashMap<Labels, f64> = HashMap::new();
            for s in &v[0] {
                let mut b = LabelsBuilder::from(&*input[s.idx].metric);
                b.set(label, &format_float_f(s.v));
                let g = grouping_labels(&b.build(), &grouping, a.without);
                match counts.get_mut(&g) {
                    Some(c) => *c += 1.0,
                    None => {
                        counts.insert(g.clone(), 1.0);
                        order.push(g);
                    }
                }
            }
            Ok(order
                .into_iter()
                .map(|g| {
                    let c = counts.get(&g).copied().unwrap_or(0.0);
                    ESample {
                        metric: Arc::new(g),
                        v: c,
                        drop_name: false,
                    }
                })
                .collect())
        })
    }
}

fn cmp_desc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
    }
}

fn cmp_asc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// Whether `limit_ratio(r, ...)` keeps a series: its label hash, mapped to [0, 1), falls
/// below `r` (or at or above `1 + r` for negative ratios).
fn ratio_selects(r: f64, l: &Labels) -> bool {
    let offset = l.stable_hash() as f64 / u64::MAX as f64;
    (r >= 0.0 && offset < r) || (r < 0.0 && offset >= 1.0 + r)
}
