//! Head chunk files (`chunks_head/000001`…): full chunks the head moves out of memory. Each
//! record is `series ref (8) | mint (8) | maxt (8) | encoding (1) | len uvarint | data |
//! CRC32C` with the checksum over everything before it. The writer appends to the newest file
//! and rotates at 128 MiB; the reader serves chunks by reference from memory maps of finished
//! files and of the file being written; `iterate_head_chunks` replays every intact chunk after
//! a restart and cuts a torn tail off the last file.
//!
//! This module owns head chunk file framing and file rotation. It must never interpret chunk
//! data beyond the 2-byte sample count, never expose bytes not yet written, never append to a
//! file from an earlier run, and never treat a torn tail of the last file as fatal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use super::{
    be_u32, be_u64, check_header, file_header, put_uvarint, read_len_uvarint, segment_file,
    sequence_files, ChunkRef, CHUNK_ENCODING_SIZE, CRC_SIZE, HEAD_CHUNKS_FORMAT_V1,
    MAGIC_HEAD_CHUNKS, MAX_CHUNK_LENGTH_FIELD_SIZE, MAX_HEAD_CHUNK_FILE_SIZE, SEGMENT_HEADER_SIZE,
};
use crate::chunkenc::Encoding;
use crate::{fs, Error, Result};

/// Top bit of the encoding byte: Prometheus marks out-of-order head chunks with it.
pub const OUT_OF_ORDER_MASK: u8 = 0b1000_0000;
/// Size of the series reference field.
pub const SERIES_REF_SIZE: usize = 8;
/// Size of each of the mint and maxt fields.
pub const MINT_MAXT_SIZE: usize = 8;
/// Bytes before the length field: series ref, mint, maxt, encoding.
const RECORD_FIXED_SIZE: usize = SERIES_REF_SIZE + 2 * MINT_MAXT_SIZE + CHUNK_ENCODING_SIZE;
/// Offset of the encoding byte in a record.
const ENCODING_OFFSET: usize = SERIES_REF_SIZE + 2 * MINT_MAXT_SIZE;
/// Largest record overhead besides the data.
pub const MAX_HEAD_CHUNK_META_SIZE: usize =
    RECORD_FIXED_SIZE + MAX_CHUNK_LENGTH_FIELD_SIZE + CRC_SIZE;
/// Bytes of the sample count at the start of chunk data.
const NUM_SAMPLES_SIZE: usize = 2;

/// One chunk found by [`iterate_head_chunks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadChunkInfo {
    /// The series the chunk belongs to.
    pub series_ref: u64,
    /// Head chunk reference: file number << 32 | offset of the record.
    pub chunk_ref: u64,
    /// First sample timestamp (ms).
    pub mint: i64,
    /// Last sample timestamp (ms).
    pub maxt: i64,
    /// Chunk encoding (out-of-order bit removed).
    pub encoding: Encoding,
    /// The out-of-order bit was set on the encoding byte.
    pub out_of_order: bool,
    /// Sample count from the first two bytes of the chunk data (0 if shorter).
    pub num_samples: u16,
}

/// A decoded, checksum-verified record.
struct Record {
    series_ref: u64,
    mint: i64,
    maxt: i64,
    encoding: Encoding,
    out_of_order: bool,
    data_start: usize,
    data_end: usize,
    /// Offset just after the checksum.
    end: usize,
}

enum Parsed {
    Record(Record),
    /// Only zero bytes from here on (a preallocated tail): no more chunks.
    End,
}

