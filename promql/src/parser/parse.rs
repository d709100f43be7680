//! The PromQL parser: a hand-written precedence-climbing parser over the lexer's tokens that
//! builds the AST with byte spans and reports the first syntax error with Prometheus' wording
//! ("unexpected <op:*> in grouping opts, expected label"). It owns grammar only; type rules
//! live in `check`, and it never panics on any input.

use vigil_storage::{MatchType, Matcher};

use super::ast::*;
use super::duration::parse_duration;
use super::lexer::lex;
use super::quote::{go_quote_str, unquote};
use super::token::{Token, TokenKind};
use super::{ParseErr, ParserOptions};
use crate::functions::get_function;

pub(super) type PResult<T> = Result<T, ParseErr>;

/// Precedence of `^`, which is also what unary operators bind (only `^` is tighter).
pub(super) const POW_PRECEDENCE: u8 = 6;
pub(super) const MILLIS_PER_SECOND: f64 = 1000.0;

/// The deepest expression tree the parser builds. Deeper queries (thousands of nested
/// parentheses or chained operators) are refused with a parse error instead of overflowing
/// the stack of the parser, type checker, printer or evaluator, which all recurse.
pub const MAX_NESTING_DEPTH: usize = 128;

/// A parser over one query string.
pub struct Parser<'a> {
    input: &'a str,
    toks: Vec<Token>,
    i: usize,
    /// Depth in the expression tree of what is being parsed.
    depth: usize,
    pub(super) prev_end: usize,
    pub(super) opts: ParserOptions,
}

impl<'a> Parser<'a> {
    pub fn new(input: &'a str, opts: &ParserOptions) -> Parser<'a> {
        Parser {
            input,
            toks: lex(input),
            i: 0,
            depth: 0,
            prev_end: 0,
            opts: *opts,
        }
    }

    // ---- token helpers ----

    pub(super) fn peek(&self) -> &Token {
        // `lex` always ends with Eof or Error and `bump` never moves past it.
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    pub(super) fn kind(&self) -> TokenKind {
        self.peek().kind
    }

    pub(super) fn kind2(&self) -> TokenKind {
        self.toks[(self.i + 1).min(self.toks.len() - 1)].kind
    }

    pub(super) fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        self.prev_end = t.end;
        t
    }

    pub(super) fn text(&self, t: &Token) -> &'a str {
        t.text(self.input)
    }

    pub(super) fn err(&self, pos: PosRange, msg: impl Into<String>) -> ParseErr {
        ParseErr {
            pos,
            msg: msg.into(),
            query: self.input.to_string(),
        }
    }

    /// "unexpected <token>[ in <context>][, expected <expected>]" for the current token; a
    /// lexer error is reported as itself.
    pub(super) fn unexpected(&self, context: &str, expected: &str) -> ParseErr {
        let t = self.peek();
        if t.kind == TokenKind::Error {
            return self.err(
                PosRange::new(t.start, self.input.len()),
                t.error.clone().unwrap_or_default(),
            );
        }
        let mut msg = format!("unexpected {}", t.describe(self.input));
        if !context.is_empty() {
            msg.push_str(" in ");
            msg.push_str(context);
        }
        if !expected.is_empty() {
            msg.push_str(", expected ");
            msg.push_str(expected);
        }
        self.err(PosRange::new(t.start, t.end), msg)
    }

    pub(super) fn expect(&mut self, kind: TokenKind, ctx: (&str, &str)) -> PResult<Token> {
        if self.kind() == kind {
            Ok(self.bump())
        } else {
            Err(self.unexpected(ctx.0, ctx.1))
        }
    }

    // ---- entry points ----

    /// Parses a whole expression (no type checking).
    pub fn parse_top(&mut self) -> PResult<Expr> {
        if self.kind() == TokenKind::Eof {
            return Err(self.err(PosRange::default(), "no expression found in input"));
        }
        let e = self.parse_expr(0)?;
        if self.kind() != TokenKind::Eof {
            return Err(self.unexpected("", ""));
        }
        Ok(e)
    }

