//! PromQL token kinds and tokens, and how Prometheus describes a token in "unexpected ..."
//! errors. Owns token classification only; it never scans text or parses.

use super::quote::go_quote_str;

/// The kind of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    // Literals and names.
    Identifier,
    MetricIdentifier,
    Number,
    Duration,
    String,
    // Punctuation.
    LeftParen,
    RightParen,
    LeftBrace,
    RightBrace,
    LeftBracket,
    RightBracket,
    Comma,
    Colon,
    Eql,
    // Operators.
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eqlc,
    Neq,
    Lte,
    Lss,
    Gte,
    Gtr,
    TrimUpper,
    TrimLower,
    EqlRegex,
    NeqRegex,
    At,
    Land,
    Lor,
    Lunless,
    Atan2,
    // Aggregators.
    Avg,
    Bottomk,
    Count,
    CountValues,
    Group,
    Max,
    Min,
    Quantile,
    Stddev,
    Stdvar,
    Sum,
    Topk,
    Limitk,
    LimitRatio,
    // Keywords.
    Bool,
    By,
    GroupLeft,
    GroupRight,
    Fill,
    FillLeft,
    FillRight,
    Ignoring,
    Offset,
    Smoothed,
    Anchored,
    On,
    Without,
    // Preprocessors and duration keywords.
    Start,
    End,
    Step,
    Range,
    MaxOf,
    MinOf,
    // End of input.
    Eof,
    /// A lexing error; the token's `error` field holds the message.
    Error,
}

impl TokenKind {
    /// Whether the kind is an operator (Prometheus prints those as `<op:...>`).
    pub fn is_operator(self) -> bool {
        use TokenKind::*;
        matches!(
            self,
            Add | Sub
                | Mul
                | Div
                | Mod
                | Pow
                | Eqlc
                | Neq
                | Lte
                | Lss
                | Gte
                | Gtr
                | TrimUpper
                | TrimLower
                | EqlRegex
                | NeqRegex
                | At
                | Land
                | Lor
                | Lunless
                | Atan2
        )
    }

    /// Whether the kind is an aggregation operator.
    pub fn is_aggregator(self) -> bool {
        use TokenKind::*;
        matches!(
            self,
            Avg | Bottomk
                | Count
                | CountValues
                | Group
                | Max
                | Min
                | Quantile
                | Stddev
                | Stdvar
                | Sum
                | Topk
                | Limitk
                | LimitRatio
        )
    }

    /// Whether the kind is a keyword (printed as `<kw>` in errors).
    pub fn is_keyword(self) -> bool {
        use TokenKind::*;
        matches!(
            self,
            Bool | By
                | GroupLeft
                | GroupRight
                | Fill
                | FillLeft
                | FillRight
                | Ignoring
                | Offset
                | Smoothed
                | Anchored
                | On
                | Without
        )
    }

    /// Tokens that may name a metric at the start of a vector selector.
    pub fn is_metric_identifier(self) -> bool {
        use TokenKind::*;
        self.is_aggregator()
            || matches!(
                self,
                By | Fill
                    | FillLeft
                    | FillRight
                    | Identifier
                    | Land
                    | Lor
                    | Lunless
                    | MetricIdentifier
                    | Offset
                    | Without
                    | Start
                    | End
                    | Step
                    | Range
                    | Anchored
                    | Smoothed
                    | MaxOf
                    | MinOf
            )
    }

    /// Tokens that may be a label name inside `by (...)`, `on (...)` and friends.
    pub fn is_maybe_label(self) -> bool {
        use TokenKind::*;
        (self.is_aggregator() || self.is_metric_identifier() || self.is_keyword())
            && self != Without
            || matches!(self, Atan2)
    }

    /// Whether Prometheus has a fixed text for this kind (affects error descriptions).
    fn has_fixed_text(self) -> bool {
        use TokenKind::*;
        !matches!(
            self,
            Identifier | MetricIdentifier | Number | Duration | String | Eof | Error
        )
    }
}

/// One token: its kind, its byte range in the input, and for errors the message.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub start: usize,
    pub end: usize,
    /// The lexer error message, for `TokenKind::Error`.
    pub error: Option<String>,
}

impl Token {
    /// The token's text.
    pub fn text<'a>(&self, input: &'a str) -> &'a str {
        input.get(self.start..self.end).unwrap_or("")
    }

    /// Describes the token the way Prometheus' parser does in "unexpected ..." errors.
    pub fn describe(&self, input: &str) -> String {
        let text = self.text(input);
        match self.kind {
            TokenKind::Eof => "end of input".to_string(),
            TokenKind::Error => self.error.clone().unwrap_or_default(),
            TokenKind::Identifier => format!("identifier {}", go_quote_str(text)),
            TokenKind::MetricIdentifier => format!("metric identifier {}", go_quote_str(text)),
            TokenKind::Number => format!("number {}", short_quote(text)),
            TokenKind::Duration => format!("duration {}", short_quote(text)),
            TokenKind::String => format!("string {}", short_quote(text)),
            k if k.is_keyword() => format!("<{text}>"),
            k if k.is_operator() => format!("<op:{text}>"),
            k if k.is_aggregator() => format!("<aggr:{text}>"),
            k if k.has_fixed_text() => short_quote(text),
            _ => short_quote(text),
        }
    }
}

/// Maximum characters of a token value shown in an error before it is cut with `...`.
const MAX_DESCRIBED_CHARS: usize = 10;

/// Go's `%.10q...` for long values, `%q` otherwise.
fn short_quote(s: &str) -> String {
    if s.chars().count() > MAX_DESCRIBED_CHARS {
        let cut: String = s.chars().take(MAX_DESCRIBED_CHARS).collect();
        format!("{}...", go_quote_str(&cut))
    } else {
        go_quote_str(s)
    }
}
