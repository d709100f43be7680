//! The JSON form of a parsed PromQL expression served by `/api/v1/parse_query`: the node
//! objects Prometheus 3's UI tree view reads (`type`, selectors with matchers, offsets and
//! `@` modifiers in milliseconds, calls with their function signature, aggregations, binary
//! expressions with their vector matching, ...). Owns only the translation of an already
//! parsed AST; it never parses, type-checks or evaluates a query.

use serde_json::{json, Value as Json};
use vigil_promql::parser::{AtModifier, Expr, VectorMatching, VectorSelector};
use vigil_storage::Matcher;

use super::ApiError;

/// Translates a parsed (not preprocessed) expression into Prometheus' JSON AST.
///
/// Duration expressions (`[5m+1m]`, only with an experimental parser flag) have no JSON
/// form in Prometheus; a top-level one is reported as `bad_data`.
pub fn translate(expr: &Expr) -> Result<Json, ApiError> {
    let node = match expr {
        Expr::Aggregate(a) => json!({
            "type": "aggregation",
            "op": a.op.as_str(),
            "expr": translate(&a.expr)?,
            "param": match &a.param {
                Some(p) => translate(p)?,
                None => Json::Null,
            },
            "grouping": a.grouping,
            "without": a.without,
        }),
        Expr::Binary(b) => json!({
            "type": "binaryExpr",
            "op": b.op.as_str(),
            "lhs": translate(&b.lhs)?,
            "rhs": translate(&b.rhs)?,
            "matching": b.matching.as_ref().map_or(Json::Null, matching),
            "bool": b.return_bool,
        }),
        Expr::Call(c) => {
            let args = c
                .args
                .iter()
                .map(translate)
                .collect::<Result<Vec<_>, _>>()?;
            let arg_types: Vec<&str> = c.func.arg_types.iter().map(|t| t.as_str()).collect();
            json!({
                "type": "call",
                "func": {
                    "name": c.func.name,
                    "argTypes": arg_types,
                    "variadic": c.func.variadic,
                    "returnType": c.func.return_type.as_str(),
                },
                "args": args,
            })
        }
        Expr::MatrixSelector(m) => {
            let mut node = selector("matrixSelector", &m.vector_selector);
            if let Json::Object(fields) = &mut node {
                fields.insert("range".to_string(), json!(m.range));
            }
            node
        }
        Expr::Subquery(s) => json!({
            "type": "subquery",
            "expr": translate(&s.expr)?,
            "range": s.range,
            "offset": s.original_offset,
            "step": s.step,
            "timestamp": s.timestamp,
            "startOrEnd": start_or_end(s.start_or_end),
        }),
        Expr::NumberLiteral(n) => json!({
            "type": "numberLiteral",
            "val": format_number(n.val),
        }),
        Expr::Paren(p) => json!({
            "type": "parenExpr",
            "expr": translate(&p.expr)?,
        }),
        Expr::StringLiteral(s) => json!({
            "type": "stringLiteral",
            "val": s.val,
        }),
        Expr::Unary(u) => json!({
            "type": "unaryExpr",
            "op": u.op.as_str(),
            "expr": translate(&u.expr)?,
        }),
        Expr::VectorSelector(v) => selector("vectorSelector", v),
        // Only inserted by preprocessing, which parse_query does not run; transparent.
        Expr::StepInvariant(s) => translate(&s.expr)?,
        Expr::Duration(_) => {
            return Err(ApiError::bad_data(
                "duration expressions have no JSON AST form",
            ))
        }
    };
    Ok(node)
}

/// The fields shared by vector and matrix selectors.
fn selector(kind: &str, v: &VectorSelector) -> Json {
    json!({
        "type": kind,
        "name": v.name,
        "offset": v.original_offset,
        "matchers": v.matchers.iter().map(matcher).collect::<Vec<_>>(),
        "timestamp": v.timestamp,
        "startOrEnd": start_or_end(v.start_or_end),
        "anchored": v.anchored,
        "smoothed": v.smoothed,
    })
}

fn matcher(m: &Matcher) -> Json {
    json!({
        "type": m.match_type.as_str(),
        "name": m.name,
        "value": m.value,
    })
}

