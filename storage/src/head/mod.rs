//! The head: the in-memory, writable part of the database covering the most recent
//! samples. Series are found by label hash in stripe-locked shards and by reference in
//! stripe-locked maps (never one global lock); label strings are interned; roaring postings
//! per label pair answer matchers; each series keeps one open XOR chunk in memory and moves
//! full chunks to memory-mapped `chunks_head/` files so head memory stays small.
//!
//! Every append is logged to the WAL before it becomes visible (see `append.rs`); `replay.rs`
//! rebuilds the head from `chunks_head/`, the last checkpoint and the WAL; `truncate.rs`
//! drops data that has been persisted into blocks. The head never writes blocks itself.

mod append;
mod cardinality;
mod isolation;
mod read;
mod replay;
mod series;
mod truncate;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use roaring::RoaringBitmap;

use crate::chunks::{HeadChunkReader, HeadChunkWriter};
use crate::error::{Error, Result};
use crate::labels::{hash_label_pairs, Label, Labels};
use crate::record::RefMetadata;

pub use append::now_ms;
pub use append::{Appender, CommitStats, SeriesHandle};
pub use cardinality::CardinalityStats;
pub use isolation::SEE_ALL;
pub use read::HeadSeriesData;
pub use replay::ReplayStats;
pub(crate) use series::MemSeries;
pub use series::{ChunkCutter, SAMPLES_PER_CHUNK};
pub use truncate::TruncateStats;

/// Number of lock stripes for the series maps (a power of two).
const STRIPES: usize = 256;

/// Options of the head.
#[derive(Clone, Debug)]
pub struct HeadOptions {
    /// Length of one block range and the span a head chunk may cover, in ms (2h).
    pub chunk_range_ms: i64,
    /// Samples further than this in the future of the wall clock are rejected (ms); 0 = off.
    pub max_future_ms: i64,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            chunk_range_ms: 2 * 3600 * 1000,
            max_future_ms: 0,
        }
    }
}

/// Counters of the head, exposed on `/metrics` under Prometheus' names.
#[derive(Default, Debug)]
pub struct HeadStats {
    pub samples_appended: AtomicU64,
    pub series_created: AtomicU64,
    pub series_removed: AtomicU64,
    pub out_of_order_samples: AtomicU64,
    pub out_of_bounds_samples: AtomicU64,
    pub duplicate_samples: AtomicU64,
    pub too_far_in_future_samples: AtomicU64,
    pub chunks_created: AtomicU64,
    pub chunks_removed: AtomicU64,
    pub truncations: AtomicU64,
    pub wal_replay_unknown_refs: AtomicU64,
}

/// Postings of the head: label name → label value → series ids.
#[derive(Default)]
pub(crate) struct MemPostings {
    map: HashMap<Arc<str>, HashMap<Arc<str>, RoaringBitmap>>,
    all: RoaringBitmap,
}

impl MemPostings {
    fn add(&mut self, id: u32, labels: &Labels) {
        for l in labels {
            self.map
                .entry(l.name.clone())
                .or_default()
                .entry(l.value.clone())
                .or_default()
                .insert(id);
        }
        self.all.insert(id);
    }

    fn remove(&mut self, id: u32, labels: &Labels) {
        for l in labels {
            if let Some(vals) = self.map.get_mut(&*l.name) {
                if let Some(b) = vals.get_mut(&*l.value) {
                    b.remove(id);
                    if b.is_empty() {
                        vals.remove(&*l.value);
                    }
                }
                if vals.is_empty() {
                    self.map.remove(&*l.name);
                }
            }
        }
        self.all.remove(id);
    }
}

/// Interned label strings shared by all head series.
#[derive(Default)]
struct Symbols {
    set: HashSet<Arc<str>, SeriesMapHasher>,
}

impl Symbols {
    /// The shared copy of `s`, allocated only the first time it is seen.
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(x) = self.set.get(s) {
            return x.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.set.insert(a.clone());
        a
    }
}

