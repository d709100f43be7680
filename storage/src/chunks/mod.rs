//! Chunk files on disk, in Prometheus' formats (drawn in `docs/format/chunks.md`): block
//! chunk segment files (`<block>/chunks/000001`…) and head chunk files (`chunks_head/000001`…),
//! chunk references, and the helpers both share (sequence-numbered file names, varints).
//!
//! This module owns the framing of chunks in files (length, encoding byte, CRC32-Castagnoli,
//! references). It must never interpret chunk data (that is `chunkenc`), never mmap, rename
//! or fsync directories itself (that is `fs`), and never panic on bytes read from disk.

mod head;
mod segment;

pub use head::{
    iterate_head_chunks, remove_head_chunk_files_from, HeadChunk, HeadChunkInfo, HeadChunkReader,
    HeadChunkWriter,
};
pub use segment::{ChunkReader, ChunkWriter};

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Size of the header of every chunk file: magic (4), version (1), padding (3).
pub const SEGMENT_HEADER_SIZE: usize = 8;
/// Bytes of the magic number at the start of a chunk file.
pub const MAGIC_SIZE: usize = 4;
/// Offset of the format version byte.
pub const VERSION_OFFSET: usize = 4;
/// Magic number of block chunk segment files.
pub const MAGIC_CHUNKS: u32 = 0x85BD_40DD;
/// Block chunk segment format version.
pub const CHUNKS_FORMAT_V1: u8 = 1;
/// Magic number of head chunk files.
pub const MAGIC_HEAD_CHUNKS: u32 = 0x0130_BC91;
/// Head chunk file format version.
pub const HEAD_CHUNKS_FORMAT_V1: u8 = 1;
/// Default maximum size of a block chunk segment file.
pub const DEFAULT_CHUNK_SEGMENT_SIZE: u64 = 512 * 1024 * 1024;
/// Maximum size of a head chunk file.
pub const MAX_HEAD_CHUNK_FILE_SIZE: u64 = 128 * 1024 * 1024;
/// Longest chunk length field (a uvarint of at most 32 bits).
pub const MAX_CHUNK_LENGTH_FIELD_SIZE: usize = 5;
/// Size of the encoding byte.
pub const CHUNK_ENCODING_SIZE: usize = 1;
/// Size of the CRC32-Castagnoli checksum.
pub const CRC_SIZE: usize = 4;
/// Width of the file-sequence part of a chunk reference (upper 32 bits).
pub const REF_SEQ_SHIFT: u32 = 32;
/// Digits of chunk file names (`000001`).
pub const FILE_NAME_DIGITS: usize = 6;

/// A reference to a chunk: file sequence in the upper 32 bits, byte offset of the chunk in
/// that file in the lower 32. For block segments the sequence is the 0-based position of
/// the file in the directory (`000001` is 0); for head chunk files it is the number in the
/// file name (`000001` is 1), exactly as Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ChunkRef(pub u64);

impl ChunkRef {
    /// Packs a file sequence and an offset.
    pub fn new(seq: u32, offset: u32) -> Self {
        ChunkRef((u64::from(seq) << REF_SEQ_SHIFT) | u64::from(offset))
    }

    /// The file sequence part.
    pub fn seq(self) -> u32 {
        (self.0 >> REF_SEQ_SHIFT) as u32
    }

    /// The byte offset part.
    pub fn offset(self) -> u32 {
        self.0 as u32
    }
}

impl From<u64> for ChunkRef {
    fn from(v: u64) -> Self {
        ChunkRef(v)
    }
}

/// Where a chunk is and which time range it covers, as listed per series in a block index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    /// Block chunk reference.
    pub chunk_ref: u64,
    /// First sample timestamp (ms).
    pub min_time: i64,
    /// Last sample timestamp (ms).
    pub max_time: i64,
}

/// The path of chunk file number `seq` in `dir` (`000001`…).
pub fn segment_file(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:0width$}", width = FILE_NAME_DIGITS))
}

