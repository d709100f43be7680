//! Parses every query of every `eval` command in the shared promqltest files (read in place)
//! with all experimental parser options on: each must parse, and printing then re-parsing
//! must reproduce the same text.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use vigil_promql::parser::{parse_expr_with, ParserOptions};

fn testdata_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/promqltest")
}

/// Drops `n` whitespace-separated words and returns the trimmed rest.
fn skip_words(s: &str, n: usize) -> Option<&str> {
    let mut rest = s.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace)?;
        rest = rest[end..].trim_start();
    }
    Some(rest.trim())
}

/// The query of an eval header line.
fn eval_query(line: &str) -> Option<&str> {
    let after_cmd = skip_words(line, 1)?;
    if after_cmd.starts_with("instant") {
        skip_words(after_cmd, 3) // instant at <time>
    } else if after_cmd.starts_with("range") {
        skip_words(after_cmd, 7) // range from <t> to <t> step <t>
    } else {
        None
    }
}

struct EvalQuery {
    file: String,
    line: usize,
    query: String,
    expect_fail: bool,
}

fn collect() -> Vec<EvalQuery> {
    let mut files: Vec<_> = std::fs::read_dir(testdata_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .test files found");
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.split('\n').map(str::trim).collect();
        for (i, l) in lines.iter().enumerate() {
            if !l.starts_with("eval") {
                continue;
            }
            let q = eval_query(l).unwrap_or_else(|| panic!("{}:{}: bad eval", f.display(), i + 1));
            let mut expect_fail = l.starts_with("eval_fail");
            for body in &lines[i + 1..] {
                if body.is_empty() || body.starts_with('#') {
                    break;
                }
                expect_fail |= body.starts_with("expect fail");
            }
            out.push(EvalQuery {
                file: f.file_name().unwrap().to_string_lossy().into_owned(),
                line: i + 1,
                query: q.to_string(),
                expect_fail,
            });
        }
    }
    out
}

#[test]
fn every_eval_query_parses_and_round_trips() {
    let opts = ParserOptions::all();
    let queries = collect();
    let mut failures = Vec::new();
    let mut parsed = 0;
    for q in &queries {
        match parse_expr_with(&q.query, &opts) {
            Ok(e) => {
                parsed += 1;
                let printed = e.to_string();
                match parse_expr_with(&printed, &opts) {
                    Ok(again) if again.to_string() == printed => {}
                    Ok(again) => failures.push(format!(
                        "{}:{}: {:?} printed {printed:?} reprinted {:?}",
                        q.file,
                        q.line,
                        q.query,
                        again.to_string()
                    )),
                    Err(err) => failures.push(format!(
                        "{}:{}: {:?} printed {printed:?} does not parse: {err}",
                        q.file, q.line, q.query
                    )),
                }
            }
            Err(err) if !q.expect_fail => {
                failures.push(format!("{}:{}: {:?}: {err}", q.file, q.line, q.query))
            }
            Err(_) => {}
        }
    }
    eprintln!("{parsed} of {} eval queries parsed", queries.len());
    assert!(
        queries.len() > 1000,
        "only {} eval lines found",
        queries.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
