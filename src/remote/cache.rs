//! Series recognised by their wire bytes: a cache, one per concurrently running request,
//! from a series' label identity (see [`super::wire::SeriesView::identity_into`]) to the
//! head series it named when it last passed validation. A hit skips UTF-8 checks, label
//! validation, hashing of the label strings and the head's series lookup (a chain of cache
//! misses through the series table, the series and its label strings): the identity is
//! hashed as one contiguous slice and compared against one contiguous stored copy.
//!
//! Only series that passed validation under this receiver's limits are stored, and
//! validation is a function of those bytes and the limits, so a hit is valid. The cache
//! never decides anything about samples (the appender checks every one), and it is emptied
//! when it would hold handles of another database or of series the head garbage collected,
//! or when it outgrows its memory bound.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use parking_lot::{RwLock, RwLockReadGuard};

use vigil_storage::head::{Head, SeriesHandle};

/// Most bytes of stored identities one cache keeps; it is emptied when it would exceed this.
const MAX_CACHE_BYTES: usize = 32 << 20;

type CacheHasher = foldhash::fast::FixedState;

/// One remembered series.
struct Entry {
    /// Its identity in `SeriesCache::bytes`.
    start: u32,
    len: u32,
    /// The metric name's position within the identity's label section, if it has one.
    name: Option<(u32, u32)>,
    handle: SeriesHandle,
}

/// The table (see the module documentation). Entries are keyed by the identity's hash; two identities
/// with the same hash keep only the first (the other is simply never cached).
#[derive(Default)]
pub struct SeriesCache {
    /// The head the handles belong to.
    head: Weak<Head>,
    /// The head's `series_removed` counter when the handles were taken.
    removed_seen: u64,
    map: HashMap<u64, Entry, CacheHasher>,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for SeriesCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesCache")
            .field("series", &self.map.len())
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl SeriesCache {
    /// Whether it was filled for `head` with no series removed since.
    fn is_current(&self, head: &Arc<Head>, removed: u64) -> bool {
        std::ptr::eq(self.head.as_ptr(), Arc::as_ptr(head)) && removed == self.removed_seen
    }

    fn reset(&mut self, head: &Arc<Head>, removed: u64) {
        self.map.clear();
        self.bytes.clear();
        self.head = Arc::downgrade(head);
        self.removed_seen = removed;
    }

    /// The entry stored for identity `key` with hash `hash`.
    fn get(&self, key: &[u8], hash: u64) -> Option<&Entry> {
        let e = self.map.get(&hash)?;
        let stored = self
            .bytes
            .get(e.start as usize..e.start as usize + e.len as usize)?;
        (stored == key).then_some(e)
    }

    /// Remembers identity `key` (hash `hash`) for `handle`, unless the hash is taken.
    fn insert(&mut self, key: &[u8], hash: u64, handle: SeriesHandle, name: Option<(u32, u32)>) {
        if self.map.contains_key(&hash) {
            return;
        }
        if self.bytes.len() + key.len() > MAX_CACHE_BYTES {
            self.map.clear();
            self.bytes.clear();
        }
        let (Ok(start), Ok(len)) = (u32::try_from(self.bytes.len()), u32::try_from(key.len()))
        else {
            return;
        };
        self.bytes.extend_from_slice(key);
        self.map.insert(
            hash,
            Entry {
                start,
                len,
                name,
                handle,
            },
        );
    }
}

/// The receiver's cache, shared by all requests: each request reads it under one read
/// lock for its whole series loop and adds the series it validated under one write lock
/// at the end, so a lookup costs no lock operation and the table exists once (in cache
/// memory) rather than once per worker.
#[derive(Debug, Default)]
pub struct SharedCache {
    inner: RwLock<SeriesCache>,
}

impl SharedCache {
    /// Starts a request against `head`: empties the cache first if it was filled for
    /// another head or the head has removed series since.
    pub fn begin(&self, head: &Arc<Head>) -> RequestCache<'_> {
        let removed = head.stats.series_removed.load(Ordering::Relaxed);
        // Another database in the same process (tests run several servers) may reset the
        // cache between our reset and our read lock: loop until the guard we hold is ours.
        let guard = loop {
            let guard = self.inner.read();
            if guard.is_current(head, removed) {
                break guard;
            }
            drop(guard);
            let mut w = self.inner.write();
            if !w.is_current(head, removed) {
                w.reset(head, removed);
            }
        };
        RequestCache {
            shared: self,
            head: Arc::downgrade(head),
            removed,
            guard: Some(guard),
            key: Vec::new(),
            key_hash: 0,
            new_bytes: Vec::new(),
            new: Vec::new(),
        }
    }

    /// Number of series remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.read().map.len()
    }
}

/// A series validated during this request, to be added at its end.
struct NewEntry {
    hash: u64,
    key: std::ops::Range<usize>,
    name: Option<(u32, u32)>,
    handle: SeriesHandle,
}

/// One request's view of the shared cache; call [`RequestCache::finish`] when its series
/// loop is done (dropping it without finishing just forgets the new series).
pub struct RequestCache<'c> {
    shared: &'c SharedCache,
    /// The head and garbage-collection count the entries were valid for at `begin`.
    head: Weak<Head>,
    removed: u64,
    guard: Option<RwLockReadGuard<'c, SeriesCache>>,
    /// The identity of the series being looked up, and its hash.
    key: Vec<u8>,
    key_hash: u64,
    /// Identities and entries of series validated in this request.
    new_bytes: Vec<u8>,
    new: Vec<NewEntry>,
}

