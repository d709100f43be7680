//! Binary operators: scalar/scalar, vector/scalar and vector/vector arithmetic, comparison
//! (filtering or `bool`), the set operators `and`/`or`/`unless`, vector matching with
//! `on`/`ignoring`, `group_left`/`group_right` with extra labels, `fill` modifiers, and the
//! metric-name rules of Prometheus 3 (delayed removal). It never reads storage.

use std::collections::HashMap;
use std::sync::Arc;

use vigil_storage::labels::METRIC_NAME;
use vigil_storage::{Labels, LabelsBuilder};

use super::error::{exec_err, Result};
use super::eval::{Evaluator, StepSample};
use super::value::{ESample, ESeries, EVal, Metric};
use crate::parser::ast::{BinaryExpr, BinaryOp, VectorMatchCardinality, VectorMatching};

/// Labels that describe the metric's schema and go away with the metric name.
pub(crate) const METADATA_LABELS: [&str; 3] = [METRIC_NAME, "__type__", "__unit__"];

/// Whether the operator changes what the metric measures (arithmetic).
fn changes_metric_schema(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Pow
            | BinaryOp::Mod
            | BinaryOp::Atan2
    )
}

/// Drops `__name__`, `__type__` and `__unit__`.
pub(crate) fn drop_metadata(l: &Labels) -> Labels {
    l.without(|n| METADATA_LABELS.contains(&n))
}

/// Go's `math.Mod` (the result has the sign of `x`); Rust's `%` on floats is the same
/// C `fmod`.
fn go_mod(x: f64, y: f64) -> f64 {
    x % y
}

/// Applies `op` to two floats: (value, keep).
pub(crate) fn elem_binop(op: BinaryOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinaryOp::Add => (l + r, true),
        BinaryOp::Sub => (l - r, true),
        BinaryOp::Mul => (l * r, true),
        BinaryOp::Div => (l / r, true),
        BinaryOp::Pow => (l.powf(r), true),
        BinaryOp::Mod => (go_mod(l, r), true),
        BinaryOp::Atan2 => (l.atan2(r), true),
        BinaryOp::Eql => (l, l == r),
        BinaryOp::Neq => (l, l != r),
        BinaryOp::Gtr => (l, l > r),
        BinaryOp::Lss => (l, l < r),
        BinaryOp::Gte => (l, l >= r),
        BinaryOp::Lte => (l, l <= r),
        BinaryOp::TrimUpper
        | BinaryOp::TrimLower
        | BinaryOp::And
        | BinaryOp::Or
        | BinaryOp::Unless => (0.0, false),
    }
}

/// Scalar/scalar operation (comparisons yield 1 or 0).
fn scalar_binop(op: BinaryOp, l: f64, r: f64) -> f64 {
    let (v, keep) = elem_binop(op, l, r);
    if op.is_comparison() {
        if keep {
            1.0
        } else {
            0.0
        }
    } else {
        v
    }
}

/// The join signature of a label set under `matching`.
/// A join signature: the (name, value) pairs that take part in matching.
type Signature = Vec<(Arc<str>, Arc<str>)>;

fn signature(l: &Labels, m: &VectorMatching) -> Signature {
    l.iter()
        .filter(|x| {
            if m.on {
                m.matching_labels.iter().any(|n| **n == *x.name)
            } else {
                *x.name != *METRIC_NAME && !m.matching_labels.iter().any(|n| **n == *x.name)
            }
        })
        .map(|x| (x.name.clone(), x.value.clone()))
        .collect()
}

/// The labels a signature stands for (`MatchLabels` in Prometheus).
fn match_labels(l: &Labels, m: &VectorMatching) -> Labels {
    if m.on {
        l.without(|n| !m.matching_labels.iter().any(|x| x == n))
    } else {
        l.without(|n| n == METRIC_NAME || m.matching_labels.iter().any(|x| x == n))
    }
}

/// Result labels of a matched pair.
fn result_metric(lhs: &Labels, rhs: &Labels, op: BinaryOp, m: &VectorMatching) -> Labels {
    let mut b = LabelsBuilder::from(lhs);
    if changes_metric_schema(op) {
        for n in METADATA_LABELS {
            b.del(n);
        }
    }
    if m.card == VectorMatchCardinality::OneToOne {
        if m.on {
            b.retain(|l| m.matching_labels.iter().any(|n| **n == *l.name));
        } else {
            for n in &m.matching_labels {
                b.del(n);
            }
        }
    }
    for n in &m.include {
        match rhs.get(n) {
            Some(v) => b.set(n, v),
            None => b.del(n),
        };
    }
    b.build()
}

