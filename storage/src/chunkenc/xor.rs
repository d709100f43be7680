//! The Gorilla XOR chunk for float samples, bit-exact with Prometheus' XOR chunks:
//! a 2-byte big-endian sample count, then the first timestamp as a signed varint and the first
//! value as 64 raw bits, the second timestamp as an unsigned varint delta and its value XORed,
//! then delta-of-delta timestamps in 1/16/20/24/68-bit buckets and XORed values with the
//! leading/trailing-zero scheme. The layout is drawn in `docs/format/chunks.md`.
//!
//! This module owns encoding and decoding of one chunk's bytes. It must never do I/O, never
//! panic on garbage (the iterator stops and reports a `Corruption`), and never touch value
//! bits beyond XOR (NaN payloads and stale markers round-trip exactly).

use super::bstream::{BitReader, BitWriter, EndOfStream, WIDE_PEEK_BITS};
use super::CHUNK_DATA_LOCATION;
use crate::{Error, Result};

/// Bytes of the sample-count header at the start of every XOR chunk.
pub(crate) const XOR_HEADER_SIZE: usize = 2;
/// Initial capacity of a new chunk's buffer (Prometheus uses the same).
const INITIAL_CAPACITY: usize = 128;
/// Marker for "no leading/trailing window chosen yet" in the appender state.
const LEADING_UNSET: u8 = 0xff;
/// Leading zeros are stored in 5 bits, so they are capped at this value.
const MAX_LEADING: u8 = 31;
/// Width of the stored leading-zero count.
const LEADING_BITS: u32 = 5;
/// Width of the stored significant-bit count (64 is stored as 0).
const SIGBITS_BITS: u32 = 6;
/// Longest Go-style varint (10 bytes for 64 bits).
const MAX_VARINT_LEN: usize = 10;

/// Delta-of-delta bucket: (prefix value, prefix width, payload width).
const DOD_14: (u64, u32, u32) = (0b10, 2, 14);
const DOD_17: (u64, u32, u32) = (0b110, 3, 17);
const DOD_20: (u64, u32, u32) = (0b1110, 4, 20);
const DOD_64: (u64, u32, u32) = (0b1111, 4, 64);
/// Longest unary delta-of-delta prefix ("1111").
const DOD_MAX_PREFIX: u32 = 4;

/// Whether `x` fits the `nbits` delta-of-delta bucket. The range is asymmetric exactly as in
/// Prometheus: `-(2^(n-1) - 1) ..= 2^(n-1)`.
#[inline]
fn bit_range(x: i64, nbits: u32) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= x && x <= half
}

/// Encoder state: everything needed to append without re-reading the chunk.
#[derive(Debug, Clone, Copy)]
struct XorState {
    t: i64,
    v: u64,
    t_delta: u64,
    num: u16,
    leading: u8,
    trailing: u8,
    bits: BitWriter,
}

impl XorState {
    fn empty() -> Self {
        XorState {
            t: 0,
            v: 0,
            t_delta: 0,
            num: 0,
            leading: LEADING_UNSET,
            trailing: 0,
            bits: BitWriter::byte_aligned(),
        }
    }

