//! Tombstones: deleted time intervals per series, and the block `tombstones` file in
//! Prometheus' format (magic `0x0130BA30`, format version 1, entries of series ref uvarint,
//! mint varint, maxt varint, then CRC32-Castagnoli over the entries). Intervals are closed
//! `[mint, maxt]`, kept sorted and merged (adjacent ones too, as time is discrete).

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::record::{put_uvarint, put_varint, Decbuf};

/// Magic number at the start of a tombstones file.
pub const TOMBSTONES_MAGIC: u32 = 0x0130_BA30;
/// The only tombstones format version.
pub const TOMBSTONES_FORMAT_V1: u8 = 1;
/// File name inside a block directory.
pub const TOMBSTONES_FILENAME: &str = "tombstones";
const HEADER_SIZE: usize = 5;
const CRC_SIZE: usize = 4;

/// Deleted intervals by series reference, sorted by reference.
pub type Tombstones = BTreeMap<u64, Vec<(i64, i64)>>;

/// Sorts and merges overlapping or adjacent intervals in place.
pub fn normalize_intervals(v: &mut Vec<(i64, i64)>) {
    v.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(v.len());
    for &(a, b) in v.iter() {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    *v = out;
}

/// Whether `t` falls in one of the sorted intervals.
pub fn is_deleted(intervals: &[(i64, i64)], t: i64) -> bool {
    intervals.iter().any(|&(a, b)| t >= a && t <= b)
}

/// Encodes a tombstones file.
pub fn encode(stones: &Tombstones) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_SIZE + CRC_SIZE + stones.len() * 12);
    b.extend_from_slice(&TOMBSTONES_MAGIC.to_be_bytes());
    b.push(TOMBSTONES_FORMAT_V1);
    for (r, ivs) in stones {
        for &(mint, maxt) in ivs {
            put_uvarint(&mut b, *r);
            put_varint(&mut b, mint);
            put_varint(&mut b, maxt);
        }
    }
    let crc = crc32c::crc32c(&b[HEADER_SIZE..]);
    b.extend_from_slice(&crc.to_be_bytes());
    b
}

/// Decodes a tombstones file's bytes; `file` names it in errors.
pub fn decode(b: &[u8], file: &Path) -> Result<Tombstones> {
    if b.len() < HEADER_SIZE + CRC_SIZE {
        return Err(Error::corruption(file, 0, "tombstones file too short"));
    }
    let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if magic != TOMBSTONES_MAGIC {
        return Err(Error::corruption(
            file,
            0,
            format!("invalid magic number {magic:#x}"),
        ));
    }
    if b[4] != TOMBSTONES_FORMAT_V1 {
        return Err(Error::corruption(
            file,
            4,
            format!("unknown tombstone format {}", b[4]),
        ));
    }
    let body = &b[HEADER_SIZE..b.len() - CRC_SIZE];
    let want = u32::from_be_bytes([
        b[b.len() - 4],
        b[b.len() - 3],
        b[b.len() - 2],
        b[b.len() - 1],
    ]);
    if crc32c::crc32c(body) != want {
        return Err(Error::corruption(
            file,
            (b.len() - CRC_SIZE) as u64,
            "tombstones checksum mismatch",
        ));
    }
    let mut d = Decbuf::new(body, "tombstones");
    let mut out = Tombstones::new();
    while d.remaining() > 0 {
        let at = (HEADER_SIZE + body.len() - d.remaining()) as u64;
        let r = d.uvarint();
        let mint = d.varint();
        let maxt = d.varint();
        match (r, mint, maxt) {
            (Ok(r), Ok(a), Ok(z)) => out.entry(r).or_default().push((a, z)),
            _ => return Err(Error::corruption(file, at, "truncated tombstone entry")),
        }
    }
    for v in out.values_mut() {
        normalize_intervals(v);
    }
    Ok(out)
}

/// Reads `<dir>/tombstones`; a missing file means no tombstones.
pub fn read(dir: &Path) -> Result<Tombstones> {
    let path = dir.join(TOMBSTONES_FILENAME);
    match std::fs::read(&path) {
        Ok(b) => decode(&b, &path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tombstones::new()),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

/// Writes `<dir>/tombstones` atomically (temp file, fsync, rename, fsync dir).
pub fn write(dir: &Path, stones: &Tombstones) -> Result<()> {
    crate::fs::write_file_atomic(&dir.join(TOMBSTONES_FILENAME), &encode(stones))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn golden_and_round_trip() {
        let mut t = Tombstones::new();
        t.insert(1, vec![(-1, 2)]);
        let b = encode(&t);
        let mut want = vec![0x01, 0x30, 0xBA, 0x30, 1, 1, 1, 4];
        want.extend_from_slice(&crc32c::crc32c(&[1, 1, 4]).to_be_bytes());
        assert_eq!(b, want);
        assert_eq!(decode(&b, Path::new("t")).unwrap(), t);
        let empty = encode(&Tombstones::new());
        assert_eq!(empty.len(), 9);
        assert!(decode(&empty, Path::new("t")).unwrap().is_empty());
    }

    #[test]
    fn corruption_is_located() {
        let mut t = Tombstones::new();
        t.insert(7, vec![(10, 20), (30, 40)]);
        let mut b = encode(&t);
        b[6] ^= 0x40;
        let e = decode(&b, Path::new("blk/tombstones")).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
        assert!(decode(&b[..3], Path::new("x")).is_err());
    }

    #[test]
    fn intervals_merge() {
        let mut v = vec![(5, 6), (1, 2), (3, 4), (10, 12), (11, 20)];
        normalize_intervals(&mut v);
        assert_eq!(v, vec![(1, 6), (10, 20)]);
        assert!(is_deleted(&v, 15));
        assert!(!is_deleted(&v, 8));
    }
}
