//! `/api/v1/slos` (docs/SLO.md §6): the loaded SLOs sorted by service and name, filtered by
//! `service` and `name`, with their live state at `time`: error ratios, burn rates and the
//! remaining budget read by instant queries over the series the generated rules recorded,
//! and the page/ticket alert state from the rule manager. It never re-evaluates SLIs over raw data and never changes
//! rule or SLO state; absent or NaN values are JSON `null`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value as Json;
use vigil_promql::engine::{Engine, EngineOpts, Value};

use super::json::{format_plain, write_str};
use super::params::{time_param, Params};
use super::query::engine_error;
use super::{ApiError, ApiResult, Reply};
use crate::server::AppState;
use crate::slo::generate::RATIO_WINDOWS;
use crate::slo::LoadedSlo;

/// Recorded error ratio series, one per window (`slo:sli_error:ratio_rate<w>`).
const ERROR_RATIO_PREFIX: &str = "slo:sli_error:ratio_rate";
/// The recorded remaining budget over the SLO period.
const BUDGET_REMAINING: &str = "slo:error_budget_remaining:ratio";
/// The label every generated series carries with the SLO's service.
const SERVICE_LABEL: &str = "slo_service";
/// The label every generated series carries with the SLO's name.
const NAME_LABEL: &str = "slo_name";
/// The label of generated alerts that names their severity.
const SEVERITY_LABEL: &str = "slo_severity";
/// Severities in output order.
const SEVERITIES: [&str; 2] = ["page", "ticket"];
const METRIC_NAME_LABEL: &str = "__name__";

/// A label set without `__name__`, sorted by name.
type LabelMap = BTreeMap<String, String>;

/// The recorded values of one series of one SLO at the query time.
#[derive(Default)]
struct SeriesValues {
    /// Error ratio by window, the SLO period included (`30d`).
    ratios: BTreeMap<String, f64>,
    budget_remaining: Option<f64>,
}

