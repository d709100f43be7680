//! Parses a promqltest script into commands (DSL.md §1, §3, §5, §6): line handling (trim,
//! comments become empty lines, an empty line ends a block), `load`/`load_with_nhcb` blocks
//! with `@st` lines, `clear`, and `eval` headers with their bodies. Every command records its
//! 1-based line number; every error names `file:line`.
//!
//! The whole file is parsed before anything runs. This module must never evaluate PromQL or
//! touch an engine: expressions are kept as text.

use regex::Regex;
use vigil_storage::Labels;

use super::expect::{
    parse_expect_string_line, parse_range_vector_line, Expectations, ExpectedSeries, LegacyFlags,
    RangeVectorSpec, EXPECT_PATTERN, EXPECT_STRING_PREFIX, RANGE_VECTOR_PREFIX,
};
use super::number::{parse_duration, parse_scalar_line};
use super::series::{parse_series_line, parse_st_line, SeqValue};
use super::DslError;

/// Header of a load command.
const LOAD_PATTERN: &str = r"^load(?:_(with_nhcb))?\s+(.+?)$";
/// Header of an instant eval.
const EVAL_INSTANT_PATTERN: &str =
    r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$";
/// Header of a range eval.
const EVAL_RANGE_PATTERN: &str =
    r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$";
/// Body line of a legacy `eval_fail` giving the exact error text.
const EXPECTED_FAIL_MESSAGE: &str = "expected_fail_message";
/// Body line of a legacy `eval_fail` giving an error regex.
const EXPECTED_FAIL_REGEXP: &str = "expected_fail_regexp";

/// A parsed test file.
#[derive(Clone, Debug)]
pub struct TestFile {
    /// The name used in messages (usually the path).
    pub name: String,
    pub commands: Vec<Command>,
}

impl TestFile {
    /// The eval commands, in file order.
    pub fn evals(&self) -> impl Iterator<Item = &EvalCmd> {
        self.commands.iter().filter_map(|c| match c {
            Command::Eval(e) => Some(e.as_ref()),
            _ => None,
        })
    }
}

/// One command of a script.
#[derive(Clone, Debug)]
pub enum Command {
    Load(LoadCmd),
    Clear { line: usize },
    Eval(Box<EvalCmd>),
}

impl Command {
    /// The 1-based line of the command header.
    pub fn line(&self) -> usize {
        match self {
            Command::Load(l) => l.line,
            Command::Clear { line } => *line,
            Command::Eval(e) => e.line,
        }
    }
}

/// A `load <interval>` block.
#[derive(Clone, Debug)]
pub struct LoadCmd {
    pub line: usize,
    pub interval_ms: i64,
    /// `load_with_nhcb`: classic histograms are also converted to NHCB series (§3.3).
    pub with_nhcb: bool,
    /// Series in first-appearance order; a repeated label set replaced the earlier line.
    pub series: Vec<LoadSeries>,
}

/// One series line of a load block.
#[derive(Clone, Debug)]
pub struct LoadSeries {
    pub line: usize,
    pub labels: Labels,
    pub values: Vec<SeqValue>,
    /// Start-timestamp offsets (ms) from a preceding `@st` line, one per slot.
    pub st_offsets: Option<Vec<Option<i64>>>,
}

/// Instant or range evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalMode {
    Instant {
        at_ms: i64,
    },
    Range {
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    },
}

/// An `eval` command with everything its body declares.
#[derive(Clone, Debug)]
pub struct EvalCmd {
    pub line: usize,
    pub expr: String,
    pub mode: EvalMode,
    pub legacy: LegacyFlags,
    pub expected_fail_message: Option<String>,
    pub expected_fail_regexp: Option<Regex>,
    pub expect: Expectations,
    pub range_vector: Option<RangeVectorSpec>,
    pub expected_string: Option<String>,
    /// A scalar expectation (§6.2 rule 5).
    pub expected_scalar: Option<f64>,
    /// Expected series, unique by label set.
    pub expected_series: Vec<ExpectedSeries>,
}

impl EvalCmd {
    /// Whether results must come in the listed order.
    pub fn is_ordered(&self) -> bool {
        self.legacy.ordered || self.expect.ordered
    }

    /// Whether the query must fail.
    pub fn expects_failure(&self) -> bool {
        self.legacy.fail || self.expect.fail.is_some()
    }

    /// Whether any expected value is a native histogram.
    pub fn expects_histograms(&self) -> bool {
        self.expected_series
            .iter()
            .any(|s| s.values.iter().any(|v| matches!(v, SeqValue::Histogram(_))))
    }

    /// The evaluation time of an instant eval (`expect range vector` overrides the header).
    pub fn instant_time_ms(&self) -> Option<i64> {
        match self.mode {
            EvalMode::Instant { at_ms } => Some(self.range_vector.map_or(at_ms, |r| r.to_ms)),
            EvalMode::Range { .. } => None,
        }
    }
}

struct Patterns {
    load: Regex,
    instant: Regex,
    range: Regex,
    expect: Regex,
}

