//! RW 1.0: decodes a `prometheus.WriteRequest` (already decompressed) and ingests it.
//! Series labels arrive as strings per series; metadata arrives per metric family, usually in
//! requests of its own, so it is remembered by family name and logged for every series of
//! that family this or a later request appends. Native histograms and exemplars are counted
//! and rejected. Never answers for the response: the handler does.

use bytes::Bytes;
use prost::Message;

use vigil_storage::labels::METRIC_NAME;
use vigil_storage::{Db, Label};

use super::error::{Error, Result};
use super::ingest::{family_for, metric_type_from_code, FamilyMeta, Ingest, Outcome};
use super::proto::{TimeSeries, WriteRequest};
use super::series::{check_label_count, check_pair, finish, SeriesError};
use super::Receiver;

/// The protobuf message name, for errors.
pub const MESSAGE_NAME: &str = "prometheus.WriteRequest";
/// Most metric families whose metadata is remembered; further new names are ignored.
const MAX_FAMILIES: usize = 100_000;

/// Decodes a decompressed RW 1.0 body.
pub fn decode(body: impl Into<Bytes>) -> Result<WriteRequest> {
    WriteRequest::decode(body.into()).map_err(|e| Error::Protobuf {
        message: MESSAGE_NAME,
        reason: e.to_string(),
    })
}

/// Ingests a decoded RW 1.0 request into `db`.
pub fn ingest(rx: &Receiver, db: &Db, req: &WriteRequest) -> Result<Outcome> {
    remember_families(rx, req);
    let families = rx.families.read();
    let mut ing = Ingest::new(rx, db);
    for ts in &req.timeseries {
        let labels = match labels_of(ts, rx) {
            Ok(l) => l,
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
        let r = ing.append_series(&labels, ts.samples.iter().map(|s| (s.timestamp, s.value)))?;
        ing.unsupported(ts.histograms.len() as u64, ts.exemplars.len() as u64);
        if let (Some(r), false) = (r, families.is_empty()) {
            if let Some(meta) = labels
                .get(METRIC_NAME)
                .and_then(|n| family_for(&families, n))
            {
                ing.metadata(r, meta);
            }
        }
    }
    drop(families);
    ing.commit()
}

/// Validates one series' labels.
fn labels_of(ts: &TimeSeries, rx: &Receiver) -> Result<vigil_storage::Labels, SeriesError> {
    let limits = &rx.limits;
    check_label_count(ts.labels.len(), limits)?;
    let mut out = Vec::with_capacity(ts.labels.len());
    for l in &ts.labels {
        let (n, v) = check_pair(&l.name, &l.value, limits)?;
        out.push(Label::new(n, v));
    }
    finish(out)
}

/// Stores the request's family metadata (valid UTF-8 only; later entries win).
fn remember_families(rx: &Receiver, req: &WriteRequest) {
    if req.metadata.is_empty() {
        return;
    }
    let mut fam = rx.families.write();
    for m in &req.metadata {
        let (Ok(name), Ok(help), Ok(unit)) = (
            std::str::from_utf8(&m.metric_family_name),
            std::str::from_utf8(&m.help),
            std::str::from_utf8(&m.unit),
        ) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        let meta = FamilyMeta {
            metric_type: metric_type_from_code(m.r#type),
            help: help.to_string(),
            unit: unit.to_string(),
        };
        if fam.len() >= MAX_FAMILIES && !fam.contains_key(name) {
            continue;
        }
        if fam.get(name) != Some(&meta) {
            fam.insert(name.to_string(), meta);
        }
    }
}
