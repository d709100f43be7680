//! Reading records back: walks segments page by page, checks every fragment (type, flags,
//! sequence, page bounds, CRC32-C), reassembles and decompresses records. Owns the
//! definition of "damage": anything the writer could not have produced is reported as
//! `Error::Corruption` at the start of the first record it touches. Must never return
//! a record it has not fully verified, never skip damage and carry on, never let a record
//! span two segments, and never allocate according to unchecked lengths.

use std::fs::File;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::format::{
    crc, list_segments, FragmentType, HEADER_CRC_OFFSET, HEADER_LEN_OFFSET, HEADER_SIZE, PAGE_SIZE,
    SNAPPY_FLAG, UNKNOWN_FLAGS, ZSTD_FLAG,
};

/// A snappy block never decodes to more than this many times its compressed size (the
/// densest element, a 3-byte copy, yields 64 bytes); larger claims are damage, and the
/// bound keeps a damaged length from allocating gigabytes.
const MAX_SNAPPY_EXPANSION: usize = 22;
/// Name used as `dir` for in-memory segments.
const MEMORY_DIR: &str = "<memory>";

/// Where one segment's bytes come from.
enum Source {
    Path(PathBuf),
    Bytes(Vec<u8>),
}

/// How a failed reader fails again.
#[derive(Clone)]
enum Failure {
    Corruption {
        segment: u64,
        offset: u64,
        reason: String,
    },
    Unsupported {
        segment: u64,
        offset: u64,
        compression: &'static str,
    },
    Io(String),
}

/// The record being assembled.
#[derive(Clone, Copy)]
struct Partial {
    start: u64,
    flags: u8,
}

/// Reads records from a range of segments, in order. See [`Reader::next_record`].
pub struct Reader {
    dir: PathBuf,
    segments: Vec<(u64, Source)>,
    /// Position in `segments` of the next segment to open.
    next_segment: usize,
    current: Option<Box<dyn Read + Send>>,
    segment: u64,
    page: Vec<u8>,
    page_len: usize,
    page_pos: usize,
    /// Offset of `page` inside the current segment.
    page_start: u64,
    /// Offset just after the last record returned.
    offset: u64,
    raw: Vec<u8>,
    decoder: snap::raw::Decoder,
    failed: Option<Failure>,
}

impl Reader {
    /// Reads segments `first..=last` (all from `first` when `last` is `None`) of `dir`.
    /// Missing segments before the first present one are allowed (they were truncated);
    /// a gap inside the range is an error.
    pub fn open(dir: &Path, first: u64, last: Option<u64>) -> Result<Reader> {
        let mut segments = Vec::new();
        let mut prev: Option<u64> = None;
        for (index, path) in list_segments(dir)? {
            if index < first || last.is_some_and(|l| index > l) {
                continue;
            }
            if let Some(p) = prev {
                if index != p + 1 {
                    return Err(Error::NotSequential {
                        dir: dir.to_path_buf(),
                        prev: p,
                        next: index,
                    });
                }
            }
            prev = Some(index);
            segments.push((index, Source::Path(path)));
        }
        Ok(Reader::new(dir.to_path_buf(), segments))
    }

    /// Reads one segment held in memory (tests, fuzzing, tools). Errors name the
    /// directory `<memory>`.
    pub fn from_bytes(segment: u64, data: Vec<u8>) -> Reader {
        Reader::new(
            PathBuf::from(MEMORY_DIR),
            vec![(segment, Source::Bytes(data))],
        )
    }

    fn new(dir: PathBuf, segments: Vec<(u64, Source)>) -> Reader {
        let segment = segments.first().map_or(0, |(i, _)| *i);
        Reader {
            dir,
            segments,
            next_segment: 0,
            current: None,
            segment,
            page: vec![0; PAGE_SIZE],
            page_len: 0,
            page_pos: 0,
            page_start: 0,
            offset: 0,
            raw: Vec::new(),
            decoder: snap::raw::Decoder::new(),
            failed: None,
        }
    }

