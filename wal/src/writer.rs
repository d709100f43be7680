//! The single-threaded segment writer: turns records into fragments laid out in 32 KiB
//! pages exactly as Prometheus' `wlog` does (snappy only when it saves bytes; a record never
//! spans segments; a page with fewer than `HEADER_SIZE` bytes left is zero-padded; a
//! finished segment's last page is zero-padded), buffers whole pages, writes and fsyncs.
//! Used by [`crate::Wal`] (under its lock) and by checkpoints. Must never fsync on its own
//! schedule (callers decide), never write into an existing segment file, and never be used
//! again after an error (callers poison).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Error, IoContext, Result};
use crate::format::{
    put_fragment, segment_path, FragmentType, HEADER_SIZE, MAX_FRAGMENT_DATA, PAGE_SIZE,
    SNAPPY_FLAG,
};
use crate::fsutil::sync_dir;
use crate::stats::Counters;

/// Pending bytes are written out once the buffer holds this many (8 pages): large writes,
/// bounded memory.
const WRITE_BUFFER_BYTES: usize = 8 * PAGE_SIZE;

/// How many record bytes fit into a segment of `pages` pages (every page pays one header).
pub(crate) fn segment_capacity(pages: u64) -> u64 {
    pages * MAX_FRAGMENT_DATA as u64
}

/// Checks a segment size and returns its page count.
pub(crate) fn pages_per_segment(segment_size_bytes: u64) -> Result<u64> {
    let page = PAGE_SIZE as u64;
    if segment_size_bytes < page || segment_size_bytes % page != 0 {
        return Err(Error::InvalidArgument(format!(
            "segment size {segment_size_bytes} must be a positive multiple of the {PAGE_SIZE}-byte page size"
        )));
    }
    Ok(segment_size_bytes / page)
}

/// Writes records into numbered segment files of one directory.
pub(crate) struct SegmentWriter {
    dir: PathBuf,
    file: Option<File>,
    index: u64,
    /// Logical length of the current segment: bytes in the file plus bytes in `buf`.
    seg_len: u64,
    /// Bytes not yet handed to the file.
    buf: Vec<u8>,
    compress_buf: Vec<u8>,
    encoder: snap::raw::Encoder,
    pages_per_segment: u64,
    compress: bool,
    counters: Arc<Counters>,
    /// Test hook: the next write to the file fails.
    #[cfg(test)]
    fail_next_write: bool,
}

impl SegmentWriter {
    /// Creates segment `index` in `dir` (it must not exist) and fsyncs `dir`.
    pub(crate) fn create(
        dir: &Path,
        index: u64,
        segment_size_bytes: u64,
        compress: bool,
        counters: Arc<Counters>,
    ) -> Result<SegmentWriter> {
        let pages_per_segment = pages_per_segment(segment_size_bytes)?;
        let file = create_segment(dir, index)?;
        counters
            .current_segment
            .store(index, std::sync::atomic::Ordering::Relaxed);
        Ok(SegmentWriter {
            dir: dir.to_path_buf(),
            file: Some(file),
            index,
            seg_len: 0,
            buf: Vec::with_capacity(WRITE_BUFFER_BYTES + PAGE_SIZE),
            compress_buf: Vec::new(),
            encoder: snap::raw::Encoder::new(),
            pages_per_segment,
            compress,
            counters,
            #[cfg(test)]
            fail_next_write: false,
        })
    }

    /// Test hook: makes the next write fail.
    #[cfg(test)]
    pub(crate) fn inject_failure(&mut self) {
        self.fail_next_write = true;
    }

    /// Largest record (after compression) that fits into an empty segment.
    pub(crate) fn capacity(&self) -> u64 {
        segment_capacity(self.pages_per_segment)
    }

