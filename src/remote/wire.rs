//! Zero-copy decoding of an RW 1.0 `prometheus.WriteRequest` (already decompressed): the
//! hot fields — series, their labels and float samples — are read straight from the body
//! into reusable flat vectors of byte offsets and `(timestamp, value)` pairs, so decoding a
//! request allocates nothing per series or label once the vectors have grown. The rare
//! parts (exemplars, native histograms, family metadata) are handed to the `prost` messages
//! of `proto.rs` on their own byte ranges, so they are validated exactly as before.
//!
//! The decoder follows protobuf's wire rules as `prost` applies them: unknown fields of any
//! wire type are skipped (groups too), a known field with the wrong wire type, a truncated
//! or over-long varint, a length past the end of its message, a zero field number or an
//! unknown wire type fail the whole request, and for a repeated scalar field the last
//! value wins. Errors name the byte offset in the decompressed body. This module never
//! validates labels (UTF-8, names) and never stores anything.

use std::ops::Range;

use prost::Message;

use super::proto::{Exemplar, Histogram, MetricMetadata};

/// Protobuf wire types.
const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_START_GROUP: u8 = 3;
const WIRE_END_GROUP: u8 = 4;
const WIRE_FIXED32: u8 = 5;

/// Field numbers of `prometheus.WriteRequest`.
const WRITE_REQUEST_TIMESERIES: u32 = 1;
const WRITE_REQUEST_METADATA: u32 = 3;
/// Field numbers of `prometheus.TimeSeries`.
const TIMESERIES_LABELS: u32 = 1;
const TIMESERIES_SAMPLES: u32 = 2;
const TIMESERIES_EXEMPLARS: u32 = 3;
const TIMESERIES_HISTOGRAMS: u32 = 4;
/// Field numbers of `prometheus.Label`.
const LABEL_NAME: u32 = 1;
const LABEL_VALUE: u32 = 2;
/// Field numbers of `prometheus.Sample`.
const SAMPLE_VALUE: u32 = 1;
const SAMPLE_TIMESTAMP: u32 = 2;

/// Longest varint: 10 bytes (the tenth may only carry the top bit of a u64).
const MAX_VARINT_BYTES: usize = 10;
/// Deepest nesting of groups inside skipped unknown fields (prost's recursion limit).
const MAX_GROUP_DEPTH: u32 = 100;
/// Scratch vectors that grew beyond this many entries are released after a request, so
/// one huge request does not pin its memory in every worker thread.
const MAX_RETAINED_ENTRIES: usize = 1 << 20;

/// Why the body is not a valid `WriteRequest`, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset in the decompressed body.
    pub offset: usize,
    /// What is wrong there.
    pub reason: String,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

type Result<T> = std::result::Result<T, DecodeError>;

/// One label as byte ranges of the body: name start, name end, value start, value end.
type LabelOffsets = [u32; 4];

/// One decoded series: ranges into the scratch vectors and counts of what is unsupported.
#[derive(Clone, Debug)]
struct SeriesEntry {
    labels: Range<u32>,
    /// Body bytes from the first label message to the end of the last.
    label_span: Range<u32>,
    samples: Range<u32>,
    exemplars: u32,
    histograms: u32,
}

/// Reusable decoding state; keep one per worker thread.
#[derive(Default)]
pub struct V1Scratch {
    labels: Vec<LabelOffsets>,
    samples: Vec<(i64, f64)>,
    series: Vec<SeriesEntry>,
    metadata: Vec<MetricMetadata>,
}

impl V1Scratch {
    fn clear(&mut self) {
        self.labels.clear();
        self.samples.clear();
        self.series.clear();
        self.metadata.clear();
    }

    /// Releases vectors that a very large request grew, keeping ordinary capacity.
    pub fn trim(&mut self) {
        fn trim_vec<T>(v: &mut Vec<T>) {
            if v.capacity() > MAX_RETAINED_ENTRIES {
                *v = Vec::new();
            }
        }
        self.clear();
        trim_vec(&mut self.labels);
        trim_vec(&mut self.samples);
        trim_vec(&mut self.series);
        trim_vec(&mut self.metadata);
    }
}

/// A decoded request borrowing the body and the scratch vectors.
pub struct V1View<'a> {
    body: &'a [u8],
    scratch: &'a V1Scratch,
}

