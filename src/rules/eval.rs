//! What rule evaluation needs from the outside world: a [`RuleStore`] (read through the
//! storage `Queryable`, write rule outputs), the PromQL engine, external labels/URL, and the
//! instant query that turns an engine result into a vector (`rule result is not a vector or
//! scalar`). Also recording-rule evaluation (labels, duplicate and limit checks). This module
//! never keeps alert state and never schedules anything.

use std::collections::BTreeMap;
use std::sync::Arc;

use vigil_promql::engine::{Engine, MemStorage, Value};
use vigil_storage::labels::METRIC_NAME;
use vigil_storage::{Db, Labels, LabelsBuilder, Queryable};

use crate::template::{QueryFn, QuerySample};

/// The special NaN Prometheus uses as a staleness marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// One output sample of a rule.
#[derive(Clone, Debug, PartialEq)]
pub struct OutSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// Storage as rule evaluation sees it: reads through `Queryable`, writes rule outputs.
pub trait RuleStore: Queryable + Send + Sync {
    /// Appends `samples` and makes them visible to queries. Samples that are out of order,
    /// too old or duplicates are dropped (returned as the count of dropped samples); an error
    /// means nothing could be written.
    fn append_samples(&self, samples: &[OutSample]) -> Result<usize, String>;
}

impl RuleStore for MemStorage {
    fn append_samples(&self, samples: &[OutSample]) -> Result<usize, String> {
        let batch: Vec<(Labels, Vec<(i64, f64)>)> = samples
            .iter()
            .map(|s| (s.labels.clone(), vec![(s.t, s.v)]))
            .collect();
        if self.append_batch(&batch).is_ok() {
            return Ok(0);
        }
        // Some sample was rejected: append one at a time and drop the bad ones.
        let mut dropped = 0;
        for one in batch {
            if self.append_batch(std::slice::from_ref(&one)).is_err() {
                dropped += 1;
            }
        }
        Ok(dropped)
    }
}

impl RuleStore for Db {
    fn append_samples(&self, samples: &[OutSample]) -> Result<usize, String> {
        let mut app = self.appender();
        let mut dropped = 0;
        for s in samples {
            match app.append(&s.labels, s.t, s.v) {
                Ok(_) => {}
                Err(
                    vigil_storage::Error::OutOfOrderSample
                    | vigil_storage::Error::OutOfBounds
                    | vigil_storage::Error::DuplicateSample
                    | vigil_storage::Error::TooFarInFuture,
                ) => dropped += 1,
                Err(e) => {
                    tracing::warn!(labels = %s.labels, "rule output append failed: {e}");
                    dropped += 1;
                }
            }
        }
        // Rule outputs are recomputed, so they do not wait for an fsync (as in Prometheus);
        // they reach the disk with the next synced commit, segment cut or shutdown.
        app.commit_unsynced().map_err(|e| e.to_string())?;
        Ok(dropped)
    }
}

/// Everything a rule needs to evaluate.
#[derive(Clone)]
pub struct EvalContext {
    pub engine: Engine,
    pub store: Arc<dyn RuleStore>,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
}

impl EvalContext {
    /// Runs `expr` as an instant query at `ts_ms`; scalars become one sample without labels.
    pub fn query(&self, expr: &str, ts_ms: i64) -> Result<Vec<OutSample>, String> {
        let res = self
            .engine
            .instant(self.store.as_ref(), expr, ts_ms)
            .map_err(|e| e.to_string())?;
        match res.value {
            Value::Vector(v) => Ok(v
                .into_iter()
                .map(|s| OutSample {
                    labels: s.labels,
                    t: s.t,
                    v: s.v,
                })
                .collect()),
            Value::Scalar { t, v } => Ok(vec![OutSample {
                labels: Labels::empty(),
                t,
                v,
            }]),
            _ => Err("rule result is not a vector or scalar".to_string()),
        }
    }
}

impl QueryFn for EvalContext {
    fn query(&self, expr: &str, ts_ms: i64) -> Result<Vec<QuerySample>, String> {
        let out = EvalContext::query(self, expr, ts_ms)?;
        Ok(out
            .into_iter()
            .map(|s| QuerySample {
                labels: s
                    .labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect(),
                value: s.v,
            })
            .collect())
    }
}

