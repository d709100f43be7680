//! Number syntax shared by both exposition formats: parsing sample values and timestamps
//! the way Prometheus does (Go `strconv.ParseFloat` without hex floats or underscores),
//! the canonical NaN, and Go's `%g`-style float formatting used to normalise `le` and
//! `quantile` label values. Pure functions; this module never sees lines or labels.

use std::fmt::Write as _;

use nom::branch::alt;
use nom::bytes::complete::tag_no_case;
use nom::character::complete::{char, digit0, digit1, one_of};
use nom::combinator::{opt, recognize};
use nom::sequence::{pair, tuple};
use nom::IResult;

/// Bit pattern of the NaN Go's `strconv.ParseFloat("NaN")` (= `math.NaN()`) returns and
/// Prometheus stores for a `NaN` in exposition text (`value.NormalNaN`). Distinct from the
/// stale marker (`0x7ff0000000000002`), which input text can never produce.
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// Largest count of decimal digits that an `u64` integer fast path converts exactly
/// to `f64` (2^53 > 10^15).
const EXACT_INT_DIGITS: usize = 15;

/// Exponents at which Go's shortest `%g` switches to exponent notation: below
/// `GO_G_MIN_EXP` or at/above `GO_G_MAX_EXP`.
const GO_G_MIN_EXP: i32 = -4;
const GO_G_MAX_EXP: i32 = 6;

/// Milliseconds per second, for OpenMetrics float-second timestamps.
const MS_PER_SECOND: f64 = 1000.0;

/// The canonical NaN as an `f64`.
pub fn normal_nan() -> f64 {
    f64::from_bits(NORMAL_NAN_BITS)
}

/// `[+-]? (digits [. digits*]? | . digits) ([eE] [+-]? digits)?`
fn decimal(i: &[u8]) -> IResult<&[u8], &[u8]> {
    recognize(tuple((
        opt(one_of("+-")),
        alt((
            recognize(pair(digit1, opt(pair(char('.'), digit0)))),
            recognize(pair(char('.'), digit1)),
        )),
        opt(tuple((one_of("eE"), opt(one_of("+-")), digit1))),
    )))(i)
}

/// `[+-]? (infinity | inf)` or `nan`, case-insensitive, as Go accepts them.
fn special(i: &[u8]) -> IResult<&[u8], f64> {
    let (rest, sign) = opt(one_of("+-"))(i)?;
    if let Ok((rest, _)) = alt((
        tag_no_case::<_, _, nom::error::Error<&[u8]>>("infinity"),
        tag_no_case("inf"),
    ))(rest)
    {
        let v = if sign == Some('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        return Ok((rest, v));
    }
    if sign.is_none() {
        let (rest, _) = tag_no_case("nan")(rest)?;
        return Ok((rest, normal_nan()));
    }
    Err(nom::Err::Error(nom::error::Error::new(
        i,
        nom::error::ErrorKind::Tag,
    )))
}

/// Parses a sample value as Prometheus does. Returns `None` for anything Go's
/// `ParseFloat` rejects, for hex floats and underscores (which Prometheus rejects), and for
/// decimal values that overflow `f64`. NaN always comes back as [`NORMAL_NAN_BITS`].
pub fn parse_value(s: &[u8]) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    // Fast path: short unsigned integers, the common case in real pages.
    if s.len() <= EXACT_INT_DIGITS && s.iter().all(u8::is_ascii_digit) {
        let n = s.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
        return Some(n as f64);
    }
    if let Ok((rest, _)) = decimal(s) {
        if rest.is_empty() {
            let text = std::str::from_utf8(s).ok()?;
            let v: f64 = text.parse().ok()?;
            // Go reports overflow as an error (ErrRange); underflow to 0 is fine.
            return if v.is_infinite() { None } else { Some(v) };
        }
        return None;
    }
    match special(s) {
        Ok(([], v)) => Some(v),
        _ => None,
    }
}

/// Parses a finite float (no NaN, no infinities), as OpenMetrics timestamps require.
pub fn parse_finite(s: &[u8]) -> Option<f64> {
    parse_value(s).filter(|v| v.is_finite())
}

/// Converts OpenMetrics float seconds to integer milliseconds the way Prometheus does
/// (`int64(ts * 1000)`: truncation toward zero). Out-of-range values saturate.
pub fn seconds_to_ms(seconds: f64) -> i64 {
    (seconds * MS_PER_SECOND) as i64
}

