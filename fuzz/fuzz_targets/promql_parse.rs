//! Fuzz target: any UTF-8 input must parse or fail cleanly, never panic; whatever parses
//! must print to text that parses again to the same printed form.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_promql::parser::{parse_expr_with, ParserOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    let opts = ParserOptions::all();
    if let Ok(e) = parse_expr_with(q, &opts) {
        let printed = e.to_string();
        match parse_expr_with(&printed, &opts) {
            Ok(again) => assert_eq!(again.to_string(), printed, "input {q:?}"),
            Err(err) => panic!("{q:?} printed as {printed:?} does not parse: {err}"),
        }
    }
});
