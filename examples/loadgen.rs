//! A remote-write 1.0 load generator and measuring client for the end-to-end benchmark
//! (`scripts/e2e-bench.sh`, `docs/benchmarks.md`). It owns the synthetic workload (500
//! node-exporter-like targets × 100 series = 50k series, counters and gauges, ~8 labels
//! each, 15 s scrape interval with a per-target phase), its sending like Prometheus' queue
//! manager (series sharded over a few persistent connections, one request in flight per
//! shard, 2000 samples per snappy-compressed `prometheus.WriteRequest`), the query-latency
//! client (`/api/v1/query_range`, p50/p99) and the crash probe (kill -9 the server right
//! after an acknowledged write, then count what came back). It talks to the server only
//! over HTTP, so the same binary measures Vigil and Prometheus; it never reads a data dir.
//!
//! ```text
//! loadgen load   --url http://127.0.0.1:9090/api/v1/write [--series 50000] [--samples 240] [--end-ms T]
//! loadgen query  --base http://127.0.0.1:9090 --query Q --start-ms S --end-ms E [--runs 20]
//! loadgen crash  --url .../api/v1/write --pid PID --out acked.json [--after-requests 200]
//! loadgen verify --base http://127.0.0.1:9090 --acked acked.json
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{header, Request, StatusCode};
use hyper_util::rt::TokioIo;
use prost::Message;
use vigil::remote::proto::{Label, Sample, TimeSeries, WriteRequest};

/// Scrape targets per job.
const INSTANCES_PER_JOB: usize = 50;
/// Series per target (see [`metric_families`]; the families add up to exactly this).
const SERIES_PER_TARGET: usize = 100;
/// Milliseconds between two samples of a series (a 15 s scrape interval).
const DEFAULT_INTERVAL_MS: i64 = 15_000;
/// Samples per remote-write request (Prometheus' `max_samples_per_send` in recent versions).
const DEFAULT_BATCH: usize = 2000;
/// Concurrent connections (queue-manager shards).
const DEFAULT_CONNS: usize = 4;
/// Attempts per request on 5xx or connection errors (as the queue manager retries).
const MAX_ATTEMPTS: u32 = 10;
/// First retry backoff; doubled on each further attempt.
const RETRY_BACKOFF: Duration = Duration::from_millis(30);
/// Name of the crash-probe metric.
const PROBE_METRIC: &str = "e2e_crash_probe";
/// Spacing of the crash-probe samples (fake, in the recent past).
const PROBE_STEP_MS: i64 = 1000;
/// How far before "now" the crash probe starts, so its samples never lie in the future.
const PROBE_START_BEFORE_NOW_MS: i64 = 30 * 60 * 1000;
/// The remote-write 1.0 protocol version header value.
const RW_VERSION: &str = "0.1.0";

#[derive(Parser)]
#[command(about = "Remote-write load generator and query/crash probe for the e2e benchmark")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send the 50k-series workload and print a JSON summary.
    Load {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 50_000)]
        series: usize,
        /// Samples per series.
        #[arg(long, default_value_t = 240)]
        samples: usize,
        #[arg(long, default_value_t = DEFAULT_INTERVAL_MS)]
        interval_ms: i64,
        #[arg(long, default_value_t = DEFAULT_BATCH)]
        batch: usize,
        #[arg(long, default_value_t = DEFAULT_CONNS)]
        conns: usize,
        /// Timestamp of the last sample of the phase-0 target (default: now - interval).
        #[arg(long)]
        end_ms: Option<i64>,
    },
    /// Run one range query several times and print latency percentiles as JSON.
    Query {
        #[arg(long)]
        base: String,
        #[arg(long)]
        query: String,
        #[arg(long)]
        start_ms: i64,
        #[arg(long)]
        end_ms: i64,
        #[arg(long, default_value_t = 15.0)]
        step_s: f64,
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Write probe series until `after-requests` writes are acknowledged, then kill -9 the
    /// server and record what was acknowledged.
    Crash {
        #[arg(long)]
        url: String,
        #[arg(long)]
        pid: u32,
        #[arg(long)]
        out: String,
        #[arg(long, default_value_t = 2000)]
        series: usize,
        #[arg(long, default_value_t = DEFAULT_CONNS)]
        conns: usize,
        #[arg(long, default_value_t = 200)]
        after_requests: u64,
    },
    /// Compare what the restarted server holds with what was acknowledged.
    Verify {
        #[arg(long)]
        base: String,
        #[arg(long)]
        acked: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Load {
                url,
                series,
                samples,
                interval_ms,
                batch,
                conns,
                end_ms,
            } => {
                let end_ms = end_ms.unwrap_or_else(|| now_ms() - interval_ms);
                let w = Workload::new(series, samples, interval_ms, end_ms);
                load(&url, Arc::new(w), batch, conns).await
            }
            Cmd::Query {
                base,
                query,
                start_ms,
                end_ms,
                step_s,
                runs,
            } => query_bench(&base, &query, start_ms, end_ms, step_s, runs).await,
            Cmd::Crash {
                url,
                pid,
                out,
                series,
                conns,
                after_requests,
            } => crash(&url, pid, &out, series, conns, after_requests).await,
            Cmd::Verify { base, acked } => verify(&base, &acked).await,
        }
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

// ---- the workload ----------------------------------------------------------------------

/// Whether a series' values only grow or wander.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Counter,
    Gauge,
    /// A gauge that never changes (sizes, `up`).
    Constant,
}

