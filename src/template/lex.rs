//! The lexer of the Go `text/template` language: splits a template into text and the tokens
//! of `{{ ... }}` actions (with `{{-`/`-}}` whitespace trimming and `/* */` comments). It
//! knows nothing about functions or evaluation.

use super::TemplateError;

/// One token.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// Literal text between actions.
    Text(String),
    /// `{{` (after trimming was applied to the previous text).
    LeftDelim,
    /// `}}`.
    RightDelim,
    /// A keyword or function name.
    Ident(String),
    /// `.Field` (one segment; chains are several tokens).
    Field(String),
    /// `$name` or `$`.
    Var(String),
    /// `.` alone.
    Dot,
    Str(String),
    /// A number literal, kept as text to decide int/float later.
    Number(String),
    /// A character constant, as its code point.
    Char(i64),
    Bool(bool),
    Nil,
    Pipe,
    LeftParen,
    RightParen,
    Declare,
    Assign,
    Comma,
}

/// A token and the 1-based line where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
}

const LEFT: &str = "{{";
const RIGHT: &str = "}}";
const TRIM_LEFT: &str = "{{- ";
const COMMENT_OPEN: &str = "/*";
const COMMENT_CLOSE: &str = "*/";

/// Splits `src` into tokens. Errors carry the template name and line like Go's lexer.
pub fn lex(name: &str, src: &str) -> Result<Vec<Token>, TemplateError> {
    let mut l = Lexer {
        name,
        src,
        pos: 0,
        line: 1,
        out: Vec::new(),
    };
    l.run()?;
    Ok(l.out)
}

struct Lexer<'a> {
    name: &'a str,
    src: &'a str,
    pos: usize,
    line: usize,
    out: Vec<Token>,
}

fn is_trim_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

