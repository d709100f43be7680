//! Number and duration syntax of the test language: series-value numbers (DSL.md §3.1, with
//! the Go base-prefix integer quirk), scalar expectation lines (§6.2 rule 5), Prometheus
//! durations (§2), signed duration prefixes for `@st` lines (§3.4), and Go's `%v` rendering of
//! floats for failure messages.
//!
//! Pure string functions; this module must never know about commands, labels or engines.

/// Milliseconds per unit, in the only order a duration may use them (largest first).
const DURATION_UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 60 * 60 * 1000),
    ("w", 7 * 24 * 60 * 60 * 1000),
    ("d", 24 * 60 * 60 * 1000),
    ("h", 60 * 60 * 1000),
    ("ms", 1),
    ("m", 60 * 1000),
    ("s", 1000),
];

/// Rank of each unit in `DURATION_UNITS` in the required largest-to-smallest order
/// (`ms` is listed before `m` only so that it is matched first).
const DURATION_UNIT_RANK: [usize; 7] = [0, 1, 2, 3, 6, 4, 5];

/// Parses the duration groups at the start of `s` (`1h30m`, `500ms`, …). Returns the value in
/// milliseconds and the number of bytes consumed; consumes nothing when `s` does not start
/// with a digit. Errors on overflow or units out of order.
fn parse_duration_groups(s: &str) -> Result<(i64, usize), String> {
    let bytes = s.as_bytes();
    let mut pos = 0usize;
    let mut total: i64 = 0;
    let mut last_rank: Option<usize> = None;
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        let digits_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let n: i64 = s[digits_start..pos]
            .parse()
            .map_err(|_| format!("duration number {:?} out of range", &s[digits_start..pos]))?;
        let Some((unit_idx, (unit, ms))) = DURATION_UNITS
            .iter()
            .enumerate()
            .find(|(_, (u, _))| s[pos..].starts_with(u))
        else {
            // Digits without a unit: only a bare leading `0` is a duration (`0`, `0-1mx4`).
            if digits_start == 0 && n == 0 {
                return Ok((0, pos));
            }
            return Err(format!("missing unit in duration {s:?}"));
        };
        let rank = DURATION_UNIT_RANK[unit_idx];
        if last_rank.is_some_and(|r| r >= rank) {
            return Err(format!("units out of order in duration {s:?}"));
        }
        last_rank = Some(rank);
        pos += unit.len();
        total = n
            .checked_mul(*ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration {s:?} out of range"))?;
    }
    Ok((total, pos))
}

/// Parses a Prometheus duration (`model.ParseDuration`): `0`, or unit groups such as
/// `1h30m`, `20s500ms`; no sign, fractions or spaces. Returns milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if s.is_empty() {
        return Err("empty duration string".to_string());
    }
    let (ms, used) = parse_duration_groups(s)?;
    if used != s.len() || used == 0 {
        return Err(format!("not a valid duration string: {s:?}"));
    }
    Ok(ms)
}

/// Parses an optionally signed duration at the start of `s` (used by `@st` items); returns
/// milliseconds and the rest of the string.
pub fn parse_signed_duration_prefix(s: &str) -> Result<(i64, &str), String> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (ms, used) = parse_duration_groups(body)?;
    if used == 0 {
        return Err(format!("expected a duration at {s:?}"));
    }
    Ok((if negative { -ms } else { ms }, &body[used..]))
}

/// Length of the number token at the start of `s` in series-value syntax: an optional sign,
/// then `Inf`/`NaN` (any case) or digits with `_`, `.` and an exponent. Zero if none.
pub fn scan_series_number(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let word_end = i + b[i..]
        .iter()
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    let word = &s[i..word_end];
    if word.eq_ignore_ascii_case("inf") || word.eq_ignore_ascii_case("nan") {
        return word_end;
    }
    let start = i;
    let mut seen_digit = false;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_' || b[i] == b'.') {
        seen_digit |= b[i].is_ascii_digit();
        i += 1;
    }
    if !seen_digit {
        return 0;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let digits = b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 {
            i = j + digits;
        }
    }
    if i == start {
        0
    } else {
        i
    }
}

/// Removes `_` digit separators, which must sit between digits (as in Go literals).
fn strip_underscores(s: &str) -> Option<String> {
    if !s.contains('_') {
        return Some(s.to_string());
    }
    let b = s.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'_' {
            let before = i.checked_sub(1).map(|p| b[p]);
            let after = b.get(i + 1);
            if !before.is_some_and(|c| c.is_ascii_alphanumeric())
                || !after.is_some_and(|c| c.is_ascii_alphanumeric())
            {
                return None;
            }
        }
    }
    Some(s.replace('_', ""))
}

/// Go's `strconv.ParseInt(s, 0, 64)`: sign, then `0x`/`0o`/`0b`/leading-`0` octal or decimal.
/// `allow_hex` is false for series values, whose lexer never produces hex text.
fn parse_go_int(s: &str, allow_hex: bool) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        if !allow_hex {
            return None;
        }
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower)
    };
    let digits = strip_underscores(digits.trim_start_matches('_'))?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// Go's `ParseFloat` for decimal text: `Inf`/`Infinity`/`NaN` in any case, exponents, `_`.
