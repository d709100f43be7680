//! Writing blocks and planning compactions. A block is written from a sorted list of
//! series (from the head or from older blocks, merged) into `<ulid>.tmp-for-creation`:
//! chunk segment files, the index, meta.json and an empty tombstones file, everything
//! fsynced, then renamed into place. Samples are re-encoded into XOR chunks of at most
//! `SAMPLES_PER_CHUNK` samples, dropping deleted samples. Planning follows Prometheus'
//! leveled scheme: 2h blocks are merged into 6h, 18h, 54h, … up to the largest range.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::block::{
    new_ulid, BlockCompaction, BlockDesc, BlockMeta, BlockStats, CHUNKS_DIRNAME, INDEX_FILENAME,
    META_VERSION,
};
use std::sync::Arc;

use crate::chunkenc::{Encoding, XorEncoder, XorIterator};
use crate::chunks::ChunkWriter;
use crate::error::{Error, Result};
use crate::head::ChunkCutter;
use crate::index::{ChunkMeta, IndexWriter};
use crate::labels::Labels;
use crate::querier::{ChunkData, Sample, Series};
use crate::tombstones::{self, Tombstones};

/// Suffix of a block directory being written.
pub const TMP_CREATION_SUFFIX: &str = ".tmp-for-creation";
/// Suffix of a block directory being deleted.
pub const TMP_DELETION_SUFFIX: &str = ".tmp-for-deletion";

/// Where a new block comes from.
pub struct BlockOrigin {
    pub level: u32,
    pub sources: Vec<String>,
    pub parents: Vec<BlockDesc>,
}

/// A series to be written into a block: its labels and the chunks to store.
pub trait BlockSeries {
    /// The series' labels.
    fn labels(&self) -> &Labels;
    /// Appends to `out` the XOR chunks holding this series' samples in `[mint, maxt)`.
    /// Chunks are reused byte for byte where possible (as Prometheus' compactor does);
    /// otherwise samples are re-encoded with the head's chunk-cutting rules.
    fn block_chunks(
        &self,
        mint: i64,
        maxt: i64,
        chunk_range_ms: i64,
        out: &mut Vec<ChunkData>,
    ) -> Result<()>;
}

impl BlockSeries for Series {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn block_chunks(
        &self,
        mint: i64,
        maxt: i64,
        chunk_range_ms: i64,
        out: &mut Vec<ChunkData>,
    ) -> Result<()> {
        let mut chunks: Vec<&ChunkData> = self.chunks().iter().collect();
        chunks.sort_by_key(|c| (c.min_time, c.max_time));
        let reusable = !self.has_deletions()
            && chunks.windows(2).all(|w| w[0].max_time < w[1].min_time)
            && chunks
                .iter()
                .all(|c| c.min_time >= mint && c.max_time < maxt);
        if reusable {
            out.extend(chunks.into_iter().cloned());
            return Ok(());
        }
        let mut samples = Vec::new();
        self.samples_into(&mut samples)?;
        samples.retain(|x| x.t >= mint && x.t < maxt);
        encode_chunks(&samples, chunk_range_ms, out);
        Ok(())
    }
}

impl BlockSeries for (Labels, Vec<Sample>) {
    fn labels(&self) -> &Labels {
        &self.0
    }

    fn block_chunks(
        &self,
        mint: i64,
        maxt: i64,
        chunk_range_ms: i64,
        out: &mut Vec<ChunkData>,
    ) -> Result<()> {
        let lo = self.1.partition_point(|x| x.t < mint);
        let hi = self.1.partition_point(|x| x.t < maxt);
        encode_chunks(&self.1[lo..hi], chunk_range_ms, out);
        Ok(())
    }
}

/// Encodes sorted samples into XOR chunks cut exactly as the head cuts them.
pub fn encode_chunks(samples: &[Sample], chunk_range_ms: i64, out: &mut Vec<ChunkData>) {
    let mut cur: Option<(XorEncoder, i64, i64, ChunkCutter)> = None;
    for x in samples {
        if let Some((enc, min, max, cutter)) = &mut cur {
            if cutter.should_cut(enc.num_samples(), *min, *max, x.t) {
                if let Some((enc, min, max, _)) = cur.take() {
                    out.push(ChunkData {
                        min_time: min,
                        max_time: max,
                        data: Arc::from(enc.bytes()),
                    });
                }
            }
        }
        let c = cur.get_or_insert_with(|| {
            (
                XorEncoder::new(),
                x.t,
                x.t,
                ChunkCutter::start(x.t, chunk_range_ms),
            )
        });
        c.0.append(x.t, x.v);
        c.2 = x.t;
    }
    if let Some((enc, min, max, _)) = cur {
        out.push(ChunkData {
            min_time: min,
            max_time: max,
            data: Arc::from(enc.bytes()),
        });
    }
}

