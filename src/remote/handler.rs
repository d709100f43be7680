//! The HTTP side of `POST /api/v1/write`: method check, content negotiation
//! (`Content-Type` with optional `proto=`, `Content-Encoding: snappy`; 415 otherwise), the
//! body and decompression limits, then decode + ingest + commit on a blocking thread, and
//! the response: 204 only after the commit, 400 with a plain-text reason, 500 for storage
//! faults (senders retry; identical resends are no-ops). RW 2.0 responses carry the
//! `X-Prometheus-Remote-Write-*-Written` headers; RW 1.0 responses never do.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Body;
use hyper::header::{HeaderMap, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use vigil_storage::Db;

use super::error::{Error, Result};
use super::ingest::Outcome;
use super::limits::{decompress_limited, decompress_limited_into, read_body_limited};
use super::wire::V1Scratch;
use super::{v1, v2, Receiver};
use super::{HEADER_EXEMPLARS_WRITTEN, HEADER_HISTOGRAMS_WRITTEN, HEADER_SAMPLES_WRITTEN};

/// The only media type remote write uses.
const MEDIA_TYPE: &str = "application/x-protobuf";
/// The only content encoding remote write uses.
const ENCODING_SNAPPY: &str = "snappy";

/// The protobuf message a request carries, from its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// RW 1.0 `prometheus.WriteRequest`.
    V1,
    /// RW 2.0 `io.prometheus.write.v2.Request`.
    V2,
}

/// Chooses the protocol from the request headers, or fails with 415.
pub fn negotiate(headers: &HeaderMap) -> Result<Protocol> {
    let proto = match headers.get(CONTENT_TYPE) {
        None => Protocol::V1,
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| Error::UnsupportedContentType(lossy(v.as_bytes())))?;
            protocol_of_content_type(s)?
        }
    };
    if let Some(v) = headers.get(CONTENT_ENCODING) {
        let s = v.to_str().unwrap_or("").trim();
        if !s.eq_ignore_ascii_case(ENCODING_SNAPPY) {
            return Err(Error::UnsupportedEncoding(lossy(v.as_bytes())));
        }
    }
    Ok(proto)
}

/// Parses `application/x-protobuf[;proto=<message>]` (case-insensitive, spaces allowed
/// around `;` and `=`, the message name optionally quoted; other parameters ignored).
pub fn protocol_of_content_type(s: &str) -> Result<Protocol> {
    let unsupported = || Error::UnsupportedContentType(s.to_string());
    let mut parts = s.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case(MEDIA_TYPE) {
        return Err(unsupported());
    }
    let mut proto = Protocol::V1;
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        if !k.trim().eq_ignore_ascii_case("proto") {
            continue;
        }
        let v = v.trim().trim_matches('"');
        proto = if v.eq_ignore_ascii_case(v1::MESSAGE_NAME) {
            Protocol::V1
        } else if v.eq_ignore_ascii_case(v2::MESSAGE_NAME) {
            Protocol::V2
        } else {
            return Err(unsupported());
        };
    }
    Ok(proto)
}

/// Handles one `/api/v1/write` request.
pub async fn handle<B>(rx: Arc<Receiver>, db: Arc<Db>, req: Request<B>) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: fmt::Display,
{
    if req.method() != Method::POST {
        let e = Error::MethodNotAllowed(req.method().to_string());
        rx.metrics.response(e.status().as_u16());
        let mut r = plain(e.status(), format!("{e}\n"));
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("POST"),
        );
        return r;
    }
    let protocol = match negotiate(req.headers()) {
        Ok(p) => p,
        Err(e) => return respond(&rx, None, Err(e)),
    };
    rx.metrics.requests_by_protocol[protocol as usize]
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let content_length = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    let limit = rx.limits.max_body_bytes;
    let body = match read_body_limited(req.into_body(), content_length, limit).await {
        Ok(b) => b,
        Err(e) => return respond(&rx, Some(protocol), Err(e)),
    };
    let rx2 = rx.clone();
    let res = tokio::task::spawn_blocking(move || process(&rx2, &db, protocol, &body))
        .await
        .unwrap_or_else(|e| Err(Error::Internal(format!("ingest task failed: {e}"))));
    respond(&rx, Some(protocol), res)
}

/// Buffers reused by the requests one worker thread processes: the decompressed body and
/// the RW 1.0 decoder's vectors, so a request allocates nothing in proportion to its size
/// once they have grown.
#[derive(Default)]
struct Scratch {
    raw: Vec<u8>,
    v1: V1Scratch,
}

