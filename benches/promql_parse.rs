//! Benchmark: parsing (lex + parse + type check) a set of typical dashboard queries.
//! Measures parser throughput only; it never evaluates queries.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use vigil_promql::parser::{parse_expr_with, ParserOptions};

const QUERIES: &[&str] = &[
    "up",
    "rate(http_requests_total[5m])",
    "sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m]))",
    "sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m])) / sum by (job) (rate(http_requests_total[5m]))",
    "histogram_quantile(0.99, sum by (le, service) (rate(http_request_duration_seconds_bucket{service=~\"api|web\"}[5m])))",
    "100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[2m])))",
    "node_filesystem_avail_bytes{fstype!~\"tmpfs|overlay\"} / node_filesystem_size_bytes < 0.1 and on (instance, device) node_filesystem_readonly == 0",
    "topk(10, sum without (instance) (rate(container_cpu_usage_seconds_total{namespace=\"prod\"}[1m])))",
    "max_over_time(rate(errors_total[1m])[1h:30s] offset 1d)",
    "label_replace(up{job=\"api\"}, \"host\", \"$1\", \"instance\", \"(.*):.*\")",
    "(sum(rate(a_total[5m])) by (x) > bool 5) * on (x) group_left (team) team_info",
    "predict_linear(node_filesystem_free_bytes[6h], 4 * 3600) < 0",
];

fn bench(c: &mut Criterion) {
    let opts = ParserOptions::all();
    for q in QUERIES {
        assert!(parse_expr_with(q, &opts).is_ok(), "{q}");
    }
    let mut g = c.benchmark_group("promql_parse");
    g.throughput(Throughput::Elements(QUERIES.len() as u64));
    g.bench_function("dashboard_queries", |b| {
        b.iter(|| {
            for q in QUERIES {
                let _ = black_box(parse_expr_with(black_box(q), &opts));
            }
        })
    });
    let plain: Vec<&str> = QUERIES
        .iter()
        .copied()
        .filter(|q| !q.contains('~'))
        .collect();
    g.throughput(Throughput::Elements(plain.len() as u64));
    g.bench_function("dashboard_queries_without_regex_matchers", |b| {
        b.iter(|| {
            for q in &plain {
                let _ = black_box(parse_expr_with(black_box(q), &opts));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
