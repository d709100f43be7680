//! OpenMetrics 1.0 semantic rules, applied line by line after the syntax is known good:
//! which family a sample belongs to (by name suffix and `# TYPE`), metadata placement and
//! repetition, UNIT suffixes, clashing family names, interleaved groups, timestamp order,
//! required labels (`le`, `quantile`, stateset label), value ranges, exemplar placement and
//! histogram bucket structure. Never parses bytes and never allocates per sample: groups and
//! names are remembered as 64-bit hashes.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::error::ParseError;
use super::lex::LabelPair;
use super::{MetricType, ParseOptions};

/// Bucket bound label of classic histograms.
const LE: &str = "le";
/// Quantile label of summaries.
const QUANTILE: &str = "quantile";
/// The only spelling of +Inf allowed in `le`/`quantile` (OpenMetrics canonical number).
const CANONICAL_INF: &str = "+Inf";

/// Sample-name suffixes each type allows; `None` (no `# TYPE`) allows just the bare name.
fn suffixes(t: Option<MetricType>) -> &'static [&'static str] {
    match t {
        Some(MetricType::Counter) => &["_total", "_created"],
        Some(MetricType::Summary) => &["", "_count", "_sum", "_created"],
        Some(MetricType::Histogram) => &["_count", "_sum", "_bucket", "_created"],
        Some(MetricType::GaugeHistogram) => &["_gcount", "_gsum", "_bucket"],
        Some(MetricType::Info) => &["_info"],
        _ => &[""],
    }
}

/// Suffixes whose values are counter-like (never NaN).
const COUNTER_LIKE_NOT_NAN: [&str; 6] = ["_total", "_sum", "_count", "_bucket", "_gcount", "_gsum"];
/// Suffixes whose values are counter-like (never negative).
const COUNTER_LIKE_NOT_NEGATIVE: [&str; 5] = ["_total", "_sum", "_count", "_bucket", "_gcount"];

/// The parts of a sample line the rules look at.
pub(crate) struct SampleView<'a, 'i> {
    pub name: &'a str,
    pub labels: &'a [LabelPair<'i>],
    pub value: f64,
    /// Timestamp in seconds as written, for exact ordering checks.
    pub ts_seconds: Option<f64>,
    pub has_exemplar: bool,
}

/// Structure of one histogram group (same labels minus `le`, same timestamp).
#[derive(Default)]
struct HistGroup {
    key: Option<(u64, Option<u64>)>,
    last_line: usize,
    count: Option<f64>,
    last_bound: Option<f64>,
    last_bucket_value: f64,
    has_negative_buckets: bool,
    has_sum: bool,
    has_gsum: bool,
    has_negative_gsum: bool,
}

struct Family {
    name: String,
    metric_type: Option<MetricType>,
    has_help: bool,
    has_unit: bool,
    unit_empty: bool,
    has_samples: bool,
    group: Option<u64>,
    group_ts: Option<f64>,
    seen_groups: HashSet<u64>,
    hist: HistGroup,
}

impl Family {
    fn new(name: &str) -> Self {
        Family {
            name: name.to_owned(),
            metric_type: None,
            has_help: false,
            has_unit: false,
            unit_empty: true,
            has_samples: false,
            group: None,
            group_ts: None,
            seen_groups: HashSet::new(),
            hist: HistGroup::default(),
        }
    }

    fn effective_type(&self) -> MetricType {
        self.metric_type.unwrap_or(MetricType::Unknown)
    }
}

/// Which metadata line is being applied.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meta<'a> {
    Help,
    Type(MetricType),
    Unit(&'a str),
}

pub(crate) struct Rules {
    options: ParseOptions,
    family: Option<Family>,
    /// Hashes of every sample name a finished family could produce.
    seen_names: HashSet<u64>,
}

fn hash_name(name: &str, suffix: &str) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(name.as_bytes());
    h.write(suffix.as_bytes());
    h.write_u8(0xff);
    h.finish()
}