    /// Encodes one record into fragments; moves to a new segment first if the record
    /// does not fit into what is left of this one. Data may stay buffered: call
    /// [`Self::sync`] to make it durable.
    pub(crate) fn append(&mut self, rec: &[u8]) -> Result<()> {
        let mut compressed = false;
        if self.compress && !rec.is_empty() {
            let max = snap::raw::max_compress_len(rec.len());
            if max > 0 {
                if self.compress_buf.len() < max {
                    self.compress_buf.resize(max, 0);
                }
                let n = self
                    .encoder
                    .compress(rec, &mut self.compress_buf)
                    .map_err(|e| Error::InvalidArgument(format!("snappy compression: {e}")))?;
                compressed = n < rec.len();
                if compressed {
                    self.compress_buf.truncate(n);
                }
            }
        }
        let enc_len = if compressed {
            self.compress_buf.len()
        } else {
            rec.len()
        };
        if enc_len as u64 > self.capacity() {
            return Err(Error::RecordTooLarge(rec.len()));
        }
        if enc_len as i64 > self.space_left() {
            self.rotate()?;
        }
        let flag = if compressed { SNAPPY_FLAG } else { 0 };
        // Take the buffer out so that `self` can be borrowed mutably while fragmenting.
        let enc = if compressed {
            std::mem::take(&mut self.compress_buf)
        } else {
            Vec::new()
        };
        let data: &[u8] = if compressed { &enc } else { rec };
        let result = self.put_record(data, flag);
        if compressed {
            self.compress_buf = enc;
        }
        result
    }

    /// Record bytes that still fit in this segment (Prometheus' rule: what is left of the
    /// current page after one header, plus every untouched page after one header each).
    /// Negative when the current page cannot even hold a header.
    fn space_left(&self) -> i64 {
        let page_left = (PAGE_SIZE - self.page_offset()) as i64;
        let done_pages = (self.seg_len / PAGE_SIZE as u64) as i64;
        let free_pages = self.pages_per_segment as i64 - done_pages - 1;
        page_left - HEADER_SIZE as i64 + MAX_FRAGMENT_DATA as i64 * free_pages
    }

    fn page_offset(&self) -> usize {
        (self.seg_len % PAGE_SIZE as u64) as usize
    }

    fn put_record(&mut self, mut data: &[u8], flag: u8) -> Result<()> {
        let mut first = true;
        // One pass even for an empty record, so that it is written as an empty Full.
        while first || !data.is_empty() {
            let room = PAGE_SIZE - self.page_offset() - HEADER_SIZE;
            let n = data.len().min(room);
            let last = n == data.len();
            let typ = match (first, last) {
                (true, true) => FragmentType::Full,
                (true, false) => FragmentType::First,
                (false, true) => FragmentType::Last,
                (false, false) => FragmentType::Middle,
            };
            put_fragment(&mut self.buf, typ as u8 | flag, &data[..n]);
            self.seg_len += (HEADER_SIZE + n) as u64;
            data = &data[n..];
            first = false;
            if PAGE_SIZE - self.page_offset() < HEADER_SIZE {
                self.pad_page();
            } else if self.page_offset() == 0 {
                Counters::add(&self.counters.page_completions, 1);
            }
            if self.buf.len() >= WRITE_BUFFER_BYTES {
                self.write_out()?;
            }
        }
        Ok(())
    }

    /// Zero-fills the rest of the current page (no-op at a page boundary).
    fn pad_page(&mut self) {
        let off = self.page_offset();
        if off == 0 {
            return;
        }
        let pad = PAGE_SIZE - off;
        self.buf.resize(self.buf.len() + pad, 0);
        self.seg_len += pad as u64;
        Counters::add(&self.counters.page_completions, 1);
    }

