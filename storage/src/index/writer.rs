//! Writes one index file in Prometheus' format v2, in the order Prometheus 2.x writes it:
//! header, symbol table, series (each 16-byte aligned), label indices (4-byte aligned),
//! postings lists (4-byte aligned, the all-series list for `("", "")` first), the label
//! offset table, the postings offset table and the TOC; then flush and fsync. Postings are
//! collected in memory while series are added (4 bytes per label pair of each series).
//! The writer checks its caller's ordering contract and never writes a section it cannot
//! checksum; it never renames or fsyncs directories (the block writer does that).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::labels::Labels;

use super::encoding::{put_be32, put_be64, put_uvarint, put_uvarint_str, put_varint};
use super::symbols::encode_symbol_table;
use super::{
    ChunkMeta, Toc, ALL_POSTINGS_KEY, CRC_LEN, FORMAT_V2, LABEL_INDEX_NAME_COUNT, MAGIC_INDEX,
    POSTINGS_ALIGNMENT, POSTINGS_KEY_COUNT, SERIES_ALIGNMENT,
};

/// Size of the write buffer.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// One label name's values (symbol refs) with their series refs, in value order.
type ValuePostings = Vec<(u32, Vec<u32>)>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    /// Header written; symbols expected.
    Header,
    /// Symbol table written; series may follow.
    Series,
}

/// Writes an index file. Call [`add_symbols`](Self::add_symbols) once, then
/// [`add_series`](Self::add_series) in label-set order, then [`finish`](Self::finish).
pub struct IndexWriter {
    path: PathBuf,
    out: BufWriter<File>,
    pos: u64,
    toc: Toc,
    stage: Stage,
    /// Symbol strings by index, and the reverse map.
    symbol_strings: Vec<Arc<str>>,
    symbol_index: HashMap<Arc<str>, u32>,
    last_series: Option<Labels>,
    /// Label name symbol → label value symbol → series refs (ascending).
    postings: HashMap<u32, HashMap<u32, Vec<u32>>>,
    /// Every series ref, ascending.
    all_series: Vec<u32>,
    buf: Vec<u8>,
}

impl IndexWriter {
    /// Creates (truncating) the index file at `path` and writes the header.
    pub fn create(path: &Path) -> Result<IndexWriter> {
        let file = File::create(path)
            .map_err(|e| Error::io(format!("create index {}", path.display()), e))?;
        let mut w = IndexWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
            pos: 0,
            toc: Toc::default(),
            stage: Stage::Header,
            symbol_strings: Vec::new(),
            symbol_index: HashMap::new(),
            last_series: None,
            postings: HashMap::new(),
            all_series: Vec::new(),
            buf: Vec::new(),
        };
        let mut header = Vec::with_capacity(super::HEADER_LEN);
        put_be32(&mut header, MAGIC_INDEX);
        header.push(FORMAT_V2);
        w.write(&header)?;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.out
            .write_all(b)
            .map_err(|e| Error::io(format!("write index {}", self.path.display()), e))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Writes zero bytes up to the next multiple of `align`.
    fn pad(&mut self, align: u64) -> Result<()> {
        let rem = self.pos % align;
        if rem != 0 {
            let zeros = [0u8; SERIES_ALIGNMENT as usize];
            self.write(&zeros[..(align - rem) as usize])?;
        }
        Ok(())
    }

