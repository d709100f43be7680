//! Live rule evaluation: one tokio task per group, evaluating at `k·interval + offset`
//! (offset from a stable hash of file and name), skipping and counting missed slots; `for`
//! state restored after the first two evaluations at startup; reload that keeps unchanged
//! groups running, carries alert state into changed ones, stales outputs of removed ones,
//! and keeps the old rules when a file is broken; JSON for `/api/v1/rules` and
//! `/api/v1/alerts` in Prometheus' shapes; and `prometheus_rule_*` self-metrics.
//! Inputs are plain values (file paths, intervals, labels); this module never reads
//! prometheus.yml and never talks HTTP.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Map, Value as Json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigil_storage::Labels;

use super::alert::{Alert, OutgoingAlert};
use super::eval::{format_rfc3339, EvalContext};
use super::group::{Group, GroupRule, RuleKind, SendOpts};
use super::restore::{restore_for_state, RestoreOpts};
use super::{load_file, parse_rules, LoadOptions};

/// Prometheus' default `global.evaluation_interval` (1m).
pub const DEFAULT_EVALUATION_INTERVAL_MS: i64 = 60_000;
/// Prometheus' default `--rules.alert.resend-delay` (1m).
pub const DEFAULT_RESEND_DELAY_MS: i64 = 60_000;
/// Evaluations before `for` state is restored at startup.
const EVALS_BEFORE_RESTORE: u32 = 2;
/// A removed group's outputs go stale after this many of its intervals.
const STALE_AFTER_INTERVALS: i64 = 2;
/// `lastEvaluation` before the first run (Go's zero time).
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Current wall-clock time in Unix milliseconds; replaceable for tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;
/// Receives alerts to send after each evaluation.
pub type NotifyFn = Arc<dyn Fn(Vec<OutgoingAlert>) + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    })
}

/// Manager settings (plain values the config layer fills in).
#[derive(Clone)]
pub struct ManagerOptions {
    pub default_interval_ms: i64,
    pub default_query_offset_ms: i64,
    pub resend_delay_ms: i64,
    pub restore: RestoreOpts,
    pub load: LoadOptions,
    pub clock: Clock,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            default_interval_ms: DEFAULT_EVALUATION_INTERVAL_MS,
            default_query_offset_ms: 0,
            resend_delay_ms: DEFAULT_RESEND_DELAY_MS,
            restore: RestoreOpts::default(),
            load: LoadOptions::default(),
            clock: system_clock(),
        }
    }
}

/// Self-metrics of rule evaluation.
#[derive(Default)]
struct RuleMetrics {
    evaluations: AtomicU64,
    evaluation_failures: AtomicU64,
    iterations_missed: AtomicU64,
    iterations: AtomicU64,
}

struct RunningGroup {
    group: Arc<Mutex<Group>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

struct Inner {
    ctx: EvalContext,
    opts: ManagerOptions,
    notify: Option<NotifyFn>,
    metrics: RuleMetrics,
}

/// Where the rule groups handed to [`RuleManager::update_sources`] come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleSource {
    /// A rule file on disk (`rule_files`).
    File(PathBuf),
    /// Rule-file text generated in memory from the file at `path` (an SLO file); its groups
    /// carry `path` as their `file`.
    Generated { path: PathBuf, text: String },
}

impl RuleSource {
    /// The file the groups are attributed to.
    pub fn path(&self) -> &Path {
        match self {
            RuleSource::File(p) | RuleSource::Generated { path: p, .. } => p,
        }
    }
}

/// Evaluates rule groups on their intervals.
pub struct RuleManager {
    inner: Arc<Inner>,
    groups: tokio::sync::Mutex<BTreeMap<String, RunningGroup>>,
    started: std::sync::atomic::AtomicBool,
}

