//! Typed WAL records, byte-compatible with Prometheus `tsdb/record`: series (type 1),
//! float samples (2), tombstones (3) and metadata (6). The WAL itself treats records as
//! opaque bytes; this module is the only place that knows their layout. Decoding never
//! panics on bad bytes: it returns `Corruption`-style errors naming the record type and
//! the offset inside the record.

use crate::error::{Error, Result};
use crate::labels::{Label, Labels};

/// Record type bytes, as Prometheus numbers them.
pub const RECORD_SERIES: u8 = 1;
pub const RECORD_SAMPLES: u8 = 2;
pub const RECORD_TOMBSTONES: u8 = 3;
pub const RECORD_EXEMPLARS: u8 = 4;
pub const RECORD_MMAP_MARKERS: u8 = 5;
pub const RECORD_METADATA: u8 = 6;
pub const RECORD_HISTOGRAM_SAMPLES: u8 = 7;
pub const RECORD_FLOAT_HISTOGRAM_SAMPLES: u8 = 8;

/// A series record entry: the head's reference for a series and its labels.
#[derive(Clone, Debug, PartialEq)]
pub struct RefSeries {
    pub series_ref: u64,
    pub labels: Labels,
}

/// A float sample for a series reference.
#[derive(Clone, Copy, Debug)]
pub struct RefSample {
    pub series_ref: u64,
    pub t: i64,
    pub v: f64,
}

impl PartialEq for RefSample {
    fn eq(&self, o: &Self) -> bool {
        self.series_ref == o.series_ref && self.t == o.t && self.v.to_bits() == o.v.to_bits()
    }
}

/// A deleted interval `[mint, maxt]` of a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefTombstone {
    pub series_ref: u64,
    pub mint: i64,
    pub maxt: i64,
}

/// Metric metadata types, numbered as Prometheus' record package numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MetricType {
    Unknown = 0,
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
    GaugeHistogram = 4,
    Summary = 5,
    Info = 6,
    StateSet = 7,
}

impl MetricType {
    fn from_u8(b: u8) -> MetricType {
        match b {
            1 => MetricType::Counter,
            2 => MetricType::Gauge,
            3 => MetricType::Histogram,
            4 => MetricType::GaugeHistogram,
            5 => MetricType::Summary,
            6 => MetricType::Info,
            7 => MetricType::StateSet,
            _ => MetricType::Unknown,
        }
    }

    /// The name Prometheus' API uses (`counter`, `gauge`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Unknown => "unknown",
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
        }
    }
}

/// Metadata of a series (type, unit, help).
#[derive(Clone, Debug, PartialEq)]
pub struct RefMetadata {
    pub series_ref: u64,
    pub metric_type: MetricType,
    pub unit: String,
    pub help: String,
}

const META_UNIT: &str = "UNIT";
const META_HELP: &str = "HELP";

/// A decoded record.
#[derive(Debug, PartialEq)]
pub enum Record {
    Series(Vec<RefSeries>),
    Samples(Vec<RefSample>),
    Tombstones(Vec<RefTombstone>),
    Metadata(Vec<RefMetadata>),
    /// A record type we recognise but do not use yet (exemplars, histograms, mmap markers),
    /// or an unknown one: carried so that replay can count and skip it.
    Other(u8),
}

// ---- encoding -------------------------------------------------------------------------

/// Appends an unsigned LEB128 varint.
pub fn put_uvarint(b: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        b.push((x as u8) | 0x80);
        x >>= 7;
    }
    b.push(x as u8);
}

/// Appends a zig-zag signed varint (Go's `binary.PutVarint`).
pub fn put_varint(b: &mut Vec<u8>, x: i64) {
    put_uvarint(b, ((x << 1) ^ (x >> 63)) as u64);
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    put_uvarint(b, s.len() as u64);
    b.extend_from_slice(s.as_bytes());
}

/// Encodes a series record into `b` (cleared first).
pub fn encode_series(series: &[RefSeries], b: &mut Vec<u8>) {
    encode_series_refs(series.iter().map(|s| (s.series_ref, &s.labels)), b);
}

/// Encodes a series record from borrowed `(series ref, labels)` entries into `b` (cleared
/// first): the same bytes as [`encode_series`], without building `RefSeries` copies.
pub fn encode_series_refs<'a>(
    series: impl IntoIterator<Item = (u64, &'a Labels)>,
    b: &mut Vec<u8>,
) {
    b.clear();
    b.push(RECORD_SERIES);
    for (series_ref, labels) in series {
        b.extend_from_slice(&series_ref.to_be_bytes());
        put_uvarint(b, labels.len() as u64);
        for l in labels {
            put_str(b, &l.name);
            put_str(b, &l.value);
        }
    }
}

