//! Parsing of what may follow an expression — `[range]`, `[range:step]`, `offset`, `@`,
//! `anchored`, `smoothed` — and of duration expressions (`5m+step()`, `min_of(..)`), with
//! Prometheus' error texts and feature checks. Part of the parser; it never type-checks.

use super::ast::*;
use super::parse::{go_fmt_f, range, PResult, Parser, MILLIS_PER_SECOND, POW_PRECEDENCE};
use super::token::{Token, TokenKind};

/// Durations are `time.Duration` in Prometheus: at most 2^63 nanoseconds.
const MAX_DURATION_SECONDS: f64 = (1u64 << 63) as f64 / 1e9;
const NANOS_PER_SECOND: f64 = 1e9;
const NANOS_PER_MILLI: i128 = 1_000_000;
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

impl Parser<'_> {
    // ---- postfix modifiers: [range], [range:step], offset, @, anchored, smoothed ----

    pub(super) fn parse_postfix(&mut self, mut e: Expr) -> PResult<Expr> {
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
