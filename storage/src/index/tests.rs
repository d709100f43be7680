//! Tests for the index writer and reader: round trips, golden bytes (hand-computed, and a
//! file written by Prometheus 2.42 that our writer must reproduce byte for byte), and
//! corruption detection in every section.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use roaring::RoaringBitmap;

use super::*;
use crate::error::Error;
use crate::labels::Labels;

/// Writes an index holding `series` (any order) and returns its path and the refs in
/// label-set order.
pub(super) fn write_index(
    dir: &Path,
    series: &[(Labels, Vec<ChunkMeta>)],
) -> (PathBuf, Vec<(Labels, Vec<ChunkMeta>, u64)>) {
    let mut sorted: Vec<_> = series.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut symbols = BTreeSet::new();
    for (l, _) in &sorted {
        for p in l {
            symbols.insert(p.name.to_string());
            symbols.insert(p.value.to_string());
        }
    }
    let path = dir.join("index");
    let mut w = IndexWriter::create(&path).unwrap();
    w.add_symbols(symbols.iter().map(String::as_str)).unwrap();
    let mut out = Vec::new();
    for (l, c) in sorted {
        let r = w.add_series(&l, &c).unwrap();
        out.push((l, c, r));
    }
    w.finish().unwrap();
    (path, out)
}

fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs).unwrap()
}

fn chunk(min_time: i64, max_time: i64, chunk_ref: u64) -> ChunkMeta {
    ChunkMeta {
        min_time,
        max_time,
        chunk_ref,
    }
}

fn bitmap(refs: impl IntoIterator<Item = u64>) -> RoaringBitmap {
    refs.into_iter().map(|r| r as u32).collect()
}

#[test]
fn round_trip_with_unicode_and_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let series = vec![
        (
            ls(&[("__name__", "up"), ("job", "día"), ("zone", "日本語")]),
            vec![
                chunk(-5, 10, 8),
                chunk(11, 11, 100),
                chunk(1_000, 7_200_000, 50),
            ],
        ),
        (ls(&[("__name__", "up"), ("job", "a\nb")]), vec![]),
        (
            ls(&[("__name__", "😀"), ("job", "x")]),
            vec![chunk(i64::MIN + 1, i64::MIN + 2, u64::MAX)],
        ),
        (
            ls(&[("__name__", "up"), ("job", "x")]),
            vec![chunk(1_700_000_000_000, 1_700_000_015_000, 1 << 40)],
        ),
    ];
    let (path, written) = write_index(dir.path(), &series);
    let r = IndexReader::open(&path).unwrap();
    assert_eq!(r.size_bytes(), std::fs::metadata(&path).unwrap().len());

    let symbols: Vec<&str> = r.symbols().map(|s| s.unwrap()).collect();
    let mut expect: Vec<&str> = vec![
        "__name__",
        "up",
        "job",
        "día",
        "zone",
        "日本語",
        "a\nb",
        "😀",
        "x",
    ];
    expect.sort();
    assert_eq!(symbols, expect);

    assert_eq!(r.label_names().unwrap(), vec!["__name__", "job", "zone"]);
    assert_eq!(r.label_values("job").unwrap(), vec!["a\nb", "día", "x"]);
    assert_eq!(r.label_values("__name__").unwrap(), vec!["up", "😀"]);
    assert!(r.label_values("nope").unwrap().is_empty());
    assert!(r.label_values("").unwrap().is_empty());

    let mut chunks = Vec::new();
    for (l, c, sref) in &written {
        assert_eq!(&r.series(*sref, &mut chunks).unwrap(), l);
        assert_eq!(&chunks, c);
    }
    assert_eq!(
        r.all_postings().unwrap(),
        bitmap(written.iter().map(|w| w.2))
    );
    let refs_where =
        |f: &dyn Fn(&Labels) -> bool| bitmap(written.iter().filter(|w| f(&w.0)).map(|w| w.2));
    assert_eq!(
        r.postings("job", &["x"]).unwrap(),
        refs_where(&|l| l.get("job") == Some("x"))
    );
    assert_eq!(
        r.postings("job", &["x", "día", "missing", "x"]).unwrap(),
        refs_where(&|l| matches!(l.get("job"), Some("x") | Some("día")))
    );
    assert!(r.postings("job", &[]).unwrap().is_empty());
    assert!(r.postings("nope", &["x"]).unwrap().is_empty());
    assert_eq!(r.verify().unwrap(), series.len());
}

