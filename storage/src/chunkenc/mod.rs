//! Chunk encodings: the Gorilla XOR codec for float samples, bit-exact with Prometheus
//! `tsdb/chunkenc` (see `docs/format/chunks.md`), plus the encoding identifiers and the stale
//! marker shared by every chunk format.
//!
//! This module is pure: it owns byte and bit layouts of chunk data and must never do I/O,
//! never panic on bytes read from disk (decoders report a `Corruption` error instead), and
//! never alter the bits of a value (NaN payloads and stale markers survive exactly).

mod bstream;
mod xor;

pub use xor::{XorAppender, XorChunk, XorEncoder, XorIterator, XorSamples};

use crate::{Error, Result};

/// Bits of the special NaN Prometheus uses as a staleness marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Name used in `Corruption` errors raised while decoding chunk bytes that did not come with
/// a file name; readers that know the file re-locate the error.
pub const CHUNK_DATA_LOCATION: &str = "<chunk data>";

/// True when `v` is exactly the staleness marker (compared by bits, not as a float).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// The stale marker as a float.
#[inline]
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Chunk encoding identifiers as stored in the encoding byte of chunk files.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// No encoding (never written for a real chunk).
    None = 0,
    /// Gorilla XOR float samples.
    Xor = 1,
    /// Native histograms with integer counts.
    Histogram = 2,
    /// Native histograms with float counts.
    FloatHistogram = 3,
}

impl Encoding {
    /// The byte stored on disk.
    #[inline]
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for Encoding {
    type Error = Error;

    fn try_from(b: u8) -> Result<Self> {
        match b {
            0 => Ok(Encoding::None),
            1 => Ok(Encoding::Xor),
            2 => Ok(Encoding::Histogram),
            3 => Ok(Encoding::FloatHistogram),
            other => Err(Error::corruption(
                CHUNK_DATA_LOCATION,
                0,
                format!("unknown chunk encoding {other}"),
            )),
        }
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Encoding::None => "none",
            Encoding::Xor => "XOR",
            Encoding::Histogram => "histogram",
            Encoding::FloatHistogram => "floathistogram",
        };
        f.write_str(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encoding_bytes_match_prometheus() {
        for (b, e) in [
            (0u8, Encoding::None),
            (1, Encoding::Xor),
            (2, Encoding::Histogram),
            (3, Encoding::FloatHistogram),
        ] {
            assert_eq!(Encoding::try_from(b).unwrap(), e);
            assert_eq!(e.as_u8(), b);
        }
        assert!(matches!(
            Encoding::try_from(4),
            Err(Error::Corruption { .. })
        ));
    }

    #[test]
    fn stale_marker_is_a_nan_recognised_by_bits() {
        assert!(stale_nan().is_nan());
        assert!(is_stale_nan(stale_nan()));
        assert!(!is_stale_nan(f64::NAN));
        assert!(!is_stale_nan(0.0));
    }
}
