//! What the notifier shows about itself: the `data` object of `/api/v1/alertmanagers`
//! (active and dropped Alertmanager URLs of every set) and the `prometheus_notifications_*`
//! metrics in the text exposition format, with Prometheus' names and help texts. Read-only:
//! this module never changes a queue or a counter.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use serde_json::{json, Value as Json};

use super::Notifier;

impl Notifier {
    /// The `data` object of `/api/v1/alertmanagers`.
    pub fn alertmanagers_json(&self) -> Json {
        let sets = self.sets.read().clone();
        let mut active = Vec::new();
        let mut dropped = Vec::new();
        for s in &sets {
            let rt = s.runtime.read().clone();
            active.extend(rt.ams.iter().map(|(t, _)| json!({"url": t.url()})));
            dropped.extend(rt.set.dropped.iter().map(|t| json!({"url": t.url()})));
        }
        json!({"activeAlertmanagers": active, "droppedAlertmanagers": dropped})
    }

    /// `prometheus_notifications_*` metrics in the text exposition format.
    pub fn render_metrics(&self) -> String {
        // One row per URL, sorted, even when the URL is in several sets.
        let per_url: BTreeMap<String, [u64; 4]> = self
            .active()
            .into_iter()
            .map(|(t, m)| {
                (
                    t.url(),
                    [
                        m.sent.load(Ordering::Relaxed),
                        m.errors.load(Ordering::Relaxed),
                        m.latency_sum_us.load(Ordering::Relaxed),
                        m.latency_count.load(Ordering::Relaxed),
                    ],
                )
            })
            .collect();
        let discovered = self.active().len();
        let mut s = String::new();
        let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in rows {
                let _ = writeln!(s, "{name}{labels} {v}");
            }
        };
        let rows = |f: &dyn Fn(&[u64; 4]) -> String| -> Vec<(String, String)> {
            per_url
                .iter()
                .map(|(url, v)| {
                    let mut q = String::new();
                    let _ = vigil_storage::labels::write_go_quoted(&mut q, url);
                    (format!("{{alertmanager={q}}}"), f(v))
                })
                .collect()
        };
        family(
            "prometheus_notifications_sent_total",
            "counter",
            "Total number of alerts sent.",
            rows(&|v| v[0].to_string()),
        );
        family(
            "prometheus_notifications_errors_total",
            "counter",
            "Total number of sent alerts affected by errors.",
            rows(&|v| v[1].to_string()),
        );
        family(
            "prometheus_notifications_latency_seconds_sum",
            "counter",
            "Sum of latencies for sending alerts to Alertmanagers.",
            rows(&|v| (v[2] as f64 / 1e6).to_string()),
        );
        family(
            "prometheus_notifications_latency_seconds_count",
            "counter",
            "Number of requests sent to Alertmanagers.",
            rows(&|v| v[3].to_string()),
        );
        family(
            "prometheus_notifications_dropped_total",
            "counter",
            "Total number of alerts dropped due to errors when sending to Alertmanager.",
            vec![(String::new(), self.dropped().to_string())],
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
            vec![(String::new(), discovered.to_string())],
        );
        s
    }
}