/// Encodes a samples record into `b` (cleared first): base ref and time, then deltas.
pub fn encode_samples(samples: &[RefSample], b: &mut Vec<u8>) {
    b.clear();
    b.push(RECORD_SAMPLES);
    let Some(first) = samples.first() else {
        return;
    };
    b.reserve(16 + samples.len() * 12);
    b.extend_from_slice(&first.series_ref.to_be_bytes());
    b.extend_from_slice(&first.t.to_be_bytes());
    for s in samples {
        put_varint(
            b,
            (s.series_ref as i64).wrapping_sub(first.series_ref as i64),
        );
        put_varint(b, s.t.wrapping_sub(first.t));
        b.extend_from_slice(&s.v.to_bits().to_be_bytes());
    }
}

/// Encodes a tombstones record into `b` (cleared first).
pub fn encode_tombstones(stones: &[RefTombstone], b: &mut Vec<u8>) {
    b.clear();
    b.push(RECORD_TOMBSTONES);
    for s in stones {
        b.extend_from_slice(&s.series_ref.to_be_bytes());
        put_varint(b, s.mint);
        put_varint(b, s.maxt);
    }
}

/// Encodes a metadata record into `b` (cleared first).
pub fn encode_metadata(meta: &[RefMetadata], b: &mut Vec<u8>) {
    b.clear();
    b.push(RECORD_METADATA);
    for m in meta {
        put_uvarint(b, m.series_ref);
        b.push(m.metric_type as u8);
        put_uvarint(b, 2);
        put_str(b, META_UNIT);
        put_str(b, &m.unit);
        put_str(b, META_HELP);
        put_str(b, &m.help);
    }
}

// ---- decoding -------------------------------------------------------------------------

/// A bounds-checked cursor over a record's bytes.
pub struct Decbuf<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Decbuf<'a> {
    /// A cursor over `b`; `what` names the structure in errors.
    pub fn new(b: &'a [u8], what: &'static str) -> Self {
        Decbuf { b, pos: 0, what }
    }

    fn err(&self, reason: &str) -> Error {
        Error::Other(format!(
            "invalid {} record at byte {}: {reason}",
            self.what, self.pos
        ))
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    /// Reads one byte.
    pub fn byte(&mut self) -> Result<u8> {
        let v = *self
            .b
            .get(self.pos)
            .ok_or_else(|| self.err("unexpected end"))?;
        self.pos += 1;
        Ok(v)
    }

    /// Reads a big-endian u64.
    pub fn be64(&mut self) -> Result<u64> {
        let s = self
            .b
            .get(self.pos..self.pos + 8)
            .ok_or_else(|| self.err("unexpected end reading 8 bytes"))?;
        self.pos += 8;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }

    /// Reads an unsigned varint.
    pub fn uvarint(&mut self) -> Result<u64> {
        let mut x: u64 = 0;
        let mut shift = 0u32;
        loop {
            let c = self.byte()?;
            if shift == 63 && c > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            x |= u64::from(c & 0x7f) << shift;
            if c < 0x80 {
                return Ok(x);
            }
            shift += 7;
            if shift > 63 {
                return Err(self.err("varint overflows 64 bits"));
            }
        }
    }

    /// Reads a zig-zag signed varint.
    pub fn varint(&mut self) -> Result<i64> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// Reads a length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<&'a str> {
        let n = self.uvarint()? as usize;
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| self.err("string length past end"))?;
        let s = std::str::from_utf8(&self.b[self.pos..end])
            .map_err(|_| self.err("string is not valid UTF-8"))?;
        self.pos = end;
        Ok(s)
    }
}

/// The type byte of a record, or None for an empty one.
pub fn record_type(rec: &[u8]) -> Option<u8> {
    rec.first().copied()
}

/// Decodes any record.
pub fn decode(rec: &[u8]) -> Result<Record> {
    match record_type(rec) {
        Some(RECORD_SERIES) => decode_series(rec).map(Record::Series),
        Some(RECORD_SAMPLES) => {
            let mut v = Vec::new();
            decode_samples(rec, &mut v)?;
            Ok(Record::Samples(v))
        }
        Some(RECORD_TOMBSTONES) => decode_tombstones(rec).map(Record::Tombstones),
        Some(RECORD_METADATA) => decode_metadata(rec).map(Record::Metadata),
        Some(t) => Ok(Record::Other(t)),
        None => Err(Error::Other("empty WAL record".into())),
    }
}

/// Decodes a series record.
pub fn decode_series(rec: &[u8]) -> Result<Vec<RefSeries>> {
    let mut d = Decbuf::new(rec, "series");
    if d.byte()? != RECORD_SERIES {
        return Err(d.err("not a series record"));
    }
    let mut out = Vec::new();
    while d.remaining() > 0 {
        let series_ref = d.be64()?;
        let n = d.uvarint()? as usize;
        if n > d.remaining() {
            return Err(d.err("label count past end"));
        }
        let mut ls = Vec::with_capacity(n);
        for _ in 0..n {
            let name = d.str()?;
            let value = d.str()?;
            ls.push(Label::new(name, value));
        }
        let labels = Labels::new(ls).map_err(|e| d.err(&e.to_string()))?;
        out.push(RefSeries { series_ref, labels });
    }
    Ok(out)
}

