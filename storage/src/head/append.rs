//! The head appender: buffers samples, checks them against their series at append time
//! (out of bounds, out of order, duplicates), and at `commit` logs series and sample records
//! to the WAL with one group-committed, fsynced write *before* applying them to memory — so
//! a commit that returned Ok survives any crash. A rollback forgets buffered samples but
//! still logs the records of series it created (they exist in memory already).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::series::{AppendOutcome, Appendable, MemSeries};
use super::Head;
use crate::error::{Error, Result};
use crate::labels::{pairs_are_canonical, Labels};
use crate::record::{self, RefMetadata, RefSample};

/// Counts of what a commit stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Samples stored.
    pub appended: u64,
    /// Samples dropped at commit because a concurrent writer got ahead of them.
    pub out_of_order: u64,
}

/// A caller-held reference to one head series, so that a caller that recognises a series
/// it has seen before (e.g. by the bytes it arrived as) can append to it with no lookup.
/// It stays valid after the series is garbage collected: [`Appender::append_handle`] then
/// looks the series up again by its labels and repoints the handle. Holding it keeps the
/// series' memory alive, so callers must drop handles when the head removes series (see
/// [`HeadStats::series_removed`](super::HeadStats)).
#[derive(Clone)]
pub struct SeriesHandle {
    series: Arc<MemSeries>,
}

impl SeriesHandle {
    /// The series reference.
    pub fn series_ref(&self) -> u64 {
        self.series.series_ref
    }

    /// The series' labels.
    pub fn labels(&self) -> &Labels {
        &self.series.labels
    }
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
    /// The references of `unlogged`, for a constant-time membership test.
    unlogged_refs: HashSet<u64, foldhash::fast::FixedState>,
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
            unlogged_refs: HashSet::default(),
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

    /// Appends a float sample for the series named by borrowed `(name, value)` pairs; the
    /// same as `append(&Labels::from_pairs(pairs)?, t, v)` (pairs are sorted, empty values
    /// dropped, empty or duplicate names rejected), but when the pairs are already in that
    /// canonical form — as a well-behaved sender's are — an existing series is found by
    /// hashing and comparing the borrowed strings, with no allocation; owned labels are
    /// built only for a new series.
    pub fn append_borrowed(&mut self, pairs: &[(&str, &str)], t: i64, v: f64) -> Result<u64> {
        if !pairs_are_canonical(pairs) {
            let labels = Labels::from_pairs(pairs)?;
            return self.append(&labels, t, v);
        }
        self.check_time(t)?;
        let (s, _) = self.head.get_or_create_pairs(pairs)?;
        self.add(s, t, v)
    }

    /// `append_borrowed` that also returns a handle to the series, for
    /// [`Appender::append_handle`].
    pub fn append_borrowed_handle(
        &mut self,
        pairs: &[(&str, &str)],
        t: i64,
        v: f64,
    ) -> Result<(u64, SeriesHandle)> {
        self.check_time(t)?;
        let s = if pairs_are_canonical(pairs) {
            self.head.get_or_create_pairs(pairs)?.0
        } else {
            let labels = Labels::from_pairs(pairs)?;
            if labels.is_empty() {
                return Err(Error::InvalidLabels("empty label set".into()));
            }
            self.head.get_or_create(&labels, None)?.0
        };
        let mut series = s.clone();
        let r = self.add_to(&mut series, t, v)?;
        Ok((r, SeriesHandle { series }))
    }

    /// Appends a sample to the series `h` refers to, with the same checks as `append`. When
    /// the series was garbage collected meanwhile, it is recreated and `h` repointed.
    pub fn append_handle(&mut self, h: &mut SeriesHandle, t: i64, v: f64) -> Result<u64> {
        self.check_time(t)?;
        self.add_to(&mut h.series, t, v)
    }

