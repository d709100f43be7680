//! Interop with a real Prometheus (2.42, `/usr/bin/prometheus`): Vigil (the built binary)
//! receives Prometheus' own remote write while Prometheus scrapes itself every second;
//! after both stop, every sample `promtool tsdb dump` finds in Prometheus' data within the
//! time range Vigil holds must be in `vigil tsdb dump` of Vigil's data, line for line.
//! Skipped with a note when `prometheus` is not on PATH, unless VIGIL_REQUIRE_INTEROP=1.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for Vigil to receive enough data.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest wait for a process to become ready or to exit.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between polls.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Samples Vigil must have received before the comparison.
const MIN_SAMPLES: f64 = 1500.0;

fn on_path(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(bin))
            .find(|f| f.is_file())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let code = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Some((code, body.to_string()))
}

fn metric(port: u16, name: &str) -> f64 {
    http_get(port, "/metrics")
        .and_then(|(_, body)| {
            body.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// Polls `cond` until true or `timeout`; returns whether it became true.
fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    cond()
}

/// Stops a child with SIGTERM and waits for it (bounded; SIGKILL after the timeout).
fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let exited = wait_until(PROCESS_TIMEOUT, || matches!(child.try_wait(), Ok(Some(_))));
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Kills the children if the test panics midway.
struct Guard(Vec<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn dump(cmd: &mut Command) -> Vec<String> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `{labels} value timestamp` → timestamp.
fn timestamp_of(line: &str) -> i64 {
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn write_config(path: &Path, prom_port: u16, vigil_port: u16) {
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{prom_port}']\n\
         remote_write:\n  - url: http://127.0.0.1:{vigil_port}/api/v1/write\n    \
         queue_config:\n      batch_send_deadline: 1s\n      max_samples_per_send: 500\n    \
         metadata_config:\n      send: true\n      send_interval: 1s\n"
    );
    std::fs::write(path, cfg).unwrap();
}

#[test]
fn prometheus_remote_write_reaches_vigil_sample_for_sample() {
    let Some(prometheus) = on_path("prometheus") else {
        if std::env::var("VIGIL_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("prometheus is not on PATH and VIGIL_REQUIRE_INTEROP=1");
        }
        eprintln!("note: skipping the Prometheus interop test: `prometheus` is not on PATH");
        return;
    };
    let promtool = on_path("promtool").expect("promtool next to prometheus");
    let tmp = tempfile::tempdir().unwrap();
    let vigil_dir = tmp.path().join("vigil");
    let prom_dir = tmp.path().join("prom");
    let (vigil_port, prom_port) = (free_port(), free_port());
    let mut guard = Guard(Vec::new());

    guard.0.push(
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .arg("--web.listen-address")
            .arg(format!("127.0.0.1:{vigil_port}"))
            .arg("--storage.tsdb.path")
            .arg(&vigil_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_until(PROCESS_TIMEOUT, || http_get(vigil_port, "/-/ready")
            .is_some_and(|(c, _)| c == 200)),
        "vigil did not become ready"
    );

    let cfg = tmp.path().join("prometheus.yml");
    write_config(&cfg, prom_port, vigil_port);
    guard.0.push(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", prom_dir.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let received = wait_until(RECEIVE_TIMEOUT, || {
        metric(vigil_port, "vigil_remote_write_samples_written_total") >= MIN_SAMPLES
            && metric(vigil_port, "vigil_remote_write_metadata_applied_total") >= 1.0
    });
    assert!(
        received,
        "vigil received {} samples",
        metric(vigil_port, "vigil_remote_write_samples_written_total")
    );
    let bad = metric(
        vigil_port,
        "vigil_remote_write_responses_total{code=\"400\"}",
    ) + metric(
        vigil_port,
        "vigil_remote_write_responses_total{code=\"500\"}",
    );
    assert_eq!(bad, 0.0, "vigil refused some of Prometheus' requests");

    // Prometheus first (it flushes its queue to Vigil on shutdown), then Vigil.
    let mut prom = guard.0.pop().unwrap();
    terminate(&mut prom);
    let mut vigil = guard.0.pop().unwrap();
    terminate(&mut vigil);

    let ours = dump(
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .arg("tsdb")
            .arg("dump")
            .arg(&vigil_dir),
    );
    let theirs = dump(
        Command::new(&promtool)
            .arg("tsdb")
            .arg("dump")
            .arg(&prom_dir),
    );
    assert!(ours.len() as f64 >= MIN_SAMPLES, "{} samples", ours.len());
    for name in ["{__name__=\"up\"", "{__name__=\"prometheus_build_info\""] {
        assert!(
            ours.iter().any(|l| l.starts_with(name)),
            "{name} not in vigil"
        );
    }
    let mint = ours.iter().map(|l| timestamp_of(l)).min().unwrap();
    let maxt = ours.iter().map(|l| timestamp_of(l)).max().unwrap();
    let have: HashSet<&str> = ours.iter().map(String::as_str).collect();
    let expected: Vec<&String> = theirs
        .iter()
        .filter(|l| (mint..=maxt).contains(&timestamp_of(l)))
        .collect();
    let missing: Vec<&&String> = expected
        .iter()
        .filter(|l| !have.contains(l.as_str()))
        .collect();
    assert!(
        expected.len() as f64 >= MIN_SAMPLES,
        "only {} comparable samples",
        expected.len()
    );
    assert!(
        missing.is_empty(),
        "{} of {} Prometheus samples in [{mint}, {maxt}] missing from Vigil, e.g. {:?}",
        missing.len(),
        expected.len(),
        &missing[..missing.len().min(5)]
    );
}
