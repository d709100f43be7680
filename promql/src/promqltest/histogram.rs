//! Native histogram values as the test language writes them: the `{{schema:0 sum:5 count:4
//! buckets:[1 2 1]}}` literal parser, histogram addition/subtraction for `{{H}}+{{I}}xK`
//! sequences, compaction, tolerant equality (DSL.md §4, §7.3) and the test-expression
//! rendering used in failure messages.
//!
//! This module owns only the test-side model of a float histogram. It must never be used by
//! the engine or storage as their histogram type, and it never validates literals (expected
//! results may hold negative counts); validation of loaded histograms is the storage's job.

use std::collections::BTreeMap;
use std::fmt;

use super::compare::almost_equal;
use super::number::{format_go_float, parse_series_float};

/// The schema of native histograms with custom bucket bounds (NHCB).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// The counter-reset hint carried by a histogram sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CounterResetHint {
    /// Nothing is known about a counter reset.
    #[default]
    Unknown,
    /// This sample follows a counter reset.
    Reset,
    /// This sample is known not to follow a counter reset.
    NotReset,
    /// The histogram is a gauge: counter resets do not apply.
    Gauge,
}

impl CounterResetHint {
    fn parse(s: &str) -> Option<CounterResetHint> {
        match s {
            "unknown" => Some(CounterResetHint::Unknown),
            "reset" => Some(CounterResetHint::Reset),
            "not_reset" => Some(CounterResetHint::NotReset),
            "gauge" => Some(CounterResetHint::Gauge),
            _ => None,
        }
    }

    /// The literal spelling of the hint.
    pub fn as_str(self) -> &'static str {
        match self {
            CounterResetHint::Unknown => "unknown",
            CounterResetHint::Reset => "reset",
            CounterResetHint::NotReset => "not_reset",
            CounterResetHint::Gauge => "gauge",
        }
    }
}

/// A run of consecutive buckets: `offset` is the gap to the previous span's end (for the first
/// span, the index of its first bucket) and `length` the number of buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub offset: i32,
    pub length: u32,
}

/// A float native histogram with absolute bucket counts, as in Prometheus' model.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatHistogram {
    pub schema: i32,
    pub count: f64,
    pub sum: f64,
    pub zero_count: f64,
    pub zero_threshold: f64,
    pub positive_spans: Vec<Span>,
    pub positive_buckets: Vec<f64>,
    pub negative_spans: Vec<Span>,
    pub negative_buckets: Vec<f64>,
    /// Upper bounds for schema −53 (the +Inf bound is implicit).
    pub custom_values: Vec<f64>,
    pub counter_reset_hint: CounterResetHint,
}

impl Default for FloatHistogram {
    fn default() -> Self {
        FloatHistogram {
            schema: 0,
            count: 0.0,
            sum: 0.0,
            zero_count: 0.0,
            zero_threshold: 0.0,
            positive_spans: Vec::new(),
            positive_buckets: Vec::new(),
            negative_spans: Vec::new(),
            negative_buckets: Vec::new(),
            custom_values: Vec::new(),
            counter_reset_hint: CounterResetHint::Unknown,
        }
    }
}

/// A histogram literal together with whether `counter_reset_hint` was written explicitly
/// (only then is the hint compared in expectations).
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramLiteral {
    pub histogram: FloatHistogram,
    pub hint_set: bool,
}

/// Bucket counts keyed by absolute bucket index.
type BucketMap = BTreeMap<i32, f64>;

fn spans_to_map(spans: &[Span], buckets: &[f64]) -> BucketMap {
    let mut out = BucketMap::new();
    let mut idx: i32 = 0;
    let mut b = 0usize;
    for (i, span) in spans.iter().enumerate() {
        idx = if i == 0 {
            span.offset
        } else {
            idx.saturating_add(span.offset)
        };
        for _ in 0..span.length {
            if let Some(v) = buckets.get(b) {
                *out.entry(idx).or_insert(0.0) += *v;
            }
            b += 1;
            idx = idx.saturating_add(1);
        }
    }
    out
}

