//! Validation of one incoming series' labels, shared by RW 1.0 and 2.0: UTF-8, empty and
//! duplicate names, the metric name, and the per-series limits (label count, name and value
//! length). Produces canonical borrowed `(name, value)` pairs (sorted, unique names, no
//! empty values; what the storage's `append_borrowed` looks up without allocating) or a
//! `SeriesError` that names the series and the problem. Pure: never counts, never stores.

use std::fmt::Write;

use vigil_storage::labels::METRIC_NAME;

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

/// Validates one series' raw label pairs into `out` (cleared first) as canonical borrowed
/// pairs: each pair's lengths and UTF-8 are checked once, then [`finish_pairs`] applies.
pub fn check_series<'a>(
    raw: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
    limits: &Limits,
    out: &mut Vec<(&'a str, &'a str)>,
) -> Result<(), SeriesError> {
    out.clear();
    check_label_count(raw.len(), limits)?;
    for (n, v) in raw {
        out.push(check_pair(n, v, limits)?);
    }
    finish_pairs(out)
}

/// [`check_series`] for pairs whose strings are already known to be valid UTF-8 (checked
/// for the whole series at once): the same limits, in the same order, then
/// [`finish_pairs`].
pub fn check_series_str(pairs: &mut Vec<(&str, &str)>, limits: &Limits) -> Result<(), SeriesError> {
    check_label_count(pairs.len(), limits)?;
    for (n, v) in pairs.iter() {
        check_lengths(n.len(), v.len(), limits, n.as_bytes())?;
    }
    finish_pairs(pairs)
}

/// Turns checked pairs into a canonical label set, in place: sorts them by name (skipped when they arrive
/// sorted, as senders send them), rejects empty and duplicate names (also when one copy
/// has an empty value) and a missing metric name, and drops empty-valued pairs (empty
/// means absent, as in Prometheus). On success the pairs are canonical.
pub fn finish_pairs(labels: &mut Vec<(&str, &str)>) -> Result<(), SeriesError> {
    if labels.is_empty() {
        return Err(SeriesError::Invalid("series has no labels".into()));
    }
    if !labels.windows(2).all(|w| w[0].0 < w[1].0) {
        labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
    for (i, (n, _)) in labels.iter().enumerate() {
        if n.is_empty() {
            return Err(SeriesError::Invalid(format!(
                "series {}: empty label name",
                describe(labels.iter().copied())
            )));
        }
        if i > 0 && labels[i - 1].0 == *n {
            return Err(SeriesError::Invalid(format!(
                "series {}: duplicate label name {:?}",
                describe(labels.iter().copied()),
                n
            )));
        }
    }
    if labels.iter().any(|(_, v)| v.is_empty()) {
        labels.retain(|(_, v)| !v.is_empty());
    }
    if !labels.iter().any(|(n, _)| *n == METRIC_NAME) {
        return Err(SeriesError::Invalid(format!(
            "series {}: no metric name (__name__ missing or empty)",
            describe(labels.iter().copied())
        )));
    }
    Ok(())
}

/// `{a="b", c="d"}`, cut to a bounded length, for error messages.
fn describe<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = String::from("{");
    for (i, (n, v)) in labels.enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{n}={v:?}");
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

    #[test]
    fn sorts_and_drops_empty_values() {
        let mut ls = vec![("job", "a"), ("__name__", "up"), ("x", "")];
        finish_pairs(&mut ls).unwrap();
        assert_eq!(ls, vec![("__name__", "up"), ("job", "a")]);
        assert!(vigil_storage::labels::pairs_are_canonical(&ls));
    }

    #[test]
    fn rejects_bad_series() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![], "no labels"),
            (vec![("job", "a")], "no metric name"),
            (vec![("__name__", ""), ("job", "a")], "no metric name"),
            (vec![("__name__", "up"), ("", "a")], "empty label name"),
            (
                vec![("__name__", "up"), ("a", "1"), ("a", "2")],
                "duplicate label name",
            ),
            // A duplicate is caught even when one copy has an empty value.
            (
                vec![("__name__", "up"), ("a", ""), ("a", "2")],
                "duplicate label name",
            ),
        ];
        for (labels, want) in cases {
            match finish_pairs(&mut labels.clone()) {
                Err(SeriesError::Invalid(m)) => assert!(m.contains(want), "{m} vs {want}"),
                other => panic!("{labels:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn check_series_validates_each_pair_once() {
        let limits = Limits::default();
        let mut out = Vec::new();
        let raw: Vec<(&[u8], &[u8])> = vec![(b"job", b"a"), (b"__name__", b"up")];
        check_series(raw.iter().copied(), &limits, &mut out).unwrap();
        assert_eq!(out, vec![("__name__", "up"), ("job", "a")]);
        let raw: Vec<(&[u8], &[u8])> = vec![(b"__name__", b"\xff")];
        assert!(matches!(
            check_series(raw.iter().copied(), &limits, &mut out),
            Err(SeriesError::Invalid(_))
        ));
        let raw: Vec<(&[u8], &[u8])> = vec![(b"__name__", b"up"); 200];
        assert!(matches!(
            check_series(raw.iter().copied(), &limits, &mut out),
            Err(SeriesError::Limit(LimitKind::LabelsPerSeries, _))
        ));
        let raw: Vec<(&[u8], &[u8])> = vec![(b"b", b"1"), (b"__name__", b"up"), (b"b", b"2")];
        match check_series(raw.iter().copied(), &limits, &mut out) {
            Err(SeriesError::Invalid(m)) => assert_eq!(
                m,
                r#"series {__name__="up", b="1", b="2"}: duplicate label name "b""#
            ),
            other => panic!("{other:?}"),
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