/// Files in `dir` whose whole name is a decimal number, sorted by that number.
pub(crate) fn sequence_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("read directory {}", dir.display()), e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(format!("read directory {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(seq) = name.parse::<u64>() {
            out.push((seq, entry.path()));
        }
    }
    out.sort_by_key(|(seq, _)| *seq);
    Ok(out)
}

/// The 8-byte header of a chunk file.
pub(crate) fn file_header(magic: u32, version: u8) -> [u8; SEGMENT_HEADER_SIZE] {
    let mut h = [0u8; SEGMENT_HEADER_SIZE];
    h[..MAGIC_SIZE].copy_from_slice(&magic.to_be_bytes());
    h[VERSION_OFFSET] = version;
    h
}

/// Checks a chunk file header; on mismatch returns the offset and reason.
pub(crate) fn check_header(b: &[u8], magic: u32, version: u8) -> Result<(), (u64, String)> {
    let Some(h) = b.get(..SEGMENT_HEADER_SIZE) else {
        return Err((
            0,
            format!(
                "file of {} bytes is shorter than the {SEGMENT_HEADER_SIZE}-byte header",
                b.len()
            ),
        ));
    };
    let got = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    if got != magic {
        return Err((
            0,
            format!("invalid magic number {got:#010x}, want {magic:#010x}"),
        ));
    }
    if h[VERSION_OFFSET] != version {
        return Err((
            VERSION_OFFSET as u64,
            format!(
                "invalid format version {}, want {version}",
                h[VERSION_OFFSET]
            ),
        ));
    }
    Ok(())
}

/// Appends `x` as an unsigned LEB128 varint.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Decodes an unsigned varint of at most `MAX_CHUNK_LENGTH_FIELD_SIZE` bytes from the start
/// of `b`; returns the value and its length, or `None` if truncated or too long.
pub(crate) fn read_len_uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, &byte) in b.iter().take(MAX_CHUNK_LENGTH_FIELD_SIZE).enumerate() {
        x |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((x, i + 1));
        }
    }
    None
}

/// Reads a big-endian u32 at `off`, if present.
pub(crate) fn be_u32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads a big-endian u64 at `off`, if present.
pub(crate) fn be_u64(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_be_bytes(a))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn chunk_ref_packs_seq_and_offset() {
        let r = ChunkRef::new(3, 0x1234);
        assert_eq!(r.0, (3u64 << 32) | 0x1234);
        assert_eq!((r.seq(), r.offset()), (3, 0x1234));
    }

    #[test]
    fn file_names_and_listing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(segment_file(dir.path(), 7), dir.path().join("000007"));
        for n in ["000002", "000010", "000001", "000003.tmp", "index", "+1"] {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        let got: Vec<u64> = sequence_files(dir.path())
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(got, vec![1, 2, 10]);
    }

    #[test]
    fn header_checks() {
        let h = file_header(MAGIC_CHUNKS, CHUNKS_FORMAT_V1);
        assert_eq!(h, [0x85, 0xbd, 0x40, 0xdd, 1, 0, 0, 0]);
        assert!(check_header(&h, MAGIC_CHUNKS, 1).is_ok());
        assert_eq!(check_header(&h[..7], MAGIC_CHUNKS, 1).unwrap_err().0, 0);
        assert!(check_header(&h, MAGIC_HEAD_CHUNKS, 1).is_err());
        assert_eq!(check_header(&h, MAGIC_CHUNKS, 2).unwrap_err().0, 4);
    }

    #[test]
    fn length_varints() {
        let mut v = Vec::new();
        put_uvarint(&mut v, 300);
        assert_eq!(v, vec![0xac, 0x02]);
        assert_eq!(read_len_uvarint(&v), Some((300, 2)));
        assert_eq!(read_len_uvarint(&v[..1]), None);
        assert_eq!(read_len_uvarint(&[0x80; 6]), None);
        let mut v = Vec::new();
        put_uvarint(&mut v, u64::from(u32::MAX));
        assert_eq!(read_len_uvarint(&v), Some((u64::from(u32::MAX), 5)));
    }
}
