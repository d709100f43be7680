//! WAL damage at the database level. A small database is written and closed; then, on
//! copies of its directory, the last WAL segment is cut at every byte offset, and single
//! bits are flipped at many offsets. Every damaged copy must reopen (the tail repaired and
//! reported), hold exactly the commits whose records lie wholly before the damage (a
//! per-commit prefix of what was written), and accept new appends; `vigil_wal::Reader` on
//! a bit-flipped copy must report `Corruption` naming the segment and the start of the
//! damaged record.
//!
//! These tests own the "damaged tail → intact prefix" contract only; they must never
//! accept a replay that invents, reorders or silently skips committed data.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use vigil_storage::record::RECORD_SAMPLES;
use vigil_storage::{Db, DbOptions, Labels, MatchType, Matcher, Queryable};

/// Commits written to the database under test.
const COMMITS: usize = 12;
/// Series written by the last commits (commit `i` writes series `0..=min(i, SERIES-1)`,
/// so early commits also log new series records).
const SERIES: usize = 4;
/// Timestamp step between commits.
const STEP_MS: i64 = 1_000;
/// Metric name of the test series.
const METRIC: &str = "wal_fault_test";
/// The append after a cut is reopened and checked again at every this many offsets (each
/// reopen costs fsyncs; the other offsets check the append itself).
const REOPEN_EVERY: usize = 3;
/// Series in the one big commit whose records span several WAL pages.
const BIG_COMMIT_SERIES: usize = 1_500;
/// Timestamp of the append made after reopening a damaged copy.
const AFTER_TS: i64 = 1_000_000;

/// One stored sample: (series index, timestamp, value bits).
type Point = (usize, i64, u64);

fn opts() -> DbOptions {
    DbOptions {
        retention_ms: 0,
        wal_compression: false,
        ..DbOptions::default()
    }
}

fn labels(s: usize) -> Labels {
    Labels::from_pairs(&[("__name__", METRIC.to_string()), ("s", s.to_string())]).unwrap()
}

/// The samples of commit `i`.
fn commit_points(i: usize) -> Vec<Point> {
    let t = (i as i64 + 1) * STEP_MS;
    (0..=i.min(SERIES - 1))
        .map(|s| (s, t, ((i * 10 + s) as f64).to_bits()))
        .collect()
}

/// Union of the first `k` commits.
fn prefix(k: usize) -> BTreeSet<Point> {
    (0..k).flat_map(commit_points).collect()
}

/// Writes the database and returns the path of its last WAL segment.
fn build(dir: &Path) -> PathBuf {
    let db = Db::open(dir, opts()).unwrap();
    for i in 0..COMMITS {
        let mut app = db.appender();
        for (s, t, v) in commit_points(i) {
            app.append(&labels(s), t, f64::from_bits(v)).unwrap();
        }
        assert_eq!(
            app.commit().unwrap().appended,
            commit_points(i).len() as u64
        );
    }
    db.close().unwrap();
    drop(db);
    last_segment(&dir.join("wal"))
}

fn last_segment(wal: &Path) -> PathBuf {
    vigil_wal::list_segments(wal)
        .unwrap()
        .last()
        .unwrap()
        .1
        .clone()
}

fn stored(db: &Db) -> BTreeSet<Point> {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let mut out = BTreeSet::new();
    for s in q
        .select(&[Matcher::new(MatchType::Equal, "__name__", METRIC).unwrap()])
        .unwrap()
    {
        let idx: usize = s.labels.get("s").unwrap().parse().unwrap();
        for smp in s.samples().unwrap() {
            if smp.t != AFTER_TS {
                assert!(
                    out.insert((idx, smp.t, smp.v.to_bits())),
                    "duplicate sample"
                );
            }
        }
    }
    out
}

/// Which `k` makes `got` equal to the first `k` commits, if any.
fn prefix_len(got: &BTreeSet<Point>) -> Option<usize> {
    (0..=COMMITS).find(|&k| prefix(k) == *got)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// The damaged copy accepts a new append; with `reopen`, it also survives another reopen.
fn assert_accepts_appends(db: &Db, dir: &Path, want: &BTreeSet<Point>, reopen: bool) {
    let mut app = db.appender();
    app.append(&labels(0), AFTER_TS, 1.0).unwrap();
    assert_eq!(app.commit().unwrap().appended, 1);
    db.close().unwrap();
    if !reopen {
        return;
    }
    let again = Db::open(dir, opts()).unwrap();
    assert_eq!(stored(&again), *want, "data changed across a second reopen");
    let q = again.querier(AFTER_TS, AFTER_TS).unwrap();
    let got = q.select(&[Matcher::equal("s", "0")]).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].samples().unwrap().len(), 1, "new append lost");
}

