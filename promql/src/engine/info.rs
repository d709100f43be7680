//! `info(v, {selector})`: enriches each series of `v` with the data labels of the info
//! series (`target_info` by default) that share its identifying labels (`instance`,
//! `job`), as in Prometheus 3 (`promql/info.go`, behaviour only). The info series are
//! selected once for the whole query, evaluated with lookback at the time pinned by the
//! first selector's `@`/`offset` (subqueries included), and joined per step, the newest
//! info sample winning a signature. This module reads storage only through the selector
//! evaluation and never changes the values of the base series.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use vigil_storage::labels::METRIC_NAME;
use vigil_storage::{Labels, LabelsBuilder, MatchType, Matcher};

use super::error::{exec_err, Error, Result};
use super::eval::Evaluator;
use super::selector::SelectorOutput;
use super::value::{ESeries, EVal, Point};
use crate::parser::ast::{Call, Expr, VectorSelector};

/// The info metric used when the selector names none.
const TARGET_INFO: &str = "target_info";
/// Labels that identify the target an info series describes.
const IDENTIFYING_LABELS: [&str; 2] = ["instance", "job"];
/// Name pattern assumed when the selector has only negative `__name__` matchers.
const INFO_NAME_PATTERN: &str = ".+_info";

fn name_matcher(t: MatchType, v: &str) -> Result<Matcher> {
    Matcher::new(t, METRIC_NAME, v).map_err(|e| Error::Execution(e.to_string()))
}

/// The `__name__` matchers that select info series: as given when one is positive; with
/// `.+_info` prepended when all are negative; `target_info` when there are none.
fn effective_name_matchers(given: &[Matcher]) -> Result<Vec<Matcher>> {
    if given
        .iter()
        .any(|m| matches!(m.match_type, MatchType::Equal | MatchType::Regex))
    {
        return Ok(given.to_vec());
    }
    if given.is_empty() {
        return Ok(vec![name_matcher(MatchType::Equal, TARGET_INFO)?]);
    }
    let mut out = vec![name_matcher(MatchType::Regex, INFO_NAME_PATTERN)?];
    out.extend_from_slice(given);
    Ok(out)
}

/// The `@` timestamp and the offset that govern when the info series are read: those of the
/// first vector selector in `e`, with the offsets of enclosing subqueries added up to the
/// innermost one carrying an `@`.
fn info_time_pin(e: &Expr) -> (Option<i64>, i64) {
    let mut found: Option<(Option<i64>, i64)> = None;
    e.walk(&mut |node, path| {
        if found.is_some() {
            return false;
        }
        let vs = match node {
            Expr::VectorSelector(v) => v,
            Expr::MatrixSelector(m) => &m.vector_selector,
            _ => return true,
        };
        let (mut ts, mut offset) = (vs.timestamp, vs.original_offset);
        for p in path.iter().rev() {
            if ts.is_some() {
                break;
            }
            if let Expr::Subquery(sq) = p {
                offset += sq.original_offset;
                ts = sq.timestamp;
            }
        }
        found = Some((ts, offset));
        false
    });
    found.unwrap_or((None, 0))
}

/// The join key of `l` for info metric `name`: the name plus its identifying labels.
fn signature(name: &str, l: &Labels) -> Vec<(String, String)> {
    let mut sig = vec![(METRIC_NAME.to_string(), name.to_string())];
    for id in IDENTIFYING_LABELS {
        if let Some(v) = l.get(id) {
            sig.push((id.to_string(), v.to_string()));
        }
    }
    sig
}

