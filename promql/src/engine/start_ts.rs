//! The start-timestamp seam: how the engine learns each sample's start (created)
//! timestamp, which Prometheus uses in `rate`, `increase`, `irate` and `resets` (resets
//! and the zero point of a counter) and returns from `start_timestamp()`.
//!
//! `vigil_storage::Series` carries XOR chunks only, which have no room for start
//! timestamps, so the engine asks a separate [`StartTimestampSource`] for them, keyed by
//! series labels and time range, and aligns them with the decoded samples by timestamp.
//! `MemStorage` implements it; the real storage can implement it (or later carry the
//! timestamps in `Series` itself, making this trait a shim) without any evaluator change.
//! This module never reads samples or evaluates expressions.

use vigil_storage::{Labels, Sample};

/// The start timestamp of a sample whose start is unknown (as in Prometheus).
pub const UNKNOWN_START_TIMESTAMP: i64 = 0;

/// Supplies per-sample start timestamps beside a `Queryable`.
pub trait StartTimestampSource: Sync {
    /// `(sample timestamp, start timestamp)` of the samples of the series with exactly
    /// `labels` within `[mint, maxt]` whose start timestamp is known, sorted by sample
    /// timestamp. Samples not listed have an unknown start timestamp.
    fn start_timestamps(
        &self,
        labels: &Labels,
        mint: i64,
        maxt: i64,
    ) -> vigil_storage::Result<Vec<(i64, i64)>>;
}

/// Start timestamps parallel to `samples` (both sorted by time), from the sparse
/// `(t, st)` pairs of a [`StartTimestampSource`]; empty when no sample has one, so
/// callers can tell "no start timestamps" apart cheaply.
pub(crate) fn align(samples: &[Sample], known: &[(i64, i64)]) -> Vec<i64> {
    if known.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(samples.len());
    let mut k = 0usize;
    for s in samples {
        while k < known.len() && known[k].0 < s.t {
            k += 1;
        }
        match known.get(k) {
            Some(&(t, st)) if t == s.t => out.push(st),
            _ => out.push(UNKNOWN_START_TIMESTAMP),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(ts: &[i64]) -> Vec<Sample> {
        ts.iter().map(|&t| Sample { t, v: 1.0 }).collect()
    }

    #[test]
    fn align_fills_unknown_and_skips_extra() {
        let s = samples(&[10, 20, 30, 40]);
        assert!(align(&s, &[]).is_empty());
        // 5 and 35 name no selected sample; 20 and 40 do.
        let got = align(&s, &[(5, 1), (20, 15), (35, 31), (40, 39)]);
        assert_eq!(got, vec![0, 15, 0, 39]);
        assert_eq!(align(&s, &[(50, 45)]), vec![0, 0, 0, 0]);
    }
}
