//! A rule group at run time: its rules in file order, one evaluation at a timestamp (each
//! rule's output written before the next rule runs, staleness markers for series a rule
//! stopped producing), per-rule health, and the evaluation slot (`offset` from a stable hash
//! of file and name). This module never sleeps or spawns: scheduling lives in `manager.rs`.

use std::collections::HashSet;
use std::time::Instant;

use vigil_storage::{Label, Labels};

use super::alert::{AlertingRule, OutgoingAlert};
use super::eval::{merge_labels, stale_nan, EvalContext, OutSample, RecordingRule};
use super::file::RuleGroup;

/// Health of a rule after its last evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Ok,
    Err,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// Recording or alerting.
#[derive(Clone, Debug)]
pub enum RuleKind {
    Recording(RecordingRule),
    Alerting(AlertingRule),
}

/// A rule with its evaluation bookkeeping.
#[derive(Clone, Debug)]
pub struct GroupRule {
    pub kind: RuleKind,
    pub health: Health,
    pub last_error: String,
    /// Wall-clock-free evaluation timestamp (ms) of the last run; `None` before the first.
    pub last_eval_ms: Option<i64>,
    pub eval_seconds: f64,
    /// Label sets written by the previous evaluation (for staleness markers).
    pub prev_series: HashSet<Labels>,
    /// Rule labels as written (group labels not merged), for reload comparison.
    pub source: super::file::Rule,
}

impl GroupRule {
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Recording(r) => &r.name,
            RuleKind::Alerting(a) => &a.name,
        }
    }

    pub fn expr(&self) -> &str {
        match &self.kind {
            RuleKind::Recording(r) => &r.expr,
            RuleKind::Alerting(a) => &a.expr,
        }
    }

    pub fn labels(&self) -> &[(String, String)] {
        match &self.kind {
            RuleKind::Recording(r) => &r.labels,
            RuleKind::Alerting(a) => &a.labels,
        }
    }
}

/// What one group evaluation produced besides stored samples.
#[derive(Clone, Debug, Default)]
pub struct GroupEvalOutcome {
    /// `(rule name, error)` for every rule that failed.
    pub errors: Vec<(String, String)>,
    /// Samples dropped by storage (out of order, duplicates).
    pub dropped: usize,
    /// Alerts to notify, with the expression of their rule.
    pub to_send: Vec<(String, Vec<OutgoingAlert>)>,
}

/// Notification settings a group needs to pick alerts to send.
#[derive(Clone, Copy, Debug)]
pub struct SendOpts<'a> {
    pub resend_delay_ms: i64,
    pub external_url: &'a str,
}

/// A rule group ready to evaluate.
#[derive(Clone, Debug)]
pub struct Group {
    pub name: String,
    pub file: String,
    pub interval_ms: i64,
    pub query_offset_ms: i64,
    pub limit: i64,
    pub rules: Vec<GroupRule>,
    /// The group as loaded, for reload comparison.
    pub source: RuleGroup,
    pub last_eval_ms: Option<i64>,
    pub eval_seconds: f64,
}

impl Group {
    /// Builds a group from its file model; unset interval/offset take the given defaults.
    pub fn new(
        file: &str,
        g: &RuleGroup,
        default_interval_ms: i64,
        default_offset_ms: i64,
    ) -> Group {
        let rules = g
            .rules
            .iter()
            .map(|r| {
                let labels = merge_labels(&g.labels, &r.labels);
                let kind = if r.is_alert() {
                    RuleKind::Alerting(AlertingRule::new(
                        &r.alert.value,
                        &r.expr.value,
                        r.for_ms,
                        r.keep_firing_for_ms,
                        labels,
                        r.annotations.clone(),
                    ))
                } else {
                    RuleKind::Recording(RecordingRule {
                        name: r.record.value.clone(),
                        expr: r.expr.value.clone(),
                        labels,
                    })
                };
                GroupRule {
                    kind,
                    health: Health::Unknown,
                    last_error: String::new(),
                    last_eval_ms: None,
                    eval_seconds: 0.0,
                    prev_series: HashSet::new(),
                    source: r.clone(),
                }
            })
            .collect();
        Group {
            name: g.name.clone(),
            file: file.to_string(),
            interval_ms: g.interval_ms.unwrap_or(default_interval_ms),
            query_offset_ms: g.query_offset_ms.unwrap_or(default_offset_ms),
            limit: g.limit,
            rules,
            source: g.clone(),
            last_eval_ms: None,
            eval_seconds: 0.0,
        }
    }