impl RuleManager {
    pub fn new(ctx: EvalContext, opts: ManagerOptions, notify: Option<NotifyFn>) -> RuleManager {
        RuleManager {
            inner: Arc::new(Inner {
                ctx,
                opts,
                notify,
                metrics: RuleMetrics::default(),
            }),
            groups: tokio::sync::Mutex::new(BTreeMap::new()),
            started: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Loads `files` and (re)starts groups. On any load error nothing changes and every
    /// error is returned (`file: message`). Must run inside a tokio runtime.
    pub async fn update(&self, files: &[PathBuf]) -> Result<(), Vec<String>> {
        let sources: Vec<RuleSource> = files.iter().cloned().map(RuleSource::File).collect();
        self.update_sources(&sources).await
    }

    /// Loads rule files and generated rule text (SLO files) and (re)starts their groups,
    /// with the semantics of [`RuleManager::update`]: unchanged groups keep running, changed
    /// ones carry their alert state over, removed ones go stale, and on any error (including
    /// a generated group named like a group of a rule file) nothing changes.
    pub async fn update_sources(&self, sources: &[RuleSource]) -> Result<(), Vec<String>> {
        let opts = &self.inner.opts;
        let mut new_groups: Vec<Group> = Vec::new();
        let mut errs = Vec::new();
        // Group names of rule files, and of generated sources, with the file they come from.
        let mut file_group_names: BTreeMap<String, String> = BTreeMap::new();
        let mut generated_names: Vec<(String, String)> = Vec::new();
        for src in sources {
            let name = src.path().display().to_string();
            let loaded = match src {
                RuleSource::File(f) => load_file(f, &opts.load),
                RuleSource::Generated { text, .. } => parse_rules(text, &opts.load),
            };
            match loaded {
                Ok(rg) => {
                    for g in &rg.groups {
                        let group_name = g.name.clone();
                        match src {
                            RuleSource::File(_) => {
                                file_group_names
                                    .entry(group_name)
                                    .or_insert_with(|| name.clone());
                            }
                            RuleSource::Generated { .. } => {
                                generated_names.push((group_name, name.clone()))
                            }
                        }
                    }
                    new_groups.extend(rg.groups.iter().map(|g| {
                        Group::new(
                            &name,
                            g,
                            opts.default_interval_ms,
                            opts.default_query_offset_ms,
                        )
                    }));
                }
                Err(es) => errs.extend(es.into_iter().map(|e| match src {
                    RuleSource::File(_) => format!("{name}: {e}"),
                    RuleSource::Generated { .. } => format!("{name}: generated rules: {e}"),
                })),
            }
        }
        for (group, from) in &generated_names {
            if let Some(file) = file_group_names.get(group) {
                errs.push(format!(
                    "{from}: generated group {group:?} has the name of a group in rule file {file}"
                ));
            }
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        let first_load = !self.started.swap(true, Ordering::SeqCst);
        let mut running = self.groups.lock().await;
        let mut old = std::mem::take(&mut *running);
        // Replaced and removed groups whose outputs may have to go stale.
        let mut retired: Vec<Arc<Mutex<Group>>> = Vec::new();
        for mut g in new_groups {
            let key = g.key();
            if let Some(prev) = old.remove(&key) {
                let unchanged = {
                    let p = prev.group.lock();
                    p.source == g.source
                        && p.interval_ms == g.interval_ms
                        && p.query_offset_ms == g.query_offset_ms
                };
                if unchanged {
                    running.insert(key, prev);
                    continue;
                }
                let _ = prev.stop.send(true);
                prev.task.abort();
                {
                    let p = prev.group.lock();
                    g.copy_state_from(&p);
                }
                retired.push(prev.group);
                let now = (opts.clock)();
                for r in &mut g.rules {
                    if let RuleKind::Alerting(a) = &mut r.kind {
                        a.recheck_for(now);
                        a.restored = true;
                    }
                }
            } else if !first_load {
                // Groups added by a reload are not restored.
                g.mark_restored();
            }
            running.insert(key, self.spawn(g, first_load));
        }
        // Removed groups stop now.
        for (_, prev) in old {
            let _ = prev.stop.send(true);
            prev.task.abort();
            retired.push(prev.group);
        }
        // Outputs of replaced or removed groups go stale after 2 of their intervals, unless a
        // running group produces them again by then.
        let still: Vec<Arc<Mutex<Group>>> = running.values().map(|r| r.group.clone()).collect();
        for group in retired {
            let inner = self.inner.clone();
            let still = still.clone();
            tokio::spawn(async move {
                let wait = group.lock().interval_ms * STALE_AFTER_INTERVALS;
                tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
                let produced: HashSet<Labels> = still
                    .iter()
                    .flat_map(|g| {
                        g.lock()
                            .rules
                            .iter()
                            .flat_map(|r| r.prev_series.iter().cloned().collect::<Vec<_>>())
                            .collect::<Vec<_>>()
                    })
                    .collect();
                let mut g = group.lock();
                for r in &mut g.rules {
                    r.prev_series.retain(|l| !produced.contains(l));
                }
                let now = (inner.opts.clock)();
                g.stale_all(&inner.ctx, now);
            });
        }
        Ok(())
    }

    fn spawn(&self, group: Group, restore: bool) -> RunningGroup {
        let group = Arc::new(Mutex::new(group));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run_group(
            self.inner.clone(),
            group.clone(),
            stop_rx,
            restore,
        ));
        RunningGroup { group, stop, task }
    }

    /// Stops every group task.
    pub async fn stop(&self) {
        let mut running = self.groups.lock().await;
        for (_, g) in std::mem::take(&mut *running) {
            let _ = g.stop.send(true);
            let _ = g.task.await;
        }
    }

    async fn snapshot(&self) -> Vec<Arc<Mutex<Group>>> {
        self.groups
            .lock()
            .await
            .values()
            .map(|g| g.group.clone())
            .collect()
    }

    /// The `data` object of `/api/v1/rules`: `{"groups":[...]}`.
    pub async fn rules_json(&self, exclude_alerts: bool) -> Json {
        let groups: Vec<Json> = self
            .snapshot()
            .await
            .iter()
            .map(|g| group_json(&g.lock(), exclude_alerts))
            .collect();
        json!({ "groups": groups })
    }

    /// The `data` object of `/api/v1/alerts`: `{"alerts":[...]}` over all rules.
    pub async fn alerts_json(&self) -> Json {
        let mut alerts = Vec::new();
        for g in self.snapshot().await {
            let g = g.lock();
            for r in &g.rules {
                if let RuleKind::Alerting(a) = &r.kind {
                    alerts.extend(a.active_alerts().map(alert_json));
                }
            }
        }
        json!({ "alerts": alerts })
    }

    /// `prometheus_rule_*` metrics in the text exposition format.
    pub async fn render_metrics(&self) -> String {
        let m = &self.inner.metrics;
        let mut s = String::new();
        let counters = [
            ("prometheus_rule_evaluations_total", "The total number of rule evaluations.", &m.evaluations),
            ("prometheus_rule_evaluation_failures_total", "The total number of rule evaluation failures.", &m.evaluation_failures),
            ("prometheus_rule_group_iterations_total", "The total number of scheduled rule group evaluations.", &m.iterations),
            ("prometheus_rule_group_iterations_missed_total", "The total number of rule group evaluations missed due to slow rule group evaluation.", &m.iterations_missed),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let name = "prometheus_rule_group_last_duration_seconds";
        let _ = writeln!(
            s,
            "# HELP {name} The duration of the last rule group evaluation.\n# TYPE {name} gauge"
        );
        for g in self.snapshot().await {
            let g = g.lock();
            let mut key = String::new();
            let _ = vigil_storage::labels::write_go_quoted(&mut key, &g.key());
            let _ = writeln!(s, "{name}{{rule_group={key}}} {}", g.eval_seconds);
        }
        s
    }
}

/// One group's evaluation loop.
async fn run_group(
    inner: Arc<Inner>,
    group: Arc<Mutex<Group>>,
    mut stop: watch::Receiver<bool>,
    restore: bool,
) {
    let clock = inner.opts.clock.clone();
    let (interval, mut next) = {
        let g = group.lock();
        (g.interval_ms.max(1), g.next_eval_after(clock()))
    };
    let mut evals = 0u32;
    loop {
        let wait = (next - clock()).max(0) as u64;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let now = clock();
        if now < next {
            continue;
        }
        let missed = (now - next) / interval;
        if missed > 0 {
            inner
                .metrics
                .iterations_missed
                .fetch_add(missed as u64, Ordering::Relaxed);
            next += missed * interval;
        }
        let ts = next;
        evals += 1;
        let restore_now = restore && evals == EVALS_BEFORE_RESTORE;
        let run = || {
            let mut g = group.lock();
            let send = SendOpts {
                resend_delay_ms: inner.opts.resend_delay_ms,
                external_url: &inner.ctx.external_url,
            };
            let outcome = g.eval(&inner.ctx, ts, Some(send));
            if restore_now {
                for e in restore_for_state(&mut g, inner.ctx.store.as_ref(), ts, inner.opts.restore)
                {
                    tracing::warn!(group = %g.name, "restoring alert state: {e}");
                }
            } else if !restore {
                g.mark_restored();
            }
            inner.metrics.iterations.fetch_add(1, Ordering::Relaxed);
            inner
                .metrics
                .evaluations
                .fetch_add(g.rules.len() as u64, Ordering::Relaxed);
            outcome
        };
        // Evaluation is synchronous CPU work: on a multi-threaded runtime, tell tokio so other
        // tasks move off this worker; a current-thread runtime (tests) runs it inline.
        let outcome = match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(run),
            _ => run(),
        };
        inner
            .metrics
            .evaluation_failures
            .fetch_add(outcome.errors.len() as u64, Ordering::Relaxed);
        for (rule, e) in &outcome.errors {
            tracing::warn!(rule = %rule, "rule evaluation failed: {e}");
        }
        if let Some(notify) = &inner.notify {
            let all: Vec<OutgoingAlert> =
                outcome.to_send.into_iter().flat_map(|(_, a)| a).collect();
            if !all.is_empty() {
                notify(all);
            }
        }
        next += interval;
    }
}

fn labels_json(pairs: impl IntoIterator<Item = (String, String)>) -> Json {
    Json::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k, Json::String(v)))
            .collect::<Map<_, _>>(),
    )
}

