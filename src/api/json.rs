//! JSON encoding for the HTTP API: the `{"status":...}` envelope, sample values and
//! timestamps exactly as Prometheus writes them, label sets, and the result shapes of
//! queries (vector, matrix, scalar, string). Hot paths (samples) are written by hand into a
//! `String`; everything else goes through serde_json. This module only formats; it never
//! reads storage or decides status codes.

use std::fmt::Write as _;

use vigil_storage::Labels;

/// Below this magnitude a vector/matrix sample value switches to exponent form.
const EXPONENT_BELOW: f64 = 1e-6;
/// From this magnitude on a vector/matrix sample value switches to exponent form.
const EXPONENT_FROM: f64 = 1e21;
/// Milliseconds per second, for timestamps.
const MS_PER_SECOND: i64 = 1000;

/// Appends `s` as a JSON string literal.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)` with Prometheus' names for the specials:
/// the shortest decimal that round-trips, never an exponent.
pub fn format_plain(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        // Rust's Display for f64 is the shortest round-trip form without an exponent.
        format!("{v}")
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: shortest mantissa, exponent with a sign and
/// at least two digits (`1e-07`, `1.5e+21`).
pub fn format_exponent(v: f64) -> String {
    let s = format!("{v:e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// A vector or matrix sample value, as Prometheus' `MarshalFloat`: plain decimal, but
/// exponent form when `|v| < 1e-6` or `|v| >= 1e21` (zero stays `0`).
pub fn format_sample_value(v: f64) -> String {
    if !v.is_finite() {
        return format_plain(v);
    }
    let a = v.abs();
    if a != 0.0 && !(EXPONENT_BELOW..EXPONENT_FROM).contains(&a) {
        format_exponent(v)
    } else {
        format_plain(v)
    }
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, the float form of the text exposition
/// format (used by `/federate`); see [`g_uses_exponent`] for when it switches to exponents.
pub fn format_go_g(v: f64) -> String {
    if !v.is_finite() {
        return format_plain(v);
    }
    if v == 0.0 {
        return format_plain(v);
    }
    let e = format!("{:e}", v.abs());
    let Some((mant, exp)) = e.split_once('e') else {
        return format_plain(v);
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits = mant.chars().filter(|c| c.is_ascii_digit()).count() as i32;
    if g_uses_exponent(exp, digits) {
        format_exponent(v)
    } else {
        format_plain(v)
    }
}

/// Go's rule for `%g` with the shortest precision: the exponent-form threshold is 6, raised
/// to the number of digits when the number is an integer with more digits (so `123456789`
/// prints as `1.23456789e+08` but `100000` as `100000`).
fn g_uses_exponent(exp: i32, digits: i32) -> bool {
    const SHORTEST_G_PRECISION: i32 = 6;
    let decimal_point = exp + 1;
    let mut eprec = SHORTEST_G_PRECISION;
    if eprec > digits && digits >= decimal_point {
        eprec = digits;
    }
    exp < -4 || exp >= eprec
}

/// Appends a sample value as a JSON string (vector/matrix form).
pub fn write_sample_value(out: &mut String, v: f64) {
    out.push('"');
    out.push_str(&format_sample_value(v));
    out.push('"');
}

/// Appends a timestamp in milliseconds as JSON seconds: at most three decimals, no exponent.
pub fn write_timestamp(out: &mut String, t_ms: i64) {
    let neg = t_ms < 0;
    let abs = t_ms.unsigned_abs();
    let secs = abs / MS_PER_SECOND as u64;
    let frac = abs % MS_PER_SECOND as u64;
    if neg {
        out.push('-');
    }
    let _ = write!(out, "{secs}");
    if frac != 0 {
        let f = format!("{frac:03}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
}

/// A timestamp as a string of JSON seconds (see [`write_timestamp`]).
pub fn format_timestamp(t_ms: i64) -> String {
    let mut s = String::new();
    write_timestamp(&mut s, t_ms);
    s
}

/// Appends a label set as a JSON object.
pub fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, &l.name);
        out.push(':');
        write_str(out, &l.value);
    }
    out.push('}');
}

/// Appends `[t,"v"]` for a vector sample or matrix point.
pub fn write_point(out: &mut String, t_ms: i64, v: f64) {
    out.push('[');
    write_timestamp(out, t_ms);
    out.push(',');
    write_sample_value(out, v);
    out.push(']');
}

/// `{"resultType":"scalar","result":[t,"v"]}`; scalars never use the exponent form.
pub fn scalar_result(t_ms: i64, v: f64) -> String {
    let mut out = String::from("{\"resultType\":\"scalar\",\"result\":[");
    write_timestamp(&mut out, t_ms);
    out.push_str(",\"");
    out.push_str(&format_plain(v));
    out.push_str("\"]}");
    out
}

/// `{"resultType":"string","result":[t,"s"]}`.
pub fn string_result(t_ms: i64, s: &str) -> String {
    let mut out = String::from("{\"resultType\":\"string\",\"result\":[");
    write_timestamp(&mut out, t_ms);
    out.push(',');
    write_str(&mut out, s);
    out.push_str("]}");
    out
}

/// `{"resultType":"vector","result":[{"metric":{..},"value":[t,"v"]},...]}`.
pub fn vector_result<'a>(samples: impl IntoIterator<Item = (&'a Labels, i64, f64)>) -> String {
    let mut out = String::from("{\"resultType\":\"vector\",\"result\":[");
    for (i, (labels, t, v)) in samples.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"metric\":");
        write_labels(&mut out, labels);
        out.push_str(",\"value\":");
        write_point(&mut out, t, v);
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// `{"resultType":"matrix","result":[{"metric":{..},"values":[[t,"v"],...]},...]}`.
pub fn matrix_result<'a, P>(series: impl IntoIterator<Item = (&'a Labels, P)>) -> String
where
    P: IntoIterator<Item = (i64, f64)>,
{
    let mut out = String::from("{\"resultType\":\"matrix\",\"result\":[");
    for (i, (labels, points)) in series.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"metric\":");
        write_labels(&mut out, labels);
        out.push_str(",\"values\":[");
        for (j, (t, v)) in points.into_iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            write_point(&mut out, t, v);
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    out
}

