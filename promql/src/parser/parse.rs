//! The PromQL parser: a hand-written precedence-climbing parser over the lexer's tokens that
//! builds the AST with byte spans and reports the first syntax error with Prometheus' wording
//! ("unexpected <op:*> in grouping opts, expected label"). It owns grammar only; type rules
//! live in `check`, and it never panics on any input.

use vigil_storage::{MatchType, Matcher};

use super::ast::*;
use super::duration::parse_duration;
use super::lexer::{lex, Token, TokenKind};
use super::quote::{go_quote_str, unquote};
use super::{ParseErr, ParserOptions};
use crate::functions::get_function;

type PResult<T> = Result<T, ParseErr>;

/// Precedence of `^`, which is also what unary operators bind (only `^` is tighter).
const POW_PRECEDENCE: u8 = 6;
/// Durations are `time.Duration` in Prometheus: at most 2^63 nanoseconds.
const MAX_DURATION_SECONDS: f64 = (1u64 << 63) as f64 / 1e9;
const NANOS_PER_SECOND: f64 = 1e9;
const NANOS_PER_MILLI: i128 = 1_000_000;
const MILLIS_PER_SECOND: f64 = 1000.0;
/// Largest magnitude accepted by `@` (Prometheus compares against int64 bounds).
const MAX_AT_SECONDS: f64 = i64::MAX as f64;

const OFFSET_CTX: (&str, &str) = ("offset", "number, duration, step(), or range()");
const RANGE_CTX: (&str, &str) = (
    "subquery or range selector",
    "number, duration, step(), or range()",
);
const STEP_CTX: (&str, &str) = (
    "subquery selector",
    "number, duration, step(), range(), or \"]\"",
);

/// A parser over one query string.
pub struct Parser<'a> {
    input: &'a str,
    toks: Vec<Token>,
    i: usize,
    prev_end: usize,
    opts: ParserOptions,
}