/// One metric family of a target: name, kind, and its per-target label combinations.
struct Family {
    name: &'static str,
    kind: Kind,
    /// Each entry is the extra labels of one series.
    variants: Vec<Vec<(&'static str, String)>>,
}

/// The 100 series of one node-exporter-like target.
fn metric_families() -> Vec<Family> {
    let mut out = Vec::new();
    let methods = ["GET", "POST", "PUT", "DELETE"];
    let codes = ["200", "201", "404", "500", "503"];
    let mut v = Vec::new();
    for m in methods {
        for c in codes {
            v.push(vec![("method", m.to_owned()), ("code", c.to_owned())]);
        }
    }
    out.push(Family {
        name: "http_requests_total",
        kind: Kind::Counter,
        variants: v,
    });
    let modes = [
        "idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice",
    ];
    let mut v = Vec::new();
    for cpu in 0..4 {
        for m in modes {
            v.push(vec![("cpu", cpu.to_string()), ("mode", m.to_owned())]);
        }
    }
    out.push(Family {
        name: "node_cpu_seconds_total",
        kind: Kind::Counter,
        variants: v,
    });
    let devices: Vec<Vec<(&str, String)>> = ["eth0", "eth1", "lo", "docker0"]
        .iter()
        .map(|d| vec![("device", (*d).to_owned())])
        .collect();
    out.push(Family {
        name: "node_network_receive_bytes_total",
        kind: Kind::Counter,
        variants: devices.clone(),
    });
    out.push(Family {
        name: "node_network_transmit_bytes_total",
        kind: Kind::Counter,
        variants: devices,
    });
    let mounts: Vec<Vec<(&str, String)>> = ["/", "/boot", "/var", "/home", "/data"]
        .iter()
        .map(|m| {
            vec![
                ("mountpoint", (*m).to_owned()),
                ("fstype", "ext4".to_owned()),
            ]
        })
        .collect();
    out.push(Family {
        name: "node_filesystem_avail_bytes",
        kind: Kind::Gauge,
        variants: mounts.clone(),
    });
    out.push(Family {
        name: "node_filesystem_size_bytes",
        kind: Kind::Constant,
        variants: mounts,
    });
    let les = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
    ];
    let mut v = Vec::new();
    for m in ["GET", "POST"] {
        for le in les {
            v.push(vec![("method", m.to_owned()), ("le", le.to_owned())]);
        }
    }
    out.push(Family {
        name: "http_request_duration_seconds_bucket",
        kind: Kind::Counter,
        variants: v,
    });
    for (name, kind) in [
        ("process_resident_memory_bytes", Kind::Gauge),
        ("go_goroutines", Kind::Gauge),
        ("node_memory_MemAvailable_bytes", Kind::Gauge),
        ("node_load1", Kind::Gauge),
        ("up", Kind::Constant),
        ("scrape_duration_seconds", Kind::Gauge),
    ] {
        out.push(Family {
            name,
            kind,
            variants: vec![Vec::new()],
        });
    }
    out
}