    /// Hands buffered bytes to the file (one write call).
    fn write_out(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_write) {
            return Err(Error::io(
                "write WAL segment (injected failure)",
                std::io::Error::other("injected write failure"),
            ));
        }
        let file = self.file.as_mut().ok_or(Error::Closed)?;
        file.write_all(&self.buf).ctx(|| {
            format!(
                "write WAL segment {}",
                segment_path(&self.dir, self.index).display()
            )
        })?;
        Counters::add(&self.counters.page_flushes, 1);
        Counters::add(&self.counters.bytes_written, self.buf.len() as u64);
        self.buf.clear();
        Ok(())
    }

    /// Hands everything buffered to the file without an fsync.
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.write_out()
    }

    /// Writes everything buffered and fsyncs the segment.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.write_out()?;
        let file = self.file.as_mut().ok_or(Error::Closed)?;
        let start = Instant::now();
        let res = file.sync_data();
        self.counters.observe_fsync(start.elapsed());
        res.ctx(|| {
            format!(
                "fsync WAL segment {}",
                segment_path(&self.dir, self.index).display()
            )
        })
    }

    /// Finishes the current segment (pads its last page, writes, fsyncs, closes) and
    /// starts the next one. Returns the new segment's index.
    pub(crate) fn rotate(&mut self) -> Result<u64> {
        self.finish()?;
        let next = self.index + 1;
        self.file = Some(create_segment(&self.dir, next)?);
        self.index = next;
        self.seg_len = 0;
        self.counters
            .current_segment
            .store(next, std::sync::atomic::Ordering::Relaxed);
        Ok(next)
    }

    /// Pads the last page if it holds data, writes, fsyncs and closes the segment.
    pub(crate) fn finish(&mut self) -> Result<()> {
        self.pad_page();
        self.sync()?;
        self.file = None;
        Ok(())
    }
}

