//! The read API: `Queryable` hands out a `Querier` over a time range; a querier selects
//! series by matchers (merged and deduplicated across the head and every overlapping block),
//! and answers label names and values. A `Series` holds its labels, the raw XOR chunks that
//! overlap the range and its deleted intervals; samples are decoded on demand, clamped to
//! the range, merged across overlapping chunks (first writer wins on equal timestamps) and
//! with tombstoned samples removed. This is the only seam PromQL sees.

use std::sync::Arc;

use crate::chunkenc::XorIterator;
use crate::error::{Error, Result};
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::tombstones::{is_deleted, normalize_intervals};

/// Raw XOR chunk bytes with the chunk's time bounds.
#[derive(Clone, Debug)]
pub struct ChunkData {
    pub min_time: i64,
    pub max_time: i64,
    pub data: Arc<[u8]>,
}

/// One series returned by a querier.
#[derive(Clone, Debug)]
pub struct Series {
    pub labels: Labels,
    chunks: Vec<ChunkData>,
    deleted: Vec<(i64, i64)>,
    mint: i64,
    maxt: i64,
}

/// A float sample.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

impl PartialEq for Sample {
    fn eq(&self, o: &Self) -> bool {
        self.t == o.t && self.v.to_bits() == o.v.to_bits()
    }
}

impl Series {
    /// A series over chunks, to be read within `[mint, maxt]`.
    pub fn new(
        labels: Labels,
        chunks: Vec<ChunkData>,
        deleted: Vec<(i64, i64)>,
        mint: i64,
        maxt: i64,
    ) -> Series {
        Series {
            labels,
            chunks,
            deleted,
            mint,
            maxt,
        }
    }

    /// Adds chunks and deleted intervals from another source of the same series.
    fn merge(&mut self, other: Series) {
        self.chunks.extend(other.chunks);
        if !other.deleted.is_empty() {
            self.deleted.extend(other.deleted);
            normalize_intervals(&mut self.deleted);
        }
    }

    /// Whether any sample of the series is deleted by a tombstone.
    pub fn has_deletions(&self) -> bool {
        !self.deleted.is_empty()
    }

    /// The chunks overlapping the range (unsorted).
    pub fn chunks(&self) -> &[ChunkData] {
        &self.chunks
    }

    /// Decodes all samples in the range, sorted by timestamp, without duplicates.
    pub fn samples(&self) -> Result<Vec<Sample>> {
        let mut out = Vec::new();
        self.samples_into(&mut out)?;
        Ok(out)
    }

    /// Like `samples`, appending into `out` (which is cleared first).
    pub fn samples_into(&self, out: &mut Vec<Sample>) -> Result<()> {
        out.clear();
        out.reserve(self.max_samples());
        if chunks_in_order(&self.chunks) {
            // The usual case (one source, or sources with disjoint time ranges): decode the
            // chunks in place, no sort and no dedup needed.
            for c in &self.chunks {
                self.decode_chunk(c, out)?;
            }
            return Ok(());
        }
        let mut order: Vec<&ChunkData> = self.chunks.iter().collect();
        order.sort_by_key(|c| (c.min_time, c.max_time));
        let overlapping = order.windows(2).any(|w| w[1].min_time <= w[0].max_time);
        for c in &order {
            self.decode_chunk(c, out)?;
        }
        if overlapping {
            // Stable: on equal timestamps the sample of the earlier chunk stays first and
            // survives the dedup.
            out.sort_by_key(|s| s.t);
            out.dedup_by_key(|s| s.t);
        }
        Ok(())
    }

    /// An upper bound of the samples `samples_into` yields: the sample counts in the
    /// headers of the chunks overlapping the range (0 for a header too short to read).
    fn max_samples(&self) -> usize {
        self.chunks
            .iter()
            .filter(|c| c.max_time >= self.mint && c.min_time <= self.maxt)
            .map(|c| XorIterator::new(&c.data).num_samples() as usize)
            .sum()
    }

