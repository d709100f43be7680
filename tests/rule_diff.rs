//! Differential test of rule evaluation against the real promtool 2.42: one generated
//! unit-test file (a realistic node/http rule set, synthetic input series with counter
//! resets, gaps and stale markers, and deliberately empty expectations at many evaluation
//! times) is run through `promtool test rules` and through Vigil's `vigil test rules`. Both
//! must fail with the same report: every "got" line is the rule output (or the firing
//! alerts, with their labels and rendered annotations) at that time, so equal reports mean
//! equal results. Text must be identical; sample values may differ in the last bits only
//! (see `REL_TOLERANCE`). Runs when promtool is on PATH; required with VIGIL_REQUIRE_INTEROP=1.

#![allow(clippy::unwrap_used)]

mod common;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use vigil::rules::unittest::{run_files, UnitTestOptions};

/// Rules in the style of the node-exporter and kube-prometheus mixins, in the 2.42 format.
const RULES: &str = r#"groups:
  - name: node
    rules:
      - record: instance:node_num_cpu:sum
        expr: count without (cpu, mode) (node_cpu_seconds_total{mode="idle"})
      - record: instance:node_cpu_utilisation:rate5m
        expr: 1 - avg without (cpu) (sum without (mode) (rate(node_cpu_seconds_total{mode=~"idle|iowait"}[5m])))
      - record: instance:node_cpu:irate
        expr: sum without (cpu, mode) (irate(node_cpu_seconds_total{mode!="idle"}[5m]))
      - record: instance:node_memory_utilisation:ratio
        expr: 1 - (node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)
      - record: job:node_cpu_utilisation:avg
        expr: avg by (job) (instance:node_cpu_utilisation:rate5m)
      - record: job:node_memory:quantile
        expr: quantile by (job) (0.9, node_memory_MemAvailable_bytes)
      - record: job:node_memory:stddev
        expr: stddev by (job) (node_memory_MemAvailable_bytes)
  - name: http
    rules:
      - record: job:http_requests:rate5m
        expr: sum by (job) (rate(http_requests_total[5m]))
      - record: job_code:http_requests:increase10m
        expr: sum by (job, code) (increase(http_requests_total[10m]))
      - record: job:http_errors:ratio_rate5m
        expr: sum by (job) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (job) (rate(http_requests_total[5m]))
      - record: job:http_errors:ratio_rate30m
        expr: (sum by (job) (rate(http_requests_total{code=~"5.."}[30m])) or 0 * sum by (job) (rate(http_requests_total[30m]))) / sum by (job) (rate(http_requests_total[30m]))
      - record: job:http_request_duration_seconds:p90
        expr: histogram_quantile(0.9, sum by (job, le) (rate(http_request_duration_seconds_bucket[5m])))
      - record: job:http_request_duration_seconds:p50
        expr: histogram_quantile(0.5, sum by (job, le) (rate(http_request_duration_seconds_bucket[5m])))
      - record: job:http_request_duration_seconds:mean5m
        expr: sum by (job) (rate(http_request_duration_seconds_sum[5m])) / sum by (job) (rate(http_request_duration_seconds_count[5m]))
      - record: job:up:ratio
        expr: avg by (job) (up)
      - record: job:http_requests:deriv
        expr: deriv(job:http_requests:rate5m[10m30s])
      - record: job:http_requests:max_over_time
        expr: max_over_time(job:http_requests:rate5m[15m30s])
      - record: job:http_requests:predict
        expr: predict_linear(http_requests_total{code="200"}[15m], 3600)
      - record: job:http_requests:topk
        expr: topk by (job) (1, rate(http_requests_total[5m]))
      - record: job:resets
        expr: resets(http_requests_total[30m]) > 0
      - record: job:changes
        expr: changes(node_memory_MemAvailable_bytes[20m])
  - name: alerts
    rules:
      - alert: InstanceDown
        expr: up == 0
        for: 5m
        labels: {severity: critical}
        annotations:
          summary: "{{ $labels.instance }} of {{ $labels.job }} is down"
          value: "{{ $value }}"
      - alert: HighErrorRate
        expr: job:http_errors:ratio_rate5m > 0.1
        for: 3m
        labels: {severity: "{{ if gt $value 0.3 }}page{{ else }}ticket{{ end }}"}
        annotations:
          summary: "{{ $labels.job }} error ratio {{ $value | humanizePercentage }}"
          rate: "{{ $value | humanize }} / {{ printf \"%.3f\" $value }}"
      - alert: HighCPU
        expr: instance:node_cpu_utilisation:rate5m > 0.3
        for: 10m
        labels: {severity: warning}
        annotations:
          summary: "{{ $labels.instance }} CPU {{ $value | humanizePercentage }}"
      - alert: SlowRequests
        expr: job:http_request_duration_seconds:p90 > 0.2
        labels: {severity: warning}
        annotations:
          summary: "p90 {{ $value | humanizeDuration }}"
      - alert: MemoryLow
        expr: node_memory_MemAvailable_bytes < 3e9
        for: 2m
        annotations:
          summary: "{{ $value | humanize1024 }}B free on {{ $labels.instance }}"
      - alert: NoTraffic
        expr: absent(http_requests_total{job="api",code="200"})
        labels: {severity: critical}
