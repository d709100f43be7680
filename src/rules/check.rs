//! `vigil check rules FILE...`: loads each file and prints what `promtool check rules`
//! prints (`Checking FILE`, `  SUCCESS: N rules found` or `  FAILED:` and one error per line
//! prefixed by the file name), plus the duplicate-rules lint. CLI output only; never loads
//! rules into a running server.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use super::{load_file, LoadOptions, RuleGroups};

/// Prefix of lint findings, as promtool prints it.
const LINT_ERROR: &str = "lint error";

/// The outcome of checking files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Some file failed to load or validate.
    pub failed: bool,
    /// Some file had only lint findings.
    pub lint_findings: bool,
}

/// Checks `files`, writing progress to `out` and errors to `err`.
pub fn check_rules(
    files: &[&Path],
    opts: &LoadOptions,
    lint_duplicates: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<CheckOutcome> {
    check_rules_indented(files, opts, lint_duplicates, "", out, err)
}

/// [`check_rules`] with every error line prefixed by `error_indent` (`promtool check
/// config` indents the errors of the rule files it checks by five spaces).
pub fn check_rules_indented(
    files: &[&Path],
    opts: &LoadOptions,
    lint_duplicates: bool,
    error_indent: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<CheckOutcome> {
    let mut outcome = CheckOutcome::default();
    for f in files {
        writeln!(out, "Checking {}", f.display())?;
        match load_file(f, opts) {
            Err(errs) => {
                outcome.failed = true;
                writeln!(err, "  FAILED:")?;
                for e in errs {
                    writeln!(err, "{error_indent}{}: {e}", f.display())?;
                }
            }
            Ok(groups) => {
                let dups = if lint_duplicates {
                    duplicate_rules(&groups)
                } else {
                    Vec::new()
                };
                if dups.is_empty() {
                    writeln!(out, "  SUCCESS: {} rules found", groups.rule_count())?;
                } else {
                    outcome.lint_findings = true;
                    writeln!(err, "  FAILED:")?;
                    writeln!(err, "{LINT_ERROR} {}", lint_message(&dups))?;
                }
            }
        }
        writeln!(out)?;
    }
    Ok(outcome)
}

/// A rule identity for the duplicate lint: output name and merged group+rule labels.
pub type RuleKey = (String, BTreeMap<String, String>);

/// Rules with the same name and labels (group labels merged under rule labels), each once.
pub fn duplicate_rules(groups: &RuleGroups) -> Vec<RuleKey> {
    let mut keys: Vec<RuleKey> = Vec::new();
    for g in &groups.groups {
        for r in &g.rules {
            let mut labels: BTreeMap<String, String> = g.labels.iter().cloned().collect();
            labels.extend(r.labels.iter().cloned());
            keys.push((r.name().to_string(), labels));
        }
    }
    keys.sort();
    let mut dups: Vec<RuleKey> = Vec::new();
    for w in keys.windows(2) {
        if w[0] == w[1] && dups.last() != Some(&w[1]) {
            dups.push(w[1].clone());
        }
    }
    dups
}

fn lint_message(dups: &[RuleKey]) -> String {
    let mut msg = format!("{} duplicate rule(s) found.\n", dups.len());
    for (name, labels) in dups {
        msg.push_str(&format!("Metric: {name}\nLabel(s):\n"));
        for (k, v) in labels {
            msg.push_str(&format!("\t{k}: {v}\n"));
        }
    }
    msg.push_str("Might cause inconsistency while recording expressions");
    msg
}

/// `vigil check ...` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum CheckCommand {
    /// Check if the rule files are valid (like `promtool check rules`).
    Rules {
        /// Rule files to check.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Ignore unknown fields in the rule files.
        #[arg(long = "ignore-unknown-fields")]
        ignore_unknown_fields: bool,
        /// Linting checks to apply: `all`, `duplicate-rules` or `none`.
        #[arg(long = "lint", default_value = "duplicate-rules")]
        lint: String,
        /// Make lint findings fatal (exit code 1).
        #[arg(long = "lint-fatal")]
        lint_fatal: bool,
        /// PromQL features to enable (comma-separated or repeated): promql-experimental-functions,
        /// promql-duration-expr, promql-extended-range-selectors, promql-binop-fill-modifiers.
        #[arg(long = "enable-feature", value_delimiter = ',')]
        enable_feature: Vec<String>,
    },
}

/// Runs a `check` subcommand; returns the process exit code.
pub fn run(cmd: CheckCommand) -> u8 {
    match cmd {
        CheckCommand::Rules {
            files,
            ignore_unknown_fields,
            lint,
            lint_fatal,
            enable_feature,
        } => {
            let mut opts = LoadOptions {
                ignore_unknown_fields,
                ..LoadOptions::default()
            };
            for f in &enable_feature {
                let p = &mut opts.validate.parser;
                match f.as_str() {
                    "promql-experimental-functions" => p.enable_experimental_functions = true,
                    "promql-duration-expr" => p.enable_duration_expressions = true,
                    "promql-extended-range-selectors" => p.enable_extended_range_selectors = true,
                    "promql-binop-fill-modifiers" => p.enable_binop_fill = true,
                    other => eprintln!("warning: unknown feature flag {other:?} ignored"),
                }
            }
            let paths: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
            let lint_duplicates = lint
                .split(',')
                .any(|l| l == "all" || l == "duplicate-rules");
            let res = check_rules(
                &paths,
                &opts,
                lint_duplicates,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
            match res {
                Ok(o) if o.failed || (o.lint_findings && lint_fatal) => 1,
                Ok(_) => 0,
                Err(e) => {
                    eprintln!("error: {e}");
                    1
                }
            }
        }
    }
}