    /// Parses a lone series selector into its matchers.
    pub fn parse_metric_selector(&mut self) -> PResult<Vec<Matcher>> {
        let k = self.kind();
        let vs = if k == TokenKind::LeftBrace {
            self.parse_vector_selector(None)?
        } else if k.is_metric_identifier() {
            let t = self.bump();
            self.parse_vector_selector(Some(t))?
        } else {
            return Err(self.unexpected("", ""));
        };
        if self.kind() != TokenKind::Eof {
            return Err(self.unexpected("", ""));
        }
        Ok(vs.matchers)
    }

    // ---- expressions ----

    fn parse_expr(&mut self, min_prec: u8) -> PResult<Expr> {
        let base = self.depth;
        let res = self.parse_expr_chain(min_prec, base);
        self.depth = base;
        res
    }

    fn too_deep(&self) -> ParseErr {
        let t = self.peek();
        self.err(
            PosRange {
                start: t.start,
                end: t.end,
            },
            format!("expression nested too deeply (more than {MAX_NESTING_DEPTH} levels)"),
        )
    }

    fn parse_expr_chain(&mut self, min_prec: u8, base: usize) -> PResult<Expr> {
        let mut lhs = self.parse_unary()?;
        let mut chain = 0;
        while let Some(op) = binary_op(self.kind()) {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            // A left-deep chain `a + b + c …` grows the tree by one level per operator.
            chain += 1;
            self.depth = base + chain;
            if self.depth > MAX_NESTING_DEPTH {
                return Err(self.too_deep());
            }
            self.bump();
            let (matching, return_bool) = self.parse_bin_modifiers()?;
            let next_min = if op.is_right_assoc() { prec } else { prec + 1 };
            let rhs = self.parse_expr(next_min)?;
            let has_fill = matching.fill_values.lhs.is_some() || matching.fill_values.rhs.is_some();
            let b = Expr::Binary(BinaryExpr {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                matching: Some(matching),
                return_bool,
            });
            if has_fill && !self.opts.enable_binop_fill {
                return Err(self.err(
                    b.pos(),
                    "binop fill modifiers are experimental and not enabled",
                ));
            }
            lhs = b;
        }
        Ok(lhs)
    }

    fn parse_unary(&mut self) -> PResult<Expr> {
        self.depth += 1;
        if self.depth > MAX_NESTING_DEPTH {
            return Err(self.too_deep());
        }
        let res = self.parse_unary_inner();
        self.depth -= 1;
        res
    }

    fn parse_unary_inner(&mut self) -> PResult<Expr> {
        let op = match self.kind() {
            TokenKind::Add => UnaryOp::Add,
            TokenKind::Sub => UnaryOp::Sub,
            _ => {
                let e = self.parse_primary()?;
                return self.parse_postfix(e);
            }
        };
        let tok = self.bump();
        let operand = self.parse_expr(POW_PRECEDENCE)?;
        Ok(match operand {
            Expr::NumberLiteral(mut n) => {
                if op == UnaryOp::Sub {
                    n.val = -n.val;
                }
                n.pos.start = tok.start;
                Expr::NumberLiteral(n)
            }
            e => Expr::Unary(UnaryExpr {
                op,
                expr: Box::new(e),
                start_pos: tok.start,
            }),
        })
    }