/// Creates a new, empty segment file and makes its directory entry durable.
fn create_segment(dir: &Path, index: u64) -> Result<File> {
    let path = segment_path(dir, index);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .ctx(|| format!("create WAL segment {}", path.display()))?;
    sync_dir(dir)?;
    Ok(file)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! Golden bytes, derived by hand from Prometheus' format (tsdb/wlog) and checked with an
    //! independent CRC32-C implementation: crc32c("hello") = 0x9a71bb4c; crc32c of the
    //! 9-byte snappy block below = 0xf831b5d9; crc32c("") = 0.
    use super::*;

    fn write(compress: bool, segment_size: u64, records: &[&[u8]]) -> Vec<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(
            dir.path(),
            0,
            segment_size,
            compress,
            Arc::new(Counters::default()),
        )
        .unwrap();
        for r in records {
            w.append(r).unwrap();
        }
        w.finish().unwrap();
        crate::format::list_segments(dir.path())
            .unwrap()
            .into_iter()
            .map(|(_, p)| std::fs::read(p).unwrap())
            .collect()
    }

    fn page_with(prefix: &[u8]) -> Vec<u8> {
        let mut page = prefix.to_vec();
        page.resize(PAGE_SIZE, 0);
        page
    }

    const HELLO_FULL: [u8; 12] = [
        0x01, 0x00, 0x05, 0x9a, 0x71, 0xbb, 0x4c, b'h', b'e', b'l', b'l', b'o',
    ];

    #[test]
    fn golden_uncompressed_record() {
        let segs = write(false, DEFAULT_SEG, &[b"hello"]);
        assert_eq!(segs, vec![page_with(&HELLO_FULL)]);
    }

    #[test]
    fn golden_small_record_stays_uncompressed_with_snappy_on() {
        // snappy("hello") is 7 bytes (varint + literal tag + 5), not smaller: stored raw.
        let segs = write(true, DEFAULT_SEG, &[b"hello"]);
        assert_eq!(segs, vec![page_with(&HELLO_FULL)]);
    }

    #[test]
    fn golden_snappy_record() {
        // 100 x 'a' -> snappy block (as golang/snappy emits it): varint(100)=0x64,
        // literal 'a' (tag 0x00), copy2 len 64 off 1 (0xfe 01 00), copy2 len 35 off 1
        // (0x8a 01 00). Type byte = full | snappy flag = 0x09.
        let rec = [b'a'; 100];
        let segs = write(true, DEFAULT_SEG, &[&rec]);
        let want = [
            0x09, 0x00, 0x09, 0xf8, 0x31, 0xb5, 0xd9, 0x64, 0x00, 0x61, 0xfe, 0x01, 0x00, 0x8a,
            0x01, 0x00,
        ];
        assert_eq!(segs, vec![page_with(&want)]);
    }

    #[test]
    fn golden_empty_record() {
        let segs = write(false, DEFAULT_SEG, &[b""]);
        assert_eq!(segs, vec![page_with(&[0x01, 0, 0, 0, 0, 0, 0])]);
    }

    #[test]
    fn record_split_across_pages() {
        let rec: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let segs = write(false, DEFAULT_SEG, &[&rec]);
        let seg = &segs[0];
        assert_eq!(seg.len(), 2 * PAGE_SIZE);
        let first = MAX_FRAGMENT_DATA;
        assert_eq!(seg[0], 0x02);
        assert_eq!(&seg[1..3], &(first as u16).to_be_bytes());
        assert_eq!(&seg[3..7], &crc32c::crc32c(&rec[..first]).to_be_bytes());
        assert_eq!(&seg[7..PAGE_SIZE], &rec[..first]);
        let rest = rec.len() - first;
        let p2 = &seg[PAGE_SIZE..];
        assert_eq!(p2[0], 0x04);
        assert_eq!(&p2[1..3], &(rest as u16).to_be_bytes());
        assert_eq!(&p2[3..7], &crc32c::crc32c(&rec[first..]).to_be_bytes());
        assert_eq!(&p2[7..7 + rest], &rec[first..]);
        assert!(p2[7 + rest..].iter().all(|&b| b == 0));
    }

    #[test]
    fn page_with_less_than_a_header_left_is_padded() {
        // First record leaves 6 bytes in the page: they become padding, and the next
        // record starts on the next page.
        let a = vec![7u8; PAGE_SIZE - HEADER_SIZE - 6];
        let segs = write(false, DEFAULT_SEG, &[&a, b"hello"]);
        let seg = &segs[0];
        assert_eq!(seg.len(), 2 * PAGE_SIZE);
        assert!(seg[PAGE_SIZE - 6..PAGE_SIZE].iter().all(|&b| b == 0));
        assert_eq!(&seg[PAGE_SIZE..PAGE_SIZE + 12], &HELLO_FULL);
    }

    #[test]
    fn page_with_exactly_a_header_left_gets_an_empty_first_fragment() {
        // Prometheus pads only when fewer than 7 bytes remain; with exactly 7 it writes a
        // First fragment carrying zero bytes and continues on the next page.
        let a = vec![7u8; PAGE_SIZE - HEADER_SIZE - 7];
        let segs = write(false, DEFAULT_SEG, &[&a, b"hello"]);
        let seg = &segs[0];
        let off = PAGE_SIZE - 7;
        assert_eq!(&seg[off..PAGE_SIZE], &[0x02, 0, 0, 0, 0, 0, 0]);
        let p2 = &seg[PAGE_SIZE..];
        assert_eq!(&p2[..3], &[0x04, 0x00, 0x05]);
        assert_eq!(&p2[7..12], b"hello");
    }

    #[test]
    fn record_that_does_not_fit_moves_to_next_segment() {
        // Two pages per segment hold 2 * 32761 record bytes. 40000 fits into an empty
        // segment; a second one does not fit what is left and must start segment 1.
        let rec = vec![1u8; 40_000];
        let segs = write(false, 2 * PAGE_SIZE as u64, &[&rec, &rec]);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0].len(), 2 * PAGE_SIZE);
        assert_eq!(segs[1].len(), 2 * PAGE_SIZE);
        assert_eq!(segs[1][0], 0x02);
    }

    #[test]
    fn rotation_uses_compressed_size() {
        // 60000 zero bytes compress to a few KiB, so both fit in one 2-page segment.
        let rec = vec![0u8; 60_000];
        let segs = write(true, 2 * PAGE_SIZE as u64, &[&rec, &rec]);
        assert_eq!(segs.len(), 1);
    }

    #[test]
    fn too_large_record_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(
            dir.path(),
            0,
            PAGE_SIZE as u64,
            false,
            Arc::new(Counters::default()),
        )
        .unwrap();
        let rec = vec![1u8; MAX_FRAGMENT_DATA + 1];
        assert!(matches!(w.append(&rec), Err(Error::RecordTooLarge(_))));
        w.append(&rec[..MAX_FRAGMENT_DATA]).unwrap();
    }

    #[test]
    fn segment_size_must_be_whole_pages() {
        assert!(pages_per_segment(0).is_err());
        assert!(pages_per_segment(PAGE_SIZE as u64 + 1).is_err());
        assert_eq!(pages_per_segment(DEFAULT_SEG).unwrap(), 4096);
    }

    const DEFAULT_SEG: u64 = crate::format::DEFAULT_SEGMENT_SIZE_BYTES;
}
