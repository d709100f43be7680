//! Fuzz target: XOR chunk decoding of arbitrary bytes must never panic, must stop at the
//! announced sample count or report an error, and whatever decodes cleanly must re-encode to
//! samples with identical bits; resuming an appender on the bytes must not panic either.
//!
//! It must never assume the input is well-formed.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_storage::chunkenc::{XorChunk, XorEncoder, XorIterator};

fuzz_target!(|data: &[u8]| {
    let mut it = XorIterator::new(data);
    let announced = it.num_samples();
    let mut samples = Vec::new();
    while it.next() {
        let (t, v) = it.at();
        samples.push((t, v.to_bits()));
    }
    assert!(samples.len() <= usize::from(announced));
    if it.err().is_none() {
        assert_eq!(samples.len(), usize::from(announced));
        let mut enc = XorEncoder::new();
        for &(t, v) in &samples {
            enc.append(t, f64::from_bits(v));
        }
        let mut again = Vec::new();
        let mut it2 = enc.iter();
        while it2.next() {
            let (t, v) = it2.at();
            again.push((t, v.to_bits()));
        }
        assert!(it2.err().is_none());
        assert_eq!(again, samples);
    }

    // Seeking to a timestamp taken from the input never panics.
    if data.len() >= 8 {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&data[data.len() - 8..]);
        let mut it = XorIterator::new(data);
        let _ = it.seek(i64::from_le_bytes(ts));
    }

    if let Ok(mut chunk) = XorChunk::from_bytes(data.to_vec()) {
        if let Ok(mut app) = chunk.appender() {
            let _ = app.try_append(i64::MAX, f64::NAN);
        }
    }
});