/// Rebuilds spans and buckets from a map; runs of consecutive indexes form one span.
fn map_to_spans(map: &BucketMap) -> (Vec<Span>, Vec<f64>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut buckets = Vec::with_capacity(map.len());
    let mut next_idx: Option<i32> = None;
    for (&idx, &v) in map {
        match next_idx {
            Some(n) if n == idx => {
                if let Some(last) = spans.last_mut() {
                    last.length += 1;
                }
            }
            Some(n) => spans.push(Span {
                offset: idx - n,
                length: 1,
            }),
            None => spans.push(Span {
                offset: idx,
                length: 1,
            }),
        }
        buckets.push(v);
        next_idx = Some(idx + 1);
    }
    (spans, buckets)
}

/// Maps an exponential bucket index to the index holding it in a coarser schema.
fn reduce_index(idx: i32, from_schema: i32, to_schema: i32) -> i32 {
    let delta = (from_schema - to_schema).clamp(0, 31) as u32;
    ((idx - 1) >> delta) + 1
}

/// The upper bound of exponential bucket `idx` in `schema`: 2^(idx · 2^−schema).
fn exponential_upper_bound(idx: i32, schema: i32) -> f64 {
    (f64::from(idx) * (-f64::from(schema)).exp2()).exp2()
}

impl FloatHistogram {
    /// Whether this histogram uses custom bucket bounds (schema −53).
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    fn positive_map(&self) -> BucketMap {
        spans_to_map(&self.positive_spans, &self.positive_buckets)
    }

    fn negative_map(&self) -> BucketMap {
        spans_to_map(&self.negative_spans, &self.negative_buckets)
    }

    /// A copy with zero-count buckets removed and adjacent spans merged, so that two
    /// histograms with the same populated buckets have identical spans.
    pub fn compact(&self) -> FloatHistogram {
        let mut out = self.clone();
        let mut pos = self.positive_map();
        pos.retain(|_, v| *v != 0.0);
        let mut neg = self.negative_map();
        neg.retain(|_, v| *v != 0.0);
        (out.positive_spans, out.positive_buckets) = map_to_spans(&pos);
        (out.negative_spans, out.negative_buckets) = map_to_spans(&neg);
        out
    }

    /// `self + other` (or `self − other` when `negate`), reconciling bucket layouts like
    /// Prometheus: `other` is reduced to `self`'s schema when it is finer; a coarser `other`
    /// is an error, as are custom-bucket histograms with different bounds.
    pub fn combine(&self, other: &FloatHistogram, negate: bool) -> Result<FloatHistogram, String> {
        let sign = if negate { -1.0 } else { 1.0 };
        let custom = self.uses_custom_buckets() || other.uses_custom_buckets();
        if custom {
            if self.schema != other.schema {
                return Err(format!(
                    "cannot combine custom-bucket histogram with schema {} histogram",
                    if self.uses_custom_buckets() {
                        other.schema
                    } else {
                        self.schema
                    }
                ));
            }
            if self.custom_values != other.custom_values {
                return Err("histogram custom bounds are not compatible".to_string());
            }
        } else if self.schema > other.schema {
            return Err(format!(
                "cannot merge from schema {} to {}",
                other.schema, self.schema
            ));
        }
        let target_schema = self.schema;
        let reduce = |map: BucketMap| -> BucketMap {
            if custom || other.schema == target_schema {
                return map;
            }
            let mut out = BucketMap::new();
            for (idx, v) in map {
                *out.entry(reduce_index(idx, other.schema, target_schema))
                    .or_insert(0.0) += v;
            }
            out
        };
        let mut pos = self.positive_map();
        let mut neg = self.negative_map();
        let mut other_pos = reduce(other.positive_map());
        let mut other_neg = reduce(other.negative_map());
        let mut zero_count = self.zero_count;
        let mut other_zero = other.zero_count;
        let zero_threshold = self.zero_threshold.max(other.zero_threshold);
        if !custom {
            // Buckets entirely inside the wider zero bucket are folded into it.
            zero_count += fold_into_zero(&mut pos, &mut neg, target_schema, zero_threshold);
            other_zero += fold_into_zero(
                &mut other_pos,
                &mut other_neg,
                target_schema,
                zero_threshold,
            );
        }
        for (idx, v) in other_pos {
            *pos.entry(idx).or_insert(0.0) += sign * v;
        }
        for (idx, v) in other_neg {
            *neg.entry(idx).or_insert(0.0) += sign * v;
        }
        let mut out = self.clone();
        out.count = self.count + sign * other.count;
        out.sum = self.sum + sign * other.sum;
        out.zero_count = zero_count + sign * other_zero;
        out.zero_threshold = zero_threshold;
        (out.positive_spans, out.positive_buckets) = map_to_spans(&pos);
        (out.negative_spans, out.negative_buckets) = map_to_spans(&neg);
        out.counter_reset_hint = combined_hint(self.counter_reset_hint, other.counter_reset_hint);
        Ok(out)
    }