    /// The key groups are identified by: `file;name`.
    pub fn key(&self) -> String {
        group_key(&self.file, &self.name)
    }

    /// The evaluation slot offset within an interval, from a stable hash of file and name.
    pub fn offset_ms(&self) -> i64 {
        if self.interval_ms <= 0 {
            return 0;
        }
        let labels = Labels::from_sorted(vec![
            Label::new("file", &self.file),
            Label::new("name", &self.name),
        ]);
        (labels.stable_hash() % self.interval_ms as u64) as i64
    }

    /// The first evaluation timestamp strictly after `now_ms` on this group's grid.
    pub fn next_eval_after(&self, now_ms: i64) -> i64 {
        let iv = self.interval_ms.max(1);
        let offset = self.offset_ms();
        let base = (now_ms - offset).div_euclid(iv) * iv + offset;
        if base > now_ms {
            base
        } else {
            base + iv
        }
    }

    /// Marks every alerting rule as restored (no restoration wanted).
    pub fn mark_restored(&mut self) {
        for r in &mut self.rules {
            if let RuleKind::Alerting(a) = &mut r.kind {
                a.restored = true;
            }
        }
    }

    /// Evaluates every rule in order at `ts`. Each rule's output (and staleness markers for
    /// series it no longer produces) is written before the next rule runs.
    pub fn eval(
        &mut self,
        ctx: &EvalContext,
        ts: i64,
        send: Option<SendOpts<'_>>,
    ) -> GroupEvalOutcome {
        let started = Instant::now();
        let query_ts = ts - self.query_offset_ms;
        let mut outcome = GroupEvalOutcome::default();
        let limit = self.limit;
        let interval_ms = self.interval_ms;
        for rule in &mut self.rules {
            let rule_started = Instant::now();
            let result = match &mut rule.kind {
                RuleKind::Recording(r) => r.eval(ctx, query_ts, limit),
                RuleKind::Alerting(a) => a.eval(ctx, ts, query_ts, limit),
            };
            rule.last_eval_ms = Some(ts);
            match result {
                Err(e) => {
                    rule.health = Health::Err;
                    rule.last_error = e.clone();
                    outcome.errors.push((rule.name().to_string(), e));
                }
                Ok(samples) => {
                    rule.health = Health::Ok;
                    rule.last_error.clear();
                    let current: HashSet<Labels> =
                        samples.iter().map(|s| s.labels.clone()).collect();
                    let mut write: Vec<OutSample> = samples;
                    for gone in rule.prev_series.difference(&current) {
                        write.push(OutSample {
                            labels: gone.clone(),
                            t: query_ts,
                            v: stale_nan(),
                        });
                    }
                    if !write.is_empty() {
                        match ctx.store.append_samples(&write) {
                            Ok(d) => outcome.dropped += d,
                            Err(e) => {
                                tracing::warn!(group = %self.name, rule = rule.name(), "writing rule output failed: {e}");
                            }
                        }
                    }
                    rule.prev_series = current;
                }
            }
            if let (Some(send), RuleKind::Alerting(a)) = (send, &mut rule.kind) {
                let url = generator_url(send.external_url, &a.expr);
                let alerts = a.alerts_to_send(ts, send.resend_delay_ms, interval_ms, &url);
                if !alerts.is_empty() {
                    outcome.to_send.push((a.expr.clone(), alerts));
                }
            }
            rule.eval_seconds = rule_started.elapsed().as_secs_f64();
        }
        self.last_eval_ms = Some(ts);
        self.eval_seconds = started.elapsed().as_secs_f64();
        outcome
    }

