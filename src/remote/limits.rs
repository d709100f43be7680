//! The receiver's resource limits and the two checks that must happen before memory is
//! spent: reading a request body no larger than the body limit (the declared
//! `Content-Length` first, then a running count that cuts a streaming body off), and
//! reading the decompressed length a snappy block claims in its header before allocating
//! it. Per-series limits (labels per series, name and value length) are values here and are
//! checked by the series validation. This module never decodes protobuf or stores data.

use std::fmt;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;

use super::error::{Error, Result};

/// Default maximum request body size (compressed): 64 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 << 20;
/// Default maximum decompressed size of one request: 256 MiB.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 256 << 20;
/// Default maximum number of labels in one series.
pub const DEFAULT_MAX_LABELS_PER_SERIES: usize = 128;
/// Default maximum length of one label name, in bytes.
pub const DEFAULT_MAX_LABEL_NAME_BYTES: usize = 1024;
/// Default maximum length of one label value, in bytes.
pub const DEFAULT_MAX_LABEL_VALUE_BYTES: usize = 16 * 1024;
/// Default: samples more than 10 minutes ahead of the wall clock are rejected.
pub const DEFAULT_MAX_FUTURE_MS: i64 = 10 * 60 * 1000;
/// Preallocation cap for a body whose `Content-Length` is declared: the buffer grows past
/// this only as bytes actually arrive.
const MAX_BODY_PREALLOC_BYTES: usize = 1 << 20;

/// Limits of the remote-write receiver. Every limit exceeded answers 400 and counts on
/// `vigil_remote_write_limit_exceeded_total{limit=…}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum compressed body size in bytes.
    pub max_body_bytes: u64,
    /// Maximum decompressed size in bytes, as claimed by the snappy header.
    pub max_decompressed_bytes: u64,
    /// Maximum labels in one series (including `__name__`).
    pub max_labels_per_series: usize,
    /// Maximum label name length in bytes.
    pub max_label_name_bytes: usize,
    /// Maximum label value length in bytes.
    pub max_label_value_bytes: usize,
    /// Samples with a timestamp more than this many ms after the wall clock are rejected;
    /// 0 disables the check.
    pub max_future_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
            max_labels_per_series: DEFAULT_MAX_LABELS_PER_SERIES,
            max_label_name_bytes: DEFAULT_MAX_LABEL_NAME_BYTES,
            max_label_value_bytes: DEFAULT_MAX_LABEL_VALUE_BYTES,
            max_future_ms: DEFAULT_MAX_FUTURE_MS,
        }
    }
}

/// Which limit was exceeded; the `limit` label value of the counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    BodyBytes,
    DecompressedBytes,
    LabelsPerSeries,
    LabelNameBytes,
    LabelValueBytes,
}

impl LimitKind {
    /// All kinds, in rendering order.
    pub const ALL: [LimitKind; 5] = [
        LimitKind::BodyBytes,
        LimitKind::DecompressedBytes,
        LimitKind::LabelsPerSeries,
        LimitKind::LabelNameBytes,
        LimitKind::LabelValueBytes,
    ];

    /// The label value used on `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::BodyBytes => "body_bytes",
            LimitKind::DecompressedBytes => "decompressed_bytes",
            LimitKind::LabelsPerSeries => "labels_per_series",
            LimitKind::LabelNameBytes => "label_name_bytes",
            LimitKind::LabelValueBytes => "label_value_bytes",
        }
    }

    /// Index into counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads a whole body, refusing it when the declared `content_length` exceeds `limit`, and
