//! Exposition-format parsers: Prometheus text format 0.0.4 and OpenMetrics 1.0 text.
//!
//! This module owns turning a scraped or backfilled page into samples and metric metadata,
//! with Prometheus' own strictness for the text format and the OpenMetrics 1.0 rules
//! (families, grouping, histogram buckets, `# EOF`) for OpenMetrics. It must never touch
//! storage, never produce the stale-marker NaN from input text, and never panic on any
//! input bytes. Two entry points: [`parse`] collects owned [`Sample`]s, and the hot path
//! [`parse_with`] hands borrowed [`Entry`]s to a callback without allocating per sample.

mod error;
mod float;
mod lex;
mod om_rules;
mod openmetrics;
mod text;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::ControlFlow;

pub use error::ParseError;
pub use float::NORMAL_NAN_BITS;
pub use lex::LabelPair;

/// Media type prefix that selects the OpenMetrics parser.
const OPENMETRICS_MEDIA_TYPE: &str = "application/openmetrics-text";

/// Which exposition format a page is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    PrometheusText,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

impl Format {
    /// OpenMetrics for `application/openmetrics-text` (any parameters, any case), else the
    /// text format, which is also Prometheus' fallback for unknown or missing types.
    pub fn from_content_type(ct: &str) -> Format {
        let media = ct.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case(OPENMETRICS_MEDIA_TYPE) {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }
}

/// A metric family's type, as declared by `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    /// `unknown` in OpenMetrics, `untyped` in the text format, or no `# TYPE` at all.
    Unknown,
}

impl MetricType {
    /// The OpenMetrics spelling (`unknown` for [`MetricType::Unknown`]).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

/// An OpenMetrics exemplar attached to a counter or bucket sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// One sample with owned labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// all labels incl. `__name__` first, then the rest in exposition order (not sorted)
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// OM timestamps are float seconds -> ms (truncated, as Prometheus); text is int ms.
    pub timestamp_ms: Option<i64>,
    pub exemplar: Option<Exemplar>,
}

impl Sample {
    /// The metric name (`__name__`), if present (always, for parsed samples).
    pub fn name(&self) -> &str {
        self.labels
            .first()
            .filter(|(n, _)| n == METRIC_NAME_LABEL)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    /// The value of label `name`, `__name__` included.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The label that carries the metric name.
pub const METRIC_NAME_LABEL: &str = "__name__";

/// Metadata of one metric family, merged from its `# TYPE`, `# HELP` and `# UNIT` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricMetadata {
    pub family: String,
    pub metric_type: MetricType,
    pub help: Option<String>,
    pub unit: Option<String>,
}

/// Everything [`parse`] found, in input order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub samples: Vec<Sample>,
    /// One entry per family that has any metadata line, in order of first appearance.
    pub metadata: Vec<MetricMetadata>,
}

/// A borrowed exemplar (see [`Exemplar`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExemplarRef<'a> {
    pub labels: &'a [LabelPair<'a>],
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// A borrowed sample: the name and labels point into the input unless unescaping or
/// `le`/`quantile` normalisation had to produce new text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRef<'a> {
    /// The metric name (without `__name__` label; it is not repeated in `labels`).
    pub name: &'a str,
    /// Labels in exposition order.
    pub labels: &'a [LabelPair<'a>],
    pub value: f64,
    pub timestamp_ms: Option<i64>,
    pub exemplar: Option<ExemplarRef<'a>>,
}

/// One item of an exposition page, as handed to the [`parse_with`] callback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Entry<'a> {
    /// `# HELP family text` (unescaped).
    Help { family: &'a str, help: &'a str },
    /// `# TYPE family type`.
    Type {
        family: &'a str,
        metric_type: MetricType,
    },
    /// `# UNIT family unit` (OpenMetrics only).
    Unit { family: &'a str, unit: &'a str },
    /// A sample line.
    Sample(SampleRef<'a>),
}

/// Knobs for where Vigil chooses between the OpenMetrics specification and what
/// Prometheus ingests. [`ParseOptions::default`] is what [`parse`] and [`parse_with`] use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseOptions {
    /// OpenMetrics 1.0 treats summary quantile values and `_sum`s as counter-like (never
    /// negative) and forbids a `_sum` on a histogram with negative bucket thresholds.
    /// client_golang emits all three when observations are negative, and Prometheus
    /// ingests them, so by default Vigil accepts them; `true` enforces the specification.
    pub spec_strict_signs: bool,
}

