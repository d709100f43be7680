//! SLO → rule file generation (docs/SLO.md §3): the `:sli` group of error ratios over
//! 5m..3d plus 5m event rates, the `:period` group (traffic-weighted period ratio, objective,
//! budget, burn rate, budget remaining) and the `:alerts` group of multiwindow
//! multi-burn-rate page/ticket alerts, printed as exact, stable YAML text. Never evaluates.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::decimal::Ratio;
use super::spec::{substitute_window, Slo};

/// Windows of the recorded error ratios, in output order.
pub const RATIO_WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];
/// The window of the recorded event rates summed over the period.
const EVENT_RATE_WINDOW: &str = "5m";
const HOURS_PER_DAY: u128 = 24;

/// One multiwindow pair: long and short window, budget fraction in percent.
struct Pair {
    long: &'static str,
    long_hours: u128,
    short: &'static str,
    budget_percent: u128,
}

const PAGE_PAIRS: [Pair; 2] = [
    Pair {
        long: "1h",
        long_hours: 1,
        short: "5m",
        budget_percent: 2,
    },
    Pair {
        long: "6h",
        long_hours: 6,
        short: "30m",
        budget_percent: 5,
    },
];
const TICKET_PAIRS: [Pair; 2] = [
    Pair {
        long: "1d",
        long_hours: 24,
        short: "2h",
        budget_percent: 10,
    },
    Pair {
        long: "3d",
        long_hours: 72,
        short: "6h",
        budget_percent: 10,
    },
];

/// The threshold `fraction × P / long × budget` for one pair.
fn threshold(pair: &Pair, slo: &Slo) -> Ratio {
    Ratio::new(pair.budget_percent, 100)
        .times(Ratio::int(u128::from(slo.window_days) * HOURS_PER_DAY))
        .over(Ratio::int(pair.long_hours))
        .times(slo.budget)
}

/// True if `s` can be written as a plain YAML scalar (`flow`: inside `{...}`).
fn plain_ok(s: &str, flow: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) || first.is_whitespace() {
        return false;
    }
    if s.ends_with(char::is_whitespace) || s.contains(": ") || s.contains(" #") || s.ends_with(':')
    {
        return false;
    }
    if s.contains(['\n', '\t', '\r']) {
        return false;
    }
    if flow && s.contains([',', '[', ']', '{', '}']) {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
    ) || s.parse::<f64>().is_ok()
        || lower.starts_with("0x")
        || lower.starts_with("0o")
    {
        return false;
    }
    true
}

