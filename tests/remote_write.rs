//! Black-box tests of `POST /api/v1/write` through a real listening server (in-process
//! `vigil::server::serve` on 127.0.0.1:0 over a temporary database), with a raw HTTP/1.1
//! client over `TcpStream`: every case of the RW 2.0 receiver suite
//! (`RECEIVER-CASES.md`), RW 1.0, partial writes, label validation, limits and counters.
//! Stored data is checked through the database's querier. The interop test with a real
//! Prometheus lives in `remote_write_interop.rs`.
#![allow(clippy::unwrap_used)]

mod rw_common;

use rw_common::*;
use vigil::remote::proto::{Exemplar, ExemplarV2, Histogram, HistogramCount, MetadataV2};

const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;
const NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

fn values() -> [f64; 5] {
    [
        1.0,
        f64::from_bits(STALE_NAN_BITS),
        f64::from_bits(NAN_BITS),
        f64::INFINITY,
        f64::NEG_INFINITY,
    ]
}

// ---- 3.1 float samples ------------------------------------------------------------------

#[test]
fn v2_float_samples_with_every_label_shape_and_special_value() {
    let srv = Server::start();
    let shapes: Vec<Vec<(&str, &str)>> = vec![
        vec![("__name__", "up")],
        vec![
            ("__name__", "up"),
            ("job", "testjob"),
            ("instance", "localhost:9090"),
        ],
        vec![
            ("instance", "localhost:9090"),
            ("__name__", "up"),
            ("job", "test\njob\n"),
        ],
        vec![
            ("job.name", "testjob"),
            ("__name__", "resource.cpu.usage"),
            ("instance.name", "localhost:9090"),
        ],
        vec![
            ("__name__", "resource cpu usage"),
            ("job name", "testjob"),
            ("instance name", "localhost:9090"),
        ],
    ];
    let t0 = now_ms() - 10_000;
    for (i, v) in values().iter().enumerate() {
        for labels in &shapes {
            let mut b = V2::new();
            b.series(labels, &[(t0 + i as i64, *v)]);
            let r = srv.post_v2(&b.encode());
            assert_eq!(r.status, 204, "{labels:?} {v}: {}", r.body);
            assert_eq!(r.written(), (1, 0, 0));
            assert!(r.body.is_empty());
        }
    }
    for labels in &shapes {
        let got = srv.samples(labels);
        assert_eq!(got.len(), 5, "{labels:?}");
        for (i, (t, v)) in got.iter().enumerate() {
            assert_eq!(*t, t0 + i as i64);
            assert_eq!(v.to_bits(), values()[i].to_bits(), "bit-exact value {i}");
        }
    }
}

#[test]
fn v2_series_without_name_or_labels_is_400() {
    let srv = Server::start();
    let t = now_ms();
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("job", "testjob"), ("instance", "localhost:9090")],
        vec![],
        vec![("__name__", ""), ("job", "x")],
    ];
    for labels in cases {
        let mut b = V2::new();
        b.series(&labels, &[(t, 1.0)]);
        let r = srv.post_v2(&b.encode());
        assert_eq!(r.status, 400, "{labels:?}");
        assert_eq!(r.written(), (0, 0, 0));
        assert!(r.body.contains("invalid series"), "{}", r.body);
    }
    assert_eq!(srv.series_count(), 0);
}

