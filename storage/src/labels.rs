//! Label sets: a series' identity as name/value pairs, sorted by name, names unique and
//! non-empty, values non-empty (an empty value means "no such label", as in Prometheus).
//!
//! Strings are `Arc<str>` so that a label set is cheap to clone and the head can share one
//! interned copy of each string across all its series. This module never touches disk.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::error::{Error, Result};

/// The label name that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label: a name and its value.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    pub name: Arc<str>,
    pub value: Arc<str>,
}

impl Label {
    /// A label from borrowed strings.
    pub fn new(name: &str, value: &str) -> Label {
        Label {
            name: Arc::from(name),
            value: Arc::from(value),
        }
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}", self.name, &*self.value)
    }
}

/// A label set, sorted by name with unique names.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels {
    labels: Vec<Label>,
}

impl Labels {
    /// The empty label set.
    pub fn empty() -> Labels {
        Labels { labels: Vec::new() }
    }

    /// Builds a label set from pairs in any order, validating it: names must be non-empty and
    /// unique; pairs with an empty value are dropped; the result must not be empty.
    pub fn new(mut labels: Vec<Label>) -> Result<Labels> {
        labels.retain(|l| !l.value.is_empty());
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        for (i, l) in labels.iter().enumerate() {
            if l.name.is_empty() {
                return Err(Error::InvalidLabels(format!(
                    "empty label name (value {:?})",
                    &*l.value
                )));
            }
            if i > 0 && labels[i - 1].name == l.name {
                return Err(Error::InvalidLabels(format!(
                    "duplicate label name {:?}",
                    &*l.name
                )));
            }
        }
        if labels.is_empty() {
            return Err(Error::InvalidLabels("empty label set".into()));
        }
        Ok(Labels { labels })
    }

    /// Builds a label set from `(name, value)` string pairs, validating like [`Labels::new`].
    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(pairs: &[(N, V)]) -> Result<Labels> {
        Labels::new(
            pairs
                .iter()
                .map(|(n, v)| Label::new(n.as_ref(), v.as_ref()))
                .collect(),
        )
    }

    /// Builds a label set from raw bytes (e.g. from the network), rejecting invalid UTF-8
    /// with an error naming the offending label.
    pub fn from_byte_pairs(pairs: &[(&[u8], &[u8])]) -> Result<Labels> {
        let mut out = Vec::with_capacity(pairs.len());
        for (n, v) in pairs {
            let name = std::str::from_utf8(n).map_err(|_| {
                Error::InvalidLabels(format!(
                    "label name is not valid UTF-8: {:?}",
                    String::from_utf8_lossy(n)
                ))
            })?;
            let value = std::str::from_utf8(v).map_err(|_| {
                Error::InvalidLabels(format!("value of label {name:?} is not valid UTF-8"))
            })?;
            out.push(Label::new(name, value));
        }
        Labels::new(out)
    }

    /// Wraps labels already known to be sorted, unique and non-empty-valued (e.g. read from
    /// our own index or built by a `LabelsBuilder`). Debug builds check the invariant.
    pub fn from_sorted(labels: Vec<Label>) -> Labels {
        debug_assert!(labels.windows(2).all(|w| w[0].name < w[1].name));
        Labels { labels }
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|l| (*l.name).cmp(name))
            .ok()
            .map(|i| &*self.labels[i].value)
    }

    /// Whether label `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The metric name, if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Iterates the labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.labels.iter()
    }

    /// The labels as a slice, in name order.
    pub fn as_slice(&self) -> &[Label] {
        &self.labels
    }

    /// Consumes the set, returning the sorted labels.
    pub fn into_vec(self) -> Vec<Label> {
        self.labels
    }

    /// A stable 64-bit hash of the label set (FNV-1a over names and values with separators);
    /// identical across processes and restarts.
    pub fn stable_hash(&self) -> u64 {
        let mut h = Fnv1a::default();
        for l in &self.labels {
            h.write(l.name.as_bytes());
            h.write_u8(0xff);
            h.write(l.value.as_bytes());
            h.write_u8(0xff);
        }
        h.finish()
    }

    /// The head's lookup hash of this label set: fast (foldhash, word at a time) and equal
    /// to [`hash_label_pairs`] of the same pairs. Deterministic within a build, but not
    /// promised to stay the same across versions, so never persisted; use
    /// [`Labels::stable_hash`] for anything that must not change.
    pub fn head_hash(&self) -> u64 {
        let mut h = HeadHasher::new();
        for l in &self.labels {
            h.pair(&l.name, &l.value);
        }
        h.finish()
    }

    /// Whether this set holds exactly `pairs`, in the same (sorted) order.
    ///
    /// All lengths are compared first (they sit in the label array, no string is touched),
    /// then the bytes, short strings without a `memcmp` call: this runs for every sample
    /// a writer appends by borrowed labels.
    pub fn eq_pairs(&self, pairs: &[(&str, &str)]) -> bool {
        self.labels.len() == pairs.len()
            && self
                .labels
                .iter()
                .zip(pairs)
                .all(|(l, (n, v))| l.name.len() == n.len() && l.value.len() == v.len())
            && self.labels.iter().zip(pairs).all(|(l, (n, v))| {
                short_bytes_eq(l.value.as_bytes(), v.as_bytes())
                    && short_bytes_eq(l.name.as_bytes(), n.as_bytes())
            })
    }

    /// A copy without the labels for which `drop` returns true.
    pub fn without(&self, mut drop: impl FnMut(&str) -> bool) -> Labels {
        Labels {
            labels: self
                .labels
                .iter()
                .filter(|l| !drop(&l.name))
                .cloned()
                .collect(),
        }
    }

    /// A copy with label `name` set to `value` (removed when `value` is empty).
    pub fn with(&self, name: &str, value: &str) -> Labels {
        let mut b = LabelsBuilder::from(self);
        b.set(name, value);
        b.build()
    }
}