    /// Writes the symbol table: every label name and value of every series that will be
    /// added, sorted and unique. Called exactly once, before any series.
    pub fn add_symbols<'a>(&mut self, sorted: impl IntoIterator<Item = &'a str>) -> Result<()> {
        if self.stage != Stage::Header {
            return Err(Error::Other("index symbols already written".into()));
        }
        let strings: Vec<Arc<str>> = sorted.into_iter().map(Arc::from).collect();
        let (section, _) = encode_symbol_table(strings.iter().map(|s| &**s))?;
        self.toc.symbols = self.pos;
        self.write(&section)?;
        self.symbol_index = strings
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        self.symbol_strings = strings;
        self.stage = Stage::Series;
        self.toc.series = self.pos;
        Ok(())
    }

    fn symbol(&self, s: &str) -> Result<u32> {
        self.symbol_index
            .get(s)
            .copied()
            .ok_or_else(|| Error::Other(format!("symbol {s:?} missing from the symbol table")))
    }

    /// Adds a series with its chunks. Series must come in strictly increasing label-set
    /// order; chunks in time order without overlap. Returns the series ref (offset / 16).
    pub fn add_series(&mut self, labels: &Labels, chunks: &[ChunkMeta]) -> Result<u64> {
        if self.stage != Stage::Series {
            return Err(Error::Other(
                "index series added before the symbol table".into(),
            ));
        }
        if let Some(last) = &self.last_series {
            if labels <= last {
                return Err(Error::Other(format!(
                    "out-of-order series {labels} after {last}"
                )));
            }
        }
        if labels.is_empty() {
            return Err(Error::Other("series with an empty label set".into()));
        }
        let mut prev_max: Option<i64> = None;
        for c in chunks {
            if c.max_time < c.min_time {
                return Err(Error::Other(format!(
                    "chunk of {labels}: max time {} before min time {}",
                    c.max_time, c.min_time
                )));
            }
            if let Some(p) = prev_max {
                if c.min_time <= p {
                    return Err(Error::Other(format!(
                        "chunk of {labels}: min time {} not after previous max time {p}",
                        c.min_time
                    )));
                }
            }
            prev_max = Some(c.max_time);
        }

        self.pad(SERIES_ALIGNMENT)?;
        let series_ref = u32::try_from(self.pos / SERIES_ALIGNMENT).map_err(|_| {
            Error::Other(format!(
                "index {} exceeds the 64GiB addressable by series refs",
                self.path.display()
            ))
        })?;

        let mut body = std::mem::take(&mut self.buf);
        body.clear();
        put_uvarint(&mut body, labels.len() as u64);
        let mut refs = Vec::with_capacity(labels.len());
        for l in labels {
            let n = self.symbol(&l.name)?;
            let v = self.symbol(&l.value)?;
            put_uvarint(&mut body, u64::from(n));
            put_uvarint(&mut body, u64::from(v));
            refs.push((n, v));
        }
        put_uvarint(&mut body, chunks.len() as u64);
        if let Some((first, rest)) = chunks.split_first() {
            put_varint(&mut body, first.min_time);
            put_uvarint(
                &mut body,
                first.max_time.wrapping_sub(first.min_time) as u64,
            );
            put_uvarint(&mut body, first.chunk_ref);
            let mut prev = *first;
            for c in rest {
                put_uvarint(&mut body, c.min_time.wrapping_sub(prev.max_time) as u64);
                put_uvarint(&mut body, c.max_time.wrapping_sub(c.min_time) as u64);
                put_varint(&mut body, c.chunk_ref.wrapping_sub(prev.chunk_ref) as i64);
                prev = *c;
            }
        }
        let mut len = Vec::with_capacity(super::encoding::MAX_UVARINT_LEN);
        put_uvarint(&mut len, body.len() as u64);
        let crc = crc32c::crc32c(&body);
        put_be32(&mut body, crc);
        self.write(&len)?;
        let res = self.write(&body);
        self.buf = body;
        res?;

        for (n, v) in refs {
            self.postings
                .entry(n)
                .or_default()
                .entry(v)
                .or_default()
                .push(series_ref);
        }
        self.all_series.push(series_ref);
        self.last_series = Some(labels.clone());
        Ok(u64::from(series_ref))
    }

    /// Writes a section: big-endian u32 length, `body`, CRC32 of `body`.
    fn write_be32_section(&mut self, body: &[u8], what: &str) -> Result<()> {
        let len = u32::try_from(body.len())
            .map_err(|_| Error::Other(format!("{what} of {} bytes exceeds 4GiB", body.len())))?;
        let mut head = Vec::with_capacity(4);
        put_be32(&mut head, len);
        self.write(&head)?;
        self.write(body)?;
        let crc = crc32c::crc32c(body).to_be_bytes();
        self.write(&crc)
    }

    fn write_postings_list(&mut self, refs: &[u32]) -> Result<u64> {
        self.pad(POSTINGS_ALIGNMENT)?;
        let offset = self.pos;
        let count = u32::try_from(refs.len())
            .map_err(|_| Error::Other("postings list over 2^32 entries".into()))?;
        let mut body = Vec::with_capacity(4 + 4 * refs.len());
        put_be32(&mut body, count);
        for r in refs {
            put_be32(&mut body, *r);
        }
        self.write_be32_section(&body, "postings list")?;
        Ok(offset)
    }

    /// Writes the label indices, postings, both offset tables and the TOC, then flushes and
    /// fsyncs the file.
    pub fn finish(mut self) -> Result<()> {
        if self.stage == Stage::Header {
            self.add_symbols(std::iter::empty())?;
        }
        let postings = std::mem::take(&mut self.postings);
        // Symbol order is string order, so sorting ids sorts names and values.
        let mut names: Vec<(u32, ValuePostings)> = postings
            .into_iter()
            .map(|(n, values)| {
                let mut values: ValuePostings = values.into_iter().collect();
                values.sort_unstable_by_key(|(v, _)| *v);
                (n, values)
            })
            .collect();
        names.sort_unstable_by_key(|(n, _)| *n);

        // Label indices: one per name, listing its values' symbol refs.
        self.toc.label_indices = self.pos;
        let mut label_index_offsets = Vec::with_capacity(names.len());
        for (_, values) in &names {
            self.pad(POSTINGS_ALIGNMENT)?;
            label_index_offsets.push(self.pos);
            let mut body = Vec::with_capacity(8 + 4 * values.len());
            put_be32(&mut body, LABEL_INDEX_NAME_COUNT as u32);
            put_be32(&mut body, values.len() as u32);
            for (v, _) in values {
                put_be32(&mut body, *v);
            }
            self.write_be32_section(&body, "label index")?;
        }

        // Postings lists, the all-series list first.
        self.toc.postings = self.pos;
        let all = std::mem::take(&mut self.all_series);
        let mut offsets: Vec<(Arc<str>, Arc<str>, u64)> = Vec::new();
        let off = self.write_postings_list(&all)?;
        offsets.push((
            Arc::from(ALL_POSTINGS_KEY.0),
            Arc::from(ALL_POSTINGS_KEY.1),
            off,
        ));
        for (n, values) in &names {
            for (v, refs) in values {
                let off = self.write_postings_list(refs)?;
                let name = self.symbol_string(*n)?;
                let value = self.symbol_string(*v)?;
                offsets.push((name, value, off));
            }
        }

        // Label offset table.
        self.toc.label_indices_table = self.pos;
        let mut body = Vec::new();
        put_be32(&mut body, names.len() as u32);
        for ((n, _), off) in names.iter().zip(&label_index_offsets) {
            put_uvarint(&mut body, LABEL_INDEX_NAME_COUNT);
            put_uvarint_str(&mut body, &self.symbol_string(*n)?);
            put_uvarint(&mut body, *off);
        }
        self.write_be32_section(&body, "label offset table")?;

        // Postings offset table.
        self.toc.postings_table = self.pos;
        let mut body = Vec::new();
        let count = u32::try_from(offsets.len())
            .map_err(|_| Error::Other("postings offset table over 2^32 entries".into()))?;
        put_be32(&mut body, count);
        for (n, v, off) in &offsets {
            put_uvarint(&mut body, POSTINGS_KEY_COUNT);
            put_uvarint_str(&mut body, n);
            put_uvarint_str(&mut body, v);
            put_uvarint(&mut body, *off);
        }
        self.write_be32_section(&body, "postings offset table")?;

        // TOC.
        let mut toc = Vec::with_capacity(super::TOC_LEN);
        for e in self.toc.entries() {
            put_be64(&mut toc, e);
        }
        let crc = crc32c::crc32c(&toc);
        put_be32(&mut toc, crc);
        debug_assert_eq!(toc.len(), super::TOC_LEN);
        debug_assert_eq!(CRC_LEN, 4);
        self.write(&toc)?;

        let path = self.path.clone();
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io(format!("flush index {}", path.display()), e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io(format!("fsync index {}", path.display()), e))?;
        Ok(())
    }

    fn symbol_string(&self, i: u32) -> Result<Arc<str>> {
        self.symbol_strings
            .get(i as usize)
            .cloned()
            .ok_or_else(|| Error::Other(format!("symbol {i} out of range")))
    }
}
