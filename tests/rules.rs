//! Integration tests for rule files, `vigil check rules` and `vigil slo generate`: the
//! upstream rulefmt fixtures (accepted/rejected with the expected first error), promtool's
//! rule files, and the SLO example of docs/SLO.md (exact output, accepted by our checker and
//! by the real promtool when it is on PATH), and the SLO behaviour tests through time
//! (`tests/data/slo/*.test.yml`) run by `vigil test rules` and by promtool.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil::rules::{load_file, LoadOptions, NameValidation, ValidateOptions};

fn shared(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata")
        .join(sub)
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn opts(names: NameValidation) -> LoadOptions {
    LoadOptions {
        ignore_unknown_fields: false,
        validate: ValidateOptions {
            names,
            ..ValidateOptions::default()
        },
    }
}

/// (file, legacy names?, expected first-error substring or None for success)
const RULEFMT_CASES: &[(&str, bool, Option<&str>)] = &[
    ("test.yaml", false, None),
    ("test_aliases.yaml", false, None),
    ("utf-8_lname.good.yaml", false, None),
    ("utf-8_annotation.good.yaml", false, None),
    ("legacy_validation_annotation.good.yaml", true, None),
    ("duplicate_grp.bad.yaml", false, Some("groupname: \"yolo\" is repeated in the same file")),
    ("bad_expr.bad.yaml", false, Some("parse error")),
    ("record_and_alert.bad.yaml", false, Some("only one of 'record' and 'alert' must be set")),
    ("no_rec_alert.bad.yaml", false, Some("one of 'record' or 'alert' must be set")),
    ("noexpr.bad.yaml", false, Some("field 'expr' must be set in rule")),
    (
        "invalid_record_name.bad.yaml",
        false,
        Some("braces present in the recording rule name; should it be in expr?: strawberry{flavor=\"sweet\"}"),
    ),
    ("bad_field.bad.yaml", false, Some("field annotation not found")),
    ("invalid_label_name.bad.yaml", false, Some("invalid label name")),
    ("record_and_for.bad.yaml", false, Some("invalid field 'for' in recording rule")),
    (
        "record_and_keep_firing_for.bad.yaml",
        false,
        Some("invalid field 'keep_firing_for' in recording rule"),
    ),
    ("legacy_validation_annotation.bad.yaml", true, Some("invalid annotation name: ins-tance")),
];

#[test]
fn rulefmt_fixtures_accept_and_reject_like_prometheus() {
    for (file, legacy, want) in RULEFMT_CASES {
        let names = if *legacy {
            NameValidation::Legacy
        } else {
            NameValidation::Utf8
        };
        let res = load_file(&shared("rulefmt").join(file), &opts(names));
        match (want, res) {
            (None, Ok(_)) => {}
            (None, Err(errs)) => panic!("{file}: unexpected errors {errs:?}"),
            (Some(w), Ok(_)) => panic!("{file}: accepted, want error containing {w:?}"),
            (Some(w), Err(errs)) => {
                let first = errs[0].to_string();
                assert!(
                    first.contains(w),
                    "{file}: first error {first:?} lacks {w:?}"
                );
            }
        }
    }
}

#[test]
fn rulefmt_errors_carry_positions() {
    let errs = load_file(
        &shared("rulefmt/bad_expr.bad.yaml"),
        &opts(NameValidation::Utf8),
    )
    .unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "5:15: group \"yolo\", rule 1, \"yolo\": could not parse expression: 1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"
    );
    let errs = load_file(
        &shared("rulefmt/record_and_alert.bad.yaml"),
        &opts(NameValidation::Utf8),
    )
    .unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "4:17: 5:16: group \"yolo\", rule 1, \"Hello\": only one of 'record' and 'alert' must be set"
    );
}

#[test]
fn aliases_resolve_to_the_anchored_rule() {
    let g = load_file(
        &shared("rulefmt/test_aliases.yaml"),
        &opts(NameValidation::Utf8),
    )
    .unwrap();
    for group in &g.groups {
        assert_eq!(group.rules[0].alert.value, "HighAlert");
    }
    // The merge key copies expr/for/labels and overrides alert.
    let merged = &g.groups[0].rules[3];
    assert_eq!(merged.alert.value, "HighAlert2");
    assert_eq!(merged.for_ms, 300_000);
    assert!(merged.expr.value.contains("errors_total"));
}

