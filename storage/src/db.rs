//! The database: one directory holding the WAL, `chunks_head/` and persistent blocks.
//! `Db::open` loads blocks, replays the head (repairing a damaged WAL tail) and attaches a
//! WAL writer; `compact` cuts the head into 2h blocks, merges blocks by the leveled plan and
//! applies retention — it runs in the background and never blocks appends; `querier` reads
//! across the head and every overlapping block.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use crate::block::{is_block_dir_name, Block, BlockDesc};
use crate::compact::{self, BlockOrigin, PlanBlock, TMP_CREATION_SUFFIX, TMP_DELETION_SUFFIX};
use crate::error::{Error, Result};
use crate::head::{Appender, Head, HeadOptions, ReplayStats};
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::querier::{merge_series, Querier, Queryable, Series};

/// Options of the database.
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// Blocks entirely older than this (relative to the newest data) are deleted; 0 = off.
    pub retention_ms: i64,
    /// Blocks are deleted, oldest first, while the total size exceeds this; 0 = off.
    pub retention_bytes: u64,
    /// Size of one WAL segment file.
    pub wal_segment_size_bytes: u64,
    /// Snappy-compress WAL records.
    pub wal_compression: bool,
    /// The smallest block range (the head chunk range), 2h.
    pub min_block_duration_ms: i64,
    /// The largest block range compaction produces.
    pub max_block_duration_ms: i64,
    /// Head options besides the chunk range.
    pub max_future_ms: i64,
}

impl Default for DbOptions {
    fn default() -> Self {
        let retention_ms = 15 * 24 * 3600 * 1000;
        DbOptions {
            retention_ms,
            retention_bytes: 0,
            wal_segment_size_bytes: 128 * 1024 * 1024,
            wal_compression: true,
            min_block_duration_ms: 2 * 3600 * 1000,
            max_block_duration_ms: default_max_block_duration(retention_ms),
            max_future_ms: 0,
        }
    }
}

/// Prometheus' default: 10% of retention, at most 31 days, at least the min block range.
pub fn default_max_block_duration(retention_ms: i64) -> i64 {
    let two_h = 2 * 3600 * 1000;
    let max = 31 * 24 * 3600 * 1000;
    if retention_ms <= 0 {
        return max;
    }
    (retention_ms / 10).clamp(two_h, max)
}

/// Database counters for `/metrics`.
#[derive(Default, Debug)]
pub struct DbStats {
    pub compactions: AtomicU64,
    pub compactions_failed: AtomicU64,
    pub compaction_duration_ms_sum: AtomicU64,
    pub head_truncations_failed: AtomicU64,
    pub blocks_deleted_retention_time: AtomicU64,
    pub blocks_deleted_retention_size: AtomicU64,
    pub reloads: AtomicU64,
}

/// The database.
pub struct Db {
    dir: PathBuf,
    opts: DbOptions,
    head: Arc<Head>,
    blocks: RwLock<Arc<Vec<Arc<Block>>>>,
    wal: Arc<vigil_wal::Wal>,
    compact_lock: Mutex<()>,
    replay: ReplayStats,
    /// Held for the life of the Db: an exclusive lock on `<dir>/lock` so that two processes
    /// never open the same directory for writing.
    lock_file: Mutex<Option<std::fs::File>>,
    pub stats: DbStats,
}

/// Name of the lock file in the data directory (as Prometheus).
pub const LOCK_FILENAME: &str = "lock";

fn lock_dir(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join(LOCK_FILENAME);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Other(format!(
            "{} is locked: another process has this data directory open",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Error::io(format!("locking {}", path.display()), e))
        }
    }
}