/// A series: its wire labels (shared, cheap to clone), kind, phase and starting value.
struct SeriesDef {
    labels: Vec<Label>,
    kind: Kind,
    /// Offset of this target's scrapes within the interval.
    phase_ms: i64,
    seed: u64,
}

/// The whole workload: every series and the sample timestamps.
struct Workload {
    series: Vec<SeriesDef>,
    samples: usize,
    interval_ms: i64,
    /// Timestamp of step 0 for a target with phase 0.
    first_ms: i64,
}

fn label(name: &str, value: &str) -> Label {
    Label {
        name: Bytes::copy_from_slice(name.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

impl Workload {
    fn new(n_series: usize, samples: usize, interval_ms: i64, end_ms: i64) -> Workload {
        let families = metric_families();
        let per_target: Vec<(&Family, &Vec<(&str, String)>)> = families
            .iter()
            .flat_map(|f| f.variants.iter().map(move |v| (f, v)))
            .collect();
        debug_assert_eq!(per_target.len(), SERIES_PER_TARGET);
        let jobs = [
            "node", "api", "frontend", "db", "cache", "queue", "auth", "search", "billing",
            "ingest",
        ];
        let mut series = Vec::with_capacity(n_series);
        let mut target = 0usize;
        while series.len() < n_series {
            let job = jobs[(target / INSTANCES_PER_JOB) % jobs.len()];
            let instance = format!(
                "10.{}.{}.{}:9100",
                target / 65536 % 256,
                target / 256 % 256,
                target % 256
            );
            let region = ["eu-west-1", "us-east-1", "ap-south-1"][target % 3];
            let az = format!("{region}{}", ["a", "b", "c"][target / 3 % 3]);
            let team = ["platform", "payments", "growth", "infra"][target % 4];
            let phase_ms = (splitmix(target as u64) % interval_ms as u64) as i64;
            for (fam, extra) in &per_target {
                if series.len() == n_series {
                    break;
                }
                let mut labels = vec![
                    label("__name__", fam.name),
                    label("az", &az),
                    label("env", "prod"),
                    label("instance", &instance),
                    label("job", job),
                    label("region", region),
                    label("team", team),
                ];
                for (n, v) in extra.iter() {
                    labels.push(label(n, v));
                }
                labels.sort_by(|a, b| a.name.cmp(&b.name));
                let seed = splitmix(series.len() as u64 ^ 0x9e37_79b9);
                series.push(SeriesDef {
                    labels,
                    kind: fam.kind,
                    phase_ms,
                    seed,
                });
            }
            target += 1;
        }
        let first_ms = end_ms - (samples as i64 - 1) * interval_ms;
        Workload {
            series,
            samples,
            interval_ms,
            first_ms,
        }
    }

    fn timestamp(&self, s: &SeriesDef, step: usize) -> i64 {
        self.first_ms + s.phase_ms + step as i64 * self.interval_ms
    }
}

/// SplitMix64: a small deterministic mixer for seeds and values (no RNG crate needed).
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The value state of one series as the generator walks its steps.
struct ValueState {
    v: f64,
    rng: u64,
}

impl ValueState {
    fn new(s: &SeriesDef) -> ValueState {
        let base = (s.seed % 1_000_000) as f64;
        ValueState {
            v: match s.kind {
                Kind::Counter => base,
                Kind::Gauge => base * 1000.0,
                Kind::Constant => (s.seed % 64 + 1) as f64 * 1_073_741_824.0,
            },
            rng: s.seed,
        }
    }

    fn next(&mut self, kind: Kind) -> f64 {
        self.rng = splitmix(self.rng);
        let r = self.rng % 1000;
        match kind {
            Kind::Counter => self.v += r as f64,
            Kind::Gauge => self.v = (self.v + r as f64 - 500.0).abs(),
            Kind::Constant => {}
        }
        self.v
    }
}

// ---- HTTP ------------------------------------------------------------------------------

/// Host, port and path of an `http://host:port/path` URL.
fn split_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("only http:// URLs are supported: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((authority.to_owned(), path.to_owned()))
}

/// One persistent HTTP/1.1 connection.
struct Conn {
    authority: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(authority: &str) -> Conn {
        Conn {
            authority: authority.to_owned(),
            sender: None,
        }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>> {
        let reusable = match &mut self.sender {
            Some(s) if !s.is_closed() => s.ready().await.is_ok(),
            _ => false,
        };
        if !reusable {
            let stream = tokio::net::TcpStream::connect(&self.authority).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| anyhow!("no connection to {}", self.authority))
    }

    /// Sends one request and returns the status and body.
    async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes)> {
        let sender = self.sender().await?;
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(e.into());
            }
        };
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    async fn get(&mut self, path_and_query: &str) -> Result<(StatusCode, Bytes)> {
        let req = Request::get(path_and_query)
            .header(header::HOST, &self.authority)
            .body(Full::new(Bytes::new()))?;
        self.send(req).await
    }

    async fn write(&mut self, path: &str, body: Bytes) -> Result<StatusCode> {
        let req = Request::post(path)
            .header(header::HOST, &self.authority)
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .header(header::CONTENT_ENCODING, "snappy")
            .header("X-Prometheus-Remote-Write-Version", RW_VERSION)
            .header(header::USER_AGENT, "vigil-e2e-loadgen")
            .body(Full::new(body))?;
        let (status, body) = self.send(req).await?;
        if status.is_client_error() {
            bail!(
                "write rejected with {status}: {}",
                String::from_utf8_lossy(&body).trim()
            );
        }
        Ok(status)
    }
}

fn encode(req: &WriteRequest) -> Result<Bytes> {
    let raw = req.encode_to_vec();
    let compressed = snap::raw::Encoder::new()
        .compress_vec(&raw)
        .context("snappy compression")?;
    Ok(Bytes::from(compressed))
}

// ---- load ------------------------------------------------------------------------------

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    samples: AtomicU64,
    retries: AtomicU64,
    bytes: AtomicU64,
}

async fn load(url: &str, w: Arc<Workload>, batch: usize, conns: usize) -> Result<()> {
    let (authority, path) = split_url(url)?;
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for shard in 0..conns {
        let (w, counters, authority, path) =
            (w.clone(), counters.clone(), authority.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            shard_load(&w, shard, conns, batch, &authority, &path, &counters).await
        }));
    }
    for t in tasks {
        t.await??;
    }
    let wall = started.elapsed().as_secs_f64();
    let samples = counters.samples.load(Ordering::Relaxed);
    // The newest sample of any series (phases lie within one interval).
    let last_ms = w.first_ms + w.samples as i64 * w.interval_ms - 1;
    let summary = serde_json::json!({
        "series": w.series.len(),
        "samples": samples,
        "requests": counters.requests.load(Ordering::Relaxed),
        "retries": counters.retries.load(Ordering::Relaxed),
        "compressed_bytes": counters.bytes.load(Ordering::Relaxed),
        "wall_s": wall,
        "samples_per_s": samples as f64 / wall,
        "first_ms": w.first_ms,
        "last_ms": last_ms,
    });
    println!("{summary}");
    Ok(())
}

