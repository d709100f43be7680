//! The OpenMetrics 1.0 text parser: the exact line grammar (single spaces, no blank
//! lines, `# EOF` last), float-second timestamps, exemplars and UTF-8 quoted names, with
//! every line's semantics checked by [`super::om_rules`]. It must never accept text after
//! `# EOF` and never hand out a sample from a line that failed a rule.

use std::borrow::Cow;
use std::ops::ControlFlow;

use super::error::ParseError;
use super::float;
use super::lex::{self, Cursor, Escapes, LabelPair, OM_EXEMPLAR_LABELS, OM_LABELS};
use super::om_rules::{Meta, Rules, SampleView};
use super::{normalize_float_labels, Entry, ExemplarRef, MetricType, ParseOptions, SampleRef};

/// The line that ends every OpenMetrics document.
const EOF_LINE: &[u8] = b"# EOF";
/// Maximum combined length, in code points, of an exemplar's label names and values.
const MAX_EXEMPLAR_LABEL_CHARS: usize = 128;
/// Expected number of labels per sample; the label buffers start at this capacity.
const LABELS_CAPACITY: usize = 16;

fn metric_type(word: &[u8]) -> Option<MetricType> {
    Some(match word {
        b"counter" => MetricType::Counter,
        b"gauge" => MetricType::Gauge,
        b"histogram" => MetricType::Histogram,
        b"gaugehistogram" => MetricType::GaugeHistogram,
        b"summary" => MetricType::Summary,
        b"info" => MetricType::Info,
        b"stateset" => MetricType::StateSet,
        b"unknown" => MetricType::Unknown,
        _ => return None,
    })
}

pub(crate) fn parse<F>(input: &[u8], options: ParseOptions, f: &mut F) -> Result<(), ParseError>
where
    F: FnMut(Entry<'_>) -> ControlFlow<()>,
{
    let mut c = Cursor::new(input);
    let mut rules = Rules::new(options);
    let mut labels: Vec<LabelPair<'_>> = Vec::with_capacity(LABELS_CAPACITY);
    let mut ex_labels: Vec<LabelPair<'_>> = Vec::with_capacity(LABELS_CAPACITY);
    let mut scratch = String::new();
    loop {
        let Some(b) = c.peek() else {
            return Err(ParseError::MissingEof { line: c.line });
        };
        let flow = match b {
            b'\n' => return Err(c.syntax("blank lines are not allowed")),
            b'#' => {
                let rest = c.rest();
                if rest.starts_with(EOF_LINE) {
                    let after = &rest[EOF_LINE.len()..];
                    if after.is_empty() || after == b"\n" {
                        rules.finish(c.line)?;
                        return Ok(());
                    }
                    if after[0] == b'\n' {
                        return Err(ParseError::DataAfterEof { line: c.line + 1 });
                    }
                    return Err(ParseError::DataAfterEof { line: c.line });
                }
                metadata(&mut c, &mut rules, f)?
            }
            _ => sample(
                &mut c,
                &mut rules,
                &mut labels,
                &mut ex_labels,
                &mut scratch,
                f,
            )?,
        };
        if flow.is_break() {
            return Ok(());
        }
    }
}

/// Consumes the `\n` that must end every line before `# EOF`.
fn newline(c: &mut Cursor<'_>, after: &str) -> Result<(), ParseError> {
    match c.peek() {
        Some(b'\n') => {
            c.pos += 1;
            c.line += 1;
            Ok(())
        }
        None => Err(ParseError::MissingEof { line: c.line }),
        Some(b) => Err(c.syntax(format!(
            "expected end of line after {after}, got {:?}",
            char::from(b)
        ))),
    }
}

fn metric_name_or_quoted<'i>(c: &mut Cursor<'i>, what: &str) -> Result<Cow<'i, str>, ParseError> {
    match c.peek() {
        Some(b'"') => {
            let q = lex::quoted(c, false, "metric name")?;
            if q.is_empty() {
                return Err(c.syntax("empty metric name"));
            }
            Ok(q)
        }
        Some(b) if lex::is_metric_start(b) => Ok(Cow::Borrowed(lex::metric_name(c))),
        _ => Err(c.syntax(format!("expected metric name after {what}"))),
    }
}

fn metadata<F>(
    c: &mut Cursor<'_>,
    rules: &mut Rules,
    f: &mut F,
) -> Result<ControlFlow<()>, ParseError>
where
    F: FnMut(Entry<'_>) -> ControlFlow<()>,
{
    let line = c.line;
    let rest = c.rest();
    let keyword = match rest.get(..7) {
        Some(b"# HELP ") => "HELP",
        Some(b"# TYPE ") => "TYPE",
        Some(b"# UNIT ") => "UNIT",
        _ => {
            return Err(
                c.syntax("comment lines must be \"# HELP\", \"# TYPE\", \"# UNIT\" or \"# EOF\"")
            )
        }
    };
    c.pos += 7;
    let family = metric_name_or_quoted(c, keyword)?;
    if !c.eat(b' ') {
        return Err(c.syntax(format!(
            "expected a space and text after {keyword} {family:?}"
        )));
    }
    let text = c.take_line();
    let flow = match keyword {
        "HELP" => {
            let raw = std::str::from_utf8(text)
                .map_err(|_| ParseError::syntax(line, "HELP text is not valid UTF-8"))?;
            let help = lex::unescape(raw, Escapes::LabelValue);
            rules.metadata(line, &family, Meta::Help)?;
            f(Entry::Help {
                family: &family,
                help: &help,
            })
        }
        "TYPE" => {
            let t = metric_type(text).ok_or_else(|| {
                ParseError::syntax(
                    line,
                    format!("invalid metric type {:?}", String::from_utf8_lossy(text)),
                )
            })?;
            rules.metadata(line, &family, Meta::Type(t))?;
            f(Entry::Type {
                family: &family,
                metric_type: t,
            })
        }
        _ => {
            let unit = std::str::from_utf8(text)
                .map_err(|_| ParseError::syntax(line, "UNIT is not valid UTF-8"))?;
            rules.metadata(line, &family, Meta::Unit(unit))?;
            f(Entry::Unit {
                family: &family,
                unit,
            })
        }
    };
    newline(c, "metadata")?;
    Ok(flow)
}

/// Takes a value/timestamp token: bytes up to the next space or newline.
fn token<'i>(c: &mut Cursor<'i>) -> &'i [u8] {
    c.take_while(|b| b != b' ' && b != b'\n')
}

