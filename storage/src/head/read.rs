//! Reading the head: postings for matchers (through the shared `PostingsSource` logic),
//! label names and values, and a snapshot of one series' chunks overlapping a time range
//! (the open chunk's bytes are copied under the series lock; mmapped chunks are read from
//! `chunks_head/`). Readers never block appends for longer than one series lock.

use roaring::RoaringBitmap;

use super::Head;
use crate::error::Result;
use crate::index::{postings_for_matchers, PostingsSource};
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::querier::{ChunkData, Series};

/// One head series' labels and the chunks overlapping a queried range.
pub struct HeadSeriesData {
    pub labels: Labels,
    pub chunks: Vec<ChunkData>,
    /// The queried range's end, lowered to hide samples of commits after the reader's
    /// isolation snapshot; samples after it must not be read.
    pub maxt: i64,
}

impl PostingsSource for Head {
    fn label_values(&self, name: &str) -> Result<Vec<String>> {
        let p = self.postings.read();
        let mut v: Vec<String> = p
            .map
            .get(name)
            .map(|vals| vals.keys().map(|k| k.to_string()).collect())
            .unwrap_or_default();
        v.sort();
        Ok(v)
    }

    fn postings(&self, name: &str, values: &[&str]) -> Result<RoaringBitmap> {
        let p = self.postings.read();
        let mut out = RoaringBitmap::new();
        if let Some(vals) = p.map.get(name) {
            for v in values {
                if let Some(b) = vals.get(*v) {
                    out |= b;
                }
            }
        }
        Ok(out)
    }

    fn all_postings(&self) -> Result<RoaringBitmap> {
        Ok(self.postings.read().all.clone())
    }
}

impl Head {
    /// All label names in the head, sorted.
    pub fn label_names(&self) -> Vec<String> {
        let p = self.postings.read();
        let mut v: Vec<String> = p.map.keys().map(|k| k.to_string()).collect();
        v.sort();
        v
    }

    /// Labels of series `id`, if it exists.
    pub fn series_labels(&self, id: u32) -> Option<Labels> {
        self.series_by_ref(u64::from(id)).map(|s| s.labels.clone())
    }

    /// The labels and the chunks of series `id` that overlap `[mint, maxt]` as a reader
    /// with isolation `snapshot` sees them ([`crate::head::SEE_ALL`]: every commit); None
    /// when the series is gone or has no visible data in the range.
    pub fn series_data(
        &self,
        id: u32,
        mint: i64,
        mut maxt: i64,
        snapshot: u64,
    ) -> Result<Option<HeadSeriesData>> {
        let Some(s) = self.series_by_ref(u64::from(id)) else {
            return Ok(None);
        };
        let mut chunks = Vec::new();
        {
            let d = s.data.lock();
            if let Some(t) = d.commits.visible_max_t(snapshot) {
                maxt = maxt.min(t);
            }
            if maxt < mint {
                return Ok(None);
            }
            for c in &d.mmapped {
                if c.max_time < mint || c.min_time > maxt {
                    continue;
                }
                let data = self.chunk_reader.chunk(c.chunk_ref)?;
                chunks.push(ChunkData {
                    min_time: c.min_time,
                    max_time: c.max_time,
                    data: data.data().into(),
                });
            }
            if let Some(o) = &d.open {
                if o.max_time >= mint && o.min_time <= maxt {
                    chunks.push(ChunkData {
                        min_time: o.min_time,
                        max_time: o.max_time,
                        data: o.enc.bytes().into(),
                    });
                }
            }
        }
        if chunks.is_empty() {
            return Ok(None);
        }
        Ok(Some(HeadSeriesData {
            labels: s.labels.clone(),
            chunks,
            maxt,
        }))
    }

    /// Series matching `matchers` with data in `[mint, maxt]`, sorted by labels, with every
    /// commit visible (compaction, tools).
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>> {
        self.select_isolated(matchers, mint, maxt, super::SEE_ALL)
    }

    /// Like [`Head::select`], but as of isolation `snapshot` (from
    /// [`Head::isolation_snapshot`]): samples of commits after it are hidden.
    pub fn select_isolated(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        snapshot: u64,
    ) -> Result<Vec<Series>> {
        let ids = postings_for_matchers(self, matchers)?;
        let any_tombstones = !self.tombstones.read().is_empty();
        let mut out = Vec::with_capacity(ids.len() as usize);
        for id in ids.iter() {
            if let Some(d) = self.series_data(id, mint, maxt, snapshot)? {
                let deleted = if any_tombstones {
                    self.tombstones_for(u64::from(id))
                } else {
                    Vec::new()
                };
                out.push(Series::new(d.labels, d.chunks, deleted, mint, d.maxt));
            }
        }
        // Stable sort: postings (creation) order is often nearly sorted, which it exploits.
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }
}
