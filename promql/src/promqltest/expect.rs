//! The expectations of one `eval` command (DSL.md §6): `expect …` lines with their `msg:` /
//! `regex:` matchers, legacy `eval_fail|warn|info|ordered` flags and `expected_fail_*` lines,
//! `expect range vector`, `expect string`, the expected scalar and expected series.
//!
//! This module only models and parses expectations; comparing them with query results is
//! `compare`'s job and running queries is `runner`'s. It must never call an engine.

use regex::Regex;
use vigil_storage::Labels;

use super::number::parse_duration;
use super::series::SeqValue;

/// How an `expect fail|warn|info` line constrains a message.
#[derive(Clone, Debug)]
pub enum MessageMatch {
    /// No `msg:`/`regex:` part: any message.
    Any,
    /// `msg: <text>`: exact equality with the trimmed text.
    Exact(String),
    /// `regex: <re>`: unanchored search.
    Regex(Regex),
}

/// Suffix an annotation string carries after its text: ` (L:C)` or ` (invalid position)`.
fn strip_position_suffix(s: &str) -> &str {
    let Some(open) = s.rfind(" (") else {
        return s;
    };
    let Some(inner) = s[open + 2..].strip_suffix(')') else {
        return s;
    };
    let is_pos = inner == "invalid position"
        || inner.split_once(':').is_some_and(|(l, c)| {
            !l.is_empty()
                && !c.is_empty()
                && l.bytes().all(|b| b.is_ascii_digit())
                && c.bytes().all(|b| b.is_ascii_digit())
        });
    if is_pos {
        &s[..open]
    } else {
        s
    }
}

impl MessageMatch {
    /// Whether `message` satisfies this matcher.
    pub fn matches(&self, message: &str) -> bool {
        match self {
            MessageMatch::Any => true,
            MessageMatch::Exact(m) => m == message,
            MessageMatch::Regex(r) => r.is_match(message),
        }
    }

    /// Annotation matching: like [`MessageMatch::matches`], but an exact `msg:` also accepts
    /// the annotation without its ` (L:C)` position, as releases v3.4–v3.14 did (DSL.md §8.4).
    pub fn matches_annotation(&self, annotation: &str) -> bool {
        match self {
            MessageMatch::Exact(m) => m == annotation || m == strip_position_suffix(annotation),
            other => other.matches(annotation),
        }
    }

    /// "message"/"pattern", for failure texts.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageMatch::Regex(_) => "pattern",
            _ => "message",
        }
    }

    /// The text or pattern, for failure texts.
    pub fn text(&self) -> &str {
        match self {
            MessageMatch::Any => "",
            MessageMatch::Exact(m) => m,
            MessageMatch::Regex(r) => r.as_str(),
        }
    }
}

/// The `expect` lines of one eval, merged.
#[derive(Clone, Debug, Default)]
pub struct Expectations {
    pub ordered: bool,
    pub fail: Option<MessageMatch>,
    pub warn: Vec<MessageMatch>,
    pub no_warn: bool,
    pub info: Vec<MessageMatch>,
    pub no_info: bool,
}

/// Legacy command suffixes (`eval_fail`, `eval_warn`, `eval_info`, `eval_ordered`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LegacyFlags {
    pub fail: bool,
    pub warn: bool,
    pub info: bool,
    pub ordered: bool,
}

/// `expect range vector from <d> to <d> step <d>`, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeVectorSpec {
    pub from_ms: i64,
    pub to_ms: i64,
    pub step_ms: i64,
}

/// One expected series: its label set, its 1-based position among body lines, its slots.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedSeries {
    pub labels: Labels,
    pub pos: usize,
    pub values: Vec<SeqValue>,
    /// Line in the file, for messages.
    pub line: usize,
}

/// The kind of an `expect` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExpectKind {
    Ordered,
    Fail,
    Warn,
    NoWarn,
    Info,
    NoInfo,
}

/// Grammar of an `expect` line (DSL.md §6.3).
pub const EXPECT_PATTERN: &str =
    r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$";