/// Order-independent hash of a label set, skipping the label named `skip`.
fn hash_group(labels: &[LabelPair<'_>], skip: Option<&str>) -> u64 {
    labels
        .iter()
        .filter(|(n, _)| Some(n.as_ref()) != skip)
        .map(|(n, v)| {
            let mut h = DefaultHasher::new();
            n.hash(&mut h);
            v.hash(&mut h);
            h.finish()
        })
        .fold(0u64, u64::wrapping_add)
}

fn label<'a>(labels: &'a [LabelPair<'_>], name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_ref())
}

/// Parses a `le`/`quantile` value: a float, not NaN, and +Inf only as `+Inf`.
fn canonical_bound(raw: &str) -> Option<f64> {
    let v = super::float::parse_value(raw.as_bytes())?;
    if v.is_nan() || (v == f64::INFINITY && raw != CANONICAL_INF) {
        return None;
    }
    Some(v)
}

impl Rules {
    pub fn new(options: ParseOptions) -> Self {
        Rules {
            options,
            family: None,
            seen_names: HashSet::new(),
        }
    }

    /// Applies a `# HELP`/`# TYPE`/`# UNIT` line for `name`.
    pub fn metadata(&mut self, line: usize, name: &str, meta: Meta<'_>) -> Result<(), ParseError> {
        let same = self.family.as_ref().is_some_and(|f| f.name == name);
        if same {
            if self.family.as_ref().is_some_and(|f| f.has_samples) {
                return Err(ParseError::invalid(
                    line,
                    format!("metadata for {name:?} after its samples"),
                ));
            }
        } else {
            self.finish(line)?;
            self.family = Some(Family::new(name));
        }
        let Some(fam) = self.family.as_mut() else {
            return Ok(());
        };
        match meta {
            Meta::Help => {
                if fam.has_help {
                    return Err(ParseError::invalid(
                        line,
                        format!("second HELP for {name:?}"),
                    ));
                }
                fam.has_help = true;
            }
            Meta::Type(t) => {
                if fam.metric_type.is_some() {
                    return Err(ParseError::invalid(
                        line,
                        format!("second TYPE for {name:?}"),
                    ));
                }
                if matches!(t, MetricType::Info | MetricType::StateSet) && !fam.unit_empty {
                    return Err(ParseError::invalid(
                        line,
                        format!("{} {name:?} cannot have a unit", t.as_str()),
                    ));
                }
                fam.metric_type = Some(t);
            }
            Meta::Unit(unit) => {
                if fam.has_unit {
                    return Err(ParseError::invalid(
                        line,
                        format!("second UNIT for {name:?}"),
                    ));
                }
                fam.has_unit = true;
                fam.unit_empty = unit.is_empty();
                if !unit.is_empty() {
                    let suffix_ok = name
                        .strip_suffix(unit)
                        .is_some_and(|head| head.ends_with('_'));
                    if !suffix_ok {
                        return Err(ParseError::invalid(
                            line,
                            format!("unit {unit:?} is not a suffix of metric {name:?}"),
                        ));
                    }
                    if let Some(t @ (MetricType::Info | MetricType::StateSet)) = fam.metric_type {
                        return Err(ParseError::invalid(
                            line,
                            format!("{} {name:?} cannot have a unit", t.as_str()),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks one sample and returns the type of the family it belongs to.
    pub fn sample(
        &mut self,
        line: usize,
        s: &SampleView<'_, '_>,
    ) -> Result<MetricType, ParseError> {
        let belongs = self.family.as_ref().is_some_and(|f| {
            s.name
                .strip_prefix(f.name.as_str())
                .is_some_and(|suffix| suffixes(f.metric_type).contains(&suffix))
        });
        if !belongs {
            self.finish(line)?;
            let mut fam = Family::new(s.name);
            fam.metric_type = Some(MetricType::Unknown);
            self.family = Some(fam);
        }
        let options = self.options;
        let Some(fam) = self.family.as_mut() else {
            return Ok(MetricType::Unknown);
        };
        fam.has_samples = true;
        let t = fam.effective_type();
        let suffix = s.name.get(fam.name.len()..).unwrap_or_default();
        let is_bucket =
            matches!(t, MetricType::Histogram | MetricType::GaugeHistogram) && suffix == "_bucket";
        let is_quantile = t == MetricType::Summary && suffix.is_empty();

        // Labels a type requires.
        if t == MetricType::StateSet && label(s.labels, &fam.name).is_none() {
            return Err(ParseError::invalid(
                line,
                format!("stateset sample lacks the label {:?}", fam.name),
            ));
        }
        let mut bound = None;
        if is_bucket {
            let b = label(s.labels, LE)
                .and_then(canonical_bound)
                .ok_or_else(|| {
                    ParseError::invalid(line, "histogram bucket needs a valid \"le\" label")
                })?;
            bound = Some(b);
        }
        if is_quantile {
            let q = label(s.labels, QUANTILE).and_then(canonical_bound);
            if !q.is_some_and(|q| (0.0..=1.0).contains(&q)) {
                return Err(ParseError::invalid(
                    line,
                    "summary quantile needs a \"quantile\" label between 0 and 1",
                ));
            }
        }

        // Grouping: a group's samples are contiguous and its timestamps do not go back.
        let skip = match t {
            MetricType::StateSet => Some(fam.name.as_str()),
            _ if is_bucket => Some(LE),
            _ if is_quantile => Some(QUANTILE),
            _ => None,
        };
        let group = if t == MetricType::Info {
            0
        } else {
            hash_group(s.labels, skip)
        };
        if fam.group == Some(group) {
            if s.ts_seconds.is_some() != fam.group_ts.is_some() {
                return Err(ParseError::invalid(
                    line,
                    "mix of samples with and without timestamps within a group",
                ));
            }
            if let (Some(prev), Some(now)) = (fam.group_ts, s.ts_seconds) {
                if now < prev && t != MetricType::Info {
                    return Err(ParseError::invalid(
                        line,
                        "timestamps went backwards within a group",
                    ));
                }
            }
        } else if !fam.seen_groups.insert(group) {
            return Err(ParseError::invalid(
                line,
                format!("samples of one group of {:?} are interleaved", fam.name),
            ));
        }
        fam.group = Some(group);
        fam.group_ts = s.ts_seconds;

        if matches!(t, MetricType::Histogram | MetricType::GaugeHistogram) {
            let key = (
                if is_bucket {
                    group
                } else {
                    hash_group(s.labels, None)
                },
                s.ts_seconds.map(f64::to_bits),
            );
            if fam.hist.key != Some(key) {
                if fam.hist.key.is_some() {
                    check_histogram(&fam.hist, &fam.name, options)?;
                }
                fam.hist = HistGroup {
                    key: Some(key),
                    ..HistGroup::default()
                };
            }
            let h = &mut fam.hist;
            h.last_line = line;
            match suffix {
                "_bucket" => {
                    let b = bound.unwrap_or(f64::NAN);
                    if b < 0.0 {
                        h.has_negative_buckets = true;
                    }
                    if h.last_bound.is_some_and(|prev| b <= prev) {
                        return Err(ParseError::invalid(line, "histogram buckets out of order"));
                    }
                    if s.value < h.last_bucket_value {
                        return Err(ParseError::invalid(
                            line,
                            "histogram bucket counts must not decrease",
                        ));
                    }
                    h.last_bound = Some(b);
                    h.last_bucket_value = s.value;
                }
                "_count" | "_gcount" => h.count = Some(s.value),
                "_sum" => h.has_sum = true,
                "_gsum" => {
                    h.has_gsum = true;
                    if s.value < 0.0 {
                        h.has_negative_gsum = true;
                    }
                }
                _ => {}
            }
        }

        // Values.
        match t {
            MetricType::StateSet if s.value != 0.0 && s.value != 1.0 => {
                return Err(ParseError::invalid(line, "stateset values must be 0 or 1"));
            }
            MetricType::Info if s.value != 1.0 => {
                return Err(ParseError::invalid(line, "info values must be 1"));
            }
            _ => {}
        }
        let lenient_signs = !options.spec_strict_signs;
        if is_quantile && s.value < 0.0 && !lenient_signs {
            return Err(ParseError::invalid(
                line,
                "quantile values must not be negative",
            ));
        }
        if COUNTER_LIKE_NOT_NAN.contains(&suffix) && s.value.is_nan() {
            return Err(ParseError::invalid(
                line,
                format!("{suffix} value must not be NaN"),
            ));
        }
        let negative_sum_allowed = lenient_signs && suffix == "_sum";
        if COUNTER_LIKE_NOT_NEGATIVE.contains(&suffix) && s.value < 0.0 && !negative_sum_allowed {
            return Err(ParseError::invalid(
                line,
                format!("{suffix} value must not be negative"),
            ));
        }
        if s.has_exemplar {
            let allowed = is_bucket || (t == MetricType::Counter && suffix == "_total");
            if !allowed {
                return Err(ParseError::invalid(
                    line,
                    "exemplars are only allowed on counter _total and histogram _bucket samples",
                ));
            }
        }
        Ok(t)
    }

    /// Closes the current family (at a family switch or `# EOF`).
    pub fn finish(&mut self, line: usize) -> Result<(), ParseError> {
        let Some(fam) = self.family.take() else {
            return Ok(());
        };
        if fam.hist.key.is_some() {
            check_histogram(&fam.hist, &fam.name, self.options)?;
        }
        let t = fam.metric_type;
        let mut names: Vec<&str> = suffixes(t).to_vec();
        if !names.contains(&"") {
            names.push("");
        }
        for suffix in names {
            if !self.seen_names.insert(hash_name(&fam.name, suffix)) {
                return Err(ParseError::invalid(
                    line,
                    format!(
                        "metric name {:?} clashes with an earlier family",
                        format!("{}{}", fam.name, suffix)
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn check_histogram(h: &HistGroup, name: &str, options: ParseOptions) -> Result<(), ParseError> {
    let fail = |reason: &str| {
        Err(ParseError::invalid(
            h.last_line,
            format!("histogram {name:?}: {reason}"),
        ))
    };
    if h.last_bound != Some(f64::INFINITY) {
        return fail("+Inf bucket missing");
    }
    if h.count.is_some_and(|c| c != h.last_bucket_value) {
        return fail("_count does not match the +Inf bucket");
    }
    if h.has_sum && h.count.is_none() {
        return fail("_sum without _count");
    }
    if h.has_gsum && h.count.is_none() {
        return fail("_gsum without _gcount");
    }
    if !(h.has_sum || h.has_gsum) && h.count.is_some() {
        return fail("_count without _sum");
    }
    if h.has_negative_buckets && h.has_sum && options.spec_strict_signs {
        return fail("_sum not allowed with negative buckets");
    }
    if !h.has_negative_buckets && h.has_negative_gsum {
        return fail("negative _gsum without negative buckets");
    }
    Ok(())
}
