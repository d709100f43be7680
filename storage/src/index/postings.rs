//! Selecting series by label matchers over inverted postings, with Prometheus'
//! `PostingsForMatchers` semantics, once for every source (head and block index alike).
//!
//! A missing label has the value "". So a matcher that does not match "" selects exactly
//! the series holding a value it matches (intersected), and a matcher that matches "" selects
//! every series except those holding a value it rejects (subtracted). When no matcher
//! intersects, selection starts from all postings; `=~".*"` matchers are no-ops. Equality
//! and finite regex sets look their postings up directly, prefixes and real regexes filter
//! the label's values. This module never reads series labels and never owns data.

use roaring::RoaringBitmap;

use crate::error::Result;
use crate::matcher::{MatchType, Matcher};

/// Anything with inverted postings: the head, a block's index.
///
/// Values are owned `String`s for simplicity of implementation; sources that can avoid the
/// copies for values they discard override [`PostingsSource::postings_matching`].
pub trait PostingsSource {
    /// All values of label `name`, sorted; empty for an unknown name.
    fn label_values(&self, name: &str) -> Result<Vec<String>>;
    /// Union of the postings of `name=v` for each `v` in `values` (unknown pairs add none).
    fn postings(&self, name: &str, values: &[&str]) -> Result<RoaringBitmap>;
    /// Every series.
    fn all_postings(&self) -> Result<RoaringBitmap>;
    /// Union of the postings of every non-empty value of `name` that satisfies `pred`.
    fn postings_matching(&self, name: &str, pred: &dyn Fn(&str) -> bool) -> Result<RoaringBitmap> {
        let values = self.label_values(name)?;
        let selected: Vec<&str> = values
            .iter()
            .map(String::as_str)
            .filter(|v| !v.is_empty() && pred(v))
            .collect();
        if selected.is_empty() {
            return Ok(RoaringBitmap::new());
        }
        self.postings(name, &selected)
    }
}

/// The series refs selected by all `matchers` together (their intersection). An empty
/// list, or one made only of `=~".*"`, selects every series.
pub fn postings_for_matchers(
    src: &dyn PostingsSource,
    matchers: &[Matcher],
) -> Result<RoaringBitmap> {
    let active: Vec<&Matcher> = matchers
        .iter()
        .filter(|m| !m.matches_everything())
        .collect();
    let (intersecting, subtracting): (Vec<&Matcher>, Vec<&Matcher>) =
        active.into_iter().partition(|m| !m.matches_empty());

    let mut result: Option<RoaringBitmap> = None;
    for m in intersecting {
        let p = values_postings(src, m, true)?;
        let next = match result {
            None => p,
            Some(mut acc) => {
                acc &= &p;
                acc
            }
        };
        if next.is_empty() {
            return Ok(next);
        }
        result = Some(next);
    }
    let mut result = match result {
        Some(r) => r,
        None => src.all_postings()?,
    };
    for m in subtracting {
        if result.is_empty() {
            break;
        }
        result -= &values_postings(src, m, false)?;
    }
    Ok(result)
}

/// The postings of the series holding a (non-empty) value `v` of `m.name` for which
/// `m.matches(v) == want`.
fn values_postings(src: &dyn PostingsSource, m: &Matcher, want: bool) -> Result<RoaringBitmap> {
    let name = m.name.as_str();
    match (m.match_type, want) {
        (MatchType::Equal, true) | (MatchType::NotEqual, false) => exact(src, name, &[&m.value]),
        (MatchType::Regex, true) => regex_postings(src, m),
        (MatchType::NotRegex, false) => {
            // The values rejected by `!~re` are those accepted by `=~re`.
            let inverse = Matcher::new(MatchType::Regex, name, &m.value)?;
            regex_postings(src, &inverse)
        }
        _ => src.postings_matching(name, &|v| m.matches(v) == want),
    }
}

/// Postings of the values a `=~` matcher accepts, using its set or prefix when it has one.
fn regex_postings(src: &dyn PostingsSource, m: &Matcher) -> Result<RoaringBitmap> {
    if let Some(set) = m.set_matches() {
        return exact(src, &m.name, &set);
    }
    if let Some(prefix) = m.prefix() {
        return src.postings_matching(&m.name, &|v| v.starts_with(prefix));
    }
    src.postings_matching(&m.name, &|v| m.matches(v))
}

fn exact(src: &dyn PostingsSource, name: &str, values: &[&str]) -> Result<RoaringBitmap> {
    let values: Vec<&str> = values.iter().copied().filter(|v| !v.is_empty()).collect();
    if values.is_empty() {
        return Ok(RoaringBitmap::new());
    }
    src.postings(name, &values)
}
