//! Byte-level lexing shared by the text 0.0.4 and OpenMetrics parsers: a cursor that
//! counts lines, metric and label names, quoted strings with their unescaping, and the
//! `{…}` label list in either format's dialect. Borrows from the input whenever no
//! unescaping is needed. Knows nothing about metric types, families or values.

use std::borrow::Cow;

use super::error::ParseError;

/// A label pair as handed to callers: borrowed from the input where possible.
pub type LabelPair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// A position in the input with its 1-based line number.
pub(crate) struct Cursor<'i> {
    pub buf: &'i [u8],
    pub pos: usize,
    pub line: usize,
}

impl<'i> Cursor<'i> {
    pub fn new(buf: &'i [u8]) -> Self {
        Cursor {
            buf,
            pos: 0,
            line: 1,
        }
    }

    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    #[inline]
    pub fn rest(&self) -> &'i [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Skips spaces and tabs (text format only).
    #[inline]
    pub fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Consumes `b` if it is next.
    #[inline]
    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes bytes while `pred` holds and returns them.
    #[inline]
    pub fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'i [u8] {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if !pred(b) {
                break;
            }
            self.pos += 1;
        }
        &self.buf[start..self.pos]
    }

    /// Consumes the rest of the current line (not the newline) and returns it.
    pub fn take_line(&mut self) -> &'i [u8] {
        let rest = self.rest();
        let len = memchr_newline(rest).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    pub fn syntax(&self, reason: impl Into<String>) -> ParseError {
        ParseError::syntax(self.line, reason)
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[inline]
pub(crate) fn is_metric_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

#[inline]
pub(crate) fn is_metric_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

#[inline]
fn is_label_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

#[inline]
fn is_label_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Reads an unquoted metric name `[a-zA-Z_:][a-zA-Z0-9_:]*`; empty if none.
pub(crate) fn metric_name<'i>(c: &mut Cursor<'i>) -> &'i str {
    match c.peek() {
        Some(b) if is_metric_start(b) => {}
        _ => return "",
    }
    let raw = c.take_while(is_metric_char);
    // Only ASCII bytes were taken.
    std::str::from_utf8(raw).unwrap_or_default()
}

/// How backslash escapes in a quoted string are replaced.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escapes {
    /// `\\`, `\"` and `\n` (label values, quoted names, OpenMetrics HELP).
    LabelValue,
    /// `\\` and `\n` only (text-format HELP).
    TextHelp,
}

/// Replaces escape sequences; unknown escapes are kept verbatim (`\z` stays `\z`), as
/// both Prometheus and the OpenMetrics reference parser do.
pub(crate) fn unescape(raw: &str, escapes: Escapes) -> Cow<'_, str> {
    if !raw.as_bytes().contains(&b'\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if escapes == Escapes::LabelValue => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Reads a `"…"` string starting at the opening quote and returns it unescaped.
/// `allow_newline` permits raw newlines inside (the text format's lexer does).
pub(crate) fn quoted<'i>(
    c: &mut Cursor<'i>,
    allow_newline: bool,
    what: &str,
) -> Result<Cow<'i, str>, ParseError> {
    if !c.eat(b'"') {
        return Err(c.syntax(format!("expected '\"' to start {what}")));
    }
    let start = c.pos;
    let start_line = c.line;
    loop {
        match c.peek() {
            None => {
                return Err(ParseError::syntax(
                    start_line,
                    format!("unterminated quoted {what}"),
                ))
            }
            Some(b'"') => break,
            Some(b'\\') => {
                // `\` + any character except a newline.
                match c.buf.get(c.pos + 1) {
                    None | Some(b'\n') => {
                        return Err(c.syntax(format!("invalid escape at end of line in {what}")))
                    }
                    Some(_) => c.pos += 2,
                }
            }
            Some(b'\n') => {
                if !allow_newline {
                    return Err(ParseError::syntax(
                        start_line,
                        format!("unterminated quoted {what}"),
                    ));
                }
                c.line += 1;
                c.pos += 1;
            }
            Some(_) => c.pos += 1,
        }
    }
    let raw = &c.buf[start..c.pos];
    c.pos += 1; // closing quote
    let text = std::str::from_utf8(raw)
        .map_err(|_| ParseError::syntax(start_line, format!("{what} is not valid UTF-8")))?;
    Ok(unescape(text, Escapes::LabelValue))
}