    /// Index of the segment the last record came from (or is being read).
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// Byte offset in [`Self::segment`] just after the last record returned.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the next record into `buf` (replacing its contents, decompressed).
    /// `Ok(false)` at a clean end of the last segment. Damage gives `Error::Corruption`
    /// with the segment and the offset where the damaged record starts; the error is
    /// sticky (later calls return it again).
    pub fn next_record(&mut self, buf: &mut Vec<u8>) -> Result<bool> {
        if let Some(f) = &self.failed {
            return Err(self.failure_error(f.clone()));
        }
        buf.clear();
        match self.read_record(buf) {
            Ok(more) => Ok(more),
            Err(Fail(failure)) => {
                buf.clear();
                self.failed = Some(failure.clone());
                Err(self.failure_error(failure))
            }
        }
    }

    fn failure_error(&self, f: Failure) -> Error {
        match f {
            Failure::Corruption {
                segment,
                offset,
                reason,
            } => Error::Corruption {
                dir: self.dir.clone(),
                segment,
                offset,
                reason,
            },
            Failure::Unsupported {
                segment,
                offset,
                compression,
            } => Error::UnsupportedCompression {
                dir: self.dir.clone(),
                segment,
                offset,
                compression,
            },
            Failure::Io(msg) => Error::io(
                format!("WAL reader in {}", self.dir.display()),
                std::io::Error::other(msg),
            ),
        }
    }

    fn corrupt(&self, offset: u64, reason: impl Into<String>) -> Fail {
        Fail(Failure::Corruption {
            segment: self.segment,
            offset,
            reason: reason.into(),
        })
    }

    fn read_record(&mut self, buf: &mut Vec<u8>) -> Result<bool, Fail> {
        self.raw.clear();
        let mut partial: Option<Partial> = None;
        loop {
            if self.page_pos >= self.page_len {
                if self.load_page()? {
                    continue;
                }
                // The current segment is exhausted.
                if let Some(p) = partial {
                    return Err(self.corrupt(
                        p.start,
                        "record torn at end of segment (its last fragment is missing)",
                    ));
                }
                if !self.open_next_segment()? {
                    return Ok(false);
                }
                continue;
            }
            let pos = self.page_pos;
            let frag_off = self.page_start + pos as u64;
            let damage_at = partial.map_or(frag_off, |p| p.start);
            let short_page = self.page_len < PAGE_SIZE;
            let type_byte = self.page[pos];
            if type_byte == 0 {
                if let Some(i) = self.page[pos..self.page_len].iter().position(|&b| b != 0) {
                    return Err(self.corrupt(
                        damage_at,
                        format!(
                            "non-zero byte at offset {} in page padding",
                            frag_off + i as u64
                        ),
                    ));
                }
                self.page_pos = self.page_len;
                continue;
            }
            let remaining = self.page_len - pos;
            if remaining < HEADER_SIZE {
                let why = if short_page {
                    "fragment header torn at end of segment"
                } else {
                    "fragment header crosses a page boundary"
                };
                return Err(self.corrupt(damage_at, why));
            }
            let flags = type_byte & !crate::format::TYPE_MASK;
            if flags & UNKNOWN_FLAGS != 0 || flags == SNAPPY_FLAG | ZSTD_FLAG {
                return Err(self.corrupt(
                    damage_at,
                    format!("invalid flags in fragment type byte {type_byte:#04x}"),
                ));
            }
            let Some(typ) = FragmentType::from_type_byte(type_byte) else {
                return Err(self.corrupt(
                    damage_at,
                    format!(
                        "invalid fragment type {}",
                        type_byte & crate::format::TYPE_MASK
                    ),
                ));
            };
            if typ == FragmentType::PageTerm {
                return Err(self.corrupt(
                    damage_at,
                    format!("padding byte with flags set ({type_byte:#04x})"),
                ));
            }
            let hdr = &self.page[pos..pos + HEADER_SIZE];
            let len =
                u16::from_be_bytes([hdr[HEADER_LEN_OFFSET], hdr[HEADER_LEN_OFFSET + 1]]) as usize;
            let want_crc = u32::from_be_bytes([
                hdr[HEADER_CRC_OFFSET],
                hdr[HEADER_CRC_OFFSET + 1],
                hdr[HEADER_CRC_OFFSET + 2],
                hdr[HEADER_CRC_OFFSET + 3],
            ]);
            match (typ, partial) {
                (FragmentType::Full | FragmentType::First, Some(_)) => {
                    return Err(self.corrupt(
                        damage_at,
                        format!(
                            "{} fragment at offset {frag_off} interrupts an unfinished record",
                            typ.name()
                        ),
                    ));
                }
                (FragmentType::Middle | FragmentType::Last, None) => {
                    return Err(self.corrupt(
                        damage_at,
                        format!("{} fragment without a first fragment", typ.name()),
                    ));
                }
                (_, Some(p)) if p.flags != flags => {
                    return Err(self.corrupt(
                        damage_at,
                        format!(
                            "fragment at offset {frag_off} changes compression flags mid-record"
                        ),
                    ));
                }
                _ => {}
            }
            if HEADER_SIZE + len > remaining {
                let why = if short_page {
                    format!("fragment of {len} bytes torn at end of segment")
                } else {
                    format!("fragment of {len} bytes at offset {frag_off} crosses a page boundary")
                };
                return Err(self.corrupt(damage_at, why));
            }
            let data = &self.page[pos + HEADER_SIZE..pos + HEADER_SIZE + len];
            let got_crc = crc(data);
            if got_crc != want_crc {
                return Err(self.corrupt(
                    damage_at,
                    format!(
                        "checksum mismatch in fragment at offset {frag_off}: stored {want_crc:#010x}, computed {got_crc:#010x}"
                    ),
                ));
            }
            if flags & ZSTD_FLAG != 0 {
                return Err(Fail(Failure::Unsupported {
                    segment: self.segment,
                    offset: damage_at,
                    compression: "zstd",
                }));
            }
            if flags & SNAPPY_FLAG != 0 {
                self.raw.extend_from_slice(data);
            } else {
                buf.extend_from_slice(data);
            }
            self.page_pos = pos + HEADER_SIZE + len;
            let start = partial.map_or(frag_off, |p| p.start);
            if matches!(typ, FragmentType::Full | FragmentType::Last) {
                if flags & SNAPPY_FLAG != 0 {
                    self.decompress(start, buf)?;
                }
                self.offset = self.page_start + self.page_pos as u64;
                return Ok(true);
            }
            partial = Some(Partial { start, flags });
        }
    }

