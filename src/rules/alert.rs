//! The alerting rule and its alert state machine (Prometheus `rules/alerting.go` semantics):
//! one alert instance per output label set, inactive → pending → firing → resolved with `for`
//! and `keep_firing_for`, label/annotation templating, the `limit` check, the synthetic
//! `ALERTS` / `ALERTS_FOR_STATE` samples and the choice of which alerts to (re)send. This
//! module never queries storage directly (it goes through `EvalContext`) and never sends
//! anything over the network.

use std::collections::BTreeMap;

use vigil_storage::labels::METRIC_NAME;
use vigil_storage::{Labels, LabelsBuilder};

use super::eval::{EvalContext, OutSample};
use crate::template::{AlertData, Env, Template, TemplateError};

/// Name of the synthetic series of pending and firing alerts.
pub const ALERTS_METRIC: &str = "ALERTS";
/// Name of the synthetic series holding each alert's `activeAt` (Unix seconds).
pub const ALERTS_FOR_STATE_METRIC: &str = "ALERTS_FOR_STATE";
/// Label carrying the alert name.
pub const ALERTNAME_LABEL: &str = "alertname";
/// Label carrying the alert state in `ALERTS`.
pub const ALERTSTATE_LABEL: &str = "alertstate";
/// How long a resolved alert is kept (and its resolution re-sent): 15 minutes.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;
/// `validUntil` is this many times max(group interval, resend delay) after the send.
const VALID_UNTIL_FACTOR: i64 = 4;

/// State of one alert instance (or, for the API, of a whole rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub state: AlertState,
    pub labels: Labels,
    /// Expanded annotations, sorted by name.
    pub annotations: Labels,
    pub value: f64,
    pub active_at_ms: i64,
    pub fired_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
    pub last_sent_at_ms: Option<i64>,
    pub valid_until_ms: i64,
    pub keep_firing_since_ms: Option<i64>,
}

/// An alert ready for the notifier (Alertmanager API v2 fields, times in ms).
#[derive(Clone, Debug, PartialEq)]
pub struct OutgoingAlert {
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at_ms: i64,
    /// `resolvedAt` for a resolved alert, else `validUntil`.
    pub ends_at_ms: i64,
    pub generator_url: String,
}

/// An alerting rule with its active alerts.
#[derive(Clone, Debug)]
pub struct AlertingRule {
    pub name: String,
    pub expr: String,
    pub for_ms: i64,
    pub keep_firing_for_ms: i64,
    /// Group labels overridden by rule labels (templates).
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    /// Active alerts by label set.
    pub active: BTreeMap<Labels, Alert>,
    /// True once `for` state has been restored (or restoration is not wanted); `ALERTS*`
    /// samples are only written when true.
    pub restored: bool,
    /// Parsed label/annotation templates by source text.
    templates: BTreeMap<String, Result<Template, TemplateError>>,
}

/// The variable definitions Prometheus puts in front of every alert template.
const ALERT_TEMPLATE_DEFS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

impl AlertingRule {
    pub fn new(
        name: &str,
        expr: &str,
        for_ms: i64,
        keep_firing_for_ms: i64,
        labels: Vec<(String, String)>,
        annotations: Vec<(String, String)>,
    ) -> AlertingRule {
        AlertingRule {
            name: name.to_string(),
            expr: expr.to_string(),
            for_ms,
            keep_firing_for_ms,
            labels,
            annotations,
            active: BTreeMap::new(),
            restored: false,
            templates: BTreeMap::new(),
        }
    }

    /// The rule's state for the API: the highest state among its alerts.
    pub fn state(&self) -> AlertState {
        self.active
            .values()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
    }

