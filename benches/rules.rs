//! Rule evaluation benchmarks over a tempdir `Db`: 2,000 `up`-like series (200 jobs), 30m of
//! samples at 15s; one group evaluation of a recording rule `sum by (job) (rate(x[5m]))`
//! written back through the Appender plus an alerting rule over its output that keeps 200
//! firing alerts (templated labels and annotations, ALERTS/ALERTS_FOR_STATE written), and the
//! alert state machine alone. Also a realistic rule file (`REALISTIC_RULES`: 30 recording and
//! alerting rules in the style of node-exporter / kube-prometheus mixins: CPU and memory
//! utilisation, request and error rates over several windows, histogram quantiles, alerts
//! with `for` and templates) over 25,000 node-exporter-like series with 30m of data, and one
//! evaluation of upstream's `rules_large.yml` (10,000 rules in one group). Measures; never
//! asserts on time.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use vigil::rules::eval::EvalContext;
use vigil::rules::group::Group;
use vigil::rules::parse_rules;
use vigil_promql::engine::Engine;
use vigil_storage::{Db, DbOptions, Labels};

const SERIES: usize = 2_000;
const JOBS: usize = 200;
const SCRAPE_MS: i64 = 15_000;
const SPAN_MS: i64 = 30 * 60_000;
const EVAL_INTERVAL_MS: i64 = 60_000;

const RULES: &str = r#"
groups:
  - name: bench
    rules:
      - record: job:x:rate5m
        expr: sum by (job) (rate(x[5m]))
      - alert: HighRate
        expr: job:x:rate5m > 0
        labels: {severity: "{{ if gt $value 1.0 }}page{{ else }}ticket{{ end }}"}
        annotations: {summary: "{{ $labels.job }} at {{ $value | humanize }}/s"}
"#;

fn build_db(dir: &std::path::Path) -> Arc<Db> {
    let db = Db::open(dir, DbOptions::default()).unwrap();
    let labels: Vec<Labels> = (0..SERIES)
        .map(|i| {
            Labels::from_pairs(&[
                ("__name__", "x".to_string()),
                ("job", format!("job{}", i % JOBS)),
                ("instance", format!("i{i}")),
            ])
            .unwrap()
        })
        .collect();
    let mut t = 0;
    while t <= SPAN_MS {
        let mut app = db.appender();
        for (i, l) in labels.iter().enumerate() {
            app.append(l, t, (t / 1000) as f64 * (1 + i % 3) as f64)
                .unwrap();
        }
        app.commit().unwrap();
        t += SCRAPE_MS;
    }
    db
}

fn bench_rules(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = build_db(dir.path());
    let ctx = EvalContext {
        engine: Engine::default(),
        store: db.clone(),
        external_labels: Default::default(),
        external_url: "http://vigil:9090".into(),
    };
    let rules = parse_rules(RULES, &Default::default()).unwrap();
    let mut group = Group::new("bench.yml", &rules.groups[0], EVAL_INTERVAL_MS, 0);
    group.mark_restored();
    // Rule outputs must move forward in time; start after the data and step by 1ms.
    let mut ts = SPAN_MS;
    c.bench_function("rules/group_eval_2000_series_200_alerts", |b| {
        b.iter(|| {
            ts += 1;
            let out = group.eval(&ctx, ts, None);
            assert!(out.errors.is_empty());
        })
    });

    let mut alert_only = Group::new(
        "bench.yml",
        &parse_rules(
            "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: count_values(\"v\", x) > 0\n        for: 5m\n",
            &Default::default(),
        )
        .unwrap()
        .groups[0],
        EVAL_INTERVAL_MS,
        0,
    );
    c.bench_function("rules/alert_state_machine_count_values", |b| {
        b.iter(|| {
            ts += 1;
            alert_only.eval(&ctx, ts, None)
        })
    });
    db.close().unwrap();
}

