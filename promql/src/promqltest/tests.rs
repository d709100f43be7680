//! Tests of the DSL as a whole: every shared `.test` file parses with the expected command
//! counts, body classification of evals, and the runner's pass/fail/skip accounting against
//! fake engines. Unit tests of single pieces live beside their modules.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use vigil_storage::Labels;

use super::parse::{parse_test, Command, EvalMode};
use super::runner::{at_variant_times, run_test, Capabilities, RunOptions, TestEngine};
use super::series::SeqValue;
use super::value::{
    LoadedSeries, MatrixSeries, QueryOutcome, SampleValue, TestValue, VectorSample,
};

/// Where the shared acceptance scripts live, relative to this crate, unless overridden.
const TESTDATA_ENV: &str = "VIGIL_PROMQLTEST_DIR";

fn testdata_dir() -> PathBuf {
    std::env::var_os(TESTDATA_ENV).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/promqltest"),
        PathBuf::from,
    )
}

/// (file, evals, instant, range, loads, load_with_nhcb, clears) for the shipped scripts.
const INVENTORY: [(&str, usize, usize, usize, usize, usize, usize); 17] = [
    ("aggregators.test", 160, 153, 7, 20, 0, 19),
    ("duration_expression.test", 59, 30, 29, 4, 0, 3),
    ("extended_vectors.test", 169, 162, 7, 27, 0, 27),
    ("fill-modifier.test", 46, 39, 7, 12, 0, 11),
    ("functions.test", 431, 394, 37, 53, 0, 46),
    ("histograms.test", 185, 185, 0, 37, 32, 4),
    ("info.test", 53, 4, 49, 17, 0, 16),
    ("limit.test", 37, 13, 24, 1, 0, 0),
    ("literals.test", 25, 25, 0, 0, 0, 0),
    ("name_label_dropping.test", 30, 29, 1, 3, 0, 2),
    ("native_histograms.test", 522, 502, 20, 74, 0, 55),
    ("operators.test", 214, 113, 101, 17, 1, 13),
    ("range_queries.test", 18, 5, 13, 10, 0, 9),
    ("selectors.test", 31, 31, 0, 7, 0, 4),
    ("staleness.test", 17, 17, 0, 2, 0, 1),
    ("start_timestamps.test", 26, 7, 19, 10, 0, 10),
    ("type_and_unit.test", 58, 58, 0, 2, 0, 1),
];

#[test]
fn every_shared_script_parses_with_expected_counts() {
    let dir = testdata_dir();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".test"))
        .collect();
    files.sort();
    let listed: Vec<&str> = INVENTORY.iter().map(|r| r.0).collect();
    assert_eq!(files, listed, "set of shared scripts changed");
    let mut total_evals = 0;
    for (name, evals, instant, range, loads, nhcb, clears) in INVENTORY {
        let path = dir.join(name);
        let src = std::fs::read_to_string(&path).unwrap();
        let f = parse_test(name, &src).unwrap_or_else(|e| panic!("{e}"));
        let count = |p: &dyn Fn(&Command) -> bool| f.commands.iter().filter(|c| p(c)).count();
        let got = (
            count(&|c| matches!(c, Command::Eval(_))),
            count(&|c| matches!(c, Command::Eval(e) if matches!(e.mode, EvalMode::Instant { .. }))),
            count(&|c| matches!(c, Command::Eval(e) if matches!(e.mode, EvalMode::Range { .. }))),
            count(&|c| matches!(c, Command::Load(_))),
            count(&|c| matches!(c, Command::Load(l) if l.with_nhcb)),
            count(&|c| matches!(c, Command::Clear { .. })),
        );
        assert_eq!(got, (evals, instant, range, loads, nhcb, clears), "{name}");
        total_evals += evals;
        // Every load block must also expand (NHCB conversion included).
        for c in &f.commands {
            if let Command::Load(l) = c {
                super::load::expand_load(l).unwrap_or_else(|e| panic!("{name}:{}: {e}", l.line));
            }
        }
    }
    assert_eq!(total_evals, 2081);
}