    fn parse_primary(&mut self) -> PResult<Expr> {
        let k = self.kind();
        match k {
            TokenKind::Number => {
                let t = self.bump();
                let val = parse_number(self.text(&t))
                    .map_err(|m| self.err(range(&t), format!("error parsing number: {m}")))?;
                Ok(Expr::NumberLiteral(NumberLiteral {
                    val,
                    duration: false,
                    pos: range(&t),
                }))
            }
            TokenKind::Duration => {
                let t = self.bump();
                let ms = parse_duration(self.text(&t)).map_err(|m| self.err(range(&t), m))?;
                Ok(Expr::NumberLiteral(NumberLiteral {
                    val: ms as f64 / MILLIS_PER_SECOND,
                    duration: true,
                    pos: range(&t),
                }))
            }
            TokenKind::String => {
                let t = self.bump();
                let val = self.unquote_tok(&t)?;
                Ok(Expr::StringLiteral(StringLiteral {
                    val,
                    pos: range(&t),
                }))
            }
            TokenKind::LeftParen => {
                let lp = self.bump();
                let e = self.parse_expr(0)?;
                let rp = self.expect(TokenKind::RightParen, ("", ""))?;
                Ok(Expr::Paren(ParenExpr {
                    expr: Box::new(e),
                    pos: PosRange::new(lp.start, rp.end),
                }))
            }
            TokenKind::LeftBrace => Ok(Expr::VectorSelector(Box::new(
                self.parse_vector_selector(None)?,
            ))),
            TokenKind::Identifier
            | TokenKind::Start
            | TokenKind::End
            | TokenKind::Step
            | TokenKind::Range
            | TokenKind::MaxOf
            | TokenKind::MinOf
                if self.kind2() == TokenKind::LeftParen =>
            {
                let t = self.bump();
                self.parse_call(t)
            }
            k if k.is_aggregator()
                && matches!(
                    self.kind2(),
                    TokenKind::LeftParen | TokenKind::By | TokenKind::Without
                ) =>
            {
                let t = self.bump();
                self.parse_aggregate(t)
            }
            k if k.is_metric_identifier() => {
                let t = self.bump();
                Ok(Expr::VectorSelector(Box::new(
                    self.parse_vector_selector(Some(t))?,
                )))
            }
            _ => Err(self.unexpected("", "")),
        }
    }

    fn unquote_tok(&self, t: &Token) -> PResult<String> {
        let s = self.text(t);
        unquote(s).map_err(|e| {
            self.err(
                range(t),
                format!("error unquoting string {}: {e}", go_quote_str(s)),
            )
        })
    }

    // ---- selectors ----

    fn parse_vector_selector(&mut self, name: Option<Token>) -> PResult<VectorSelector> {
        let (name_text, start) = match &name {
            Some(t) => (self.text(t).to_string(), t.start),
            None => (String::new(), self.peek().start),
        };
        let mut end = name.as_ref().map(|t| t.end).unwrap_or(start);
        let mut matchers = Vec::new();
        if self.kind() == TokenKind::LeftBrace {
            let (m, e) = self.parse_label_matchers()?;
            matchers = m;
            end = e;
        }
        if !name_text.is_empty() {
            matchers.push(Matcher::equal("__name__", &name_text));
        }
        Ok(VectorSelector {
            name: name_text,
            matchers,
            original_offset: 0,
            original_offset_expr: None,
            offset: 0,
            timestamp: None,
            start_or_end: None,
            anchored: false,
            smoothed: false,
            bypass_empty_matcher_check: false,
            pos: PosRange::new(start, end),
        })
    }

    fn parse_label_matchers(&mut self) -> PResult<(Vec<Matcher>, usize)> {
        const CTX: &str = "label matching";
        self.bump(); // `{`
        let mut out = Vec::new();
        if self.kind() == TokenKind::RightBrace {
            return Ok((out, self.bump().end));
        }
        loop {
            match self.kind() {
                TokenKind::Identifier => {
                    let name = self.bump();
                    let Some(mt) = match_type(self.kind()) else {
                        return Err(self.unexpected(CTX, "label matching operator"));
                    };
                    self.bump();
                    let val = self.expect(TokenKind::String, (CTX, "string"))?;
                    let n = self.text(&name).to_string();
                    out.push(self.new_matcher(mt, &n, &name, &val)?);
                }
                TokenKind::String => {
                    let s = self.bump();
                    let unq = self.unquote_tok(&s)?;
                    if let Some(mt) = match_type(self.kind()) {
                        self.bump();
                        let val = self.expect(TokenKind::String, (CTX, "string"))?;
                        out.push(self.new_matcher(mt, &unq, &s, &val)?);
                    } else {
                        out.push(
                            Matcher::new(MatchType::Equal, "__name__", &unq)
                                .map_err(|e| self.err(range(&s), e.to_string()))?,
                        );
                    }
                }
                _ => return Err(self.unexpected(CTX, "identifier or \"}\"")),
            }
            match self.kind() {
                TokenKind::Comma => {
                    self.bump();
                    if self.kind() == TokenKind::RightBrace {
                        return Ok((out, self.bump().end));
                    }
                }
                TokenKind::RightBrace => return Ok((out, self.bump().end)),
                _ => return Err(self.unexpected(CTX, "\",\" or \"}\"")),
            }
        }
    }

