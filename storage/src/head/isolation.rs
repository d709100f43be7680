//! Read isolation for the head, the guarantee Prometheus' head gives since 2.13: a query
//! never sees part of a commit. Commits apply their samples to memory one after another
//! under `Isolation::apply`, each with the next commit id, and publish that id as visible
//! when all of its samples are in. A reader takes the visible id when its querier is created
//! (its snapshot) and, per series, hides samples of commits newer than the snapshot.
//!
//! Per series this needs only the timestamps at which newer commits started: samples of a
//! series are strictly increasing in time, so "samples of commits after the snapshot" are
//! exactly "samples newer than the series' newest timestamp before the first such commit".
//! A series keeps that for its last `RING` commits (`CommitRing`). Because commits are
//! applied one at a time, only the newest commit can ever be incomplete, so a ring that
//! has forgotten older commits can never expose a partial commit; it may only show a reader
//! commits that completed after its snapshot, when more than `RING` of them touched the
//! series meanwhile. This module never decides what a commit contains.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, MutexGuard};

/// Commits remembered per series.
pub(crate) const RING: usize = 4;

/// The snapshot that sees everything (compaction, tools, tests).
pub const SEE_ALL: u64 = u64::MAX;

/// Head-wide commit ordering.
#[derive(Default)]
pub(crate) struct Isolation {
    /// Held while a commit applies its samples to memory.
    apply: Mutex<()>,
    /// Id of the last commit that started applying (ids start at 1).
    last_started: AtomicU64,
    /// Id of the last commit whose samples are all in memory.
    visible: AtomicU64,
}

/// A commit applying its samples; publishes its id as visible when dropped, also when the
/// commit stopped half-way on an error (what it applied stays, as before isolation).
pub(crate) struct ApplyGuard<'a> {
    iso: &'a Isolation,
    pub id: u64,
    _lock: MutexGuard<'a, ()>,
}

impl Drop for ApplyGuard<'_> {
    fn drop(&mut self) {
        self.iso.visible.store(self.id, Ordering::Release);
    }
}

impl Isolation {
    /// Starts applying a commit: waits for the one applying now, takes the next id.
    pub fn begin(&self) -> ApplyGuard<'_> {
        let lock = self.apply.lock();
        let id = self.last_started.load(Ordering::Relaxed) + 1;
        self.last_started.store(id, Ordering::Relaxed);
        ApplyGuard {
            iso: self,
            id,
            _lock: lock,
        }
    }

    /// The id of the newest complete commit: what a reader created now may see.
    pub fn snapshot(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }
}

/// The last `RING` commits that appended to one series: their ids and the series' newest
/// timestamp before each of them. Unused slots have id 0.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CommitRing {
    ids: [u64; RING],
    max_t_before: [i64; RING],
    /// Slot of the next entry (the oldest when the ring is full).
    next: u8,
}

impl CommitRing {
    /// Notes that commit `id` appends to the series, whose newest timestamp is `last_t`.
    /// Later samples of the same commit need no entry.
    pub fn record(&mut self, id: u64, last_t: i64) {
        let newest = (self.next as usize + RING - 1) % RING;
        if self.ids[newest] == id {
            return;
        }
        let slot = self.next as usize;
        self.ids[slot] = id;
        self.max_t_before[slot] = last_t;
        self.next = ((slot + 1) % RING) as u8;
    }

    /// The newest timestamp a reader with `snapshot` may see, or None when it may see all.
    pub fn visible_max_t(&self, snapshot: u64) -> Option<i64> {
        let mut oldest_hidden: Option<(u64, i64)> = None;
        for (id, t) in self.ids.iter().zip(&self.max_t_before) {
            if *id > snapshot && oldest_hidden.is_none_or(|(o, _)| *id < o) {
                oldest_hidden = Some((*id, *t));
            }
        }
        oldest_hidden.map(|(_, t)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_hides_commits_after_the_snapshot() {
        let mut r = CommitRing::default();
        assert_eq!(r.visible_max_t(0), None);
        r.record(3, 100);
        r.record(3, 110); // same commit, later sample: no new entry
        r.record(5, 120);
        assert_eq!(r.visible_max_t(5), None);
        assert_eq!(r.visible_max_t(4), Some(120));
        assert_eq!(r.visible_max_t(3), Some(120));
        assert_eq!(r.visible_max_t(2), Some(100));
        assert_eq!(r.visible_max_t(SEE_ALL), None);
        // Wrapping: only the last RING commits are kept; the oldest kept one bounds what
        // older snapshots see.
        for (i, id) in (6..6 + RING as u64).enumerate() {
            r.record(id, 200 + i as i64);
        }
        assert_eq!(r.visible_max_t(2), Some(200));
        assert_eq!(r.visible_max_t(6), Some(201));
        assert_eq!(r.visible_max_t(6 + RING as u64 - 1), None);
    }

    #[test]
    fn commits_get_increasing_ids_and_publish_on_drop() {
        let iso = Isolation::default();
        assert_eq!(iso.snapshot(), 0);
        let g = iso.begin();
        assert_eq!(g.id, 1);
        assert_eq!(iso.snapshot(), 0, "not visible while applying");
        drop(g);
        assert_eq!(iso.snapshot(), 1);
        assert_eq!(iso.begin().id, 2);
        assert_eq!(iso.snapshot(), 2);
    }
}
