//! Tests of configuration parsing, inheritance and validation errors.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::*;

fn parse(yaml: &str) -> Result<Config, ConfigError> {
    Config::parse(yaml, "test.yml", Path::new("/etc/vigil"))
}

fn err(yaml: &str) -> String {
    parse(yaml).unwrap_err().to_string()
}

const FULL: &str = r#"
global:
  scrape_interval: 30s
  scrape_timeout: 5s
  evaluation_interval: 20s
  external_labels:
    region: eu
  sample_limit: 1000
rule_files:
  - rules/*.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['am:9093']
remote_write:
  - url: http://mimir:9009/api/v1/push
    queue_config:
      max_shards: 10
scrape_configs:
  - job_name: node
    scrape_interval: 10s
    params:
      module: [x]
    basic_auth:
      username: u
      password_file: secret
    static_configs:
      - targets: ['a:9100', 'b:9100']
        labels:
          env: prod
    file_sd_configs:
      - files: ['sd/*.json']
        refresh_interval: 1m
    relabel_configs:
      - source_labels: [__address__]
        regex: '(.*):.*'
        target_label: host
    metric_relabel_configs:
      - action: labeldrop
        regex: tmp_.*
  - job_name: fast
    scrape_interval: 2s
    sample_limit: 5
"#;

#[test]
fn full_config_parses_and_inherits() {
    let c = parse(FULL).unwrap();
    assert_eq!(c.global.scrape_interval, Some(Duration::from_secs(30)));
    assert_eq!(c.global.evaluation_interval_ms(), 20_000);
    assert_eq!(c.global.external_labels["region"], "eu");
    assert_eq!(c.rule_files, vec!["/etc/vigil/rules/*.yml".to_string()]);
    assert_eq!(c.remote_write[0].url, "http://mimir:9009/api/v1/push");
    let node = c.scrape_config("node").unwrap();
    assert_eq!(node.interval_ms(), 10_000);
    assert_eq!(node.timeout_ms(), 5_000, "global timeout inherited");
    assert_eq!(node.sample_limit, Some(1000), "global limit inherited");
    assert_eq!(node.metrics_path, "/metrics");
    assert_eq!(node.scheme, "http");
    assert!(node.honor_timestamps);
    assert!(!node.honor_labels);
    assert_eq!(
        node.file_sd_configs[0].files,
        vec!["/etc/vigil/sd/*.json".to_string()]
    );
    assert_eq!(
        node.basic_auth.as_ref().unwrap().password_file,
        "/etc/vigil/secret"
    );
    let fast = c.scrape_config("fast").unwrap();
    assert_eq!(
        fast.timeout_ms(),
        2_000,
        "timeout capped at the job's interval"
    );
    assert_eq!(fast.sample_limit, Some(5), "job limit wins over global");
}

#[test]
fn defaults_when_global_is_missing() {
    let c = parse("scrape_configs:\n  - job_name: j\n").unwrap();
    let j = c.scrape_config("j").unwrap();
    assert_eq!(j.interval_ms(), 60_000);
    assert_eq!(j.timeout_ms(), 10_000);
    assert_eq!(c.global.evaluation_interval_ms(), 60_000);
    let empty = parse("").unwrap();
    assert!(empty.scrape_configs.is_empty());
}

#[test]
fn short_global_interval_caps_default_timeout() {
    let c = parse("global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: j\n").unwrap();
    assert_eq!(c.global.scrape_timeout, Some(Duration::from_secs(5)));
    assert_eq!(c.scrape_config("j").unwrap().timeout_ms(), 5_000);
}

#[test]
fn unknown_fields_are_errors() {
    assert!(err("globl:\n  scrape_interval: 1s\n").contains("unknown field `globl`"));
    assert!(err("global:\n  scrape_intervall: 1s\n").contains("unknown field `scrape_intervall`"));
    let e = err("scrape_configs:\n  - job_name: j\n    static_configs:\n      - targets: [a]\n        label: {}\n");
    assert!(e.contains("unknown field `label`"), "{e}");
    assert!(e.starts_with("parsing YAML file test.yml"), "{e}");
}

#[test]
fn validation_errors_name_the_problem() {
    let cases = [
        ("global:\n  scrape_interval: 5s\n  scrape_timeout: 10s\n", "global scrape timeout greater than scrape interval"),
        ("global:\n  scrape_interval: 5x\n", "not a valid duration"),
        ("scrape_configs:\n  - job_name: ''\n", "job_name is empty"),
        ("scrape_configs:\n  - job_name: a\n  - job_name: a\n", "found multiple scrape configs with job name \"a\""),
        ("scrape_configs:\n  - job_name: a\n    scrape_interval: 1s\n    scrape_timeout: 2s\n", "scrape timeout greater than scrape interval for scrape config with job name \"a\""),
        ("scrape_configs:\n  - job_name: a\n    scheme: ftp\n", "invalid scheme"),
        ("scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['http://x:1/metrics']\n", "is not a valid hostname"),
        ("scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [x]\n        labels: {'a-b': c}\n", "is not a valid label name"),
        ("scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: ['x.txt']\n", "is not valid for file discovery"),
        ("scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: ['*/x.json']\n", "is not valid for file discovery"),
        ("scrape_configs:\n  - job_name: a\n    basic_auth: {username: u}\n    authorization: {credentials: x}\n", "at most one of basic_auth"),
        ("scrape_configs:\n  - job_name: a\n    basic_auth: {password: p, password_file: f}\n", "password & password_file"),
        ("scrape_configs:\n  - job_name: a\n    authorization: {type: Basic, credentials: x}\n", "use \"basic_auth\" instead"),
        ("scrape_configs:\n  - job_name: a\n    tls_config: {cert_file: c}\n", "key or key_file"),
        ("scrape_configs:\n  - job_name: a\n    tls_config: {min_version: TLS99}\n", "unknown TLS version"),
        ("scrape_configs:\n  - job_name: a\n    tls_config: {min_version: TLS13, max_version: TLS12}\n", "greater than or equal to tls_config.min_version"),
        ("scrape_configs:\n  - job_name: a\n    tls_config: {max_version: TLS11}\n", "TLS12 and TLS13 only"),
        ("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: hashmod\n        target_label: x\n", "relabel_configs[0] of job \"a\": relabel configuration for hashmod requires non-zero modulus"),
        ("scrape_configs:\n  - job_name: a\n    metric_relabel_configs:\n      - action: keep\n        regex: '('\n", "invalid regular expression"),
        ("scrape_configs:\n  - job_name: a\n    body_size_limit: lots\n", "not a valid size"),
        ("remote_write:\n  - queue_config: {}\n", "url for remote_write is empty"),
        ("remote_write:\n  - url: http://x\n    queue_config: {max_shard: 1}\n", "unknown field `max_shard`"),
        ("alerting:\n  alertmanagers:\n    - api_version: v3\n", "expected Alertmanager api version to be one of [v1 v2] but got v3"),
        ("global:\n  external_labels: {'1x': y}\n", "is not a valid label name"),
        ("scrape_configs:\n  - job_name: a\n    scrape_protocols: [PrometheusProto]\n", "unsupported scrape protocol"),
    ];
    for (yaml, want) in cases {
        let e = err(yaml);
        assert!(e.contains(want), "{yaml:?}: got {e:?}, want {want:?}");
    }
}

