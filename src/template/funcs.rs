//! The template function table: Go's builtins (`eq`, `lt`, `len`, `index`, `printf`, …) and
//! Prometheus' alert-template functions (`humanize*`, `query`, `first`, `label`, `match`,
//! `reReplaceAll`, `toTime`, `parseDuration`, …), with Go's semantics and number formatting.
//! Queries go through the caller's `QueryFn`; this module never touches storage itself.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::format::{format_g, sprintf};
use super::value::{QuerySample, Value};
use super::Env;

/// Every function name a template may call (`and`/`or`/`tmpl` are handled by the evaluator).
pub const FUNCTIONS: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    "call", // Go builtins
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "toDuration",
    "now",
    "parseDuration",
    "title",
    "toUpper",
    "toLower",
    "stripPort",
    "stripDomain",
    "match",
    "reReplaceAll",
    "urlQueryEscape",
    "graphLink",
    "tableLink",
    "args",
    "safeHtml",
    "externalURL",
    "pathPrefix",
    "tmpl",
];

/// True if `name` is a known function.
pub fn is_func(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

const SI_UP: [&str; 8] = ["k", "M", "G", "T", "P", "E", "Z", "Y"];
const SI_DOWN: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];
const IEC_UP: [&str; 8] = ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"];
const HUMANIZE_DIGITS: usize = 4;
const NANOS_PER_SEC: f64 = 1e9;

fn g4(v: f64) -> String {
    format_g(v, Some(HUMANIZE_DIGITS), false, false)
}

fn want(args: &[Value], n: usize, name: &str) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn string_arg(v: &Value) -> Result<String, String> {
    match v {
        Value::Str(s) | Value::Html(s) => Ok(s.clone()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.go_type()
        )),
    }
}

/// Prometheus' `convertToFloat`.
pub fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_go_float(s),
        Value::Duration(ns) => Ok(*ns as f64 / NANOS_PER_SEC),
        Value::Time { secs, nanos } => Ok(*secs as f64 + f64::from(*nanos) / NANOS_PER_SEC),
        other => Err(format!("can't convert {} to float", other.go_type())),
    }
}

fn parse_go_float(s: &str) -> Result<f64, String> {
    let t = s.trim_start_matches('+');
    let v = match t.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ => t.parse::<f64>().ok(),
    };
    v.ok_or_else(|| {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            super::format::go_quote(s)
        )
    })
}

fn sample_arg(v: &Value) -> Result<Rc<QuerySample>, String> {
    match v {
        Value::Sample(s) => Ok(s.clone()),
        other => Err(format!(
            "wrong type for value; expected *template.sample; got {}",
            other.go_type()
        )),
    }
}

