//! Series notation of the test language (DSL.md §3.1, §3.4, §4): the metric part in PromQL
//! selector syntax with equality matchers only (`name{a="b"}`, `{"quoted.name", "x.y"="z"}`),
//! value items (`N`, `_`, `_xK`, `stale`, `NxK`, `N+DxK`, `N-DxK`, histogram literals and their
//! sequences) expanded into slots, and `@st` start-timestamp lines.
//!
//! This is a small dedicated parser: it must never depend on the PromQL parser module, and it
//! knows nothing of commands or engines.

use vigil_storage::{Label, Labels};

use super::histogram::{parse_histogram_literal, HistogramLiteral};
use super::number::{parse_series_float, parse_signed_duration_prefix, scan_series_number};

/// Bit pattern of Prometheus' staleness marker, a NaN distinct from arithmetic NaNs.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is exactly the staleness marker.
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One slot of an expanded series: no sample, a float (possibly the stale marker) or a
/// histogram.
#[derive(Clone, Debug, PartialEq)]
pub enum SeqValue {
    Omitted,
    Float(f64),
    Histogram(HistogramLiteral),
}

impl std::fmt::Display for SeqValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeqValue::Omitted => f.write_str("_"),
            SeqValue::Float(v) if is_stale_nan(*v) => f.write_str("stale"),
            SeqValue::Float(v) => f.write_str(&super::number::format_go_float(*v)),
            SeqValue::Histogram(h) => f.write_str(&h.histogram.test_expression()),
        }
    }
}

/// A parsed series line: its label set and its slots.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesLine {
    pub labels: Labels,
    pub values: Vec<SeqValue>,
}

/// Builds a label set from parsed pairs; an all-empty set is the empty label set (`{}`).
fn build_labels(pairs: Vec<(String, String)>) -> Result<Labels, String> {
    if pairs.iter().all(|(_, v)| v.is_empty()) {
        // Still reject duplicate names, which Labels::new would have caught.
        let mut names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err("duplicate label name".to_string());
        }
        return Ok(Labels::empty());
    }
    Labels::new(pairs.iter().map(|(n, v)| Label::new(n, v)).collect()).map_err(|e| e.to_string())
}

fn is_ident_start(c: u8, allow_colon: bool) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || (allow_colon && c == b':')
}

fn is_ident_char(c: u8, allow_colon: bool) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || (allow_colon && c == b':')
}

fn scan_ident(s: &str, allow_colon: bool) -> usize {
    let b = s.as_bytes();
    if b.is_empty() || !is_ident_start(b[0], allow_colon) {
        return 0;
    }
    1 + b[1..]
        .iter()
        .take_while(|c| is_ident_char(**c, allow_colon))
        .count()
}

/// Scans a PromQL string literal at the start of `s` (`"…"`, `'…'` or `` `…` ``) and returns
/// its unquoted value and byte length.
pub fn scan_string_literal(s: &str) -> Result<(String, usize), String> {
    let quote = s
        .chars()
        .next()
        .ok_or_else(|| "expected a string literal".to_string())?;
    if quote == '`' {
        let end = s[1..]
            .find('`')
            .ok_or_else(|| "unterminated raw string".to_string())?;
        return Ok((s[1..1 + end].to_string(), end + 2));
    }
    if quote != '"' && quote != '\'' {
        return Err(format!("expected a string literal at {s:?}"));
    }
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Ok((out, i + 1));
        }
        if c == '\n' {
            break;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let (_, e) = chars
            .next()
            .ok_or_else(|| "unterminated string escape".to_string())?;
        let simple = match e {
            'a' => Some('\u{07}'),
            'b' => Some('\u{08}'),
            'f' => Some('\u{0c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{0b}'),
            '\\' => Some('\\'),
            '"' if quote == '"' => Some('"'),
            '\'' if quote == '\'' => Some('\''),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            continue;
        }
        let (digits, radix) = match e {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='7' => (2, 8),
            _ => return Err(format!("unknown escape sequence \\{e}")),
        };
        let mut code = if radix == 8 {
            e.to_digit(8).unwrap_or(0)
        } else {
            0
        };
        for _ in 0..digits {
            let (_, d) = chars
                .next()
                .ok_or_else(|| "unterminated string escape".to_string())?;
            let d = d
                .to_digit(radix)
                .ok_or_else(|| format!("invalid digit {d:?} in escape"))?;
            code = code * radix + d;
        }
        if e == 'x' || radix == 8 {
            // Byte escapes: only ASCII can be represented in a Rust string.
            if code > 0x7f {
                return Err(format!(
                    "non-ASCII byte escape \\{e}{code:x} in label value"
                ));
            }
        }
        out.push(char::from_u32(code).ok_or_else(|| format!("invalid code point {code:#x}"))?);
    }
    Err("unterminated string literal".to_string())
}