"#;

const JOBS: [&str; 3] = ["api", "web", "batch"];
const INSTANCES: usize = 2;
const CPUS: usize = 2;
const MODES: [&str; 3] = ["idle", "iowait", "user"];
const CODES: [&str; 3] = ["200", "404", "500"];
const LES: [&str; 5] = ["0.05", "0.1", "0.25", "1", "+Inf"];
/// Minutes of input (one sample per minute).
const MINUTES: usize = 115;
/// Input spacing in seconds. Prometheus 3 made range windows and the lookback delta
/// left-open (2.42's were closed), so the two versions differ exactly when a sample sits on
/// a window's start. Samples every 47 s never fall on a minute boundary except at multiples
/// of 47 minutes (samples 0, 60), which are left out (`_`), so no window of a 1m-aligned
/// evaluation starts on a sample; ranges over recorded series (1m apart) are not whole
/// minutes for the same reason.
const INTERVAL_S: usize = 47;
/// Samples that would sit on a minute boundary.
fn on_boundary(i: usize) -> bool {
    (i * INTERVAL_S) % 60 == 0
}

/// SplitMix64: deterministic pseudo-random numbers.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A counter series in promqltest notation: increments from `inc`, an optional reset at
/// minute `reset`, an optional gap (`_`) and a trailing stale marker.
fn counter(rng: &mut Rng, inc: impl Fn(&mut Rng, usize) -> u64, reset: Option<usize>) -> String {
    let mut v: u64 = rng.below(1000);
    let mut out = Vec::with_capacity(MINUTES);
    for m in 0..MINUTES {
        if Some(m) == reset {
            v = rng.below(5);
        } else {
            v += inc(rng, m);
        }
        out.push(if on_boundary(m) {
            "_".to_string()
        } else {
            v.to_string()
        });
    }
    out.join(" ")
}

fn series(out: &mut String, name: &str, labels: &[(&str, &str)], values: &str) {
    let ls: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    writeln!(out, "      - series: '{name}{{{}}}'", ls.join(",")).unwrap();
    writeln!(out, "        values: '{values}'").unwrap();
}

