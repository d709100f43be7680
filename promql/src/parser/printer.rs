//! Printing of the AST back to PromQL text, matching Prometheus' `String()` output so that
//! printing and re-parsing round-trips (`sum by (job) (rate(x[5m]))`, durations as `1h30m`,
//! Go-quoted strings, `@ 123.000`), plus a multi-line `prettify`. Owns formatting only; it
//! never changes the tree.

use std::fmt::{self, Display, Formatter, Write};

use vigil_storage::labels::write_go_quoted;
use vigil_storage::Matcher;

use super::ast::*;
use super::duration::format_duration;
use super::quote::write_label_name;

const NANOS_PER_SECOND: f64 = 1e9;
const NANOS_PER_MILLI: i128 = 1_000_000;
const MILLIS_PER_SECOND: f64 = 1000.0;
/// Go's `%v` for floats switches to exponent form from this decimal exponent on.
const GO_V_EXPONENT_MAX: i32 = 21;
/// ... and below this one.
const GO_V_EXPONENT_MIN: i32 = -4;

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

/// Go's `%v` for a float64 (shortest, exponent form for very large or small magnitudes).
pub fn format_float_v(v: f64) -> String {
    if !v.is_finite() || v == 0.0 {
        return format_float(v);
    }
    let exp = v.abs().log10().floor() as i32;
    if !(GO_V_EXPONENT_MIN..GO_V_EXPONENT_MAX).contains(&exp) {
        let s = format!("{v:e}");
        if let Some((m, e)) = s.split_once('e') {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            return format!("{m}e{sign}{digits:0>2}");
        }
        return s;
    }
    format_float(v)
}

/// Seconds to a duration string the way `model.Duration(v*1e9).String()` does.
fn seconds_duration_string(v: f64) -> String {
    let ns = (v * NANOS_PER_SECOND) as i128;
    format_duration((ns / NANOS_PER_MILLI) as i64)
}

fn write_labels(f: &mut impl Write, labels: &[String]) -> fmt::Result {
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_label_name(f, l)?;
    }
    Ok(())
}

fn matcher_string(m: &Matcher) -> String {
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write_label_name(&mut s, &m.name);
    s.push_str(m.match_type.as_str());
    let _ = write_go_quoted(&mut s, &m.value);
    s
}

fn write_at(f: &mut Formatter<'_>, ts: Option<i64>, se: Option<AtModifier>) -> fmt::Result {
    match (ts, se) {
        (Some(t), _) => write!(f, " @ {:.3}", t as f64 / MILLIS_PER_SECOND),
        (None, Some(AtModifier::Start)) => f.write_str(" @ start()"),
        (None, Some(AtModifier::End)) => f.write_str(" @ end()"),
        (None, None) => Ok(()),
    }
}

fn write_offset(f: &mut Formatter<'_>, ms: i64, expr: &Option<Box<DurationExpr>>) -> fmt::Result {
    match expr {
        Some(e) => write!(f, " offset {e}"),
        None if ms > 0 => write!(f, " offset {}", format_duration(ms)),
        None if ms < 0 => write!(f, " offset -{}", format_duration(-ms)),
        None => Ok(()),
    }
}

fn write_range(f: &mut Formatter<'_>, ms: i64, expr: &Option<Box<DurationExpr>>) -> fmt::Result {
    match expr {
        Some(e) => write!(f, "{e}"),
        None => f.write_str(&format_duration(ms)),
    }
}

impl VectorSelector {
    /// The selector without `@`, offset and range modifiers.
    fn write_bare(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self
            .matchers
            .iter()
            .filter(|m| {
                !(m.name == "__name__"
                    && m.match_type == vigil_storage::MatchType::Equal
                    && m.value == self.name
                    && !m.value.is_empty())
            })
            .map(matcher_string)
            .collect();
        f.write_str(&self.name)?;
        if !parts.is_empty() {
            parts.sort();
            write!(f, "{{{}}}", parts.join(","))?;
        }
        Ok(())
    }
}