/// Parses a text-format timestamp: decimal digits only (the lexer's `[0-9]+`), as an
/// `i64` of milliseconds; `None` on overflow.
pub fn parse_int_ms(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Formats `f` like Prometheus' `FormatOpenMetricsFloat`: Go's shortest `%g`, with `.0`
/// appended when the result has neither `.` nor `e`. Writes into `out` (cleared first).
pub fn format_om_float(f: f64, out: &mut String) {
    out.clear();
    if f == 1.0 {
        out.push_str("1.0");
        return;
    }
    if f == 0.0 {
        out.push_str("0.0");
        return;
    }
    if f == -1.0 {
        out.push_str("-1.0");
        return;
    }
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let mut sci = String::with_capacity(32);
    let _ = write!(sci, "{:e}", f.abs());
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if f < 0.0 {
        out.push('-');
    }
    if !(GO_G_MIN_EXP..GO_G_MAX_EXP).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
        return;
    }
    let nd = digits.len() as i32;
    let dp = exp + 1; // position of the decimal point relative to the digits
    if dp <= 0 {
        out.push_str("0.");
        for _ in 0..(-dp) {
            out.push('0');
        }
        out.push_str(&digits);
    } else if dp >= nd {
        out.push_str(&digits);
        for _ in 0..(dp - nd) {
            out.push('0');
        }
        out.push_str(".0");
    } else {
        out.push_str(&digits[..dp as usize]);
        out.push('.');
        out.push_str(&digits[dp as usize..]);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn values_go_accepts() {
        assert_eq!(parse_value(b"1"), Some(1.0));
        assert_eq!(parse_value(b"-1.5e3"), Some(-1500.0));
        assert_eq!(parse_value(b"+.5"), Some(0.5));
        assert_eq!(parse_value(b"5."), Some(5.0));
        assert_eq!(parse_value(b"1E-2"), Some(0.01));
        assert_eq!(
            parse_value(b"0000000000000000000000000000000000000000001.2e-1"),
            Some(0.12)
        );
        assert_eq!(
            parse_value(b"9223372036854775808"),
            Some(9_223_372_036_854_775_808.0)
        );
        assert_eq!(parse_value(b"Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value(b"+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_value(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_value(b"1e-400"), Some(0.0));
    }

    #[test]
    fn values_go_or_prometheus_rejects() {
        for bad in [
            "", "a", "1_2", "0x1p-3", "0x1P-3", "0x1", "0X1", "0b1", "0B1", "0o1", "0O1", "1.1.1",
            "1z", "+nan", "-NaN", "--1", "1e", ".", "+", "1e400", "Infinit", "1 ", " 1",
        ] {
            assert_eq!(
                parse_value(bad.as_bytes()),
                None,
                "{bad:?} must be rejected"
            );
        }
    }

    #[test]
    fn nan_is_normal_nan_never_stale() {
        for s in ["NaN", "nan", "NAN"] {
            let v = parse_value(s.as_bytes()).unwrap();
            assert_eq!(v.to_bits(), NORMAL_NAN_BITS);
            assert_ne!(v.to_bits(), 0x7ff0_0000_0000_0002);
        }
    }

    #[test]
    fn finite_rejects_specials() {
        assert_eq!(parse_finite(b"1.5e3"), Some(1500.0));
        assert_eq!(parse_finite(b"NaN"), None);
        assert_eq!(parse_finite(b"Inf"), None);
        assert_eq!(parse_finite(b"-Inf"), None);
    }

    #[test]
    fn seconds_to_ms_truncates_like_go() {
        assert_eq!(seconds_to_ms(1.1), 1100);
        assert_eq!(seconds_to_ms(1700215884.373), 1_700_215_884_373);
        assert_eq!(seconds_to_ms(0.0000000001), 0);
        assert_eq!(seconds_to_ms(-1.5), -1500);
        assert_eq!(seconds_to_ms(1.2345678901234567e19), i64::MAX);
    }

    #[test]
    fn int_ms() {
        assert_eq!(parse_int_ms(b"1395066363000"), Some(1_395_066_363_000));
        assert_eq!(parse_int_ms(b"-5"), None);
        assert_eq!(parse_int_ms(b"99999999999999999999"), None);
    }

    #[test]
    fn go_g_formatting() {
        let mut s = String::new();
        for (f, want) in [
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-1.0, "-1.0"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.25, "0.25"),
            (100000.0, "100000.0"),
            (1e6, "1e+06"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1.55555555555552e6, "1.55555555555552e+06"),
            (1e23, "1e+23"),
            (-0.5, "-0.5"),
            (123456.0, "123456.0"),
            (1234567.0, "1.234567e+06"),
            (2.5e-310, "2.5e-310"),
            (364.5, "364.5"),
        ] {
            format_om_float(f, &mut s);
            assert_eq!(s, want, "formatting {f}");
        }
    }
}
