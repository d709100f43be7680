//! The HTTP side of a scrape: one `GET` per scrape over a kept-alive HTTP/1.1 connection
//! (hyper 1 client), plain or TLS (https targets, set up by `tls`), with Prometheus' request
//! headers (`Accept` built from `scrape_protocols`, `Accept-Encoding: gzip`,
//! `X-Prometheus-Scrape-Timeout-Seconds`, authentication), gzip decoding and the
//! `body_size_limit`. It returns the body bytes and content type or an error string for the
//! target's `lastError`; it never parses samples and never touches storage.
use std::io::Read;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::header;
use hyper::Request;
use hyper_util::rt::TokioIo;

use super::target::Target;
use super::tls::TlsClient;
use crate::config::scrape::{Authorization, BasicAuth};
use crate::config::ScrapeConfig;

/// Media type of each scrape protocol Vigil can parse, by its configuration name.
pub const SCRAPE_PROTOCOLS: [(&str, &str); 4] = [
    (
        "OpenMetricsText1.0.0",
        "application/openmetrics-text;version=1.0.0",
    ),
    (
        "OpenMetricsText0.0.1",
        "application/openmetrics-text;version=0.0.1",
    ),
    ("PrometheusText1.0.0", "text/plain;version=1.0.0"),
    ("PrometheusText0.0.4", "text/plain;version=0.0.4"),
];
/// Number of protocols Prometheus knows (its `q` weights count down from this plus one).
const KNOWN_PROTOCOL_COUNT: usize = 5;
/// Default `scrape_protocols`, Prometheus 3's order.
pub const DEFAULT_SCRAPE_PROTOCOLS: [&str; 4] = [
    "OpenMetricsText1.0.0",
    "OpenMetricsText0.0.1",
    "PrometheusText1.0.0",
    "PrometheusText0.0.4",
];
/// The User-Agent header.
pub const USER_AGENT: &str = concat!("Vigil/", env!("CARGO_PKG_VERSION"));
/// Header telling the target how long the scraper waits.
pub const TIMEOUT_HEADER: &str = "X-Prometheus-Scrape-Timeout-Seconds";
/// Default port of an http target whose address has none.
const DEFAULT_HTTP_PORT: u16 = 80;
/// Default port of an https target whose address has none.
const DEFAULT_HTTPS_PORT: u16 = 443;

/// The `Accept` header for `protocols` (names as in `scrape_protocols`), weighted like
/// Prometheus: `q=0.6, 0.5, …` then `*/*`.
pub fn accept_header(protocols: &[String]) -> Result<String, String> {
    let mut vals = Vec::new();
    let mut weight = KNOWN_PROTOCOL_COUNT + 1;
    for p in protocols {
        let media = SCRAPE_PROTOCOLS
            .iter()
            .find(|(name, _)| name == p)
            .map(|(_, m)| *m)
            .ok_or_else(|| format!("unsupported scrape protocol {p:?}"))?;
        vals.push(format!("{media};q=0.{weight}"));
        weight = weight.saturating_sub(1);
    }
    vals.push(format!("*/*;q=0.{weight}"));
    Ok(vals.join(","))
}

/// What a successful scrape returned.
#[derive(Debug)]
pub struct ScrapeBody {
    pub body: Vec<u8>,
    pub content_type: String,
}

/// A minimal standard base64 encoder for the basic-auth header.
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn read_secret(inline: &str, file: &str) -> Result<String, String> {
    if file.is_empty() {
        return Ok(inline.to_owned());
    }
    std::fs::read_to_string(file)
        .map(|s| s.trim().to_owned())
        .map_err(|e| format!("unable to read {file}: {e}"))
}

/// The `Authorization` header value for a job, if it has credentials. Files are read at
/// every scrape, as Prometheus does, so rotated secrets are picked up.
pub fn authorization_header(cfg: &ScrapeConfig) -> Result<Option<String>, String> {
    credentials_header(
        cfg.basic_auth.as_ref(),
        cfg.authorization.as_ref(),
        &cfg.bearer_token,
        &cfg.bearer_token_file,
    )
}

/// The `Authorization` header value for an HTTP client's credentials (basic auth first,
/// then `authorization`, then the legacy bearer token), reading secret files now. Shared by
/// scraping and the Alertmanager notifier.
pub fn credentials_header(
    basic_auth: Option<&BasicAuth>,
    authorization: Option<&Authorization>,
    bearer_token: &str,
    bearer_token_file: &str,
) -> Result<Option<String>, String> {
    if let Some(b) = basic_auth {
        let user = read_secret(&b.username, &b.username_file)?;
        let pass = read_secret(&b.password, &b.password_file)?;
        return Ok(Some(format!(
            "Basic {}",
            base64(format!("{user}:{pass}").as_bytes())
        )));
    }
    if let Some(a) = authorization {
        let cred = read_secret(&a.credentials, &a.credentials_file)?;
        return Ok(Some(format!("{} {cred}", a.auth_type)));
    }
    if !bearer_token.is_empty() || !bearer_token_file.is_empty() {
        let cred = read_secret(bearer_token, bearer_token_file)?;
        return Ok(Some(format!("Bearer {cred}")));
    }
    Ok(None)
}

/// The HTTP client of one scrape loop: keeps its connection between scrapes.
pub struct HttpScraper {
    sender: Option<SendRequest<Empty<Bytes>>>,
    accept: String,
    accept_encoding: &'static str,
    body_size_limit: u64,
    tls: TlsClient,
}

