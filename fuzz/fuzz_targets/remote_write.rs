//! Fuzz target for the remote-write decoders: arbitrary bytes through the snappy block
//! decoder (with the decompressed-size limit) and both protobuf messages (RW 1.0
//! `prometheus.WriteRequest`, RW 2.0 `io.prometheus.write.v2.Request`), compressed and raw,
//! plus Content-Type negotiation on the same bytes: none may panic, and the limit must hold.
//! The zero-copy RW 1.0 decoder (`remote::wire`) must accept exactly what the prost decoder
//! accepts, with the same series, labels and samples.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil::remote::handler::protocol_of_content_type;
use vigil::remote::limits::decompress_limited;
use vigil::remote::{v1, v2, wire};

/// Decompressed-size limit for the fuzzer: small, so huge claims are refused quickly.
const MAX_DECOMPRESSED_BYTES: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = decompress_limited(data, MAX_DECOMPRESSED_BYTES) {
        assert!(raw.len() as u64 <= MAX_DECOMPRESSED_BYTES);
        let _ = v1::decode(raw.clone());
        let _ = v2::decode(raw);
    }
    let mut scratch = wire::V1Scratch::default();
    let zero_copy = wire::decode_v1(data, &mut scratch);
    match (v1::decode(data.to_vec()), zero_copy) {
        (Ok(req), Ok(view)) => {
            assert_eq!(req.timeseries.len(), view.num_series());
            for (ts, sv) in req.timeseries.iter().zip(view.series()) {
                let labels: Vec<(&[u8], &[u8])> = sv.labels().collect();
                assert_eq!(ts.labels.len(), labels.len());
                for (l, (n, v)) in ts.labels.iter().zip(&labels) {
                    assert_eq!(&l.name[..], *n);
                    assert_eq!(&l.value[..], *v);
                }
                assert_eq!(ts.samples.len(), sv.samples.len());
                for (a, (t, v)) in ts.samples.iter().zip(sv.samples) {
                    assert_eq!(a.timestamp, *t);
                    assert_eq!(a.value.to_bits(), v.to_bits());
                }
            }
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!(
            "decoders disagree: prost ok={} wire ok={}",
            a.is_ok(),
            b.is_ok()
        ),
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