impl Evaluator<'_, '_> {
    pub fn eval_binary(&self, b: &BinaryExpr) -> Result<EVal> {
        let lhs = self.eval(&b.lhs)?;
        let rhs = self.eval(&b.rhs)?;
        match (lhs, rhs) {
            (EVal::Scalar(l), EVal::Scalar(r)) => Ok(EVal::Scalar(
                l.iter()
                    .zip(r.iter())
                    .map(|(a, c)| scalar_binop(b.op, *a, *c))
                    .collect(),
            )),
            (EVal::Vector(l), EVal::Scalar(r)) => {
                Ok(EVal::Vector(self.vector_scalar(b, l, &r, false)))
            }
            (EVal::Scalar(l), EVal::Vector(r)) => {
                Ok(EVal::Vector(self.vector_scalar(b, r, &l, true)))
            }
            (EVal::Vector(l), EVal::Vector(r)) => {
                let default = VectorMatching::default();
                let m = b.matching.as_ref().unwrap_or(&default);
                Ok(EVal::Vector(self.vector_vector(b, m, &l, &r)?))
            }
            _ => exec_err(format!(
                "invalid operand types for binary operator {}",
                b.op.as_str()
            )),
        }
    }

    /// Vector/scalar: applied pointwise; `swap` when the scalar is on the left.
    fn vector_scalar(
        &self,
        b: &BinaryExpr,
        mut m: Vec<ESeries>,
        s: &[f64],
        swap: bool,
    ) -> Vec<ESeries> {
        let drop = changes_metric_schema(b.op) || b.return_bool;
        for series in &mut m {
            series.points.retain_mut(|p| {
                let idx = ((p.t - self.start) / self.interval.max(1)) as usize;
                let sv = s.get(idx).copied().unwrap_or(f64::NAN);
                let (l, r) = if swap { (sv, p.v) } else { (p.v, sv) };
                let (mut v, keep) = elem_binop(b.op, l, r);
                if b.op.is_comparison() && swap {
                    v = p.v;
                }
                if b.return_bool {
                    p.v = if keep { 1.0 } else { 0.0 };
                    true
                } else if keep {
                    p.v = v;
                    true
                } else {
                    false
                }
            });
            if drop {
                series.drop_name = true;
            }
        }
        m.retain(|s| !s.points.is_empty());
        m
    }

