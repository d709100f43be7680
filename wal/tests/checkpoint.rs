//! Checkpoints: the filter drops and rewrites records; the previous checkpoint is folded
//! into the next one and then deleted; stale `.tmp` directories are removed; ranges with
//! gaps or missing segments are refused and leave nothing behind.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;

use common::read_dir_clean;
use vigil_wal::{
    checkpoint, delete_checkpoints_below, last_checkpoint, Error, Wal, WalOptions, PAGE_SIZE,
};

fn opts() -> WalOptions {
    WalOptions {
        segment_size_bytes: 2 * PAGE_SIZE as u64,
        compress: true,
    }
}

/// Writes `names` as records, one segment per inner list.
fn write_segments(wal: &Wal, segments: &[&[&str]]) {
    for (i, recs) in segments.iter().enumerate() {
        let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_bytes()).collect();
        wal.log(&refs).unwrap();
        if i + 1 < segments.len() {
            wal.next_segment().unwrap();
        }
    }
}

/// Drops `drop:*`, rewrites `old:*` to `new:*`, keeps the rest.
fn filter(rec: &[u8]) -> Option<Vec<u8>> {
    if rec.starts_with(b"drop:") {
        None
    } else if let Some(rest) = rec.strip_prefix(b"old:") {
        Some([b"new:".as_slice(), rest].concat())
    } else {
        Some(rec.to_vec())
    }
}

fn strings(recs: Vec<Vec<u8>>) -> Vec<String> {
    recs.into_iter()
        .map(|r| String::from_utf8(r).unwrap())
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn checkpoint_filters_folds_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let wal = Wal::open(dir, opts()).unwrap();
    write_segments(
        &wal,
        &[
            &["keep:a", "drop:b", "old:c"],
            &["drop:d", "keep:e"],
            &["keep:f"],
        ],
    );
    assert_eq!(wal.current_segment(), 2);

    let stats = checkpoint(dir, 0, 1, &mut filter, &opts()).unwrap();
    assert_eq!(stats.index, 1);
    assert_eq!(stats.records_read, 5);
    assert_eq!(stats.records_dropped, 2);
    assert_eq!(stats.records_kept, 3);
    assert_eq!(stats.records_rewritten, 1);
    let (index, cp1) = last_checkpoint(dir).unwrap().unwrap();
    assert_eq!(index, 1);
    assert_eq!(cp1, dir.join("checkpoint.00000001"));
    assert_eq!(strings(read_dir_clean(&cp1)), ["keep:a", "new:c", "keep:e"]);
    wal.truncate(2).unwrap();
    assert_eq!(wal.segment_range().unwrap(), (2, 2));

    // More segments, a stale tmp dir from a crashed run, then the next checkpoint.
    wal.next_segment().unwrap();
    write_segments(&wal, &[&["drop:g", "old:h"]]);
    wal.next_segment().unwrap();
    fs::create_dir(dir.join("checkpoint.00000002.tmp")).unwrap();
    fs::write(
        dir.join("checkpoint.00000002.tmp").join("00000000"),
        b"junk",
    )
    .unwrap();

    let mut seen = Vec::new();
    let mut keep = |rec: &[u8]| {
        seen.push(String::from_utf8(rec.to_vec()).unwrap());
        filter(rec)
    };
    let stats = checkpoint(dir, 2, 3, &mut keep, &opts()).unwrap();
    // The old checkpoint's records come first, then segments 2 and 3.
    assert_eq!(
        seen,
        ["keep:a", "new:c", "keep:e", "keep:f", "drop:g", "old:h"]
    );
    assert_eq!(stats.index, 3);
    let (index, cp3) = last_checkpoint(dir).unwrap().unwrap();
    assert_eq!(index, 3);
    assert_eq!(
        strings(read_dir_clean(&cp3)),
        ["keep:a", "new:c", "keep:e", "keep:f", "new:h"]
    );
    // Older checkpoint and stale tmp dir are gone; WAL segments untouched.
    assert_eq!(
        names(dir),
        ["00000002", "00000003", "00000004", "checkpoint.00000003"]
    );
    wal.close().unwrap();
}

#[test]
fn checkpoint_refuses_gaps_and_missing_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let wal = Wal::open(dir, opts()).unwrap();
    write_segments(&wal, &[&["a"], &["b"], &["c"], &["d"]]);
    checkpoint(dir, 0, 0, &mut filter, &opts()).unwrap();
    // Checkpoint 0 exists; starting at 2 would skip segment 1.
    assert!(matches!(
        checkpoint(dir, 2, 2, &mut filter, &opts()),
        Err(Error::InvalidArgument(_))
    ));
    // Checkpoint 0 already covers segment 0.
    assert!(matches!(
        checkpoint(dir, 0, 0, &mut filter, &opts()),
        Err(Error::InvalidArgument(_))
    ));
    fs::remove_file(dir.join("00000002")).unwrap();
    assert!(matches!(
        checkpoint(dir, 1, 3, &mut filter, &opts()),
        Err(Error::MissingSegment { segment: 2, .. })
    ));
    // Nothing half-written is left behind, and the old checkpoint survives.
    assert_eq!(last_checkpoint(dir).unwrap().unwrap().0, 0);
    assert!(!names(dir).iter().any(|n| n.ends_with(".tmp")));
    wal.close().unwrap();
}

#[test]
fn corrupt_segment_aborts_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let wal = Wal::open(dir, opts()).unwrap();
    write_segments(&wal, &[&["hello world"], &["x"]]);
    let path = dir.join("00000000");
    let mut data = fs::read(&path).unwrap();
    data[8] ^= 0xff;
    fs::write(&path, data).unwrap();
    assert!(matches!(
        checkpoint(dir, 0, 0, &mut filter, &opts()),
        Err(Error::Corruption { segment: 0, .. })
    ));
    assert!(last_checkpoint(dir).unwrap().is_none());
    assert!(!names(dir).iter().any(|n| n.starts_with("checkpoint")));
    wal.close().unwrap();
}

#[test]
fn delete_checkpoints_below_keeps_newer_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for n in [
        "checkpoint.00000001",
        "checkpoint.00000004",
        "checkpoint.00000007",
    ] {
        fs::create_dir(dir.join(n)).unwrap();
    }
    fs::create_dir(dir.join("checkpoint.00000002.tmp")).unwrap();
    delete_checkpoints_below(dir, 7).unwrap();
    assert_eq!(names(dir), ["checkpoint.00000007"]);
    assert_eq!(last_checkpoint(dir).unwrap().unwrap().0, 7);
}
