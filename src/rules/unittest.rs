//! `vigil test rules FILE...`: promtool-compatible rule unit tests. Reads the unit-test YAML,
//! loads `input_series` (promqltest series notation) lazily into an in-memory store as
//! evaluation time advances, evaluates the rule groups every `evaluation_interval` (outputs
//! written back so later rules and groups see them), checks `alert_rule_test` against firing
//! alerts and `promql_expr_test` against instant queries, and prints promtool's report.
//! Test tooling only: never touches a real database or the network.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use vigil_promql::engine::{Engine, EngineOpts, MemStorage};
use vigil_promql::promqltest::series::{parse_metric, parse_values};
use vigil_promql::promqltest::SeqValue;
use vigil_storage::Labels;

use super::eval::{parse_rfc3339, EvalContext, OutSample, RuleStore};
use super::group::{Group, RuleKind};
use super::{load_file, AlertState, LoadOptions};
use crate::flags::parse_duration_ms;
use crate::template::value::go_duration_string;

/// Default `evaluation_interval` of a unit-test file.
pub const DEFAULT_EVAL_INTERVAL_MS: i64 = 60_000;
const NANOS_PER_MS: i64 = 1_000_000;
const LABEL_ALERTNAME: &str = "alertname";

/// Options of a unit-test run.
#[derive(Clone, Debug)]
pub struct UnitTestOptions {
    pub enable_at_modifier: bool,
    pub enable_negative_offset: bool,
    pub ignore_unknown_fields: bool,
    /// Regexes; when non-empty only test groups whose name matches one run.
    pub run: Vec<regex::Regex>,
    pub load: LoadOptions,
}

impl Default for UnitTestOptions {
    fn default() -> Self {
        UnitTestOptions {
            enable_at_modifier: true,
            enable_negative_offset: true,
            ignore_unknown_fields: false,
            run: Vec::new(),
            load: LoadOptions::default(),
        }
    }
}

/// A YAML scalar taken as text whatever its type (yaml.v2 turns `values: 1` into "1").
#[derive(Clone, Debug, Default)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(s) => Ok(Text(s)),
            serde_yaml::Value::Number(n) => Ok(Text(n.to_string())),
            serde_yaml::Value::Bool(b) => Ok(Text(b.to_string())),
            serde_yaml::Value::Null => Ok(Text(String::new())),
            other => Err(D::Error::custom(format!(
                "expected a scalar, got {other:?}"
            ))),
        }
    }
}