    /// Appends one sample to `buf`, which holds the chunk bytes this state describes.
    #[inline]
    fn append(&mut self, buf: &mut Vec<u8>, t: i64, v: f64) -> Result<()> {
        if self.num == u16::MAX {
            return Err(Error::Other(format!(
                "XOR chunk is full ({} samples)",
                u16::MAX
            )));
        }
        let v_bits = v.to_bits();
        let mut t_delta = 0u64;
        match self.num {
            0 => {
                let mut tmp = [0u8; MAX_VARINT_LEN];
                let n = put_varint(&mut tmp, t);
                for &b in &tmp[..n] {
                    self.bits.write_byte(buf, b);
                }
                self.bits.write_bits(buf, v_bits, 64);
            }
            1 => {
                t_delta = (t as u64).wrapping_sub(self.t as u64);
                let mut tmp = [0u8; MAX_VARINT_LEN];
                let n = put_uvarint(&mut tmp, t_delta);
                for &b in &tmp[..n] {
                    self.bits.write_byte(buf, b);
                }
                self.write_value(buf, v_bits);
            }
            _ => {
                t_delta = (t as u64).wrapping_sub(self.t as u64);
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    self.bits.write_bit(buf, false);
                } else {
                    let (prefix, prefix_bits, payload_bits) = if bit_range(dod, DOD_14.2) {
                        DOD_14
                    } else if bit_range(dod, DOD_17.2) {
                        DOD_17
                    } else if bit_range(dod, DOD_20.2) {
                        DOD_20
                    } else {
                        DOD_64
                    };
                    if payload_bits == 64 {
                        self.bits.write_bits(buf, prefix, prefix_bits);
                        self.bits.write_bits(buf, dod as u64, 64);
                    } else {
                        let payload = (dod as u64) & ((1u64 << payload_bits) - 1);
                        self.bits.write_bits(
                            buf,
                            (prefix << payload_bits) | payload,
                            prefix_bits + payload_bits,
                        );
                    }
                }
                self.write_value(buf, v_bits);
            }
        }
        self.t = t;
        self.v = v_bits;
        self.t_delta = t_delta;
        self.num += 1;
        let count = self.num.to_be_bytes();
        if let Some(h) = buf.get_mut(..XOR_HEADER_SIZE) {
            h.copy_from_slice(&count);
        }
        Ok(())
    }

    #[inline]
    fn write_value(&mut self, buf: &mut Vec<u8>, v_bits: u64) {
        let delta = v_bits ^ self.v;
        if delta == 0 {
            self.bits.write_bit(buf, false);
            return;
        }
        let leading = (delta.leading_zeros() as u8).min(MAX_LEADING);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != LEADING_UNSET && leading >= self.leading && trailing >= self.trailing {
            // "10": reuse the previous window.
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            self.bits.write_bits(buf, 0b10, 2);
            self.bits.write_bits(buf, delta >> self.trailing, sig);
        } else {
            // "11": new window, leading in 5 bits, significant bits in 6 (64 stored as 0).
            self.leading = leading;
            self.trailing = trailing;
            let sig = 64 - u32::from(leading) - u32::from(trailing);
            let head = (0b11u64 << (LEADING_BITS + SIGBITS_BITS))
                | (u64::from(leading) << SIGBITS_BITS)
                | (u64::from(sig) & ((1 << SIGBITS_BITS) - 1));
            self.bits
                .write_bits(buf, head, 2 + LEADING_BITS + SIGBITS_BITS);
            self.bits.write_bits(buf, delta >> trailing, sig);
        }
    }

    /// Rebuilds the state at the end of existing chunk bytes, truncating `buf` to the bits the
    /// samples use and zeroing any padding, so new bits continue the stream exactly.
    fn resume(buf: &mut Vec<u8>) -> Result<Self> {
        let mut it = XorIterator::new(buf);
        while it.next() {}
        if let Some(e) = it.err.take() {
            return Err(e);
        }
        let end_bit = XOR_HEADER_SIZE * 8 + it.br.bit_pos();
        let st = XorState {
            t: it.t,
            v: it.v,
            t_delta: it.t_delta,
            num: it.num_read,
            // With fewer than two samples no value window exists yet; an uninterrupted
            // appender would still have it unset, so resuming produces identical bytes.
            // Likewise while every value so far equalled the first: no "11" was read.
            leading: if it.num_read < 2 || !it.window_read {
                LEADING_UNSET
            } else {
                it.leading
            },
            trailing: it.trailing,
            bits: BitWriter::at_bit(end_bit),
        };
        let keep = end_bit.div_ceil(8);
        buf.truncate(keep);
        let used = end_bit % 8;
        if used != 0 {
            if let Some(last) = buf.last_mut() {
                *last &= !(0xffu8 >> used);
            }
        }
        Ok(st)
    }
}

/// Writes `x` as a Go-style zigzag varint; returns the length.
fn put_varint(out: &mut [u8; MAX_VARINT_LEN], x: i64) -> usize {
    let ux = ((x as u64) << 1) ^ ((x >> 63) as u64);
    put_uvarint(out, ux)
}

/// Writes `x` as a Go-style unsigned varint (LEB128); returns the length.
fn put_uvarint(out: &mut [u8; MAX_VARINT_LEN], mut x: u64) -> usize {
    let mut i = 0;
    while x >= 0x80 {
        out[i] = (x as u8) | 0x80;
        x >>= 7;
        i += 1;
    }
    out[i] = x as u8;
    i + 1
}

