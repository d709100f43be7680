//! One request's ingestion through a single storage `Appender`, shared by RW 1.0 and 2.0:
//! validated series are appended sample by sample; each rejected sample is counted by
//! reason (out of order, out of bounds, duplicate, too far in the future) without stopping
//! the others; invalid series and unsupported data (native histograms, exemplars) are
//! counted; metadata is logged only when it changed; then one commit (WAL fsync) makes the
//! good part durable. The `Outcome` says exactly what was written and what was not, and
//! renders the 400 message. Never answers for data that was not committed.

use std::collections::HashMap;
use std::fmt::Write;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;

use vigil_storage::head::SeriesHandle;
use vigil_storage::record::{MetricType, RefMetadata};
use vigil_storage::{Appender, Db, Error as StorageError, Labels, Matcher, Queryable};

use super::error::Result;
use super::metrics::RejectReason;
use super::proto::metric_type_code as code;
use super::series::SeriesError;
use super::{Receiver, META_CACHE_SLACK};

/// Metadata of one metric family or series, as received.
#[derive(Clone, Debug, PartialEq)]
pub struct FamilyMeta {
    pub metric_type: MetricType,
    pub help: String,
    pub unit: String,
}

impl FamilyMeta {
    /// Whether it carries anything worth storing.
    pub fn is_empty(&self) -> bool {
        self.metric_type == MetricType::Unknown && self.help.is_empty() && self.unit.is_empty()
    }

    fn fingerprint(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.metric_type as u8).hash(&mut h);
        self.help.hash(&mut h);
        self.unit.hash(&mut h);
        h.finish()
    }
}

/// Maps the protobuf metric type number (same in RW 1.0 and 2.0) to the storage's.
pub fn metric_type_from_code(c: i32) -> MetricType {
    match c {
        code::COUNTER => MetricType::Counter,
        code::GAUGE => MetricType::Gauge,
        code::HISTOGRAM => MetricType::Histogram,
        code::GAUGEHISTOGRAM => MetricType::GaugeHistogram,
        code::SUMMARY => MetricType::Summary,
        code::INFO => MetricType::Info,
        code::STATESET => MetricType::StateSet,
        _ => MetricType::Unknown,
    }
}

/// What was not written, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rejected {
    pub out_of_order: u64,
    pub out_of_bounds: u64,
    pub duplicate: u64,
    pub too_far_in_future: u64,
    /// Series skipped for invalid labels, and their samples.
    pub invalid_series: u64,
    pub invalid_series_samples: u64,
    /// Series skipped for exceeding a per-series limit, and their samples.
    pub limited_series: u64,
    pub limited_series_samples: u64,
    /// Native histogram samples and exemplars (not supported by the storage).
    pub histograms: u64,
    pub exemplars: u64,
    /// The first invalid-series and limit messages, for the response body.
    pub first_invalid: Option<String>,
    pub first_limit: Option<String>,
}

impl Rejected {
    /// Whether nothing was rejected.
    pub fn is_empty(&self) -> bool {
        self.out_of_order == 0
            && self.out_of_bounds == 0
            && self.duplicate == 0
            && self.too_far_in_future == 0
            && self.invalid_series == 0
            && self.limited_series == 0
            && self.histograms == 0
            && self.exemplars == 0
    }
}

/// The result of ingesting one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Float samples committed (an identical resend of a stored sample counts as written).
    pub samples_written: u64,
    /// Native histogram samples committed (always 0: not supported yet).
    pub histograms_written: u64,
    /// Exemplars committed (always 0: not supported yet).
    pub exemplars_written: u64,
    pub rejected: Rejected,
}

impl Outcome {
    /// The 400 message: what was stored and every reason something was not.
    pub fn message(&self, max_future_ms: i64) -> String {
        let r = &self.rejected;
        let mut parts: Vec<String> = Vec::new();
        let mut count = |n: u64, what: &str| {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        };
        count(r.out_of_order, "out-of-order samples");
        count(
            r.out_of_bounds,
            "samples too old (before the head's appendable window)",
        );
        count(
            r.duplicate,
            "duplicate samples (same timestamp, different value)",
        );
        count(
            r.too_far_in_future,
            &format!(
                "samples too far in the future (more than {}s ahead)",
                max_future_ms / 1000
            ),
        );
        count(
            r.histograms,
            "native histogram samples (not supported by Vigil's storage)",
        );
        count(r.exemplars, "exemplars (not supported by Vigil's storage)");
        let mut s = format!(
            "remote write partially rejected: stored {} samples; rejected {}",
            self.samples_written,
            if parts.is_empty() {
                "no samples".to_string()
            } else {
                parts.join(", ")
            }
        );
        if r.invalid_series > 0 {
            let _ = write!(
                s,
                "; skipped {} invalid series with {} samples (first: {})",
                r.invalid_series,
                r.invalid_series_samples,
                r.first_invalid.as_deref().unwrap_or("?")
            );
        }
        if r.limited_series > 0 {
            let _ = write!(
                s,
                "; skipped {} series over limits with {} samples (first: {})",
                r.limited_series,
                r.limited_series_samples,
                r.first_limit.as_deref().unwrap_or("?")
            );
        }
        s
    }
}