/// The unit-test file: input series, then empty expectations for every recorded metric
/// and every alert at several times, so both tools print what they got.
fn unit_test_file() -> String {
    let mut rng = Rng(42);
    let mut t = String::from(
        "rule_files: [rules.yml]\nevaluation_interval: 1m\ngroup_eval_order: [node, http, alerts]\ntests:\n  - interval: 47s\n    input_series:\n",
    );
    for job in JOBS {
        for i in 0..INSTANCES {
            let inst = format!("{job}-{i}:9100");
            let base = [("job", job), ("instance", inst.as_str())];
            for cpu in 0..CPUS {
                let cpu = cpu.to_string();
                for mode in MODES {
                    let busy = job == "batch" && mode == "user";
                    let vals = counter(
                        &mut rng,
                        |r, _| if busy { 40 + r.below(20) } else { r.below(30) },
                        None,
                    );
                    let mut l = base.to_vec();
                    l.push(("cpu", &cpu));
                    l.push(("mode", mode));
                    series(&mut t, "node_cpu_seconds_total", &l, &vals);
                }
            }
            for code in CODES {
                let errs = code == "500";
                let reset = (job == "web" && i == 1).then_some(40);
                let vals = counter(
                    &mut rng,
                    |r, m| {
                        if errs {
                            // An error burst in "api" between minutes 30 and 50.
                            if job == "api" && (38..64).contains(&m) {
                                200 + r.below(100)
                            } else {
                                r.below(3)
                            }
                        } else {
                            500 + r.below(500)
                        }
                    },
                    reset,
                );
                let mut l = base.to_vec();
                l.push(("code", code));
                series(&mut t, "http_requests_total", &l, &vals);
            }
            let mut cum = vec![0u64; LES.len()];
            let mut cols: Vec<Vec<String>> = vec![Vec::new(); LES.len()];
            let mut count = Vec::new();
            let mut sum = Vec::new();
            let mut s = 0u64;
            for m in 0..MINUTES {
                let slow = job == "web" && m >= 77;
                let mut acc = 0;
                for (b, c) in cum.iter_mut().enumerate() {
                    let weight = if slow {
                        b as u64 + 1
                    } else {
                        (LES.len() - b) as u64 * 3
                    };
                    acc += weight * (1 + rng.below(10));
                    *c += acc;
                    cols[b].push(if on_boundary(m) {
                        "_".into()
                    } else {
                        c.to_string()
                    });
                }
                s += acc * if slow { 400 } else { 60 };
                let (c, v) = (cum[LES.len() - 1], s as f64 / 1000.0);
                count.push(if on_boundary(m) {
                    "_".into()
                } else {
                    c.to_string()
                });
                sum.push(if on_boundary(m) {
                    "_".into()
                } else {
                    v.to_string()
                });
            }
            for (b, le) in LES.iter().enumerate() {
                let mut l = base.to_vec();
                l.push(("le", le));
                series(
                    &mut t,
                    "http_request_duration_seconds_bucket",
                    &l,
                    &cols[b].join(" "),
                );
            }
            series(
                &mut t,
                "http_request_duration_seconds_count",
                &base,
                &count.join(" "),
            );
            series(
                &mut t,
                "http_request_duration_seconds_sum",
                &base,
                &sum.join(" "),
            );
            let total = 16_000_000_000u64;
            series(
                &mut t,
                "node_memory_MemTotal_bytes",
                &base,
                &format!("{total}x{}", MINUTES - 1),
            );
            // Free memory random-walks; "web-1" runs low after minute 45; a gap in "api-0".
            let mut free = 6_000_000_000i64;
            let mut fv = Vec::new();
            for m in 0..MINUTES {
                free += rng.below(400_000_000) as i64 - 200_000_000;
                let v = if job == "web" && i == 1 && m >= 45 {
                    free / 3
                } else {
                    free
                };
                fv.push(
                    if on_boundary(m) || (job == "api" && i == 0 && (20..25).contains(&m)) {
                        "_".to_string()
                    } else {
                        v.to_string()
                    },
                );
            }
            series(
                &mut t,
                "node_memory_MemAvailable_bytes",
                &base,
                &fv.join(" "),
            );
            // "batch-1" goes down at minute 20 and comes back at 50; "web-0" goes stale at 70.
            let up: Vec<String> = (0..MINUTES)
                .map(|m| {
                    if on_boundary(m) {
                        "_".into()
                    } else if job == "batch" && i == 1 && (25..64).contains(&m) {
                        "0".into()
                    } else if job == "web" && i == 0 && m == 90 {
                        "stale".into()
                    } else if job == "web" && i == 0 && m > 90 {
                        "_".into()
                    } else {
                        "1".into()
                    }
                })
                .collect();
            series(&mut t, "up", &base, &up.join(" "));
        }
    }
    let recorded: Vec<&str> = RULES
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record: "))
        .collect();
    let alerts: Vec<&str> = RULES
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    let times = ["5m", "17m", "33m", "41m", "52m", "64m", "75m", "89m"];
    t.push_str("    promql_expr_test:\n");
    for name in &recorded {
        for at in times {
            writeln!(
                t,
                "      - expr: '{name}'\n        eval_time: {at}\n        exp_samples: []"
            )
            .unwrap();
        }
    }
    t.push_str("    alert_rule_test:\n");
    for name in &alerts {
        for at in times {
            writeln!(
                t,
                "      - eval_time: {at}\n        alertname: {name}\n        exp_alerts: []"
            )
            .unwrap();
        }
    }
    t
}

