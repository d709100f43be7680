//! Status endpoints (`/api/v1/status/{buildinfo,runtimeinfo,flags,config,tsdb,walreplay}`)
//! and the shapes of the scraping and rules endpoints (`targets`, `targets/metadata`,
//! `rules`), which answer empty until scraping and rules exist. Reports state only; never
//! changes it.

use serde_json::json;

use super::params::{format_rfc3339_ms, limit_param, parse_selectors, Params};
use super::{ApiError, ApiResult, Reply};
use crate::server::AppState;

/// The Prometheus API level Vigil implements (Grafana needs semver ≥ 2.24).
pub const API_COMPAT_VERSION: &str = "2.53.0";
/// Default and bounds of `status/tsdb?limit=`.
const TSDB_STATUS_DEFAULT_LIMIT: usize = 10;
const TSDB_STATUS_MAX_LIMIT: usize = 10_000;

/// The configuration used without `--config.file`: scrape Vigil itself every 15s.
pub const DEFAULT_CONFIG_YAML: &str = "global:
  scrape_interval: 15s
  scrape_timeout: 10s
  evaluation_interval: 15s
scrape_configs:
  - job_name: vigil
    static_configs:
      - targets:
          - localhost:9090
";

/// `/api/v1/status/<which>`.
pub fn status(state: &AppState, which: &str, p: &Params) -> ApiResult {
    match which {
        "buildinfo" => Ok(Reply::data(buildinfo().to_string())),
        "runtimeinfo" => Ok(Reply::data(runtimeinfo(state).to_string())),
        "flags" => Ok(Reply::data(
            serde_json::to_string(&state.api.flags)
                .map_err(|e| ApiError::internal(e.to_string()))?,
        )),
        "config" => {
            let yaml = state.api.config.read().yaml.clone();
            Ok(Reply::data(json!({ "yaml": yaml }).to_string()))
        }
        "tsdb" => tsdb(state, p),
        "walreplay" => walreplay(state),
        other => Err(ApiError::new(
            super::ErrorType::NotFound,
            format!("unknown status page {other:?}"),
        )),
    }
}

/// Build information in Prometheus' shape; never `features`.
pub fn buildinfo() -> serde_json::Value {
    json!({
        "version": API_COMPAT_VERSION,
        "revision": option_env!("VIGIL_GIT_REVISION").unwrap_or(""),
        "branch": option_env!("VIGIL_GIT_BRANCH").unwrap_or(""),
        "buildUser": option_env!("VIGIL_BUILD_USER").unwrap_or(""),
        "buildDate": option_env!("VIGIL_BUILD_DATE").unwrap_or(""),
        "goVersion": format!(
            "rustc (vigil {})",
            env!("CARGO_PKG_VERSION")
        ),
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

fn runtimeinfo(state: &AppState) -> serde_json::Value {
    let start_ms = state
        .start_time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let cfg = state.api.config.read().clone();
    let opts = state.db.options();
    let mut retention = Vec::new();
    if opts.retention_ms > 0 {
        retention.push(vigil_promql::parser::format_duration(opts.retention_ms));
    }
    if opts.retention_bytes > 0 {
        retention.push(format!("{}B", opts.retention_bytes));
    }
    json!({
        "startTime": format_rfc3339_ms(start_ms),
        "CWD": std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
        "hostname": hostname(),
        "serverTime": format_rfc3339_ms(vigil_storage::head::now_ms()),
        "reloadConfigSuccess": cfg.success,
        "lastConfigTime": format_rfc3339_ms(cfg.last_time_ms),
        "corruptionCount": u64::from(state.db.replay_stats().corruption.is_some()),
        "goroutineCount": 0,
        "GOMAXPROCS": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "GOMEMLIMIT": 0,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": retention.join(" or "),
    })
}

fn pairs_json(v: &[(String, u64)]) -> serde_json::Value {
    serde_json::Value::Array(
        v.iter()
            .map(|(name, value)| json!({ "name": name, "value": value }))
            .collect(),
    )
}

/// `/api/v1/status/tsdb`: head statistics and cardinality (top `limit`, default 10).
fn tsdb(state: &AppState, p: &Params) -> ApiResult {
    let limit = match p.get_nonempty("limit") {
        None => TSDB_STATUS_DEFAULT_LIMIT,
        Some(s) => {
            let n: i64 = s
                .parse()
                .map_err(|_| ApiError::bad_data("limit must be a positive number"))?;
            if n < 1 {
                return Err(ApiError::bad_data("limit must be a positive number"));
            }
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > TSDB_STATUS_MAX_LIMIT {
                return Err(ApiError::bad_data(format!(
                    "limit must not exceed {TSDB_STATUS_MAX_LIMIT}"
                )));
            }
            n
        }
    };
    let head = state.db.head();
    let c = head.cardinality_stats(limit);
    let data = json!({
        "headStats": {
            "numSeries": head.num_series(),
            "numLabelPairs": c.num_label_pairs,
            "chunkCount": c.num_chunks,
            "minTime": head.min_time(),
            "maxTime": head.max_time(),
        },
        "seriesCountByMetricName": pairs_json(&c.series_count_by_metric_name),
        "labelValueCountByLabelName": pairs_json(&c.label_value_count_by_label_name),
        "memoryInBytesByLabelName": pairs_json(&c.memory_in_bytes_by_label_name),
        "seriesCountByLabelValuePair": pairs_json(&c.series_count_by_label_value_pair),
    });
    Ok(Reply::data(data.to_string()))
}

/// `/api/v1/status/walreplay`: the WAL segment range; the API only serves after replay, so
/// `current` is `max`.
fn walreplay(state: &AppState) -> ApiResult {
    let dir = state.db.dir().join("wal");
    let mut segs: Vec<u64> = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            if let Some(n) = e
                .file_name()
                .to_str()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse().ok())
            {
                segs.push(n);
            }
        }
    }
    let min = segs.iter().min().copied().unwrap_or(0);
    let max = segs.iter().max().copied().unwrap_or(0);
    Ok(Reply::data(
        json!({ "min": min, "max": max, "current": max }).to_string(),
    ))
}

