//! The server under concurrent load: an in-process Vigil (tests/rw_common) receives
//! remote write continuously while 16 client threads run dashboard queries (instant and
//! range) and a probe keeps asking `/-/healthy`; every query must succeed, every probe must
//! answer 200, and ingested samples must become queryable. Expensive queries with a small
//! `timeout=` must come back as 503 `timeout` (not pile up), and the server must still answer
//! afterwards. Deadlines are generous bounds against hangs, never speed assertions.
#![allow(clippy::unwrap_used)]

mod rw_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use rw_common::{now_ms, v1_body, Server};
use serde_json::Value;

/// Parallel query clients.
const CLIENTS: usize = 16;
/// Queries per client.
const QUERIES_PER_CLIENT: usize = 12;
/// Series written by the ingest thread.
const SERIES: usize = 100;
/// Scrape interval of the initial data, ms.
const STEP_MS: i64 = 15_000;
/// Initial history, ms (30 minutes).
const HISTORY_MS: i64 = 30 * 60 * 1000;
/// Bound on any single request (a hang fails the test instead of blocking it forever).
const REQUEST_DEADLINE: Duration = Duration::from_secs(120);
/// Concurrent expensive queries sent with a small timeout.
const SLOW_QUERIES: usize = 8;

/// One HTTP/1.1 GET with `Connection: close`; returns (status, body).
fn get(addr: SocketAddr, target: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(REQUEST_DEADLINE)).unwrap();
    let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

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

fn labels_of(i: usize) -> (String, String, String) {
    (
        format!("job{}", i % 4),
        format!("inst{i}"),
        ["GET", "POST", "PUT"][i % 3].to_string(),
    )
}

/// An RW 1.0 body: every series gets the samples at `times` (value grows with time).
fn batch(times: &[i64]) -> Vec<u8> {
    let names: Vec<(String, String, String)> = (0..SERIES).map(labels_of).collect();
    let series: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, (job, inst, method))| {
            (
                vec![
                    ("__name__", "load_requests_total"),
                    ("job", job.as_str()),
                    ("instance", inst.as_str()),
                    ("method", method.as_str()),
                ],
                times
                    .iter()
                    .map(|&t| (t, (t / 1000) as f64 * (1 + i % 5) as f64))
                    .collect(),
            )
        })
        .collect();
    v1_body(&series)
}

const DASHBOARD: [&str; 8] = [
    "sum by (job) (rate(load_requests_total[5m]))",
    "topk(5, rate(load_requests_total[1m]))",
    "avg by (method) (irate(load_requests_total[2m]))",
    "count(load_requests_total)",
    "max_over_time(load_requests_total[10m])",
    "sum(increase(load_requests_total[10m])) by (method) > 0",
    "quantile(0.9, rate(load_requests_total[5m]))",
    "absent(load_requests_total{job=\"nope\"})",
];

/// `data` of a successful reply, or a panic naming the query and reply.
fn success(addr: SocketAddr, target: &str) -> Value {
    let (status, body) = get(addr, target);
    let j: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert!(
        status == 200 && j["status"] == "success",
        "{target} -> {status} {body}"
    );
    j["data"].clone()
}