    /// Renders the histogram in the test-literal syntax, for failure messages.
    pub fn test_expression(&self) -> String {
        let mut s = String::from("{{");
        let mut parts: Vec<String> = Vec::new();
        if self.schema != 0 {
            parts.push(format!("schema:{}", self.schema));
        }
        parts.push(format!("count:{}", format_go_float(self.count)));
        parts.push(format!("sum:{}", format_go_float(self.sum)));
        if self.zero_count != 0.0 {
            parts.push(format!("z_bucket:{}", format_go_float(self.zero_count)));
        }
        if self.zero_threshold != 0.0 {
            parts.push(format!(
                "z_bucket_w:{}",
                format_go_float(self.zero_threshold)
            ));
        }
        if !self.custom_values.is_empty() {
            parts.push(format!("custom_values:{}", list(&self.custom_values)));
        }
        match self.counter_reset_hint {
            CounterResetHint::Unknown => {}
            hint => parts.push(format!("counter_reset_hint:{}", hint.as_str())),
        }
        push_buckets(&mut parts, &self.positive_map(), "offset", "buckets");
        push_buckets(&mut parts, &self.negative_map(), "n_offset", "n_buckets");
        s.push_str(&parts.join(" "));
        s.push_str("}}");
        s
    }
}

/// Moves exponential buckets whose upper bound is at most `threshold` into the zero bucket;
/// returns the count moved.
fn fold_into_zero(pos: &mut BucketMap, neg: &mut BucketMap, schema: i32, threshold: f64) -> f64 {
    if threshold <= 0.0 {
        return 0.0;
    }
    let mut moved = 0.0;
    for map in [pos, neg] {
        map.retain(|&idx, v| {
            if exponential_upper_bound(idx, schema) <= threshold {
                moved += *v;
                false
            } else {
                true
            }
        });
    }
    moved
}

/// The hint of a sum: equal hints stay; a gauge on either side makes a gauge; else unknown.
fn combined_hint(a: CounterResetHint, b: CounterResetHint) -> CounterResetHint {
    if a == b {
        a
    } else if a == CounterResetHint::Gauge || b == CounterResetHint::Gauge {
        CounterResetHint::Gauge
    } else {
        CounterResetHint::Unknown
    }
}

fn list(values: &[f64]) -> String {
    let mut s = String::from("[");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format_go_float(*v));
    }
    s.push(']');
    s
}

/// Renders a bucket map as `offset:N buckets:[...]`, filling gaps with zeros.
fn push_buckets(parts: &mut Vec<String>, map: &BucketMap, offset_key: &str, key: &str) {
    let (Some((&first, _)), Some((&last, _))) = (map.first_key_value(), map.last_key_value())
    else {
        return;
    };
    if first != 0 {
        parts.push(format!("{offset_key}:{first}"));
    }
    let dense: Vec<f64> = (first..=last)
        .map(|i| map.get(&i).copied().unwrap_or(0.0))
        .collect();
    parts.push(format!("{key}:{}", list(&dense)));
}