    /// [`Appender::append_handle`] for a handle the caller cannot lend mutably (e.g. one in
    /// a shared cache): a recreated series is not remembered in `h`, so the next append
    /// through it looks the series up by labels again.
    pub fn append_handle_shared(&mut self, h: &SeriesHandle, t: i64, v: f64) -> Result<u64> {
        self.check_time(t)?;
        self.add(h.series.clone(), t, v)
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

    fn add(&mut self, s: Arc<MemSeries>, t: i64, v: f64) -> Result<u64> {
        Ok(self.add_owned(s, t, v)?.0)
    }

    /// `add` for a series the caller keeps: repoints `s` when it had to be recreated.
    fn add_to(&mut self, s: &mut Arc<MemSeries>, t: i64, v: f64) -> Result<u64> {
        let (r, recreated) = self.add_owned(s.clone(), t, v)?;
        if let Some(n) = recreated {
            *s = n;
        }
        Ok(r)
    }

    /// Checks and buffers `(t, v)` for series `s`, which moves into the batch; returns the
    /// reference and, when the series had been garbage collected and was recreated, the
    /// new series.
    fn add_owned(
        &mut self,
        mut s: Arc<MemSeries>,
        t: i64,
        v: f64,
    ) -> Result<(u64, Option<Arc<MemSeries>>)> {
        let mut recreated = None;
        let mut d = s.data.lock();
        if d.removed {
            // Garbage-collected since it was looked up: recreate it.
            drop(d);
            let labels = s.labels.clone();
            s = self.head.get_or_create(&labels, None)?.0;
            recreated = Some(s.clone());
            d = s.data.lock();
        }
        let r = s.series_ref;
        if !s.logged.load(Ordering::Acquire) && self.unlogged_refs.insert(r) {
            self.unlogged.push(s.clone());
        }
        match d.appendable(t, v) {
            Ok(Appendable::Yes) => d.pending_t = t,
            Ok(Appendable::NoOp) => return Ok((r, recreated)),
            Err(e) => {
                let c = match e {
                    Error::OutOfOrderSample => &self.head.stats.out_of_order_samples,
                    _ => &self.head.stats.duplicate_samples,
                };
                c.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        }
        drop(d);
        self.min_t = self.min_t.min(t);
        self.max_t = self.max_t.max(t);
        self.samples.push(RefSample {
            series_ref: r,
            t,
            v,
        });
        self.sample_series.push(s);
        Ok((r, recreated))
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
            record::encode_series_refs(
                self.unlogged.iter().map(|s| (s.series_ref, &s.labels)),
                &mut self.buf,
            );
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
        self.unlogged_refs.clear();
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Db, DbOptions, Matcher, Queryable};

    const T0: i64 = 1_700_000_000_000;

    fn open(dir: &std::path::Path) -> Arc<Db> {
        Db::open(dir, DbOptions::default()).unwrap()
    }

    #[test]
    fn borrowed_append_finds_the_series_append_created() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        let labels = Labels::from_pairs(&[("__name__", "up"), ("job", "a")]).unwrap();
        let mut app = db.appender();
        let r1 = app.append(&labels, T0, 1.0).unwrap();
        let r2 = app
            .append_borrowed(&[("__name__", "up"), ("job", "a")], T0 + 1, 2.0)
            .unwrap();
        let r3 = app
            .append_borrowed(&[("__name__", "up"), ("job", "b")], T0 + 1, 2.0)
            .unwrap();
        app.commit().unwrap();
        assert_eq!(r1, r2);
        assert_ne!(r1, r3);
        assert_eq!(db.head().num_series(), 2);
        // And the other way round: a series created from pairs is found by labels.
        let mut app = db.appender();
        let b = Labels::from_pairs(&[("job", "b"), ("__name__", "up")]).unwrap();
        assert_eq!(app.append(&b, T0 + 2, 3.0).unwrap(), r3);
        app.commit().unwrap();
        assert_eq!(db.head().num_series(), 2);
    }

    #[test]
    fn handles_append_to_their_series_and_follow_garbage_collection() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        let pairs = [("__name__", "up"), ("job", "a")];
        let mut app = db.appender();
        let (r, mut h) = app.append_borrowed_handle(&pairs, T0, 1.0).unwrap();
        assert_eq!(h.series_ref(), r);
        assert_eq!(app.append_handle(&mut h, T0 + 1, 2.0).unwrap(), r);
        assert!(matches!(
            app.append_handle(&mut h, T0, 3.0),
            Err(Error::OutOfOrderSample)
        ));
        app.commit().unwrap();
        // Unsorted pairs take the owned path and find the same series.
        let mut app = db.appender();
        let (r2, _) = app
            .append_borrowed_handle(&[("job", "a"), ("__name__", "up")], T0 + 2, 1.0)
            .unwrap();
        assert_eq!(r2, r);
        app.commit().unwrap();
        // Garbage collection removes the series: the handle's next append recreates it.
        let head = db.head();
        head.remove_series(&h.series);
        h.series.data.lock().removed = true;
        let mut app = db.appender();
        let r3 = app.append_handle(&mut h, T0 + 3, 4.0).unwrap();
        app.commit().unwrap();
        assert_ne!(r3, r);
        assert_eq!(h.series_ref(), r3);
        assert_eq!(head.num_series(), 1);
        let mut app = db.appender();
        assert_eq!(app.append_borrowed(&pairs, T0 + 4, 5.0).unwrap(), r3);
        app.commit().unwrap();
        // A shared handle appends the same way; after GC it finds the recreated series
        // (by labels) each time without being repointed.
        let shared = h.clone();
        let mut app = db.appender();
        assert_eq!(app.append_handle_shared(&shared, T0 + 5, 6.0).unwrap(), r3);
        app.commit().unwrap();
        head.remove_series(&h.series);
        h.series.data.lock().removed = true;
        let mut app = db.appender();
        let r4 = app.append_handle_shared(&shared, T0 + 6, 7.0).unwrap();
        assert_ne!(r4, r3);
        assert_eq!(shared.series_ref(), r3);
        assert_eq!(app.append_handle_shared(&shared, T0 + 7, 8.0).unwrap(), r4);
        app.commit().unwrap();
        assert_eq!(head.num_series(), 1);
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        let got = q.select(&[crate::Matcher::equal("job", "a")]).unwrap();
        assert_eq!(got.len(), 1);
        let last: Vec<f64> = got[0].samples().unwrap().iter().map(|x| x.v).collect();
        assert_eq!(last, vec![7.0, 8.0]);
    }

