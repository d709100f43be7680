//! Reads an index file in Prometheus' format v2, written by us or by Prometheus.
//!
//! `open` validates eagerly what every query needs: magic, version, TOC CRC and ranges, the
//! whole symbol table (CRC, UTF-8, order) and the whole postings offset table (CRC, order).
//! It keeps in memory only every 32nd symbol offset, the interned label names, and every
//! 32nd postings-table entry offset per name. Series entries and postings lists are checked
//! (bounds, CRC) lazily each time they are read; [`IndexReader::verify`] checks every
//! section including the label indices, which queries never read. The reader is generic
//! over its bytes so a memory mapping from `fs` can replace the owned buffer; it holds no
//! interior mutability and is `Send + Sync`. It never panics on bad bytes.

use std::collections::HashMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::error::{Error, Result};
use crate::labels::{Label, Labels};

use super::encoding::{checked_be32_section, checked_uvarint_section, Decoder};
use super::postings::PostingsSource;
use super::symbols::Symbols;
use super::{
    ChunkMeta, Toc, ALL_POSTINGS_KEY, FORMAT_V2, HEADER_LEN, LABEL_INDEX_NAME_COUNT, MAGIC_INDEX,
    POSTINGS_KEY_COUNT, SAMPLE_INTERVAL, SERIES_ALIGNMENT, TOC_LEN,
};

/// The bytes of an index file: an owned buffer today, a memory mapping from `fs` later.
pub trait ByteSlice: Deref<Target = [u8]> + Send + Sync {}
impl<T: Deref<Target = [u8]> + Send + Sync> ByteSlice for T {}

/// Where one label name's entries sit in the postings offset table.
#[derive(Debug)]
struct NameEntry {
    name: Arc<str>,
    /// Absolute offset of every `SAMPLE_INTERVAL`-th entry of this name, the first included.
    sampled: Vec<usize>,
    /// Number of values (entries) for this name.
    count: usize,
}

/// One decoded postings offset table entry.
struct OffsetEntry<'a> {
    name: &'a str,
    value: &'a str,
    offset: u64,
}

/// Label value strings already built while reading series, by symbol reference: one
/// select shares one `Arc<str>` per distinct value (metric name, job, ...) instead of
/// looking the symbol up and allocating it again for every series. Lives as long as the
/// caller keeps it (one query), so the reader itself stays free of interior mutability.
#[derive(Default)]
pub struct SymbolCache {
    values: HashMap<u32, Arc<str>, BuildSymbolHasher>,
}

impl SymbolCache {
    /// An empty cache.
    pub fn new() -> SymbolCache {
        SymbolCache::default()
    }
}

/// Hasher for symbol references: one multiply (Fibonacci hashing); the keys are dense
/// small integers from our own index, not attacker-chosen strings.
#[derive(Default, Clone, Copy)]
struct BuildSymbolHasher;

#[derive(Default)]
struct SymbolHasher(u64);

/// 2^64 / golden ratio, the Fibonacci hashing multiplier.
const FIBONACCI_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

impl std::hash::BuildHasher for BuildSymbolHasher {
    type Hasher = SymbolHasher;
    fn build_hasher(&self) -> SymbolHasher {
        SymbolHasher(0)
    }
}

impl std::hash::Hasher for SymbolHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(FIBONACCI_MULTIPLIER);
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = u64::from(i).wrapping_mul(FIBONACCI_MULTIPLIER);
    }
}

/// A read-only view of one index file.
pub struct IndexReader<B: ByteSlice = Vec<u8>> {
    bytes: B,
    file: PathBuf,
    toc: Toc,
    symbols: Symbols,
    /// Label names in order, `""` (the all-postings key) first when present.
    names: Vec<NameEntry>,
    /// Label name strings by symbol ref, shared by every series read.
    name_symbols: HashMap<u32, Arc<str>>,
    /// End of the postings offset table entries (start of its CRC).
    postings_table_end: usize,
    /// End of the series section.
    series_end: usize,
}

