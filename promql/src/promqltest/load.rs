//! Turns a parsed `load` block into the samples handed to the engine (DSL.md §3.2–§3.4):
//! slot i at `i * interval`, start timestamps from `@st` lines, and for `load_with_nhcb` the
//! conversion of classic `_bucket`/`_sum`/`_count` series into native histograms with custom
//! buckets (schema −53), with its validation errors.
//!
//! This module never appends to storage itself; out-of-order and duplicate-sample rejection
//! is left to the engine's storage, as upstream leaves it to the TSDB head.

use std::collections::BTreeMap;

use vigil_storage::labels::METRIC_NAME;
use vigil_storage::{Labels, LabelsBuilder};

use super::histogram::{CounterResetHint, FloatHistogram, Span, CUSTOM_BUCKETS_SCHEMA};
use super::number::format_go_float;
use super::parse::LoadCmd;
use super::series::SeqValue;
use super::value::{LoadedSample, LoadedSeries, SampleValue};

/// The label holding a classic histogram bucket's upper bound.
const BUCKET_LABEL: &str = "le";
const BUCKET_SUFFIX: &str = "_bucket";
const SUM_SUFFIX: &str = "_sum";
const COUNT_SUFFIX: &str = "_count";

/// Expands a load block into series with timestamped samples, plus the NHCB series when the
/// block is `load_with_nhcb`. Errors describe the offending series.
pub fn expand_load(cmd: &LoadCmd) -> Result<Vec<LoadedSeries>, String> {
    let mut out = Vec::with_capacity(cmd.series.len());
    for s in &cmd.series {
        let mut samples = Vec::new();
        for (i, v) in s.values.iter().enumerate() {
            let t_ms = i64::try_from(i)
                .ok()
                .and_then(|i| i.checked_mul(cmd.interval_ms))
                .ok_or_else(|| format!("timestamp of slot {i} of {} overflows", s.labels))?;
            let value = match v {
                SeqValue::Omitted => continue,
                SeqValue::Float(f) => SampleValue::Float(*f),
                SeqValue::Histogram(h) => SampleValue::Histogram(h.histogram.clone()),
            };
            let st_ms = s
                .st_offsets
                .as_ref()
                .and_then(|o| o.get(i).copied().flatten())
                .map(|off| t_ms.saturating_add(off));
            samples.push(LoadedSample { t_ms, st_ms, value });
        }
        out.push(LoadedSeries {
            labels: s.labels.clone(),
            samples,
        });
    }
    if cmd.with_nhcb {
        let converted = convert_nhcb(&out)?;
        out.extend(converted);
    }
    Ok(out)
}

/// What a classic-histogram series contributes.
enum Part {
    Bucket(f64),
    Sum,
    Count,
}

/// Classic histogram data of one converted series at one timestamp.
#[derive(Default)]
struct Pending {
    /// Upper bound (as bits, to dedupe equal floats) → cumulative count.
    buckets: BTreeMap<u64, (f64, f64)>,
    sum: Option<f64>,
    count: Option<f64>,
}

/// Go's `strconv.ParseFloat` for `le` values: decimal floats, `Inf`/`+Inf`/`Infinity`, any case.
fn parse_le(s: &str) -> Option<f64> {
    let body = s.trim_start_matches(['+', '-']);
    if body.len() + 1 < s.len() || body.is_empty() {
        return None;
    }
    s.parse::<f64>().ok()
}

fn classify(labels: &Labels) -> Option<(String, Part)> {
    let name = labels.metric_name()?;
    if let Some(base) = name.strip_suffix(BUCKET_SUFFIX) {
        let le = parse_le(labels.get(BUCKET_LABEL)?)?;
        if le.is_nan() {
            return None;
        }
        return Some((base.to_string(), Part::Bucket(le)));
    }
    if let Some(base) = name.strip_suffix(SUM_SUFFIX) {
        return Some((base.to_string(), Part::Sum));
    }
    name.strip_suffix(COUNT_SUFFIX)
        .map(|base| (base.to_string(), Part::Count))
}

