//! Request parameters of the HTTP API: URL query and form bodies merged as Go's `r.Form`
//! does (body values first, so the body wins and the first value of a repeated parameter
//! is used), and the parsers Prometheus applies to them — timestamps (float seconds or
//! RFC3339), durations (float seconds or `1h30m`), `limit`, and `match[]` selectors. Also
//! civil-time conversion for RFC3339 output. Parsing only: never reads storage.

use vigil_storage::Matcher;

use super::{ApiError, ErrorType};

/// Prometheus' "minimum time" for an absent `start` (`time.Unix(MinInt64/1000+62135596801, 0)`),
/// in milliseconds.
pub const MIN_TIME_MS: i64 = (i64::MIN / 1000 + 62_135_596_801) * 1000;
/// Prometheus' "maximum time" for an absent `end`, in milliseconds.
pub const MAX_TIME_MS: i64 = (i64::MAX / 1000 - 62_135_596_801) * 1000 + 999;
/// How clients spell the minimum time (Go's `minTime.Format(time.RFC3339Nano)`).
const MIN_TIME_FORMATTED: &str = "-292273086-05-16T16:47:06Z";
/// How clients spell the maximum time.
const MAX_TIME_FORMATTED: &str = "292277025-08-18T07:12:54.999999999Z";

const MS_PER_SECOND: i64 = 1000;
const NANOS_PER_MS: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
const NANOS_PER_SECOND_F: f64 = 1e9;

/// Request parameters in order: form body pairs first, then URL query pairs.
#[derive(Debug, Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Merges a form body and a URL query string (both `application/x-www-form-urlencoded`).
    pub fn from_parts(body: Option<&[u8]>, query: Option<&str>) -> Params {
        let mut pairs = Vec::new();
        if let Some(b) = body {
            parse_form(b, &mut pairs);
        }
        if let Some(q) = query {
            parse_form(q.as_bytes(), &mut pairs);
        }
        Params { pairs }
    }

    /// The first value of `name`, if present (may be empty).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first non-empty value of `name` (Go's `FormValue(name) != ""`).
    pub fn get_nonempty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Splits and decodes `a=b&c=d` pairs (`+` is a space, `%XX` a byte).
fn parse_form(input: &[u8], out: &mut Vec<(String, String)>) {
    for part in input.split(|b| *b == b'&' || *b == b';') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = match part.iter().position(|b| *b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &[][..]),
        };
        out.push((form_decode(k), form_decode(v)));
    }
}

/// Decodes one form component; invalid `%` escapes stay as they are.
pub fn form_decode(s: &[u8]) -> String {
    String::from_utf8_lossy(&percent_decode(s, true)).into_owned()
}

/// Percent-decodes bytes; with `plus_as_space`, `+` becomes a space (forms, not paths).
pub fn percent_decode(s: &[u8], plus_as_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (hex_val(s.get(i + 1)), hex_val(s.get(i + 2))) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn hex_val(b: Option<&u8>) -> Option<u8> {
    match b? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// `invalid parameter "<name>": <reason>` as a `bad_data` error.
pub fn invalid_param(name: &str, reason: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorType::BadData,
        format!("invalid parameter {name:?}: {reason}"),
    )
}

/// Parses a time parameter, or returns `default` when absent or empty.
pub fn time_param(p: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    match p.get_nonempty(name) {
        None => Ok(default),
        Some(s) => parse_time(s)
            .map_err(|e| invalid_param(name, format!("Invalid time value for '{name}': {e}"))),
    }
}

/// Parses a timestamp: Unix seconds as a decimal float (rounded to milliseconds) or
/// RFC3339 with an optional fraction and zone.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let bad = || format!("cannot parse {s:?} to a valid timestamp");
    if let Some(secs) = parse_go_float(s) {
        if !secs.is_finite() {
            return Err(bad());
        }
        let whole = secs.trunc();
        let frac_ms = ((secs - whole) * MS_PER_SECOND as f64).round();
        let ms = whole * MS_PER_SECOND as f64 + frac_ms;
        // Saturate like Go's conversion of huge values into the representable range.
        return Ok(ms.clamp(MIN_TIME_MS as f64, MAX_TIME_MS as f64) as i64);
    }
    if s == MIN_TIME_FORMATTED {
        return Ok(MIN_TIME_MS);
    }
    if s == MAX_TIME_FORMATTED {
        return Ok(MAX_TIME_MS);
    }
    parse_rfc3339_ms(s).ok_or_else(bad)
}