#[test]
fn v2_multiple_metrics_and_partial_rejection() {
    let srv = Server::start();
    let t = now_ms() - 1000;
    let insts = [
        "localhost:9090",
        "localhost:9091",
        "localhost:9092",
        "localhost:9093",
    ];
    for (k, v) in values().iter().enumerate() {
        let t = t + k as i64;
        let mut b = V2::new();
        for i in insts {
            b.series(
                &[("__name__", "up"), ("job", "testjob"), ("instance", i)],
                &[(t, *v)],
            );
        }
        let r = srv.post_v2(&b.encode());
        assert_eq!((r.status, r.written()), (204, (4, 0, 0)), "{}", r.body);

        let mut b = V2::new();
        for i in insts {
            b.series(&[("job", "nameless"), ("instance", i)], &[(t, *v)]);
        }
        let r = srv.post_v2(&b.encode());
        assert_eq!((r.status, r.written()), (400, (0, 0, 0)));

        let mut b = V2::new();
        b.series(&[("job", "partial"), ("instance", insts[0])], &[(t, *v)]);
        for i in &insts[1..] {
            b.series(
                &[("__name__", "up"), ("job", "partial"), ("instance", i)],
                &[(t, *v)],
            );
        }
        let r = srv.post_v2(&b.encode());
        assert_eq!((r.status, r.written()), (400, (3, 0, 0)), "{}", r.body);
        assert!(
            r.body.contains("skipped 1 invalid series with 1 samples"),
            "{}",
            r.body
        );
    }
    for i in insts {
        assert_eq!(
            srv.samples(&[("__name__", "up"), ("job", "testjob"), ("instance", i)])
                .len(),
            5
        );
    }
    assert!(srv
        .samples(&[
            ("__name__", "up"),
            ("job", "partial"),
            ("instance", insts[0])
        ])
        .is_empty());
    assert_eq!(
        srv.samples(&[
            ("__name__", "up"),
            ("job", "partial"),
            ("instance", insts[3])
        ])
        .len(),
        5
    );
}

#[test]
fn v2_created_and_start_timestamps_are_accepted() {
    let srv = Server::start();
    let t = now_ms();
    let mut b = V2::new();
    b.series(
        &[("__name__", "http_requests_total"), ("job", "api")],
        &[(t, 100.0)],
    )
    .created_timestamp = t - 3_600_000;
    let r = srv.post_v2(&b.encode());
    assert_eq!((r.status, r.written()), (204, (1, 0, 0)), "{}", r.body);
    let mut b = V2::new();
    b.series(
        &[("__name__", "http_requests_total"), ("job", "st")],
        &[(t, 5.0)],
    )
    .samples[0]
        .start_timestamp = t - 60_000;
    let r = srv.post_v2(&b.encode());
    assert_eq!((r.status, r.written()), (204, (1, 0, 0)));
    assert_eq!(
        srv.samples(&[("__name__", "http_requests_total"), ("job", "api")]),
        vec![(t, 100.0)]
    );
}

// ---- 3.2 native histograms, 3.3 exemplars: clearly rejected ------------------------------

fn pnz_histogram(t: i64, sum: f64) -> Histogram {
    Histogram {
        count: Some(HistogramCount::CountInt(27)),
        sum,
        timestamp: t,
        ..Default::default()
    }
}

#[test]
fn v2_native_histograms_are_rejected_with_a_clear_400() {
    let srv = Server::start();
    let before = srv.metric_value("vigil_remote_write_histograms_rejected_total");
    let t = now_ms();
    let mut b = V2::new();
    b.series(&[("__name__", "test_histogram")], &[])
        .histograms
        .push(pnz_histogram(t, 1.0));
    let r = srv.post_v2(&b.encode());
    assert_eq!((r.status, r.written()), (400, (0, 0, 0)));
    assert!(
        r.body.contains("1 native histogram samples (not supported"),
        "{}",
        r.body
    );

    // Two histograms plus metadata: both counted.
    let mut b = V2::new();
    for name in ["hist1", "hist2"] {
        let help = b.sym("help");
        let s = b.series(&[("__name__", name), ("job", "test")], &[]);
        s.histograms.push(pnz_histogram(t, 10.5));
        s.metadata = Some(MetadataV2 {
            r#type: 3,
            help_ref: help,
            unit_ref: 0,
        });
    }
    let r = srv.post_v2(&b.encode());
    assert_eq!((r.status, r.written()), (400, (0, 0, 0)));
    assert!(r.body.contains("2 native histogram samples"), "{}", r.body);
    // Counters are process-wide and tests run in parallel: they only ever grow by others.
    assert!(srv.metric_value("vigil_remote_write_histograms_rejected_total") >= before + 3.0);
}