impl HttpScraper {
    /// A client with the job's negotiation and limits.
    pub fn new(cfg: &ScrapeConfig) -> Result<HttpScraper, String> {
        let protocols: Vec<String> = match &cfg.scrape_protocols {
            Some(p) => p.clone(),
            None => DEFAULT_SCRAPE_PROTOCOLS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        Ok(HttpScraper {
            sender: None,
            accept: accept_header(&protocols)?,
            accept_encoding: if cfg.enable_compression {
                "gzip"
            } else {
                "identity"
            },
            body_size_limit: cfg.body_size_limit.map(|b| b.0).unwrap_or(0),
            tls: TlsClient::new(cfg.tls_config.clone().unwrap_or_default()),
        })
    }

    /// The `Accept` header this client sends.
    pub fn accept(&self) -> &str {
        &self.accept
    }

    async fn connect(&mut self, address: &str, https: bool) -> Result<(), String> {
        let addr = dial_address(address, https);
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("dial tcp {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let sender = if https {
            let tls = self.tls.connect(&addr, stream).await?;
            handshake(TokioIo::new(tls), &addr).await?
        } else {
            handshake(TokioIo::new(stream), &addr).await?
        };
        self.sender = Some(sender);
        Ok(())
    }

    /// Scrapes `target` once. The caller bounds the whole call with the scrape timeout.
    pub async fn scrape(
        &mut self,
        target: &Target,
        auth: Option<&str>,
    ) -> Result<ScrapeBody, String> {
        let https = target.scheme == "https";
        if https && self.sender.is_some() && self.tls.files_changed() {
            self.sender = None;
        }
        let reusable = match &mut self.sender {
            Some(s) if !s.is_closed() => s.ready().await.is_ok(),
            _ => false,
        };
        if !reusable {
            self.sender = None;
            self.connect(&target.address, https)
                .await
                .map_err(|e| format!("Get \"{}\": {e}", target.url()))?;
        }
        let Some(sender) = self.sender.as_mut() else {
            return Err("no connection".into());
        };
        let timeout_s = target.timeout_ms as f64 / 1000.0;
        let mut req = Request::get(target.path_and_query())
            .header(header::HOST, &target.address)
            .header(header::ACCEPT, &self.accept)
            .header(header::ACCEPT_ENCODING, self.accept_encoding)
            .header(header::USER_AGENT, USER_AGENT)
            .header(TIMEOUT_HEADER, format!("{timeout_s}"));
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("building request for {}: {e}", target.url()))?;
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(format!("Get \"{}\": {e}", target.url()));
            }
        };
        let status = resp.status();
        if status != hyper::StatusCode::OK {
            return Err(format!(
                "server returned HTTP status {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or_default()
            ));
        }
        let header_str = |h: header::HeaderName| {
            resp.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let content_type = header_str(header::CONTENT_TYPE);
        let gzip = header_str(header::CONTENT_ENCODING).eq_ignore_ascii_case("gzip");
        let limit = self.body_size_limit;
        let mut body = resp.into_body();
        let mut raw = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    self.sender = None;
                    return Err(format!("reading body of {}: {e}", target.url()));
                }
            };
            if let Ok(data) = frame.into_data() {
                raw.extend_from_slice(&data);
                if !gzip && limit > 0 && raw.len() as u64 > limit {
                    self.sender = None;
                    return Err(body_limit_error(limit));
                }
            }
        }
        let body = if gzip { gunzip(&raw, limit)? } else { raw };
        Ok(ScrapeBody { body, content_type })
    }
}

/// `address` with the scheme's default port added when it has none.
fn dial_address(address: &str, https: bool) -> String {
    let has_port = address
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !address.ends_with(']');
    if has_port {
        return address.to_owned();
    }
    let port = if https {
        DEFAULT_HTTPS_PORT
    } else {
        DEFAULT_HTTP_PORT
    };
    format!("{address}:{port}")
}

/// The HTTP/1.1 handshake over `io`; the connection task runs until the peer or the sender
/// goes away.
async fn handshake<T>(io: TokioIo<T>, addr: &str) -> Result<SendRequest<Empty<Bytes>>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "scrape connection ended");
        }
    });
    Ok(sender)
}

fn body_limit_error(limit: u64) -> String {
    format!("body size limit exceeded (limit: {limit} bytes)")
}

/// Decompresses a gzip body, failing once more than `limit` bytes (0: no limit) come out.
fn gunzip(raw: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let dec = flate2::read::MultiGzDecoder::new(raw);
    let res = if limit > 0 {
        dec.take(limit + 1).read_to_end(&mut out)
    } else {
        let mut dec = dec;
        dec.read_to_end(&mut out)
    };
    res.map_err(|e| format!("decompressing gzip body: {e}"))?;
    if limit > 0 && out.len() as u64 > limit {
        return Err(body_limit_error(limit));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn default_accept_header_matches_prometheus_weights() {
        let p: Vec<String> = DEFAULT_SCRAPE_PROTOCOLS
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            accept_header(&p).unwrap(),
            "application/openmetrics-text;version=1.0.0;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        );
        assert!(accept_header(&["PrometheusProto".to_string()]).is_err());
    }

    #[test]
    fn default_port_depends_on_the_scheme() {
        assert_eq!(dial_address("host", false), "host:80");
        assert_eq!(dial_address("host", true), "host:443");
        assert_eq!(dial_address("host:8443", true), "host:8443");
        assert_eq!(dial_address("[::1]", true), "[::1]:443");
        assert_eq!(dial_address("[::1]:9100", false), "[::1]:9100");
    }

    #[test]
    fn base64_encodes_like_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
    }

    #[test]
    fn gunzip_respects_the_limit() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&[b'a'; 1000]).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(gunzip(&gz, 0).unwrap().len(), 1000);
        assert_eq!(gunzip(&gz, 1000).unwrap().len(), 1000);
        assert!(gunzip(&gz, 999)
            .unwrap_err()
            .contains("body size limit exceeded"));
        assert!(gunzip(b"not gzip", 0).is_err());
    }
}