    fn decompress(&mut self, start: u64, buf: &mut Vec<u8>) -> Result<(), Fail> {
        if self.raw.is_empty() {
            return Err(self.corrupt(start, "empty snappy-compressed record"));
        }
        let n = match snap::raw::decompress_len(&self.raw) {
            Ok(n) => n,
            Err(e) => return Err(self.corrupt(start, format!("snappy: {e}"))),
        };
        if n > self.raw.len().saturating_mul(MAX_SNAPPY_EXPANSION) {
            return Err(self.corrupt(
                start,
                format!(
                    "snappy length {n} is impossible for {} compressed bytes",
                    self.raw.len()
                ),
            ));
        }
        buf.resize(n, 0);
        match self.decoder.decompress(&self.raw, buf) {
            Ok(got) if got == n => Ok(()),
            Ok(got) => Err(self.corrupt(
                start,
                format!("snappy decoded {got} bytes, header said {n}"),
            )),
            Err(e) => Err(self.corrupt(start, format!("snappy: {e}"))),
        }
    }

    /// Reads the next page of the current segment. `Ok(false)` when the segment has no
    /// more bytes (or none is open). A short final page is kept short: bytes past the end
    /// of the file count as zero padding, like Prometheus' reader.
    fn load_page(&mut self) -> Result<bool, Fail> {
        let Some(src) = self.current.as_mut() else {
            return Ok(false);
        };
        let mut n = 0;
        while n < PAGE_SIZE {
            match src.read(&mut self.page[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(Fail(Failure::Io(format!(
                        "read segment {:08}: {e}",
                        self.segment
                    ))))
                }
            }
        }
        self.page_start += self.page_len as u64;
        self.page_len = n;
        self.page_pos = 0;
        if n == 0 {
            self.current = None;
            return Ok(false);
        }
        Ok(true)
    }