/// Rules in the style of the node-exporter and kube-prometheus mixins.
const REALISTIC_RULES: &str = r#"
groups:
  - name: node.rules
    rules:
      - record: instance:node_num_cpu:sum
        expr: count without (cpu, mode) (node_cpu_seconds_total{mode="idle"})
      - record: instance:node_cpu_utilisation:rate5m
        expr: 1 - avg without (cpu) (sum without (mode) (rate(node_cpu_seconds_total{mode=~"idle|iowait|steal"}[5m])))
      - record: instance:node_cpu:rate5m
        expr: sum without (cpu, mode) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))
      - record: instance:node_memory_utilisation:ratio
        expr: 1 - (node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)
      - record: job:node_cpu_utilisation:avg
        expr: avg by (job) (instance:node_cpu_utilisation:rate5m)
      - record: cluster:node_cpu:ratio
        expr: sum(instance:node_cpu:rate5m) / sum(instance:node_num_cpu:sum)
  - name: http.rules
    rules:
      - record: job:http_requests:rate5m
        expr: sum by (job) (rate(http_requests_total[5m]))
      - record: job_code:http_requests:rate5m
        expr: sum by (job, code) (rate(http_requests_total[5m]))
      - record: job_handler:http_requests:rate5m
        expr: sum by (job, handler) (rate(http_requests_total[5m]))
      - record: job:http_errors:ratio_rate5m
        expr: sum by (job) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (job) (rate(http_requests_total[5m]))
      - record: job:http_errors:ratio_rate30m
        expr: sum by (job) (rate(http_requests_total{code=~"5.."}[30m])) / sum by (job) (rate(http_requests_total[30m]))
      - record: job:http_errors:ratio_rate1h
        expr: sum by (job) (rate(http_requests_total{code=~"5.."}[1h])) / sum by (job) (rate(http_requests_total[1h]))
      - record: job_handler:http_request_duration_seconds:p99
        expr: histogram_quantile(0.99, sum by (job, handler, le) (rate(http_request_duration_seconds_bucket[5m])))
      - record: job_handler:http_request_duration_seconds:p90
        expr: histogram_quantile(0.9, sum by (job, handler, le) (rate(http_request_duration_seconds_bucket[5m])))
      - record: job_handler:http_request_duration_seconds:p50
        expr: histogram_quantile(0.5, sum by (job, handler, le) (rate(http_request_duration_seconds_bucket[5m])))
      - record: job:http_request_duration_seconds:mean5m
        expr: sum by (job) (rate(http_request_duration_seconds_sum[5m])) / sum by (job) (rate(http_request_duration_seconds_count[5m]))
      - record: job:up:avg
        expr: avg by (job) (up)
      - record: job:http_requests:increase1h
        expr: sum by (job) (increase(http_requests_total[1h]))
  - name: alerts
    rules:
      - alert: InstanceDown
        expr: up == 0
        for: 5m
        labels: {severity: critical}
        annotations: {summary: "{{ $labels.instance }} of {{ $labels.job }} is down"}
      - alert: HighErrorRate
        expr: job:http_errors:ratio_rate5m > 0.01
        for: 10m
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.job }} error ratio {{ $value | humanizePercentage }}"}
      - alert: HighCPU
        expr: instance:node_cpu_utilisation:rate5m > 0.5
        for: 15m
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.instance }} CPU at {{ $value | humanizePercentage }}"}
      - alert: HighMemory
        expr: instance:node_memory_utilisation:ratio > 0.9
        labels: {severity: warning}
      - alert: SlowHandler
        expr: job_handler:http_request_duration_seconds:p99 > 0.5
        for: 5m
        labels: {severity: "{{ if gt $value 1.0 }}critical{{ else }}warning{{ end }}"}
        annotations: {summary: "{{ $labels.job }}{{ $labels.handler }} p99 {{ $value | humanizeDuration }}"}
      - alert: ErrorBudgetBurn
        expr: job:http_errors:ratio_rate1h > 0.0144 and job:http_errors:ratio_rate5m > 0.0144
        labels: {severity: page}
      - alert: TooManyRequests
        expr: job:http_requests:rate5m > 1e9
        labels: {severity: info}
      - alert: NoTraffic
        expr: absent(http_requests_total{job="job0"})
        labels: {severity: critical}
"#;

const R_JOBS: usize = 20;
const R_INSTANCES: usize = 200;
const R_CPUS: usize = 4;
const R_MODES: [&str; 8] = [
    "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
];
const R_HANDLERS: [&str; 5] = ["/", "/api", "/login", "/pay", "/search"];
const R_CODES: [&str; 4] = ["200", "302", "404", "500"];
const R_LES: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];

/// One series of the realistic dataset: labels and how much it grows per scrape.
struct RSeries {
    labels: Labels,
    step: f64,
    gauge: bool,
}

