//! The Prometheus text format 0.0.4 parser, as lenient as Prometheus' own: blanks and
//! tabs between tokens, blank lines and free comments ignored, trailing and missing commas
//! in label sets tolerated, integer-millisecond timestamps. It checks only the grammar,
//! `# TYPE` names and UTF-8; it must never apply OpenMetrics family rules.

use std::borrow::Cow;
use std::ops::ControlFlow;

use super::error::ParseError;
use super::float;
use super::lex::{self, Cursor, Escapes, LabelPair, TEXT_LABELS};
use super::{normalize_float_labels, Entry, MetricType, SampleRef};

/// Expected number of labels per sample; the label buffer starts at this capacity.
const LABELS_CAPACITY: usize = 16;

fn metric_type(word: &[u8]) -> Option<MetricType> {
    Some(match word {
        b"counter" => MetricType::Counter,
        b"gauge" => MetricType::Gauge,
        b"histogram" => MetricType::Histogram,
        b"summary" => MetricType::Summary,
        b"untyped" => MetricType::Unknown,
        _ => return None,
    })
}

pub(crate) fn parse<F>(input: &[u8], f: &mut F) -> Result<(), ParseError>
where
    F: FnMut(Entry<'_>) -> ControlFlow<()>,
{
    let mut c = Cursor::new(input);
    let mut labels: Vec<LabelPair<'_>> = Vec::with_capacity(LABELS_CAPACITY);
    let mut scratch = String::new();
    // The type of the last `# TYPE` line, which Prometheus uses to normalise le/quantile.
    let mut last_type = MetricType::Unknown;
    loop {
        c.skip_blanks();
        let Some(b) = c.peek() else { return Ok(()) };
        let flow = match b {
            b'\n' => {
                c.pos += 1;
                c.line += 1;
                continue;
            }
            b'#' => comment_or_metadata(&mut c, &mut last_type, f)?,
            b'{' => sample(&mut c, &mut labels, &mut scratch, last_type, f)?,
            b if lex::is_metric_start(b) => {
                sample(&mut c, &mut labels, &mut scratch, last_type, f)?
            }
            b => {
                return Err(c.syntax(format!(
                    "expected a metric name, '{{' or '#' at start of line, got {:?}",
                    char::from(b)
                )))
            }
        };
        if flow.is_break() {
            return Ok(());
        }
    }
}

/// Consumes the line break (or end of input) that must end a line.
fn end_of_line(c: &mut Cursor<'_>, after: &str) -> Result<(), ParseError> {
    c.skip_blanks();
    match c.peek() {
        None => Ok(()),
        Some(b'\n') => {
            c.pos += 1;
            c.line += 1;
            Ok(())
        }
        Some(b) => Err(c.syntax(format!(
            "expected end of line after {after}, got {:?}",
            char::from(b)
        ))),
    }
}

fn comment_or_metadata<F>(
    c: &mut Cursor<'_>,
    last_type: &mut MetricType,
    f: &mut F,
) -> Result<ControlFlow<()>, ParseError>
where
    F: FnMut(Entry<'_>) -> ControlFlow<()>,
{
    let rest = c.rest();
    let after_hash = &rest[1..];
    let blanks = after_hash
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    let word = &after_hash[blanks..];
    let is_help = word.starts_with(b"HELP");
    let is_type = word.starts_with(b"TYPE");
    let keyword_blank = matches!(word.get(4), Some(b' ' | b'\t'));
    if blanks == 0 || !(is_help || is_type) || !keyword_blank {
        // A free comment: ignored to the end of the line.
        c.take_line();
        return end_of_line(c, "comment").map(|_| ControlFlow::Continue(()));
    }
    c.pos += 1 + blanks + 4;
    c.skip_blanks();
    let keyword = if is_help { "HELP" } else { "TYPE" };
    let family: Cow<'_, str> = match c.peek() {
        Some(b'"') => lex::quoted(c, false, "metric name")?,
        Some(b) if lex::is_metric_start(b) => Cow::Borrowed(lex::metric_name(c)),
        _ => return Err(c.syntax(format!("expected metric name after {keyword}"))),
    };
    // Prometheus takes the rest of the line and drops its first character (the blank).
    let rest = c.take_line();
    let text = rest.get(1..).unwrap_or_default();
    let line = c.line;
    let flow = if is_help {
        let raw = std::str::from_utf8(text)
            .map_err(|_| ParseError::syntax(line, "HELP text is not valid UTF-8"))?;
        let help = lex::unescape(raw, Escapes::TextHelp);
        f(Entry::Help {
            family: &family,
            help: &help,
        })
    } else {
        let Some(t) = metric_type(text) else {
            return Err(ParseError::syntax(
                line,
                format!("invalid metric type {:?}", String::from_utf8_lossy(text)),
            ));
        };
        *last_type = t;
        f(Entry::Type {
            family: &family,
            metric_type: t,
        })
    };
    end_of_line(c, "metadata")?;
    Ok(flow)
}

fn sample<'i, F>(
    c: &mut Cursor<'i>,
    labels: &mut Vec<LabelPair<'i>>,
    scratch: &mut String,
    last_type: MetricType,
    f: &mut F,
) -> Result<ControlFlow<()>, ParseError>
where
    F: FnMut(Entry<'_>) -> ControlFlow<()>,
{
    labels.clear();
    let line = c.line;
    let mut name: Cow<'i, str> = Cow::Borrowed(lex::metric_name(c));
    c.skip_blanks();
    if c.eat(b'{') {
        if let Some(quoted) = lex::label_list(c, TEXT_LABELS, labels)? {
            if !name.is_empty() {
                return Err(ParseError::syntax(line, "metric name already set"));
            }
            name = quoted;
        }
    }
    if name.is_empty() {
        return Err(ParseError::syntax(line, "metric name not set"));
    }
    c.skip_blanks();
    let raw_value = c.take_while(|b| !matches!(b, b'{' | b' ' | b'\t' | b'\n'));
    if raw_value.is_empty() {
        return Err(c.syntax(format!("expected value after metric {name:?}")));
    }
    let value = float::parse_value(raw_value).ok_or_else(|| {
        c.syntax(format!(
            "invalid value {:?}",
            String::from_utf8_lossy(raw_value)
        ))
    })?;
    c.skip_blanks();
    let mut timestamp_ms = None;
    if !matches!(c.peek(), None | Some(b'\n')) {
        let raw_ts = c.take_while(|b| b.is_ascii_digit());
        if raw_ts.is_empty() {
            let junk = c.take_while(|b| !matches!(b, b' ' | b'\t' | b'\n'));
            return Err(c.syntax(format!(
                "expected timestamp or end of line, got {:?}",
                String::from_utf8_lossy(junk)
            )));
        }
        timestamp_ms = Some(float::parse_int_ms(raw_ts).ok_or_else(|| {
            c.syntax(format!(
                "timestamp {:?} out of range",
                String::from_utf8_lossy(raw_ts)
            ))
        })?);
    }
    end_of_line(c, "sample")?;
    normalize_float_labels(last_type, labels, scratch);
    Ok(f(Entry::Sample(SampleRef {
        name: &name,
        labels,
        value,
        timestamp_ms,
        exemplar: None,
    })))
}