/// `GET|POST /api/v1/slos`.
pub fn slos(state: &AppState, p: &Params) -> ApiResult {
    let ts = time_param(p, "time", vigil_storage::head::now_ms())?;
    let service = p.get_nonempty("service");
    let name = p.get_nonempty("name");
    let Some(alerting) = state.alerting.get() else {
        return Ok(Reply::data(r#"{"slos":[]}"#));
    };
    let all = alerting.slos.current();
    let mut selected: Vec<&LoadedSlo> = all
        .iter()
        .filter(|l| service.is_none_or(|s| s == l.slo.service))
        .filter(|l| name.is_none_or(|n| n == l.slo.name))
        .collect();
    selected.sort_by(|a, b| (&a.slo.service, &a.slo.name).cmp(&(&b.slo.service, &b.slo.name)));
    if selected.is_empty() {
        return Ok(Reply::data(r#"{"slos":[]}"#));
    }
    let rules = block_on(alerting.rules.rules_json(false));
    let engine = Engine::new(EngineOpts {
        timeout: state.api.query_timeout,
        max_samples: state.api.max_samples,
        lookback_delta_ms: state.api.lookback_delta_ms,
        ..EngineOpts::default()
    });
    let mut out = String::from(r#"{"slos":["#);
    for (i, l) in selected.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let series = recorded(state, &engine, l, ts)?;
        write_slo(&mut out, l, &series, &rules);
    }
    out.push_str("]}");
    Ok(Reply::data(out))
}

/// The PromQL selector of every recorded series `/api/v1/slos` reads for one SLO.
fn selector(l: &LoadedSlo) -> String {
    let mut names: Vec<String> = RATIO_WINDOWS
        .iter()
        .chain(std::iter::once(&period(l).as_str()))
        .map(|w| format!("{ERROR_RATIO_PREFIX}{w}"))
        .collect();
    names.push(BUDGET_REMAINING.to_string());
    // Service and SLO names are `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (checked when loading), so
    // they need no escaping inside a double-quoted PromQL string.
    let escaped: Vec<String> = names.iter().map(|n| regex_quote(n)).collect();
    format!(
        "{{{METRIC_NAME_LABEL}=~\"{}\",{SERVICE_LABEL}=\"{}\",{NAME_LABEL}=\"{}\"}}",
        escaped.join("|"),
        l.slo.service,
        l.slo.name
    )
}

/// Escapes regex metacharacters for a regex written inside a PromQL double-quoted string.
fn regex_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            // A backslash inside a PromQL double-quoted string must itself be escaped.
            out.push_str("\\\\");
        }
        out.push(c);
    }
    out
}

/// The SLO period as a window name (`30d`).
fn period(l: &LoadedSlo) -> String {
    format!("{}d", l.slo.window_days)
}

/// Reads the recorded series of one SLO at `ts`, grouped by label set (without the name).
fn recorded(
    state: &AppState,
    engine: &Engine,
    l: &LoadedSlo,
    ts: i64,
) -> Result<BTreeMap<LabelMap, SeriesValues>, ApiError> {
    let res = engine
        .exec(state.db.as_ref(), &selector(l), ts, ts, 0, None)
        .map_err(engine_error)?;
    let mut out: BTreeMap<LabelMap, SeriesValues> = BTreeMap::new();
    let Value::Vector(samples) = res.value else {
        return Err(ApiError::internal(
            "SLO series query did not return a vector",
        ));
    };
    for s in samples {
        let mut metric = String::new();
        let mut key = LabelMap::new();
        for label in s.labels.iter() {
            if &*label.name == METRIC_NAME_LABEL {
                metric = label.value.to_string();
            } else {
                key.insert(label.name.to_string(), label.value.to_string());
            }
        }
        let entry = out.entry(key).or_default();
        if metric == BUDGET_REMAINING {
            entry.budget_remaining = Some(s.v);
        } else if let Some(w) = metric.strip_prefix(ERROR_RATIO_PREFIX) {
            entry.ratios.insert(w.to_string(), s.v);
        }
    }
    if out.is_empty() {
        // Nothing recorded yet (or no traffic): the SLO still shows, with null values, under
        // the labels every generated series carries.
        out.insert(static_labels(l), SeriesValues::default());
    }
    Ok(out)
}

/// `slo_service`, `slo_name` and the SLO's labels.
fn static_labels(l: &LoadedSlo) -> LabelMap {
    let mut m = l.slo.labels.clone();
    m.insert(SERVICE_LABEL.into(), l.slo.service.clone());
    m.insert(NAME_LABEL.into(), l.slo.name.clone());
    m
}

/// A JSON number, or `null` for an absent or non-finite value.
fn write_num(out: &mut String, v: Option<f64>) {
    match v {
        Some(x) if x.is_finite() => out.push_str(&format_plain(x)),
        _ => out.push_str("null"),
    }
}

fn write_labels(out: &mut String, m: &LabelMap) {
    out.push('{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, k);
        out.push(':');
        write_str(out, v);
    }
    out.push('}');
}

fn write_slo(
    out: &mut String,
    l: &LoadedSlo,
    series: &BTreeMap<LabelMap, SeriesValues>,
    rules: &Json,
) {
    let slo = &l.slo;
    let budget = slo.budget.to_f64();
    out.push_str("{\"service\":");
    write_str(out, &slo.service);
    out.push_str(",\"name\":");
    write_str(out, &slo.name);
    out.push_str(",\"file\":");
    write_str(out, &l.file);
    out.push_str(",\"description\":");
    write_str(out, &slo.description);
    out.push_str(",\"objective\":");
    write_num(out, Some(slo.objective.to_f64()));
    out.push_str(",\"errorBudget\":");
    write_num(out, Some(budget));
    out.push_str(",\"window\":");
    write_str(out, &period(l));
    out.push_str(",\"sliType\":");
    write_str(out, slo.sli_kind.as_str());
    out.push_str(",\"labels\":");
    write_labels(out, &slo.labels);
    out.push_str(",\"series\":[");
    let states = alert_states(l, rules);
    for (i, (labels, vals)) in series.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let error_ratio = vals.ratios.get(&period(l)).copied().filter(|v| !v.is_nan());
        let remaining = vals.budget_remaining.filter(|v| !v.is_nan());
        out.push_str("{\"labels\":");
        write_labels(out, labels);
        out.push_str(",\"sli\":");
        write_num(out, error_ratio.map(|r| 1.0 - r));
        out.push_str(",\"errorRatio\":");
        write_num(out, error_ratio);
        out.push_str(",\"budgetRemaining\":");
        write_num(out, remaining);
        out.push_str(",\"budgetConsumed\":");
        write_num(out, remaining.map(|r| 1.0 - r));
        out.push_str(",\"burnRates\":{");
        for (j, w) in RATIO_WINDOWS
            .iter()
            .map(|w| w.to_string())
            .chain(std::iter::once(period(l)))
            .enumerate()
        {
            if j > 0 {
                out.push(',');
            }
            write_str(out, &w);
            out.push(':');
            write_num(out, vals.ratios.get(&w).map(|r| r / budget));
        }
        out.push_str("},\"alerts\":{");
        for (j, sev) in SEVERITIES.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let _ = write!(out, "\"{sev}\":");
            write_str(out, &states.state(sev, labels));
        }
        out.push_str("}}");
    }
    out.push_str("]}");
}

