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

use vigil_storage::head::SeriesHandle;
use vigil_storage::labels::METRIC_NAME;
use vigil_storage::Db;

use super::cache::RequestCache;
use super::error::{Error, Result};
use super::ingest::{family_for, metric_type_from_code, FamilyMeta, Ingest, Outcome};
use super::limits::Limits;
use super::proto::{MetricMetadata, WriteRequest};
use super::series::{check_series, check_series_str, SeriesError};
use super::wire::{decode_v1, V1Scratch, V1View};
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
        let _handle = run.series(
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
    let mut cache = rx.series_cache.begin(db.head());
    let mut run = Run::new(rx, db);
    series_loop(&mut run, &req, &mut cache)?;
    // New series become visible to other requests before this one commits: harmless, a
    // handle only names a series (which exists in the head already); samples are checked
    // by the appender whoever appends.
    cache.finish();
    run.commit()
}

/// The request loop of [`decode_and_ingest`]: a series whose wire identity is in `cache`
/// goes straight to its head series; any other is validated, looked up, and remembered.
fn series_loop(run: &mut Run<'_>, req: &V1View<'_>, cache: &mut RequestCache<'_>) -> Result<()> {
    let mut pairs = Vec::new();
    for ts in req.series() {
        ts.identity_into(cache.key_buf());
        if let Some((handle, name)) = cache.get() {
            let section = ts.label_section();
            let name = name.and_then(|(a, b)| std::str::from_utf8(section.get(a..b)?).ok());
            run.cached_series(
                handle,
                name,
                ts.samples.iter().copied(),
                ts.histograms,
                ts.exemplars,
            )?;
            continue;
        }
        let handle = run.series(
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
        if let Some(h) = handle {
            let section = ts.label_section();
            match pairs.iter().find(|(n, _)| *n == METRIC_NAME) {
                None => cache.insert(h, None),
                // The name is a slice of the section (both decoders borrow the body).
                Some((_, v)) => {
                    if let Some(at) = offset_within(section, v.as_bytes()) {
                        cache.insert(h, Some(at));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The byte range `part` (a subslice of `whole`) occupies in `whole`, if it is one.
fn offset_within(whole: &[u8], part: &[u8]) -> Option<(usize, usize)> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some((start, end))
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
    ) -> Result<Option<SeriesHandle>> {
        if let Err(e) = labels(pairs, &self.rx.limits) {
            self.ing
                .reject_series(e, num_samples, histograms, exemplars);
            return Ok(None);
        }
        let (r, handle) = self.ing.append_series_pairs_handle(pairs, samples)?;
        self.ing.unsupported(histograms, exemplars);
        let name = pairs.iter().find(|(n, _)| *n == METRIC_NAME).map(|p| p.1);
        self.family_metadata(r, name);
        Ok(handle)
    }

    /// Appends one series recognised from an earlier request (validated then).
    fn cached_series(
        &mut self,
        h: &SeriesHandle,
        name: Option<&str>,
        samples: impl Iterator<Item = (i64, f64)>,
        histograms: u64,
        exemplars: u64,
    ) -> Result<()> {
        let r = self.ing.append_series_handle(h, samples)?;
        self.ing.unsupported(histograms, exemplars);
        self.family_metadata(r, name);
        Ok(())
    }

    /// Logs the remembered family metadata of metric `name` for series `r`, if any.
    fn family_metadata(&mut self, r: Option<u64>, name: Option<&str>) {
        if let (Some(r), false) = (r, self.families.is_empty()) {
            if let Some(meta) = name.and_then(|n| family_for(&self.families, n)) {
                self.ing.metadata(r, meta);
            }
        }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::remote::proto::{Label, Sample, TimeSeries};
    use crate::remote::Limits;
    use vigil_storage::{DbOptions, MatchType, Matcher, Queryable};

    const T0: i64 = 1_700_000_000_000;

    fn label(n: &str, v: &str) -> Label {
        Label {
            name: Bytes::from(n.to_string()),
            value: Bytes::from(v.to_string()),
        }
    }

    /// Three valid series (one with unsorted labels) and one invalid, one sample each at `t`.
    fn body(t: i64, metadata: bool) -> Vec<u8> {
        let series = |labels: Vec<Label>, v: f64| TimeSeries {
            labels,
            samples: vec![Sample {
                value: v,
                timestamp: t,
            }],
            ..TimeSeries::default()
        };
        WriteRequest {
            timeseries: vec![
                series(vec![label("__name__", "up"), label("job", "a")], 1.0),
                series(vec![label("job", "b"), label("__name__", "up")], 2.0),
                series(vec![label("__name__", "other"), label("x", "")], 3.0),
                series(vec![label("__name__", "bad"), label("", "y")], 4.0),
            ],
            metadata: if metadata {
                vec![MetricMetadata {
                    r#type: 1,
                    metric_family_name: Bytes::from_static(b"up"),
                    help: Bytes::from_static(b"help"),
                    unit: Bytes::new(),
                }]
            } else {
                Vec::new()
            },
        }
        .encode_to_vec()
    }

    fn stored(db: &Db) -> Vec<(String, Vec<(i64, f64)>)> {
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        let mut out: Vec<_> = q
            .select(&[Matcher::new(MatchType::Regex, "__name__", ".+").unwrap()])
            .unwrap()
            .iter()
            .map(|s| {
                let smp = s.samples().unwrap();
                (
                    s.labels.to_string(),
                    smp.iter().map(|x| (x.t, x.v)).collect(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn repeated_series_are_recognised_with_unchanged_results() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let rx = Receiver::new(Limits::default());
        let mut scratch = V1Scratch::default();
        let mut outs = Vec::new();
        for step in 0..3 {
            let b = body(T0 + step * 15_000, false);
            outs.push(decode_and_ingest(&rx, &db, &b, &mut scratch).unwrap());
            assert_eq!(rx.series_cache.len(), 3, "the valid series are remembered");
        }
        for o in &outs {
            assert_eq!(o.samples_written, 3);
            assert_eq!(o.rejected.invalid_series, 1);
            assert_eq!(o.rejected.invalid_series_samples, 1);
        }
        // Resending the last request through the cache: identical samples are no-ops,
        // a changed value is a duplicate, as without the cache.
        let b = body(T0 + 30_000, false);
        let o = decode_and_ingest(&rx, &db, &b, &mut scratch).unwrap();
        assert_eq!(o.samples_written, 3);
        let old = body(T0, false);
        let o = decode_and_ingest(&rx, &db, &old, &mut scratch).unwrap();
        assert_eq!(
            o.rejected.out_of_order, 0,
            "identical resends count as written"
        );
        assert_eq!(o.samples_written, 3);
        let got = stored(&db);
        assert_eq!(got.len(), 3);
        let times: Vec<i64> = (0..3).map(|s| T0 + s * 15_000).collect();
        assert_eq!(got[0].0, "{__name__=\"other\"}");
        assert_eq!(got[0].1.iter().map(|x| x.0).collect::<Vec<_>>(), times);
        assert_eq!(got[1].0, "{__name__=\"up\", job=\"a\"}");
        assert_eq!(got[2].0, "{__name__=\"up\", job=\"b\"}");
        assert!(got[2].1.iter().all(|x| x.1 == 2.0));
        assert_eq!(db.head().num_series(), 3);
    }

    #[test]
    fn recognised_series_still_get_family_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let rx = Receiver::new(Limits::default());
        let mut scratch = V1Scratch::default();
        // First without metadata (the series get cached), then with it.
        let b = body(T0, false);
        decode_and_ingest(&rx, &db, &b, &mut scratch).unwrap();
        assert!(db.head().metadata_by_metric().is_empty());
        let b = body(T0 + 15_000, true);
        decode_and_ingest(&rx, &db, &b, &mut scratch).unwrap();
        let md = db.head().metadata_by_metric();
        assert_eq!(md["up"][0].help, "help");
        assert!(!md.contains_key("other"));
        assert_eq!(
            rx.metrics
                .metadata_applied
                .load(std::sync::atomic::Ordering::Relaxed),
            2
        );
    }
}