/// Converts the classic histograms among `series` into NHCB series (DSL.md §3.3).
pub fn convert_nhcb(series: &[LoadedSeries]) -> Result<Vec<LoadedSeries>, String> {
    let mut groups: BTreeMap<Labels, BTreeMap<i64, Pending>> = BTreeMap::new();
    for s in series {
        let name = s.labels.metric_name().unwrap_or("");
        if name.ends_with(BUCKET_SUFFIX) && !s.labels.has(BUCKET_LABEL) {
            return Err(format!("expected bucket label in metric {}", s.labels));
        }
        let Some((base, part)) = classify(&s.labels) else {
            continue;
        };
        let mut b = LabelsBuilder::from(&s.labels);
        b.del(BUCKET_LABEL);
        b.set(METRIC_NAME, &base);
        let by_ts = groups.entry(b.build()).or_default();
        for sample in &s.samples {
            let SampleValue::Float(v) = sample.value else {
                continue;
            };
            let p = by_ts.entry(sample.t_ms).or_default();
            match part {
                Part::Bucket(le) => {
                    p.buckets.entry(le.to_bits()).or_insert((le, v));
                }
                Part::Sum => p.sum = Some(v),
                Part::Count => p.count = Some(v),
            }
        }
    }
    let mut out = Vec::new();
    for (labels, by_ts) in groups {
        if by_ts.is_empty() {
            // Only histogram samples on the classic series: nothing to convert.
            continue;
        }
        let mut samples = Vec::with_capacity(by_ts.len());
        for (t_ms, p) in by_ts {
            let h = build_nhcb(p).map_err(|e| format!("converting {labels} at t={t_ms}: {e}"))?;
            samples.push(LoadedSample {
                t_ms,
                st_ms: None,
                value: SampleValue::Histogram(h),
            });
        }
        out.push(LoadedSeries { labels, samples });
    }
    Ok(out)
}

