//! `MemStorage`: a small in-memory `Queryable` for tests, the promqltest runner and
//! benchmarks. Series are kept sorted by labels with their samples; samples are encoded into
//! XOR chunks once per append batch so reads go through the same decoding path as the real
//! storage. It enforces head-like append rules (no out-of-order samples, no duplicate
//! timestamp with a different value) and must never be used as durable storage.
//!
//! It also keeps each sample's start (created) timestamp, if one was appended, and serves
//! them through the engine's [`StartTimestampSource`] seam — the chunk format has no room
//! for them, so they live beside the chunks (see docs/promql-compat.md).

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use vigil_storage::chunkenc::XorEncoder;
use vigil_storage::{ChunkData, Labels, Matcher, Querier, Queryable, Series};

use super::start_ts::{StartTimestampSource, UNKNOWN_START_TIMESTAMP};

/// Samples per encoded chunk (Prometheus' target chunk size).
const SAMPLES_PER_CHUNK: usize = 120;

#[derive(Default)]
struct MemSeries {
    samples: Vec<(i64, f64)>,
    /// Start timestamps parallel to `samples` (`UNKNOWN_START_TIMESTAMP` when not given);
    /// empty while no sample of the series ever had one.
    start_timestamps: Vec<i64>,
    chunks: Vec<ChunkData>,
}

/// A series' samples and start timestamps while a batch is validated.
#[derive(Default)]
struct Staged {
    samples: Vec<(i64, f64)>,
    start_timestamps: Vec<i64>,
}

impl Staged {
    fn push(&mut self, t: i64, v: f64, st: i64) {
        if st != UNKNOWN_START_TIMESTAMP || !self.start_timestamps.is_empty() {
            // Earlier samples without a start timestamp get the unknown one.
            self.start_timestamps
                .resize(self.samples.len(), UNKNOWN_START_TIMESTAMP);
            self.start_timestamps.push(st);
        }
        self.samples.push((t, v));
    }
}

impl MemSeries {
    fn encode(&mut self) {
        self.chunks.clear();
        for part in self.samples.chunks(SAMPLES_PER_CHUNK) {
            let mut enc = XorEncoder::new();
            for (t, v) in part {
                enc.append(*t, *v);
            }
            let (Some(first), Some(last)) = (part.first(), part.last()) else {
                continue;
            };
            self.chunks.push(ChunkData {
                min_time: first.0,
                max_time: last.0,
                data: Arc::from(enc.finish().into_bytes()),
            });
        }
    }
}

/// A sample with its start timestamp: `(t, v, st)`, `st` being `UNKNOWN_START_TIMESTAMP`
/// when unknown.
pub type SampleWithStart = (i64, f64, i64);

/// Why an append was rejected.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("out of order sample for series {labels} at {t}")]
    OutOfOrder { labels: String, t: i64 },
    #[error("duplicate sample for timestamp {t} for series {labels}")]
    Duplicate { labels: String, t: i64 },
}

/// An in-memory series store.
#[derive(Default)]
pub struct MemStorage {
    series: RwLock<BTreeMap<Labels, MemSeries>>,
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// Drops every series.
    pub fn clear(&self) {
        self.series.write().clear();
    }

    /// Appends a batch: each entry is a series and its samples in timestamp order. The batch
    /// is validated first and applied all-or-nothing.
    pub fn append_batch(&self, batch: &[(Labels, Vec<(i64, f64)>)]) -> Result<(), AppendError> {
        self.append(
            batch
                .iter()
                .map(|(l, s)| (l, s.iter().map(|&(t, v)| (t, v, UNKNOWN_START_TIMESTAMP)))),
        )
    }

    /// Like [`MemStorage::append_batch`] with each sample's start timestamp:
    /// `(t, v, st)`, `st` being `UNKNOWN_START_TIMESTAMP` (0) when unknown. A duplicate
    /// sample (same timestamp and value) keeps the start timestamp it was first given.
    pub fn append_batch_with_start_timestamps(
        &self,
        batch: &[(Labels, Vec<SampleWithStart>)],
    ) -> Result<(), AppendError> {
        self.append(batch.iter().map(|(l, s)| (l, s.iter().copied())))
    }

    fn append<'b, S>(&self, batch: impl Iterator<Item = (&'b Labels, S)>) -> Result<(), AppendError>
    where
        S: Iterator<Item = SampleWithStart>,
    {
        let mut map = self.series.write();
        let mut staged: BTreeMap<Labels, Staged> = BTreeMap::new();
        for (labels, samples) in batch {
            let entry = staged.entry(labels.clone()).or_insert_with(|| {
                map.get(labels)
                    .map(|s| Staged {
                        samples: s.samples.clone(),
                        start_timestamps: s.start_timestamps.clone(),
                    })
                    .unwrap_or_default()
            });
            for (t, v, st) in samples {
                match entry.samples.last() {
                    Some(&(lt, _)) if t < lt => {
                        return Err(AppendError::OutOfOrder {
                            labels: labels.to_string(),
                            t,
                        })
                    }
                    Some(&(lt, lv)) if t == lt => {
                        if lv.to_bits() != v.to_bits() {
                            return Err(AppendError::Duplicate {
                                labels: labels.to_string(),
                                t,
                            });
                        }
                    }
                    _ => entry.push(t, v, st),
                }
            }
        }
        for (labels, staged) in staged {
            let s = map.entry(labels).or_default();
            s.samples = staged.samples;
            s.start_timestamps = staged.start_timestamps;
            s.encode();
        }
        Ok(())
    }

    /// Number of series stored.
    pub fn num_series(&self) -> usize {
        self.series.read().len()
    }
}