#[test]
fn shared_scripts_use_every_expectation_form() {
    let dir = testdata_dir();
    let (mut ordered, mut fail, mut strings, mut range_vectors, mut scalars, mut hints) =
        (0, 0, 0, 0, 0, 0);
    let mut legacy_fail = 0;
    let mut st_lines = 0;
    for (name, ..) in INVENTORY {
        let src = std::fs::read_to_string(dir.join(name)).unwrap();
        let f = parse_test(name, &src).unwrap();
        for c in &f.commands {
            match c {
                Command::Eval(e) => {
                    ordered += usize::from(e.is_ordered());
                    fail += usize::from(e.expect.fail.is_some());
                    legacy_fail += usize::from(e.legacy.fail);
                    strings += usize::from(e.expected_string.is_some());
                    range_vectors += usize::from(e.range_vector.is_some());
                    scalars += usize::from(e.expected_scalar.is_some());
                    hints += e
                        .expected_series
                        .iter()
                        .flat_map(|s| &s.values)
                        .filter(|v| matches!(v, SeqValue::Histogram(h) if h.hint_set))
                        .count();
                }
                Command::Load(l) => {
                    st_lines += l.series.iter().filter(|s| s.st_offsets.is_some()).count();
                }
                Command::Clear { .. } => {}
            }
        }
    }
    assert_eq!(range_vectors, 5);
    assert_eq!(strings, 5);
    assert_eq!(legacy_fail, 3);
    assert_eq!(st_lines, 37);
    assert!(ordered >= 24, "ordered evals: {ordered}");
    assert!(fail >= 28, "expect fail evals: {fail}");
    assert!(scalars > 20, "scalar evals: {scalars}");
    assert!(hints > 0);
}

#[test]
fn eval_bodies_are_classified_in_spec_order() {
    let src = "load 1m\n  m{a=\"1\"} 1 2\n\n\
        eval instant at 1m m\n  expect no_warn\n  m{a=\"1\"} 2\n  {a=\"2\"} 3\n\n\
        eval instant at 1m scalar(m)\n  2\nclear\n\n\
        eval_fail instant at 0 m\n  expected_fail_message boom\nclear\n\n\
        eval range from 0 to 2m step 1m m\n  m{a=\"1\"} 1 _ 3\n  m{a=\"1\"} 9\n\n\
        eval_ordered instant at 1m sort(m)\n  expect warn regex: x\n  m{a=\"1\"} 1\n";
    let f = parse_test("inline", src).unwrap();
    let evals: Vec<_> = f.evals().collect();
    assert_eq!(
        f.commands.len(),
        8,
        "scalar and expected_fail lines end their bodies"
    );
    assert_eq!(evals[0].expected_series.len(), 2);
    assert_eq!(
        evals[0].expected_series[0].pos, 1,
        "expect lines do not count"
    );
    assert_eq!(evals[0].expected_series[1].pos, 2);
    assert!(evals[0].expect.no_warn);
    assert_eq!(evals[1].expected_scalar, Some(2.0));
    assert!(matches!(f.commands[3], Command::Clear { line: 11 }));
    assert_eq!(evals[2].expected_fail_message.as_deref(), Some("boom"));
    assert!(evals[2].expects_failure());
    assert_eq!(
        evals[3].mode,
        EvalMode::Range {
            start_ms: 0,
            end_ms: 120_000,
            step_ms: 60_000
        }
    );
    assert_eq!(
        evals[3].expected_series.len(),
        1,
        "repeated label set replaces"
    );
    assert_eq!(
        evals[3].expected_series[0].values,
        vec![SeqValue::Float(9.0)]
    );
    assert!(evals[4].is_ordered() && evals[4].expect.warn.len() == 1);
    assert_eq!(evals[4].line, 21);
}