/// One request being ingested.
pub struct Ingest<'a> {
    rx: &'a Receiver,
    db: &'a Db,
    app: Appender,
    now_ms: i64,
    /// Samples accepted by the appender (buffered or identical no-ops).
    accepted: u64,
    out: Outcome,
    /// Metadata added to the appender: (series ref, fingerprint).
    pending_meta: Vec<(u64, u64)>,
    /// Samples refused as out of order, checked before commit for being identical resends.
    out_of_order: Vec<(Labels, i64, f64)>,
}

impl<'a> Ingest<'a> {
    /// Starts a request against `db`.
    pub fn new(rx: &'a Receiver, db: &'a Db) -> Ingest<'a> {
        Ingest {
            rx,
            db,
            app: db.appender(),
            now_ms: wall_clock_ms(),
            accepted: 0,
            out: Outcome::default(),
            pending_meta: Vec::new(),
            out_of_order: Vec::new(),
        }
    }

    /// Skips a series whose labels failed validation, counting what it carried.
    pub fn reject_series(&mut self, e: SeriesError, samples: u64, histograms: u64, exemplars: u64) {
        let r = &mut self.out.rejected;
        let m = &self.rx.metrics;
        match e {
            SeriesError::Invalid(msg) => {
                r.invalid_series += 1;
                r.invalid_series_samples += samples;
                r.first_invalid.get_or_insert(msg);
                m.invalid_series.fetch_add(1, Ordering::Relaxed);
                m.rejected(RejectReason::InvalidSeries, samples);
            }
            SeriesError::Limit(kind, msg) => {
                r.limited_series += 1;
                r.limited_series_samples += samples;
                r.first_limit
                    .get_or_insert_with(|| format!("{kind} limit: {msg}"));
                m.limit(kind);
                m.rejected(RejectReason::LimitExceeded, samples);
            }
        }
        self.unsupported(histograms, exemplars);
    }

    /// Counts native histogram samples and exemplars, which are rejected.
    pub fn unsupported(&mut self, histograms: u64, exemplars: u64) {
        self.out.rejected.histograms += histograms;
        self.out.rejected.exemplars += exemplars;
        let m = &self.rx.metrics;
        m.histograms_rejected
            .fetch_add(histograms, Ordering::Relaxed);
        m.exemplars_rejected.fetch_add(exemplars, Ordering::Relaxed);
    }

    /// Appends the float samples `(t, v)` of one valid series; returns its series ref when
    /// at least one sample was accepted. Fails only on storage faults (the request is then
    /// answered 500 and nothing of it is committed).
    ///
    /// The series is named by canonical borrowed pairs (from
    /// [`super::series::check_series`]): an existing series is found without building
    /// owned labels.
    pub fn append_series_pairs(
        &mut self,
        pairs: &[(&str, &str)],
        samples: impl Iterator<Item = (i64, f64)>,
    ) -> Result<Option<u64>> {
        Ok(self.append_series_pairs_handle(pairs, samples)?.0)
    }

    /// [`Ingest::append_series_pairs`] that also returns a handle to the series once a
    /// sample was appended, for [`Ingest::append_series_handle`] in later requests.
    pub fn append_series_pairs_handle(
        &mut self,
        pairs: &[(&str, &str)],
        samples: impl Iterator<Item = (i64, f64)>,
    ) -> Result<(Option<u64>, Option<SeriesHandle>)> {
        let mut target: (&[(&str, &str)], Option<SeriesHandle>) = (pairs, None);
        let r = self.append_loop(
            &mut target,
            samples,
            |app, (pairs, handle), t, v| match handle {
                Some(h) => app.append_handle(h, t, v),
                None => app.append_borrowed_handle(pairs, t, v).map(|(r, h)| {
                    *handle = Some(h);
                    r
                }),
            },
            // Canonical pairs always convert (anything else fails the append).
            |(pairs, _)| Labels::from_pairs(pairs).unwrap_or_default(),
        )?;
        Ok((r, target.1))
    }

    /// Appends the float samples of a series already validated and looked up (held by
    /// `h`); the same accounting as [`Ingest::append_series_pairs`].
    pub fn append_series_handle(
        &mut self,
        h: &SeriesHandle,
        samples: impl Iterator<Item = (i64, f64)>,
    ) -> Result<Option<u64>> {
        self.append_loop(
            &mut &*h,
            samples,
            |app, h, t, v| app.append_handle_shared(h, t, v),
            |h| h.labels().clone(),
        )
    }

    /// The per-sample loop: future check, `append`, and counting by outcome.
    fn append_loop<T>(
        &mut self,
        target: &mut T,
        samples: impl Iterator<Item = (i64, f64)>,
        append: impl Fn(&mut Appender, &mut T, i64, f64) -> std::result::Result<u64, StorageError>,
        labels: impl Fn(&T) -> Labels,
    ) -> Result<Option<u64>> {
        let max_future = self.rx.limits.max_future_ms;
        let mut series_ref: Option<u64> = None;
        for (t, v) in samples {
            if max_future > 0 && t > self.now_ms.saturating_add(max_future) {
                self.out.rejected.too_far_in_future += 1;
                continue;
            }
            let res = append(&mut self.app, target, t, v);
            let r = &mut self.out.rejected;
            match res {
                Ok(r) => {
                    series_ref = Some(r);
                    self.accepted += 1;
                }
                Err(StorageError::OutOfOrderSample) => {
                    r.out_of_order += 1;
                    self.out_of_order.push((labels(target), t, v));
                }
                Err(StorageError::OutOfBounds) => r.out_of_bounds += 1,
                Err(StorageError::DuplicateSample) => r.duplicate += 1,
                Err(StorageError::TooFarInFuture) => r.too_far_in_future += 1,
                Err(StorageError::InvalidLabels(m)) => {
                    // Validation should have caught this; count it as an invalid series.
                    r.invalid_series += 1;
                    r.invalid_series_samples += 1;
                    r.first_invalid.get_or_insert(m);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(series_ref)
    }

    /// Logs `meta` for a series ref, unless the same metadata was logged for it already.
    pub fn metadata(&mut self, series_ref: u64, meta: &FamilyMeta) {
        if meta.is_empty() {
            return;
        }
        let fp = meta.fingerprint();
        if self.rx.logged_meta.lock().get(&series_ref) == Some(&fp)
            || self.pending_meta.contains(&(series_ref, fp))
        {
            return;
        }
        self.app.update_metadata(
            series_ref,
            RefMetadata {
                series_ref,
                metric_type: meta.metric_type,
                unit: meta.unit.clone(),
                help: meta.help.clone(),
            },
        );
        self.pending_meta.push((series_ref, fp));
    }

    /// Commits (WAL fsync) and returns the outcome; counters are updated only now.
    pub fn commit(mut self) -> Result<Outcome> {
        let resent = self.identical_resends()?;
        self.out.rejected.out_of_order -= resent;
        self.accepted += resent;
        let Ingest {
            rx,
            db,
            app,
            accepted,
            mut out,
            pending_meta,
            ..
        } = self;
        let stats = app.commit()?;
        out.rejected.out_of_order += stats.out_of_order;
        out.samples_written = accepted.saturating_sub(stats.out_of_order);
        let m = &rx.metrics;
        m.samples_written
            .fetch_add(out.samples_written, Ordering::Relaxed);
        let r = &out.rejected;
        m.rejected(RejectReason::OutOfOrder, r.out_of_order);
        m.rejected(RejectReason::OutOfBounds, r.out_of_bounds);
        m.rejected(RejectReason::Duplicate, r.duplicate);
        m.rejected(RejectReason::TooFarInFuture, r.too_far_in_future);
        if !pending_meta.is_empty() {
            m.metadata_applied
                .fetch_add(pending_meta.len() as u64, Ordering::Relaxed);
            let mut logged = rx.logged_meta.lock();
            let bound = (db.head().num_series() as usize)
                .saturating_mul(2)
                .saturating_add(META_CACHE_SLACK);
            if logged.len() > bound {
                logged.clear();
            }
            logged.extend(pending_meta);
        }
        Ok(out)
    }
}

impl Ingest<'_> {
    /// How many out-of-order samples are already stored with the same timestamp and the
    /// same value bits: a sender resending a request whose answer it lost. Those count as
    /// written (a silent no-op), as the storage does for its newest sample.
    fn identical_resends(&mut self) -> Result<u64> {
        if self.out_of_order.is_empty() {
            return Ok(0);
        }
        let mut cands = std::mem::take(&mut self.out_of_order);
        cands.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut found = 0;
        let mut i = 0;
        while i < cands.len() {
            let labels = &cands[i].0;
            let j = i + cands[i..].iter().take_while(|c| &c.0 == labels).count();
            let (mint, maxt) = (cands[i].1, cands[j - 1].1);
            let matchers: Vec<Matcher> = labels
                .iter()
                .map(|l| Matcher::equal(&l.name, &l.value))
                .collect();
            let q = self.db.querier(mint, maxt)?;
            let mut stored: HashMap<i64, u64> = HashMap::new();
            for s in q.select(&matchers)?.iter().filter(|s| &s.labels == labels) {
                for smp in s.samples()? {
                    stored.insert(smp.t, smp.v.to_bits());
                }
            }
            found += cands[i..j]
                .iter()
                .filter(|c| stored.get(&c.1) == Some(&c.2.to_bits()))
                .count() as u64;
            i = j;
        }
        Ok(found)
    }
}

/// Looks up RW 1.0 family metadata for a series name: the name itself, or the name without
/// a `_bucket`/`_count`/`_sum`/`_total`/`_created` suffix (classic histogram, summary and
/// counter series).
pub fn family_for<'m>(
    families: &'m HashMap<String, FamilyMeta>,
    name: &str,
) -> Option<&'m FamilyMeta> {
    const SUFFIXES: [&str; 5] = ["_bucket", "_count", "_sum", "_total", "_created"];
    if let Some(m) = families.get(name) {
        return Some(m);
    }
    SUFFIXES
        .iter()
        .filter_map(|s| name.strip_suffix(s))
        .find_map(|base| families.get(base))
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::remote::Limits;
    use vigil_storage::DbOptions;

    fn meta(help: &str) -> FamilyMeta {
        FamilyMeta {
            metric_type: MetricType::Counter,
            help: help.into(),
            unit: String::new(),
        }
    }

    #[test]
    fn metadata_is_logged_only_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let rx = Receiver::new(Limits::default());
        let labels = [("__name__", "c_total")];
        let t = wall_clock_ms();
        let applied = |rx: &Receiver| rx.metrics.metadata_applied.load(Ordering::Relaxed);
        for (i, help) in ["a", "a", "b", "b"].iter().enumerate() {
            let mut ing = Ingest::new(&rx, &db);
            let r = ing
                .append_series_pairs(&labels, std::iter::once((t + i as i64, 1.0)))
                .unwrap()
                .unwrap();
            ing.metadata(r, &meta(help));
            ing.metadata(r, &meta(help));
            let out = ing.commit().unwrap();
            assert_eq!(out.samples_written, 1);
        }
        assert_eq!(applied(&rx), 2, "logged for 'a' once and for 'b' once");
        let md = db.head().metadata_by_metric();
        assert_eq!(md["c_total"][0].help, "b");
    }

    #[test]
    fn family_lookup_strips_known_suffixes() {
        let mut f = HashMap::new();
        f.insert("req_seconds".to_string(), meta("h"));
        assert!(family_for(&f, "req_seconds_bucket").is_some());
        assert!(family_for(&f, "req_seconds_count").is_some());
        assert!(family_for(&f, "req_seconds").is_some());
        assert!(family_for(&f, "req_seconds_other").is_none());
    }

    #[test]
    fn message_names_every_reason() {
        let o = Outcome {
            samples_written: 3,
            rejected: Rejected {
                out_of_bounds: 2,
                histograms: 1,
                limited_series: 1,
                limited_series_samples: 4,
                first_limit: Some("x".into()),
                ..Rejected::default()
            },
            ..Outcome::default()
        };
        let m = o.message(600_000);
        assert!(m.contains("stored 3 samples"), "{m}");
        assert!(m.contains("2 samples too old"), "{m}");
        assert!(m.contains("1 native histogram samples"), "{m}");
        assert!(
            m.contains("skipped 1 series over limits with 4 samples (first: x)"),
            "{m}"
        );
    }
}
