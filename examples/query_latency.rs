//! End-to-end query latency: generates the dashboard data set of tests/interop_data at a
//! realistic size (default about 10k series over 2 h at 15 s), backfills it into Vigil and,
//! when installed, Prometheus (`create-blocks-from openmetrics` of each), starts both on free
//! ports, and times every query of tests/data/dashboard_queries.txt over HTTP, instant and
//! range, reporting p50/p90/p99 per server. It only measures and prints; it never asserts.
//!
//! ```text
//! cargo build --release --bin vigil
//! cargo run --release --example query_latency -- [--instances 200] [--hours 2] [--rounds 10]
//!     [--vigil target/release/vigil] [--prometheus /usr/bin/prometheus] [--promtool /usr/bin/promtool]
//! ```

#[path = "../tests/interop_data/mod.rs"]
mod interop_data;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// Longest wait for a server to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(600);
/// Pause between readiness polls.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Range queries: the last hour of data at this step (240 points), like a Grafana panel.
const RANGE_WINDOW_S: i64 = 3600;
const RANGE_STEP_S: i64 = 15;
/// Retention large enough that no backfilled block is deleted.
const RETENTION: &str = "--storage.tsdb.retention.time=3650d";

struct Args {
    instances: usize,
    hours: i64,
    rounds: usize,
    vigil: PathBuf,
    prometheus: Option<PathBuf>,
    promtool: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut a = Args {
        instances: 200,
        hours: 2,
        rounds: 10,
        vigil: root.join("target/release/vigil"),
        prometheus: Some(PathBuf::from("/usr/bin/prometheus")).filter(|p| p.is_file()),
        promtool: Some(PathBuf::from("/usr/bin/promtool")).filter(|p| p.is_file()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--instances" => a.instances = value.parse()?,
            "--hours" => a.hours = value.parse()?,
            "--rounds" => a.rounds = value.parse()?,
            "--vigil" => a.vigil = value.into(),
            "--prometheus" => a.prometheus = Some(value.into()),
            "--promtool" => a.promtool = Some(value.into()),
            _ => bail!("unknown flag {flag}"),
        }
    }
    Ok(a)
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
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

/// GET on `port`; returns the status and the (un-chunked) body length.
fn http_get(port: u16, target: &str) -> Result<(u16, usize)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no HTTP header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad status line"))?;
    Ok((status, raw.len() - split - 4))
}

fn wait_ready(port: u16, child: &mut Child, what: &str) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < READY_TIMEOUT {
        if let Ok((200, _)) = http_get(port, "/-/ready") {
            return Ok(());
        }
        if let Some(st) = child.try_wait()? {
            bail!("{what} exited: {st}");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    bail!("{what} not ready after {READY_TIMEOUT:?}")
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn queries() -> Result<Vec<(String, bool)>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dashboard_queries.txt");
    Ok(std::fs::read_to_string(path)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let l = l.trim_start_matches("known:").trim();
            let instant_only = l.starts_with("instant:");
            let l = l
                .trim_start_matches("instant:")
                .trim_start_matches("ordered:")
                .trim();
            (l.to_string(), instant_only)
        })
        .collect())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Times every query `rounds` times (after one warm-up round) on `port`.