/// The alerting rules of one SLO's `:alerts` group, by severity.
struct AlertStates<'a> {
    /// Severities the SLO file disables (or all, without an `alerting` block).
    disabled: Vec<&'static str>,
    /// Rule JSON objects of `/api/v1/rules`, by `slo_severity`.
    rules: BTreeMap<String, &'a Json>,
}

impl AlertStates<'_> {
    /// `disabled`, or the highest state of the severity's alert instances whose labels
    /// include `series` (`firing` > `pending` > `inactive`).
    fn state(&self, severity: &str, series: &LabelMap) -> String {
        if self.disabled.contains(&severity) {
            return "disabled".into();
        }
        let Some(rule) = self.rules.get(severity) else {
            return "inactive".into();
        };
        let mut best = "inactive";
        let instances = rule.get("alerts").and_then(Json::as_array);
        for a in instances.into_iter().flatten() {
            let labels = a.get("labels");
            let matches = series.iter().all(|(k, v)| {
                labels
                    .and_then(|l| l.get(k))
                    .and_then(Json::as_str)
                    .is_some_and(|x| x == v)
            });
            if !matches {
                continue;
            }
            match a.get("state").and_then(Json::as_str) {
                Some("firing") => best = "firing",
                Some("pending") if best != "firing" => best = "pending",
                _ => {}
            }
        }
        best.into()
    }
}