fn build_nhcb(p: Pending) -> Result<FloatHistogram, String> {
    let mut buckets: Vec<(f64, f64)> = p.buckets.into_values().collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut prev = 0.0;
    for (le, v) in &buckets {
        if *v < 0.0 {
            return Err(format!(
                "negative count {} in bucket le={}",
                format_go_float(*v),
                format_go_float(*le)
            ));
        }
        if *v < prev {
            return Err(format!(
                "histogram buckets are not cumulative: bucket le={} has {} after {}",
                format_go_float(*le),
                format_go_float(*v),
                format_go_float(prev)
            ));
        }
        prev = *v;
    }
    let largest = buckets.last().map_or(0.0, |b| b.1);
    let count = p.count.unwrap_or(largest);
    if count < 0.0 {
        return Err(format!("negative count {}", format_go_float(count)));
    }
    match buckets.last() {
        Some((le, v)) if *le == f64::INFINITY => {
            if p.count.is_some() && *v != count {
                return Err(format!(
                    "count mismatch: _count is {} but +Inf bucket is {}",
                    format_go_float(count),
                    format_go_float(*v)
                ));
            }
        }
        _ => buckets.push((f64::INFINITY, count)),
    }
    let mut per_bucket = Vec::with_capacity(buckets.len());
    let mut prev = 0.0;
    for (_, v) in &buckets {
        per_bucket.push(v - prev);
        prev = *v;
    }
    let custom_values: Vec<f64> = buckets
        .iter()
        .map(|b| b.0)
        .filter(|le| le.is_finite())
        .collect();
    let length = u32::try_from(per_bucket.len()).map_err(|_| "too many buckets".to_string())?;
    Ok(FloatHistogram {
        schema: CUSTOM_BUCKETS_SCHEMA,
        count,
        sum: p.sum.unwrap_or(0.0),
        positive_spans: vec![Span { offset: 0, length }],
        positive_buckets: per_bucket,
        custom_values,
        counter_reset_hint: CounterResetHint::Unknown,
        ..FloatHistogram::default()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::parse::{parse_test, Command};
    use super::*;

    fn load(src: &str) -> Result<Vec<LoadedSeries>, String> {
        let f = parse_test("t", src).unwrap();
        match &f.commands[0] {
            Command::Load(l) => expand_load(l),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn slots_are_spaced_by_interval_from_zero() {
        let s = load("load 30s\n  m 1 _ stale 4\n").unwrap();
        let ts: Vec<i64> = s[0].samples.iter().map(|x| x.t_ms).collect();
        assert_eq!(ts, vec![0, 60_000, 90_000]);
        match s[0].samples[1].value {
            SampleValue::Float(v) => assert_eq!(v.to_bits(), super::super::STALE_NAN_BITS),
            _ => panic!(),
        }
    }

    #[test]
    fn st_offsets_apply_per_slot() {
        let s = load("load 1m\n  m@st _ -30s -1m\n  m 1 2 3\n").unwrap();
        let st: Vec<Option<i64>> = s[0].samples.iter().map(|x| x.st_ms).collect();
        assert_eq!(st, vec![None, Some(30_000), Some(60_000)]);
    }

    #[test]
    fn nhcb_example_from_spec() {
        let src = "load_with_nhcb 5m\n\
            \ttesthistogram_bucket{le=\"0.1\", start=\"positive\"} 0+5x10\n\
            \ttesthistogram_bucket{le=\".2\", start=\"positive\"} 0+7x10\n\
            \ttesthistogram_bucket{le=\"1e0\", start=\"positive\"} 0+11x10\n\
            \ttesthistogram_bucket{le=\"+Inf\", start=\"positive\"} 0+12x10\n";
        let s = load(src).unwrap();
        assert_eq!(s.len(), 5);
        let h = &s[4];
        assert_eq!(
            h.labels.to_string(),
            r#"{__name__="testhistogram", start="positive"}"#
        );
        assert_eq!(h.samples.len(), 11);
        let SampleValue::Histogram(fh) = &h.samples[2].value else {
            panic!()
        };
        assert_eq!(fh.schema, -53);
        assert_eq!(fh.count, 24.0);
        assert_eq!(fh.custom_values, vec![0.1, 0.2, 1.0]);
        assert_eq!(fh.positive_buckets, vec![10.0, 4.0, 8.0, 2.0]);
    }

    #[test]
    fn nhcb_adds_inf_bucket_and_checks_count() {
        let ok = "load_with_nhcb 1m\n  h_bucket{le=\"1\"} 2\n  h_sum 3\n  h_count 5\n";
        assert!(load(ok).is_ok());
        let s = load("load_with_nhcb 1m\n  h_bucket{le=\"1\"} 2\n  h_sum 3\n").unwrap();
        let SampleValue::Histogram(fh) = &s.last().unwrap().samples[0].value else {
            panic!()
        };
        assert_eq!(fh.positive_buckets, vec![2.0, 0.0]);
        assert_eq!(fh.sum, 3.0);
        let bad = "load_with_nhcb 1m\n  h_bucket{le=\"1\"} 3\n  h_bucket{le=\"2\"} 2\n";
        assert!(load(bad).unwrap_err().contains("not cumulative"));
        let bad = "load_with_nhcb 1m\n  h_bucket{le=\"+Inf\"} 3\n  h_count 4\n";
        assert!(load(bad).unwrap_err().contains("count mismatch"));
        let s = load("load_with_nhcb 1m\n  h_count {{count:1}}\n").unwrap();
        assert_eq!(s.len(), 1, "histogram samples are not converted");
        let bad = "load_with_nhcb 1m\n  h_bucket 3\n";
        assert!(load(bad).is_err());
    }
}