/// Writes series (sorted by labels) restricted to `[mint, maxt)` as a new block under
/// `parent`. Returns None (and writes nothing) when no sample falls in the range. Chunks are
/// gathered one series at a time, so memory stays bounded by the largest series.
pub fn write_block<S: BlockSeries>(
    parent: &Path,
    series: &[S],
    mint: i64,
    maxt: i64,
    chunk_range_ms: i64,
    origin: BlockOrigin,
) -> Result<Option<BlockMeta>> {
    let _span = tracing::info_span!("write_block", mint, maxt, series = series.len()).entered();
    // First pass: which series have samples in range (empty ones stay out of the index).
    let mut kept: Vec<usize> = Vec::new();
    let mut buf = Vec::new();
    for (i, s) in series.iter().enumerate() {
        buf.clear();
        s.block_chunks(mint, maxt, chunk_range_ms, &mut buf)?;
        if !buf.is_empty() {
            kept.push(i);
        }
    }
    if kept.is_empty() {
        return Ok(None);
    }
    write_kept(parent, series, &kept, (mint, maxt, chunk_range_ms), origin).map(Some)
}

/// Like [`write_block`], but writes a block without series when nothing falls in the
/// range. Head compaction uses it: the block's range is what tells the next start that
/// the head was truncated there, so data deleted by tombstones (which the truncation
/// dropped together with its tombstones) is never revived from `chunks_head/`.
pub fn write_block_keep_empty<S: BlockSeries>(
    parent: &Path,
    series: &[S],
    mint: i64,
    maxt: i64,
    chunk_range_ms: i64,
    origin: BlockOrigin,
) -> Result<BlockMeta> {
    let mut kept: Vec<usize> = Vec::new();
    let mut buf = Vec::new();
    for (i, s) in series.iter().enumerate() {
        buf.clear();
        s.block_chunks(mint, maxt, chunk_range_ms, &mut buf)?;
        if !buf.is_empty() {
            kept.push(i);
        }
    }
    write_kept(parent, series, &kept, (mint, maxt, chunk_range_ms), origin)
}

fn write_kept<S: BlockSeries>(
    parent: &Path,
    series: &[S],
    kept: &[usize],
    range: (i64, i64, i64),
    origin: BlockOrigin,
) -> Result<BlockMeta> {
    let now = crate::head::now_ms();
    let ulid = new_ulid(now.max(0) as u64);
    let tmp = parent.join(format!("{ulid}{TMP_CREATION_SUFFIX}"));
    let final_dir = parent.join(&ulid);
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)
        .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
    let res = write_block_files(&tmp, series, kept, range, &ulid, origin);
    let meta = match res {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    crate::fs::fsync_dir(&tmp)?;
    crate::fs::rename_atomic(&tmp, &final_dir)?;
    Ok(meta)
}

fn write_block_files<S: BlockSeries>(
    dir: &Path,
    series: &[S],
    kept: &[usize],
    (mint, maxt, chunk_range_ms): (i64, i64, i64),
    ulid: &str,
    origin: BlockOrigin,
) -> Result<BlockMeta> {
    // Prometheus' compactor always includes the empty string in the symbol table.
    let mut symbols: BTreeSet<Arc<str>> = BTreeSet::new();
    symbols.insert(Arc::from(""));
    for i in kept {
        for l in series[*i].labels() {
            symbols.insert(l.name.clone());
            symbols.insert(l.value.clone());
        }
    }
    let mut cw = ChunkWriter::new(&dir.join(CHUNKS_DIRNAME))?;
    let mut iw = IndexWriter::create(&dir.join(INDEX_FILENAME))?;
    iw.add_symbols(symbols.iter().map(|s| &**s))?;
    let mut stats = BlockStats::default();
    let mut metas = Vec::new();
    let mut chunks = Vec::new();
    for i in kept {
        let s = &series[*i];
        chunks.clear();
        s.block_chunks(mint, maxt, chunk_range_ms, &mut chunks)?;
        metas.clear();
        for c in &chunks {
            let chunk_ref = cw.write_chunk(Encoding::Xor, &c.data)?;
            metas.push(ChunkMeta {
                min_time: c.min_time,
                max_time: c.max_time,
                chunk_ref,
            });
            stats.num_samples += u64::from(XorIterator::new(&c.data).num_samples());
        }
        iw.add_series(s.labels(), &metas)?;
        stats.num_series += 1;
        stats.num_chunks += metas.len() as u64;
    }
    stats.num_float_samples = stats.num_samples;
    cw.close()?;
    iw.finish()?;
    tombstones::write(dir, &Tombstones::new())?;
    let meta = BlockMeta {
        ulid: ulid.to_string(),
        min_time: mint,
        max_time: maxt,
        stats,
        compaction: BlockCompaction {
            level: origin.level,
            sources: if origin.sources.is_empty() {
                vec![ulid.to_string()]
            } else {
                origin.sources
            },
            parents: origin.parents,
            ..Default::default()
        },
        version: META_VERSION,
    };
    meta.write(dir)?;
    Ok(meta)
}

