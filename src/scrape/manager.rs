//! The scrape manager: one pool per `scrape_configs` job, each with a discovery task (static
//! groups once; file SD re-read on change and every `refresh_interval`) that syncs the pool's
//! scrape loops — new targets start, vanished targets stop with stale markers. Applying a new
//! configuration keeps unchanged jobs running, restarts changed ones (handing the series
//! cache over when metric labels cannot differ) and stops removed ones. The manager also
//! holds the state the targets API reads. It never parses configuration text and never
//! writes samples itself (the loops do).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hasher;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigil_storage::labels::Fnv1a;
use vigil_storage::{Db, Labels};

use super::discovery::{static_groups, FileDiscovery};
use super::scrape_loop::{
    write_end_of_run_staleness, LiveTarget, LoopState, ScrapeLoop, ScrapeReport, StopMode,
    TargetHealth,
};
use super::target::{targets_from_groups, DroppedTarget, TargetGroup};
use crate::config::{Config, ScrapeConfig};

/// How often file SD files are polled for changes (their modification times).
pub const FILE_SD_POLL_MS: u64 = 1000;

/// A snapshot of one active target, for `/api/v1/targets`.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetStatus {
    pub scrape_pool: String,
    pub scrape_url: String,
    pub labels: Labels,
    pub discovered_labels: Labels,
    pub health: TargetHealth,
    pub last_error: String,
    pub last_scrape_ms: Option<i64>,
    pub last_scrape_duration_seconds: f64,
    pub scrape_interval_ms: i64,
    pub scrape_timeout_ms: i64,
    pub last_report: ScrapeReport,
}

/// A target dropped by relabeling, for `/api/v1/targets?state=dropped`.
#[derive(Clone, Debug, PartialEq)]
pub struct DroppedStatus {
    pub scrape_pool: String,
    pub discovered_labels: Labels,
}

struct LoopHandle {
    live: Arc<LiveTarget>,
    stop: watch::Sender<Option<StopMode>>,
    join: JoinHandle<LoopState>,
}

/// What one job's pool shares between its discovery task and the manager.
struct PoolShared {
    db: Arc<Db>,
    cfg: Arc<ScrapeConfig>,
    seed: u64,
    loops: tokio::sync::Mutex<HashMap<u64, LoopHandle>>,
    /// Loop states handed over by the previous pool of this job, consumed at first sync.
    inherited: parking_lot::Mutex<Option<HashMap<u64, LoopState>>>,
    active: parking_lot::Mutex<Vec<Arc<LiveTarget>>>,
    dropped: parking_lot::Mutex<Vec<DroppedTarget>>,
    /// True once the server shuts down (loops then write no stale markers).
    shutdown: watch::Receiver<bool>,
    /// Loops of removed targets still waiting to write their stale markers.
    ending: Ending,
}

/// Loops stopped with [`StopMode::Stale`] that have not finished yet; shutdown awaits them.
type Ending = Arc<parking_lot::Mutex<Vec<JoinHandle<LoopState>>>>;

struct Pool {
    shared: Arc<PoolShared>,
    discovery: JoinHandle<()>,
}

/// Runs all scrape pools; shared behind an `Arc` with the HTTP API.
pub struct ScrapeManager {
    db: Arc<Db>,
    pools: parking_lot::Mutex<BTreeMap<String, Pool>>,
    apply_lock: tokio::sync::Mutex<u64>,
    shutdown: watch::Sender<bool>,
    ending: Ending,
}

/// The offset seed from the external labels, so that replicas with different external labels
/// scrape at different phases.
fn offset_seed(cfg: &Config) -> u64 {
    let mut h = Fnv1a::default();
    for (k, v) in &cfg.global.external_labels {
        h.write(k.as_bytes());
        h.write_u8(0xff);
        h.write(v.as_bytes());
        h.write_u8(0xff);
    }
    h.finish()
}

/// Whether a loop's cache stays valid when its job changes from `a` to `b`: the stored
/// labels of each exposed series must come out the same.
fn cache_reusable(a: &ScrapeConfig, b: &ScrapeConfig) -> bool {
    a.honor_labels == b.honor_labels
        && a.honor_timestamps == b.honor_timestamps
        && a.metric_relabel_configs == b.metric_relabel_configs
}