#[test]
fn many_series_exercise_sampled_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let n = 3000;
    let series: Vec<_> = (0..n)
        .map(|i| {
            (
                ls(&[
                    ("__name__", &format!("metric_{}", i % 7)),
                    ("instance", &format!("host-{:04}:9100", i % 250)),
                    ("series", &i.to_string()),
                ]),
                vec![chunk(i, i + 10, i as u64 * 3)],
            )
        })
        .collect();
    let (path, written) = write_index(dir.path(), &series);
    let r = IndexReader::open(&path).unwrap();
    let mut model: BTreeMap<(String, String), RoaringBitmap> = BTreeMap::new();
    for (l, _, sref) in &written {
        for p in l {
            model
                .entry((p.name.to_string(), p.value.to_string()))
                .or_default()
                .insert(*sref as u32);
        }
    }
    for ((name, value), expect) in &model {
        assert_eq!(
            &r.postings(name, &[value]).unwrap(),
            expect,
            "{name}={value}"
        );
    }
    let values = r.label_values("series").unwrap();
    let mut expect: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    expect.sort();
    assert_eq!(values, expect);
    // Values between, before and after sampled entries are absent.
    for v in ["", "0a", "00", "9999", "~", "host-0000:9100"] {
        assert!(r.postings("series", &[v]).unwrap().is_empty(), "{v}");
    }
    assert_eq!(r.all_postings().unwrap().len(), n as u64);
    assert_eq!(r.verify().unwrap(), n as usize);
    let mut chunks = Vec::new();
    for (l, c, sref) in written.iter().step_by(97) {
        assert_eq!(&r.series(*sref, &mut chunks).unwrap(), l);
        assert_eq!(&chunks, c);
    }
}

#[test]
fn cached_series_lookups_share_values_and_skip_long_symbols() {
    // Symbols longer than 127 bytes have two-byte length prefixes, which the fast skip in
    // symbol lookups must step over like any other.
    let dir = tempfile::tempdir().unwrap();
    let long = |i: i64| format!("{}{i:03}", "x".repeat(130 + (i as usize % 5)));
    let series: Vec<_> = (0..300)
        .map(|i| {
            (
                ls(&[
                    ("__name__", "m"),
                    ("job", &format!("job{}", i % 3)),
                    ("long", &long(i)),
                ]),
                vec![chunk(i, i + 1, i as u64)],
            )
        })
        .collect();
    let (path, written) = write_index(dir.path(), &series);
    let r = IndexReader::open(&path).unwrap();
    let mut cache = SymbolCache::new();
    let (mut chunks, mut cached_chunks) = (Vec::new(), Vec::new());
    let mut by_job: BTreeMap<String, Labels> = BTreeMap::new();
    for (l, c, sref) in &written {
        let plain = r.series(*sref, &mut chunks).unwrap();
        let cached = r
            .series_cached(*sref, &mut cached_chunks, &mut cache)
            .unwrap();
        assert_eq!(&plain, l);
        assert_eq!(&cached, l);
        assert_eq!(&cached_chunks, c);
        let job = cached.get("job").unwrap().to_string();
        if let Some(prev) = by_job.get(&job) {
            let (a, b) = (&prev.as_slice()[1].value, &cached.as_slice()[1].value);
            assert!(std::sync::Arc::ptr_eq(a, b), "job value shared");
        }
        by_job.insert(job, cached);
    }
}

#[test]
fn empty_index_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    IndexWriter::create(&path).unwrap().finish().unwrap();
    let r = IndexReader::open(&path).unwrap();
    assert_eq!(r.symbols().count(), 0);
    assert!(r.label_names().unwrap().is_empty());
    assert!(r.all_postings().unwrap().is_empty());
    assert_eq!(r.verify().unwrap(), 0);
}

