//! Semantic validation of decoded rule files, in Prometheus' order and wording: group names
//! (empty, repeated), group labels, and per rule record/alert exclusivity, `expr` presence and
//! PromQL parse, recording-rule-only restrictions, metric/label/annotation names and template
//! syntax. It reports every error it finds; it never evaluates rules.

use std::collections::HashSet;

use vigil_promql::parser::{parse_expr_with, ParserOptions};

use super::error::RuleError;
use super::file::{sorted, Rule, RuleGroups};
use super::yaml::Pos;
use crate::template::check_alert_template;

/// The metric/label name rules in force (Prometheus 3.x defaults to UTF-8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NameValidation {
    /// Any non-empty UTF-8 string is a valid name.
    #[default]
    Utf8,
    /// `[a-zA-Z_][a-zA-Z0-9_]*` labels and `[a-zA-Z_:][a-zA-Z0-9_:]*` metric names.
    Legacy,
}

impl NameValidation {
    pub fn is_valid_label_name(self, name: &str) -> bool {
        match self {
            NameValidation::Utf8 => !name.is_empty(),
            NameValidation::Legacy => is_legacy_name(name, false),
        }
    }

    pub fn is_valid_metric_name(self, name: &str) -> bool {
        match self {
            NameValidation::Utf8 => !name.is_empty(),
            NameValidation::Legacy => is_legacy_name(name, true),
        }
    }
}

fn is_legacy_name(name: &str, colons: bool) -> bool {
    let mut chars = name.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':');
    match chars.next() {
        Some(c) if ok_first(c) => chars.all(|c| ok_first(c) || c.is_ascii_digit()),
        _ => false,
    }
}

/// Options for validation.
#[derive(Clone, Copy, Debug, Default)]
pub struct ValidateOptions {
    pub names: NameValidation,
    pub parser: ParserOptions,
}

const METRIC_NAME_LABEL: &str = "__name__";

/// Validates all groups and returns every error found (empty = valid).
pub fn validate(groups: &RuleGroups, opts: &ValidateOptions) -> Vec<RuleError> {
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    for g in &groups.groups {
        if g.name.is_empty() {
            errs.push(RuleError::Group {
                pos: g.pos,
                msg: "Groupname must not be empty".into(),
            });
        }
        if !seen.insert(g.name.as_str()) {
            errs.push(RuleError::Group {
                pos: g.pos,
                msg: format!("groupname: \"{}\" is repeated in the same file", g.name),
            });
        }
        for (k, _) in sorted(&g.labels) {
            if !opts.names.is_valid_label_name(k) || k == METRIC_NAME_LABEL {
                errs.push(RuleError::GroupLabel(format!("invalid label name: {k}")));
            }
        }
        for (i, r) in g.rules.iter().enumerate() {
            for (pos, alt, msg) in validate_rule(r, opts) {
                errs.push(RuleError::Rule {
                    group: g.name.clone(),
                    index: i + 1,
                    name: r.name().to_string(),
                    pos,
                    alt,
                    msg,
                });
            }
        }
    }
    errs
}

type RuleProblem = (Option<Pos>, Option<Pos>, String);

fn validate_rule(r: &Rule, opts: &ValidateOptions) -> Vec<RuleProblem> {
    let mut out: Vec<RuleProblem> = Vec::new();
    let rec = !r.record.value.is_empty();
    let alert = !r.alert.value.is_empty();
    if rec && alert {
        out.push((
            Some(r.record.pos),
            Some(r.alert.pos),
            "only one of 'record' and 'alert' must be set".into(),
        ));
    }
    if !rec && !alert {
        out.push((
            Some(r.record.pos),
            Some(r.alert.pos),
            "one of 'record' or 'alert' must be set".into(),
        ));
    }
    if r.expr.value.is_empty() {
        out.push((
            Some(r.expr.pos),
            None,
            "field 'expr' must be set in rule".into(),
        ));
    } else if let Err(e) = parse_expr_with(&r.expr.value, &opts.parser) {
        out.push((
            Some(r.expr.pos),
            None,
            format!("could not parse expression: {e}"),
        ));
    }
    if rec {
        let at = Some(r.record.pos);
        if !r.annotations.is_empty() {
            out.push((
                at,
                None,
                "invalid field 'annotations' in recording rule".into(),
            ));
        }
        if r.for_ms != 0 {
            out.push((at, None, "invalid field 'for' in recording rule".into()));
        }
        if r.keep_firing_for_ms != 0 {
            out.push((
                at,
                None,
                "invalid field 'keep_firing_for' in recording rule".into(),
            ));
        }
        if !opts.names.is_valid_metric_name(&r.record.value) {
            out.push((
                at,
                None,
                format!("invalid recording rule name: {}", r.record.value),
            ));
        }
        if r.record.value.contains(['{', '}']) {
            out.push((
                at,
                None,
                format!(
                    "braces present in the recording rule name; should it be in expr?: {}",
                    r.record.value
                ),
            ));
        }
    }
    for (k, _) in sorted(&r.labels) {
        if !opts.names.is_valid_label_name(k) || k == METRIC_NAME_LABEL {
            out.push((None, None, format!("invalid label name: {k}")));
        }
    }
    for (k, _) in sorted(&r.annotations) {
        if !opts.names.is_valid_label_name(k) {
            out.push((None, None, format!("invalid annotation name: {k}")));
        }
    }
    if alert {
        for (k, v) in sorted(&r.labels) {
            if let Err(e) = check_alert_template(&r.alert.value, v) {
                out.push((
                    None,
                    None,
                    format!("label {}: {e}", super::error::go_quote(k)),
                ));
            }
        }
        for (k, v) in sorted(&r.annotations) {
            if let Err(e) = check_alert_template(&r.alert.value, v) {
                out.push((
                    None,
                    None,
                    format!("annotation {}: {e}", super::error::go_quote(k)),
                ));
            }
        }
    }
    out
}