impl Db {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Arc<Db>> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let lock_file = lock_dir(dir)?;
        remove_tmp_dirs(dir)?;
        let blocks = load_blocks(dir)?;
        let head = Head::new(
            dir,
            HeadOptions {
                chunk_range_ms: opts.min_block_duration_ms,
                max_future_ms: opts.max_future_ms,
            },
        )?;
        if let Some(maxt) = blocks.iter().map(|b| b.meta().max_time).max() {
            head.set_min_valid_time(maxt);
        }
        let replay = head.replay()?;
        let wal = Arc::new(vigil_wal::Wal::open(
            &dir.join("wal"),
            vigil_wal::WalOptions {
                segment_size_bytes: opts.wal_segment_size_bytes,
                compress: opts.wal_compression,
            },
        )?);
        if replay.corruption.is_some() {
            wal.note_corruption();
        }
        head.set_wal(wal.clone())?;
        Ok(Arc::new(Db {
            dir: dir.to_path_buf(),
            opts,
            head: Arc::new(head),
            blocks: RwLock::new(Arc::new(blocks)),
            wal,
            compact_lock: Mutex::new(()),
            replay,
            lock_file: Mutex::new(Some(lock_file)),
            stats: DbStats::default(),
        }))
    }

    /// Opens a data directory for reading only (as `promtool tsdb` does): blocks are loaded
    /// and the head is rebuilt from the WAL into memory, with head chunks written to
    /// `scratch`; nothing in `dir` is created, repaired or deleted. Returns the blocks and
    /// the head; query them with [`ReadOnlyDb`].
    pub fn open_read_only(dir: &Path, scratch: &Path) -> Result<ReadOnlyDb> {
        if !dir.is_dir() {
            return Err(Error::Other(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        let blocks = load_blocks(dir)?;
        let head = Head::with_chunks_dir(dir, scratch, true, HeadOptions::default())?;
        if let Some(maxt) = blocks.iter().map(|b| b.meta().max_time).max() {
            head.set_min_valid_time(maxt);
        }
        head.replay()?;
        Ok(ReadOnlyDb {
            head: Arc::new(head),
            blocks,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &DbOptions {
        &self.opts
    }

    /// The head.
    pub fn head(&self) -> &Arc<Head> {
        &self.head
    }

    /// The WAL writer.
    pub fn wal(&self) -> &Arc<vigil_wal::Wal> {
        &self.wal
    }

    /// What the WAL replay at open found.
    pub fn replay_stats(&self) -> &ReplayStats {
        &self.replay
    }

    /// A snapshot of the current blocks, oldest first.
    pub fn blocks(&self) -> Arc<Vec<Arc<Block>>> {
        self.blocks.read().clone()
    }

    /// A new appender.
    pub fn appender(&self) -> Appender {
        self.head.appender()
    }

    /// Smallest timestamp in the database (blocks or head), if any data exists.
    pub fn min_time(&self) -> Option<i64> {
        let b = self.blocks().iter().map(|b| b.meta().min_time).min();
        let h = (!self.head.is_empty()).then(|| self.head.min_time());
        match (b, h) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Deletes samples of series matching `matchers` in `[mint, maxt]` (tombstones).
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<()> {
        for b in self.blocks().iter() {
            if b.overlaps(mint, maxt) {
                b.delete(matchers, mint, maxt)?;
            }
        }
        self.head.delete(matchers, mint, maxt)?;
        Ok(())
    }

    /// Rewrites blocks that have tombstones without the deleted data.
    pub fn clean_tombstones(&self) -> Result<()> {
        let _g = self.compact_lock.lock();
        for b in self.blocks().iter() {
            if b.num_tombstones() == 0 {
                continue;
            }
            let m = b.meta().clone();
            let series = b.select(&all_matcher(), m.min_time, m.max_time - 1)?;
            let origin = BlockOrigin {
                level: m.compaction.level,
                sources: m.compaction.sources.clone(),
                parents: vec![BlockDesc {
                    ulid: m.ulid.clone(),
                    min_time: m.min_time,
                    max_time: m.max_time,
                }],
            };
            compact::write_block(
                &self.dir,
                &series,
                m.min_time,
                m.max_time,
                self.opts.min_block_duration_ms,
                origin,
            )?;
            self.reload_blocks()?;
            self.delete_block_dirs(&[b.dir().to_path_buf()])?;
        }
        Ok(())
    }

    /// Runs every due compaction: head → 2h blocks, then block merges, then retention.
    pub fn compact(&self) -> Result<()> {
        let _g = self.compact_lock.lock();
        let range = self.opts.min_block_duration_ms;
        // Persist the head while it spans more than 1.5 block ranges.
        loop {
            if self.head.is_empty() {
                break;
            }
            let (hmin, hmax) = (self.head.min_time(), self.head.max_time());
            if hmax - hmin <= range * 3 / 2 {
                break;
            }
            let mint = hmin.div_euclid(range) * range;
            let maxt = mint + range;
            if !self.head.reserve_truncation(maxt) {
                tracing::debug!(
                    maxt,
                    "an open appender holds samples before the range end; head compaction postponed"
                );
                break;
            }
            self.compact_head_range(mint, maxt)?;
        }
        // Merge blocks.
        let ranges = compact::exponential_ranges(range, self.opts.max_block_duration_ms);
        loop {
            let blocks = self.blocks();
            let plan_in: Vec<PlanBlock> = blocks
                .iter()
                .map(|b| PlanBlock {
                    dir: b.dir().to_path_buf(),
                    min_time: b.meta().min_time,
                    max_time: b.meta().max_time,
                })
                .collect();
            let chosen = compact::plan(&plan_in, &ranges);
            if chosen.is_empty() {
                break;
            }
            let picked: Vec<Arc<Block>> = blocks
                .iter()
                .filter(|b| chosen.iter().any(|c| c.dir == b.dir()))
                .cloned()
                .collect();
            self.compact_blocks(&picked)?;
        }
        self.apply_retention()
    }

    /// Writes `[mint, maxt)` of the head into a block, then truncates the head. Does
    /// nothing while an open appender holds uncommitted samples before `maxt`.
    pub fn compact_head_range(&self, mint: i64, maxt: i64) -> Result<()> {
        if !self.head.reserve_truncation(maxt) {
            return Ok(());
        }
        let start = Instant::now();
        let series = head_select(&self.head, &all_matcher(), mint, maxt - 1)?;
        let res = compact::write_block_keep_empty(
            &self.dir,
            &series,
            mint,
            maxt,
            self.opts.min_block_duration_ms,
            BlockOrigin {
                level: 1,
                sources: Vec::new(),
                parents: Vec::new(),
            },
        );
        match res {
            Ok(_) => {
                self.note_compaction(start);
                self.reload_blocks()?;
                if let Err(e) = self.head.truncate(maxt) {
                    self.stats
                        .head_truncations_failed
                        .fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
                Ok(())
            }
            Err(e) => {
                self.stats
                    .compactions_failed
                    .fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    fn compact_blocks(&self, blocks: &[Arc<Block>]) -> Result<()> {
        let start = Instant::now();
        let (Some(mint), Some(maxt)) = (
            blocks.iter().map(|b| b.meta().min_time).min(),
            blocks.iter().map(|b| b.meta().max_time).max(),
        ) else {
            return Ok(());
        };
        let sources = blocks
            .iter()
            .map(|b| b.select(&all_matcher(), mint, maxt - 1))
            .collect::<Result<Vec<_>>>()?;
        let series = merge_series(sources);
        let mut srcs: Vec<String> = blocks
            .iter()
            .flat_map(|b| b.meta().compaction.sources.iter().cloned())
            .collect();
        srcs.sort();
        srcs.dedup();
        let origin = BlockOrigin {
            level: blocks
                .iter()
                .map(|b| b.meta().compaction.level)
                .max()
                .unwrap_or(1)
                + 1,
            sources: srcs,
            parents: blocks
                .iter()
                .map(|b| BlockDesc {
                    ulid: b.meta().ulid.clone(),
                    min_time: b.meta().min_time,
                    max_time: b.meta().max_time,
                })
                .collect(),
        };
        let res = compact::write_block(
            &self.dir,
            &series,
            mint,
            maxt,
            self.opts.min_block_duration_ms,
            origin,
        );
        if let Err(e) = res {
            self.stats
                .compactions_failed
                .fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        self.note_compaction(start);
        // Make the new block visible before the old ones disappear, so that no query sees
        // neither (overlapping blocks are deduplicated by the querier meanwhile).
        self.reload_blocks()?;
        let dirs: Vec<PathBuf> = blocks.iter().map(|b| b.dir().to_path_buf()).collect();
        self.delete_block_dirs(&dirs)
    }

    fn note_compaction(&self, start: Instant) {
        self.stats.compactions.fetch_add(1, Ordering::Relaxed);
        self.stats
            .compaction_duration_ms_sum
            .fetch_add(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Deletes blocks beyond the time and size retention.
    fn apply_retention(&self) -> Result<()> {
        let blocks = self.blocks();
        let mut doomed: Vec<PathBuf> = Vec::new();
        if self.opts.retention_ms > 0 {
            if let Some(newest) = blocks.iter().map(|b| b.meta().max_time).max() {
                for b in blocks.iter() {
                    if newest - b.meta().max_time > self.opts.retention_ms {
                        doomed.push(b.dir().to_path_buf());
                        self.stats
                            .blocks_deleted_retention_time
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        if self.opts.retention_bytes > 0 {
            let mut total: u64 = crate::block::dir_size(&self.dir.join("wal"))
                + crate::block::dir_size(&self.dir.join("chunks_head"));
            let mut newest_first: Vec<&Arc<Block>> = blocks.iter().collect();
            newest_first.sort_by_key(|b| std::cmp::Reverse(b.meta().max_time));
            for b in newest_first {
                total += b.size_bytes();
                if total > self.opts.retention_bytes && !doomed.iter().any(|d| d == b.dir()) {
                    doomed.push(b.dir().to_path_buf());
                    self.stats
                        .blocks_deleted_retention_size
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if doomed.is_empty() {
            return Ok(());
        }
        self.delete_block_dirs(&doomed)?;
        self.reload_blocks()
    }

    fn delete_block_dirs(&self, dirs: &[PathBuf]) -> Result<()> {
        {
            let mut cur = self.blocks.write();
            let kept: Vec<Arc<Block>> = cur
                .iter()
                .filter(|b| !dirs.iter().any(|d| d == b.dir()))
                .cloned()
                .collect();
            *cur = Arc::new(kept);
        }
        for d in dirs {
            let Some(name) = d.file_name() else { continue };
            let tmp = d.with_file_name(format!("{}{TMP_DELETION_SUFFIX}", name.to_string_lossy()));
            crate::fs::rename_atomic(d, &tmp)?;
            std::fs::remove_dir_all(&tmp)
                .map_err(|e| Error::io(format!("deleting {}", tmp.display()), e))?;
        }
        Ok(())
    }

    /// Re-reads the block directories, keeping already-open blocks.
    pub fn reload_blocks(&self) -> Result<()> {
        let mut cur = self.blocks.write();
        let mut out: Vec<Arc<Block>> = Vec::new();
        for dir in block_dirs(&self.dir)? {
            if let Some(b) = cur.iter().find(|b| b.dir() == dir) {
                out.push(b.clone());
                continue;
            }
            out.push(Arc::new(Block::open(&dir)?));
        }
        out.sort_by_key(|b| b.meta().min_time);
        *cur = Arc::new(out);
        self.stats.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Syncs the head chunk files (the WAL is synced on every commit) and releases the
    /// data-directory lock. Commits fail with `Error::Closed` afterwards.
    pub fn close(&self) -> Result<()> {
        let _g = self.compact_lock.lock();
        self.head.close();
        if let Some(wal) = self.head.wal() {
            // Unsynced commits (rule outputs) become durable now.
            wal.sync()?;
        }
        self.head.chunk_writer.lock().sync()?;
        // Release the directory lock: another Db (or process) may open it now.
        self.lock_file.lock().take();
        Ok(())
    }
}

/// Series of the head matching `matchers` with data in `[mint, maxt]`, sorted by labels,
/// including every commit (for compaction).
fn head_select(head: &Head, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>> {
    head.select(matchers, mint, maxt)
}

/// A matcher selecting every series.
pub fn all_matcher() -> Vec<Matcher> {
    vec![Matcher::new(crate::MatchType::Regex, "", ".*").unwrap_or_else(|_| Matcher::equal("", ""))]
}

fn block_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let rd =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if is_block_dir_name(&name) && e.path().join(crate::block::META_FILENAME).exists() {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

fn load_blocks(dir: &Path) -> Result<Vec<Arc<Block>>> {
    let mut out = Vec::new();
    for d in block_dirs(dir)? {
        out.push(Arc::new(Block::open(&d)?));
    }
    out.sort_by_key(|b| b.meta().min_time);
    Ok(out)
}

fn remove_tmp_dirs(dir: &Path) -> Result<()> {
    let rd =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(TMP_CREATION_SUFFIX) || name.ends_with(TMP_DELETION_SUFFIX) {
            tracing::info!(dir = %e.path().display(), "removing leftover temporary block directory");
            std::fs::remove_dir_all(e.path())
                .map_err(|er| Error::io(format!("removing {}", e.path().display()), er))?;
        }
    }
    Ok(())
}

/// A data directory opened by [`Db::open_read_only`].
pub struct ReadOnlyDb {
    head: Arc<Head>,
    blocks: Vec<Arc<Block>>,
}

impl ReadOnlyDb {
    /// The blocks, oldest first.
    pub fn blocks(&self) -> &[Arc<Block>] {
        &self.blocks
    }

    /// The head rebuilt from the WAL.
    pub fn head(&self) -> &Arc<Head> {
        &self.head
    }
}

impl Queryable for ReadOnlyDb {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>> {
        Ok(Box::new(DbQuerier::new(
            &self.head,
            &self.blocks,
            mint,
            maxt,
        )))
    }
}

/// A querier over the head and the blocks overlapping its range.
pub struct DbQuerier<'a> {
    head: &'a Head,
    blocks: Vec<Arc<Block>>,
    mint: i64,
    maxt: i64,
    /// Head commits this querier may see (taken when it was created).
    snapshot: u64,
}

impl Queryable for Db {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>> {
        Ok(Box::new(DbQuerier::new(
            &self.head,
            &self.blocks(),
            mint,
            maxt,
        )))
    }
}

impl<'a> DbQuerier<'a> {
    fn new(head: &'a Head, blocks: &[Arc<Block>], mint: i64, maxt: i64) -> Self {
        DbQuerier {
            head,
            blocks: blocks
                .iter()
                .filter(|b| b.overlaps(mint, maxt))
                .cloned()
                .collect(),
            mint,
            maxt,
            snapshot: head.isolation_snapshot(),
        }
    }

    /// Head series matching `matchers` as of this querier's isolation snapshot.
    fn head_select(&self, matchers: &[Matcher]) -> Result<Vec<Series>> {
        self.head
            .select_isolated(matchers, self.mint, self.maxt, self.snapshot)
    }

    fn head_in_range(&self) -> bool {
        !self.head.is_empty()
            && self.head.min_time() <= self.maxt
            && self.head.max_time() >= self.mint
    }
}

impl Querier for DbQuerier<'_> {
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>> {
        let mut sources = Vec::with_capacity(self.blocks.len() + 1);
        for b in &self.blocks {
            sources.push(b.select(matchers, self.mint, self.maxt)?);
        }
        if self.head_in_range() {
            sources.push(self.head_select(matchers)?);
        }
        Ok(merge_series(sources))
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut set = std::collections::BTreeSet::new();
        for b in &self.blocks {
            set.extend(b.label_names(matchers)?);
        }
        if self.head_in_range() {
            if matchers.is_empty() {
                set.extend(self.head.label_names());
            } else {
                for s in self.head_select(matchers)? {
                    set.extend(s.labels.iter().map(|l| l.name.to_string()));
                }
            }
        }
        Ok(set.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        let mut set = std::collections::BTreeSet::new();
        for b in &self.blocks {
            set.extend(b.label_values(name, matchers)?);
        }
        if self.head_in_range() {
            if matchers.is_empty() {
                set.extend(crate::index::PostingsSource::label_values(self.head, name)?);
            } else {
                for s in self.head_select(matchers)? {
                    if let Some(v) = s.labels.get(name) {
                        set.insert(v.to_string());
                    }
                }
            }
        }
        Ok(set.into_iter().collect())
    }
}

/// Labels of every series in the head (for status pages), unsorted.
pub fn head_series_labels(head: &Head) -> Vec<Labels> {
    head.all_series().iter().map(|s| s.labels.clone()).collect()
}