/// Prefix of an `expect range vector` line.
pub const RANGE_VECTOR_PREFIX: &str = "expect range vector";
/// Prefix of an `expect string` line.
pub const EXPECT_STRING_PREFIX: &str = "expect string";

impl Expectations {
    /// Parses one `expect …` line into these expectations. `pattern` is the compiled
    /// [`EXPECT_PATTERN`].
    pub fn add_line(&mut self, line: &str, pattern: &Regex) -> Result<(), String> {
        let (kind, matcher) = match pattern.captures(line) {
            Some(caps) => {
                let kind = match caps.get(1).map(|m| m.as_str()) {
                    Some("ordered") => ExpectKind::Ordered,
                    Some("fail") => ExpectKind::Fail,
                    Some("warn") => ExpectKind::Warn,
                    Some("no_warn") => ExpectKind::NoWarn,
                    Some("info") => ExpectKind::Info,
                    Some("no_info") => ExpectKind::NoInfo,
                    _ => return Err(format!("invalid expect statement {line:?}")),
                };
                let text = caps.get(3).map(|m| m.as_str().trim()).unwrap_or("");
                let matcher = match caps.get(2).map(|m| m.as_str()) {
                    Some("msg") => MessageMatch::Exact(text.to_string()),
                    Some(_) => MessageMatch::Regex(
                        Regex::new(text).map_err(|e| format!("invalid regex {text:?}: {e}"))?,
                    ),
                    None => MessageMatch::Any,
                };
                (kind, matcher)
            }
            // `expect ordered` ignores any trailing text.
            None if line
                .split_whitespace()
                .nth(1)
                .is_some_and(|w| w == "ordered") =>
            {
                (ExpectKind::Ordered, MessageMatch::Any)
            }
            None => return Err(format!("invalid expect statement {line:?}")),
        };
        match kind {
            ExpectKind::Ordered => self.ordered = true,
            ExpectKind::Fail => {
                if self.fail.is_some() {
                    return Err("more than one 'expect fail' line".to_string());
                }
                self.fail = Some(matcher);
            }
            ExpectKind::Warn => self.warn.push(matcher),
            ExpectKind::NoWarn => self.no_warn = true,
            ExpectKind::Info => self.info.push(matcher),
            ExpectKind::NoInfo => self.no_info = true,
        }
        if self.no_warn && !self.warn.is_empty() {
            return Err("'expect warn' and 'expect no_warn' cannot be combined".to_string());
        }
        if self.no_info && !self.info.is_empty() {
            return Err("'expect info' and 'expect no_info' cannot be combined".to_string());
        }
        Ok(())
    }
}

/// Parses `expect range vector from <d> to <d> step <d>`.
pub fn parse_range_vector_line(line: &str) -> Result<RangeVectorSpec, String> {
    let rest = line
        .strip_prefix(RANGE_VECTOR_PREFIX)
        .ok_or_else(|| format!("invalid range vector definition {line:?}"))?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let [from_kw, from, to_kw, to, step_kw, step] = words.as_slice() else {
        return Err(format!(
            "invalid range vector definition {line:?}, expected 'from <d> to <d> step <d>'"
        ));
    };
    if (*from_kw, *to_kw, *step_kw) != ("from", "to", "step") {
        return Err(format!("invalid range vector definition {line:?}"));
    }
    let from_ms = parse_duration(from).map_err(|e| format!("invalid from {from:?}: {e}"))?;
    let to_ms = parse_duration(to).map_err(|e| format!("invalid to {to:?}: {e}"))?;
    let step_ms = parse_duration(step).map_err(|e| format!("invalid step {step:?}: {e}"))?;
    if to_ms < from_ms {
        return Err(format!(
            "invalid range vector definition {line:?}: end timestamp must not be before start"
        ));
    }
    Ok(RangeVectorSpec {
        from_ms,
        to_ms,
        step_ms,
    })
}