    /// Pending and firing alerts.
    pub fn active_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.active
            .values()
            .filter(|a| a.state != AlertState::Inactive)
    }

    fn expand(
        &mut self,
        ctx: &EvalContext,
        what: &str,
        text: &str,
        data: &crate::template::Value,
        ts: i64,
    ) -> String {
        if !text.contains("{{") {
            return text.to_string();
        }
        let env = Env {
            ts_ms: ts,
            external_url: &ctx.external_url,
            query: Some(ctx),
        };
        let name = &self.name;
        let tmpl = self.templates.entry(text.to_string()).or_insert_with(|| {
            Template::parse(
                &format!("__alert_{name}"),
                &format!("{ALERT_TEMPLATE_DEFS}{text}"),
            )
        });
        let res = match tmpl {
            Ok(t) => t.execute(data, &env),
            Err(e) => Err(e.clone()),
        };
        match res {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(alert = %self.name, "expanding alert {what} template failed: {e}");
                format!("<error expanding template: {e}>")
            }
        }
    }

    /// Evaluates the rule at `ts` (querying at `query_ts`), advances the state machine and
    /// returns the `ALERTS`/`ALERTS_FOR_STATE` samples to write (none until restored).
    pub fn eval(
        &mut self,
        ctx: &EvalContext,
        ts: i64,
        query_ts: i64,
        limit: i64,
    ) -> Result<Vec<OutSample>, String> {
        let vector = ctx.query(&self.expr, query_ts)?;
        let mut current: BTreeMap<Labels, Alert> = BTreeMap::new();
        for s in &vector {
            let data = AlertData {
                labels: s
                    .labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect(),
                external_labels: ctx.external_labels.clone(),
                external_url: ctx.external_url.clone(),
                value: s.v,
            }
            .to_value();
            let mut b = LabelsBuilder::from(&s.labels);
            b.del(METRIC_NAME);
            for (k, v) in self.labels.clone() {
                let expanded = self.expand(ctx, "label", &v, &data, ts);
                b.set(&k, &expanded);
            }
            b.set(ALERTNAME_LABEL, &self.name);
            let labels = b.build();
            let mut ab = LabelsBuilder::new();
            for (k, v) in self.annotations.clone() {
                let expanded = self.expand(ctx, "annotation", &v, &data, ts);
                ab.set(&k, &expanded);
            }
            let annotations = ab.build();
            if current.contains_key(&labels) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .to_string(),
                );
            }
            current.insert(
                labels.clone(),
                Alert {
                    state: AlertState::Pending,
                    labels,
                    annotations,
                    value: s.v,
                    active_at_ms: ts,
                    fired_at_ms: None,
                    resolved_at_ms: None,
                    last_sent_at_ms: None,
                    valid_until_ms: 0,
                    keep_firing_since_ms: None,
                },
            );
        }

        for (labels, new) in current.iter() {
            match self.active.get_mut(labels) {
                Some(a) if a.state != AlertState::Inactive => {
                    a.value = new.value;
                    a.annotations = new.annotations.clone();
                }
                _ => {
                    self.active.insert(labels.clone(), new.clone());
                }
            }
        }

        let for_ms = self.for_ms;
        let keep_ms = self.keep_firing_for_ms;
        self.active.retain(|labels, a| {
            if current.contains_key(labels) {
                if a.state == AlertState::Pending && ts - a.active_at_ms >= for_ms {
                    a.state = AlertState::Firing;
                    a.fired_at_ms = Some(ts);
                }
                if a.state == AlertState::Firing {
                    a.keep_firing_since_ms = None;
                }
                return true;
            }
            match a.state {
                AlertState::Pending => false,
                AlertState::Inactive => a
                    .resolved_at_ms
                    .is_some_and(|r| ts - r <= RESOLVED_RETENTION_MS),
                AlertState::Firing => {
                    let since = *a.keep_firing_since_ms.get_or_insert(ts);
                    if keep_ms > 0 && ts - since < keep_ms {
                        return true;
                    }
                    a.state = AlertState::Inactive;
                    a.resolved_at_ms = Some(ts);
                    a.keep_firing_since_ms = None;
                    true
                }
            }
        });

        if limit > 0 {
            let n = self.active_alerts().count() as i64;
            if n > limit {
                self.active.clear();
                return Err(format!("exceeded limit of {limit} with {n} alerts"));
            }
        }

        if !self.restored {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for a in self.active_alerts() {
            let mut b = LabelsBuilder::from(&a.labels);
            b.set(METRIC_NAME, ALERTS_METRIC);
            b.set(ALERTSTATE_LABEL, a.state.as_str());
            out.push(OutSample {
                labels: b.build(),
                t: query_ts,
                v: 1.0,
            });
            let mut b = LabelsBuilder::from(&a.labels);
            b.set(METRIC_NAME, ALERTS_FOR_STATE_METRIC);
            out.push(OutSample {
                labels: b.build(),
                t: query_ts,
                v: a.active_at_ms.div_euclid(1000) as f64,
            });
        }
        Ok(out)
    }

    /// Drops firing alerts back to pending when `for` now exceeds their age (after a reload).
    pub fn recheck_for(&mut self, ts: i64) {
        for a in self.active.values_mut() {
            if a.state == AlertState::Firing && ts - a.active_at_ms < self.for_ms {
                a.state = AlertState::Pending;
                a.fired_at_ms = None;
            }
        }
    }

    /// Alerts to send after an evaluation at `ts`: firing or resolved alerts whose resolution
    /// was not sent yet or whose last send is older than `resend_delay_ms`. Marks them sent.
    pub fn alerts_to_send(
        &mut self,
        ts: i64,
        resend_delay_ms: i64,
        interval_ms: i64,
        generator_url: &str,
    ) -> Vec<OutgoingAlert> {
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if a.state == AlertState::Pending {
                continue;
            }
            let resolved_unsent = match (a.resolved_at_ms, a.last_sent_at_ms) {
                (Some(r), Some(s)) => r > s,
                (Some(_), None) => true,
                _ => false,
            };
            let due = a.last_sent_at_ms.is_none_or(|s| s + resend_delay_ms < ts);
            if !(resolved_unsent || due) {
                continue;
            }
            a.last_sent_at_ms = Some(ts);
            a.valid_until_ms = ts + VALID_UNTIL_FACTOR * interval_ms.max(resend_delay_ms);
            out.push(OutgoingAlert {
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at_ms: a.fired_at_ms.unwrap_or(a.active_at_ms),
                ends_at_ms: a.resolved_at_ms.unwrap_or(a.valid_until_ms),
                generator_url: generator_url.to_string(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use vigil_promql::engine::{Engine, MemStorage};

    use super::*;
    use crate::rules::eval::{stale_nan, RuleStore};

    const MIN: i64 = 60_000;

    fn ctx() -> (EvalContext, Arc<MemStorage>) {
        let store = Arc::new(MemStorage::new());
        (
            EvalContext {
                engine: Engine::default(),
                store: store.clone(),
                external_labels: Default::default(),
                external_url: String::new(),
            },
            store,
        )
    }

    fn set(store: &MemStorage, name: &str, job: &str, t: i64, v: f64) {
        let labels = Labels::from_pairs(&[("__name__", name), ("job", job)]).unwrap();
        store.append_samples(&[OutSample { labels, t, v }]).unwrap();
    }

    fn rule(for_ms: i64, keep_ms: i64) -> AlertingRule {
        let mut r = AlertingRule::new("A", "cond > 0", for_ms, keep_ms, vec![], vec![]);
        r.restored = true;
        r
    }

    #[test]
    fn pending_alert_that_disappears_is_deleted_and_never_sent() {
        let (ctx, store) = ctx();
        let mut r = rule(5 * MIN, 0);
        set(&store, "cond", "a", 0, 1.0);
        r.eval(&ctx, 0, 0, 0).unwrap();
        assert_eq!(r.state(), AlertState::Pending);
        assert!(r.alerts_to_send(0, MIN, MIN, "").is_empty());
        set(&store, "cond", "a", MIN, stale_nan());
        r.eval(&ctx, MIN, MIN, 0).unwrap();
        assert!(r.active.is_empty());
    }

    #[test]
    fn keep_firing_for_then_resolved_kept_15m_and_resent() {
        let (ctx, store) = ctx();
        let mut r = rule(0, 2 * MIN);
        set(&store, "cond", "a", 0, 1.0);
        r.eval(&ctx, 0, 0, 0).unwrap();
        assert_eq!(r.state(), AlertState::Firing);
        let sent = r.alerts_to_send(0, MIN, MIN, "u");
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].ends_at_ms, 4 * MIN);
        // Condition gone at 1m: still firing (keep_firing_for 2m) with keepFiringSince.
        set(&store, "cond", "a", MIN, stale_nan());
        r.eval(&ctx, MIN, MIN, 0).unwrap();
        let a = r.active.values().next().unwrap();
        assert_eq!(
            (a.state, a.keep_firing_since_ms),
            (AlertState::Firing, Some(MIN))
        );
        // Not due for resend at 1m (last sent 0 + 1m is not before 1m)...
        assert!(r.alerts_to_send(MIN, MIN, MIN, "u").is_empty());
        r.eval(&ctx, 2 * MIN, 2 * MIN, 0).unwrap();
        // ...but due at 2m.
        assert_eq!(r.alerts_to_send(2 * MIN, MIN, MIN, "u").len(), 1);
        r.eval(&ctx, 3 * MIN, 3 * MIN, 0).unwrap();
        let a = r.active.values().next().unwrap();
        assert_eq!(
            (a.state, a.resolved_at_ms),
            (AlertState::Inactive, Some(3 * MIN))
        );
        // The resolution is sent at once with endsAt = resolvedAt.
        let sent = r.alerts_to_send(3 * MIN, MIN, MIN, "u");
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].ends_at_ms, 3 * MIN);
        assert_eq!(sent[0].starts_at_ms, 0);
        assert!(r.active_alerts().next().is_none());
        // Kept for 15 minutes after resolution, then deleted.
        r.eval(&ctx, 18 * MIN, 18 * MIN, 0).unwrap();
        assert_eq!(r.active.len(), 1);
        r.eval(&ctx, 18 * MIN + 1, 18 * MIN + 1, 0).unwrap();
        assert!(r.active.is_empty());
    }

    #[test]
    fn limit_clears_state_and_fails() {
        let (ctx, store) = ctx();
        let mut r = rule(0, 0);
        set(&store, "cond", "a", 0, 1.0);
        set(&store, "cond", "b", 0, 1.0);
        assert_eq!(r.eval(&ctx, 0, 0, 2).unwrap().len(), 4);
        let err = r.eval(&ctx, 0, 0, 1).unwrap_err();
        assert_eq!(err, "exceeded limit of 1 with 2 alerts");
        assert!(r.active.is_empty());
    }

    #[test]
    fn alerts_series_use_query_time_and_active_at_seconds() {
        let (ctx, store) = ctx();
        let mut r = rule(MIN, 0);
        set(&store, "cond", "a", 0, 7.0);
        let out = r.eval(&ctx, 90_500, 30_500, 0).unwrap();
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|s| s.t == 30_500));
        let fs = out
            .iter()
            .find(|s| s.labels.metric_name() == Some(ALERTS_FOR_STATE_METRIC))
            .unwrap();
        assert_eq!(fs.v, 90.0);
        assert_eq!(fs.labels.get(ALERTNAME_LABEL), Some("A"));
        assert_eq!(fs.labels.get("job"), Some("a"));
    }

    #[test]
    fn raising_for_on_reload_drops_firing_back_to_pending() {
        let (ctx, store) = ctx();
        let mut r = rule(0, 0);
        set(&store, "cond", "a", 0, 1.0);
        r.eval(&ctx, 0, 0, 0).unwrap();
        assert_eq!(r.state(), AlertState::Firing);
        r.for_ms = 10 * MIN;
        r.recheck_for(MIN);
        assert_eq!(r.state(), AlertState::Pending);
    }
}