#[test]
fn writer_enforces_its_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let mut w = IndexWriter::create(&path).unwrap();
    assert!(w.add_series(&ls(&[("a", "b")]), &[]).is_err());
    assert!(w.add_symbols(["b", "a"]).is_err());
    let mut w = IndexWriter::create(&path).unwrap();
    w.add_symbols(["a", "b", "c"]).unwrap();
    assert!(w.add_symbols(["a"]).is_err());
    assert!(
        w.add_series(&ls(&[("a", "zz")]), &[]).is_err(),
        "missing symbol"
    );
    w.add_series(&ls(&[("a", "c")]), &[]).unwrap();
    assert!(
        w.add_series(&ls(&[("a", "b")]), &[]).is_err(),
        "out of order"
    );
    assert!(w.add_series(&ls(&[("a", "c")]), &[]).is_err(), "duplicate");
    let bad_chunks = [chunk(5, 10, 1), chunk(10, 20, 2)];
    assert!(w.add_series(&ls(&[("b", "c")]), &bad_chunks).is_err());
    assert!(w.add_series(&ls(&[("b", "c")]), &[chunk(5, 4, 0)]).is_err());
    w.add_series(&ls(&[("b", "c")]), &[chunk(5, 10, 1)])
        .unwrap();
    w.finish().unwrap();
    assert_eq!(IndexReader::open(&path).unwrap().verify().unwrap(), 2);
}

