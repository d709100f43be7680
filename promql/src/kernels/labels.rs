//! Label-rewriting kernels `label_replace` and `label_join` on one label set, with
//! Prometheus' rules: the regex is fully anchored (`^(?s:re)$`), `$1`/`${name}` expand as
//! Go's `regexp.Expand` does, and a label set to "" is removed. Detecting duplicate output
//! label sets, and keeping `__name__` when it is the destination, are the caller's job.
//! This module never evaluates expressions or touches sample values.

use regex::Regex;
use vigil_storage::{Labels, LabelsBuilder};

use super::KernelError;

/// Whether `name` is a valid label name under UTF-8 validation: non-empty and valid
/// UTF-8. Strings reach us already decoded, with invalid byte escapes replaced by U+FFFD,
/// so a replacement character is taken as invalid input.
pub fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(char::REPLACEMENT_CHARACTER)
}

/// A compiled `label_replace(v, dst, replacement, src, regex)`: compile once per call,
/// apply to every series.
#[derive(Clone, Debug)]
pub struct LabelReplace {
    dst: String,
    replacement: String,
    src: String,
    regex: Regex,
}

impl LabelReplace {
    /// Validates the arguments and compiles the anchored regex. Errors carry Prometheus'
    /// messages ("invalid regular expression in label_replace(): …", "invalid destination
    /// label name in label_replace(): …").
    pub fn new(
        dst: &str,
        replacement: &str,
        src: &str,
        regex: &str,
    ) -> Result<LabelReplace, KernelError> {
        let compiled = Regex::new(&format!("^(?s:{regex})$"))
            .map_err(|_| KernelError::InvalidRegex(regex.to_string()))?;
        if !is_valid_label_name(dst) {
            return Err(KernelError::InvalidDestinationLabel {
                func: "label_replace",
                name: dst.to_string(),
            });
        }
        Ok(LabelReplace {
            dst: dst.to_string(),
            replacement: replacement.to_string(),
            src: src.to_string(),
            regex: compiled,
        })
    }

    /// The destination label name.
    pub fn dst(&self) -> &str {
        &self.dst
    }

    /// Applies to one label set: `None` when the regex does not match the source value
    /// (a missing source label is the empty string), so the series stays unchanged;
    /// otherwise the label set with `dst` set to the expansion (removed if empty).
    pub fn apply(&self, labels: &Labels) -> Option<Labels> {
        let value = labels.get(&self.src).unwrap_or("");
        let caps = self.regex.captures(value)?;
        let mut expanded = String::new();
        caps.expand(&self.replacement, &mut expanded);
        let mut b = LabelsBuilder::from(labels);
        b.set(&self.dst, &expanded);
        Some(b.build())
    }
}

/// `label_replace` on one label set (compiles the regex each call; use [`LabelReplace`]
/// for many series). Returns the label set unchanged when the regex does not match.
pub fn label_replace(
    labels: &Labels,
    dst: &str,
    replacement: &str,
    src: &str,
    regex: &str,
) -> Result<Labels, KernelError> {
    let lr = LabelReplace::new(dst, replacement, src, regex)?;
    Ok(lr.apply(labels).unwrap_or_else(|| labels.clone()))
}

/// Validates `label_join`'s label names: every source, then the destination.
pub fn check_label_join(dst: &str, srcs: &[&str]) -> Result<(), KernelError> {
    if let Some(bad) = srcs.iter().find(|s| !is_valid_label_name(s)) {
        return Err(KernelError::InvalidSourceLabel {
            func: "label_join",
            name: bad.to_string(),
        });
    }
    if !is_valid_label_name(dst) {
        return Err(KernelError::InvalidDestinationLabel {
            func: "label_join",
            name: dst.to_string(),
        });
    }
    Ok(())
}

