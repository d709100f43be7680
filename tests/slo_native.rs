//! Native SLO loading end to end (docs/SLO.md §5–§6): the real `vigil` binary started with a
//! config holding `rule_files` and `slo_files` over a data directory backfilled with ten
//! minutes of counter samples up to now (backfilled before the start, so no rule evaluation
//! can see half of them), and then: the generated groups in `/api/v1/rules` under the SLO file, the
//! page alert in `/api/v1/alerts`, `/api/v1/slos` values read from the recorded series (at
//! `time`, filtered by service and name; bad `time` is 400), reloads that keep the old rules
//! and SLOs when an SLO file is broken or a generated group clashes with a rule-file group.
//! Also the rule manager's `update_sources` on tokio's paused clock. Conditions that depend
//! on rule evaluation are polled with a bounded number of retries, never a fixed sleep.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a polled condition may take before the test fails (rules run every second).
const POLL_LIMIT: Duration = Duration::from_secs(60);
/// Pause between two polls of a condition.
const POLL_PAUSE: Duration = Duration::from_millis(200);
/// Spacing of the backfilled samples, in seconds.
const SAMPLE_STEP_S: i64 = 15;
/// How far back the backfilled samples reach, in seconds.
const HISTORY_S: i64 = 10 * 60;
/// Requests per sample step, and how many of them fail (1.5%).
const REQUESTS_PER_STEP: f64 = 1000.0;
const ERRORS_PER_STEP: f64 = 15.0;
const SLO_PATH: &str = "slos/checkout.yaml";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A running `vigil` over a temporary config directory; killed on drop.
struct Server {
    /// Keeps the server running.
    _vigil: common::RunningVigil,
    addr: String,
    dir: tempfile::TempDir,
}

struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

const CONFIG: &str =
    "global:\n  evaluation_interval: 1s\nrule_files:\n  - rules.yml\nslo_files:\n  - slos/*.yaml\n";
const RULES: &str =
    "groups:\n  - name: plain\n    rules:\n      - record: plain_one\n        expr: vector(1)\n";

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vigil.yml"), CONFIG).unwrap();
        std::fs::write(dir.path().join("rules.yml"), RULES).unwrap();
        std::fs::create_dir(dir.path().join("slos")).unwrap();
        std::fs::copy(data("slo/checkout.slo.yaml"), dir.path().join(SLO_PATH)).unwrap();
        backfill_traffic(dir.path());
        let args: Vec<String> = vec![
            format!("--config.file={}", dir.path().join("vigil.yml").display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            "--web.listen-address=127.0.0.1:0".to_string(),
            "--web.enable-lifecycle".to_string(),
        ];
        let vigil = common::start_vigil(&args);
        Server {
            addr: vigil.addr.clone(),
            _vigil: vigil,
            dir,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn request(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        let mut req = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(raw[..split].to_vec()).unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        Reply {
            status,
            body: raw[split + 4..].to_vec(),
        }
    }

    fn get(&self, path: &str, query: &str) -> Reply {
        let target = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        self.request("GET", &target, &[], b"")
    }

    fn post_form(&self, path: &str, form: &str) -> Reply {
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )
    }

    fn reload(&self) -> Reply {
        self.request("POST", "/-/reload", &[], b"")
    }

    fn slos(&self, query: &str) -> Vec<Value> {
        let r = self.get("/api/v1/slos", query);
        assert_eq!(r.status, 200, "{}", r.text());
        let j = r.json();
        assert_eq!(j["status"], "success");
        j["data"]["slos"].as_array().unwrap().clone()
    }
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Backfills `dir/data` with 10 minutes of checkout traffic up to now: 1000 requests per
/// 15s step, 1.5% of them answered with a 500.
fn backfill_traffic(dir: &Path) {
    let now = now_s();
    let mut text = String::from("# TYPE http_requests counter\n");
    for (code, per_step) in [
        ("200", REQUESTS_PER_STEP - ERRORS_PER_STEP),
        ("500", ERRORS_PER_STEP),
    ] {
        let mut t = now - HISTORY_S;
        let mut i = 0.0;
        while t <= now {
            text.push_str(&format!(
                "http_requests_total{{code=\"{code}\",job=\"checkout\"}} {} {t}\n",
                i * per_step
            ));
            i += 1.0;
            t += SAMPLE_STEP_S;
        }
    }
    text.push_str("# EOF\n");
    let input = dir.join("input.om");
    std::fs::write(&input, text).unwrap();
    common::run_ok(
        common::vigil()
            .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
            .arg(&input)
            .arg(dir.join("data")),
    );
}

/// Polls `f` until it returns Some, failing after [`POLL_LIMIT`].
fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + POLL_LIMIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(POLL_PAUSE);
    }
}