/// Parses `expect string <quoted>`: a `"…"` string with Go escapes or a `` `…` `` raw string.
pub fn parse_expect_string_line(line: &str) -> Result<String, String> {
    let rest = line
        .strip_prefix(EXPECT_STRING_PREFIX)
        .ok_or_else(|| format!("invalid expect string line {line:?}"))?;
    if !rest.starts_with([' ', '\t']) {
        return Err(format!(
            "expected a space and a quoted string after 'expect string' in {line:?}"
        ));
    }
    let quoted = rest.trim();
    if !(quoted.starts_with('"') || quoted.starts_with('`')) {
        return Err(format!("expected a quoted string, got {quoted:?}"));
    }
    let (value, used) = super::series::scan_string_literal(quoted)?;
    if used != quoted.len() {
        return Err(format!("unexpected text after string in {line:?}"));
    }
    Ok(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pat() -> Regex {
        Regex::new(EXPECT_PATTERN).unwrap()
    }

    #[test]
    fn expect_lines() {
        let p = pat();
        let mut e = Expectations::default();
        e.add_line("expect fail msg:  boom here ", &p).unwrap();
        e.add_line("expect warn", &p).unwrap();
        e.add_line(r"expect warn regex: foo \([0-9]+:[0-9]+\)", &p)
            .unwrap();
        e.add_line("expect no_info", &p).unwrap();
        e.add_line("expect ordered whatever", &p).unwrap();
        assert!(e.ordered && e.no_info && !e.no_warn);
        assert!(matches!(&e.fail, Some(MessageMatch::Exact(m)) if m == "boom here"));
        assert_eq!(e.warn.len(), 2);
        assert!(e.warn[1].matches("PromQL warning: foo (1:3)"));
        assert!(!e.warn[1].matches("PromQL warning: foo"));
        assert!(e.add_line("expect fail", &p).is_err(), "two fails");
        assert!(e.add_line("expect no_warn", &p).is_err(), "warn + no_warn");
        assert!(e.add_line("expect info", &p).is_err(), "info + no_info");
        assert!(e.add_line("expect bogus", &p).is_err());
        assert!(e.add_line("expect warn regex: (", &p).is_err());
    }

    #[test]
    fn annotation_position_is_optional_for_msg() {
        let m = MessageMatch::Exact("PromQL info: x".to_string());
        assert!(m.matches_annotation("PromQL info: x (1:5)"));
        assert!(m.matches_annotation("PromQL info: x (invalid position)"));
        assert!(!m.matches_annotation("PromQL info: x (foo)"));
        let m = MessageMatch::Exact("PromQL info: x (1:5)".to_string());
        assert!(m.matches_annotation("PromQL info: x (1:5)"));
        assert!(!m.matches_annotation("PromQL info: x (1:6)"));
    }

    #[test]
    fn range_vector_lines() {
        assert_eq!(
            parse_range_vector_line("expect range vector from 9m10s to 10m step 1m").unwrap(),
            RangeVectorSpec {
                from_ms: 550_000,
                to_ms: 600_000,
                step_ms: 60_000
            }
        );
        assert!(parse_range_vector_line("expect range vector from 1m to 10s step 1s").is_err());
        assert!(parse_range_vector_line("expect range vector 1m to 2m step 1s").is_err());
    }

    #[test]
    fn string_lines() {
        assert_eq!(
            parse_expect_string_line("expect string `Foo`").unwrap(),
            "Foo"
        );
        assert_eq!(
            parse_expect_string_line("expect string \" Foo \"").unwrap(),
            " Foo "
        );
        assert_eq!(
            parse_expect_string_line("expect string \"a\\nb\"").unwrap(),
            "a\nb"
        );
        assert_eq!(parse_expect_string_line("expect string \"\"").unwrap(), "");
        assert!(parse_expect_string_line("expect string Foo").is_err());
        assert!(parse_expect_string_line("expect string 'Foo'").is_err());
        assert!(parse_expect_string_line("expect string \"a\" b").is_err());
    }
}
