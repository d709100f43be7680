//! The Alertmanager notifier: takes alerts chosen by rule evaluation, adds external labels,
//! queues them per Alertmanager (bounded; the oldest are dropped and counted when full),
//! and POSTs batches to `<scheme>://<host><path_prefix>/api/v2/alerts` as Alertmanager API
//! v2 JSON with a timeout and optional basic auth. A failed batch is counted and dropped (the
//! next resend covers it). Exposes `prometheus_notifications_*` metrics and the
//! `/api/v1/alertmanagers` data. This module never evaluates rules and never retries.

mod client;
mod payload;

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value as Json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::rules::alert::OutgoingAlert;
use vigil_storage::LabelsBuilder;

pub use client::{post_json, PostError};
pub use payload::{alerts_payload, base64_encode};

/// Prometheus' default `--alertmanager.notification-queue-capacity`.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Prometheus' default `--alertmanager.notification-batch-size`.
pub const DEFAULT_BATCH_SIZE: usize = 256;
/// Prometheus' default Alertmanager `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The API path appended to every Alertmanager URL.
pub const ALERTS_API_PATH: &str = "/api/v2/alerts";

/// One Alertmanager to send to.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertmanagerTarget {
    /// `http` (only plain HTTP is supported by this client).
    pub scheme: String,
    /// `host:port`.
    pub host: String,
    /// Prefix before `/api/v2/alerts`, e.g. `/alertmanager`.
    pub path_prefix: String,
    pub timeout: Duration,
    pub basic_auth: Option<(String, String)>,
}

impl AlertmanagerTarget {
    /// A target at `host:port` with defaults.
    pub fn new(host: &str) -> AlertmanagerTarget {
        AlertmanagerTarget {
            scheme: "http".into(),
            host: host.into(),
            path_prefix: String::new(),
            timeout: DEFAULT_TIMEOUT,
            basic_auth: None,
        }
    }

    /// The full URL alerts are posted to.
    pub fn url(&self) -> String {
        format!(
            "{}://{}{}{ALERTS_API_PATH}",
            self.scheme,
            self.host,
            self.path_prefix.trim_end_matches('/')
        )
    }
}

/// Notifier settings.
#[derive(Clone, Debug)]
pub struct NotifierOptions {
    pub queue_capacity: usize,
    pub batch_size: usize,
    pub external_labels: BTreeMap<String, String>,
    /// Drain queues on shutdown instead of dropping them.
    pub drain_on_shutdown: bool,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions {
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            batch_size: DEFAULT_BATCH_SIZE,
            external_labels: BTreeMap::new(),
            drain_on_shutdown: true,
        }
    }
}

#[derive(Default)]
struct AmMetrics {
    sent: AtomicU64,
    errors: AtomicU64,
    latency_sum_us: AtomicU64,
    latency_count: AtomicU64,
}

struct AmQueue {
    target: AlertmanagerTarget,
    queue: Mutex<VecDeque<OutgoingAlert>>,
    wake: Notify,
    metrics: AmMetrics,
}