impl fmt::Display for Labels {
    /// Prometheus' rendering: `{a="b", c="d"}` with Go-style quoted values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}=", l.name)?;
            write_go_quoted(f, &l.value)?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.labels.iter()
    }
}

/// Writes `s` as a Go `strconv.Quote` string (double quotes, escapes for `"`, `\`, control
/// characters and invalid code points), which is what Prometheus prints.
pub fn write_go_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{07}' => f.write_str("\\a")?,
            '\u{08}' => f.write_str("\\b")?,
            '\u{0c}' => f.write_str("\\f")?,
            '\u{0b}' => f.write_str("\\v")?,
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(f, "\\x{:02x}", c as u32)?,
            c if is_go_printable(c) => f.write_char(c)?,
            c if (c as u32) < 0x10000 => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "\\U{:08x}", c as u32)?,
        }
    }
    f.write_char('"')
}

/// Approximates Go's `strconv.IsPrint` for non-ASCII characters: control and format
/// characters, private-use code points and non-characters are escaped.
fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    !(matches!(u, 0x80..=0x9f | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e
        | 0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffb
        | 0xe000..=0xf8ff | 0xfdd0..=0xfdef | 0xfffe | 0xffff)
        || u >= 0xf0000)
}

/// Strings up to this long are compared inline by [`short_bytes_eq`].
const INLINE_EQ_MAX_BYTES: usize = 64;

/// Equality of two byte strings: up to 64 bytes inline, word by word (the last word
/// overlapping), longer ones by the slice comparison (`memcmp`). Label names and values
/// are short, and a library call per string cost more than the comparison itself.
#[inline(always)]
fn short_bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    fn word(s: &[u8], at: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_le_bytes(w)
    }
    fn half(s: &[u8], at: usize) -> u32 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&s[at..at + 4]);
        u32::from_le_bytes(w)
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=INLINE_EQ_MAX_BYTES => {
            let mut i = 0;
            while i + 8 < n {
                if word(a, i) != word(b, i) {
                    return false;
                }
                i += 8;
            }
            word(a, n - 8) == word(b, n - 8)
        }
        _ => a == b,
    }
}

/// Seed of the head's lookup hash (any fixed value; it only has to be the same for
/// [`Labels::head_hash`] and [`hash_label_pairs`]).
const HEAD_HASH_SEED: u64 = 0x5eed_0f1a_b315_e7c3;
/// Separator written after each name and value: 0xff never occurs in UTF-8, so
/// `{a="bc"}` and `{ab="c"}` feed different bytes.
const HASH_SEPARATOR: u8 = 0xff;

/// The incremental form of the head's lookup hash.
struct HeadHasher(foldhash::fast::FoldHasher<'static>);

impl HeadHasher {
    #[inline]
    fn new() -> Self {
        use std::hash::BuildHasher;
        HeadHasher(foldhash::fast::FixedState::with_seed(HEAD_HASH_SEED).build_hasher())
    }

    #[inline]
    fn pair(&mut self, name: &str, value: &str) {
        self.0.write(name.as_bytes());
        self.0.write_u8(HASH_SEPARATOR);
        self.0.write(value.as_bytes());
        self.0.write_u8(HASH_SEPARATOR);
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// The head's lookup hash of borrowed, sorted `(name, value)` pairs: equal to
/// [`Labels::head_hash`] of the label set holding the same pairs. Lets a writer find an
/// existing series without building an owned `Labels`.
pub fn hash_label_pairs(pairs: &[(&str, &str)]) -> u64 {
    let mut h = HeadHasher::new();
    for (n, v) in pairs {
        h.pair(n, v);
    }
    h.finish()
}

/// Whether `pairs` already satisfy the `Labels` invariant: sorted by name with unique,
/// non-empty names and non-empty values, and not empty. Such pairs name the same series
/// as `Labels::from_pairs(pairs)` without any reordering or dropping.
pub fn pairs_are_canonical(pairs: &[(&str, &str)]) -> bool {
    !pairs.is_empty()
        && pairs.iter().all(|(n, v)| !n.is_empty() && !v.is_empty())
        && pairs.windows(2).all(|w| w[0].0 < w[1].0)
}

/// Builds a label set by editing another.
#[derive(Clone, Debug, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl From<&Labels> for LabelsBuilder {
    fn from(l: &Labels) -> Self {
        LabelsBuilder {
            labels: l.labels.clone(),
        }
    }
}

impl LabelsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        match self.labels.binary_search_by(|l| (*l.name).cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.labels.remove(i);
            }
            Ok(i) => self.labels[i].value = Arc::from(value),
            Err(_) if value.is_empty() => {}
            Err(i) => self.labels.insert(i, Label::new(name, value)),
        }
        self
    }

    /// Deletes label `name`.
    pub fn del(&mut self, name: &str) -> &mut Self {
        if let Ok(i) = self.labels.binary_search_by(|l| (*l.name).cmp(name)) {
            self.labels.remove(i);
        }
        self
    }

    /// Keeps only the labels for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Label) -> bool) -> &mut Self {
        self.labels.retain(|l| keep(l));
        self
    }

    /// The current value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|l| (*l.name).cmp(name))
            .ok()
            .map(|i| &*self.labels[i].value)
    }

    /// The finished label set (possibly empty).
    pub fn build(&self) -> Labels {
        Labels {
            labels: self.labels.clone(),
        }
    }
}