impl Patterns {
    fn new() -> Result<Patterns, String> {
        let compile = |p: &str| Regex::new(p).map_err(|e| format!("bad built-in pattern: {e}"));
        Ok(Patterns {
            load: compile(LOAD_PATTERN)?,
            instant: compile(EVAL_INSTANT_PATTERN)?,
            range: compile(EVAL_RANGE_PATTERN)?,
            expect: compile(EXPECT_PATTERN)?,
        })
    }
}

/// Parser state: the prepared lines and the file name for errors.
struct Parser<'a> {
    name: &'a str,
    lines: Vec<&'a str>,
    pat: Patterns,
}

impl Parser<'_> {
    fn err(&self, idx: usize, message: impl Into<String>) -> DslError {
        DslError::Parse {
            file: self.name.to_string(),
            line: idx + 1,
            message: message.into(),
        }
    }

    fn line(&self, idx: usize) -> &str {
        self.lines.get(idx).copied().unwrap_or("")
    }

    /// Parses a load block whose header is at `idx`; returns the command and the index of the
    /// first line after the block.
    fn parse_load(&self, idx: usize) -> Result<(LoadCmd, usize), DslError> {
        let header = self.line(idx);
        let caps = self.pat.load.captures(header).ok_or_else(|| {
            self.err(
                idx,
                "invalid load command. (load[_with_nhcb] <step:duration>)",
            )
        })?;
        let with_nhcb = caps.get(1).is_some();
        let step = caps.get(2).map_or("", |m| m.as_str());
        let interval_ms = parse_duration(step)
            .map_err(|e| self.err(idx, format!("invalid step definition {step:?}: {e}")))?;
        let mut cmd = LoadCmd {
            line: idx + 1,
            interval_ms,
            with_nhcb,
            series: Vec::new(),
        };
        let mut pending_st: Option<(usize, Labels, Vec<Option<i64>>)> = None;
        let mut i = idx + 1;
        while i < self.lines.len() && !self.line(i).is_empty() {
            let text = self.line(i);
            if let Some((labels, offsets)) = parse_st_line(text).map_err(|e| self.err(i, e))? {
                if let Some((st_idx, _, _)) = pending_st {
                    return Err(self.err(st_idx, "@st line has no following sample line"));
                }
                pending_st = Some((i, labels, offsets));
                i += 1;
                continue;
            }
            let series = parse_series_line(text).map_err(|e| self.err(i, e))?;
            let st_offsets = match pending_st.take() {
                Some((st_idx, st_labels, offsets)) => {
                    if st_labels != series.labels {
                        return Err(self.err(
                            st_idx,
                            "@st metric does not match the following sample line metric",
                        ));
                    }
                    if offsets.len() != series.values.len() {
                        return Err(self.err(
                            st_idx,
                            format!(
                                "@st line has {} values but sample line has {}",
                                offsets.len(),
                                series.values.len()
                            ),
                        ));
                    }
                    Some(offsets)
                }
                None => None,
            };
            let entry = LoadSeries {
                line: i + 1,
                labels: series.labels,
                values: series.values,
                st_offsets,
            };
            match cmd.series.iter_mut().find(|s| s.labels == entry.labels) {
                Some(existing) => *existing = entry,
                None => cmd.series.push(entry),
            }
            i += 1;
        }
        if let Some((st_idx, _, _)) = pending_st {
            return Err(self.err(st_idx, "@st line has no following sample line"));
        }
        Ok((cmd, i))
    }

    fn parse_header(&self, idx: usize) -> Result<EvalCmd, DslError> {
        let header = self.line(idx);
        let legacy_of = |suffix: Option<&str>| LegacyFlags {
            fail: suffix == Some("fail"),
            warn: suffix == Some("warn"),
            info: suffix == Some("info"),
            ordered: suffix == Some("ordered"),
        };
        let duration = |text: &str, what: &str| {
            parse_duration(text).map_err(|e| self.err(idx, format!("invalid {what} {text:?}: {e}")))
        };
        let (mode, legacy, expr) = if let Some(c) = self.pat.instant.captures(header) {
            let at = c.get(2).map_or("", |m| m.as_str());
            let at_ms = duration(at, "evaluation timestamp")?;
            let expr = c.get(3).map_or("", |m| m.as_str());
            (
                EvalMode::Instant { at_ms },
                legacy_of(c.get(1).map(|m| m.as_str())),
                expr,
            )
        } else if let Some(c) = self.pat.range.captures(header) {
            let start_ms = duration(c.get(2).map_or("", |m| m.as_str()), "start timestamp")?;
            let end_ms = duration(c.get(3).map_or("", |m| m.as_str()), "end timestamp")?;
            let step_ms = duration(c.get(4).map_or("", |m| m.as_str()), "step")?;
            if end_ms < start_ms {
                return Err(self.err(
                    idx,
                    "invalid test definition, end timestamp is before start timestamp",
                ));
            }
            let expr = c.get(5).map_or("", |m| m.as_str());
            (
                EvalMode::Range {
                    start_ms,
                    end_ms,
                    step_ms,
                },
                legacy_of(c.get(1).map(|m| m.as_str())),
                expr,
            )
        } else {
            return Err(self.err(
                idx,
                "invalid evaluation command. Must be either 'eval[_fail|_warn|_info|_ordered] instant [at <offset:duration>] <query>' or 'eval[_fail|_warn|_info] range from <from> to <to> step <step> <query>'",
            ));
        };
        Ok(EvalCmd {
            line: idx + 1,
            expr: expr.to_string(),
            mode,
            legacy,
            expected_fail_message: None,
            expected_fail_regexp: None,
            expect: Expectations::default(),
            range_vector: None,
            expected_string: None,
            expected_scalar: None,
            expected_series: Vec::new(),
        })
    }

    /// Parses an eval command at `idx`; returns it and the index after its body.
    fn parse_eval(&self, idx: usize) -> Result<(EvalCmd, usize), DslError> {
        let mut ev = self.parse_header(idx)?;
        let is_instant = matches!(ev.mode, EvalMode::Instant { .. });
        let mut pos = 0usize;
        let mut i = idx + 1;
        while i < self.lines.len() && !self.line(i).is_empty() {
            let text = self.line(i);
            i += 1;
            let at = i - 1;
            if ev.legacy.fail && text.starts_with(EXPECTED_FAIL_MESSAGE) {
                ev.expected_fail_message =
                    Some(text[EXPECTED_FAIL_MESSAGE.len()..].trim().to_string());
                break;
            }
            if ev.legacy.fail && text.starts_with(EXPECTED_FAIL_REGEXP) {
                let re = text[EXPECTED_FAIL_REGEXP.len()..].trim();
                ev.expected_fail_regexp = Some(
                    Regex::new(re)
                        .map_err(|e| self.err(at, format!("invalid regexp {re:?}: {e}")))?,
                );
                break;
            }
            if text.starts_with(RANGE_VECTOR_PREFIX) {
                if !is_instant {
                    return Err(self.err(
                        at,
                        "'expect range vector' is only valid for instant queries",
                    ));
                }
                ev.range_vector = Some(parse_range_vector_line(text).map_err(|e| self.err(at, e))?);
                pos += 1;
                continue;
            }
            if text.starts_with(EXPECT_STRING_PREFIX) {
                if !is_instant {
                    return Err(self.err(at, "'expect string' is only valid for instant queries"));
                }
                ev.expected_string =
                    Some(parse_expect_string_line(text).map_err(|e| self.err(at, e))?);
                pos += 1;
                continue;
            }
            if text.split(' ').next() == Some("expect") {
                ev.expect
                    .add_line(text, &self.pat.expect)
                    .map_err(|e| self.err(at, e))?;
                continue;
            }
            if let Some(v) = parse_scalar_line(text) {
                ev.expected_scalar = Some(v);
                break;
            }
            pos += 1;
            let series = parse_series_line(text).map_err(|e| self.err(at, e))?;
            let entry = ExpectedSeries {
                labels: series.labels,
                pos,
                values: series.values,
                line: at + 1,
            };
            match ev
                .expected_series
                .iter_mut()
                .find(|s| s.labels == entry.labels)
            {
                Some(existing) => *existing = entry,
                None => ev.expected_series.push(entry),
            }
        }
        if is_instant && ev.range_vector.is_none() {
            for s in &ev.expected_series {
                if s.values.len() != 1 {
                    return Err(self.err(
                        s.line - 1,
                        format!(
                            "expected exactly one value for series {} in an instant query, got {}",
                            s.labels,
                            s.values.len()
                        ),
                    ));
                }
            }
        }
        Ok((ev, i))
    }
}