/// An XOR chunk owning its bytes (header included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XorChunk {
    buf: Vec<u8>,
}

impl Default for XorChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl XorChunk {
    /// An empty chunk: just the zero sample count.
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(INITIAL_CAPACITY);
        buf.extend_from_slice(&[0, 0]);
        XorChunk { buf }
    }

    /// Wraps chunk bytes (as stored in a chunk file). Checks that the header is present; the
    /// samples are checked lazily by the iterator.
    pub fn from_bytes(b: Vec<u8>) -> Result<Self> {
        if b.len() < XOR_HEADER_SIZE {
            return Err(Error::corruption(
                CHUNK_DATA_LOCATION,
                0,
                format!(
                    "XOR chunk of {} bytes is shorter than its {XOR_HEADER_SIZE}-byte header",
                    b.len()
                ),
            ));
        }
        Ok(XorChunk { buf: b })
    }

    /// The chunk bytes, header included, exactly as written to chunk files.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Consumes the chunk, returning its bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Number of samples, from the header.
    pub fn num_samples(&self) -> u16 {
        read_count(&self.buf)
    }

    /// An appender that continues after the last sample. Decodes the chunk once to rebuild the
    /// encoder state; fails if the existing bytes do not decode.
    pub fn appender(&mut self) -> Result<XorAppender<'_>> {
        let st = XorState::resume(&mut self.buf)?;
        Ok(XorAppender {
            buf: &mut self.buf,
            st,
        })
    }

    /// An iterator over the samples.
    pub fn iter(&self) -> XorIterator<'_> {
        XorIterator::new(&self.buf)
    }
}

fn read_count(b: &[u8]) -> u16 {
    match b {
        [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
        _ => 0,
    }
}

/// Appends to a borrowed [`XorChunk`] without re-reading it.
#[derive(Debug)]
pub struct XorAppender<'a> {
    buf: &'a mut Vec<u8>,
    st: XorState,
}

impl XorAppender<'_> {
    /// Appends a sample. Timestamps should increase (the codec itself accepts any, as
    /// Prometheus' does).
    ///
    /// # Panics
    /// If the chunk already holds `u16::MAX` samples; use [`XorAppender::try_append`] or
    /// cut chunks earlier (Prometheus cuts at 120 samples).
    pub fn append(&mut self, t: i64, v: f64) {
        if let Err(e) = self.st.append(self.buf, t, v) {
            panic!("{e}");
        }
    }

    /// Appends a sample, failing when the chunk is full.
    pub fn try_append(&mut self, t: i64, v: f64) -> Result<()> {
        self.st.append(self.buf, t, v)
    }
}

/// An owned open chunk plus its appender state, for the head's one open chunk per series.
/// About 56 bytes plus the chunk bytes.
#[derive(Debug, Clone)]
pub struct XorEncoder {
    buf: Vec<u8>,
    st: XorState,
}

impl Default for XorEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl XorEncoder {
    /// An encoder for a new, empty chunk.
    pub fn new() -> Self {
        XorEncoder {
            buf: XorChunk::new().buf,
            st: XorState::empty(),
        }
    }

    /// Continues an existing chunk (decodes it once).
    pub fn from_chunk(chunk: XorChunk) -> Result<Self> {
        let mut buf = chunk.buf;
        let st = XorState::resume(&mut buf)?;
        Ok(XorEncoder { buf, st })
    }

    /// Appends a sample.
    ///
    /// # Panics
    /// If the chunk already holds `u16::MAX` samples (see [`XorEncoder::try_append`]).
    pub fn append(&mut self, t: i64, v: f64) {
        if let Err(e) = self.st.append(&mut self.buf, t, v) {
            panic!("{e}");
        }
    }

    /// Appends a sample, failing when the chunk is full.
    pub fn try_append(&mut self, t: i64, v: f64) -> Result<()> {
        self.st.append(&mut self.buf, t, v)
    }

    /// The chunk bytes so far (a valid chunk at every point).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Samples appended so far.
    pub fn num_samples(&self) -> u16 {
        self.st.num
    }

