//! Parser behaviour beyond the Prometheus tables: AST shapes and precedence, feature flags,
//! error rendering (`line:col`), preprocessing, and a property test that random token soup
//! never panics and that accepted input round-trips through the printer.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use vigil_promql::functions::FunctionId;
use vigil_promql::parser::{
    parse_expr, parse_expr_with, parse_metric_selector, preprocess_expr, prettify, BinaryOp, Expr,
    ParserOptions, ValueType,
};

fn all(q: &str) -> Expr {
    parse_expr_with(q, &ParserOptions::all()).unwrap()
}

fn err(q: &str, opts: &ParserOptions) -> String {
    parse_expr_with(q, opts).unwrap_err().to_string()
}

#[test]
fn precedence_and_associativity() {
    // `^` is right-associative and binds tighter than unary minus.
    assert_eq!(all("2 ^ 3 ^ 2").to_string(), "2 ^ 3 ^ 2");
    match all("2 ^ 3 ^ 2") {
        Expr::Binary(b) => assert!(matches!(*b.rhs, Expr::Binary(_))),
        e => panic!("{e:?}"),
    }
    match all("a or b and c unless d") {
        Expr::Binary(b) => {
            assert_eq!(b.op, BinaryOp::Or);
            assert!(matches!(&*b.rhs, Expr::Binary(r) if r.op == BinaryOp::Unless));
        }
        e => panic!("{e:?}"),
    }
    match all("a + b * c > d") {
        Expr::Binary(b) => assert_eq!(b.op, BinaryOp::Gtr),
        e => panic!("{e:?}"),
    }
    match all("-a * b") {
        Expr::Binary(b) => {
            assert_eq!(b.op, BinaryOp::Mul);
            assert!(matches!(*b.lhs, Expr::Unary(_)));
        }
        e => panic!("{e:?}"),
    }
    match all("-1") {
        Expr::NumberLiteral(n) => assert_eq!(n.val, -1.0),
        e => panic!("{e:?}"),
    }
    // `offset` binds to the right-hand selector; a literal offset does not absorb `- 8`.
    assert_eq!(all("foo offset 5s-8").to_string(), "foo offset 5s - 8");
    assert_eq!(all("a + b offset 1m").to_string(), "a + b offset 1m");
}

#[test]
fn shapes_and_types() {
    let e = all("sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m]))");
    assert_eq!(e.value_type(), ValueType::Vector);
    assert_eq!(
        e.to_string(),
        "sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m]))"
    );
    match &e {
        Expr::Aggregate(a) => match &*a.expr {
            Expr::Call(c) => {
                assert_eq!(c.func.id, FunctionId::Rate);
                match &c.args[0] {
                    Expr::MatrixSelector(m) => {
                        assert_eq!(m.range, 300_000);
                        assert_eq!(m.vector_selector.matchers.len(), 2);
                        assert_eq!(m.vector_selector.matchers[1].name, "__name__");
                    }
                    e => panic!("{e:?}"),
                }
            }
            e => panic!("{e:?}"),
        },
        e => panic!("{e:?}"),
    }
    assert_eq!(all("1 + 2").value_type(), ValueType::Scalar);
    assert_eq!(all("\"x\"").value_type(), ValueType::String);
    assert_eq!(all("x[1h30m:]").value_type(), ValueType::Matrix);
    assert_eq!(all("x[90m]").to_string(), "x[1h30m]");
    assert_eq!(
        all("x offset -1h @ 10").to_string(),
        "x @ 10.000 offset -1h"
    );
    assert_eq!(all("0x1f + Inf").to_string(), "31 + +Inf");
    assert_eq!(
        all("{\"utf8.metric\", \"a.b\"=\"c\"}").to_string(),
        "{\"a.b\"=\"c\",__name__=\"utf8.metric\"}"
    );
    assert_eq!(all("x[5m+1m]").to_string(), "x[5m + 1m]");
    assert_eq!(all("a + fill(0) b").to_string(), "a + fill (0) b");
    assert_eq!(
        all("a + fill_left(1) fill_right(2) b").to_string(),
        "a + fill_left (1) fill_right (2) b"
    );
    assert_eq!(all("x[5m] anchored").to_string(), "x[5m] anchored");
    // Positions are byte spans.
    assert_eq!(all("  foo").pos().start, 2);
}

#[test]
fn feature_flags_gate_experimental_syntax() {
    let off = ParserOptions::default();
    assert_eq!(
        err("info(x)", &off),
        "1:1: parse error: function \"info\" is not enabled"
    );
    assert_eq!(
        err("limitk(1, x)", &off),
        "1:1: parse error: limitk() is experimental and must be enabled with --enable-feature=promql-experimental-functions"
    );
    assert_eq!(
        err("x[5m+1m]", &off),
        "1:3: parse error: experimental duration expression is not enabled"
    );
    assert_eq!(
        err("x[5m] anchored", &off),
        "1:1: parse error: anchored modifier is experimental and not enabled"
    );
    assert_eq!(
        err("a + fill(0) b", &off),
        "1:1: parse error: binop fill modifiers are experimental and not enabled"
    );
    assert!(parse_expr("rate(x[5m])").is_ok());
}

