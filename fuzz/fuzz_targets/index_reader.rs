//! Fuzz target: arbitrary bytes as an index file. Opening and reading everything (symbols,
//! label names and values, postings, every series, matchers, `verify`) must return errors
//! for bad bytes and never panic, hang or allocate without bound.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vigil_storage::index::{postings_for_matchers, IndexReader};
use vigil_storage::{MatchType, Matcher};

/// Caps the work per input so that huge (valid) postings lists stay fast.
const MAX_SERIES_READ: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let Ok(r) = IndexReader::from_bytes(data.to_vec(), Path::new("fuzz")) else {
        return;
    };
    let _ = r.verify();
    for s in r.symbols() {
        if s.is_err() {
            break;
        }
    }
    let names = r.label_names().unwrap_or_default();
    for name in &names {
        let values = r.label_values(name).unwrap_or_default();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let _ = r.postings(name, &refs);
        if let Some(v) = refs.first() {
            let matchers = [
                Matcher::equal(name, v),
                Matcher::new(MatchType::NotRegex, name, "a.*|b").unwrap_or(Matcher::equal(name, "")),
            ];
            let _ = postings_for_matchers(&r, &matchers);
        }
    }
    let mut chunks = Vec::new();
    if let Ok(all) = r.all_postings() {
        for sref in all.iter().take(MAX_SERIES_READ) {
            let _ = r.series(u64::from(sref), &mut chunks);
        }
    }
    let _ = r.series(u64::from(u32::MAX), &mut chunks);
});