/// A YAML scalar: plain when safe, else double-quoted.
pub fn yaml_scalar(s: &str, flow: bool) -> String {
    if plain_ok(s, flow) {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn flow_map(pairs: &[(String, String)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}: {}", yaml_scalar(k, true), yaml_scalar(v, true)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

fn rule_labels(slo: &Slo) -> Vec<(String, String)> {
    let mut v = vec![
        ("slo_service".to_string(), slo.service.clone()),
        ("slo_name".to_string(), slo.name.clone()),
    ];
    v.extend(slo.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    v
}

fn selector(slo: &Slo) -> String {
    format!(
        "{{slo_service=\"{}\",slo_name=\"{}\"}}",
        slo.service, slo.name
    )
}

fn push_record(out: &mut String, record: &str, expr: &str, labels: &str) {
    let _ = writeln!(out, "      - record: {}", yaml_scalar(record, false));
    let _ = writeln!(out, "        expr: {}", yaml_scalar(expr, false));
    let _ = writeln!(out, "        labels: {labels}");
}

fn error_expr(slo: &Slo, w: &str) -> String {
    let e = substitute_window(&slo.errors, w);
    let t = substitute_window(&slo.total, w);
    format!("({e}) or (0 * {t})")
}

/// Appends the three groups of one SLO.
fn generate_slo(out: &mut String, slo: &Slo) {
    let labels = flow_map(&rule_labels(slo));
    let sel = selector(slo);
    let prefix = format!("slo:{}:{}", slo.service, slo.name);
    let period = format!("{}d", slo.window_days);
    let budget = slo.budget.to_decimal_string();

    let _ = writeln!(
        out,
        "  - name: {}",
        yaml_scalar(&format!("{prefix}:sli"), false)
    );
    out.push_str("    rules:\n");
    for w in RATIO_WINDOWS {
        let t = substitute_window(&slo.total, w);
        let expr = format!("({}) / {t}", error_expr(slo, w));
        push_record(out, &format!("slo:sli_error:ratio_rate{w}"), &expr, &labels);
    }
    push_record(
        out,
        &format!("slo:sli_error_events:rate{EVENT_RATE_WINDOW}"),
        &error_expr(slo, EVENT_RATE_WINDOW),
        &labels,
    );
    push_record(
        out,
        &format!("slo:sli_total_events:rate{EVENT_RATE_WINDOW}"),
        &substitute_window(&slo.total, EVENT_RATE_WINDOW),
        &labels,
    );

    let _ = writeln!(
        out,
        "  - name: {}",
        yaml_scalar(&format!("{prefix}:period"), false)
    );
    out.push_str("    rules:\n");
    let period_ratio = format!("slo:sli_error:ratio_rate{period}");
    push_record(
        out,
        &period_ratio,
        &format!(
            "sum_over_time(slo:sli_error_events:rate{EVENT_RATE_WINDOW}{sel}[{period}]) / sum_over_time(slo:sli_total_events:rate{EVENT_RATE_WINDOW}{sel}[{period}])"
        ),
        &labels,
    );
    let objective_ratio = slo.objective.over(Ratio::int(100)).to_decimal_string();
    push_record(
        out,
        "slo:objective:ratio",
        &format!("vector({objective_ratio})"),
        &labels,
    );
    push_record(
        out,
        "slo:error_budget:ratio",
        &format!("vector({budget})"),
        &labels,
    );
    push_record(
        out,
        "slo:time_period:days",
        &format!("vector({})", slo.window_days),
        &labels,
    );
    push_record(
        out,
        "slo:period_burn_rate:ratio",
        &format!("{period_ratio}{sel} / {budget}"),
        &labels,
    );
    push_record(
        out,
        "slo:error_budget_remaining:ratio",
        &format!("1 - ({period_ratio}{sel} / {budget})"),
        &labels,
    );

    let Some(alerting) = &slo.alerting else {
        return;
    };
    let sevs = [
        ("page", &alerting.page, &PAGE_PAIRS),
        ("ticket", &alerting.ticket, &TICKET_PAIRS),
    ];
    if sevs.iter().all(|(_, s, _)| s.disabled) {
        return;
    }
    let _ = writeln!(
        out,
        "  - name: {}",
        yaml_scalar(&format!("{prefix}:alerts"), false)
    );
    out.push_str("    rules:\n");
    let budget_percent = slo.budget.times(Ratio::int(100)).to_decimal_string();
    for (sev, cfg, pairs) in sevs {
        if cfg.disabled {
            continue;
        }
        let _ = writeln!(out, "      - alert: {}", yaml_scalar(&alerting.name, false));
        out.push_str("        expr: |-\n");
        let lines: Vec<String> = pairs
            .iter()
            .map(|p| {
                let th = threshold(p, slo).to_decimal_string();
                format!(
                    "(slo:sli_error:ratio_rate{}{sel} >= {th} and slo:sli_error:ratio_rate{}{sel} >= {th})",
                    p.long, p.short
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "          {}",
            lines.join("\n          or\n          ")
        );
        let mut user: BTreeMap<String, String> = alerting.labels.clone();
        user.extend(cfg.labels.clone());
        let mut alert_labels = vec![("slo_severity".to_string(), sev.to_string())];
        alert_labels.extend(user);
        let _ = writeln!(out, "        labels: {}", flow_map(&alert_labels));
        let mut ann: BTreeMap<String, String> = alerting.annotations.clone();
        ann.extend(cfg.annotations.clone());
        let mut ann: Vec<(String, String)> = ann.into_iter().collect();
        if !ann.iter().any(|(k, _)| k == "description") {
            ann.push((
                "description".into(),
                format!(
                    "{{{{ $labels.slo_service }}}}/{{{{ $labels.slo_name }}}}: error ratio {{{{ $value | humanizePercentage }}}} over the long window (budget {budget_percent}%)"
                ),
            ));
        }
        out.push_str("        annotations:\n");
        for (k, v) in ann {
            let _ = writeln!(
                out,
                "          {}: {}",
                yaml_scalar(&k, false),
                yaml_scalar(&v, false)
            );
        }
    }
}

/// The full rule file for the SLOs of one spec file; `source` names it in the header.
pub fn generate(source: &str, slos: &[Slo]) -> String {
    let mut out =
        format!("# Generated by vigil slo generate from {source}. Do not edit.\ngroups:\n");
    for slo in slos {
        generate_slo(&mut out, slo);
    }
    out
}
