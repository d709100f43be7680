//! Prometheus duration literals (`1h30m`, `5m`, `100ms`): parsing with Prometheus' rules and
//! error texts, and canonical printing. Owns the text form of durations only; it never
//! evaluates duration expressions (the engine does that with step/range context).

/// Milliseconds per unit, with the position that enforces the `y w d h m s ms` order.
const UNITS: [(&str, u8, u64); 7] = [
    ("y", 1, 365 * 24 * 60 * 60 * 1000),
    ("w", 2, 7 * 24 * 60 * 60 * 1000),
    ("d", 3, 24 * 60 * 60 * 1000),
    ("h", 4, 60 * 60 * 1000),
    ("m", 5, 60 * 1000),
    ("s", 6, 1000),
    ("ms", 7, 1),
];

/// Nanoseconds per millisecond (Prometheus checks overflow in nanoseconds).
const NANOS_PER_MILLI: u128 = 1_000_000;
/// Largest duration in nanoseconds (Go's `time.Duration` is an int64).
const MAX_DURATION_NANOS: u128 = i64::MAX as u128;

/// Parses a Prometheus duration into milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    match s {
        "0" => return Ok(0),
        "" => return Err("empty duration string".to_string()),
        _ => {}
    }
    let invalid = || {
        format!(
            "not a valid duration string: {}",
            super::quote::go_quote_str(s)
        )
    };
    let b = s.as_bytes();
    let mut i = 0;
    let mut total_ns: u128 = 0;
    let mut last_pos = 0u8;
    while i < b.len() {
        let ds = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == ds {
            return Err(invalid());
        }
        let v: u128 = s[ds..i].parse().map_err(|_| invalid())?;
        let us = i;
        while i < b.len() && !b[i].is_ascii_digit() {
            i += 1;
        }
        if i == us {
            return Err(invalid());
        }
        let unit = &s[us..i];
        let Some(&(_, pos, ms)) = UNITS.iter().find(|u| u.0 == unit) else {
            return Err(format!(
                "unknown unit {} in duration {}",
                super::quote::go_quote_str(unit),
                super::quote::go_quote_str(s)
            ));
        };
        if pos <= last_pos {
            return Err(invalid());
        }
        last_pos = pos;
        let unit_ns = ms as u128 * NANOS_PER_MILLI;
        if v > (1u128 << 63) / unit_ns {
            return Err("duration out of range".to_string());
        }
        total_ns += v * unit_ns;
        if total_ns > MAX_DURATION_NANOS {
            return Err("duration out of range".to_string());
        }
    }
    Ok((total_ns / NANOS_PER_MILLI) as i64)
}

/// Prints milliseconds the way Prometheus does (`1h30m`, `90d`, `0s`); years and weeks are
/// used only when they divide the duration exactly. Negative values get a leading `-`.
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
    }
    let mut rest = ms.unsigned_abs();
    for (i, (name, _, mult)) in UNITS.iter().enumerate() {
        let exact_only = i < 2;
        if exact_only && rest % mult != 0 {
            continue;
        }
        let v = rest / mult;
        if v > 0 {
            out.push_str(&v.to_string());
            out.push_str(name);
            rest -= v * mult;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("20s500ms"), Ok(20_500));
        assert_eq!(parse_duration("1y"), Ok(31_536_000_000));
        assert_eq!(
            parse_duration("5m1h"),
            Err("not a valid duration string: \"5m1h\"".to_string())
        );
        assert_eq!(
            parse_duration("5y1hs"),
            Err("unknown unit \"hs\" in duration \"5y1hs\"".to_string())
        );
        assert_eq!(
            parse_duration("1.5s"),
            Err("unknown unit \".\" in duration \"1.5s\"".to_string())
        );
        assert_eq!(
            parse_duration("300y"),
            Err("duration out of range".to_string())
        );
    }

    #[test]
    fn format() {
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(90 * 86_400_000), "90d");
        assert_eq!(format_duration(14 * 86_400_000), "2w");
        assert_eq!(format_duration(1001), "1s1ms");
        assert_eq!(format_duration(-60_000), "-1m");
        assert_eq!(format_duration(365 * 86_400_000 + 1), "365d1ms");
    }
}
