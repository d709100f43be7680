//! Runs every upstream promqltest file in `shared/testdata/promqltest/` against the engine
//! over in-memory storage and compares failures with the checked-in expected-failures list
//! (`promqltest-expected-failures.txt`, one `file:line` per line). Fails on any failure not
//! in the list (a regression); reports listed evals that now pass so the list can shrink.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use vigil_promql::engine::test_engine::PromqlTestEngine;
use vigil_promql::promqltest::{run_file, EvalOutcome};

fn testdata_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/promqltest")
}

fn expected_failures() -> BTreeSet<String> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/promqltest-expected-failures.txt");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[test]
fn upstream_promqltest_files() {
    let dir = testdata_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no test files in {}", dir.display());
    let expected = expected_failures();
    let mut failures = BTreeSet::new();
    let mut details = Vec::new();
    let (mut passed, mut skipped) = (0usize, 0usize);
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let mut engine = PromqlTestEngine::default();
        let report = run_file(f, &mut engine);
        if let Some(e) = &report.parse_error {
            failures.insert(format!("{name}:0"));
            details.push(format!("{name}:0: parse error: {e}"));
        }
        for (line, e) in &report.load_errors {
            failures.insert(format!("{name}:{line}"));
            details.push(format!("{name}:{line}: load: {e}"));
        }
        for ev in &report.evals {
            match &ev.outcome {
                EvalOutcome::Passed => passed += 1,
                EvalOutcome::Skipped(_) => skipped += 1,
                EvalOutcome::Failed(msg) => {
                    failures.insert(format!("{name}:{}", ev.line));
                    details.push(format!("{name}:{}: {}: {msg}", ev.line, ev.expr));
                }
            }
        }
    }
    let regressions: Vec<&String> = failures.difference(&expected).collect();
    let fixed: Vec<&String> = expected.difference(&failures).collect();
    eprintln!(
        "promqltest: {passed} passed, {} failed, {skipped} skipped; {} listed failures now pass",
        failures.len(),
        fixed.len()
    );
    for f in &fixed {
        eprintln!("now passing (remove from list): {f}");
    }
    if !regressions.is_empty() {
        for d in &details {
            if regressions.iter().any(|r| d.starts_with(&format!("{r}:"))) {
                eprintln!("{d}");
            }
        }
        panic!(
            "{} evals failed that are not in the expected-failures list: {regressions:?}",
            regressions.len()
        );
    }
}

/// Vigil's own regression tests in the promqltest format: every eval must pass.
#[test]
fn vigil_regressions() {
    let f = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/vigil-regressions.test");
    let mut engine = vigil_promql::engine::test_engine::PromqlTestEngine::default();
    let report = run_file(&f, &mut engine);
    assert!(report.passed() >= 3, "{}", report.summary());
    assert_eq!(report.failed(), 0, "{}", report.summary());
}
