//! Evaluation-time preparation of a parsed query, like Prometheus' `PreprocessExpr`:
//! resolves duration expressions (`[5m+step()]`, `offset -min_of(..)`) for a given step and
//! range, pins `@ start()`/`@ end()` to timestamps, and wraps step-invariant subtrees in
//! `StepInvariantExpr` so the engine evaluates them once. It never reads storage.

use super::ast::*;
use crate::functions::FunctionId;

const MILLIS_PER_SECOND: f64 = 1000.0;
/// Durations are limited to what fits in int64 nanoseconds.
const MAX_DURATION_SECONDS: f64 = (1u64 << 63) as f64 / 1e9;

impl DurationExpr {
    /// Evaluates to seconds, given the query step and range in milliseconds.
    pub fn evaluate(&self, step_ms: i64, range_ms: i64) -> Result<f64, String> {
        let eval = |e: &Option<Box<Expr>>| -> Result<f64, String> {
            match e.as_deref() {
                None => Ok(0.0),
                Some(e) => eval_duration_operand(e, step_ms, range_ms),
            }
        };
        let lhs = eval(&self.lhs)?;
        let rhs = eval(&self.rhs)?;
        let pos = self.pos();
        Ok(match self.op {
            DurationOp::Step => step_ms as f64 / MILLIS_PER_SECOND,
            DurationOp::Range => range_ms as f64 / MILLIS_PER_SECOND,
            DurationOp::MinOf => lhs.min(rhs),
            DurationOp::MaxOf => lhs.max(rhs),
            DurationOp::Add if self.lhs.is_none() => rhs,
            DurationOp::Add => lhs + rhs,
            DurationOp::Sub if self.lhs.is_none() => -rhs,
            DurationOp::Sub => lhs - rhs,
            DurationOp::Mul => lhs * rhs,
            DurationOp::Div => {
                if rhs == 0.0 {
                    return Err(format!("{}:{}: division by zero", pos.start, pos.end));
                }
                lhs / rhs
            }
            DurationOp::Mod => {
                if rhs == 0.0 {
                    return Err(format!("{}:{}: modulo by zero", pos.start, pos.end));
                }
                lhs % rhs
            }
            DurationOp::Pow => lhs.powf(rhs),
        })
    }

    /// Evaluates to milliseconds with Prometheus' checks (finite, in range, and positive
    /// unless `allow_negative`, as for offsets).
    pub fn evaluate_millis(
        &self,
        step_ms: i64,
        range_ms: i64,
        allow_negative: bool,
    ) -> Result<i64, String> {
        let d = self.evaluate(step_ms, range_ms)?;
        let pos = self.pos();
        if !d.is_finite() {
            return Err(format!(
                "{}:{}: duration is NaN or infinite",
                pos.start, pos.end
            ));
        }
        if d <= 0.0 && !allow_negative {
            return Err(format!(
                "{}:{}: duration must be greater than 0",
                pos.start, pos.end
            ));
        }
        if !(-MAX_DURATION_SECONDS..=MAX_DURATION_SECONDS).contains(&d) {
            return Err(format!(
                "{}:{}: duration is out of range",
                pos.start, pos.end
            ));
        }
        Ok((d * MILLIS_PER_SECOND) as i64)
    }
}

fn eval_duration_operand(e: &Expr, step_ms: i64, range_ms: i64) -> Result<f64, String> {
    match e {
        Expr::NumberLiteral(n) => Ok(n.val),
        Expr::Duration(d) => d.evaluate(step_ms, range_ms),
        Expr::Paren(p) => eval_duration_operand(&p.expr, step_ms, range_ms),
        other => Err(format!("unexpected duration expression type {other:?}")),
    }
}

/// Fills the millisecond fields of every range, step and offset written as a duration
/// expression.
pub fn resolve_duration_exprs(e: &mut Expr, step_ms: i64, range_ms: i64) -> Result<(), String> {
    match e {
        Expr::VectorSelector(v) => resolve_offset(v, step_ms, range_ms)?,
        Expr::MatrixSelector(m) => {
            resolve_offset(&mut m.vector_selector, step_ms, range_ms)?;
            if let Some(r) = &m.range_expr {
                m.range = r.evaluate_millis(step_ms, range_ms, false)?;
            }
        }
        Expr::Subquery(s) => {
            if let Some(o) = &s.original_offset_expr {
                s.original_offset = o.evaluate_millis(step_ms, range_ms, true)?;
            }
            if let Some(st) = &s.step_expr {
                s.step = st.evaluate_millis(step_ms, range_ms, false)?;
            }
            if let Some(r) = &s.range_expr {
                s.range = r.evaluate_millis(step_ms, range_ms, false)?;
            }
        }
        _ => {}
    }
    for c in children_mut(e) {
        resolve_duration_exprs(c, step_ms, range_ms)?;
    }
    Ok(())
}

fn resolve_offset(v: &mut VectorSelector, step_ms: i64, range_ms: i64) -> Result<(), String> {
    if let Some(o) = &v.original_offset_expr {
        v.original_offset = o.evaluate_millis(step_ms, range_ms, true)?;
    }
    Ok(())
}