/// Block ranges of the leveled scheme: `base`, ×3, ×9, … up to `max` (at least `base`).
pub fn exponential_ranges(base: i64, max: i64) -> Vec<i64> {
    let mut out = vec![base];
    let mut r = base;
    while let Some(n) = r.checked_mul(3) {
        if n > max {
            break;
        }
        out.push(n);
        r = n;
    }
    out
}

/// A block as the planner sees it.
#[derive(Clone, Debug)]
pub struct PlanBlock {
    pub dir: PathBuf,
    pub min_time: i64,
    pub max_time: i64,
}

/// Chooses blocks to compact together, Prometheus style: overlapping blocks first; else, for
/// each larger range, the first aligned window holding several blocks that is either fully
/// covered or no longer the newest window. Returns an empty list when nothing is due.
pub fn plan(blocks: &[PlanBlock], ranges: &[i64]) -> Vec<PlanBlock> {
    let mut sorted = blocks.to_vec();
    sorted.sort_by_key(|b| (b.min_time, b.max_time));
    // Overlapping blocks (e.g. from backfill) are merged first.
    let mut group: Vec<PlanBlock> = Vec::new();
    let mut group_max = i64::MIN;
    for b in &sorted {
        if !group.is_empty() && b.min_time < group_max {
            group.push(b.clone());
            group_max = group_max.max(b.max_time);
        } else {
            if group.len() > 1 {
                return group;
            }
            group = vec![b.clone()];
            group_max = b.max_time;
        }
    }
    if group.len() > 1 {
        return group;
    }
    // The newest block is left out: a neighbour may still be written next to it.
    sorted.pop();
    let Some(high_time) = sorted.last().map(|b| b.min_time) else {
        return Vec::new();
    };
    for &r in ranges.iter().skip(1) {
        let mut windows: Vec<(i64, Vec<PlanBlock>)> = Vec::new();
        for b in &sorted {
            let start = b.min_time.div_euclid(r) * r;
            if b.max_time > start + r {
                continue; // does not fit into one window of this range
            }
            match windows.last_mut() {
                Some((s, v)) if *s == start => v.push(b.clone()),
                _ => windows.push((start, vec![b.clone()])),
            }
        }
        for (_, w) in windows {
            let (Some(first), Some(last)) = (w.first(), w.last()) else {
                continue;
            };
            let (mint, maxt) = (first.min_time, last.max_time);
            if w.len() > 1 && (maxt - mint == r || maxt <= high_time) {
                return w;
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(min: i64, max: i64) -> PlanBlock {
        PlanBlock {
            dir: PathBuf::from(format!("{min}-{max}")),
            min_time: min,
            max_time: max,
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(exponential_ranges(2, 60), vec![2, 6, 18, 54]);
    }

    #[test]
    fn plans_leveled_and_overlapping() {
        let r = exponential_ranges(2, 54);
        // Three 2h blocks fill a 6h window.
        assert_eq!(plan(&[b(0, 2), b(2, 4), b(4, 6), b(6, 8)], &r).len(), 3);
        // Two blocks of an incomplete window that is still the newest wait.
        assert!(plan(&[b(0, 2), b(2, 4), b(4, 6)], &r).is_empty());
        // ...but are compacted once newer data lies beyond the window.
        assert_eq!(plan(&[b(0, 2), b(2, 4), b(6, 8), b(8, 10)], &r).len(), 2);
        assert_eq!(
            plan(&[b(0, 2), b(2, 4), b(4, 6), b(6, 8)], &r)[0].min_time,
            0
        );
        // Overlaps first.
        let p = plan(&[b(0, 2), b(1, 3), b(10, 12)], &r);
        assert_eq!(p.len(), 2);
        assert!(plan(&[b(0, 2)], &r).is_empty());
    }
}
