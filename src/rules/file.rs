//! The rule-file model (`groups:` of recording and alerting rules) and its decoding from the
//! positioned YAML tree, with yaml.v3-style unmarshal errors for unknown fields and wrong types.
//! Semantic checks (names, PromQL, templates) live in `validate.rs`; this module never
//! evaluates rules.

use std::collections::BTreeMap;
use std::path::Path;

use super::error::RuleError;
use super::yaml::{self, Kind, Node, Pos};
use crate::flags::parse_duration_ms;

/// A string field with the position of its YAML value (`0:0` when absent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Located {
    pub value: String,
    pub pos: Pos,
}

/// One recording or alerting rule as written in the file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rule {
    pub record: Located,
    pub alert: Located,
    pub expr: Located,
    pub for_ms: i64,
    pub keep_firing_for_ms: i64,
    /// Rule labels in file order.
    pub labels: Vec<(String, String)>,
    /// Annotations in file order.
    pub annotations: Vec<(String, String)>,
}

impl Rule {
    /// The alert name, or the record name for a recording rule.
    pub fn name(&self) -> &str {
        if self.alert.value.is_empty() {
            &self.record.value
        } else {
            &self.alert.value
        }
    }

    /// True for an alerting rule.
    pub fn is_alert(&self) -> bool {
        !self.alert.value.is_empty()
    }
}

/// A group of rules evaluated sequentially at one interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    /// Where the group's mapping starts (for group-level errors).
    pub pos: Pos,
    /// `None`: use the global evaluation interval.
    pub interval_ms: Option<i64>,
    /// `None`: use the global rule query offset.
    pub query_offset_ms: Option<i64>,
    /// Max series (recording) or alerts (alerting) per rule; 0 = none.
    pub limit: i64,
    pub labels: Vec<(String, String)>,
    pub rules: Vec<Rule>,
}

/// All groups of one rule file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleGroups {
    pub groups: Vec<RuleGroup>,
}

impl RuleGroups {
    /// Number of rules over all groups.
    pub fn rule_count(&self) -> usize {
        self.groups.iter().map(|g| g.rules.len()).sum()
    }
}

const TYPE_GROUPS: &str = "rulefmt.RuleGroups";
const TYPE_GROUP: &str = "rulefmt.RuleGroup";
const TYPE_RULE: &str = "rulefmt.Rule";
const GROUP_FIELDS: &[&str] = &[
    "name",
    "interval",
    "query_offset",
    "limit",
    "rules",
    "labels",
];
const RULE_FIELDS: &[&str] = &[
    "record",
    "alert",
    "expr",
    "for",
    "keep_firing_for",
    "labels",
    "annotations",
];

/// Decodes rule-file text into groups, without semantic validation. Unknown fields are errors
/// unless `ignore_unknown_fields`.
#[allow(clippy::result_large_err)]
pub fn decode(text: &str, ignore_unknown_fields: bool) -> Result<RuleGroups, RuleError> {
    let root = yaml::parse(text).map_err(RuleError::Yaml)?;
    let mut d = Decoder {
        known_fields: !ignore_unknown_fields,
        errors: Vec::new(),
        fatal: None,
    };
    let groups = match root {
        None => RuleGroups::default(),
        Some(node) => d.groups(&node),
    };
    if let Some(e) = d.fatal {
        return Err(e);
    }
    if !d.errors.is_empty() {
        return Err(RuleError::Unmarshal(d.errors));
    }
    Ok(groups)
}

/// Reads and decodes a rule file.
#[allow(clippy::result_large_err)]
pub fn decode_file(path: &Path, ignore_unknown_fields: bool) -> Result<RuleGroups, RuleError> {
    let text = std::fs::read_to_string(path).map_err(|e| RuleError::Io(e.to_string()))?;
    decode(&text, ignore_unknown_fields)
}

struct Decoder {
    known_fields: bool,
    /// Collected `line N: ...` type errors, reported together like yaml.v3.
    errors: Vec<String>,
    /// An error that stops decoding (a bad duration), reported alone.
    fatal: Option<RuleError>,
}

