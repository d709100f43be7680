//! The Alertmanager notifier: takes alerts chosen by rule evaluation, adds external labels
//! the alerts lack, applies the global `alert_relabel_configs` (a drop removes the alert),
//! and queues them for every alertmanager set (bounded; the oldest are dropped and counted
//! when full). One sender task per set applies the set's own `alert_relabel_configs` and
//! POSTs each batch to every Alertmanager of the set (`/api/v2/alerts`, or `/api/v1/alerts`
//! for `api_version: v1`) over http or https with the set's credentials; a batch is
//! delivered when at least one of them accepted it, else it is counted as dropped. Failures
//! are counted per Alertmanager and never retried (the next resend covers them). Sets are
//! replaced in place on reload, keeping the queue of every set that stays. Exposes
//! `prometheus_notifications_*` metrics and the `/api/v1/alertmanagers` data. This module
//! never evaluates rules.

mod client;
mod payload;
mod set;
mod status;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::relabel::RelabelConfig;
use crate::rules::alert::OutgoingAlert;
use crate::scrape::relabel::process_builder;
use vigil_storage::LabelsBuilder;

pub use client::{authorization_header, AmClient, PostError};
pub use payload::alerts_payload;
pub use set::{
    alerts_path, AlertmanagerSet, AlertmanagerTarget, ApiVersion, HttpAuth, ADDRESS_LABEL,
    ALERTS_PATH_LABEL, DEFAULT_SCHEME, DEFAULT_TIMEOUT, SCHEME_LABEL,
};

/// Prometheus' default `--alertmanager.notification-queue-capacity`.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Prometheus' default `--alertmanager.notification-batch-size`.
pub const DEFAULT_BATCH_SIZE: usize = 256;
/// The API v2 path appended to every Alertmanager URL (without a path prefix).
pub const ALERTS_API_PATH: &str = "/api/v2/alerts";

/// Notifier settings.
#[derive(Clone, Debug)]
pub struct NotifierOptions {
    /// Capacity of each alertmanager set's queue.
    pub queue_capacity: usize,
    pub batch_size: usize,
    /// `global.external_labels`, added to alerts lacking them before relabeling.
    pub external_labels: BTreeMap<String, String>,
    /// `alerting.alert_relabel_configs`, applied to every alert before it is queued.
    pub alert_relabel_configs: Vec<RelabelConfig>,
    /// Drain queues on shutdown instead of dropping them.
    pub drain_on_shutdown: bool,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions {
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            batch_size: DEFAULT_BATCH_SIZE,
            external_labels: BTreeMap::new(),
            alert_relabel_configs: Vec::new(),
            drain_on_shutdown: true,
        }
    }
}

/// Counters of one Alertmanager URL; they survive reloads that keep the URL.
#[derive(Default)]
struct AmMetrics {
    sent: AtomicU64,
    errors: AtomicU64,
    latency_sum_us: AtomicU64,
    latency_count: AtomicU64,
}

/// Relabeling applied before queueing.
struct Relabeling {
    external_labels: BTreeMap<String, String>,
    rules: Vec<RelabelConfig>,
}

/// The settings and Alertmanagers of a set as of the last (re)configuration.
struct SetRuntime {
    set: AlertmanagerSet,
    client: AmClient,
    ams: Vec<(AlertmanagerTarget, Arc<AmMetrics>)>,
}

/// One alertmanager set: its queue and sender state.
struct SetState {
    runtime: RwLock<Arc<SetRuntime>>,
    queue: Mutex<VecDeque<OutgoingAlert>>,
    wake: Notify,
    /// Set when a reload removed this set; its sender then exits.
    removed: AtomicBool,
}

/// Sends alerts to sets of Alertmanagers.
pub struct Notifier {
    opts: NotifierOptions,
    relabeling: RwLock<Arc<Relabeling>>,
    sets: RwLock<Vec<Arc<SetState>>>,
    metrics: Mutex<HashMap<String, Arc<AmMetrics>>>,
    dropped: AtomicU64,
    started: AtomicBool,
    stopping: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Applies external labels (where the alert lacks them) and `rules`; `None` when dropped.
fn relabel_alert(mut a: OutgoingAlert, r: &Relabeling) -> Option<OutgoingAlert> {
    if r.external_labels.is_empty() && r.rules.is_empty() {
        return Some(a);
    }
    let mut b = LabelsBuilder::from(&a.labels);
    for (k, v) in &r.external_labels {
        if b.get(k).is_none_or(str::is_empty) {
            b.set(k, v);
        }
    }
    if !process_builder(&mut b, &r.rules) {
        return None;
    }
    a.labels = b.build();
    Some(a)
}

impl Notifier {
    /// A notifier for one alertmanager set posting to `targets` with default settings; call
    /// [`Notifier::start`] to run its sender task.
    pub fn new(opts: NotifierOptions, targets: Vec<AlertmanagerTarget>) -> Arc<Notifier> {
        Notifier::with_sets(opts, vec![AlertmanagerSet::new(targets)])
    }

