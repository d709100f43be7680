//! Rebuilding the head after any stop, clean or not: first the chunks already written to
//! `chunks_head/` (indexed by series reference), then the last WAL checkpoint and every WAL
//! segment after it. Samples already covered by an mmapped chunk are skipped; samples older
//! than the head's minimum valid time (already in blocks) are skipped. A torn or corrupt WAL
//! tail is logged with segment and offset and repaired (cut), never fatal.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;

use super::series::MmappedChunk;
use super::Head;
use crate::chunkenc::XorIterator;
use crate::chunks::iterate_head_chunks;
use crate::error::Result;
use crate::record::{self, RefSample};

/// What a replay found.
#[derive(Clone, Debug, Default)]
pub struct ReplayStats {
    pub mmapped_chunks: u64,
    pub series: u64,
    pub samples: u64,
    pub skipped_samples: u64,
    pub unknown_refs: u64,
    pub tombstones: u64,
    pub corruption: Option<String>,
    pub segments: u64,
    pub checkpoint: Option<u64>,
}

impl Head {
    /// Replays `chunks_head/` and the WAL in `<dir>/wal`. Call once, before appending and
    /// before a WAL writer is attached (the WAL is repaired here if its tail is damaged).
    pub fn replay(&self) -> Result<ReplayStats> {
        let _span = tracing::info_span!("wal_replay").entered();
        let mut stats = ReplayStats::default();
        let mvt = self.min_valid_time.load(Ordering::Relaxed);
        let mut mmapped: HashMap<u64, Vec<MmappedChunk>> = HashMap::new();
        let chunks_dir = self.chunks_dir.clone();
        if !self.read_only && chunks_dir.exists() {
            let res = iterate_head_chunks(&chunks_dir, &mut |c| {
                if c.maxt >= mvt {
                    mmapped.entry(c.series_ref).or_default().push(MmappedChunk {
                        chunk_ref: c.chunk_ref,
                        min_time: c.mint,
                        max_time: c.maxt,
                    });
                    stats.mmapped_chunks += 1;
                }
                Ok(())
            });
            if let Err(e) = res {
                // The WAL holds every head sample; chunk files only save replay work. Drop
                // the damaged files and rebuild the chunks from the WAL.
                tracing::warn!(error = %e, "head chunk files damaged; rebuilding head chunks from the WAL");
                mmapped.clear();
                stats.mmapped_chunks = 0;
                let mut w = self.chunk_writer.lock();
                if let Some(cur) = w.current_file_seq() {
                    w.truncate_below(cur)?;
                }
            }
        }
        for v in mmapped.values_mut() {
            v.sort_by_key(|c| c.min_time);
        }
        let wal_dir = self.dir.join("wal");
        if !wal_dir.exists() {
            return Ok(stats);
        }
        let mut ctx = ReplayCtx {
            mmapped,
            multi_ref: HashMap::new(),
            samples: Vec::new(),
        };
        let mut first_segment = 0;
        if let Some((idx, path)) = vigil_wal::last_checkpoint(&wal_dir)? {
            stats.checkpoint = Some(idx);
            first_segment = idx + 1;
            // A checkpoint is written atomically; damage inside one is not repairable.
            self.replay_dir(&path, 0, &mut ctx, &mut stats)?;
        }
        let segments = vigil_wal::list_segments(&wal_dir)?;
        if let Some(&(last, _)) = segments.last() {
            if last >= first_segment {
                let first = segments
                    .iter()
                    .map(|(i, _)| *i)
                    .find(|i| *i >= first_segment)
                    .unwrap_or(first_segment);
                stats.segments = last - first + 1;
                if let Err(e) = self.replay_dir(&wal_dir, first, &mut ctx, &mut stats) {
                    match e {
                        crate::Error::Wal(ref we @ vigil_wal::Error::Corruption { .. })
                            if self.read_only =>
                        {
                            tracing::warn!(error = %we, "WAL corruption found; reading the intact prefix only");
                            stats.corruption = Some(we.to_string());
                        }
                        crate::Error::Wal(ref we @ vigil_wal::Error::Corruption { .. }) => {
                            tracing::warn!(error = %we, "WAL corruption found during replay; repairing");
                            stats.corruption = Some(we.to_string());
                            vigil_wal::repair(&wal_dir, we)?;
                        }
                        other => return Err(other),
                    }
                }
            }
        }
        // Everything replayed is in the WAL already.
        for s in self.all_series() {
            s.logged.store(true, Ordering::Release);
        }
        self.stats
            .wal_replay_unknown_refs
            .fetch_add(stats.unknown_refs, Ordering::Relaxed);
        tracing::info!(?stats, "WAL replay finished");
        Ok(stats)
    }