#[test]
fn embedded_default_scrapes_itself_every_15s() {
    let c = Config::embedded_default("0.0.0.0:9090");
    let j = c.scrape_config("vigil").unwrap();
    assert_eq!(j.interval_ms(), 15_000);
    assert_eq!(j.timeout_ms(), 10_000);
    assert_eq!(
        j.static_configs[0].targets,
        vec!["localhost:9090".to_string()]
    );
    let c = Config::embedded_default("127.0.0.1:19090");
    assert_eq!(
        c.scrape_config("vigil").unwrap().static_configs[0].targets,
        vec!["127.0.0.1:19090".to_string()]
    );
    // What it prints parses back to the same configuration.
    let again = parse(&c.to_yaml()).unwrap();
    assert_eq!(
        again.scrape_configs[0].static_configs,
        c.scrape_configs[0].static_configs
    );
    assert_eq!(again.global.scrape_interval, c.global.scrape_interval);
}

#[test]
fn check_report_reads_like_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(&good, FULL).unwrap();
    let (out, ok) = check_config_report(&good);
    assert!(ok);
    assert!(
        out.starts_with(&format!("Checking {}\n", good.display())),
        "{out}"
    );
    // `rules/*.yml` matches nothing next to the file: promtool prints no count then.
    assert!(!out.contains("rule files found"), "{out}");
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/a.yml"), "groups: []\n").unwrap();
    let (out, ok) = check_config_report(&good);
    assert!(ok);
    assert!(out.contains("\n  SUCCESS: 1 rule files found\n"), "{out}");
    assert!(
        out.ends_with(" is valid prometheus config file syntax\n"),
        "{out}"
    );
    let missing = dir.path().join("missing.yml");
    std::fs::write(&missing, "rule_files: [nope.yml]\n").unwrap();
    let (out, ok) = check_config_report(&missing);
    assert!(!ok);
    assert!(out.contains("does not point to an existing file"), "{out}");
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "scrape_configs:\n  - job_nam: x\n").unwrap();
    let (out, ok) = check_config_report(&bad);
    assert!(!ok);
    assert!(out.contains(" FAILED: parsing YAML file"), "{out}");
}

#[test]
fn slo_files_resolve_against_the_config_directory() {
    let c = parse("slo_files:\n  - slos/*.yaml\n  - /abs/x.yaml\n").unwrap();
    assert_eq!(
        c.slo_files,
        vec![
            "/etc/vigil/slos/*.yaml".to_string(),
            "/abs/x.yaml".to_string()
        ]
    );
    assert!(c.to_yaml().contains("slo_files"));
    assert!(!parse("").unwrap().to_yaml().contains("slo_files"));
    assert!(err("slo_files: ['']\n").contains("invalid SLO file path"));
    assert!(err("slo_files: 3\n").contains("slo_files"));
}
