//! HTTP API acceptance against a real Prometheus 2.42 (`/usr/bin/prometheus`,
//! `/usr/bin/promtool`): the same OpenMetrics data set (tests/interop_data) is backfilled
//! into both with their own `create-blocks-from openmetrics`, both servers start on free
//! ports, and then (1) `promtool query instant|range|series|labels` must print the same
//! against both, and (2) every query of tests/data/dashboard_queries.txt must give the same
//! JSON result, instant and range, within a relative float tolerance (NaN equal, same label
//! sets, order-insensitive except for sort functions). Skipped with a note when the binaries
//! are missing, unless VIGIL_REQUIRE_INTEROP=1. Never compares warnings or timings.
#![allow(clippy::unwrap_used)]

mod common;
mod interop_data;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest wait for a server to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between readiness polls.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Hours of data.
const DATA_HOURS: i64 = 3;
/// Instances per job (about 265 series).
const INSTANCES: usize = 5;
/// Relative tolerance for sample values.
const REL_TOLERANCE: f64 = 1e-9;
/// Range queries cover the last hour of data with this step, seconds.
const RANGE_STEP_S: i64 = 60;
/// Offset of evaluation times from whole minutes, seconds.
const EVAL_OFFSET_S: i64 = 30;
/// Retention large enough that neither server deletes the backfilled blocks.
const RETENTION: &str = "--storage.tsdb.retention.time=3650d";

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Percent-encodes a query parameter value.
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = std::str::from_utf8(&raw[..eol]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
}

/// GET `path_and_query` on `port`; returns (status, body). None when not connectable.
fn http_get(port: u16, path_and_query: &str) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let req = format!("GET {path_and_query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = &raw[split + 4..];
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_vec()
    };
    Some((status, body))
}