impl Evaluator<'_, '_> {
    /// Evaluates `info(v [, selector])`.
    pub(crate) fn eval_info(&self, c: &Call) -> Result<EVal> {
        let Some(base_expr) = c.args.first() else {
            return exec_err("info() needs an instant vector argument");
        };
        let (at, offset) = info_time_pin(base_expr);
        let base = self.eval_vector(base_expr)?;

        // Data label matchers by label name, and the `__name__` ones apart.
        let mut data_matchers: BTreeMap<String, Vec<Matcher>> = BTreeMap::new();
        let mut given_names: Vec<Matcher> = Vec::new();
        let selector = match c.args.get(1).map(Expr::unwrap_parens) {
            Some(Expr::VectorSelector(vs)) => Some(vs),
            Some(other) => {
                return exec_err(format!("info(): expected a label selector, got {other}"))
            }
            None => None,
        };
        match selector {
            Some(vs) => {
                for m in &vs.matchers {
                    if m.name.as_ref() as &str == METRIC_NAME {
                        given_names.push(m.clone());
                    } else {
                        data_matchers
                            .entry(m.name.to_string())
                            .or_default()
                            .push(m.clone());
                    }
                }
            }
            None => given_names.push(name_matcher(MatchType::Equal, TARGET_INFO)?),
        }
        let name_filter = effective_name_matchers(&given_names)?;

        // Info series themselves are passed through unenriched.
        let ignored: Vec<bool> = base
            .iter()
            .map(|s| {
                let name = s.metric.get(METRIC_NAME).unwrap_or("");
                name_filter.iter().all(|m| m.matches(name))
            })
            .collect();

        let info =
            self.select_info_series(&base, &ignored, &data_matchers, &given_names, at, offset, c)?;

        // Signatures of the info series, per info metric name.
        let info_names: BTreeSet<String> = info
            .iter()
            .filter_map(|s| s.metric.get(METRIC_NAME).map(str::to_string))
            .collect();
        let info_sigs: Vec<Vec<(String, String)>> = info
            .iter()
            .map(|s| signature(s.metric.get(METRIC_NAME).unwrap_or(""), &s.metric))
            .collect();
        let all_match_empty = data_matchers.values().flatten().all(|m| m.matches(""));

        let steps = self.steps();
        let mut cursors_base = vec![0usize; base.len()];
        let mut cursors_info = vec![0usize; info.len()];
        let mut out: Vec<ESeries> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        for step in 0..steps {
            self.check_interrupt()?;
            let t = self.step_ts(step);
            // Newest info sample per signature at this step.
            let mut by_sig: HashMap<&[(String, String)], (usize, f64)> = HashMap::new();
            for (ii, s) in info.iter().enumerate() {
                let Some(p) = point_at(&s.points, &mut cursors_info[ii], t) else {
                    continue;
                };
                let sig = info_sigs[ii].as_slice();
                match by_sig.get(sig) {
                    Some(&(other, orig_t)) if orig_t == p.v => {
                        return exec_err(format!(
                            "found duplicate series for info metric: existing {} @ {}, new {} @ {}",
                            info[other].metric,
                            (orig_t * 1000.0) as i64,
                            s.metric,
                            (p.v * 1000.0) as i64
                        ));
                    }
                    Some(&(_, orig_t)) if orig_t > p.v => {}
                    _ => {
                        by_sig.insert(sig, (ii, p.v));
                    }
                }
            }
            for (bi, bs) in base.iter().enumerate() {
                let Some(p) = point_at(&bs.points, &mut cursors_base[bi], t) else {
                    continue;
                };
                let labels = if ignored[bi] {
                    (*bs.metric).clone()
                } else {
                    let mut added = LabelsBuilder::new();
                    let mut seen = 0usize;
                    for name in &info_names {
                        let sig = signature(name, &bs.metric);
                        let Some(&(ii, _)) = by_sig.get(sig.as_slice()) else {
                            continue;
                        };
                        for l in info[ii].metric.iter() {
                            let n: &str = &l.name;
                            if n == METRIC_NAME
                                || (!data_matchers.is_empty() && !data_matchers.contains_key(n))
                            {
                                continue;
                            }
                            if added.get(n).is_some_and(|v| v != &*l.value) {
                                return exec_err(format!("conflicting label: {n}"));
                            }
                            if bs.metric.has(n) {
                                continue;
                            }
                            added.set(n, &l.value);
                        }
                        seen += 1;
                    }
                    if seen == 0 && !all_match_empty {
                        continue;
                    }
                    let mut b = LabelsBuilder::from(&*bs.metric);
                    for l in added.build().iter() {
                        b.set(&l.name, &l.value);
                    }
                    b.build()
                };
                match index.get(&labels) {
                    Some(&i) => {
                        let s = &mut out[i];
                        if s.points.last().is_some_and(|q| q.t == t) {
                            return exec_err(
                                "vector cannot contain metrics with the same labelset",
                            );
                        }
                        s.points.push(Point { t, v: p.v });
                    }
                    None => {
                        index.insert(labels.clone(), out.len());
                        out.push(ESeries {
                            metric: Arc::new(labels),
                            points: vec![Point { t, v: p.v }],
                            drop_name: bs.drop_name,
                        });
                    }
                }
            }
        }
        self.check_samples(super::value::total_points(&out))?;
        Ok(EVal::Vector(out))
    }

    /// Selects and evaluates the info series that may join the non-ignored base series;
    /// each point's value is the timestamp (seconds) of the info sample it came from.
    #[allow(clippy::too_many_arguments)]
    fn select_info_series(
        &self,
        base: &[ESeries],
        ignored: &[bool],
        data_matchers: &BTreeMap<String, Vec<Matcher>>,
        given_names: &[Matcher],
        at: Option<i64>,
        offset: i64,
        c: &Call,
    ) -> Result<Vec<ESeries>> {
        let mut id_values: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (s, ign) in base.iter().zip(ignored) {
            if *ign {
                continue;
            }
            for id in IDENTIFYING_LABELS {
                if let Some(v) = s.metric.get(id).filter(|v| !v.is_empty()) {
                    let vals = id_values.entry(id).or_default();
                    if !vals.iter().any(|x| x == v) {
                        vals.push(v.to_string());
                    }
                }
            }
        }
        if id_values.is_empty() {
            return Ok(Vec::new());
        }
        let mut matchers = Vec::new();
        for (id, vals) in &id_values {
            let re = vals
                .iter()
                .map(|v| regex::escape(v))
                .collect::<Vec<_>>()
                .join("|");
            matchers.push(
                Matcher::new(MatchType::Regex, id, &re)
                    .map_err(|e| Error::Execution(e.to_string()))?,
            );
        }
        matchers.extend(data_matchers.values().flatten().cloned());
        matchers.extend(effective_name_matchers(given_names)?);
        let vs = VectorSelector {
            name: String::new(),
            matchers,
            original_offset: offset,
            original_offset_expr: None,
            offset,
            timestamp: at,
            start_or_end: None,
            anchored: false,
            smoothed: false,
            bypass_empty_matcher_check: true,
            pos: c.pos,
        };
        self.eval_vector_selector(&vs, SelectorOutput::Timestamp)
    }
}

/// The point of `points` at step time `t`, advancing `cursor` (steps are visited in order).
fn point_at(points: &[Point], cursor: &mut usize, t: i64) -> Option<Point> {
    while *cursor < points.len() && points[*cursor].t < t {
        *cursor += 1;
    }
    points.get(*cursor).filter(|p| p.t == t).copied()
}