/// Whether two span lists describe the same bucket layout, folding zero-length spans into
/// the next span's offset.
pub fn spans_match(a: &[Span], b: &[Span]) -> bool {
    normalise_spans(a) == normalise_spans(b)
}

fn normalise_spans(spans: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    let mut carry = 0i32;
    for s in spans {
        if s.length == 0 {
            carry = carry.saturating_add(s.offset);
            continue;
        }
        out.push(Span {
            offset: s.offset.saturating_add(carry),
            length: s.length,
        });
        carry = 0;
    }
    out
}

fn buckets_match(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| almost_equal(*y, *x))
}

/// Histogram equality of DSL.md §7.3: both sides compacted, then schema, count, sum, zero
/// bucket, custom bounds, spans and buckets compared; the hint only when `hint_set`.
pub fn histograms_match(
    expected: &FloatHistogram,
    actual: &FloatHistogram,
    hint_set: bool,
) -> bool {
    let e = expected.compact();
    let a = actual.compact();
    if e.schema != a.schema
        || !almost_equal(a.count, e.count)
        || !almost_equal(a.sum, e.sum)
        || e.zero_threshold != a.zero_threshold
        || !almost_equal(a.zero_count, e.zero_count)
    {
        return false;
    }
    if e.uses_custom_buckets() && e.custom_values != a.custom_values {
        return false;
    }
    if !spans_match(&e.negative_spans, &a.negative_spans)
        || !buckets_match(&e.negative_buckets, &a.negative_buckets)
        || !spans_match(&e.positive_spans, &a.positive_spans)
        || !buckets_match(&e.positive_buckets, &a.positive_buckets)
    {
        return false;
    }
    !hint_set || e.counter_reset_hint == a.counter_reset_hint
}

impl fmt::Display for FloatHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.test_expression())
    }
}

/// Parses a histogram literal at the start of `s`, which must begin with `{{`. Returns the
/// literal and the number of bytes consumed (through the closing `}}`).
pub fn parse_histogram_literal(s: &str) -> Result<(HistogramLiteral, usize), String> {
    let body_start = s
        .strip_prefix("{{")
        .map(|_| 2)
        .ok_or_else(|| "histogram literal must start with '{{'".to_string())?;
    let close = s[body_start..]
        .find("}}")
        .ok_or_else(|| "unterminated histogram literal, missing '}}'".to_string())?;
    let body = &s[body_start..body_start + close];
    let consumed = body_start + close + 2;
    let mut h = FloatHistogram::default();
    let mut hint_set = false;
    let mut seen: Vec<String> = Vec::new();
    let mut offset = 0i32;
    let mut n_offset = 0i32;
    let mut buckets: Option<Vec<f64>> = None;
    let mut n_buckets: Option<Vec<f64>> = None;
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let colon = rest
            .find(':')
            .ok_or_else(|| format!("expected 'key:value' in histogram literal at {rest:?}"))?;
        let key = rest[..colon].trim().to_ascii_lowercase();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("invalid histogram key {:?}", &rest[..colon]));
        }
        if seen.contains(&key) {
            return Err(format!("duplicate key {key:?} in histogram literal"));
        }
        seen.push(key.clone());
        let after = rest[colon + 1..].trim_start();
        let (value, remainder) = if after.starts_with('[') {
            let end = after
                .find(']')
                .ok_or_else(|| format!("unterminated bucket list for {key:?}"))?;
            (&after[..=end], &after[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        match key.as_str() {
            "schema" => h.schema = parse_int(value, &key)?,
            "sum" => h.sum = parse_float(value, &key)?,
            "count" => h.count = parse_float(value, &key)?,
            "z_bucket" => h.zero_count = parse_float(value, &key)?,
            "z_bucket_w" => {
                if value.starts_with('-') {
                    return Err(format!("z_bucket_w must not be negative, got {value:?}"));
                }
                h.zero_threshold = parse_float(value, &key)?;
            }
            "offset" => offset = parse_int(value, &key)?,
            "n_offset" => n_offset = parse_int(value, &key)?,
            "buckets" => buckets = Some(parse_list(value, &key)?),
            "n_buckets" => n_buckets = Some(parse_list(value, &key)?),
            "custom_values" => h.custom_values = parse_list(value, &key)?,
            "counter_reset_hint" => {
                h.counter_reset_hint = CounterResetHint::parse(value)
                    .ok_or_else(|| format!("invalid counter_reset_hint {value:?}"))?;
                hint_set = true;
            }
            _ => return Err(format!("unknown histogram key {key:?}")),
        }
        rest = remainder.trim_start();
    }
    if let Some(b) = buckets {
        h.positive_spans = vec![Span {
            offset,
            length: span_len(b.len())?,
        }];
        h.positive_buckets = b;
    }
    if let Some(b) = n_buckets {
        h.negative_spans = vec![Span {
            offset: n_offset,
            length: span_len(b.len())?,
        }];
        h.negative_buckets = b;
    }
    Ok((
        HistogramLiteral {
            histogram: h,
            hint_set,
        },
        consumed,
    ))
}

fn span_len(n: usize) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| format!("too many buckets ({n})"))
}

