//! Benchmarks of postings: intersection and union of large lists, `postings_for_matchers`
//! and series reads on a 100k-series block index, and opening that index.

use std::collections::BTreeSet;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use vigil_storage::index::{
    postings_for_matchers, ChunkMeta, IndexReader, IndexWriter, RoaringBitmap,
};
use vigil_storage::{Labels, MatchType, Matcher};

/// Refs in a real block are offset/16 and series entries take 3-5 slots: step 3.
const REF_STEP: u32 = 3;
const SERIES: usize = 100_000;

fn large_lists() -> (RoaringBitmap, RoaringBitmap) {
    let big: RoaringBitmap = (0..1_000_000u32).map(|i| i * REF_STEP).collect();
    // 100k refs spread over the same range, half of them in `big`.
    let small: RoaringBitmap = (0..100_000u32)
        .map(|i| i * 10 * REF_STEP + (i % 2))
        .collect();
    (big, small)
}

fn bench_set_ops(c: &mut Criterion) {
    let (big, small) = large_lists();
    c.bench_function("intersect 1M x 100k", |b| {
        b.iter(|| black_box(&big & &small).len())
    });
    c.bench_function("union 1M + 100k", |b| {
        b.iter(|| black_box(&big | &small).len())
    });
    c.bench_function("subtract 1M - 100k", |b| {
        b.iter(|| black_box(&big - &small).len())
    });
}

fn build_index(dir: &std::path::Path) -> std::path::PathBuf {
    let mut series: Vec<Labels> = (0..SERIES)
        .map(|i| {
            Labels::from_pairs(&[
                ("__name__", format!("metric_{}", i % 100)),
                ("instance", format!("host-{}:9100", i % 1000)),
                ("job", format!("job-{}", i % 10)),
                ("series", format!("{i}")),
            ])
            .expect("valid labels")
        })
        .collect();
    series.sort();
    let mut symbols = BTreeSet::new();
    for l in &series {
        for p in l {
            symbols.insert(p.name.to_string());
            symbols.insert(p.value.to_string());
        }
    }
    let path = dir.join("index");
    let mut w = IndexWriter::create(&path).expect("create");
    w.add_symbols(symbols.iter().map(String::as_str))
        .expect("symbols");
    let chunk = |k: i64| ChunkMeta {
        min_time: k * 7_200_000,
        max_time: k * 7_200_000 + 7_199_000,
        chunk_ref: k as u64 * 1024,
    };
    for l in &series {
        w.add_series(l, &[chunk(0), chunk(1), chunk(2)])
            .expect("series");
    }
    w.finish().expect("finish");
    path
}

fn bench_index(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = build_index(dir.path());
    c.bench_function("open 100k-series index", |b| {
        b.iter(|| IndexReader::open(&path).expect("open").size_bytes())
    });
    let r = IndexReader::open(&path).expect("open");
    let m = |t, n: &str, v: &str| Matcher::new(t, n, v).expect("matcher");
    let cases = [
        ("name=", vec![m(MatchType::Equal, "__name__", "metric_1")]),
        (
            "name= job!=",
            vec![
                m(MatchType::Equal, "__name__", "metric_1"),
                m(MatchType::NotEqual, "job", "job-2"),
            ],
        ),
        (
            "instance=~prefix",
            vec![m(MatchType::Regex, "instance", "host-1.*")],
        ),
        (
            "job=~set instance!~prefix",
            vec![
                m(MatchType::Regex, "job", "job-1|job-2"),
                m(MatchType::NotRegex, "instance", "host-9.*"),
            ],
        ),
        (
            "name=~regex",
            vec![m(MatchType::Regex, "__name__", "metric_.*5")],
        ),
        (
            "series=~regex (100k values)",
            vec![m(MatchType::Regex, "series", "1.*7")],
        ),
        ("job!=\"\"", vec![m(MatchType::NotEqual, "job", "")]),
    ];
    for (name, ms) in &cases {
        let n = postings_for_matchers(&r, ms).expect("select").len();
        c.bench_function(
            &format!("postings_for_matchers 100k {name} ({n} series)"),
            |b| {
                b.iter(|| {
                    postings_for_matchers(&r, black_box(ms))
                        .expect("select")
                        .len()
                })
            },
        );
    }
    let refs: Vec<u32> = r.all_postings().expect("all").iter().step_by(100).collect();
    c.bench_function("read 1000 series (labels + 3 chunk metas)", |b| {
        let mut chunks = Vec::new();
        b.iter(|| {
            for &s in &refs {
                black_box(r.series(u64::from(s), &mut chunks).expect("series"));
            }
        })
    });
    c.bench_function("label_values(series) 100k", |b| {
        b.iter(|| r.label_values("series").expect("values").len())
    });
}

criterion_group!(benches, bench_set_ops, bench_index);
criterion_main!(benches);