/// Decodes a samples record, appending to `out`.
pub fn decode_samples(rec: &[u8], out: &mut Vec<RefSample>) -> Result<()> {
    let mut d = Decbuf::new(rec, "samples");
    if d.byte()? != RECORD_SAMPLES {
        return Err(d.err("not a samples record"));
    }
    if d.remaining() == 0 {
        return Ok(());
    }
    let base_ref = d.be64()?;
    let base_t = d.be64()? as i64;
    while d.remaining() > 0 {
        let dref = d.varint()?;
        let dt = d.varint()?;
        let v = f64::from_bits(d.be64()?);
        out.push(RefSample {
            series_ref: (base_ref as i64).wrapping_add(dref) as u64,
            t: base_t.wrapping_add(dt),
            v,
        });
    }
    Ok(())
}

/// Decodes a tombstones record.
pub fn decode_tombstones(rec: &[u8]) -> Result<Vec<RefTombstone>> {
    let mut d = Decbuf::new(rec, "tombstones");
    if d.byte()? != RECORD_TOMBSTONES {
        return Err(d.err("not a tombstones record"));
    }
    let mut out = Vec::new();
    while d.remaining() > 0 {
        out.push(RefTombstone {
            series_ref: d.be64()?,
            mint: d.varint()?,
            maxt: d.varint()?,
        });
    }
    Ok(out)
}

/// Decodes a metadata record. Unknown fields are skipped, as Prometheus does.
pub fn decode_metadata(rec: &[u8]) -> Result<Vec<RefMetadata>> {
    let mut d = Decbuf::new(rec, "metadata");
    if d.byte()? != RECORD_METADATA {
        return Err(d.err("not a metadata record"));
    }
    let mut out = Vec::new();
    while d.remaining() > 0 {
        let series_ref = d.uvarint()?;
        let metric_type = MetricType::from_u8(d.byte()?);
        let fields = d.uvarint()?;
        let mut m = RefMetadata {
            series_ref,
            metric_type,
            unit: String::new(),
            help: String::new(),
        };
        for _ in 0..fields {
            let k = d.str()?;
            let v = d.str()?;
            match k {
                META_UNIT => m.unit = v.to_string(),
                META_HELP => m.help = v.to_string(),
                _ => {}
            }
        }
        out.push(m);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn golden_samples_record() {
        let s = [
            RefSample {
                series_ref: 5,
                t: 1000,
                v: 1.0,
            },
            RefSample {
                series_ref: 3,
                t: 1015,
                v: f64::from_bits(0x7ff0000000000002),
            },
        ];
        let mut b = Vec::new();
        encode_samples(&s, &mut b);
        let mut want = vec![2u8];
        want.extend_from_slice(&5u64.to_be_bytes());
        want.extend_from_slice(&1000i64.to_be_bytes());
        want.extend_from_slice(&[0, 0]); // ref delta 0, time delta 0
        want.extend_from_slice(&1.0f64.to_bits().to_be_bytes());
        want.extend_from_slice(&[3, 30]); // zig-zag(-2) = 3, zig-zag(15) = 30
        want.extend_from_slice(&0x7ff0000000000002u64.to_be_bytes());
        assert_eq!(b, want);
        let mut out = Vec::new();
        decode_samples(&b, &mut out).unwrap();
        assert_eq!(out, s);
    }

    #[test]
    fn golden_series_record() {
        let s = [RefSeries {
            series_ref: 1,
            labels: Labels::from_pairs(&[("a", "b")]).unwrap(),
        }];
        let mut b = Vec::new();
        encode_series(&s, &mut b);
        assert_eq!(b, [1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, b'a', 1, b'b']);
        assert_eq!(decode_series(&b).unwrap(), s);
    }

    #[test]
    fn round_trips() {
        let t = [RefTombstone {
            series_ref: 9,
            mint: -5,
            maxt: 1 << 40,
        }];
        let mut b = Vec::new();
        encode_tombstones(&t, &mut b);
        assert_eq!(decode_tombstones(&b).unwrap(), t);
        let m = [RefMetadata {
            series_ref: 7,
            metric_type: MetricType::Counter,
            unit: "seconds".into(),
            help: "Total time.".into(),
        }];
        encode_metadata(&m, &mut b);
        assert_eq!(decode_metadata(&b).unwrap(), m);
    }

    #[test]
    fn garbage_never_panics() {
        for len in 0..40 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 1) as u8).collect();
            for ty in 1..=8u8 {
                let mut r = junk.clone();
                r.insert(0, ty);
                let _ = decode(&r);
            }
        }
        assert!(decode_series(&[1, 0, 0, 0, 0, 0, 0, 0, 1, 200]).is_err());
    }
}
