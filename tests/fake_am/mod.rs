//! A recording fake Alertmanager for notifier tests: answers every request with a fixed
//! status (or never, to provoke timeouts), plain or over TLS, and reports what it received
//! (path, headers, JSON body) on a channel, so tests wait on requests, never on time.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value as Json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

/// What the fake Alertmanager saw.
#[derive(Debug)]
pub struct Seen {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Json,
}

/// Serves one connection: records each request, then answers `status` (or hangs).
async fn serve<S>(stream: S, status: u16, hang: bool, tx: mpsc::UnboundedSender<Seen>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let tx = tx.clone();
        async move {
            let path = req.uri().path().to_string();
            let headers = req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let body = serde_json::from_slice(&body).unwrap_or(Json::Null);
            let _ = tx.send(Seen {
                path,
                headers,
                body,
            });
            if hang {
                std::future::pending::<()>().await;
            }
            Ok::<_, Infallible>(
                Response::builder()
                    .status(status)
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), svc)
        .await;
}

/// Starts a fake Alertmanager answering `status` (never answering when `hang`), over TLS
/// when `tls` is given; returns its `host:port` and a channel of requests.
pub async fn start(
    status: u16,
    hang: bool,
    tls: Option<TlsAcceptor>,
) -> (String, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (tx, tls) = (tx.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        // A failed handshake is the client's error to report.
                        if let Ok(s) = acceptor.accept(stream).await {
                            serve(s, status, hang, tx).await;
                        }
                    }
                    None => serve(stream, status, hang, tx).await,
                }
            });
        }
    });
    (addr, rx)
}