    #[test]
    fn borrowed_append_validates_like_labels() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        let mut app = db.appender();
        let r = app
            .append_borrowed(&[("__name__", "up"), ("job", "a")], T0, 1.0)
            .unwrap();
        // Unsorted, with an empty-valued label: the same series.
        let same = app
            .append_borrowed(&[("job", "a"), ("x", ""), ("__name__", "up")], T0 + 1, 1.0)
            .unwrap();
        assert_eq!(r, same);
        for bad in [
            &[][..],
            &[("a", "1"), ("a", "2")][..],
            &[("", "x")][..],
            &[("a", "")][..],
        ] {
            assert!(
                matches!(
                    app.append_borrowed(bad, T0 + 2, 1.0),
                    Err(Error::InvalidLabels(_))
                ),
                "{bad:?}"
            );
        }
        // Out-of-order and duplicate rules are those of `append`.
        assert!(matches!(
            app.append_borrowed(&[("__name__", "up"), ("job", "a")], T0, 1.0),
            Err(Error::OutOfOrderSample)
        ));
        assert!(matches!(
            app.append_borrowed(&[("__name__", "up"), ("job", "a")], T0 + 1, 5.0),
            Err(Error::DuplicateSample)
        ));
        app.commit().unwrap();
        assert_eq!(db.head().num_series(), 1);
    }

    /// Series as rendered labels with their samples as `(t, value bits)`.
    type ReadBack = Vec<(String, Vec<(i64, u64)>)>;

    /// Writes the same samples through `append` or `append_borrowed` and returns the WAL
    /// segment bytes and what a reopened database reads back.
    fn write_and_reopen(borrowed: bool) -> (Vec<Vec<u8>>, ReadBack) {
        let dir = tempfile::tempdir().unwrap();
        let series: Vec<Vec<(String, String)>> = (0..300)
            .map(|i| {
                vec![
                    ("__name__".to_string(), format!("m{}", i % 7)),
                    ("instance".to_string(), format!("host{i}")),
                    ("job".to_string(), "node".to_string()),
                ]
            })
            .collect();
        {
            let db = open(dir.path());
            for step in 0..3i64 {
                let mut app = db.appender();
                for (i, s) in series.iter().enumerate() {
                    let t = T0 + step * 15_000;
                    let v = (i as f64) * 1.5 + step as f64;
                    if borrowed {
                        let pairs: Vec<(&str, &str)> =
                            s.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                        app.append_borrowed(&pairs, t, v).unwrap();
                    } else {
                        app.append(&Labels::from_pairs(s).unwrap(), t, v).unwrap();
                    }
                }
                app.commit().unwrap();
            }
            db.close().unwrap();
        }
        let mut segs = Vec::new();
        let mut names: Vec<_> = std::fs::read_dir(dir.path().join("wal"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        for p in names {
            segs.push(std::fs::read(p).unwrap());
        }
        let db = open(dir.path());
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        let mut read: ReadBack = q
            .select(&[Matcher::new(crate::MatchType::Regex, "__name__", ".+").unwrap()])
            .unwrap()
            .iter()
            .map(|s| {
                let smp = s.samples().unwrap();
                (
                    s.labels.to_string(),
                    smp.iter().map(|x| (x.t, x.v.to_bits())).collect(),
                )
            })
            .collect();
        read.sort();
        (segs, read)
    }

    #[test]
    fn borrowed_appends_log_identical_wal_bytes() {
        let (wal_owned, read_owned) = write_and_reopen(false);
        let (wal_borrowed, read_borrowed) = write_and_reopen(true);
        assert_eq!(read_owned.len(), 300);
        assert!(read_owned.iter().all(|(_, s)| s.len() == 3));
        assert_eq!(read_owned, read_borrowed);
        assert!(!wal_owned.is_empty());
        assert_eq!(wal_owned, wal_borrowed);
    }
}