#[test]
fn v2_exemplars_are_rejected_but_their_samples_are_stored() {
    let srv = Server::start();
    let t = now_ms();
    let mut b = V2::new();
    let (k, v) = (b.sym("trace_id"), b.sym("abc123def456"));
    b.series(
        &[("__name__", "http_requests_total"), ("job", "api")],
        &[(t, 1.0)],
    )
    .exemplars
    .push(ExemplarV2 {
        labels_refs: vec![k, v],
        value: 1.0,
        timestamp: t,
    });
    let r = srv.post_v2(&b.encode());
    assert_eq!((r.status, r.written()), (400, (1, 0, 0)));
    assert!(r.body.contains("1 exemplars (not supported"), "{}", r.body);
    assert_eq!(
        srv.samples(&[("__name__", "http_requests_total"), ("job", "api")]),
        vec![(t, 1.0)]
    );

    // An exemplar on a series without samples.
    let mut b = V2::new();
    b.series(&[("__name__", "orphan_metric")], &[])
        .exemplars
        .push(ExemplarV2 {
            labels_refs: vec![],
            value: 1.0,
            timestamp: t,
        });
    let r = srv.post_v2(&b.encode());
    assert_eq!((r.status, r.written()), (400, (0, 0, 0)));
}

// ---- 3.4 metadata ------------------------------------------------------------------------

#[test]
fn v2_metadata_of_every_type_is_stored() {
    let srv = Server::start();
    let t = now_ms();
    let cases = [
        (
            "http_requests_total",
            1,
            "Total number of HTTP requests",
            "requests",
            "counter",
        ),
        (
            "cpu_usage_percent",
            2,
            "Current CPU usage percentage",
            "percent",
            "gauge",
        ),
        ("simple_counter", 1, "", "", "counter"),
        (
            "test_metric",
            2,
            "Test metric with\nnewlines and \"quotes\"",
            "bytes/sec",
            "gauge",
        ),
        ("unknown_metric", 0, "Unknown metric type", "", "unknown"),
        ("build_info", 6, "Build information", "", "info"),
        ("node_state", 7, "Node state information", "", "stateset"),
        (
            "request_latency_summary",
            5,
            "Request latency summary",
            "seconds",
            "summary",
        ),
        (
            "temperature_histogram",
            4,
            "Temperature distribution gauge histogram",
            "celsius",
            "gaugehistogram",
        ),
    ];
    for (name, ty, help, unit, _) in cases {
        let mut b = V2::new();
        let (h, u) = (b.sym(help), b.sym(unit));
        b.series(&[("__name__", name), ("job", "test")], &[(t, 1.0)])
            .metadata = Some(MetadataV2 {
            r#type: ty,
            help_ref: h,
            unit_ref: u,
        });
        let r = srv.post_v2(&b.encode());
        assert_eq!(
            (r.status, r.written()),
            (204, (1, 0, 0)),
            "{name}: {}",
            r.body
        );
    }
    let md = srv.db.head().metadata_by_metric();
    for (name, _, help, unit, ty) in cases {
        let m = &md
            .get(name)
            .unwrap_or_else(|| panic!("no metadata for {name}"))[0];
        assert_eq!(
            (m.metric_type.as_str(), m.help.as_str(), m.unit.as_str()),
            (ty, help, unit)
        );
    }
}

#[test]
fn v2_metadata_without_samples_and_validation() {
    let srv = Server::start();
    let t = now_ms();
    let mut b = V2::new();
    b.series(&[("__name__", "orphan_metric")], &[]).metadata = Some(MetadataV2 {
        r#type: 1,
        help_ref: 0,
        unit_ref: 0,
    });
    let r = srv.post_v2(&b.encode());
    assert_eq!((r.status, r.written()), (204, (0, 0, 0)), "{}", r.body);

    for (labels, status, written) in [
        (vec![("job", "test")], 400, 0),
        (vec![("__name__", ""), ("job", "t")], 400, 0),
        (vec![("__name__", "valid_metric_name")], 204, 1),
    ] {
        let mut b = V2::new();
        let (h, u) = (b.sym("Test help"), b.sym("unit"));
        b.series(&labels, &[(t, 1.0)]).metadata = Some(MetadataV2 {
            r#type: 1,
            help_ref: h,
            unit_ref: u,
        });
        let r = srv.post_v2(&b.encode());
        assert_eq!(
            (r.status, r.written()),
            (status, (written, 0, 0)),
            "{labels:?}"
        );
    }
    // A metadata ref beyond the symbol table is an invalid series.
    let mut b = V2::new();
    b.series(&[("__name__", "bad_ref")], &[(t, 1.0)]).metadata = Some(MetadataV2 {
        r#type: 1,
        help_ref: 999,
        unit_ref: 0,
    });
    let r = srv.post_v2(&b.encode());
    assert_eq!((r.status, r.written()), (400, (0, 0, 0)));
    assert!(r.body.contains("symbol 999"), "{}", r.body);
}