    /// A notifier for `sets` (one per `alerting.alertmanagers` entry).
    pub fn with_sets(opts: NotifierOptions, sets: Vec<AlertmanagerSet>) -> Arc<Notifier> {
        let n = Arc::new(Notifier {
            relabeling: RwLock::new(Arc::new(Relabeling {
                external_labels: opts.external_labels.clone(),
                rules: opts.alert_relabel_configs.clone(),
            })),
            opts,
            sets: RwLock::new(Vec::new()),
            metrics: Mutex::new(HashMap::new()),
            dropped: AtomicU64::new(0),
            started: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
        });
        n.set_alertmanagers(sets);
        n
    }

    /// Spawns one sender task per alertmanager set (inside a tokio runtime).
    pub fn start(self: &Arc<Self>) {
        // Under the sets lock, so a concurrent reload either sees `started` and spawns
        // its new sets itself, or adds them before this list is taken.
        let sets = {
            let sets = self.sets.write();
            if self.started.swap(true, Ordering::SeqCst) {
                return;
            }
            sets.clone()
        };
        for s in sets {
            self.spawn_sender(s);
        }
    }

    fn spawn_sender(self: &Arc<Self>, s: Arc<SetState>) {
        let me = self.clone();
        self.tasks
            .lock()
            .push(tokio::spawn(async move { me.sender(s).await }));
    }

    fn runtime(&self, set: AlertmanagerSet) -> Arc<SetRuntime> {
        let mut metrics = self.metrics.lock();
        let ams = set
            .active
            .iter()
            .map(|t| {
                let m = metrics.entry(t.url()).or_default().clone();
                (t.clone(), m)
            })
            .collect();
        drop(metrics);
        let client = AmClient::new(set.timeout, set.auth.clone(), set.tls_config.clone());
        Arc::new(SetRuntime { set, client, ams })
    }

    /// Replaces the alertmanager sets (on reload). The i-th new set takes over the queue of
    /// the i-th old one, so alerts queued for a set that stays are kept (they were relabeled
    /// globally only; the set's own relabeling happens when they are sent, with its new
    /// rules); sets beyond the new count are removed and their queued alerts counted as
    /// dropped. Counters of Alertmanager URLs that stay are kept, others are forgotten.
    pub fn set_alertmanagers(self: &Arc<Self>, new: Vec<AlertmanagerSet>) {
        let runtimes: Vec<Arc<SetRuntime>> = new.into_iter().map(|s| self.runtime(s)).collect();
        let mut spawn = Vec::new();
        let removed: Vec<Arc<SetState>> = {
            let mut sets = self.sets.write();
            let removed = if sets.len() > runtimes.len() {
                sets.drain(runtimes.len()..).collect()
            } else {
                Vec::new()
            };
            for (i, rt) in runtimes.into_iter().enumerate() {
                if let Some(s) = sets.get(i) {
                    *s.runtime.write() = rt;
                    s.wake.notify_one();
                } else {
                    let s = Arc::new(SetState {
                        runtime: RwLock::new(rt),
                        queue: Mutex::new(VecDeque::new()),
                        wake: Notify::new(),
                        removed: AtomicBool::new(false),
                    });
                    sets.push(s.clone());
                    spawn.push(s);
                }
            }
            let in_use: std::collections::HashSet<String> = sets
                .iter()
                .flat_map(|s| {
                    let rt = s.runtime.read().clone();
                    rt.ams.iter().map(|(t, _)| t.url()).collect::<Vec<_>>()
                })
                .collect();
            self.metrics.lock().retain(|url, _| in_use.contains(url));
            if !self.started.load(Ordering::SeqCst) {
                spawn.clear();
            }
            removed
        };
        for s in removed {
            s.removed.store(true, Ordering::SeqCst);
            let n = std::mem::take(&mut *s.queue.lock()).len();
            self.dropped.fetch_add(n as u64, Ordering::Relaxed);
            s.wake.notify_one();
        }
        if !self.stopping.load(Ordering::SeqCst) {
            for s in spawn {
                self.spawn_sender(s);
            }
        }
    }

    /// Replaces the external labels and global `alert_relabel_configs` (on reload); alerts
    /// already queued keep the labels they were queued with.
    pub fn set_relabeling(
        &self,
        external_labels: BTreeMap<String, String>,
        alert_relabel_configs: Vec<RelabelConfig>,
    ) {
        *self.relabeling.write() = Arc::new(Relabeling {
            external_labels,
            rules: alert_relabel_configs,
        });
    }

