//! Rule evaluation benchmarks over a tempdir `Db`: 2,000 `up`-like series (200 jobs), 30m of
//! samples at 15s; one group evaluation of a recording rule `sum by (job) (rate(x[5m]))`
//! written back through the Appender plus an alerting rule over its output that keeps 200
//! firing alerts (templated labels and annotations, ALERTS/ALERTS_FOR_STATE written), and the
//! alert state machine alone. Measures; never asserts on time.
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

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench_rules
}
criterion_main!(benches);
