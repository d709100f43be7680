//! The HTTP server: accepts connections on the listen address (hyper 1, HTTP/1.1) and routes
//! requests: the lifecycle endpoints `/-/healthy`, `/-/ready`, `/-/reload`, `/-/quit`,
//! Vigil's own `/metrics`, and the Prometheus API (`/api/v1/...`, `/federate`, served by
//! `crate::api`). Replies are gzip-compressed when the client accepts it. Handlers never
//! panic on bad input; unknown routes are 404 and wrong methods 405. `/api/v1/write` goes to
//! the remote-write receiver.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use vigil_storage::Db;

use crate::reload::Reloader;
use crate::scrape::ScrapeManager;

/// State shared by all handlers.
pub struct AppState {
    pub db: Arc<Db>,
    pub ready: AtomicBool,
    pub start_time: std::time::SystemTime,
    /// Active scrape pools and targets (for `/api/v1/targets`).
    pub scrape: Arc<ScrapeManager>,
    /// Loads and applies the configuration (SIGHUP, `/-/reload`).
    pub reloader: Arc<Reloader>,
    /// API options from the command line and lifecycle state.
    pub api: crate::api::ApiConfig,
    /// Rule evaluation and notification, once started.
    pub alerting: std::sync::OnceLock<Arc<crate::alerting::Alerting>>,
}

impl AppState {
    /// State for a server over `db` with the given API options: a scrape manager with no
    /// targets yet and a reloader for `api.config_file` (or the embedded default, which
    /// scrapes `listen_address`). Not ready until `ready` is set.
    pub fn new(db: Arc<Db>, api: crate::api::ApiConfig, listen_address: &str) -> AppState {
        let scrape = ScrapeManager::new(db.clone());
        let reloader = Reloader::new(api.config_file.clone(), listen_address, scrape.clone());
        AppState {
            db,
            ready: AtomicBool::new(false),
            start_time: std::time::SystemTime::now(),
            scrape,
            reloader,
            api,
            alerting: std::sync::OnceLock::new(),
        }
    }
}

/// A response with a body of bytes.
pub type Resp = Response<Full<Bytes>>;

/// A plain response.
pub fn text(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// Whether an `Accept-Encoding` header value accepts gzip (a `q=0` refuses it).
pub fn accepts_gzip(header: &str) -> bool {
    header.split(',').any(|part| {
        let mut it = part.split(';');
        let coding = it.next().unwrap_or("").trim();
        if !coding.eq_ignore_ascii_case("gzip") && coding != "*" {
            return false;
        }
        !it.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f64>().ok())
                .is_some_and(|q| q == 0.0)
        })
    })
}

/// Compresses a response body with gzip and sets `Content-Encoding`.
async fn gzip_response(resp: Resp) -> Resp {
    use http_body_util::BodyExt;
    use std::io::Write;
    let (mut parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(never) => match never {},
    };
    if bytes.is_empty() || parts.headers.contains_key(hyper::header::CONTENT_ENCODING) {
        return Response::from_parts(parts, Full::new(bytes));
    }
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4),
        flate2::Compression::fast(),
    );
    let compressed = enc.write_all(&bytes).and_then(|_| enc.finish());
    match compressed {
        Ok(out) => {
            parts.headers.insert(
                hyper::header::CONTENT_ENCODING,
                hyper::header::HeaderValue::from_static("gzip"),
            );
            parts.headers.remove(hyper::header::CONTENT_LENGTH);
            Response::from_parts(parts, Full::new(Bytes::from(out)))
        }
        Err(e) => {
            tracing::warn!(error = %e, "gzip compression failed; sending uncompressed");
            Response::from_parts(parts, Full::new(bytes))
        }
    }
}

/// Routes one request, compressing the reply when the client accepts gzip.
pub async fn route(state: Arc<AppState>, req: Request<Incoming>) -> Resp {
    let gzip = req
        .headers()
        .get(hyper::header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    let mut resp = route_plain(state, req).await;
    resp.headers_mut().insert(
        hyper::header::VARY,
        hyper::header::HeaderValue::from_static("Accept-Encoding"),
    );
    if gzip {
        resp = gzip_response(resp).await;
    }
    resp
}

async fn route_plain(state: Arc<AppState>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let get_only = |m: &Method| m == Method::GET || m == Method::HEAD;
    match path.as_str() {
        "/-/healthy" if get_only(&method) => text(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "Vigil Server is Healthy.\n",
        ),
        "/-/ready" if get_only(&method) => {
            if state.ready.load(Ordering::Acquire) {
                text(
                    StatusCode::OK,
                    "text/plain; charset=utf-8",
                    "Vigil Server is Ready.\n",
                )
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    "Service Unavailable\n",
                )
            }
        }
        "/metrics" if get_only(&method) => {
            let mut body = crate::metrics::render(&state);
            if let Some(a) = state.alerting.get() {
                body.push_str(&a.rules.render_metrics().await);
                body.push_str(&a.notifier.render_metrics());
            }
            text(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                body,
            )
        }
        "/api/v1/write" => {
            crate::remote::handle(crate::remote::global(), state.db.clone(), req).await
        }
        "/-/reload"
            if (method == Method::POST || method == Method::PUT) && state.api.enable_lifecycle =>
        {
            reload(&state).await
        }
        "/-/reload" | "/-/quit" => crate::api::lifecycle::handle(&state.api, &path, &method),
        p if crate::api::owns_path(p) => crate::api::handle(state, req).await,
        "/-/healthy" | "/-/ready" | "/metrics" => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "Method Not Allowed\n",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "404 page not found\n",
        ),
    }
}

/// `POST /-/reload`: 403 unless `--web.enable-lifecycle`; 500 with the reason when the new
/// configuration is rejected (the old one keeps running).
async fn reload(state: &AppState) -> Resp {
    let plain = "text/plain; charset=utf-8";
    match reload_all(state).await {
        Ok(()) => text(StatusCode::OK, plain, ""),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            plain,
            format!("failed to reload config: {e}\n"),
        ),
    }
}

/// Reloads the configuration everywhere it is used: scrape targets (through the reloader,
/// which keeps the old configuration on error), rule files and SLO files (through the rule
/// manager, which keeps the old rules and SLOs when any file fails) and the API's view of it.
pub async fn reload_all(state: &AppState) -> Result<(), String> {
    state.reloader.reload().await.map_err(|e| e.to_string())?;
    if let Some(a) = state.alerting.get() {
        a.apply(&state.reloader.current()).await?;
    }
    crate::api::lifecycle::reload(&state.api)
}

/// Serves until `shutdown` resolves; then stops accepting and lets in-flight requests end.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let st = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let st = st.clone();
                async move { Ok::<_, Infallible>(route(st, req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with error");
            }
        });
    }
    Ok(())
}