fn skip_ws(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

/// Parses the metric part of a series line: `name`, `name{…}` or `{…}` with `=` matchers only.
/// Returns the label set and the unparsed rest.
pub fn parse_metric(s: &str) -> Result<(Labels, &str), String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let name_len = scan_ident(s, true);
    if name_len > 0 {
        pairs.push(("__name__".to_string(), s[..name_len].to_string()));
    }
    let mut rest = &s[name_len..];
    if let Some(inner) = rest.strip_prefix('{') {
        rest = skip_ws(inner);
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            // A label name (identifier or quoted) or a bare quoted metric name.
            let (name, quoted, used) = if rest.starts_with(['"', '\'', '`']) {
                let (v, n) = scan_string_literal(rest)?;
                (v, true, n)
            } else {
                let n = scan_ident(rest, false);
                if n == 0 {
                    return Err(format!("expected label name at {rest:?}"));
                }
                (rest[..n].to_string(), false, n)
            };
            rest = skip_ws(&rest[used..]);
            if let Some(after) = rest.strip_prefix('=') {
                if after.starts_with('~') {
                    return Err("only equality matchers are allowed in series".to_string());
                }
                let after = skip_ws(after);
                let (value, n) = scan_string_literal(after)?;
                pairs.push((name, value));
                rest = skip_ws(&after[n..]);
            } else if quoted {
                pairs.push(("__name__".to_string(), name));
            } else if rest.starts_with("!=") {
                return Err("only equality matchers are allowed in series".to_string());
            } else {
                return Err(format!("expected '=' after label name {name:?}"));
            }
            if let Some(after) = rest.strip_prefix(',') {
                rest = skip_ws(after);
            } else if !rest.starts_with('}') {
                return Err(format!("expected ',' or '}}' at {rest:?}"));
            }
        }
    } else if name_len == 0 {
        return Err(format!("expected a metric name or '{{' at {s:?}"));
    }
    Ok((build_labels(pairs)?, rest))
}

fn parse_count(s: &str) -> Result<(u64, &str), String> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return Err(format!("expected a repetition count at {s:?}"));
    }
    let k = s[..n]
        .parse::<u64>()
        .map_err(|_| format!("repetition count {:?} out of range", &s[..n]))?;
    Ok((k, &s[n..]))
}

/// Upper bound on slots from one item, so a typo cannot exhaust memory.
const MAX_SLOTS_PER_ITEM: u64 = 10_000_000;

fn check_count(k: u64) -> Result<usize, String> {
    if k > MAX_SLOTS_PER_ITEM {
        return Err(format!("repetition count {k} too large"));
    }
    usize::try_from(k).map_err(|_| format!("repetition count {k} too large"))
}

fn item_end(rest: &str) -> Result<&str, String> {
    if rest.is_empty() || rest.starts_with([' ', '\t']) {
        Ok(rest)
    } else {
        Err(format!("unexpected {rest:?} in series values"))
    }
}

fn parse_number_token(s: &str) -> Result<(f64, &str), String> {
    let n = scan_series_number(s);
    if n == 0 {
        let word: String = s.chars().take_while(|c| !c.is_whitespace()).collect();
        return Err(format!("invalid series value {word:?}"));
    }
    let v = parse_series_float(&s[..n]).ok_or_else(|| format!("invalid number {:?}", &s[..n]))?;
    Ok((v, &s[n..]))
}

