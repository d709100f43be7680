//! RW 1.0: decodes a `prometheus.WriteRequest` (already decompressed) and ingests it.
//! Series labels arrive as strings per series; metadata arrives per metric family, usually in
//! requests of its own, so it is remembered by family name and logged for every series of
//! that family this or a later request appends. Native histograms and exemplars are counted
//! and rejected. The request path decodes zero-copy ([`super::wire`]) and looks series up by
//! borrowed label strings; [`decode`] + [`ingest`] (prost messages) remain for callers that
//! hold a decoded message, with the same validation. Never answers for the response: the
//! handler does.

use std::collections::HashMap;

use bytes::Bytes;
use prost::Message;

use vigil_storage::labels::METRIC_NAME;
use vigil_storage::Db;

use super::error::{Error, Result};
use super::ingest::{family_for, metric_type_from_code, FamilyMeta, Ingest, Outcome};
use super::limits::Limits;
use super::proto::{MetricMetadata, WriteRequest};
use super::series::{check_series, check_series_str, SeriesError};
use super::wire::{decode_v1, V1Scratch};
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
    remember_families(rx, &req.metadata);
    let mut run = Run::new(rx, db);
    let mut pairs = Vec::new();
    for ts in &req.timeseries {
        let labels = ts.labels.iter().map(|l| (&l.name[..], &l.value[..]));
        run.series(
            |out, limits| check_series(labels, limits, out),
            ts.samples.iter().map(|s| (s.timestamp, s.value)),
            ts.samples.len() as u64,
            ts.histograms.len() as u64,
            ts.exemplars.len() as u64,
            &mut pairs,
        )?;
    }
    run.commit()
}

/// Decodes a decompressed RW 1.0 body without copying it (into reusable `scratch`) and
/// ingests it into `db`: the request path of the handler. A malformed body fails as a
/// whole (400) before anything is appended.
pub fn decode_and_ingest(
    rx: &Receiver,
    db: &Db,
    body: &[u8],
    scratch: &mut V1Scratch,
) -> Result<Outcome> {
    let req = decode_v1(body, scratch).map_err(|e| Error::Protobuf {
        message: MESSAGE_NAME,
        reason: e.to_string(),
    })?;
    remember_families(rx, req.metadata());
    let mut run = Run::new(rx, db);
    let mut pairs = Vec::new();
    for ts in req.series() {
        run.series(
            |out, limits| {
                if ts.labels_utf8_into(out) {
                    check_series_str(out, limits)
                } else {
                    check_series(ts.labels(), limits, out)
                }
            },
            ts.samples.iter().copied(),
            ts.samples.len() as u64,
            ts.histograms,
            ts.exemplars,
            &mut pairs,
        )?;
    }
    run.commit()
}

/// One request's ingestion loop, shared by both decoders.
struct Run<'r> {
    rx: &'r Receiver,
    families: parking_lot::RwLockReadGuard<'r, HashMap<String, FamilyMeta>>,
    ing: Ingest<'r>,
}

impl<'r> Run<'r> {
    fn new(rx: &'r Receiver, db: &'r Db) -> Self {
        Run {
            rx,
            families: rx.families.read(),
            ing: Ingest::new(rx, db),
        }
    }

    /// Validates and appends one series; `pairs` is scratch reused across the series of a
    /// request, so validation allocates nothing per series.
    fn series<'b>(
        &mut self,
        labels: impl FnOnce(&mut Vec<(&'b str, &'b str)>, &Limits) -> Result<(), SeriesError>,
        samples: impl Iterator<Item = (i64, f64)>,
        num_samples: u64,
        histograms: u64,
        exemplars: u64,
        pairs: &mut Vec<(&'b str, &'b str)>,
    ) -> Result<()> {
        if let Err(e) = labels(pairs, &self.rx.limits) {
            self.ing
                .reject_series(e, num_samples, histograms, exemplars);
            return Ok(());
        }
        let r = self.ing.append_series_pairs(pairs, samples)?;
        self.ing.unsupported(histograms, exemplars);
        if let (Some(r), false) = (r, self.families.is_empty()) {
            let name = pairs.iter().find(|(n, _)| *n == METRIC_NAME).map(|p| p.1);
            if let Some(meta) = name.and_then(|n| family_for(&self.families, n)) {
                self.ing.metadata(r, meta);
            }
        }
        Ok(())
    }

    fn commit(self) -> Result<Outcome> {
        let Run { families, ing, .. } = self;
        drop(families);
        ing.commit()
    }
}

/// Stores the request's family metadata (valid UTF-8 only; later entries win).
fn remember_families(rx: &Receiver, metadata: &[MetricMetadata]) {
    if metadata.is_empty() {
        return;
    }
    let mut fam = rx.families.write();
    for m in metadata {
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