/// `/api/v1/targets`: the scrape manager's active and dropped targets, filtered by `state`
/// (`active`, `dropped`, `any`) and `scrapePool`, in Prometheus' shape.
pub fn targets(state: &AppState, p: &Params) -> ApiResult {
    let which = p.get("state").unwrap_or("").to_ascii_lowercase();
    let pool = p.get_nonempty("scrapePool");
    let want_active = matches!(which.as_str(), "" | "any" | "active");
    let want_dropped = matches!(which.as_str(), "" | "any" | "dropped");
    let in_pool = |name: &str| pool.is_none_or(|p| p == name);
    let labels_obj = |l: &vigil_storage::Labels| {
        serde_json::Value::Object(
            l.iter()
                .map(|x| (x.name.to_string(), serde_json::Value::from(&*x.value)))
                .collect(),
        )
    };
    let mut active = Vec::new();
    if want_active {
        for t in state.scrape.active_targets() {
            if !in_pool(&t.scrape_pool) {
                continue;
            }
            active.push(json!({
                "discoveredLabels": labels_obj(&t.discovered_labels),
                "labels": labels_obj(&t.labels),
                "scrapePool": t.scrape_pool,
                "scrapeUrl": t.scrape_url,
                "globalUrl": t.scrape_url,
                "lastError": t.last_error,
                "lastScrape": t
                    .last_scrape_ms
                    .map(format_rfc3339_ms)
                    .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string()),
                "lastScrapeDuration": t.last_scrape_duration_seconds,
                "health": t.health.as_str(),
                "scrapeInterval": vigil_promql::parser::format_duration(t.scrape_interval_ms),
                "scrapeTimeout": vigil_promql::parser::format_duration(t.scrape_timeout_ms),
            }));
        }
    }
    let mut dropped = Vec::new();
    let mut counts = serde_json::Map::new();
    for d in state.scrape.dropped_targets() {
        let c = counts
            .entry(d.scrape_pool.clone())
            .or_insert(serde_json::Value::from(0u64));
        *c = serde_json::Value::from(c.as_u64().unwrap_or(0) + 1);
        if want_dropped && in_pool(&d.scrape_pool) {
            dropped.push(json!({
                "discoveredLabels": labels_obj(&d.discovered_labels),
                "scrapePool": d.scrape_pool,
            }));
        }
    }
    Ok(Reply::data(
        json!({
            "activeTargets": active,
            "droppedTargets": dropped,
            "droppedTargetCounts": counts,
        })
        .to_string(),
    ))
}

/// `/api/v1/scrape_pools`: the configured scrape pools, sorted.
pub fn scrape_pools(state: &AppState) -> ApiResult {
    let mut pools = state.scrape.pools();
    pools.sort();
    Ok(Reply::data(json!({ "scrapePools": pools }).to_string()))
}

/// `/api/v1/targets/metadata`: `match_target` must parse; no targets, so no metadata.
pub fn targets_metadata(p: &Params) -> ApiResult {
    if let Some(m) = p.get_nonempty("match_target") {
        parse_selectors(&[m])?;
    }
    limit_param(p, "limit")?;
    Ok(Reply::data("[]"))
}