/// The hasher of the head's in-memory maps: foldhash with a fixed seed (fast, good mixing
/// of all 64 key bits, which matters because keys within one stripe share their low bits).
/// SipHash cost more than the rest of a lookup on the append path.
type SeriesMapHasher = foldhash::fast::FixedState;

/// Series by lookup hash within one stripe. The first series of each hash sits in a map
/// of 16-byte buckets (hash, pointer), so a probe touches as few cache lines as possible;
/// further series with the same 64-bit hash — practically never seen — go to a side map
/// that is empty otherwise. Invariant: `more` has an entry only for a hash in `first`.
#[derive(Default)]
struct SeriesByHash {
    first: HashMap<u64, Arc<MemSeries>, SeriesMapHasher>,
    more: HashMap<u64, Vec<Arc<MemSeries>>, SeriesMapHasher>,
}

impl SeriesByHash {
    /// The series with lookup hash `hash` for which `is` holds.
    #[inline]
    fn find(&self, hash: u64, mut is: impl FnMut(&MemSeries) -> bool) -> Option<&Arc<MemSeries>> {
        let s = self.first.get(&hash)?;
        if is(s) {
            return Some(s);
        }
        self.more.get(&hash)?.iter().find(|s| is(s))
    }

    fn insert(&mut self, hash: u64, s: Arc<MemSeries>) {
        match self.first.entry(hash) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(s);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.more.entry(hash).or_default().push(s);
            }
        }
    }

    /// Removes the series with reference `r` and lookup hash `hash`, if present.
    fn remove(&mut self, hash: u64, r: u64) {
        if self.first.get(&hash).is_some_and(|s| s.series_ref == r) {
            self.first.remove(&hash);
            if let Some(mut v) = self.more.remove(&hash) {
                let promoted = v.swap_remove(0);
                self.first.insert(hash, promoted);
                if !v.is_empty() {
                    self.more.insert(hash, v);
                }
            }
        } else if let Some(v) = self.more.get_mut(&hash) {
            v.retain(|x| x.series_ref != r);
            if v.is_empty() {
                self.more.remove(&hash);
            }
        }
    }
}

type Stripe = RwLock<HashMap<u64, Arc<MemSeries>, SeriesMapHasher>>;
type HashStripe = RwLock<SeriesByHash>;

/// The head block.
pub struct Head {
    opts: HeadOptions,
    dir: PathBuf,
    chunks_dir: PathBuf,
    read_only: bool,
    /// Series by reference, striped by ref.
    by_ref: Box<[Stripe]>,
    /// Series by label hash, striped by hash.
    by_hash: Box<[HashStripe]>,
    postings: RwLock<MemPostings>,
    symbols: Mutex<Symbols>,
    metadata: RwLock<HashMap<u64, RefMetadata>>,
    next_ref: AtomicU64,
    num_series: AtomicU64,
    min_time: AtomicI64,
    max_time: AtomicI64,
    /// Samples older than this are out of bounds (set after truncation).
    min_valid_time: AtomicI64,
    /// Oldest uncommitted timestamp of each open appender, by appender id. Head compaction
    /// never raises `min_valid_time` past one of them: the commit would land below the
    /// head's floor, outside any block, and WAL replay would skip it after a restart.
    pending_mins: Mutex<HashMap<u64, i64>>,
    next_appender_id: AtomicU64,
    pub(crate) chunk_writer: Mutex<HeadChunkWriter>,
    pub(crate) chunk_reader: HeadChunkReader,
    wal: std::sync::OnceLock<Arc<vigil_wal::Wal>>,
    tombstones: RwLock<HashMap<u64, Vec<(i64, i64)>>>,
    /// Set by `Db::close`: commits fail with `Error::Closed` afterwards.
    closed: std::sync::atomic::AtomicBool,
    /// Commit ordering for read isolation (no query sees part of a commit).
    pub(crate) isolation: isolation::Isolation,
    pub stats: HeadStats,
}