// ---- 3.5 combinations --------------------------------------------------------------------

#[test]
fn v2_many_series_with_metadata_and_mixed_timestamps() {
    let srv = Server::start();
    let t = now_ms();
    let mut b = V2::new();
    for i in 0..50 {
        let (h, u) = (b.sym(&format!("Counter metric number {i}")), b.sym("count"));
        let name = format!("counter_metric_{i}");
        let ser = format!("series_{i}");
        b.series(
            &[("__name__", &name), ("series", &ser)],
            &[(t, 100.0 * i as f64)],
        )
        .metadata = Some(MetadataV2 {
            r#type: 1,
            help_ref: h,
            unit_ref: u,
        });
    }
    b.series(&[("__name__", "old_metric")], &[(t - 3_600_000, 1.0)]);
    b.series(&[("__name__", "new_metric")], &[(t, 2.0)]);
    let r = srv.post_v2(&b.encode());
    assert_eq!((r.status, r.written()), (204, (52, 0, 0)), "{}", r.body);
    assert_eq!(
        srv.samples(&[("__name__", "counter_metric_49"), ("series", "series_49")]),
        vec![(t, 4900.0)]
    );
    assert_eq!(
        srv.samples(&[("__name__", "old_metric")]),
        vec![(t - 3_600_000, 1.0)]
    );
    assert_eq!(srv.db.head().metadata_by_metric().len(), 50);

    // Three TimeSeries with identical labels in one request, oldest first.
    let mut b = V2::new();
    for (off, v) in [(3_600_000, 0.05), (60_000, 0.15), (0, 0.08)] {
        b.series(&[("__name__", "latency_hist")], &[(t - off, v)]);
    }
    let r = srv.post_v2(&b.encode());
    assert_eq!((r.status, r.written()), (204, (3, 0, 0)));
}

#[test]
fn v2_special_characters_and_unicode() {
    let srv = Server::start();
    let t = now_ms();
    let labels = [
        ("__name__", "test_metric"),
        ("job", "test-job_with.special@chars"),
        ("environment", "test🚀"),
        ("region", "🌍"),
    ];
    let mut b = V2::new();
    let (h, u) = (b.sym("äöü\n\"quoted\""), b.sym("special/units"));
    b.series(&labels, &[(t, 42.0)]).metadata = Some(MetadataV2 {
        r#type: 2,
        help_ref: h,
        unit_ref: u,
    });
    let r = srv.post_v2(&b.encode());
    assert_eq!((r.status, r.written()), (204, (1, 0, 0)));
    assert_eq!(srv.samples(&labels), vec![(t, 42.0)]);
}

// ---- 3.6 protocol ------------------------------------------------------------------------