impl Display for VectorSelector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.write_bare(f)?;
        write_at(f, self.timestamp, self.start_or_end)?;
        if self.anchored {
            f.write_str(" anchored")?;
        } else if self.smoothed {
            f.write_str(" smoothed")?;
        }
        write_offset(f, self.original_offset, &self.original_offset_expr)
    }
}

impl Display for MatrixSelector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let vs = &self.vector_selector;
        vs.write_bare(f)?;
        f.write_char('[')?;
        write_range(f, self.range, &self.range_expr)?;
        f.write_char(']')?;
        if vs.anchored {
            f.write_str(" anchored")?;
        } else if vs.smoothed {
            f.write_str(" smoothed")?;
        }
        write_at(f, vs.timestamp, vs.start_or_end)?;
        write_offset(f, vs.original_offset, &vs.original_offset_expr)
    }
}

impl Display for SubqueryExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.expr)?;
        write_range(f, self.range, &self.range_expr)?;
        f.write_char(':')?;
        if self.step != 0 {
            f.write_str(&format_duration(self.step))?;
        } else if let Some(e) = &self.step_expr {
            write!(f, "{e}")?;
        }
        f.write_char(']')?;
        write_at(f, self.timestamp, self.start_or_end)?;
        write_offset(f, self.original_offset, &self.original_offset_expr)
    }
}

impl Display for DurationExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.wrapped {
            f.write_char('(')?;
        }
        match (self.op, &self.lhs, &self.rhs) {
            (DurationOp::Step, _, _) => f.write_str("step()")?,
            (DurationOp::Range, _, _) => f.write_str("range()")?,
            (DurationOp::MinOf | DurationOp::MaxOf, Some(l), Some(r)) => {
                write!(f, "{}({l}, {r})", self.op.as_str())?
            }
            (DurationOp::Sub, None, Some(r)) => write!(f, "-{r}")?,
            (_, None, Some(r)) => write!(f, "{r}")?,
            (op, Some(l), Some(r)) => write!(f, "{l} {} {r}", op.as_str())?,
            _ => {}
        }
        if self.wrapped {
            f.write_char(')')?;
        }
        Ok(())
    }
}

impl Display for BinaryExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.lhs, self.op.as_str())?;
        if self.return_bool {
            f.write_str(" bool")?;
        }
        if let Some(vm) = &self.matching {
            let grouped = matches!(
                vm.card,
                VectorMatchCardinality::ManyToOne | VectorMatchCardinality::OneToMany
            );
            if !vm.matching_labels.is_empty() || vm.on || grouped {
                f.write_str(if vm.on { " on (" } else { " ignoring (" })?;
                write_labels(f, &vm.matching_labels)?;
                f.write_char(')')?;
            }
            if grouped {
                f.write_str(if vm.card == VectorMatchCardinality::ManyToOne {
                    " group_left ("
                } else {
                    " group_right ("
                })?;
                write_labels(f, &vm.include)?;
                f.write_char(')')?;
            }
            match (vm.fill_values.lhs, vm.fill_values.rhs) {
                (Some(l), Some(r)) if l == r => write!(f, " fill ({})", format_float_v(l))?,
                (l, r) => {
                    if let Some(l) = l {
                        write!(f, " fill_left ({})", format_float_v(l))?;
                    }
                    if let Some(r) = r {
                        write!(f, " fill_right ({})", format_float_v(r))?;
                    }
                }
            }
        }
        write!(f, " {}", self.rhs)
    }
}

impl AggregateExpr {
    /// `sum by (job) ` — the operator and grouping without arguments.
    pub fn write_op(&self, f: &mut impl Write) -> fmt::Result {
        f.write_str(self.op.as_str())?;
        if self.without {
            f.write_str(" without (")?;
            write_labels(f, &self.grouping)?;
            f.write_str(") ")?;
        } else if !self.grouping.is_empty() {
            f.write_str(" by (")?;
            write_labels(f, &self.grouping)?;
            f.write_str(") ")?;
        }
        Ok(())
    }
}

