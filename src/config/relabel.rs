//! The `relabel_configs` / `metric_relabel_configs` model: one rule's fields as written in
//! prometheus.yml, its defaults (separator `;`, regex `(.*)`, replacement `$1`, action
//! `replace`), the anchored regex, and the per-action validation Prometheus applies at load
//! time. Applying rules to labels lives in `scrape::relabel`; this module never touches
//! label sets.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::is_valid_label_name;

/// Default `separator` between joined source label values.
pub const DEFAULT_SEPARATOR: &str = ";";
/// Default `regex` (matches anything, captures it as group 1).
pub const DEFAULT_REGEX: &str = "(.*)";
/// Default `replacement`.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// What a relabel rule does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    /// The spelling used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    /// Parses an action name, case-insensitively as Prometheus does.
    pub fn parse(s: &str) -> Option<Action> {
        let all = [
            Action::Replace,
            Action::Keep,
            Action::Drop,
            Action::KeepEqual,
            Action::DropEqual,
            Action::HashMod,
            Action::LabelMap,
            Action::LabelDrop,
            Action::LabelKeep,
            Action::Lowercase,
            Action::Uppercase,
        ];
        all.into_iter().find(|a| a.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Action::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown relabel action {s:?}")))
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A regular expression anchored at both ends (`^(?:…)$`), as Prometheus anchors relabel
/// regexes; it keeps the original text for printing.
#[derive(Clone, Debug)]
pub struct Regex {
    source: String,
    anchored: regex::Regex,
}

impl Regex {
    /// Compiles `source` anchored at both ends.
    pub fn new(source: &str) -> Result<Regex, String> {
        let anchored = regex::Regex::new(&format!("^(?s:{source})$"))
            .map_err(|e| format!("invalid regular expression {source:?}: {e}"))?;
        Ok(Regex {
            source: source.to_owned(),
            anchored,
        })
    }

    /// The text as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The compiled, anchored expression.
    pub fn anchored(&self) -> &regex::Regex {
        &self.anchored
    }
}

impl Default for Regex {
    fn default() -> Self {
        // The default pattern is a constant that always compiles.
        #[allow(clippy::unwrap_used)]
        Regex::new(DEFAULT_REGEX).unwrap()
    }
}

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl<'de> Deserialize<'de> for Regex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Regex::new(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Regex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

fn default_separator() -> String {
    DEFAULT_SEPARATOR.to_owned()
}

fn default_replacement() -> String {
    DEFAULT_REPLACEMENT.to_owned()
}

/// One relabeling rule.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    #[serde(default = "default_separator")]
    pub separator: String,
    #[serde(default)]
    pub regex: Regex,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub modulus: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_label: String,
    #[serde(default = "default_replacement")]
    pub replacement: String,
    #[serde(default)]
    pub action: Action,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: default_separator(),
            regex: Regex::default(),
            modulus: 0,
            target_label: String::new(),
            replacement: default_replacement(),
            action: Action::Replace,
        }
    }
}

/// Whether `s` is a label name, or a template made of label-name characters and `$name` /
/// `${name}` references (what `replace` targets and `labelmap` replacements may be).
fn is_valid_relabel_target(s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    let b = s.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            i += 1;
            if i < b.len() && b[i] == b'{' {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && word(b[j]) {
                    j += 1;
                }
                if j == start || j >= b.len() || b[j] != b'}' {
                    return false;
                }
                i = j + 1;
            } else {
                let start = i;
                while i < b.len() && word(b[i]) {
                    i += 1;
                }
                if i == start {
                    return false;
                }
            }
        } else if word(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    // A plain name must not start with a digit.
    s.contains('$') || is_valid_label_name(s)
}