#[test]
fn errors_render_line_and_column() {
    let e = parse_expr("sum(\n  rate(x[5m]) +\n)").unwrap_err();
    assert_eq!(e.to_string(), "3:1: parse error: unexpected \")\"");
    let e = parse_expr("foo + bool bar").unwrap_err();
    assert_eq!(
        e.to_string(),
        "1:5: parse error: bool modifier can only be used on comparison operators"
    );
    // Several checker errors are all kept; the first is shown.
    let e = parse_expr("floor(\"a\", \"b\")").unwrap_err();
    assert!(e.errors.len() >= 2);
    assert_eq!(
        e.to_string(),
        "1:1: parse error: expected 1 argument(s) in call to \"floor\", got 2"
    );
}

#[test]
fn metric_selectors() {
    let m = parse_metric_selector("up{job=\"x\"}").unwrap();
    assert_eq!(m.len(), 2);
    assert!(parse_metric_selector("up + 1").is_err());
    assert!(parse_metric_selector("{a=~\"(\"}").is_err());
}

#[test]
fn preprocess_marks_step_invariant_subtrees() {
    let e = preprocess_expr(all("sum(x @ 100)"), 0, 60_000, 10_000).unwrap();
    assert!(matches!(e, Expr::StepInvariant(_)));
    let e = preprocess_expr(all("rate(x[5m]) + y @ end()"), 0, 60_000, 10_000).unwrap();
    match e {
        Expr::Binary(b) => match &*b.rhs {
            Expr::StepInvariant(s) => match &*s.expr {
                Expr::VectorSelector(v) => assert_eq!(v.timestamp, Some(60_000)),
                e => panic!("{e:?}"),
            },
            e => panic!("{e:?}"),
        },
        e => panic!("{e:?}"),
    }
    let e = preprocess_expr(
        all("x[step() * 2] offset -min_of(step(), 1s)"),
        0,
        60_000,
        10_000,
    );
    match e.unwrap() {
        Expr::MatrixSelector(m) => {
            assert_eq!(m.range, 20_000);
            assert_eq!(m.vector_selector.original_offset, -1_000);
        }
        e => panic!("{e:?}"),
    }
    assert!(preprocess_expr(all("x[5m - step()]"), 0, 600_000, 300_000).is_err());
}

#[test]
fn prettify_splits_long_queries() {
    let q = "sum by (job, instance) (rate(http_requests_total{job=\"api-server\",code=~\"5..\"}[5m])) / sum by (job, instance) (rate(http_requests_total[5m]))";
    let p = prettify(&all(q));
    assert!(p.lines().count() > 1, "{p}");
    assert_eq!(all(&p).to_string(), all(q).to_string());
}

const SOUP: &[&str] = &[
    "foo",
    "bar",
    "sum",
    "rate",
    "by",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    "5m",
    "1",
    "0x1f",
    ".5",
    "\"a\"",
    "'b'",
    "`c`",
    ",",
    "+",
    "-",
    "*",
    "/",
    "^",
    "==",
    "!=",
    "=~",
    "!~",
    "=",
    "<",
    ">",
    "and",
    "or",
    "unless",
    "on",
    "ignoring",
    "group_left",
    "bool",
    "offset",
    "@",
    ":",
    "start()",
    "step()",
    "min_of",
    "anchored",
    "smoothed",
    "fill",
    "topk",
    "count_values",
    "without",
    "#",
    "\n",
    " ",
    "Inf",
    "NaN",
    "1e3",
    "\\",
    "é",
    "\"\\x",
    "1h30m",
    "atan2",
    "</",
    "limitk",
];

proptest! {
    #[test]
    fn token_soup_never_panics(toks in proptest::collection::vec(0..SOUP.len(), 0..24)) {
        let q: String = toks.iter().map(|i| SOUP[*i]).collect::<Vec<_>>().join(" ");
        if let Ok(e) = parse_expr_with(&q, &ParserOptions::all()) {
            let printed = e.to_string();
            let again = parse_expr_with(&printed, &ParserOptions::all());
            prop_assert!(again.is_ok(), "{q:?} printed as {printed:?}: {:?}", again.err());
            prop_assert_eq!(again.unwrap().to_string(), printed);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(q in "\\PC{0,40}") {
        let _ = parse_expr_with(&q, &ParserOptions::all());
    }
}
