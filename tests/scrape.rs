//! End-to-end scraping: a tiny tokio HTTP server serves exposition text that changes between
//! scrapes, Vigil's scrape manager scrapes it into a real `Db`, and the tests assert what the
//! Db holds (samples, target labels, stale markers, synthetic series). Also reloads through
//! file SD and the `Reloader`, and a real `prometheus-node-exporter` when installed.
#![allow(clippy::unwrap_used)]

mod common;

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;

use vigil::config::Config;
use vigil::reload::Reloader;
use vigil::scrape::{ScrapeManager, TargetHealth};
use vigil_storage::chunkenc::is_stale_nan;
use vigil_storage::{Db, DbOptions, Labels, Matcher, Queryable};

const DEADLINE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(20);

/// What the test server answers.
#[derive(Clone)]
struct Page {
    body: String,
    content_type: String,
    status: u16,
}

impl Page {
    fn text(body: &str) -> Page {
        Page {
            body: body.to_owned(),
            content_type: "text/plain; version=0.0.4; charset=utf-8".into(),
            status: 200,
        }
    }
}

struct TestServer {
    addr: SocketAddr,
    page: Arc<Mutex<Page>>,
    /// (Accept, Accept-Encoding) of every request.
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

impl TestServer {
    async fn start(page: Page) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let page = Arc::new(Mutex::new(page));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (p, r) = (page.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (p, r) = (p.clone(), r.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (p, r) = (p.clone(), r.clone());
                        async move { Ok::<_, Infallible>(respond(&req, &p, &r)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        TestServer {
            addr,
            page,
            requests,
        }
    }

    fn set(&self, page: Page) {
        *self.page.lock() = page;
    }

    fn instance(&self) -> String {
        self.addr.to_string()
    }
}

fn respond(
    req: &Request<hyper::body::Incoming>,
    page: &Mutex<Page>,
    requests: &Mutex<Vec<(String, String)>>,
) -> Response<Full<Bytes>> {
    let h = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let accept_encoding = h("accept-encoding");
    requests.lock().push((h("accept"), accept_encoding.clone()));
    let p = page.lock().clone();
    let gzip = accept_encoding.contains("gzip");
    let body = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(p.body.as_bytes()).unwrap();
        enc.finish().unwrap()
    } else {
        p.body.into_bytes()
    };
    let mut resp = Response::builder()
        .status(p.status)
        .header("content-type", p.content_type);
    if gzip {
        resp = resp.header("content-encoding", "gzip");
    }
    resp.body(Full::new(Bytes::from(body))).unwrap()
}

/// All series matching `name` (and optional label matchers) with their samples.
fn series(db: &Db, name: &str, more: &[(&str, &str)]) -> Vec<(Labels, Vec<f64>)> {
    let mut m = vec![Matcher::equal("__name__", name)];
    m.extend(more.iter().map(|(n, v)| Matcher::equal(n, v)));
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    q.select(&m)
        .unwrap()
        .into_iter()
        .map(|s| {
            let v = s.samples().unwrap().into_iter().map(|x| x.v).collect();
            (s.labels.clone(), v)
        })
        .collect()
}

fn last_value(db: &Db, name: &str, more: &[(&str, &str)]) -> Option<f64> {
    series(db, name, more)
        .first()
        .and_then(|(_, v)| v.last().copied())
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

fn open_db(dir: &Path) -> Arc<Db> {
    Db::open(dir, DbOptions::default()).unwrap()
}

fn config(yaml: &str) -> Config {
    Config::parse(yaml, "test.yml", Path::new("/")).unwrap()
}

fn job(name: &str, target: &str, extra: &str) -> String {
    format!(
        "  - job_name: {name}\n    scrape_interval: 100ms\n    scrape_timeout: 90ms\n{extra}    static_configs:\n      - targets: ['{target}']\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_that_disappear_get_stale_markers_and_explicit_timestamps_never_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    let explicit_ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let srv = TestServer::start(Page::text(&format!(
        "# TYPE a gauge\na 1\nb{{x=\"1\"}} 2\ndropped_me 3\nexplicit 7 {explicit_ts}\n"
    )))
    .await;
    let inst = srv.instance();
    let extra = "    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: 'dropped_.*'\n        action: drop\n";
    let cfg = config(&format!("scrape_configs:\n{}", job("t", &inst, extra)));
    let mgr = ScrapeManager::new(db.clone());
    mgr.apply_config(&cfg).await;

    wait_for("first scrape", || {
        last_value(&db, "up", &[("job", "t")]) == Some(1.0)
    })
    .await;
    let b = series(&db, "b", &[]);
    assert_eq!(
        b[0].0,
        Labels::from_pairs(&[
            ("__name__", "b"),
            ("instance", inst.as_str()),
            ("job", "t"),
            ("x", "1")
        ])
        .unwrap()
    );
    assert!(
        series(&db, "dropped_me", &[]).is_empty(),
        "metric relabeling drops"
    );
    assert_eq!(last_value(&db, "scrape_samples_scraped", &[]), Some(4.0));
    assert_eq!(
        last_value(&db, "scrape_samples_post_metric_relabeling", &[]),
        Some(3.0)
    );
    assert!(series(&db, "scrape_duration_seconds", &[]).len() == 1);
    assert!(series(&db, "scrape_series_added", &[]).len() == 1);

    srv.set(Page::text("a 3\nc 4\n"));
    wait_for("b to go stale", || {
        last_value(&db, "b", &[]).is_some_and(is_stale_nan)
    })
    .await;
    wait_for("c to appear", || last_value(&db, "c", &[]) == Some(4.0)).await;
    wait_for("a to be 3", || last_value(&db, "a", &[]) == Some(3.0)).await;
    let a = &series(&db, "a", &[])[0].1;
    assert!(!a.iter().any(|v| is_stale_nan(*v)), "a never disappeared");
    let explicit = &series(&db, "explicit", &[])[0].1;
    assert_eq!(
        explicit,
        &vec![7.0],
        "one sample at its own timestamp, never a stale marker"
    );

    let status = mgr.active_targets();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].health, TargetHealth::Up);
    assert_eq!(status[0].scrape_pool, "t");
    assert_eq!(status[0].scrape_url, format!("http://{inst}/metrics"));
    assert_eq!(
        status[0].discovered_labels.get("__address__"),
        Some(inst.as_str())
    );
    assert!(status[0].last_scrape_ms.is_some());

