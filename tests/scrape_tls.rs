//! End-to-end https scrapes: an in-test TLS server (tokio-rustls, certificates from
//! `tests/data/tls/`) serves exposition text, Vigil's scrape manager scrapes it into a real
//! `Db` with each `tls_config` option, and the tests assert `up`, the stored samples, the
//! target's `lastError`, and what the server saw (SNI, client certificate).
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use vigil::config::Config;
use vigil::scrape::{ScrapeManager, TargetHealth};
use vigil_storage::chunkenc::is_stale_nan;
use vigil_storage::{Db, DbOptions, Matcher, Queryable};

const DEADLINE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(20);
const BODY: &str = "tls_metric{kind=\"a\"} 42\n";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
}

fn certs(name: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(fixture(name))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// What the server saw of its clients' successful handshakes.
#[derive(Default)]
struct Seen {
    sni: Vec<Option<String>>,
    client_cert: Vec<bool>,
}

struct TlsServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl TlsServer {
    /// A server with `server.crt`; with `require_client_cert`, clients must present a
    /// certificate signed by `ca.crt`.
    async fn start(require_client_cert: bool) -> TlsServer {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = RootCertStore::empty();
            for c in certs("ca.crt") {
                roots.add(c).unwrap();
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
        let config = builder.with_single_cert(certs("server.crt"), key).unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, s) = (acceptor.clone(), s.clone());
                tokio::spawn(async move {
                    // A failed handshake is the client's business: it reports the error.
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    {
                        let conn = tls.get_ref().1;
                        let mut s = s.lock();
                        s.sni.push(conn.server_name().map(str::to_owned));
                        s.client_cert.push(conn.peer_certificates().is_some());
                    }
                    let svc = service_fn(|_req: Request<hyper::body::Incoming>| async {
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("Content-Type", "text/plain; version=0.0.4")
                                .body(Full::new(Bytes::from_static(BODY.as_bytes())))
                                .unwrap(),
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        TlsServer { addr, seen }
    }
}

fn last_value(db: &Db, name: &str) -> Option<f64> {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let set = q.select(&[Matcher::equal("__name__", name)]).unwrap();
    set.first()
        .and_then(|s| s.samples().unwrap().last().map(|x| x.v))
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

/// A running scrape of `target` over https with `tls_yaml` (lines of `tls_config`, each
/// indented by six spaces).
struct Scrape {
    _dir: tempfile::TempDir,
    db: Arc<Db>,
    mgr: Arc<ScrapeManager>,
}

impl Scrape {
    async fn start(target: &str, tls_yaml: &str) -> Scrape {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let yaml = format!(
            "scrape_configs:\n  - job_name: tls\n    scheme: https\n    scrape_interval: 100ms\n    scrape_timeout: 90ms\n    tls_config:\n{tls_yaml}    static_configs:\n      - targets: ['{target}']\n"
        );
        let cfg = Config::parse(&yaml, "test.yml", Path::new("/")).unwrap();
        let mgr = ScrapeManager::new(db.clone());
        mgr.apply_config(&cfg).await;
        Scrape { _dir: dir, db, mgr }
    }

    /// Waits until the target succeeded (sample stored, `up` 1, healthy).
    async fn expect_up(&self) {
        wait_for("up = 1", || last_value(&self.db, "up") == Some(1.0)).await;
        assert_eq!(last_value(&self.db, "tls_metric"), Some(42.0));
        let st = &self.mgr.active_targets()[0];
        assert_eq!(st.health, TargetHealth::Up);
        assert!(st.scrape_url.starts_with("https://"), "{}", st.scrape_url);
    }

    /// Waits until the target failed (no sample stored, or only stale markers); returns its
    /// `lastError`.
    async fn expect_down(&self) -> String {
        wait_for("up = 0", || last_value(&self.db, "up") == Some(0.0)).await;
        let v = last_value(&self.db, "tls_metric");
        assert!(
            v.is_none_or(is_stale_nan),
            "no sample of a failed scrape: {v:?}"
        );
        let st = &self.mgr.active_targets()[0];
        assert_eq!(st.health, TargetHealth::Down);
        st.last_error.clone()
    }

    async fn stop(self) {
        self.mgr.stop().await;
        self.db.close().unwrap();
    }
}

fn line(key: &str, value: &str) -> String {
    format!("      {key}: '{value}'\n")
}

fn file_line(key: &str, name: &str) -> String {
    line(key, &fixture(name).to_string_lossy())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_verified_scrape_succeeds_with_ca_file_and_inline_ca() {
    let srv = TlsServer::start(false).await;
    let s = Scrape::start(
        &format!("localhost:{}", srv.addr.port()),
        &file_line("ca_file", "ca.crt"),
    )
    .await;
    s.expect_up().await;
    s.stop().await;
    assert!(srv.seen.lock().sni.contains(&Some("localhost".to_owned())));

    // The same CA given inline (`ca`), against the IP address SAN.
    let pem = std::fs::read_to_string(fixture("ca.crt")).unwrap();
    let inline: String = pem.lines().map(|l| format!("        {l}\n")).collect();
    let s = Scrape::start(&srv.addr.to_string(), &format!("      ca: |\n{inline}")).await;
    s.expect_up().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_ca_or_default_roots_fail_with_a_certificate_error() {
    let srv = TlsServer::start(false).await;
    let s = Scrape::start(&srv.addr.to_string(), &file_line("ca_file", "other-ca.crt")).await;
    let err = s.expect_down().await;
    assert!(err.contains("certificate"), "{err}");
    assert!(err.contains("https://"), "{err}");
    s.stop().await;

    // No CA configured: the public roots do not trust the test CA.
    let s = Scrape::start(&srv.addr.to_string(), &line("server_name", "localhost")).await;
    let err = s.expect_down().await;
    assert!(err.contains("certificate"), "{err}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_skip_verify_accepts_an_untrusted_certificate() {
    let srv = TlsServer::start(false).await;
    let s = Scrape::start(
        &srv.addr.to_string(),
        &format!(
            "      insecure_skip_verify: true\n{}",
            line("server_name", "not-in-the-cert.example")
        ),
    )
    .await;
    s.expect_up().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_is_sent_when_the_server_requires_it() {
    let srv = TlsServer::start(true).await;
    let s = Scrape::start(&srv.addr.to_string(), &file_line("ca_file", "ca.crt")).await;
    let err = s.expect_down().await;
    assert!(!err.is_empty());
    s.stop().await;

    let tls = [
        file_line("ca_file", "ca.crt"),
        file_line("cert_file", "client.crt"),
        file_line("key_file", "client.key"),
    ]
    .concat();
    let s = Scrape::start(&srv.addr.to_string(), &tls).await;
    s.expect_up().await;
    s.stop().await;
    let seen = srv.seen.lock();
    assert!(!seen.client_cert.is_empty());
    assert!(seen.client_cert.iter().all(|c| *c));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_name_overrides_sni_and_the_verified_name() {
    let srv = TlsServer::start(false).await;
    let tls = [
        file_line("ca_file", "ca.crt"),
        line("server_name", "vigil.test"),
    ]
    .concat();
    let s = Scrape::start(&srv.addr.to_string(), &tls).await;
    s.expect_up().await;
    s.stop().await;
    assert!(srv.seen.lock().sni.contains(&Some("vigil.test".to_owned())));

    let tls = [
        file_line("ca_file", "ca.crt"),
        line("server_name", "other.example"),
    ]
    .concat();
    let s = Scrape::start(&srv.addr.to_string(), &tls).await;
    let err = s.expect_down().await;
    assert!(err.contains("certificate"), "{err}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_ca_file_is_picked_up_without_restart() {
    let srv = TlsServer::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::copy(fixture("other-ca.crt"), &ca).unwrap();
    let s = Scrape::start(
        &srv.addr.to_string(),
        &line("ca_file", &ca.to_string_lossy()),
    )
    .await;
    let err = s.expect_down().await;
    assert!(err.contains("certificate"), "{err}");
    std::fs::copy(fixture("ca.crt"), &ca).unwrap();
    s.expect_up().await;

    // Back to the wrong CA: the kept-alive connection is dropped and the new one fails.
    std::fs::copy(fixture("other-ca.crt"), &ca).unwrap();
    let err = s.expect_down().await;
    assert!(err.contains("certificate"), "{err}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_only_client_talks_to_the_server() {
    let srv = TlsServer::start(false).await;
    let tls = [file_line("ca_file", "ca.crt"), line("min_version", "TLS13")].concat();
    let s = Scrape::start(&srv.addr.to_string(), &tls).await;
    s.expect_up().await;
    s.stop().await;
}