impl Decoder {
    fn type_error(&mut self, node: &Node, into: &str) {
        let msg = match &node.kind {
            Kind::Scalar { value, .. } => format!(
                "line {}: cannot unmarshal {} `{}` into {}",
                node.pos.line,
                node.tag(),
                value,
                into
            ),
            _ => format!(
                "line {}: cannot unmarshal {} into {}",
                node.pos.line,
                node.tag(),
                into
            ),
        };
        self.errors.push(msg);
    }

    /// The entries of a mapping node, reporting duplicate keys and unknown fields.
    fn fields<'a>(
        &mut self,
        node: &'a Node,
        type_name: &str,
        allowed: &[&str],
    ) -> Option<Vec<(&'a str, &'a Node)>> {
        if node.is_null() {
            return Some(Vec::new());
        }
        let Kind::Map(entries) = &node.kind else {
            self.type_error(node, type_name);
            return None;
        };
        let mut out: Vec<(&str, &Node)> = Vec::new();
        for (k, v) in entries {
            let key = k.as_str().unwrap_or("");
            if let Some((_, prev)) = out.iter().find(|(name, _)| *name == key) {
                self.errors.push(format!(
                    "line {}: mapping key {:?} already defined at line {}",
                    k.pos.line, key, prev.pos.line
                ));
                continue;
            }
            if !allowed.contains(&key) {
                if self.known_fields {
                    self.errors.push(format!(
                        "line {}: field {} not found in type {}",
                        k.pos.line, key, type_name
                    ));
                }
                continue;
            }
            out.push((key, v));
        }
        Some(out)
    }

    fn string(&mut self, node: &Node) -> String {
        match &node.kind {
            Kind::Scalar { value, .. } => {
                if node.is_null() {
                    String::new()
                } else {
                    value.clone()
                }
            }
            _ => {
                self.type_error(node, "string");
                String::new()
            }
        }
    }

    fn located(&mut self, node: &Node) -> Located {
        Located {
            value: self.string(node),
            pos: node.pos,
        }
    }

    fn int(&mut self, node: &Node) -> i64 {
        if node.is_null() {
            return 0;
        }
        match node.as_str().and_then(|s| s.parse::<i64>().ok()) {
            Some(n) if node.tag() == "!!int" => n,
            _ => {
                self.type_error(node, "int");
                0
            }
        }
    }

    fn duration(&mut self, node: &Node) -> i64 {
        if node.is_null() {
            return 0;
        }
        let s = self.string(node);
        match parse_duration_ms(&s) {
            Ok(ms) => ms,
            Err(e) => {
                if self.fatal.is_none() {
                    self.fatal = Some(RuleError::Duration(e));
                }
                0
            }
        }
    }

    fn string_map(&mut self, node: &Node) -> Vec<(String, String)> {
        if node.is_null() {
            return Vec::new();
        }
        let Kind::Map(entries) = &node.kind else {
            self.type_error(node, "map[string]string");
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in entries {
            let key = self.string(k);
            if let Some(prev) = entries
                .iter()
                .take_while(|(pk, _)| !std::ptr::eq(pk, k))
                .find(|(pk, _)| pk.as_str() == Some(key.as_str()))
            {
                self.errors.push(format!(
                    "line {}: mapping key {:?} already defined at line {}",
                    k.pos.line, key, prev.0.pos.line
                ));
                continue;
            }
            let value = self.string(v);
            out.push((key, value));
        }
        out
    }

    fn groups(&mut self, root: &Node) -> RuleGroups {
        let mut groups = RuleGroups::default();
        let Some(fields) = self.fields(root, TYPE_GROUPS, &["groups"]) else {
            return groups;
        };
        for (_, node) in fields {
            if node.is_null() {
                continue;
            }
            let Kind::Seq(items) = &node.kind else {
                self.type_error(node, &format!("[]{TYPE_GROUP}"));
                continue;
            };
            for item in items {
                groups.groups.push(self.group(item));
            }
        }
        groups
    }

    fn group(&mut self, node: &Node) -> RuleGroup {
        let mut g = RuleGroup {
            pos: node.pos,
            ..RuleGroup::default()
        };
        let Some(fields) = self.fields(node, TYPE_GROUP, GROUP_FIELDS) else {
            return g;
        };
        for (key, v) in fields {
            match key {
                "name" => g.name = self.string(v),
                "interval" => g.interval_ms = Some(self.duration(v)).filter(|_| !v.is_null()),
                "query_offset" => {
                    g.query_offset_ms = Some(self.duration(v)).filter(|_| !v.is_null())
                }
                "limit" => g.limit = self.int(v),
                "labels" => g.labels = self.string_map(v),
                "rules" => {
                    if v.is_null() {
                        continue;
                    }
                    let Kind::Seq(items) = &v.kind else {
                        self.type_error(v, &format!("[]{TYPE_RULE}"));
                        continue;
                    };
                    for item in items {
                        g.rules.push(self.rule(item));
                    }
                }
                _ => {}
            }
        }
        g
    }

    fn rule(&mut self, node: &Node) -> Rule {
        let mut r = Rule::default();
        let Some(fields) = self.fields(node, TYPE_RULE, RULE_FIELDS) else {
            return r;
        };
        for (key, v) in fields {
            match key {
                "record" => r.record = self.located(v),
                "alert" => r.alert = self.located(v),
                "expr" => r.expr = self.located(v),
                "for" => r.for_ms = self.duration(v),
                "keep_firing_for" => r.keep_firing_for_ms = self.duration(v),
                "labels" => r.labels = self.string_map(v),
                "annotations" => r.annotations = self.string_map(v),
                _ => {}
            }
        }
        r
    }
}