/// Parses and verifies the record at `off`; on damage returns the reason.
fn parse_record(b: &[u8], off: usize) -> std::result::Result<Parsed, String> {
    let rest = b.get(off..).unwrap_or(&[]);
    let all_zero = || rest.iter().all(|&x| x == 0);
    if rest.len() < RECORD_FIXED_SIZE {
        if all_zero() {
            return Ok(Parsed::End);
        }
        return Err(format!(
            "{} bytes left, too few for a chunk header",
            rest.len()
        ));
    }
    let series_ref = be_u64(rest, 0).unwrap_or(0);
    let mint = be_u64(rest, SERIES_REF_SIZE).unwrap_or(0) as i64;
    let maxt = be_u64(rest, SERIES_REF_SIZE + MINT_MAXT_SIZE).unwrap_or(0) as i64;
    if series_ref == 0 && mint == 0 && maxt == 0 && all_zero() {
        return Ok(Parsed::End);
    }
    let enc_byte = rest[ENCODING_OFFSET];
    let (data_len, n) = read_len_uvarint(&rest[RECORD_FIXED_SIZE..])
        .ok_or_else(|| "unreadable chunk length".to_string())?;
    let data_start = off + RECORD_FIXED_SIZE + n;
    let data_end = usize::try_from(data_len)
        .ok()
        .and_then(|l| data_start.checked_add(l))
        .filter(|&e| e.checked_add(CRC_SIZE).is_some_and(|c| c <= b.len()))
        .ok_or_else(|| {
            format!(
                "chunk of {data_len} bytes extends past the end of the file ({} bytes)",
                b.len()
            )
        })?;
    let stored = be_u32(b, data_end).ok_or_else(|| "missing checksum".to_string())?;
    let computed = crc32c::crc32c(&b[off..data_end]);
    if stored != computed {
        return Err(format!(
            "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    let encoding = Encoding::try_from(enc_byte & !OUT_OF_ORDER_MASK)
        .map_err(|_| format!("unknown chunk encoding {enc_byte:#04x}"))?;
    Ok(Parsed::Record(Record {
        series_ref,
        mint,
        maxt,
        encoding,
        out_of_order: enc_byte & OUT_OF_ORDER_MASK != 0,
        data_start,
        data_end,
        end: data_end + CRC_SIZE,
    }))
}

fn num_samples_of(data: &[u8]) -> u16 {
    match data.get(..NUM_SAMPLES_SIZE) {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
        _ => 0,
    }
}

fn make_ref(seq: u64, offset: usize, path: &Path) -> Result<u64> {
    let seq = u32::try_from(seq).map_err(|_| {
        Error::corruption(
            path,
            0,
            format!("file number {seq} does not fit a chunk reference"),
        )
    })?;
    let offset = u32::try_from(offset).map_err(|_| {
        Error::corruption(path, offset as u64, "offset does not fit a chunk reference")
    })?;
    Ok(ChunkRef::new(seq, offset).0)
}

/// Bytes of one head chunk file: finished files from an earlier run are plain maps, files
/// written by this process are growing maps.
#[derive(Debug)]
enum FileBytes {
    Mapped(fs::Mmap),
    Growing(Arc<fs::GrowingMap>),
}

impl FileBytes {
    fn bytes(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m.as_slice(),
            FileBytes::Growing(g) => g.bytes(),
        }
    }

    fn path(&self) -> &Path {
        match self {
            FileBytes::Mapped(m) => m.path(),
            FileBytes::Growing(g) => g.path(),
        }
    }
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    files: RwLock<BTreeMap<u64, Arc<FileBytes>>>,
}

/// A chunk read from a head chunk file. Holds its file's map alive, so it stays readable even
/// after the file is truncated away by [`HeadChunkWriter::truncate_below`].
#[derive(Debug, Clone)]
pub struct HeadChunk {
    /// The series the chunk belongs to.
    pub series_ref: u64,
    /// First sample timestamp (ms).
    pub mint: i64,
    /// Last sample timestamp (ms).
    pub maxt: i64,
    /// Chunk encoding (out-of-order bit removed).
    pub encoding: Encoding,
    /// The out-of-order bit was set.
    pub out_of_order: bool,
    file: Arc<FileBytes>,
    start: usize,
    end: usize,
}

impl HeadChunk {
    /// The chunk data (e.g. XOR chunk bytes), borrowed from the map.
    pub fn data(&self) -> &[u8] {
        self.file.bytes().get(self.start..self.end).unwrap_or(&[])
    }
}

/// Reads head chunks by reference. Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct HeadChunkReader {
    shared: Arc<Shared>,
}

impl HeadChunkReader {
    /// The chunk at head chunk reference `r`, checksum-verified.
    pub fn chunk(&self, r: u64) -> Result<HeadChunk> {
        let cr = ChunkRef(r);
        let seq = u64::from(cr.seq());
        let off = cr.offset() as usize;
        let file = self.shared.files.read().get(&seq).cloned();
        let Some(file) = file else {
            return Err(Error::corruption(
                segment_file(&self.shared.dir, seq),
                off as u64,
                format!("head chunk ref {r:#x}: file {seq} does not exist"),
            ));
        };
        let corrupt = |reason: String| Error::corruption(file.path(), off as u64, reason);
        if off < SEGMENT_HEADER_SIZE {
            return Err(corrupt(format!(
                "head chunk ref {r:#x}: offset inside the file header"
            )));
        }
        match parse_record(file.bytes(), off) {
            Ok(Parsed::Record(rec)) => Ok(HeadChunk {
                series_ref: rec.series_ref,
                mint: rec.mint,
                maxt: rec.maxt,
                encoding: rec.encoding,
                out_of_order: rec.out_of_order,
                start: rec.data_start,
                end: rec.data_end,
                file,
            }),
            Ok(Parsed::End) => Err(corrupt(format!("head chunk ref {r:#x}: no chunk there"))),
            Err(reason) => Err(corrupt(format!("head chunk ref {r:#x}: {reason}"))),
        }
    }
}

/// Writes full head chunks to `chunks_head/`. Methods take `&mut self`; share it behind a
/// `Mutex` if several threads write. Readers come from [`HeadChunkWriter::reader`].
#[derive(Debug)]
pub struct HeadChunkWriter {
    shared: Arc<Shared>,
    cur: Option<(u64, fs::AppendFile)>,
    next_seq: u64,
    max_file_size: u64,
    buf: Vec<u8>,
}

impl HeadChunkWriter {
    /// Opens `dir` (created if missing): maps the existing files for reading and writes new
    /// chunks to a new file after the last one. Run [`iterate_head_chunks`] first to repair a
    /// torn tail.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::with_max_file_size(dir, MAX_HEAD_CHUNK_FILE_SIZE)
    }

    /// Like [`HeadChunkWriter::open`] with a custom rotation size.
    pub fn with_max_file_size(dir: &Path, max_file_size: u64) -> Result<Self> {
        if max_file_size <= (SEGMENT_HEADER_SIZE + MAX_HEAD_CHUNK_META_SIZE) as u64 {
            return Err(Error::Other(format!(
                "head chunk file size {max_file_size} too small"
            )));
        }
        fs::create_dir_all_durable(dir)?;
        let mut files = sequence_files(dir)?;
        // A crash right after creating a file can leave it without its header; such a last
        // file holds no chunks and is removed (Prometheus does the same for empty files).
        if let Some((_, p)) = files.last() {
            let len = std::fs::metadata(p)
                .map_err(|e| Error::io(format!("stat {}", p.display()), e))?
                .len();
            if len < SEGMENT_HEADER_SIZE as u64 {
                tracing::warn!(file = %p.display(), len, "removing head chunk file without header");
                fs::remove_file_durable(p)?;
                files.pop();
            }
        }
        let mut map = BTreeMap::new();
        let mut prev: Option<u64> = None;
        for (seq, path) in &files {
            if let Some(p) = prev {
                if *seq != p + 1 {
                    return Err(Error::corruption(
                        path,
                        0,
                        format!("head chunk files are not sequential: {p} then {seq}"),
                    ));
                }
            }
            prev = Some(*seq);
            let m = fs::Mmap::open(path)?;
            check_header(&m, MAGIC_HEAD_CHUNKS, HEAD_CHUNKS_FORMAT_V1)
                .map_err(|(off, reason)| Error::corruption(path, off, reason))?;
            map.insert(*seq, Arc::new(FileBytes::Mapped(m)));
        }
        Ok(HeadChunkWriter {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                files: RwLock::new(map),
            }),
            cur: None,
            next_seq: prev.map_or(1, |p| p + 1),
            max_file_size,
            buf: Vec::new(),
        })
    }

    /// A reader sharing this writer's files.
    pub fn reader(&self) -> HeadChunkReader {
        HeadChunkReader {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Writes a chunk; returns its head chunk reference. The chunk is readable through any
    /// reader as soon as this returns; it is durable after [`HeadChunkWriter::sync`] or the
    /// next file cut.
    pub fn write(
        &mut self,
        series_ref: u64,
        mint: i64,
        maxt: i64,
        enc: Encoding,
        data: &[u8],
    ) -> Result<u64> {
        self.buf.clear();
        self.buf.extend_from_slice(&series_ref.to_be_bytes());
        self.buf.extend_from_slice(&mint.to_be_bytes());
        self.buf.extend_from_slice(&maxt.to_be_bytes());
        self.buf.push(enc.as_u8());
        put_uvarint(&mut self.buf, data.len() as u64);
        self.buf.extend_from_slice(data);
        let crc = crc32c::crc32c(&self.buf);
        self.buf.extend_from_slice(&crc.to_be_bytes());
        let rec_len = self.buf.len() as u64;
        if SEGMENT_HEADER_SIZE as u64 + rec_len > self.max_file_size {
            return Err(Error::Other(format!(
                "head chunk of {} bytes does not fit a {}-byte file",
                data.len(),
                self.max_file_size
            )));
        }
        let must_cut = match &self.cur {
            None => true,
            Some((_, f)) => f.len() + rec_len > self.max_file_size,
        };
        if must_cut {
            self.cut_file()?;
        }
        let Some((seq, f)) = self.cur.as_mut() else {
            return Err(Error::Other("no open head chunk file after cut".into()));
        };
        let off = f.append(&self.buf)?;
        make_ref(*seq, off as usize, f.path())
    }

    /// Makes written chunks durable.
    pub fn sync(&self) -> Result<()> {
        match &self.cur {
            Some((_, f)) => f.sync(),
            None => Ok(()),
        }
    }

    /// Syncs the current file and starts a new one.
    pub fn cut_file(&mut self) -> Result<()> {
        self.sync()?;
        let seq = self.next_seq;
        if seq > u64::from(u32::MAX) {
            return Err(Error::Other(format!(
                "head chunk file number {seq} does not fit a chunk reference"
            )));
        }
        let path = segment_file(&self.shared.dir, seq);
        let f = fs::AppendFile::create_new(
            &path,
            &file_header(MAGIC_HEAD_CHUNKS, HEAD_CHUNKS_FORMAT_V1),
            self.max_file_size,
        )?;
        self.shared
            .files
            .write()
            .insert(seq, Arc::new(FileBytes::Growing(f.map())));
        self.cur = Some((seq, f));
        self.next_seq = seq + 1;
        Ok(())
    }

    /// Deletes every file numbered below `file_seq`, except the one being written. Chunks
    /// already handed out stay readable; new lookups of their refs fail.
    pub fn truncate_below(&mut self, file_seq: u64) -> Result<()> {
        let cur = self.cur.as_ref().map(|(s, _)| *s);
        let doomed: Vec<(u64, PathBuf)> = {
            let mut files = self.shared.files.write();
            let seqs: Vec<u64> = files
                .range(..file_seq)
                .map(|(s, _)| *s)
                .filter(|s| Some(*s) != cur)
                .collect();
            seqs.into_iter()
                .filter_map(|s| files.remove(&s).map(|f| (s, f.path().to_path_buf())))
                .collect()
        };
        for (_, p) in &doomed {
            std::fs::remove_file(p).map_err(|e| Error::io(format!("remove {}", p.display()), e))?;
        }
        if !doomed.is_empty() {
            fs::fsync_dir(&self.shared.dir)?;
        }
        Ok(())
    }

    /// The number of the file being written, if any.
    pub fn current_file_seq(&self) -> Option<u64> {
        self.cur.as_ref().map(|(s, _)| *s)
    }

    /// Numbers of all files readable through this writer's readers.
    pub fn file_seqs(&self) -> Vec<u64> {
        self.shared.files.read().keys().copied().collect()
    }
}

/// Calls `f` for every intact chunk in the head chunk files of `dir`, in file and offset
/// order. A torn or corrupt tail of the LAST file is cut off (truncated on disk, logged with
/// the file and offset); damage in an earlier file is returned as `Corruption` (the caller
/// can drop that file and everything after it with [`remove_head_chunk_files_from`] and
/// rebuild those chunks from the WAL, as Prometheus does). A missing directory has no chunks.
pub fn iterate_head_chunks(
    dir: &Path,
    f: &mut dyn FnMut(HeadChunkInfo) -> Result<()>,
) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let files = sequence_files(dir)?;
    let last = files.len().saturating_sub(1);
    for (i, (seq, path)) in files.iter().enumerate() {
        let is_last = i == last;
        let m = fs::Mmap::open(path)?;
        if let Err((off, reason)) = check_header(&m, MAGIC_HEAD_CHUNKS, HEAD_CHUNKS_FORMAT_V1) {
            if is_last && m.len() < SEGMENT_HEADER_SIZE {
                drop(m);
                tracing::warn!(file = %path.display(), offset = off, %reason,
                    "removing torn head chunk file");
                fs::remove_file_durable(path)?;
                continue;
            }
            return Err(Error::corruption(path, off, reason));
        }
        let b = m.as_slice();
        let mut off = SEGMENT_HEADER_SIZE;
        let mut cut: Option<(usize, String)> = None;
        while off < b.len() {
            match parse_record(b, off) {
                Ok(Parsed::End) => {
                    if is_last {
                        // Zeros (preallocation or a torn record that only wrote zeros): no
                        // chunks; cut them so the file ends at its last record.
                        cut = Some((off, "zero-filled tail".to_string()));
                    }
                    break;
                }
                Ok(Parsed::Record(rec)) => {
                    f(HeadChunkInfo {
                        series_ref: rec.series_ref,
                        chunk_ref: make_ref(*seq, off, path)?,
                        mint: rec.mint,
                        maxt: rec.maxt,
                        encoding: rec.encoding,
                        out_of_order: rec.out_of_order,
                        num_samples: num_samples_of(&b[rec.data_start..rec.data_end]),
                    })?;
                    off = rec.end;
                }
                Err(reason) if is_last => {
                    cut = Some((off, reason));
                    break;
                }
                Err(reason) => return Err(Error::corruption(path, off as u64, reason)),
            }
        }
        drop(m);
        if let Some((off, reason)) = cut {
            tracing::warn!(file = %path.display(), offset = off, %reason,
                "cutting torn tail of head chunk file");
            fs::truncate_file(path, off as u64)?;
        }
    }
    Ok(())
}

/// Deletes head chunk file `seq` and every later one (after corruption in `seq`).
pub fn remove_head_chunk_files_from(dir: &Path, seq: u64) -> Result<()> {
    let mut removed = false;
    for (s, p) in sequence_files(dir)? {
        if s >= seq {
            std::fs::remove_file(&p)
                .map_err(|e| Error::io(format!("remove {}", p.display()), e))?;
            removed = true;
        }
    }
    if removed {
        fs::fsync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
