//! Runs every OpenMetrics 1.0 conformance case in `../shared/testdata/openmetrics/parsers/`
//! and parses every Prometheus sample page in `../shared/testdata/textparse/`, in place.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::exposition::{parse, parse_entries, Format, ParseError, ParseOptions};

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata")
        .join(rel)
}

/// The OpenMetrics cases are judged by the specification, so the one knob where Vigil
/// follows Prometheus by default is switched to the specification here.
const SPEC: ParseOptions = ParseOptions {
    spec_strict_signs: true,
};

fn run_case(dir: &Path) -> (bool, Result<(), ParseError>) {
    let json = std::fs::read_to_string(dir.join("test.json")).unwrap();
    let spec: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(spec["type"], "text", "{}", dir.display());
    let should_parse = spec["shouldParse"].as_bool().unwrap();
    let file = spec["file"].as_str().unwrap();
    let input = std::fs::read(dir.join(file)).unwrap();
    let result = parse_entries(&input, Format::OpenMetrics, SPEC, |_| {
        ControlFlow::Continue(())
    });
    (should_parse, result)
}

#[test]
fn openmetrics_conformance_all_cases() {
    let root = testdata("openmetrics/parsers");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 211, "expected all 211 OpenMetrics cases");
    let mut failures = Vec::new();
    let (mut good, mut bad) = (0, 0);
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let (should_parse, result) = run_case(dir);
        match (should_parse, result) {
            (true, Ok(())) => good += 1,
            (false, Err(e)) => {
                // Every rejection names a line and a reason.
                let msg = e.to_string();
                assert!(
                    msg.starts_with(&format!("line {}: ", e.line())),
                    "{name}: {msg}"
                );
                assert!(e.line() >= 1, "{name}: {msg}");
                assert!(msg.len() > "line 1: ".len() + 3, "{name}: {msg}");
                bad += 1;
            }
            (true, Err(e)) => failures.push(format!("{name}: should parse, got: {e}")),
            (false, Ok(())) => failures.push(format!("{name}: should be rejected, was accepted")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!((good, bad), (44, 167));
}

/// With default (Prometheus-compatible) options the only difference is the one documented
/// cases: negative summary quantiles/sums and a negative-bucket histogram with `_sum`.
#[test]
fn openmetrics_conformance_default_options_differ_only_on_signs() {
    let root = testdata("openmetrics/parsers");
    let mut accepted_bad = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let json = std::fs::read_to_string(dir.join("test.json")).unwrap();
        let spec: serde_json::Value = serde_json::from_str(&json).unwrap();
        let input = std::fs::read(dir.join("metrics")).unwrap();
        let ok = parse(&input, Format::OpenMetrics).is_ok();
        let should = spec["shouldParse"].as_bool().unwrap();
        if should {
            assert!(ok, "{} must parse with default options", dir.display());
        } else if ok {
            accepted_bad.push(dir.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    accepted_bad.sort();
    assert_eq!(
        accepted_bad,
        [
            "bad_counter_values_17",
            "bad_counter_values_19",
            "bad_histograms_3"
        ]
    );
}

fn errors_for(case: &str) -> ParseError {
    let (should, result) = run_case(&testdata("openmetrics/parsers").join(case));
    assert!(!should);
    result.unwrap_err()
}

#[test]
fn conformance_errors_name_the_right_line() {
    assert_eq!(errors_for("bad_blank_line").line(), 2);
    assert_eq!(errors_for("bad_text_after_eof_0").line(), 3);
    assert_eq!(errors_for("bad_type_4").line(), 1);
    assert_eq!(errors_for("bad_metadata_in_wrong_place_1").line(), 3);
    assert_eq!(errors_for("bad_grouping_or_ordering_6").line(), 3);
    assert_eq!(errors_for("bad_histograms_9").line(), 3);
    assert!(matches!(
        errors_for("bad_no_eof"),
        ParseError::MissingEof { line: 1 }
    ));
    let e = errors_for("bad_type_4").to_string();
    assert_eq!(e, "line 1: invalid metric type \"meh\"");
}
