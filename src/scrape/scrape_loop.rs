//! One target's scrape loop: waits for the target's deterministic phase in the interval,
//! then scrapes every interval with a timeout; parses the page (text 0.0.4 or OpenMetrics by
//! content type), applies target labels (`honor_labels`, `exported_` prefixes) and
//! `metric_relabel_configs`, enforces the sample and label limits, appends through one
//! `Appender` per scrape, writes stale markers for series that disappeared (all of them when
//! a scrape fails), and records the synthetic `up` / `scrape_*` series. It owns the
//! per-target series cache; it never decides which targets exist.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::watch;
use vigil_storage::chunkenc::stale_nan;
use vigil_storage::labels::METRIC_NAME;
use vigil_storage::record::{MetricType as RecordType, RefMetadata};
use vigil_storage::{Appender, Db, Error as StorageError, Labels, LabelsBuilder};

use super::http::{authorization_header, HttpScraper};
use super::relabel::process_builder;
use super::target::Target;
use crate::config::ScrapeConfig;
use crate::exposition::{self, Entry, Format, LabelPair, MetricType, ParseOptions};

/// Prefix given to exposed labels that clash with target labels.
pub const EXPORTED_LABEL_PREFIX: &str = "exported_";
/// Names of the synthetic series written after every scrape.
pub const UP: &str = "up";
pub const SCRAPE_DURATION_SECONDS: &str = "scrape_duration_seconds";
pub const SCRAPE_SAMPLES_SCRAPED: &str = "scrape_samples_scraped";
pub const SCRAPE_SAMPLES_POST_METRIC_RELABELING: &str = "scrape_samples_post_metric_relabeling";
pub const SCRAPE_SERIES_ADDED: &str = "scrape_series_added";
/// Separator between parts of a series cache key (cannot occur in UTF-8 text).
const KEY_SEP: char = '\u{fffe}';
/// Suffixes stripped from a sample name to find its metric family's metadata.
const FAMILY_SUFFIXES: [&str; 8] = [
    "_bucket", "_count", "_sum", "_total", "_created", "_info", "_gcount", "_gsum",
];

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Health of a target, as the targets API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetHealth {
    Unknown,
    Up,
    Down,
}

impl TargetHealth {
    /// `up`, `down` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetHealth::Unknown => "unknown",
            TargetHealth::Up => "up",
            TargetHealth::Down => "down",
        }
    }
}

/// The result of a target's last scrape.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapeReport {
    pub health: TargetHealth,
    pub last_error: String,
    /// Start of the last scrape, ms since the epoch.
    pub last_scrape_ms: Option<i64>,
    pub last_scrape_duration_seconds: f64,
    pub samples_scraped: u64,
    pub samples_post_relabeling: u64,
    pub series_added: u64,
}

impl Default for ScrapeReport {
    fn default() -> Self {
        ScrapeReport {
            health: TargetHealth::Unknown,
            last_error: String::new(),
            last_scrape_ms: None,
            last_scrape_duration_seconds: 0.0,
            samples_scraped: 0,
            samples_post_relabeling: 0,
            series_added: 0,
        }
    }
}

/// A running target: what it is and how its last scrape went.
#[derive(Debug)]
pub struct LiveTarget {
    pub pool: String,
    pub target: Target,
    pub report: Mutex<ScrapeReport>,
}

/// How a loop ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// The target is gone: write stale markers for all its series, as Prometheus does,
    /// at the time of the next scrape that would have been, once a further interval has
    /// passed (so a target that comes back is scraped first and the markers, then out of
    /// order, are dropped). A server shutdown meanwhile writes none.
    Stale,
    /// The loop is replaced by one with a new configuration: hand the cache over.
    Handover,
    /// The server is shutting down: no stale markers (Prometheus presumes it restarts
    /// where it was).
    Shutdown,
}

/// One cached exposed series.
#[derive(Clone, Debug)]
struct CacheEntry {
    /// `None` when metric relabeling dropped the series.
    series: Option<(u64, Labels)>,
    last_iter: u64,
}