    /// The last appended sample, if any.
    pub fn last_sample(&self) -> Option<(i64, f64)> {
        (self.st.num > 0).then(|| (self.st.t, f64::from_bits(self.st.v)))
    }

    /// An iterator over the samples appended so far.
    pub fn iter(&self) -> XorIterator<'_> {
        XorIterator::new(&self.buf)
    }

    /// Heap bytes held by the buffer (capacity, not length).
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// Ends the chunk, returning it with its buffer shrunk to fit.
    pub fn finish(mut self) -> XorChunk {
        self.buf.shrink_to_fit();
        XorChunk { buf: self.buf }
    }
}

/// Decodes an XOR chunk from borrowed bytes (e.g. an mmapped chunk file) without copying.
/// `next`/`seek` return false at the end or on damage; `err` then tells which.
#[derive(Debug)]
pub struct XorIterator<'a> {
    br: BitReader<'a>,
    num_total: u16,
    num_read: u16,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    /// Whether a "11" (new window) value was read: until then the encoder had no window.
    window_read: bool,
    err: Option<Error>,
}

impl<'a> XorIterator<'a> {
    /// An iterator over chunk bytes (header included). Bytes shorter than the header give an
    /// iterator that is already in error.
    pub fn new(b: &'a [u8]) -> Self {
        let (br, err) = match b.get(XOR_HEADER_SIZE..) {
            Some(rest) => (BitReader::new(rest), None),
            None => (
                BitReader::new(&[]),
                Some(Error::corruption(
                    CHUNK_DATA_LOCATION,
                    0,
                    format!(
                        "XOR chunk of {} bytes is shorter than its {XOR_HEADER_SIZE}-byte header",
                        b.len()
                    ),
                )),
            ),
        };
        XorIterator {
            br,
            num_total: read_count(b),
            num_read: 0,
            t: i64::MIN,
            v: 0,
            t_delta: 0,
            leading: 0,
            trailing: 0,
            window_read: false,
            err,
        }
    }

    /// Number of samples the header announces.
    pub fn num_samples(&self) -> u16 {
        self.num_total
    }

    /// Advances to the next sample. False at the end of the chunk or on a decode error.
    #[allow(clippy::should_implement_trait)]
    #[inline(always)]
    pub fn next(&mut self) -> bool {
        if self.num_read == self.num_total || self.err.is_some() {
            return false;
        }
        if self.num_read >= 2 && self.next_wide() {
            self.num_read += 1;
            return true;
        }
        self.next_checked()
    }

    /// Decodes a mid-chunk sample whose delta-of-delta and value both sit in one buffered
    /// word, consuming its bits; false (nothing consumed) for anything else.
    #[inline(always)]
    fn next_wide(&mut self) -> bool {
        let Some(buf) = self.br.peek_wide() else {
            return false;
        };
        let Some((dod, dod_bits)) = wide_dod(buf) else {
            return false;
        };
        // At least `WIDE_PEEK_BITS - dod_bits` valid bits follow the delta-of-delta.
        let rest = buf << dod_bits;
        let avail = WIDE_PEEK_BITS - dod_bits;
        let (xor, value_bits, window) = if rest >> 63 == 0 {
            (0, 1, None)
        } else if rest >> 62 == 0b10 {
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            if sig == 0 || 2 + sig > avail {
                return false;
            }
            (((rest << 2) >> (64 - sig)) << self.trailing, 2 + sig, None)
        } else {
            let head = (rest << 2) >> (64 - (LEADING_BITS + SIGBITS_BITS));
            let leading = (head >> SIGBITS_BITS) as u32;
            let sig = match (head & ((1 << SIGBITS_BITS) - 1)) as u32 {
                0 => 64,
                n => n,
            };
            let used = 2 + LEADING_BITS + SIGBITS_BITS + sig;
            if leading + sig > 64 || used > avail {
                return false;
            }
            let trailing = 64 - leading - sig;
            let bits = (rest << (2 + LEADING_BITS + SIGBITS_BITS)) >> (64 - sig);
            (
                bits << trailing,
                used,
                Some((leading as u8, trailing as u8)),
            )
        };
        self.br.consume(dod_bits + value_bits);
        self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
        self.t = self.t.wrapping_add(self.t_delta as i64);
        self.v ^= xor;
        if let Some((leading, trailing)) = window {
            self.leading = leading;
            self.trailing = trailing;
            self.window_read = true;
        }
        true
    }

