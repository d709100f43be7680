//! Label matchers `=`, `!=`, `=~`, `!~` with Prometheus semantics: regexes are RE2 syntax,
//! fully anchored (`^(?s:re)$`), and matched against the label value, where a missing label
//! has the value "". Regexes are analysed once at construction so that the common shapes —
//! a literal, a set `a|b|c`, a prefix `foo.*`, `.*` and `.+` — never run the regex engine.
//! This module owns matching one value; choosing postings for matchers lives in the index.

use std::fmt;

use regex_syntax::hir::{Class, Hir, HirKind};

use crate::error::{Error, Result};
use crate::labels::write_go_quoted;

/// The kind of a matcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchType {
    /// The PromQL operator.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regex => "=~",
            MatchType::NotRegex => "!~",
        }
    }
}

/// A compiled matcher for one label.
#[derive(Clone)]
pub struct Matcher {
    pub match_type: MatchType,
    pub name: String,
    pub value: String,
    re: Option<FastRegex>,
}

/// What a regex reduces to after analysis.
#[derive(Clone)]
enum FastRegex {
    /// Exactly this string.
    Literal(String),
    /// Any of these strings (sorted, deduplicated).
    Set(Vec<String>),
    /// Starts with this prefix (`prefix.*`).
    Prefix(String),
    /// Everything (`.*`).
    Any,
    /// Everything but "" (`.+`).
    NonEmpty,
    /// A real regex.
    Regex(regex::Regex),
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.match_type == o.match_type && self.name == o.name && self.value == o.value
    }
}
impl Eq for Matcher {}

impl std::hash::Hash for Matcher {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.match_type.hash(h);
        self.name.hash(h);
        self.value.hash(h);
    }
}

impl Matcher {
    /// Builds a matcher; regex matchers are compiled and analysed here.
    pub fn new(match_type: MatchType, name: &str, value: &str) -> Result<Matcher> {
        let re = match match_type {
            MatchType::Regex | MatchType::NotRegex => Some(FastRegex::compile(value)?),
            _ => None,
        };
        Ok(Matcher {
            match_type,
            name: name.to_string(),
            value: value.to_string(),
            re,
        })
    }

    /// `name="value"`.
    pub fn equal(name: &str, value: &str) -> Matcher {
        Matcher {
            match_type: MatchType::Equal,
            name: name.to_string(),
            value: value.to_string(),
            re: None,
        }
    }

    /// Whether `value` (use "" for a missing label) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self.match_type {
            MatchType::Equal => value == self.value,
            MatchType::NotEqual => value != self.value,
            MatchType::Regex => self.re_matches(value),
            MatchType::NotRegex => !self.re_matches(value),
        }
    }

    fn re_matches(&self, value: &str) -> bool {
        match &self.re {
            Some(r) => r.matches(value),
            None => false,
        }
    }

    /// Whether the matcher accepts the empty string, i.e. selects series lacking the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// The exact values this matcher accepts, when it is an equality or a finite regex set
    /// (used to look postings up directly instead of scanning all values).
    pub fn set_matches(&self) -> Option<Vec<&str>> {
        match (self.match_type, &self.re) {
            (MatchType::Equal, _) => Some(vec![self.value.as_str()]),
            (MatchType::Regex, Some(FastRegex::Literal(s))) => Some(vec![s.as_str()]),
            (MatchType::Regex, Some(FastRegex::Set(v))) => {
                Some(v.iter().map(|s| s.as_str()).collect())
            }
            _ => None,
        }
    }

    /// The literal prefix every accepted value has, for `=~"prefix.*"` matchers.
    pub fn prefix(&self) -> Option<&str> {
        match (self.match_type, &self.re) {
            (MatchType::Regex, Some(FastRegex::Prefix(p))) => Some(p),
            _ => None,
        }
    }

    /// Whether this is `=~".*"` (or equivalent): it matches every value including "".
    pub fn matches_everything(&self) -> bool {
        matches!(
            (self.match_type, &self.re),
            (MatchType::Regex, Some(FastRegex::Any))
        )
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name, self.match_type.as_str())?;
        write_go_quoted(f, &self.value)
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Largest regex set (`a|b|…`) turned into a list lookup instead of a regex.
const MAX_SET_MATCHES: usize = 256;

impl FastRegex {
    fn compile(re: &str) -> Result<FastRegex> {
        // Analyse first: the common shapes never need the (costly to build) regex engine.
        let hir = regex_syntax::ParserBuilder::new()
            .dot_matches_new_line(true)
            .build()
            .parse(re);
        if let Some(fast) = hir.as_ref().ok().and_then(analyse) {
            return Ok(fast);
        }
        let anchored = format!("^(?s:{re})$");
        let compiled = regex::Regex::new(&anchored)
            .map_err(|e| Error::InvalidMatcher(format!("invalid regex {re:?}: {e}")))?;
        Ok(FastRegex::Regex(compiled))
    }

    fn matches(&self, v: &str) -> bool {
        match self {
            FastRegex::Literal(s) => v == s,
            FastRegex::Set(set) => set.binary_search_by(|s| s.as_str().cmp(v)).is_ok(),
            FastRegex::Prefix(p) => v.starts_with(p.as_str()),
            FastRegex::Any => true,
            FastRegex::NonEmpty => !v.is_empty(),
            FastRegex::Regex(r) => r.is_match(v),
        }
    }
}

