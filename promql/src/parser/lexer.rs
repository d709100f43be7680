//! The PromQL lexer: turns a query string into tokens with byte positions, reproducing
//! Prometheus' lexer state machine (brace, bracket and duration-expression modes) and its
//! error texts. It owns tokenisation only; it never decides grammar or builds AST nodes,
//! and a lexing error ends the token stream with an `Error` token instead of panicking.

use super::quote::{go_quote_rune, go_quote_str, go_unicode_desc};
pub use super::token::{Token, TokenKind};

/// Keyword lookup on a lower-cased word.
fn keyword(word: &str) -> Option<TokenKind> {
    use TokenKind::*;
    Some(match word {
        "and" => Land,
        "or" => Lor,
        "unless" => Lunless,
        "atan2" => Atan2,
        "sum" => Sum,
        "avg" => Avg,
        "count" => Count,
        "min" => Min,
        "max" => Max,
        "group" => Group,
        "stddev" => Stddev,
        "stdvar" => Stdvar,
        "topk" => Topk,
        "bottomk" => Bottomk,
        "count_values" => CountValues,
        "quantile" => Quantile,
        "limitk" => Limitk,
        "limit_ratio" => LimitRatio,
        "offset" => Offset,
        "smoothed" => Smoothed,
        "anchored" => Anchored,
        "by" => By,
        "without" => Without,
        "on" => On,
        "ignoring" => Ignoring,
        "group_left" => GroupLeft,
        "group_right" => GroupRight,
        "fill" => Fill,
        "fill_left" => FillLeft,
        "fill_right" => FillRight,
        "bool" => Bool,
        "start" => Start,
        "end" => End,
        "step" => Step,
        "range" => Range,
        "max_of" => MaxOf,
        "min_of" => MinOf,
        "inf" | "nan" => Number,
        _ => return None,
    })
}

/// Keywords recognised inside `[...]` duration expressions.
fn duration_keyword(word: &str) -> Option<TokenKind> {
    match word {
        "step" => Some(TokenKind::Step),
        "range" => Some(TokenKind::Range),
        "max_of" => Some(TokenKind::MaxOf),
        "min_of" => Some(TokenKind::MinOf),
        _ => None,
    }
}

fn is_duration_keyword_start(c: char) -> bool {
    matches!(c.to_ascii_lowercase(), 's' | 'r' | 'm')
}

pub(crate) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_alpha(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

fn is_alnum(c: char) -> bool {
    is_alpha(c) || is_digit(c)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Statements,
    InsideBraces,
    DurationExpr,
}

const LINE_COMMENT: char = '#';

/// The lexer. Call [`lex`] to get all tokens of an input.
struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    paren_depth: i64,
    brace_open: bool,
    bracket_open: bool,
    got_colon: bool,
    got_duration: bool,
    state: State,
    out: Vec<Token>,
    done: bool,
}