/// A recording rule: `record` name, expression, and its (group-merged) labels.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingRule {
    pub name: String,
    /// The expression as written.
    pub expr: String,
    /// Group labels overridden by rule labels.
    pub labels: Vec<(String, String)>,
}

impl RecordingRule {
    /// Evaluates the rule at `query_ts` and returns the samples to write.
    pub fn eval(
        &self,
        ctx: &EvalContext,
        query_ts: i64,
        limit: i64,
    ) -> Result<Vec<OutSample>, String> {
        let vector = ctx.query(&self.expr, query_ts)?;
        let mut out = Vec::with_capacity(vector.len());
        let mut seen = std::collections::HashSet::with_capacity(vector.len());
        for s in vector {
            let mut b = LabelsBuilder::from(&s.labels);
            b.set(METRIC_NAME, &self.name);
            for (k, v) in &self.labels {
                b.set(k, v);
            }
            let labels = b.build();
            if !seen.insert(labels.clone()) {
                return Err(
                    "vector contains metrics with the same labelset after applying rule labels"
                        .to_string(),
                );
            }
            out.push(OutSample {
                labels,
                t: query_ts,
                v: s.v,
            });
        }
        if limit > 0 && out.len() as i64 > limit {
            return Err(format!(
                "exceeded limit of {limit} with {} series",
                out.len()
            ));
        }
        Ok(out)
    }
}

/// Merges group labels under rule labels (rule labels win), keeping file order.
pub fn merge_labels(
    group: &[(String, String)],
    rule: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = group
        .iter()
        .filter(|(k, _)| !rule.iter().any(|(rk, _)| rk == k))
        .cloned()
        .collect();
    out.extend(rule.iter().cloned());
    out
}

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 in UTC with milliseconds trimmed like Go's `time.RFC3339Nano`
/// (`2026-01-02T13:36:56.874Z`, `2026-01-02T13:20:00Z`).
pub fn format_rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let rem = ms.rem_euclid(MS_PER_DAY);
    let (y, mo, d) = civil_from_days(days);
    let secs = rem / 1000;
    let frac = rem % 1000;
    let mut s = format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    if frac > 0 {
        let f = format!("{frac:03}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Parses an RFC 3339 timestamp (`2024-01-01T00:00:00Z`, fractional seconds and `±hh:mm`
/// offsets allowed) into Unix milliseconds.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid RFC3339 timestamp {s:?}");
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        s.get(r).and_then(|x| x.parse::<i64>().ok()).ok_or_else(bad)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut frac_ms = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        let padded: String = digits.chars().chain("000".chars()).take(3).collect();
        frac_ms = padded.parse::<i64>().map_err(|_| bad())?;
    }
    let offset_ms = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(c @ (b'+' | b'-')) if i + 6 == b.len() => {
            let sign = if *c == b'+' { 1 } else { -1 };
            sign * (num(i + 1..i + 3)? * 3_600_000 + num(i + 4..i + 6)? * 60_000)
        }
        _ => return Err(bad()),
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    Ok(
        days_from_civil(y, mo, d) * MS_PER_DAY + ((h * 60 + mi) * 60 + sec) * 1000 + frac_ms
            - offset_ms,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        assert_eq!(
            parse_rfc3339("2024-01-01T00:00:00Z").unwrap(),
            1_704_067_200_000
        );
        assert_eq!(format_rfc3339(1_704_067_200_000), "2024-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(1_704_067_200_874),
            "2024-01-01T00:00:00.874Z"
        );
        assert_eq!(format_rfc3339(1_704_067_200_500), "2024-01-01T00:00:00.5Z");
        assert_eq!(
            parse_rfc3339("2024-01-01T02:00:00.25+02:00").unwrap(),
            1_704_067_200_250
        );
        assert!(parse_rfc3339("2024-01-01").is_err());
    }

    #[test]
    fn merge_labels_rule_wins() {
        let g = vec![
            ("team".to_string(), "a".to_string()),
            ("x".into(), "1".into()),
        ];
        let r = vec![("team".to_string(), "b".to_string())];
        assert_eq!(
            merge_labels(&g, &r),
            vec![
                ("x".to_string(), "1".to_string()),
                ("team".into(), "b".into())
            ]
        );
    }
}
