//! Validation of one incoming series' labels, shared by RW 1.0 and 2.0: UTF-8, empty and
//! duplicate names, the metric name, and the per-series limits (label count, name and value
//! length). Produces sorted storage `Labels` or a `SeriesError` that names the series and
//! the problem. Pure: never counts, never stores.

use std::fmt::Write;
use std::sync::Arc;

use vigil_storage::labels::METRIC_NAME;
use vigil_storage::{Label, Labels};

use super::limits::{LimitKind, Limits};

/// Longest rendering of a series in an error message.
const MAX_SERIES_DESCRIPTION_BYTES: usize = 256;

/// Why a series is skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeriesError {
    /// The labels are not a valid series identity.
    Invalid(String),
    /// A per-series limit is exceeded.
    Limit(LimitKind, String),
}

/// Checks the label count before any label is converted.
pub fn check_label_count(n: usize, limits: &Limits) -> Result<(), SeriesError> {
    if n > limits.max_labels_per_series {
        return Err(SeriesError::Limit(
            LimitKind::LabelsPerSeries,
            format!(
                "series has {n} labels, more than the limit of {}",
                limits.max_labels_per_series
            ),
        ));
    }
    Ok(())
}

/// Checks one raw label pair's lengths and UTF-8 and returns it as strings.
pub fn check_pair<'a>(
    name: &'a [u8],
    value: &'a [u8],
    limits: &Limits,
) -> Result<(&'a str, &'a str), SeriesError> {
    check_lengths(name.len(), value.len(), limits, name)?;
    let n = std::str::from_utf8(name).map_err(|_| {
        SeriesError::Invalid(format!(
            "label name {:?} is not valid UTF-8",
            String::from_utf8_lossy(name)
        ))
    })?;
    let v = std::str::from_utf8(value)
        .map_err(|_| SeriesError::Invalid(format!("value of label {n:?} is not valid UTF-8")))?;
    Ok((n, v))
}

/// Checks a label's name and value lengths against the limits.
pub fn check_lengths(
    name_len: usize,
    value_len: usize,
    limits: &Limits,
    name: &[u8],
) -> Result<(), SeriesError> {
    if name_len > limits.max_label_name_bytes {
        return Err(SeriesError::Limit(
            LimitKind::LabelNameBytes,
            format!(
                "label name of {name_len} bytes is longer than the limit of {}",
                limits.max_label_name_bytes
            ),
        ));
    }
    if value_len > limits.max_label_value_bytes {
        let shown: String = String::from_utf8_lossy(name).chars().take(64).collect();
        return Err(SeriesError::Limit(
            LimitKind::LabelValueBytes,
            format!(
                "value of label {shown:?} has {value_len} bytes, more than the limit of {}",
                limits.max_label_value_bytes
            ),
        ));
    }
    Ok(())
}

/// Turns checked labels into a sorted label set: no empty or duplicate names, a non-empty
/// `__name__`; labels with an empty value are dropped (empty means absent, as in Prometheus).
pub fn finish(mut labels: Vec<Label>) -> Result<Labels, SeriesError> {
    if labels.is_empty() {
        return Err(SeriesError::Invalid("series has no labels".into()));
    }
    labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    for (i, l) in labels.iter().enumerate() {
        if l.name.is_empty() {
            return Err(SeriesError::Invalid(format!(
                "series {}: empty label name",
                describe(&labels)
            )));
        }
        if i > 0 && labels[i - 1].name == l.name {
            return Err(SeriesError::Invalid(format!(
                "series {}: duplicate label name {:?}",
                describe(&labels),
                &*l.name
            )));
        }
    }
    labels.retain(|l| !l.value.is_empty());
    if !labels.iter().any(|l| &*l.name == METRIC_NAME) {
        return Err(SeriesError::Invalid(format!(
            "series {}: no metric name (__name__ missing or empty)",
            describe(&labels)
        )));
    }
    Ok(Labels::from_sorted(labels))
}

/// A label from two shared strings (no copy).
pub fn shared_label(name: &Arc<str>, value: &Arc<str>) -> Label {
    Label {
        name: name.clone(),
        value: value.clone(),
    }
}

/// `{a="b", c="d"}`, cut to a bounded length, for error messages.
fn describe(labels: &[Label]) -> String {
    let mut s = String::from("{");
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{}={:?}", l.name, &*l.value);
        if s.len() > MAX_SERIES_DESCRIPTION_BYTES {
            let mut cut = MAX_SERIES_DESCRIPTION_BYTES;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push('…');
            break;
        }
    }
    s.push('}');
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn l(n: &str, v: &str) -> Label {
        Label::new(n, v)
    }

    #[test]
    fn sorts_and_drops_empty_values() {
        let ls = finish(vec![l("job", "a"), l("__name__", "up"), l("x", "")]).unwrap();
        let names: Vec<&str> = ls.iter().map(|l| &*l.name).collect();
        assert_eq!(names, vec!["__name__", "job"]);
    }

    #[test]
    fn rejects_bad_series() {
        let cases: Vec<(Vec<Label>, &str)> = vec![
            (vec![], "no labels"),
            (vec![l("job", "a")], "no metric name"),
            (vec![l("__name__", ""), l("job", "a")], "no metric name"),
            (vec![l("__name__", "up"), l("", "a")], "empty label name"),
            (
                vec![l("__name__", "up"), l("a", "1"), l("a", "2")],
                "duplicate label name",
            ),
            // A duplicate is caught even when one copy has an empty value.
            (
                vec![l("__name__", "up"), l("a", ""), l("a", "2")],
                "duplicate label name",
            ),
        ];
        for (labels, want) in cases {
            match finish(labels.clone()) {
                Err(SeriesError::Invalid(m)) => assert!(m.contains(want), "{m} vs {want}"),
                other => panic!("{labels:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn pair_checks() {
        let limits = Limits {
            max_label_name_bytes: 4,
            max_label_value_bytes: 3,
            max_labels_per_series: 2,
            ..Limits::default()
        };
        assert!(check_pair(b"abcd", b"xyz", &limits).is_ok());
        assert!(matches!(
            check_pair(b"abcde", b"x", &limits),
            Err(SeriesError::Limit(LimitKind::LabelNameBytes, _))
        ));
        assert!(matches!(
            check_pair(b"a", b"wxyz", &limits),
            Err(SeriesError::Limit(LimitKind::LabelValueBytes, _))
        ));
        assert!(matches!(
            check_pair(b"a", b"\xff", &limits),
            Err(SeriesError::Invalid(_))
        ));
        assert!(matches!(
            check_pair(b"\xc3", b"x", &limits),
            Err(SeriesError::Invalid(_))
        ));
        assert!(check_label_count(2, &limits).is_ok());
        assert!(matches!(
            check_label_count(3, &limits),
            Err(SeriesError::Limit(LimitKind::LabelsPerSeries, _))
        ));
    }
}
