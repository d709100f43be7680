//! The block index, byte-compatible with Prometheus' index format v2: header, symbol table,
//! series (16-byte aligned, ref = offset/16), label indices and their offset table, postings
//! lists, the postings offset table and the TOC, every section guarded by CRC32-Castagnoli.
//! `docs/format/index.md` draws the format. This module owns encoding and decoding the
//! `index` file of one block and the generic `postings_for_matchers`; it never touches chunk
//! data, never mmaps (the reader is generic over its bytes so `fs` can plug a mapping in),
//! and never panics on bad bytes: damage is `Error::Corruption { file, offset, reason }`.

mod encoding;
mod postings;
mod reader;
mod symbols;
mod writer;

#[cfg(test)]
mod postings_tests;
#[cfg(test)]
mod tests;

pub use postings::{postings_for_matchers, PostingsSource};
pub use reader::{ByteSlice, IndexReader, SymbolCache};
pub use writer::IndexWriter;

/// The postings set type: series refs (offset / 16) as a compressed bitmap.
pub use roaring::RoaringBitmap;

/// Magic number at the start of every index file (big-endian).
pub const MAGIC_INDEX: u32 = 0xBAAA_D700;
/// The index format version we write and read.
pub const FORMAT_V2: u8 = 2;
/// Bytes of the header: magic (4) and version (1).
pub const HEADER_LEN: usize = 5;
/// Series entries start at multiples of this; a series ref is its offset divided by it.
pub const SERIES_ALIGNMENT: u64 = 16;
/// Label indices and postings lists start at multiples of this.
pub const POSTINGS_ALIGNMENT: u64 = 4;
/// Size of a CRC32 checksum.
pub const CRC_LEN: usize = 4;
/// Number of section offsets in the TOC.
pub const TOC_ENTRIES: usize = 6;
/// Bytes of the TOC at the end of the file: six big-endian u64 offsets and a CRC32.
pub const TOC_LEN: usize = TOC_ENTRIES * 8 + CRC_LEN;
/// Postings offset table entries hold a (name, value) key: the key count is always 2.
pub const POSTINGS_KEY_COUNT: u64 = 2;
/// Label offset table entries and label indices cover a single label name.
pub const LABEL_INDEX_NAME_COUNT: u64 = 1;
/// The reader keeps the offset of every n-th symbol and every n-th postings table entry.
pub const SAMPLE_INTERVAL: usize = 32;
/// Name and value of the postings list that holds every series.
pub const ALL_POSTINGS_KEY: (&str, &str) = ("", "");

/// One chunk of a series as the index records it: its time range and where it lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ChunkMeta {
    /// Timestamp of the first sample (ms).
    pub min_time: i64,
    /// Timestamp of the last sample (ms).
    pub max_time: i64,
    /// Reference of the chunk in the block's chunk segment files.
    pub chunk_ref: u64,
}

/// The table of contents: the start offset of each section (0 when absent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Toc {
    pub symbols: u64,
    pub series: u64,
    pub label_indices: u64,
    pub label_indices_table: u64,
    pub postings: u64,
    pub postings_table: u64,
}

impl Toc {
    /// The six offsets in file order.
    pub fn entries(&self) -> [u64; TOC_ENTRIES] {
        [
            self.symbols,
            self.series,
            self.label_indices,
            self.label_indices_table,
            self.postings,
            self.postings_table,
        ]
    }
}