fn labels_of(l: &Labels) -> Json {
    labels_json(l.iter().map(|x| (x.name.to_string(), x.value.to_string())))
}

fn sorted_pairs(p: &[(String, String)]) -> Json {
    let m: BTreeMap<String, String> = p.iter().cloned().collect();
    labels_json(m)
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)` (`7e-01`, `1.5e+02`).
pub fn format_value(v: f64) -> String {
    super::unittest::format_float_e(v).replacen("E", "e", 1)
}

fn alert_json(a: &Alert) -> Json {
    let mut o = json!({
        "labels": labels_of(&a.labels),
        "annotations": labels_of(&a.annotations),
        "state": a.state.as_str(),
        "activeAt": format_rfc3339(a.active_at_ms),
        "value": format_value(a.value),
    });
    if let (Some(k), Some(obj)) = (a.keep_firing_since_ms, o.as_object_mut()) {
        obj.insert("keepFiringSince".into(), Json::String(format_rfc3339(k)));
    }
    o
}

fn canonical(expr: &str) -> String {
    vigil_promql::parser::parse_expr(expr)
        .map(|e| e.to_string())
        .unwrap_or_else(|_| expr.to_string())
}

fn last_eval(ms: Option<i64>) -> String {
    ms.map_or_else(|| ZERO_TIME.to_string(), format_rfc3339)
}

fn rule_json(r: &GroupRule, exclude_alerts: bool) -> Json {
    let mut o = match &r.kind {
        RuleKind::Recording(rr) => {
            let mut o = json!({"type": "recording", "name": rr.name, "query": canonical(&rr.expr)});
            if !rr.labels.is_empty() {
                o["labels"] = sorted_pairs(&rr.labels);
            }
            o
        }
        RuleKind::Alerting(a) => {
            let state = if r.last_eval_ms.is_none() && a.active.is_empty() {
                "unknown"
            } else {
                a.state().as_str()
            };
            let mut o = json!({
                "type": "alerting",
                "name": a.name,
                "query": canonical(&a.expr),
                "duration": a.for_ms as f64 / 1000.0,
                "keepFiringFor": a.keep_firing_for_ms as f64 / 1000.0,
                "labels": sorted_pairs(&a.labels),
                "annotations": sorted_pairs(&a.annotations),
                "state": state,
            });
            if !exclude_alerts {
                o["alerts"] = Json::Array(a.active_alerts().map(alert_json).collect());
            }
            o
        }
    };
    o["health"] = json!(r.health.as_str());
    if !r.last_error.is_empty() {
        o["lastError"] = json!(r.last_error);
    }
    o["evaluationTime"] = json!(r.eval_seconds);
    o["lastEvaluation"] = json!(last_eval(r.last_eval_ms));
    o
}

fn group_json(g: &Group, exclude_alerts: bool) -> Json {
    json!({
        "name": g.name,
        "file": g.file,
        "interval": g.interval_ms as f64 / 1000.0,
        "limit": g.limit,
        "rules": g.rules.iter().map(|r| rule_json(r, exclude_alerts)).collect::<Vec<_>>(),
        "evaluationTime": g.eval_seconds,
        "lastEvaluation": last_eval(g.last_eval_ms),
    })
}
