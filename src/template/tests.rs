//! Template engine tests: expected outputs derived from Go text/template semantics and
//! Prometheus' template tests.

#![allow(clippy::unwrap_used)]

use super::*;

fn data(labels: &[(&str, &str)], value: f64) -> AlertData {
    AlertData {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        external_labels: [("cluster".to_string(), "eu1".to_string())].into(),
        external_url: "http://vigil.example:9090/prom".into(),
        value,
    }
}

fn expand(text: &str, d: &AlertData) -> String {
    expand_alert("Test", text, d, &Env::default()).unwrap()
}

struct FakeQuery;

impl QueryFn for FakeQuery {
    fn query(&self, expr: &str, _ts_ms: i64) -> Result<Vec<QuerySample>, String> {
        match expr {
            "up" => Ok(vec![
                QuerySample {
                    labels: [("instance".to_string(), "b".to_string())].into(),
                    value: 0.0,
                },
                QuerySample {
                    labels: [("instance".to_string(), "a".to_string())].into(),
                    value: 1.0,
                },
            ]),
            "none" => Ok(vec![]),
            _ => Err(format!("bad query {expr}")),
        }
    }
}

fn run(text: &str) -> Result<String, TemplateError> {
    let q = FakeQuery;
    let env = Env {
        ts_ms: 1_500_000,
        external_url: "http://h:9090/p",
        query: Some(&q),
    };
    Template::parse("t", text)?.execute(&Value::Nil, &env)
}

#[test]
fn alert_variables_and_fields() {
    let d = data(&[("instance", "host1:9100"), ("job", "node")], 0.5);
    assert_eq!(
        expand("{{ $labels.instance }} is down", &d),
        "host1:9100 is down"
    );
    assert_eq!(expand("{{ .Labels.job }}={{ .Value }}", &d), "node=0.5");
    assert_eq!(expand("{{ $value }}", &d), "0.5");
    assert_eq!(expand("{{ $externalLabels.cluster }}", &d), "eu1");
    assert_eq!(
        expand("{{ $externalURL }}", &d),
        "http://vigil.example:9090/prom"
    );
    assert_eq!(expand("[{{ $labels.missing }}]", &d), "[]");
    assert_eq!(expand("{{ $.Labels.job }}", &d), "node");
}

#[test]
fn value_printing_uses_go_v() {
    assert_eq!(
        expand("{{ $value }}", &data(&[], 1234567.0)),
        "1.234567e+06"
    );
    assert_eq!(expand("{{ $value }}", &data(&[], 100.0)), "100");
    assert_eq!(
        expand("{{ $value | humanize }}", &data(&[], 1234567.0)),
        "1.235M"
    );
    assert_eq!(
        expand("{{ humanizePercentage $value }}", &data(&[], 0.015)),
        "1.5%"
    );
    assert_eq!(
        expand("{{ printf \"%.2f\" $value }}", &data(&[], 2.0 / 3.0)),
        "0.67"
    );
}

#[test]
fn control_structures() {
    let d = data(&[("severity", "page")], 3.0);
    assert_eq!(
        expand("{{ if eq $labels.severity \"page\" }}P{{ else if eq $labels.severity \"ticket\" }}T{{ else }}N{{ end }}", &d),
        "P"
    );
    assert_eq!(
        expand("{{ if gt $value 5.0 }}big{{ else }}small{{ end }}", &d),
        "small"
    );
    assert_eq!(
        expand("{{ with $labels.severity }}sev={{ . }}{{ end }}", &d),
        "sev=page"
    );
    assert_eq!(
        expand("{{ with $labels.nope }}x{{ else }}none{{ end }}", &d),
        "none"
    );
    assert_eq!(
        expand(
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
            &data(&[("b", "2"), ("a", "1")], 0.0)
        ),
        "a=1;b=2;"
    );
    assert_eq!(expand("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", &d), "2");
    assert_eq!(
        expand(
            "{{ if and (gt $value 1.0) (lt $value 5.0) }}in{{ end }}",
            &d
        ),
        "in"
    );
    assert_eq!(expand("{{ or \"\" \"fallback\" }}", &d), "fallback");
    assert_eq!(expand("{{ not true }}", &d), "false");
    assert_eq!(expand("{{ len $labels }}", &d), "1");
    assert_eq!(expand("{{ index $labels \"severity\" }}", &d), "page");
}

#[test]
fn trimming_comments_and_defines() {
    let d = data(&[], 0.0);
    assert_eq!(expand("a  {{- \"b\" -}}  c", &d), "abc");
    assert_eq!(expand("a{{/* comment */}}b", &d), "ab");
    assert_eq!(
        expand(
            "{{ define \"x\" }}[{{ . }}]{{ end }}{{ template \"x\" \"y\" }}",
            &d
        ),
        "[y]"
    );
    assert_eq!(
        expand("{{ range $i, $e := args 1 2 3 }}{{ if eq $i \"arg1\" }}{{ break }}{{ end }}{{ $e }}{{ end }}", &d),
        "1"
    );
}