    fn replay_dir(
        &self,
        dir: &Path,
        first: u64,
        ctx: &mut ReplayCtx,
        stats: &mut ReplayStats,
    ) -> Result<()> {
        let mut reader = vigil_wal::Reader::open(dir, first, None)?;
        let mut buf = Vec::new();
        while reader.next_record(&mut buf)? {
            self.replay_record(&buf, ctx, stats)?;
        }
        Ok(())
    }

    fn replay_record(
        &self,
        rec: &[u8],
        ctx: &mut ReplayCtx,
        stats: &mut ReplayStats,
    ) -> Result<()> {
        let mvt = self.min_valid_time.load(Ordering::Relaxed);
        match record::record_type(rec) {
            Some(record::RECORD_SERIES) => {
                for rs in record::decode_series(rec)? {
                    let (s, created) = self.get_or_create(&rs.labels, Some(rs.series_ref))?;
                    if s.series_ref != rs.series_ref {
                        ctx.multi_ref.insert(rs.series_ref, s.series_ref);
                        continue;
                    }
                    if !created {
                        continue;
                    }
                    stats.series += 1;
                    if let Some(chunks) = ctx.mmapped.remove(&rs.series_ref) {
                        self.attach_mmapped(&s, chunks)?;
                    }
                }
            }
            Some(record::RECORD_SAMPLES) => {
                ctx.samples.clear();
                record::decode_samples(rec, &mut ctx.samples)?;
                let range = self.opts.chunk_range_ms;
                for smp in &ctx.samples {
                    if smp.t < mvt {
                        stats.skipped_samples += 1;
                        continue;
                    }
                    let r = ctx
                        .multi_ref
                        .get(&smp.series_ref)
                        .copied()
                        .unwrap_or(smp.series_ref);
                    let Some(s) = self.series_by_ref(r) else {
                        stats.unknown_refs += 1;
                        continue;
                    };
                    let mut d = s.data.lock();
                    match d.append(r, smp.t, smp.v, range, &self.chunk_writer)? {
                        super::series::AppendOutcome::Appended
                        | super::series::AppendOutcome::AppendedNewChunk => {
                            stats.samples += 1;
                            drop(d);
                            self.update_time_bounds(smp.t);
                        }
                        _ => stats.skipped_samples += 1,
                    }
                }
            }
            Some(record::RECORD_TOMBSTONES) => {
                for t in record::decode_tombstones(rec)? {
                    let r = ctx
                        .multi_ref
                        .get(&t.series_ref)
                        .copied()
                        .unwrap_or(t.series_ref);
                    self.add_tombstone(r, t.mint, t.maxt);
                    stats.tombstones += 1;
                }
            }
            Some(record::RECORD_METADATA) => {
                for mut m in record::decode_metadata(rec)? {
                    m.series_ref = ctx
                        .multi_ref
                        .get(&m.series_ref)
                        .copied()
                        .unwrap_or(m.series_ref);
                    self.set_metadata(m);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn attach_mmapped(&self, s: &super::MemSeries, chunks: Vec<MmappedChunk>) -> Result<()> {
        let Some(last) = chunks.last().copied() else {
            return Ok(());
        };
        let chunk = self.chunk_reader.chunk(last.chunk_ref)?;
        let mut it = XorIterator::new(chunk.data());
        let mut last_sample = None;
        while it.next() {
            last_sample = Some(it.at());
        }
        let mut d = s.data.lock();
        if let Some((t, v)) = last_sample {
            d.last_t = t;
            d.last_v_bits = v.to_bits();
        }
        for c in &chunks {
            self.update_time_bounds(c.min_time);
            self.update_time_bounds(c.max_time);
        }
        d.mmapped = chunks;
        Ok(())
    }
}

struct ReplayCtx {
    mmapped: HashMap<u64, Vec<MmappedChunk>>,
    multi_ref: HashMap<u64, u64>,
    samples: Vec<RefSample>,
}