/// One series `{a="b"}` with one chunk (1, 2, ref 3), laid out by hand from the format.
#[test]
fn golden_bytes_of_a_tiny_index() {
    let dir = tempfile::tempdir().unwrap();
    let (path, written) = write_index(dir.path(), &[(ls(&[("a", "b")]), vec![chunk(1, 2, 3)])]);
    let got = std::fs::read(&path).unwrap();
    let crc = |b: &[u8]| crc32c::crc32c(b).to_be_bytes().to_vec();
    let mut want: Vec<u8> = Vec::new();
    // Header.
    want.extend([0xba, 0xaa, 0xd7, 0x00, 0x02]);
    // Symbol table at 5: len 8, count 2, "a", "b", CRC.
    let body = [0, 0, 0, 2, 1, b'a', 1, b'b'];
    want.extend([0, 0, 0, 8]);
    want.extend(body);
    want.extend(crc(&body));
    assert_eq!(want.len(), 21);
    // Padding to 32, then the series (ref 2): 1 label (0, 1), 1 chunk: mint zig-zag 1 = 2,
    // span 1, ref 3.
    want.extend([0u8; 11]);
    let body = [1, 0, 1, 1, 2, 1, 3];
    want.push(7);
    want.extend(body);
    want.extend(crc(&body));
    assert_eq!(want.len(), 44);
    assert_eq!(written[0].2, 2);
    // Label index for "a" at 44: 1 name, 1 entry, symbol ref 1 ("b").
    let body = [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
    want.extend([0, 0, 0, 12]);
    want.extend(body);
    want.extend(crc(&body));
    // Postings at 64: all series [2], then a=b [2].
    let body = [0, 0, 0, 1, 0, 0, 0, 2];
    for _ in 0..2 {
        want.extend([0, 0, 0, 8]);
        want.extend(body);
        want.extend(crc(&body));
    }
    assert_eq!(want.len(), 96);
    // Label offset table at 96: 1 entry: n=1, "a", offset 44.
    let body = [0, 0, 0, 1, 1, 1, b'a', 44];
    want.extend([0, 0, 0, 8]);
    want.extend(body);
    want.extend(crc(&body));
    // Postings offset table at 112: ("", "") -> 64, ("a", "b") -> 80.
    let body = [0, 0, 0, 2, 2, 0, 0, 64, 2, 1, b'a', 1, b'b', 80];
    want.extend([0, 0, 0, 14]);
    want.extend(body);
    want.extend(crc(&body));
    assert_eq!(want.len(), 134);
    // TOC.
    let mut toc = Vec::new();
    for off in [5u64, 21, 44, 96, 64, 112] {
        toc.extend(off.to_be_bytes());
    }
    want.extend(&toc);
    want.extend(crc(&toc));
    // Compare section by section for readable failures, then whole.
    for (name, range) in [
        ("header", 0..5),
        ("symbols", 5..21),
        ("series", 21..44),
        ("label index", 44..64),
        ("postings", 64..96),
        ("label offset table", 96..112),
        ("postings offset table", 112..134),
        ("toc", 134..186),
    ] {
        assert_eq!(got.get(range.clone()), want.get(range), "{name}");
    }
    assert_eq!(got, want);
}

/// The series of `testdata/prometheus-2.42.openmetrics` as Prometheus 2.42 indexed them
/// (`promtool tsdb create-blocks-from openmetrics`), with its chunk refs and with the empty
/// string among the symbols, as Prometheus' compactor adds it.
fn prometheus_fixture_series() -> Vec<(Labels, Vec<ChunkMeta>)> {
    let t = 1_700_000_000_000;
    vec![
        (
            ls(&[
                ("__name__", "http_requests_total"),
                ("code", "200"),
                ("method", "get"),
            ]),
            vec![chunk(t, t + 15_000, 8)],
        ),
        (
            ls(&[
                ("__name__", "http_requests_total"),
                ("code", "500"),
                ("method", "get"),
            ]),
            vec![chunk(t, t, 34)],
        ),
        (
            ls(&[("__name__", "up"), ("job", "a")]),
            vec![chunk(t, t, 57)],
        ),
        (
            ls(&[("__name__", "up"), ("job", "b")]),
            vec![chunk(t + 30_000, t + 30_000, 80)],
        ),
    ]
}

const PROMETHEUS_INDEX: &[u8] = include_bytes!("testdata/prometheus-2.42.index");

#[test]
fn writer_reproduces_prometheus_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let series = prometheus_fixture_series();
    let mut symbols = BTreeSet::new();
    symbols.insert(String::new());
    for (l, _) in &series {
        for p in l {
            symbols.insert(p.name.to_string());
            symbols.insert(p.value.to_string());
        }
    }
    let mut w = IndexWriter::create(&path).unwrap();
    w.add_symbols(symbols.iter().map(String::as_str)).unwrap();
    for (l, c) in &series {
        w.add_series(l, c).unwrap();
    }
    w.finish().unwrap();
    let got = std::fs::read(&path).unwrap();
    assert_eq!(got.len(), PROMETHEUS_INDEX.len());
    for (i, (a, b)) in got.iter().zip(PROMETHEUS_INDEX).enumerate() {
        assert_eq!(a, b, "first difference at offset {i:#x}");
    }
}

#[test]
fn reader_reads_prometheus_bytes() {
    let r = IndexReader::from_bytes(PROMETHEUS_INDEX.to_vec(), Path::new("fixture")).unwrap();
    assert_eq!(r.verify().unwrap(), 4);
    assert_eq!(
        r.label_names().unwrap(),
        vec!["__name__", "code", "job", "method"]
    );
    assert_eq!(
        r.label_values("__name__").unwrap(),
        vec!["http_requests_total", "up"]
    );
    let all = r.all_postings().unwrap();
    assert_eq!(all.iter().collect::<Vec<_>>(), vec![6, 8, 10, 12]);
    let mut chunks = Vec::new();
    for (sref, (l, c)) in all.iter().zip(prometheus_fixture_series()) {
        assert_eq!(r.series(u64::from(sref), &mut chunks).unwrap(), l);
        assert_eq!(chunks, c);
    }
    assert_eq!(
        r.postings("__name__", &["up"])
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        vec![10, 12]
    );
}

fn corruption_offset(e: Error) -> u64 {
    match e {
        Error::Corruption { offset, .. } => offset,
        other => panic!("expected corruption, got {other:?}"),
    }
}

/// Opens `bytes` and verifies every section, returning the first error.
fn check(bytes: Vec<u8>) -> Result<usize, Error> {
    IndexReader::from_bytes(bytes, Path::new("idx"))?.verify()
}

