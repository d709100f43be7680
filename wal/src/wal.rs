//! The shared, appendable WAL: group commit over a [`SegmentWriter`], rotation, truncation,
//! poisoning. Many threads call [`Wal::log`]; callers that arrive while a flush is in
//! progress queue their records, and the next leader writes the whole queue with one
//! write + one fsync (leader/follower on a parking_lot Mutex + Condvar). Must never
//! acknowledge a record before its fsync, never retry a failed write or fsync (it poisons
//! the WAL), and never append to a segment that existed before `open`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, IoContext, Result};
use crate::format::{list_segments, DEFAULT_SEGMENT_SIZE_BYTES};
use crate::fsutil::{sync_dir, sync_parent};
use crate::stats::{Counters, WalStats};
use crate::writer::{pages_per_segment, segment_capacity, SegmentWriter};

/// How the WAL writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// Size limit of one segment file; a positive multiple of the 32 KiB page.
    pub segment_size_bytes: u64,
    /// Snappy-compress records (only those that get smaller).
    pub compress: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            compress: true,
        }
    }
}

/// Records waiting for the next group commit, and the commit bookkeeping.
struct Queue {
    /// Concatenated records of the batch being filled.
    data: Vec<u8>,
    /// End offset in `data` of each queued record.
    ends: Vec<usize>,
    /// Buffers handed back by the last leader, reused to avoid allocation.
    spare_data: Vec<u8>,
    spare_ends: Vec<usize>,
    /// Number of the batch currently being filled (batches start at 1).
    filling: u64,
    /// Highest batch number that is durable.
    durable: u64,
    /// A leader is writing a batch right now.
    leader: bool,
    poisoned: Option<String>,
}