    fn new_matcher(
        &self,
        mt: MatchType,
        name: &str,
        name_tok: &Token,
        val_tok: &Token,
    ) -> PResult<Matcher> {
        let val = self.unquote_tok(val_tok)?;
        Matcher::new(mt, name, &val).map_err(|e| {
            self.err(
                PosRange::new(name_tok.start, val_tok.end),
                matcher_error_text(&e),
            )
        })
    }

    // ---- calls and aggregations ----

    /// `( args )`, returning the arguments and the end of `)`.
    fn parse_call_body(&mut self) -> PResult<(Vec<Expr>, usize)> {
        self.expect(TokenKind::LeftParen, ("", ""))?;
        let mut args = Vec::new();
        if self.kind() == TokenKind::RightParen {
            return Ok((args, self.bump().end));
        }
        loop {
            args.push(self.parse_expr(0)?);
            match self.kind() {
                TokenKind::Comma => {
                    let c = self.bump();
                    if self.kind() == TokenKind::RightParen {
                        return Err(self.err(
                            range(&c),
                            "trailing commas not allowed in function call args",
                        ));
                    }
                }
                TokenKind::RightParen => return Ok((args, self.bump().end)),
                _ => return Err(self.unexpected("", "")),
            }
        }
    }

    fn parse_call(&mut self, name: Token) -> PResult<Expr> {
        let (args, end) = self.parse_call_body()?;
        let n = self.text(&name);
        let Some(func) = get_function(n) else {
            return Err(self.err(
                range(&name),
                format!("unknown function with name {}", go_quote_str(n)),
            ));
        };
        if func.experimental && !self.opts.enable_experimental_functions {
            return Err(self.err(
                range(&name),
                format!("function {} is not enabled", go_quote_str(n)),
            ));
        }
        Ok(Expr::Call(Call {
            func,
            args,
            pos: PosRange::new(name.start, end),
        }))
    }

    fn parse_aggregate(&mut self, op_tok: Token) -> PResult<Expr> {
        let op = aggregate_op(op_tok.kind).ok_or_else(|| self.unexpected("", ""))?;
        let mut grouping = Vec::new();
        let mut without = false;
        let modifier_first = matches!(self.kind(), TokenKind::By | TokenKind::Without);
        let (args, mut end) = if modifier_first {
            without = self.bump().kind == TokenKind::Without;
            grouping = self.parse_grouping_labels()?.0;
            if self.kind() != TokenKind::LeftParen {
                return Err(self.unexpected("aggregation", ""));
            }
            self.parse_call_body()?
        } else {
            self.parse_call_body()?
        };
        if !modifier_first && matches!(self.kind(), TokenKind::By | TokenKind::Without) {
            without = self.bump().kind == TokenKind::Without;
            let (g, e) = self.parse_grouping_labels()?;
            grouping = g;
            end = e;
        }
        let pos = PosRange::new(op_tok.start, end);
        if args.is_empty() {
            return Err(self.err(pos, "no arguments for aggregate expression provided"));
        }
        let mut desired = 1;
        if op.has_param() {
            if op.is_experimental() && !self.opts.enable_experimental_functions {
                return Err(self.err(
                    pos,
                    format!(
                        "{}() is experimental and must be enabled with --enable-feature=promql-experimental-functions",
                        op.as_str()
                    ),
                ));
            }
            desired = 2;
        }
        if args.len() != desired {
            return Err(self.err(
                pos,
                format!(
                    "wrong number of arguments for aggregate expression provided, expected {desired}, got {}",
                    args.len()
                ),
            ));
        }
        let mut it = args.into_iter();
        let param = if desired == 2 {
            it.next().map(Box::new)
        } else {
            None
        };
        let expr = it
            .next()
            .ok_or_else(|| self.err(pos, "missing aggregation argument"))?;
        Ok(Expr::Aggregate(AggregateExpr {
            op,
            expr: Box::new(expr),
            param,
            grouping,
            without,
            pos,
        }))
    }

