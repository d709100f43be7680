//! The symbol table: the sorted, deduplicated strings of all label names and values, referred
//! to by their position. Encoding for the writer, and for the reader a lookup structure that
//! keeps only the offset of every `SAMPLE_INTERVAL`-th symbol (so a table of millions of
//! strings costs a few hundred KiB), walking at most that many entries per lookup. The table
//! is fully validated (CRC, bounds, UTF-8, order) when loaded; lookups never panic.

use std::path::Path;

use crate::error::{Error, Result};

use super::encoding::{checked_be32_section, put_be32, put_uvarint_str, Decoder};
use super::SAMPLE_INTERVAL;

/// Encodes a symbol table section (len, count, symbols, CRC) for already sorted symbols.
pub(crate) fn encode_symbol_table<'a>(
    symbols: impl IntoIterator<Item = &'a str>,
) -> Result<(Vec<u8>, u32)> {
    let mut body = Vec::new();
    put_be32(&mut body, 0); // count, patched below
    let mut count: u32 = 0;
    let mut last: Option<&str> = None;
    for s in symbols {
        if let Some(prev) = last {
            if s <= prev {
                return Err(Error::Other(format!(
                    "symbols must be sorted and unique: {s:?} after {prev:?}"
                )));
            }
        }
        last = Some(s);
        put_uvarint_str(&mut body, s);
        count = count
            .checked_add(1)
            .ok_or_else(|| Error::Other("more than 2^32 symbols".into()))?;
    }
    body[..4].copy_from_slice(&count.to_be_bytes());
    let len = u32::try_from(body.len())
        .map_err(|_| Error::Other(format!("symbol table of {} bytes exceeds 4GiB", body.len())))?;
    let mut out = Vec::with_capacity(body.len() + 8);
    put_be32(&mut out, len);
    let crc = crc32c::crc32c(&body);
    out.extend_from_slice(&body);
    put_be32(&mut out, crc);
    Ok((out, count))
}

/// Reader-side symbol table over the index bytes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Symbols {
    /// Absolute offset of every `SAMPLE_INTERVAL`-th symbol entry.
    sampled: Vec<usize>,
    /// Number of symbols.
    count: u32,
    /// End of the symbol entries (start of the CRC).
    end: usize,
}

impl Symbols {
    /// Validates the table at `start` and samples its offsets. `visit` sees every symbol
    /// with its index (the reader uses it to intern label names).
    pub(crate) fn load(
        b: &[u8],
        start: usize,
        file: &Path,
        mut visit: impl FnMut(u32, &str),
    ) -> Result<Symbols> {
        let (content, end) = checked_be32_section(b, start, file, "symbol table")?;
        let mut d = Decoder::new(b, content, end, file);
        let count = d.be32("symbol count")?;
        let mut sampled = Vec::with_capacity((count as usize / SAMPLE_INTERVAL + 1).min(end));
        let mut last: Option<&str> = None;
        for i in 0..count {
            if i as usize % SAMPLE_INTERVAL == 0 {
                sampled.push(d.pos());
            }
            let at = d.pos();
            let s = d.uvarint_str("symbol")?;
            if last.is_some_and(|p| s <= p) {
                return Err(Error::corruption(
                    file,
                    at as u64,
                    format!("symbol {i} ({s:?}) is not greater than the previous symbol"),
                ));
            }
            last = Some(s);
            visit(i, s);
        }
        if d.remaining() != 0 {
            return Err(d.error(format!(
                "symbol table has {} bytes after its {count} symbols",
                d.remaining()
            )));
        }
        Ok(Symbols {
            sampled,
            count,
            end,
        })
    }

    /// Number of symbols.
    pub(crate) fn len(&self) -> u32 {
        self.count
    }

    /// The symbol with index `i`; `at` is the offset of the reference, for errors.
    pub(crate) fn lookup<'a>(
        &self,
        b: &'a [u8],
        file: &'a Path,
        i: u32,
        at: usize,
    ) -> Result<&'a str> {
        if i >= self.count {
            return Err(Error::corruption(
                file,
                at as u64,
                format!("symbol reference {i} out of range ({} symbols)", self.count),
            ));
        }
        let base = *self
            .sampled
            .get(i as usize / SAMPLE_INTERVAL)
            .ok_or_else(|| Error::corruption(file, at as u64, "symbol sample missing"))?;
        let mut d = Decoder::new(b, base, self.end, file);
        d.skip_uvarint_bytes(i as usize % SAMPLE_INTERVAL, "symbol")?;
        d.uvarint_str("symbol")
    }

    /// Iterates all symbols in order.
    pub(crate) fn iter<'a>(
        &self,
        b: &'a [u8],
        file: &'a Path,
    ) -> impl Iterator<Item = Result<&'a str>> + 'a {
        let start = self.sampled.first().copied().unwrap_or(self.end);
        let mut d = Decoder::new(b, start, self.end, file);
        let mut left = self.count;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let r = d.uvarint_str("symbol");
            if r.is_err() {
                left = 0;
            }
            Some(r)
        })
    }
}