/// Calls a function by name.
pub fn call(name: &str, args: Vec<Value>, env: &Env<'_>) -> Result<Value, String> {
    match name {
        "not" => {
            want(&args, 1, name)?;
            Ok(Value::Bool(!args[0].truth()))
        }
        "len" => {
            want(&args, 1, name)?;
            match &args[0] {
                Value::Str(s) | Value::Html(s) => Ok(Value::Int(s.len() as i64)),
                Value::Map(m) => Ok(Value::Int(m.len() as i64)),
                Value::List(l) => Ok(Value::Int(l.len() as i64)),
                other => Err(format!("len of type {}", other.go_type())),
            }
        }
        "index" => {
            let mut it = args.into_iter();
            let mut v = it
                .next()
                .ok_or("wrong number of args for index: want at least 1 got 0")?;
            for k in it {
                v = match (v, k) {
                    (Value::Map(m), Value::Str(k)) => {
                        m.get(&k).cloned().unwrap_or(Value::Str(String::new()))
                    }
                    (Value::List(l), Value::Int(i)) => l
                        .get(usize::try_from(i).map_err(|_| format!("index out of range: {i}"))?)
                        .cloned()
                        .ok_or_else(|| format!("index out of range: {i}"))?,
                    (Value::Nil, _) => return Err("index of untyped nil".into()),
                    (c, k) => {
                        return Err(format!("cannot index {} with {}", c.go_type(), k.go_type()))
                    }
                };
            }
            Ok(v)
        }
        "slice" => {
            let mut it = args.into_iter();
            let v = it.next().ok_or("wrong number of args for slice")?;
            let idx: Vec<usize> = it
                .map(|a| match a {
                    Value::Int(i) if i >= 0 => Ok(i as usize),
                    other => Err(format!(
                        "cannot index slice/array with type {}",
                        other.go_type()
                    )),
                })
                .collect::<Result<_, _>>()?;
            match v {
                Value::Str(s) => {
                    let lo = idx.first().copied().unwrap_or(0);
                    let hi = idx.get(1).copied().unwrap_or(s.len());
                    s.get(lo..hi)
                        .map(|x| Value::Str(x.to_string()))
                        .ok_or_else(|| format!("index out of range: {hi}"))
                }
                Value::List(l) => {
                    let lo = idx.first().copied().unwrap_or(0);
                    let hi = idx.get(1).copied().unwrap_or(l.len());
                    l.get(lo..hi)
                        .map(|x| Value::List(x.to_vec()))
                        .ok_or_else(|| format!("index out of range: {hi}"))
                }
                other => Err(format!("can't slice item of type {}", other.go_type())),
            }
        }
        "print" => Ok(Value::Str(go_sprint(&args))),
        "println" => {
            let parts: Vec<String> = args.iter().map(Value::to_go_string).collect();
            Ok(Value::Str(format!("{}\n", parts.join(" "))))
        }
        "printf" => {
            let mut it = args.into_iter();
            let f = it
                .next()
                .ok_or("wrong number of args for printf: want at least 1 got 0")?;
            let f = string_arg(&f)?;
            let rest: Vec<Value> = it.collect();
            Ok(Value::Str(sprintf(&f, &rest)))
        }
        "eq" => {
            if args.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            for b in &args[1..] {
                if compare(&args[0], b, true)? == Some(Ordering::Equal) {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(&args, 2, name)?;
            let ord = compare(&args[0], &args[1], name == "ne")?;
            let r = match name {
                "ne" => ord != Some(Ordering::Equal),
                "lt" => ord == Some(Ordering::Less),
                "le" => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                "gt" => ord == Some(Ordering::Greater),
                _ => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
            };
            Ok(Value::Bool(r))
        }
        "html" => Ok(Value::Str(html_escape(&go_sprint(&args)))),
        "js" => Ok(Value::Str(js_escape(&go_sprint(&args)))),
        "urlquery" => Ok(Value::Str(query_escape(&go_sprint(&args)))),
        "call" => Err("call of non-function".into()),
        "query" => {
            want(&args, 1, name)?;
            let q = string_arg(&args[0])?;
            let Some(qf) = env.query else {
                return Err("no query engine available".into());
            };
            let samples = qf.query(&q, env.ts_ms)?;
            Ok(Value::List(
                samples
                    .into_iter()
                    .map(|s| Value::Sample(Rc::new(s)))
                    .collect(),
            ))
        }
        "first" => {
            want(&args, 1, name)?;
            match &args[0] {
                Value::List(l) => l
                    .first()
                    .cloned()
                    .ok_or_else(|| "first() called on vector with no elements".to_string()),
                other => Err(format!(
                    "wrong type for value; expected template.queryResult; got {}",
                    other.go_type()
                )),
            }
        }
        "label" => {
            want(&args, 2, name)?;
            let l = string_arg(&args[0])?;
            let s = sample_arg(&args[1])?;
            Ok(Value::Str(s.labels.get(&l).cloned().unwrap_or_default()))
        }
        "value" => {
            want(&args, 1, name)?;
            Ok(Value::Float(sample_arg(&args[0])?.value))
        }
        "strvalue" => {
            want(&args, 1, name)?;
            let s = sample_arg(&args[0])?;
            Ok(Value::Str(
                s.labels.get("__value__").cloned().unwrap_or_default(),
            ))
        }
        "sortByLabel" => {
            want(&args, 2, name)?;
            let l = string_arg(&args[0])?;
            let Value::List(mut items) = args[1].clone() else {
                return Err(format!(
                    "wrong type for value; expected template.queryResult; got {}",
                    args[1].go_type()
                ));
            };
            let key = |v: &Value| match v {
                Value::Sample(s) => s.labels.get(&l).cloned().unwrap_or_default(),
                _ => String::new(),
            };
            items.sort_by_key(key);
            Ok(Value::List(items))
        }
        "humanize" => {
            want(&args, 1, name)?;
            Ok(Value::Str(humanize(to_float(&args[0])?)))
        }
        "humanize1024" => {
            want(&args, 1, name)?;
            Ok(Value::Str(humanize1024(to_float(&args[0])?)))
        }
        "humanizeDuration" => {
            want(&args, 1, name)?;
            Ok(Value::Str(humanize_duration(to_float(&args[0])?)))
        }
        "humanizePercentage" => {
            want(&args, 1, name)?;
            Ok(Value::Str(format!("{}%", g4(to_float(&args[0])? * 100.0))))
        }
        "humanizeTimestamp" => {
            want(&args, 1, name)?;
            let v = to_float(&args[0])?;
            if !v.is_finite() {
                return Ok(Value::Str(g4(v)));
            }
            Ok(Value::Str(float_to_time(v)?.to_go_string()))
        }
        "toTime" => {
            want(&args, 1, name)?;
            float_to_time(to_float(&args[0])?)
        }
        "toDuration" => {
            want(&args, 1, name)?;
            let v = to_float(&args[0])?;
            if !v.is_finite() {
                return Err(format!("{} is not a valid duration", g4(v)));
            }
            Ok(Value::Duration((v * NANOS_PER_SEC) as i64))
        }
        "now" => Ok(Value::Float(env.ts_ms as f64 / 1000.0)),
        "parseDuration" => {
            want(&args, 1, name)?;
            let s = string_arg(&args[0])?;
            let ms = crate::flags::parse_duration_ms(&s)?;
            Ok(Value::Float(ms as f64 / 1000.0))
        }
        "title" => {
            want(&args, 1, name)?;
            Ok(Value::Str(title(&string_arg(&args[0])?)))
        }
        "toUpper" => {
            want(&args, 1, name)?;
            Ok(Value::Str(string_arg(&args[0])?.to_uppercase()))
        }
        "toLower" => {
            want(&args, 1, name)?;
            Ok(Value::Str(string_arg(&args[0])?.to_lowercase()))
        }
        "stripPort" => {
            want(&args, 1, name)?;
            let s = string_arg(&args[0])?;
            Ok(Value::Str(split_host_port(&s).map(|(h, _)| h).unwrap_or(s)))
        }
        "stripDomain" => {
            want(&args, 1, name)?;
            Ok(Value::Str(strip_domain(&string_arg(&args[0])?)))
        }
        "match" => {
            want(&args, 2, name)?;
            let re = regex::Regex::new(&string_arg(&args[0])?).map_err(|e| e.to_string())?;
            Ok(Value::Bool(re.is_match(&string_arg(&args[1])?)))
        }
        "reReplaceAll" => {
            want(&args, 3, name)?;
            let re = regex::Regex::new(&string_arg(&args[0])?).map_err(|e| e.to_string())?;
            let repl = string_arg(&args[1])?;
            let text = string_arg(&args[2])?;
            Ok(Value::Str(
                re.replace_all(&text, repl.as_str()).into_owned(),
            ))
        }
        "urlQueryEscape" => {
            want(&args, 1, name)?;
            Ok(Value::Str(query_escape(&string_arg(&args[0])?)))
        }
        "graphLink" | "tableLink" => {
            want(&args, 1, name)?;
            let tab = if name == "graphLink" { 0 } else { 1 };
            Ok(Value::Str(format!(
                "/graph?g0.expr={}&g0.tab={tab}",
                query_escape(&string_arg(&args[0])?)
            )))
        }
        "args" => Ok(Value::Map(
            args.into_iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v))
                .collect::<BTreeMap<_, _>>(),
        )),
        "safeHtml" => {
            want(&args, 1, name)?;
            Ok(Value::Html(string_arg(&args[0])?))
        }
        "externalURL" => Ok(Value::Str(env.external_url.to_string())),
        "pathPrefix" => Ok(Value::Str(url_path(env.external_url))),
        other => Err(format!("function {other:?} not defined")),
    }
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
fn go_sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = |v: &Value| matches!(v, Value::Str(_) | Value::Html(_));
        if i > 0 && !is_str(a) && !is_str(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&a.to_go_string());
    }
    out
}