    // Removing the job marks every series of the target stale, `up` included: as in
    // Prometheus at the time of the next scrape that would have been, written about two
    // intervals later (see `removed_targets_are_marked_stale_later_unless_shutting_down`).
    mgr.apply_config(&config("")).await;
    assert!(mgr.active_targets().is_empty());
    for name in ["a", "c", "up", "scrape_duration_seconds"] {
        wait_for(&format!("{name} stale after its target went away"), || {
            last_value(&db, name, &[]).is_some_and(is_stale_nan)
        })
        .await;
    }
    db.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_limit_and_failed_scrapes_set_up_to_zero_and_mark_stale() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    let srv = TestServer::start(Page::text("a 1\nb 2\n")).await;
    let cfg = config(&format!(
        "scrape_configs:\n{}",
        job("lim", &srv.instance(), "    sample_limit: 3\n")
    ));
    let mgr = ScrapeManager::new(db.clone());
    mgr.apply_config(&cfg).await;
    wait_for("a scraped", || last_value(&db, "a", &[]) == Some(1.0)).await;

    srv.set(Page::text("a 1\nb 2\nc 3\nd 4\n"));
    wait_for("up = 0", || last_value(&db, "up", &[]) == Some(0.0)).await;
    assert!(last_value(&db, "a", &[]).is_some_and(is_stale_nan));
    assert!(last_value(&db, "b", &[]).is_some_and(is_stale_nan));
    assert!(
        series(&db, "c", &[]).is_empty(),
        "nothing of a failed scrape is stored"
    );
    assert!(series(&db, "d", &[]).is_empty());
    let st = &mgr.active_targets()[0];
    assert_eq!(st.health, TargetHealth::Down);
    assert!(
        st.last_error.contains("sample limit exceeded"),
        "{}",
        st.last_error
    );

