//! `postings_for_matchers` against a brute-force model: random label sets and matchers of
//! all four kinds (including ones that match the empty string), evaluated over an in-memory
//! postings source and over a real index file holding the same series.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use roaring::RoaringBitmap;

use super::tests::write_index;
use super::*;
use crate::error::Result;
use crate::labels::Labels;
use crate::matcher::{MatchType, Matcher};

/// A minimal in-memory postings source, as the head would provide.
#[derive(Default)]
struct MemPostings {
    lists: BTreeMap<String, BTreeMap<String, RoaringBitmap>>,
    all: RoaringBitmap,
}

impl MemPostings {
    fn new(series: &[Labels]) -> Self {
        let mut m = MemPostings::default();
        for (i, l) in series.iter().enumerate() {
            m.all.insert(i as u32);
            for p in l {
                m.lists
                    .entry(p.name.to_string())
                    .or_default()
                    .entry(p.value.to_string())
                    .or_default()
                    .insert(i as u32);
            }
        }
        m
    }
}

impl PostingsSource for MemPostings {
    fn label_values(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .lists
            .get(name)
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default())
    }
    fn postings(&self, name: &str, values: &[&str]) -> Result<RoaringBitmap> {
        let mut out = RoaringBitmap::new();
        if let Some(v) = self.lists.get(name) {
            for value in values {
                if let Some(p) = v.get(*value) {
                    out |= p;
                }
            }
        }
        Ok(out)
    }
    fn all_postings(&self) -> Result<RoaringBitmap> {
        Ok(self.all.clone())
    }
}

fn brute_force(series: &[Labels], ms: &[Matcher]) -> Vec<usize> {
    (0..series.len())
        .filter(|&i| {
            ms.iter()
                .all(|m| m.matches(series[i].get(&m.name).unwrap_or("")))
        })
        .collect()
}

const NAMES: &[&str] = &["a", "b", "c", "missing"];
const VALUES: &[&str] = &["x", "y", "xy", "yx", "z"];
const PATTERNS: &[&str] = &[
    "", "x", "y", "xy", ".*", ".+", "x.*", "x|y", "x|", "[xy]", "(x|y)z?", "x+y?", "(?i)X", ".*y",
];

fn label_set() -> impl Strategy<Value = Vec<(usize, usize)>> {
    prop::collection::vec((0..3usize, 0..VALUES.len()), 1..4)
}

fn matcher() -> impl Strategy<Value = Matcher> {
    (0..NAMES.len(), 0..4usize, 0..PATTERNS.len()).prop_map(|(n, t, p)| {
        let t = [
            MatchType::Equal,
            MatchType::NotEqual,
            MatchType::Regex,
            MatchType::NotRegex,
        ][t];
        Matcher::new(t, NAMES[n], PATTERNS[p]).unwrap()
    })
}

fn build_series(raw: Vec<Vec<(usize, usize)>>) -> Vec<Labels> {
    let mut out: Vec<Labels> = raw
        .into_iter()
        .filter_map(|pairs| {
            let mut seen = std::collections::BTreeMap::new();
            for (n, v) in pairs {
                seen.insert(NAMES[n], VALUES[v]);
            }
            let pairs: Vec<(&str, &str)> = seen.into_iter().collect();
            Labels::from_pairs(&pairs).ok()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn matches_brute_force_in_memory_and_on_disk(
        raw in prop::collection::vec(label_set(), 1..25),
        matcher_sets in prop::collection::vec(prop::collection::vec(matcher(), 0..4), 1..6),
    ) {
        let series = build_series(raw);
        let mem = MemPostings::new(&series);
        let dir = tempfile::tempdir().unwrap();
        let with_chunks: Vec<_> = series.iter().map(|l| (l.clone(), Vec::new())).collect();
        let (path, written) = write_index(dir.path(), &with_chunks);
        let reader = IndexReader::open(&path).unwrap();
        // written is in label order, as is `series`: position i has ref written[i].2.
        for ms in &matcher_sets {
            let want = brute_force(&series, ms);
            let got_mem: Vec<usize> = postings_for_matchers(&mem, ms)
                .unwrap().iter().map(|r| r as usize).collect();
            prop_assert_eq!(&got_mem, &want, "in memory, matchers {:?}", ms);
            let want_refs: Vec<u32> = want.iter().map(|&i| written[i].2 as u32).collect();
            let got_disk: Vec<u32> = postings_for_matchers(&reader, ms).unwrap().iter().collect();
            prop_assert_eq!(got_disk, want_refs, "on disk, matchers {:?}", ms);
        }
    }
}

#[test]
fn empty_matching_matchers_select_series_without_the_label() {
    let series = build_series(vec![vec![(0, 0)], vec![(0, 1)], vec![(1, 0)]]);
    // series: {a=x}, {a=y}, {b=x}
    let mem = MemPostings::new(&series);
    let sel =
        |ms: &[Matcher]| -> Vec<u32> { postings_for_matchers(&mem, ms).unwrap().iter().collect() };
    let m = |t, n, v| Matcher::new(t, n, v).unwrap();
    assert_eq!(sel(&[m(MatchType::NotEqual, "a", "x")]), vec![1, 2]);
    assert_eq!(sel(&[m(MatchType::Equal, "a", "")]), vec![2]);
    assert_eq!(sel(&[m(MatchType::Regex, "a", ".*")]), vec![0, 1, 2]);
    assert_eq!(sel(&[m(MatchType::NotRegex, "a", "y")]), vec![0, 2]);
    assert_eq!(sel(&[m(MatchType::Regex, "a", ".+")]), vec![0, 1]);
    assert_eq!(sel(&[m(MatchType::NotEqual, "a", "")]), vec![0, 1]);
    assert_eq!(sel(&[]), vec![0, 1, 2]);
    assert_eq!(
        sel(&[
            m(MatchType::Equal, "b", "x"),
            m(MatchType::NotEqual, "a", "x")
        ]),
        vec![2]
    );
    assert!(sel(&[m(MatchType::Equal, "zzz", "x")]).is_empty());
}