    fn vector_vector(
        &self,
        b: &BinaryExpr,
        m: &VectorMatching,
        lhs: &[ESeries],
        rhs: &[ESeries],
    ) -> Result<Vec<ESeries>> {
        // Signature ordinals per input series, computed once.
        let mut sig_ids: HashMap<Signature, usize> = HashMap::new();
        let mut ord = |s: &ESeries| {
            let sig = signature(&s.metric, m);
            let n = sig_ids.len();
            *sig_ids.entry(sig).or_insert(n)
        };
        let lsig: Vec<usize> = lhs.iter().map(&mut ord).collect();
        let rsig: Vec<usize> = rhs.iter().map(&mut ord).collect();
        let nsigs = sig_ids.len();
        let mut cache: HashMap<(usize, usize), Metric> = HashMap::new();
        let op = b.op;
        self.range_eval(&[lhs, rhs], |_, _, v| {
            let (lv, rv) = (&v[0], &v[1]);
            let mut out = Vec::new();
            match op {
                BinaryOp::And => {
                    if lv.is_empty() || rv.is_empty() {
                        return Ok(out);
                    }
                    let mut present = vec![false; nsigs];
                    for s in rv {
                        present[rsig[s.idx]] = true;
                    }
                    for s in lv {
                        if present[lsig[s.idx]] {
                            out.push(sample(&lhs[s.idx], s.v));
                        }
                    }
                }
                BinaryOp::Or => {
                    let mut present = vec![false; nsigs];
                    for s in lv {
                        present[lsig[s.idx]] = true;
                        out.push(sample(&lhs[s.idx], s.v));
                    }
                    for s in rv {
                        if !present[rsig[s.idx]] {
                            out.push(sample(&rhs[s.idx], s.v));
                        }
                    }
                }
                BinaryOp::Unless => {
                    let mut present = vec![false; nsigs];
                    for s in rv {
                        present[rsig[s.idx]] = true;
                    }
                    for s in lv {
                        if !present[lsig[s.idx]] {
                            out.push(sample(&lhs[s.idx], s.v));
                        }
                    }
                }
                _ => {
                    out = self.vector_binop_step(
                        b, m, lhs, rhs, &lsig, &rsig, nsigs, lv, rv, &mut cache,
                    )?;
                }
            }
            Ok(out)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn vector_binop_step(
        &self,
        b: &BinaryExpr,
        m: &VectorMatching,
        lhs_series: &[ESeries],
        rhs_series: &[ESeries],
        lsig: &[usize],
        rsig: &[usize],
        nsigs: usize,
        lv: &[StepSample],
        rv: &[StepSample],
        cache: &mut HashMap<(usize, usize), Metric>,
    ) -> Result<Vec<ESample>> {
        let fill = m.fill_values;
        if (lv.is_empty() && rv.is_empty())
            || ((lv.is_empty() || rv.is_empty()) && fill.lhs.is_none() && fill.rhs.is_none())
        {
            return Ok(Vec::new());
        }
        let swapped = m.card == VectorMatchCardinality::OneToMany;
        // After a swap, "l" is the many side and "r" the one side.
        let (l_ser, r_ser, l_sig, r_sig, l_v, r_v) = if swapped {
            (rhs_series, lhs_series, rsig, lsig, rv, lv)
        } else {
            (lhs_series, rhs_series, lsig, rsig, lv, rv)
        };
        // Prometheus applies `fill_right` to the side it matches against and `fill_left` to
        // the side it iterates *after* swapping for `group_right`, so with `group_right`
        // `fill_left` fills the right-hand (many) side and `fill_right` the left-hand side
        // (fill-modifier.test encodes this).
        let (fill_r, fill_l) = (fill.rhs, fill.lhs);
        let mut right: Vec<Option<StepSample>> = vec![None; nsigs];
        for s in r_v {
            let sig = r_sig[s.idx];
            if let Some(dup) = right[sig] {
                let one_side = if swapped { "left" } else { "right" };
                let matched = match_labels(&r_ser[s.idx].metric, m);
                let mut d1 = r_ser[s.idx].metric.to_string();
                let mut d2 = r_ser[dup.idx].metric.to_string();
                if d1 > d2 {
                    std::mem::swap(&mut d1, &mut d2);
                }
                return exec_err(format!(
                    "found duplicate series for the match group {matched} on the {one_side} hand-side of the operation: [{d1}, {d2}];many-to-many matching not allowed: matching labels must be unique on one side"
                ));
            }
            right[sig] = Some(*s);
        }
        let one_to_one = m.card == VectorMatchCardinality::OneToOne;
        let mut st = PairState {
            matched_one: vec![false; nsigs],
            matched_many: vec![None; nsigs],
            out: Vec::new(),
            cache,
        };
        let ctx = PairCtx {
            b,
            m,
            swapped,
            one_to_one,
        };
        for s in l_v {
            let sig = l_sig[s.idx];
            let ls = &l_ser[s.idx];
            match right[sig] {
                Some(r) => ctx.apply(
                    &mut st,
                    ls.metric.clone(),
                    s.v,
                    r_ser[r.idx].metric.clone(),
                    r.v,
                    sig,
                    Some((s.idx, r.idx)),
                )?,
                None => {
                    let Some(fv) = fill_r else { continue };
                    let rm = Arc::new(match_labels(&ls.metric, m));
                    ctx.apply(&mut st, ls.metric.clone(), s.v, rm, fv, sig, None)?;
                }
            }
        }
        if let Some(fv) = fill_l {
            for s in r_v {
                let sig = r_sig[s.idx];
                let done = if one_to_one {
                    st.matched_one[sig]
                } else {
                    st.matched_many[sig].as_ref().is_some_and(|x| !x.is_empty())
                };
                if done {
                    continue;
                }
                let rs = &r_ser[s.idx];
                let lm = Arc::new(match_labels(&rs.metric, m));
                ctx.apply(&mut st, lm, fv, rs.metric.clone(), s.v, sig, None)?;
            }
        }
        Ok(st.out)
    }
}

/// Mutable state of one step of a vector/vector operation.
struct PairState<'c> {
    matched_one: Vec<bool>,
    matched_many: Vec<Option<std::collections::HashSet<Labels>>>,
    out: Vec<ESample>,
    cache: &'c mut HashMap<(usize, usize), Metric>,
}

/// The fixed parameters of a vector/vector operation.
struct PairCtx<'e> {
    b: &'e BinaryExpr,
    m: &'e VectorMatching,
    swapped: bool,
    one_to_one: bool,
}

impl PairCtx<'_> {
    /// Applies the operator to one matched pair ("l" is the many side after a swap).
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        st: &mut PairState<'_>,
        l_metric: Metric,
        lval: f64,
        r_metric: Metric,
        rval: f64,
        sig: usize,
        key: Option<(usize, usize)>,
    ) -> Result<()> {
        let b = self.b;
        let (fl, fr) = if self.swapped {
            (rval, lval)
        } else {
            (lval, rval)
        };
        let (mut v, keep) = elem_binop(b.op, fl, fr);
        if b.return_bool {
            v = if keep { 1.0 } else { 0.0 };
        }
        let metric = match key.and_then(|k| st.cache.get(&k)) {
            Some(mm) => mm.clone(),
            None => {
                let mm = Arc::new(result_metric(&l_metric, &r_metric, b.op, self.m));
                if let Some(k) = key {
                    st.cache.insert(k, mm.clone());
                }
                mm
            }
        };
        if self.one_to_one {
            if st.matched_one[sig] {
                return exec_err(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                );
            }
            st.matched_one[sig] = true;
        } else {
            let set = st.matched_many[sig].get_or_insert_with(Default::default);
            if !set.insert((*metric).clone()) {
                return exec_err(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                );
            }
        }
        if !keep && !b.return_bool {
            return Ok(());
        }
        st.out.push(ESample {
            metric,
            v,
            drop_name: b.return_bool,
        });
        Ok(())
    }
}

fn sample(s: &ESeries, v: f64) -> ESample {
    ESample {
        metric: s.metric.clone(),
        v,
        drop_name: s.drop_name,
    }
}
