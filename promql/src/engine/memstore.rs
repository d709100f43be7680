//! `MemStorage`: a small in-memory `Queryable` for tests, the promqltest runner and
//! benchmarks. Series are kept sorted by labels with their samples; samples are encoded into
//! XOR chunks once per append batch so reads go through the same decoding path as the real
//! storage. It enforces head-like append rules (no out-of-order samples, no duplicate
//! timestamp with a different value) and must never be used as durable storage.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use vigil_storage::chunkenc::XorEncoder;
use vigil_storage::{ChunkData, Labels, Matcher, Querier, Queryable, Series};

/// Samples per encoded chunk (Prometheus' target chunk size).
const SAMPLES_PER_CHUNK: usize = 120;

#[derive(Default)]
struct MemSeries {
    samples: Vec<(i64, f64)>,
    chunks: Vec<ChunkData>,
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
        let mut map = self.series.write();
        let mut staged: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
        for (labels, samples) in batch {
            let entry = staged.entry(labels.clone()).or_insert_with(|| {
                map.get(labels)
                    .map(|s| s.samples.clone())
                    .unwrap_or_default()
            });
            for &(t, v) in samples {
                match entry.last() {
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
                    _ => entry.push((t, v)),
                }
            }
        }
        for (labels, samples) in staged {
            let s = map.entry(labels).or_default();
            s.samples = samples;
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

impl Queryable for MemStorage {
    fn querier(&self, mint: i64, maxt: i64) -> vigil_storage::Result<Box<dyn Querier + '_>> {
        Ok(Box::new(MemQuerier {
            store: self,
            mint,
            maxt,
        }))
    }
}
