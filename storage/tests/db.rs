//! Database integration tests: append → query, close → reopen (WAL replay, mmapped head
//! chunks), head compaction into blocks and block queries, block merging, deletion via
//! tombstones, retention, and rejection of bad appends.
#![allow(clippy::unwrap_used)]

use vigil_storage::db::DbOptions;
use vigil_storage::{Db, Error, Labels, MatchType, Matcher, Queryable, Sample};

const H: i64 = 3600 * 1000;

fn lbl(name: &str, job: &str, i: usize) -> Labels {
    Labels::from_pairs(&[
        ("__name__", name.to_string()),
        ("job", job.to_string()),
        ("instance", format!("host-{i}")),
    ])
    .unwrap()
}

fn opts() -> DbOptions {
    DbOptions {
        retention_ms: 0,
        ..DbOptions::default()
    }
}

fn select(db: &dyn Queryable, m: &[Matcher], mint: i64, maxt: i64) -> Vec<(Labels, Vec<Sample>)> {
    let q = db.querier(mint, maxt).unwrap();
    q.select(m)
        .unwrap()
        .into_iter()
        .map(|s| {
            let v = s.samples().unwrap();
            (s.labels, v)
        })
        .collect()
}

fn name_eq(v: &str) -> Matcher {
    Matcher::new(MatchType::Equal, "__name__", v).unwrap()
}

/// Appends `n` series × samples every 15s over `[from, to)`.
fn fill(db: &Db, n: usize, from: i64, to: i64) -> u64 {
    let mut total = 0;
    let mut t = from;
    while t < to {
        let mut app = db.appender();
        for i in 0..n {
            let job = if i % 2 == 0 { "api" } else { "db" };
            app.append(
                &lbl("requests_total", job, i),
                t,
                (t / 1000) as f64 + i as f64,
            )
            .unwrap();
        }
        total += app.commit().unwrap().appended;
        t += 15_000;
    }
    total
}

#[test]
fn append_query_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let n;
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        n = fill(&db, 10, 0, H);
        assert_eq!(n, 10 * 240);
        let got = select(&*db, &[name_eq("requests_total")], 0, H);
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|(_, s)| s.len() == 240));
        let api = select(
            &*db,
            &[Matcher::new(MatchType::Equal, "job", "api").unwrap()],
            0,
            H,
        );
        assert_eq!(api.len(), 5);
        // Range restriction is inclusive at both ends.
        let part = select(&*db, &[name_eq("requests_total")], 15_000, 30_000);
        assert!(part.iter().all(|(_, s)| s.len() == 2));
        db.close().unwrap();
    }
    // Reopen: everything comes back from chunks_head + WAL.
    let db = Db::open(dir.path(), opts()).unwrap();
    let got = select(&*db, &[name_eq("requests_total")], 0, H);
    assert_eq!(got.iter().map(|(_, s)| s.len() as u64).sum::<u64>(), n);
    assert_eq!(got[0].1[0], Sample { t: 0, v: 0.0 });
    // And appends continue after the last sample.
    let mut app = db.appender();
    app.append(&lbl("requests_total", "api", 0), H, 1.0)
        .unwrap();
    app.commit().unwrap();
}

#[test]
fn bad_appends_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let l = lbl("x", "j", 0);
    let mut app = db.appender();
    app.append(&l, 1000, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = db.appender();
    assert!(matches!(
        app.append(&l, 500, 1.0),
        Err(Error::OutOfOrderSample)
    ));
    assert!(matches!(
        app.append(&l, 1000, 2.0),
        Err(Error::DuplicateSample)
    ));
    // Same timestamp, same value: accepted, stored once.
    app.append(&l, 1000, 1.0).unwrap();
    // Stale markers and NaN payloads are kept bit for bit.
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    app.append(&l, 2000, stale).unwrap();
    app.commit().unwrap();
    assert!(matches!(
        Labels::from_pairs(&[("", "v")]),
        Err(Error::InvalidLabels(_))
    ));
    let got = select(&*db, &[name_eq("x")], 0, 10_000);
    assert_eq!(got[0].1.len(), 2);
    assert_eq!(got[0].1[1].v.to_bits(), 0x7ff0_0000_0000_0002);
    // Samples far behind the head are out of bounds.
    let mut app = db.appender();
    app.append(&l, 10 * H, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = db.appender();
    assert!(matches!(
        app.append(&lbl("y", "j", 0), 0, 1.0),
        Err(Error::OutOfBounds)
    ));
}

#[test]
fn compaction_to_blocks_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let total;
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        total = fill(&db, 20, 0, 7 * H);
        db.compact().unwrap();
        let blocks = db.blocks();
        // 7h of data: the head keeps the newest ≤ 1.5 ranges, older 2h windows are blocks.
        assert!(blocks.len() >= 2, "{} blocks", blocks.len());
        for b in blocks.iter() {
            assert_eq!(b.meta().max_time - b.meta().min_time, 2 * H);
            assert_eq!(b.meta().stats.num_series, 20);
        }
        assert!(db.head().min_time() >= blocks.last().unwrap().meta().max_time);
        let got = select(&*db, &[name_eq("requests_total")], 0, 7 * H);
        assert_eq!(got.iter().map(|(_, s)| s.len() as u64).sum::<u64>(), total);
        for (_, s) in &got {
            assert!(s.windows(2).all(|w| w[0].t + 15_000 == w[1].t));
        }
        // Label names and values across head and blocks.
        let q = db.querier(0, 7 * H).unwrap();
        assert_eq!(
            q.label_names(&[]).unwrap(),
            vec!["__name__", "instance", "job"]
        );
        assert_eq!(q.label_values("job", &[]).unwrap(), vec!["api", "db"]);
        let filtered = q
            .label_values(
                "instance",
                &[Matcher::new(MatchType::Equal, "job", "api").unwrap()],
            )
            .unwrap();
        assert_eq!(filtered.len(), 10);
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    let got = select(&*db, &[name_eq("requests_total")], 0, 7 * H);
    assert_eq!(got.iter().map(|(_, s)| s.len() as u64).sum::<u64>(), total);
}