/// Go's basic-kind comparison; int vs float is an error, as in text/template.
fn compare(a: &Value, b: &Value, eq_only: bool) -> Result<Option<Ordering>, String> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(Some(x.cmp(y))),
        (Value::Float(x), Value::Float(y)) => Ok(x.partial_cmp(y)),
        (Value::Str(x) | Value::Html(x), Value::Str(y) | Value::Html(y)) => Ok(Some(x.cmp(y))),
        (Value::Bool(x), Value::Bool(y)) if eq_only => Ok(Some(x.cmp(y))),
        (Value::Bool(_), Value::Bool(_)) => Err("invalid type for comparison".into()),
        (Value::Nil, Value::Nil) if eq_only => Ok(Some(Ordering::Equal)),
        (Value::Duration(x), Value::Duration(y)) => Ok(Some(x.cmp(y))),
        _ => Err("incompatible types for comparison".into()),
    }
}

/// Prometheus' `humanize`: SI prefixes, 4 significant digits.
pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return g4(v);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in SI_UP {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in SI_DOWN {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", g4(v))
}

/// Prometheus' `humanize1024`: IEC prefixes.
pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in IEC_UP {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

/// Prometheus' `humanizeDuration`: seconds → `1d 2h 3m 4s`, sub-second with SI prefixes.
pub fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let d = v as i64;
        let (secs, mins, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {mins}m {secs}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {mins}m {secs}s");
        }
        if mins != 0 {
            return format!("{sign}{mins}m {secs}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut prefix = "";
    for p in SI_DOWN {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

/// Prometheus' `floatToTime`: seconds → a UTC time with millisecond precision.
fn float_to_time(v: f64) -> Result<Value, String> {
    if !v.is_finite() {
        return Err("value is NaN or Inf".into());
    }
    let ns = v * NANOS_PER_SEC;
    if ns >= i64::MAX as f64 || ns <= i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            super::format::format_float_v(v)
        ));
    }
    // model.TimeFromUnixNano keeps milliseconds.
    let ms = (ns as i64) / 1_000_000;
    Ok(Value::Time {
        secs: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as u32,
    })
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

/// Go's `net.SplitHostPort` for the common forms (`host:port`, `[v6]:port`).
fn split_host_port(s: &str) -> Option<(String, String)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host.to_string(), port.to_string()));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host.to_string(), port.to_string()))
}