/// One series of a decoded request.
pub struct SeriesView<'a> {
    body: &'a [u8],
    labels: &'a [LabelOffsets],
    label_span: Range<usize>,
    /// Float samples as `(timestamp ms, value)`, in wire order.
    pub samples: &'a [(i64, f64)],
    /// Exemplars carried (decoded and checked, not stored).
    pub exemplars: u64,
    /// Native histogram samples carried (decoded and checked, not stored).
    pub histograms: u64,
}

impl<'a> V1View<'a> {
    /// The series in wire order.
    pub fn series(&self) -> impl Iterator<Item = SeriesView<'a>> + '_ {
        let s = self.scratch;
        let body = self.body;
        s.series.iter().map(move |e| SeriesView {
            body,
            labels: &s.labels[e.labels.start as usize..e.labels.end as usize],
            label_span: e.label_span.start as usize..e.label_span.end as usize,
            samples: &s.samples[e.samples.start as usize..e.samples.end as usize],
            exemplars: u64::from(e.exemplars),
            histograms: u64::from(e.histograms),
        })
    }

    /// Number of series.
    pub fn num_series(&self) -> usize {
        self.scratch.series.len()
    }

    /// The family metadata entries.
    pub fn metadata(&self) -> &'a [MetricMetadata] {
        &self.scratch.metadata
    }
}

impl<'a> SeriesView<'a> {
    /// The raw `(name, value)` label bytes in wire order (not validated).
    pub fn labels(&self) -> impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + '_ {
        let body = self.body;
        self.labels.iter().map(move |o| {
            (
                &body[o[0] as usize..o[1] as usize],
                &body[o[2] as usize..o[3] as usize],
            )
        })
    }

    /// Writes (into `out`, cleared first) bytes that determine this series' labels exactly:
    /// the body bytes of its label section followed by each name's and value's offsets
    /// within that section. Equal identities mean equal labels (the offsets fix where every
    /// name and value lies, whatever else the section holds), so a series validated once
    /// can be recognised by its identity without decoding or validating it again.
    pub fn identity_into(&self, out: &mut Vec<u8>) {
        out.clear();
        let base = self.label_span.start;
        out.extend_from_slice(&self.body[self.label_span.clone()]);
        for o in self.labels {
            for x in o {
                // Offsets lie within the span: `label_span` covers every label message.
                out.extend_from_slice(&((*x as usize).wrapping_sub(base) as u32).to_le_bytes());
            }
        }
    }

    /// The body bytes of the label section (see [`SeriesView::identity_into`]).
    pub fn label_section(&self) -> &'a [u8] {
        &self.body[self.label_span.clone()]
    }

    /// The labels as strings, with one UTF-8 check over the series' whole label section
    /// instead of one per name and value: fills `out` (cleared first) and returns true when
    /// that section is valid UTF-8 and every name and value lies on character boundaries
    /// in it (always so for ASCII labels). False means: check each string on its own.
    pub fn labels_utf8_into(&self, out: &mut Vec<(&'a str, &'a str)>) -> bool {
        out.clear();
        let base = self.label_span.start;
        let Ok(span) = std::str::from_utf8(&self.body[self.label_span.clone()]) else {
            return false;
        };
        for o in self.labels {
            let name = span.get(o[0] as usize - base..o[1] as usize - base);
            let value = span.get(o[2] as usize - base..o[3] as usize - base);
            let (Some(n), Some(v)) = (name, value) else {
                out.clear();
                return false;
            };
            out.push((n, v));
        }
        true
    }
}