/// The success envelope around already-encoded `data`; empty annotation lists are left out.
pub fn success(data: &str, warnings: &[String], infos: &[String]) -> String {
    let mut out = String::with_capacity(data.len() + 64);
    out.push_str("{\"status\":\"success\",\"data\":");
    out.push_str(data);
    write_string_list(&mut out, "warnings", warnings);
    write_string_list(&mut out, "infos", infos);
    out.push('}');
    out
}

fn write_string_list(out: &mut String, key: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":[");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, s);
    }
    out.push(']');
}

/// The error envelope.
pub fn error(error_type: &str, msg: &str) -> String {
    let mut out = String::from("{\"status\":\"error\",\"errorType\":");
    write_str(&mut out, error_type);
    out.push_str(",\"error\":");
    write_str(&mut out, msg);
    out.push('}');
    out
}

/// A JSON array of strings.
pub fn string_array<S: AsRef<str>>(items: &[S]) -> String {
    let mut out = String::from("[");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(&mut out, s.as_ref());
    }
    out.push(']');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sample_values_switch_to_exponent_outside_1e_minus6_to_1e21() {
        assert_eq!(format_sample_value(1.0), "1");
        assert_eq!(format_sample_value(0.0), "0");
        assert_eq!(format_sample_value(-0.0), "-0");
        assert_eq!(format_sample_value(1e-7), "1e-07");
        assert_eq!(format_sample_value(-1.5e-7), "-1.5e-07");
        assert_eq!(format_sample_value(1e-6), "0.000001");
        assert_eq!(format_sample_value(1e21), "1e+21");
        assert_eq!(format_sample_value(1e20), "100000000000000000000");
        assert_eq!(format_sample_value(123456789012.0), "123456789012");
        assert_eq!(
            format_sample_value(1.7976931348623157e308),
            "1.7976931348623157e+308"
        );
        assert_eq!(format_sample_value(5e-324), "5e-324");
        assert_eq!(format_sample_value(0.1), "0.1");
        assert_eq!(format_sample_value(f64::NAN), "NaN");
        assert_eq!(format_sample_value(f64::INFINITY), "+Inf");
        assert_eq!(format_sample_value(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn scalars_never_use_exponent() {
        assert_eq!(
            scalar_result(4000, 2.0),
            r#"{"resultType":"scalar","result":[4,"2"]}"#
        );
        assert_eq!(
            scalar_result(0, 1e-7),
            r#"{"resultType":"scalar","result":[0,"0.0000001"]}"#
        );
        assert_eq!(
            scalar_result(0, 1e21),
            r#"{"resultType":"scalar","result":[0,"1000000000000000000000"]}"#
        );
        assert_eq!(
            scalar_result(0, f64::NAN),
            r#"{"resultType":"scalar","result":[0,"NaN"]}"#
        );
    }

    #[test]
    fn timestamps_have_at_most_three_decimals_and_no_exponent() {
        assert_eq!(format_timestamp(1_724_000_000_123), "1724000000.123");
        assert_eq!(format_timestamp(1_724_000_000_100), "1724000000.1");
        assert_eq!(format_timestamp(1_724_000_000_000), "1724000000");
        assert_eq!(format_timestamp(4000), "4");
        assert_eq!(format_timestamp(-500), "-0.5");
        assert_eq!(format_timestamp(-1500), "-1.5");
        assert_eq!(format_timestamp(5), "0.005");
        assert_eq!(format_timestamp(0), "0");
        assert_eq!(format_timestamp(i64::MIN), "-9223372036854775.808");
        assert_eq!(format_timestamp(i64::MAX), "9223372036854775.807");
    }

    #[test]
    fn go_g_format_matches_strconv() {
        assert_eq!(format_go_g(1.0), "1");
        assert_eq!(format_go_g(100000.0), "100000");
        assert_eq!(format_go_g(1234567.0), "1.234567e+06");
        assert_eq!(format_go_g(123456789.0), "1.23456789e+08");
        assert_eq!(format_go_g(1e6), "1e+06");
        assert_eq!(format_go_g(0.0001), "0.0001");
        assert_eq!(format_go_g(0.00001), "1e-05");
        assert_eq!(format_go_g(1.5), "1.5");
        assert_eq!(format_go_g(-2.25), "-2.25");
        assert_eq!(format_go_g(f64::NAN), "NaN");
        assert_eq!(format_go_g(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn envelope_and_shapes() {
        let l = Labels::from_pairs(&[("__name__", "up"), ("job", "a\"b")]).unwrap();
        let v = vector_result([(&l, 1_724_000_000_123, 1.0)]);
        assert_eq!(
            v,
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\"b"},"value":[1724000000.123,"1"]}]}"#
        );
        let m = matrix_result([(&l, vec![(1000, 1.0), (2000, 1e-9)])]);
        assert!(m.ends_with(r#""values":[[1,"1"],[2,"1e-09"]]}]}"#), "{m}");
        let empty = vector_result(std::iter::empty());
        assert_eq!(empty, r#"{"resultType":"vector","result":[]}"#);
        let s = success("[]", &[], &["i".to_string()]);
        assert_eq!(s, r#"{"status":"success","data":[],"infos":["i"]}"#);
        let parsed: serde_json::Value = serde_json::from_str(&error("bad_data", "x\ny")).unwrap();
        assert_eq!(parsed["error"], "x\ny");
        assert_eq!(
            string_result(1000, "foo"),
            r#"{"resultType":"string","result":[1,"foo"]}"#
        );
        let ctl = serde_json::from_str::<serde_json::Value>(&string_array(&["\u{1}"])).unwrap();
        assert_eq!(ctl[0], "\u{1}");
    }
}