/// Parses one item and appends its slots; returns the rest after the item.
fn parse_item<'a>(s: &'a str, out: &mut Vec<SeqValue>) -> Result<&'a str, String> {
    if let Some(rest) = s.strip_prefix('_') {
        if let Some(rest) = rest.strip_prefix('x') {
            let (k, rest) = parse_count(rest)?;
            out.extend(std::iter::repeat_n(SeqValue::Omitted, check_count(k)?));
            return item_end(rest);
        }
        out.push(SeqValue::Omitted);
        return item_end(rest);
    }
    if let Some(rest) = s.strip_prefix("stale") {
        out.push(SeqValue::Float(stale_nan()));
        return item_end(rest);
    }
    if s.starts_with("{{") {
        let (first, n) = parse_histogram_literal(s)?;
        let rest = &s[n..];
        if let Some(rest) = rest.strip_prefix('x') {
            let (k, rest) = parse_count(rest)?;
            let count = check_count(k)?.saturating_add(1);
            out.extend(std::iter::repeat_n(SeqValue::Histogram(first), count));
            return item_end(rest);
        }
        if let Some(op) = rest.chars().next().filter(|c| *c == '+' || *c == '-') {
            let (inc, n) = parse_histogram_literal(&rest[1..])?;
            let rest = rest[1 + n..]
                .strip_prefix('x')
                .ok_or_else(|| "expected 'x' after histogram increment".to_string())?;
            let (k, rest) = parse_count(rest)?;
            let mut cur = first.histogram;
            out.push(SeqValue::Histogram(HistogramLiteral {
                histogram: cur.clone(),
                hint_set: inc.hint_set,
            }));
            for _ in 0..check_count(k)? {
                cur = cur.combine(&inc.histogram, op == '-')?;
                out.push(SeqValue::Histogram(HistogramLiteral {
                    histogram: cur.clone(),
                    hint_set: inc.hint_set,
                }));
            }
            return item_end(rest);
        }
        out.push(SeqValue::Histogram(first));
        return item_end(rest);
    }
    let (start, rest) = parse_number_token(s)?;
    if let Some(rest) = rest.strip_prefix('x') {
        let (k, rest) = parse_count(rest)?;
        let count = check_count(k)?.saturating_add(1);
        out.extend(std::iter::repeat_n(SeqValue::Float(start), count));
        return item_end(rest);
    }
    if rest.starts_with(['+', '-']) {
        let (delta, after) = parse_number_token(rest)?;
        let after = after
            .strip_prefix('x')
            .ok_or_else(|| format!("expected 'x<count>' after step in {s:?}"))?;
        let (k, after) = parse_count(after)?;
        let mut v = start;
        out.push(SeqValue::Float(v));
        for _ in 0..check_count(k)? {
            v += delta;
            out.push(SeqValue::Float(v));
        }
        return item_end(after);
    }
    out.push(SeqValue::Float(start));
    item_end(rest)
}

/// Parses the space-separated value items of a series line into slots.
pub fn parse_values(s: &str) -> Result<Vec<SeqValue>, String> {
    let mut out = Vec::new();
    let mut rest = skip_ws(s);
    while !rest.is_empty() {
        rest = skip_ws(parse_item(rest, &mut out)?);
    }
    Ok(out)
}

/// Parses `<series> <values>`.
pub fn parse_series_line(line: &str) -> Result<SeriesLine, String> {
    let (labels, rest) = parse_metric(line)?;
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return Err(format!("unexpected {rest:?} after series metric"));
    }
    Ok(SeriesLine {
        labels,
        values: parse_values(rest)?,
    })
}

/// Marker that glues a start-timestamp line to its metric: `metric{…}@st <items>`.
const ST_SUFFIX: &str = "@st";

/// A parsed `@st` line: the label set and one optional ST offset (ms) per slot.
pub type StLine = (Labels, Vec<Option<i64>>);

/// If `line` is an `@st` line, parses it into its label set and per-slot ST offsets (ms;
/// `None` for `_`). Returns `Ok(None)` for ordinary lines.
pub fn parse_st_line(line: &str) -> Result<Option<StLine>, String> {
    let Ok((labels, rest)) = parse_metric(line) else {
        return Ok(None);
    };
    let Some(items) = rest.strip_prefix(ST_SUFFIX) else {
        return Ok(None);
    };
    if !items.starts_with([' ', '\t']) {
        return Err("invalid @st line: missing value sequence".to_string());
    }
    let mut out = Vec::new();
    for item in items.split_whitespace() {
        parse_st_item(item, &mut out).map_err(|e| format!("invalid ST item {item:?}: {e}"))?;
    }
    Ok(Some((labels, out)))
}