#[test]
fn parse_errors_name_file_and_line() {
    let cases = [
        ("load 1m\n  m 1\n  m 1 # c\n", 3),
        ("\n\nbogus command\n", 3),
        ("eval instant at 1m m\n  {} 1 2\n", 2),
        ("eval range from 2m to 1m step 1m m\n", 1),
        ("eval instant at 1.5m m\n", 1),
        ("load 1m\n  m 1\n# comment ends the block\n  m 2\n", 4),
        ("load 1m\n  m@st 1s\n", 2),
        ("load 1m\n  m@st 1s 2s\n  m 1\n", 2),
        ("load 1m\n  m@st 1s\n  n 1\n", 2),
        ("eval instant at 1m m\n  expect fail\n  expect fail\n", 3),
        (
            "eval range from 0 to 1m step 1m m\n  expect string \"x\"\n",
            2,
        ),
        ("eval instant at 1m m\n  expect string x\n", 2),
        ("eval_ordered range from 0 to 1m step 1m m\n", 1),
        ("loadx 1m\n", 1),
    ];
    for (src, line) in cases {
        let err = parse_test("f.test", src).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("f.test:{line}: ")),
            "{src:?} gave {err:?}, want line {line}"
        );
    }
}

#[test]
fn at_variants_cover_before_at_and_after() {
    assert_eq!(at_variant_times(0), vec![-1000, 0, 1000]);
    assert_eq!(
        at_variant_times(300_000),
        vec![-3_000_000, 0, 60_000, 300_000, 3_000_000]
    );
}

/// A trivial engine: every selector-like query returns `value` for the label set `{a="b"}`;
/// queries containing `boom` fail; `warn_me` adds a warning. It records what it was asked.
struct FixedEngine {
    value: f64,
    /// Value returned by range queries (to prove the range-mode cross-check compares).
    range_value: f64,
    caps: Capabilities,
    loads: Vec<Vec<LoadedSeries>>,
    clears: usize,
    instants: Vec<(String, i64)>,
    ranges: Vec<(String, i64, i64, i64)>,
    pin: bool,
}

impl FixedEngine {
    fn new(value: f64) -> Self {
        FixedEngine {
            value,
            range_value: value,
            caps: Capabilities::default(),
            loads: Vec::new(),
            clears: 0,
            instants: Vec::new(),
            ranges: Vec::new(),
            pin: false,
        }
    }

    fn labels() -> Labels {
        Labels::from_pairs(&[("a", "b")]).unwrap()
    }

    fn outcome(query: &str, value: TestValue) -> QueryOutcome {
        if query.contains("boom") {
            return QueryOutcome::err("boom happened");
        }
        let mut out = QueryOutcome::ok(value);
        if query.contains("warn_me") {
            out.warnings
                .push("PromQL warning: careful (1:1)".to_string());
        }
        out
    }
}

impl TestEngine for FixedEngine {
    type Error = String;

    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    fn clear(&mut self) {
        self.clears += 1;
    }

    fn load(&mut self, series: &[LoadedSeries]) -> Result<(), String> {
        if series.iter().any(|s| s.labels.get("bad").is_some()) {
            return Err("out of order sample".to_string());
        }
        self.loads.push(series.to_vec());
        Ok(())
    }

    fn instant(&mut self, query: &str, ts_ms: i64) -> QueryOutcome {
        self.instants.push((query.to_string(), ts_ms));
        let v = TestValue::Vector(vec![VectorSample {
            labels: Self::labels(),
            t_ms: ts_ms,
            value: SampleValue::Float(self.value),
        }]);
        Self::outcome(query, v)
    }

    fn range(&mut self, query: &str, start_ms: i64, end_ms: i64, step_ms: i64) -> QueryOutcome {
        self.ranges
            .push((query.to_string(), start_ms, end_ms, step_ms));
        let mut floats = Vec::new();
        let mut t = start_ms;
        while t <= end_ms {
            floats.push((t, self.range_value));
            t += step_ms.max(1);
        }
        let m = TestValue::Matrix(vec![MatrixSeries {
            labels: Self::labels(),
            floats,
            histograms: Vec::new(),
        }]);
        Self::outcome(query, m)
    }

    fn pin_at_modifiers(&mut self, query: &str, ts_ms: i64) -> Option<String> {
        self.pin
            .then(|| format!("{query} @ {:.3}", ts_ms as f64 / 1000.0))
    }
}

const INLINE: &str = r#"
load 1m
  m{a="b"} 1+1x2
  h{a="b"} {{schema:0 count:1 sum:1}}x2

# 1: passes.
eval instant at 1m m
  {a="b"} 42

# 2: fails, wrong value.
eval instant at 1m m
  {a="b"} 7

# 3: passes, within tolerance.
eval range from 0 to 2m step 1m m
  {a="b"} 42 42.00000001 42