#[test]
fn unsupported_content_type_or_encoding_is_415_and_corrupt_body_400() {
    let srv = Server::start();
    let mut b = V2::new();
    b.series(&[("__name__", "up")], &[(now_ms(), 1.0)]);
    let mut body = b.encode();
    body[0] = b'0';
    for ct in [
        "application/json",
        "image/png",
        "application/x-protobuf;proto=io.prometheus.write.v9.Request",
    ] {
        let r = srv.post(
            &[("Content-Type", ct), ("Content-Encoding", "snappy")],
            &body,
        );
        assert_eq!(r.status, 415, "{ct}");
    }
    for enc in ["gzip", "deflate", "zstd"] {
        let r = srv.post(
            &[("Content-Type", V2_CONTENT_TYPE), ("Content-Encoding", enc)],
            &body,
        );
        assert_eq!(r.status, 415, "{enc}");
    }
    let r = srv.post_v2(&body);
    assert_eq!((r.status, r.written()), (400, (0, 0, 0)));
    // Valid snappy around bytes that are not protobuf.
    let r = srv.post_v2(&snappy(b"\xff\xff\xff\xff"));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("protobuf"), "{}", r.body);
    // symbols[0] must be "".
    let r = srv.post_v2(&snappy(&encode_v2_symbols(&["x", "__name__", "up"])));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("symbols[0]"), "{}", r.body);
    assert_eq!(srv.get("/api/v1/write").status, 405);
    assert_eq!(srv.series_count(), 0);
}

// ---- 3.7 RW 1.0 --------------------------------------------------------------------------

#[test]
fn rw1_request_is_stored_without_written_headers() {
    let srv = Server::start();
    let t = now_ms();
    let body = v1_body(&[
        (
            vec![
                ("job", "testjob"),
                ("__name__", "up"),
                ("instance", "localhost:9090"),
            ],
            vec![(t, 1.0)],
        ),
        (vec![("__name__", "http_requests_total")], vec![(t, 100.0)]),
    ]);
    let r = srv.post(
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
        ],
        &body,
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(r.header(vigil::remote::HEADER_SAMPLES_WRITTEN).is_none());
    assert_eq!(
        srv.samples(&[("__name__", "http_requests_total")]),
        vec![(t, 100.0)]
    );
    // No Content-Type at all also means RW 1.0; proto=prometheus.WriteRequest too.
    let body2 = v1_body(&[(
        vec![("__name__", "http_requests_total")],
        vec![(t + 1, 101.0)],
    )]);
    assert_eq!(srv.post(&[], &body2).status, 204);
    let body3 = v1_body(&[(
        vec![("__name__", "http_requests_total")],
        vec![(t + 2, 102.0)],
    )]);
    let ct = "application/x-protobuf;proto=prometheus.WriteRequest";
    assert_eq!(srv.post(&[("Content-Type", ct)], &body3).status, 204);
    assert_eq!(srv.samples(&[("__name__", "http_requests_total")]).len(), 3);

    let mut bad = body.clone();
    bad[0] = 0xff;
    let r = srv.post_v1(&bad);
    assert_eq!(r.status, 400);
    assert!(r.header(vigil::remote::HEADER_SAMPLES_WRITTEN).is_none());
}

#[test]
fn rw1_partial_write_stores_good_samples_and_counts_each_reason() {
    let srv = Server::start();
    let names = ["too_far_in_future", "out_of_order", "duplicate"]
        .map(|r| format!("vigil_remote_write_samples_rejected_total{{reason=\"{r}\"}}"));
    let before = names.clone().map(|n| srv.metric_value(&n));
    let t = now_ms() - 60_000;
    let r = srv.post_v1(&v1_body(&[(
        vec![("__name__", "m"), ("s", "a")],
        vec![(t, 1.0), (t + 10, 2.0)],
    )]));
    assert_eq!(r.status, 204);
    let far = now_ms() + 3_600_000;
    let body = v1_body(&[
        // out of order + duplicate (same t, other value) + good
        (
            vec![("__name__", "m"), ("s", "a")],
            vec![(t + 5, 9.0), (t + 10, 3.0), (t + 20, 4.0)],
        ),
        // far future + good
        (
            vec![("__name__", "m"), ("s", "b")],
            vec![(t, 1.0), (far, 2.0)],
        ),
        // invalid series
        (vec![("__name__", "m"), ("", "x")], vec![(t, 1.0)]),
    ]);
    let r = srv.post_v1(&body);
    assert_eq!(r.status, 400);
    for want in [
        "stored 2 samples",
        "1 out-of-order samples",
        "1 duplicate samples",
        "1 samples too far in the future (more than 600s ahead)",
        "skipped 1 invalid series with 1 samples",
        "empty label name",
    ] {
        assert!(r.body.contains(want), "{want:?} not in {}", r.body);
    }
    assert_eq!(
        srv.samples(&[("__name__", "m"), ("s", "a")]),
        vec![(t, 1.0), (t + 10, 2.0), (t + 20, 4.0)]
    );
    assert_eq!(
        srv.samples(&[("__name__", "m"), ("s", "b")]),
        vec![(t, 1.0)]
    );
    // The far-future sample did not move the appendable window: later writes still work.
    let r = srv.post_v1(&v1_body(&[(
        vec![("__name__", "m"), ("s", "b")],
        vec![(t + 30, 5.0)],
    )]));
    assert_eq!(r.status, 204, "{}", r.body);
    for (n, b) in names.iter().zip(before) {
        assert!(srv.metric_value(n) >= b + 1.0, "{n}");
    }
}