/// Percent-encodes everything but unreserved characters.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn close(got: &Value, want: f64) -> bool {
    got.as_f64()
        .is_some_and(|g| (g - want).abs() <= 1e-9 * want.abs().max(1.0))
}

fn groups_of(s: &Server) -> Vec<(String, String)> {
    let r = s.get("/api/v1/rules", "");
    assert_eq!(r.status, 200);
    r.json()["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_string(),
                g["file"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn slo_files_load_natively_and_serve_their_state() {
    let s = Server::start();
    let slo_file = s.path(SLO_PATH).display().to_string();
    let rules_file = s.path("rules.yml").display().to_string();

    // The generated groups run under the SLO file, next to the rule file's group.
    let groups = groups_of(&s);
    for suffix in ["sli", "period", "alerts"] {
        let name = format!("slo:checkout:requests-availability:{suffix}");
        assert!(
            groups.contains(&(name.clone(), slo_file.clone())),
            "{name} missing: {groups:?}"
        );
    }
    assert!(groups.contains(&("plain".to_string(), rules_file.clone())));
    assert_eq!(groups.len(), 4);

    // The SLO is listed with its spec.
    let before = s.slos("");
    assert_eq!(before.len(), 1);
    let e = &before[0];
    assert_eq!(e["service"], "checkout");
    assert_eq!(e["name"], "requests-availability");
    assert_eq!(e["file"], slo_file.as_str());
    assert_eq!(e["description"], "Checkout API answers without 5xx.");
    assert_eq!(e["objective"].as_f64(), Some(99.9));
    assert_eq!(e["errorBudget"].as_f64(), Some(0.001));
    assert_eq!(e["window"], "30d");
    assert_eq!(e["sliType"], "ratio");
    assert_eq!(e["labels"], serde_json::json!({"team": "payments"}));

    let written_at_s = now_s() as f64;

    // Rules evaluate every second; wait until the page alert fires and the values show.
    let entry = poll("the page alert and burn rates in /api/v1/slos", || {
        let e = s.slos("").into_iter().next()?;
        let series = e["series"].get(0)?.clone();
        let ready = series["alerts"]["page"] == "firing"
            && !series["burnRates"]["5m"].is_null()
            && !series["burnRates"]["30d"].is_null();
        ready.then_some(e)
    });
    let series = entry["series"].as_array().unwrap();
    assert_eq!(series.len(), 1);
    let x = &series[0];
    assert_eq!(
        x["labels"],
        serde_json::json!({"slo_service": "checkout", "slo_name": "requests-availability", "team": "payments"})
    );
    // 1.5% errors in every window that has data: burn 15 everywhere.
    for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
        assert!(close(&x["burnRates"][w], 15.0), "burn {w}: {x}");
    }
    assert!(close(&x["errorRatio"], 0.015), "{x}");
    assert!(close(&x["sli"], 0.985), "{x}");
    assert!(close(&x["budgetRemaining"], -14.0), "{x}");
    assert!(close(&x["budgetConsumed"], 15.0), "{x}");
    // Both windows of the ticket pairs are far above 0.003 and 0.001 as well.
    let ticket = poll("the ticket alert", || {
        let e = s.slos("").into_iter().next()?;
        let state = e["series"][0]["alerts"]["ticket"].as_str()?.to_string();
        (state == "firing").then_some(state)
    });
    assert_eq!(ticket, "firing");

    // The same alerts show in /api/v1/alerts and /api/v1/rules.
    let alerts = s.get("/api/v1/alerts", "").json();
    let severities: Vec<&str> = alerts["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] == "CheckoutAvailabilityBudgetBurn")
        .map(|a| a["labels"]["slo_severity"].as_str().unwrap())
        .collect();
    assert!(severities.contains(&"page"), "{alerts}");
    let rules = s
        .get(
            "/api/v1/rules",
            &format!("type=alert&file%5B%5D={}", enc(&slo_file)),
        )
        .json();
    let groups = rules["data"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{rules}");
    assert_eq!(
        groups[0]["name"],
        "slo:checkout:requests-availability:alerts"
    );
    let page = &groups[0]["rules"][0];
    assert_eq!(page["labels"]["slo_severity"], "page", "{rules}");
    assert_eq!(page["state"], "firing", "{rules}");

    // `time` in the past, before the first rule evaluation: the entry stays, values are null.
    let past = format!("time={}", written_at_s - 3600.0);
    let old = s.slos(&past);
    assert_eq!(old.len(), 1);
    let x = &old[0]["series"][0];
    assert!(x["burnRates"]["5m"].is_null(), "{x}");
    assert!(x["errorRatio"].is_null(), "{x}");
    assert!(x["budgetRemaining"].is_null(), "{x}");

    // Filters, GET and form POST, and a bad time.
    assert_eq!(s.slos("service=checkout").len(), 1);
    assert_eq!(s.slos("name=requests-availability").len(), 1);
    assert_eq!(
        s.slos("service=checkout&name=requests-availability").len(),
        1
    );
    assert!(s.slos("service=nope").is_empty());
    assert!(s.slos("service=checkout&name=nope").is_empty());
    let t = format!("time={written_at_s}");
    let g = s.get("/api/v1/slos", &t);
    let p = s.post_form("/api/v1/slos", &t);
    assert_eq!((g.status, p.status), (200, 200));
    assert_eq!(
        g.json()["data"]["slos"][0]["series"][0]["burnRates"],
        p.json()["data"]["slos"][0]["series"][0]["burnRates"]
    );
    let bad = s.get("/api/v1/slos", "time=abc");
    assert_eq!(bad.status, 400);
    let j = bad.json();
    assert_eq!(j["status"], "error");
    assert_eq!(j["errorType"], "bad_data");
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("invalid parameter \"time\""),
        "{j}"
    );
    assert_eq!(s.request("DELETE", "/api/v1/slos", &[], b"").status, 405);

    // A broken SLO file fails the reload; the old rules and SLOs stay.
    std::fs::write(
        s.path("slos/broken.yaml"),
        std::fs::read_to_string(data("slo/checkout.slo.yaml"))
            .unwrap()
            .replace("service: checkout", "service: broken")
            .replace("objective: 99.9", "objective: 100"),
    )
    .unwrap();
    let r = s.reload();
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("broken.yaml"), "{}", r.text());
    assert!(r.text().contains("objective 100"), "{}", r.text());
    assert_eq!(s.slos("").len(), 1);
    assert_eq!(groups_of(&s).len(), 4);

    // Fixed, it loads: a second SLO and its groups appear.
    std::fs::write(
        s.path("slos/broken.yaml"),
        std::fs::read_to_string(data("slo/checkout.slo.yaml"))
            .unwrap()
            .replace("service: checkout", "service: search"),
    )
    .unwrap();
    let r = s.reload();
    assert_eq!(r.status, 200, "{}", r.text());
    let services: Vec<String> = s
        .slos("")
        .iter()
        .map(|e| e["service"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(services, vec!["checkout", "search"]);
    assert_eq!(groups_of(&s).len(), 7);
    assert_eq!(s.slos("service=search").len(), 1);

    // A rule-file group named like a generated group is a config error; nothing changes.
    std::fs::write(
        s.path("rules.yml"),
        format!("{RULES}  - name: slo:search:requests-availability:sli\n    rules:\n      - record: x\n        expr: vector(2)\n"),
    )
    .unwrap();
    let r = s.reload();
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.text().contains(
            "\"slo:search:requests-availability:sli\" has the name of a group in rule file"
        ),
        "{}",
        r.text()
    );
    assert_eq!(s.slos("").len(), 2);
    assert_eq!(groups_of(&s).len(), 7);
}

mod manager {
    //! `RuleManager::update_sources` on tokio's paused clock (virtual time only).

    use std::sync::Arc;
    use std::time::Duration;

    use vigil::rules::eval::EvalContext;
    use vigil::rules::manager::{Clock, ManagerOptions, RuleManager, RuleSource};
    use vigil_promql::engine::{Engine, MemStorage};

    /// 2026-01-02T00:00:00Z.
    const BASE_MS: i64 = 1_767_312_000_000;

    fn manager() -> RuleManager {
        let t0 = tokio::time::Instant::now();
        let clock: Clock = Arc::new(move || BASE_MS + t0.elapsed().as_millis() as i64);
        RuleManager::new(
            EvalContext {
                engine: Engine::default(),
                store: Arc::new(MemStorage::new()),
                external_labels: Default::default(),
                external_url: "http://vigil:9090".into(),
            },
            ManagerOptions {
                clock,
                ..ManagerOptions::default()
            },
            None,
        )
    }

    fn generated() -> RuleSource {
        RuleSource::Generated {
            path: super::data("slo/checkout.slo.yaml"),
            text: vigil::slo::generate_file(&super::data("slo/checkout.slo.yaml")).unwrap(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn generated_groups_run_under_their_slo_file_and_survive_reloads() {
        let m = manager();
        m.update_sources(&[generated()]).await.unwrap();
        let j = m.rules_json(true).await;
        let groups = j["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 3);
        let file = super::data("slo/checkout.slo.yaml").display().to_string();
        assert!(groups.iter().all(|g| g["file"] == file.as_str()), "{j}");
        tokio::time::sleep(Duration::from_secs(121)).await;
        let evaluated = m.rules_json(true).await["groups"][0]["lastEvaluation"].clone();
        assert_ne!(evaluated, "0001-01-01T00:00:00Z");
        // The same sources again: the groups keep running with their state.
        m.update_sources(&[generated()]).await.unwrap();
        assert_eq!(
            m.rules_json(true).await["groups"][0]["lastEvaluation"],
            evaluated
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_generated_group_named_like_a_rule_file_group_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.yml");
        std::fs::write(
            &f,
            "groups:\n  - name: slo:checkout:requests-availability:period\n    rules:\n      - record: x\n        expr: vector(1)\n",
        )
        .unwrap();
        let m = manager();
        m.update_sources(&[generated()]).await.unwrap();
        let errs = m
            .update_sources(&[RuleSource::File(f.clone()), generated()])
            .await
            .unwrap_err();
        assert_eq!(
            errs,
            vec![format!(
                "{}: generated group \"slo:checkout:requests-availability:period\" has the name of a group in rule file {}",
                super::data("slo/checkout.slo.yaml").display(),
                f.display()
            )]
        );
        // Nothing changed.
        assert_eq!(
            m.rules_json(true).await["groups"].as_array().unwrap().len(),
            3
        );
        // Broken generated text is reported under its SLO file.
        let errs = m
            .update_sources(&[RuleSource::Generated {
                path: "x.yaml".into(),
                text: "groups: [".into(),
            }])
            .await
            .unwrap_err();
        assert!(errs[0].starts_with("x.yaml: generated rules: "), "{errs:?}");
    }
}

/// As Prometheus: a rule file or SLO file that does not load at startup stops the server
/// with an error naming the problem (reloads, in contrast, keep the old rules).
#[test]
fn broken_rule_or_slo_file_at_startup_stops_the_server() {
    for (rules, slo) in [
        (
            "groups:\n  - name: a\n    rules:\n      - record: x\n        expr: up(\n",
            None,
        ),
        (
            RULES,
            Some("version: vigil/v1\nservice: checkout\nslos: [{name: a}]\n"),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vigil.yml"), CONFIG).unwrap();
        std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
        std::fs::create_dir(dir.path().join("slos")).unwrap();
        match slo {
            Some(text) => std::fs::write(dir.path().join(SLO_PATH), text).unwrap(),
            None => {
                std::fs::copy(data("slo/checkout.slo.yaml"), dir.path().join(SLO_PATH)).unwrap();
            }
        }
        let out = common::vigil()
            .arg(format!(
                "--config.file={}",
                dir.path().join("vigil.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error loading config from"), "{err}");
        let what = if slo.is_some() {
            "checkout.yaml"
        } else {
            "rules.yml"
        };
        assert!(err.contains(what), "{err}");
    }
}