# 4: fails, a missing point is asserted with _.
eval range from 0 to 2m step 1m m
  {a="b"} 42 _ 42

# 5: fails, expected failure but the query succeeded.
eval instant at 1m m
  expect fail

# 6: passes, expected failure with message.
eval instant at 1m boom
  expect fail msg: boom happened

# 7: fails, wrong failure regex.
eval instant at 1m boom
  expect fail regex: ^bang

# 8: skipped without histogram support (histogram metric), else passes (fake ignores data).
eval instant at 1m h
  {a="b"} 42

# 9: skipped without histogram support (histogram expectation).
eval instant at 1m m
  {a="b"} {{count:42}}

# 10: fails, unexpected warning.
eval instant at 1m warn_me
  expect no_warn
  {a="b"} 42

# 11: passes, expected warning.
eval instant at 1m warn_me
  expect warn msg: PromQL warning: careful
  {a="b"} 42

# 12: fails, expects an empty result.
eval instant at 1m m

clear

# 13: fails, a vector is returned for a scalar expectation.
eval instant at 0 m
  42
"#;

#[test]
fn run_accounts_pass_fail_and_skip() {
    let mut engine = FixedEngine::new(42.0);
    engine.caps.native_histograms = false;
    let report = run_test("inline.test", INLINE, &mut engine, RunOptions::default());
    assert_eq!(report.evals.len(), 13);
    let outcome_lines: Vec<(usize, &str)> = report
        .evals
        .iter()
        .map(|e| {
            (
                e.line,
                match &e.outcome {
                    super::EvalOutcome::Passed => "pass",
                    super::EvalOutcome::Failed(_) => "fail",
                    super::EvalOutcome::Skipped(_) => "skip",
                },
            )
        })
        .collect();
    assert_eq!(
        outcome_lines.iter().map(|o| o.1).collect::<Vec<_>>(),
        vec![
            "pass", "fail", "pass", "fail", "fail", "pass", "fail", "skip", "skip", "fail", "pass",
            "fail", "fail"
        ],
        "{}",
        report.summary()
    );
    assert_eq!(report.passed(), 4);
    assert_eq!(report.failed(), 7);
    let summary = report.summary();
    assert!(summary.ends_with("\n4 passed, 7 failed"), "{summary}");
    assert!(summary.contains("2 skipped (native histograms not supported)\n"));
    assert!(
        summary.contains("expected 7 for {a=\"b\"} but got 42"),
        "{summary}"
    );
    assert!(
        summary.contains("expected scalar result, but got vector"),
        "{summary}"
    );
    // Histogram samples were not handed to an engine that cannot store them.
    assert_eq!(engine.loads.len(), 1);
    assert_eq!(engine.loads[0].len(), 1);
    assert_eq!(engine.loads[0][0].samples.len(), 3);
    // The initial clear plus the script's clear.
    assert_eq!(engine.clears, 2);
}

#[test]
fn run_with_histograms_supported_compares_kinds() {
    let mut engine = FixedEngine::new(42.0);
    let report = run_test("inline.test", INLINE, &mut engine, RunOptions::default());
    assert!(report.skipped().is_empty());
    assert_eq!(report.passed(), 5);
    assert_eq!(report.failed(), 8);
    assert!(report
        .summary()
        .contains("expected histogram {{count:42 sum:0}} for {a=\"b\"} but got float value 42"));
    // Both series were loaded, with histogram samples.
    assert_eq!(engine.loads[0].len(), 2);
}

