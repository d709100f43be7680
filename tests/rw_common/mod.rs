//! Shared helpers of the remote-write integration tests: an in-process server over a
//! temporary database, a raw HTTP/1.1 client over `TcpStream`, and RW 1.0 / 2.0 request
//! builders. Test support only.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use vigil::remote::proto::RequestV2;
use vigil::remote::proto::{
    Label, MetricMetadata, Sample, SampleV2, TimeSeries, TimeSeriesV2, WriteRequest,
};
use vigil::remote::Limits;
use vigil::server::AppState;
use vigil_storage::{Db, DbOptions, Matcher, Queryable};

pub const V2_CONTENT_TYPE: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
/// The body limit every test server runs with (the receiver's limits are process-wide).
pub const TEST_LIMITS_BODY_BYTES: u64 = 1 << 20;

pub fn test_limits() -> Limits {
    Limits {
        max_body_bytes: TEST_LIMITS_BODY_BYTES,
        max_decompressed_bytes: 4 << 20,
        max_labels_per_series: 32,
        max_label_name_bytes: 128,
        max_label_value_bytes: 1024,
        max_future_ms: 10 * 60 * 1000,
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A running server; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub db: Arc<Db>,
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        assert!(vigil::remote::configure(test_limits()));
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(AppState::new(
            db.clone(),
            vigil::api::ApiConfig::default(),
            &addr.to_string(),
        ));
        state
            .ready
            .store(true, std::sync::atomic::Ordering::Release);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(async move {
            let _ = vigil::server::serve(listener, state, async {
                let _ = rx.await;
            })
            .await;
        });
        Server {
            addr,
            db,
            rt,
            stop: Some(tx),
            _dir: dir,
        }
    }

    /// POSTs `body` to /api/v1/write with `headers` and a Content-Length.
    pub fn post(&self, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut req = format!("POST /api/v1/write HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n", self.addr, body.len());
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.roundtrip(&bytes)
    }

    pub fn post_v2(&self, body: &[u8]) -> Resp {
        self.post(
            &[
                ("Content-Type", V2_CONTENT_TYPE),
                ("Content-Encoding", "snappy"),
                ("X-Prometheus-Remote-Write-Version", "2.0.0"),
            ],
            body,
        )
    }

    pub fn post_v1(&self, body: &[u8]) -> Resp {
        self.post(
            &[
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "snappy"),
                ("X-Prometheus-Remote-Write-Version", "0.1.0"),
            ],
            body,
        )
    }

    /// Sends only headers declaring a body of `n` bytes.
    pub fn post_declared_length(&self, n: u64) -> Resp {
        let req = format!("POST /api/v1/write HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {V2_CONTENT_TYPE}\r\nContent-Length: {n}\r\n\r\n");
        self.roundtrip(req.as_bytes())
    }

    /// Sends `body` chunked (no Content-Length) from a writer thread while reading.
    pub fn post_chunked(&self, body: &[u8]) -> Resp {
        let mut s = TcpStream::connect(self.addr).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut out = format!("POST /api/v1/write HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {V2_CONTENT_TYPE}\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes();
        for c in body.chunks(64 * 1024) {
            out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        let writer = std::thread::spawn(move || {
            // The server may stop reading once the limit is hit: write errors are expected.
            let _ = w.write_all(&out);
        });
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let _ = writer.join();
        Resp::parse(&raw)
    }

    pub fn get(&self, path: &str) -> Resp {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        self.roundtrip(req.as_bytes())
    }

    fn roundtrip(&self, bytes: &[u8]) -> Resp {
        let mut s = TcpStream::connect(self.addr).unwrap();
        let _ = s.write_all(bytes);
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        Resp::parse(&raw)
    }

    pub fn metrics(&self) -> String {
        self.get("/metrics").body
    }

    /// The value of a sample line `name value` on /metrics (name may include labels).
    pub fn metric_value(&self, name: &str) -> f64 {
        let m = self.metrics();
        m.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} not on /metrics"))
            .trim()
            .parse()
            .unwrap()
    }

    /// Stored samples of the series with exactly `labels`.
    pub fn samples(&self, labels: &[(&str, &str)]) -> Vec<(i64, f64)> {
        let want = vigil_storage::Labels::from_pairs(labels).unwrap();
        let ms: Vec<Matcher> = labels.iter().map(|(n, v)| Matcher::equal(n, v)).collect();
        let q = self.db.querier(i64::MIN, i64::MAX).unwrap();
        let series = q.select(&ms).unwrap();
        series
            .iter()
            .filter(|s| s.labels == want)
            .flat_map(|s| s.samples().unwrap())
            .map(|s| (s.t, s.v))
            .collect()
    }

    pub fn series_count(&self) -> u64 {
        self.db.head().num_series()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = &self.rt;
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    fn parse(raw: &[u8]) -> Resp {
        let text = String::from_utf8_lossy(raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP response in {text:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Resp {
            status,
            headers,
            body: body.to_string(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let n = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.as_str())
    }

    /// (samples, histograms, exemplars) written, from the RW 2.0 headers (all required).
    pub fn written(&self) -> (u64, u64, u64) {
        let get = |h: &str| -> u64 {
            self.header(h)
                .unwrap_or_else(|| panic!("missing {h} in {:?}", self.headers))
                .parse()
                .unwrap()
        };
        (
            get(vigil::remote::HEADER_SAMPLES_WRITTEN),
            get(vigil::remote::HEADER_HISTOGRAMS_WRITTEN),
            get(vigil::remote::HEADER_EXEMPLARS_WRITTEN),
        )
    }
}

pub fn snappy(b: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(b).unwrap()
}

/// An RW 2.0 request builder with a symbol table starting with "".
pub struct V2 {
    symbols: Vec<Bytes>,
    index: HashMap<Vec<u8>, u32>,
    pub series: Vec<TimeSeriesV2>,
}

impl Default for V2 {
    fn default() -> Self {
        Self::new()
    }
}

impl V2 {
    pub fn new() -> V2 {
        let mut v = V2 {
            symbols: Vec::new(),
            index: HashMap::new(),
            series: Vec::new(),
        };
        v.sym("");
        v
    }

    pub fn sym(&mut self, s: &str) -> u32 {
        self.sym_bytes(s.as_bytes())
    }

    pub fn sym_bytes(&mut self, s: &[u8]) -> u32 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = self.symbols.len() as u32;
        self.symbols.push(Bytes::copy_from_slice(s));
        self.index.insert(s.to_vec(), i);
        i
    }

    /// Adds a series (labels in the given order) with float samples; returns it for more.
    pub fn series(&mut self, labels: &[(&str, &str)], samples: &[(i64, f64)]) -> &mut TimeSeriesV2 {
        let mut refs = Vec::new();
        for (n, v) in labels {
            refs.push(self.sym(n));
            refs.push(self.sym(v));
        }
        self.series.push(TimeSeriesV2 {
            labels_refs: refs,
            samples: samples
                .iter()
                .map(|(t, v)| SampleV2 {
                    value: *v,
                    timestamp: *t,
                    start_timestamp: 0,
                })
                .collect(),
            ..Default::default()
        });
        self.series.last_mut().unwrap()
    }

    /// The snappy-compressed request body.
    pub fn encode(&self) -> Vec<u8> {
        let req = RequestV2 {
            symbols: self.symbols.clone(),
            timeseries: self.series.clone(),
        };
        snappy(&req.encode_to_vec())
    }
}

/// An uncompressed RW 2.0 request with the given symbols and one series `symbols[1]=symbols[2]`.
pub fn encode_v2_symbols(symbols: &[&str]) -> Vec<u8> {
    RequestV2 {
        symbols: symbols
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect(),
        timeseries: vec![TimeSeriesV2 {
            labels_refs: vec![1, 2],
            samples: vec![SampleV2 {
                value: 1.0,
                timestamp: now_ms(),
                start_timestamp: 0,
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

type Series<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);
type RawSeries<'a> = (Vec<(&'a [u8], &'a [u8])>, Vec<(i64, f64)>);

pub fn v1_request(series: &[Series]) -> WriteRequest {
    let raw: Vec<RawSeries> = series
        .iter()
        .map(|(l, s)| {
            (
                l.iter()
                    .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
                    .collect(),
                s.clone(),
            )
        })
        .collect();
    v1_request_raw(&raw)
}

pub fn v1_request_raw(series: &[RawSeries]) -> WriteRequest {
    WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| Label {
                        name: Bytes::copy_from_slice(n),
                        value: Bytes::copy_from_slice(v),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|(t, v)| Sample {
                        value: *v,
                        timestamp: *t,
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    }
}

pub fn v1_body(series: &[Series]) -> Vec<u8> {
    snappy(&v1_request(series).encode_to_vec())
}

pub fn v1_body_raw(series: &[RawSeries]) -> Vec<u8> {
    snappy(&v1_request_raw(series).encode_to_vec())
}

/// An RW 1.0 body with family metadata `(name, type, help, unit)`.
pub fn v1_body_with_metadata(series: &[Series], md: &[(&str, i32, &str, &str)]) -> Vec<u8> {
    let mut req = v1_request(series);
    req.metadata = md
        .iter()
        .map(|(n, t, h, u)| MetricMetadata {
            r#type: *t,
            metric_family_name: Bytes::copy_from_slice(n.as_bytes()),
            help: Bytes::copy_from_slice(h.as_bytes()),
            unit: Bytes::copy_from_slice(u.as_bytes()),
        })
        .collect();
    snappy(&req.encode_to_vec())
}