fn measure(name: &str, port: u16, shape: &interop_data::Shape, rounds: usize) -> Result<()> {
    let end = shape.last_s() / 60 * 60;
    let mid = (shape.first_s() + shape.last_s()) / 2 / 60 * 60;
    let qs = queries()?;
    let mut instant = Vec::new();
    let mut range = Vec::new();
    let mut per_query: Vec<(Duration, String)> = Vec::new();
    for round in 0..=rounds {
        for (q, instant_only) in &qs {
            let e = enc(&q.replace("{MID}", &mid.to_string()));
            let mut targets = vec![(true, format!("/api/v1/query?query={e}&time={end}"))];
            if !instant_only {
                targets.push((
                    false,
                    format!(
                        "/api/v1/query_range?query={e}&start={}&end={end}&step={RANGE_STEP_S}",
                        end - RANGE_WINDOW_S
                    ),
                ));
            }
            for (is_instant, t) in targets {
                let started = Instant::now();
                let (status, _) = http_get(port, &t)?;
                let took = started.elapsed();
                if status != 200 {
                    bail!("{name}: {t} -> HTTP {status}");
                }
                if round == 0 {
                    continue; // warm-up
                }
                if is_instant {
                    instant.push(took);
                } else {
                    range.push(took);
                    per_query.push((took, q.clone()));
                }
            }
        }
    }
    instant.sort();
    range.sort();
    for (kind, v) in [("instant", &instant), ("range", &range)] {
        println!(
            "{name:>10} {kind:>7}: n={:>5}  p50={:>8.2} ms  p90={:>8.2} ms  p99={:>8.2} ms  max={:>8.2} ms",
            v.len(),
            ms(percentile(v, 50.0)),
            ms(percentile(v, 90.0)),
            ms(percentile(v, 99.0)),
            ms(v.last().copied().unwrap_or_default()),
        );
    }
    per_query.sort_by_key(|p| std::cmp::Reverse(p.0));
    let mut seen = Vec::new();
    for (d, q) in per_query {
        if seen.len() == 3 {
            break;
        }
        if !seen.contains(&q) {
            println!("{name:>10} slowest range: {:>8.2} ms  {q}", ms(d));
            seen.push(q);
        }
    }
    Ok(())
}

/// Starts `bin` on `data`, measures it, and stops it.
fn serve_and_measure(
    name: &str,
    bin: &Path,
    data: &Path,
    cfg: &Path,
    shape: &interop_data::Shape,
    rounds: usize,
) -> Result<()> {
    let port = free_port()?;
    let mut child = Command::new(bin)
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--config.file={}", cfg.display()))
        .arg(RETENTION)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    wait_ready(port, &mut child, name)?;
    let proc = Proc(child);
    let r = measure(name, port, shape, rounds);
    drop(proc);
    r
}

fn main() -> Result<()> {
    let args = parse_args()?;
    if !args.vigil.is_file() {
        bail!(
            "{} not found: run `cargo build --release --bin vigil` first or pass --vigil",
            args.vigil.display()
        );
    }
    let dir = tempfile::tempdir()?;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    )?;
    let end = (now - 600) / 60 * 60;
    let shape = interop_data::Shape {
        instances: args.instances,
        start_s: end - args.hours * 3600,
        points: usize::try_from(args.hours * 3600 / interop_data::STEP_S)?,
    };
    println!(
        "data: {} series x {} samples ({} h at {} s)",
        shape.series_count(),
        shape.points,
        args.hours,
        interop_data::STEP_S
    );
    let input = dir.path().join("data.om");
    std::fs::write(&input, interop_data::openmetrics(&shape))?;
    let cfg = dir.path().join("empty.yml");
    std::fs::write(
        &cfg,
        "global:\n  scrape_interval: 15s\nscrape_configs: []\n",
    )?;

    // One server at a time, so they never compete for the cores.
    let started = Instant::now();
    let vigil_data = dir.path().join("vigil");
    run(Command::new(&args.vigil)
        .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
        .arg(&input)
        .arg(&vigil_data))?;
    println!("vigil backfill: {:.1} s", started.elapsed().as_secs_f64());
    serve_and_measure("vigil", &args.vigil, &vigil_data, &cfg, &shape, args.rounds)?;

    if let (Some(prometheus), Some(promtool)) = (&args.prometheus, &args.promtool) {
        let started = Instant::now();
        let prom_data = dir.path().join("prom");
        run(Command::new(promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(&prom_data))?;
        println!(
            "promtool backfill: {:.1} s",
            started.elapsed().as_secs_f64()
        );
        serve_and_measure(
            "prometheus",
            prometheus,
            &prom_data,
            &cfg,
            &shape,
            args.rounds,
        )?;
    } else {
        println!("prometheus/promtool not found: measured Vigil only");
    }
    Ok(())
}