#[test]
fn range_cross_check_and_at_variants_run() {
    let src = "load 1m\n  m{a=\"b\"} 1\n\neval instant at 5m m\n  {a=\"b\"} 42\n";
    let mut engine = FixedEngine::new(42.0);
    engine.pin = true;
    let report = run_test("x", src, &mut engine, RunOptions::default());
    assert_eq!(report.passed(), 1, "{}", report.summary());
    let times: Vec<i64> = engine.instants.iter().map(|q| q.1).collect();
    assert_eq!(
        times,
        vec![300_000, -3_000_000, 0, 60_000, 300_000, 3_000_000]
    );
    assert_eq!(engine.instants[1].0, "m @ 300.000");
    // One cross-check per instant run: t-1m .. t+1m step 1m.
    assert_eq!(engine.ranges.len(), 6);
    assert_eq!(
        engine.ranges[0],
        ("m".to_string(), 240_000, 360_000, 60_000)
    );

    // A range result that disagrees with the instant one fails the eval.
    let mut engine = FixedEngine::new(42.0);
    engine.range_value = 41.0;
    let report = run_test("x", src, &mut engine, RunOptions::default());
    assert_eq!(report.failed(), 1);
    assert!(
        report.summary().contains("in range mode at t=300000"),
        "{}",
        report.summary()
    );
    // ... unless the cross-check is disabled.
    let mut engine = FixedEngine::new(42.0);
    engine.range_value = 41.0;
    let opts = RunOptions {
        at_variants: true,
        range_cross_check: false,
    };
    assert_eq!(run_test("x", src, &mut engine, opts).passed(), 1);

    // Time functions (and start/end/range/step) disable variants; start() etc. also disable
    // the cross-check.
    let src = "eval instant at 5m time() + m\n  {a=\"b\"} 42\n\n\
        eval instant at 5m m + step()\n  {a=\"b\"} 42\n\n\
        eval instant at 5m m\n  {a=\"b\"} 42\n";
    let mut engine = FixedEngine::new(42.0);
    engine.pin = true;
    let report = run_test("x", src, &mut engine, RunOptions::default());
    assert_eq!(report.passed(), 3, "{}", report.summary());
    assert_eq!(
        engine.instants.len(),
        1 + 1 + 6,
        "variants only for the plain query"
    );
    assert_eq!(engine.ranges.len(), 1 + 6, "no cross-check for step()");
}

#[test]
fn load_errors_and_parse_errors_count_as_failures() {
    let mut engine = FixedEngine::new(42.0);
    let src = "load 1m\n  m{bad=\"x\"} 1\n\neval instant at 0 m\n  {a=\"b\"} 42\n";
    let report = run_test("x", src, &mut engine, RunOptions::default());
    assert_eq!(
        report.load_errors,
        vec![(1, "out of order sample".to_string())]
    );
    assert!(report.summary().ends_with("1 passed, 1 failed"));
    let bad = run_test(
        "y",
        "eval instant at 1m\n",
        &mut engine,
        RunOptions::default(),
    );
    assert!(bad.parse_error.is_some());
    assert!(bad.summary().ends_with("0 passed, 1 failed"));
    assert_eq!(
        super::summarize(&[report, bad]),
        "x: 1 passed, 1 failed\ny: 0 passed, 1 failed\n1 passed, 2 failed"
    );
}

#[test]
fn start_timestamps_are_loaded_or_evals_skipped() {
    let src = "load 1m\n  m@st _ -30s\n  m 1 2\n\neval instant at 1m m\n  {a=\"b\"} 42\n";
    let mut engine = FixedEngine::new(42.0);
    let report = run_test("x", src, &mut engine, RunOptions::default());
    assert_eq!(report.passed(), 1);
    assert_eq!(engine.loads[0][0].samples[1].st_ms, Some(30_000));
    let mut engine = FixedEngine::new(42.0);
    engine.caps.start_timestamps = false;
    let report = run_test("x", src, &mut engine, RunOptions::default());
    assert_eq!(
        report.skipped().get("start timestamps not supported"),
        Some(&1)
    );
    assert_eq!(engine.loads[0][0].samples[1].st_ms, None);
}