    // Recovery, then an HTTP error: again stale markers and up = 0.
    srv.set(Page::text("a 5\n"));
    wait_for("recovered", || last_value(&db, "a", &[]) == Some(5.0)).await;
    assert_eq!(last_value(&db, "up", &[]), Some(1.0));
    srv.set(Page {
        status: 500,
        ..Page::text("oops")
    });
    wait_for("a stale after HTTP 500", || {
        last_value(&db, "a", &[]).is_some_and(is_stale_nan)
    })
    .await;
    assert_eq!(last_value(&db, "up", &[]), Some(0.0));
    assert!(mgr.active_targets()[0].last_error.contains("500"));
    mgr.stop().await;
    db.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honor_labels_and_exported_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    let srv = TestServer::start(Page::text(
        "m{job=\"exposed\",instance=\"x\"} 1\nn{job=\"\"} 2\ndup 1\ndup 2\n",
    ))
    .await;
    let inst = srv.instance();
    let cfg = config(&format!(
        "scrape_configs:\n{}{}",
        job("honor", &inst, "    honor_labels: true\n"),
        job("plain", &inst, "")
    ));
    let mgr = ScrapeManager::new(db.clone());
    mgr.apply_config(&cfg).await;
    wait_for("both jobs scraped", || {
        series(&db, "m", &[]).len() == 2 && series(&db, "n", &[]).len() == 2
    })
    .await;
    let l = |p: &[(&str, &str)]| Labels::from_pairs(p).unwrap();
    let m: Vec<Labels> = series(&db, "m", &[]).into_iter().map(|s| s.0).collect();
    assert!(m.contains(&l(&[
        ("__name__", "m"),
        ("instance", "x"),
        ("job", "exposed")
    ])));
    assert!(m.contains(&l(&[
        ("__name__", "m"),
        ("exported_instance", "x"),
        ("exported_job", "exposed"),
        ("instance", &inst),
        ("job", "plain"),
    ])));
    let n: Vec<Labels> = series(&db, "n", &[]).into_iter().map(|s| s.0).collect();
    // honor_labels with an exposed empty `job`: the series ends up with no job at all.
    assert!(
        n.contains(&l(&[("__name__", "n"), ("instance", &inst)])),
        "{n:?}"
    );
    assert!(n.contains(&l(&[
        ("__name__", "n"),
        ("instance", &inst),
        ("job", "plain")
    ])));
    mgr.stop().await;
    db.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_and_openmetrics_negotiation() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    // Float-second timestamps only parse as OpenMetrics; the text parser would reject them.
    let srv = TestServer::start(Page {
        body: "# TYPE om counter\n# HELP om Things.\nom_total 1.5 1700000000.5\n# EOF\n".into(),
        content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8".into(),
        status: 200,
    })
    .await;
    let cfg = config(&format!(
        "scrape_configs:\n{}",
        job("om", &srv.instance(), "    honor_timestamps: false\n")
    ));
    let mgr = ScrapeManager::new(db.clone());
    mgr.apply_config(&cfg).await;
    wait_for("om scraped", || {
        last_value(&db, "om_total", &[]) == Some(1.5)
    })
    .await;
    assert_eq!(last_value(&db, "up", &[]), Some(1.0));
    let (accept, encoding) = srv.requests.lock()[0].clone();
    assert!(
        accept.starts_with("application/openmetrics-text;version=1.0.0;q=0.6,"),
        "{accept}"
    );
    assert!(accept.ends_with("*/*;q=0.2"), "{accept}");
    assert_eq!(encoding, "gzip");
    mgr.stop().await;