fn wait_ready(port: u16, what: &str, child: &mut Child) {
    let start = Instant::now();
    while start.elapsed() < READY_TIMEOUT {
        if let Some((200, _)) = http_get(port, "/-/ready") {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("{what} exited before becoming ready: {st}");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    panic!("{what} not ready after {READY_TIMEOUT:?}");
}

/// Both servers holding the same data.
struct Pair {
    prom_port: u16,
    vigil_port: u16,
    shape: interop_data::Shape,
    _procs: Vec<Proc>,
    _dir: tempfile::TempDir,
}

fn start_pair(prometheus: &Path, promtool: &Path) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    // Three hours ending about ten minutes before now, on whole minutes.
    let end = (now_s() - 600) / 60 * 60;
    let shape = interop_data::Shape {
        instances: INSTANCES,
        start_s: end - DATA_HOURS * 3600,
        points: (DATA_HOURS * 3600 / interop_data::STEP_S) as usize,
    };
    let input = dir.path().join("data.om");
    std::fs::write(&input, interop_data::openmetrics(&shape)).unwrap();
    let prom_data = dir.path().join("prom");
    let vigil_data = dir.path().join("vigil");
    common::run_ok(
        Command::new(promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(&prom_data),
    );
    common::run_ok(
        common::vigil()
            .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
            .arg(&input)
            .arg(&vigil_data),
    );
    // No scrape targets: neither server adds series of its own.
    let cfg = dir.path().join("empty.yml");
    std::fs::write(
        &cfg,
        "global:\n  scrape_interval: 15s\nscrape_configs: []\n",
    )
    .unwrap();

    let prom_port = free_port();
    let mut prom = Command::new(prometheus)
        .arg(format!("--storage.tsdb.path={}", prom_data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .arg(format!("--config.file={}", cfg.display()))
        .arg(RETENTION)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let vigil_port = free_port();
    let mut vigil = common::vigil()
        .arg(format!("--storage.tsdb.path={}", vigil_data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{vigil_port}"))
        .arg(format!("--config.file={}", cfg.display()))
        .arg(RETENTION)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(prom_port, "prometheus", &mut prom);
    wait_ready(vigil_port, "vigil", &mut vigil);
    Pair {
        prom_port,
        vigil_port,
        shape,
        _procs: vec![Proc(prom), Proc(vigil)],
        _dir: dir,
    }
}

fn binaries() -> Option<(PathBuf, PathBuf)> {
    Some((
        common::interop_bin("prometheus")?,
        common::interop_bin("promtool")?,
    ))
}

// ---------------------------------------------------------------------------------------
// Result comparison

fn values_equal(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => {
            if x.is_nan() || y.is_nan() {
                return x.is_nan() && y.is_nan();
            }
            if x.is_infinite() || y.is_infinite() {
                return x == y;
            }
            (x - y).abs() <= REL_TOLERANCE * x.abs().max(y.abs())
        }
        _ => false,
    }
}

/// `[t, "v"]` pairs equal within tolerance.
fn point_equal(a: &Value, b: &Value) -> bool {
    a[0].as_f64() == b[0].as_f64()
        && match (a[1].as_str(), b[1].as_str()) {
            (Some(x), Some(y)) => values_equal(x, y),
            _ => false,
        }
}

fn points_equal(a: &Value, b: &Value) -> bool {
    match (a.as_array(), b.as_array()) {
        (Some(x), Some(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| point_equal(p, q)),
        _ => false,
    }
}

/// A metric's labels as a canonical sort key.
fn key(metric: &Value) -> String {
    let m: BTreeMap<String, String> = metric
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    format!("{m:?}")
}

/// Compares two `data` objects of query replies; returns a description of the first
/// difference.
fn compare(vigil: &Value, prom: &Value, ordered: bool) -> Result<(), String> {
    let (vt, pt) = (&vigil["resultType"], &prom["resultType"]);
    if vt != pt {
        return Err(format!("resultType {vt} vs {pt}"));
    }
    let (vr, pr) = (&vigil["result"], &prom["result"]);
    match vt.as_str() {
        Some("scalar") | Some("string") => {
            if vt == "string" && vr != pr || vt == "scalar" && !point_equal(vr, pr) {
                return Err(format!("{vr} vs {pr}"));
            }
            Ok(())
        }
        Some(kind @ ("vector" | "matrix")) => {
            let field = if kind == "vector" { "value" } else { "values" };
            let mut v: Vec<&Value> = vr
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            let mut p: Vec<&Value> = pr
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            if !ordered {
                v.sort_by_key(|s| key(&s["metric"]));
                p.sort_by_key(|s| key(&s["metric"]));
            }
            if v.len() != p.len() {
                let vk: Vec<String> = v.iter().map(|s| key(&s["metric"])).collect();
                let pk: Vec<String> = p.iter().map(|s| key(&s["metric"])).collect();
                return Err(format!(
                    "{} series vs {}\nvigil: {vk:?}\nprom:  {pk:?}",
                    v.len(),
                    p.len()
                ));
            }
            for (a, b) in v.iter().zip(&p) {
                if key(&a["metric"]) != key(&b["metric"]) {
                    return Err(format!("labels {} vs {}", a["metric"], b["metric"]));
                }
                let same = if kind == "vector" {
                    point_equal(&a[field], &b[field])
                } else {
                    points_equal(&a[field], &b[field])
                };
                if !same {
                    return Err(format!(
                        "{}: {} vs {}",
                        a["metric"],
                        truncate(&a[field]),
                        truncate(&b[field])
                    ));
                }
            }
            Ok(())
        }
        _ => Err(format!("unexpected resultType {vt}")),
    }
}

fn truncate(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 600 {
        format!("{}...", &s[..600])
    } else {
        s
    }
}

/// `data` of a successful query reply.
fn query_data(port: u16, path_and_query: &str) -> Result<Value, String> {
    let (status, body) = http_get(port, path_and_query).ok_or("no reply")?;
    let j: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&body)))?;
    if status != 200 || j["status"] != "success" {
        return Err(format!("HTTP {status}: {j}"));
    }
    Ok(j["data"].clone())
}

/// One line of the query file.
struct DashboardQuery {
    expr: String,
    instant_only: bool,
    ordered: bool,
    /// A reported Vigil engine discrepancy: compared and printed, but not failing the test
    /// (the engine is another module's work; drop the prefix once it is fixed).
    known: bool,
}

fn dashboard_queries(mid_s: i64) -> Vec<DashboardQuery> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dashboard_queries.txt");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (known, l) = match l.strip_prefix("known:") {
                Some(r) => (true, r.trim()),
                None => (false, l),
            };
            let (instant_only, ordered, rest) = if let Some(r) = l.strip_prefix("instant:") {
                (true, false, r)
            } else if let Some(r) = l.strip_prefix("ordered:") {
                (false, true, r)
            } else {
                (false, false, l)
            };
            DashboardQuery {
                expr: rest.trim().replace("{MID}", &mid_s.to_string()),
                instant_only,
                ordered,
                known,
            }
        })
        .collect()
}

