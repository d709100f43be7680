//! Bit streams for the chunk codecs: a writer that appends the most significant bits first
//! into a `Vec<u8>` (remembering how many bits of the last byte are still free), and a reader
//! over a borrowed byte slice that never reads past its end.
//!
//! This module owns bit-level packing only. It must never know about samples, timestamps or
//! chunk headers, never panic on any input, and never allocate while reading.

/// Number of bits in a byte.
const BITS_PER_BYTE: usize = 8;

/// Returns a mask with the low `n` bits set (`n` in 0..=64).
#[inline]
fn low_mask(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// Appends bits, most significant first, to a byte vector. The state is just the number of
/// free (zero) low bits in the last byte, so it can be rebuilt for any existing stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BitWriter {
    /// Free bits at the low end of the last byte of the buffer (0..=7); 0 means the next bit
    /// starts a new byte.
    free: u8,
}

impl BitWriter {
    /// A writer whose stream ends on a byte boundary.
    pub(crate) fn byte_aligned() -> Self {
        BitWriter { free: 0 }
    }

    /// A writer whose stream ends `end_bit` bits into the buffer (bits counted from the start
    /// of the buffer). The caller must have truncated the buffer to `ceil(end_bit / 8)` bytes
    /// and zeroed the bits after `end_bit`.
    pub(crate) fn at_bit(end_bit: usize) -> Self {
        let used = end_bit % BITS_PER_BYTE;
        let free = if used == 0 { 0 } else { BITS_PER_BYTE - used };
        BitWriter { free: free as u8 }
    }

    /// Writes one bit.
    #[inline]
    pub(crate) fn write_bit(&mut self, buf: &mut Vec<u8>, bit: bool) {
        if self.free == 0 {
            buf.push(0);
            self.free = BITS_PER_BYTE as u8;
        }
        self.free -= 1;
        if bit {
            if let Some(last) = buf.last_mut() {
                *last |= 1 << self.free;
            }
        }
    }

    /// Writes the low `nbits` bits of `value` (1..=64), most significant first.
    #[inline]
    pub(crate) fn write_bits(&mut self, buf: &mut Vec<u8>, value: u64, nbits: u32) {
        debug_assert!(nbits <= 64);
        let mut n = nbits;
        let v = value & low_mask(n);
        if n == 0 {
            return;
        }
        // Fill the free low bits of the last byte first.
        if self.free > 0 {
            let free = u32::from(self.free);
            let take = free.min(n);
            let chunk = (v >> (n - take)) & low_mask(take);
            if let Some(last) = buf.last_mut() {
                *last |= (chunk << (free - take)) as u8;
            }
            self.free -= take as u8;
            n -= take;
        }
        // Whole bytes.
        while n >= 8 {
            n -= 8;
            buf.push((v >> n) as u8);
        }
        // Remaining high bits of a new byte.
        if n > 0 {
            buf.push(((v & low_mask(n)) << (8 - n)) as u8);
            self.free = (8 - n) as u8;
        }
    }

    /// Writes a whole byte at the current bit position.
    #[inline]
    pub(crate) fn write_byte(&mut self, buf: &mut Vec<u8>, byte: u8) {
        self.write_bits(buf, u64::from(byte), 8);
    }
}

/// The stream ended before the requested bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EndOfStream;

/// Reads bits, most significant first, from a borrowed byte slice through a 64-bit buffer
/// refilled a word at a time.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte of `data` to load into `buf`.
    next_byte: usize,
    /// Buffered bits, left-aligned: the next bit to read is bit 63.
    buf: u64,
    /// Number of valid bits in `buf`.
    valid: u32,
}