    // With compression disabled the scraper asks for identity and still parses the page.
    let cfg = config(&format!(
        "scrape_configs:\n{}",
        job(
            "om2",
            &srv.instance(),
            "    honor_timestamps: false\n    enable_compression: false\n"
        )
    ));
    mgr.apply_config(&cfg).await;
    wait_for("om2 scraped", || {
        last_value(&db, "om_total", &[("job", "om2")]) == Some(1.5)
    })
    .await;
    assert_eq!(srv.requests.lock().last().unwrap().1, "identity");
    mgr.stop().await;
    db.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_and_reload_add_and_remove_targets() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(&dir.path().join("data"));
    let s1 = TestServer::start(Page::text("x 1\n")).await;
    let s2 = TestServer::start(Page::text("x 2\n")).await;
    let sd = dir.path().join("targets.json");
    std::fs::write(
        &sd,
        format!(
            r#"[{{"targets": ["{}"], "labels": {{"env": "a"}}}}]"#,
            s1.instance()
        ),
    )
    .unwrap();
    let cfg_path = dir.path().join("vigil.yml");
    let good = "scrape_configs:\n  - job_name: f\n    scrape_interval: 100ms\n    scrape_timeout: 90ms\n    file_sd_configs:\n      - files: ['*.json']\n        refresh_interval: 1h\n";
    std::fs::write(&cfg_path, good).unwrap();
    let mgr = ScrapeManager::new(db.clone());
    let reloader = Reloader::new(Some(cfg_path.clone()), "127.0.0.1:0", mgr.clone());
    reloader.reload().await.unwrap();
    let up1 = [("instance", s1.addr.to_string())];
    let up1: Vec<(&str, &str)> = up1.iter().map(|(a, b)| (*a, b.as_str())).collect();
    wait_for("target 1 up", || last_value(&db, "x", &up1) == Some(1.0)).await;
    assert_eq!(series(&db, "x", &up1)[0].0.get("env"), Some("a"));

