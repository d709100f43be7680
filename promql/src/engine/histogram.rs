//! Classic-histogram `histogram_quantile`: groups `_bucket` series by their labels without
//! `le`, sorts and coalesces buckets, forces monotonicity and interpolates linearly inside
//! the bucket holding the requested rank, like Prometheus' `bucketQuantile`. Native
//! histograms are not stored by this engine. It never reads storage.

use std::collections::HashMap;
use std::sync::Arc;

use vigil_storage::labels::METRIC_NAME;
use vigil_storage::Labels;

use super::annotations::Annotation;
use super::error::Result;
use super::eval::Evaluator;
use super::value::{ESample, ESeries};
use crate::parser::ast::Call;

/// The bucket upper-bound label.
const BUCKET_LABEL: &str = "le";

/// Quantile `q` of cumulative buckets (upper bound, count).
pub(crate) fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(b) if b.0 == f64::INFINITY => {}
        _ => return (f64::NAN, false),
    }
    // Coalesce equal upper bounds.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == b.0 => last.1 += b.1,
            _ => merged.push(*b),
        }
    }
    let mut forced = false;
    let mut max = f64::NEG_INFINITY;
    for b in merged.iter_mut() {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            forced = true;
            b.1 = max;
        }
    }
    if merged.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 || observations.is_nan() {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let b = merged.partition_point(|x| x.1 < rank);
    if b == merged.len() - 1 {
        return (merged[merged.len() - 2].0, forced);
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return (merged[0].0, forced);
    }
    let mut start = 0.0;
    let end = merged[b].0;
    let mut count = merged[b].1;
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    (start + (end - start) * (rank / count), forced)
}

/// `histogram_quantile(q, buckets)` over classic bucket series.
pub(crate) fn histogram_quantile(
    ev: &Evaluator<'_, '_>,
    c: &Call,
    q: &[f64],
    m: &[ESeries],
) -> Result<Vec<ESeries>> {
    for v in q {
        if !(0.0..=1.0).contains(v) {
            ev.annotate().add(Annotation::warning(
                format!(
                    "quantile value should be between 0 and 1, got {}",
                    crate::promqltest::number::format_go_float(*v)
                ),
                c.args[0].pos(),
            ));
        }
    }
    // Group key and upper bound per input series, computed once.
    let mut groups: HashMap<Labels, usize> = HashMap::new();
    let mut metrics: Vec<Arc<Labels>> = Vec::new();
    let mut info: Vec<Option<(usize, f64)>> = Vec::with_capacity(m.len());
    for s in m {
        let le = s
            .metric
            .get(BUCKET_LABEL)
            .and_then(|v| v.trim().parse::<f64>().ok());
        match le {
            Some(le) => {
                let key = s.metric.without(|n| n == BUCKET_LABEL || n == METRIC_NAME);
                let n = groups.len();
                let g = *groups.entry(key.clone()).or_insert_with(|| {
                    metrics.push(Arc::new(key));
                    n
                });
                info.push(Some((g, le)));
            }
            None => {
                let name = s.metric.get(METRIC_NAME).unwrap_or("");
                let raw = s.metric.get(BUCKET_LABEL).unwrap_or("");
                let mut text =
                    format!("bucket label \"le\" is missing or has a malformed value of {raw:?}");
                if !name.is_empty() {
                    text.push_str(&format!(" for metric name {name:?}"));
                }
                ev.annotate()
                    .add(Annotation::warning(text, c.args[1].pos()));
                info.push(None);
            }
        }
    }
    let mut buckets: Vec<Vec<(f64, f64)>> = vec![Vec::new(); metrics.len()];
    ev.range_eval(&[m], |step, _, v| {
        for b in buckets.iter_mut() {
            b.clear();
        }
        let mut order = Vec::new();
        for s in &v[0] {
            if let Some((g, le)) = info[s.idx] {
                if buckets[g].is_empty() {
                    order.push(g);
                }
                buckets[g].push((le, s.v));
            }
        }
        let qv = q.get(step).copied().unwrap_or(f64::NAN);
        let mut out = Vec::with_capacity(order.len());
        for g in order {
            let (val, _forced) = bucket_quantile(qv, &mut buckets[g]);
            out.push(ESample {
                metric: metrics[g].clone(),
                v: val,
                drop_name: false,
            });
        }
        Ok(out)
    })
}