fn matches_all(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

struct MemQuerier<'a> {
    store: &'a MemStorage,
    mint: i64,
    maxt: i64,
}

impl MemQuerier<'_> {
    fn in_range(&self, s: &MemSeries) -> bool {
        let i = s.samples.partition_point(|(t, _)| *t < self.mint);
        s.samples.get(i).is_some_and(|(t, _)| *t <= self.maxt)
    }
}

impl Querier for MemQuerier<'_> {
    fn select(&self, matchers: &[Matcher]) -> vigil_storage::Result<Vec<Series>> {
        vigil_storage::querier::check_matchers(matchers)?;
        let map = self.store.series.read();
        Ok(map
            .iter()
            .filter(|(l, s)| matches_all(l, matchers) && self.in_range(s))
            .map(|(l, s)| {
                Series::new(
                    l.clone(),
                    s.chunks.clone(),
                    Vec::new(),
                    self.mint,
                    self.maxt,
                )
            })
            .collect())
    }

    fn label_names(&self, matchers: &[Matcher]) -> vigil_storage::Result<Vec<String>> {
        let map = self.store.series.read();
        let mut names: Vec<String> = map
            .iter()
            .filter(|(l, s)| matches_all(l, matchers) && self.in_range(s))
            .flat_map(|(l, _)| l.iter().map(|x| x.name.to_string()).collect::<Vec<_>>())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> vigil_storage::Result<Vec<String>> {
        let map = self.store.series.read();
        let mut values: Vec<String> = map
            .iter()
            .filter(|(l, s)| matches_all(l, matchers) && self.in_range(s))
            .filter_map(|(l, _)| l.get(name).map(str::to_string))
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }
}

impl StartTimestampSource for MemStorage {
    fn start_timestamps(
        &self,
        labels: &Labels,
        mint: i64,
        maxt: i64,
    ) -> vigil_storage::Result<Vec<(i64, i64)>> {
        let map = self.series.read();
        let Some(s) = map.get(labels) else {
            return Ok(Vec::new());
        };
        let lo = s.samples.partition_point(|(t, _)| *t < mint);
        let hi = s.samples.partition_point(|(t, _)| *t <= maxt);
        Ok(s.samples
            .get(lo..hi)
            .unwrap_or(&[])
            .iter()
            .zip(s.start_timestamps.get(lo..hi).unwrap_or(&[]))
            .filter(|(_, st)| **st != UNKNOWN_START_TIMESTAMP)
            .map(|((t, _), st)| (*t, *st))
            .collect())
    }
}

impl Queryable for MemStorage {
    fn querier(&self, mint: i64, maxt: i64) -> vigil_storage::Result<Box<dyn Querier + '_>> {
        Ok(Box::new(MemQuerier {
            store: self,
            mint,
            maxt,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use vigil_storage::LabelsBuilder;

    fn labels(name: &str) -> Labels {
        let mut b = LabelsBuilder::new();
        b.set("__name__", name);
        b.build()
    }

    #[test]
    fn start_timestamps_round_trip_and_stay_aligned() {
        let store = MemStorage::new();
        let a = labels("a");
        let b = labels("b");
        // `a` gets its first start timestamp on its first sample, `b` only later.
        store
            .append_batch_with_start_timestamps(&[
                (a.clone(), vec![(10, 1.0, 5), (20, 2.0, 0), (30, 3.0, 25)]),
                (b.clone(), vec![(10, 1.0, 0), (20, 2.0, 0)]),
            ])
            .unwrap();
        assert_eq!(
            store.start_timestamps(&a, 0, 100).unwrap(),
            vec![(10, 5), (30, 25)]
        );
        assert!(store.start_timestamps(&b, 0, 100).unwrap().is_empty());
        store
            .append_batch_with_start_timestamps(&[(b.clone(), vec![(30, 3.0, 21), (40, 4.0, 0)])])
            .unwrap();
        assert_eq!(store.start_timestamps(&b, 0, 100).unwrap(), vec![(30, 21)]);
        // Plain appends keep earlier start timestamps and add unknown ones.
        store.append_batch(&[(a.clone(), vec![(40, 4.0)])]).unwrap();
        assert_eq!(store.start_timestamps(&a, 15, 40).unwrap(), vec![(30, 25)]);
        // A duplicate keeps its first start timestamp; a rejected batch changes nothing.
        store
            .append_batch_with_start_timestamps(&[(a.clone(), vec![(40, 4.0, 39)])])
            .unwrap();
        assert!(store
            .append_batch_with_start_timestamps(&[(a.clone(), vec![(50, 5.0, 45), (45, 1.0, 0)])])
            .is_err());
        assert_eq!(
            store.start_timestamps(&a, 0, 100).unwrap(),
            vec![(10, 5), (30, 25)]
        );
        // Unknown series and empty or inverted ranges yield nothing.
        assert!(store
            .start_timestamps(&labels("c"), 0, 100)
            .unwrap()
            .is_empty());
        assert!(store.start_timestamps(&a, 100, 0).unwrap().is_empty());
    }
}
