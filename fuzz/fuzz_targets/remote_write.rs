//! Fuzz target for the remote-write decoders: arbitrary bytes through the snappy block
//! decoder (with the decompressed-size limit) and both protobuf messages (RW 1.0
//! `prometheus.WriteRequest`, RW 2.0 `io.prometheus.write.v2.Request`), compressed and raw,
//! plus Content-Type negotiation on the same bytes: none may panic, and the limit must hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::remote::handler::protocol_of_content_type;
use vigil::remote::limits::decompress_limited;
use vigil::remote::{v1, v2};

/// Decompressed-size limit for the fuzzer: small, so huge claims are refused quickly.
const MAX_DECOMPRESSED_BYTES: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = decompress_limited(data, MAX_DECOMPRESSED_BYTES) {
        assert!(raw.len() as u64 <= MAX_DECOMPRESSED_BYTES);
        let _ = v1::decode(raw.clone());
        let _ = v2::decode(raw);
    }
    if let Ok(req) = v1::decode(data.to_vec()) {
        for ts in &req.timeseries {
            let _ = ts.labels.iter().map(|l| l.name.len() + l.value.len()).sum::<usize>();
        }
    }
    if let Ok(req) = v2::decode(data.to_vec()) {
        let n = req.symbols.len();
        let _ = req
            .timeseries
            .iter()
            .flat_map(|ts| ts.labels_refs.iter())
            .filter(|r| (**r as usize) >= n)
            .count();
    }
    let _ = protocol_of_content_type(&String::from_utf8_lossy(data));
});