impl PoolShared {
    /// Makes the running loops match `groups`.
    async fn sync(self: &Arc<Self>, groups: &[TargetGroup]) {
        let (targets, dropped, invalid) = targets_from_groups(groups, &self.cfg);
        for e in &invalid {
            tracing::warn!(job = %self.cfg.job_name, labels = %e.discovered, reason = %e.reason, "invalid target");
        }
        let mut loops = self.loops.lock().await;
        let mut inherited = self.inherited.lock().take().unwrap_or_default();
        let mut keep = std::collections::HashSet::new();
        for t in targets {
            let h = t.hash();
            keep.insert(h);
            if loops.contains_key(&h) {
                continue;
            }
            let live = Arc::new(LiveTarget {
                pool: self.cfg.job_name.clone(),
                target: t,
                report: parking_lot::Mutex::new(ScrapeReport::default()),
            });
            let state = inherited.remove(&h).unwrap_or_default();
            let (tx, rx) = watch::channel(None);
            let lp = ScrapeLoop::new(
                self.db.clone(),
                live.clone(),
                self.cfg.clone(),
                state,
                self.seed,
                self.shutdown.clone(),
            );
            let join = tokio::spawn(lp.run(rx));
            loops.insert(
                h,
                LoopHandle {
                    live,
                    stop: tx,
                    join,
                },
            );
        }
        for mut st in inherited.into_values() {
            write_end_of_run_staleness(&self.db, &mut st);
        }
        let gone: Vec<u64> = loops
            .keys()
            .filter(|h| !keep.contains(h))
            .copied()
            .collect();
        let stopping: Vec<LoopHandle> = gone.iter().filter_map(|h| loops.remove(h)).collect();
        stop_loops(stopping, StopMode::Stale, &self.ending).await;
        let mut active: Vec<Arc<LiveTarget>> = loops.values().map(|l| l.live.clone()).collect();
        active.sort_by(|a, b| a.target.labels.cmp(&b.target.labels));
        *self.active.lock() = active;
        let keep_dropped = self.cfg.keep_dropped_targets.unwrap_or(0) as usize;
        let mut dropped = dropped;
        if keep_dropped > 0 {
            dropped.truncate(keep_dropped);
        }
        *self.dropped.lock() = dropped;
    }

    /// Discovers targets until aborted.
    async fn discover(self: Arc<Self>) {
        let statics = static_groups(&self.cfg.static_configs);
        let mut files: Vec<FileDiscovery> = self
            .cfg
            .file_sd_configs
            .iter()
            .map(FileDiscovery::new)
            .collect();
        let mut file_groups: Vec<Vec<TargetGroup>> = vec![Vec::new(); files.len()];
        let mut last_refresh = vec![tokio::time::Instant::now(); files.len()];
        for (i, f) in files.iter_mut().enumerate() {
            file_groups[i] = self.refresh_file(f);
        }
        let all = |fg: &[Vec<TargetGroup>]| -> Vec<TargetGroup> {
            statics
                .iter()
                .cloned()
                .chain(fg.iter().flatten().cloned())
                .collect()
        };
        self.sync(&all(&file_groups)).await;
        if files.is_empty() {
            return;
        }
        let poll = std::time::Duration::from_millis(FILE_SD_POLL_MS);
        loop {
            tokio::time::sleep(poll).await;
            let mut changed = false;
            for (i, f) in files.iter_mut().enumerate() {
                let due = last_refresh[i].elapsed().as_millis() as i64 >= f.refresh_ms();
                if due || f.changed() {
                    last_refresh[i] = tokio::time::Instant::now();
                    let g = self.refresh_file(f);
                    if g != file_groups[i] {
                        file_groups[i] = g;
                        changed = true;
                    }
                }
            }
            if changed {
                self.sync(&all(&file_groups)).await;
            }
        }
    }

    fn refresh_file(&self, f: &mut FileDiscovery) -> Vec<TargetGroup> {
        let (groups, errors) = f.refresh();
        for e in errors {
            tracing::error!(job = %self.cfg.job_name, error = %e, "file service discovery");
        }
        groups
    }
}

/// Stops loops. With [`StopMode::Stale`] they finish on their own (writing stale markers
/// about two intervals later, unless the server shuts down first): their handles go to
/// `ending` and no state is returned.
async fn stop_loops(
    handles: Vec<LoopHandle>,
    mode: StopMode,
    ending: &Ending,
) -> HashMap<u64, LoopState> {
    for h in &handles {
        let _ = h.stop.send(Some(mode));
    }
    if mode == StopMode::Stale {
        let mut e = ending.lock();
        e.retain(|j| !j.is_finished());
        e.extend(handles.into_iter().map(|h| h.join));
        return HashMap::new();
    }
    let mut out = HashMap::new();
    for h in handles {
        let hash = h.live.target.hash();
        match h.join.await {
            Ok(st) => {
                out.insert(hash, st);
            }
            Err(e) => tracing::error!(error = %e, "scrape loop ended abnormally"),
        }
    }
    out
}

impl Pool {
    fn start(
        db: Arc<Db>,
        cfg: ScrapeConfig,
        seed: u64,
        inherited: HashMap<u64, LoopState>,
        shutdown: watch::Receiver<bool>,
        ending: Ending,
    ) -> Pool {
        let shared = Arc::new(PoolShared {
            db,
            cfg: Arc::new(cfg),
            seed,
            loops: tokio::sync::Mutex::new(HashMap::new()),
            inherited: parking_lot::Mutex::new(Some(inherited)),
            active: parking_lot::Mutex::new(Vec::new()),
            shutdown,
            ending,
            dropped: parking_lot::Mutex::new(Vec::new()),
        });
        let discovery = tokio::spawn(shared.clone().discover());
        Pool { shared, discovery }
    }