fn parse_timestamp(c: &Cursor<'_>, raw: &[u8], what: &str) -> Result<f64, ParseError> {
    float::parse_finite(raw).ok_or_else(|| {
        c.syntax(format!(
            "invalid {what} timestamp {:?}",
            String::from_utf8_lossy(raw)
        ))
    })
}

fn parse_number(c: &Cursor<'_>, raw: &[u8], what: &str) -> Result<f64, ParseError> {
    if raw.is_empty() {
        return Err(c.syntax(format!("missing {what} value")));
    }
    float::parse_value(raw).ok_or_else(|| {
        c.syntax(format!(
            "invalid {what} value {:?}",
            String::from_utf8_lossy(raw)
        ))
    })
}

struct ParsedExemplar {
    value: f64,
    timestamp_ms: Option<i64>,
}

/// Parses ` # {labels} value [timestamp]`; the cursor is at the `#`.
fn exemplar<'i>(
    c: &mut Cursor<'i>,
    ex_labels: &mut Vec<LabelPair<'i>>,
) -> Result<ParsedExemplar, ParseError> {
    if !c.rest().starts_with(b"# {") {
        return Err(c.syntax("expected \"# {\" to start an exemplar"));
    }
    c.pos += 3;
    lex::label_list(c, OM_EXEMPLAR_LABELS, ex_labels)?;
    let chars: usize = ex_labels
        .iter()
        .map(|(n, v)| n.chars().count() + v.chars().count())
        .sum();
    if chars > MAX_EXEMPLAR_LABEL_CHARS {
        return Err(c.syntax(format!(
            "exemplar labels have {chars} characters, more than {MAX_EXEMPLAR_LABEL_CHARS}"
        )));
    }
    if !c.eat(b' ') {
        return Err(c.syntax("expected a space after exemplar labels"));
    }
    let raw = token(c);
    let value = parse_number(c, raw, "exemplar")?;
    let mut timestamp_ms = None;
    if c.eat(b' ') {
        let raw = token(c);
        if raw.is_empty() {
            return Err(c.syntax("trailing space after exemplar"));
        }
        timestamp_ms = Some(float::seconds_to_ms(parse_timestamp(c, raw, "exemplar")?));
    }
    Ok(ParsedExemplar {
        value,
        timestamp_ms,
    })
}

fn sample<'i, F>(
    c: &mut Cursor<'i>,
    rules: &mut Rules,
    labels: &mut Vec<LabelPair<'i>>,
    ex_labels: &mut Vec<LabelPair<'i>>,
    scratch: &mut String,
    f: &mut F,
) -> Result<ControlFlow<()>, ParseError>
where
    F: FnMut(Entry<'_>) -> ControlFlow<()>,
{
    labels.clear();
    ex_labels.clear();
    let line = c.line;
    let mut name: Cow<'i, str> = Cow::Borrowed(lex::metric_name(c));
    if name.is_empty() && c.peek() != Some(b'{') {
        let b = c.peek().unwrap_or(b' ');
        return Err(c.syntax(format!(
            "expected a metric name, '{{' or '#' at start of line, got {:?}",
            char::from(b)
        )));
    }
    if c.eat(b'{') {
        if let Some(quoted) = lex::label_list(c, OM_LABELS, labels)? {
            if !name.is_empty() {
                return Err(c.syntax("metric name already set"));
            }
            name = quoted;
        }
    }
    if name.is_empty() {
        return Err(c.syntax("metric name not set"));
    }
    if !c.eat(b' ') {
        return Err(c.syntax(format!("expected a space and value after metric {name:?}")));
    }
    let raw = token(c);
    let value = parse_number(c, raw, "sample")?;
    let mut ts_seconds = None;
    let mut ex = None;
    if c.eat(b' ') {
        if c.peek() == Some(b'#') {
            ex = Some(exemplar(c, ex_labels)?);
        } else {
            let raw = token(c);
            if raw.is_empty() {
                return Err(c.syntax("trailing space after value"));
            }
            ts_seconds = Some(parse_timestamp(c, raw, "sample")?);
            if c.eat(b' ') {
                ex = Some(exemplar(c, ex_labels)?);
            }
        }
    }
    newline(c, "sample")?;
    let metric_type = rules.sample(
        line,
        &SampleView {
            name: &name,
            labels,
            value,
            ts_seconds,
            has_exemplar: ex.is_some(),
        },
    )?;
    normalize_float_labels(metric_type, labels, scratch);
    Ok(f(Entry::Sample(SampleRef {
        name: &name,
        labels,
        value,
        timestamp_ms: ts_seconds.map(float::seconds_to_ms),
        exemplar: ex.map(|e| ExemplarRef {
            labels: ex_labels,
            value: e.value,
            timestamp_ms: e.timestamp_ms,
        }),
    })))
}
