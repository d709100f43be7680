//! A minimal HTTP/1.1 POST client over hyper for Alertmanager: one connection per request,
//! a whole-request timeout, basic auth and Vigil's User-Agent. Plain HTTP only; it never
//! retries (the caller counts the failure and the next resend covers it).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::payload::base64_encode;
use super::AlertmanagerTarget;

/// Why a POST failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("unsupported scheme {0:?} (only http)")]
    Scheme(String),
    #[error("connect {host}: {source}")]
    Connect {
        host: String,
        source: std::io::Error,
    },
    #[error("http: {0}")]
    Http(String),
    #[error("bad response status code {0}")]
    Status(u16),
    #[error("request timed out after {0:?}")]
    Timeout(std::time::Duration),
}

/// POSTs `body` as JSON to the target's `/api/v2/alerts`; any 2xx is success.
pub async fn post_json(t: &AlertmanagerTarget, body: &[u8]) -> Result<(), PostError> {
    match tokio::time::timeout(t.timeout, post_inner(t, body)).await {
        Ok(r) => r,
        Err(_) => Err(PostError::Timeout(t.timeout)),
    }
}

async fn post_inner(t: &AlertmanagerTarget, body: &[u8]) -> Result<(), PostError> {
    if t.scheme != "http" {
        return Err(PostError::Scheme(t.scheme.clone()));
    }
    let stream = TcpStream::connect(&t.host)
        .await
        .map_err(|source| PostError::Connect {
            host: t.host.clone(),
            source,
        })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| PostError::Http(e.to_string()))?;
    let conn_task = tokio::spawn(conn);
    let path = format!(
        "{}{}",
        t.path_prefix.trim_end_matches('/'),
        super::ALERTS_API_PATH
    );
    let mut req = Request::post(path)
        .header(hyper::header::HOST, &t.host)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("Vigil/", env!("CARGO_PKG_VERSION")),
        );
    if let Some((user, pass)) = &t.basic_auth {
        req = req.header(
            hyper::header::AUTHORIZATION,
            format!(
                "Basic {}",
                base64_encode(format!("{user}:{pass}").as_bytes())
            ),
        );
    }
    let req = req
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| PostError::Http(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| PostError::Http(e.to_string()))?;
    let status = resp.status();
    // Read the body so the connection finishes cleanly.
    let _ = resp.into_body().collect().await;
    conn_task.abort();
    if status.is_success() {
        Ok(())
    } else {
        Err(PostError::Status(status.as_u16()))
    }
}