    /// Stale markers for every series this group wrote last (when it is removed).
    pub fn stale_all(&mut self, ctx: &EvalContext, ts: i64) {
        let query_ts = ts - self.query_offset_ms;
        let mut write = Vec::new();
        for rule in &mut self.rules {
            for l in rule.prev_series.drain() {
                write.push(OutSample {
                    labels: l,
                    t: query_ts,
                    v: stale_nan(),
                });
            }
        }
        if !write.is_empty() {
            if let Err(e) = ctx.store.append_samples(&write) {
                tracing::warn!(group = %self.name, "writing stale markers failed: {e}");
            }
        }
    }

    /// Copies alert state and previous-series sets from `old` for rules with the same name
    /// and labels (used on reload).
    pub fn copy_state_from(&mut self, old: &Group) {
        for rule in &mut self.rules {
            let Some(o) = old
                .rules
                .iter()
                .find(|o| o.name() == rule.name() && o.labels() == rule.labels())
            else {
                continue;
            };
            rule.prev_series = o.prev_series.clone();
            if let (RuleKind::Alerting(new), RuleKind::Alerting(prev)) = (&mut rule.kind, &o.kind) {
                new.active = prev.active.clone();
                new.restored = prev.restored;
            }
        }
    }
}

/// `file;name`.
pub fn group_key(file: &str, name: &str) -> String {
    format!("{file};{name}")
}

/// `<external URL>/graph?g0.expr=<expr>&g0.tab=1`, as Prometheus links alerts.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    format!(
        "{}/graph?g0.expr={}&g0.tab=1",
        external_url.trim_end_matches('/'),
        crate::template::funcs::query_escape(expr)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use vigil_promql::engine::{Engine, MemStorage};
    use vigil_storage::{MatchType, Matcher, Queryable};

    use super::*;
    use crate::rules::parse_rules;

    fn group(text: &str) -> Group {
        let rg = parse_rules(text, &Default::default()).unwrap();
        Group::new("f.yml", &rg.groups[0], 60_000, 0)
    }

    #[test]
    fn slots_are_offset_by_a_stable_hash_and_aligned() {
        let g =
            group("groups:\n  - name: a\n    rules:\n      - record: r\n        expr: vector(1)\n");
        let off = g.offset_ms();
        assert!((0..60_000).contains(&off));
        assert_eq!(off, g.clone().offset_ms());
        let mut other = g.clone();
        other.name = "b".into();
        assert_ne!(off, other.offset_ms(), "different groups should spread");
        let now = 1_767_312_000_123;
        let next = g.next_eval_after(now);
        assert!(next > now && next - now <= 60_000);
        assert_eq!((next - off).rem_euclid(60_000), 0);
        assert_eq!(g.next_eval_after(next), next + 60_000);
    }

    #[test]
    fn query_offset_shifts_query_and_sample_time() {
        let mut g = group(
            "groups:\n  - name: a\n    query_offset: 1m\n    rules:\n      - record: r\n        expr: time()\n",
        );
        let store = Arc::new(MemStorage::new());
        let ctx = EvalContext {
            engine: Engine::default(),
            store: store.clone(),
            external_labels: Default::default(),
            external_url: String::new(),
        };
        let out = g.eval(&ctx, 600_000, None);
        assert!(out.errors.is_empty());
        let q = store.querier(0, i64::MAX / 2).unwrap();
        let s = q
            .select(&[Matcher::new(MatchType::Equal, "__name__", "r").unwrap()])
            .unwrap();
        let samples = s[0].samples().unwrap();
        assert_eq!((samples[0].t, samples[0].v), (540_000, 540.0));
    }

    #[test]
    fn query_error_sets_health_and_group_goes_on() {
        let mut g = group(
            "groups:\n  - name: a\n    rules:\n      - record: bad\n        expr: '\"str\"'\n      - record: good\n        expr: vector(1)\n",
        );
        let ctx = EvalContext {
            engine: Engine::default(),
            store: Arc::new(MemStorage::new()),
            external_labels: Default::default(),
            external_url: String::new(),
        };
        let out = g.eval(&ctx, 0, None);
        assert_eq!(out.errors.len(), 1);
        assert_eq!(g.rules[0].health, Health::Err);
        assert_eq!(
            g.rules[0].last_error,
            "rule result is not a vector or scalar"
        );
        assert_eq!(g.rules[1].health, Health::Ok);
    }
}