impl IndexReader<Vec<u8>> {
    /// Reads the file at `path` into memory and opens it (see [`IndexReader::from_bytes`]).
    pub fn open(path: &Path) -> Result<IndexReader<Vec<u8>>> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::io(format!("read index {}", path.display()), e))?;
        IndexReader::from_bytes(bytes, path)
    }
}

impl<B: ByteSlice> IndexReader<B> {
    /// Opens an index held in `bytes`; `file` names it in errors. Validates the header, the
    /// TOC, the symbol table and the postings offset table.
    pub fn from_bytes(bytes: B, file: &Path) -> Result<IndexReader<B>> {
        let b: &[u8] = &bytes;
        let corrupt = |off: usize, r: String| Error::corruption(file, off as u64, r);
        if b.len() < HEADER_LEN + TOC_LEN {
            return Err(corrupt(
                0,
                format!("index of {} bytes is too short for header and TOC", b.len()),
            ));
        }
        let mut d = Decoder::new(b, 0, HEADER_LEN, file);
        let magic = d.be32("magic")?;
        if magic != MAGIC_INDEX {
            return Err(corrupt(0, format!("bad magic {magic:#010x}")));
        }
        let version = b[HEADER_LEN - 1];
        if version != FORMAT_V2 {
            return Err(corrupt(
                HEADER_LEN - 1,
                format!("unsupported index version {version}"),
            ));
        }
        let toc_start = b.len() - TOC_LEN;
        let toc = read_toc(b, toc_start, file)?;

        let postings_table = to_usize(toc.postings_table);
        let (names, postings_table_end) = if toc.postings_table == 0 {
            (Vec::new(), 0)
        } else {
            load_postings_table(b, postings_table, file)?
        };

        let mut name_symbols = HashMap::new();
        let symbols = if toc.symbols == 0 {
            Symbols::default()
        } else {
            Symbols::load(b, to_usize(toc.symbols), file, |i, s| {
                if !s.is_empty() {
                    if let Ok(k) = names.binary_search_by(|e| (*e.name).cmp(s)) {
                        name_symbols.insert(i, names[k].name.clone());
                    }
                }
            })?
        };

        let series_end = toc
            .entries()
            .into_iter()
            .filter(|&e| e > toc.series)
            .min()
            .map_or(toc_start, to_usize);

        Ok(IndexReader {
            file: file.to_path_buf(),
            toc,
            symbols,
            names,
            name_symbols,
            postings_table_end,
            series_end,
            bytes,
        })
    }

    fn b(&self) -> &[u8] {
        &self.bytes
    }

    fn corruption(&self, offset: usize, reason: impl Into<String>) -> Error {
        Error::corruption(&self.file, offset as u64, reason)
    }

    /// The file this index was read from.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The table of contents.
    pub fn toc(&self) -> Toc {
        self.toc
    }

    /// Size of the index file in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Number of symbols.
    pub fn symbol_count(&self) -> u32 {
        self.symbols.len()
    }

    /// All symbols, in order.
    pub fn symbols(&self) -> impl Iterator<Item = Result<&str>> {
        self.symbols.iter(self.b(), &self.file)
    }

    /// All label names, sorted, without the all-postings key `""`.
    pub fn label_names(&self) -> Result<Vec<String>> {
        Ok(self
            .names
            .iter()
            .filter(|e| !e.name.is_empty())
            .map(|e| e.name.to_string())
            .collect())
    }

    fn name_entry(&self, name: &str) -> Option<&NameEntry> {
        self.names
            .binary_search_by(|e| (*e.name).cmp(name))
            .ok()
            .map(|i| &self.names[i])
    }

    fn decode_entry(&self, pos: usize) -> Result<(OffsetEntry<'_>, usize)> {
        let mut d = Decoder::new(self.b(), pos, self.postings_table_end, &self.file);
        let e = decode_offset_entry(&mut d)?;
        Ok((e, d.pos()))
    }