/// A unit-test file type: its Go name and its fields, each with the shape of the items of
/// the list it holds (None: a leaf).
type Shape = (&'static str, &'static [(&'static str, Option<Items>)]);

/// The shape of the items of a list field.
#[derive(Clone, Copy)]
struct Items(fn() -> Shape);

fn file_shape() -> Shape {
    (
        "main.unitTestFile",
        &[
            ("rule_files", None),
            ("evaluation_interval", None),
            ("fuzzy_compare", None),
            ("group_eval_order", None),
            ("tests", Some(Items(group_shape))),
        ],
    )
}

fn group_shape() -> Shape {
    (
        "main.testGroup",
        &[
            ("interval", None),
            ("input_series", Some(Items(series_shape))),
            ("alert_rule_test", Some(Items(alert_test_shape))),
            ("promql_expr_test", Some(Items(promql_test_shape))),
            ("external_labels", None),
            ("external_url", None),
            ("name", None),
            ("start_timestamp", None),
        ],
    )
}

fn series_shape() -> Shape {
    ("main.series", &[("series", None), ("values", None)])
}

fn alert_test_shape() -> Shape {
    (
        "main.alertTestCase",
        &[
            ("eval_time", None),
            ("alertname", None),
            ("exp_alerts", Some(Items(alert_shape))),
        ],
    )
}

fn alert_shape() -> Shape {
    (
        "main.alert",
        &[("exp_labels", None), ("exp_annotations", None)],
    )
}

fn promql_test_shape() -> Shape {
    (
        "main.promqlTestCase",
        &[
            ("expr", None),
            ("eval_time", None),
            ("exp_samples", Some(Items(sample_shape))),
        ],
    )
}

fn sample_shape() -> Shape {
    (
        "main.sample",
        &[("labels", None), ("value", None), ("histogram", None)],
    )
}

/// yaml.v2 strict-mode errors for unknown fields: `line N: field F not found in type T`.
fn unknown_fields(root: &super::yaml::Node) -> Vec<String> {
    fn walk(n: &super::yaml::Node, shape: Shape, out: &mut Vec<String>) {
        use super::yaml::Kind;
        let Kind::Map(entries) = &n.kind else { return };
        let (type_name, fields) = shape;
        for (k, v) in entries {
            let key = k.as_str().unwrap_or("");
            match fields.iter().find(|(f, _)| *f == key) {
                None => out.push(format!(
                    "line {}: field {key} not found in type {type_name}",
                    k.pos.line
                )),
                Some((_, Some(Items(sub)))) => {
                    if let Kind::Seq(items) = &v.kind {
                        for item in items {
                            walk(item, sub(), out);
                        }
                    }
                }
                Some((_, None)) => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(root, file_shape(), &mut out);
    out
}

/// The YAML tree as a serde value whose scalars all stay text, as yaml.v2 reads them into
/// string fields (`values: 0x10` is the text `0x10`, not the number 16).
fn to_text_value(n: &super::yaml::Node) -> serde_yaml::Value {
    use super::yaml::Kind;
    match &n.kind {
        Kind::Scalar { .. } if n.is_null() => serde_yaml::Value::Null,
        Kind::Scalar { value, .. } => serde_yaml::Value::String(value.clone()),
        Kind::Seq(items) => serde_yaml::Value::Sequence(items.iter().map(to_text_value).collect()),
        Kind::Map(entries) => serde_yaml::Value::Mapping(
            entries
                .iter()
                .map(|(k, v)| (to_text_value(k), to_text_value(v)))
                .collect(),
        ),
    }
}

/// A YAML float as Go's yaml.v2 reads it (`1`, `2.5e3`, `.inf`, `-.Inf`, `.nan`).
#[derive(Clone, Copy, Debug, Default)]
struct Float(f64);

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let t = Text::deserialize(d)?;
        let s = t.0.trim();
        let v = match s {
            ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => f64::INFINITY,
            "-.inf" | "-.Inf" | "-.INF" => f64::NEG_INFINITY,
            ".nan" | ".NaN" | ".NAN" => f64::NAN,
            _ => s.replace('_', "").parse::<f64>().map_err(|_| {
                D::Error::custom(format!("cannot unmarshal !!str `{s}` into float64"))
            })?,
        };
        Ok(Float(v))
    }
}

/// A YAML bool (`true`/`false` in any of YAML 1.1's spellings).
#[derive(Clone, Copy, Debug, Default)]
struct Bool(bool);

impl<'de> Deserialize<'de> for Bool {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let t = Text::deserialize(d)?;
        match t.0.as_str() {
            "true" | "True" | "TRUE" | "yes" | "Yes" | "on" | "On" => Ok(Bool(true)),
            "false" | "False" | "FALSE" | "no" | "No" | "off" | "Off" => Ok(Bool(false)),
            other => Err(D::Error::custom(format!(
                "cannot unmarshal !!str `{other}` into bool"
            ))),
        }
    }
}

/// A Prometheus duration (`5m`, `1h30m`, `0`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Dur(i64);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let t = Text::deserialize(d)?;
        parse_duration_ms(&t.0).map(Dur).map_err(D::Error::custom)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitTestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<Dur>,
    #[serde(default)]
    fuzzy_compare: Bool,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    interval: Option<Dur>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTestCase>,
    #[serde(default)]
    promql_expr_test: Vec<PromqlTestCase>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    start_timestamp: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    #[serde(default)]
    series: Text,
    #[serde(default)]
    values: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTestCase {
    #[serde(default)]
    eval_time: Dur,
    #[serde(default)]
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromqlTestCase {
    #[serde(default)]
    expr: String,
    #[serde(default)]
    eval_time: Dur,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    #[serde(default)]
    value: Float,
    #[serde(default)]
    histogram: Option<String>,
}

/// Runs every file, printing promtool's report to `out`/`err`; returns the exit code
/// (0 all passed, 1 some failed).
pub fn run_files(
    files: &[PathBuf],
    opts: &UnitTestOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<u8> {
    let mut failed = false;
    for f in files {
        writeln!(out, "Unit Testing:  {}", f.display())?;
        let (warnings, errs) = run_file_with_warnings(f, opts);
        for w in warnings {
            writeln!(err, "  WARNING: {w}")?;
        }
        if errs.is_empty() {
            writeln!(out, "  SUCCESS")?;
        } else {
            failed = true;
            writeln!(err, "  FAILED:")?;
            for e in errs {
                writeln!(err, "{e}")?;
                writeln!(out)?;
            }
        }
        writeln!(out)?;
    }
    Ok(u8::from(failed))
}

/// Runs one unit-test file and returns its failures (empty when it passed), each rendered
/// as promtool renders it.
pub fn run_file(path: &Path, opts: &UnitTestOptions) -> Vec<String> {
    run_file_with_warnings(path, opts).1
}

/// Like [`run_file`], also returning warnings (rule-file patterns that matched nothing).
pub fn run_file_with_warnings(path: &Path, opts: &UnitTestOptions) -> (Vec<String>, Vec<String>) {
    let mut warnings = Vec::new();
    let errs = run_file_inner(path, opts, &mut warnings);
    (warnings, errs)
}

fn run_file_inner(path: &Path, opts: &UnitTestOptions, warnings: &mut Vec<String>) -> Vec<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("open {}: {e}", path.display())],
    };
    let file: UnitTestFile = match super::yaml::parse(&text) {
        Err(e) => return vec![e.to_string()],
        Ok(None) => UnitTestFile::default(),
        Ok(Some(node)) => match unknown_fields(&node) {
            errs if !errs.is_empty() => {
                return vec![format!("yaml: unmarshal errors:\n  {}", errs.join("\n  "))]
            }
            _ => match serde_yaml::from_value(to_text_value(&node)) {
                Ok(f) => f,
                Err(e) => return vec![format!("yaml: unmarshal errors:\n  {e}")],
            },
        },
    };
    let base = path.parent().unwrap_or(Path::new(""));
    let mut rule_files = Vec::new();
    for rf in &file.rule_files {
        let p = if Path::new(rf).is_absolute() || base.as_os_str().is_empty() {
            PathBuf::from(rf)
        } else {
            base.join(rf)
        };
        let matched = expand_glob(&p);
        if matched.is_empty() {
            warnings.push(format!("no file match pattern {}", p.display()));
        }
        rule_files.extend(matched);
    }
    let eval_interval = file
        .evaluation_interval
        .map(|d| d.0)
        .filter(|d| *d > 0)
        .unwrap_or(DEFAULT_EVAL_INTERVAL_MS);
    let mut order: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, g) in file.group_eval_order.iter().enumerate() {
        if order.insert(g.as_str(), i).is_some() {
            return vec![format!("group name repeated in evaluation order: {g}")];
        }
    }
    let mut errs = Vec::new();
    for tg in &file.tests {
        if !opts.run.is_empty() && !opts.run.iter().any(|r| r.is_match(&tg.name)) {
            continue;
        }
        errs.extend(run_group(
            tg,
            &file,
            &rule_files,
            eval_interval,
            &order,
            opts,
        ));
    }
    errs
}

/// Expands `*`, `?` and `[...]` in the last path component (like Go's `filepath.Glob` for
/// the common case); a pattern without metacharacters is returned as is.
fn expand_glob(p: &Path) -> Vec<PathBuf> {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !name.contains(['*', '?', '[']) {
        return vec![p.to_path_buf()];
    }
    let mut re = String::from("^");
    for c in name.chars() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' | ']' => re.push(c),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    let Ok(re) = regex::Regex::new(&re) else {
        return Vec::new();
    };
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
    let Ok(rd) = std::fs::read_dir(dir.unwrap_or(Path::new("."))) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_str()?.to_string();
            re.is_match(&n)
                .then(|| dir.map_or_else(|| PathBuf::from(&n), |d| d.join(&n)))
        })
        .collect();
    out.sort();
    out
}