#[test]
fn blocks_merge_by_level_and_retention_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        DbOptions {
            retention_ms: 7 * H,
            max_block_duration_ms: 6 * H,
            ..DbOptions::default()
        },
    )
    .unwrap();
    fill(&db, 4, 0, 16 * H);
    db.compact().unwrap();
    let blocks = db.blocks();
    // 2h blocks in complete 6h windows were merged into 6h blocks ([0,6h), [6h,12h)); the
    // oldest ended more than 7h before the newest block's end (14h) and was deleted.
    assert!(blocks
        .iter()
        .any(|b| b.meta().max_time - b.meta().min_time == 6 * H));
    assert!(blocks.iter().any(|b| b.meta().compaction.level == 2));
    let newest = blocks.iter().map(|b| b.meta().max_time).max().unwrap();
    assert!(blocks.iter().all(|b| newest - b.meta().max_time <= 7 * H));
    assert_eq!(blocks.len(), 2);
    assert!(
        blocks.iter().all(|b| b.meta().min_time > 0),
        "oldest block kept"
    );
}

#[test]
fn delete_series_with_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    fill(&db, 4, 0, 5 * H);
    db.compact().unwrap();
    assert!(!db.blocks().is_empty());
    let m = [Matcher::new(MatchType::Equal, "instance", "host-1").unwrap()];
    db.delete(&m, H, 4 * H).unwrap();
    let got = select(&*db, &m, 0, 5 * H);
    assert_eq!(got.len(), 1);
    assert!(got[0].1.iter().all(|s| s.t < H || s.t > 4 * H));
    let others = select(
        &*db,
        &[Matcher::new(MatchType::Equal, "instance", "host-2").unwrap()],
        0,
        5 * H,
    );
    assert_eq!(others[0].1.len(), 5 * 240);
    // Tombstones survive a restart (block file + WAL record).
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    let got = select(&*db, &m, 0, 5 * H);
    assert!(got[0].1.iter().all(|s| s.t < H || s.t > 4 * H));
    db.clean_tombstones().unwrap();
    let got = select(&*db, &m, 0, 5 * H);
    assert!(got[0].1.iter().all(|s| s.t < H || s.t > 4 * H));
}

#[test]
fn concurrent_appenders() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    std::thread::scope(|s| {
        for th in 0..4 {
            let db = &db;
            s.spawn(move || {
                for t in 0..200i64 {
                    let mut app = db.appender();
                    for i in 0..25 {
                        app.append(&lbl("m", &format!("t{th}"), i), t * 1000, t as f64)
                            .unwrap();
                    }
                    app.commit().unwrap();
                }
            });
        }
    });
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    let got = select(&*db, &[name_eq("m")], 0, 1_000_000);
    assert_eq!(got.len(), 100);
    assert!(got.iter().all(|(_, s)| s.len() == 200));
}

#[test]
fn size_retention_and_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        DbOptions {
            retention_ms: 0,
            retention_bytes: 1,
            ..DbOptions::default()
        },
    )
    .unwrap();
    // A second writer on the same directory is refused while the first is open.
    let second = Db::open(dir.path(), opts());
    assert!(second.is_err());
    assert!(second.err().unwrap().to_string().contains("locked"));
    fill(&db, 4, 0, 9 * H);
    db.compact().unwrap();
    // Everything beyond 1 byte goes: only what the WAL and head hold remains queryable.
    assert!(db.blocks().is_empty());
    assert!(
        db.stats
            .blocks_deleted_retention_size
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    let got = select(&*db, &[name_eq("requests_total")], 0, 9 * H);
    assert!(got
        .iter()
        .all(|(_, s)| s.iter().all(|x| x.t >= db.head().min_time())));
    drop(db);
    assert!(Db::open(dir.path(), opts()).is_ok());
}

/// Unsynced commits (rule outputs) are visible at once, are in the WAL file without an
/// fsync (a process killed now keeps them: a reader of the live directory replays them),
/// interleave with synced commits, and survive a clean close and reopen.
#[test]
fn unsynced_commits_are_in_the_wal_file_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut app = db.appender();
    for i in 0..10 {
        app.append(&lbl("rule_out", "r", i), 1_000, i as f64)
            .unwrap();
    }
    app.commit_unsynced().unwrap();
    let mut app = db.appender();
    app.append(&lbl("scraped", "s", 0), 1_000, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = db.appender();
    app.append(&lbl("rule_out", "r", 0), 2_000, 5.0).unwrap();
    app.commit_unsynced().unwrap();
    assert_eq!(
        select(db.as_ref(), &[name_eq("rule_out")], 0, 10_000).len(),
        10
    );
    // The live directory, read as after a crash of the process right now.
    let live = Db::open_read_only(dir.path(), scratch.path()).unwrap();
    let got = select(&live, &[name_eq("rule_out")], 0, 10_000);
    assert_eq!(got.len(), 10);
    assert_eq!(got.iter().map(|(_, s)| s.len()).sum::<usize>(), 11);
    drop(live);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    let got = select(db.as_ref(), &[name_eq("rule_out")], 0, 10_000);
    assert_eq!(got.iter().map(|(_, s)| s.len()).sum::<usize>(), 11);
    assert_eq!(
        select(db.as_ref(), &[name_eq("scraped")], 0, 10_000).len(),
        1
    );
    db.close().unwrap();
}
