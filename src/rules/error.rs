//! The rule-file error type: every way a rule file can fail to load, rendered exactly as
//! Prometheus renders it (`5:15: group "g", rule 1, "name": message`), so `vigil check rules`
//! output matches `promtool check rules`. Never carries the file name: callers prefix it.

use super::yaml::{Pos, SyntaxError};

/// One error found in a rule file.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[allow(clippy::large_enum_variant)]
pub enum RuleError {
    /// The file could not be read.
    #[error("{0}")]
    Io(String),
    /// The YAML itself does not parse.
    #[error("{0}")]
    Yaml(SyntaxError),
    /// Unknown fields or values of the wrong type, reported together like yaml.v3.
    #[error("yaml: unmarshal errors:\n  {}", .0.join("\n  "))]
    Unmarshal(Vec<String>),
    /// A duration that does not parse.
    #[error("{0}")]
    Duration(String),
    /// A group-level problem at a position (`3:5: groupname: "x" is repeated in the same file`).
    #[error("{pos}: {msg}")]
    Group { pos: Pos, msg: String },
    /// A group-level problem with no position (bad group labels).
    #[error("{0}")]
    GroupLabel(String),
    /// A problem with one rule; `index` is 1-based.
    #[error("{}group {}, rule {}, {}: {}", positions(.pos, .alt), go_quote(.group), .index, go_quote(.name), .msg)]
    Rule {
        group: String,
        index: usize,
        name: String,
        pos: Option<Pos>,
        alt: Option<Pos>,
        msg: String,
    },
}

fn positions(pos: &Option<Pos>, alt: &Option<Pos>) -> String {
    match (pos, alt) {
        (Some(p), Some(a)) => format!("{p}: {a}: "),
        (Some(p), None) | (None, Some(p)) => format!("{p}: "),
        _ => String::new(),
    }
}

/// Go's `%q` of a string.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    // Writing into a String cannot fail.
    let _ = vigil_storage::labels::write_go_quoted(&mut out, s);
    out
}
