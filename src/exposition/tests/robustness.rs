//! Property tests: arbitrary bytes and byte-level mutations of valid pages never panic
//! either parser, errors point inside the input, and the stale NaN never appears.

use proptest::prelude::*;

use crate::exposition::{parse, Format};

const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

const SEED_PAGE: &str = "# HELP a help \\n x\n# TYPE a histogram\n# UNIT a \na_bucket{le=\"1\"} 1 # {t=\"1\"} 0.5 2\na_bucket{le=\"+Inf\"} 2\na_count 2\na_sum 3\nb{\"x.y\"=\"v\\\"\"} NaN\n{\"c.d\"} -Inf 5\n# EOF\n";

fn check(data: &[u8]) {
    let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
    for format in [Format::PrometheusText, Format::OpenMetrics] {
        match parse(data, format) {
            Ok(p) => assert!(p
                .samples
                .iter()
                .all(|s| s.value.to_bits() != STALE_NAN_BITS)),
            Err(e) => assert!(e.line() >= 1 && e.line() <= lines + 1, "{e}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        check(&data);
    }

    #[test]
    fn mutated_pages_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut data = SEED_PAGE.as_bytes().to_vec();
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        let end = cut.index(data.len() + 1);
        check(&data[..end]);
        check(&data);
    }
}

#[test]
fn seed_page_is_valid_in_both_formats() {
    let om = parse(SEED_PAGE.as_bytes(), Format::OpenMetrics).unwrap();
    assert_eq!(om.samples.len(), 6);
    let text = parse(
        SEED_PAGE
            .replace(" # {t=\"1\"} 0.5 2", "")
            .replace("# UNIT a \n", "")
            .as_bytes(),
        Format::PrometheusText,
    )
    .unwrap();
    assert_eq!(text.samples.len(), 6);
}