#[test]
fn a_flipped_byte_in_each_section_is_corruption_at_that_section() {
    let dir = tempfile::tempdir().unwrap();
    let series: Vec<_> = (0..40)
        .map(|i| {
            (
                ls(&[("job", &format!("j{}", i % 3)), ("n", &i.to_string())]),
                vec![chunk(i, i + 1, i as u64)],
            )
        })
        .collect();
    let (path, written) = write_index(dir.path(), &series);
    let good = std::fs::read(&path).unwrap();
    let r = IndexReader::open(&path).unwrap();
    let toc = r.toc();
    let first_series = written[0].2 * SERIES_ALIGNMENT;
    // The TOC points before the alignment padding of label indices and postings.
    let label_index = toc.label_indices.next_multiple_of(POSTINGS_ALIGNMENT);
    let postings = toc.postings.next_multiple_of(POSTINGS_ALIGNMENT);
    // A flip one byte past the start of each section's content (after its length field),
    // and where the damage must be reported.
    let cases: Vec<(&str, u64, u64)> = vec![
        ("magic", 0, 0),
        ("version", 4, 4),
        ("symbols", toc.symbols + 6, toc.symbols),
        ("series", first_series + 2, first_series),
        ("label index", label_index + 6, label_index),
        ("postings", postings + 6, postings),
        (
            "label offset table",
            toc.label_indices_table + 6,
            toc.label_indices_table,
        ),
        (
            "postings offset table",
            toc.postings_table + 6,
            toc.postings_table,
        ),
        (
            "toc",
            good.len() as u64 - 20,
            good.len() as u64 - TOC_LEN as u64,
        ),
    ];
    for (what, flip, at) in cases {
        let flip = flip as usize;
        let mut bad = good.clone();
        bad[flip] ^= 0x20;
        let e = check(bad).expect_err(what);
        assert_eq!(corruption_offset(e), at, "{what}");
    }

    // Lazily-read sections fail exactly where they are read.
    let mut bad = good.clone();
    bad[first_series as usize + 2] ^= 1;
    let r = IndexReader::from_bytes(bad, Path::new("idx")).unwrap();
    let mut chunks = Vec::new();
    let e = r.series(written[0].2, &mut chunks).unwrap_err();
    assert_eq!(corruption_offset(e), first_series);
    assert!(r.series(written[1].2, &mut chunks).is_ok());

    // Lying length: the symbol table claims more bytes than the file holds.
    let mut bad = good.clone();
    let s = toc.symbols as usize;
    bad[s..s + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(corruption_offset(check(bad).unwrap_err()), toc.symbols);

    // Refs out of range.
    let e = r.series(u64::MAX, &mut chunks).unwrap_err();
    assert!(matches!(e, Error::Corruption { .. }));
    let e = r.series(1, &mut chunks).unwrap_err();
    assert!(matches!(e, Error::Corruption { .. }));
    let e = r.series(good.len() as u64 / 16, &mut chunks).unwrap_err();
    assert!(matches!(e, Error::Corruption { .. }));
}

#[test]
fn every_truncation_and_every_bit_flip_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_index(
        dir.path(),
        &[
            (ls(&[("a", "1"), ("b", "x")]), vec![chunk(1, 5, 9)]),
            (ls(&[("a", "2")]), vec![chunk(1, 5, 9), chunk(6, 8, 20)]),
        ],
    );
    let good = std::fs::read(&path).unwrap();
    for len in 0..good.len() {
        let e = check(good[..len].to_vec()).unwrap_err();
        assert!(matches!(e, Error::Corruption { .. }), "len {len}: {e:?}");
    }
    // Every single-bit flip is caught by magic, version, a CRC, or (in padding) harmless.
    let mut undetected = 0;
    for i in 0..good.len() {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[i] ^= 1 << bit;
            if check(bad).is_ok() {
                undetected += 1;
            }
        }
    }
    let padding_bits = 8 * good.iter().filter(|&&b| b == 0).count();
    assert!(undetected <= padding_bits, "{undetected} undetected flips");
}