#[test]
fn queries_ingest_and_health_checks_run_concurrently() {
    let server = Server::start();
    let addr = server.addr;
    let start_ms = now_ms() - HISTORY_MS;
    // History: 30 minutes at 15 s, written in a few requests.
    let history: Vec<i64> = (0..HISTORY_MS / STEP_MS)
        .map(|k| start_ms + k * STEP_MS)
        .collect();
    for chunk in history.chunks(40) {
        let r = server.post_v1(&batch(chunk));
        assert_eq!(r.status, 204, "{}", r.body);
    }
    let first_live_ms = start_ms + HISTORY_MS;

    let stop = Arc::new(AtomicBool::new(false));
    let written_ms = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(CLIENTS + 2));
    std::thread::scope(|scope| {
        // Ingest: one new sample per series per request, 1 s apart, until the clients finish.
        let ingest = {
            let (stop, written_ms, barrier) = (stop.clone(), written_ms.clone(), barrier.clone());
            let server = &server;
            scope.spawn(move || {
                barrier.wait();
                let mut t = first_live_ms;
                let mut requests = 0u64;
                while !stop.load(Ordering::Acquire) {
                    let r = server.post_v1(&batch(&[t]));
                    assert_eq!(r.status, 204, "ingest at {t}: {}", r.body);
                    written_ms.store(t as u64, Ordering::Release);
                    t += 1000;
                    requests += 1;
                }
                requests
            })
        };
        // Health probe.
        let health = {
            let (stop, barrier) = (stop.clone(), barrier.clone());
            scope.spawn(move || {
                barrier.wait();
                let mut probes = 0u64;
                while !stop.load(Ordering::Acquire) {
                    let (status, _) = get(addr, "/-/healthy");
                    assert_eq!(status, 200, "/-/healthy under load");
                    probes += 1;
                }
                probes
            })
        };
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let barrier = barrier.clone();
                scope.spawn(move || {
                    barrier.wait();
                    for k in 0..QUERIES_PER_CLIENT {
                        let q = enc(DASHBOARD[(c + k) % DASHBOARD.len()]);
                        let now_s = now_ms() as f64 / 1000.0;
                        let d = if k % 2 == 0 {
                            success(addr, &format!("/api/v1/query?query={q}&time={now_s:.3}"))
                        } else {
                            success(
                                addr,
                                &format!(
                                    "/api/v1/query_range?query={q}&start={:.3}&end={now_s:.3}&step=15",
                                    now_s - 1800.0
                                ),
                            )
                        };
                        assert!(d["result"].is_array(), "{d}");
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        stop.store(true, Ordering::Release);
        let requests = ingest.join().unwrap();
        let probes = health.join().unwrap();
        assert!(requests > 0, "no ingest request ran during the queries");
        assert!(probes > 0, "no health probe ran during the queries");
    });

    // Everything acknowledged during the load is queryable: the newest written sample of
    // every series is there.
    let last_ms = written_ms.load(Ordering::Acquire) as i64;
    let t = last_ms as f64 / 1000.0;
    let d = success(
        addr,
        &format!(
            "/api/v1/query?query={}&time={t:.3}",
            enc("count(timestamp(load_requests_total) == time())")
        ),
    );
    assert_eq!(d["result"][0]["value"][1], SERIES.to_string(), "{d}");
}

#[test]
fn expensive_queries_time_out_with_503_instead_of_piling_up() {
    let server = Server::start();
    let addr = server.addr;
    let start_ms = now_ms() - HISTORY_MS;
    let history: Vec<i64> = (0..HISTORY_MS / STEP_MS)
        .map(|k| start_ms + k * STEP_MS)
        .collect();
    for chunk in history.chunks(40) {
        let r = server.post_v1(&batch(chunk));
        assert_eq!(r.status, 204, "{}", r.body);
    }
    let end_s = (start_ms + HISTORY_MS) as f64 / 1000.0;
    // A 1 s-resolution subquery under a 1 s-step range over 30 minutes: millions of inner
    // evaluations, far more than 100 ms of work.
    let slow = enc("sum(max_over_time(rate(load_requests_total[5m])[30m:1s]))");
    let target = format!(
        "/api/v1/query_range?query={slow}&start={:.3}&end={end_s:.3}&step=1&timeout=100ms",
        end_s - 1800.0
    );
    let barrier = Barrier::new(SLOW_QUERIES + 1);
    std::thread::scope(|scope| {
        let slow: Vec<_> = (0..SLOW_QUERIES)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    get(addr, &target)
                })
            })
            .collect();
        barrier.wait();
        // While they run, the server answers health checks and cheap queries.
        assert_eq!(get(addr, "/-/healthy").0, 200);
        success(addr, "/api/v1/query?query=1%2B1&time=4");
        for h in slow {
            let (status, body) = h.join().unwrap();
            let j: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(status, 503, "{body}");
            assert_eq!(j["status"], "error", "{body}");
            assert_eq!(j["errorType"], "timeout", "{body}");
        }
    });
    // Afterwards ordinary queries still succeed.
    let d = success(
        addr,
        &format!(
            "/api/v1/query?query={}&time={end_s:.3}",
            enc("count(load_requests_total)")
        ),
    );
    assert_eq!(d["result"][0]["value"][1], SERIES.to_string(), "{d}");
    assert_eq!(get(addr, "/-/healthy").0, 200);
}
