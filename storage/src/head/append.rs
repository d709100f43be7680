//! The head appender: buffers samples, checks them against their series at append time
//! (out of bounds, out of order, duplicates), and at `commit` logs series and sample records
//! to the WAL with one group-committed, fsynced write *before* applying them to memory — so
//! a commit that returned Ok survives any crash. A rollback forgets buffered samples but
//! still logs the records of series it created (they exist in memory already).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::series::{AppendOutcome, Appendable, MemSeries};
use super::Head;
use crate::error::{Error, Result};
use crate::labels::Labels;
use crate::record::{self, RefMetadata, RefSample, RefSeries};

/// Counts of what a commit stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Samples stored.
    pub appended: u64,
    /// Samples dropped at commit because a concurrent writer got ahead of them.
    pub out_of_order: u64,
}

/// Appends samples to the head; see the module documentation.
pub struct Appender {
    head: Arc<Head>,
    /// Identifies this appender's entry in the head's pending-minimum table.
    id: u64,
    /// Oldest timestamp registered there (i64::MAX: nothing registered).
    held_min: i64,
    samples: Vec<RefSample>,
    sample_series: Vec<Arc<MemSeries>>,
    /// Series whose record must be logged with this batch.
    unlogged: Vec<Arc<MemSeries>>,
    metadata: Vec<RefMetadata>,
    min_t: i64,
    max_t: i64,
    buf: Vec<u8>,
}

impl Appender {
    pub(super) fn new(head: Arc<Head>) -> Self {
        Appender {
            id: head.new_appender_id(),
            held_min: i64::MAX,
            head,
            samples: Vec::new(),
            sample_series: Vec::new(),
            unlogged: Vec::new(),
            metadata: Vec::new(),
            min_t: i64::MAX,
            max_t: i64::MIN,
            buf: Vec::new(),
        }
    }