#[test]
fn identical_resend_is_a_silent_noop() {
    let srv = Server::start();
    let t = now_ms();
    let body = v1_body(&[(
        vec![("__name__", "resend")],
        vec![(t, 1.0), (t + 1, f64::from_bits(STALE_NAN_BITS))],
    )]);
    assert_eq!(srv.post_v1(&body).status, 204);
    assert_eq!(srv.post_v1(&body).status, 204);
    let mut b = V2::new();
    b.series(
        &[("__name__", "resend")],
        &[(t, 1.0), (t + 1, f64::from_bits(STALE_NAN_BITS))],
    );
    let r = srv.post_v2(&b.encode());
    assert_eq!((r.status, r.written()), (204, (2, 0, 0)));
    assert_eq!(srv.samples(&[("__name__", "resend")]).len(), 2);
    // A resend where one sample differs is still refused for that sample.
    let body = v1_body(&[(
        vec![("__name__", "resend")],
        vec![(t, 2.0), (t + 1, f64::from_bits(STALE_NAN_BITS))],
    )]);
    let r = srv.post_v1(&body);
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("stored 1 samples; rejected 1 out-of-order"),
        "{}",
        r.body
    );
}

#[test]
fn rw1_invalid_labels_skip_only_their_series() {
    let srv = Server::start();
    let before = srv.metric_value("vigil_remote_write_invalid_series_total");
    let t = now_ms();
    type Pairs<'a> = Vec<(&'a [u8], &'a [u8])>;
    let bad: Vec<(Pairs, &str)> = vec![
        (vec![(b"__name__", b"m"), (b"", b"x")], "empty label name"),
        (
            vec![(b"__name__", b"m"), (b"a", b"\xff\xfe")],
            "not valid UTF-8",
        ),
        (
            vec![(b"__name__", b"m"), (b"\xc3\x28", b"v")],
            "not valid UTF-8",
        ),
        (
            vec![(b"__name__", b"m"), (b"a", b"1"), (b"a", b"2")],
            "duplicate label name",
        ),
        (vec![], "no labels"),
    ];
    for (labels, want) in bad {
        let good: Vec<(&[u8], &[u8])> = vec![(b"__name__", b"good"), (b"case", want.as_bytes())];
        let body = v1_body_raw(&[(labels.clone(), vec![(t, 1.0)]), (good, vec![(t, 2.0)])]);
        let r = srv.post_v1(&body);
        assert_eq!(r.status, 400, "{labels:?}");
        assert!(r.body.contains(want), "{want:?} not in {}", r.body);
        assert!(r.body.contains("stored 1 samples"), "{}", r.body);
        assert_eq!(
            srv.samples(&[("__name__", "good"), ("case", want)]).len(),
            1
        );
    }
    assert!(srv.metric_value("vigil_remote_write_invalid_series_total") >= before + 5.0);
}