/// One queue-manager shard: the series with `index % conns == shard`, sent step by step in
/// time order, `batch` samples per request, one request in flight.
async fn shard_load(
    w: &Workload,
    shard: usize,
    conns: usize,
    batch: usize,
    authority: &str,
    path: &str,
    counters: &Counters,
) -> Result<()> {
    let mine: Vec<&SeriesDef> = w.series.iter().skip(shard).step_by(conns).collect();
    let mut states: Vec<ValueState> = mine.iter().map(|s| ValueState::new(s)).collect();
    let mut conn = Conn::new(authority);
    let mut pending: Vec<TimeSeries> = Vec::with_capacity(batch);
    for step in 0..w.samples {
        for (s, st) in mine.iter().zip(states.iter_mut()) {
            pending.push(TimeSeries {
                labels: s.labels.clone(),
                samples: vec![Sample {
                    value: st.next(s.kind),
                    timestamp: w.timestamp(s, step),
                }],
                exemplars: Vec::new(),
                histograms: Vec::new(),
            });
            if pending.len() == batch {
                flush(&mut conn, path, &mut pending, counters).await?;
            }
        }
    }
    if !pending.is_empty() {
        flush(&mut conn, path, &mut pending, counters).await?;
    }
    Ok(())
}

async fn flush(
    conn: &mut Conn,
    path: &str,
    pending: &mut Vec<TimeSeries>,
    counters: &Counters,
) -> Result<()> {
    let n = pending.len() as u64;
    let req = WriteRequest {
        timeseries: std::mem::take(pending),
        metadata: Vec::new(),
    };
    let body = encode(&req)?;
    let mut backoff = RETRY_BACKOFF;
    for attempt in 1..=MAX_ATTEMPTS {
        match conn.write(path, body.clone()).await {
            Ok(s) if s.is_success() => {
                counters.requests.fetch_add(1, Ordering::Relaxed);
                counters.samples.fetch_add(n, Ordering::Relaxed);
                counters
                    .bytes
                    .fetch_add(body.len() as u64, Ordering::Relaxed);
                return Ok(());
            }
            Ok(s) if attempt == MAX_ATTEMPTS => bail!("write failed with {s}"),
            Err(e) if attempt == MAX_ATTEMPTS || e.to_string().contains("rejected") => {
                return Err(e)
            }
            _ => {
                counters.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
    }
    bail!("write failed after {MAX_ATTEMPTS} attempts")
}

// ---- query latency ---------------------------------------------------------------------

/// Percent-encodes a query-string value (RFC 3986 unreserved characters pass).
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn ms_to_s(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// The `data.result` array of a successful API reply.
fn api_result(body: &[u8]) -> Result<Vec<serde_json::Value>> {
    let v: serde_json::Value = serde_json::from_slice(body).context("reply is not JSON")?;
    if v["status"] != "success" {
        bail!("query failed: {v}");
    }
    v["data"]["result"]
        .as_array()
        .cloned()
        .ok_or_else(|| anyhow!("no data.result in reply"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn query_bench(
    base: &str,
    query: &str,
    start_ms: i64,
    end_ms: i64,
    step_s: f64,
    runs: usize,
) -> Result<()> {
    let (authority, prefix) = split_url(base)?;
    let prefix = prefix.trim_end_matches('/');
    let path = format!(
        "{prefix}/api/v1/query_range?query={}&start={}&end={}&step={step_s}",
        url_encode(query),
        ms_to_s(start_ms),
        ms_to_s(end_ms)
    );
    let mut conn = Conn::new(&authority);
    let mut lat_ms = Vec::with_capacity(runs);
    let mut shape = (0usize, 0usize, 0.0f64);
    for _ in 0..runs {
        let t = Instant::now();
        let (status, body) = conn.get(&path).await?;
        lat_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if !status.is_success() {
            bail!(
                "query answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let result = api_result(&body)?;
        let mut points = 0;
        let mut sum = 0.0;
        for series in &result {
            for p in series["values"].as_array().into_iter().flatten() {
                points += 1;
                sum += p[1]
                    .as_str()
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(0.0);
            }
        }
        shape = (result.len(), points, sum);
    }
    let first = lat_ms.first().copied().unwrap_or(f64::NAN);
    lat_ms.sort_by(|a, b| a.total_cmp(b));
    let summary = serde_json::json!({
        "query": query,
        "runs": runs,
        "first_ms": first,
        "p50_ms": percentile(&lat_ms, 50.0),
        "p99_ms": percentile(&lat_ms, 99.0),
        "min_ms": lat_ms.first(),
        "max_ms": lat_ms.last(),
        "result_series": shape.0,
        "result_points": shape.1,
        "result_value_sum": shape.2,
    });
    println!("{summary}");
    Ok(())
}

// ---- crash probe -----------------------------------------------------------------------

async fn crash(
    url: &str,
    pid: u32,
    out: &str,
    n_series: usize,
    conns: usize,
    after_requests: u64,
) -> Result<()> {
    let (authority, path) = split_url(url)?;
    let start_ms = now_ms() - PROBE_START_BEFORE_NOW_MS;
    let max_steps = (PROBE_START_BEFORE_NOW_MS / PROBE_STEP_MS) as u64;
    let acked_total = Arc::new(AtomicU64::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for shard in 0..conns {
        let labels: Vec<Vec<Label>> = (shard..n_series)
            .step_by(conns)
            .map(|i| {
                vec![
                    label("__name__", PROBE_METRIC),
                    label("series", &i.to_string()),
                ]
            })
            .collect();
        let (authority, path, acked_total, killed) = (
            authority.clone(),
            path.clone(),
            acked_total.clone(),
            killed.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(&authority);
            let mut acked_steps: u64 = 0;
            while acked_steps < max_steps {
                let ts = start_ms + acked_steps as i64 * PROBE_STEP_MS;
                let req = WriteRequest {
                    timeseries: labels
                        .iter()
                        .map(|l| TimeSeries {
                            labels: l.clone(),
                            samples: vec![Sample {
                                value: acked_steps as f64,
                                timestamp: ts,
                            }],
                            exemplars: Vec::new(),
                            histograms: Vec::new(),
                        })
                        .collect(),
                    metadata: Vec::new(),
                };
                let body = encode(&req)?;
                match conn.write(&path, body).await {
                    Ok(s) if s.is_success() => acked_steps += 1,
                    // The server is gone: whatever was acknowledged is final.
                    _ => break,
                }
                let total = acked_total.fetch_add(1, Ordering::SeqCst) + 1;
                if total >= after_requests && !killed.swap(true, Ordering::SeqCst) {
                    kill9(pid)?;
                }
            }
            anyhow::Ok((labels.len(), acked_steps))
        }));
    }
    let mut shards = Vec::new();
    for t in tasks {
        let (series, acked) = t.await??;
        shards.push(serde_json::json!({"series": series, "acked_samples_per_series": acked}));
    }
    if !killed.load(Ordering::SeqCst) {
        bail!("the probe ended before {after_requests} writes were acknowledged");
    }
    let acked: u64 = shards
        .iter()
        .map(|s| {
            s["series"].as_u64().unwrap_or(0) * s["acked_samples_per_series"].as_u64().unwrap_or(0)
        })
        .sum();
    let record = serde_json::json!({
        "conns": conns,
        "start_ms": start_ms,
        "step_ms": PROBE_STEP_MS,
        "acked_samples": acked,
        "shards": shards,
    });
    std::fs::write(out, record.to_string()).with_context(|| format!("writing {out}"))?;
    println!("{record}");
    Ok(())
}

/// Sends SIGKILL to `pid` through the `kill` utility (no libc binding needed).
fn kill9(pid: u32) -> Result<()> {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -9 {pid} failed: {status}");
    }
    Ok(())
}

async fn verify(base: &str, acked_path: &str) -> Result<()> {
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(acked_path).with_context(|| format!("reading {acked_path}"))?,
    )?;
    let conns = record["conns"]
        .as_u64()
        .ok_or_else(|| anyhow!("no conns in {acked_path}"))? as usize;
    let shards = record["shards"]
        .as_array()
        .ok_or_else(|| anyhow!("no shards in {acked_path}"))?;
    let (authority, prefix) = split_url(base)?;
    let prefix = prefix.trim_end_matches('/');
    let query = format!("count_over_time({PROBE_METRIC}[2h])");
    let path = format!(
        "{prefix}/api/v1/query?query={}&time={}",
        url_encode(&query),
        ms_to_s(now_ms())
    );
    let mut conn = Conn::new(&authority);
    let (status, body) = conn.get(&path).await?;
    if !status.is_success() {
        bail!(
            "query answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let mut stored_by_series = std::collections::HashMap::new();
    for s in api_result(&body)? {
        let idx: usize = s["metric"]["series"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("probe series without a series label: {s}"))?;
        let n: u64 = s["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| anyhow!("bad value: {s}"))? as u64;
        stored_by_series.insert(idx, n);
    }
    let (mut acked, mut lost, mut extra, mut series_short) = (0u64, 0u64, 0u64, 0u64);
    for (shard, sh) in shards.iter().enumerate() {
        let want = sh["acked_samples_per_series"].as_u64().unwrap_or(0);
        let n = sh["series"].as_u64().unwrap_or(0) as usize;
        for k in 0..n {
            let idx = shard + k * conns;
            let got = stored_by_series.get(&idx).copied().unwrap_or(0);
            acked += want;
            if got < want {
                lost += want - got;
                series_short += 1;
            } else {
                extra += got - want;
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "acked_samples": acked,
            "lost_samples": lost,
            "series_with_loss": series_short,
            "unacked_but_stored_samples": extra,
        })
    );
    Ok(())
}