/// Longest read served from the buffer in one step; longer reads are split.
const MAX_BUFFERED_READ: u32 = 56;
/// Bits [`BitReader::peek_wide`] guarantees: after a refill the buffer holds at least this
/// many whenever the data has them.
pub(crate) const WIDE_PEEK_BITS: u32 = MAX_BUFFERED_READ + 1;

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `data`.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            next_byte: 0,
            buf: 0,
            valid: 0,
        }
    }

    /// Position of the next bit, counted from the start of the slice.
    #[inline]
    pub(crate) fn bit_pos(&self) -> usize {
        self.next_byte * BITS_PER_BYTE - self.valid as usize
    }

    /// Loads whole bytes into the buffer until it holds more than 56 bits or the data ends.
    #[inline]
    fn refill(&mut self) {
        let free_bytes = (64 - self.valid) / 8;
        if free_bytes == 0 {
            return;
        }
        if let Some(s) = self.data.get(self.next_byte..self.next_byte + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(s);
            let word = u64::from_be_bytes(w);
            let take = free_bytes * 8;
            // `valid` < 64 here since free_bytes > 0; keep only the `take` new bits.
            let new_bits =
                (word >> self.valid) & !(u64::MAX.checked_shr(self.valid + take).unwrap_or(0));
            self.buf |= new_bits;
            self.valid += take;
            self.next_byte += free_bytes as usize;
        } else {
            while self.valid <= 56 {
                let Some(&b) = self.data.get(self.next_byte) else {
                    break;
                };
                self.buf |= u64::from(b) << (56 - self.valid);
                self.valid += 8;
                self.next_byte += 1;
            }
        }
    }

    /// Takes `nbits` (1..=valid) bits from the buffer.
    #[inline]
    fn take(&mut self, nbits: u32) -> u64 {
        let v = self.buf >> (64 - nbits);
        self.buf = self.buf.checked_shl(nbits).unwrap_or(0);
        self.valid -= nbits;
        v
    }

    /// Reads `nbits` bits (0..=64).
    #[inline]
    pub(crate) fn read_bits(&mut self, nbits: u32) -> Result<u64, EndOfStream> {
        if nbits == 0 {
            return Ok(0);
        }
        if nbits > MAX_BUFFERED_READ {
            let hi = self.read_bits(32)?;
            let lo_bits = nbits - 32;
            let lo = self.read_bits(lo_bits)?;
            return Ok((hi << lo_bits) | lo);
        }
        if nbits > self.valid {
            self.refill();
            if nbits > self.valid {
                return Err(EndOfStream);
            }
        }
        Ok(self.take(nbits))
    }

    /// The buffered bits, left-aligned, once at least `WIDE_PEEK_BITS` of them are valid;
    /// None near the end of the data. Lets a decoder parse a whole field from one word and
    /// then [`BitReader::consume`] it, keeping the checked reads for the tail.
    #[inline]
    pub(crate) fn peek_wide(&mut self) -> Option<u64> {
        if self.valid < WIDE_PEEK_BITS {
            self.refill();
            if self.valid < WIDE_PEEK_BITS {
                return None;
            }
        }
        Some(self.buf)
    }

    /// Drops `nbits` bits seen through `peek_wide` (at most `WIDE_PEEK_BITS`).
    #[inline]
    pub(crate) fn consume(&mut self, nbits: u32) {
        debug_assert!(nbits <= self.valid && nbits <= WIDE_PEEK_BITS);
        self.buf <<= nbits;
        self.valid -= nbits;
    }

    /// Reads one bit.
    #[cfg(test)]
    pub(crate) fn read_bit(&mut self) -> Result<bool, EndOfStream> {
        Ok(self.read_bits(1)? == 1)
    }

    /// Counts leading one bits, consuming them and the terminating zero, up to `max` ones (the
    /// terminating zero is not read when `max` ones were seen). Returns the count.
    #[inline]
    pub(crate) fn read_unary_prefix(&mut self, max: u32) -> Result<u32, EndOfStream> {
        debug_assert!((1..=MAX_BUFFERED_READ).contains(&max));
        if max > self.valid {
            self.refill();
        }
        if max <= self.valid {
            let ones = (!self.buf).leading_zeros().min(max);
            let consumed = if ones == max { max } else { ones + 1 };
            self.take(consumed);
            return Ok(ones);
        }
        // Fewer than `max` bits left: the prefix must end within them.
        let ones = (!self.buf).leading_zeros().min(self.valid);
        if ones == self.valid {
            return Err(EndOfStream);
        }
        self.take(ones + 1);
        Ok(ones)
    }

    /// Reads a whole byte at the current bit position.
    #[inline]
    pub(crate) fn read_byte(&mut self) -> Result<u8, EndOfStream> {
        Ok(self.read_bits(8)? as u8)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn writes_msb_first_across_bytes() {
        let mut buf = Vec::new();
        let mut w = BitWriter::byte_aligned();
        w.write_bit(&mut buf, true);
        w.write_bits(&mut buf, 0b01, 2);
        w.write_bits(&mut buf, 0x1ff, 9);
        assert_eq!(buf, vec![0b1011_1111, 0b1111_0000]);
        w.write_byte(&mut buf, 0xab);
        assert_eq!(buf, vec![0b1011_1111, 0b1111_1010, 0b1011_0000]);
    }

    #[test]
    fn round_trips_mixed_widths() {
        let widths: Vec<u32> = (1..=64).chain((1..=64).rev()).collect();
        let mut buf = Vec::new();
        let mut w = BitWriter::byte_aligned();
        let val = |i: usize, n: u32| 0x9e37_79b9_7f4a_7c15u64.rotate_left(i as u32) & low_mask(n);
        for (i, &n) in widths.iter().enumerate() {
            w.write_bits(&mut buf, val(i, n), n);
        }
        let mut r = BitReader::new(&buf);
        for (i, &n) in widths.iter().enumerate() {
            assert_eq!(r.read_bits(n).unwrap(), val(i, n), "width {n}");
        }
        // Only padding is left.
        assert!(buf.len() * 8 - r.bit_pos() < 8);
    }

    #[test]
    fn resumes_at_bit() {
        let mut buf = Vec::new();
        let mut w = BitWriter::byte_aligned();
        w.write_bits(&mut buf, 0b101, 3);
        let mut w2 = BitWriter::at_bit(3);
        w2.write_bits(&mut buf, 0b11111, 5);
        assert_eq!(buf, vec![0b1011_1111]);
        assert_eq!(w2, BitWriter::byte_aligned());
    }

    #[test]
    fn reader_stops_at_end() {
        let buf = [0xffu8, 0x00];
        let mut r = BitReader::new(&buf);
        assert_eq!(r.read_unary_prefix(4).unwrap(), 4);
        assert_eq!(r.read_unary_prefix(4).unwrap(), 4);
        assert_eq!(r.read_unary_prefix(4).unwrap(), 0);
        assert_eq!(r.bit_pos(), 9);
        assert_eq!(r.read_bits(7).unwrap(), 0);
        assert_eq!(r.read_bits(1), Err(EndOfStream));
        assert_eq!(r.read_bit(), Err(EndOfStream));
        assert_eq!(r.read_byte(), Err(EndOfStream));
        let mut r = BitReader::new(&buf[..1]);
        assert_eq!(r.read_bits(9), Err(EndOfStream));
        assert_eq!(r.read_bits(64), Err(EndOfStream));
    }

    #[test]
    fn unary_prefix_slow_path_near_end() {
        let buf = [0b1101_0000u8];
        let mut r = BitReader::new(&buf);
        r.read_bits(5).unwrap(); // 3 bits left: 000
        assert_eq!(r.read_unary_prefix(4).unwrap(), 0);
        let mut r = BitReader::new(&buf);
        r.read_bits(6).unwrap(); // bits left: 00
        assert_eq!(r.read_unary_prefix(4).unwrap(), 0);
        let buf = [0b0000_0111u8];
        let mut r = BitReader::new(&buf);
        r.read_bits(5).unwrap(); // bits left: 111, then the end
        assert_eq!(r.read_unary_prefix(4), Err(EndOfStream));
        let mut r = BitReader::new(&buf);
        r.read_bits(4).unwrap(); // bits left: 0111
        assert_eq!(r.read_unary_prefix(4).unwrap(), 0);
        assert_eq!(r.read_unary_prefix(4), Err(EndOfStream));
        // A prefix ending exactly at the last bit.
        let buf = [0b0000_0110u8];
        let mut r = BitReader::new(&buf);
        r.read_bits(5).unwrap(); // bits left: 110
        assert_eq!(r.read_unary_prefix(4).unwrap(), 2);
        assert_eq!(r.bit_pos(), 8);
    }
}