/// Parses a whole page into owned samples and merged metadata.
pub fn parse(input: &[u8], format: Format) -> Result<Parsed, ParseError> {
    parse_with_options(input, format, ParseOptions::default())
}

/// [`parse`] with explicit [`ParseOptions`].
pub fn parse_with_options(
    input: &[u8],
    format: Format,
    options: ParseOptions,
) -> Result<Parsed, ParseError> {
    let mut parsed = Parsed::default();
    let mut meta_index: HashMap<String, usize> = HashMap::new();
    parse_entries(input, format, options, |entry| {
        collect_entry(&mut parsed, &mut meta_index, entry);
        ControlFlow::Continue(())
    })?;
    Ok(parsed)
}

fn collect_entry(parsed: &mut Parsed, index: &mut HashMap<String, usize>, entry: Entry<'_>) {
    let mut meta = |family: &str| -> usize {
        if let Some(&i) = index.get(family) {
            return i;
        }
        parsed.metadata.push(MetricMetadata {
            family: family.to_owned(),
            metric_type: MetricType::Unknown,
            help: None,
            unit: None,
        });
        let i = parsed.metadata.len() - 1;
        index.insert(family.to_owned(), i);
        i
    };
    match entry {
        Entry::Help { family, help } => {
            let i = meta(family);
            parsed.metadata[i].help = Some(help.to_owned());
        }
        Entry::Type {
            family,
            metric_type,
        } => {
            let i = meta(family);
            parsed.metadata[i].metric_type = metric_type;
        }
        Entry::Unit { family, unit } => {
            let i = meta(family);
            parsed.metadata[i].unit = Some(unit.to_owned());
        }
        Entry::Sample(s) => parsed.samples.push(to_owned_sample(&s)),
    }
}

fn owned_pairs(pairs: &[LabelPair<'_>], extra: usize) -> Vec<(String, String)> {
    let mut v = Vec::with_capacity(pairs.len() + extra);
    v.extend(
        pairs
            .iter()
            .map(|(n, val)| (n.as_ref().to_owned(), val.as_ref().to_owned())),
    );
    v
}

/// Converts a borrowed sample into an owned one with `__name__` first.
pub fn to_owned_sample(s: &SampleRef<'_>) -> Sample {
    let mut labels = Vec::with_capacity(s.labels.len() + 1);
    labels.push((METRIC_NAME_LABEL.to_owned(), s.name.to_owned()));
    labels.extend(
        s.labels
            .iter()
            .map(|(n, v)| (n.as_ref().to_owned(), v.as_ref().to_owned())),
    );
    Sample {
        labels,
        value: s.value,
        timestamp_ms: s.timestamp_ms,
        exemplar: s.exemplar.map(|e| Exemplar {
            labels: owned_pairs(e.labels, 0),
            value: e.value,
            timestamp_ms: e.timestamp_ms,
        }),
    }
}

/// Streams a page to `f` without building owned samples. Return
/// `ControlFlow::Break(())` from `f` to stop early (then `Ok(())` is returned without
/// checking the rest). On `Err`, entries already delivered belong to an invalid page:
/// a scraper must discard them, as Prometheus rolls back the whole scrape.
pub fn parse_with<F>(input: &[u8], format: Format, f: F) -> Result<(), ParseError>
where
    F: FnMut(Entry<'_>) -> ControlFlow<()>,
{
    parse_entries(input, format, ParseOptions::default(), f)
}

/// [`parse_with`] with explicit [`ParseOptions`].
pub fn parse_entries<F>(
    input: &[u8],
    format: Format,
    options: ParseOptions,
    mut f: F,
) -> Result<(), ParseError>
where
    F: FnMut(Entry<'_>) -> ControlFlow<()>,
{
    match format {
        Format::PrometheusText => text::parse(input, &mut f),
        Format::OpenMetrics => openmetrics::parse(input, options, &mut f),
    }
}

/// Label values Prometheus rewrites into OpenMetrics float form (`le="1"` → `le="1.0"`)
/// for classic histograms and summaries, so both formats store the same series.
fn normalize_float_labels<'i>(
    metric_type: MetricType,
    labels: &mut [LabelPair<'i>],
    scratch: &mut String,
) {
    let target = match metric_type {
        MetricType::Histogram => "le",
        MetricType::Summary => "quantile",
        _ => return,
    };
    for (name, value) in labels.iter_mut() {
        if name != target {
            continue;
        }
        if let Some(v) = float::parse_value(value.as_bytes()) {
            float::format_om_float(v, scratch);
            if scratch != value {
                *value = Cow::Owned(scratch.clone());
            }
        }
    }
}
