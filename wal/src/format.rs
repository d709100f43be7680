//! The on-disk vocabulary of Prometheus' WAL (`tsdb/wlog`): page and header sizes, fragment
//! types, compression flags, segment and checkpoint names, and directory listing. See
//! `docs/format/wal.md`. Owns only constants and pure helpers; must never do writes.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

/// Segments are made of pages of this many bytes; a fragment never crosses a page.
pub const PAGE_SIZE: usize = 32 * 1024;
/// Bytes in a fragment header: type (1) + big-endian length (2) + big-endian CRC32-C (4).
pub const HEADER_SIZE: usize = 7;
/// Default size limit of one segment file (Prometheus' `DefaultSegmentSize`).
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 128 * 1024 * 1024;
/// Digits in a segment file name (`00000042`) and a checkpoint suffix.
pub const SEGMENT_NAME_DIGITS: usize = 8;
/// Most data bytes one fragment can carry (a fragment fills at most one whole page).
pub const MAX_FRAGMENT_DATA: usize = PAGE_SIZE - HEADER_SIZE;

/// Offset of the big-endian u16 length inside a fragment header.
pub(crate) const HEADER_LEN_OFFSET: usize = 1;
/// Offset of the big-endian u32 CRC32-C inside a fragment header.
pub(crate) const HEADER_CRC_OFFSET: usize = 3;

/// Low three bits of the type byte: the fragment type.
pub(crate) const TYPE_MASK: u8 = 0x07;
/// Type-byte flag: the record's bytes are snappy block-compressed.
pub(crate) const SNAPPY_FLAG: u8 = 0x08;
/// Type-byte flag: the record's bytes are zstd-compressed (newer Prometheus; unsupported).
pub(crate) const ZSTD_FLAG: u8 = 0x10;
/// Type-byte bits that no Prometheus version assigns.
pub(crate) const UNKNOWN_FLAGS: u8 = !(TYPE_MASK | SNAPPY_FLAG | ZSTD_FLAG);

/// Directory-name prefix of checkpoints: `checkpoint.00000012`.
pub(crate) const CHECKPOINT_PREFIX: &str = "checkpoint.";
/// Suffix of a checkpoint still being written.
pub(crate) const TMP_SUFFIX: &str = ".tmp";
/// Suffix of a segment being rewritten by repair.
pub(crate) const REPAIR_SUFFIX: &str = ".repair";

/// Fragment type: the low three bits of the header's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum FragmentType {
    /// The rest of the page is zero padding.
    PageTerm = 0,
    /// A whole record in one fragment.
    Full = 1,
    /// First fragment of a record split over pages.
    First = 2,
    /// Inner fragment of a split record.
    Middle = 3,
    /// Final fragment of a split record.
    Last = 4,
}

impl FragmentType {
    /// Decodes the low three bits of a type byte; `None` for the unused values 5..=7.
    pub(crate) fn from_type_byte(b: u8) -> Option<FragmentType> {
        match b & TYPE_MASK {
            0 => Some(FragmentType::PageTerm),
            1 => Some(FragmentType::Full),
            2 => Some(FragmentType::First),
            3 => Some(FragmentType::Middle),
            4 => Some(FragmentType::Last),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            FragmentType::PageTerm => "page-term",
            FragmentType::Full => "full",
            FragmentType::First => "first",
            FragmentType::Middle => "middle",
            FragmentType::Last => "last",
        }
    }
}

/// CRC32-Castagnoli of fragment data, as stored in the header.
pub(crate) fn crc(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Appends one fragment (header + data) to `out`. `data.len()` must be at most
/// [`MAX_FRAGMENT_DATA`]; the caller guarantees it.
pub(crate) fn put_fragment(out: &mut Vec<u8>, type_byte: u8, data: &[u8]) {
    debug_assert!(data.len() <= MAX_FRAGMENT_DATA);
    out.push(type_byte);
    // MAX_FRAGMENT_DATA < u16::MAX, so the length always fits.
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(&crc(data).to_be_bytes());
    out.extend_from_slice(data);
}

/// File name of segment `index`: eight zero-padded digits.
pub fn segment_name(index: u64) -> String {
    format!("{index:0width$}", width = SEGMENT_NAME_DIGITS)
}

/// Path of segment `index` in `dir`.
pub fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(segment_name(index))
}

/// Directory name of the checkpoint covering segments up to `index`.
pub(crate) fn checkpoint_name(index: u64) -> String {
    format!(
        "{CHECKPOINT_PREFIX}{index:0width$}",
        width = SEGMENT_NAME_DIGITS
    )
}

/// Parses a name made only of ASCII digits.
pub(crate) fn parse_index(name: &str) -> Option<u64> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// Segment files in `dir` (names made only of digits), sorted by index. Does not check
/// that they are sequential; [`crate::Reader::open`] does.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).ctx(|| format!("list WAL segments in {}", dir.display()))?;
    for entry in entries {
        let entry = entry.ctx(|| format!("list WAL segments in {}", dir.display()))?;
        let name = entry.file_name();
        let Some(index) = name.to_str().and_then(parse_index) else {
            continue;
        };
        let file_type = entry
            .file_type()
            .ctx(|| format!("stat {}", entry.path().display()))?;
        if file_type.is_file() {
            out.push((index, entry.path()));
        }
    }
    out.sort_by_key(|(index, _)| *index);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_eight_digits() {
        assert_eq!(segment_name(0), "00000000");
        assert_eq!(segment_name(42), "00000042");
        assert_eq!(checkpoint_name(7), "checkpoint.00000007");
        assert_eq!(parse_index("00000042"), Some(42));
        assert_eq!(parse_index("0000004x"), None);
        assert_eq!(parse_index(""), None);
        assert_eq!(parse_index("+1"), None);
    }

    #[test]
    fn fragment_types_decode_with_flags() {
        assert_eq!(FragmentType::from_type_byte(0x09), Some(FragmentType::Full));
        assert_eq!(FragmentType::from_type_byte(0x0c), Some(FragmentType::Last));
        assert_eq!(FragmentType::from_type_byte(0x05), None);
        assert_eq!(UNKNOWN_FLAGS, 0xe0);
    }
}
