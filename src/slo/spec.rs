//! The `vigil/v1` SLO file format (docs/SLO.md §1) and its validation: service and SLO
//! names, objective range, window (whole days, 7d..90d), exactly one SLI kind (ratio,
//! latency, or Sloth's `events` alias), `{{.window}}` placeholders that parse as PromQL once
//! substituted, reserved `slo_` labels. It never generates rules.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use super::decimal::Ratio;
use super::SloError;
use crate::flags::parse_duration_ms;
use crate::rules::NameValidation;

/// The only accepted `version`.
pub const VERSION: &str = "vigil/v1";
/// Default SLO window in days.
pub const DEFAULT_WINDOW_DAYS: u32 = 30;
const MIN_WINDOW_DAYS: u32 = 7;
const MAX_WINDOW_DAYS: u32 = 90;
const MS_PER_DAY: i64 = 86_400_000;
/// Prefix reserved for generated labels.
pub const RESERVED_LABEL_PREFIX: &str = "slo_";
/// The window placeholder in SLI queries (Sloth's spelling, and a spaced variant).
pub const WINDOW_PLACEHOLDERS: [&str; 2] = ["{{.window}}", "{{ .window }}"];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloFile {
    pub version: String,
    pub service: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub slos: Vec<SloSpec>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub objective: f64,
    #[serde(default)]
    pub window: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub sli: Sli,
    #[serde(default)]
    pub alerting: Option<Alerting>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sli {
    #[serde(default)]
    pub ratio: Option<RatioSli>,
    #[serde(default)]
    pub latency: Option<LatencySli>,
    /// Sloth's `events.error_query` / `events.total_query`.
    #[serde(default)]
    pub events: Option<SlothEvents>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatioSli {
    pub errors: String,
    pub total: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlothEvents {
    pub error_query: String,
    pub total_query: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySli {
    pub metric: String,
    #[serde(default)]
    pub selector: String,
    pub threshold: f64,
    #[serde(default)]
    pub native: bool,
    #[serde(default)]
    pub by: Vec<String>,
    /// Overrides the `le` label value written for `threshold`.
    #[serde(default)]
    pub le: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alerting {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub page: Severity,
    #[serde(default)]
    pub ticket: Severity,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Severity {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub disabled: bool,
}

/// The kind of SLI an SLO was written with (`sliType` in `/api/v1/slos`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliKind {
    /// `sli.ratio`, or Sloth's `sli.events` alias.
    Ratio,
    /// `sli.latency` (rewritten into a ratio for generation).
    Latency,
}

impl SliKind {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            SliKind::Ratio => "ratio",
            SliKind::Latency => "latency",
        }
    }
}

/// A validated SLO, ready for rule generation.
#[derive(Clone, Debug)]
pub struct Slo {
    pub service: String,
    pub name: String,
    pub description: String,
    /// Objective in percent, as written.
    pub objective: Ratio,
    /// Error budget `1 − objective/100`.
    pub budget: Ratio,
    pub window_days: u32,
    /// How the SLI was written.
    pub sli_kind: SliKind,
    /// File labels overridden by SLO labels.
    pub labels: BTreeMap<String, String>,
    /// Error query with the `{{.window}}` placeholder.
    pub errors: String,
    /// Total query with the `{{.window}}` placeholder.
    pub total: String,
    pub alerting: Option<Alerting>,
}

/// Replaces the window placeholder.
pub fn substitute_window(query: &str, window: &str) -> String {
    let mut q = query.to_string();
    for p in WINDOW_PLACEHOLDERS {
        q = q.replace(p, window);
    }
    q
}

fn valid_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Canonical float form of a bucket bound (`0.3`, `1.0`, `2.5`).
fn canonical_le(v: f64) -> String {
    let s = format!("{v}");
    if s.contains(['.', 'e', 'E']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// Splits `{a="b",c="d"}` into its inner matcher list.
fn selector_inner(sel: &str) -> String {
    let t = sel.trim();
    t.strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(t)
        .trim()
        .to_string()
}

fn braces(inner: &str, extra: &str) -> String {
    match (inner.is_empty(), extra.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!("{{{inner}}}"),
        (true, false) => format!("{{{extra}}}"),
        (false, false) => format!("{{{inner},{extra}}}"),
    }
}

/// Rewrites a latency SLI into (errors, total) queries with the window placeholder.
pub fn latency_queries(l: &LatencySli) -> (String, String) {
    let by = if l.by.is_empty() {
        String::new()
    } else {
        format!(" by ({})", l.by.join(", "))
    };
    let sel = selector_inner(&l.selector);
    let w = WINDOW_PLACEHOLDERS[0];
    if l.native {
        let hist = format!("sum{by} (rate({}{}[{w}]))", l.metric, braces(&sel, ""));
        let total = format!("histogram_count({hist})");
        let errors = format!(
            "{total} * (1 - histogram_fraction(0, {}, {hist}))",
            format_threshold(l.threshold)
        );
        (errors, total)
    } else {
        let le = l.le.clone().unwrap_or_else(|| canonical_le(l.threshold));
        let total = format!(
            "sum{by} (rate({}_count{}[{w}]))",
            l.metric,
            braces(&sel, "")
        );
        let good = format!(
            "sum{by} (rate({}_bucket{}[{w}]))",
            l.metric,
            braces(&sel, &format!("le=\"{le}\""))
        );
        (format!("{total} - {good}"), total)
    }
}

fn format_threshold(v: f64) -> String {
    format!("{v}")
}

fn check_labels(
    labels: &BTreeMap<String, String>,
    slo: &str,
    errs: &mut Vec<SloError>,
    file: &str,
) {
    for k in labels.keys() {
        if !NameValidation::Legacy.is_valid_label_name(k) {
            errs.push(SloError::invalid(
                file,
                slo,
                format!("invalid label name: {k}"),
            ));
        } else if k.starts_with(RESERVED_LABEL_PREFIX) {
            errs.push(SloError::invalid(
                file,
                slo,
                format!("label name {k} is reserved (prefix {RESERVED_LABEL_PREFIX})"),
            ));
        }
    }
}

/// Parses and validates SLO file text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Vec<Slo>, Vec<SloError>> {
    let spec: SloFile = serde_yaml::from_str(text).map_err(|e| {
        vec![SloError::File {
            file: file.to_string(),
            msg: e.to_string(),
        }]
    })?;
    let mut errs = Vec::new();
    let file_err = |msg: String| SloError::File {
        file: file.to_string(),
        msg,
    };
    if spec.version != VERSION {
        errs.push(file_err(format!(
            "unsupported version {:?}, want {VERSION:?}",
            spec.version
        )));
    }
    if !valid_ident(&spec.service) {
        errs.push(file_err(format!(
            "invalid service {:?}: must match [a-zA-Z0-9][a-zA-Z0-9_.-]*",
            spec.service
        )));
    }
    if spec.slos.is_empty() {
        errs.push(file_err("no slos defined".into()));
    }
    check_labels(&spec.labels, "", &mut errs, file);
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for s in &spec.slos {
        let n = s.name.as_str();
        let before = errs.len();
        if !valid_ident(n) {
            errs.push(SloError::invalid(
                file,
                n,
                "invalid name: must match [a-zA-Z0-9][a-zA-Z0-9_.-]*".to_string(),
            ));
        }
        if !names.insert(n) {
            errs.push(SloError::invalid(file, n, "duplicate SLO name".to_string()));
        }
        let objective = Ratio::from_f64_text(s.objective);
        let budget = objective.and_then(|o| Ratio::int(1).minus(o.over(Ratio::int(100))));
        if !(s.objective > 0.0 && s.objective < 100.0) || budget.is_none() {
            errs.push(SloError::invalid(
                file,
                n,
                format!(
                    "objective {} must be between 0 and 100 (exclusive)",
                    s.objective
                ),
            ));
        }
        let window_days = match &s.window {
            None => Some(DEFAULT_WINDOW_DAYS),
            Some(w) => match parse_duration_ms(w) {
                Ok(ms) if ms % MS_PER_DAY == 0 => {
                    let d = ms / MS_PER_DAY;
                    if (i64::from(MIN_WINDOW_DAYS)..=i64::from(MAX_WINDOW_DAYS)).contains(&d) {
                        Some(d as u32)
                    } else {
                        None
                    }
                }
                _ => None,
            },
        };
        if window_days.is_none() {
            errs.push(SloError::invalid(
                file,
                n,
                format!(
                    "invalid window {:?}: must be whole days between {MIN_WINDOW_DAYS}d and {MAX_WINDOW_DAYS}d",
                    s.window.as_deref().unwrap_or("")
                ),
            ));
        }
        check_labels(&s.labels, n, &mut errs, file);
        let kinds = [
            s.sli.ratio.is_some(),
            s.sli.latency.is_some(),
            s.sli.events.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        let queries = match (&s.sli.ratio, &s.sli.latency, &s.sli.events) {
            _ if kinds != 1 => {
                errs.push(SloError::invalid(
                    file,
                    n,
                    "sli must set exactly one of ratio or latency".to_string(),
                ));
                None
            }
            (Some(r), _, _) => Some((r.errors.trim().to_string(), r.total.trim().to_string())),
            (_, _, Some(e)) => Some((
                e.error_query.trim().to_string(),
                e.total_query.trim().to_string(),
            )),
            (_, Some(l), _) => {
                if l.threshold.is_nan() || l.threshold <= 0.0 {
                    errs.push(SloError::invalid(
                        file,
                        n,
                        format!("latency threshold {} must be > 0", l.threshold),
                    ));
                }
                if l.metric.is_empty() {
                    errs.push(SloError::invalid(
                        file,
                        n,
                        "latency metric must be set".into(),
                    ));
                }
                Some(latency_queries(l))
            }
            _ => None,
        };
        if let Some((e, t)) = &queries {
            for (what, q) in [("errors", e), ("total", t)] {
                if !WINDOW_PLACEHOLDERS.iter().any(|p| q.contains(p)) {
                    errs.push(SloError::invalid(
                        file,
                        n,
                        format!("{what} query has no {{{{.window}}}} placeholder"),
                    ));
                    continue;
                }
                let sub = substitute_window(q, "5m");
                if let Err(pe) = vigil_promql::parser::parse_expr(&sub) {
                    errs.push(SloError::invalid(
                        file,
                        n,
                        format!("{what} query does not parse: {pe}"),
                    ));
                }
            }
        }
        if let Some(a) = &s.alerting {
            if a.name.is_empty() {
                errs.push(SloError::invalid(
                    file,
                    n,
                    "alerting.name must be set".into(),
                ));
            } else if !NameValidation::Legacy.is_valid_label_name(&a.name) {
                errs.push(SloError::invalid(
                    file,
                    n,
                    format!("invalid alerting.name: {}", a.name),
                ));
            }
            for l in [&a.labels, &a.page.labels, &a.ticket.labels] {
                check_labels(l, n, &mut errs, file);
            }
        }
        if errs.len() > before {
            continue;
        }
        let (Some(objective), Some(budget), Some(window_days), Some((errors, total))) =
            (objective, budget, window_days, queries)
        else {
            continue;
        };
        let mut labels = spec.labels.clone();
        labels.extend(s.labels.clone());
        out.push(Slo {
            service: spec.service.clone(),
            name: s.name.clone(),
            description: s.description.clone(),
            objective,
            budget,
            window_days,
            sli_kind: if s.sli.latency.is_some() {
                SliKind::Latency
            } else {
                SliKind::Ratio
            },
            labels,
            errors,
            total,
            alerting: s.alerting.clone(),
        });
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}
