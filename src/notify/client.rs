//! A minimal HTTP/1.1 POST client over hyper for Alertmanager: one connection per request,
//! plain TCP for `http` and rustls (through `scrape::tls`, the same `tls_config` handling as
//! https scrapes) for `https`, a whole-request timeout, an `Authorization` header from
//! `basic_auth`, `authorization` or the legacy `bearer_token[_file]` (files re-read at every
//! request, so rotated secrets take effect) and Vigil's User-Agent. It never retries (the
//! caller counts the failure and the next resend covers it) and never touches a queue.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::set::{AlertmanagerTarget, HttpAuth};
use crate::config::scrape::TlsConfig;
use crate::scrape::tls::TlsClient;

/// The User-Agent of every request.
const USER_AGENT: &str = concat!("Vigil/", env!("CARGO_PKG_VERSION"));
/// Scheme of plain-text Alertmanagers.
const SCHEME_HTTP: &str = "http";
/// Scheme of TLS Alertmanagers.
const SCHEME_HTTPS: &str = "https";

/// Why a POST failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("unsupported scheme {0:?} (http or https)")]
    Scheme(String),
    #[error("connect {host}: {source}")]
    Connect {
        host: String,
        source: std::io::Error,
    },
    #[error("tls: {0}")]
    Tls(String),
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("http: {0}")]
    Http(String),
    #[error("bad response status code {0}")]
    Status(u16),
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
}

/// The HTTP client of one alertmanager set: its timeout, credentials and TLS settings.
pub struct AmClient {
    timeout: Duration,
    auth: HttpAuth,
    tls: Mutex<TlsClient>,
}

impl AmClient {
    /// A client with `timeout`, `auth` and `tls_config` (used for https targets only).
    pub fn new(timeout: Duration, auth: HttpAuth, tls_config: TlsConfig) -> AmClient {
        AmClient {
            timeout,
            auth,
            tls: Mutex::new(TlsClient::new(tls_config)),
        }
    }

    /// POSTs `body` as JSON to `target`; any 2xx is success.
    pub async fn post_json(
        &self,
        target: &AlertmanagerTarget,
        body: &[u8],
    ) -> Result<(), PostError> {
        match tokio::time::timeout(self.timeout, self.post_inner(target, body)).await {
            Ok(r) => r,
            Err(_) => Err(PostError::Timeout(self.timeout)),
        }
    }

    async fn post_inner(&self, t: &AlertmanagerTarget, body: &[u8]) -> Result<(), PostError> {
        if t.scheme != SCHEME_HTTP && t.scheme != SCHEME_HTTPS {
            return Err(PostError::Scheme(t.scheme.clone()));
        }
        let mut req = Request::post(t.path.as_str())
            .header(hyper::header::HOST, &t.host)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, USER_AGENT);
        if let Some(v) = authorization_header(&self.auth).map_err(PostError::Credentials)? {
            req = req.header(hyper::header::AUTHORIZATION, v);
        }
        let req = req
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| PostError::Http(e.to_string()))?;
        let stream = TcpStream::connect(&t.host)
            .await
            .map_err(|source| PostError::Connect {
                host: t.host.clone(),
                source,
            })?;
        if t.scheme == SCHEME_HTTPS {
            // Build the configuration under the lock (it may re-read files), then
            // handshake without holding it.
            let (config, name) = {
                let mut tls = self.tls.lock();
                let config = tls.client_config().map_err(PostError::Tls)?;
                (config, tls.server_name(&t.host).map_err(PostError::Tls)?)
            };
            let stream = TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(|e| PostError::Tls(format!("handshake with {}: {e}", t.host)))?;
            exchange(stream, req).await
        } else {
            exchange(stream, req).await
        }
    }
}

/// Sends `req` over `stream` and reads the response.
async fn exchange<S>(stream: S, req: Request<Full<Bytes>>) -> Result<(), PostError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| PostError::Http(e.to_string()))?;
    let conn_task = tokio::spawn(conn);
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| PostError::Http(e.to_string()));
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            conn_task.abort();
            return Err(e);
        }
    };
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

/// The `Authorization` header value for `auth`, if it has credentials.
pub fn authorization_header(auth: &HttpAuth) -> Result<Option<String>, String> {
    crate::scrape::http::credentials_header(
        auth.basic_auth.as_ref(),
        auth.authorization.as_ref(),
        &auth.bearer_token,
        &auth.bearer_token_file,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::scrape::{Authorization, BasicAuth};

    #[test]
    fn authorization_header_from_each_kind_of_credentials() {
        assert_eq!(authorization_header(&HttpAuth::default()).unwrap(), None);
        let basic = HttpAuth {
            basic_auth: Some(BasicAuth {
                username: "user".into(),
                username_file: String::new(),
                password: "pa:ss".into(),
                password_file: String::new(),
            }),
            ..HttpAuth::default()
        };
        assert_eq!(
            authorization_header(&basic).unwrap().unwrap(),
            "Basic dXNlcjpwYTpzcw=="
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret\n").unwrap();
        let file = file.to_string_lossy().into_owned();
        let authz = HttpAuth {
            authorization: Some(Authorization {
                auth_type: "Bearer".into(),
                credentials: String::new(),
                credentials_file: file.clone(),
            }),
            ..HttpAuth::default()
        };
        assert_eq!(
            authorization_header(&authz).unwrap().unwrap(),
            "Bearer s3cret"
        );
        let legacy = HttpAuth {
            bearer_token: "tok".into(),
            ..HttpAuth::default()
        };
        assert_eq!(
            authorization_header(&legacy).unwrap().unwrap(),
            "Bearer tok"
        );
        let missing = HttpAuth {
            bearer_token_file: format!("{file}.missing"),
            ..HttpAuth::default()
        };
        assert!(authorization_header(&missing)
            .unwrap_err()
            .contains("token.missing"));
    }
}
