//! Block chunk segment files (`<block>/chunks/000001`…): the writer that frames chunks as
//! `len uvarint | encoding | data | CRC32C(encoding, data)` and rotates files at the segment
//! size, and the reader that serves chunks by reference from memory-mapped segments.
//!
//! This module owns the segment framing only. It must never modify a segment once written
//! (blocks are immutable), never let a chunk span two files, and never panic or read out of
//! bounds on a bad reference or damaged file: those are `Corruption` errors naming the file
//! and offset.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{
    check_header, file_header, put_uvarint, read_len_uvarint, segment_file, sequence_files,
    ChunkRef, CHUNKS_FORMAT_V1, CHUNK_ENCODING_SIZE, CRC_SIZE, DEFAULT_CHUNK_SEGMENT_SIZE,
    MAGIC_CHUNKS, MAX_CHUNK_LENGTH_FIELD_SIZE, SEGMENT_HEADER_SIZE,
};
use crate::chunkenc::Encoding;
use crate::{fs, Error, Result};

/// Write buffer per open segment.
const WRITE_BUFFER_SIZE: usize = 1024 * 1024;

/// The segment being written.
#[derive(Debug)]
struct OpenSegment {
    w: BufWriter<File>,
    path: PathBuf,
    /// 0-based position of this file among the block's segments (the ref's upper half).
    index: u32,
    /// Bytes written so far, header included.
    len: u64,
}

/// Writes chunks into numbered segment files of a new block's `chunks/` directory.
#[derive(Debug)]
pub struct ChunkWriter {
    dir: PathBuf,
    segment_size: u64,
    cur: Option<OpenSegment>,
    /// Segments cut so far.
    segments: u32,
    scratch: Vec<u8>,
}

impl ChunkWriter {
    /// A writer into `dir` (created if missing; must hold no segment files yet) with the
    /// default 512 MiB segment size.
    pub fn new(dir: &Path) -> Result<Self> {
        Self::with_segment_size(dir, DEFAULT_CHUNK_SEGMENT_SIZE)
    }

    /// A writer with a custom maximum segment size (a chunk larger than that still gets a
    /// segment of its own; chunks never span files).
    pub fn with_segment_size(dir: &Path, segment_size: u64) -> Result<Self> {
        fs::create_dir_all_durable(dir)?;
        if let Some((_, p)) = sequence_files(dir)?.first() {
            return Err(Error::Other(format!(
                "chunk directory {} already holds segment {}",
                dir.display(),
                p.display()
            )));
        }
        Ok(ChunkWriter {
            dir: dir.to_path_buf(),
            segment_size,
            cur: None,
            segments: 0,
            scratch: Vec::with_capacity(MAX_CHUNK_LENGTH_FIELD_SIZE + CHUNK_ENCODING_SIZE),
        })
    }

    /// Writes one chunk and returns its reference.
    pub fn write_chunk(&mut self, encoding: Encoding, data: &[u8]) -> Result<u64> {
        let data_len = u32::try_from(data.len())
            .map_err(|_| Error::Other(format!("chunk of {} bytes is too large", data.len())))?;
        // Like Prometheus, count the length field at its maximum size when deciding to cut.
        let max_size =
            (MAX_CHUNK_LENGTH_FIELD_SIZE + CHUNK_ENCODING_SIZE + data.len() + CRC_SIZE) as u64;
        let must_cut = match &self.cur {
            None => true,
            Some(s) => s.len > SEGMENT_HEADER_SIZE as u64 && s.len + max_size > self.segment_size,
        };
        if must_cut {
            self.cut()?;
        }
        let Some(seg) = self.cur.as_mut() else {
            return Err(Error::Other("no open chunk segment after cut".into()));
        };
        let offset = u32::try_from(seg.len).map_err(|_| {
            Error::Other(format!(
                "offset {} in {} does not fit a chunk reference",
                seg.len,
                seg.path.display()
            ))
        })?;
        self.scratch.clear();
        put_uvarint(&mut self.scratch, u64::from(data_len));
        self.scratch.push(encoding.as_u8());
        let mut crc = crc32c::crc32c(&[encoding.as_u8()]);
        crc = crc32c::crc32c_append(crc, data);
        let ctx = |e| Error::io(format!("write chunk to {}", seg.path.display()), e);
        seg.w.write_all(&self.scratch).map_err(ctx)?;
        seg.w.write_all(data).map_err(ctx)?;
        seg.w.write_all(&crc.to_be_bytes()).map_err(ctx)?;
        seg.len += (self.scratch.len() + data.len() + CRC_SIZE) as u64;
        Ok(ChunkRef::new(seg.index, offset).0)
    }