    /// Adds external labels and applies the global `alert_relabel_configs` to `alerts`, then
    /// queues what is left for every alertmanager set (dropping the oldest when a queue is
    /// full).
    pub fn send(&self, alerts: Vec<OutgoingAlert>) {
        if alerts.is_empty() || self.stopping.load(Ordering::SeqCst) {
            return;
        }
        let relabeling = self.relabeling.read().clone();
        let alerts: Vec<OutgoingAlert> = alerts
            .into_iter()
            .filter_map(|a| relabel_alert(a, &relabeling))
            .collect();
        if alerts.is_empty() {
            return;
        }
        let cap = self.opts.queue_capacity.max(1);
        for s in self.sets.read().iter() {
            let mut q = s.queue.lock();
            q.extend(alerts.iter().cloned());
            if q.len() > cap {
                let over = q.len() - cap;
                q.drain(..over);
                self.dropped.fetch_add(over as u64, Ordering::Relaxed);
            }
            drop(q);
            s.wake.notify_one();
        }
    }

    /// A callback for the rule manager.
    pub fn notify_fn(self: &Arc<Self>) -> crate::rules::manager::NotifyFn {
        let me = self.clone();
        Arc::new(move |alerts| me.send(alerts))
    }

    async fn sender(&self, s: Arc<SetState>) {
        loop {
            if s.removed.load(Ordering::SeqCst) {
                return;
            }
            let batch: Vec<OutgoingAlert> = {
                let mut q = s.queue.lock();
                let n = q.len().min(self.opts.batch_size.max(1));
                q.drain(..n).collect()
            };
            if batch.is_empty() {
                if self.stopping.load(Ordering::SeqCst) {
                    return;
                }
                s.wake.notified().await;
                continue;
            }
            let rt = s.runtime.read().clone();
            self.send_batch(&rt, batch).await;
        }
    }

    /// Applies the set's relabeling and posts the batch to all its Alertmanagers at once;
    /// counts it as dropped unless at least one accepted it.
    async fn send_batch(&self, rt: &Arc<SetRuntime>, batch: Vec<OutgoingAlert>) {
        let rules = &rt.set.alert_relabel_configs;
        let alerts: Vec<OutgoingAlert> = if rules.is_empty() {
            batch
        } else {
            let none = Relabeling {
                external_labels: BTreeMap::new(),
                rules: rules.clone(),
            };
            batch
                .into_iter()
                .filter_map(|a| relabel_alert(a, &none))
                .collect()
        };
        if alerts.is_empty() {
            return;
        }
        let count = alerts.len() as u64;
        if rt.ams.is_empty() {
            self.dropped.fetch_add(count, Ordering::Relaxed);
            return;
        }
        let body: Arc<[u8]> = alerts_payload(&alerts).into();
        let mut posts = JoinSet::new();
        for i in 0..rt.ams.len() {
            let (rt, body) = (rt.clone(), body.clone());
            posts.spawn(async move {
                let (target, m) = &rt.ams[i];
                let started = std::time::Instant::now();
                let res = rt.client.post_json(target, &body).await;
                m.latency_sum_us.fetch_add(
                    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
                m.latency_count.fetch_add(1, Ordering::Relaxed);
                m.sent.fetch_add(count, Ordering::Relaxed);
                match res {
                    Ok(()) => true,
                    Err(e) => {
                        m.errors.fetch_add(count, Ordering::Relaxed);
                        tracing::warn!(alertmanager = %target.url(), count, "error sending alerts: {e}");
                        false
                    }
                }
            });
        }
        let mut delivered = false;
        while let Some(r) = posts.join_next().await {
            delivered |= r.unwrap_or(false);
        }
        if !delivered {
            self.dropped.fetch_add(count, Ordering::Relaxed);
        }
    }

    /// Stops the sender tasks, after sending what is queued if `drain_on_shutdown`.
    pub async fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let sets = self.sets.read().clone();
        if !self.opts.drain_on_shutdown {
            for s in &sets {
                let n = std::mem::take(&mut *s.queue.lock()).len();
                self.dropped.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        for s in &sets {
            s.wake.notify_one();
        }
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Alerts waiting in all queues.
    pub fn queue_length(&self) -> usize {
        self.sets.read().iter().map(|s| s.queue.lock().len()).sum()
    }

    /// Alerts dropped: queue overflow, batches no Alertmanager of a set accepted, sets
    /// without Alertmanagers, removed sets and shutdown without draining.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The active Alertmanagers of every set, in order, with their counters.
    fn active(&self) -> Vec<(AlertmanagerTarget, Arc<AmMetrics>)> {
        self.sets
            .read()
            .iter()
            .flat_map(|s| s.runtime.read().ams.clone())
            .collect()
    }

    /// `(sent, errors)` alert counts of the i-th active Alertmanager (over all sets).
    pub fn counts(&self, i: usize) -> Option<(u64, u64)> {
        self.active().get(i).map(|(_, m)| {
            (
                m.sent.load(Ordering::Relaxed),
                m.errors.load(Ordering::Relaxed),
            )
        })
    }

    /// `(sent, errors)` alert counts of the Alertmanager posted to at `url`.
    pub fn counts_for(&self, url: &str) -> Option<(u64, u64)> {
        self.metrics.lock().get(url).map(|m| {
            (
                m.sent.load(Ordering::Relaxed),
                m.errors.load(Ordering::Relaxed),
            )
        })
    }
}