    /// `next` through the field-by-field checked decoder (first samples, wide fields, the
    /// tail of the chunk, damage).
    #[inline(never)]
    fn next_checked(&mut self) -> bool {
        match self.decode_next() {
            Ok(()) => {
                self.num_read += 1;
                true
            }
            Err(reason) => {
                let offset = (XOR_HEADER_SIZE + self.br.bit_pos() / 8) as u64;
                self.err = Some(Error::corruption(
                    CHUNK_DATA_LOCATION,
                    offset,
                    format!(
                        "XOR sample {} of {}: {reason}",
                        self.num_read, self.num_total
                    ),
                ));
                false
            }
        }
    }

    /// Advances to the first sample with timestamp `>= t` (staying put if the current sample
    /// qualifies). False if there is none or on a decode error.
    pub fn seek(&mut self, t: i64) -> bool {
        if self.err.is_some() {
            return false;
        }
        while t > self.t || self.num_read == 0 {
            if !self.next() {
                return false;
            }
        }
        true
    }

    /// The current sample. Only meaningful after `next`/`seek` returned true.
    #[inline]
    pub fn at(&self) -> (i64, f64) {
        (self.t, f64::from_bits(self.v))
    }

    /// The decode error that stopped iteration, if any.
    pub fn err(&self) -> Option<&Error> {
        self.err.as_ref()
    }

    /// Takes the decode error out of the iterator.
    pub fn take_err(&mut self) -> Option<Error> {
        self.err.take()
    }