/// `label_join(v, dst, sep, src...)` on one label set: `dst` becomes the source values
/// (missing ones as "") joined by `sep`; an empty result removes `dst`.
pub fn label_join(
    labels: &Labels,
    dst: &str,
    sep: &str,
    srcs: &[&str],
) -> Result<Labels, KernelError> {
    check_label_join(dst, srcs)?;
    let joined = srcs
        .iter()
        .map(|s| labels.get(s).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(sep);
    let mut b = LabelsBuilder::from(labels);
    b.set(dst, &joined);
    Ok(b.build())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs).unwrap()
    }

    fn metric(src: &str) -> Labels {
        ls(&[
            ("__name__", "testmetric"),
            ("src", src),
            ("dst", "original-destination-value"),
        ])
    }

    #[test]
    fn label_replace_matches_functions_test() {
        let m = metric("source-value-10");
        let with_dst = |v: &str| m.with("dst", v);
        let r = |dst, repl, src, re| label_replace(&m, dst, repl, src, re).unwrap();
        assert_eq!(
            r("dst", "destination-value-$1", "src", "source-value-(.*)"),
            with_dst("destination-value-10")
        );
        // Full-string match only.
        assert_eq!(r("dst", "destination-value-$1", "src", "value-(.*)"), m);
        assert_eq!(
            r("dst", "$1-value-$2", "src", "(.*)-value-(.*)"),
            with_dst("source-value-10")
        );
        assert_eq!(
            r("dst", "value-$1", "nonexistent-src", "source-value-(.*)"),
            m
        );
        assert_eq!(
            r("dst", "value-$1", "nonexistent-src", "(.*)"),
            with_dst("value-")
        );
        assert_eq!(r("dst", "value-$1", "src", "non-matching-regex"), m);
        // Setting "" drops the label.
        assert_eq!(
            r("dst", "", "dst", ".*"),
            ls(&[("__name__", "testmetric"), ("src", "source-value-10")])
        );
        // Named groups, braces, `$$`, unknown names and the longest-name rule.
        assert_eq!(
            r("dst", "${v}x", "src", "source-value-(?P<v>.*)"),
            with_dst("10x")
        );
        assert_eq!(
            r("dst", "$vx", "src", "source-value-(?P<v>.*)"),
            with_dst("")
        );
        assert_eq!(r("dst", "$$1", "src", "(.*)"), with_dst("$1"));
        // `.` matches newlines ((?s)).
        let nl = ls(&[("src", "a\nb")]);
        assert_eq!(
            label_replace(&nl, "dst", "$1", "src", "(.*)").unwrap(),
            nl.with("dst", "a\nb")
        );
    }

    #[test]
    fn label_replace_errors() {
        let m = metric("x");
        let err = label_replace(&m, "dst", "value-$1", "src", "(.*").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid regular expression in label_replace(): (.*"
        );
        let err = label_replace(&m, "\u{FFFD}", "", "src", "(.*)").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid destination label name in label_replace(): \u{FFFD}"
        );
        assert!(label_replace(&m, "", "", "src", "(.*)").is_err());
        let lr = LabelReplace::new("dst", "$1", "src", "(.*)").unwrap();
        assert_eq!(lr.dst(), "dst");
        assert_eq!(lr.apply(&m), Some(m.with("dst", "x")));
    }

    #[test]
    fn label_join_matches_functions_test() {
        let m = ls(&[
            ("src", "a"),
            ("src1", "b"),
            ("src2", "c"),
            ("dst", "original-destination-value"),
        ]);
        assert_eq!(
            label_join(&m, "dst", "-", &["src", "src1", "src2"]).unwrap(),
            m.with("dst", "a-b-c")
        );
        assert_eq!(
            label_join(&m, "dst", "-", &["src", "src3", "src1"]).unwrap(),
            m.with("dst", "a--b")
        );
        let no_dst = ls(&[("src", "a"), ("src1", "b"), ("src2", "c")]);
        assert_eq!(
            label_join(&m, "dst", "", &["emptysrc", "emptysrc1"]).unwrap(),
            no_dst
        );
        assert_eq!(label_join(&m, "dst", ", ", &[]).unwrap(), no_dst);
        assert_eq!(
            label_join(&no_dst, "dst", ", ", &["src", "src1", "src2"]).unwrap(),
            no_dst.with("dst", "a, b, c")
        );
        let err = label_join(&m, "dst", "-", &["ok", ""]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid source label name in label_join(): "
        );
        let err = label_join(&m, "", "-", &["src"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid destination label name in label_join(): "
        );
    }
}