    /// Calls `f` with every value of label `name` and its postings list offset, in order.
    fn for_each_value<'a>(
        &'a self,
        name: &str,
        mut f: impl FnMut(&'a str, u64) -> Result<()>,
    ) -> Result<()> {
        let Some(e) = self.name_entry(name) else {
            return Ok(());
        };
        let Some(&start) = e.sampled.first() else {
            return Ok(());
        };
        let mut d = Decoder::new(self.b(), start, self.postings_table_end, &self.file);
        for _ in 0..e.count {
            let entry = decode_offset_entry(&mut d)?;
            f(entry.value, entry.offset)?;
        }
        Ok(())
    }

    /// All values of label `name`, sorted (empty when the name is unknown or is `""`).
    pub fn label_values(&self, name: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        if name.is_empty() {
            return Ok(out);
        }
        self.for_each_value(name, |v, _| {
            out.push(v.to_string());
            Ok(())
        })?;
        Ok(out)
    }

    /// The offset of the postings list for `name=value`, if there is one.
    fn postings_offset(&self, name: &str, value: &str) -> Result<Option<u64>> {
        let Some(e) = self.name_entry(name) else {
            return Ok(None);
        };
        // Find the last sampled entry whose value is <= `value`.
        let (mut lo, mut hi) = (0usize, e.sampled.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (entry, _) = self.decode_entry(e.sampled[mid])?;
            if entry.value <= value {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            return Ok(None);
        }
        let first = (lo - 1) * SAMPLE_INTERVAL;
        let left = e.count.saturating_sub(first).min(SAMPLE_INTERVAL);
        let mut pos = e.sampled[lo - 1];
        for _ in 0..left {
            let (entry, next) = self.decode_entry(pos)?;
            match entry.value.cmp(value) {
                std::cmp::Ordering::Equal => return Ok(Some(entry.offset)),
                std::cmp::Ordering::Greater => return Ok(None),
                std::cmp::Ordering::Less => pos = next,
            }
        }
        Ok(None)
    }

    /// Decodes the postings list at `offset` and adds its refs to `out`.
    fn read_postings_list(&self, offset: u64, out: &mut RoaringBitmap) -> Result<()> {
        let b = self.b();
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        if start >= b.len() {
            return Err(self.corruption(
                self.postings_table_end,
                format!("postings list offset {offset} beyond the end of the file"),
            ));
        }
        let (content, end) = checked_be32_section(b, start, &self.file, "postings list")?;
        let mut d = Decoder::new(b, content, end, &self.file);
        let n = d.be32("postings count")? as usize;
        if d.remaining() != n.saturating_mul(4) {
            return Err(self.corruption(
                start,
                format!(
                    "postings list holds {} bytes for {n} entries",
                    end - content - 4
                ),
            ));
        }
        let mut refs = Vec::with_capacity(n);
        for _ in 0..n {
            let at = d.pos();
            let r = d.be32("series ref")?;
            if refs.last().is_some_and(|&p| r <= p) {
                return Err(self.corruption(at, "postings list is not strictly increasing"));
            }
            refs.push(r);
        }
        let list = RoaringBitmap::from_sorted_iter(refs)
            .map_err(|_| self.corruption(start, "postings list is not sorted"))?;
        if out.is_empty() {
            *out = list;
        } else {
            *out |= list;
        }
        Ok(())
    }

    /// The union of the postings lists of `name=v` for every `v` in `values`.
    pub fn postings(&self, name: &str, values: &[&str]) -> Result<RoaringBitmap> {
        let mut out = RoaringBitmap::new();
        if values.len() > 1 {
            let mut sorted: Vec<&str> = values.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            for v in sorted {
                if let Some(off) = self.postings_offset(name, v)? {
                    self.read_postings_list(off, &mut out)?;
                }
            }
        } else if let Some(v) = values.first() {
            if let Some(off) = self.postings_offset(name, v)? {
                self.read_postings_list(off, &mut out)?;
            }
        }
        Ok(out)
    }

    /// The refs of every series in the index.
    pub fn all_postings(&self) -> Result<RoaringBitmap> {
        self.postings(ALL_POSTINGS_KEY.0, &[ALL_POSTINGS_KEY.1])
    }

    /// The postings of every value of `name` that satisfies `pred`, without allocating the
    /// values that don't.
    pub fn postings_matching(
        &self,
        name: &str,
        pred: &dyn Fn(&str) -> bool,
    ) -> Result<RoaringBitmap> {
        let mut out = RoaringBitmap::new();
        if name.is_empty() {
            return Ok(out);
        }
        self.for_each_value(name, |v, off| {
            if pred(v) {
                self.read_postings_list(off, &mut out)?;
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The label set of series `series_ref`; its chunk metas replace the contents of `chunks`.
    pub fn series(&self, series_ref: u64, chunks: &mut Vec<ChunkMeta>) -> Result<Labels> {
        self.series_cached(series_ref, chunks, &mut SymbolCache::new())
    }

    /// Like [`IndexReader::series`], sharing label value strings through `cache` (which
    /// must only ever be used with this reader).
    pub fn series_cached(
        &self,
        series_ref: u64,
        chunks: &mut Vec<ChunkMeta>,
        cache: &mut SymbolCache,
    ) -> Result<Labels> {
        let off = series_ref
            .checked_mul(SERIES_ALIGNMENT)
            .map(to_usize)
            .filter(|&o| o >= to_usize(self.toc.series) && o < self.series_end)
            .ok_or_else(|| {
                self.corruption(
                    to_usize(self.toc.series),
                    format!(
                        "series ref {series_ref} outside the series section [{}, {})",
                        self.toc.series, self.series_end
                    ),
                )
            })?;
        self.decode_series(off, chunks, cache).map(|(l, _)| l)
    }

    /// Decodes the series entry at `off`; returns its labels and the offset after its CRC.
    fn decode_series(
        &self,
        off: usize,
        chunks: &mut Vec<ChunkMeta>,
        cache: &mut SymbolCache,
    ) -> Result<(Labels, usize)> {
        chunks.clear();
        let b = self.b();
        let (content, end) =
            checked_uvarint_section(b, off, self.series_end, &self.file, "series")?;
        let mut d = Decoder::new(b, content, end, &self.file);
        let n = d.uvarint("label count")?;
        let mut labels = Vec::with_capacity((n as usize).min(d.remaining() / 2));
        for _ in 0..n {
            let at = d.pos();
            let name_ref = d.uvarint32("label name ref")?;
            let value_ref = d.uvarint32("label value ref")?;
            let name = match self.name_symbols.get(&name_ref) {
                Some(s) => s.clone(),
                None => Arc::from(self.symbols.lookup(b, &self.file, name_ref, at)?),
            };
            let value = match cache.values.get(&value_ref) {
                Some(v) => v.clone(),
                None => {
                    let v: Arc<str> = Arc::from(self.symbols.lookup(b, &self.file, value_ref, at)?);
                    cache.values.insert(value_ref, v.clone());
                    v
                }
            };
            if name.is_empty() || value.is_empty() {
                return Err(self.corruption(at, "series has an empty label name or value"));
            }
            if labels.last().is_some_and(|p: &Label| p.name >= name) {
                return Err(self.corruption(at, "series labels are not sorted by name"));
            }
            labels.push(Label { name, value });
        }
        let nchunks = d.uvarint("chunk count")?;
        chunks.reserve((nchunks as usize).min(d.remaining() / 3));
        if nchunks > 0 {
            let min_time = d.varint("chunk min time")?;
            let max_time = min_time.wrapping_add(d.uvarint("chunk time span")? as i64);
            let chunk_ref = d.uvarint("chunk ref")?;
            chunks.push(ChunkMeta {
                min_time,
                max_time,
                chunk_ref,
            });
            let mut prev = chunks[0];
            for _ in 1..nchunks {
                let min_time = prev
                    .max_time
                    .wrapping_add(d.uvarint("chunk min time")? as i64);
                let max_time = min_time.wrapping_add(d.uvarint("chunk time span")? as i64);
                let chunk_ref = prev.chunk_ref.wrapping_add(d.varint("chunk ref")? as u64);
                prev = ChunkMeta {
                    min_time,
                    max_time,
                    chunk_ref,
                };
                chunks.push(prev);
            }
        }
        if d.remaining() != 0 {
            return Err(d.error(format!("{} unread bytes in series entry", d.remaining())));
        }
        Ok((Labels::from_sorted(labels), end + super::CRC_LEN))
    }

    /// Checks every section: label indices and their offset table, every series entry, and
    /// every postings list (whose refs must point into the series section). Returns the
    /// number of series.
    pub fn verify(&self) -> Result<usize> {
        let b = self.b();
        if self.toc.label_indices_table != 0 {
            let start = to_usize(self.toc.label_indices_table);
            let (content, end) = checked_be32_section(b, start, &self.file, "label offset table")?;
            let mut d = Decoder::new(b, content, end, &self.file);
            let n = d.be32("label offset table count")?;
            for _ in 0..n {
                let at = d.pos();
                if d.uvarint("key count")? != LABEL_INDEX_NAME_COUNT {
                    return Err(self.corruption(at, "label offset entry with key count != 1"));
                }
                d.uvarint_str("label name")?;
                let off = to_usize(d.uvarint("label index offset")?);
                self.verify_label_index(off)?;
            }
            if d.remaining() != 0 {
                return Err(d.error("trailing bytes in label offset table"));
            }
        }
        let mut series = 0usize;
        let mut pos = to_usize(self.toc.series);
        let mut chunks = Vec::new();
        loop {
            let aligned = pos.next_multiple_of(SERIES_ALIGNMENT as usize);
            if aligned >= self.series_end {
                break;
            }
            if let Some(i) = b[pos..aligned].iter().position(|&x| x != 0) {
                return Err(self.corruption(pos + i, "non-zero padding in series section"));
            }
            let (_, next) = self.decode_series(aligned, &mut chunks, &mut SymbolCache::new())?;
            series += 1;
            pos = next;
        }
        let min_ref = self.toc.series.div_ceil(SERIES_ALIGNMENT);
        let max_ref = (self.series_end as u64).div_ceil(SERIES_ALIGNMENT);
        for e in &self.names {
            let Some(&start) = e.sampled.first() else {
                continue;
            };
            let mut d = Decoder::new(b, start, self.postings_table_end, &self.file);
            for _ in 0..e.count {
                let entry = decode_offset_entry(&mut d)?;
                let mut list = RoaringBitmap::new();
                self.read_postings_list(entry.offset, &mut list)?;
                let (lo, hi) = (list.min(), list.max());
                if lo.is_some_and(|r| u64::from(r) < min_ref)
                    || hi.is_some_and(|r| u64::from(r) >= max_ref)
                {
                    return Err(self.corruption(
                        to_usize(entry.offset),
                        format!(
                            "postings of {}={:?} point outside the series section",
                            entry.name, entry.value
                        ),
                    ));
                }
            }
        }
        Ok(series)
    }

    fn verify_label_index(&self, off: usize) -> Result<()> {
        let b = self.b();
        let (content, end) = checked_be32_section(b, off, &self.file, "label index")?;
        let mut d = Decoder::new(b, content, end, &self.file);
        if u64::from(d.be32("label index name count")?) != LABEL_INDEX_NAME_COUNT {
            return Err(self.corruption(content, "label index over more than one name"));
        }
        let n = d.be32("label index entry count")? as usize;
        if d.remaining() != n.saturating_mul(4) {
            return Err(self.corruption(off, "label index length disagrees with its count"));
        }
        for _ in 0..n {
            let at = d.pos();
            let r = d.be32("label value ref")?;
            if r >= self.symbols.len() {
                return Err(self.corruption(at, format!("label value ref {r} out of range")));
            }
        }
        Ok(())
    }
}

impl<B: ByteSlice> PostingsSource for IndexReader<B> {
    fn label_values(&self, name: &str) -> Result<Vec<String>> {
        IndexReader::label_values(self, name)
    }

    fn postings(&self, name: &str, values: &[&str]) -> Result<RoaringBitmap> {
        IndexReader::postings(self, name, values)
    }

    fn all_postings(&self) -> Result<RoaringBitmap> {
        IndexReader::all_postings(self)
    }

    fn postings_matching(&self, name: &str, pred: &dyn Fn(&str) -> bool) -> Result<RoaringBitmap> {
        IndexReader::postings_matching(self, name, pred)
    }
}

/// Offsets larger than the address space saturate, so they fail the bounds checks.
fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn read_toc(b: &[u8], toc_start: usize, file: &Path) -> Result<Toc> {
    let crc_at = toc_start + TOC_LEN - super::CRC_LEN;
    let mut d = Decoder::new(b, crc_at, b.len(), file);
    let stored = d.be32("TOC CRC")?;
    let computed = crc32c::crc32c(&b[toc_start..crc_at]);
    if stored != computed {
        return Err(Error::corruption(
            file,
            toc_start as u64,
            format!("TOC: CRC32 mismatch (stored {stored:#010x}, computed {computed:#010x})"),
        ));
    }
    let mut d = Decoder::new(b, toc_start, crc_at, file);
    let toc = Toc {
        symbols: d.be64("TOC")?,
        series: d.be64("TOC")?,
        label_indices: d.be64("TOC")?,
        label_indices_table: d.be64("TOC")?,
        postings: d.be64("TOC")?,
        postings_table: d.be64("TOC")?,
    };
    for (i, e) in toc.entries().into_iter().enumerate() {
        if e != 0 && (e < HEADER_LEN as u64 || e > toc_start as u64) {
            return Err(Error::corruption(
                file,
                (toc_start + 8 * i) as u64,
                format!("TOC entry {i} points to {e}, outside [{HEADER_LEN}, {toc_start}]"),
            ));
        }
    }
    Ok(toc)
}

fn decode_offset_entry<'a>(d: &mut Decoder<'a>) -> Result<OffsetEntry<'a>> {
    let at = d.pos();
    let keys = d.uvarint("postings key count")?;
    if keys != POSTINGS_KEY_COUNT {
        return Err(d.error_at(
            at,
            format!("postings offset entry with key count {keys}, want 2"),
        ));
    }
    let name = d.uvarint_str("label name")?;
    let value = d.uvarint_str("label value")?;
    let offset = d.uvarint("postings offset")?;
    Ok(OffsetEntry {
        name,
        value,
        offset,
    })
}

/// Parses and validates the postings offset table; returns per-name entries and the end of
/// the entries.
fn load_postings_table(b: &[u8], start: usize, file: &Path) -> Result<(Vec<NameEntry>, usize)> {
    let (content, end) = checked_be32_section(b, start, file, "postings offset table")?;
    let mut d = Decoder::new(b, content, end, file);
    let n = d.be32("postings offset table count")?;
    let mut names: Vec<NameEntry> = Vec::new();
    let mut last: Option<(&str, &str)> = None;
    for _ in 0..n {
        let at = d.pos();
        let e = decode_offset_entry(&mut d)?;
        if last.is_some_and(|l| (e.name, e.value) <= l) {
            return Err(Error::corruption(
                file,
                at as u64,
                format!(
                    "postings offset table out of order at {}={:?}",
                    e.name, e.value
                ),
            ));
        }
        let same = last.is_some_and(|l| l.0 == e.name);
        last = Some((e.name, e.value));
        match names.last_mut() {
            Some(cur) if same => {
                if cur.count % SAMPLE_INTERVAL == 0 {
                    cur.sampled.push(at);
                }
                cur.count += 1;
            }
            _ => names.push(NameEntry {
                name: Arc::from(e.name),
                sampled: vec![at],
                count: 1,
            }),
        }
    }
    if d.remaining() != 0 {
        return Err(d.error("trailing bytes in postings offset table"));
    }
    Ok((names, end))
}
