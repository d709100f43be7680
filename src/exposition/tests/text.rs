//! Unit tests of the text 0.0.4 parser: grammar, Prometheus' leniencies, escaping,
//! timestamps, quoted UTF-8 names, normalisation and error line numbers.

use std::borrow::Cow;
use std::ops::ControlFlow;

use crate::exposition::{
    parse, parse_with, Entry, Format, MetricType, ParseError, NORMAL_NAN_BITS,
};

fn ok(input: &str) -> crate::exposition::Parsed {
    parse(input.as_bytes(), Format::PrometheusText).unwrap_or_else(|e| panic!("{input:?}: {e}"))
}

fn err(input: &str) -> ParseError {
    match parse(input.as_bytes(), Format::PrometheusText) {
        Ok(p) => panic!("{input:?} must be rejected, got {p:?}"),
        Err(e) => e,
    }
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn basic_sample_with_labels_and_timestamp() {
    let p = ok("# HELP http_requests_total The total.\n# TYPE http_requests_total counter\nhttp_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n");
    assert_eq!(p.samples.len(), 1);
    let s = &p.samples[0];
    assert_eq!(
        s.labels,
        pairs(&[
            ("__name__", "http_requests_total"),
            ("method", "post"),
            ("code", "200")
        ])
    );
    assert_eq!(s.value, 1027.0);
    assert_eq!(s.timestamp_ms, Some(1_395_066_363_000));
    assert_eq!(p.metadata.len(), 1);
    assert_eq!(p.metadata[0].metric_type, MetricType::Counter);
    assert_eq!(p.metadata[0].help.as_deref(), Some("The total."));
    assert_eq!(p.metadata[0].unit, None);
}

#[test]
fn labels_keep_exposition_order_not_sorted() {
    let p = ok("m{z=\"1\",a=\"2\"} 1\n");
    assert_eq!(
        p.samples[0].labels,
        pairs(&[("__name__", "m"), ("z", "1"), ("a", "2")])
    );
}

#[test]
fn prometheus_leniencies() {
    // Blank lines, free comments, blanks and tabs everywhere, trailing comma, missing
    // comma between pairs, no space between labels and value, no trailing newline.
    let p = ok("\n\n# just a comment\n#no space comment\n  \t m1 { a = \"1\" , b=\"2\", } \t 3 \t 17 \t\nm2{a=\"1\" b=\"2\"}4\nm3 5");
    assert_eq!(p.samples.len(), 3);
    assert_eq!(
        p.samples[0].labels,
        pairs(&[("__name__", "m1"), ("a", "1"), ("b", "2")])
    );
    assert_eq!(p.samples[0].timestamp_ms, Some(17));
    assert_eq!(
        p.samples[1].labels,
        pairs(&[("__name__", "m2"), ("a", "1"), ("b", "2")])
    );
    assert_eq!(p.samples[1].value, 4.0);
    assert_eq!(p.samples[2].value, 5.0);
    assert!(p.metadata.is_empty());
}

#[test]
fn empty_braces_and_colons_in_names() {
    let p = ok("a:b:c{} 1\n_x 2\n");
    assert_eq!(p.samples[0].name(), "a:b:c");
    assert_eq!(p.samples[0].labels.len(), 1);
    assert_eq!(p.samples[1].name(), "_x");
}

#[test]
fn special_float_values() {
    let p = ok("a +Inf\nb -Inf\nc Inf\nd NaN\ne nan\nf 1e3\ng -0.5\nh .5\n");
    let v: Vec<f64> = p.samples.iter().map(|s| s.value).collect();
    assert_eq!(v[0], f64::INFINITY);
    assert_eq!(v[1], f64::NEG_INFINITY);
    assert_eq!(v[2], f64::INFINITY);
    assert_eq!(v[3].to_bits(), NORMAL_NAN_BITS);
    assert_eq!(v[4].to_bits(), NORMAL_NAN_BITS);
    assert_eq!(&v[5..], &[1000.0, -0.5, 0.5]);
}

#[test]
fn label_value_escaping() {
    let p = ok(r#"m{a="x\"y",b="back\\slash",c="new\nline",d="keep\q"} 1"#);
    let s = &p.samples[0];
    assert_eq!(s.label("a"), Some("x\"y"));
    assert_eq!(s.label("b"), Some("back\\slash"));
    assert_eq!(s.label("c"), Some("new\nline"));
    assert_eq!(s.label("d"), Some("keep\\q"));
}

#[test]
fn help_escapes_only_backslash_and_newline() {
    let p = ok("# HELP m a\\\\b\\nc\\\"d\n");
    assert_eq!(p.metadata[0].help.as_deref(), Some("a\\b\nc\\\"d"));
    assert_eq!(p.metadata[0].metric_type, MetricType::Unknown);
}

#[test]
fn help_without_text_and_type_untyped() {
    let p = ok("# HELP m\n# TYPE m untyped\nm 1\n");
    assert_eq!(p.metadata[0].help.as_deref(), Some(""));
    assert_eq!(p.metadata[0].metric_type, MetricType::Unknown);
}

#[test]
fn invalid_metric_type_names_line_and_type() {
    let e = err("a 1\n\n\n\n\n\n# TYPE a gaugee\n");
    assert_eq!(e.line(), 7);
    assert_eq!(e.to_string(), "line 7: invalid metric type \"gaugee\"");
    // OpenMetrics-only types are not text-format types.
    assert_eq!(err("# TYPE a info\n").line(), 1);
    assert_eq!(err("# TYPE a counter \n").line(), 1);
}

#[test]
fn quoted_utf8_names() {
    let p = ok("# TYPE \"my.metric\" gauge\n{\"my.metric\", \"label.with.dots\"=\"v\", a=\"b\"} 1\n{\"other\"} 2\n");
    assert_eq!(p.metadata[0].family, "my.metric");
    assert_eq!(p.metadata[0].metric_type, MetricType::Gauge);
    assert_eq!(
        p.samples[0].labels,
        pairs(&[
            ("__name__", "my.metric"),
            ("label.with.dots", "v"),
            ("a", "b")
        ])
    );
    assert_eq!(p.samples[1].name(), "other");
    assert_eq!(err("m{\"n\"} 1\n").line(), 1, "name set twice");
    assert_eq!(err("{a=\"b\"} 1\n").line(), 1, "no name");
}

#[test]
fn le_and_quantile_are_normalised_under_their_type() {
    let p = ok("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"1e6\"} 1\nh_bucket{le=\"+Inf\"} 1\n# TYPE s summary\ns{quantile=\"0.50\"} 1\n# TYPE g gauge\ng{le=\"1\"} 1\n");
    let le: Vec<_> = p.samples[..3]
        .iter()
        .map(|s| s.label("le").unwrap().to_owned())
        .collect();
    assert_eq!(le, ["1.0", "1e+06", "+Inf"]);
    assert_eq!(p.samples[3].label("quantile"), Some("0.5"));
    assert_eq!(p.samples[4].label("le"), Some("1"));
}

#[test]
fn multi_line_label_value_is_accepted_like_prometheus_lexer() {
    let p = ok("m{a=\"x\ny\"} 1\nn 2\n");
    assert_eq!(p.samples[0].label("a"), Some("x\ny"));
    // Line numbers keep counting across the embedded newline.
    assert_eq!(err("m{a=\"x\ny\"} 1\nn 2\nbad$ 3\n").line(), 4);
}

#[test]
fn syntax_errors_name_their_line() {
    let cases: &[(&str, usize)] = &[
        ("a 1\nb\n", 2),
        ("a 1\nb x\n", 2),
        ("a 1\n\nb 1 2 3\n", 3),
        ("a 1\nb 1 -5\n", 2),
        ("a 1\nb 1 1.5\n", 2),
        ("0a 1\n", 1),
        ("a{b=c} 1\n", 1),
        ("a{b=\"c} 1\n", 1),
        ("a{b=\"c\",b=\"d\"} 1\n", 1),
        ("a{1=\"c\"} 1\n", 1),
        ("a 0x1p3\n", 1),
        ("a 1_000\n", 1),
        ("a 1\r\n", 1),
        ("a 1 99999999999999999999\n", 1),
        ("# HELP\n# HELP 0x y\n", 2),
        ("a 1e999\n", 1),
    ];
    for (input, line) in cases {
        let e = match parse(input.as_bytes(), Format::PrometheusText) {
            Ok(_) => panic!("{input:?} must be rejected"),
            Err(e) => e,
        };
        assert_eq!(e.line(), *line, "{input:?}: {e}");
        assert!(e.to_string().starts_with(&format!("line {line}: ")));
    }
}

#[test]
fn invalid_utf8_help_is_rejected() {
    let e = parse(b"# HELP m caf\xe9\n", Format::PrometheusText).unwrap_err();
    assert_eq!(e.line(), 1);
    let e = parse(b"a 1\na{b=\"\xff\"} 1\n", Format::PrometheusText).unwrap_err();
    assert_eq!(e.line(), 2);
}

#[test]
fn comments_that_look_like_metadata_are_ignored() {
    // "# HELP" without a name separator and "#HELP" are plain comments.
    let p = ok("#HELP m x\n# HELPING m\n# EOF\nm 1\n");
    assert!(p.metadata.is_empty());
    assert_eq!(p.samples.len(), 1);
}

#[test]
fn streaming_borrows_from_input_and_can_stop() {
    let input =
        b"# TYPE m counter\nm{a=\"plain\",b=\"esc\\\\aped\"} 1\nm{a=\"x\"} 2\nm{a=\"y\"} 3\n";
    let mut seen = Vec::new();
    parse_with(input, Format::PrometheusText, |e| {
        if let Entry::Sample(s) = e {
            assert!(matches!(s.labels[0].1, Cow::Borrowed(_)) || s.labels[0].1 != "plain");
            if s.value == 1.0 {
                assert!(matches!(s.labels[0].1, Cow::Borrowed("plain")));
                assert!(matches!(s.labels[1].1, Cow::Owned(_)));
                assert_eq!(s.labels[1].1, "esc\\aped");
            }
            seen.push(s.value);
            if seen.len() == 2 {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(seen, [1.0, 2.0]);
}