impl Head {
    /// Opens the head over `dir` (the database directory): `chunks_head/` is opened for
    /// writing and the WAL is used for logging. Call `replay` before appending.
    pub fn new(dir: &Path, opts: HeadOptions) -> Result<Head> {
        Head::with_chunks_dir(dir, &dir.join("chunks_head"), false, opts)
    }

    /// A head whose `chunks_head/` files live in `chunks_dir`. A read-only head (for tools
    /// reading a live or crashed data directory) replays only the WAL, never repairs it, and
    /// writes its chunks to `chunks_dir`, which the caller points at a scratch directory.
    pub fn with_chunks_dir(
        dir: &Path,
        chunks_dir: &Path,
        read_only: bool,
        opts: HeadOptions,
    ) -> Result<Head> {
        let chunk_writer = HeadChunkWriter::open(chunks_dir)?;
        let chunk_reader = chunk_writer.reader();
        Ok(Head {
            opts,
            dir: dir.to_path_buf(),
            chunks_dir: chunks_dir.to_path_buf(),
            read_only,
            by_ref: (0..STRIPES)
                .map(|_| RwLock::new(HashMap::default()))
                .collect(),
            by_hash: (0..STRIPES)
                .map(|_| RwLock::new(SeriesByHash::default()))
                .collect(),
            postings: RwLock::new(MemPostings::default()),
            symbols: Mutex::new(Symbols::default()),
            metadata: RwLock::new(HashMap::new()),
            next_ref: AtomicU64::new(1),
            num_series: AtomicU64::new(0),
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            min_valid_time: AtomicI64::new(i64::MIN),
            pending_mins: Mutex::new(HashMap::new()),
            next_appender_id: AtomicU64::new(1),
            chunk_writer: Mutex::new(chunk_writer),
            chunk_reader,
            wal: std::sync::OnceLock::new(),
            tombstones: RwLock::new(HashMap::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
            isolation: isolation::Isolation::default(),
            stats: HeadStats::default(),
        })
    }

    /// The isolation snapshot for a reader created now: it sees every commit that has
    /// finished and nothing of one still applying (pass it to [`Head::select`]).
    pub fn isolation_snapshot(&self) -> u64 {
        self.isolation.snapshot()
    }

    /// The head's options.
    pub fn options(&self) -> &HeadOptions {
        &self.opts
    }

    /// The database directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Refuses all later commits (the database is closing).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The WAL, if the head logs.
    pub fn wal(&self) -> Option<&Arc<vigil_wal::Wal>> {
        self.wal.get()
    }

    /// Attaches the WAL writer after replay; from then on every commit is logged.
    pub fn set_wal(&self, wal: Arc<vigil_wal::Wal>) -> Result<()> {
        self.wal
            .set(wal)
            .map_err(|_| Error::Other("head WAL already attached".into()))
    }

    /// Marks `[mint, maxt]` of series `r` deleted (in memory; the caller logs it).
    pub(crate) fn add_tombstone(&self, r: u64, mint: i64, maxt: i64) {
        let mut t = self.tombstones.write();
        let v = t.entry(r).or_default();
        v.push((mint, maxt));
        crate::tombstones::normalize_intervals(v);
    }

    fn remove_tombstones(&self, r: u64) {
        self.tombstones.write().remove(&r);
    }

    fn truncate_tombstones(&self, mint: i64) {
        let mut t = self.tombstones.write();
        t.retain(|_, v| {
            v.retain(|iv| iv.1 >= mint);
            !v.is_empty()
        });
    }

    /// Deleted intervals of series `r`.
    pub fn tombstones_for(&self, r: u64) -> Vec<(i64, i64)> {
        self.tombstones.read().get(&r).cloned().unwrap_or_default()
    }

    /// Deletes the samples of every series matching `matchers` within `[mint, maxt]`:
    /// logs tombstones to the WAL, then records them in memory.
    pub fn delete(&self, matchers: &[crate::Matcher], mint: i64, maxt: i64) -> Result<u64> {
        let ids = crate::index::postings_for_matchers(self, matchers)?;
        let stones: Vec<crate::record::RefTombstone> = ids
            .iter()
            .map(|id| crate::record::RefTombstone {
                series_ref: u64::from(id),
                mint,
                maxt,
            })
            .collect();
        if stones.is_empty() {
            return Ok(0);
        }
        if let Some(wal) = self.wal() {
            let mut b = Vec::new();
            crate::record::encode_tombstones(&stones, &mut b);
            wal.log(&[&b])?;
        }
        for s in &stones {
            self.add_tombstone(s.series_ref, mint, maxt);
        }
        Ok(stones.len() as u64)
    }

    /// A new appender. Appends become visible and durable at `commit`.
    pub fn appender(self: &Arc<Self>) -> Appender {
        Appender::new(self.clone())
    }

    /// Number of series in the head.
    pub fn num_series(&self) -> u64 {
        self.num_series.load(Ordering::Relaxed)
    }

    /// Smallest sample timestamp in the head (i64::MAX when empty).
    pub fn min_time(&self) -> i64 {
        self.min_time.load(Ordering::Relaxed)
    }

    /// Largest sample timestamp in the head (i64::MIN when empty).
    pub fn max_time(&self) -> i64 {
        self.max_time.load(Ordering::Relaxed)
    }

    /// Whether the head holds no samples.
    pub fn is_empty(&self) -> bool {
        self.min_time() > self.max_time()
    }

    /// The oldest timestamp an append may have: samples before it are out of bounds.
    pub fn min_valid_time(&self) -> i64 {
        let mvt = self.min_valid_time.load(Ordering::Relaxed);
        let max = self.max_time();
        if max == i64::MIN {
            return mvt;
        }
        mvt.max(max.saturating_sub(self.opts.chunk_range_ms / 2))
    }

    pub(crate) fn set_min_valid_time(&self, t: i64) {
        self.min_valid_time.fetch_max(t, Ordering::Relaxed);
    }

    pub(crate) fn new_appender_id(&self) -> u64 {
        self.next_appender_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Records that appender `id` will commit a sample at `t`. Fails with `OutOfBounds` when
    /// `t` is below the truncation floor; checked under the lock that
    /// [`Head::reserve_truncation`] takes, so the two cannot interleave.
    pub(crate) fn hold_pending(&self, id: u64, t: i64) -> Result<()> {
        let mut p = self.pending_mins.lock();
        if t < self.min_valid_time.load(Ordering::Relaxed) {
            return Err(Error::OutOfBounds);
        }
        let m = p.entry(id).or_insert(t);
        *m = (*m).min(t);
        Ok(())
    }

    /// Forgets what appender `id` held (it committed or rolled back).
    pub(crate) fn release_pending(&self, id: u64) {
        self.pending_mins.lock().remove(&id);
    }

    /// Raises the truncation floor to `t` — from now on appends before `t` are out of
    /// bounds — unless an open appender holds uncommitted samples before `t`; then nothing
    /// changes and false is returned (compaction of that range must wait).
    pub fn reserve_truncation(&self, t: i64) -> bool {
        let p = self.pending_mins.lock();
        if p.values().any(|&m| m < t) {
            return false;
        }
        self.set_min_valid_time(t);
        true
    }

    pub(crate) fn update_time_bounds(&self, t: i64) {
        if t < self.min_time.load(Ordering::Relaxed) {
            self.min_time.fetch_min(t, Ordering::Relaxed);
        }
        if t > self.max_time.load(Ordering::Relaxed) {
            self.max_time.fetch_max(t, Ordering::Relaxed);
        }
    }

    fn ref_stripe(&self, r: u64) -> &Stripe {
        &self.by_ref[(r as usize) & (STRIPES - 1)]
    }

    fn hash_stripe(&self, h: u64) -> &HashStripe {
        &self.by_hash[(h as usize) & (STRIPES - 1)]
    }

    /// The series with reference `r`.
    pub(crate) fn series_by_ref(&self, r: u64) -> Option<Arc<MemSeries>> {
        self.ref_stripe(r).read().get(&r).cloned()
    }

    /// The series with lookup hash `hash` for which `is` holds.
    fn series_by_hash(
        &self,
        hash: u64,
        is: impl FnMut(&MemSeries) -> bool,
    ) -> Option<Arc<MemSeries>> {
        self.hash_stripe(hash).read().find(hash, is).cloned()
    }

    /// Returns the series for `labels`, creating it (with the next free reference, or `want_ref`
    /// during replay) when absent. The bool says whether it was created.
    pub(crate) fn get_or_create(
        &self,
        labels: &Labels,
        want_ref: Option<u64>,
    ) -> Result<(Arc<MemSeries>, bool)> {
        let hash = labels.head_hash();
        if let Some(s) = self.series_by_hash(hash, |s| s.labels == *labels) {
            return Ok((s, false));
        }
        let interned = self.intern(labels.iter().map(|l| (&*l.name, &*l.value)));
        self.insert_series(hash, interned, want_ref)
    }

    /// Like [`Head::get_or_create`] for borrowed pairs that already satisfy the `Labels`
    /// invariant (sorted, unique non-empty names, non-empty values; see
    /// [`crate::labels::pairs_are_canonical`]). An existing series is found without
    /// allocating; owned, interned labels are built only for a new series.
    pub(crate) fn get_or_create_pairs(
        &self,
        pairs: &[(&str, &str)],
    ) -> Result<(Arc<MemSeries>, bool)> {
        debug_assert!(crate::labels::pairs_are_canonical(pairs));
        let hash = hash_label_pairs(pairs);
        if let Some(s) = self.series_by_hash(hash, |s| s.labels.eq_pairs(pairs)) {
            return Ok((s, false));
        }
        let interned = self.intern(pairs.iter().copied());
        self.insert_series(hash, interned, None)
    }

    /// A label set of interned strings for sorted pairs.
    fn intern<'a>(&self, pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Labels {
        let mut sym = self.symbols.lock();
        Labels::from_sorted(
            pairs
                .map(|(n, v)| Label {
                    name: sym.intern(n),
                    value: sym.intern(v),
                })
                .collect(),
        )
    }

    /// Adds a series with interned `labels` under `hash`, unless a concurrent writer added
    /// it first (then that series is returned, with false).
    fn insert_series(
        &self,
        hash: u64,
        labels: Labels,
        want_ref: Option<u64>,
    ) -> Result<(Arc<MemSeries>, bool)> {
        let mut stripe = self.hash_stripe(hash).write();
        if let Some(s) = stripe.find(hash, |s| s.labels == labels) {
            return Ok((s.clone(), false));
        }
        let r = match want_ref {
            Some(r) => {
                self.next_ref.fetch_max(r + 1, Ordering::Relaxed);
                r
            }
            None => self.next_ref.fetch_add(1, Ordering::Relaxed),
        };
        let id = u32::try_from(r).map_err(|_| {
            Error::Other(format!(
                "head series reference {r} exceeds the 32-bit id space"
            ))
        })?;
        let s = Arc::new(MemSeries::new(r, labels));
        stripe.insert(hash, s.clone());
        self.ref_stripe(r).write().insert(r, s.clone());
        self.postings.write().add(id, &s.labels);
        drop(stripe);
        self.num_series.fetch_add(1, Ordering::Relaxed);
        self.stats.series_created.fetch_add(1, Ordering::Relaxed);
        Ok((s, true))
    }

    /// Removes series from all maps (used by garbage collection after truncation).
    pub(crate) fn remove_series(&self, s: &MemSeries) {
        let hash = s.labels.head_hash();
        self.hash_stripe(hash).write().remove(hash, s.series_ref);
        self.ref_stripe(s.series_ref).write().remove(&s.series_ref);
        if let Ok(id) = u32::try_from(s.series_ref) {
            self.postings.write().remove(id, &s.labels);
        }
        self.metadata.write().remove(&s.series_ref);
        self.num_series.fetch_sub(1, Ordering::Relaxed);
        self.stats.series_removed.fetch_add(1, Ordering::Relaxed);
    }

    /// All series, in no particular order.
    pub(crate) fn all_series(&self) -> Vec<Arc<MemSeries>> {
        let mut out = Vec::with_capacity(self.num_series() as usize);
        for st in self.by_ref.iter() {
            out.extend(st.read().values().cloned());
        }
        out
    }

    /// Stores metadata for a series (latest wins).
    pub(crate) fn set_metadata(&self, m: RefMetadata) {
        self.metadata.write().insert(m.series_ref, m);
    }

    /// Metadata per metric name, for the metadata API: name → (type, help, unit) variants.
    pub fn metadata_by_metric(&self) -> HashMap<String, Vec<RefMetadata>> {
        let md = self.metadata.read();
        let mut out: HashMap<String, Vec<RefMetadata>> = HashMap::new();
        for (r, m) in md.iter() {
            if let Some(s) = self.series_by_ref(*r) {
                if let Some(name) = s.labels.metric_name() {
                    let v = out.entry(name.to_string()).or_default();
                    if !v.iter().any(|x| {
                        x.metric_type == m.metric_type && x.help == m.help && x.unit == m.unit
                    }) {
                        v.push(m.clone());
                    }
                }
            }
        }
        out
    }

    /// Bytes of memory held by the head's series data (open chunks, labels, metadata),
    /// approximate; for `/metrics` and the memory-per-series measurement.
    pub fn approx_memory_bytes(&self) -> usize {
        self.all_series().iter().map(|s| s.approx_bytes()).sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn series(r: u64) -> Arc<MemSeries> {
        Arc::new(MemSeries::new(
            r,
            Labels::from_pairs(&[("__name__", "x")]).unwrap(),
        ))
    }

    #[test]
    fn series_by_hash_holds_colliding_series() {
        const H: u64 = 42;
        let mut m = SeriesByHash::default();
        for r in 1..=3 {
            m.insert(H, series(r));
        }
        m.insert(7, series(9));
        let find =
            |m: &SeriesByHash, r: u64| m.find(H, |s| s.series_ref == r).map(|s| s.series_ref);
        for r in 1..=3 {
            assert_eq!(find(&m, r), Some(r));
        }
        assert_eq!(find(&m, 9), None, "another hash");
        assert_eq!(m.find(7, |_| true).map(|s| s.series_ref), Some(9));
        m.remove(H, 1);
        assert_eq!(find(&m, 1), None);
        assert_eq!((find(&m, 2), find(&m, 3)), (Some(2), Some(3)));
        m.remove(H, 3);
        m.remove(H, 5);
        assert_eq!(find(&m, 2), Some(2));
        assert!(m.more.is_empty());
        m.remove(H, 2);
        assert!(!m.first.contains_key(&H));
        assert_eq!(m.first.len(), 1);
    }

    #[test]
    fn pairs_and_labels_find_the_same_series() {
        let dir = tempfile::tempdir().unwrap();
        let head = Head::new(dir.path(), HeadOptions::default()).unwrap();
        let (a, created) = head
            .get_or_create_pairs(&[("__name__", "up"), ("job", "x")])
            .unwrap();
        assert!(created);
        let l = Labels::from_pairs(&[("job", "x"), ("__name__", "up")]).unwrap();
        let (b, created) = head.get_or_create(&l, None).unwrap();
        assert!(!created);
        assert_eq!(a.series_ref, b.series_ref);
        // Interned: the stored strings are shared with the symbol table.
        let (c, _) = head
            .get_or_create_pairs(&[("__name__", "up"), ("job", "y")])
            .unwrap();
        assert!(Arc::ptr_eq(
            &a.labels.as_slice()[0].name,
            &c.labels.as_slice()[0].name
        ));
        head.remove_series(&a);
        assert_eq!(head.num_series(), 1);
        let (d, created) = head
            .get_or_create_pairs(&[("__name__", "up"), ("job", "x")])
            .unwrap();
        assert!(created);
        assert_ne!(d.series_ref, a.series_ref);
    }
}
