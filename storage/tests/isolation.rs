//! Read isolation: a querier sees the commits that had finished when it was created and
//! nothing of later ones, and no query ever sees part of a commit (the guarantee
//! Prometheus' head gives since 2.13), checked deterministically and under concurrent load.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use vigil_storage::db::DbOptions;
use vigil_storage::{Db, Labels, MatchType, Matcher, Queryable};

const SERIES: usize = 64;

fn labels(i: usize) -> Labels {
    Labels::from_pairs(&[("__name__", "x".to_string()), ("i", i.to_string())]).unwrap()
}

fn all_x() -> Vec<Matcher> {
    vec![Matcher::new(MatchType::Equal, "__name__", "x").unwrap()]
}

/// Newest visible (t, v) of every series a querier selects.
fn newest(db: &Db, q: &dyn vigil_storage::Querier) -> Vec<(i64, f64)> {
    let _ = db;
    q.select(&all_x())
        .unwrap()
        .iter()
        .map(|s| {
            let v = s.samples().unwrap();
            let last = v.last().unwrap();
            (last.t, last.v)
        })
        .collect()
}

fn commit_batch(db: &Db, t: i64) {
    let mut app = db.appender();
    for i in 0..SERIES {
        app.append(&labels(i), t, t as f64).unwrap();
    }
    app.commit().unwrap();
}

#[test]
fn a_querier_does_not_see_commits_after_it_was_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    commit_batch(&db, 1_000);
    let before = db.querier(0, i64::MAX).unwrap();
    commit_batch(&db, 2_000);
    commit_batch(&db, 3_000);
    // Created before the two commits: sees neither, in every series.
    let old = newest(&db, before.as_ref());
    assert_eq!(old.len(), SERIES);
    assert!(old.iter().all(|&(t, _)| t == 1_000), "{old:?}");
    // A querier created now sees everything.
    let now = db.querier(0, i64::MAX).unwrap();
    assert!(newest(&db, now.as_ref()).iter().all(|&(t, _)| t == 3_000));
    // A series created by a later commit is invisible to the old querier too.
    let mut app = db.appender();
    app.append(&labels(SERIES), 4_000, 1.0).unwrap();
    app.commit().unwrap();
    assert_eq!(newest(&db, before.as_ref()).len(), SERIES);
    db.close().unwrap();
}

#[test]
fn concurrent_queries_never_see_a_partial_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), DbOptions::default()).unwrap());
    commit_batch(&db, 1);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut t = 2;
            while !stop.load(Ordering::Relaxed) && t < 3_000 {
                commit_batch(&db, t);
                t += 1;
            }
            t
        })
    };
    let mut checks = 0;
    let mut moved = 0;
    let mut last_seen = 0;
    while checks < 2_000 {
        let q = db.querier(0, i64::MAX).unwrap();
        let got = newest(&db, q.as_ref());
        assert_eq!(got.len(), SERIES);
        let t0 = got[0].0;
        assert!(
            got.iter().all(|&(t, v)| t == t0 && v == t0 as f64),
            "a query saw part of a commit: {got:?}"
        );
        assert!(t0 >= last_seen, "time went backwards");
        if t0 != last_seen {
            moved += 1;
        }
        last_seen = t0;
        checks += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    // The reads overlapped the writes (otherwise the test proved nothing).
    assert!(moved > 1 && written > 2, "moved {moved}, written {written}");
    db.close().unwrap();
}