    /// Appends a float sample for the series with `labels` and returns its reference, which
    /// can be passed to `append_ref` for later samples of the same series.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<u64> {
        if labels.is_empty() {
            return Err(Error::InvalidLabels("empty label set".into()));
        }
        self.check_time(t)?;
        let (s, _) = self.head.get_or_create(labels, None)?;
        self.add(s, t, v)
    }

    /// Appends a sample for a series reference obtained from `append`. Fails with
    /// `Error::Other` if the reference is unknown (e.g. the series was garbage collected):
    /// callers then fall back to `append` with labels.
    pub fn append_ref(&mut self, series_ref: u64, t: i64, v: f64) -> Result<u64> {
        self.check_time(t)?;
        let s = self
            .head
            .series_by_ref(series_ref)
            .ok_or_else(|| Error::Other(format!("unknown series reference {series_ref}")))?;
        self.add(s, t, v)
    }

    /// Records metadata (type, unit, help) for a series reference.
    pub fn update_metadata(&mut self, series_ref: u64, m: RefMetadata) {
        self.metadata.push(RefMetadata { series_ref, ..m });
    }

    fn check_time(&mut self, t: i64) -> Result<()> {
        // Registering a new oldest timestamp re-checks the floor under the head's lock, so
        // a concurrent head compaction cannot truncate past a sample accepted here.
        if t < self.head.min_valid_time()
            || (t < self.held_min && self.head.hold_pending(self.id, t).is_err())
        {
            self.head
                .stats
                .out_of_bounds_samples
                .fetch_add(1, Ordering::Relaxed);
            return Err(Error::OutOfBounds);
        }
        self.held_min = self.held_min.min(t);
        let max_future = self.head.opts.max_future_ms;
        if max_future > 0 && t > now_ms().saturating_add(max_future) {
            self.head
                .stats
                .too_far_in_future_samples
                .fetch_add(1, Ordering::Relaxed);
            return Err(Error::TooFarInFuture);
        }
        Ok(())
    }

    fn add(&mut self, mut s: Arc<MemSeries>, t: i64, v: f64) -> Result<u64> {
        if s.data.lock().removed {
            // Garbage-collected since it was looked up: recreate it.
            let labels = s.labels.clone();
            s = self.head.get_or_create(&labels, None)?.0;
        }
        let r = s.series_ref;
        if !s.logged.load(Ordering::Acquire) && !self.unlogged.iter().any(|u| u.series_ref == r) {
            self.unlogged.push(s.clone());
        }
        {
            let mut d = s.data.lock();
            match d.appendable(t, v) {
                Ok(Appendable::Yes) => d.pending_t = t,
                Ok(Appendable::NoOp) => return Ok(r),
                Err(e) => {
                    let c = match e {
                        Error::OutOfOrderSample => &self.head.stats.out_of_order_samples,
                        _ => &self.head.stats.duplicate_samples,
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        self.min_t = self.min_t.min(t);
        self.max_t = self.max_t.max(t);
        self.samples.push(RefSample {
            series_ref: r,
            t,
            v,
        });
        self.sample_series.push(s);
        Ok(r)
    }

    /// Number of buffered samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty() && self.unlogged.is_empty() && self.metadata.is_empty()
    }

    /// Logs everything to the WAL (fsynced), then makes it visible.
    pub fn commit(self) -> Result<CommitStats> {
        self.commit_with(true)
    }

    /// Like [`Appender::commit`], but does not wait for the WAL fsync: the records are in
    /// the segment file (they survive the process being killed) and become durable with
    /// the next synced commit or segment cut. For data that is recomputed anyway —
    /// recording-rule and `ALERTS` outputs, which Prometheus never fsyncs either — so a rule
    /// group of thousands of rules does not wait for thousands of fsyncs.
    pub fn commit_unsynced(self) -> Result<CommitStats> {
        self.commit_with(false)
    }

    fn commit_with(mut self, sync: bool) -> Result<CommitStats> {
        if self.head.is_closed() {
            return Err(Error::Closed("the database was closed".into()));
        }
        self.log_with(true, sync)?;
        let head = self.head.clone();
        let mut stats = CommitStats::default();
        let range = head.opts.chunk_range_ms;
        // Readers see this commit's samples only once all of them are in (isolation).
        let applying = head.isolation.begin();
        for (s, smp) in self.sample_series.iter().zip(&self.samples) {
            let mut d = s.data.lock();
            let last_t = d.last_t;
            d.commits.record(applying.id, last_t);
            let out = d.append(s.series_ref, smp.t, smp.v, range, &head.chunk_writer);
            if d.pending_t <= smp.t {
                d.pending_t = i64::MIN;
            }
            drop(d);
            match out? {
                AppendOutcome::Appended => stats.appended += 1,
                AppendOutcome::AppendedNewChunk => {
                    stats.appended += 1;
                    head.stats.chunks_created.fetch_add(1, Ordering::Relaxed);
                }
                AppendOutcome::NoOp => {}
                AppendOutcome::Rejected => stats.out_of_order += 1,
            }
        }
        drop(applying);
        if stats.appended > 0 {
            head.update_time_bounds(self.min_t);
            head.update_time_bounds(self.max_t);
        }
        for m in self.metadata.drain(..) {
            head.set_metadata(m);
        }
        head.stats
            .samples_appended
            .fetch_add(stats.appended, Ordering::Relaxed);
        head.stats
            .out_of_order_samples
            .fetch_add(stats.out_of_order, Ordering::Relaxed);
        self.samples.clear();
        self.sample_series.clear();
        Ok(stats)
    }

    /// Drops buffered samples; records of series created meanwhile are still logged.
    pub fn rollback(mut self) -> Result<()> {
        for s in &self.sample_series {
            s.data.lock().pending_t = i64::MIN;
        }
        self.samples.clear();
        self.sample_series.clear();
        self.metadata.clear();
        self.log(false)
    }

    /// Writes series records (for series not yet logged), then samples and metadata, as one
    /// WAL batch. `with_samples` false logs series only.
    fn log(&mut self, with_samples: bool) -> Result<()> {
        self.log_with(with_samples, true)
    }

    /// `log`, waiting for the fsync only when `sync`.
    fn log_with(&mut self, with_samples: bool, sync: bool) -> Result<()> {
        let Some(wal) = self.head.wal().cloned() else {
            self.mark_logged();
            return Ok(());
        };
        let mut recs: Vec<Vec<u8>> = Vec::with_capacity(3);
        if !self.unlogged.is_empty() {
            let series: Vec<RefSeries> = self
                .unlogged
                .iter()
                .map(|s| RefSeries {
                    series_ref: s.series_ref,
                    labels: s.labels.clone(),
                })
                .collect();
            record::encode_series(&series, &mut self.buf);
            recs.push(std::mem::take(&mut self.buf));
        }
        if with_samples && !self.samples.is_empty() {
            let mut b = Vec::new();
            record::encode_samples(&self.samples, &mut b);
            recs.push(b);
        }
        if with_samples && !self.metadata.is_empty() {
            let mut b = Vec::new();
            record::encode_metadata(&self.metadata, &mut b);
            recs.push(b);
        }
        if recs.is_empty() {
            return Ok(());
        }
        let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
        let res = if sync {
            wal.log(&refs)
        } else {
            wal.log_unsynced(&refs)
        };
        if let Err(e) = res {
            for s in &self.sample_series {
                s.data.lock().pending_t = i64::MIN;
            }
            return Err(e.into());
        }
        self.mark_logged();
        Ok(())
    }

    fn mark_logged(&mut self) {
        for s in self.unlogged.drain(..) {
            s.logged.store(true, Ordering::Release);
        }
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        // An appender dropped without commit or rollback behaves like a rollback for
        // pending state; its series records are logged by the next writer of each series.
        // `commit` and `rollback` end here too, after their samples are in memory.
        for s in &self.sample_series {
            let mut d = s.data.lock();
            d.pending_t = i64::MIN;
        }
        if self.held_min != i64::MAX {
            self.head.release_pending(self.id);
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
