//! SLO spec validation and generation tests (expected texts from docs/SLO.md).

#![allow(clippy::unwrap_used)]

use super::*;

const BASE: &str = "version: vigil/v1\nservice: api\nslos:\n  - name: avail\n    objective: 99.5\n";
const RATIO: &str = "    sli:\n      ratio:\n        errors: sum(rate(e[{{.window}}]))\n        total: sum(rate(t[{{.window}}]))\n";

fn errors_of(text: &str) -> Vec<String> {
    parse("f.yaml", text)
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn validation_errors_name_the_slo() {
    let e = errors_of(&format!("{BASE}    window: 5d\n{RATIO}"));
    assert_eq!(
        e,
        vec!["f.yaml: slo \"avail\": invalid window \"5d\": must be whole days between 7d and 90d"]
    );
    let e = errors_of(&format!("{}{RATIO}", BASE.replace("99.5", "100")));
    assert!(
        e[0].contains("objective 100 must be between 0 and 100"),
        "{e:?}"
    );
    let e = errors_of(&format!("{BASE}    sli:\n      ratio:\n        errors: sum(rate(e[5m]))\n        total: sum(rate(t[{{{{.window}}}}]))\n"));
    assert!(
        e[0].contains("errors query has no {{.window}} placeholder"),
        "{e:?}"
    );
    let e = errors_of(&format!("{BASE}    sli:\n      ratio:\n        errors: sum(rate(e[{{{{.window}}}}])\n        total: sum(rate(t[{{{{.window}}}}]))\n"));
    assert!(e[0].contains("errors query does not parse"), "{e:?}");
    let e = errors_of(&format!("{BASE}    labels: {{slo_x: y}}\n{RATIO}"));
    assert!(e[0].contains("reserved"), "{e:?}");
    let e = errors_of(&format!(
        "{BASE}{RATIO}  - name: avail\n    objective: 99\n{RATIO}"
    ));
    assert!(e[0].contains("duplicate SLO name"), "{e:?}");
    let e = errors_of(&format!("{BASE}    sli: {{}}\n"));
    assert!(e[0].contains("exactly one of ratio or latency"), "{e:?}");
    let e = errors_of(&format!("{BASE}{RATIO}    bogus: 1\n"));
    assert!(e[0].contains("unknown field `bogus`"), "{e:?}");
    let e = errors_of(&format!(
        "version: v2\nservice: api\nslos:\n  - name: avail\n    objective: 99.5\n{RATIO}"
    ));
    assert!(e[0].starts_with("f.yaml: unsupported version"), "{e:?}");
}

#[test]
fn period_scales_factors_and_budget_is_exact() {
    let slos = parse(
        "f",
        &format!("{BASE}    window: 28d\n{RATIO}    alerting:\n      name: Burn\n"),
    )
    .unwrap();
    let out = generate("f", &slos);
    // b = 0.005; page 13.44 × b, 5.6 × b; ticket 2.8 × b, 0.9333… × b.
    assert!(out.contains(">= 0.0672 and"), "{out}");
    assert!(out.contains(">= 0.028 and"), "{out}");
    assert!(out.contains(">= 0.014 and"), "{out}");
    assert!(
        out.contains(&format!(">= {} and", 0.28f64 / 3.0 * 0.05)),
        "{out}"
    );
    assert!(out.contains("expr: vector(0.995)"));
    assert!(out.contains("expr: vector(0.005)"));
    assert!(out.contains("expr: vector(28)"));
    assert!(out.contains("slo:sli_error:ratio_rate28d"));
    assert!(out.contains("(budget 0.5%)"));
}

#[test]
fn disabled_severities_and_no_alerting() {
    let slos = parse("f", &format!("{BASE}{RATIO}")).unwrap();
    let out = generate("f", &slos);
    assert!(!out.contains(":alerts"));
    assert_eq!(out.matches("- record:").count(), 15);
    let slos = parse(
        "f",
        &format!(
            "{BASE}{RATIO}    alerting:\n      name: Burn\n      ticket: {{disabled: true}}\n"
        ),
    )
    .unwrap();
    let out = generate("f", &slos);
    assert_eq!(out.matches("- alert: Burn").count(), 1);
    assert!(out.contains("slo_severity: page"));
    assert!(!out.contains("slo_severity: ticket"));
}

#[test]
fn latency_sli_is_rewritten_to_ratio() {
    let classic = "version: vigil/v1\nservice: co\nslos:\n  - name: lat\n    objective: 99\n    sli:\n      latency:\n        metric: http_request_duration_seconds\n        selector: '{job=\"co\"}'\n        threshold: 1\n        by: [handler]\n";
    let slos = parse("f", classic).unwrap();
    assert_eq!(
        slos[0].total,
        "sum by (handler) (rate(http_request_duration_seconds_count{job=\"co\"}[{{.window}}]))"
    );
    assert_eq!(
        slos[0].errors,
        "sum by (handler) (rate(http_request_duration_seconds_count{job=\"co\"}[{{.window}}])) - sum by (handler) (rate(http_request_duration_seconds_bucket{job=\"co\",le=\"1.0\"}[{{.window}}]))"
    );
    let native = classic.replace("threshold: 1\n", "threshold: 0.3\n        native: true\n");
    let slos = parse("f", &native).unwrap();
    assert_eq!(
        slos[0].errors,
        "histogram_count(sum by (handler) (rate(http_request_duration_seconds{job=\"co\"}[{{.window}}]))) * (1 - histogram_fraction(0, 0.3, sum by (handler) (rate(http_request_duration_seconds{job=\"co\"}[{{.window}}]))))"
    );
    let bad = classic.replace("threshold: 1", "threshold: 0");
    assert!(errors_of(&bad)[0].contains("latency threshold 0 must be > 0"));
}

#[test]
fn sloth_events_alias_and_generated_file_validates() {
    let text = "version: vigil/v1\nservice: s\nlabels: {team: t}\nslos:\n  - name: n\n    objective: 99.9\n    sli:\n      events:\n        error_query: sum(rate(e{code=~\"5..\"}[{{.window}}]))\n        total_query: sum(rate(e[{{.window}}]))\n    alerting:\n      name: SBurn\n      annotations: {summary: 'x: y'}\n";
    let slos = parse("f", text).unwrap();
    let out = generate("s.yaml", &slos);
    let groups = crate::rules::parse_rules(&out, &crate::rules::LoadOptions::default()).unwrap();
    assert_eq!(groups.groups.len(), 3);
    assert_eq!(groups.rule_count(), 17);
    let alert = &groups.groups[2].rules[0];
    assert_eq!(
        alert.annotations[0],
        ("summary".to_string(), "x: y".to_string())
    );
    assert_eq!(
        alert.labels[0],
        ("slo_severity".to_string(), "page".to_string())
    );
}

#[test]
fn yaml_scalars_quote_when_needed() {
    use generate::yaml_scalar;
    assert_eq!(yaml_scalar("plain text", false), "plain text");
    assert_eq!(yaml_scalar("{{ $x }}", false), "\"{{ $x }}\"");
    assert_eq!(yaml_scalar("a: b", false), "\"a: b\"");
    assert_eq!(yaml_scalar("true", false), "\"true\"");
    assert_eq!(yaml_scalar("1.5", false), "\"1.5\"");
    assert_eq!(yaml_scalar("a,b", true), "\"a,b\"");
    assert_eq!(yaml_scalar("", false), "\"\"");
}