fn strip_domain(host_port: &str) -> String {
    let (host, port) = match split_host_port(host_port) {
        Some((h, p)) => (h, Some(p)),
        None => (host_port.to_string(), None),
    };
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host_port.to_string();
    }
    let short = host.split('.').next().unwrap_or("").to_string();
    match port {
        Some(p) if !p.is_empty() || host_port.ends_with(':') => {
            if short.contains(':') {
                format!("[{short}]:{p}")
            } else {
                format!("{short}:{p}")
            }
        }
        _ => short,
    }
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `template.HTMLEscapeString`.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The path part of a URL (`http://h:9090/prom` → `/prom`).
fn url_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    match after_scheme.find('/') {
        Some(i) => {
            let p = &after_scheme[i..];
            p.split(['?', '#']).next().unwrap_or("").to_string()
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_matches_prometheus() {
        // Expected values from Prometheus' template tests (template_test.go).
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(12345.0), "12.35k");
        assert_eq!(humanize(0.1), "100m");
        assert_eq!(humanize(0.0001), "100u");
        assert_eq!(humanize(-1234567.0), "-1.235M");
        assert_eq!(humanize(f64::INFINITY), "+Inf");
        assert_eq!(humanize(f64::NAN), "NaN");
        assert_eq!(humanize(1.0), "1");
        assert_eq!(humanize1024(1048576.0), "1Mi");
        assert_eq!(humanize1024(1024.0), "1ki");
        assert_eq!(humanize1024(0.5), "0.5");
        assert_eq!(humanize1024(1e30), "8.272e+05Yi");
    }

    #[test]
    fn humanize_duration_matches_prometheus() {
        assert_eq!(humanize_duration(0.0), "0s");
        assert_eq!(humanize_duration(1.0), "1s");
        assert_eq!(humanize_duration(60.0), "1m 0s");
        assert_eq!(humanize_duration(3600.0), "1h 0m 0s");
        assert_eq!(humanize_duration(86400.0), "1d 0h 0m 0s");
        assert_eq!(
            humanize_duration(86400.0 + 3600.0 + 60.0 + 1.0),
            "1d 1h 1m 1s"
        );
        assert_eq!(humanize_duration(1.2345), "1.234s");
        assert_eq!(humanize_duration(0.1), "100ms");
        assert_eq!(humanize_duration(0.0001), "100us");
        assert_eq!(humanize_duration(-3600.0), "-1h 0m 0s");
    }

    #[test]
    fn strings_and_urls() {
        assert_eq!(title("aa bb-cc"), "Aa Bb-Cc");
        assert_eq!(strip_domain("foo.example.com:9090"), "foo:9090");
        assert_eq!(strip_domain("foo.example.com"), "foo");
        assert_eq!(strip_domain("192.168.0.1:9090"), "192.168.0.1:9090");
        assert_eq!(
            split_host_port("[::1]:80").map(|p| p.0).as_deref(),
            Some("::1")
        );
        assert_eq!(query_escape("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(url_path("http://h:9090/prom/x?y"), "/prom/x");
        assert_eq!(
            html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&#34;x&#34;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