/// Record boundaries of a segment: (start, end, record type) of every record.
fn record_spans(segment_bytes: &[u8]) -> Vec<(u64, u64, u8)> {
    let mut r = vigil_wal::Reader::from_bytes(0, segment_bytes.to_vec());
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut start = 0;
    while r.next_record(&mut buf).unwrap() {
        out.push((start, r.offset(), buf.first().copied().unwrap_or(0)));
        start = r.offset();
    }
    out
}

/// Number of commits whose samples record ends at or before `offset`.
fn commits_before(spans: &[(u64, u64, u8)], offset: u64) -> usize {
    spans
        .iter()
        .filter(|(_, end, ty)| *ty == RECORD_SAMPLES && *end <= offset)
        .count()
}

#[test]
fn truncation_at_every_offset_replays_a_commit_prefix() {
    let base = tempfile::tempdir().unwrap();
    let seg = build(base.path());
    let seg_name = seg.file_name().unwrap().to_owned();
    let bytes = std::fs::read(&seg).unwrap();
    let spans = record_spans(&bytes);
    assert_eq!(
        spans.iter().filter(|s| s.2 == RECORD_SAMPLES).count(),
        COMMITS,
        "one samples record per commit"
    );
    let data_end = spans.last().unwrap().1 as usize;
    assert!(data_end <= bytes.len());

    let mut last_k = 0;
    for cut in 0..=bytes.len() {
        let work = tempfile::tempdir().unwrap();
        copy_dir(base.path(), work.path());
        let seg_copy = work.path().join("wal").join(&seg_name);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&seg_copy)
            .unwrap();
        f.set_len(cut as u64).unwrap();
        drop(f);

        let db = Db::open(work.path(), opts())
            .unwrap_or_else(|e| panic!("reopen after cut at {cut} failed: {e}"));
        let got = stored(&db);
        let k = prefix_len(&got).unwrap_or_else(|| {
            panic!("cut at {cut}: replayed data is not a commit prefix: {got:?}")
        });
        // Exactly the commits whose records survived the cut, and never fewer as the cut
        // moves later.
        assert_eq!(k, commits_before(&spans, cut as u64), "cut at {cut}");
        assert!(
            k >= last_k,
            "cut at {cut}: prefix shrank from {last_k} to {k}"
        );
        last_k = k;
        // A cut inside a record is damage and must be reported; a cut on a record
        // boundary is a clean (shorter) log.
        let on_boundary = cut == 0 || spans.iter().any(|s| s.1 as usize == cut) || cut >= data_end;
        if !on_boundary {
            assert!(
                db.replay_stats().corruption.is_some(),
                "cut at {cut} inside a record was not reported"
            );
        }
        assert_accepts_appends(&db, work.path(), &got, cut % REOPEN_EVERY == 0);
    }
    assert_eq!(last_k, COMMITS);
}

#[test]
fn flipped_bit_is_reported_at_its_record_and_repaired() {
    let base = tempfile::tempdir().unwrap();
    let seg = build(base.path());
    let seg_name = seg.file_name().unwrap().to_owned();
    let seg_index = vigil_wal::list_segments(&base.path().join("wal"))
        .unwrap()
        .last()
        .unwrap()
        .0;
    let bytes = std::fs::read(&seg).unwrap();
    let spans = record_spans(&bytes);
    let data_end = spans.last().unwrap().1 as usize;

    let mut checked = 0;
    // Every byte of the first records (headers, lengths, payloads) and a stride through
    // the rest; the bit flipped varies with the offset.
    let offsets: Vec<usize> = (0..data_end)
        .filter(|o| *o < 64 || o % 5 == 0 || *o + 1 == data_end)
        .collect();
    for off in offsets {
        let &(rec_start, _, _) = spans
            .iter()
            .find(|(s, e, _)| (*s as usize) <= off && off < *e as usize)
            .unwrap();
        let work = tempfile::tempdir().unwrap();
        copy_dir(base.path(), work.path());
        let seg_copy = work.path().join("wal").join(&seg_name);
        let mut damaged = bytes.clone();
        damaged[off] ^= 1 << (off % 8);
        std::fs::write(&seg_copy, &damaged).unwrap();

        // The reader stops at the damaged record with its location.
        let wal_dir = work.path().join("wal");
        let mut r = vigil_wal::Reader::open(&wal_dir, 0, None).unwrap();
        let mut buf = Vec::new();
        let mut intact = 0;
        let err = loop {
            match r.next_record(&mut buf) {
                Ok(true) => intact += 1,
                Ok(false) => panic!("flip at {off} went unnoticed"),
                Err(e) => break e,
            }
        };
        match &err {
            vigil_wal::Error::Corruption {
                segment, offset, ..
            } => {
                assert_eq!(*segment, seg_index, "flip at {off}: {err}");
                assert!(
                    *offset <= rec_start,
                    "flip at {off} (record at {rec_start}) reported at {offset}"
                );
                assert_eq!(
                    *offset, rec_start,
                    "flip at {off}: intact records before the damage were not returned"
                );
            }
            other => panic!("flip at {off}: expected Corruption, got {other}"),
        }
        assert_eq!(
            intact,
            spans.iter().filter(|s| s.1 <= rec_start).count(),
            "flip at {off}: records before the damage"
        );

        // The database opens, reports the repair, and keeps the commits before it.
        let db = Db::open(work.path(), opts())
            .unwrap_or_else(|e| panic!("reopen after flip at {off} failed: {e}"));
        assert!(
            db.replay_stats().corruption.is_some(),
            "flip at {off}: repair not reported"
        );
        let got = stored(&db);
        let k = prefix_len(&got)
            .unwrap_or_else(|| panic!("flip at {off}: data is not a commit prefix: {got:?}"));
        assert_eq!(k, commits_before(&spans, rec_start), "flip at {off}");
        assert_accepts_appends(&db, work.path(), &got, true);
        checked += 1;
    }
    assert!(checked > 64);
}