/// `/api/v1/rules`: the rule manager's groups, filtered by `type`, `rule_name[]`,
/// `rule_group[]` and `file[]` (empty when no rules are loaded).
pub fn rules(state: &AppState, p: &Params) -> ApiResult {
    let kind = p.get("type").unwrap_or("").to_ascii_lowercase();
    match kind.as_str() {
        "" | "alert" | "record" => {}
        other => {
            return Err(super::params::invalid_param(
                "type",
                format!("not supported value {other:?}"),
            ))
        }
    }
    if let Some(g) = p.get_nonempty("group_limit") {
        match g.parse::<i64>() {
            Ok(n) if n > 0 => {}
            _ => {
                return Err(super::params::invalid_param(
                    "group_limit",
                    format!("group_limit needs to be greater than 0, got {g:?}"),
                ))
            }
        }
    }
    let sets = p.all("match[]");
    if !sets.is_empty() {
        parse_selectors(&sets)?;
    }
    let Some(alerting) = state.alerting.get() else {
        return Ok(Reply::data(r#"{"groups":[]}"#));
    };
    let exclude_alerts = p.get("exclude_alerts") == Some("true");
    let mut data = block_on(alerting.rules.rules_json(exclude_alerts));
    let names = p.all("rule_name[]");
    let groups = p.all("rule_group[]");
    let files = p.all("file[]");
    let want_type = match kind.as_str() {
        "alert" => Some("alerting"),
        "record" => Some("recording"),
        _ => None,
    };
    if let Some(gs) = data.get_mut("groups").and_then(|g| g.as_array_mut()) {
        gs.retain(|g| {
            let name = g.get("name").and_then(|v| v.as_str()).unwrap_or("");
            let file = g.get("file").and_then(|v| v.as_str()).unwrap_or("");
            (groups.is_empty() || groups.contains(&name))
                && (files.is_empty() || files.contains(&file))
        });
        for g in gs.iter_mut() {
            if let Some(rs) = g.get_mut("rules").and_then(|r| r.as_array_mut()) {
                rs.retain(|r| {
                    let t = r.get("type").and_then(|v| v.as_str()).unwrap_or("");
                    let n = r.get("name").and_then(|v| v.as_str()).unwrap_or("");
                    want_type.is_none_or(|w| w == t) && (names.is_empty() || names.contains(&n))
                });
            }
        }
        if want_type.is_some() || !names.is_empty() {
            gs.retain(|g| {
                g.get("rules")
                    .and_then(|r| r.as_array())
                    .is_some_and(|r| !r.is_empty())
            });
        }
    }
    Ok(Reply::data(data.to_string()))
}

/// `/api/v1/alerts`: every pending and firing alert.
pub fn alerts(state: &AppState) -> ApiResult {
    match state.alerting.get() {
        Some(a) => Ok(Reply::data(block_on(a.rules.alerts_json()).to_string())),
        None => Ok(Reply::data(r#"{"alerts":[]}"#)),
    }
}

/// `/api/v1/alertmanagers`: the Alertmanagers alerts are sent to.
pub fn alertmanagers(state: &AppState) -> ApiResult {
    match state.alerting.get() {
        Some(a) => Ok(Reply::data(a.notifier.alertmanagers_json().to_string())),
        None => Ok(Reply::data(
            r#"{"activeAlertmanagers":[],"droppedAlertmanagers":[]}"#,
        )),
    }
}

/// Runs an async accessor from the API's blocking handler thread.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Handle::current().block_on(f)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn buildinfo_has_six_string_keys_and_no_features() {
        let b = buildinfo();
        let o = b.as_object().unwrap();
        assert_eq!(o.len(), 6);
        assert!(o.values().all(|v| v.is_string()));
        assert!(!o.contains_key("features"));
        assert_eq!(o["version"], "2.53.0");
    }

    #[test]
    fn rules_validate_type() {
        let p = |s: &str| Params::from_parts(None, Some(s));
        let dir = tempfile::tempdir().unwrap();
        let db = vigil_storage::Db::open(dir.path(), vigil_storage::DbOptions::default()).unwrap();
        let st = AppState::new(db, crate::api::ApiConfig::default(), "127.0.0.1:0");
        assert!(rules(&st, &p("type=alert&rule_group[]=x&file[]=y")).is_ok());
        assert!(rules(&st, &p("type=bogus")).is_err());
        assert!(rules(&st, &p("group_limit=0")).is_err());
    }
}