/// A decompression buffer larger than this is released after its request.
const MAX_RETAINED_RAW_BYTES: usize = 16 << 20;

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Decompresses, decodes and ingests a request body (blocking: appends and the WAL fsync).
pub fn process(rx: &Receiver, db: &Db, protocol: Protocol, body: &[u8]) -> Result<Outcome> {
    match protocol {
        Protocol::V1 => {
            // Taken out of the thread-local for the request, put back after.
            let mut s = SCRATCH.with(|c| c.take());
            let res = decompress_limited_into(body, rx.limits.max_decompressed_bytes, &mut s.raw)
                .and_then(|n| v1::decode_and_ingest(rx, db, &s.raw[..n], &mut s.v1));
            if s.raw.len() > MAX_RETAINED_RAW_BYTES {
                s.raw = Vec::new();
            }
            s.v1.trim();
            SCRATCH.with(|c| c.replace(s));
            res
        }
        Protocol::V2 => {
            let raw = Bytes::from(decompress_limited(body, rx.limits.max_decompressed_bytes)?);
            v2::ingest(rx, db, &v2::decode(raw)?)
        }
    }
}

/// Builds the response and counts it.
fn respond(
    rx: &Receiver,
    protocol: Option<Protocol>,
    res: Result<Outcome>,
) -> Response<Full<Bytes>> {
    let (mut resp, outcome) = match res {
        Ok(o) if o.rejected.is_empty() => (plain(StatusCode::NO_CONTENT, ""), o),
        Ok(o) => {
            let msg = o.message(rx.limits.max_future_ms);
            tracing::debug!(%msg, "remote write partially rejected");
            (plain(StatusCode::BAD_REQUEST, format!("{msg}\n")), o)
        }
        Err(e) => {
            if let Error::Limit { kind, .. } = &e {
                rx.metrics.limit(*kind);
            }
            let status = e.status();
            if status.is_server_error() {
                tracing::warn!(error = %e, "remote write failed");
            } else {
                tracing::debug!(error = %e, "remote write rejected");
            }
            (plain(status, format!("{e}\n")), Outcome::default())
        }
    };
    rx.metrics.response(resp.status().as_u16());
    if protocol == Some(Protocol::V2) {
        let h = resp.headers_mut();
        for (name, n) in [
            (HEADER_SAMPLES_WRITTEN, outcome.samples_written),
            (HEADER_HISTOGRAMS_WRITTEN, outcome.histograms_written),
            (HEADER_EXEMPLARS_WRITTEN, outcome.exemplars_written),
        ] {
            h.insert(name, n.into());
        }
    }
    resp
}

fn plain(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let body = body.into();
    let mut r = Response::new(Full::new(body.clone()));
    *r.status_mut() = status;
    if !body.is_empty() {
        r.headers_mut().insert(
            CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    r
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let ok = [
            ("application/x-protobuf", Protocol::V1),
            ("Application/X-Protobuf", Protocol::V1),
            (
                "application/x-protobuf;proto=prometheus.WriteRequest",
                Protocol::V1,
            ),
            (
                "application/x-protobuf ; proto=io.prometheus.write.v2.Request",
                Protocol::V2,
            ),
            (
                "application/x-protobuf;proto=\"io.prometheus.write.v2.Request\"",
                Protocol::V2,
            ),
        ];
        for (ct, want) in ok {
            assert_eq!(protocol_of_content_type(ct).unwrap(), want, "{ct}");
        }
        for bad in [
            "application/json",
            "image/png",
            "application/x-protobuf;proto=io.prometheus.write.v3.Request",
            "",
        ] {
            assert!(
                matches!(
                    protocol_of_content_type(bad),
                    Err(Error::UnsupportedContentType(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn encodings() {
        let mut h = HeaderMap::new();
        assert_eq!(negotiate(&h).unwrap(), Protocol::V1);
        h.insert(CONTENT_ENCODING, "Snappy".parse().unwrap());
        assert_eq!(negotiate(&h).unwrap(), Protocol::V1);
        for bad in ["gzip", "deflate", "zstd", "identity"] {
            h.insert(CONTENT_ENCODING, bad.parse().unwrap());
            let e = negotiate(&h).unwrap_err();
            assert_eq!(e.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{bad}");
        }
    }
}
