//! Dropping head data that has been persisted into a block: chunks that end before the
//! new minimum time are forgotten, series left without data are garbage-collected, the WAL
//! is checkpointed (keeping only records of live series and samples newer than the
//! truncation point) and old segments and `chunks_head/` files are deleted.

use std::sync::atomic::Ordering;

use super::Head;
use crate::error::Result;
use crate::record::{self, Record};

/// What a truncation did.
#[derive(Clone, Debug, Default)]
pub struct TruncateStats {
    pub series_removed: u64,
    pub chunks_removed: u64,
    pub checkpoint: Option<u64>,
}

impl Head {
    /// Drops everything before `mint`.
    pub fn truncate(&self, mint: i64) -> Result<TruncateStats> {
        let _span = tracing::info_span!("head_truncate", mint).entered();
        let mut stats = TruncateStats::default();
        self.set_min_valid_time(mint);
        let mut new_min = i64::MAX;
        let mut min_file: Option<u64> = None;
        for s in self.all_series() {
            let mut d = s.data.lock();
            let before = d.mmapped.len();
            d.mmapped.retain(|c| c.max_time >= mint);
            let mut removed = (before - d.mmapped.len()) as u64;
            if d.open.as_ref().is_some_and(|o| o.max_time < mint) {
                d.open = None;
                removed += 1;
            }
            stats.chunks_removed += removed;
            for c in &d.mmapped {
                let f = c.chunk_ref >> 32;
                min_file = Some(min_file.map_or(f, |m: u64| m.min(f)));
            }
            match super::series::MemSeries::time_bounds(&d) {
                Some((lo, _)) => new_min = new_min.min(lo),
                None if d.pending_t == i64::MIN => {
                    d.removed = true;
                    drop(d);
                    self.remove_series(&s);
                    self.remove_tombstones(s.series_ref);
                    stats.series_removed += 1;
                }
                None => {}
            }
        }
        self.stats
            .chunks_removed
            .fetch_add(stats.chunks_removed, Ordering::Relaxed);
        self.stats.truncations.fetch_add(1, Ordering::Relaxed);
        if new_min == i64::MAX {
            self.min_time.store(i64::MAX, Ordering::Relaxed);
            self.max_time.store(i64::MIN, Ordering::Relaxed);
        } else {
            self.min_time.store(new_min.max(mint), Ordering::Relaxed);
        }
        self.truncate_tombstones(mint);
        {
            let mut w = self.chunk_writer.lock();
            match min_file {
                Some(f) => w.truncate_below(f)?,
                None => {
                    w.cut_file()?;
                    if let Some(cur) = w.current_file_seq() {
                        w.truncate_below(cur)?;
                    }
                }
            }
        }
        if let Some(wal) = self.wal() {
            stats.checkpoint = self.checkpoint_wal(wal, mint)?;
        }
        Ok(stats)
    }

    /// Checkpoints all closed WAL segments and deletes them.
    fn checkpoint_wal(&self, wal: &vigil_wal::Wal, mint: i64) -> Result<Option<u64>> {
        let (first, _) = wal.segment_range()?;
        let current = wal.next_segment()?;
        if current == 0 || current <= first {
            return Ok(None);
        }
        let last = current - 1;
        let mut samples = Vec::new();
        let mut keep = |rec: &[u8]| -> Option<Vec<u8>> {
            let mut out = Vec::new();
            match record::decode(rec).ok()? {
                Record::Series(mut s) => {
                    s.retain(|x| self.series_by_ref(x.series_ref).is_some());
                    if s.is_empty() {
                        return None;
                    }
                    record::encode_series(&s, &mut out);
                }
                Record::Samples(_) => {
                    samples.clear();
                    record::decode_samples(rec, &mut samples).ok()?;
                    samples.retain(|x| x.t >= mint && self.series_by_ref(x.series_ref).is_some());
                    if samples.is_empty() {
                        return None;
                    }
                    record::encode_samples(&samples, &mut out);
                }
                Record::Tombstones(mut t) => {
                    t.retain(|x| x.maxt >= mint && self.series_by_ref(x.series_ref).is_some());
                    if t.is_empty() {
                        return None;
                    }
                    record::encode_tombstones(&t, &mut out);
                }
                Record::Metadata(mut m) => {
                    m.retain(|x| self.series_by_ref(x.series_ref).is_some());
                    if m.is_empty() {
                        return None;
                    }
                    record::encode_metadata(&m, &mut out);
                }
                Record::Other(_) => return None,
            }
            Some(out)
        };
        vigil_wal::checkpoint(
            wal.dir(),
            first,
            last,
            &mut keep,
            &vigil_wal::WalOptions::default(),
        )?;
        wal.truncate(last + 1)?;
        vigil_wal::delete_checkpoints_below(wal.dir(), last)?;
        Ok(Some(last))
    }
}