/// Relative tolerance for sample values. Prometheus 3 (whose semantics Vigil follows) sums
/// with Kahan compensation in `sum`/`avg`; 2.42 summed naively, so the last bits may differ.
const REL_TOLERANCE: f64 = 1e-12;

/// Splits a report line into its text and the floats promtool prints (`1.5E+00`).
fn split_floats(line: &str) -> (String, Vec<f64>) {
    let mut text = String::new();
    let mut nums = Vec::new();
    for tok in line.split(' ') {
        let t = tok.trim_end_matches(',');
        match t.parse::<f64>() {
            Ok(v) if t.contains('E') => {
                nums.push(v);
                text.push_str("<f>");
                text.push_str(&tok[t.len()..]);
            }
            _ => text.push_str(tok),
        }
        text.push(' ');
    }
    (text, nums)
}

/// Whether two reports are equal except for sample values within `REL_TOLERANCE`.
fn reports_agree(a: &str, b: &str) -> bool {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    la.len() == lb.len()
        && la.iter().zip(&lb).all(|(x, y)| {
            if x == y {
                return true;
            }
            let ((tx, nx), (ty, ny)) = (split_floats(x), split_floats(y));
            tx == ty
                && nx.len() == ny.len()
                && nx
                    .iter()
                    .zip(&ny)
                    .all(|(p, q)| p == q || (p - q).abs() <= REL_TOLERANCE * p.abs().max(q.abs()))
        })
}

fn promtool() -> Option<PathBuf> {
    common::interop_bin("promtool")
}

#[test]
fn rule_results_equal_promtool_2_42() {
    let Some(promtool) = promtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
    let test = unit_test_file();
    std::fs::write(dir.path().join("test.yml"), &test).unwrap();

    let check = Command::new(&promtool)
        .args(["check", "rules", "rules.yml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let theirs = Command::new(&promtool)
        .args(["test", "rules", "test.yml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let theirs_err = String::from_utf8_lossy(&theirs.stderr).into_owned();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let ours = run_files(
        &[dir.path().join("test.yml")],
        &UnitTestOptions::default(),
        &mut out,
        &mut err,
    )
    .unwrap();
    let ours_err = String::from_utf8_lossy(&err).into_owned();
    // Every expectation is empty on purpose; most must have produced output, or the
    // comparison says little.
    let got_lines = theirs_err.matches("got:").count();
    assert!(
        got_lines > 150,
        "promtool printed only {got_lines} results:\n{theirs_err}"
    );
    if !reports_agree(&ours_err, &theirs_err) {
        let keep = std::env::temp_dir().join("vigil-rule-diff");
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::write(keep.join("rules.yml"), RULES).unwrap();
        std::fs::write(keep.join("test.yml"), &test).unwrap();
        std::fs::write(keep.join("promtool.txt"), &theirs_err).unwrap();
        std::fs::write(keep.join("vigil.txt"), &ours_err).unwrap();
        let first = ours_err
            .lines()
            .zip(theirs_err.lines())
            .find(|(a, b)| !reports_agree(a, b))
            .map(|(a, b)| format!("vigil:    {a}\npromtool: {b}"))
            .unwrap_or_else(|| "(one report is a prefix of the other)".into());
        panic!(
            "reports differ (both kept in {}); first difference:\n{first}",
            keep.display()
        );
    }
    assert_eq!(i32::from(ours), theirs.status.code().unwrap());
    assert_eq!(i32::from(ours), 1);
}