fn matching(m: &VectorMatching) -> Json {
    json!({
        "card": m.card.as_str(),
        "labels": m.matching_labels,
        "on": m.on,
        "include": m.include,
        "fillValues": {
            "lhs": m.fill_values.lhs.map(json_number),
            "rhs": m.fill_values.rhs.map(json_number),
        },
    })
}

/// A fill value as a JSON number; NaN and infinities, which JSON cannot hold, become null.
fn json_number(v: f64) -> Json {
    serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number)
}

fn start_or_end(s: Option<AtModifier>) -> Json {
    match s {
        Some(AtModifier::Start) => json!("start"),
        Some(AtModifier::End) => json!("end"),
        None => Json::Null,
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest digits that round-trip, never an
/// exponent, and `+Inf`/`-Inf`/`NaN` for the special values.
pub fn format_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        // Rust's `Display` for f64 prints the shortest round-trip digits without exponent.
        format!("{v}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use vigil_promql::parser::parse_expr;

    fn ast(q: &str) -> Json {
        translate(&parse_expr(q).unwrap()).unwrap()
    }

    fn expect(q: &str, want: &str) {
        let want: Json = serde_json::from_str(want).unwrap();
        assert_eq!(ast(q), want, "query {q}");
    }

    const FOO_NAME: &str = r#"{"type":"=","name":"__name__","value":"foo"}"#;

    fn vs(name: &str, matchers: &str, offset: i64, ts: &str, soe: &str) -> String {
        format!(
            r#"{{"type":"vectorSelector","name":"{name}","offset":{offset},"matchers":[{matchers}],"timestamp":{ts},"startOrEnd":{soe},"anchored":false,"smoothed":false}}"#
        )
    }

    #[test]
    fn number_and_string_literals() {
        expect("1", r#"{"type":"numberLiteral","val":"1"}"#);
        expect("1.5e3", r#"{"type":"numberLiteral","val":"1500"}"#);
        expect("0x10", r#"{"type":"numberLiteral","val":"16"}"#);
        expect(
            "1e21",
            r#"{"type":"numberLiteral","val":"1000000000000000000000"}"#,
        );
        expect("0.000001", r#"{"type":"numberLiteral","val":"0.000001"}"#);
        expect("Inf", r#"{"type":"numberLiteral","val":"+Inf"}"#);
        expect("NaN", r#"{"type":"numberLiteral","val":"NaN"}"#);
        expect(r#""a\tb""#, r#"{"type":"stringLiteral","val":"a\tb"}"#);
    }

    #[test]
    fn vector_selector_with_matchers_in_order() {
        // The name written before braces is appended after the brace matchers.
        let want = vs(
            "foo",
            &format!(
                r#"{{"type":"=~","name":"job","value":"a.*"}},{{"type":"!=","name":"x","value":""}},{FOO_NAME}"#
            ),
            0,
            "null",
            "null",
        );
        expect(r#"foo{job=~"a.*",x!=""}"#, &want);
        let want = vs(
            "",
            r#"{"type":"=~","name":"__name__","value":"b.+"}"#,
            0,
            "null",
            "null",
        );
        expect(r#"{__name__=~"b.+"}"#, &want);
    }

    #[test]
    fn offsets_and_at_modifiers() {
        expect(
            "foo offset 5m @ 1000",
            &vs("foo", FOO_NAME, 300_000, "1000000", "null"),
        );
        expect(
            "foo offset -1h @ end()",
            &vs("foo", FOO_NAME, -3_600_000, "null", r#""end""#),
        );
        expect(
            "foo @ start()",
            &vs("foo", FOO_NAME, 0, "null", r#""start""#),
        );
    }

    #[test]
    fn matrix_selector() {
        expect(
            "foo[5m] offset 1m",
            &format!(
                r#"{{"type":"matrixSelector","name":"foo","range":300000,"offset":60000,"matchers":[{FOO_NAME}],"timestamp":null,"startOrEnd":null,"anchored":false,"smoothed":false}}"#
            ),
        );
    }

    #[test]
    fn subquery() {
        expect(
            "foo[1h:1m] offset 2m @ 3",
            &format!(
                r#"{{"type":"subquery","expr":{},"range":3600000,"offset":120000,"step":60000,"timestamp":3000,"startOrEnd":null}}"#,
                vs("foo", FOO_NAME, 0, "null", "null")
            ),
        );
        // No step: 0 (the default resolution).
        let got = ast("rate(foo[5m])[30m:]");
        assert_eq!(got["step"], json!(0));
        assert_eq!(got["expr"]["type"], json!("call"));
    }

    #[test]
    fn calls_carry_the_function_signature() {
        expect(
            "rate(foo[5m])",
            &format!(
                r#"{{"type":"call","func":{{"name":"rate","argTypes":["matrix"],"variadic":0,"returnType":"vector"}},"args":[{{"type":"matrixSelector","name":"foo","range":300000,"offset":0,"matchers":[{FOO_NAME}],"timestamp":null,"startOrEnd":null,"anchored":false,"smoothed":false}}]}}"#
            ),
        );
        expect(
            "time()",
            r#"{"type":"call","func":{"name":"time","argTypes":[],"variadic":0,"returnType":"scalar"},"args":[]}"#,
        );
        let got = ast(r#"label_join(foo, "d", ",", "a", "b")"#);
        assert_eq!(
            got["func"],
            json!({"name":"label_join","argTypes":["vector","string","string","string"],"variadic":-1,"returnType":"vector"})
        );
        assert_eq!(got["args"].as_array().map(Vec::len), Some(5));
        let got = ast("round(foo)");
        assert_eq!(
            got["func"],
            json!({"name":"round","argTypes":["vector","scalar"],"variadic":1,"returnType":"vector"})
        );
    }

    #[test]
    fn aggregations() {
        let foo = vs("foo", FOO_NAME, 0, "null", "null");
        expect(
            "sum by (job, instance) (foo)",
            &format!(
                r#"{{"type":"aggregation","op":"sum","expr":{foo},"param":null,"grouping":["job","instance"],"without":false}}"#
            ),
        );
        expect(
            "topk without (a) (3, foo)",
            &format!(
                r#"{{"type":"aggregation","op":"topk","expr":{foo},"param":{{"type":"numberLiteral","val":"3"}},"grouping":["a"],"without":true}}"#
            ),
        );
        expect(
            "count(foo)",
            &format!(
                r#"{{"type":"aggregation","op":"count","expr":{foo},"param":null,"grouping":[],"without":false}}"#
            ),
        );
    }

    #[test]
    fn binary_expressions_and_matching() {
        let foo = vs("foo", FOO_NAME, 0, "null", "null");
        let bar = vs(
            "bar",
            r#"{"type":"=","name":"__name__","value":"bar"}"#,
            0,
            "null",
            "null",
        );
        // Scalar on one side: no vector matching.
        expect(
            "foo > bool 1",
            &format!(
                r#"{{"type":"binaryExpr","op":">","lhs":{foo},"rhs":{{"type":"numberLiteral","val":"1"}},"matching":null,"bool":true}}"#
            ),
        );
        expect(
            "foo * on (a) group_left (b) bar",
            &format!(
                r#"{{"type":"binaryExpr","op":"*","lhs":{foo},"rhs":{bar},"matching":{{"card":"many-to-one","labels":["a"],"on":true,"include":["b"],"fillValues":{{"lhs":null,"rhs":null}}}},"bool":false}}"#
            ),
        );
        expect(
            "foo - bar",
            &format!(
                r#"{{"type":"binaryExpr","op":"-","lhs":{foo},"rhs":{bar},"matching":{{"card":"one-to-one","labels":[],"on":false,"include":[],"fillValues":{{"lhs":null,"rhs":null}}}},"bool":false}}"#
            ),
        );
        // Set operators are many-to-many.
        let got = ast("foo and ignoring (x) bar");
        assert_eq!(got["op"], json!("and"));
        assert_eq!(got["matching"]["card"], json!("many-to-many"));
        assert_eq!(got["matching"]["labels"], json!(["x"]));
        assert_eq!(got["matching"]["on"], json!(false));
    }

    #[test]
    fn unary_and_paren() {
        expect(
            "-(foo)",
            &format!(
                r#"{{"type":"unaryExpr","op":"-","expr":{{"type":"parenExpr","expr":{}}}}}"#,
                vs("foo", FOO_NAME, 0, "null", "null")
            ),
        );
    }

    #[test]
    fn go_float_formatting() {
        assert_eq!(format_number(0.1), "0.1");
        assert_eq!(format_number(-2.5), "-2.5");
        assert_eq!(format_number(1e-7), "0.0000001");
        assert_eq!(format_number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_number(123456789.0), "123456789");
    }
}