#[test]
fn matrix_expectations_check_grid_order_and_sorting() {
    use super::compare::{compare_result, Grid};
    let src = "eval range from 0 to 2m step 1m m\n  {a=\"b\"} 1 _ 3\n  {a=\"c\"} 5\n";
    let f = parse_test("x", src).unwrap();
    let ev = f.evals().next().unwrap();
    let grid = Grid {
        start_ms: 0,
        end_ms: 120_000,
        step_ms: 60_000,
    };
    let series = |v: &str, floats: Vec<(i64, f64)>| MatrixSeries {
        labels: Labels::from_pairs(&[("a", v)]).unwrap(),
        floats,
        histograms: Vec::new(),
    };
    let good = TestValue::Matrix(vec![
        series("b", vec![(0, 1.0), (120_000, 3.0)]),
        series("c", vec![(0, 5.0)]),
    ]);
    compare_result(ev, &good, false, grid).unwrap();
    let unsorted = TestValue::Matrix(vec![
        series("c", vec![(0, 5.0)]),
        series("b", vec![(0, 1.0), (120_000, 3.0)]),
    ]);
    assert!(compare_result(ev, &unsorted, false, grid)
        .unwrap_err()
        .contains("sorted"));
    let extra_point = TestValue::Matrix(vec![
        series("b", vec![(0, 1.0), (60_000, 2.0), (120_000, 3.0)]),
        series("c", vec![(0, 5.0)]),
    ]);
    assert!(compare_result(ev, &extra_point, false, grid)
        .unwrap_err()
        .contains("expected 2 float points and 0 histogram points"));
    let wrong_ts = TestValue::Matrix(vec![
        series("b", vec![(0, 1.0), (110_000, 3.0)]),
        series("c", vec![(0, 5.0)]),
    ]);
    assert!(compare_result(ev, &wrong_ts, false, grid)
        .unwrap_err()
        .contains("timestamp"));
    let missing = TestValue::Matrix(vec![series("b", vec![(0, 1.0), (120_000, 3.0)])]);
    assert!(compare_result(ev, &missing, false, grid)
        .unwrap_err()
        .contains("not found"));
    assert!(compare_result(ev, &good, true, grid)
        .unwrap_err()
        .contains("ordered"));
    let short = Grid {
        start_ms: 0,
        end_ms: 60_000,
        step_ms: 60_000,
    };
    assert!(compare_result(ev, &good, false, short)
        .unwrap_err()
        .contains("cannot return this many points"));
}

#[test]
fn ordered_vectors_check_positions() {
    use super::compare::{compare_result, Grid};
    let src = "eval instant at 0 sort(m)\n  expect ordered\n  {a=\"b\"} 1\n  {a=\"c\"} 2\n";
    let f = parse_test("x", src).unwrap();
    let ev = f.evals().next().unwrap();
    let grid = Grid {
        start_ms: 0,
        end_ms: 0,
        step_ms: 0,
    };
    let sample = |v: &str, f: f64| VectorSample {
        labels: Labels::from_pairs(&[("a", v)]).unwrap(),
        t_ms: 0,
        value: SampleValue::Float(f),
    };
    let in_order = TestValue::Vector(vec![sample("b", 1.0), sample("c", 2.0)]);
    let reversed = TestValue::Vector(vec![sample("c", 2.0), sample("b", 1.0)]);
    compare_result(ev, &in_order, true, grid).unwrap();
    assert!(compare_result(ev, &reversed, true, grid)
        .unwrap_err()
        .contains("at position 2 but was at 1"));
    compare_result(ev, &reversed, false, grid).unwrap();
    let nan = TestValue::Vector(vec![sample("b", f64::NAN), sample("c", 2.0)]);
    assert!(compare_result(ev, &nan, false, grid).is_err());
}

#[test]
fn float_tolerance_matches_prometheus() {
    use super::compare::almost_equal;
    use super::series::stale_nan;
    assert!(almost_equal(1.0, 1.0 + 1e-7));
    assert!(!almost_equal(1.0, 1.0 + 1e-5));
    assert!(almost_equal(1e20, 1e20 * (1.0 + 1e-6)));
    assert!(!almost_equal(1e20, 1e20 * (1.0 + 3e-6)));
    assert!(
        !almost_equal(0.0, 1e-300),
        "zero on one side is effectively exact"
    );
    assert!(almost_equal(0.0, -0.0));
    assert!(almost_equal(f64::NAN, -f64::NAN));
    assert!(almost_equal(f64::INFINITY, f64::INFINITY));
    assert!(!almost_equal(f64::INFINITY, f64::NEG_INFINITY));
    assert!(!almost_equal(f64::INFINITY, f64::MAX));
    assert!(almost_equal(stale_nan(), stale_nan()));
    assert!(!almost_equal(stale_nan(), f64::NAN));
    assert!(!almost_equal(f64::NAN, stale_nan()));
    assert!(!almost_equal(f64::NAN, 1.0));
}