    /// `( label, ... )` for `by`, `without`, `on`, `ignoring` and `group_x`.
    pub(super) fn parse_grouping_labels(&mut self) -> PResult<(Vec<String>, usize)> {
        const CTX: &str = "grouping opts";
        if self.kind() != TokenKind::LeftParen {
            return Err(self.unexpected(CTX, "\"(\""));
        }
        self.bump();
        let mut out = Vec::new();
        if self.kind() == TokenKind::RightParen {
            return Ok((out, self.bump().end));
        }
        loop {
            let k = self.kind();
            if k == TokenKind::String {
                let t = self.bump();
                let s = self.unquote_tok(&t)?;
                if s.is_empty() {
                    return Err(self.err(
                        range(&t),
                        format!("invalid label name for grouping: {}", go_quote_str(&s)),
                    ));
                }
                out.push(s);
            } else if k.is_maybe_label() {
                let t = self.bump();
                out.push(self.text(&t).to_string());
            } else {
                return Err(self.unexpected(CTX, "label"));
            }
            match self.kind() {
                TokenKind::Comma => {
                    self.bump();
                    if self.kind() == TokenKind::RightParen {
                        return Ok((out, self.bump().end));
                    }
                }
                TokenKind::RightParen => return Ok((out, self.bump().end)),
                _ => return Err(self.unexpected(CTX, "\",\" or \")\"")),
            }
        }
    }

    // ---- binary operator modifiers ----

    fn parse_bin_modifiers(&mut self) -> PResult<(VectorMatching, bool)> {
        let mut vm = VectorMatching::default();
        let mut return_bool = false;
        if self.kind() == TokenKind::Bool {
            self.bump();
            return_bool = true;
        }
        if matches!(self.kind(), TokenKind::On | TokenKind::Ignoring) {
            vm.on = self.bump().kind == TokenKind::On;
            vm.matching_labels = self.parse_grouping_labels()?.0;
            if matches!(self.kind(), TokenKind::GroupLeft | TokenKind::GroupRight) {
                vm.card = if self.bump().kind == TokenKind::GroupLeft {
                    VectorMatchCardinality::ManyToOne
                } else {
                    VectorMatchCardinality::OneToMany
                };
                if self.kind() == TokenKind::LeftParen {
                    vm.include = self.parse_grouping_labels()?.0;
                }
            }
        }
        match self.kind() {
            TokenKind::Fill => {
                self.bump();
                let v = self.parse_fill_value()?;
                vm.fill_values = FillValues {
                    lhs: Some(v),
                    rhs: Some(v),
                };
            }
            TokenKind::FillLeft => {
                self.bump();
                vm.fill_values.lhs = Some(self.parse_fill_value()?);
                if self.kind() == TokenKind::FillRight {
                    self.bump();
                    vm.fill_values.rhs = Some(self.parse_fill_value()?);
                }
            }
            TokenKind::FillRight => {
                self.bump();
                vm.fill_values.rhs = Some(self.parse_fill_value()?);
                if self.kind() == TokenKind::FillLeft {
                    self.bump();
                    vm.fill_values.lhs = Some(self.parse_fill_value()?);
                }
            }
            _ => {}
        }
        Ok((vm, return_bool))
    }

    fn parse_fill_value(&mut self) -> PResult<f64> {
        self.expect(TokenKind::LeftParen, ("", ""))?;
        let neg = match self.kind() {
            TokenKind::Add => {
                self.bump();
                false
            }
            TokenKind::Sub => {
                self.bump();
                true
            }
            _ => false,
        };
        let v = self.parse_number_or_duration_value(("", ""))?;
        self.expect(TokenKind::RightParen, ("", ""))?;
        Ok(if neg { -v } else { v })
    }

    /// A NUMBER or DURATION token as seconds.
    pub(super) fn parse_number_or_duration_value(&mut self, ctx: (&str, &str)) -> PResult<f64> {
        match self.kind() {
            TokenKind::Number => {
                let t = self.bump();
                parse_number(self.text(&t))
                    .map_err(|m| self.err(range(&t), format!("error parsing number: {m}")))
            }
            TokenKind::Duration => {
                let t = self.bump();
                parse_duration(self.text(&t))
                    .map(|ms| ms as f64 / MILLIS_PER_SECOND)
                    .map_err(|m| self.err(range(&t), m))
            }
            _ => Err(self.unexpected(ctx.0, ctx.1)),
        }
    }
}

pub(super) fn range(t: &Token) -> PosRange {
    PosRange::new(t.start, t.end)
}