/// Reduces a parsed regex to a fast shape, or None when it needs the regex engine.
fn analyse(h: &Hir) -> Option<FastRegex> {
    let h = strip_captures(h);
    if let Some(set) = literal_set(h) {
        return Some(match set.len() {
            1 => FastRegex::Literal(set.into_iter().next()?),
            _ => FastRegex::Set(set),
        });
    }
    match h.kind() {
        HirKind::Repetition(_) => match any_repeat(h) {
            Some(0) => Some(FastRegex::Any),
            Some(1) => Some(FastRegex::NonEmpty),
            _ => None,
        },
        HirKind::Concat(parts) if parts.len() == 2 => {
            let prefix = literal(strip_captures(&parts[0]))?;
            (any_repeat(strip_captures(&parts[1])) == Some(0)).then_some(FastRegex::Prefix(prefix))
        }
        _ => None,
    }
}

fn strip_captures(mut h: &Hir) -> &Hir {
    while let HirKind::Capture(c) = h.kind() {
        h = &c.sub;
    }
    h
}

/// For `.*` returns Some(0), for `.+` Some(1): a repetition of "any character".
fn any_repeat(h: &Hir) -> Option<u32> {
    if let HirKind::Repetition(r) = h.kind() {
        if r.max.is_none() && r.min <= 1 && is_any_char(strip_captures(&r.sub)) {
            return Some(r.min);
        }
    }
    None
}

fn is_any_char(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Class(Class::Unicode(c)) => {
            let r = c.ranges();
            r.len() == 1 && r[0].start() == '\0' && r[0].end() == char::MAX
        }
        _ => false,
    }
}

fn literal(h: &Hir) -> Option<String> {
    match h.kind() {
        HirKind::Literal(l) => String::from_utf8(l.0.to_vec()).ok(),
        HirKind::Empty => Some(String::new()),
        HirKind::Class(Class::Unicode(c)) => {
            let r = c.ranges();
            (r.len() == 1 && r[0].start() == r[0].end()).then(|| r[0].start().to_string())
        }
        _ => None,
    }
}

/// The finite set of strings a regex accepts, when it is a literal, a small class of single
/// characters, or an alternation of those. Sorted and deduplicated.
fn literal_set(h: &Hir) -> Option<Vec<String>> {
    let mut out = Vec::new();
    collect_literals(h, &mut out)?;
    out.sort();
    out.dedup();
    (out.len() <= MAX_SET_MATCHES).then_some(out)
}

fn collect_literals(h: &Hir, out: &mut Vec<String>) -> Option<()> {
    let h = strip_captures(h);
    if let Some(l) = literal(h) {
        out.push(l);
        return Some(());
    }
    match h.kind() {
        HirKind::Alternation(alts) => {
            for a in alts {
                collect_literals(a, out)?;
            }
            Some(())
        }
        HirKind::Class(Class::Unicode(c)) => {
            let mut n = 0usize;
            for r in c.ranges() {
                n += (r.end() as usize).saturating_sub(r.start() as usize) + 1;
                if n > MAX_SET_MATCHES {
                    return None;
                }
                for u in (r.start() as u32)..=(r.end() as u32) {
                    out.push(char::from_u32(u)?.to_string());
                }
            }
            Some(())
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(t: MatchType, v: &str) -> Matcher {
        Matcher::new(t, "l", v).unwrap()
    }

    #[test]
    fn anchored_semantics() {
        let r = m(MatchType::Regex, "fo+");
        assert!(r.matches("foo"));
        assert!(!r.matches("xfoo"));
        assert!(!r.matches("foox"));
        let nr = m(MatchType::NotRegex, "fo+");
        assert!(nr.matches(""));
        assert!(!nr.matches("fo"));
        // `.` matches newlines, as Prometheus compiles with (?s).
        assert!(m(MatchType::Regex, "a.b").matches("a\nb"));
        assert!(m(MatchType::Regex, "a|b").matches("a"));
        assert!(!m(MatchType::Regex, "a|b").matches("ab"));
        assert!(Matcher::new(MatchType::Regex, "l", "(").is_err());
    }

    #[test]
    fn fast_paths() {
        assert_eq!(m(MatchType::Regex, "foo").set_matches(), Some(vec!["foo"]));
        assert_eq!(
            m(MatchType::Regex, "b|a|c").set_matches(),
            Some(vec!["a", "b", "c"])
        );
        assert_eq!(
            m(MatchType::Regex, "foo|bar|baz").set_matches(),
            Some(vec!["bar", "baz", "foo"])
        );
        assert_eq!(m(MatchType::Regex, "foo.*").prefix(), Some("foo"));
        assert!(m(MatchType::Regex, ".*").matches_everything());
        assert!(m(MatchType::Regex, ".*").matches(""));
        let plus = m(MatchType::Regex, ".+");
        assert!(!plus.matches(""));
        assert!(plus.matches("x\n"));
        assert_eq!(m(MatchType::Regex, "(?i)foo").set_matches(), None);
        assert!(m(MatchType::Regex, "(?i)foo").matches("FoO"));
        assert_eq!(m(MatchType::Regex, "").set_matches(), Some(vec![""]));
        assert!(m(MatchType::Regex, "").matches_empty());
        assert!(m(MatchType::Regex, "foo.*").matches("foo\nbar"));
    }

    #[test]
    fn display() {
        assert_eq!(m(MatchType::NotRegex, "a\"b").to_string(), r#"l!~"a\"b""#);
    }
}