/// Parses a whole script. `name` is used in error messages.
pub fn parse_test(name: &str, input: &str) -> Result<TestFile, DslError> {
    let pat = Patterns::new().map_err(|e| DslError::Parse {
        file: name.to_string(),
        line: 0,
        message: e,
    })?;
    let lines: Vec<&str> = input
        .split('\n')
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                ""
            } else {
                t
            }
        })
        .collect();
    let parser = Parser { name, lines, pat };
    let mut commands = Vec::new();
    let mut i = 0usize;
    while i < parser.lines.len() {
        let text = parser.line(i);
        if text.is_empty() {
            i += 1;
            continue;
        }
        let word = text
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if word == "clear" {
            commands.push(Command::Clear { line: i + 1 });
            i += 1;
        } else if word.starts_with("load") {
            let (cmd, next) = parser.parse_load(i)?;
            commands.push(Command::Load(cmd));
            i = next;
        } else if word.starts_with("eval") {
            let (cmd, next) = parser.parse_eval(i)?;
            commands.push(Command::Eval(Box::new(cmd)));
            i = next;
        } else {
            return Err(parser.err(i, format!("invalid command {text:?}")));
        }
    }
    Ok(TestFile {
        name: name.to_string(),
        commands,
    })
}

/// Reads and parses a script from disk.
pub fn parse_test_file(path: &std::path::Path) -> Result<TestFile, DslError> {
    let name = path.display().to_string();
    let input = std::fs::read_to_string(path).map_err(|source| DslError::Io {
        file: name.clone(),
        source,
    })?;
    parse_test(&name, &input)
}
