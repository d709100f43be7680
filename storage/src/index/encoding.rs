//! Byte-level encoding for the index: big-endian fixed ints, Go-compatible (u)varints,
//! length-prefixed strings, and a bounds-checked decoder whose every failure is a
//! `Corruption` naming the file and the absolute offset. It knows nothing of sections'
//! meaning and never panics, whatever the bytes.

use std::path::Path;

use crate::error::{Error, Result};

use super::CRC_LEN;

/// Longest encoding of a 64-bit varint.
pub(crate) const MAX_UVARINT_LEN: usize = 10;

/// Appends `v` as an unsigned LEB128 varint (Go `binary.PutUvarint`).
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zig-zag encoded (Go `binary.PutVarint`).
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends a string as its byte length (uvarint) and bytes.
pub(crate) fn put_uvarint_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Appends a big-endian u32.
pub(crate) fn put_be32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a big-endian u64.
pub(crate) fn put_be64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// A cursor over `b[pos..end]` that reports damage with absolute offsets.
#[derive(Clone)]
pub(crate) struct Decoder<'a> {
    b: &'a [u8],
    pos: usize,
    end: usize,
    file: &'a Path,
}

impl<'a> Decoder<'a> {
    /// A decoder over `b[start..end]`; the range must already be within `b`.
    pub(crate) fn new(b: &'a [u8], start: usize, end: usize, file: &'a Path) -> Self {
        let end = end.min(b.len());
        Decoder {
            b,
            pos: start.min(end),
            end,
            file,
        }
    }

    /// A corruption error at the current position.
    pub(crate) fn error(&self, reason: impl Into<String>) -> Error {
        Error::corruption(self.file, self.pos as u64, reason)
    }

    /// A corruption error at absolute offset `at`.
    pub(crate) fn error_at(&self, at: usize, reason: impl Into<String>) -> Error {
        Error::corruption(self.file, at as u64, reason)
    }

    /// Current absolute offset.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left before the end of the range.
    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// Takes the next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.error(format!(
                "{what}: needs {n} bytes, only {} left",
                self.remaining()
            )));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn be32(&mut self, what: &str) -> Result<u32> {
        let s = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    pub(crate) fn be64(&mut self, what: &str) -> Result<u64> {
        let s = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }

    /// An unsigned varint as Go's `binary.Uvarint` reads it (at most 10 bytes, no overflow).
    pub(crate) fn uvarint(&mut self, what: &str) -> Result<u64> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        for i in 0..MAX_UVARINT_LEN {
            if self.pos + i >= self.end {
                return Err(self.error(format!("{what}: truncated varint")));
            }
            let byte = self.b[self.pos + i];
            if byte < 0x80 {
                if i == MAX_UVARINT_LEN - 1 && byte > 1 {
                    break;
                }
                self.pos += i + 1;
                return Ok(v | (u64::from(byte) << shift));
            }
            v |= u64::from(byte & 0x7f) << shift;
            shift += 7;
        }
        Err(self.error(format!("{what}: varint overflows 64 bits")))
    }

    /// A varint that must fit 32 bits.
    pub(crate) fn uvarint32(&mut self, what: &str) -> Result<u32> {
        let at = self.pos;
        let v = self.uvarint(what)?;
        u32::try_from(v).map_err(|_| {
            Error::corruption(self.file, at as u64, format!("{what}: {v} exceeds 32 bits"))
        })
    }

    /// A zig-zag signed varint.
    pub(crate) fn varint(&mut self, what: &str) -> Result<i64> {
        let u = self.uvarint(what)?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A uvarint length followed by that many bytes.
    pub(crate) fn uvarint_bytes(&mut self, what: &str) -> Result<&'a [u8]> {
        let at = self.pos;
        let n = self.uvarint(what)?;
        if n > self.remaining() as u64 {
            return Err(Error::corruption(
                self.file,
                at as u64,
                format!(
                    "{what}: length {n} exceeds the {} bytes left",
                    self.remaining()
                ),
            ));
        }
        self.bytes(n as usize, what)
    }

    /// Skips `n` uvarint-length-prefixed strings; one-byte lengths (the common case) take
    /// a short path, anything else goes through [`Decoder::uvarint_bytes`].
    pub(crate) fn skip_uvarint_bytes(&mut self, n: usize, what: &str) -> Result<()> {
        for _ in 0..n {
            match self.b[..self.end].get(self.pos) {
                Some(&len) if len < 0x80 && self.pos + 1 + usize::from(len) <= self.end => {
                    self.pos += 1 + usize::from(len);
                }
                _ => {
                    self.uvarint_bytes(what)?;
                }
            }
        }
        Ok(())
    }

    /// A uvarint length followed by that many bytes of UTF-8.
    pub(crate) fn uvarint_str(&mut self, what: &str) -> Result<&'a str> {
        let at = self.pos;
        let b = self.uvarint_bytes(what)?;
        std::str::from_utf8(b)
            .map_err(|_| Error::corruption(self.file, at as u64, format!("{what}: invalid UTF-8")))
    }
}

