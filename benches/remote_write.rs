//! Remote-write receive throughput (samples/s): snappy decompression, protobuf decoding,
//! label validation, appends and the WAL commit of one 2000-series request with one sample
//! per series, for RW 1.0 and RW 2.0, through `remote::handler::process` on a temporary
//! database. Every iteration carries new timestamps so that it really appends. Benchmarks
//! only; never asserts on time.

use std::cell::Cell;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use prost::Message;
use vigil::remote::handler::{process, Protocol};
use vigil::remote::proto::{
    Label, RequestV2, Sample, SampleV2, TimeSeries, TimeSeriesV2, WriteRequest,
};
use vigil::remote::{Limits, Receiver};
use vigil_storage::{Db, DbOptions};

const SERIES: usize = 2000;
const JOBS: usize = 4;
const INSTANCES_PER_JOB: usize = 10;

/// node_exporter-like label sets: name, job, instance, cpu/mode-ish labels.
fn series_labels() -> Vec<Vec<(String, String)>> {
    (0..SERIES)
        .map(|i| {
            vec![
                ("__name__".into(), format!("node_metric_{}", i % 50)),
                ("job".into(), format!("job_{}", i % JOBS)),
                (
                    "instance".into(),
                    format!("host-{}:9100", (i / 50) % INSTANCES_PER_JOB),
                ),
                ("device".into(), format!("dev{}", i / 500)),
                ("mode".into(), format!("mode_{}", (i / 50) % 8)),
            ]
        })
        .collect()
}

fn v1_body(labels: &[Vec<(String, String)>], t: i64) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: labels
            .iter()
            .enumerate()
            .map(|(i, ls)| TimeSeries {
                labels: ls
                    .iter()
                    .map(|(n, v)| Label {
                        name: Bytes::from(n.clone()),
                        value: Bytes::from(v.clone()),
                    })
                    .collect(),
                samples: vec![Sample {
                    value: i as f64 + t as f64,
                    timestamp: t,
                }],
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap_or_default()
}

fn v2_body(labels: &[Vec<(String, String)>], t: i64) -> Vec<u8> {
    let mut symbols: Vec<Bytes> = vec![Bytes::new()];
    let mut index = std::collections::HashMap::new();
    let mut sym = |s: &str| -> u32 {
        *index.entry(s.to_string()).or_insert_with(|| {
            symbols.push(Bytes::from(s.to_string()));
            (symbols.len() - 1) as u32
        })
    };
    let timeseries = labels
        .iter()
        .enumerate()
        .map(|(i, ls)| TimeSeriesV2 {
            labels_refs: ls.iter().flat_map(|(n, v)| [sym(n), sym(v)]).collect(),
            samples: vec![SampleV2 {
                value: i as f64 + t as f64,
                timestamp: t,
                start_timestamp: 0,
            }],
            ..Default::default()
        })
        .collect();
    let req = RequestV2 {
        symbols,
        timeseries,
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let labels = series_labels();
    let mut g = c.benchmark_group("remote_write_2000_series");
    g.throughput(Throughput::Elements(SERIES as u64));
    for (name, protocol) in [("v1", Protocol::V1), ("v2", Protocol::V2)] {
        let Ok(dir) = tempfile::tempdir() else { return };
        let Ok(db) = Db::open(dir.path(), DbOptions::default()) else {
            return;
        };
        let rx = Receiver::new(Limits::default());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let next_t = Cell::new(now - 3_600_000);
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let t = next_t.get();
                    next_t.set(t + 1);
                    match protocol {
                        Protocol::V1 => v1_body(&labels, t),
                        Protocol::V2 => v2_body(&labels, t),
                    }
                },
                |body| {
                    let out = process(&rx, &db, protocol, &body);
                    assert!(
                        matches!(&out, Ok(o) if o.samples_written == SERIES as u64),
                        "{out:?}"
                    );
                    black_box(out)
                },
                BatchSize::SmallInput,
            )
        });
        let _ = db.close();
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