    /// Stops discovery and every loop; returns the loop states.
    async fn stop(self, mode: StopMode) -> HashMap<u64, LoopState> {
        self.discovery.abort();
        let _ = self.discovery.await;
        let handles: Vec<LoopHandle> = self
            .shared
            .loops
            .lock()
            .await
            .drain()
            .map(|(_, h)| h)
            .collect();
        let states = stop_loops(handles, mode, &self.shared.ending).await;
        self.shared.active.lock().clear();
        states
    }
}

impl ScrapeManager {
    /// A manager with no pools; call [`ScrapeManager::apply_config`] to start scraping.
    pub fn new(db: Arc<Db>) -> Arc<ScrapeManager> {
        Arc::new(ScrapeManager {
            db,
            pools: parking_lot::Mutex::new(BTreeMap::new()),
            apply_lock: tokio::sync::Mutex::new(0),
            shutdown: watch::channel(false).0,
            ending: Ending::default(),
        })
    }

    /// Makes the running pools match `cfg` (already validated). Unchanged jobs keep running
    /// untouched; changed jobs restart; removed jobs stop and mark their series stale.
    pub async fn apply_config(&self, cfg: &Config) {
        let mut seed_guard = self.apply_lock.lock().await;
        let seed = offset_seed(cfg);
        let seed_changed = *seed_guard != seed;
        *seed_guard = seed;
        let old: BTreeMap<String, Pool> = std::mem::take(&mut *self.pools.lock());
        let mut next: BTreeMap<String, Pool> = BTreeMap::new();
        for (job, pool) in old {
            match cfg.scrape_config(&job) {
                None => {
                    pool.stop(StopMode::Stale).await;
                }
                Some(c) if *c == *pool.shared.cfg && !seed_changed => {
                    next.insert(job, pool);
                }
                Some(c) => {
                    let reusable = cache_reusable(&pool.shared.cfg, c);
                    let mut states = pool.stop(StopMode::Handover).await;
                    if !reusable {
                        for st in states.values_mut() {
                            write_end_of_run_staleness(&self.db, st);
                        }
                        states.clear();
                    }
                    next.insert(
                        job,
                        Pool::start(
                            self.db.clone(),
                            c.clone(),
                            seed,
                            states,
                            self.shutdown.subscribe(),
                            self.ending.clone(),
                        ),
                    );
                }
            }
        }
        for c in &cfg.scrape_configs {
            if !next.contains_key(&c.job_name) {
                next.insert(
                    c.job_name.clone(),
                    Pool::start(
                        self.db.clone(),
                        c.clone(),
                        seed,
                        HashMap::new(),
                        self.shutdown.subscribe(),
                        self.ending.clone(),
                    ),
                );
            }
        }
        *self.pools.lock() = next;
    }

    /// Stops every pool for a server shutdown. As in Prometheus no stale markers are written
    /// (the server presumably restarts where it was), and loops still waiting to mark a
    /// removed target stale give up.
    pub async fn stop(&self) {
        let _g = self.apply_lock.lock().await;
        self.shutdown.send_replace(true);
        let old: BTreeMap<String, Pool> = std::mem::take(&mut *self.pools.lock());
        for (_, pool) in old {
            pool.stop(StopMode::Shutdown).await;
        }
        let ending: Vec<JoinHandle<LoopState>> = std::mem::take(&mut *self.ending.lock());
        for j in ending {
            let _ = j.await;
        }
    }

    /// The job names of the running pools.
    pub fn pools(&self) -> Vec<String> {
        self.pools.lock().keys().cloned().collect()
    }

    /// Active targets of all pools, by pool then labels.
    pub fn active_targets(&self) -> Vec<TargetStatus> {
        let pools = self.pools.lock();
        let mut out = Vec::new();
        for pool in pools.values() {
            for live in pool.shared.active.lock().iter() {
                let r = live.report.lock().clone();
                out.push(TargetStatus {
                    scrape_pool: live.pool.clone(),
                    scrape_url: live.target.url(),
                    labels: live.target.labels.clone(),
                    discovered_labels: live.target.discovered.clone(),
                    health: r.health,
                    last_error: r.last_error.clone(),
                    last_scrape_ms: r.last_scrape_ms,
                    last_scrape_duration_seconds: r.last_scrape_duration_seconds,
                    scrape_interval_ms: live.target.interval_ms,
                    scrape_timeout_ms: live.target.timeout_ms,
                    last_report: r,
                });
            }
        }
        out
    }

    /// Targets dropped by relabeling, per pool.
    pub fn dropped_targets(&self) -> Vec<DroppedStatus> {
        let pools = self.pools.lock();
        let mut out = Vec::new();
        for (job, pool) in pools.iter() {
            for d in pool.shared.dropped.lock().iter() {
                out.push(DroppedStatus {
                    scrape_pool: job.clone(),
                    discovered_labels: d.discovered.clone(),
                });
            }
        }
        out
    }
}
