//! One head series: its labels, the chunks already moved to `chunks_head/` (only their
//! references and time bounds stay in memory), and the open XOR chunk being appended to.
//! Appendability rules (out of order, duplicate, no-op resend) live here so that the
//! appender and WAL replay apply exactly the same ones.

use std::sync::atomic::AtomicBool;

use parking_lot::Mutex;

use crate::chunkenc::{Encoding, XorEncoder};
use crate::chunks::HeadChunkWriter;
use crate::error::{Error, Result};
use crate::labels::Labels;

use super::isolation::CommitRing;

/// The number of samples a chunk aims for (Prometheus' default `samplesPerChunk`).
pub const SAMPLES_PER_CHUNK: u16 = 120;

/// Chunk cutting as Prometheus' head does it, so that Vigil's chunks have the same shape
/// (and compress as well): a chunk may span at most to the end of its chunk-range window;
/// once it holds a quarter of `SAMPLES_PER_CHUNK`, the end is re-predicted so that the rest
/// of the window splits into equally full chunks; and a chunk never exceeds twice the target.
#[derive(Clone, Copy, Debug)]
pub struct ChunkCutter {
    /// Timestamp at or after which the next sample starts a new chunk.
    pub next_at: i64,
}

impl ChunkCutter {
    /// State for a chunk whose first sample is at `t`.
    pub fn start(t: i64, chunk_range_ms: i64) -> Self {
        let start = t.div_euclid(chunk_range_ms) * chunk_range_ms;
        ChunkCutter {
            next_at: start.saturating_add(chunk_range_ms),
        }
    }

    /// Called before appending a sample at `t` to a chunk that holds `num` samples spanning
    /// `[min_t, max_t]`; returns whether the sample must go into a new chunk.
    pub fn should_cut(&mut self, num: u16, min_t: i64, max_t: i64, t: i64) -> bool {
        if num == SAMPLES_PER_CHUNK / 4 {
            self.next_at = predict_chunk_end(min_t, max_t, self.next_at);
        }
        t >= self.next_at || num >= SAMPLES_PER_CHUNK * 2
    }
}

/// Predicts the end of a chunk that has reached a quarter of its target size at `cur`, so
/// that the time left until `max_t` is split into equal chunks.
fn predict_chunk_end(start: i64, cur: i64, max_t: i64) -> i64 {
    const RATIO_TO_FULL: f64 = 4.0;
    let n = (max_t - start) as f64 / ((cur - start + 1) as f64 * RATIO_TO_FULL);
    if n <= 1.0 {
        return max_t;
    }
    (start as f64 + (max_t - start) as f64 / n.floor()) as i64
}

/// A full chunk that lives in `chunks_head/`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MmappedChunk {
    pub chunk_ref: u64,
    pub min_time: i64,
    pub max_time: i64,
}

/// The chunk being appended to.
pub(crate) struct OpenChunk {
    pub enc: XorEncoder,
    pub min_time: i64,
    pub max_time: i64,
    /// When to cut this chunk (never later than the end of its chunk-range window, so a
    /// chunk never spans two block ranges).
    pub cutter: ChunkCutter,
}

/// Mutable state of a series, behind its own lock.
pub(crate) struct SeriesData {
    pub mmapped: Vec<MmappedChunk>,
    pub open: Option<OpenChunk>,
    /// Timestamp and value bits of the newest committed sample.
    pub last_t: i64,
    pub last_v_bits: u64,
    /// Newest timestamp accepted by an appender but not yet committed.
    pub pending_t: i64,
    /// Set when garbage collection removed the series from the head's maps: appenders
    /// holding it must look the series up again.
    pub removed: bool,
    /// The last commits that appended here, for read isolation.
    pub commits: CommitRing,
}

/// A head series.
pub(crate) struct MemSeries {
    pub series_ref: u64,
    pub labels: Labels,
    /// Whether a series record for this series has reached the WAL.
    pub logged: AtomicBool,
    pub data: Mutex<SeriesData>,
}

/// What an append of one sample to a series would do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Appendable {
    /// A new sample.
    Yes,
    /// Same timestamp and same value as the newest sample: accepted, nothing stored.
    NoOp,
}

