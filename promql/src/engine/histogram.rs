//! Classic-histogram functions over `le` bucket series: `histogram_quantile`,
//! `histogram_quantiles` and `histogram_fraction`. This module groups the buckets of each
//! step by their labels without `le` (Prometheus' signature, `__name__` included and
//! dropped from the result later), reports malformed `le` labels, invalid quantiles and
//! forced monotonicity as Prometheus does, and leaves the arithmetic to
//! `kernels::histogram`. Native histograms are not stored by this engine. It never reads
//! storage.

use std::collections::HashMap;
use std::sync::Arc;

use vigil_storage::labels::METRIC_NAME;
use vigil_storage::Labels;

use super::annotations::{Annotation, MonotonicityFix};
use super::error::{exec_err, Result};
use super::eval::Evaluator;
use super::value::{ESample, ESeries, Metric};
use crate::kernels::format::{format_go_float, format_openmetrics_float};
use crate::kernels::histogram::{bucket_fraction, bucket_quantile, Bucket};
use crate::parser::ast::{Call, Expr, PosRange};

/// The bucket upper-bound label.
const BUCKET_LABEL: &str = "le";
/// Prometheus' forced-monotonicity info text.
const FORCED_MONOTONICITY_INFO: &str = "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)";

/// What a classic-histogram function computes per bucket group.
pub(crate) enum BucketFn<'a> {
    /// `histogram_quantile(q, v)`: one quantile per step.
    Quantile { q: &'a [f64] },
    /// `histogram_quantiles(v, label, q...)`: several quantiles, each labelled.
    Quantiles { label: &'a str, qs: &'a [Vec<f64>] },
    /// `histogram_fraction(lower, upper, v)`.
    Fraction { lower: &'a [f64], upper: &'a [f64] },
}

/// Warns for each step's quantile outside [0, 1] (or NaN), at the quantile argument.
fn check_quantiles(ev: &Evaluator<'_, '_>, q: &[f64], pos: PosRange) {
    for v in q {
        if !(0.0..=1.0).contains(v) {
            ev.annotate().add(Annotation::warning(
                format!(
                    "quantile value should be between 0 and 1, got {}",
                    format_go_float(*v)
                ),
                pos,
            ));
        }
    }
}

/// Parses an `le` value like Go's `strconv.ParseFloat`.
fn parse_le(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ if s.is_empty() || s.trim() != s => None,
        _ => s.parse::<f64>().ok(),
    }
}

/// Evaluates a classic-histogram function over the bucket series `m` (`arg` is the vector
/// argument, for annotation positions).
pub(crate) fn classic_histogram_fn(
    ev: &Evaluator<'_, '_>,
    c: &Call,
    arg: &Expr,
    f: BucketFn<'_>,
    m: &[ESeries],
) -> Result<Vec<ESeries>> {
    match &f {
        BucketFn::Quantile { q } => {
            if let Some(a) = c.args.first() {
                check_quantiles(ev, q, a.pos());
            }
        }
        BucketFn::Quantiles { qs, .. } => {
            for (i, q) in qs.iter().enumerate() {
                if let Some(a) = c.args.get(i + 2) {
                    check_quantiles(ev, q, a.pos());
                }
            }
        }
        BucketFn::Fraction { .. } => {}
    }
    // Group (labels without `le`) and upper bound per input series, computed once.
    let mut groups: HashMap<Labels, usize> = HashMap::new();
    let mut metrics: Vec<Metric> = Vec::new();
    let mut slot: Vec<Option<(usize, f64)>> = Vec::with_capacity(m.len());
    for s in m {
        match s.metric.get(BUCKET_LABEL).and_then(parse_le) {
            Some(le) => {
                let key = s.metric.without(|n| n == BUCKET_LABEL);
                let n = groups.len();
                let g = *groups.entry(key.clone()).or_insert_with(|| {
                    metrics.push(Arc::new(key));
                    n
                });
                slot.push(Some((g, le)));
            }
            None => {
                let name = s.metric.get(METRIC_NAME).unwrap_or("");
                let raw = s.metric.get(BUCKET_LABEL).unwrap_or("");
                let mut text =
                    format!("bucket label \"le\" is missing or has a malformed value of {raw:?}");
                if !name.is_empty() {
                    text.push_str(&format!(" for metric name {name:?}"));
                }
                ev.annotate().add(Annotation::warning(text, arg.pos()));
                slot.push(None);
            }
        }
    }
    // Labelled output metrics of histogram_quantiles, per (group, quantile index).
    let mut labelled: HashMap<(usize, usize, u64), Metric> = HashMap::new();
    let mut buckets: Vec<Vec<Bucket>> = vec![Vec::new(); metrics.len()];
    ev.range_eval(&[m], |step, t, v| {
        for b in buckets.iter_mut() {
            b.clear();
        }
        let mut order = Vec::new();
        for s in &v[0] {
            if let Some((g, le)) = slot[s.idx] {
                if buckets[g].is_empty() {
                    order.push(g);
                }
                buckets[g].push((le, s.v));
            }
        }
        let at = |x: &[f64]| x.get(step).copied().unwrap_or(f64::NAN);
        let mut out = Vec::with_capacity(order.len());
        let quantile = |g: usize, q: f64, bs: &mut Vec<Bucket>| {
            let r = bucket_quantile(q, bs);
            if r.forced_monotonicity {
                let name = metrics[g].get(METRIC_NAME).unwrap_or("");
                let mut text = FORCED_MONOTONICITY_INFO.to_string();
                if !name.is_empty() {
                    text.push_str(&format!(" for metric name {name:?}"));
                }
                let fix = MonotonicityFix {
                    min_ts: t,
                    max_ts: t,
                    min_bucket: r.min_bucket,
                    max_bucket: r.max_bucket,
                    max_diff: r.max_diff,
                    merged: 0,
                };
                ev.annotate()
                    .add(Annotation::info_with_fix(text, arg.pos(), fix));
            }
            r.value
        };
        match &f {
            BucketFn::Quantile { q } => {
                for g in order {
                    let v = quantile(g, at(q), &mut buckets[g]);
                    out.push(ESample {
                        metric: metrics[g].clone(),
                        v,
                        drop_name: true,
                    });
                }
            }
            BucketFn::Quantiles { label, qs } => {
                for (qi, q) in qs.iter().enumerate() {
                    let qv = at(q);
                    for &g in &order {
                        let mut bs = buckets[g].clone();
                        let v = quantile(g, qv, &mut bs);
                        let metric = labelled
                            .entry((g, qi, qv.to_bits()))
                            .or_insert_with(|| {
                                Arc::new(metrics[g].with(label, &format_openmetrics_float(qv)))
                            })
                            .clone();
                        out.push(ESample {
                            metric,
                            v,
                            drop_name: true,
                        });
                    }
                }
            }
            BucketFn::Fraction { lower, upper } => {
                let (lo, hi) = (at(lower), at(upper));
                for g in order {
                    out.push(ESample {
                        metric: metrics[g].clone(),
                        v: bucket_fraction(lo, hi, &mut buckets[g]),
                        drop_name: true,
                    });
                }
            }
        }
        // Two groups labelled into the same output series is Prometheus' duplicate error.
        let mut seen = std::collections::HashSet::new();
        for s in &out {
            if !seen.insert(s.metric.clone()) {
                return exec_err("vector cannot contain metrics with the same labelset");
            }
        }
        Ok(out)
    })
}