    // The file changes: target 2 replaces target 1 without a restart (mtime polling).
    std::fs::write(&sd, format!(r#"[{{"targets": ["{}"]}}]"#, s2.instance())).unwrap();
    wait_for("target 2 up", || {
        last_value(&db, "x", &[("instance", &s2.instance())]) == Some(2.0)
    })
    .await;
    wait_for("target 1 stale", || {
        last_value(&db, "up", &up1).is_some_and(is_stale_nan)
    })
    .await;
    let targets = mgr.active_targets();
    assert_eq!(targets.len(), 1);
    assert_eq!(
        targets[0].discovered_labels.get("__meta_filepath"),
        Some(sd.to_str().unwrap())
    );

    // A bad configuration is rejected and the running one keeps scraping.
    std::fs::write(
        &cfg_path,
        "scrape_configs:\n  - job_name: f\n    scrape_intervl: 1s\n",
    )
    .unwrap();
    let err = reloader.reload().await.unwrap_err();
    assert!(err.to_string().contains("scrape_intervl"), "{err}");
    assert_eq!(mgr.pools(), vec!["f".to_string()]);
    let before = series(&db, "x", &[("instance", &s2.instance())])[0].1.len();
    wait_for("still scraping", || {
        series(&db, "x", &[("instance", &s2.instance())])[0].1.len() > before + 1
    })
    .await;

    // A good new configuration with another job replaces the old one.
    std::fs::write(
        &cfg_path,
        format!("scrape_configs:\n{}", job("g", &s1.instance(), "")),
    )
    .unwrap();
    reloader.reload().await.unwrap();
    assert_eq!(mgr.pools(), vec!["g".to_string()]);
    wait_for("job f stale", || {
        last_value(&db, "x", &[("job", "f")]).is_some_and(is_stale_nan)
    })
    .await;
    wait_for("job g scraped", || {
        last_value(&db, "x", &[("job", "g")]) == Some(1.0)
    })
    .await;
    assert_eq!(reloader.current().scrape_configs[0].job_name, "g");
    mgr.stop().await;
    db.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_a_real_node_exporter() {
    let Some(bin) = common::interop_bin("prometheus-node-exporter") else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(bin)
        .arg(format!("--web.listen-address={addr}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    let cfg = config(&format!(
        "scrape_configs:\n  - job_name: node\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['{addr}']\n"
    ));
    let mgr = ScrapeManager::new(db.clone());
    mgr.apply_config(&cfg).await;
    let result = async {
        wait_for("node exporter scraped", || {
            last_value(&db, "up", &[("job", "node")]) == Some(1.0)
        })
        .await;
        let build = series(&db, "node_exporter_build_info", &[("job", "node")]);
        assert_eq!(build.len(), 1);
        assert_eq!(build[0].0.get("instance"), Some(addr.as_str()));
        assert!(last_value(&db, "scrape_samples_scraped", &[]).unwrap() > 100.0);
        assert!(!series(&db, "process_cpu_seconds_total", &[("job", "node")]).is_empty());
    };
    // Make sure the exporter is stopped whatever the outcome.
    let outcome = tokio::time::timeout(DEADLINE * 2, result).await;
    mgr.stop().await;
    let _ = child.kill();
    let _ = child.wait();
    outcome.unwrap();
    db.close().unwrap();
}

/// As Prometheus: a shutdown writes no stale markers (the server presumably restarts where
/// it was), and a target removed shortly before a shutdown is not marked stale either,
/// because its markers wait for two more scrape intervals.
#[tokio::test]
async fn removed_targets_are_marked_stale_later_unless_shutting_down() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    let target = TestServer::start(Page::text("a 1\n")).await;
    let inst = target.instance();
    let slow = |name: &str| {
        format!(
            "  - job_name: {name}\n    scrape_interval: 5s\n    scrape_timeout: 1s\n    \
             static_configs:\n      - targets: ['{inst}']\n        labels: {{j: {name}}}\n"
        )
    };
    let mgr = ScrapeManager::new(db.clone());
    mgr.apply_config(&config(&format!(
        "scrape_configs:\n{}{}",
        slow("gone"),
        slow("kept")
    )))
    .await;
    for j in ["gone", "kept"] {
        wait_for(&format!("{j} scraped"), || {
            last_value(&db, "up", &[("j", j)]) == Some(1.0)
        })
        .await;
    }
    // "gone" is removed; its markers are due only after about two 5s intervals.
    mgr.apply_config(&config(&format!("scrape_configs:\n{}", slow("kept"))))
        .await;
    // Shutting down now (stop returns once every loop, also the waiting one, has ended).
    mgr.stop().await;
    for j in ["gone", "kept"] {
        assert_eq!(last_value(&db, "up", &[("j", j)]), Some(1.0), "{j}");
        assert_eq!(last_value(&db, "a", &[("j", j)]), Some(1.0), "{j}");
    }
    db.close().unwrap();
}

/// Timestamps and values of `up` for a job label `j`.
fn up_samples(db: &Db, j: &str) -> Vec<(i64, f64)> {
    let m = vec![Matcher::equal("__name__", "up"), Matcher::equal("j", j)];
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let s = q.select(&m).unwrap();
    s.first()
        .map(|s| s.samples().unwrap().iter().map(|x| (x.t, x.v)).collect())
        .unwrap_or_default()
}

/// A removed target's stale markers carry the time of the scrape that would have come
/// next (Prometheus' end-of-run staleness), not the time of the removal.
#[tokio::test]
async fn end_of_run_stale_markers_are_stamped_at_the_next_scrape_time() {
    const INTERVAL_MS: i64 = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path());
    let target = TestServer::start(Page::text("a 1\n")).await;
    let inst = target.instance();
    let cfg = format!(
        "scrape_configs:\n  - job_name: t\n    scrape_interval: 2s\n    scrape_timeout: 1s\n    \
         static_configs:\n      - targets: ['{inst}']\n        labels: {{j: t}}\n"
    );
    let mgr = ScrapeManager::new(db.clone());
    mgr.apply_config(&config(&cfg)).await;
    wait_for("two scrapes", || up_samples(&db, "t").len() >= 2).await;
    // Remove the target right after a fresh scrape.
    let n = up_samples(&db, "t").len();
    wait_for("a fresh scrape", || up_samples(&db, "t").len() > n).await;
    let last = *up_samples(&db, "t").last().unwrap();
    mgr.apply_config(&config("")).await;
    wait_for("the stale marker", || {
        up_samples(&db, "t")
            .last()
            .is_some_and(|(_, v)| is_stale_nan(*v))
    })
    .await;
    let marker = *up_samples(&db, "t").last().unwrap();
    assert!(
        marker.0 - last.0 >= INTERVAL_MS / 2,
        "marker at +{} ms after the last scrape, want about one interval",
        marker.0 - last.0
    );
    mgr.stop().await;
    db.close().unwrap();
}