/// 64-bit FNV-1a: tiny, deterministic, good enough to shard series and detect collisions
/// (collisions are always resolved by comparing the full label sets).
#[derive(Clone, Copy)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_validated() {
        let l = Labels::from_pairs(&[("job", "a"), ("__name__", "up"), ("empty", "")]).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l.metric_name(), Some("up"));
        assert_eq!(l.to_string(), r#"{__name__="up", job="a"}"#);
        assert!(Labels::from_pairs(&[("", "x")]).is_err());
        assert!(Labels::from_pairs(&[("a", "x"), ("a", "y")]).is_err());
        assert!(Labels::from_pairs::<&str, &str>(&[]).is_err());
        assert!(Labels::from_pairs(&[("a", "")]).is_err());
        let bad: &[u8] = &[0xff, 0xfe];
        let e = Labels::from_byte_pairs(&[(b"a", bad)]).unwrap_err();
        assert!(e.to_string().contains("not valid UTF-8"), "{e}");
    }

    #[test]
    fn builder_edits() {
        let l = Labels::from_pairs(&[("a", "1"), ("c", "3")]).unwrap();
        let mut b = LabelsBuilder::from(&l);
        b.set("b", "2").del("a").set("c", "");
        assert_eq!(b.build().to_string(), r#"{b="2"}"#);
        assert_eq!(l.with("a", "9").get("a"), Some("9"));
    }

    #[test]
    fn go_quoting() {
        let l = Labels::from_pairs(&[("a", "x\"y\\z\n\u{1}é")]).unwrap();
        assert_eq!(l.to_string(), r#"{a="x\"y\\z\n\x01é"}"#);
    }

    #[test]
    fn head_hash_matches_pairs_and_separates() {
        let l = Labels::from_pairs(&[("job", "a"), ("__name__", "up")]).unwrap();
        let pairs = [("__name__", "up"), ("job", "a")];
        assert_eq!(l.head_hash(), hash_label_pairs(&pairs));
        assert!(l.eq_pairs(&pairs));
        assert!(!l.eq_pairs(&pairs[..1]));
        assert!(!l.eq_pairs(&[("__name__", "up"), ("job", "b")]));
        let a = Labels::from_pairs(&[("a", "bc")]).unwrap();
        let b = Labels::from_pairs(&[("ab", "c")]).unwrap();
        assert_ne!(a.head_hash(), b.head_hash());
        assert_ne!(
            hash_label_pairs(&[("a", "b"), ("c", "d")]),
            hash_label_pairs(&[("a", "bc"), ("d", "")])
        );
    }

    #[test]
    fn short_bytes_eq_matches_slice_eq() {
        let base: Vec<u8> = (0u8..80).collect();
        for n in 0..80 {
            let a = &base[..n];
            assert!(short_bytes_eq(a, a), "{n}");
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 0x20;
                assert!(!short_bytes_eq(a, &b), "len {n}, differs at {i}");
            }
            assert!(!short_bytes_eq(a, &base[..n + 1]));
        }
    }

    #[test]
    fn canonical_pairs() {
        assert!(pairs_are_canonical(&[("__name__", "up"), ("job", "a")]));
        assert!(!pairs_are_canonical(&[]));
        assert!(!pairs_are_canonical(&[("job", "a"), ("__name__", "up")]));
        assert!(!pairs_are_canonical(&[("a", "1"), ("a", "2")]));
        assert!(!pairs_are_canonical(&[("a", "")]));
        assert!(!pairs_are_canonical(&[("", "x")]));
    }

    #[test]
    fn hash_is_stable_and_separates() {
        let a = Labels::from_pairs(&[("a", "bc")]).unwrap();
        let b = Labels::from_pairs(&[("ab", "c")]).unwrap();
        assert_ne!(a.stable_hash(), b.stable_hash());
        assert_eq!(a.stable_hash(), a.clone().stable_hash());
    }
}