/// Records larger than a page are split into first/middle/last fragments; a cut anywhere
/// inside them (especially at page boundaries) must drop the whole record, never part.
#[test]
fn truncation_inside_records_spanning_pages_drops_whole_records() {
    let base = tempfile::tempdir().unwrap();
    let db = Db::open(base.path(), opts()).unwrap();
    let mut app = db.appender();
    app.append(&labels(0), STEP_MS, 1.0).unwrap();
    app.commit().unwrap();
    let big: Vec<Labels> = (0..BIG_COMMIT_SERIES)
        .map(|i| {
            Labels::from_pairs(&[
                ("__name__", "wal_fault_big".to_string()),
                ("instance", format!("host-{i:05}.example.internal:9100")),
                (
                    "job",
                    "node-exporter-with-a-rather-long-job-name".to_string(),
                ),
            ])
            .unwrap()
        })
        .collect();
    let mut app = db.appender();
    for (i, l) in big.iter().enumerate() {
        app.append(l, 2 * STEP_MS, i as f64).unwrap();
    }
    app.commit().unwrap();
    db.close().unwrap();
    drop(db);
    let seg = last_segment(&base.path().join("wal"));
    let seg_name = seg.file_name().unwrap().to_owned();
    let bytes = std::fs::read(&seg).unwrap();
    let spans = record_spans(&bytes);
    let page = vigil_wal::PAGE_SIZE;
    assert!(
        spans.iter().any(|(s, e, _)| (e - s) as usize > page),
        "no record spans a page: {spans:?}"
    );
    let big_samples_end = spans
        .iter()
        .filter(|s| s.2 == RECORD_SAMPLES)
        .map(|s| s.1)
        .max()
        .unwrap();
    let mut cuts: Vec<usize> = (0..bytes.len()).step_by(509).collect();
    for p in (page..bytes.len()).step_by(page) {
        cuts.extend([p - 1, p, p + 1, p + 7, p + 8]);
    }
    cuts.push(big_samples_end as usize - 1);
    cuts.push(big_samples_end as usize);
    cuts.retain(|c| *c <= bytes.len());
    for cut in cuts {
        let work = tempfile::tempdir().unwrap();
        copy_dir(base.path(), work.path());
        let seg_copy = work.path().join("wal").join(&seg_name);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&seg_copy)
            .unwrap();
        f.set_len(cut as u64).unwrap();
        drop(f);
        let db = Db::open(work.path(), opts())
            .unwrap_or_else(|e| panic!("reopen after cut at {cut} failed: {e}"));
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        let n_big = q
            .select(&[Matcher::equal("__name__", "wal_fault_big")])
            .unwrap()
            .iter()
            .filter(|s| !s.samples().unwrap().is_empty())
            .count();
        let want = if cut as u64 >= big_samples_end {
            BIG_COMMIT_SERIES
        } else {
            0
        };
        assert_eq!(n_big, want, "cut at {cut}: big commit partially replayed");
        let small = q.select(&[Matcher::equal("__name__", METRIC)]).unwrap();
        let first_commit_end = spans.iter().find(|s| s.2 == RECORD_SAMPLES).unwrap().1;
        assert_eq!(
            small.len(),
            usize::from(cut as u64 >= first_commit_end),
            "cut at {cut}"
        );
        drop(q);
        let mut app = db.appender();
        app.append(&big[0], 3 * STEP_MS, 0.5).unwrap();
        assert_eq!(app.commit().unwrap().appended, 1, "cut at {cut}");
    }
}