fn parse_int(value: &str, key: &str) -> Result<i32, String> {
    value
        .parse::<i32>()
        .map_err(|_| format!("invalid integer {value:?} for histogram key {key:?}"))
}

fn parse_float(value: &str, key: &str) -> Result<f64, String> {
    parse_series_float(value)
        .ok_or_else(|| format!("invalid number {value:?} for histogram key {key:?}"))
}

fn parse_list(value: &str, key: &str) -> Result<Vec<f64>, String> {
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .ok_or_else(|| format!("expected '[...]' for histogram key {key:?}, got {value:?}"))?;
    inner
        .split_whitespace()
        .map(|v| parse_float(v, key))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lit(s: &str) -> HistogramLiteral {
        let (l, n) = parse_histogram_literal(s).unwrap();
        assert_eq!(n, s.len());
        l
    }

    #[test]
    fn parses_all_keys() {
        let l = lit("{{schema:-1 sum:5.5 count:4 z_bucket:1 z_bucket_w:0.001 buckets:[1 2 1] offset:1 n_buckets:[3] n_offset:-2 counter_reset_hint:gauge}}");
        let h = l.histogram;
        assert!(l.hint_set);
        assert_eq!(h.schema, -1);
        assert_eq!(h.sum, 5.5);
        assert_eq!(h.count, 4.0);
        assert_eq!(h.zero_count, 1.0);
        assert_eq!(h.zero_threshold, 0.001);
        assert_eq!(
            h.positive_spans,
            vec![Span {
                offset: 1,
                length: 3
            }]
        );
        assert_eq!(h.positive_buckets, vec![1.0, 2.0, 1.0]);
        assert_eq!(
            h.negative_spans,
            vec![Span {
                offset: -2,
                length: 1
            }]
        );
        assert_eq!(h.counter_reset_hint, CounterResetHint::Gauge);
    }

    #[test]
    fn empty_literal_and_defaults() {
        let l = lit("{{}}");
        assert!(!l.hint_set);
        assert_eq!(l.histogram, FloatHistogram::default());
        let l = lit("{{schema:-53 sum:1 count:1 custom_values:[5 10] buckets:[1]}}");
        assert!(l.histogram.uses_custom_buckets());
        assert_eq!(l.histogram.custom_values, vec![5.0, 10.0]);
    }

    #[test]
    fn rejects_duplicates_and_unknown_keys() {
        assert!(parse_histogram_literal("{{sum:1 sum:2}}").is_err());
        assert!(parse_histogram_literal("{{bogus:1}}").is_err());
        assert!(parse_histogram_literal("{{sum:1").is_err());
        assert!(parse_histogram_literal("{{counter_reset_hint:maybe}}").is_err());
    }

    #[test]
    fn addition_aligns_buckets() {
        let a = lit("{{schema:0 sum:4 count:4 buckets:[1 2 1]}}").histogram;
        let b = lit("{{sum:2 count:1 buckets:[1] offset:1}}").histogram;
        let s = a.combine(&b, false).unwrap();
        assert_eq!(s.positive_buckets, vec![1.0, 3.0, 1.0]);
        assert_eq!(s.count, 5.0);
        assert_eq!(s.sum, 6.0);
        let d = a.combine(&b, true).unwrap();
        assert_eq!(d.positive_buckets, vec![1.0, 1.0, 1.0]);
    }

    #[test]
    fn addition_reduces_finer_increment() {
        // Schema 0 buckets 1 and 2 both fall into schema −1 bucket 1.
        let a = lit("{{schema:-1 sum:4 count:1 buckets:[1] offset:1}}").histogram;
        let b = lit("{{schema:0 sum:4 count:4 buckets:[2 2] offset:1}}").histogram;
        let s = a.combine(&b, false).unwrap();
        assert_eq!(s.schema, -1);
        assert_eq!(
            s.positive_spans,
            vec![Span {
                offset: 1,
                length: 1
            }]
        );
        assert_eq!(s.positive_buckets, vec![5.0]);
        // The other way round is an error.
        assert!(b.combine(&a, false).is_err());
    }

    #[test]
    fn custom_bounds_must_agree() {
        let a = lit("{{schema:-53 custom_values:[5 10] buckets:[1]}}").histogram;
        let b = lit("{{schema:-53 custom_values:[5 11] buckets:[1]}}").histogram;
        assert!(a.combine(&b, false).is_err());
        assert!(a.combine(&a, false).is_ok());
    }

    #[test]
    fn comparison_ignores_empty_buckets_and_unset_hint() {
        let e = lit("{{schema:0 count:3 sum:2 buckets:[1 0 2]}}");
        let a =
            lit("{{schema:0 count:3.0000001 sum:2 buckets:[1] offset:0 counter_reset_hint:gauge}}");
        assert!(!histograms_match(&e.histogram, &a.histogram, e.hint_set));
        let a2 = lit(
            "{{schema:0 count:3.0000001 sum:2 buckets:[1 0 2.0000001] counter_reset_hint:gauge}}",
        );
        assert!(histograms_match(&e.histogram, &a2.histogram, e.hint_set));
        let e2 = lit("{{schema:0 count:3 sum:2 buckets:[1 0 2] counter_reset_hint:not_reset}}");
        assert!(!histograms_match(&e2.histogram, &a2.histogram, e2.hint_set));
        let e3 = lit("{{schema:1 count:3 sum:2 buckets:[1 0 2]}}");
        assert!(!histograms_match(&e3.histogram, &a2.histogram, false));
    }

    #[test]
    fn zero_length_spans_fold() {
        let a = [
            Span {
                offset: 2,
                length: 0,
            },
            Span {
                offset: 1,
                length: 2,
            },
        ];
        let b = [Span {
            offset: 3,
            length: 2,
        }];
        assert!(spans_match(&a, &b));
        assert!(!spans_match(
            &a,
            &[Span {
                offset: 2,
                length: 2
            }]
        ));
    }

    #[test]
    fn renders_test_expression() {
        let h = lit("{{schema:1 sum:5 count:4 buckets:[1 2] offset:2 counter_reset_hint:gauge}}");
        assert_eq!(
            h.histogram.test_expression(),
            "{{schema:1 count:4 sum:5 counter_reset_hint:gauge offset:2 buckets:[1 2]}}"
        );
    }
}