#[test]
fn promtool_rule_files_check_as_upstream() {
    let dir = shared("promtool-rules");
    let ok = [
        "rules.yml",
        "rules_duplicates.yml",
        "prometheus-rules.lint.yml",
        "at-modifier.yml",
        "negative-offset.yml",
        "bad-rules-error.yml",
        "rules_large.yml",
    ];
    for f in ok {
        if let Err(e) = load_file(&dir.join(f), &opts(NameValidation::Utf8)) {
            panic!("{f}: {e:?}");
        }
    }
    for f in [
        "rules-bad.yml",
        "bad-rules-syntax.yml",
        "rules_extrafields.yml",
    ] {
        assert!(
            load_file(&dir.join(f), &opts(NameValidation::Utf8)).is_err(),
            "{f} accepted"
        );
    }
    let ignore = LoadOptions {
        ignore_unknown_fields: true,
        ..LoadOptions::default()
    };
    load_file(&dir.join("rules_extrafields.yml"), &ignore).unwrap();
}

#[test]
fn features_file_needs_experimental_parser_features() {
    let f = shared("promtool-rules/features.yml");
    let out = vigil_bin()
        .args(["check", "rules"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = vigil_bin()
        .args([
            "check",
            "rules",
            "--enable-feature=promql-experimental-functions,promql-duration-expr",
            "--enable-feature=promql-extended-range-selectors,promql-binop-fill-modifiers",
        ])
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn template_errors_in_alerts_are_reported() {
    let text = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        labels:\n          sev: '{{ nope }}'\n        annotations:\n          summary: '{{ $labels.instance'\n";
    let errs = vigil::rules::parse_rules(text, &LoadOptions::default()).unwrap_err();
    let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        msgs[0],
        "group \"g\", rule 1, \"A\": label \"sev\": template: __alert_A:1: function \"nope\" not defined"
    );
    assert!(
        msgs[1].starts_with(
            "group \"g\", rule 1, \"A\": annotation \"summary\": template: __alert_A:1:"
        ),
        "{}",
        msgs[1]
    );
}

fn vigil_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

#[test]
fn check_rules_cli_prints_like_promtool() {
    let good = shared("rulefmt/utf-8_lname.good.yaml");
    let out = vigil_bin()
        .args(["check", "rules"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Checking {}\n  SUCCESS: 1 rules found\n\n", good.display())
    );
    let bad = shared("rulefmt/noexpr.bad.yaml");
    let out = vigil_bin()
        .args(["check", "rules"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "  FAILED:\n{}: 0:0: group \"yolo\", rule 1, \"ylo\": field 'expr' must be set in rule\n",
            bad.display()
        )
    );
    // Duplicate rules are a lint finding: reported, exit 0 unless --lint-fatal.
    let dup = shared("rulefmt/test.yaml");
    let out = vigil_bin()
        .args(["check", "rules"])
        .arg(&dup)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lint error 1 duplicate rule(s) found."));
    let out = vigil_bin()
        .args(["check", "rules", "--lint-fatal"])
        .arg(&dup)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn slo_generate_matches_the_documented_output() {
    let out = vigil_bin()
        .args(["slo", "generate"])
        .arg(data("slo/checkout.slo.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = std::fs::read_to_string(data("slo/checkout.rules.yml")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}

#[test]
fn generated_rules_pass_our_checker_and_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkout.rules.yml");
    std::fs::write(
        &path,
        vigil::slo::generate_file(&data("slo/checkout.slo.yaml")).unwrap(),
    )
    .unwrap();
    let groups = load_file(&path, &LoadOptions::default()).unwrap();
    assert_eq!(groups.rule_count(), 17);

    let promtool = Path::new("/usr/bin/promtool");
    if !promtool.exists() {
        assert!(
            std::env::var("VIGIL_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "promtool not found and VIGIL_REQUIRE_INTEROP=1"
        );
        eprintln!("note: /usr/bin/promtool not found; skipping the promtool half of this test");
        return;
    }
    let out = Command::new(promtool)
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool rejected generated rules: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS: 17 rules found"));
}

/// The SLO from SLO.md, generated into rules, evaluated over synthetic traffic in a rule unit
/// test: the page alert is silent while errors are absent and fires once the burn rate stays
/// above 14.4 over both windows.
#[test]
fn generated_slo_rules_fire_the_page_alert_in_a_unit_test() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/slo");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["test", "rules"])
        .arg(dir.join("checkout.test.yml"))
        .output()
        .expect("run vigil test rules");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("SUCCESS"), "{stdout}");
}

/// SLO behaviour through time, each a rule unit-test file over the generated checkout rules:
/// a short spike does not page, a sustained 1.5% error rate pages and resolves after the
/// errors stop, 1.4% does not page.
const SLO_BEHAVIOUR_TESTS: [&str; 3] = [
    "spike.test.yml",
    "sustained.test.yml",
    "below-threshold.test.yml",
];

#[test]
fn slo_behaviour_through_time_passes_vigil_test_rules() {
    let dir = data("slo");
    let out = vigil_bin()
        .args(["test", "rules"])
        .args(SLO_BEHAVIOUR_TESTS.iter().map(|f| dir.join(f)))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.matches("SUCCESS").count(),
        SLO_BEHAVIOUR_TESTS.len(),
        "{stdout}"
    );
}

#[test]
fn slo_behaviour_through_time_passes_promtool_test_rules() {
    let promtool = Path::new("/usr/bin/promtool");
    if !promtool.exists() {
        assert!(
            std::env::var("VIGIL_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "promtool not found and VIGIL_REQUIRE_INTEROP=1"
        );
        eprintln!("note: /usr/bin/promtool not found; skipping the SLO behaviour tests on it");
        return;
    }
    let dir = data("slo");
    for f in SLO_BEHAVIOUR_TESTS {
        let out = Command::new(promtool)
            .args(["test", "rules"])
            .arg(dir.join(f))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool test rules {f}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The behaviour tests must fail when the alert thresholds are wrong: with the page
/// threshold lowered below 1.4%, the below-threshold test fails.
#[test]
fn slo_behaviour_tests_catch_a_wrong_page_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data("slo");
    let rules = std::fs::read_to_string(dir.join("checkout.rules.yml")).unwrap();
    assert!(rules.contains(">= 0.0144"));
    std::fs::write(
        tmp.path().join("checkout.rules.yml"),
        rules.replace(">= 0.0144", ">= 0.0130"),
    )
    .unwrap();
    let test = tmp.path().join("below-threshold.test.yml");
    std::fs::copy(dir.join("below-threshold.test.yml"), &test).unwrap();
    let out = vigil_bin()
        .args(["test", "rules"])
        .arg(&test)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("slo_severity=\"page\""));
}

/// `vigil check config` checks the rule files a config names, printing what promtool prints
/// (same stdout, stderr and exit code for good and broken rule files), then its SLO files.
#[test]
fn check_config_checks_rule_and_slo_files_like_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(
        p.join("r.yml"),
        "groups:\n- name: a\n  rules:\n  - record: x\n    expr: up\n  - alert: Y\n    expr: up == 0\n",
    )
    .unwrap();
    std::fs::write(
        p.join("bad.yml"),
        "groups:\n- name: a\n  rules:\n  - record: x\n    expr: up(\n",
    )
    .unwrap();
    std::fs::write(p.join("good.yml"), "rule_files: [r.yml, 'none*.yml']\n").unwrap();
    std::fs::write(p.join("broken.yml"), "rule_files: [r.yml, bad.yml]\n").unwrap();
    std::fs::write(p.join("missing.yml"), "rule_files: [gone.yml]\n").unwrap();
    let promtool = std::path::Path::new("/usr/bin/promtool");
    let required = std::env::var("VIGIL_REQUIRE_INTEROP").as_deref() == Ok("1");
    assert!(promtool.exists() || !required, "promtool not found");
    for (cfg, code) in [("good.yml", 0), ("broken.yml", 1), ("missing.yml", 1)] {
        let ours = vigil_bin()
            .args(["check", "config", cfg])
            .current_dir(p)
            .output()
            .unwrap();
        assert_eq!(ours.status.code(), Some(code), "{cfg}");
        if cfg == "good.yml" {
            assert_eq!(
                String::from_utf8_lossy(&ours.stdout),
                "Checking good.yml\n  SUCCESS: 1 rule files found\n SUCCESS: good.yml is valid \
                 prometheus config file syntax\n\nChecking r.yml\n  SUCCESS: 2 rules found\n\n"
            );
        }
        if promtool.exists() {
            let theirs = Command::new(promtool)
                .args(["check", "config", cfg])
                .current_dir(p)
                .output()
                .unwrap();
            assert_eq!(ours.status.code(), theirs.status.code(), "{cfg}");
            assert_eq!(
                String::from_utf8_lossy(&ours.stdout),
                String::from_utf8_lossy(&theirs.stdout),
                "{cfg}"
            );
            assert_eq!(
                String::from_utf8_lossy(&ours.stderr),
                String::from_utf8_lossy(&theirs.stderr),
                "{cfg}"
            );
        }
    }
    // SLO files are checked after the rule files.
    std::fs::copy(data("slo/checkout.slo.yaml"), p.join("s.yaml")).unwrap();
    std::fs::write(p.join("slo.yml"), "slo_files: [s.yaml]\n").unwrap();
    let out = vigil_bin()
        .args(["check", "config", "slo.yml"])
        .current_dir(p)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout)
        .ends_with("Checking s.yaml\n  SUCCESS: 1 SLOs found, 17 rules generated\n\n"));
    std::fs::write(
        p.join("s.yaml"),
        "version: vigil/v1\nservice: x\nslos: [{name: a}]\n",
    )
    .unwrap();
    let out = vigil_bin()
        .args(["check", "config", "slo.yml"])
        .current_dir(p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("  FAILED:\n     "));
}