    /// A `std::iter::Iterator` over `(t, v)`; check [`XorSamples::err`] afterwards.
    pub fn samples(self) -> XorSamples<'a> {
        XorSamples { it: self }
    }

    #[inline]
    fn decode_next(&mut self) -> std::result::Result<(), &'static str> {
        const EOS: &str = "unexpected end of chunk data";
        match self.num_read {
            0 => {
                let ux = self.read_uvarint()?;
                self.t = ((ux >> 1) as i64) ^ -((ux & 1) as i64);
                self.v = self.br.read_bits(64).map_err(|_| EOS)?;
                Ok(())
            }
            1 => {
                self.t_delta = self.read_uvarint()?;
                self.t = self.t.wrapping_add(self.t_delta as i64);
                self.read_value()
            }
            _ => {
                let dod = match self.br.peek_wide().and_then(wide_dod) {
                    Some((dod, used)) => {
                        self.br.consume(used);
                        dod
                    }
                    None => {
                        let prefix = self.br.read_unary_prefix(DOD_MAX_PREFIX).map_err(|_| EOS)?;
                        match prefix {
                            0 => 0,
                            1 => self.read_signed(DOD_14.2)?,
                            2 => self.read_signed(DOD_17.2)?,
                            3 => self.read_signed(DOD_20.2)?,
                            _ => self.br.read_bits(64).map_err(|_| EOS)? as i64,
                        }
                    }
                };
                self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
                self.t = self.t.wrapping_add(self.t_delta as i64);
                self.read_value()
            }
        }
    }

    /// Reads an `nbits` two's-complement-ish bucket value as Prometheus does: values above
    /// `2^(n-1)` are negative.
    #[inline]
    fn read_signed(&mut self, nbits: u32) -> std::result::Result<i64, &'static str> {
        let bits = self
            .br
            .read_bits(nbits)
            .map_err(|_| "unexpected end of chunk data")?;
        let half = 1u64 << (nbits - 1);
        Ok(if bits > half {
            bits as i64 - (1i64 << nbits)
        } else {
            bits as i64
        })
    }

    /// Reads an XORed value; values whose bits sit in one buffered word are parsed from it
    /// directly, everything else (and anything invalid) takes the checked path.
    #[inline]
    fn read_value(&mut self) -> std::result::Result<(), &'static str> {
        if let Some(buf) = self.br.peek_wide() {
            if buf >> 63 == 0 {
                // "0": same value as before.
                self.br.consume(1);
                return Ok(());
            }
            if buf >> 62 == 0b10 {
                // "10": the previous leading/trailing window.
                let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
                if (1..=WIDE_PEEK_BITS - 2).contains(&sig) {
                    let bits = (buf << 2) >> (64 - sig);
                    self.br.consume(2 + sig);
                    self.v ^= bits << self.trailing;
                    return Ok(());
                }
            } else {
                // "11": a new window in the next 11 bits, then the significant bits.
                let head = (buf << 2) >> (64 - (LEADING_BITS + SIGBITS_BITS));
                let leading = (head >> SIGBITS_BITS) as u32;
                let sig = match (head & ((1 << SIGBITS_BITS) - 1)) as u32 {
                    0 => 64,
                    n => n,
                };
                let used = 2 + LEADING_BITS + SIGBITS_BITS + sig;
                if leading + sig <= 64 && used <= WIDE_PEEK_BITS {
                    let bits = (buf << (2 + LEADING_BITS + SIGBITS_BITS)) >> (64 - sig);
                    self.br.consume(used);
                    self.leading = leading as u8;
                    self.trailing = (64 - leading - sig) as u8;
                    self.window_read = true;
                    self.v ^= bits << self.trailing;
                    return Ok(());
                }
            }
        }
        self.read_value_checked()
    }

    #[inline(never)]
    fn read_value_checked(&mut self) -> std::result::Result<(), &'static str> {
        const EOS: &str = "unexpected end of chunk data";
        let control = self.br.read_unary_prefix(2).map_err(|_| EOS)?;
        if control == 0 {
            return Ok(());
        }
        if control == 2 {
            let head = self
                .br
                .read_bits(LEADING_BITS + SIGBITS_BITS)
                .map_err(|_| EOS)?;
            let leading = (head >> SIGBITS_BITS) as u8;
            let mut sig = (head & ((1 << SIGBITS_BITS) - 1)) as u8;
            if sig == 0 {
                sig = 64;
            }
            if u32::from(leading) + u32::from(sig) > 64 {
                return Err("leading zeros plus significant bits exceed 64");
            }
            self.leading = leading;
            self.trailing = 64 - leading - sig;
            self.window_read = true;
        }
        let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
        let bits = self.br.read_bits(sig).map_err(|_| EOS)?;
        self.v ^= bits << self.trailing;
        Ok(())
    }

    /// Reads a Go-style unsigned varint byte by byte at the current bit position.
    fn read_uvarint(&mut self) -> std::result::Result<u64, &'static str> {
        let mut x = 0u64;
        let mut shift = 0u32;
        for i in 0..MAX_VARINT_LEN {
            let b = self
                .br
                .read_byte()
                .map_err(|EndOfStream| "unexpected end of chunk data in varint")?;
            if b < 0x80 {
                if i == MAX_VARINT_LEN - 1 && b > 1 {
                    return Err("varint overflows 64 bits");
                }
                return Ok(x | (u64::from(b) << shift));
            }
            x |= u64::from(b & 0x7f) << shift;
            shift += 7;
        }
        Err("varint overflows 64 bits")
    }
}

/// Parses a delta-of-delta in the 1, 16, 20 and 24-bit buckets from a word of at least
/// `WIDE_PEEK_BITS` buffered bits: (dod, bits used). None for the 68-bit bucket.
#[inline]
fn wide_dod(buf: u64) -> Option<(i64, u32)> {
    let (prefix_bits, nbits) = match buf.leading_ones() {
        0 => return Some((0, 1)),
        1 => (DOD_14.1, DOD_14.2),
        2 => (DOD_17.1, DOD_17.2),
        3 => (DOD_20.1, DOD_20.2),
        _ => return None,
    };
    let bits = (buf << prefix_bits) >> (64 - nbits);
    let dod = if bits > 1u64 << (nbits - 1) {
        bits as i64 - (1i64 << nbits)
    } else {
        bits as i64
    };
    Some((dod, prefix_bits + nbits))
}

/// `std::iter::Iterator` adapter over an [`XorIterator`].
#[derive(Debug)]
pub struct XorSamples<'a> {
    it: XorIterator<'a>,
}

impl XorSamples<'_> {
    /// The decode error that ended iteration early, if any.
    pub fn err(&self) -> Option<&Error> {
        self.it.err()
    }
}

impl Iterator for XorSamples<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        if self.it.next() {
            Some(self.it.at())
        } else {
            None
        }
    }
}

#[cfg(test)]
#[path = "xor_tests.rs"]
mod tests;