    /// Flushes and fsyncs the current segment and starts the next one.
    fn cut(&mut self) -> Result<()> {
        self.finish_current()?;
        let index = self.segments;
        let path = segment_file(&self.dir, u64::from(index) + 1);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(format!("create {}", path.display()), e))?;
        let mut w = BufWriter::with_capacity(WRITE_BUFFER_SIZE, file);
        w.write_all(&file_header(MAGIC_CHUNKS, CHUNKS_FORMAT_V1))
            .map_err(|e| Error::io(format!("write header of {}", path.display()), e))?;
        self.segments += 1;
        self.cur = Some(OpenSegment {
            w,
            path,
            index,
            len: SEGMENT_HEADER_SIZE as u64,
        });
        Ok(())
    }

    fn finish_current(&mut self) -> Result<()> {
        if let Some(mut s) = self.cur.take() {
            s.w.flush()
                .map_err(|e| Error::io(format!("flush {}", s.path.display()), e))?;
            s.w.get_ref()
                .sync_all()
                .map_err(|e| Error::io(format!("fsync {}", s.path.display()), e))?;
        }
        Ok(())
    }

    /// Flushes and fsyncs every segment and the directory.
    pub fn close(mut self) -> Result<()> {
        self.finish_current()?;
        fs::fsync_dir(&self.dir)
    }

    /// Number of segment files created so far.
    pub fn num_segments(&self) -> u32 {
        self.segments
    }
}

/// Serves chunks of a block from its memory-mapped segment files. `Send + Sync`.
#[derive(Debug)]
pub struct ChunkReader {
    dir: PathBuf,
    segments: Vec<fs::Mmap>,
    size: u64,
}

impl ChunkReader {
    /// Maps every segment in `dir` and checks the headers.
    pub fn open(dir: &Path) -> Result<Self> {
        let mut segments = Vec::new();
        let mut size = 0u64;
        for (_, path) in sequence_files(dir)? {
            let m = fs::Mmap::open(&path)?;
            check_header(&m, MAGIC_CHUNKS, CHUNKS_FORMAT_V1)
                .map_err(|(off, reason)| Error::corruption(&path, off, reason))?;
            size += m.len() as u64;
            segments.push(m);
        }
        Ok(ChunkReader {
            dir: dir.to_path_buf(),
            segments,
            size,
        })
    }

    /// The encoding and data of the chunk at `r`, borrowed from the map. Bad references,
    /// lengths and checksums are `Corruption` errors with the file and offset.
    pub fn chunk(&self, r: u64) -> Result<(Encoding, &[u8])> {
        let cr = ChunkRef(r);
        let off = cr.offset() as usize;
        let Some(seg) = self.segments.get(cr.seq() as usize) else {
            return Err(Error::corruption(
                &self.dir,
                u64::from(cr.offset()),
                format!(
                    "chunk ref {r:#x}: segment index {} out of range ({} segments)",
                    cr.seq(),
                    self.segments.len()
                ),
            ));
        };
        let b = seg.as_slice();
        let corrupt = |at: usize, reason: String| Error::corruption(seg.path(), at as u64, reason);
        if off < SEGMENT_HEADER_SIZE || off >= b.len() {
            return Err(corrupt(
                off,
                format!(
                    "chunk ref {r:#x}: offset {off} outside segment of {} bytes",
                    b.len()
                ),
            ));
        }
        let (data_len, n) = read_len_uvarint(&b[off..])
            .ok_or_else(|| corrupt(off, "unreadable chunk length".to_string()))?;
        let enc_at = off + n;
        let data_start = enc_at + CHUNK_ENCODING_SIZE;
        let data_end = usize::try_from(data_len)
            .ok()
            .and_then(|l| data_start.checked_add(l))
            .filter(|&e| e.checked_add(CRC_SIZE).is_some_and(|c| c <= b.len()))
            .ok_or_else(|| {
                corrupt(
                    off,
                    format!(
                        "chunk of {data_len} bytes extends past the end of the segment ({} bytes)",
                        b.len()
                    ),
                )
            })?;
        let stored = super::be_u32(b, data_end)
            .ok_or_else(|| corrupt(data_end, "missing checksum".to_string()))?;
        let computed = crc32c::crc32c(&b[enc_at..data_end]);
        if stored != computed {
            return Err(corrupt(
                off,
                format!("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"),
            ));
        }
        let enc = Encoding::try_from(b[enc_at])
            .map_err(|_| corrupt(enc_at, format!("unknown chunk encoding {}", b[enc_at])))?;
        Ok((enc, &b[data_start..data_end]))
    }

    /// Total bytes of all segments.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of segment files.
    pub fn num_segments(&self) -> usize {
        self.segments.len()
    }
}

#[cfg(test)]
#[path = "segment_tests.rs"]
mod tests;