/// cutting it off as soon as the bytes received exceed `limit` (chunked or lying senders).
pub async fn read_body_limited<B>(body: B, content_length: Option<u64>, limit: u64) -> Result<Bytes>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: fmt::Display,
{
    if let Some(n) = content_length {
        if n > limit {
            return Err(Error::Limit {
                kind: LimitKind::BodyBytes,
                limit,
                detail: format!("request body declares Content-Length {n} bytes"),
            });
        }
    }
    let prealloc = content_length
        .unwrap_or(0)
        .min(MAX_BODY_PREALLOC_BYTES as u64) as usize;
    let mut buf = BytesMut::with_capacity(prealloc);
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::Body(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            let total = buf.len() as u64 + data.len() as u64;
            if total > limit {
                return Err(Error::Limit {
                    kind: LimitKind::BodyBytes,
                    limit,
                    detail: format!("request body exceeded {limit} bytes while streaming"),
                });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Decompresses a snappy block, first reading the length its header claims and refusing
/// it above `limit` without allocating anything.
pub fn decompress_limited(body: &[u8], limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let n = decompress_limited_into(body, limit, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// [`decompress_limited`] into a reused buffer: `out` only grows (it is never cleared or
/// zeroed again once large enough), and the decompressed bytes are `out[..n]` for the
/// returned `n`.
pub fn decompress_limited_into(body: &[u8], limit: u64, out: &mut Vec<u8>) -> Result<usize> {
    let claimed = snap::raw::decompress_len(body).map_err(|e| Error::Snappy {
        reason: format!("bad block header: {e}"),
    })?;
    if claimed as u64 > limit {
        return Err(Error::Limit {
            kind: LimitKind::DecompressedBytes,
            limit,
            detail: format!("snappy block claims {claimed} decompressed bytes"),
        });
    }
    if out.len() < claimed {
        out.resize(claimed, 0);
    }
    snap::raw::Decoder::new()
        .decompress(body, &mut out[..claimed])
        .map_err(|e| Error::Snappy {
            reason: describe_snappy_error(&e, body.len()),
        })
}

/// A snappy error with the compressed-byte offset where decoding stopped, where known
/// (the decoder reports how many input bytes were left).
fn describe_snappy_error(e: &snap::Error, body_len: usize) -> String {
    match e {
        snap::Error::CopyRead { src_len, .. } | snap::Error::Literal { src_len, .. } => {
            let at = body_len.saturating_sub(*src_len as usize);
            format!("{e} (at compressed byte {at})")
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use hyper::body::Frame;

    #[test]
    fn claimed_length_over_limit_is_refused_before_allocating() {
        // A 5-byte varint claiming 4 GiB - 1, followed by nothing.
        let body = [0xff, 0xff, 0xff, 0xff, 0x0f];
        match decompress_limited(&body, 1 << 20) {
            Err(Error::Limit { kind, .. }) => assert_eq!(kind, LimitKind::DecompressedBytes),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn snappy_roundtrip_and_corruption() {
        let data = b"hello hello hello hello".repeat(10);
        let c = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress_limited(&c, 1 << 20).unwrap(), data);
        let mut bad = c.clone();
        bad.truncate(bad.len() - 3);
        assert!(matches!(
            decompress_limited(&bad, 1 << 20),
            Err(Error::Snappy { .. })
        ));
        assert!(matches!(
            decompress_limited(&[], 1 << 20),
            Err(Error::Snappy { .. })
        ));
    }

    #[test]
    fn reused_buffer_holds_each_body() {
        let mut buf = Vec::new();
        let long = b"abcdefgh".repeat(100);
        let short = b"xyz".to_vec();
        for data in [&long, &short, &long] {
            let c = snap::raw::Encoder::new().compress_vec(data).unwrap();
            let n = decompress_limited_into(&c, 1 << 20, &mut buf).unwrap();
            assert_eq!(&buf[..n], &data[..]);
        }
        assert_eq!(buf.len(), long.len(), "grown once, never shrunk");
        let c = snap::raw::Encoder::new().compress_vec(&long).unwrap();
        assert!(matches!(
            decompress_limited_into(&c, 10, &mut buf),
            Err(Error::Limit { .. })
        ));
    }

    #[tokio::test]
    async fn declared_content_length_is_checked_first() {
        let body = Full::new(Bytes::from_static(b"x"));
        match read_body_limited(body, Some(100), 10).await {
            Err(Error::Limit { kind, .. }) => assert_eq!(kind, LimitKind::BodyBytes),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn streaming_body_is_cut_off() {
        let chunks: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = (0..10)
            .map(|_| Ok(Frame::data(Bytes::from(vec![0u8; 4]))))
            .collect();
        let body = futures_stream(chunks);
        match read_body_limited(body, None, 20).await {
            Err(Error::Limit { kind, detail, .. }) => {
                assert_eq!(kind, LimitKind::BodyBytes);
                assert!(detail.contains("streaming"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let ok = Full::new(Bytes::from_static(b"0123456789"));
        assert_eq!(read_body_limited(ok, None, 10).await.unwrap().len(), 10);
    }

    /// A minimal `Stream` over a vector, to avoid a futures dependency.
    fn futures_stream<T: Unpin>(v: Vec<T>) -> VecStream<T> {
        VecStream(v.into_iter())
    }

    struct VecStream<T>(std::vec::IntoIter<T>);

    impl<T: Unpin> hyper::body::Body for VecStream<Result<Frame<Bytes>, T>> {
        type Data = Bytes;
        type Error = T;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<Frame<Bytes>, T>>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
}
