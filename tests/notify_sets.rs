//! The notifier's alertmanager sets against recording fake Alertmanagers (plain and TLS):
//! global and per-set `alert_relabel_configs` (after external labels), target
//! `relabel_configs` and `api_version: v1` from a parsed `prometheus.yml`, delivery when
//! one Alertmanager of a set fails, https with `tls_config` and `authorization`, and
//! reconfiguration in place (`set_alertmanagers`, `Alerting::apply`) keeping queued alerts.
//! Every wait is on a request channel or a condition, never on time.

#![allow(clippy::unwrap_used)]

mod fake_am;

use fake_am::Seen;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use vigil::alerting::{alertmanager_targets, Alerting};
use vigil::config::Config;
use vigil::notify::{AlertmanagerSet, AlertmanagerTarget, Notifier, NotifierOptions};
use vigil::rules::alert::OutgoingAlert;
use vigil_storage::{Db, DbOptions, Labels};

const DEADLINE: Duration = Duration::from_secs(20);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
}

fn tls_acceptor() -> TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture("server.crt"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

fn alert(pairs: &[(&str, &str)]) -> OutgoingAlert {
    OutgoingAlert {
        labels: Labels::from_pairs(pairs).unwrap(),
        annotations: Labels::empty(),
        starts_at_ms: 1_767_360_600_000,
        ends_at_ms: 1_767_360_840_000,
        generator_url: "http://vigil:9090/graph?g0.expr=up&g0.tab=1".into(),
    }
}

async fn recv(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("no request reached the fake Alertmanager")
        .unwrap()
}

fn alertnames(s: &Seen) -> Vec<String> {
    s.body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
        .collect()
}

fn config(yaml: &str) -> Config {
    Config::parse(yaml, "prometheus.yml", Path::new("/")).unwrap()
}

#[tokio::test]
async fn global_then_per_set_alert_relabeling_after_external_labels() {
    let (a, mut rx_a) = fake_am::start(200, false, None).await;
    let (b, mut rx_b) = fake_am::start(200, false, None).await;
    // Global rules see the external label `dc` (added first): drop `Noise` from eu1 and copy
    // `dc` into `region`. Set A also drops `severity=low`; set B has no rules of its own.
    let cfg = config(&format!(
        concat!(
            "global:\n  external_labels: {{dc: eu1}}\n",
            "alerting:\n  alert_relabel_configs:\n",
            "    - source_labels: [alertname, dc]\n      regex: 'Noise;eu1'\n      action: drop\n",
            "    - source_labels: [dc]\n      target_label: region\n",
            "  alertmanagers:\n",
            "    - static_configs: [{{targets: ['{a}']}}]\n",
            "      alert_relabel_configs:\n",
            "        - source_labels: [severity]\n          regex: low\n          action: drop\n",
            "    - static_configs: [{{targets: ['{b}']}}]\n",
        ),
        a = a,
        b = b
    ));
    let alerting = cfg.alerting.clone().unwrap();
    let n = Notifier::with_sets(
        NotifierOptions {
            external_labels: cfg.global.external_labels.clone(),
            alert_relabel_configs: alerting.alert_relabel_configs.clone(),
            ..NotifierOptions::default()
        },
        alertmanager_targets(&cfg),
    );
    n.start();
    n.send(vec![
        alert(&[("alertname", "Page"), ("severity", "page")]),
        alert(&[("alertname", "Low"), ("severity", "low")]),
        alert(&[("alertname", "Noise")]),
        // An alert carrying its own `dc` keeps it, so the global drop does not match.
        alert(&[("alertname", "Noise"), ("dc", "us1")]),
    ]);
    let sa = recv(&mut rx_a).await;
    let sb = recv(&mut rx_b).await;
    assert_eq!(alertnames(&sa), ["Page", "Noise"]);
    assert_eq!(alertnames(&sb), ["Page", "Low", "Noise"]);
    assert_eq!(sa.body[0]["labels"]["dc"], "eu1");
    assert_eq!(sa.body[0]["labels"]["region"], "eu1");
    assert_eq!(sb.body[2]["labels"]["region"], "us1");
    n.stop().await;
    assert_eq!(n.dropped(), 0);
}

#[tokio::test]
async fn target_relabeling_and_api_v1_from_the_config() {
    let (a, mut rx_a) = fake_am::start(200, false, None).await;
    let (b, _rx_b) = fake_am::start(200, false, None).await;
    let (a_port, b_port) = (
        a.rsplit_once(':').unwrap().1.to_string(),
        b.rsplit_once(':').unwrap().1.to_string(),
    );
    // `alertmanager.internal:<port>` is rewritten to 127.0.0.1, the target labelled
    // `role: standby` is dropped, and the path comes from `__alerts_path__`.
    let cfg = config(&format!(
        concat!(
            "alerting:\n  alertmanagers:\n",
            "    - api_version: v1\n      path_prefix: /prefix\n",
            "      static_configs:\n",
            "        - targets: ['alertmanager.internal:{ap}']\n",
            "        - targets: ['127.0.0.1:{bp}']\n          labels: {{role: standby}}\n",
            "      relabel_configs:\n",
            "        - source_labels: [role]\n          regex: standby\n          action: drop\n",
            "        - source_labels: [__address__]\n          regex: 'alertmanager\\.internal:(.*)'\n",
            "          target_label: __address__\n          replacement: '127.0.0.1:$1'\n",
            "        - source_labels: [__alerts_path__]\n          regex: '/prefix(.*)'\n",
            "          target_label: __alerts_path__\n          replacement: '/am$1'\n",
        ),
        ap = a_port,
        bp = b_port
    ));
    let n = Notifier::with_sets(NotifierOptions::default(), alertmanager_targets(&cfg));
    let am = n.alertmanagers_json();
    assert_eq!(
        am["activeAlertmanagers"],
        serde_json::json!([{"url": format!("http://{a}/am/api/v1/alerts")}])
    );
    assert_eq!(
        am["droppedAlertmanagers"],
        serde_json::json!([{"url": format!("http://{b}/prefix/api/v1/alerts")}])
    );
    n.start();
    n.send(vec![alert(&[("alertname", "V1")])]);
    let s = recv(&mut rx_a).await;
    assert_eq!(s.path, "/am/api/v1/alerts");
    assert_eq!(alertnames(&s), ["V1"]);
    assert_eq!(s.body[0]["startsAt"], "2026-01-02T13:30:00Z");
    n.stop().await;
    assert_eq!(n.counts(0), Some((1, 0)));
}

#[tokio::test]
async fn a_batch_is_delivered_when_one_alertmanager_of_the_set_accepts_it() {
    let (bad, mut rx_bad) = fake_am::start(503, false, None).await;
    let (good, mut rx_good) = fake_am::start(200, false, None).await;
    let set = AlertmanagerSet::new(vec![
        AlertmanagerTarget::new(&bad),
        AlertmanagerTarget::new(&good),
    ]);
    let n = Notifier::with_sets(NotifierOptions::default(), vec![set]);
    n.start();
    n.send(vec![
        alert(&[("alertname", "A")]),
        alert(&[("alertname", "B")]),
    ]);
    let (sb, sg) = (recv(&mut rx_bad).await, recv(&mut rx_good).await);
    assert_eq!(sb.body, sg.body, "every Alertmanager gets every alert");
    n.stop().await;
    assert_eq!(n.dropped(), 0);
    assert_eq!(
        n.counts_for(&format!("http://{bad}/api/v2/alerts")),
        Some((2, 2))
    );
    assert_eq!(
        n.counts_for(&format!("http://{good}/api/v2/alerts")),
        Some((2, 0))
    );
}

#[tokio::test]
async fn https_with_ca_file_and_bearer_authorization() {
    let (addr, mut rx) = fake_am::start(200, false, Some(tls_acceptor())).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
    let port = addr.rsplit_once(':').unwrap().1;
    // The certificate is for `localhost`, so address the server by that name.
    let cfg = Config::parse(
        &format!(
            concat!(
                "alerting:\n  alertmanagers:\n    - scheme: https\n",
                "      tls_config: {{ca_file: '{ca}'}}\n",
                "      authorization: {{credentials_file: token}}\n",
                "      static_configs: [{{targets: ['localhost:{port}']}}]\n",
            ),
            ca = fixture("ca.crt").display(),
            port = port
        ),
        "prometheus.yml",
        dir.path(),
    )
    .unwrap();
    let n = Notifier::with_sets(NotifierOptions::default(), alertmanager_targets(&cfg));
    n.start();
    n.send(vec![alert(&[("alertname", "Tls")])]);
    let s = recv(&mut rx).await;
    assert_eq!(s.path, "/api/v2/alerts");
    assert_eq!(s.headers["authorization"], "Bearer s3cret");
    assert_eq!(alertnames(&s), ["Tls"]);
    n.stop().await;
    let url = format!("https://localhost:{port}/api/v2/alerts");
    assert_eq!(n.counts_for(&url), Some((1, 0)));
    assert_eq!(n.alertmanagers_json()["activeAlertmanagers"][0]["url"], url);
}

#[tokio::test]
async fn https_with_the_wrong_ca_fails_and_drops() {
    let (addr, _rx) = fake_am::start(200, false, Some(tls_acceptor())).await;
    let port = addr.rsplit_once(':').unwrap().1;
    let cfg = config(&format!(
        concat!(
            "alerting:\n  alertmanagers:\n    - scheme: https\n",
            "      tls_config: {{ca_file: '{ca}'}}\n",
            "      static_configs: [{{targets: ['localhost:{port}']}}]\n",
        ),
        ca = fixture("other-ca.crt").display(),
        port = port
    ));
    let n = Notifier::with_sets(NotifierOptions::default(), alertmanager_targets(&cfg));
    n.start();
    n.send(vec![alert(&[("alertname", "Tls")])]);
    // stop() drains the queue: the batch has been attempted when it returns.
    n.stop().await;
    assert_eq!(n.counts(0), Some((1, 1)));
    assert_eq!(n.dropped(), 1);
}

#[tokio::test]
async fn set_alertmanagers_keeps_queued_alerts_of_sets_that_stay() {
    let (old, _rx_old) = fake_am::start(200, false, None).await;
    let (new, mut rx_new) = fake_am::start(200, false, None).await;
    let (extra, mut rx_extra) = fake_am::start(200, false, None).await;
    let n = Notifier::with_sets(
        NotifierOptions::default(),
        vec![
            AlertmanagerSet::new(vec![AlertmanagerTarget::new(&old)]),
            AlertmanagerSet::new(vec![AlertmanagerTarget::new("127.0.0.1:1")]),
        ],
    );
    // Not started yet: alerts wait in both sets' queues.
    n.send(vec![alert(&[("alertname", "Queued")])]);
    assert_eq!(n.queue_length(), 2);
    // Set 0 now posts to `new` (and `extra`); set 1 is removed with its queued alert.
    n.set_alertmanagers(vec![AlertmanagerSet::new(vec![
        AlertmanagerTarget::new(&new),
        AlertmanagerTarget::new(&extra),
    ])]);
    assert_eq!(n.queue_length(), 1);
    assert_eq!(n.dropped(), 1);
    let am = n.alertmanagers_json();
    assert_eq!(
        am["activeAlertmanagers"],
        serde_json::json!([
            {"url": format!("http://{new}/api/v2/alerts")},
            {"url": format!("http://{extra}/api/v2/alerts")}
        ])
    );
    n.start();
    assert_eq!(alertnames(&recv(&mut rx_new).await), ["Queued"]);
    assert_eq!(alertnames(&recv(&mut rx_extra).await), ["Queued"]);
    // A set added by a reload after start gets its own sender.
    let (added, mut rx_added) = fake_am::start(200, false, None).await;
    n.set_alertmanagers(vec![
        AlertmanagerSet::new(vec![AlertmanagerTarget::new(&new)]),
        AlertmanagerSet::new(vec![AlertmanagerTarget::new(&added)]),
    ]);
    n.send(vec![alert(&[("alertname", "After")])]);
    assert_eq!(alertnames(&recv(&mut rx_new).await), ["After"]);
    assert_eq!(alertnames(&recv(&mut rx_added).await), ["After"]);
    n.stop().await;
    // `new` stayed through both reloads: its counter kept counting.
    assert_eq!(
        n.counts_for(&format!("http://{new}/api/v2/alerts")),
        Some((2, 0))
    );
    assert_eq!(n.counts_for(&format!("http://{extra}/api/v2/alerts")), None);
    let metrics = n.render_metrics();
    assert!(!metrics.contains(&old), "{metrics}");
    assert!(metrics.contains("prometheus_notifications_alertmanagers_discovered 2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerting_apply_updates_the_notifier_in_place() {
    let (a, _rx_a) = fake_am::start(200, false, None).await;
    let (b, _rx_b) = fake_am::start(200, false, None).await;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    let cfg1 = config(&format!(
        "alerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['{a}']}}]\n"
    ));
    let (alerting, loaded) = Alerting::start(
        db.clone(),
        &cfg1,
        Default::default(),
        "http://vigil:9090".into(),
    )
    .await;
    loaded.unwrap();
    let urls = |al: &Alerting| -> Vec<String> {
        al.notifier.alertmanagers_json()["activeAlertmanagers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["url"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(urls(&alerting), [format!("http://{a}/api/v2/alerts")]);
    let cfg2 = config(&format!(
        concat!(
            "alerting:\n  alertmanagers:\n",
            "    - path_prefix: /x\n      static_configs: [{{targets: ['{b}']}}]\n",
            "    - static_configs: [{{targets: ['{a}']}}]\n",
        ),
        a = a,
        b = b
    ));
    alerting.apply(&cfg2).await.unwrap();
    assert_eq!(
        urls(&alerting),
        [
            format!("http://{b}/x/api/v2/alerts"),
            format!("http://{a}/api/v2/alerts")
        ]
    );
    // Unusable TLS settings fail the reload and keep the running sets.
    let bad = config(&format!(
        concat!(
            "alerting:\n  alertmanagers:\n    - scheme: https\n",
            "      tls_config: {{ca_file: /nonexistent/ca.crt}}\n",
            "      static_configs: [{{targets: ['{a}']}}]\n",
        ),
        a = a
    ));
    let err = alerting.apply(&bad).await.unwrap_err();
    assert!(err.contains("/nonexistent/ca.crt"), "{err}");
    assert_eq!(urls(&alerting).len(), 2);
    alerting.stop().await;
    db.close().unwrap();
}
