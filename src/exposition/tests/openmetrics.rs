//! Unit tests of the OpenMetrics parser beyond the conformance corpus: exact values,
//! timestamps, exemplars, escaping, UNIT, quoted names and error line numbers.

use crate::exposition::{
    parse, parse_entries, Format, MetricType, ParseError, ParseOptions, NORMAL_NAN_BITS,
};

fn ok(input: &str) -> crate::exposition::Parsed {
    parse(input.as_bytes(), Format::OpenMetrics).unwrap_or_else(|e| panic!("{input:?}: {e}"))
}

fn err(input: &str) -> ParseError {
    match parse(input.as_bytes(), Format::OpenMetrics) {
        Ok(p) => panic!("{input:?} must be rejected, got {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn content_type_negotiation() {
    use Format::*;
    assert_eq!(
        Format::from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        OpenMetrics
    );
    assert_eq!(
        Format::from_content_type("Application/OpenMetrics-Text"),
        OpenMetrics
    );
    assert_eq!(
        Format::from_content_type("text/plain; version=0.0.4"),
        PrometheusText
    );
    assert_eq!(Format::from_content_type(""), PrometheusText);
    assert_eq!(
        Format::from_content_type("application/json"),
        PrometheusText
    );
}

#[test]
fn counter_with_unit_created_and_exemplar() {
    let p = ok("# TYPE cc_seconds counter\n# UNIT cc_seconds seconds\n# HELP cc_seconds A \\\"counter\\\"\ncc_seconds_total{a=\"b\"} 1.5 1.25 # {trace_id=\"abc\"} 0.5 2.5\ncc_seconds_created{a=\"b\"} 123.456 1.25\n# EOF\n");
    let m = &p.metadata[0];
    assert_eq!(m.family, "cc_seconds");
    assert_eq!(m.metric_type, MetricType::Counter);
    assert_eq!(m.unit.as_deref(), Some("seconds"));
    assert_eq!(m.help.as_deref(), Some("A \"counter\""));
    let s = &p.samples[0];
    assert_eq!(s.name(), "cc_seconds_total");
    assert_eq!(s.value, 1.5);
    assert_eq!(s.timestamp_ms, Some(1250));
    let ex = s.exemplar.as_ref().unwrap();
    assert_eq!(ex.labels, vec![("trace_id".to_owned(), "abc".to_owned())]);
    assert_eq!(ex.value, 0.5);
    assert_eq!(ex.timestamp_ms, Some(2500));
    assert_eq!(p.samples[1].value, 123.456);
    assert!(p.samples[1].exemplar.is_none());
}

#[test]
fn float_second_timestamps_truncate_to_ms() {
    let p = ok("a 1 000\na 1 1.0019\na 1 1.5e3\na 1 12345678901234567890.1234567890\n# EOF");
    let ts: Vec<_> = p.samples.iter().map(|s| s.timestamp_ms.unwrap()).collect();
    assert_eq!(ts, [0, 1001, 1_500_000, i64::MAX]);
}

#[test]
fn nan_is_normal_nan() {
    let p = ok("a NaN\n# EOF\n");
    assert_eq!(p.samples[0].value.to_bits(), NORMAL_NAN_BITS);
}

#[test]
fn label_escaping_and_hash_in_values() {
    let p = ok("# TYPE a counter\na_total{foo=\"b\\\"a\\nr # \",bar=\"x\\\\y\\z\"} 1 # {q=\"} # {\"} 2\n# EOF\n");
    let s = &p.samples[0];
    assert_eq!(s.label("foo"), Some("b\"a\nr # "));
    assert_eq!(s.label("bar"), Some("x\\y\\z"));
    assert_eq!(s.exemplar.as_ref().unwrap().labels[0].1, "} # {");
}

#[test]
fn quoted_names_in_openmetrics() {
    let p = ok("# TYPE \"my.gauge\" gauge\n{\"my.gauge\",\"l.1\"=\"v\"} 1\n# EOF\n");
    assert_eq!(p.metadata[0].family, "my.gauge");
    assert_eq!(p.samples[0].name(), "my.gauge");
    assert_eq!(p.samples[0].label("l.1"), Some("v"));
    // A bare quoted string is not allowed among exemplar labels.
    assert_eq!(
        err("# TYPE a counter\na_total 1 # {\"x\"} 1\n# EOF\n").line(),
        2
    );
}

#[test]
fn histogram_le_normalised_after_validation() {
    let p = ok("# TYPE h histogram\nh_bucket{le=\"1\"} 0\nh_bucket{le=\"1e+06\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 3\n# EOF\n");
    let le: Vec<_> = p.samples[..3]
        .iter()
        .map(|s| s.label("le").unwrap().to_owned())
        .collect();
    assert_eq!(le, ["1.0", "1e+06", "+Inf"]);
    // "+inf" is a float but not the canonical spelling OpenMetrics requires.
    assert_eq!(
        err("# TYPE h histogram\nh_bucket{le=\"+inf\"} 0\n# EOF\n").line(),
        2
    );
}

#[test]
fn stateset_and_info() {
    let p = ok(
        "# TYPE s stateset\ns{s=\"a\"} 1\ns{s=\"b\"} 0\n# TYPE i info\ni_info{v=\"1\"} 1\n# EOF\n",
    );
    assert_eq!(p.samples.len(), 3);
    assert_eq!(p.metadata[1].metric_type, MetricType::Info);
    assert_eq!(err("# TYPE s stateset\ns{s=\"a\"} 0.5\n# EOF\n").line(), 2);
    assert_eq!(
        err("# TYPE i info\ni_info 1\ni_info{a=\"b\"} 0\n# EOF\n").line(),
        3
    );
}

#[test]
fn families_must_not_interleave_or_clash() {
    // "a" again after "b": the second "a" family clashes with the first.
    let e = err("a 1\nb 1\na 2\n# EOF\n");
    assert_eq!(e.line(), 4);
    assert!(e.to_string().contains("clashes"), "{e}");
    // A counter named "x" cannot be followed by a gauge named "x_total".
    let e = err("# TYPE x counter\nx_total 1\n# TYPE x_total gauge\nx_total 1\n# EOF\n");
    assert!(matches!(e, ParseError::Invalid { .. }), "{e}");
}

#[test]
fn eof_rules() {
    assert!(matches!(err(""), ParseError::MissingEof { line: 1 }));
    assert!(matches!(err("a 1\n"), ParseError::MissingEof { line: 2 }));
    assert!(matches!(
        err("a 1\n# EOF\n\n"),
        ParseError::DataAfterEof { line: 3 }
    ));
    assert!(matches!(
        err("a 1\n# EOF \n"),
        ParseError::DataAfterEof { line: 2 }
    ));
    assert!(matches!(err("a 1"), ParseError::MissingEof { line: 1 }));
    ok("# EOF");
    ok("# EOF\n");
}

#[test]
fn spec_options_reject_client_golang_signs() {
    let input = b"# TYPE s summary\ns{quantile=\"0.5\"} -1\ns_sum -3\ns_count 2\n# EOF\n";
    assert!(parse(input, Format::OpenMetrics).is_ok());
    let strict = ParseOptions {
        spec_strict_signs: true,
    };
    let e = parse_entries(input, Format::OpenMetrics, strict, |_| {
        std::ops::ControlFlow::Continue(())
    })
    .unwrap_err();
    assert_eq!(e.line(), 2);
}

#[test]
fn error_lines_for_rules() {
    let cases: &[(&str, usize)] = &[
        ("# TYPE a gauge\na 1\n# TYPE a gauge\n# EOF\n", 3),
        ("# TYPE a counter\na_total 1\na_total -1 5\n# EOF\n", 3),
        ("# TYPE a gauge\na 1 # {x=\"y\"} 1\n# EOF\n", 2),
        ("# TYPE a_seconds gauge\n# UNIT a_seconds ms\n# EOF\n", 2),
        ("a{b=\"1\"} 1 5\na{b=\"2\"} 1 5\na{b=\"1\"} 1 6\n# EOF\n", 3),
        (
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n# EOF\n",
            3,
        ),
        ("a 1\n# HELP a x\n# EOF\n", 2),
        ("a  1\n# EOF\n", 1),
        ("a 1\n#\n# EOF\n", 2),
        ("a{b=\"1\" } 1\n# EOF\n", 1),
    ];
    for (input, line) in cases {
        let e = err(input);
        assert_eq!(e.line(), *line, "{input:?}: {e}");
    }
}