/// Finds a section at `start` whose content length is a big-endian u32 followed by the
/// content and a CRC32-Castagnoli over it; checks bounds and the CRC and returns the
/// content's absolute range.
pub(crate) fn checked_be32_section(
    b: &[u8],
    start: usize,
    file: &Path,
    what: &str,
) -> Result<(usize, usize)> {
    let mut d = Decoder::new(b, start, b.len(), file);
    if start > b.len() {
        return Err(Error::corruption(
            file,
            start as u64,
            format!(
                "{what} starts beyond the end of the file ({} bytes)",
                b.len()
            ),
        ));
    }
    let len = d.be32(what)? as usize;
    check_crc(b, start, d.pos(), len, file, what)
}

/// Like [`checked_be32_section`] for series entries, whose length is a uvarint.
pub(crate) fn checked_uvarint_section(
    b: &[u8],
    start: usize,
    end: usize,
    file: &Path,
    what: &str,
) -> Result<(usize, usize)> {
    let mut d = Decoder::new(b, start, end, file);
    let len = d.uvarint(what)?;
    let len = usize::try_from(len)
        .map_err(|_| Error::corruption(file, start as u64, format!("{what}: huge length")))?;
    check_crc(&b[..end.min(b.len())], start, d.pos(), len, file, what)
}

fn check_crc(
    b: &[u8],
    start: usize,
    content: usize,
    len: usize,
    file: &Path,
    what: &str,
) -> Result<(usize, usize)> {
    let end = content
        .checked_add(len)
        .filter(|e| e.checked_add(CRC_LEN).is_some_and(|x| x <= b.len()))
        .ok_or_else(|| {
            Error::corruption(
                file,
                start as u64,
                format!(
                    "{what}: length {len} at offset {start} runs past the end ({} bytes)",
                    b.len()
                ),
            )
        })?;
    let stored = u32::from_be_bytes([b[end], b[end + 1], b[end + 2], b[end + 3]]);
    let computed = crc32c::crc32c(&b[content..end]);
    if stored != computed {
        return Err(Error::corruption(
            file,
            start as u64,
            format!("{what}: CRC32 mismatch (stored {stored:#010x}, computed {computed:#010x})"),
        ));
    }
    Ok((content, end))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_go() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0]),
            (1, &[1]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for (v, bytes) in cases {
            let mut out = Vec::new();
            put_uvarint(&mut out, *v);
            assert_eq!(&out, bytes);
            let mut d = Decoder::new(&out, 0, out.len(), Path::new("t"));
            assert_eq!(d.uvarint("v").unwrap(), *v);
        }
        for v in [0i64, -1, 1, -64, 63, 64, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut d = Decoder::new(&out, 0, out.len(), Path::new("t"));
            assert_eq!(d.varint("v").unwrap(), v);
        }
        // -1 zig-zags to 1, 1 to 2.
        let mut out = Vec::new();
        put_varint(&mut out, -1);
        put_varint(&mut out, 1);
        assert_eq!(out, [1, 2]);
    }

    #[test]
    fn bad_varints_are_corruption() {
        let over = [0xffu8; 11];
        let mut d = Decoder::new(&over, 0, over.len(), Path::new("f"));
        assert!(matches!(d.uvarint("x"), Err(Error::Corruption { .. })));
        let ten = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        let mut d = Decoder::new(&ten, 0, ten.len(), Path::new("f"));
        assert!(d.uvarint("x").is_err());
        let trunc = [0x80u8];
        let mut d = Decoder::new(&trunc, 0, 1, Path::new("f"));
        assert!(d.uvarint("x").is_err());
        let s = [5u8, b'a'];
        let mut d = Decoder::new(&s, 0, 2, Path::new("f"));
        match d.uvarint_str("s") {
            Err(Error::Corruption { offset, .. }) => assert_eq!(offset, 0),
            other => panic!("{other:?}"),
        }
    }
}