fn binary_op(k: TokenKind) -> Option<BinaryOp> {
    use TokenKind as T;
    Some(match k {
        T::Add => BinaryOp::Add,
        T::Sub => BinaryOp::Sub,
        T::Mul => BinaryOp::Mul,
        T::Div => BinaryOp::Div,
        T::Mod => BinaryOp::Mod,
        T::Pow => BinaryOp::Pow,
        T::Atan2 => BinaryOp::Atan2,
        T::Eqlc => BinaryOp::Eql,
        T::Neq => BinaryOp::Neq,
        T::Gtr => BinaryOp::Gtr,
        T::Lss => BinaryOp::Lss,
        T::Gte => BinaryOp::Gte,
        T::Lte => BinaryOp::Lte,
        T::TrimUpper => BinaryOp::TrimUpper,
        T::TrimLower => BinaryOp::TrimLower,
        T::Land => BinaryOp::And,
        T::Lor => BinaryOp::Or,
        T::Lunless => BinaryOp::Unless,
        _ => return None,
    })
}

fn aggregate_op(k: TokenKind) -> Option<AggregateOp> {
    use TokenKind as T;
    Some(match k {
        T::Sum => AggregateOp::Sum,
        T::Avg => AggregateOp::Avg,
        T::Count => AggregateOp::Count,
        T::Min => AggregateOp::Min,
        T::Max => AggregateOp::Max,
        T::Group => AggregateOp::Group,
        T::Stddev => AggregateOp::Stddev,
        T::Stdvar => AggregateOp::Stdvar,
        T::Topk => AggregateOp::Topk,
        T::Bottomk => AggregateOp::Bottomk,
        T::Quantile => AggregateOp::Quantile,
        T::CountValues => AggregateOp::CountValues,
        T::Limitk => AggregateOp::Limitk,
        T::LimitRatio => AggregateOp::LimitRatio,
        _ => return None,
    })
}

fn match_type(k: TokenKind) -> Option<MatchType> {
    Some(match k {
        TokenKind::Eql => MatchType::Equal,
        TokenKind::Neq => MatchType::NotEqual,
        TokenKind::EqlRegex => MatchType::Regex,
        TokenKind::NeqRegex => MatchType::NotRegex,
        _ => return None,
    })
}

/// The text of a matcher construction error (without storage's prefix).
fn matcher_error_text(e: &vigil_storage::Error) -> String {
    match e {
        vigil_storage::Error::InvalidMatcher(m) => m.clone(),
        e => e.to_string(),
    }
}

/// Go's `%f`: `+Inf`, `-Inf`, `NaN`, else six decimals.
pub(super) fn go_fmt_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v:.6}")
    }
}

/// Parses a PromQL number literal like Go's `ParseInt(s, 0, 64)` falling back to
/// `ParseFloat`: hex (`0x1f`), octal (`0755`), underscores, floats, `Inf`, `NaN`.
pub fn parse_number(s: &str) -> Result<f64, String> {
    if let Some(i) = parse_go_int(s) {
        return Ok(i as f64);
    }
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => return Ok(f64::INFINITY),
        "-inf" | "-infinity" => return Ok(f64::NEG_INFINITY),
        "nan" => return Ok(f64::NAN),
        _ => {}
    }
    let syntax = || {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote_str(s)
        )
    };
    if lower.starts_with("0x")
        || lower.contains("__")
        || lower.starts_with('_')
        || lower.ends_with('_')
    {
        return Err(syntax());
    }
    let cleaned: String = s.chars().filter(|c| *c != '_').collect();
    let v: f64 = cleaned.parse().map_err(|_| syntax())?;
    if v.is_infinite() {
        return Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            go_quote_str(s)
        ));
    }
    Ok(v)
}

/// Go's base-0 integer syntax; None when not an integer or out of range.
fn parse_go_int(s: &str) -> Option<i64> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h.strip_prefix('_').unwrap_or(h), 16)
    } else if s.len() > 1 && s.starts_with('0') {
        let o = &s[1..];
        (o.strip_prefix('_').unwrap_or(o), 8)
    } else {
        (s, 10)
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let cleaned: String = digits.chars().filter(|c| *c != '_').collect();
    if !cleaned.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i64::from_str_radix(&cleaned, radix).ok()
}