#[test]
fn rw1_metadata_sent_apart_is_applied_to_its_family() {
    let srv = Server::start();
    let t = now_ms();
    let md = vec![
        ("req_duration_seconds", 3, "Request duration.", "seconds"),
        ("jobs_total", 1, "Jobs done.", ""),
    ];
    let r = srv.post_v1(&v1_body_with_metadata(&[], &md));
    assert_eq!(r.status, 204, "{}", r.body);
    let body = v1_body(&[
        (
            vec![("__name__", "req_duration_seconds_bucket"), ("le", "1")],
            vec![(t, 3.0)],
        ),
        (vec![("__name__", "jobs_total")], vec![(t, 7.0)]),
    ]);
    assert_eq!(srv.post_v1(&body).status, 204);
    let got = srv.db.head().metadata_by_metric();
    let h = &got["req_duration_seconds_bucket"][0];
    assert_eq!(
        (h.metric_type.as_str(), h.help.as_str(), h.unit.as_str()),
        ("histogram", "Request duration.", "seconds")
    );
    assert_eq!(got["jobs_total"][0].metric_type.as_str(), "counter");
}

#[test]
fn rw1_histograms_and_exemplars_are_rejected_samples_kept() {
    let srv = Server::start();
    let t = now_ms();
    let mut req = v1_request(&[(vec![("__name__", "with_extras")], vec![(t, 1.0)])]);
    req.timeseries[0].exemplars.push(Exemplar {
        labels: vec![],
        value: 1.0,
        timestamp: t,
    });
    req.timeseries[0].histograms.push(pnz_histogram(t, 1.0));
    let r = srv.post_v1(&snappy(&prost::Message::encode_to_vec(&req)));
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("1 native histogram samples") && r.body.contains("1 exemplars"),
        "{}",
        r.body
    );
    assert_eq!(srv.samples(&[("__name__", "with_extras")]), vec![(t, 1.0)]);
}

// ---- limits ------------------------------------------------------------------------------

#[test]
fn limits_are_enforced_with_400_and_counted() {
    let srv = Server::start();
    let kinds = [
        "body_bytes",
        "decompressed_bytes",
        "labels_per_series",
        "label_name_bytes",
        "label_value_bytes",
    ]
    .map(|k| format!("vigil_remote_write_limit_exceeded_total{{limit=\"{k}\"}}"));
    let before = kinds.clone().map(|k| srv.metric_value(&k));
    let t = now_ms();
    // Declared Content-Length over the limit: refused before the body is read.
    let r = srv.post_declared_length(TEST_LIMITS_BODY_BYTES + 1);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("body_bytes limit exceeded"), "{}", r.body);
    // A chunked body that grows past the limit is cut off.
    let r = srv.post_chunked(&vec![0u8; TEST_LIMITS_BODY_BYTES as usize + 1024]);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("while streaming"), "{}", r.body);
    // A snappy header claiming 4 GiB.
    let r = srv.post_v2(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("decompressed_bytes limit exceeded"),
        "{}",
        r.body
    );
    // Per-series limits.
    let many: Vec<(String, String)> = (0..40).map(|i| (format!("l{i:02}"), "v".into())).collect();
    let mut many_ref: Vec<(&str, &str)> =
        many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    many_ref.push(("__name__", "too_many"));
    let long_name = "n".repeat(200);
    let long_value = "v".repeat(2000);
    let body = v1_body(&[
        (many_ref, vec![(t, 1.0)]),
        (
            vec![("__name__", "long_name"), (long_name.as_str(), "x")],
            vec![(t, 1.0)],
        ),
        (
            vec![("__name__", "long_value"), ("x", long_value.as_str())],
            vec![(t, 1.0)],
        ),
        (vec![("__name__", "fine")], vec![(t, 1.0)]),
    ]);
    let r = srv.post_v1(&body);
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("skipped 3 series over limits")
            && r.body.contains("labels_per_series limit"),
        "{}",
        r.body
    );
    assert_eq!(srv.samples(&[("__name__", "fine")]).len(), 1);
    assert_eq!(srv.series_count(), 1);
    // Only this test exceeds limits, so the counters grow by exactly these amounts.
    for ((k, b), want) in kinds.iter().zip(before).zip([2.0, 1.0, 1.0, 1.0, 1.0]) {
        assert_eq!(srv.metric_value(k) - b, want, "{k}");
    }
}