impl<'a> Parser<'a> {
    pub fn new(input: &'a str, opts: &ParserOptions) -> Parser<'a> {
        Parser {
            input,
            toks: lex(input),
            i: 0,
            prev_end: 0,
            opts: *opts,
        }
    }

    // ---- token helpers ----

    fn peek(&self) -> &Token {
        // `lex` always ends with Eof or Error and `bump` never moves past it.
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn kind(&self) -> TokenKind {
        self.peek().kind
    }

    fn kind2(&self) -> TokenKind {
        self.toks[(self.i + 1).min(self.toks.len() - 1)].kind
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        self.prev_end = t.end;
        t
    }

    fn text(&self, t: &Token) -> &'a str {
        t.text(self.input)
    }

    fn err(&self, pos: PosRange, msg: impl Into<String>) -> ParseErr {
        ParseErr {
            pos,
            msg: msg.into(),
            query: self.input.to_string(),
        }
    }

    /// "unexpected <token>[ in <context>][, expected <expected>]" for the current token; a
    /// lexer error is reported as itself.
    fn unexpected(&self, context: &str, expected: &str) -> ParseErr {
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

    fn expect(&mut self, kind: TokenKind, ctx: (&str, &str)) -> PResult<Token> {
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
        let mut lhs = self.parse_unary()?;
        while let Some(op) = binary_op(self.kind()) {
            let prec = op.precedence();
            if prec < min_prec {
                break;
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
    fn parse_grouping_labels(&mut self) -> PResult<(Vec<String>, usize)> {
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
    fn parse_number_or_duration_value(&mut self, ctx: (&str, &str)) -> PResult<f64> {
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

    // ---- postfix modifiers: [range], [range:step], offset, @, anchored, smoothed ----

    fn parse_postfix(&mut self, mut e: Expr) -> PResult<Expr> {
        loop {
            e = match self.kind() {
                TokenKind::LeftBracket => self.parse_range_or_subquery(e)?,
                TokenKind::Offset => {
                    self.bump();
                    let arg = self.parse_offset_arg()?;
                    self.apply_offset(e, arg)?
                }
                TokenKind::At => {
                    self.bump();
                    self.parse_at(e)?
                }
                TokenKind::Anchored | TokenKind::Smoothed => {
                    let anchored = self.bump().kind == TokenKind::Anchored;
                    self.apply_extended(e, anchored)?
                }
                _ => return Ok(e),
            };
        }
    }

    fn parse_range_or_subquery(&mut self, e: Expr) -> PResult<Expr> {
        let lb = self.bump();
        let rng = self.parse_positive_duration(RANGE_CTX)?;
        match self.kind() {
            TokenKind::RightBracket => {
                let rb = self.bump();
                let err_pos = PosRange::new(lb.start, rb.end);
                let vs = match e {
                    Expr::VectorSelector(vs) => vs,
                    _ => return Err(self.err(err_pos, "ranges only allowed for vector selectors")),
                };
                if vs.original_offset != 0 || vs.original_offset_expr.is_some() {
                    return Err(self.err(err_pos, "no offset modifiers allowed before range"));
                }
                if vs.timestamp.is_some() || vs.start_or_end.is_some() {
                    return Err(self.err(err_pos, "no @ modifiers allowed before range"));
                }
                let (range_ms, range_expr) = split_duration(rng);
                Ok(Expr::MatrixSelector(MatrixSelector {
                    vector_selector: vs,
                    range: range_ms,
                    range_expr,
                    end_pos: rb.end,
                }))
            }
            TokenKind::Colon => {
                self.bump();
                let step = if self.kind() == TokenKind::RightBracket {
                    None
                } else {
                    Some(self.parse_positive_duration(STEP_CTX)?)
                };
                let rb = self.expect(TokenKind::RightBracket, ("subquery selector", "\"]\""))?;
                let (range_ms, range_expr) = split_duration(rng);
                let (step_ms, step_expr) = step.map(split_duration).unwrap_or((0, None));
                Ok(Expr::Subquery(SubqueryExpr {
                    expr: Box::new(e),
                    range: range_ms,
                    range_expr,
                    step: step_ms,
                    step_expr,
                    original_offset: 0,
                    original_offset_expr: None,
                    offset: 0,
                    timestamp: None,
                    start_or_end: None,
                    end_pos: rb.start + 1,
                }))
            }
            _ => Err(self.unexpected("subquery or range", "\":\" or \"]\"")),
        }
    }

    fn apply_offset(&mut self, mut e: Expr, arg: Expr) -> PResult<Expr> {
        let end = self.prev_end;
        let epos = e.pos();
        let (ms, expr) = split_duration(arg);
        let (orig, orig_expr, end_ref) = match &mut e {
            Expr::VectorSelector(v) => (
                &mut v.original_offset,
                &mut v.original_offset_expr,
                &mut v.pos.end,
            ),
            Expr::MatrixSelector(m) => (
                &mut m.vector_selector.original_offset,
                &mut m.vector_selector.original_offset_expr,
                &mut m.end_pos,
            ),
            Expr::Subquery(s) => (
                &mut s.original_offset,
                &mut s.original_offset_expr,
                &mut s.end_pos,
            ),
            _ => {
                return Err(self.err(
                    epos,
                    "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                ))
            }
        };
        if *orig != 0 || orig_expr.is_some() {
            return Err(self.err(epos, "offset may not be set multiple times"));
        }
        *orig = ms;
        *orig_expr = expr;
        *end_ref = end;
        Ok(e)
    }

    fn parse_at(&mut self, mut e: Expr) -> PResult<Expr> {
        const CTX: (&str, &str) = ("@", "timestamp");
        let mut ts: Option<f64> = None;
        let mut preproc = None;
        match self.kind() {
            TokenKind::Add | TokenKind::Sub => {
                let neg = self.bump().kind == TokenKind::Sub;
                let v = self.parse_number_or_duration_value(CTX)?;
                ts = Some(if neg { -v } else { v });
            }
            TokenKind::Number | TokenKind::Duration => {
                ts = Some(self.parse_number_or_duration_value(CTX)?);
            }
            TokenKind::Start | TokenKind::End => {
                let k = self.bump().kind;
                self.expect(TokenKind::LeftParen, CTX)?;
                self.expect(TokenKind::RightParen, CTX)?;
                preproc = Some(if k == TokenKind::Start {
                    AtModifier::Start
                } else {
                    AtModifier::End
                });
            }
            _ => return Err(self.unexpected(CTX.0, CTX.1)),
        }
        let epos = e.pos();
        if let Some(t) = ts {
            if !t.is_finite() || t >= MAX_AT_SECONDS || t <= -MAX_AT_SECONDS {
                return Err(self.err(
                    epos,
                    format!("timestamp out of bounds for @ modifier: {}", go_fmt_f(t)),
                ));
            }
        }
        let end = self.prev_end;
        let (tsp, pp, end_ref) = match &mut e {
            Expr::VectorSelector(v) => (&mut v.timestamp, &mut v.start_or_end, &mut v.pos.end),
            Expr::MatrixSelector(m) => (
                &mut m.vector_selector.timestamp,
                &mut m.vector_selector.start_or_end,
                &mut m.end_pos,
            ),
            Expr::Subquery(s) => (&mut s.timestamp, &mut s.start_or_end, &mut s.end_pos),
            _ => {
                return Err(self.err(
                    epos,
                    "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                ))
            }
        };
        if tsp.is_some() || pp.is_some() {
            return Err(self.err(epos, "@ <timestamp> may not be set multiple times"));
        }
        if let Some(t) = ts {
            *tsp = Some((t * MILLIS_PER_SECOND).round() as i64);
        }
        *pp = preproc;
        *end_ref = end;
        Ok(e)
    }

    fn apply_extended(&mut self, mut e: Expr, anchored: bool) -> PResult<Expr> {
        let name = if anchored { "anchored" } else { "smoothed" };
        let epos = e.pos();
        if !self.opts.enable_extended_range_selectors {
            return Err(self.err(
                epos,
                format!("{name} modifier is experimental and not enabled"),
            ));
        }
        let vs = match &mut e {
            Expr::VectorSelector(v) => v.as_mut(),
            Expr::MatrixSelector(m) => m.vector_selector.as_mut(),
            Expr::Subquery(_) => {
                return Err(self.err(
                    epos,
                    format!("{name} modifier is not supported for subqueries"),
                ))
            }
            _ => return Err(self.err(epos, format!("{name} modifier not implemented"))),
        };
        if anchored {
            vs.anchored = true;
        } else {
            vs.smoothed = true;
        }
        if vs.anchored && vs.smoothed {
            return Err(self.err(
                epos,
                "anchored and smoothed modifiers cannot be used together",
            ));
        }
        Ok(e)
    }

    // ---- duration expressions ----

    fn parse_positive_duration(&mut self, ctx: (&str, &str)) -> PResult<Expr> {
        let d = self.parse_duration_expr(0, ctx)?;
        if let Expr::NumberLiteral(n) = &d {
            if n.val <= 0.0 {
                return Err(self.err(n.pos, "duration must be greater than 0"));
            }
        }
        Ok(d)
    }

    fn experimental_duration(&self, e: &Expr) -> PResult<()> {
        if self.opts.enable_duration_expressions {
            Ok(())
        } else {
            Err(self.err(e.pos(), "experimental duration expression is not enabled"))
        }
    }

    fn parse_duration_expr(&mut self, min_prec: u8, ctx: (&str, &str)) -> PResult<Expr> {
        let mut lhs = self.parse_duration_unary(ctx)?;
        loop {
            let (op, prec) = match self.kind() {
                TokenKind::Add => (DurationOp::Add, 4),
                TokenKind::Sub => (DurationOp::Sub, 4),
                TokenKind::Mul => (DurationOp::Mul, 5),
                TokenKind::Div => (DurationOp::Div, 5),
                TokenKind::Mod => (DurationOp::Mod, 5),
                TokenKind::Pow => (DurationOp::Pow, POW_PRECEDENCE),
                _ => break,
            };
            if prec < min_prec {
                break;
            }
            let op_tok = self.bump();
            let next = if op == DurationOp::Pow {
                prec
            } else {
                prec + 1
            };
            let rhs = self.parse_duration_expr(next, ctx)?;
            self.experimental_duration(&lhs)?;
            if let Expr::NumberLiteral(n) = &rhs {
                if n.val == 0.0 && op == DurationOp::Div {
                    return Err(self.err(range(&op_tok), "division by zero"));
                }
                if n.val == 0.0 && op == DurationOp::Mod {
                    return Err(self.err(range(&op_tok), "modulo by zero"));
                }
            }
            let pos = PosRange::new(lhs.pos().start, rhs.pos().end);
            lhs = Expr::Duration(DurationExpr {
                op,
                lhs: Some(Box::new(lhs)),
                rhs: Some(Box::new(rhs)),
                wrapped: false,
                start_pos: pos.start,
                end_pos: pos.end,
            });
        }
        Ok(lhs)
    }

    fn parse_duration_unary(&mut self, ctx: (&str, &str)) -> PResult<Expr> {
        if matches!(self.kind(), TokenKind::Add | TokenKind::Sub) {
            let op = self.bump();
            let operand = self.parse_duration_expr(POW_PRECEDENCE, ctx)?;
            return self.apply_duration_unary(&op, operand);
        }
        self.parse_duration_primary(ctx)
    }

    fn apply_duration_unary(&self, op: &Token, e: Expr) -> PResult<Expr> {
        let neg = op.kind == TokenKind::Sub;
        match e {
            Expr::Duration(de) if neg => {
                let end = de.pos().end;
                Ok(Expr::Duration(DurationExpr {
                    op: DurationOp::Sub,
                    lhs: None,
                    rhs: Some(Box::new(Expr::Duration(de))),
                    wrapped: false,
                    start_pos: op.start,
                    end_pos: end,
                }))
            }
            Expr::NumberLiteral(mut n) => {
                if neg {
                    n.val = -n.val;
                }
                if duration_out_of_range(n.val) {
                    return Err(self.err(range(op), "duration out of range"));
                }
                n.pos.start = op.start;
                Ok(Expr::NumberLiteral(n))
            }
            e => Ok(e),
        }
    }

    fn duration_literal(&mut self, ctx: (&str, &str)) -> PResult<NumberLiteral> {
        let duration = self.kind() == TokenKind::Duration;
        let start = self.peek().start;
        let val = self.parse_number_or_duration_value(ctx)?;
        Ok(NumberLiteral {
            val,
            duration,
            pos: PosRange::new(start, self.prev_end),
        })
    }

    fn parse_duration_primary(&mut self, ctx: (&str, &str)) -> PResult<Expr> {
        match self.kind() {
            TokenKind::Number | TokenKind::Duration => {
                let n = self.duration_literal(ctx)?;
                if duration_out_of_range(n.val) {
                    return Err(self.err(n.pos, "duration out of range"));
                }
                Ok(Expr::NumberLiteral(n))
            }
            TokenKind::Step | TokenKind::Range => {
                let t = self.bump();
                self.expect(TokenKind::LeftParen, ctx)?;
                let rp = self.expect(TokenKind::RightParen, ctx)?;
                let e = Expr::Duration(DurationExpr {
                    op: if t.kind == TokenKind::Step {
                        DurationOp::Step
                    } else {
                        DurationOp::Range
                    },
                    lhs: None,
                    rhs: None,
                    wrapped: false,
                    start_pos: t.start,
                    end_pos: rp.end,
                });
                self.experimental_duration(&e)?;
                Ok(e)
            }
            TokenKind::MaxOf | TokenKind::MinOf => {
                let t = self.bump();
                self.expect(TokenKind::LeftParen, ctx)?;
                let a = self.parse_duration_expr(0, ctx)?;
                self.expect(TokenKind::Comma, ctx)?;
                let b = self.parse_duration_expr(0, ctx)?;
                let rp = self.expect(TokenKind::RightParen, ctx)?;
                let e = Expr::Duration(DurationExpr {
                    op: if t.kind == TokenKind::MaxOf {
                        DurationOp::MaxOf
                    } else {
                        DurationOp::MinOf
                    },
                    lhs: Some(Box::new(a)),
                    rhs: Some(Box::new(b)),
                    wrapped: false,
                    start_pos: t.start,
                    end_pos: rp.end,
                });
                self.experimental_duration(&e)?;
                Ok(e)
            }
            TokenKind::LeftParen => {
                let (inner, lp, rp) = self.parse_paren_duration(ctx)?;
                self.experimental_duration(&inner)?;
                Ok(wrap_paren_duration(inner, lp, rp))
            }
            _ => Err(self.unexpected(ctx.0, ctx.1)),
        }
    }

    fn parse_paren_duration(&mut self, ctx: (&str, &str)) -> PResult<(Expr, usize, usize)> {
        let lp = self.bump();
        let inner = self.parse_duration_expr(0, ctx)?;
        let rp = self.expect(TokenKind::RightParen, ctx)?;
        Ok((inner, lp.start, rp.end))
    }

    /// The argument of `offset`: a signed literal, `step()`, `range()`, `min_of/max_of(..)`,
    /// or a parenthesised duration expression (which may continue with operators).
    fn parse_offset_arg(&mut self) -> PResult<Expr> {
        let sign = if matches!(self.kind(), TokenKind::Add | TokenKind::Sub) {
            Some(self.bump())
        } else {
            None
        };
        match (self.kind(), &sign) {
            (TokenKind::Number | TokenKind::Duration, _) => {
                let mut n = self.duration_literal(OFFSET_CTX)?;
                if let Some(s) = &sign {
                    if s.kind == TokenKind::Sub {
                        n.val = -n.val;
                    }
                    if duration_out_of_range(n.val) {
                        return Err(self.err(range(s), "duration out of range"));
                    }
                    n.pos.start = s.start;
                } else if duration_out_of_range(n.val) {
                    return Err(self.err(n.pos, "duration out of range"));
                }
                Ok(Expr::NumberLiteral(n))
            }
            (TokenKind::Step | TokenKind::Range | TokenKind::MaxOf | TokenKind::MinOf, _) => {
                let e = self.parse_duration_primary(OFFSET_CTX)?;
                match &sign {
                    None => Ok(e),
                    Some(s) => {
                        let end = e.pos().end;
                        let de = Expr::Duration(DurationExpr {
                            op: if s.kind == TokenKind::Sub {
                                DurationOp::Sub
                            } else {
                                DurationOp::Add
                            },
                            lhs: None,
                            rhs: Some(Box::new(e)),
                            wrapped: false,
                            start_pos: s.start,
                            end_pos: end,
                        });
                        self.experimental_duration(&de)?;
                        Ok(de)
                    }
                }
            }
            (TokenKind::LeftParen, Some(s)) => {
                let s = s.clone();
                let (inner, lp, rp) = self.parse_paren_duration(OFFSET_CTX)?;
                let wrapped = wrap_paren_duration(inner, lp, rp);
                self.apply_duration_unary(&s, wrapped)
            }
            (TokenKind::LeftParen, None) => self.parse_duration_expr(0, OFFSET_CTX),
            _ => Err(self.unexpected(OFFSET_CTX.0, OFFSET_CTX.1)),
        }
    }
}

fn wrap_paren_duration(e: Expr, start: usize, end: usize) -> Expr {
    match e {
        Expr::Duration(mut de) => {
            de.wrapped = true;
            Expr::Duration(de)
        }
        e => Expr::Duration(DurationExpr {
            op: DurationOp::Add,
            lhs: None,
            rhs: Some(Box::new(e)),
            wrapped: true,
            start_pos: start,
            end_pos: end,
        }),
    }
}

fn duration_out_of_range(v: f64) -> bool {
    !(-MAX_DURATION_SECONDS..=MAX_DURATION_SECONDS).contains(&v)
}

/// Splits a parsed duration into (milliseconds, expression) as stored in the AST.
fn split_duration(e: Expr) -> (i64, Option<Box<DurationExpr>>) {
    match e {
        Expr::NumberLiteral(n) => (seconds_to_millis(n.val), None),
        Expr::Duration(d) => (0, Some(Box::new(d))),
        _ => (0, None),
    }
}

/// Seconds to milliseconds the way Prometheus does: round to nanoseconds, then truncate.
pub fn seconds_to_millis(v: f64) -> i64 {
    let ns = (v * NANOS_PER_SECOND).round() as i128;
    (ns / NANOS_PER_MILLI) as i64
}

fn range(t: &Token) -> PosRange {
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
fn go_fmt_f(v: f64) -> String {
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
