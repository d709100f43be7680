//! Go's `fmt` number and value formatting as templates see it: `%v` of floats (shortest
//! digits, exponent form from 1e+06 on), `%.4g`, `%e`, `%f`, `%d`, `%s`, `%q`, `%x` with
//! width and flags, and the `%!d(string=x)` forms for mismatched arguments. Pure functions;
//! nothing here knows about templates or Prometheus.

use super::value::Value;

/// Shortest-%g exponent threshold (Go uses precision 6 for this decision when shortest).
const SHORTEST_EXP_PRECISION: i32 = 6;

/// Decimal digits of |f| (no trailing zeros) and the decimal point position: f = 0.d1d2… × 10^dp.
/// `sig` rounds to that many significant digits; `None` gives the shortest round-trip digits.
fn digits(f: f64, sig: Option<usize>) -> (Vec<u8>, i32) {
    let f = f.abs();
    if f == 0.0 {
        return (Vec::new(), 0);
    }
    let s = match sig {
        None => format!("{f:e}"),
        Some(n) => format!("{:.*e}", n.saturating_sub(1), f),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(|b| b.is_ascii_digit()).collect();
    while d.len() > 1 && d.last() == Some(&b'0') {
        d.pop();
    }
    (d, exp + 1)
}

fn fmt_e(d: &[u8], dp: i32, prec: usize, upper: bool) -> String {
    let mut out = String::new();
    out.push(d.first().map(|&c| c as char).unwrap_or('0'));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(d.get(i).map(|&c| c as char).unwrap_or('0'));
        }
    }
    let exp = if d.is_empty() { 0 } else { dp - 1 };
    out.push(if upper { 'E' } else { 'e' });
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
    out
}

fn fmt_f(d: &[u8], dp: i32, prec: usize) -> String {
    let mut out = String::new();
    if dp > 0 {
        for i in 0..dp as usize {
            out.push(d.get(i).map(|&c| c as char).unwrap_or('0'));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as i32 {
            let idx = dp + i - 1;
            let c = if idx >= 0 {
                d.get(idx as usize).map(|&c| c as char).unwrap_or('0')
            } else {
                '0'
            };
            out.push(c);
        }
    }
    out
}

fn special(f: f64) -> Option<String> {
    if f.is_nan() {
        Some("NaN".into())
    } else if f.is_infinite() {
        Some(if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        })
    } else {
        None
    }
}

fn sign(f: f64, body: String, plus: bool) -> String {
    if f.is_sign_negative() {
        format!("-{body}")
    } else if plus {
        format!("+{body}")
    } else {
        body
    }
}

/// Go `%g` (`prec` None = shortest, as `%v`).
pub fn format_g(f: f64, prec: Option<usize>, upper: bool, plus: bool) -> String {
    if let Some(s) = special(f) {
        return s;
    }
    let body = match prec {
        None => {
            let (d, dp) = digits(f, None);
            let nd = d.len() as i32;
            let exp = dp - 1;
            if !d.is_empty() && !(-4..SHORTEST_EXP_PRECISION).contains(&exp) {
                fmt_e(&d, dp, (nd - 1).max(0) as usize, upper)
            } else {
                let p = if nd > dp { nd } else { dp };
                fmt_f(&d, dp, (p - dp).max(0) as usize)
            }
        }
        Some(p) => {
            let p = p.max(1);
            let (d, dp) = digits(f, Some(p));
            let nd = d.len() as i32;
            let mut eprec = p as i32;
            if eprec > nd && nd >= dp {
                eprec = nd;
            }
            let exp = dp - 1;
            if !d.is_empty() && (exp < -4 || exp >= eprec) {
                let pp = (p as i32).min(nd);
                fmt_e(&d, dp, (pp - 1).max(0) as usize, upper)
            } else {
                let mut pp = p as i32;
                if pp > dp {
                    pp = nd;
                }
                fmt_f(&d, dp, (pp - dp).max(0) as usize)
            }
        }
    };
    sign(f, body, plus)
}

/// Go `%e` with precision (default 6).
pub fn format_e(f: f64, prec: usize, upper: bool, plus: bool) -> String {
    if let Some(s) = special(f) {
        return s;
    }
    let (d, dp) = digits(f, Some(prec + 1));
    sign(f, fmt_e(&d, dp, prec, upper), plus)
}

/// Go `%f` with precision (default 6).
pub fn format_f(f: f64, prec: usize, plus: bool) -> String {
    if let Some(s) = special(f) {
        return s;
    }
    let body = format!("{:.*}", prec, f.abs());
    sign(f, body, plus)
}

/// `%v` of a float: shortest digits, exponent form outside [1e-4, 1e6).
pub fn format_float_v(f: f64) -> String {
    format_g(f, None, false, false)
}

/// Go's `%q` of a string.
pub fn go_quote(s: &str) -> String {
    crate::rules::error::go_quote(s)
}