/// What a loop keeps between scrapes (and hands to its successor on reload).
#[derive(Debug, Default)]
pub struct LoopState {
    cache: HashMap<String, CacheEntry>,
    /// Series (without explicit timestamps) written by the last scrape.
    series_prev: HashSet<Labels>,
    /// Refs of the synthetic report series.
    report_refs: HashMap<&'static str, u64>,
    last_scrape_ms: i64,
    iter: u64,
}

/// Counts of one scrape's append.
#[derive(Clone, Copy, Debug, Default)]
struct AppendStats {
    total: u64,
    added: u64,
    series_added: u64,
}

/// Appends `v` at `t` for `labels`, reusing `cached` when the head still knows it.
fn append_cached(
    app: &mut Appender,
    cached: Option<u64>,
    labels: &Labels,
    t: i64,
    v: f64,
) -> Result<u64, StorageError> {
    if let Some(r) = cached {
        match app.append_ref(r, t, v) {
            Err(StorageError::Other(_)) => {}
            res => return res,
        }
    }
    app.append(labels, t, v)
}

fn is_sample_error(e: &StorageError) -> bool {
    matches!(
        e,
        StorageError::OutOfOrderSample
            | StorageError::DuplicateSample
            | StorageError::OutOfBounds
            | StorageError::TooFarInFuture
    )
}

fn record_type(t: MetricType) -> RecordType {
    match t {
        MetricType::Counter => RecordType::Counter,
        MetricType::Gauge => RecordType::Gauge,
        MetricType::Histogram => RecordType::Histogram,
        MetricType::GaugeHistogram => RecordType::GaugeHistogram,
        MetricType::Summary => RecordType::Summary,
        MetricType::Info => RecordType::Info,
        MetricType::StateSet => RecordType::StateSet,
        MetricType::Unknown => RecordType::Unknown,
    }
}