/// Finds the SLO's alert rules in `/api/v1/rules` data (`{"groups":[...]}`).
fn alert_states<'a>(l: &LoadedSlo, rules: &'a Json) -> AlertStates<'a> {
    let slo = &l.slo;
    let disabled = match &slo.alerting {
        None => SEVERITIES.to_vec(),
        Some(a) => SEVERITIES
            .iter()
            .zip([a.page.disabled, a.ticket.disabled])
            .filter(|(_, d)| *d)
            .map(|(s, _)| *s)
            .collect(),
    };
    let group_name = format!("slo:{}:{}:alerts", slo.service, slo.name);
    let mut by_severity = BTreeMap::new();
    let groups = rules.get("groups").and_then(Json::as_array);
    for g in groups.into_iter().flatten() {
        let is_ours = g.get("name").and_then(Json::as_str) == Some(group_name.as_str())
            && g.get("file").and_then(Json::as_str) == Some(l.file.as_str());
        if !is_ours {
            continue;
        }
        for r in g
            .get("rules")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let sev = r
                .get("labels")
                .and_then(|x| x.get(SEVERITY_LABEL))
                .and_then(Json::as_str);
            if let Some(sev) = sev {
                by_severity.insert(sev.to_string(), r);
            }
        }
    }
    AlertStates {
        disabled,
        rules: by_severity,
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

    const SLO: &str = "version: vigil/v1\nservice: api\nlabels: {team: t}\nslos:\n  - name: avail\n    objective: 99.5\n    sli:\n      ratio:\n        errors: sum(rate(e[{{.window}}]))\n        total: sum(rate(t[{{.window}}]))\n    alerting:\n      name: ApiBurn\n      ticket: {disabled: true}\n";

    fn loaded() -> LoadedSlo {
        LoadedSlo {
            file: "/s/api.yaml".into(),
            slo: crate::slo::parse("/s/api.yaml", SLO).unwrap().remove(0),
        }
    }

    fn rules(file: &str, page_instances: Json) -> Json {
        serde_json::json!({"groups": [{
            "name": "slo:api:avail:alerts", "file": file,
            "rules": [{"type": "alerting", "name": "ApiBurn",
                       "labels": {"slo_severity": "page"}, "alerts": page_instances}]
        }]})
    }

    fn series_labels() -> LabelMap {
        static_labels(&loaded())
    }

    #[test]
    fn regex_quote_escapes_for_a_promql_string() {
        assert_eq!(regex_quote("a.b"), "a\\\\.b");
        assert_eq!(regex_quote("slo:x"), "slo:x");
    }

    #[test]
    fn selector_reads_every_window_and_the_budget_of_one_slo() {
        let sel = selector(&loaded());
        vigil_promql::parser::parse_expr(&sel).unwrap();
        assert!(sel.contains("slo:sli_error:ratio_rate5m|"), "{sel}");
        assert!(sel.contains("slo:sli_error:ratio_rate30d|"), "{sel}");
        assert!(sel.contains("slo:error_budget_remaining:ratio\""), "{sel}");
        assert!(
            sel.ends_with(",slo_service=\"api\",slo_name=\"avail\"}"),
            "{sel}"
        );
    }

    #[test]
    fn alert_state_is_the_highest_matching_instance_or_disabled() {
        let l = loaded();
        let labels = series_labels();
        let firing = serde_json::json!([
            {"labels": {"alertname": "ApiBurn", "slo_service": "api", "slo_name": "avail", "team": "t", "slo_severity": "page"}, "state": "pending"},
            {"labels": {"alertname": "ApiBurn", "slo_service": "api", "slo_name": "avail", "team": "t", "slo_severity": "page"}, "state": "firing"},
        ]);
        let r = rules("/s/api.yaml", firing.clone());
        let st = alert_states(&l, &r);
        assert_eq!(st.state("page", &labels), "firing");
        assert_eq!(st.state("ticket", &labels), "disabled");
        // Only pending.
        let r = rules("/s/api.yaml", serde_json::json!([firing[0].clone()]));
        assert_eq!(alert_states(&l, &r).state("page", &labels), "pending");
        // No instance, an instance of another series, or the group of another file.
        let r = rules("/s/api.yaml", serde_json::json!([]));
        assert_eq!(alert_states(&l, &r).state("page", &labels), "inactive");
        let mut other = labels.clone();
        other.insert("team".into(), "u".into());
        let r = rules("/s/api.yaml", firing.clone());
        assert_eq!(alert_states(&l, &r).state("page", &other), "inactive");
        let r = rules("/s/other.yaml", firing);
        assert_eq!(alert_states(&l, &r).state("page", &labels), "inactive");
    }

    #[test]
    fn entry_json_has_the_documented_shape_and_nulls() {
        let l = loaded();
        let mut vals = SeriesValues::default();
        vals.ratios.insert("5m".into(), 0.075);
        vals.ratios.insert("30d".into(), 0.0025);
        vals.ratios.insert("1h".into(), f64::NAN);
        vals.budget_remaining = Some(0.5);
        let mut series = BTreeMap::new();
        series.insert(series_labels(), vals);
        let mut out = String::new();
        write_slo(
            &mut out,
            &l,
            &series,
            &rules("/s/api.yaml", serde_json::json!([])),
        );
        let j: Json = serde_json::from_str(&out).unwrap();
        assert_eq!(j["service"], "api");
        assert_eq!(j["file"], "/s/api.yaml");
        assert_eq!(j["objective"], 99.5);
        assert_eq!(j["errorBudget"], 0.005);
        assert_eq!(j["window"], "30d");
        assert_eq!(j["sliType"], "ratio");
        assert_eq!(j["labels"], serde_json::json!({"team": "t"}));
        let x = &j["series"][0];
        assert_eq!(x["errorRatio"], 0.0025);
        assert_eq!(x["sli"], 0.9975);
        assert_eq!(x["budgetRemaining"], 0.5);
        assert_eq!(x["budgetConsumed"], 0.5);
        assert_eq!(x["burnRates"]["5m"], 15.0);
        assert_eq!(x["burnRates"]["30d"], 0.5);
        assert!(x["burnRates"]["1h"].is_null());
        assert!(x["burnRates"]["3d"].is_null());
        assert_eq!(
            x["alerts"],
            serde_json::json!({"page": "inactive", "ticket": "disabled"})
        );
        // Burn rates keep the window order of docs/SLO.md.
        let keys: Vec<&str> = out
            .split("\"burnRates\":{")
            .nth(1)
            .unwrap()
            .split('}')
            .next()
            .unwrap()
            .split(',')
            .map(|kv| kv.split(':').next().unwrap().trim_matches('"'))
            .collect();
        assert_eq!(keys, ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]);
    }
}