/// Sorted copy of a label list, for deterministic error order and output.
pub fn sorted(pairs: &[(String, String)]) -> BTreeMap<&str, &str> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decodes_groups_and_rules() {
        let g = decode(
            "groups:\n  - name: a\n    interval: 30s\n    limit: 3\n    labels: {team: x}\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 5m\n        keep_firing_for: 1m\n        labels: {severity: page}\n        annotations: {summary: s}\n      - record: r\n        expr: 1\n",
            false,
        )
        .unwrap();
        assert_eq!(g.groups.len(), 1);
        let grp = &g.groups[0];
        assert_eq!(grp.interval_ms, Some(30_000));
        assert_eq!(grp.limit, 3);
        assert_eq!(grp.labels, vec![("team".into(), "x".into())]);
        assert_eq!(grp.rules[0].for_ms, 300_000);
        assert_eq!(grp.rules[0].keep_firing_for_ms, 60_000);
        assert_eq!(grp.rules[1].expr.value, "1");
        assert_eq!(g.rule_count(), 2);
    }

    #[test]
    fn unknown_field_is_an_unmarshal_error_unless_ignored() {
        let text = "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: 1\n        annotation: {}\n";
        let e = decode(text, false).unwrap_err().to_string();
        assert_eq!(
            e,
            "yaml: unmarshal errors:\n  line 6: field annotation not found in type rulefmt.Rule"
        );
        assert!(decode(text, true).is_ok());
    }

    #[test]
    fn bad_types_and_durations() {
        let e = decode("groups:\n  - name: a\n    limit: x\n", false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3: cannot unmarshal !!str `x` into int"),
            "{e}"
        );
        let e = decode("groups:\n  - name: a\n    interval: 5x\n", false)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "not a valid duration string: \"5x\"");
        let e = decode("groups: [1\n", false).unwrap_err().to_string();
        assert!(e.starts_with("yaml: line"), "{e}");
    }

    #[test]
    fn empty_file_has_no_groups() {
        assert_eq!(decode("", false).unwrap().groups.len(), 0);
        assert_eq!(decode("# just a comment\n", false).unwrap().groups.len(), 0);
    }
}