/// Adds the target labels to an exposed series, as Prometheus' `mutateSampleLabels`.
fn apply_target_labels(
    lb: &mut LabelsBuilder,
    exposed: &[LabelPair<'_>],
    target: &Labels,
    honor: bool,
) {
    if honor {
        // An exposed label wins even when its value is empty (then the label is absent).
        for l in target.iter() {
            if !exposed.iter().any(|(n, _)| n == &*l.name) {
                lb.set(&l.name, &l.value);
            }
        }
        return;
    }
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for l in target.iter() {
        if let Some(v) = lb.get(&l.name) {
            conflicts.push((l.name.to_string(), v.to_owned()));
        }
        lb.set(&l.name, &l.value);
    }
    conflicts.sort_by_key(|(n, _)| n.len());
    for (name, value) in conflicts {
        let mut new_name = name;
        loop {
            new_name = format!("{EXPORTED_LABEL_PREFIX}{new_name}");
            if lb.get(&new_name).is_none() {
                lb.set(&new_name, &value);
                break;
            }
        }
    }
}

/// Checks `label_limit`, `label_name_length_limit` and `label_value_length_limit`.
fn check_label_limits(labels: &Labels, cfg: &ScrapeConfig) -> Result<(), String> {
    let name = labels.metric_name().unwrap_or_default();
    let short: String = name.chars().take(50).collect();
    if let Some(limit) = cfg.label_limit.filter(|l| *l > 0) {
        if labels.len() as u64 > limit {
            return Err(format!(
                "label_limit exceeded (metric: {short}, number of labels: {}, limit: {limit})",
                labels.len()
            ));
        }
    }
    let name_limit = cfg.label_name_length_limit.unwrap_or(0);
    let value_limit = cfg.label_value_length_limit.unwrap_or(0);
    for l in labels.iter() {
        if name_limit > 0 && l.name.len() as u64 > name_limit {
            return Err(format!(
                "label_name_length_limit exceeded (metric: {short}, label name: {}, length: {}, limit: {name_limit})",
                l.name,
                l.name.len()
            ));
        }
        if value_limit > 0 && l.value.len() as u64 > value_limit {
            return Err(format!(
                "label_value_length_limit exceeded (metric: {short}, label name: {}, value: {:?}, length: {}, limit: {value_limit})",
                l.name,
                l.value,
                l.value.len()
            ));
        }
    }
    Ok(())
}

/// The scrape loop of one target.
pub struct ScrapeLoop {
    db: Arc<Db>,
    live: Arc<LiveTarget>,
    cfg: Arc<ScrapeConfig>,
    scraper: Option<HttpScraper>,
    scraper_error: String,
    state: LoopState,
    seed: u64,
    /// Becomes true when the server shuts down.
    shutdown: watch::Receiver<bool>,
}

impl ScrapeLoop {
    /// A loop for `live`, continuing from `state` (empty for a new target).
    pub fn new(
        db: Arc<Db>,
        live: Arc<LiveTarget>,
        cfg: Arc<ScrapeConfig>,
        state: LoopState,
        seed: u64,
        shutdown: watch::Receiver<bool>,
    ) -> ScrapeLoop {
        let (scraper, scraper_error) = match HttpScraper::new(&cfg) {
            Ok(s) => (Some(s), String::new()),
            Err(e) => (None, e),
        };
        ScrapeLoop {
            db,
            live,
            cfg,
            scraper,
            scraper_error,
            state,
            seed,
            shutdown,
        }
    }

    /// Runs until `stop` carries a mode; returns the loop state for a successor.
    pub async fn run(mut self, mut stop: watch::Receiver<Option<StopMode>>) -> LoopState {
        let t = &self.live.target;
        let interval = std::time::Duration::from_millis(t.interval_ms.max(1) as u64);
        let delay = t.start_delay_ms(now_ms(), self.seed).max(0) as u64;
        let start = tokio::time::Instant::now() + std::time::Duration::from_millis(delay);
        let mut ticker = tokio::time::interval_at(start, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            if stop.borrow().is_some() {
                break;
            }
            tokio::select! {
                _ = ticker.tick() => {}
                r = stop.changed() => { if r.is_err() { break; } continue; }
            }
            tokio::select! {
                _ = self.scrape_once() => {}
                r = stop.changed() => { if r.is_err() { break; } continue; }
            }
        }
        let mode = (*stop.borrow()).unwrap_or(StopMode::Stale);
        if mode == StopMode::Stale && self.state.last_scrape_ms != 0 {
            let waited = async {
                ticker.tick().await;
                let stale_ts = now_ms().max(self.state.last_scrape_ms + 1);
                ticker.tick().await;
                tokio::time::sleep(interval / END_OF_RUN_GRACE_DIVISOR).await;
                stale_ts
            };
            let mut shutdown = self.shutdown.clone();
            tokio::select! {
                ts = waited => write_end_of_run_staleness_at(&self.db, &mut self.state, ts),
                _ = shutdown.wait_for(|down| *down) => {}
            }
        }
        self.state
    }

    /// Scrapes once and stores the result.
    pub async fn scrape_once(&mut self) {
        let ts = now_ms().max(self.state.last_scrape_ms + 1);
        let started = Instant::now();
        let timeout = std::time::Duration::from_millis(self.live.target.timeout_ms.max(1) as u64);
        let fetched = match self.scraper.as_mut() {
            None => Err(self.scraper_error.clone()),
            Some(s) => match authorization_header(&self.cfg) {
                Err(e) => Err(e),
                Ok(auth) => {
                    match tokio::time::timeout(
                        timeout,
                        s.scrape(&self.live.target, auth.as_deref()),
                    )
                    .await
                    {
                        Ok(r) => r,
                        Err(_) => Err(format!(
                            "Get \"{}\": context deadline exceeded",
                            self.live.target.url()
                        )),
                    }
                }
            },
        };
        let duration = started.elapsed().as_secs_f64();
        let (stats, error) = match fetched {
            Ok(body) => match self.append_page(&body.body, &body.content_type, ts, duration) {
                Ok(stats) => (stats, None),
                Err((stats, e)) => (stats, Some(e)),
            },
            Err(e) => (AppendStats::default(), Some(e)),
        };
        if let Some(e) = &error {
            self.append_failed(ts, duration, stats);
            tracing::debug!(target = %self.live.target.url(), error = %e, "scrape failed");
        }
        self.state.last_scrape_ms = ts;
        *self.live.report.lock() = ScrapeReport {
            health: if error.is_some() {
                TargetHealth::Down
            } else {
                TargetHealth::Up
            },
            last_error: error.unwrap_or_default(),
            last_scrape_ms: Some(ts),
            last_scrape_duration_seconds: duration,
            samples_scraped: stats.total,
            samples_post_relabeling: stats.added,
            series_added: stats.series_added,
        };
    }

    /// Appends a fetched page, stale markers for vanished series and the report, in one
    /// commit. On error nothing of the page is stored.
    fn append_page(
        &mut self,
        body: &[u8],
        content_type: &str,
        ts: i64,
        duration: f64,
    ) -> Result<AppendStats, (AppendStats, String)> {
        let format = Format::from_content_type(content_type);
        let cfg = self.cfg.clone();
        let target_labels = self.live.target.labels.clone();
        let st = &mut self.state;
        st.iter += 1;
        let iter = st.iter;
        let mut app = self.db.appender();
        let mut stats = AppendStats::default();
        let mut cur: HashSet<Labels> = HashSet::new();
        let mut metadata: HashMap<String, (MetricType, String, String)> = HashMap::new();
        let mut err: Option<String> = None;
        let mut key = String::new();
        let sample_limit = cfg.sample_limit.unwrap_or(0);
        let parsed = exposition::parse_entries(body, format, ParseOptions::default(), |entry| {
            let s = match entry {
                Entry::Sample(s) => s,
                Entry::Type {
                    family,
                    metric_type,
                } => {
                    metadata
                        .entry(family.to_owned())
                        .or_insert_with(|| (MetricType::Unknown, String::new(), String::new()))
                        .0 = metric_type;
                    return ControlFlow::Continue(());
                }
                Entry::Help { family, help } => {
                    metadata
                        .entry(family.to_owned())
                        .or_insert_with(|| (MetricType::Unknown, String::new(), String::new()))
                        .1 = help.to_owned();
                    return ControlFlow::Continue(());
                }
                Entry::Unit { family, unit } => {
                    metadata
                        .entry(family.to_owned())
                        .or_insert_with(|| (MetricType::Unknown, String::new(), String::new()))
                        .2 = unit.to_owned();
                    return ControlFlow::Continue(());
                }
            };
            stats.total += 1;
            key.clear();
            key.push_str(s.name);
            for (n, v) in s.labels {
                key.push(KEY_SEP);
                key.push_str(n);
                key.push(KEY_SEP);
                key.push_str(v);
            }
            let cached = match st.cache.get_mut(key.as_str()) {
                Some(e) => {
                    e.last_iter = iter;
                    match &e.series {
                        None => return ControlFlow::Continue(()),
                        Some((r, l)) => Some((*r, l.clone())),
                    }
                }
                None => None,
            };
            let (cached_ref, labels) = match cached {
                Some((r, l)) => (Some(r), l),
                None => {
                    let mut lb = LabelsBuilder::new();
                    lb.set(METRIC_NAME, s.name);
                    for (n, v) in s.labels {
                        lb.set(n, v);
                    }
                    apply_target_labels(&mut lb, s.labels, &target_labels, cfg.honor_labels);
                    let keep = process_builder(&mut lb, &cfg.metric_relabel_configs);
                    let labels = lb.build();
                    if !keep || labels.is_empty() {
                        st.cache.insert(
                            key.clone(),
                            CacheEntry {
                                series: None,
                                last_iter: iter,
                            },
                        );
                        return ControlFlow::Continue(());
                    }
                    if labels.metric_name().is_none() {
                        err = Some("__name__ label is missing".into());
                        return ControlFlow::Break(());
                    }
                    if let Err(e) = check_label_limits(&labels, &cfg) {
                        err = Some(e);
                        return ControlFlow::Break(());
                    }
                    (None, labels)
                }
            };
            stats.added += 1;
            if sample_limit > 0 && stats.added > sample_limit {
                err = Some(format!("sample limit exceeded (limit: {sample_limit})"));
                return ControlFlow::Break(());
            }
            let explicit = s.timestamp_ms.filter(|_| cfg.honor_timestamps);
            let t = explicit.unwrap_or(ts);
            match append_cached(&mut app, cached_ref, &labels, t, s.value) {
                Ok(r) => {
                    if cached_ref.is_none() {
                        stats.series_added += 1;
                        let family = metadata.get(s.name).or_else(|| {
                            FAMILY_SUFFIXES
                                .iter()
                                .find_map(|suf| s.name.strip_suffix(suf))
                                .and_then(|f| metadata.get(f))
                        });
                        if let Some((mt, help, unit)) = family {
                            app.update_metadata(
                                r,
                                RefMetadata {
                                    series_ref: r,
                                    metric_type: record_type(*mt),
                                    unit: unit.clone(),
                                    help: help.clone(),
                                },
                            );
                        }
                    }
                    st.cache.insert(
                        key.clone(),
                        CacheEntry {
                            series: Some((r, labels.clone())),
                            last_iter: iter,
                        },
                    );
                }
                // Out of order, duplicate (the first of duplicate samples wins) or out of
                // bounds: skip the sample, as Prometheus does.
                Err(e) if is_sample_error(&e) => {}
                Err(e) => {
                    err = Some(format!("appending to storage: {e}"));
                    return ControlFlow::Break(());
                }
            }
            if explicit.is_none() || cfg.track_timestamps_staleness {
                cur.insert(labels);
            }
            ControlFlow::Continue(())
        });
        if let Err(e) = parsed {
            err = Some(e.to_string());
        }
        if let Some(e) = err {
            let _ = app.rollback();
            return Err((stats, e));
        }
        let stale = stale_nan();
        for l in st.series_prev.difference(&cur) {
            let _ = app.append(l, ts, stale);
        }
        st.series_prev = cur;
        st.cache.retain(|_, e| e.last_iter == iter);
        append_report(&mut app, st, &target_labels, ts, duration, 1.0, stats);
        app.commit()
            .map(|_| stats)
            .map_err(|e| (stats, format!("committing scrape: {e}")))
    }

    /// After a failed scrape: stale markers for every series of the previous scrape, then
    /// the report with `up` 0.
    fn append_failed(&mut self, ts: i64, duration: f64, stats: AppendStats) {
        let st = &mut self.state;
        let mut app = self.db.appender();
        let stale = stale_nan();
        for l in st.series_prev.drain() {
            let _ = app.append(&l, ts, stale);
        }
        let labels = self.live.target.labels.clone();
        append_report(&mut app, st, &labels, ts, duration, 0.0, stats);
        if let Err(e) = app.commit() {
            tracing::warn!(error = %e, "storing a failed scrape's report");
        }
    }
}

/// Writes the synthetic series of one scrape.
fn append_report(
    app: &mut Appender,
    st: &mut LoopState,
    target_labels: &Labels,
    ts: i64,
    duration: f64,
    up: f64,
    stats: AppendStats,
) {
    let values = [
        (UP, up),
        (SCRAPE_DURATION_SECONDS, duration),
        (SCRAPE_SAMPLES_SCRAPED, stats.total as f64),
        (SCRAPE_SAMPLES_POST_METRIC_RELABELING, stats.added as f64),
        (SCRAPE_SERIES_ADDED, stats.series_added as f64),
    ];
    for (name, v) in values {
        let labels = report_labels(target_labels, name);
        let cached = st.report_refs.get(name).copied();
        match append_cached(app, cached, &labels, ts, v) {
            Ok(r) => {
                st.report_refs.insert(name, r);
            }
            Err(e) => tracing::debug!(series = name, error = %e, "report sample rejected"),
        }
    }
}

fn report_labels(target_labels: &Labels, name: &str) -> Labels {
    let mut lb = LabelsBuilder::from(target_labels);
    lb.set(METRIC_NAME, name);
    lb.build()
}

/// A stopped target's stale markers wait an extra interval / this after the scrape that
/// would have followed the next one (Prometheus' 10 %).
const END_OF_RUN_GRACE_DIVISOR: u32 = 10;

/// Stale markers for every series of a target that stops being scraped, including its
/// report series. Stored just after the target's last scrape.
pub fn write_end_of_run_staleness(db: &Db, st: &mut LoopState) {
    let ts = now_ms().max(st.last_scrape_ms + 1);
    write_end_of_run_staleness_at(db, st, ts);
}

/// [`write_end_of_run_staleness`] at timestamp `ts`. Markers older than a sample a
/// recreated target has written since are out of order and dropped.
pub fn write_end_of_run_staleness_at(db: &Db, st: &mut LoopState, ts: i64) {
    if st.last_scrape_ms == 0 {
        return;
    }
    let stale = stale_nan();
    let mut app = db.appender();
    for l in st.series_prev.drain() {
        let _ = app.append(&l, ts, stale);
    }
    for r in st.report_refs.drain().map(|(_, r)| r) {
        let _ = app.append_ref(r, ts, stale);
    }
    if let Err(e) = app.commit() {
        tracing::warn!(error = %e, "storing stale markers of a stopped target");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn ls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs).unwrap()
    }

    fn mutate(exposed: &[(&str, &str)], target: &Labels, honor: bool) -> Labels {
        let pairs: Vec<LabelPair<'_>> = exposed
            .iter()
            .map(|(n, v)| (Cow::Borrowed(*n), Cow::Borrowed(*v)))
            .collect();
        let mut lb = LabelsBuilder::new();
        lb.set(METRIC_NAME, "m");
        for (n, v) in exposed {
            lb.set(n, v);
        }
        apply_target_labels(&mut lb, &pairs, target, honor);
        lb.build()
    }

    #[test]
    fn target_labels_win_and_exposed_become_exported() {
        let target = ls(&[("job", "j"), ("instance", "i")]);
        let out = mutate(
            &[("job", "mine"), ("exported_job", "taken")],
            &target,
            false,
        );
        assert_eq!(
            out,
            ls(&[
                ("__name__", "m"),
                ("exported_exported_job", "mine"),
                ("exported_job", "taken"),
                ("instance", "i"),
                ("job", "j"),
            ])
        );
    }

    #[test]
    fn honor_labels_keeps_exposed_even_when_empty() {
        let target = ls(&[("job", "j"), ("instance", "i")]);
        let out = mutate(&[("job", "mine")], &target, true);
        assert_eq!(
            out,
            ls(&[("__name__", "m"), ("instance", "i"), ("job", "mine")])
        );
        // An exposed empty `job` suppresses the target's job: the series has no job label.
        let out = mutate(&[("job", "")], &target, true);
        assert_eq!(out, ls(&[("__name__", "m"), ("instance", "i")]));
    }

    #[test]
    fn label_limits_fail_with_prometheus_messages() {
        let mut cfg = ScrapeConfig::new("j");
        let l = ls(&[("__name__", "m"), ("a", "12345"), ("bbbbbb", "1")]);
        assert!(check_label_limits(&l, &cfg).is_ok());
        cfg.label_limit = Some(2);
        assert!(check_label_limits(&l, &cfg)
            .unwrap_err()
            .starts_with("label_limit exceeded"));
        cfg.label_limit = None;
        cfg.label_name_length_limit = Some(5);
        assert!(check_label_limits(&l, &cfg)
            .unwrap_err()
            .starts_with("label_name_length_limit exceeded"));
        cfg.label_name_length_limit = None;
        cfg.label_value_length_limit = Some(4);
        assert!(check_label_limits(&l, &cfg)
            .unwrap_err()
            .starts_with("label_value_length_limit exceeded"));
    }
}