#[test]
fn dashboard_queries_match_prometheus() {
    let Some((prometheus, promtool)) = binaries() else {
        return;
    };
    let pair = start_pair(&prometheus, &promtool);
    // Evaluation times are whole minutes plus 30 s: never on a sample (samples sit 3 s off
    // the 15 s grid) and never on a subquery step (multiples of the subquery resolution), so
    // no range boundary falls where 2.42's closed and 3.x's open left ends differ.
    let end = pair.shape.last_s() / 60 * 60 - 60 + EVAL_OFFSET_S;
    let mid = (pair.shape.first_s() + pair.shape.last_s()) / 2 / 60 * 60;
    let queries = dashboard_queries(mid);
    assert!(queries.len() >= 40, "only {} queries", queries.len());
    let mut all_failures = Vec::new();
    let mut known_failures = Vec::new();
    let mut compared = 0;
    for q in &queries {
        let failures = if q.known {
            &mut known_failures
        } else {
            &mut all_failures
        };
        let before = failures.len();
        let e = enc(&q.expr);
        // Instant queries at the end of the data and in the middle.
        for t in [end, mid + 7 * 60 + EVAL_OFFSET_S] {
            let path = format!("/api/v1/query?query={e}&time={t}");
            compared += 1;
            match (
                query_data(pair.vigil_port, &path),
                query_data(pair.prom_port, &path),
            ) {
                (Ok(v), Ok(p)) => {
                    if let Err(d) = compare(&v, &p, q.ordered) {
                        failures.push(format!("instant @{t} `{}`: {d}", q.expr));
                    }
                }
                (v, p) => failures.push(format!(
                    "instant @{t} `{}`: vigil {:?} / prometheus {:?}",
                    q.expr,
                    v.err(),
                    p.err()
                )),
            }
        }
        if !q.instant_only {
            let path = format!(
                "/api/v1/query_range?query={e}&start={}&end={end}&step={RANGE_STEP_S}",
                end - 3600
            );
            compared += 1;
            match (
                query_data(pair.vigil_port, &path),
                query_data(pair.prom_port, &path),
            ) {
                (Ok(v), Ok(p)) => {
                    if let Err(d) = compare(&v, &p, false) {
                        failures.push(format!("range `{}`: {d}", q.expr));
                    }
                }
                (v, p) => failures.push(format!(
                    "range `{}`: vigil {:?} / prometheus {:?}",
                    q.expr,
                    v.err(),
                    p.err()
                )),
            }
        }
        if q.known && failures.len() == before {
            eprintln!(
                "known difference no longer reproduces, drop `known:`: {}",
                q.expr
            );
        }
    }
    for f in &known_failures {
        eprintln!("known engine difference (reported, not failing): {f}");
    }
    let failures = all_failures;
    assert!(
        failures.is_empty(),
        "{} of {compared} comparisons differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn promtool_out(promtool: &Path, args: &[&str]) -> String {
    common::run_ok(Command::new(promtool).args(args))
}

#[test]
fn promtool_query_output_matches_prometheus() {
    let Some((prometheus, promtool)) = binaries() else {
        return;
    };
    let pair = start_pair(&prometheus, &promtool);
    let vurl = format!("http://127.0.0.1:{}", pair.vigil_port);
    let purl = format!("http://127.0.0.1:{}", pair.prom_port);
    let end = pair.shape.last_s() / 60 * 60;
    let start = end - 1800;
    let time = format!("--time={end}");
    let (s, e) = (format!("--start={start}"), format!("--end={end}"));
    let series_window = [
        format!("--start={}", pair.shape.first_s()),
        format!("--end={end}"),
    ];

    // The order of an instant vector is not part of the API; compare the lines sorted.
    for expr in [
        "up",
        "sum by (job) (http_requests_total)",
        "request_duration_seconds_bucket{instance=\"api-1:9100\"}",
        "count(up)",
        "time()",
    ] {
        let mut v: Vec<String> = promtool_out(&promtool, &["query", "instant", &time, &vurl, expr])
            .lines()
            .map(str::to_string)
            .collect();
        let mut p: Vec<String> = promtool_out(&promtool, &["query", "instant", &time, &purl, expr])
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        p.sort();
        assert!(!p.is_empty(), "prometheus printed nothing for {expr}");
        assert_eq!(v, p, "promtool query instant {expr}");
    }
    // Range results are sorted by labels in both.
    for expr in [
        "up{job=\"web\"}",
        "max by (job) (memory_usage_bytes)",
        "sum(queue_depth)",
    ] {
        let args = ["query", "range", &s, &e, "--step=1m"];
        let v = promtool_out(&promtool, &[&args[..], &[vurl.as_str(), expr]].concat());
        let p = promtool_out(&promtool, &[&args[..], &[purl.as_str(), expr]].concat());
        assert!(!p.is_empty(), "prometheus printed nothing for {expr}");
        assert_eq!(v, p, "promtool query range {expr}");
    }
    for m in [
        "up",
        "{__name__=~\"request_duration_seconds_.*\",instance=\"web-2:9100\"}",
        "{job=\"batch\"}",
    ] {
        let matcher = format!("--match={m}");
        let args = [
            "query",
            "series",
            &series_window[0],
            &series_window[1],
            &matcher,
        ];
        let v = promtool_out(&promtool, &[&args[..], &[vurl.as_str()]].concat());
        let p = promtool_out(&promtool, &[&args[..], &[purl.as_str()]].concat());
        assert!(!p.is_empty(), "prometheus printed nothing for {m}");
        assert_eq!(v, p, "promtool query series {m}");
    }
    for name in ["job", "__name__", "le", "instance", "no_such_label"] {
        let args = ["query", "labels", &series_window[0], &series_window[1]];
        let v = promtool_out(&promtool, &[&args[..], &[vurl.as_str(), name]].concat());
        let p = promtool_out(&promtool, &[&args[..], &[purl.as_str(), name]].concat());
        assert_eq!(v, p, "promtool query labels {name}");
    }
}