impl RequestCache<'_> {
    /// The scratch buffer to write the next series' identity into.
    pub fn key_buf(&mut self) -> &mut Vec<u8> {
        &mut self.key
    }

    /// Looks up the identity in `key_buf` (hashing it once for a later `insert`): the
    /// series' handle and its metric name's byte range within the label section.
    pub fn get(&mut self) -> Option<(&SeriesHandle, Option<(usize, usize)>)> {
        self.key_hash = CacheHasher::default().hash_one(&self.key[..]);
        let e = self.guard.as_ref()?.get(&self.key, self.key_hash)?;
        Some((&e.handle, e.name.map(|(a, b)| (a as usize, b as usize))))
    }

    /// Remembers the identity in `key_buf` (as hashed by the last `get`) for `handle`,
    /// from the end of this request on; `name` is the metric name's byte range within
    /// the label section.
    pub fn insert(&mut self, handle: SeriesHandle, name: Option<(usize, usize)>) {
        let Some(name) = name
            .map(|(a, b)| Some((u32::try_from(a).ok()?, u32::try_from(b).ok()?)))
            .map_or(Some(None), |n| n.map(Some))
        else {
            return;
        };
        let start = self.new_bytes.len();
        self.new_bytes.extend_from_slice(&self.key);
        self.new.push(NewEntry {
            hash: self.key_hash,
            key: start..self.new_bytes.len(),
            name,
            handle,
        });
    }

    /// Adds the series validated in this request to the shared cache.
    pub fn finish(mut self) {
        self.guard = None;
        if self.new.is_empty() {
            return;
        }
        let mut w = self.shared.inner.write();
        // Reset meanwhile for another head (or after a garbage collection): these handles
        // do not belong there.
        let current = self
            .head
            .upgrade()
            .is_some_and(|h| w.is_current(&h, self.removed));
        if !current {
            return;
        }
        for e in self.new.drain(..) {
            if let Some(key) = self.new_bytes.get(e.key) {
                w.insert(key, e.hash, e.handle, e.name);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use vigil_storage::{Db, DbOptions};

    const T0: i64 = 1_700_000_000_000;

    fn handle(db: &Db, job: &str) -> SeriesHandle {
        let mut app = db.appender();
        let (_, h) = app
            .append_borrowed_handle(&[("__name__", "up"), ("job", job)], T0, 1.0)
            .unwrap();
        app.commit().unwrap();
        h
    }

    fn lookup(c: &mut RequestCache<'_>, key: &[u8]) -> Option<u64> {
        c.key_buf().clear();
        c.key_buf().extend_from_slice(key);
        c.get().map(|h| h.0.series_ref())
    }

    #[test]
    fn finds_only_identical_identities_and_forgets_on_gc_or_another_head() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let (ha, hb) = (handle(&db, "a"), handle(&db, "b"));
        let cache = SharedCache::default();
        let mut c = cache.begin(db.head());
        assert_eq!(lookup(&mut c, b"series-a"), None);
        c.insert(ha.clone(), Some((1, 3)));
        assert_eq!(
            lookup(&mut c, b"series-a"),
            None,
            "visible after the request"
        );
        assert_eq!(lookup(&mut c, b"series-b"), None);
        c.insert(hb.clone(), None);
        c.finish();
        assert_eq!(cache.len(), 2);
        let mut c = cache.begin(db.head());
        assert_eq!(lookup(&mut c, b"series-a"), Some(ha.series_ref()));
        assert_eq!(lookup(&mut c, b"series-b"), Some(hb.series_ref()));
        assert_eq!(lookup(&mut c, b"series-"), None);
        c.key_buf().clear();
        c.key_buf().extend_from_slice(b"series-a");
        assert_eq!(c.get().unwrap().1, Some((1, 3)));
        drop(c);
        // The same head, nothing removed: kept.
        drop(cache.begin(db.head()));
        assert_eq!(cache.len(), 2);
        // The head removed series: every handle is dropped.
        db.head()
            .stats
            .series_removed
            .fetch_add(1, Ordering::Relaxed);
        let mut c = cache.begin(db.head());
        assert_eq!(cache_len_while(&c), 0);
        assert_eq!(lookup(&mut c, b"series-a"), None);
        c.insert(ha, None);
        c.finish();
        assert_eq!(cache.len(), 1);
        // Another database: dropped too.
        let dir2 = tempfile::tempdir().unwrap();
        let db2 = Db::open(dir2.path(), DbOptions::default()).unwrap();
        drop(cache.begin(db2.head()));
        assert_eq!(cache.len(), 0);
    }

    /// Two databases in one process share the cache (as the in-process test servers do):
    /// a request never sees the other database's handles, and one whose cache was reset
    /// for the other database before it finished does not add its handles there.
    #[test]
    fn a_cache_reset_for_another_database_takes_no_foreign_handles() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let db1 = Db::open(d1.path(), DbOptions::default()).unwrap();
        let db2 = Db::open(d2.path(), DbOptions::default()).unwrap();
        let cache = SharedCache::default();
        let mut c = cache.begin(db1.head());
        lookup(&mut c, b"series-a");
        c.insert(handle(&db1, "a"), None);
        c.finish();
        let mut c = cache.begin(db2.head());
        assert_eq!(
            lookup(&mut c, b"series-a"),
            None,
            "db1's handle seen from db2"
        );
        drop(c);
        // A db1 request that released its read lock; db2 resets the cache before it adds.
        let mut c = cache.begin(db1.head());
        lookup(&mut c, b"series-b");
        c.insert(handle(&db1, "b"), None);
        c.guard = None;
        drop(cache.begin(db2.head()));
        c.finish();
        assert_eq!(cache.len(), 0, "db1's handles added to db2's cache");
    }

    /// Entries visible to a request in progress.
    fn cache_len_while(c: &RequestCache<'_>) -> usize {
        c.guard.as_ref().map_or(0, |g| g.map.len())
    }
}