/// Prometheus' `model.Duration.String()`: `1d`, `5m`, `1h30m`, `2m59s999ms`, `0s`.
pub fn model_duration_string(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut s = String::new();
    let mut rest = ms.unsigned_abs();
    if ms < 0 {
        s.push('-');
    }
    for (unit, size) in UNITS {
        let size = size as u64;
        let n = rest / size;
        if n > 0 {
            s.push_str(&format!("{n}{unit}"));
            rest -= n * size;
        }
    }
    s
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`: `1E+00`, `5.6E+01`, `-2.5E-03`, `NaN`, `+Inf`.
pub fn format_float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let s = format!("{v:E}");
    let Some((mant, exp)) = s.split_once('E') else {
        return s;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mant}E{sign}{:02}", exp.unsigned_abs())
}

/// Float equality of the unit tests: exact (NaN equals NaN), or within one ULP when fuzzy.
fn float_eq(a: f64, b: f64, fuzzy: bool) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    fuzzy && (next_after(a, f64::INFINITY) == b || next_after(a, f64::NEG_INFINITY) == b)
}

fn next_after(x: f64, toward: f64) -> f64 {
    if x.is_nan() || x == toward {
        return x;
    }
    if x == 0.0 {
        return if toward > 0.0 {
            f64::from_bits(1)
        } else {
            -f64::from_bits(1)
        };
    }
    let bits = x.to_bits();
    let up = (toward > x) == (x > 0.0);
    f64::from_bits(if up { bits + 1 } else { bits - 1 })
}

fn parse_start(t: &Option<Text>) -> Result<i64, String> {
    let Some(Text(s)) = t else { return Ok(0) };
    if s.is_empty() {
        return Ok(0);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return secs
            .checked_mul(1000)
            .ok_or_else(|| format!("start_timestamp {s} out of range"));
    }
    parse_rfc3339(s).map_err(|e| format!("start_timestamp: {e}"))
}

/// An input series with its remaining samples (loaded lazily as time advances).
struct Input {
    labels: Labels,
    samples: Vec<(i64, f64)>,
    next: usize,
}

fn load_inputs(tg: &TestGroup, start: i64, interval: i64) -> Result<Vec<Input>, String> {
    let mut out = Vec::with_capacity(tg.input_series.len());
    for s in &tg.input_series {
        let (labels, rest) = parse_metric(s.series.0.trim())?;
        if !rest.trim().is_empty() {
            return Err(format!(
                "parse error: unexpected {:?} after series {:?}",
                rest.trim(),
                s.series.0
            ));
        }
        let values = parse_values(&s.values.0)?;
        let mut samples = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let t = start + i as i64 * interval;
            match v {
                SeqValue::Omitted => {}
                SeqValue::Float(f) => samples.push((t, *f)),
                SeqValue::Histogram(_) => {
                    return Err(format!(
                        "series {labels}: native histogram samples are not supported by this engine"
                    ))
                }
            }
        }
        out.push(Input {
            labels,
            samples,
            next: 0,
        });
    }
    Ok(out)
}

/// Appends every input sample with timestamp ≤ `ts` not loaded yet.
fn load_till(store: &MemStorage, inputs: &mut [Input], ts: i64) -> Result<(), String> {
    let mut batch = Vec::new();
    for inp in inputs.iter_mut() {
        let end = inp.next + inp.samples[inp.next..].partition_point(|(t, _)| *t <= ts);
        for &(t, v) in &inp.samples[inp.next..end] {
            batch.push(OutSample {
                labels: inp.labels.clone(),
                t,
                v,
            });
        }
        inp.next = end;
    }
    if batch.is_empty() {
        return Ok(());
    }
    store.append_samples(&batch).map(|_| ())
}

/// Labels and annotations of one alert, for comparison and printing.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct LabelsAndAnnotations {
    labels: Labels,
    annotations: Labels,
}

fn alerts_string(list: &[LabelsAndAnnotations]) -> String {
    if list.is_empty() {
        return "[]".into();
    }
    let mut s = String::from("[");
    for (i, a) in list.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "\n{i}:\n  Labels:{}\n  Annotations:{}",
            a.labels, a.annotations
        ));
    }
    s.push_str("\n]");
    s
}

fn indent_lines(s: &str, indent: &str) -> String {
    s.split('\n')
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}"))
}

fn map_labels(m: &BTreeMap<String, String>) -> Labels {
    let pairs: Vec<(&str, &str)> = m
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Labels::from_pairs(&pairs).unwrap_or_else(|_| Labels::empty())
}

fn samples_string(s: &[(Labels, f64)]) -> String {
    if s.is_empty() {
        return "nil".into();
    }
    s.iter()
        .map(|(l, v)| format!("{l} {}", format_float_e(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn run_group(
    tg: &TestGroup,
    file: &UnitTestFile,
    rule_files: &[PathBuf],
    eval_interval: i64,
    order: &BTreeMap<&str, usize>,
    opts: &UnitTestOptions,
) -> Vec<String> {
    let start = match parse_start(&tg.start_timestamp) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let interval = tg
        .interval
        .map(|d| d.0)
        .filter(|d| *d > 0)
        .unwrap_or(eval_interval);
    let mut inputs = match load_inputs(tg, start, interval) {
        Ok(i) => i,
        Err(e) => return vec![e],
    };
    let store = Arc::new(MemStorage::new());
    let engine_opts = EngineOpts {
        enable_at_modifier: opts.enable_at_modifier,
        enable_negative_offset: opts.enable_negative_offset,
        no_step_subquery_interval_ms: eval_interval,
        parser_options: opts.load.validate.parser,
        ..EngineOpts::default()
    };
    let ctx = EvalContext {
        engine: Engine::new(engine_opts),
        store: store.clone(),
        external_labels: tg.external_labels.clone(),
        external_url: tg.external_url.clone(),
    };

    // Load rule groups.
    let mut load = opts.load;
    load.ignore_unknown_fields = opts.ignore_unknown_fields;
    let mut groups: Vec<Group> = Vec::new();
    let mut load_errs = Vec::new();
    for rf in rule_files {
        match load_file(rf, &load) {
            Ok(rg) => {
                let fname = rf.display().to_string();
                groups.extend(rg.groups.iter().map(|g| Group::new(&fname, g, interval, 0)));
            }
            Err(es) => load_errs.extend(es.into_iter().map(|e| format!("{}: {e}", rf.display()))),
        }
    }
    if !load_errs.is_empty() {
        return load_errs;
    }
    groups.sort_by_key(|g| order.get(g.name.as_str()).copied().unwrap_or(usize::MAX));
    for g in &mut groups {
        g.mark_restored();
    }

    let max_eval = tg
        .alert_rule_test
        .iter()
        .map(|a| a.eval_time.0)
        .chain(tg.promql_expr_test.iter().map(|p| p.eval_time.0))
        .max()
        .unwrap_or(0);
    let mut alert_tests: BTreeMap<i64, Vec<&AlertTestCase>> = BTreeMap::new();
    for a in &tg.alert_rule_test {
        if a.alertname.is_empty() {
            let in_group = if tg.name.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", tg.name)
            };
            return vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                model_duration_string(a.eval_time.0)
            )];
        }
        alert_tests.entry(a.eval_time.0).or_default().push(a);
    }
    let alert_times: Vec<i64> = alert_tests.keys().copied().collect();
    let mut curr = 0;
    let mut errs = Vec::new();
    let test_name = if tg.name.is_empty() {
        String::new()
    } else {
        format!("    name: {},\n", tg.name)
    };

    let mut ts = start;
    while ts <= start + max_eval {
        if let Err(e) = load_till(&store, &mut inputs, ts) {
            errs.push(e);
        }
        let mut eval_errs = Vec::new();
        for g in &mut groups {
            let outcome = g.eval(&ctx, ts, None);
            for (rule, e) in outcome.errors {
                eval_errs.push(format!(
                    "    rule: {rule}, time: {}, err: {e}",
                    go_duration_string(ts.saturating_mul(NANOS_PER_MS))
                ));
            }
        }
        if !eval_errs.is_empty() {
            errs.extend(eval_errs);
            return errs;
        }
        while curr < alert_times.len()
            && ts - start <= alert_times[curr]
            && alert_times[curr] < ts - start + eval_interval
        {
            let t = alert_times[curr];
            for tc in alert_tests.get(&t).map(Vec::as_slice).unwrap_or(&[]) {
                let mut got: Vec<LabelsAndAnnotations> = Vec::new();
                for g in &groups {
                    for r in &g.rules {
                        let RuleKind::Alerting(a) = &r.kind else {
                            continue;
                        };
                        if a.name != tc.alertname {
                            continue;
                        }
                        got.extend(
                            a.active
                                .values()
                                .filter(|x| x.state == AlertState::Firing)
                                .map(|x| LabelsAndAnnotations {
                                    labels: x.labels.clone(),
                                    annotations: x.annotations.clone(),
                                }),
                        );
                    }
                }
                let mut exp: Vec<LabelsAndAnnotations> = tc
                    .exp_alerts
                    .iter()
                    .map(|e| {
                        let mut l = e.exp_labels.clone();
                        l.insert(LABEL_ALERTNAME.to_string(), tc.alertname.clone());
                        LabelsAndAnnotations {
                            labels: map_labels(&l),
                            annotations: map_labels(&e.exp_annotations),
                        }
                    })
                    .collect();
                got.sort();
                exp.sort();
                if got != exp {
                    let indent = "            ";
                    errs.push(format!(
                        "{test_name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                        tc.alertname,
                        model_duration_string(t),
                        indent_lines(&alerts_string(&exp), indent),
                        indent_lines(&alerts_string(&got), indent)
                    ));
                }
            }
            curr += 1;
        }
        ts += eval_interval;
    }

    'cases: for tc in &tg.promql_expr_test {
        let at = model_duration_string(tc.eval_time.0);
        let got = match ctx.query(&tc.expr, start + tc.eval_time.0) {
            Ok(v) => v,
            Err(e) => {
                errs.push(format!("    expr: {:?}, time: {at}, err: {e}", tc.expr));
                continue;
            }
        };
        let mut got: Vec<(Labels, f64)> = got.into_iter().map(|s| (s.labels, s.v)).collect();
        let mut exp: Vec<(Labels, f64)> = Vec::with_capacity(tc.exp_samples.len());
        for s in &tc.exp_samples {
            let parsed = if s.labels.trim().is_empty() {
                Ok((Labels::empty(), ""))
            } else {
                parse_metric(s.labels.trim())
            };
            match parsed {
                Ok((l, rest)) if rest.trim().is_empty() => {
                    if s.histogram.is_some() {
                        errs.push(format!(
                            "    expr: {:?}, time: {at}, err: native histogram samples are not supported by this engine",
                            tc.expr
                        ));
                        continue 'cases;
                    }
                    exp.push((l, s.value.0));
                }
                Ok((_, rest)) => {
                    errs.push(format!(
                        "    expr: {:?}, time: {at}, err: labels {:?}: unexpected {:?}",
                        tc.expr,
                        s.labels,
                        rest.trim()
                    ));
                    continue 'cases;
                }
                Err(e) => {
                    errs.push(format!(
                        "    expr: {:?}, time: {at}, err: labels {:?}: {e}",
                        tc.expr, s.labels
                    ));
                    continue 'cases;
                }
            }
        }
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let equal = exp.len() == got.len()
            && exp
                .iter()
                .zip(&got)
                .all(|(e, g)| e.0 == g.0 && float_eq(e.1, g.1, file.fuzzy_compare.0));
        if !equal {
            errs.push(format!(
                "    expr: {:?}, time: {at},\n        exp: {}\n        got: {}",
                tc.expr,
                samples_string(&exp),
                samples_string(&got)
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn float_e_like_go() {
        assert_eq!(format_float_e(1.0), "1E+00");
        assert_eq!(format_float_e(0.0), "0E+00");
        assert_eq!(format_float_e(56.0), "5.6E+01");
        assert_eq!(format_float_e(-0.0025), "-2.5E-03");
        assert_eq!(format_float_e(1e100), "1E+100");
        assert_eq!(format_float_e(f64::NAN), "NaN");
    }

    #[test]
    fn model_durations() {
        assert_eq!(model_duration_string(0), "0s");
        assert_eq!(model_duration_string(300_000), "5m");
        assert_eq!(model_duration_string(86_400_000), "1d");
        assert_eq!(model_duration_string(179_999), "2m59s999ms");
        assert_eq!(model_duration_string(5_400_000), "1h30m");
    }

    #[test]
    fn fuzzy_is_one_ulp() {
        assert!(float_eq(2.9999999999999996, 3.0, true));
        assert!(float_eq(3.0000000000000004, 3.0, true));
        assert!(!float_eq(2.9999999999999987, 3.0, true));
        assert!(!float_eq(2.9999999999999996, 3.0, false));
        assert!(float_eq(f64::NAN, f64::NAN, false));
    }
}

/// `vigil test …` subcommands (mirrors `promtool test`).
#[derive(clap::Subcommand, Debug)]
pub enum TestCommand {
    /// Unit tests for rules (like `promtool test rules`).
    Rules {
        /// The unit-test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Only run test groups whose name matches one of these regexes.
        #[arg(long = "run")]
        run: Vec<String>,
        /// Ignore unknown fields in the rule files.
        #[arg(long = "ignore-unknown-fields")]
        ignore_unknown_fields: bool,
        /// PromQL features (comma-separated or repeated): promql-at-modifier,
        /// promql-negative-offset (both on by default), promql-experimental-functions,
        /// promql-duration-expr, promql-extended-range-selectors, promql-binop-fill-modifiers.
        #[arg(long = "enable-feature", value_delimiter = ',')]
        enable_feature: Vec<String>,
    },
}

/// Runs a `test` subcommand; returns the process exit code.
pub fn run(cmd: TestCommand) -> u8 {
    let TestCommand::Rules {
        files,
        run,
        ignore_unknown_fields,
        enable_feature,
    } = cmd;
    let mut opts = UnitTestOptions {
        ignore_unknown_fields,
        ..UnitTestOptions::default()
    };
    for r in &run {
        match regex::Regex::new(r) {
            Ok(re) => opts.run.push(re),
            Err(e) => {
                eprintln!("invalid --run regex {r:?}: {e}");
                return 1;
            }
        }
    }
    for f in &enable_feature {
        let p = &mut opts.load.validate.parser;
        match f.as_str() {
            "promql-at-modifier" | "promql-negative-offset" => {}
            "promql-experimental-functions" => p.enable_experimental_functions = true,
            "promql-duration-expr" => p.enable_duration_expressions = true,
            "promql-extended-range-selectors" => p.enable_extended_range_selectors = true,
            "promql-binop-fill-modifiers" => p.enable_binop_fill = true,
            other => eprintln!("warning: unknown feature flag {other:?} ignored"),
        }
    }
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    run_files(&files, &opts, &mut out, &mut err).unwrap_or(1)
}
