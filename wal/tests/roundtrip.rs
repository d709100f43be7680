//! Round trips: records of random sizes (empty to several pages) written through `Wal::log`
//! in random batches, across segment rotation, close and reopen, read back byte-exact and
//! in order. Concurrent writers (group commit) keep each caller's own order.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{read_dir_clean, record, Rng};
use proptest::prelude::*;
use vigil_wal::{list_segments, Error, Reader, Wal, WalOptions, MAX_FRAGMENT_DATA, PAGE_SIZE};

fn record_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        0usize..64,
        64usize..4096,
        4096usize..(2 * MAX_FRAGMENT_DATA),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn records_round_trip_across_rotation_and_reopen(
        lens in proptest::collection::vec(record_len(), 1..60),
        batch_sizes in proptest::collection::vec(1usize..5, 1..20),
        pages in 2u64..5,
        compress in any::<bool>(),
        reopen_at in 0usize..60,
        seed in any::<u64>(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let opts = WalOptions { segment_size_bytes: pages * PAGE_SIZE as u64, compress };
        let mut rng = Rng::new(seed);
        let records: Vec<Vec<u8>> = lens
            .iter()
            .map(|&n| record(&mut rng, n, compress && n % 2 == 0))
            .collect();
        let mut wal = Some(Wal::open(dir, opts.clone()).unwrap());
        let mut i = 0;
        let mut b = 0;
        while i < records.len() {
            let n = batch_sizes[b % batch_sizes.len()].min(records.len() - i);
            b += 1;
            let batch: Vec<&[u8]> = records[i..i + n].iter().map(|r| r.as_slice()).collect();
            wal.as_ref().unwrap().log(&batch).unwrap();
            i += n;
            if i >= reopen_at && b % 3 == 0 {
                wal.take().unwrap().close().unwrap();
                wal = Some(Wal::open(dir, opts.clone()).unwrap());
            }
        }
        let w = wal.take().unwrap();
        let (first, last) = w.segment_range().unwrap();
        prop_assert_eq!(first, 0);
        prop_assert_eq!(last, w.current_segment());
        w.close().unwrap();
        let got = read_dir_clean(dir);
        prop_assert_eq!(got.len(), records.len());
        prop_assert!(got == records);
        // No segment file exceeds the size limit.
        for (_, path) in list_segments(dir).unwrap() {
            let len = std::fs::metadata(path).unwrap().len();
            prop_assert!(len <= opts.segment_size_bytes);
            prop_assert_eq!(len % PAGE_SIZE as u64, 0);
        }
    }
}

#[test]
fn reader_range_selects_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let wal = Wal::open(tmp.path(), WalOptions::default()).unwrap();
    wal.log(&[b"zero"]).unwrap();
    assert_eq!(wal.next_segment().unwrap(), 1);
    wal.log(&[b"one"]).unwrap();
    assert_eq!(wal.next_segment().unwrap(), 2);
    wal.log(&[b"two"]).unwrap();
    wal.close().unwrap();
    let read = |first, last| {
        let mut r = Reader::open(tmp.path(), first, last).unwrap();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while r.next_record(&mut buf).unwrap() {
            out.push((r.segment(), String::from_utf8(buf.clone()).unwrap()));
        }
        out
    };
    assert_eq!(read(1, Some(1)), vec![(1, "one".to_string())]);
    assert_eq!(
        read(1, None),
        vec![(1, "one".to_string()), (2, "two".to_string())]
    );
    assert!(read(3, None).is_empty());
}

#[test]
fn open_starts_a_new_segment_and_never_appends_to_old_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let wal = Wal::open(tmp.path(), WalOptions::default()).unwrap();
    wal.log(&[b"a"]).unwrap();
    drop(wal); // no close: the last page stays short, as after a crash
    let before = std::fs::read(tmp.path().join("00000000")).unwrap();
    let wal = Wal::open(tmp.path(), WalOptions::default()).unwrap();
    assert_eq!(wal.current_segment(), 1);
    wal.log(&[b"b"]).unwrap();
    wal.close().unwrap();
    assert_eq!(std::fs::read(tmp.path().join("00000000")).unwrap(), before);
    assert_eq!(
        read_dir_clean(tmp.path()),
        vec![b"a".to_vec(), b"b".to_vec()]
    );
}

#[test]
fn record_too_large_is_rejected_without_poisoning() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_size_bytes: PAGE_SIZE as u64,
        compress: false,
    };
    let wal = Wal::open(tmp.path(), opts).unwrap();
    let big = vec![1u8; MAX_FRAGMENT_DATA + 1];
    assert!(matches!(wal.log(&[&big]), Err(Error::RecordTooLarge(_))));
    wal.log(&[b"still fine"]).unwrap();
    wal.close().unwrap();
}

#[test]
fn invalid_segment_size_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_size_bytes: 1000,
        compress: false,
    };
    assert!(matches!(
        Wal::open(tmp.path(), opts),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn group_commit_keeps_every_threads_order() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 300;
    let tmp = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_size_bytes: 8 * PAGE_SIZE as u64,
        compress: true,
    };
    let wal = Arc::new(Wal::open(tmp.path(), opts).unwrap());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let mut rng = Rng::new(t + 1);
                for seq in 0..PER_THREAD {
                    let mut rec = Vec::new();
                    rec.extend_from_slice(&t.to_be_bytes());
                    rec.extend_from_slice(&seq.to_be_bytes());
                    let n = rng.below(3000) as usize;
                    rec.extend(record(&mut rng, n, seq % 2 == 0));
                    // Two records per call: they must stay adjacent.
                    let twin = rec.clone();
                    wal.log(&[&rec, &twin]).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let stats = wal.stats();
    assert_eq!(stats.records_written, THREADS * PER_THREAD * 2);
    assert!(stats.group_commits <= THREADS * PER_THREAD);
    assert_eq!(stats.fsyncs, stats.group_commits + stats.current_segment);
    Arc::try_unwrap(wal).ok().unwrap().close().unwrap();

    let got = read_dir_clean(tmp.path());
    assert_eq!(got.len() as u64, THREADS * PER_THREAD * 2);
    let mut next = vec![0u64; THREADS as usize];
    for pair in got.chunks(2) {
        assert_eq!(pair[0], pair[1], "records of one call are adjacent");
        let t = u64::from_be_bytes(pair[0][..8].try_into().unwrap());
        let seq = u64::from_be_bytes(pair[0][8..16].try_into().unwrap());
        assert_eq!(seq, next[t as usize], "thread {t} out of order");
        next[t as usize] += 1;
    }
    assert!(next.iter().all(|&n| n == PER_THREAD));
}