#[test]
fn print_functions() {
    assert_eq!(run("{{ print 1 2 \"a\" \"b\" 3 }}").unwrap(), "1 2ab3");
    assert_eq!(run("{{ println \"a\" 1 }}").unwrap(), "a 1\n");
    assert_eq!(run("{{ printf \"%s-%d\" \"x\" 7 }}").unwrap(), "x-7");
    assert_eq!(run("{{ \"a<b\" | html }}").unwrap(), "a&lt;b");
    assert_eq!(
        run("{{ 0x10 }} {{ 1.5e3 }} {{ 'a' }}").unwrap(),
        "16 1500 97"
    );
}

#[test]
fn prometheus_functions() {
    assert_eq!(
        run("{{ query \"up\" | first | label \"instance\" }}").unwrap(),
        "b"
    );
    assert_eq!(run("{{ query \"up\" | first | value }}").unwrap(), "0");
    assert_eq!(
        run("{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }}:{{ .Value }} {{ end }}").unwrap(),
        "a:1 b:0 "
    );
    assert!(run("{{ query \"none\" | first }}")
        .unwrap_err()
        .to_string()
        .contains("first() called on vector with no elements"));
    assert_eq!(
        run("{{ \"foo.bar\" | title }} {{ toUpper \"a\" }}{{ toLower \"B\" }}").unwrap(),
        "Foo.Bar Ab"
    );
    assert_eq!(run("{{ match \"a.*\" \"abc\" }}").unwrap(), "true");
    assert_eq!(
        run("{{ reReplaceAll \"(a)b\" \"x$1\" \"abab\" }}").unwrap(),
        "xaxa"
    );
    assert_eq!(
        run("{{ 1435065584.128 | humanizeTimestamp }}").unwrap(),
        "2015-06-23 13:19:44.128 +0000 UTC"
    );
    assert!(run("{{ (1435065584.128 | toTime).String }}").is_err());
    assert_eq!(
        run("{{ 1435065584 | toTime }}").unwrap(),
        "2015-06-23 13:19:44 +0000 UTC"
    );
    assert_eq!(run("{{ 3723.5 | toDuration }}").unwrap(), "1h2m3.5s");
    assert_eq!(run("{{ parseDuration \"1h2m\" }}").unwrap(), "3720");
    assert_eq!(run("{{ humanizeDuration 3725 }}").unwrap(), "1h 2m 5s");
    assert_eq!(run("{{ \"1234567\" | humanize }}").unwrap(), "1.235M");
    assert_eq!(run("{{ humanize1024 1048576 }}").unwrap(), "1Mi");
    assert_eq!(run("{{ urlQueryEscape \"a b\" }}").unwrap(), "a+b");
    assert_eq!(
        run("{{ graphLink \"up == 0\" }}").unwrap(),
        "/graph?g0.expr=up+%3D%3D+0&g0.tab=0"
    );
    assert_eq!(
        run("{{ externalURL }} {{ pathPrefix }}").unwrap(),
        "http://h:9090/p /p"
    );
    assert_eq!(run("{{ stripPort \"host:9100\" }}").unwrap(), "host");
    assert_eq!(run("{{ now }}").unwrap(), "1500");
    assert_eq!(run("{{ safeHtml \"<b>\" }}").unwrap(), "<b>");
    assert_eq!(
        run("{{ with args 1 \"x\" }}{{ .arg0 }}{{ .arg1 }}{{ end }}").unwrap(),
        "1x"
    );
    assert_eq!(
        run("{{ define \"d\" }}<{{ . }}>{{ end }}{{ tmpl \"d\" 5 }}").unwrap(),
        "<5>"
    );
}

#[test]
fn parse_errors_match_go() {
    let e = check_alert_template("A", "{{ foo }}")
        .unwrap_err()
        .to_string();
    assert_eq!(e, "template: __alert_A:1: function \"foo\" not defined");
    let e = check_alert_template("A", "{{ $labels.x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unclosed action"), "{e}");
    let e = check_alert_template("A", "{{ if true }}x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unexpected EOF"), "{e}");
    let e = check_alert_template("A", "{{ end }}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unexpected {{end}}"), "{e}");
    let e = check_alert_template("A", "{{ $undefined }}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("undefined variable \"$undefined\""), "{e}");
    let e = check_alert_template("A", "line1\n{{ nope }}")
        .unwrap_err()
        .to_string();
    assert_eq!(e, "template: __alert_A:2: function \"nope\" not defined");
    assert!(check_alert_template("A", "{{ $.labels.service }}").is_ok());
}

#[test]
fn exec_errors() {
    // Go refuses to compare int with float64.
    let e = expand_alert(
        "A",
        "{{ if gt $value 1 }}x{{ end }}",
        &data(&[], 2.0),
        &Env::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("incompatible types for comparison"), "{e}");
    let e = run("{{ humanize \"abc\" }}").unwrap_err().to_string();
    assert!(e.contains("error calling humanize"), "{e}");
    assert!(run("{{ .Foo }}").is_err());
}