    /// Opens the next segment of the range; `Ok(false)` when there is none.
    fn open_next_segment(&mut self) -> Result<bool, Fail> {
        let Some((index, source)) = self.segments.get_mut(self.next_segment) else {
            return Ok(false);
        };
        let index = *index;
        let reader: Box<dyn Read + Send> = match source {
            Source::Bytes(data) => Box::new(Cursor::new(std::mem::take(data))),
            Source::Path(path) => {
                let f = File::open(&*path)
                    .ctx(|| format!("open WAL segment {}", path.display()))
                    .map_err(|e| Fail(Failure::Io(e.to_string())))?;
                Box::new(f)
            }
        };
        self.next_segment += 1;
        self.current = Some(reader);
        self.segment = index;
        self.page_start = 0;
        self.page_len = 0;
        self.page_pos = 0;
        self.offset = 0;
        Ok(true)
    }
}

/// Internal error carrier: what to report, without the directory.
struct Fail(Failure);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::format::put_fragment;

    fn read_all(data: Vec<u8>) -> (Vec<Vec<u8>>, Option<Error>) {
        let mut r = Reader::from_bytes(3, data);
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

    #[test]
    fn empty_and_zero_segments_are_clean() {
        assert_eq!(read_all(vec![]).0.len(), 0);
        let (recs, err) = read_all(vec![0; 3 * PAGE_SIZE + 5]);
        assert!(recs.is_empty());
        assert!(err.is_none());
    }

    #[test]
    fn split_record_reassembles() {
        let mut seg = Vec::new();
        put_fragment(&mut seg, FragmentType::First as u8, b"hello ");
        put_fragment(&mut seg, FragmentType::Middle as u8, b"big ");
        put_fragment(&mut seg, FragmentType::Last as u8, b"world");
        let (recs, err) = read_all(seg);
        assert!(err.is_none());
        assert_eq!(recs, vec![b"hello big world".to_vec()]);
    }

    #[test]
    fn missing_last_fragment_is_torn() {
        let mut seg = Vec::new();
        put_fragment(&mut seg, FragmentType::Full as u8, b"ok");
        put_fragment(&mut seg, FragmentType::First as u8, b"torn");
        let (recs, err) = read_all(seg);
        assert_eq!(recs, vec![b"ok".to_vec()]);
        match err {
            Some(Error::Corruption {
                segment, offset, ..
            }) => {
                assert_eq!(segment, 3);
                assert_eq!(offset, (HEADER_SIZE + 2) as u64);
            }
            other => panic!("want corruption, got {other:?}"),
        }
    }

    #[test]
    fn zstd_is_a_clear_error() {
        let mut seg = Vec::new();
        put_fragment(
            &mut seg,
            FragmentType::Full as u8 | ZSTD_FLAG,
            b"\x28\xb5\x2f\xfd",
        );
        let (_, err) = read_all(seg);
        assert!(matches!(
            err,
            Some(Error::UnsupportedCompression {
                compression: "zstd",
                ..
            })
        ));
    }

    #[test]
    fn errors_are_sticky() {
        let mut seg = Vec::new();
        put_fragment(&mut seg, FragmentType::Last as u8, b"x");
        let mut r = Reader::from_bytes(0, seg);
        let mut buf = Vec::new();
        assert!(r.next_record(&mut buf).is_err());
        assert!(r.next_record(&mut buf).is_err());
    }

    #[test]
    fn huge_snappy_length_claim_is_rejected_without_allocating() {
        let mut seg = Vec::new();
        // varint 0xffffffff: claims a 4 GiB record from 5 bytes.
        put_fragment(
            &mut seg,
            FragmentType::Full as u8 | SNAPPY_FLAG,
            &[0xff, 0xff, 0xff, 0xff, 0x0f],
        );
        let (_, err) = read_all(seg);
        assert!(matches!(err, Some(Error::Corruption { .. })));
    }
}