fn parse_st_item(item: &str, out: &mut Vec<Option<i64>>) -> Result<(), String> {
    if item == "_" {
        out.push(None);
        return Ok(());
    }
    if let Some(rest) = item.strip_prefix("_x") {
        let (k, rest) = parse_count(rest)?;
        if k == 0 || !rest.is_empty() {
            return Err("invalid repeat count".to_string());
        }
        out.extend(std::iter::repeat_n(None, check_count(k)?));
        return Ok(());
    }
    let (base, rest) = parse_signed_duration_prefix(item)?;
    if rest.is_empty() {
        out.push(Some(base));
        return Ok(());
    }
    let (delta, rest) = if let Some(r) = rest.strip_prefix('x') {
        (0, r)
    } else if rest.starts_with(['+', '-']) {
        let (d, r) = parse_signed_duration_prefix(rest)?;
        let r = r
            .strip_prefix('x')
            .ok_or_else(|| "expected 'x<count>' after step duration".to_string())?;
        (d, r)
    } else {
        return Err(format!("unexpected {rest:?} after duration"));
    };
    let (k, rest) = parse_count(rest)?;
    if !rest.is_empty() {
        return Err(format!("unexpected {rest:?} after repeat count"));
    }
    let mut offset = base;
    for _ in 0..=check_count(k)? {
        out.push(Some(offset));
        offset = offset.saturating_add(delta);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn floats(s: &str) -> Vec<Option<f64>> {
        parse_values(s)
            .unwrap()
            .into_iter()
            .map(|v| match v {
                SeqValue::Float(f) => Some(f),
                SeqValue::Omitted => None,
                SeqValue::Histogram(_) => panic!("unexpected histogram"),
            })
            .collect()
    }

    #[test]
    fn expansion_forms() {
        assert_eq!(
            floats("1+1x3"),
            vec![Some(1.0), Some(2.0), Some(3.0), Some(4.0)]
        );
        assert_eq!(floats("0+10x10").len(), 11);
        assert_eq!(
            floats("-2+4x3"),
            vec![Some(-2.0), Some(2.0), Some(6.0), Some(10.0)]
        );
        assert_eq!(floats("10-2x2"), vec![Some(10.0), Some(8.0), Some(6.0)]);
        assert_eq!(floats("-1x3"), vec![Some(-1.0); 4]);
        assert_eq!(floats("1x4"), vec![Some(1.0); 5]);
        assert_eq!(
            floats("1 _x3 5"),
            vec![Some(1.0), None, None, None, Some(5.0)]
        );
        assert_eq!(
            floats("_ 1e3 -2x2"),
            vec![None, Some(1000.0), Some(-2.0), Some(-2.0), Some(-2.0)]
        );
        // Quirk: hex is not a series number, so 0x10 is eleven zeros.
        assert_eq!(floats("0x10"), vec![Some(0.0); 11]);
        assert!(floats("").is_empty());
    }

    #[test]
    fn special_values() {
        let v = parse_values("stale NaN Inf -inf").unwrap();
        match &v[0] {
            SeqValue::Float(f) => assert_eq!(f.to_bits(), STALE_NAN_BITS),
            other => panic!("{other:?}"),
        }
        match &v[1] {
            SeqValue::Float(f) => assert!(f.is_nan() && !is_stale_nan(*f)),
            other => panic!("{other:?}"),
        }
        assert_eq!(v[2], SeqValue::Float(f64::INFINITY));
        assert_eq!(v[3], SeqValue::Float(f64::NEG_INFINITY));
    }

    #[test]
    fn ramp_accumulates_like_repeated_addition() {
        let v = floats("0+0.1x3");
        let mut acc = 0.0;
        for (i, x) in v.iter().enumerate() {
            assert_eq!(x.unwrap().to_bits(), f64::to_bits(acc), "slot {i}");
            acc += 0.1;
        }
    }

    #[test]
    fn rejects_malformed_items() {
        for bad in [
            "1m",
            "1+1",
            "stalex2",
            "1 2 # c",
            "foo",
            "1x",
            "{{sum:1}}+",
            "1,2",
        ] {
            assert!(parse_values(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn histogram_sequences() {
        let v = parse_values("{{count:0}}+{{count:1}}x4").unwrap();
        assert_eq!(v.len(), 5);
        match &v[4] {
            SeqValue::Histogram(h) => assert_eq!(h.histogram.count, 4.0),
            other => panic!("{other:?}"),
        }
        let v = parse_values("{{schema:0 sum:4 count:4 buckets:[1 2 1]}}-{{schema:0 sum:1 count:1 buckets:[1] counter_reset_hint:gauge}}x2 {{}}x1").unwrap();
        assert_eq!(v.len(), 5);
        match &v[2] {
            SeqValue::Histogram(h) => {
                assert!(
                    h.hint_set,
                    "increment's explicit hint flag applies to every slot"
                );
                assert_eq!(h.histogram.count, 2.0);
                assert_eq!(h.histogram.positive_buckets, vec![-1.0, 2.0, 1.0]);
            }
            other => panic!("{other:?}"),
        }
        match &v[0] {
            SeqValue::Histogram(h) => assert!(h.hint_set),
            other => panic!("{other:?}"),
        }
        let err = parse_values("{{schema:1 count:1}}+{{schema:0 count:1}}x2").unwrap_err();
        assert!(err.contains("cannot merge from schema"), "{err}");
    }

    #[test]
    fn metric_notation() {
        let l = parse_series_line(r#"http_requests{job="api-server", instance="0",} 1"#).unwrap();
        assert_eq!(l.labels.get("__name__"), Some("http_requests"));
        assert_eq!(l.labels.get("instance"), Some("0"));
        assert_eq!(l.labels.len(), 3);
        let l = parse_series_line(r#"{"my.metric", "a.b"='c\'d'} 1"#).unwrap();
        assert_eq!(l.labels.get("__name__"), Some("my.metric"));
        assert_eq!(l.labels.get("a.b"), Some("c'd"));
        let l = parse_series_line(r#"{__name__="x", l=`raw\n`} 1"#).unwrap();
        assert_eq!(l.labels.get("l"), Some("raw\\n"));
        let l = parse_series_line("{} 1").unwrap();
        assert!(l.labels.is_empty());
        let l = parse_series_line("name{} 1 _ 3").unwrap();
        assert_eq!(l.labels.len(), 1);
        assert_eq!(l.values.len(), 3);
        let l = parse_series_line("job:rate5m 1").unwrap();
        assert_eq!(l.labels.get("__name__"), Some("job:rate5m"));
        let l = parse_series_line("m{a=\"\\u00e9\\x41\\n\"} 1").unwrap();
        assert_eq!(l.labels.get("a"), Some("éA\n"));
        for bad in [
            r#"m{a=~"b"} 1"#,
            r#"m{a!="b"} 1"#,
            r#"m{a="b" 1"#,
            r#"m{a="b",a="c"} 1"#,
            "m{a} 1",
            "m{a=b} 1",
        ] {
            assert!(parse_series_line(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn st_lines() {
        let (labels, offs) =
            parse_st_line(r#"cumulative{type="st_resets"}@st       _ _ -30s-1mx2 -1ms-1mx1"#)
                .unwrap()
                .unwrap();
        assert_eq!(labels.get("type"), Some("st_resets"));
        assert_eq!(
            offs,
            vec![
                None,
                None,
                Some(-30_000),
                Some(-90_000),
                Some(-150_000),
                Some(-1),
                Some(-60_001)
            ]
        );
        let (_, offs) = parse_st_line("m@st -0msx15").unwrap().unwrap();
        assert_eq!(offs, vec![Some(0); 16]);
        let (_, offs) = parse_st_line("m@st _x3 1m").unwrap().unwrap();
        assert_eq!(offs, vec![None, None, None, Some(60_000)]);
        assert!(parse_st_line("m 1 2").unwrap().is_none());
        assert!(parse_st_line("m@st _x0").is_err());
        assert!(parse_st_line("m@st 1mq").is_err());
    }
}