impl Lexer<'_> {
    fn err(&self, msg: impl Into<String>) -> TemplateError {
        TemplateError::parse(self.name, self.line, msg)
    }

    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn push(&mut self, tok: Tok, line: usize) {
        self.out.push(Token { tok, line });
    }

    fn advance(&mut self, n: usize) {
        let s = &self.src[self.pos..self.pos + n];
        self.line += s.matches('\n').count();
        self.pos += n;
    }

    fn run(&mut self) -> Result<(), TemplateError> {
        let mut trim_next_text = false;
        while self.pos < self.src.len() {
            let rest = self.rest();
            let text_end = rest.find(LEFT).unwrap_or(rest.len());
            let mut text = &rest[..text_end];
            let after = &rest[text_end..];
            let trim_left = after.starts_with(TRIM_LEFT)
                || (after.starts_with("{{-") && after[3..].starts_with(|c: char| is_trim_space(c)));
            if trim_next_text {
                text = text.trim_start_matches(is_trim_space);
            }
            if trim_left {
                text = text.trim_end_matches(is_trim_space);
            }
            if !text.is_empty() {
                let t = text.to_string();
                self.push(Tok::Text(t), self.line);
            }
            self.advance(text_end);
            if self.pos >= self.src.len() {
                break;
            }
            trim_next_text = self.action(trim_left)?;
        }
        Ok(())
    }

    /// Lexes one action starting at `{{`; returns whether it ended with `-}}`.
    fn action(&mut self, trim_left: bool) -> Result<bool, TemplateError> {
        let start_line = self.line;
        self.advance(LEFT.len() + if trim_left { 2 } else { 0 });
        // Comments: `{{/* ... */}}` with optional trim markers.
        let r = self.rest().trim_start_matches(is_trim_space);
        if r.starts_with(COMMENT_OPEN) {
            let skip = self.rest().len() - r.len();
            self.advance(skip);
            let Some(end) = self.rest().find(COMMENT_CLOSE) else {
                return Err(self.err("unclosed comment"));
            };
            self.advance(end + COMMENT_CLOSE.len());
            let r = self.rest();
            let trimmed = r.trim_start_matches(is_trim_space);
            let ws = r.len() - trimmed.len();
            if trimmed.starts_with("-}}") && ws > 0 {
                self.advance(ws + 3);
                return Ok(true);
            }
            if r.starts_with(RIGHT) {
                self.advance(RIGHT.len());
                return Ok(false);
            }
            return Err(self.err("comment ends before closing delimiter"));
        }
        self.push(Tok::LeftDelim, start_line);
        let mut paren_depth = 0usize;
        loop {
            let r = self.rest();
            if r.is_empty() {
                return Err(self.err("unclosed action"));
            }
            if r.starts_with(RIGHT) {
                if paren_depth > 0 {
                    return Err(self.err("unclosed left paren"));
                }
                self.advance(RIGHT.len());
                self.push(Tok::RightDelim, self.line);
                return Ok(false);
            }
            let Some(c) = r.chars().next() else {
                return Err(self.err("unclosed action"));
            };
            if is_trim_space(c) {
                let trimmed = r.trim_start_matches(is_trim_space);
                let ws = r.len() - trimmed.len();
                if trimmed.starts_with("-}}") {
                    if paren_depth > 0 {
                        return Err(self.err("unclosed left paren"));
                    }
                    self.advance(ws + 3);
                    self.push(Tok::RightDelim, self.line);
                    return Ok(true);
                }
                self.advance(ws);
                continue;
            }
            let line = self.line;
            match c {
                '|' => {
                    self.advance(1);
                    self.push(Tok::Pipe, line);
                }
                '(' => {
                    self.advance(1);
                    paren_depth += 1;
                    self.push(Tok::LeftParen, line);
                }
                ')' => {
                    if paren_depth == 0 {
                        return Err(self.err("unexpected right paren"));
                    }
                    paren_depth -= 1;
                    self.advance(1);
                    self.push(Tok::RightParen, line);
                }
                ',' => {
                    self.advance(1);
                    self.push(Tok::Comma, line);
                }
                ':' => {
                    if r.starts_with(":=") {
                        self.advance(2);
                        self.push(Tok::Declare, line);
                    } else {
                        return Err(self.err("expected :="));
                    }
                }
                '=' => {
                    self.advance(1);
                    self.push(Tok::Assign, line);
                }
                '"' => {
                    let s = self.quoted()?;
                    self.push(Tok::Str(s), line);
                }
                '`' => {
                    let Some(end) = r[1..].find('`') else {
                        return Err(self.err("unterminated raw quoted string"));
                    };
                    let s = r[1..1 + end].to_string();
                    self.advance(end + 2);
                    self.push(Tok::Str(s), line);
                }
                '\'' => {
                    let v = self.char_const()?;
                    self.push(Tok::Char(v), line);
                }
                '$' => {
                    let n = 1 + ident_len(&r[1..]);
                    let name = r[..n].to_string();
                    self.advance(n);
                    self.push(Tok::Var(name), line);
                }
                '.' => {
                    let next = r[1..].chars().next();
                    if next.is_some_and(|d| d.is_ascii_digit()) {
                        let n = number_len(r);
                        let s = r[..n].to_string();
                        self.advance(n);
                        self.push(Tok::Number(s), line);
                    } else {
                        let n = ident_len(&r[1..]);
                        if n == 0 {
                            self.advance(1);
                            self.push(Tok::Dot, line);
                        } else {
                            let s = r[1..1 + n].to_string();
                            self.advance(1 + n);
                            self.push(Tok::Field(s), line);
                        }
                    }
                }
                c if c.is_ascii_digit() || c == '-' || c == '+' => {
                    let n = number_len(r);
                    if n == 0 || (n == 1 && !c.is_ascii_digit()) {
                        return Err(self.err(format!("bad character {c:?}")));
                    }
                    let s = r[..n].to_string();
                    self.advance(n);
                    self.push(Tok::Number(s), line);
                }
                c if c.is_alphabetic() || c == '_' => {
                    let n = ident_len(r);
                    let word = r[..n].to_string();
                    self.advance(n);
                    let tok = match word.as_str() {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        _ => Tok::Ident(word),
                    };
                    self.push(tok, line);
                }
                c => return Err(self.err(format!("unexpected {c:?} in command"))),
            }
        }
    }

    fn quoted(&mut self) -> Result<String, TemplateError> {
        let r = self.rest();
        let mut out = String::new();
        let mut chars = r.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.advance(i + 1);
                    return Ok(out);
                }
                '\n' => break,
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'a' => out.push('\u{07}'),
                        'b' => out.push('\u{08}'),
                        'f' => out.push('\u{0c}'),
                        'v' => out.push('\u{0b}'),
                        '\\' => out.push('\\'),
                        '"' => out.push('"'),
                        '\'' => out.push('\''),
                        'x' | 'u' | 'U' => {
                            let len = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let mut hex = String::new();
                            for _ in 0..len {
                                if let Some((_, h)) = chars.next() {
                                    hex.push(h);
                                }
                            }
                            let v = u32::from_str_radix(&hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.err("invalid syntax"))?;
                            out.push(v);
                        }
                        _ => return Err(self.err("invalid syntax")),
                    }
                }
                c => out.push(c),
            }
        }
        Err(self.err("unterminated quoted string"))
    }

    fn char_const(&mut self) -> Result<i64, TemplateError> {
        let r = self.rest();
        let mut it = r.char_indices().skip(1);
        let v = match it.next() {
            Some((_, '\\')) => match it.next() {
                Some((_, 'n')) => '\n',
                Some((_, 't')) => '\t',
                Some((_, '\\')) => '\\',
                Some((_, '\'')) => '\'',
                _ => return Err(self.err("unterminated character constant")),
            },
            Some((_, c)) => c,
            None => return Err(self.err("unterminated character constant")),
        };
        match it.next() {
            Some((i, '\'')) => {
                self.advance(i + 1);
                Ok(v as i64)
            }
            _ => Err(self.err("unterminated character constant")),
        }
    }
}

fn ident_len(s: &str) -> usize {
    s.char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map(|(i, _)| i)
        .unwrap_or(s.len())
}

/// Length of a Go number literal at the start of `s` (sign, hex, decimal, exponent, `_`).
fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let hex = b.len() > i + 1 && b[i] == b'0' && (b[i + 1] == b'x' || b[i + 1] == b'X');
    if hex {
        i += 2;
        while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b'_') {
            i += 1;
        }
        return i;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            i = j;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    i
}