/// Grammar differences between the two formats inside `{…}`.
#[derive(Clone, Copy)]
pub(crate) struct LabelDialect {
    /// Spaces/tabs allowed between tokens (text format).
    pub blanks: bool,
    /// A comma after the last label is allowed (text format).
    pub trailing_comma: bool,
    /// Label pairs may follow each other without a comma (text format quirk).
    pub comma_optional: bool,
    /// Raw newlines allowed in label values (text format lexer quirk).
    pub newline_in_value: bool,
    /// A lone quoted string may name the metric (`{"my.metric", a="b"}`).
    pub quoted_metric_name: bool,
}

pub(crate) const TEXT_LABELS: LabelDialect = LabelDialect {
    blanks: true,
    trailing_comma: true,
    comma_optional: true,
    newline_in_value: true,
    quoted_metric_name: true,
};

pub(crate) const OM_LABELS: LabelDialect = LabelDialect {
    blanks: false,
    trailing_comma: false,
    comma_optional: false,
    newline_in_value: false,
    quoted_metric_name: true,
};

pub(crate) const OM_EXEMPLAR_LABELS: LabelDialect = LabelDialect {
    quoted_metric_name: false,
    ..OM_LABELS
};

/// Parses a label list; the cursor is just after `{` and ends just after `}`. Pairs are
/// appended to `out`; a quoted metric name found inside is returned.
pub(crate) fn label_list<'i>(
    c: &mut Cursor<'i>,
    d: LabelDialect,
    out: &mut Vec<LabelPair<'i>>,
) -> Result<Option<Cow<'i, str>>, ParseError> {
    let mut name_in_braces: Option<Cow<'i, str>> = None;
    let first = out.len();
    let mut expect_item = true; // at start, or just after a comma
    loop {
        if d.blanks {
            c.skip_blanks();
        }
        match c.peek() {
            Some(b'}') => {
                if !expect_item || out.len() == first && name_in_braces.is_none() {
                    c.pos += 1;
                    return Ok(name_in_braces);
                }
                // Just after a comma.
                if d.trailing_comma {
                    c.pos += 1;
                    return Ok(name_in_braces);
                }
                return Err(c.syntax("expected label name after ','"));
            }
            Some(b) if is_label_start(b) || b == b'"' => {
                if !expect_item && !d.comma_optional {
                    return Err(c.syntax("expected ',' or '}' after label value"));
                }
            }
            Some(b'\n') | None => return Err(c.syntax("unterminated label set, expected '}'")),
            Some(b) => {
                return Err(c.syntax(format!("expected label name, got {:?}", char::from(b))))
            }
        }
        // A label name, possibly quoted, or a quoted metric name.
        let lname: Cow<'i, str> = if c.peek() == Some(b'"') {
            let q = quoted(c, false, "label name")?;
            if d.blanks {
                c.skip_blanks();
            }
            if matches!(c.peek(), Some(b',' | b'}')) {
                if !d.quoted_metric_name {
                    return Err(c.syntax("expected label name"));
                }
                if name_in_braces.is_some() {
                    return Err(c.syntax("metric name already set"));
                }
                if q.is_empty() {
                    return Err(c.syntax("empty metric name"));
                }
                name_in_braces = Some(q);
                expect_item = c.eat(b',');
                continue;
            }
            if q.is_empty() {
                return Err(c.syntax("empty label name"));
            }
            q
        } else {
            let raw = c.take_while(is_label_char);
            Cow::Borrowed(std::str::from_utf8(raw).unwrap_or_default())
        };
        if d.blanks {
            c.skip_blanks();
        }
        if !c.eat(b'=') {
            return Err(c.syntax(format!("expected '=' after label name {lname:?}")));
        }
        if d.blanks {
            c.skip_blanks();
        }
        if c.peek() != Some(b'"') {
            return Err(c.syntax(format!("expected quoted value for label {lname:?}")));
        }
        let value = quoted(c, d.newline_in_value, "label value")?;
        if out[first..].iter().any(|(n, _)| *n == lname) {
            return Err(ParseError::invalid(
                c.line,
                format!("duplicate label name {lname:?}"),
            ));
        }
        out.push((lname, value));
        if d.blanks {
            c.skip_blanks();
        }
        expect_item = c.eat(b',');
        if !expect_item && !matches!(c.peek(), Some(b'}')) && !d.comma_optional {
            return Err(c.syntax("expected ',' or '}' after label value"));
        }
    }
}
