//! Fuzz target: arbitrary bytes as one WAL segment. The reader must return records or an
//! error — never panic, hang or allocate without bound. Owns nothing else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_wal::{Error, Reader};

fuzz_target!(|data: &[u8]| {
    let mut reader = Reader::from_bytes(0, data.to_vec());
    let mut buf = Vec::new();
    loop {
        match reader.next_record(&mut buf) {
            Ok(true) => {
                // A record that passed every check ends inside the input.
                assert!(reader.offset() as usize <= data.len());
            }
            Ok(false) => break,
            Err(Error::Corruption { offset, .. }) => {
                assert!(offset as usize <= data.len());
                break;
            }
            Err(_) => break,
        }
    }
});
