//! The PromQL type checker, Prometheus' `checkAST`: argument counts and types, operand types
//! of binary and unary operators, aggregation parameters, vector matching rules and selector
//! sanity, each with Prometheus' exact error text and position. It normalises vector
//! matching (set operators become many-to-many; scalar operands drop matching) and never
//! changes what a query means.

use super::ast::*;
use super::lexer::is_space;
use super::quote::go_quote_str;
use super::ParseErr;
use crate::functions::FunctionId;

/// Type-checks `expr` in place, returning every error found (empty when valid).
pub fn check_ast(expr: &mut Expr, input: &str) -> Vec<ParseErr> {
    let mut c = Checker {
        input,
        errors: Vec::new(),
    };
    c.check(expr);
    c.errors
}

struct Checker<'a> {
    input: &'a str,
    errors: Vec<ParseErr>,
}

impl Checker<'_> {
    fn add(&mut self, pos: PosRange, msg: impl Into<String>) {
        self.errors.push(ParseErr {
            pos,
            msg: msg.into(),
            query: self.input.to_string(),
        });
    }

    fn expect_type(&mut self, e: &mut Expr, want: ValueType, context: &str) {
        let t = self.check(e);
        if t != want {
            self.add(
                e.pos(),
                format!(
                    "expected type {} in {context}, got {}",
                    want.documented(),
                    t.documented()
                ),
            );
        }
    }

    /// The span of a binary operator between its operands, spaces trimmed.
    fn op_range(&self, lhs: PosRange, rhs: PosRange) -> PosRange {
        let b = self.input.as_bytes();
        let mut start = lhs.end;
        while start < b.len() && is_space(b[start] as char) {
            start += 1;
        }
        let mut end = rhs.start.saturating_sub(1);
        while end > start && end < b.len() && is_space(b[end] as char) {
            end -= 1;
        }
        PosRange::new(start, end.max(start))
    }

    fn check(&mut self, e: &mut Expr) -> ValueType {
        let typ = e.value_type();
        let pos = e.pos();
        match e {
            Expr::Aggregate(a) => {
                self.expect_type(&mut a.expr, ValueType::Vector, "aggregation expression");
                if let Some(p) = a.param.as_deref_mut() {
                    match a.op {
                        AggregateOp::Topk
                        | AggregateOp::Bottomk
                        | AggregateOp::Quantile
                        | AggregateOp::Limitk
                        | AggregateOp::LimitRatio => {
                            self.expect_type(p, ValueType::Scalar, "aggregation parameter")
                        }
                        AggregateOp::CountValues => {
                            self.expect_type(p, ValueType::String, "aggregation parameter")
                        }
                        _ => {}
                    }
                }
            }
            Expr::Binary(b) => self.check_binary(b, pos),
            Expr::Call(c) => self.check_call(c),
            Expr::Paren(p) => {
                self.check(&mut p.expr);
            }
            Expr::StepInvariant(s) => {
                self.check(&mut s.expr);
            }
            Expr::Unary(u) => {
                let t = self.check(&mut u.expr);
                if t != ValueType::Scalar && t != ValueType::Vector {
                    self.add(
                        pos,
                        format!(
                            "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                            go_quote_str(t.documented())
                        ),
                    );
                }
            }
            Expr::Subquery(s) => {
                let t = self.check(&mut s.expr);
                if t != ValueType::Vector {
                    self.add(
                        pos,
                        format!(
                            "subquery is only allowed on instant vector, got {} instead",
                            t.as_str()
                        ),
                    );
                }
            }
            Expr::MatrixSelector(m) => self.check_selector(&m.vector_selector),
            Expr::VectorSelector(v) => self.check_selector(v),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Duration(_) => {}
        }
        typ
    }

    fn check_selector(&mut self, v: &VectorSelector) {
        if !v.name.is_empty() {
            let n = v.matchers.len().saturating_sub(1);
            for m in &v.matchers[..n] {
                if m.name == "__name__" {
                    self.add(
                        v.pos,
                        format!(
                            "metric name must not be set twice: {} or {}",
                            go_quote_str(&v.name),
                            go_quote_str(&m.value)
                        ),
                    );
                }
            }
            return;
        }
        if !v.bypass_empty_matcher_check && v.matchers.iter().all(|m| m.matches_empty()) {
            self.add(
                v.pos,
                "vector selector must contain at least one non-empty matcher",
            );
        }
    }

    fn check_binary(&mut self, b: &mut BinaryExpr, pos: PosRange) {
        let lt = self.check(&mut b.lhs);
        let rt = self.check(&mut b.rhs);
        let op_range = self.op_range(b.lhs.pos(), b.rhs.pos());
        if b.return_bool && !b.op.is_comparison() {
            self.add(
                op_range,
                "bool modifier can only be used on comparison operators",
            );
        }
        if b.op.is_comparison()
            && !b.return_bool
            && lt == ValueType::Scalar
            && rt == ValueType::Scalar
        {
            self.add(
                op_range,
                "comparisons between scalars must use BOOL modifier",
            );
        }
        let op_q = go_quote_str(b.op.as_str());
        if let Some(vm) = b.matching.as_mut() {
            if b.op.is_set_operator() && vm.card == VectorMatchCardinality::OneToOne {
                vm.card = VectorMatchCardinality::ManyToMany;
            }
            if vm.on {
                let dup: Vec<String> = vm
                    .matching_labels
                    .iter()
                    .filter(|l| vm.include.contains(l))
                    .cloned()
                    .collect();
                for l in dup {
                    self.add(
                        op_range,
                        format!(
                            "label {} must not occur in ON and GROUP clause at once",
                            go_quote_str(&l)
                        ),
                    );
                }
            }
        }
        let operand_ok = |t: ValueType| t == ValueType::Scalar || t == ValueType::Vector;
        if !operand_ok(lt) {
            self.add(
                b.lhs.pos(),
                "binary expression must contain only scalar and instant vector types",
            );
        }
        if !operand_ok(rt) {
            self.add(
                b.rhs.pos(),
                "binary expression must contain only scalar and instant vector types",
            );
        }
        let has_fill =
            |vm: &VectorMatching| vm.fill_values.lhs.is_some() || vm.fill_values.rhs.is_some();
        if (lt != ValueType::Vector || rt != ValueType::Vector) && b.matching.is_some() {
            if let Some(vm) = b.matching.take() {
                if !vm.matching_labels.is_empty() {
                    self.add(pos, "vector matching only allowed between instant vectors");
                }
                if has_fill(&vm) {
                    self.add(
                        pos,
                        "filling in missing series only allowed between instant vectors",
                    );
                }
            }
        } else if b.op.is_set_operator() {
            if let Some(vm) = b.matching.clone() {
                if matches!(
                    vm.card,
                    VectorMatchCardinality::OneToMany | VectorMatchCardinality::ManyToOne
                ) {
                    self.add(pos, format!("no grouping allowed for {op_q} operation"));
                }
                if vm.card != VectorMatchCardinality::ManyToMany {
                    self.add(pos, "set operations must always be many-to-many");
                }
                if has_fill(&vm) {
                    self.add(
                        pos,
                        "filling in missing series not allowed for set operators",
                    );
                }
            }
        }
        if (lt == ValueType::Scalar || rt == ValueType::Scalar) && b.op.is_set_operator() {
            self.add(
                pos,
                format!("set operator {op_q} not allowed in binary scalar expression"),
            );
        }
    }

    fn check_call(&mut self, c: &mut Call) {
        let f = c.func;
        let nargs = f.arg_types.len();
        let name_q = go_quote_str(f.name);
        let got = c.args.len();
        if f.variadic == 0 {
            if nargs != got {
                self.add(
                    c.pos,
                    format!("expected {nargs} argument(s) in call to {name_q}, got {got}"),
                );
            }
        } else {
            let na = nargs.saturating_sub(1);
            if na > got {
                self.add(
                    c.pos,
                    format!("expected at least {na} argument(s) in call to {name_q}, got {got}"),
                );
            } else if f.variadic > 0 && (na + f.variadic as usize) < got {
                self.add(
                    c.pos,
                    format!(
                        "expected at most {} argument(s) in call to {name_q}, got {got}",
                        na + f.variadic as usize
                    ),
                );
            }
        }
        if f.id == FunctionId::Info && got > 1 {
            let t = c.args[1].value_type();
            if t != ValueType::Vector {
                self.add(
                    c.pos,
                    format!(
                        "expected type {} in call to function {name_q}, got {}",
                        ValueType::Vector.documented(),
                        t.documented()
                    ),
                );
            }
            let apos = c.args[1].pos();
            match &mut c.args[1] {
                Expr::VectorSelector(v) if !v.name.is_empty() => self.add(
                    apos,
                    "expected label selectors only, got vector selector instead",
                ),
                Expr::VectorSelector(v) => v.bypass_empty_matcher_check = true,
                _ => self.add(apos, "expected label selectors only"),
            }
        }
        for (i, arg) in c.args.iter_mut().enumerate() {
            let Some(want) = f.arg_type(i) else {
                break;
            };
            let t = self.check(arg);
            if t != want {
                self.add(
                    arg.pos(),
                    format!(
                        "expected type {} in call to function {name_q}, got {}",
                        want.documented(),
                        t.documented()
                    ),
                );
            }
        }
    }
}