/// Decodes `body` into `scratch` (cleared first) and returns a view of it.
pub fn decode_v1<'a>(body: &'a [u8], scratch: &'a mut V1Scratch) -> Result<V1View<'a>> {
    scratch.clear();
    if u32::try_from(body.len()).is_err() {
        return Err(DecodeError {
            offset: 0,
            reason: "message longer than 4 GiB".into(),
        });
    }
    let mut r = Reader::new(body, 0, body.len());
    while let Some((field, wire)) = r.key()? {
        match field {
            WRITE_REQUEST_TIMESERIES => {
                let m = r.message(field, wire)?;
                decode_series(body, m, scratch)?;
            }
            WRITE_REQUEST_METADATA => {
                let m = r.message(field, wire)?;
                let meta = MetricMetadata::decode(&body[m.clone()])
                    .map_err(|e| prost_error(m.start, "MetricMetadata", &e))?;
                scratch.metadata.push(meta);
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(V1View {
        body,
        scratch: &*scratch,
    })
}

#[inline]
fn decode_series(body: &[u8], m: Range<usize>, scratch: &mut V1Scratch) -> Result<()> {
    let labels_start = scratch.labels.len();
    let samples_start = scratch.samples.len();
    let mut exemplars: u32 = 0;
    let mut histograms: u32 = 0;
    let mut span: Option<Range<usize>> = None;
    let mut r = Reader::new(body, m.start, m.end);
    while let Some((field, wire)) = r.key()? {
        match field {
            TIMESERIES_LABELS => {
                let l = r.message(field, wire)?;
                span = Some(match span {
                    Some(s) => s.start..l.end,
                    None => l.clone(),
                });
                scratch.labels.push(decode_label(body, l)?);
            }
            TIMESERIES_SAMPLES => {
                let s = r.message(field, wire)?;
                scratch.samples.push(decode_sample(body, s)?);
            }
            TIMESERIES_EXEMPLARS => {
                let e = r.message(field, wire)?;
                Exemplar::decode(&body[e.clone()])
                    .map_err(|err| prost_error(e.start, "Exemplar", &err))?;
                exemplars = exemplars.saturating_add(1);
            }
            TIMESERIES_HISTOGRAMS => {
                let h = r.message(field, wire)?;
                Histogram::decode(&body[h.clone()])
                    .map_err(|err| prost_error(h.start, "Histogram", &err))?;
                histograms = histograms.saturating_add(1);
            }
            _ => r.skip(field, wire)?,
        }
    }
    // Offsets fit in u32: the body length was checked, and there are fewer entries than bytes.
    let span = span.unwrap_or(m.start..m.start);
    scratch.series.push(SeriesEntry {
        labels: labels_start as u32..scratch.labels.len() as u32,
        label_span: span.start as u32..span.end as u32,
        samples: samples_start as u32..scratch.samples.len() as u32,
        exemplars,
        histograms,
    });
    Ok(())
}

#[inline]
fn decode_label(body: &[u8], m: Range<usize>) -> Result<LabelOffsets> {
    let mut out: LabelOffsets = [m.start as u32; 4];
    let mut r = Reader::new(body, m.start, m.end);
    while let Some((field, wire)) = r.key()? {
        match field {
            LABEL_NAME => {
                let s = r.len_delimited(field, wire)?;
                out[0] = s.start as u32;
                out[1] = s.end as u32;
            }
            LABEL_VALUE => {
                let s = r.len_delimited(field, wire)?;
                out[2] = s.start as u32;
                out[3] = s.end as u32;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok(out)
}

#[inline]
fn decode_sample(body: &[u8], m: Range<usize>) -> Result<(i64, f64)> {
    let mut t: i64 = 0;
    let mut v: f64 = 0.0;
    let mut r = Reader::new(body, m.start, m.end);
    while let Some((field, wire)) = r.key()? {
        match field {
            SAMPLE_VALUE => {
                r.expect_wire(field, wire, WIRE_FIXED64)?;
                v = f64::from_bits(r.fixed64()?);
            }
            SAMPLE_TIMESTAMP => {
                r.expect_wire(field, wire, WIRE_VARINT)?;
                // int64 on the wire: the varint's 64 bits reinterpreted (two's complement).
                t = r.varint()? as i64;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok((t, v))
}

fn prost_error(offset: usize, what: &str, e: &prost::DecodeError) -> DecodeError {
    DecodeError {
        offset,
        reason: format!("invalid {what}: {e}"),
    }
}

/// A cursor over one message's bytes `[pos, end)` of the body. Offsets are positions in
/// the whole body (`buf` is the body cut at the message's end), so errors can name them.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn new(body: &'a [u8], pos: usize, end: usize) -> Self {
        Reader {
            buf: &body[..end],
            pos,
        }
    }

    #[cold]
    fn err(&self, at: usize, reason: impl Into<String>) -> DecodeError {
        DecodeError {
            offset: at,
            reason: reason.into(),
        }
    }

    /// A varint; the one-byte case (keys, short lengths, small timestamps deltas) inline.
    #[inline]
    fn varint(&mut self) -> Result<u64> {
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => self.varint_slow(),
        }
    }

    fn varint_slow(&mut self) -> Result<u64> {
        let start = self.pos;
        let mut x: u64 = 0;
        for i in 0..MAX_VARINT_BYTES {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err(start, "truncated varint"));
            };
            self.pos += 1;
            if i == MAX_VARINT_BYTES - 1 && b > 1 {
                return Err(self.err(start, "varint overflows 64 bits"));
            }
            x |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(x);
            }
        }
        Err(self.err(start, "varint longer than 10 bytes"))
    }

    /// The next field key, or None at the end of the message.
    #[inline]
    fn key(&mut self) -> Result<Option<(u32, u8)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let at = self.pos;
        let k = self.varint()?;
        let wire = (k & 7) as u8;
        let field = k >> 3;
        if field == 0 || wire > WIRE_FIXED32 || field > u64::from(u32::MAX >> 3) {
            return Err(self.bad_key(at, k));
        }
        Ok(Some((field as u32, wire)))
    }

    #[cold]
    fn bad_key(&self, at: usize, k: u64) -> DecodeError {
        let reason = if k > u64::from(u32::MAX) {
            format!("invalid key value {k}")
        } else if k >> 3 == 0 {
            "invalid field number 0".to_string()
        } else {
            format!("invalid wire type {}", k & 7)
        };
        self.err(at, reason)
    }

    #[inline]
    fn expect_wire(&self, field: u32, wire: u8, want: u8) -> Result<()> {
        if wire != want {
            return Err(self.err(
                self.pos,
                format!("field {field} has wire type {wire}, expected {want}"),
            ));
        }
        Ok(())
    }

    /// A length-delimited field's byte range.
    #[inline]
    fn len_delimited(&mut self, field: u32, wire: u8) -> Result<Range<usize>> {
        self.expect_wire(field, wire, WIRE_LEN)?;
        let at = self.pos;
        let n = self.varint()?;
        let left = (self.buf.len() - self.pos) as u64;
        if n > left {
            return Err(self.err(
                at,
                format!("field {field} claims {n} bytes, only {left} left in its message"),
            ));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(start..self.pos)
    }

    /// An embedded message's byte range.
    #[inline]
    fn message(&mut self, field: u32, wire: u8) -> Result<Range<usize>> {
        self.len_delimited(field, wire)
    }

    #[inline]
    fn fixed(&mut self, n: usize) -> Result<&'a [u8]> {
        match self.buf.get(self.pos..self.pos + n) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.err(self.pos, format!("truncated {n}-byte fixed field"))),
        }
    }

    #[inline]
    fn fixed64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.fixed(8)?);
        Ok(u64::from_le_bytes(a))
    }

    /// Skips an unknown field.
    fn skip(&mut self, field: u32, wire: u8) -> Result<()> {
        self.skip_depth(field, wire, 0)
    }

    fn skip_depth(&mut self, field: u32, wire: u8, depth: u32) -> Result<()> {
        match wire {
            WIRE_VARINT => {
                self.varint()?;
            }
            WIRE_FIXED64 => {
                self.fixed(8)?;
            }
            WIRE_LEN => {
                self.len_delimited(field, wire)?;
            }
            WIRE_FIXED32 => {
                self.fixed(4)?;
            }
            WIRE_START_GROUP => {
                if depth >= MAX_GROUP_DEPTH {
                    return Err(self.err(self.pos, "groups nested too deeply"));
                }
                loop {
                    let at = self.pos;
                    let Some((f, w)) = self.key()? else {
                        return Err(self.err(at, format!("group {field} is not closed")));
                    };
                    if w == WIRE_END_GROUP {
                        if f != field {
                            return Err(self.err(at, "unexpected end group tag"));
                        }
                        break;
                    }
                    self.skip_depth(f, w, depth + 1)?;
                }
            }
            _ => return Err(self.err(self.pos, "unexpected end group tag")),
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::remote::proto::{Label, Sample, TimeSeries, WriteRequest};
    use bytes::Bytes;
    use proptest::prelude::*;

    /// Identities of the series of a raw body.
    fn identities(body: &[u8]) -> Vec<Vec<u8>> {
        let mut scratch = V1Scratch::default();
        let view = decode_v1(body, &mut scratch).unwrap();
        view.series()
            .map(|ts| {
                let mut id = Vec::new();
                ts.identity_into(&mut id);
                id
            })
            .collect()
    }

    #[test]
    fn identity_tells_apart_label_sections_with_equal_bytes() {
        // Series A: one label whose name is the bytes `0a 01 61`. Series B: an empty label,
        // then the label name "a". Both label sections are the bytes `0a 03 0a 01 61`.
        let a = [0x0a, 0x07, 0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0x61];
        let b = [0x0a, 0x07, 0x0a, 0x00, 0x0a, 0x03, 0x0a, 0x01, 0x61];
        let (ia, ib) = (identities(&a), identities(&b));
        assert_eq!(ia.len(), 1);
        assert_eq!(ib.len(), 1);
        assert_ne!(ia[0], ib[0]);
        // The same series encoded alike has the same identity, wherever it sits.
        let mut twice = a.to_vec();
        twice.extend_from_slice(&a);
        let it = identities(&twice);
        assert_eq!(it[0], it[1]);
        assert_eq!(it[0], ia[0]);
    }

    fn label(n: &str, v: &str) -> Label {
        Label {
            name: Bytes::from(n.to_string()),
            value: Bytes::from(v.to_string()),
        }
    }

    fn request() -> WriteRequest {
        WriteRequest {
            timeseries: vec![
                TimeSeries {
                    labels: vec![label("__name__", "up"), label("job", "a")],
                    samples: vec![
                        Sample {
                            value: 1.5,
                            timestamp: -7,
                        },
                        Sample {
                            value: f64::from_bits(0x7ff0_0000_0000_0002),
                            timestamp: 1_700_000_000_000,
                        },
                    ],
                    exemplars: vec![Exemplar {
                        labels: vec![label("trace_id", "x")],
                        value: 1.0,
                        timestamp: 3,
                    }],
                    histograms: vec![Histogram::default()],
                },
                TimeSeries {
                    labels: vec![label("", ""), label("b", "\u{e9}")],
                    ..Default::default()
                },
            ],
            metadata: vec![MetricMetadata {
                r#type: 1,
                metric_family_name: Bytes::from_static(b"up"),
                help: Bytes::from_static(b"h"),
                unit: Bytes::new(),
            }],
        }
    }

    /// What prost decodes, in the shape of the view, for comparison.
    type Flat = (
        Vec<(Vec<(Vec<u8>, Vec<u8>)>, Vec<(i64, u64)>, u64, u64)>,
        Vec<MetricMetadata>,
    );

    fn flat_prost(req: &WriteRequest) -> Flat {
        (
            req.timeseries
                .iter()
                .map(|ts| {
                    (
                        ts.labels
                            .iter()
                            .map(|l| (l.name.to_vec(), l.value.to_vec()))
                            .collect(),
                        ts.samples
                            .iter()
                            .map(|s| (s.timestamp, s.value.to_bits()))
                            .collect(),
                        ts.exemplars.len() as u64,
                        ts.histograms.len() as u64,
                    )
                })
                .collect(),
            req.metadata.clone(),
        )
    }

    fn flat_view(v: &V1View<'_>) -> Flat {
        (
            v.series()
                .map(|s| {
                    (
                        s.labels().map(|(n, v)| (n.to_vec(), v.to_vec())).collect(),
                        s.samples.iter().map(|(t, v)| (*t, v.to_bits())).collect(),
                        s.exemplars,
                        s.histograms,
                    )
                })
                .collect(),
            v.metadata().to_vec(),
        )
    }

    #[test]
    fn decodes_what_prost_encodes() {
        let req = request();
        let body = req.encode_to_vec();
        let mut scratch = V1Scratch::default();
        let view = decode_v1(&body, &mut scratch).unwrap();
        assert_eq!(view.num_series(), 2);
        assert_eq!(flat_view(&view), flat_prost(&req));
        // Reuse of the scratch gives the same answer.
        let view = decode_v1(&body, &mut scratch).unwrap();
        assert_eq!(flat_view(&view), flat_prost(&req));
    }

    #[test]
    fn labels_are_checked_as_utf8_once_per_series() {
        let mut req = request();
        let ts = |n: &'static [u8], v: Vec<u8>| TimeSeries {
            labels: vec![
                label("__name__", "up"),
                Label {
                    name: Bytes::from_static(n),
                    value: Bytes::from(v),
                },
            ],
            ..Default::default()
        };
        req.timeseries.push(ts(b"bad", vec![0xff]));
        // A value of 200 bytes has a two-byte length varint (0xc8 0x01), which is not
        // UTF-8 itself: the one-shot check fails and each string is checked instead.
        req.timeseries.push(ts(b"long", vec![b'x'; 200]));
        let body = req.encode_to_vec();
        let mut scratch = V1Scratch::default();
        let view = decode_v1(&body, &mut scratch).unwrap();
        let mut out = Vec::new();
        let ok: Vec<bool> = view
            .series()
            .map(|s| s.labels_utf8_into(&mut out))
            .collect();
        assert_eq!(ok, vec![true, true, false, false]);
        let mut it = view.series();
        assert!(it.next().unwrap().labels_utf8_into(&mut out));
        assert_eq!(out, vec![("__name__", "up"), ("job", "a")]);
        assert!(it.next().unwrap().labels_utf8_into(&mut out));
        assert_eq!(out, vec![("", ""), ("b", "\u{e9}")]);
        assert!(!it.next().unwrap().labels_utf8_into(&mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn skips_unknown_fields_of_every_wire_type() {
        // A TimeSeries with unknown fields 9 (varint), 10 (fixed64), 11 (len), 12 (group
        // holding a varint), 13 (fixed32) around one label.
        let mut ts = vec![0x48, 0x96, 0x01];
        ts.extend_from_slice(&[0x51, 1, 2, 3, 4, 5, 6, 7, 8]);
        ts.extend_from_slice(&[0x5a, 0x02, 0xaa, 0xbb]);
        ts.extend_from_slice(&[0x63, 0x08, 0x01, 0x64]);
        ts.extend_from_slice(&[0x6d, 1, 2, 3, 4]);
        let lbl = label("__name__", "up").encode_to_vec();
        ts.push(0x0a);
        ts.push(lbl.len() as u8);
        ts.extend_from_slice(&lbl);
        let mut body = vec![0x0a, ts.len() as u8];
        body.extend_from_slice(&ts);
        let want = WriteRequest::decode(body.as_slice()).unwrap();
        let mut scratch = V1Scratch::default();
        let view = decode_v1(&body, &mut scratch).unwrap();
        assert_eq!(flat_view(&view), flat_prost(&want));
        assert_eq!(view.series().next().unwrap().labels().len(), 1);
    }

    #[test]
    fn malformed_bodies_fail_with_an_offset() {
        let mut scratch = V1Scratch::default();
        let cases: &[(&[u8], &str)] = &[
            (&[0x0a, 0x05, 0x0a], "claims 5 bytes"),
            (&[0x0a], "truncated varint"),
            (&[0x10, 0xff, 0xff], "truncated varint"),
            (&[0x00, 0x01], "field number 0"),
            (&[0x0e], "wire type 6"),
            (&[0x11, 1, 2, 3], "truncated 8-byte"),
            // TimeSeries.labels with varint wire type.
            (&[0x0a, 0x02, 0x08, 0x01], "wire type 0, expected 2"),
            // Sample.value as a varint.
            (
                &[0x0a, 0x04, 0x12, 0x02, 0x08, 0x01],
                "wire type 0, expected 1",
            ),
            // End group without a start.
            (&[0x14], "end group"),
            // Group never closed.
            (&[0x13, 0x08, 0x01], "not closed"),
            (
                &[
                    0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
                ],
                "overflows",
            ),
        ];
        for (body, want) in cases {
            let e = decode_v1(body, &mut scratch).err().unwrap();
            assert!(e.reason.contains(want), "{body:?}: {e}");
            assert!(
                WriteRequest::decode(*body).is_err(),
                "prost accepts {body:?}"
            );
        }
        let e = decode_v1(&[0x0a, 0x05, 0x0a], &mut scratch).err().unwrap();
        assert_eq!(e.offset, 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        /// The decoder accepts exactly what prost accepts and finds the same content, on
        /// valid requests with arbitrary bytes flipped, cut or inserted.
        #[test]
        fn agrees_with_prost(
            cut in 0usize..400,
            // XOR masks: small ones change wire types and lengths, any other byte too.
            flips in proptest::collection::vec(
                (0usize..400, prop_oneof![1u8..8, any::<u8>()]),
                0..4,
            ),
            tail in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let mut body = request().encode_to_vec();
            for (at, b) in flips {
                if !body.is_empty() {
                    let i = at % body.len();
                    body[i] ^= b;
                }
            }
            body.truncate(cut.min(body.len()));
            body.extend_from_slice(&tail);
            let mut scratch = V1Scratch::default();
            let ours = decode_v1(&body, &mut scratch);
            match WriteRequest::decode(body.as_slice()) {
                Ok(want) => {
                    let view = ours.map_err(|e| format!("{e}"));
                    prop_assert!(view.is_ok(), "prost accepts, we reject: {:?}", view.err());
                    if let Ok(view) = view {
                        prop_assert_eq!(flat_view(&view), flat_prost(&want));
                    }
                }
                Err(_) => prop_assert!(ours.is_err(), "prost rejects, we accept {body:?}"),
            }
        }
    }
}
