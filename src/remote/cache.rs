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
use std::sync::{Arc, Weak};

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

/// See the module documentation. Entries are keyed by the identity's hash; two identities
/// with the same hash keep only the first (the other is simply never cached).
#[derive(Default)]
pub struct SeriesCache {
    /// The head the handles belong to.
    head: Weak<Head>,
    /// The head's `series_removed` counter when the handles were taken.
    removed_seen: u64,
    map: HashMap<u64, Entry, CacheHasher>,
    bytes: Vec<u8>,
    /// Scratch for the identity of the series being looked up.
    key: Vec<u8>,
    key_hash: u64,
}

impl std::fmt::Debug for SeriesCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesCache")
            .field("series", &self.map.len())
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// A cache hit: the series' handle and its metric name.
pub struct Hit<'c> {
    pub handle: &'c mut SeriesHandle,
    /// The metric name as bytes of the label section (validated UTF-8 when stored).
    pub name: Option<(usize, usize)>,
}

impl SeriesCache {
    /// Prepares for a request against `head`: empties the cache if it was filled for
    /// another head or the head has removed series since.
    pub fn begin(&mut self, head: &Arc<Head>) {
        let removed = head
            .stats
            .series_removed
            .load(std::sync::atomic::Ordering::Relaxed);
        if !std::ptr::eq(self.head.as_ptr(), Arc::as_ptr(head)) || removed != self.removed_seen {
            self.clear();
            self.head = Arc::downgrade(head);
            self.removed_seen = removed;
        }
    }

    fn clear(&mut self) {
        self.map.clear();
        self.bytes.clear();
    }

    /// The scratch buffer to write the next series' identity into.
    pub fn key_buf(&mut self) -> &mut Vec<u8> {
        &mut self.key
    }

    /// Looks up the identity in `key_buf` (hashing it once for a later `insert`).
    pub fn get(&mut self) -> Option<Hit<'_>> {
        self.key_hash = CacheHasher::default().hash_one(&self.key[..]);
        let e = self.map.get_mut(&self.key_hash)?;
        let stored = self
            .bytes
            .get(e.start as usize..e.start as usize + e.len as usize)?;
        if stored != &self.key[..] {
            return None;
        }
        Some(Hit {
            handle: &mut e.handle,
            name: e.name.map(|(a, b)| (a as usize, b as usize)),
        })
    }

    /// Remembers the identity in `key_buf` (as hashed by the last `get`) for `handle`;
    /// `name` is the metric name's byte range within the label section.
    pub fn insert(&mut self, handle: SeriesHandle, name: Option<(usize, usize)>) {
        if self.map.contains_key(&self.key_hash) {
            return;
        }
        if self.bytes.len() + self.key.len() > MAX_CACHE_BYTES {
            self.clear();
        }
        let (Ok(start), Ok(len)) = (
            u32::try_from(self.bytes.len()),
            u32::try_from(self.key.len()),
        ) else {
            return;
        };
        let name = name.and_then(|(a, b)| Some((u32::try_from(a).ok()?, u32::try_from(b).ok()?)));
        self.bytes.extend_from_slice(&self.key);
        self.map.insert(
            self.key_hash,
            Entry {
                start,
                len,
                name,
                handle,
            },
        );
    }

    /// Number of series remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is remembered.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Caches not in use, one per request that ran concurrently; a request takes one and
/// gives it back.
#[derive(Debug, Default)]
pub struct CachePool {
    free: parking_lot::Mutex<Vec<SeriesCache>>,
}

impl CachePool {
    /// A cache for one request.
    pub fn take(&self) -> SeriesCache {
        self.free.lock().pop().unwrap_or_default()
    }

    /// Returns a cache after its request.
    pub fn put(&self, c: SeriesCache) {
        self.free.lock().push(c);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
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

    fn lookup(c: &mut SeriesCache, key: &[u8]) -> Option<u64> {
        c.key_buf().clear();
        c.key_buf().extend_from_slice(key);
        c.get().map(|h| h.handle.series_ref())
    }

    #[test]
    fn finds_only_identical_identities_and_forgets_on_gc_or_another_head() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let (ha, hb) = (handle(&db, "a"), handle(&db, "b"));
        let mut c = SeriesCache::default();
        c.begin(db.head());
        assert_eq!(lookup(&mut c, b"series-a"), None);
        c.insert(ha.clone(), Some((1, 3)));
        assert_eq!(lookup(&mut c, b"series-b"), None);
        c.insert(hb.clone(), None);
        assert_eq!(lookup(&mut c, b"series-a"), Some(ha.series_ref()));
        assert_eq!(lookup(&mut c, b"series-b"), Some(hb.series_ref()));
        assert_eq!(lookup(&mut c, b"series-"), None);
        assert_eq!(lookup(&mut c, b"series-a").map(|_| ()), Some(()));
        assert_eq!(c.get().unwrap().name, Some((1, 3)));
        assert_eq!(c.len(), 2);
        // The same head, nothing removed: kept.
        c.begin(db.head());
        assert_eq!(c.len(), 2);
        // The head removed series: every handle is dropped.
        db.head()
            .stats
            .series_removed
            .fetch_add(1, Ordering::Relaxed);
        c.begin(db.head());
        assert!(c.is_empty());
        assert_eq!(lookup(&mut c, b"series-a"), None);
        // Another database: dropped too.
        c.insert(ha, None);
        let dir2 = tempfile::tempdir().unwrap();
        let db2 = Db::open(dir2.path(), DbOptions::default()).unwrap();
        c.begin(db2.head());
        assert!(c.is_empty());
    }

    #[test]
    fn pool_hands_back_what_was_put() {
        let pool = CachePool::default();
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let mut c = pool.take();
        c.begin(db.head());
        c.key_buf().extend_from_slice(b"k");
        assert!(c.get().is_none());
        c.insert(handle(&db, "a"), None);
        pool.put(c);
        let mut c = pool.take();
        assert_eq!(c.len(), 1);
        assert!(
            pool.take().is_empty(),
            "a second concurrent request gets its own"
        );
        c.begin(db.head());
        assert_eq!(c.len(), 1);
    }
}
