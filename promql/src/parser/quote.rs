//! Go-compatible quoting and unquoting of PromQL string literals and error fragments
//! (`%q`, `%#U`, `strconv.Unquote` semantics). Owns text escaping only; it never decides
//! whether a token is valid — the lexer has already checked escapes before unquoting.

use std::fmt::Write;

use vigil_storage::labels::write_go_quoted;

/// Go's `%q` for a string.
pub fn go_quote_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    // Writing to a String cannot fail.
    let _ = write_go_quoted(&mut out, s);
    out
}

/// Go's `%q` for a rune; `None` (end of input) prints as the replacement character.
pub fn go_quote_rune(c: Option<char>) -> String {
    let c = c.unwrap_or('\u{FFFD}');
    match c {
        '\'' => "'\\''".to_string(),
        '"' => "'\"'".to_string(),
        _ => {
            let q = go_quote_str(&c.to_string());
            // Replace the surrounding double quotes; `\"` cannot occur here.
            format!("'{}'", &q[1..q.len() - 1])
        }
    }
}

/// Go's `%#U`: `U+0063 'c'` for printable characters, `U+0007` otherwise.
pub fn go_unicode_desc(c: char) -> String {
    let code = format!("U+{:04X}", c as u32);
    let q = go_quote_str(&c.to_string());
    if q.len() == c.len_utf8() + 2 {
        format!("{code} '{c}'")
    } else {
        code
    }
}

/// Unquotes a lexed string token (`"..."`, `'...'` or `` `...` ``) following Go's rules.
/// Byte escapes (`\xFF`, `\377`) that do not form valid UTF-8 are replaced by U+FFFD.
pub fn unquote(token: &str) -> Result<String, String> {
    let mut chars = token.chars();
    let quote = chars.next().ok_or_else(|| "invalid syntax".to_string())?;
    if token.len() < 2 || !token.ends_with(quote) {
        return Err("invalid syntax".into());
    }
    let body = &token[quote.len_utf8()..token.len() - quote.len_utf8()];
    if quote == '`' {
        return Ok(body.replace('\r', ""));
    }
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut it = body.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = it.next().ok_or_else(|| "invalid syntax".to_string())?;
        let simple = match e {
            'a' => Some(0x07u8),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            '\'' | '"' => Some(e as u8),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let (digits, base) = match e {
            '0'..='7' => (2, 8),
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            _ => return Err(format!("unknown escape \\{e}")),
        };
        let mut v: u32 = if base == 8 { e as u32 - '0' as u32 } else { 0 };
        for _ in 0..digits {
            let d = it
                .next()
                .and_then(|c| c.to_digit(base))
                .ok_or_else(|| "invalid syntax".to_string())?;
            v = v * base + d;
        }
        match e {
            '0'..='7' | 'x' => out.push((v & 0xff) as u8),
            _ => {
                let ch = char::from_u32(v).ok_or_else(|| "invalid syntax".to_string())?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Ok(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Whether `s` is a legacy (unquoted-printable) label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_legacy_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f == '_' || f.is_ascii_alphabetic())
        && c.all(|x| x == '_' || x.is_ascii_alphanumeric())
}

/// Writes a label name, quoting it when it is not a legacy name.
pub fn write_label_name(out: &mut impl Write, s: &str) -> std::fmt::Result {
    if is_legacy_label_name(s) {
        out.write_str(s)
    } else {
        write_go_quoted(out, s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(go_quote_rune(Some('.')), "'.'");
        assert_eq!(go_quote_rune(Some('\'')), "'\\''");
        assert_eq!(go_unicode_desc('c'), "U+0063 'c'");
        assert_eq!(go_unicode_desc('\u{7}'), "U+0007");
        assert_eq!(unquote(r#""a\"b\n\u00e9\x41""#).unwrap(), "a\"b\né\u{41}");
        assert_eq!(unquote(r"'a\'b'").unwrap(), "a'b");
        assert_eq!(unquote(r"`a\nb`").unwrap(), "a\\nb");
        assert_eq!(unquote(r#""\101""#).unwrap(), "A");
    }
}
