//! The read API: `Queryable` hands out a `Querier` over a time range; a querier selects
//! series by matchers (merged and deduplicated across the head and every overlapping block),
//! and answers label names and values. A `Series` holds its labels, the raw XOR chunks that
//! overlap the range and its deleted intervals; samples are decoded on demand, clamped to
//! the range, merged across overlapping chunks (first writer wins on equal timestamps) and
//! with tombstoned samples removed. This is the only seam PromQL sees.

use std::collections::BTreeMap;
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
        let mut order: Vec<&ChunkData> = self.chunks.iter().collect();
        order.sort_by_key(|c| (c.min_time, c.max_time));
        let mut overlapping = false;
        for w in order.windows(2) {
            if w[1].min_time <= w[0].max_time {
                overlapping = true;
            }
        }
        for c in &order {
            if c.max_time < self.mint || c.min_time > self.maxt {
                continue;
            }
            let mut it = XorIterator::new(&c.data);
            let positioned = if c.min_time < self.mint {
                it.seek(self.mint)
            } else {
                it.next()
            };
            if !positioned {
                if let Some(e) = it.take_err() {
                    return Err(e);
                }
                continue;
            }
            loop {
                let (t, v) = it.at();
                if t > self.maxt {
                    break;
                }
                if self.deleted.is_empty() || !is_deleted(&self.deleted, t) {
                    out.push(Sample { t, v });
                }
                if !it.next() {
                    break;
                }
            }
            if let Some(e) = it.take_err() {
                return Err(e);
            }
        }
        if overlapping {
            out.sort_by_key(|s| s.t);
            out.dedup_by_key(|s| s.t);
        }
        Ok(())
    }
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

/// Merges per-source series lists into one sorted list, combining series with equal labels.
pub fn merge_series(sources: Vec<Vec<Series>>) -> Vec<Series> {
    if sources.len() == 1 {
        let mut v = sources.into_iter().next().unwrap_or_default();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        return v;
    }
    let mut map: BTreeMap<Labels, Series> = BTreeMap::new();
    for src in sources {
        for s in src {
            match map.get_mut(&s.labels) {
                Some(existing) => existing.merge(s),
                None => {
                    map.insert(s.labels.clone(), s);
                }
            }
        }
    }
    map.into_values().collect()
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