fn parse_go_float(s: &str) -> Option<f64> {
    let body = s.trim_start_matches(['+', '-']);
    if body.len() + 1 < s.len() {
        return None;
    }
    if body.eq_ignore_ascii_case("inf")
        || body.eq_ignore_ascii_case("infinity")
        || body.eq_ignore_ascii_case("nan")
    {
        // Rust's parser accepts exactly these spellings (and signs) too.
        return s.parse::<f64>().ok();
    }
    if !body
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-' | b'_'))
    {
        return None;
    }
    strip_underscores(s)?.parse::<f64>().ok()
}

/// Parses a number in series-value syntax (DSL.md §3.1): integers first as Go base-prefixed
/// integers (so `010` is octal 8, a quirk), otherwise floats; no hex.
pub fn parse_series_float(s: &str) -> Option<f64> {
    if let Some(i) = parse_go_int(s, false) {
        return Some(i as f64);
    }
    parse_go_float(s)
}

/// Parses a whole body line as a scalar expectation (DSL.md §6.2 rule 5): a Go integer with
/// base prefix (hex allowed here), otherwise a float.
pub fn parse_scalar_line(s: &str) -> Option<f64> {
    if let Some(i) = parse_go_int(s, true) {
        return Some(i as f64);
    }
    parse_go_float(s)
}

/// Go's `%v` float formatting, shared with the engine's messages.
pub use crate::kernels::format::format_go_float;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("0s"), Ok(0));
        assert_eq!(parse_duration("5m"), Ok(300_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("20s500ms"), Ok(20_500));
        assert_eq!(parse_duration("1111111s"), Ok(1_111_111_000));
        assert_eq!(parse_duration("1y"), Ok(31_536_000_000));
        assert_eq!(parse_duration("2w1d"), Ok(15 * 86_400_000));
        for bad in [
            "", "0x", "00s1", "30m1h", "1.5m", "-1m", "10", "1m1m", "5 m", "ms", "1ms1s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn signed_duration_prefix() {
        assert_eq!(
            parse_signed_duration_prefix("-30s-1mx2"),
            Ok((-30_000, "-1mx2"))
        );
        assert_eq!(parse_signed_duration_prefix("-0msx15"), Ok((0, "x15")));
        assert_eq!(parse_signed_duration_prefix("-59999ms"), Ok((-59_999, "")));
        assert_eq!(
            parse_signed_duration_prefix("+1m+1sx3"),
            Ok((60_000, "+1sx3"))
        );
        assert_eq!(parse_signed_duration_prefix("0-1mx4"), Ok((0, "-1mx4")));
        assert!(parse_signed_duration_prefix("x3").is_err());
    }

    #[test]
    fn series_numbers() {
        assert_eq!(parse_series_float("1"), Some(1.0));
        assert_eq!(parse_series_float("-1"), Some(-1.0));
        assert_eq!(parse_series_float("+1"), Some(1.0));
        assert_eq!(parse_series_float(".5"), Some(0.5));
        assert_eq!(parse_series_float("1e3"), Some(1000.0));
        assert_eq!(parse_series_float("1.2e-3"), Some(0.0012));
        assert_eq!(parse_series_float("1_000"), Some(1000.0));
        assert_eq!(parse_series_float("010"), Some(8.0));
        assert_eq!(parse_series_float("09"), Some(9.0));
        assert_eq!(parse_series_float("inf"), Some(f64::INFINITY));
        assert_eq!(parse_series_float("-Inf"), Some(f64::NEG_INFINITY));
        assert!(parse_series_float("NaN").unwrap().is_nan());
        assert_eq!(parse_series_float("0x10"), None);
        assert_eq!(parse_series_float("1m"), None);
    }

    #[test]
    fn scanning_stops_at_x_and_operators() {
        assert_eq!(scan_series_number("1+1x3"), 1);
        assert_eq!(scan_series_number("-2+4x3"), 2);
        assert_eq!(scan_series_number("1e3x2"), 3);
        assert_eq!(scan_series_number("1.5e-3"), 6);
        assert_eq!(scan_series_number("0x10"), 1);
        assert_eq!(scan_series_number("Infx2"), 0);
        assert_eq!(scan_series_number("-Inf"), 4);
        assert_eq!(scan_series_number("nan"), 3);
        assert_eq!(scan_series_number("stale"), 0);
        assert_eq!(scan_series_number("_"), 0);
    }

    #[test]
    fn scalar_lines() {
        assert_eq!(parse_scalar_line("0x10"), Some(16.0));
        assert_eq!(parse_scalar_line("12340000"), Some(12_340_000.0));
        assert_eq!(parse_scalar_line("0.00001234"), Some(0.00001234));
        assert_eq!(parse_scalar_line("+Inf"), Some(f64::INFINITY));
        assert!(parse_scalar_line("NaN").unwrap().is_nan());
        assert_eq!(parse_scalar_line("{} 1"), None);
        assert_eq!(parse_scalar_line("metric"), None);
        assert_eq!(parse_scalar_line("expect"), None);
    }

    #[test]
    fn go_float_format() {
        assert_eq!(format_go_float(1.0), "1");
        assert_eq!(format_go_float(0.5), "0.5");
        assert_eq!(format_go_float(100000.0), "100000");
        assert_eq!(format_go_float(1e6), "1e+06");
        assert_eq!(format_go_float(12_340_000.0), "1.234e+07");
        assert_eq!(format_go_float(0.0001), "0.0001");
        assert_eq!(format_go_float(0.00001234), "1.234e-05");
        assert_eq!(format_go_float(-2.5), "-2.5");
        assert_eq!(format_go_float(0.0), "0");
        assert_eq!(format_go_float(f64::INFINITY), "+Inf");
        assert_eq!(format_go_float(f64::NAN), "NaN");
    }
}
