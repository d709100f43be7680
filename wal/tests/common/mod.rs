//! Shared helpers for the WAL integration tests: a deterministic PRNG, record generators,
//! and "read everything" helpers. Test-only; must never be used by the library.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use vigil_wal::{Error, Reader, HEADER_SIZE, PAGE_SIZE};

/// xorshift64*: deterministic, dependency-free.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A record of `len` bytes: random, or (when `compressible`) text-like with random bits.
pub fn record(rng: &mut Rng, len: usize, compressible: bool) -> Vec<u8> {
    if !compressible {
        return rng.bytes(len);
    }
    let words: [&[u8]; 4] = [
        b"http_requests_total",
        b"job=\"api\"",
        b"instance",
        b"le=\"0.5\"",
    ];
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        out.extend_from_slice(words[rng.below(4) as usize]);
        out.push(rng.next() as u8);
    }
    out.truncate(len);
    out
}

/// Reads every record of a reader: the records and the terminating error, if any.
pub fn drain(mut r: Reader) -> (Vec<Vec<u8>>, Option<Error>) {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    loop {
        match r.next_record(&mut buf) {
            Ok(true) => out.push(buf.clone()),
            Ok(false) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// Reads every record of every segment in `dir`, expecting a clean end.
pub fn read_dir_clean(dir: &Path) -> Vec<Vec<u8>> {
    let (recs, err) = drain(Reader::open(dir, 0, None).unwrap());
    assert!(err.is_none(), "unexpected error: {err:?}");
    recs
}

/// Layout of one well-formed segment: for every record, its start and end offset; and
/// the offset of every fragment header.
pub struct Layout {
    pub records: Vec<(u64, u64)>,
    pub headers: Vec<usize>,
    /// Offsets where zero padding starts (at a record boundary).
    pub pads: Vec<usize>,
}

pub fn layout(seg: &[u8]) -> Layout {
    let mut records = Vec::new();
    let mut headers = Vec::new();
    let mut pads = Vec::new();
    let mut pos = 0;
    let mut start = None;
    while pos < seg.len() {
        let page_end = (pos / PAGE_SIZE + 1) * PAGE_SIZE;
        if seg[pos] == 0 {
            pads.push(pos);
            pos = page_end.min(seg.len());
            continue;
        }
        headers.push(pos);
        let typ = seg[pos] & 0x07;
        let len = u16::from_be_bytes([seg[pos + 1], seg[pos + 2]]) as usize;
        if typ == 1 || typ == 2 {
            start = Some(pos);
        }
        pos += HEADER_SIZE + len;
        if typ == 1 || typ == 4 {
            records.push((start.take().unwrap() as u64, pos as u64));
        }
    }
    Layout {
        records,
        headers,
        pads,
    }
}

pub fn expect_corruption(err: Option<Error>) -> (u64, u64, String) {
    match err {
        Some(Error::Corruption {
            segment,
            offset,
            reason,
            ..
        }) => (segment, offset, reason),
        other => panic!("expected Corruption, got {other:?}"),
    }
}