impl Display for AggregateExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.write_op(f)?;
        f.write_char('(')?;
        if let Some(p) = &self.param {
            write!(f, "{p}, ")?;
        }
        write!(f, "{})", self.expr)
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::NumberLiteral(n) => {
                if n.duration {
                    if n.val < 0.0 {
                        write!(f, "-{}", seconds_duration_string(-n.val))
                    } else {
                        f.write_str(&seconds_duration_string(n.val))
                    }
                } else {
                    f.write_str(&format_float(n.val))
                }
            }
            Expr::StringLiteral(s) => {
                // Go would print U+FFFD raw, which its own lexer then rejects; escaping it
                // keeps print → parse round-trips working.
                let mut q = String::with_capacity(s.val.len() + 2);
                write_go_quoted(&mut q, &s.val)?;
                f.write_str(&q.replace('\u{FFFD}', "\\ufffd"))
            }
            Expr::VectorSelector(v) => v.fmt(f),
            Expr::MatrixSelector(m) => m.fmt(f),
            Expr::Subquery(s) => s.fmt(f),
            Expr::Call(c) => {
                write!(f, "{}(", c.func.name)?;
                for (i, a) in c.args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_char(')')
            }
            Expr::Aggregate(a) => a.fmt(f),
            Expr::Binary(b) => b.fmt(f),
            Expr::Unary(u) => write!(f, "{}{}", u.op.as_str(), u.expr),
            Expr::Paren(p) => write!(f, "({})", p.expr),
            Expr::StepInvariant(s) => s.expr.fmt(f),
            Expr::Duration(d) => d.fmt(f),
        }
    }
}

/// Longest single line `prettify` keeps before splitting a node over several lines.
const MAX_LINE_CHARS: usize = 100;
const INDENT: &str = "  ";

/// Formats an expression over several indented lines when it is longer than 100
/// characters, in the spirit of Prometheus' `Pretty` (`promtool promql format`).
pub fn prettify(e: &Expr) -> String {
    let mut out = String::new();
    pretty(e, 0, &mut out);
    out
}

fn pretty(e: &Expr, level: usize, out: &mut String) {
    let ind = INDENT.repeat(level);
    let flat = e.to_string();
    if flat.len() + ind.len() <= MAX_LINE_CHARS {
        out.push_str(&ind);
        out.push_str(&flat);
        return;
    }
    match e {
        Expr::Aggregate(a) => {
            out.push_str(&ind);
            let mut op = String::new();
            let _ = a.write_op(&mut op);
            out.push_str(op.trim_end());
            if a.without || !a.grouping.is_empty() {
                out.push(' ');
            }
            out.push_str("(\n");
            if let Some(p) = &a.param {
                pretty(p, level + 1, out);
                out.push_str(",\n");
            }
            pretty(&a.expr, level + 1, out);
            out.push('\n');
            out.push_str(&ind);
            out.push(')');
        }
        Expr::Binary(b) => {
            pretty(&b.lhs, level + 1, out);
            out.push('\n');
            out.push_str(&ind);
            let s = BinaryExpr {
                op: b.op,
                lhs: Box::new(Expr::NumberLiteral(NumberLiteral {
                    val: 0.0,
                    duration: false,
                    pos: PosRange::default(),
                })),
                rhs: Box::new(Expr::NumberLiteral(NumberLiteral {
                    val: 0.0,
                    duration: false,
                    pos: PosRange::default(),
                })),
                matching: b.matching.clone(),
                return_bool: b.return_bool,
            }
            .to_string();
            // "0 <op modifiers> 0" → "<op modifiers>"
            out.push_str(s.trim_start_matches("0 ").trim_end_matches(" 0"));
            out.push('\n');
            pretty(&b.rhs, level + 1, out);
        }
        Expr::Call(c) if !c.args.is_empty() => {
            out.push_str(&ind);
            out.push_str(c.func.name);
            out.push_str("(\n");
            for (i, a) in c.args.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                pretty(a, level + 1, out);
            }
            out.push('\n');
            out.push_str(&ind);
            out.push(')');
        }
        Expr::Paren(p) => {
            out.push_str(&ind);
            out.push_str("(\n");
            pretty(&p.expr, level + 1, out);
            out.push('\n');
            out.push_str(&ind);
            out.push(')');
        }
        _ => {
            out.push_str(&ind);
            out.push_str(&flat);
        }
    }
}
