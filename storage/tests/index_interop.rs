//! Interop of the block index with Prometheus' own tools: an index written by Prometheus
//! (`promtool tsdb create-blocks-from openmetrics`) must read back exactly, and an index we
//! write must be read by `promtool tsdb analyze` with the same counts. Skipped with a note
//! when `promtool` is not on PATH, unless `VIGIL_REQUIRE_INTEROP=1`, which makes it fail.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_storage::index::{ChunkMeta, IndexReader, IndexWriter};
use vigil_storage::Labels;

fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("VIGIL_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("promtool not found on PATH and VIGIL_REQUIRE_INTEROP=1");
        }
        eprintln!("note: promtool not on PATH; skipping index interop test");
    }
    found
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The only block directory under `dir`.
fn block_dir(dir: &Path) -> PathBuf {
    let blocks: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("index").is_file())
        .collect();
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    blocks[0].clone()
}

/// A test series: label pairs and sample timestamps in seconds.
type TestSeries = (Vec<(String, String)>, Vec<i64>);

fn test_series() -> Vec<TestSeries> {
    let t0 = 1_700_000_000;
    let mut out = Vec::new();
    for i in 0..300 {
        let mut labels = vec![
            ("__name__".to_string(), format!("metric_{}", i % 5)),
            ("instance".to_string(), format!("host-{}:9100", i % 40)),
            ("series".to_string(), format!("s{i}")),
        ];
        if i % 3 == 0 {
            labels.push((
                "zone".to_string(),
                ["eu-1", "日本", "ü"][i % 9 / 3].to_string(),
            ));
        }
        let times = (0..1 + i as i64 % 3)
            .map(|k| t0 + k * 15 + i as i64)
            .collect();
        out.push((labels, times));
    }
    out
}

#[test]
fn prometheus_written_index_reads_back_exactly() {
    let Some(promtool) = promtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut om = String::new();
    let series = test_series();
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (l, _)) in series.iter().enumerate() {
        by_name.entry(&l[0].1).or_default().push(i);
    }
    for (name, idxs) in &by_name {
        om.push_str(&format!("# TYPE {name} gauge\n"));
        for &i in idxs {
            let (l, times) = &series[i];
            let rest: Vec<String> = l[1..].iter().map(|(n, v)| format!("{n}=\"{v}\"")).collect();
            for t in times {
                om.push_str(&format!("{name}{{{}}} 1 {t}\n", rest.join(",")));
            }
        }
    }
    om.push_str("# EOF\n");
    let input = dir.path().join("input.om");
    std::fs::write(&input, om).unwrap();
    let out = dir.path().join("data");
    run(Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&out));
    let block = block_dir(&out);

    let r = IndexReader::open(&block.join("index")).unwrap();
    assert_eq!(r.verify().unwrap(), series.len());
    let mut want: BTreeMap<Labels, (i64, i64)> = BTreeMap::new();
    for (l, times) in &series {
        let labels = Labels::from_pairs(l).unwrap();
        let min = times.iter().min().unwrap() * 1000;
        let max = times.iter().max().unwrap() * 1000;
        want.insert(labels, (min, max));
    }
    let all = r.all_postings().unwrap();
    assert_eq!(all.len(), series.len() as u64);
    let mut chunks = Vec::new();
    let mut pairs: BTreeMap<(String, String), u64> = BTreeMap::new();
    for sref in &all {
        let labels = r.series(u64::from(sref), &mut chunks).unwrap();
        let (min, max) = want
            .remove(&labels)
            .unwrap_or_else(|| panic!("unexpected {labels}"));
        assert_eq!(chunks.len(), 1, "{labels}");
        assert_eq!((chunks[0].min_time, chunks[0].max_time), (min, max));
        for l in &labels {
            assert!(r.postings(&l.name, &[&l.value]).unwrap().contains(sref));
            *pairs
                .entry((l.name.to_string(), l.value.to_string()))
                .or_default() += 1;
        }
    }
    assert!(want.is_empty(), "series missing from the index: {want:?}");
    assert_eq!(
        r.label_names().unwrap(),
        vec!["__name__", "instance", "series", "zone"]
    );
    let zones: BTreeSet<String> = pairs
        .keys()
        .filter(|(n, _)| n == "zone")
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(
        r.label_values("zone").unwrap(),
        zones.into_iter().collect::<Vec<_>>()
    );
    for ((n, v), count) in &pairs {
        assert_eq!(r.postings(n, &[v]).unwrap().len(), *count, "{n}={v}");
    }
}

#[test]
fn promtool_analyzes_an_index_we_wrote() {
    let Some(promtool) = promtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ulid = "01HZZZZZZZZZZZZZZZZZZZZZZZ";
    let block = dir.path().join(ulid);
    std::fs::create_dir_all(block.join("chunks")).unwrap();
    let series = test_series();
    let mut sorted: Vec<Labels> = series
        .iter()
        .map(|(l, _)| Labels::from_pairs(l).unwrap())
        .collect();
    sorted.sort();
    let mut symbols = BTreeSet::new();
    let mut pairs = BTreeSet::new();
    let mut pair_entries = 0;
    for l in &sorted {
        for p in l {
            symbols.insert(p.name.to_string());
            symbols.insert(p.value.to_string());
            pairs.insert((p.name.to_string(), p.value.to_string()));
            pair_entries += 1;
        }
    }
    let (min_t, max_t) = (1_700_000_000_000i64, 1_700_000_100_000i64);
    let mut w = IndexWriter::create(&block.join("index")).unwrap();
    w.add_symbols(symbols.iter().map(String::as_str)).unwrap();
    for (i, l) in sorted.iter().enumerate() {
        let chunk = ChunkMeta {
            min_time: min_t + i as i64,
            max_time: min_t + 1000 + i as i64,
            chunk_ref: 8 + 100 * i as u64,
        };
        w.add_series(l, &[chunk]).unwrap();
    }
    w.finish().unwrap();
    // Tombstones: magic 0x0130BA30, version 1, CRC32 of no entries.
    std::fs::write(
        block.join("tombstones"),
        [1, 0x30, 0xba, 0x30, 1, 0, 0, 0, 0],
    )
    .unwrap();
    let meta = format!(
        r#"{{"ulid":"{ulid}","minTime":{min_t},"maxTime":{max_t},"stats":{{"numSamples":0,"numSeries":{},"numChunks":{}}},"compaction":{{"level":1,"sources":["{ulid}"]}},"version":1}}"#,
        sorted.len(),
        sorted.len()
    );
    std::fs::write(block.join("meta.json"), meta).unwrap();

    let out = run(Command::new(&promtool)
        .args(["tsdb", "analyze"])
        .arg(dir.path())
        .arg(ulid));
    let field = |name: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name:?} in:\n{out}"))
    };
    assert_eq!(field("Series:"), sorted.len() as u64);
    assert_eq!(field("Label names:"), 4);
    assert_eq!(field("Postings (unique label pairs):"), pairs.len() as u64);
    assert_eq!(
        field("Postings entries (total label pairs):"),
        pair_entries as u64
    );
    assert!(out.contains("Highest cardinality labels:"), "{out}");
    assert!(out.contains("300 series"), "{out}");

    let listed = run(Command::new(&promtool)
        .args(["tsdb", "list"])
        .arg(dir.path()));
    assert!(listed.contains(ulid), "{listed}");
}