/// Mutable children, in the same order as [`Expr::children`].
pub fn children_mut(e: &mut Expr) -> Vec<&mut Expr> {
    match e {
        Expr::Aggregate(a) => {
            let mut v = vec![a.expr.as_mut()];
            if let Some(p) = a.param.as_deref_mut() {
                v.push(p);
            }
            v
        }
        Expr::Binary(b) => vec![b.lhs.as_mut(), b.rhs.as_mut()],
        Expr::Call(c) => c.args.iter_mut().collect(),
        Expr::Subquery(s) => vec![s.expr.as_mut()],
        Expr::Paren(p) => vec![p.expr.as_mut()],
        Expr::Unary(u) => vec![u.expr.as_mut()],
        Expr::StepInvariant(s) => vec![s.expr.as_mut()],
        _ => Vec::new(),
    }
}

/// Functions whose result depends on the evaluation time even when their inputs are pinned
/// with `@` (Prometheus' `AtModifierUnsafeFunctions`).
pub fn is_at_modifier_unsafe(id: FunctionId) -> bool {
    use FunctionId::*;
    matches!(
        id,
        DaysInMonth
            | DayOfMonth
            | DayOfWeek
            | DayOfYear
            | End
            | Hour
            | Minute
            | Month
            | Year
            | PredictLinear
            | Range
            | Start
            | Step
            | Time
            | Timestamp
    )
}

/// Prepares `expr` for evaluation over `[start_ms, end_ms]` with `step_ms`: resolves duration
/// expressions, pins `@ start()`/`@ end()`, and wraps step-invariant subtrees.
pub fn preprocess_expr(
    mut expr: Expr,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Result<Expr, String> {
    resolve_duration_exprs(&mut expr, step_ms, end_ms - start_ms)?;
    let (_, wrap) = step_invariant(&mut expr, start_ms, end_ms);
    Ok(if wrap { wrap_invariant(expr) } else { expr })
}

fn wrap_invariant(e: Expr) -> Expr {
    Expr::StepInvariant(StepInvariantExpr { expr: Box::new(e) })
}

fn wrap_in_place(e: &mut Expr) {
    let inner = std::mem::replace(
        e,
        Expr::NumberLiteral(NumberLiteral {
            val: 0.0,
            duration: false,
            pos: PosRange::default(),
        }),
    );
    *e = wrap_invariant(inner);
}

fn unwrap_paren_in_place(e: &mut Expr) {
    while let Expr::Paren(p) = e {
        let inner = std::mem::replace(
            p.expr.as_mut(),
            Expr::NumberLiteral(NumberLiteral {
                val: 0.0,
                duration: false,
                pos: PosRange::default(),
            }),
        );
        *e = inner;
    }
}

fn pin(ts: &mut Option<i64>, se: Option<AtModifier>, start_ms: i64, end_ms: i64) {
    match se {
        Some(AtModifier::Start) => *ts = Some(start_ms),
        Some(AtModifier::End) => *ts = Some(end_ms),
        None => {}
    }
}

/// Returns (is step invariant, should be wrapped by the caller).
fn step_invariant(e: &mut Expr, start_ms: i64, end_ms: i64) -> (bool, bool) {
    match e {
        Expr::VectorSelector(v) => {
            pin(&mut v.timestamp, v.start_or_end, start_ms, end_ms);
            let t = v.timestamp.is_some();
            (t, t)
        }
        Expr::Aggregate(a) => {
            unwrap_paren_in_place(&mut a.expr);
            if let Some(p) = a.param.as_deref_mut() {
                unwrap_paren_in_place(p);
            }
            step_invariant(&mut a.expr, start_ms, end_ms)
        }
        Expr::Binary(b) => {
            let (li, lw) = step_invariant(&mut b.lhs, start_ms, end_ms);
            let (ri, rw) = step_invariant(&mut b.rhs, start_ms, end_ms);
            if li && ri {
                return (true, true);
            }
            if lw {
                wrap_in_place(&mut b.lhs);
            }
            if rw {
                wrap_in_place(&mut b.rhs);
            }
            (false, false)
        }
        Expr::Call(c) => {
            let mut invariant = !is_at_modifier_unsafe(c.func.id);
            let mut timestamp_safe = c.func.id == FunctionId::Timestamp;
            let mut wraps = Vec::with_capacity(c.args.len());
            for a in c.args.iter_mut() {
                unwrap_paren_in_place(a);
                let (ai, aw) = step_invariant(a, start_ms, end_ms);
                wraps.push(aw);
                invariant &= ai;
                if !ai || !matches!(a, Expr::VectorSelector(_)) {
                    timestamp_safe = false;
                }
            }
            if invariant || timestamp_safe {
                return (true, true);
            }
            for (a, w) in c.args.iter_mut().zip(wraps) {
                if w {
                    wrap_in_place(a);
                }
            }
            (false, false)
        }
        Expr::MatrixSelector(m) => {
            let vs = m.vector_selector.as_mut();
            pin(&mut vs.timestamp, vs.start_or_end, start_ms, end_ms);
            (vs.timestamp.is_some(), false)
        }
        Expr::Subquery(s) => {
            let (inner, _) = step_invariant(&mut s.expr, start_ms, end_ms);
            if inner {
                wrap_in_place(&mut s.expr);
            }
            pin(&mut s.timestamp, s.start_or_end, start_ms, end_ms);
            (s.timestamp.is_some(), false)
        }
        Expr::Paren(p) => step_invariant(&mut p.expr, start_ms, end_ms),
        Expr::Unary(u) => step_invariant(&mut u.expr, start_ms, end_ms),
        Expr::StringLiteral(_) | Expr::NumberLiteral(_) => (true, false),
        Expr::StepInvariant(_) => (true, false),
        Expr::Duration(_) => (true, false),
    }
}