/// The write-ahead log. `Send + Sync`; share it as `Arc<Wal>`.
pub struct Wal {
    dir: PathBuf,
    record_capacity: u64,
    queue: Mutex<Queue>,
    committed: Condvar,
    writer: Mutex<SegmentWriter>,
    counters: Arc<Counters>,
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir` and starts a new segment numbered one
    /// past the last existing one. Existing segments are never written again.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<Wal> {
        let pages = pages_per_segment(opts.segment_size_bytes)?;
        if !dir.exists() {
            fs::create_dir_all(dir).ctx(|| format!("create WAL directory {}", dir.display()))?;
            sync_parent(dir)?;
        }
        let next = list_segments(dir)?.last().map_or(0, |(i, _)| i + 1);
        let counters = Arc::new(Counters::default());
        let writer = SegmentWriter::create(
            dir,
            next,
            opts.segment_size_bytes,
            opts.compress,
            counters.clone(),
        )?;
        tracing::debug!(dir = %dir.display(), segment = next, "WAL opened");
        Ok(Wal {
            dir: dir.to_path_buf(),
            record_capacity: segment_capacity(pages),
            queue: Mutex::new(Queue {
                data: Vec::new(),
                ends: Vec::new(),
                spare_data: Vec::new(),
                spare_ends: Vec::new(),
                filling: 1,
                durable: 0,
                leader: false,
                poisoned: None,
            }),
            committed: Condvar::new(),
            writer: Mutex::new(writer),
            counters,
        })
    }

    /// Appends `records` and returns once they are written and fsynced. Concurrent
    /// callers share one write + fsync. The records of one call stay together and in
    /// order. After a failed write or fsync every call returns `Error::Poisoned`.
    pub fn log(&self, records: &[&[u8]]) -> Result<()> {
        if let Some(r) = records
            .iter()
            .find(|r| r.len() as u64 > self.record_capacity)
        {
            return Err(Error::RecordTooLarge(r.len()));
        }
        let mut q = self.queue.lock();
        if let Some(p) = &q.poisoned {
            return Err(Error::Poisoned(p.clone()));
        }
        if records.is_empty() {
            return Ok(());
        }
        for r in records {
            q.data.extend_from_slice(r);
            let end = q.data.len();
            q.ends.push(end);
        }
        let my_batch = q.filling;
        loop {
            if q.durable >= my_batch {
                return Ok(());
            }
            if let Some(p) = &q.poisoned {
                return Err(Error::Poisoned(p.clone()));
            }
            if !q.leader {
                q.leader = true;
                let batch = q.filling;
                q.filling += 1;
                let spare_data = std::mem::take(&mut q.spare_data);
                let spare_ends = std::mem::take(&mut q.spare_ends);
                let mut data = std::mem::replace(&mut q.data, spare_data);
                let mut ends = std::mem::replace(&mut q.ends, spare_ends);
                drop(q);

                let result = self.write_batch(&data, &ends);

                data.clear();
                ends.clear();
                q = self.queue.lock();
                q.leader = false;
                q.spare_data = data;
                q.spare_ends = ends;
                match result {
                    Ok(()) => q.durable = batch,
                    Err(e) => {
                        Counters::add(&self.counters.writes_failed, 1);
                        tracing::error!(error = %e, "WAL write failed; WAL is now poisoned");
                        q.poisoned = Some(e.to_string());
                        self.committed.notify_all();
                        return Err(e);
                    }
                }
                self.committed.notify_all();
                continue;
            }
            self.committed.wait(&mut q);
        }
    }

    /// Appends `records` and hands them to the operating system without waiting for an
    /// fsync: they survive a crash of the process but not of the machine until the next
    /// synced [`Wal::log`] (which fsyncs the same segment) or segment cut. For data that is
    /// recomputed anyway, such as recording-rule outputs: Prometheus never fsyncs those
    /// either. The records of one call stay together and in order.
    pub fn log_unsynced(&self, records: &[&[u8]]) -> Result<()> {
        if let Some(r) = records
            .iter()
            .find(|r| r.len() as u64 > self.record_capacity)
        {
            return Err(Error::RecordTooLarge(r.len()));
        }
        self.check_poisoned()?;
        if records.is_empty() {
            return Ok(());
        }
        let mut w = self.writer.lock();
        let result = records
            .iter()
            .try_for_each(|r| w.append(r))
            .and_then(|()| w.flush());
        match result {
            Ok(()) => {
                Counters::add(&self.counters.records_written, records.len() as u64);
                Ok(())
            }
            Err(e) => {
                drop(w);
                tracing::error!(error = %e, "WAL write failed; WAL is now poisoned");
                self.poison(&e);
                Err(e)
            }
        }
    }

    /// Fsyncs what [`Wal::log_unsynced`] wrote (a clean shutdown calls this).
    pub fn sync(&self) -> Result<()> {
        self.check_poisoned()?;
        let mut w = self.writer.lock();
        w.sync().inspect_err(|e| self.poison(e))
    }

    /// Writes one batch and fsyncs it. Called by the leader only.
    fn write_batch(&self, data: &[u8], ends: &[usize]) -> Result<()> {
        let mut w = self.writer.lock();
        let mut start = 0;
        for &end in ends {
            w.append(&data[start..end])?;
            start = end;
        }
        w.sync()?;
        Counters::add(&self.counters.records_written, ends.len() as u64);
        Counters::add(&self.counters.group_commits, 1);
        Ok(())
    }

    fn check_poisoned(&self) -> Result<()> {
        match &self.queue.lock().poisoned {
            Some(p) => Err(Error::Poisoned(p.clone())),
            None => Ok(()),
        }
    }

    fn poison(&self, e: &Error) {
        Counters::add(&self.counters.writes_failed, 1);
        let mut q = self.queue.lock();
        q.poisoned.get_or_insert_with(|| e.to_string());
        self.committed.notify_all();
    }

    /// Finishes the current segment (padded, fsynced, closed) and starts the next one.
    /// Returns the new segment's index.
    pub fn next_segment(&self) -> Result<u64> {
        let mut w = self.writer.lock();
        self.check_poisoned()?;
        w.rotate().inspect_err(|e| self.poison(e))
    }

    /// First and last segment index on disk.
    pub fn segment_range(&self) -> Result<(u64, u64)> {
        let segs = list_segments(&self.dir)?;
        match (segs.first(), segs.last()) {
            (Some((first, _)), Some((last, _))) => Ok((*first, *last)),
            _ => Err(Error::MissingSegment {
                dir: self.dir.clone(),
                segment: self.counters.current_segment.load(Ordering::Relaxed),
            }),
        }
    }

    /// Deletes segments with index < `below`. The segment being written is never deleted
    /// (`below` is capped at its index).
    pub fn truncate(&self, below: u64) -> Result<()> {
        Counters::add(&self.counters.truncations, 1);
        let result = self.truncate_inner(below);
        if result.is_err() {
            Counters::add(&self.counters.truncations_failed, 1);
        }
        result
    }

    fn truncate_inner(&self, below: u64) -> Result<()> {
        let current = self.counters.current_segment.load(Ordering::Relaxed);
        let below = below.min(current);
        let mut removed = 0;
        for (index, path) in list_segments(&self.dir)? {
            if index >= below {
                break;
            }
            fs::remove_file(&path).ctx(|| format!("delete WAL segment {}", path.display()))?;
            removed += 1;
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        tracing::debug!(below, removed, "WAL truncated");
        Ok(())
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Pads the last page, fsyncs and closes the current segment.
    pub fn close(self) -> Result<()> {
        self.check_poisoned()?;
        let mut w = self.writer.lock();
        w.finish().inspect_err(|e| self.poison(e))
    }

    /// Counters for `/metrics`; cheap (relaxed atomic loads).
    pub fn stats(&self) -> WalStats {
        self.counters.snapshot()
    }

    /// Counts a corruption found while replaying this WAL
    /// (`prometheus_tsdb_wal_corruptions_total`).
    pub fn note_corruption(&self) {
        Counters::add(&self.counters.corruptions, 1);
    }

    /// Index of the segment currently written.
    pub fn current_segment(&self) -> u64 {
        self.counters.current_segment.load(Ordering::Relaxed)
    }

    /// Test hook: makes the next write fail as if the disk returned an error.
    #[cfg(test)]
    pub(crate) fn inject_write_failure(&self) {
        self.writer.lock().inject_failure();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Reader;

    fn small_opts() -> WalOptions {
        WalOptions {
            segment_size_bytes: 4 * crate::PAGE_SIZE as u64,
            compress: false,
        }
    }

    #[test]
    fn failed_write_poisons_every_later_call() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), small_opts()).unwrap();
        wal.log(&[b"before"]).unwrap();
        wal.inject_write_failure();
        let first = wal.log(&[b"fails"]);
        assert!(matches!(first, Err(Error::Io { .. })), "{first:?}");
        assert!(matches!(wal.log(&[b"after"]), Err(Error::Poisoned(_))));
        assert!(matches!(wal.log(&[]), Err(Error::Poisoned(_))));
        assert!(matches!(wal.next_segment(), Err(Error::Poisoned(_))));
        assert_eq!(wal.stats().writes_failed, 1);
        assert!(matches!(wal.close(), Err(Error::Poisoned(_))));
        // What was acknowledged before the failure is still readable.
        let mut r = Reader::open(dir.path(), 0, None).unwrap();
        let mut buf = Vec::new();
        assert!(r.next_record(&mut buf).unwrap());
        assert_eq!(buf, b"before");
        assert!(!r.next_record(&mut buf).unwrap());
    }

    #[test]
    fn waiting_followers_see_the_poison() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Arc::new(Wal::open(dir.path(), small_opts()).unwrap());
        wal.inject_write_failure();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let wal = wal.clone();
                std::thread::spawn(move || wal.log(&[b"x"]))
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        // Exactly one caller led the failed flush and saw the I/O error; every other
        // caller either shared that batch or came later, and is told the WAL is poisoned.
        let io = results
            .iter()
            .filter(|r| matches!(r, Err(Error::Io { .. })))
            .count();
        let poisoned = results
            .iter()
            .filter(|r| matches!(r, Err(Error::Poisoned(_))))
            .count();
        assert_eq!((io, poisoned), (1, 3), "{results:?}");
    }

    #[test]
    fn unsynced_records_are_readable_without_close_and_interleave_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), small_opts()).unwrap();
        wal.log(&[b"synced-1"]).unwrap();
        wal.log_unsynced(&[b"rule-1", b"rule-2"]).unwrap();
        wal.log(&[b"synced-2"]).unwrap();
        // Larger than a page: fragmented, still handed to the file at once.
        let big = vec![7u8; 3 * crate::PAGE_SIZE];
        wal.log_unsynced(&[&big]).unwrap();
        assert_eq!(wal.stats().group_commits, 2);
        // A reader sees everything without the WAL being closed or synced again (the
        // process could be killed here: the bytes are in the file).
        let mut r = Reader::open(dir.path(), 0, None).unwrap();
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while r.next_record(&mut buf).unwrap() {
            got.push(buf.clone());
        }
        let want: Vec<Vec<u8>> = vec![
            b"synced-1".to_vec(),
            b"rule-1".to_vec(),
            b"rule-2".to_vec(),
            b"synced-2".to_vec(),
            big,
        ];
        assert_eq!(got, want);
        assert!(matches!(
            wal.log_unsynced(&[&vec![0u8; 5 * crate::PAGE_SIZE]]),
            Err(Error::RecordTooLarge(_))
        ));
        wal.inject_write_failure();
        assert!(wal.log_unsynced(&[b"x"]).is_err());
        assert!(matches!(wal.log(&[b"y"]), Err(Error::Poisoned(_))));
    }

    #[test]
    fn truncate_never_deletes_the_active_segment() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), small_opts()).unwrap();
        wal.log(&[b"a"]).unwrap();
        assert_eq!(wal.next_segment().unwrap(), 1);
        assert_eq!(wal.next_segment().unwrap(), 2);
        wal.truncate(100).unwrap();
        assert_eq!(wal.segment_range().unwrap(), (2, 2));
        wal.log(&[b"b"]).unwrap();
        let stats = wal.stats();
        assert_eq!(stats.truncations, 1);
        assert_eq!(stats.current_segment, 2);
        wal.close().unwrap();
    }
}

#[cfg(test)]
mod assert_traits {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    #[test]
    fn wal_is_send_and_sync() {
        send_sync::<super::Wal>();
        send::<super::super::Reader>();
    }
}