impl MemSeries {
    pub fn new(series_ref: u64, labels: Labels) -> Self {
        MemSeries {
            series_ref,
            labels,
            logged: AtomicBool::new(false),
            data: Mutex::new(SeriesData {
                mmapped: Vec::new(),
                open: None,
                last_t: i64::MIN,
                last_v_bits: 0,
                pending_t: i64::MIN,
                removed: false,
                commits: CommitRing::default(),
            }),
        }
    }

    /// Approximate bytes of memory this series holds.
    pub fn approx_bytes(&self) -> usize {
        let d = self.data.lock();
        let open = d
            .open
            .as_ref()
            .map(|o| o.enc.heap_bytes() + 48)
            .unwrap_or(0);
        std::mem::size_of::<MemSeries>()
            + 16
            + self.labels.len() * std::mem::size_of::<crate::labels::Label>()
            + d.mmapped.capacity() * std::mem::size_of::<MmappedChunk>()
            + open
    }

    /// Time bounds of the data in memory or mmapped, if any.
    pub fn time_bounds(d: &SeriesData) -> Option<(i64, i64)> {
        let min = d
            .mmapped
            .first()
            .map(|c| c.min_time)
            .or(d.open.as_ref().map(|o| o.min_time))?;
        let max = d
            .open
            .as_ref()
            .map(|o| o.max_time)
            .or(d.mmapped.last().map(|c| c.max_time))?;
        Some((min, max))
    }
}

impl SeriesData {
    /// Checks whether (t, v) can be appended after the committed and pending samples.
    pub fn appendable(&self, t: i64, v: f64) -> Result<Appendable> {
        let newest = self.last_t.max(self.pending_t);
        if t > newest {
            return Ok(Appendable::Yes);
        }
        if t < newest {
            return Err(Error::OutOfOrderSample);
        }
        // Same timestamp as the newest sample.
        if t == self.last_t && self.pending_t <= self.last_t {
            if v.to_bits() == self.last_v_bits {
                return Ok(Appendable::NoOp);
            }
            return Err(Error::DuplicateSample);
        }
        Err(Error::DuplicateSample)
    }

    /// Appends a sample that passed `appendable`, cutting and mmapping the open chunk when it
    /// is full or the sample falls into the next chunk range. Returns whether a new chunk
    /// was started. Samples at or before the newest are dropped (false, counted by caller).
    pub fn append(
        &mut self,
        series_ref: u64,
        t: i64,
        v: f64,
        chunk_range_ms: i64,
        writer: &Mutex<HeadChunkWriter>,
    ) -> Result<AppendOutcome> {
        if t <= self.last_t {
            if t == self.last_t && v.to_bits() == self.last_v_bits {
                return Ok(AppendOutcome::NoOp);
            }
            return Ok(AppendOutcome::Rejected);
        }
        let mut new_chunk = false;
        let cut = match &mut self.open {
            Some(o) => o
                .cutter
                .should_cut(o.enc.num_samples(), o.min_time, o.max_time, t),
            None => false,
        };
        if cut {
            self.mmap_open_chunk(series_ref, writer)?;
        }
        let open = match &mut self.open {
            Some(o) => o,
            None => {
                new_chunk = true;
                self.open.insert(OpenChunk {
                    enc: XorEncoder::new(),
                    min_time: t,
                    max_time: t,
                    cutter: ChunkCutter::start(t, chunk_range_ms),
                })
            }
        };
        open.enc.append(t, v);
        open.max_time = t;
        self.last_t = t;
        self.last_v_bits = v.to_bits();
        Ok(if new_chunk {
            AppendOutcome::AppendedNewChunk
        } else {
            AppendOutcome::Appended
        })
    }

    /// Writes the open chunk to `chunks_head/` and keeps only its reference.
    pub fn mmap_open_chunk(
        &mut self,
        series_ref: u64,
        writer: &Mutex<HeadChunkWriter>,
    ) -> Result<()> {
        if let Some(o) = self.open.take() {
            let chunk_ref = writer.lock().write(
                series_ref,
                o.min_time,
                o.max_time,
                Encoding::Xor,
                o.enc.bytes(),
            )?;
            self.mmapped.push(MmappedChunk {
                chunk_ref,
                min_time: o.min_time,
                max_time: o.max_time,
            });
        }
        Ok(())
    }
}

/// Result of applying one sample to a series.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AppendOutcome {
    Appended,
    AppendedNewChunk,
    NoOp,
    Rejected,
}
