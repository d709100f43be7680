//! RW 2.0: decodes an `io.prometheus.write.v2.Request` (already decompressed) and ingests
//! it. The symbol table is checked once per request (UTF-8, `symbols[0] == ""`) and borrowed
//! as `&str`, so a series' labels are borrowed pairs that find an existing series without
//! any allocation; label refs arrive as unsorted name/value pairs and are sorted by the
//! series validation. Per-series
//! metadata (type, help ref, unit ref) is logged when it changed. Start (created) timestamps
//! — `Sample.start_timestamp`, or `TimeSeries.created_timestamp` (field 6, v3.6-era schema)
//! as a fallback — are read and not stored: the storage has no place for them and the spec
//! makes them optional. Native histograms and exemplars are counted and rejected.

use bytes::Bytes;
use prost::Message;

use vigil_storage::Db;

use super::error::{Error, Result};
use super::ingest::{metric_type_from_code, FamilyMeta, Ingest, Outcome};
use super::proto::{RequestV2, TimeSeriesV2};
use super::series::{check_label_count, check_lengths, finish_pairs, SeriesError};
use super::Receiver;

/// The protobuf message name, for errors and content negotiation.
pub const MESSAGE_NAME: &str = "io.prometheus.write.v2.Request";

/// Decodes a decompressed RW 2.0 body.
pub fn decode(body: impl Into<Bytes>) -> Result<RequestV2> {
    RequestV2::decode(body.into()).map_err(|e| Error::Protobuf {
        message: MESSAGE_NAME,
        reason: e.to_string(),
    })
}

/// The symbol table, checked once: `None` marks a symbol that is not valid UTF-8.
struct Symbols<'a> {
    strs: Vec<Option<&'a str>>,
}

impl<'a> Symbols<'a> {
    fn new(raw: &'a [Bytes]) -> Result<Symbols<'a>> {
        if let Some(first) = raw.first() {
            if !first.is_empty() {
                return Err(Error::Invalid(format!(
                    "symbols[0] must be the empty string, got {:?}",
                    String::from_utf8_lossy(&first[..first.len().min(64)])
                )));
            }
        }
        let strs = raw.iter().map(|b| std::str::from_utf8(b).ok()).collect();
        Ok(Symbols { strs })
    }

    /// The symbol at `r`, or why it cannot be used.
    fn get(&self, r: u32, what: &str) -> Result<&'a str, SeriesError> {
        match self.strs.get(r as usize) {
            Some(Some(s)) => Ok(*s),
            Some(None) => Err(SeriesError::Invalid(format!(
                "{what} (symbol {r}) is not valid UTF-8"
            ))),
            None => Err(SeriesError::Invalid(format!(
                "{what} refers to symbol {r}, beyond the {} symbols of the request",
                self.strs.len()
            ))),
        }
    }
}

/// Ingests a decoded RW 2.0 request into `db`.
pub fn ingest(rx: &Receiver, db: &Db, req: &RequestV2) -> Result<Outcome> {
    let symbols = Symbols::new(&req.symbols)?;
    let mut ing = Ingest::new(rx, db);
    let mut pairs = Vec::new();
    for ts in &req.timeseries {
        let checked =
            labels_of(ts, &symbols, rx, &mut pairs).and_then(|()| metadata_of(ts, &symbols));
        let meta = match checked {
            Ok(x) => x,
            Err(e) => {
                ing.reject_series(
                    e,
                    ts.samples.len() as u64,
                    ts.histograms.len() as u64,
                    ts.exemplars.len() as u64,
                );
                continue;
            }
        };
        let r =
            ing.append_series_pairs(&pairs, ts.samples.iter().map(|s| (s.timestamp, s.value)))?;
        ing.unsupported(ts.histograms.len() as u64, ts.exemplars.len() as u64);
        if let (Some(r), Some(meta)) = (r, meta) {
            ing.metadata(r, &meta);
        }
    }
    ing.commit()
}

/// Resolves and validates one series' label refs into canonical pairs in `out`.
fn labels_of<'a>(
    ts: &TimeSeriesV2,
    symbols: &Symbols<'a>,
    rx: &Receiver,
    out: &mut Vec<(&'a str, &'a str)>,
) -> Result<(), SeriesError> {
    out.clear();
    let refs = &ts.labels_refs;
    if refs.len() % 2 != 0 {
        return Err(SeriesError::Invalid(format!(
            "labels_refs has an odd length {}: refs must be name/value pairs",
            refs.len()
        )));
    }
    let limits = &rx.limits;
    check_label_count(refs.len() / 2, limits)?;
    for pair in refs.chunks_exact(2) {
        let name = symbols.get(pair[0], "label name")?;
        let value = symbols.get(pair[1], "label value")?;
        check_lengths(name.len(), value.len(), limits, name.as_bytes())?;
        out.push((name, value));
    }
    finish_pairs(out)
}

/// Resolves the series' metadata, if it carries any.
fn metadata_of(ts: &TimeSeriesV2, symbols: &Symbols) -> Result<Option<FamilyMeta>, SeriesError> {
    let Some(m) = &ts.metadata else {
        return Ok(None);
    };
    // Ref 0 is the empty string, even when a request sends no symbol table at all.
    let text = |r: u32, what: &str| -> Result<String, SeriesError> {
        if r == 0 {
            return Ok(String::new());
        }
        symbols.get(r, what).map(|s| s.to_string())
    };
    let meta = FamilyMeta {
        metric_type: metric_type_from_code(m.r#type),
        help: text(m.help_ref, "metadata help")?,
        unit: text(m.unit_ref, "metadata unit")?,
    };
    Ok((!meta.is_empty()).then_some(meta))
}