/// 25,000 node-exporter-like series (125 per instance, 200 instances in 20 jobs) with 30m
/// of samples at 15s; counters grow at a per-series rate, some instances are down.
fn build_realistic_db(dir: &std::path::Path) -> (Arc<Db>, usize) {
    let db = Db::open(dir, DbOptions::default()).unwrap();
    let mut series = Vec::new();
    for i in 0..R_INSTANCES {
        let job = format!("job{}", i % R_JOBS);
        let inst = format!("10.0.{}.{}:9100", i / 250, i % 250);
        let base = [("job", job.clone()), ("instance", inst.clone())];
        let mk = |name: &str, extra: &[(&str, String)]| {
            let mut pairs: Vec<(&str, String)> = vec![("__name__", name.to_string())];
            pairs.extend(base.iter().cloned());
            pairs.extend(extra.iter().cloned());
            Labels::from_pairs(&pairs).unwrap()
        };
        for cpu in 0..R_CPUS {
            for (m, mode) in R_MODES.iter().enumerate() {
                let step = if *mode == "idle" {
                    5.0 + (i % 7) as f64
                } else {
                    0.3 * (m + 1) as f64
                };
                series.push(RSeries {
                    labels: mk(
                        "node_cpu_seconds_total",
                        &[("cpu", cpu.to_string()), ("mode", mode.to_string())],
                    ),
                    step,
                    gauge: false,
                });
            }
        }
        for (h, handler) in R_HANDLERS.iter().enumerate() {
            for (c, code) in R_CODES.iter().enumerate() {
                let step = ((i * 7 + h * 3 + c) % 50) as f64 * if c == 3 { 0.05 } else { 1.0 };
                series.push(RSeries {
                    labels: mk(
                        "http_requests_total",
                        &[("handler", handler.to_string()), ("code", code.to_string())],
                    ),
                    step,
                    gauge: false,
                });
            }
            for (l, le) in R_LES.iter().enumerate() {
                series.push(RSeries {
                    labels: mk(
                        "http_request_duration_seconds_bucket",
                        &[("handler", handler.to_string()), ("le", le.to_string())],
                    ),
                    step: (10 * (l + 1) + i % 5) as f64,
                    gauge: false,
                });
            }
            series.push(RSeries {
                labels: mk(
                    "http_request_duration_seconds_count",
                    &[("handler", handler.to_string())],
                ),
                step: (120 + i % 5) as f64,
                gauge: false,
            });
            series.push(RSeries {
                labels: mk(
                    "http_request_duration_seconds_sum",
                    &[("handler", handler.to_string())],
                ),
                step: 7.5,
                gauge: false,
            });
        }
        series.push(RSeries {
            labels: mk("node_memory_MemTotal_bytes", &[]),
            step: 16e9,
            gauge: true,
        });
        series.push(RSeries {
            labels: mk("node_memory_MemAvailable_bytes", &[]),
            step: 16e9 * (0.05 + (i % 10) as f64 / 10.0),
            gauge: true,
        });
        series.push(RSeries {
            labels: mk("up", &[]),
            step: if i % 50 == 0 { 0.0 } else { 1.0 },
            gauge: true,
        });
    }
    let mut t = 0;
    let mut n = 0;
    while t <= SPAN_MS {
        let mut app = db.appender();
        let k = (t / SCRAPE_MS) as f64;
        for s in &series {
            let v = if s.gauge { s.step } else { s.step * k };
            app.append(&s.labels, t, v).unwrap();
        }
        app.commit().unwrap();
        n += series.len();
        t += SCRAPE_MS;
    }
    let count = series.len();
    eprintln!("realistic dataset: {count} series, {n} samples");
    (db, count)
}

fn bench_realistic(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = build_realistic_db(dir.path());
    let ctx = EvalContext {
        engine: Engine::default(),
        store: db.clone(),
        external_labels: Default::default(),
        external_url: "http://vigil:9090".into(),
    };
    let parsed = parse_rules(REALISTIC_RULES, &Default::default()).unwrap();
    let mut groups: Vec<Group> = parsed
        .groups
        .iter()
        .map(|g| {
            let mut g = Group::new("realistic.yml", g, EVAL_INTERVAL_MS, 0);
            g.mark_restored();
            g
        })
        .collect();
    let mut ts = SPAN_MS;
    c.bench_function("rules/realistic_30_rules_25k_series", |b| {
        b.iter(|| {
            ts += 1;
            for g in &mut groups {
                let out = g.eval(&ctx, ts, None);
                assert!(out.errors.is_empty(), "{:?}", out.errors);
            }
        })
    });

    let large = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata/promtool-rules/rules_large.yml");
    let text = std::fs::read_to_string(&large).unwrap();
    let parsed = parse_rules(&text, &Default::default()).unwrap();
    let mut big = Group::new("rules_large.yml", &parsed.groups[0], EVAL_INTERVAL_MS, 0);
    c.bench_function("rules/rules_large_yml_10k_rules_one_eval", |b| {
        b.iter(|| {
            ts += 1;
            let out = big.eval(&ctx, ts, None);
            assert!(out.errors.is_empty(), "{:?}", out.errors);
        })
    });
    c.bench_function("rules/rules_large_yml_parse_and_validate", |b| {
        b.iter(|| parse_rules(&text, &Default::default()).unwrap())
    });
    db.close().unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench_rules, bench_realistic
}
criterion_main!(benches);