/// Go's `strconv.ParseFloat` accepts decimal floats with exponents, `Inf`, `NaN`, and
/// hex floats; Rust's parser covers the decimal and special forms, which is what clients send.
fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.strip_prefix('+').unwrap_or(s);
    if t.is_empty() || t.starts_with('+') || t.starts_with("-+") {
        return None;
    }
    let lower = t.trim_start_matches('-').to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return s.parse::<f64>().ok();
    }
    if !t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E' | b'_'))
    {
        return None;
    }
    t.replace('_', "").parse::<f64>().ok()
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` into Unix milliseconds (fraction
/// rounded to the millisecond).
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 59
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        nanos = format!("{digits:0<9}").parse().ok()?;
    }
    let offset_s = match &s[i..] {
        "Z" | "z" => 0,
        rest => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || rb[3] != b':' || !matches!(rb[0], b'+' | b'-') {
                return None;
            }
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            if h > 23 || m > 59 {
                return None;
            }
            let o = h * 3600 + m * 60;
            if rb[0] == b'-' {
                -o
            } else {
                o
            }
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * SECONDS_PER_DAY + hour * 3600 + min * 60 + sec - offset_s;
    let ms_frac = (nanos + NANOS_PER_MS / 2) / NANOS_PER_MS;
    Some(secs * MS_PER_SECOND + ms_frac)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01: (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Broken-down UTC time of Unix milliseconds: (year, month, day, hour, minute, second, ms).
pub fn utc_parts(ms: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let secs = ms.div_euclid(MS_PER_SECOND);
    let frac = ms.rem_euclid(MS_PER_SECOND);
    let days = secs.div_euclid(SECONDS_PER_DAY);
    let sod = secs.rem_euclid(SECONDS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, sod / 3600, sod % 3600 / 60, sod % 60, frac)
}

/// Unix milliseconds as RFC3339 in UTC with millisecond precision when non-zero
/// (`2024-08-18T16:53:20.123Z`).
pub fn format_rfc3339_ms(ms: i64) -> String {
    let (y, mo, d, h, mi, s, f) = utc_parts(ms);
    if f == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        let frac = format!("{f:03}");
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{}Z",
            frac.trim_end_matches('0')
        )
    }
}

/// Parses a duration parameter into milliseconds, `None` when absent or empty.
pub fn duration_param(p: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    match p.get_nonempty(name) {
        None => Ok(None),
        Some(s) => parse_duration(s)
            .map(Some)
            .map_err(|e| invalid_param(name, e)),
    }
}

/// Parses a duration: float seconds (`15`, `0.5`) or Prometheus units (`1h30m`, `2m0s`).
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Some(secs) = parse_go_float(s) {
        let ns = secs * NANOS_PER_SECOND_F;
        if ns.is_nan() || ns >= i64::MAX as f64 || ns <= i64::MIN as f64 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok((ns as i64) / NANOS_PER_MS);
    }
    crate::flags::parse_duration_ms(s)
        .map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

/// Parses `limit`: a non-negative integer; absent or `0` means no limit (`None`).
pub fn limit_param(p: &Params, name: &str) -> Result<Option<usize>, ApiError> {
    let Some(s) = p.get_nonempty(name) else {
        return Ok(None);
    };
    let n: i64 = s
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_data(format!("cannot parse {s:?} to a valid {name}")))?;
    if n < 0 {
        return Err(ApiError::bad_data(format!("{name} must be non-negative")));
    }
    Ok(usize::try_from(n).ok().filter(|n| *n > 0))
}

/// Parses every `match[]` selector. Each must hold a matcher that does not match the
/// empty string.
pub fn match_sets(p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    parse_selectors(&p.all("match[]"))
}

/// Parses selectors as `match[]` values.
pub fn parse_selectors(selectors: &[&str]) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let mut out = Vec::with_capacity(selectors.len());
    for s in selectors {
        let ms = vigil_promql::parser::parse_metric_selector(s)
            .map_err(|e| ApiError::bad_data(e.to_string()))?;
        if ms.iter().all(|m| m.matches_empty()) {
            return Err(ApiError::bad_data(
                "match[] must contain at least one non-empty matcher",
            ));
        }
        out.push(ms);
    }
    Ok(out)
}

/// Truncates `v` to `limit`, returning the warning to add when something was cut.
pub fn apply_limit<T>(v: &mut Vec<T>, limit: Option<usize>) -> Vec<String> {
    match limit {
        Some(n) if v.len() > n => {
            v.truncate(n);
            vec![TRUNCATED_WARNING.to_string()]
        }
        _ => Vec::new(),
    }
}

/// The warning of a result cut by `limit`.
pub const TRUNCATED_WARNING: &str = "results truncated due to limit";

/// Undoes the `U__` escaping of UTF-8 label names in paths (`U__http_2e_status` →
/// `http.status`): `__` is `_`, `_<hex>_` a code point. Names without the prefix pass
/// through; a malformed escape is an error.
pub fn unescape_label_name(s: &str) -> Result<String, String> {
    let Some(rest) = s.strip_prefix("U__") else {
        return Ok(s.to_string());
    };
    let bad = || format!("invalid escaped label name {s:?}");
    let mut out = String::with_capacity(rest.len());
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if let Some((_, '_')) = chars.peek() {
            chars.next();
            out.push('_');
            continue;
        }
        let tail = &rest[i + 1..];
        let end = tail.find('_').ok_or_else(bad)?;
        let hex = &tail[..end];
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let cp = u32::from_str_radix(hex, 16).map_err(|_| bad())?;
        out.push(char::from_u32(cp).ok_or_else(bad)?);
        for _ in 0..=end {
            chars.next();
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn times_in_seconds_round_to_milliseconds() {
        assert_eq!(parse_time("1724000000").unwrap(), 1_724_000_000_000);
        assert_eq!(parse_time("1724000000.123").unwrap(), 1_724_000_000_123);
        assert_eq!(parse_time("1724000000.123456").unwrap(), 1_724_000_000_123);
        assert_eq!(parse_time("1724000000.5").unwrap(), 1_724_000_000_500);
        assert_eq!(parse_time("4").unwrap(), 4000);
        assert_eq!(parse_time("-0.5").unwrap(), -500);
        assert_eq!(parse_time("1e3").unwrap(), 1_000_000);
        // Grafana's exemplar probe sends milliseconds: a valid far-future time.
        assert_eq!(parse_time("1724000000000").unwrap(), 1_724_000_000_000_000);
    }

    #[test]
    fn times_in_rfc3339() {
        assert_eq!(
            parse_time("2024-08-18T16:53:20Z").unwrap(),
            1_724_000_000_000
        );
        assert_eq!(
            parse_time("2024-08-18T16:53:20.123Z").unwrap(),
            1_724_000_000_123
        );
        assert_eq!(
            parse_time("2024-08-18T18:53:20+02:00").unwrap(),
            1_724_000_000_000
        );
        assert_eq!(
            parse_time("2024-08-18T16:53:20.123456789Z").unwrap(),
            1_724_000_000_123
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_time("2024-02-29T00:00:00Z").unwrap(),
            1_709_164_800_000
        );
        assert_eq!(parse_time(MIN_TIME_FORMATTED).unwrap(), MIN_TIME_MS);
        assert_eq!(parse_time(MAX_TIME_FORMATTED).unwrap(), MAX_TIME_MS);
        for bad in [
            "abc",
            "",
            "2023-02-29T00:00:00Z",
            "2024-08-18 16:53:20Z",
            "2024-08-18T16:53:20",
            "2024-08-18T16:53:20.Z",
            "NaN",
            "Inf",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_time("abc").unwrap_err(),
            r#"cannot parse "abc" to a valid timestamp"#
        );
    }

    #[test]
    fn rfc3339_round_trip() {
        for ms in [
            0,
            1_724_000_000_123,
            -1,
            951_782_400_000,
            253_402_300_799_999,
        ] {
            assert_eq!(
                parse_rfc3339_ms(&format_rfc3339_ms(ms)).unwrap(),
                ms,
                "{ms}"
            );
        }
        assert_eq!(
            format_rfc3339_ms(1_724_000_000_120),
            "2024-08-18T16:53:20.12Z"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15").unwrap(), 15_000);
        assert_eq!(parse_duration("0.5").unwrap(), 500);
        assert_eq!(parse_duration("15s").unwrap(), 15_000);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration("2m0s").unwrap(), 120_000);
        assert_eq!(parse_duration("1ms").unwrap(), 1);
        assert_eq!(parse_duration("-1").unwrap(), -1000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("1e300")
            .unwrap_err()
            .contains("overflows int64"));
        assert!(parse_duration("30m1h").is_err());
    }

    #[test]
    fn form_merge_body_wins_first_value_wins() {
        let p = Params::from_parts(Some(b"query=1%2B1&time=4"), Some("time=9&time=10&x=a+b"));
        assert_eq!(p.get("query"), Some("1+1"));
        assert_eq!(p.get("time"), Some("4"));
        assert_eq!(p.get("x"), Some("a b"));
        assert_eq!(p.all("time"), vec!["4", "9", "10"]);
        let q = Params::from_parts(None, Some("time=1&time=2&m=%zz%41"));
        assert_eq!(q.get("time"), Some("1"));
        assert_eq!(q.get("m"), Some("%zzA"));
        assert_eq!(q.get("nope"), None);
    }

    #[test]
    fn limits() {
        let p = |s: &str| Params::from_parts(None, Some(s));
        assert_eq!(limit_param(&p(""), "limit").unwrap(), None);
        assert_eq!(limit_param(&p("limit=0"), "limit").unwrap(), None);
        assert_eq!(limit_param(&p("limit=5"), "limit").unwrap(), Some(5));
        assert!(limit_param(&p("limit=-1"), "limit").is_err());
        assert!(limit_param(&p("limit=abc"), "limit").is_err());
        let mut v = vec![1, 2, 3];
        assert_eq!(apply_limit(&mut v, Some(2)), vec![TRUNCATED_WARNING]);
        assert_eq!(v, vec![1, 2]);
        assert!(apply_limit(&mut v, Some(2)).is_empty());
    }

    #[test]
    fn match_selectors() {
        let sets = parse_selectors(&["up", r#"{job="a"}"#]).unwrap();
        assert_eq!(sets.len(), 2);
        let e = parse_selectors(&[r#"{__name__=~".*"}"#]).unwrap_err();
        assert_eq!(e.msg, "match[] must contain at least one non-empty matcher");
        assert!(parse_selectors(&["sum("]).is_err());
    }

    #[test]
    fn utf8_label_names_unescape() {
        assert_eq!(
            unescape_label_name("U__http_2e_status").unwrap(),
            "http.status"
        );
        assert_eq!(unescape_label_name("U__a__b").unwrap(), "a_b");
        assert_eq!(unescape_label_name("job").unwrap(), "job");
        assert_eq!(unescape_label_name("U__x_1f600_").unwrap(), "x\u{1f600}");
        assert!(unescape_label_name("U__a_zz_").is_err());
        assert!(unescape_label_name("U__a_2e").is_err());
    }

    #[test]
    fn min_max_time_constants() {
        assert_eq!(MIN_TIME_MS, -9_223_309_901_257_974_000);
        assert_eq!(MAX_TIME_MS, 9_223_309_901_257_974_999);
    }
}