/// Tokenises `input`. The result always ends with an `Eof` or an `Error` token; comments
/// are dropped.
pub fn lex(input: &str) -> Vec<Token> {
    let mut l = Lexer {
        input,
        pos: 0,
        start: 0,
        paren_depth: 0,
        brace_open: false,
        bracket_open: false,
        got_colon: false,
        got_duration: false,
        state: State::Statements,
        out: Vec::new(),
        done: false,
    };
    while !l.done {
        match l.state {
            State::Statements => l.lex_statements(),
            State::InsideBraces => l.lex_inside_braces(),
            State::DurationExpr => l.lex_duration_expr(),
        }
    }
    l.out
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn backup(&mut self, c: Option<char>) {
        if let Some(c) = c {
            self.pos -= c.len_utf8();
        }
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn is(&self, valid: &str) -> bool {
        matches!(self.peek(), Some(c) if valid.contains(c))
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    fn emit(&mut self, kind: TokenKind) {
        self.out.push(Token {
            kind,
            start: self.start,
            end: self.pos,
            error: None,
        });
        self.start = self.pos;
    }

    fn ignore(&mut self) {
        self.start = self.pos;
    }

    /// Ends the stream with an error at the current token start.
    fn error(&mut self, msg: String) {
        self.out.push(Token {
            kind: TokenKind::Error,
            start: self.start,
            end: self.input.len(),
            error: Some(msg),
        });
        self.done = true;
    }

    /// Replaces the token just emitted with an error (Prometheus overwrites the item).
    fn replace_with_error(&mut self, msg: String) {
        self.out.pop();
        self.error(msg);
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(c) if is_space(c)) {
            self.pos += 1;
        }
        self.ignore();
    }

    fn lex_line_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\r' || c == '\n' {
                break;
            }
            self.pos += c.len_utf8();
        }
        self.ignore();
    }

    fn lex_statements(&mut self) {
        if self.brace_open {
            self.state = State::InsideBraces;
            return;
        }
        if self.input[self.pos..].starts_with(LINE_COMMENT) {
            self.lex_line_comment();
            return;
        }
        let Some(r) = self.next() else {
            if self.paren_depth != 0 {
                self.error("unclosed left parenthesis".into());
            } else if self.bracket_open {
                self.error("unclosed left bracket".into());
            } else {
                self.emit(TokenKind::Eof);
                self.done = true;
            }
            return;
        };
        match r {
            ',' => self.emit(TokenKind::Comma),
            c if is_space(c) => self.skip_spaces(),
            '*' => self.emit(TokenKind::Mul),
            '/' => self.emit(TokenKind::Div),
            '%' => self.emit(TokenKind::Mod),
            '+' => self.emit(TokenKind::Add),
            '-' => self.emit(TokenKind::Sub),
            '^' => self.emit(TokenKind::Pow),
            '=' => match self.peek() {
                Some('=') => {
                    self.next();
                    self.emit(TokenKind::Eqlc);
                }
                Some('~') => self.error("unexpected character after '=': '~'".into()),
                _ => self.emit(TokenKind::Eql),
            },
            '!' => match self.next() {
                Some('=') => self.emit(TokenKind::Neq),
                t => self.error(format!(
                    "unexpected character after '!': {}",
                    go_quote_rune(t)
                )),
            },
            '<' => match self.peek() {
                Some('=') => {
                    self.next();
                    self.emit(TokenKind::Lte);
                }
                Some('/') => {
                    self.next();
                    self.emit(TokenKind::TrimUpper);
                }
                _ => self.emit(TokenKind::Lss),
            },
            '>' => match self.peek() {
                Some('=') => {
                    self.next();
                    self.emit(TokenKind::Gte);
                }
                Some('/') => {
                    self.next();
                    self.emit(TokenKind::TrimLower);
                }
                _ => self.emit(TokenKind::Gtr),
            },
            c if is_digit(c) || (c == '.' && self.peek().is_some_and(is_digit)) => {
                self.backup(Some(c));
                self.lex_number_or_duration();
            }
            '"' | '\'' => self.lex_string(r),
            '`' => self.lex_raw_string(),
            c if is_alpha(c) || c == ':' => {
                if !self.bracket_open {
                    self.backup(Some(c));
                    self.lex_keyword_or_identifier();
                    return;
                }
                if c == ':' {
                    if self.got_colon {
                        self.error("unexpected colon ':'".into());
                        return;
                    }
                    self.emit(TokenKind::Colon);
                    self.got_colon = true;
                    return;
                }
                if is_duration_keyword_start(c) && self.scan_duration_keyword() {
                    return;
                }
                self.error(format!(
                    "unexpected character: {}, expected ':'",
                    go_quote_rune(Some(c))
                ));
            }
            '(' => {
                self.emit(TokenKind::LeftParen);
                self.paren_depth += 1;
            }
            ')' => {
                self.emit(TokenKind::RightParen);
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    self.replace_with_error("unexpected right parenthesis ')'".into());
                }
            }
            '{' => {
                self.emit(TokenKind::LeftBrace);
                self.brace_open = true;
                self.state = State::InsideBraces;
            }
            '[' => {
                if self.bracket_open {
                    self.error("unexpected left bracket '['".into());
                    return;
                }
                self.got_colon = false;
                self.emit(TokenKind::LeftBracket);
                self.skip_spaces();
                self.bracket_open = true;
                self.state = State::DurationExpr;
            }
            ']' => {
                if !self.bracket_open {
                    self.error("unexpected right bracket ']'".into());
                    return;
                }
                self.emit(TokenKind::RightBracket);
                self.bracket_open = false;
            }
            '@' => self.emit(TokenKind::At),
            c => self.error(format!("unexpected character: {}", go_quote_rune(Some(c)))),
        }
    }

    fn lex_inside_braces(&mut self) {
        if self.input[self.pos..].starts_with(LINE_COMMENT) {
            self.lex_line_comment();
            return;
        }
        let Some(r) = self.next() else {
            self.error("unexpected end of input inside braces".into());
            return;
        };
        match r {
            c if is_space(c) => self.skip_spaces(),
            c if is_alpha(c) => {
                while matches!(self.peek(), Some(c) if is_alnum(c)) {
                    self.pos += 1;
                }
                self.emit(TokenKind::Identifier);
            }
            ',' => self.emit(TokenKind::Comma),
            '"' | '\'' => self.lex_string(r),
            '`' => self.lex_raw_string(),
            '=' => {
                if self.accept("~") {
                    self.emit(TokenKind::EqlRegex);
                } else {
                    self.emit(TokenKind::Eql);
                }
            }
            '!' => match self.next() {
                Some('~') => self.emit(TokenKind::NeqRegex),
                Some('=') => self.emit(TokenKind::Neq),
                nr => self.error(format!(
                    "unexpected character after '!' inside braces: {}",
                    go_quote_rune(nr)
                )),
            },
            '{' => self.error("unexpected left brace '{'".into()),
            '}' => {
                self.emit(TokenKind::RightBrace);
                self.brace_open = false;
                self.state = State::Statements;
            }
            c => self.error(format!(
                "unexpected character inside braces: {}",
                go_quote_rune(Some(c))
            )),
        }
    }

    fn lex_duration_expr(&mut self) {
        let Some(r) = self.next() else {
            self.error("unexpected end of input in duration expression".into());
            return;
        };
        match r {
            ']' => {
                self.emit(TokenKind::RightBracket);
                self.bracket_open = false;
                self.got_colon = false;
                self.state = State::Statements;
            }
            ':' => {
                self.emit(TokenKind::Colon);
                if !self.got_duration {
                    self.replace_with_error(
                        "unexpected colon before duration in duration expression".into(),
                    );
                    return;
                }
                if self.got_colon {
                    self.replace_with_error(
                        "unexpected repeated colon in duration expression".into(),
                    );
                    return;
                }
                self.got_colon = true;
            }
            '(' => {
                self.emit(TokenKind::LeftParen);
                self.paren_depth += 1;
            }
            ')' => {
                self.emit(TokenKind::RightParen);
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    self.replace_with_error("unexpected right parenthesis ')'".into());
                }
            }
            c if is_space(c) => self.skip_spaces(),
            '+' => self.emit(TokenKind::Add),
            '-' => self.emit(TokenKind::Sub),
            '*' => self.emit(TokenKind::Mul),
            '/' => self.emit(TokenKind::Div),
            '%' => self.emit(TokenKind::Mod),
            '^' => self.emit(TokenKind::Pow),
            ',' => self.emit(TokenKind::Comma),
            c if is_duration_keyword_start(c) => {
                if !self.scan_duration_keyword() {
                    self.error(format!(
                        "unexpected character in duration expression: {}",
                        go_quote_rune(Some(c))
                    ));
                }
            }
            c if is_digit(c) || (c == '.' && self.peek().is_some_and(is_digit)) => {
                self.backup(Some(c));
                self.got_duration = true;
                self.lex_number_or_duration();
                self.state = State::Statements;
            }
            c => self.error(format!(
                "unexpected character in duration expression: {}",
                go_quote_rune(Some(c))
            )),
        }
    }

    /// Scans a word and emits it when it is a duration keyword.
    fn scan_duration_keyword(&mut self) -> bool {
        while matches!(self.peek(), Some(c) if is_alpha(c)) {
            self.pos += 1;
        }
        let word = self.input[self.start..self.pos].to_ascii_lowercase();
        match duration_keyword(&word) {
            Some(k) => {
                self.emit(k);
                true
            }
            None => false,
        }
    }

    fn lex_keyword_or_identifier(&mut self) {
        while matches!(self.peek(), Some(c) if is_alnum(c) || c == ':') {
            self.pos += 1;
        }
        let word = &self.input[self.start..self.pos];
        let kind = match keyword(&word.to_ascii_lowercase()) {
            Some(k @ (TokenKind::Fill | TokenKind::FillLeft | TokenKind::FillRight)) => {
                if self.followed_by_left_paren() {
                    k
                } else {
                    TokenKind::Identifier
                }
            }
            Some(k) => k,
            None if word.contains(':') => TokenKind::MetricIdentifier,
            None => TokenKind::Identifier,
        };
        self.emit(kind);
    }

    fn followed_by_left_paren(&self) -> bool {
        self.input[self.pos..]
            .chars()
            .find(|c| !is_space(*c))
            .is_some_and(|c| c == '(')
    }

    fn lex_number_or_duration(&mut self) {
        if self.scan_number() {
            self.emit(TokenKind::Number);
            return;
        }
        if self.accept_remaining_duration() {
            self.emit(TokenKind::Duration);
            return;
        }
        let text = &self.input[self.start..self.pos];
        self.error(format!(
            "bad number or duration syntax: {}",
            go_quote_str(text)
        ));
    }

    /// After a failed number scan: a unit, optionally more digit+unit groups, and then a
    /// non-alphanumeric character (which is not consumed on success).
    fn accept_remaining_duration(&mut self) -> bool {
        if !self.accept("smhdwy") {
            return false;
        }
        self.accept("s");
        while self.accept("0123456789") {
            while self.accept("0123456789") {}
            if !self.accept("smhdw") {
                return false;
            }
            self.accept("s");
        }
        let c = self.next();
        if c.is_some_and(is_alnum) {
            return false;
        }
        self.backup(c);
        true
    }

    /// Scans a number (decimal, hex, float); the text is validated later by the parser.
    fn scan_number(&mut self) -> bool {
        const DEC: &str = "0123456789";
        const HEX: &str = "0123456789abcdefABCDEF";
        let initial = self.pos;
        let mut digits = DEC;
        if self.accept("0") && self.accept("xX") {
            self.accept("_");
            digits = HEX;
        }
        let all: String = format!("{digits}._eE");
        self.accept(".");
        self.accept(digits);
        let mut dot = false;
        let mut exp = false;
        while self.is(&all) {
            if self.is(".") && dot {
                self.accept(".");
                return false;
            }
            if self.is("eE") && exp {
                self.accept("eE");
                return false;
            }
            if self.accept(".") {
                dot = true;
                if self.accept("_.") {
                    return false;
                }
                if digits.len() > DEC.len() {
                    return false;
                }
                continue;
            }
            if self.accept("eE") {
                exp = true;
                self.accept("+-");
                if self.accept("._eE") || self.peek().is_none() {
                    return false;
                }
                continue;
            }
            if self.accept("_") {
                if self.accept("._eE") || self.peek().is_none() {
                    return false;
                }
                continue;
            }
            self.accept_run(digits);
        }
        if self.pos == initial {
            return false;
        }
        !self.peek().is_some_and(is_alnum)
    }

    fn lex_string(&mut self, quote: char) {
        loop {
            match self.next() {
                Some('\\') => {
                    if let Err(msg) = self.lex_escape(quote) {
                        self.error(msg);
                        return;
                    }
                }
                Some('\u{FFFD}') => {
                    self.error("invalid UTF-8 rune".into());
                    return;
                }
                None | Some('\n') => {
                    self.error("unterminated quoted string".into());
                    return;
                }
                Some(c) if c == quote => break,
                Some(_) => {}
            }
        }
        self.emit(TokenKind::String);
    }

    fn lex_escape(&mut self, quote: char) -> Result<(), String> {
        let mut ch = self.next();
        let (mut n, base, max) = match ch {
            Some('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\') => return Ok(()),
            Some(c) if c == quote => return Ok(()),
            Some('0'..='7') => (3, 8u32, 255u32),
            Some('x') => {
                ch = self.next();
                (2, 16, 255)
            }
            Some('u') => {
                ch = self.next();
                (4, 16, char::MAX as u32)
            }
            Some('U') => {
                ch = self.next();
                (8, 16, char::MAX as u32)
            }
            None => return Err("escape sequence not terminated".into()),
            Some(c) => return Err(format!("unknown escape sequence {}", go_unicode_desc(c))),
        };
        let mut x: u32 = 0;
        while n > 0 {
            let d = ch.and_then(|c| c.to_digit(16)).unwrap_or(16);
            if d >= base {
                return Err(match ch {
                    None => "escape sequence not terminated".into(),
                    Some(c) => format!(
                        "illegal character {} in escape sequence",
                        go_unicode_desc(c)
                    ),
                });
            }
            x = x.wrapping_mul(base).wrapping_add(d);
            n -= 1;
            if n > 0 {
                ch = self.next();
            }
        }
        if x > max || (0xD800..0xE000).contains(&x) {
            return Err("escape sequence is an invalid Unicode code point".into());
        }
        Ok(())
    }

    fn lex_raw_string(&mut self) {
        loop {
            match self.next() {
                Some('\u{FFFD}') => {
                    self.error("invalid UTF-8 rune".into());
                    return;
                }
                None => {
                    self.error("unterminated raw string".into());
                    return;
                }
                Some('`') => break,
                Some(_) => {}
            }
        }
        self.emit(TokenKind::String);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<TokenKind> {
        lex(s).into_iter().map(|t| t.kind).collect()
    }

    fn err(s: &str) -> (usize, String) {
        let t = lex(s).pop().unwrap();
        assert_eq!(t.kind, TokenKind::Error, "{s}");
        (t.start, t.error.unwrap())
    }

    #[test]
    fn basic_tokens() {
        use TokenKind::*;
        assert_eq!(
            kinds("sum by (a) (rate(x{y=~\"z\"}[5m:1m])) > bool 0x1f"),
            vec![
                Sum,
                By,
                LeftParen,
                Identifier,
                RightParen,
                LeftParen,
                Identifier,
                LeftParen,
                Identifier,
                LeftBrace,
                Identifier,
                EqlRegex,
                String,
                RightBrace,
                LeftBracket,
                Duration,
                Colon,
                Duration,
                RightBracket,
                RightParen,
                RightParen,
                Gtr,
                Bool,
                Number,
                Eof
            ]
        );
        assert_eq!(kinds("foo:bar # c\n"), vec![MetricIdentifier, Eof]);
        assert_eq!(
            kinds("fill + fill(1)"),
            vec![Identifier, Add, Fill, LeftParen, Number, RightParen, Eof]
        );
        assert_eq!(kinds("Inf NaN"), vec![Number, Number, Eof]);
        assert_eq!(
            kinds("a </ b >/ c"),
            vec![Identifier, TrimUpper, Identifier, TrimLower, Identifier, Eof]
        );
        assert_eq!(
            kinds("x[step()+1]"),
            vec![
                Identifier,
                LeftBracket,
                Step,
                LeftParen,
                RightParen,
                Add,
                Number,
                RightBracket,
                Eof
            ]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            err("2.5."),
            (0, "bad number or duration syntax: \"2.5.\"".into())
        );
        assert_eq!(
            err("0deadbeef"),
            (0, "bad number or duration syntax: \"0de\"".into())
        );
        assert_eq!(err("(1))"), (4, "unexpected right parenthesis ')'".into()));
        assert_eq!(
            err("\"\\c\""),
            (0, "unknown escape sequence U+0063 'c'".into())
        );
        assert_eq!(
            err("foo[5s x 5s]"),
            (7, "unexpected character: 'x', expected ':'".into())
        );
        assert_eq!(
            err("{"),
            (1, "unexpected end of input inside braces".into())
        );
    }
}