impl RelabelConfig {
    /// Checks the fields an action needs and forbids, with Prometheus' messages.
    pub fn validate(&self) -> Result<(), String> {
        let a = self.action;
        for s in &self.source_labels {
            if !is_valid_label_name(s) {
                return Err(format!("{s:?} is not a valid label name"));
            }
        }
        if a == Action::HashMod && self.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        let needs_target = matches!(
            a,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && self.target_label.is_empty() {
            return Err(format!(
                "relabel configuration for {a} action requires 'target_label' value"
            ));
        }
        let invalid_target = || {
            format!(
                "{:?} is invalid 'target_label' for {a} action",
                self.target_label
            )
        };
        if a == Action::Replace && !is_valid_relabel_target(&self.target_label) {
            return Err(invalid_target());
        }
        let plain_target = matches!(
            a,
            Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if plain_target && !is_valid_label_name(&self.target_label) {
            return Err(invalid_target());
        }
        if matches!(a, Action::Lowercase | Action::Uppercase)
            && self.replacement != DEFAULT_REPLACEMENT
        {
            return Err(format!("'replacement' can not be set for {a} action"));
        }
        if a == Action::LabelMap && !is_valid_relabel_target(&self.replacement) {
            return Err(format!(
                "{:?} is invalid 'replacement' for {a} action",
                self.replacement
            ));
        }
        if matches!(a, Action::KeepEqual | Action::DropEqual)
            && (self.regex.as_str() != DEFAULT_REGEX
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{a} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(a, Action::LabelDrop | Action::LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{a} action requires only 'regex', and no other fields"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<RelabelConfig, String> {
        let c: RelabelConfig = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn defaults_are_prometheus_defaults() {
        let c = parse("target_label: x").unwrap();
        assert_eq!(c.action, Action::Replace);
        assert_eq!(c.separator, ";");
        assert_eq!(c.regex.as_str(), "(.*)");
        assert_eq!(c.replacement, "$1");
    }

    #[test]
    fn action_names_are_case_insensitive() {
        assert_eq!(
            parse("action: LabelDrop\nregex: x").unwrap().action,
            Action::LabelDrop
        );
        assert!(parse("action: frobnicate")
            .unwrap_err()
            .contains("unknown relabel action"));
    }

    #[test]
    fn regex_is_anchored() {
        let c = parse("regex: ab\naction: keep").unwrap();
        assert!(c.regex.anchored().is_match("ab"));
        assert!(!c.regex.anchored().is_match("xab"));
        assert!(!c.regex.anchored().is_match("abx"));
        assert!(parse("regex: '(['\naction: keep")
            .unwrap_err()
            .contains("invalid regular expression"));
    }

    #[test]
    fn validation_errors() {
        let cases = [
            (
                "action: hashmod\ntarget_label: x",
                "requires non-zero modulus",
            ),
            ("action: replace", "requires 'target_label' value"),
            ("action: lowercase", "requires 'target_label' value"),
            ("action: keepequal", "requires 'target_label' value"),
            (
                "action: replace\ntarget_label: 1abc",
                "invalid 'target_label'",
            ),
            (
                "action: replace\ntarget_label: 'a-b'",
                "invalid 'target_label'",
            ),
            (
                "action: uppercase\ntarget_label: '${1}'",
                "invalid 'target_label'",
            ),
            (
                "action: lowercase\ntarget_label: x\nreplacement: y",
                "'replacement' can not be set",
            ),
            (
                "action: labelmap\nreplacement: 'a-b'",
                "invalid 'replacement'",
            ),
            (
                "action: keepequal\ntarget_label: x\nregex: y",
                "requires only 'source_labels'",
            ),
            (
                "action: labeldrop\nsource_labels: [a]",
                "requires only 'regex'",
            ),
            (
                "action: labelkeep\ntarget_label: a",
                "requires only 'regex'",
            ),
            (
                "action: keep\nsource_labels: ['a-b']",
                "not a valid label name",
            ),
            ("action: keep\nfoo: 1", "unknown field `foo`"),
        ];
        for (yaml, want) in cases {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(want), "{yaml:?}: got {err:?}, want {want:?}");
        }
    }

    #[test]
    fn templated_targets_are_valid_for_replace() {
        parse("action: replace\ntarget_label: '${1}_x'").unwrap();
        parse("action: replace\ntarget_label: 'x_$name'").unwrap();
        parse("action: labelmap\nregex: '__meta_(.+)'").unwrap();
        assert!(parse("action: replace\ntarget_label: '${}'").is_err());
    }
}
