//! The HTTP server: accepts connections on the listen address (hyper 1, HTTP/1.1) and routes
//! requests. For now it serves the lifecycle endpoints `/-/healthy` and `/-/ready` and
//! Vigil's own `/metrics`, and hands `/api/v1/write` to the remote-write receiver; the
//! Prometheus API routes are added by the API module. Handlers
//! never panic on bad input; unknown routes are 404 and wrong methods 405.

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
    /// `--web.enable-lifecycle`: whether `/-/reload` may be called.
    pub enable_lifecycle: bool,
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

/// Routes one request.
pub async fn route(state: Arc<AppState>, req: Request<Incoming>) -> Resp {
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
        "/metrics" if get_only(&method) => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            crate::metrics::render(&state),
        ),
        "/api/v1/write" => {
            crate::remote::handle(crate::remote::global(), state.db.clone(), req).await
        }
        "/-/reload" if method == Method::POST || method == Method::PUT => reload(&state).await,
        "/-/healthy" | "/-/ready" | "/metrics" | "/-/reload" => text(
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
    if !state.enable_lifecycle {
        return text(
            StatusCode::FORBIDDEN,
            plain,
            "Lifecycle API is not enabled.\n",
        );
    }
    match state.reloader.reload().await {
        Ok(()) => text(StatusCode::OK, plain, ""),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            plain,
            format!("failed to reload config: {e}\n"),
        ),
    }
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