    /// Appends the samples of chunk `c` within the range, minus deleted ones, to `out`.
    #[inline]
    fn decode_chunk(&self, c: &ChunkData, out: &mut Vec<Sample>) -> Result<()> {
        if c.max_time < self.mint || c.min_time > self.maxt {
            return Ok(());
        }
        let mut it = XorIterator::new(&c.data);
        let positioned = if c.min_time < self.mint {
            it.seek(self.mint)
        } else {
            it.next()
        };
        if positioned {
            if self.deleted.is_empty() {
                loop {
                    let (t, v) = it.at();
                    if t > self.maxt {
                        break;
                    }
                    out.push(Sample { t, v });
                    if !it.next() {
                        break;
                    }
                }
            } else {
                loop {
                    let (t, v) = it.at();
                    if t > self.maxt {
                        break;
                    }
                    if !is_deleted(&self.deleted, t) {
                        out.push(Sample { t, v });
                    }
                    if !it.next() {
                        break;
                    }
                }
            }
        }
        match it.take_err() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Whether chunks are in strictly increasing, non-overlapping time order.
fn chunks_in_order(chunks: &[ChunkData]) -> bool {
    chunks
        .windows(2)
        .all(|w| w[0].min_time <= w[0].max_time && w[0].max_time < w[1].min_time)
}

/// Something that can be queried over a time range.
pub trait Queryable: Send + Sync {
    /// A querier over `[mint, maxt]` (inclusive, milliseconds).
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>>;
}

/// Reads series and labels within a fixed time range.
pub trait Querier {
    /// Series matching all `matchers` that have samples in the range, sorted by labels.
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>>;
    /// Label names of series matching `matchers` (all series when empty), sorted.
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>>;
    /// Values of label `name` of series matching `matchers`, sorted.
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>>;
}

/// Merges per-source series lists into one sorted list, combining series with equal labels
/// (chunks appended in source order, deleted intervals united).
pub fn merge_series(sources: Vec<Vec<Series>>) -> Vec<Series> {
    let mut lists: Vec<Vec<Series>> = sources
        .into_iter()
        .filter(|v| !v.is_empty())
        .map(|mut v| {
            if !v.is_sorted_by(|a, b| a.labels <= b.labels) {
                v.sort_by(|a, b| a.labels.cmp(&b.labels));
            }
            v
        })
        .collect();
    // Pairwise merges of neighbours, so that each series moves O(log sources) times and
    // chunks keep the order of their sources.
    while lists.len() > 1 {
        let mut next = Vec::with_capacity(lists.len().div_ceil(2));
        let mut it = lists.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => next.push(merge_two(a, b)),
                None => next.push(a),
            }
        }
        lists = next;
    }
    let out = lists.pop().unwrap_or_default();
    // Only a damaged source repeats a label set; combine such neighbours too.
    if out.windows(2).any(|w| w[0].labels == w[1].labels) {
        return dedup_sorted(out);
    }
    out
}

/// Merges two lists sorted by labels; equal label sets combine, `a`'s chunks first.
fn merge_two(a: Vec<Series>, b: Vec<Series>) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::with_capacity(a.len().max(b.len()));
    let mut a = a.into_iter().peekable();
    let mut b = b.into_iter().peekable();
    loop {
        let order = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.labels.cmp(&y.labels),
            (Some(_), None) => {
                out.extend(a);
                break;
            }
            (None, Some(_)) => {
                out.extend(b);
                break;
            }
            (None, None) => break,
        };
        match order {
            std::cmp::Ordering::Less => out.extend(a.next()),
            std::cmp::Ordering::Greater => out.extend(b.next()),
            std::cmp::Ordering::Equal => {
                if let (Some(mut x), Some(y)) = (a.next(), b.next()) {
                    x.merge(y);
                    out.push(x);
                }
            }
        }
    }
    out
}

/// Combines neighbours with equal labels in a sorted list.
fn dedup_sorted(list: Vec<Series>) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::with_capacity(list.len());
    for s in list {
        match out.last_mut() {
            Some(last) if last.labels == s.labels => last.merge(s),
            _ => out.push(s),
        }
    }
    out
}

