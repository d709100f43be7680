//! Go-compatible float formatting for the texts PromQL puts in front of users: annotation
//! messages (`%v`, `%g`, `%.2g`) and label values (`histogram_quantiles`' OpenMetrics
//! floats). Pure string formatting; it never parses or evaluates anything.

/// Decimal exponent from which Go's shortest `'g'` format switches to exponent form.
const GO_SHORTEST_EXPONENT_LIMIT: i32 = 6;
/// Decimal exponent below which Go's `'g'` format switches to exponent form.
const GO_SMALLEST_PLAIN_EXPONENT: i32 = -4;

/// Formats a float like Go's `%v` (`strconv.FormatFloat(f, 'g', -1, 64)`): shortest digits,
/// exponent form below 1e-4 and from 1e6 on, `+Inf`, `-Inf`, `NaN`.
pub fn format_go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let sci = format!("{v:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return v.to_string();
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if v != 0.0 && !(GO_SMALLEST_PLAIN_EXPONENT..GO_SHORTEST_EXPONENT_LIMIT).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        v.to_string()
    }
}

/// Formats a float like Go's `%.<precision>g` (precision ≥ 1): `precision` significant
/// digits, exponent form when the exponent is below -4 or at least `precision`, trailing
/// zeros removed.
pub fn format_go_float_prec(v: f64, precision: usize) -> String {
    if !v.is_finite() {
        return format_go_float(v);
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, v);
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < GO_SMALLEST_PLAIN_EXPONENT || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{v:.decimals$}"))
    }
}

/// Formats a float as OpenMetrics does in label values (`labels.FormatOpenMetricsFloat`):
/// like [`format_go_float`], with `.0` added to integral values.
pub fn format_openmetrics_float(v: f64) -> String {
    let s = format_go_float(v);
    if v.is_finite() && !s.contains(['.', 'e']) {
        format!("{s}.0")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(format_go_float(0.25), "0.25");
        assert_eq!(format_go_float(1e6), "1e+06");
        assert_eq!(format_go_float(123456.0), "123456");
        assert_eq!(format_go_float(0.00001), "1e-05");
        assert_eq!(format_go_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_go_float_prec(123.0, 2), "1.2e+02");
        assert_eq!(format_go_float_prec(12.0, 2), "12");
        assert_eq!(format_go_float_prec(0.5, 2), "0.5");
        assert_eq!(format_go_float_prec(1.0, 2), "1");
        assert_eq!(format_openmetrics_float(0.0), "0.0");
        assert_eq!(format_openmetrics_float(1.0), "1.0");
        assert_eq!(format_openmetrics_float(-0.1), "-0.1");
        assert_eq!(format_openmetrics_float(f64::NAN), "NaN");
    }
}
