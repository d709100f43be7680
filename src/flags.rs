//! Parsing of Prometheus-style flag values: durations (`15d`, `1h30m`, `500ms`, `2w`, `1y`,
//! as Prometheus' `model.ParseDuration`) and byte sizes (`512MB`, `1GB`, base 1024 as
//! Prometheus' `units.Base2Bytes`).

/// Parses a Prometheus duration into milliseconds. Units: y (365d), w, d, h, m, s, ms;
/// several may follow each other in descending order (`1h30m`). "0" is allowed.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    if s == "0" {
        return Ok(0);
    }
    let bad = || format!("not a valid duration string: {s:?}");
    if s.is_empty() {
        return Err(bad());
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    let mut last_unit = usize::MAX;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(bad());
        }
        let n: i64 = s[start..i].parse().map_err(|_| bad())?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let (idx, mult) = UNITS
            .iter()
            .enumerate()
            .find(|(_, (u, _))| *u == unit)
            .map(|(k, (_, m))| (k, *m))
            .ok_or_else(bad)?;
        if last_unit != usize::MAX && idx <= last_unit {
            return Err(bad());
        }
        last_unit = idx;
        total = n
            .checked_mul(mult)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(|| format!("duration out of range: {s:?}"))?;
    }
    Ok(total)
}

/// Parses a byte size such as `512MB`, `1GB`, `100KiB` or a plain number of bytes.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("not a valid size: {s:?}"))?;
    let mult: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "KIB" | "K" => 1 << 10,
        "MB" | "MIB" | "M" => 1 << 20,
        "GB" | "GIB" | "G" => 1 << 30,
        "TB" | "TIB" | "T" => 1 << 40,
        "PB" | "PIB" | "P" => 1 << 50,
        "EB" | "EIB" | "E" => 1 << 60,
        _ => return Err(format!("not a valid size unit in {s:?}")),
    };
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("15d").unwrap(), 15 * 86_400_000);
        assert_eq!(parse_duration_ms("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration_ms("500ms").unwrap(), 500);
        assert_eq!(parse_duration_ms("0").unwrap(), 0);
        assert!(parse_duration_ms("30m1h").is_err());
        assert!(parse_duration_ms("1x").is_err());
        assert!(parse_duration_ms("").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512MB").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1GB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert!(parse_bytes("1XB").is_err());
    }
}