/// A querier's error for a matcher list that would select everything.
pub fn check_matchers(matchers: &[Matcher]) -> Result<()> {
    if !matchers.is_empty() && matchers.iter().all(|m| m.matches_empty()) {
        return Err(Error::InvalidMatcher(
            "vector selector must contain at least one non-empty matcher".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::chunkenc::XorEncoder;

    fn chunk(samples: &[(i64, f64)]) -> ChunkData {
        let mut e = XorEncoder::new();
        for &(t, v) in samples {
            e.append(t, v);
        }
        ChunkData {
            min_time: samples.first().unwrap().0,
            max_time: samples.last().unwrap().0,
            data: Arc::from(e.bytes()),
        }
    }

    fn labels(v: &str) -> Labels {
        Labels::from_pairs(&[("__name__", "m"), ("i", v)]).unwrap()
    }

    fn ts(s: &Series) -> Vec<(i64, f64)> {
        s.samples().unwrap().iter().map(|x| (x.t, x.v)).collect()
    }

    #[test]
    fn in_order_chunks_are_clamped_and_tombstoned() {
        let a = chunk(&[(0, 0.0), (10, 1.0), (20, 2.0)]);
        let b = chunk(&[(30, 3.0), (40, 4.0), (50, 5.0)]);
        let s = Series::new(labels("a"), vec![a, b], vec![(20, 30)], 10, 40);
        assert_eq!(ts(&s), vec![(10, 1.0), (40, 4.0)]);
        let mut buf = vec![Sample { t: -1, v: 0.0 }];
        s.samples_into(&mut buf).unwrap();
        assert_eq!(buf.len(), 2, "samples_into clears its buffer first");
    }

    #[test]
    fn unordered_and_overlapping_chunks_sort_and_keep_the_first_writer() {
        let late = chunk(&[(30, 3.0), (40, 4.0)]);
        let early = chunk(&[(0, 0.0), (10, 1.0), (30, 99.0)]);
        let s = Series::new(labels("a"), vec![late, early], Vec::new(), 0, 100);
        // Chunks ordered by (min_time, max_time): `early` first, so its 30 wins.
        assert_eq!(ts(&s), vec![(0, 0.0), (10, 1.0), (30, 99.0), (40, 4.0)]);
        let a = chunk(&[(50, 5.0)]);
        let b = chunk(&[(0, 0.0)]);
        let s = Series::new(labels("a"), vec![a, b], Vec::new(), 0, 100);
        assert_eq!(ts(&s), vec![(0, 0.0), (50, 5.0)]);
    }

    #[test]
    fn damaged_chunk_is_an_error() {
        let mut c = chunk(&[(0, 0.0), (10, 1.0), (20, 2.0)]);
        c.data = Arc::from(&c.data[..c.data.len() - 2]);
        let s = Series::new(labels("a"), vec![c], Vec::new(), 0, 100);
        assert!(s.samples().is_err());
    }

    #[test]
    fn merge_combines_equal_labels_in_source_order_and_sorts() {
        let s = |l: &str, t: i64, del: Vec<(i64, i64)>| {
            Series::new(labels(l), vec![chunk(&[(t, t as f64)])], del, 0, 1000)
        };
        let sources = vec![
            vec![s("a", 1, vec![]), s("c", 1, vec![(5, 6)])],
            vec![s("d", 2, vec![]), s("b", 2, vec![])], // not sorted
            vec![s("c", 3, vec![(7, 8)])],
            vec![],
            vec![s("a", 4, vec![]), s("e", 4, vec![])],
        ];
        let out = merge_series(sources);
        let names: Vec<&str> = out.iter().map(|x| x.labels.get("i").unwrap()).collect();
        assert_eq!(names, vec!["a", "b", "c", "d", "e"]);
        let chunk_starts = |x: &Series| x.chunks().iter().map(|c| c.min_time).collect::<Vec<_>>();
        assert_eq!(chunk_starts(&out[0]), vec![1, 4]);
        assert_eq!(chunk_starts(&out[2]), vec![1, 3]);
        assert_eq!(out[2].deleted, vec![(5, 8)]);
        assert!(merge_series(Vec::new()).is_empty());
        // A lone source repeating a label set is combined too.
        let out = merge_series(vec![vec![s("a", 1, vec![]), s("a", 2, vec![])]]);
        assert_eq!(out.len(), 1);
        assert_eq!(ts(&out[0]), vec![(1, 1.0), (2, 2.0)]);
    }
}
