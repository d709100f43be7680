//! Fuzz target for the exposition parsers: arbitrary bytes through both formats, owned and
//! streaming, must never panic. Checks that errors name a line inside the input and that
//! no parsed value is the stale-marker NaN.
#![no_main]

use std::ops::ControlFlow;

use libfuzzer_sys::fuzz_target;
use vigil::exposition::{parse, parse_with, Entry, Format};

/// The stale marker's bit pattern, which input text must never produce.
const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

fuzz_target!(|data: &[u8]| {
    let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
    for format in [Format::PrometheusText, Format::OpenMetrics] {
        match parse(data, format) {
            Ok(parsed) => {
                for s in &parsed.samples {
                    assert_ne!(s.value.to_bits(), STALE_NAN_BITS);
                }
            }
            Err(e) => assert!(e.line() >= 1 && e.line() <= lines + 1, "{e}"),
        }
        let _ = parse_with(data, format, |e| {
            if let Entry::Sample(s) = e {
                assert_ne!(s.value.to_bits(), STALE_NAN_BITS);
            }
            ControlFlow::Continue(())
        });
    }
});
