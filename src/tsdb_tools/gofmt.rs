//! Go-compatible rendering of numbers and tables, so that our data tools print exactly what
//! `promtool` prints: `%g` floats (shortest digits, exponent form below 1e-4 and from 1e21…
//! as Go's `strconv.FormatFloat(v, 'g', -1, 64)`), `time.Duration` strings, and
//! `text/tabwriter` column alignment.

/// Formats like Go's `fmt.Sprintf("%g", v)`.
pub fn format_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. "-1.234567e6".
    let e = format!("{v:e}");
    let (mant, exp) = match e.split_once('e') {
        Some(x) => x,
        None => return e,
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    // Shortest formatting uses precision 6 to choose between %e and %f.
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let a = exp.unsigned_abs();
        if a < 10 {
            out.push('0');
        }
        out.push_str(&a.to_string());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// Formats milliseconds like Go's `time.Duration.String()` (e.g. `2h0m0s`, `1.5s`, `250ms`).
pub fn format_duration_ms(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = ms < 0;
    let a = ms.unsigned_abs();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if a < 1000 {
        out.push_str(&format!("{a}ms"));
        return out;
    }
    let h = a / 3_600_000;
    let m = (a / 60_000) % 60;
    let s = (a / 1000) % 60;
    let frac = a % 1000;
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&s.to_string());
    if frac > 0 {
        let f = format!("{frac:03}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push('s');
    out
}

/// Aligns rows like Go's `tabwriter.NewWriter(w, minwidth, 0, padding, ' ', 0)`: every cell
/// but the last of a row is padded to its column's width (text + padding, at least
/// `minwidth`); the last cell is printed as is.
pub fn tabwrite(rows: &[Vec<String>], minwidth: usize, padding: usize) -> String {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                let w = c.chars().count() + padding;
                widths[i] = widths[i].max(w.max(minwidth));
            }
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                for _ in c.chars().count()..widths[i] {
                    out.push(' ');
                }
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_g_format() {
        let cases = [
            (1.0, "1"),
            (0.5, "0.5"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (1e6, "1e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
            (1.5e-300, "1.5e-300"),
            (100.25, "100.25"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.1 + 0.2, "0.30000000000000004"),
        ];
        for (v, want) in cases {
            assert_eq!(format_g(v), want, "{v}");
        }
    }

    #[test]
    fn go_duration() {
        assert_eq!(format_duration_ms(7_200_000), "2h0m0s");
        assert_eq!(format_duration_ms(5_400_500), "1h30m0.5s");
        assert_eq!(format_duration_ms(61_000), "1m1s");
        assert_eq!(format_duration_ms(250), "250ms");
        assert_eq!(format_duration_ms(1), "1ms");
    }

    #[test]
    fn tabwriter_alignment() {
        let rows = vec![
            vec!["A".to_string(), "BB".to_string(), "C".to_string()],
            vec![
                "long-cell-value".to_string(),
                "x".to_string(),
                "y".to_string(),
            ],
        ];
        let s = tabwrite(&rows, 13, 2);
        assert_eq!(
            s,
            "A                BB           C\nlong-cell-value  x            y\n"
        );
    }
}