/// Sends alerts to a set of Alertmanagers.
pub struct Notifier {
    opts: NotifierOptions,
    ams: Vec<Arc<AmQueue>>,
    dropped: AtomicU64,
    stopping: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Notifier {
    /// A notifier for `targets`; call [`Notifier::start`] to run its sender tasks.
    pub fn new(opts: NotifierOptions, targets: Vec<AlertmanagerTarget>) -> Arc<Notifier> {
        Arc::new(Notifier {
            ams: targets
                .into_iter()
                .map(|target| {
                    Arc::new(AmQueue {
                        target,
                        queue: Mutex::new(VecDeque::new()),
                        wake: Notify::new(),
                        metrics: AmMetrics::default(),
                    })
                })
                .collect(),
            opts,
            dropped: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Spawns one sender task per Alertmanager (inside a tokio runtime).
    pub fn start(self: &Arc<Self>) {
        let mut tasks = self.tasks.lock();
        for am in &self.ams {
            let am = am.clone();
            let me = self.clone();
            tasks.push(tokio::spawn(async move { me.sender(am).await }));
        }
    }

    /// Queues `alerts` for every Alertmanager, adding external labels the alerts lack.
    pub fn send(&self, alerts: Vec<OutgoingAlert>) {
        if alerts.is_empty() || self.stopping.load(Ordering::SeqCst) {
            return;
        }
        let alerts: Vec<OutgoingAlert> = alerts
            .into_iter()
            .map(|mut a| {
                if !self.opts.external_labels.is_empty() {
                    let mut b = LabelsBuilder::from(&a.labels);
                    for (k, v) in &self.opts.external_labels {
                        if b.get(k).is_none() {
                            b.set(k, v);
                        }
                    }
                    a.labels = b.build();
                }
                a
            })
            .collect();
        for am in &self.ams {
            let mut q = am.queue.lock();
            q.extend(alerts.iter().cloned());
            let cap = self.opts.queue_capacity.max(1);
            if q.len() > cap {
                let over = q.len() - cap;
                q.drain(..over);
                self.dropped.fetch_add(over as u64, Ordering::Relaxed);
            }
            drop(q);
            am.wake.notify_one();
        }
    }

    /// A callback for the rule manager.
    pub fn notify_fn(self: &Arc<Self>) -> crate::rules::manager::NotifyFn {
        let me = self.clone();
        Arc::new(move |alerts| me.send(alerts))
    }

    async fn sender(&self, am: Arc<AmQueue>) {
        loop {
            let batch: Vec<OutgoingAlert> = {
                let mut q = am.queue.lock();
                let n = q.len().min(self.opts.batch_size.max(1));
                q.drain(..n).collect()
            };
            if batch.is_empty() {
                if self.stopping.load(Ordering::SeqCst) {
                    return;
                }
                am.wake.notified().await;
                continue;
            }
            let body = alerts_payload(&batch);
            let started = std::time::Instant::now();
            let res = post_json(&am.target, &body).await;
            let m = &am.metrics;
            m.latency_sum_us
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            m.latency_count.fetch_add(1, Ordering::Relaxed);
            match res {
                Ok(()) => {
                    m.sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    m.errors.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    tracing::warn!(alertmanager = %am.target.url(), count = batch.len(), "error sending alerts: {e}");
                }
            }
        }
    }

    /// Stops the sender tasks, after sending what is queued if `drain_on_shutdown`.
    pub async fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if !self.opts.drain_on_shutdown {
            for am in &self.ams {
                let n = {
                    let mut q = am.queue.lock();
                    let n = q.len();
                    q.clear();
                    n
                };
                self.dropped.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        for am in &self.ams {
            am.wake.notify_one();
        }
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Alerts waiting in all queues.
    pub fn queue_length(&self) -> usize {
        self.ams.iter().map(|a| a.queue.lock().len()).sum()
    }

    /// The `data` object of `/api/v1/alertmanagers`.
    pub fn alertmanagers_json(&self) -> Json {
        let active: Vec<Json> = self
            .ams
            .iter()
            .map(|a| json!({"url": a.target.url()}))
            .collect();
        json!({"activeAlertmanagers": active, "droppedAlertmanagers": []})
    }

    /// `prometheus_notifications_*` metrics in the text exposition format.
    pub fn render_metrics(&self) -> String {
        let mut s = String::new();
        let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in rows {
                let _ = writeln!(s, "{name}{labels} {v}");
            }
        };
        let per_am = |f: &dyn Fn(&AmQueue) -> String| -> Vec<(String, String)> {
            self.ams
                .iter()
                .map(|a| {
                    let mut q = String::new();
                    let _ = vigil_storage::labels::write_go_quoted(&mut q, &a.target.url());
                    (format!("{{alertmanager={q}}}"), f(a))
                })
                .collect()
        };
        family(
            "prometheus_notifications_sent_total",
            "counter",
            "Total number of alerts sent.",
            per_am(&|a| a.metrics.sent.load(Ordering::Relaxed).to_string()),
        );
        family(
            "prometheus_notifications_errors_total",
            "counter",
            "Total number of sent alerts affected by errors.",
            per_am(&|a| a.metrics.errors.load(Ordering::Relaxed).to_string()),
        );
        family(
            "prometheus_notifications_latency_seconds_sum",
            "counter",
            "Sum of latencies for sending alerts to Alertmanagers.",
            per_am(&|a| {
                (a.metrics.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6).to_string()
            }),
        );
        family(
            "prometheus_notifications_latency_seconds_count",
            "counter",
            "Number of requests sent to Alertmanagers.",
            per_am(&|a| a.metrics.latency_count.load(Ordering::Relaxed).to_string()),
        );
        family(
            "prometheus_notifications_dropped_total",
            "counter",
            "Total number of alerts dropped due to errors when sending to Alertmanager.",
            vec![(
                String::new(),
                self.dropped.load(Ordering::Relaxed).to_string(),
            )],
        );
        family(
            "prometheus_notifications_queue_length",
            "gauge",
            "The number of alert notifications in the queue.",
            vec![(String::new(), self.queue_length().to_string())],
        );
        family(
            "prometheus_notifications_queue_capacity",
            "gauge",
            "The capacity of the alert notifications queue.",
            vec![(String::new(), self.opts.queue_capacity.to_string())],
        );
        family(
            "prometheus_notifications_alertmanagers_discovered",
            "gauge",
            "The number of alertmanagers discovered and active.",
            vec![(String::new(), self.ams.len().to_string())],
        );
        s
    }

    /// Alerts dropped because a queue was full (or on shutdown without draining).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// `(sent, errors)` counts of the i-th Alertmanager.
    pub fn counts(&self, i: usize) -> Option<(u64, u64)> {
        self.ams.get(i).map(|a| {
            (
                a.metrics.sent.load(Ordering::Relaxed),
                a.metrics.errors.load(Ordering::Relaxed),
            )
        })
    }
}