fn pad(s: String, width: Option<usize>, minus: bool, zero: bool) -> String {
    let Some(w) = width else { return s };
    let len = s.chars().count();
    if len >= w {
        return s;
    }
    let fill = w - len;
    if minus {
        format!("{s}{}", " ".repeat(fill))
    } else if zero {
        let (sign, rest) = match s.strip_prefix(['-', '+']) {
            Some(r) => (&s[..1], r.to_string()),
            None => ("", s.clone()),
        };
        format!("{sign}{}{rest}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

fn bad_verb(verb: char, v: &Value) -> String {
    format!("%!{verb}({}={})", v.go_type(), v.to_go_string())
}

/// Go's `fmt.Sprintf` over template values.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut argi = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut plus, mut zero) = (false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                '#' | ' ' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = None;
        while let Some(&d) = chars.peek() {
            if let Some(v) = d.to_digit(10) {
                width = Some(width.unwrap_or(0) * 10 + v as usize);
                chars.next();
            } else {
                break;
            }
        }
        let mut prec = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = 0;
            while let Some(&d) = chars.peek() {
                if let Some(v) = d.to_digit(10) {
                    p = p * 10 + v as usize;
                    chars.next();
                } else {
                    break;
                }
            }
            prec = Some(p);
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        let s = match (verb, arg) {
            ('v', Value::Float(f)) => match prec {
                Some(p) => format_g(*f, Some(p), false, plus),
                None => sign_v(format_float_v(*f), plus),
            },
            ('v', v) => v.to_go_string(),
            ('s', Value::Str(s) | Value::Html(s)) => match prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.clone(),
            },
            (
                's',
                v @ (Value::Map(_) | Value::List(_) | Value::Time { .. } | Value::Duration(_)),
            ) => v.to_go_string(),
            ('q', Value::Str(s) | Value::Html(s)) => go_quote(s),
            ('d', Value::Int(i)) => {
                if plus && *i >= 0 {
                    format!("+{i}")
                } else {
                    i.to_string()
                }
            }
            ('x', Value::Int(i)) => format!("{i:x}"),
            ('X', Value::Int(i)) => format!("{i:X}"),
            ('x', Value::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('c', Value::Int(i)) => char::from_u32(*i as u32)
                .map(String::from)
                .unwrap_or_default(),
            ('t', Value::Bool(b)) => b.to_string(),
            ('f' | 'F', Value::Float(f)) => format_f(*f, prec.unwrap_or(6), plus),
            ('e' | 'E', Value::Float(f)) => format_e(*f, prec.unwrap_or(6), verb == 'E', plus),
            ('g' | 'G', Value::Float(f)) => format_g(*f, prec, verb == 'G', plus),
            (v, a) => bad_verb(v, a),
        };
        out.push_str(&pad(s, width, minus, zero && !minus));
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|a| format!("{}={}", a.go_type(), a.to_go_string()))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn sign_v(s: String, plus: bool) -> String {
    if plus && !s.starts_with(['-', '+']) && s != "NaN" {
        format!("+{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_g_matches_go_v() {
        assert_eq!(format_float_v(0.5), "0.5");
        assert_eq!(format_float_v(1.0), "1");
        assert_eq!(format_float_v(100000.0), "100000");
        assert_eq!(format_float_v(1e6), "1e+06");
        assert_eq!(format_float_v(1234567.0), "1.234567e+06");
        assert_eq!(format_float_v(0.0001), "0.0001");
        assert_eq!(format_float_v(0.00001), "1e-05");
        assert_eq!(format_float_v(-2.5), "-2.5");
        assert_eq!(format_float_v(0.0), "0");
        assert_eq!(format_float_v(f64::NAN), "NaN");
        assert_eq!(format_float_v(f64::INFINITY), "+Inf");
        assert_eq!(format_float_v(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn precision_g_matches_go() {
        assert_eq!(format_g(1.2345678, Some(4), false, false), "1.235");
        assert_eq!(format_g(1.0, Some(4), false, false), "1");
        assert_eq!(format_g(1234.5, Some(4), false, false), "1234");
        assert_eq!(format_g(12345.0, Some(4), false, false), "1.234e+04");
        assert_eq!(format_g(0.00012345, Some(4), false, false), "0.0001234");
        assert_eq!(format_g(0.000012345, Some(4), false, false), "1.234e-05");
        assert_eq!(format_g(1.5, Some(4), false, false), "1.5");
        assert_eq!(format_g(0.0, Some(4), false, false), "0");
        assert_eq!(format_g(999.99, Some(4), false, false), "1000");
        assert_eq!(format_g(9999.9, Some(4), false, false), "1e+04");
    }

    #[test]
    fn sprintf_verbs() {
        let f = Value::Float(3.25159);
        assert_eq!(sprintf("%.2f", std::slice::from_ref(&f)), "3.25");
        assert_eq!(sprintf("%f", std::slice::from_ref(&f)), "3.251590");
        assert_eq!(sprintf("%e", std::slice::from_ref(&f)), "3.251590e+00");
        assert_eq!(sprintf("%g", &[f]), "3.25159");
        assert_eq!(sprintf("%.4g%%", &[Value::Float(1.5)]), "1.5%");
        assert_eq!(sprintf("%d items", &[Value::Int(3)]), "3 items");
        assert_eq!(
            sprintf(
                "%5d|%-5s|%05d",
                &[Value::Int(42), Value::Str("ab".into()), Value::Int(-7)]
            ),
            "   42|ab   |-0007"
        );
        assert_eq!(
            sprintf("%s=%q", &[Value::Str("a".into()), Value::Str("b\"".into())]),
            "a=\"b\\\"\""
        );
        assert_eq!(sprintf("%d", &[Value::Str("x".into())]), "%!d(string=x)");
        assert_eq!(
            sprintf("%s %s", &[Value::Str("x".into())]),
            "x %!s(MISSING)"
        );
        assert_eq!(sprintf("%v", &[Value::Bool(true)]), "true");
        assert_eq!(sprintf("%x", &[Value::Int(255)]), "ff");
    }
}
