//! Crash safety of the whole storage engine under `kill -9`. The test binary re-executes
//! itself as a child process (selected by an environment variable) that opens a `Db` and
//! appends from several threads, printing one line per commit it is about to attempt and
//! one per commit that `commit()` acknowledged. The parent kills the child with SIGKILL at
//! random points, many times over the same directory, and after every kill reopens the
//! database and checks the durability contract: every acknowledged sample is present with
//! its exact value, and no sample exists that was never attempted.
//!
//! These tests own only the crash/recovery contract; they must never depend on timing
//! (no sleeps: kill points are counted in protocol lines) nor assert on wall-clock time.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use vigil_storage::{Db, DbOptions, Labels, MatchType, Matcher, Queryable};

/// Environment variable carrying the data directory; its presence selects child mode.
const ENV_CHILD_DIR: &str = "VIGIL_CRASH_CHILD_DIR";
/// Child workload: `append` or `compact`.
const ENV_CHILD_MODE: &str = "VIGIL_CRASH_CHILD_MODE";
/// First timestamp the child may use (ms).
const ENV_CHILD_START_TS: &str = "VIGIL_CRASH_CHILD_START_TS";
/// Overrides the random seed of the parent (to replay a failure).
const ENV_SEED: &str = "VIGIL_CRASH_SEED";
/// Name of the child entry point, passed to the test harness with `--exact`.
const CHILD_TEST_NAME: &str = "child_process_entry";

/// Appending threads in the child.
const THREADS: usize = 4;
/// Series per thread; one commit appends one sample to each of them.
const SERIES_PER_THREAD: usize = 5;
/// Commits per thread after which a child that was not killed stops on its own.
const MAX_COMMITS_PER_THREAD: u64 = 600;
/// Metric name of every test series.
const METRIC: &str = "crash_test";
/// Timestamp distance between consecutive commits (taken from one shared clock).
const APPEND_STEP_MS: i64 = 1_000;
/// In compaction mode the clock moves fast so that the head crosses 2h boundaries often.
const COMPACT_STEP_MS: i64 = 60_000;
/// In compaction mode, a compaction is requested every this many commits (per process).
const COMMITS_PER_COMPACTION: u64 = 40;
/// Small WAL segments so that rotation, checkpoints and truncation happen in the test.
const WAL_SEGMENT_BYTES: u64 = 4 * vigil_wal::PAGE_SIZE as u64;

/// Protocol lines printed by the child.
const LINE_OPEN: &str = "OPEN";
const LINE_TRY: &str = "TRY";
const LINE_ACK: &str = "ACK";
const LINE_COMPACT_START: &str = "COMPACT_START";
const LINE_COMPACT_DONE: &str = "COMPACT_DONE";
const LINE_FAILED: &str = "FAILED";

/// Held while spawning a child and while the parent closes a `Db`. The data-directory lock
/// is an flock on an open file, which a child shares from fork until its exec; if another
/// test thread closed its `Db` in that window and its next child tried to lock the same
/// directory, that child would find it still locked (a test-harness race: the server never
/// forks). `spawn` returns after the exec, so closing under this lock leaves no copies.
static FORK_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Closes `db` while no child is between fork and exec.
fn close_db(db: Arc<Db>) {
    let _g = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    db.close().unwrap();
    drop(db);
}

fn db_options() -> DbOptions {
    DbOptions {
        retention_ms: 0,
        wal_segment_size_bytes: WAL_SEGMENT_BYTES,
        ..DbOptions::default()
    }
}

fn series_labels(thread: usize, k: usize) -> Labels {
    Labels::from_pairs(&[
        ("__name__", METRIC.to_string()),
        ("thread", thread.to_string()),
        ("series", k.to_string()),
    ])
    .unwrap()
}

/// The one value a sample of (thread, series, t) may have.
fn expected_value(thread: usize, k: usize, t: i64) -> f64 {
    (t / 1000) as f64 * 100.0 + (thread * SERIES_PER_THREAD + k) as f64
}

/// xorshift64*: deterministic, dependency-free randomness for kill points.
struct Rng(u64);

impl Rng {
    fn from_env_or_time() -> Rng {
        let seed = std::env::var(ENV_SEED)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0x9E37_79B9_7F4A_7C15)
            });
        eprintln!("crash test seed: {seed} (set {ENV_SEED} to replay)");
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[lo, hi]`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

// ---------------------------------------------------------------------------------------
// Child side
// ---------------------------------------------------------------------------------------

/// Writes one protocol line and flushes it, so the parent sees it before anything later.
fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// Reports an unexpected error to the parent and ends the child at once.
fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    emit(&format!("{LINE_FAILED} {what}: {e}"));
    std::process::exit(1);
}

/// Entry point of the child process. Without the child environment variable (a normal
/// `cargo test` run) there is nothing to do: the parents below drive this function in a
/// separate process.
#[test]
fn child_process_entry() {
    let Ok(dir) = std::env::var(ENV_CHILD_DIR) else {
        return;
    };
    let mode = std::env::var(ENV_CHILD_MODE).unwrap();
    let start: i64 = std::env::var(ENV_CHILD_START_TS).unwrap().parse().unwrap();
    let compacting = mode == "compact";
    let step = if compacting {
        COMPACT_STEP_MS
    } else {
        APPEND_STEP_MS
    };
    let db = Db::open(Path::new(&dir), db_options()).unwrap_or_else(|e| fail("open", e));
    emit(LINE_OPEN);

    let clock = Arc::new(AtomicI64::new(start));
    let commits = Arc::new(AtomicU64::new(0));
    // At most one compaction request waits; a writer that would queue a second one blocks,
    // so compactions keep pace with the appends (and the kill points counted in
    // compactions are always reached).
    let (tick_tx, tick_rx) = mpsc::sync_channel::<()>(1);
    let compactor = compacting.then(|| {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while tick_rx.recv().is_ok() {
                n += 1;
                emit(&format!("{LINE_COMPACT_START} {n}"));
                if let Err(e) = db.compact() {
                    fail("compact", e);
                }
                emit(&format!("{LINE_COMPACT_DONE} {n}"));
            }
        })
    });
    let writers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let db = db.clone();
            let clock = clock.clone();
            let commits = commits.clone();
            let tick = tick_tx.clone();
            std::thread::spawn(move || {
                let labels: Vec<Labels> = (0..SERIES_PER_THREAD)
                    .map(|k| series_labels(thread, k))
                    .collect();
                for _ in 0..MAX_COMMITS_PER_THREAD {
                    let t = clock.fetch_add(step, Ordering::SeqCst);
                    emit(&format!("{LINE_TRY} {thread} {t}"));
                    let mut app = db.appender();
                    let mut rejected = false;
                    for (k, l) in labels.iter().enumerate() {
                        match app.append(l, t, expected_value(thread, k, t)) {
                            Ok(_) => {}
                            // A slow thread fell behind the head's window (or a block):
                            // legitimate rejections, the commit is simply not acknowledged.
                            Err(vigil_storage::Error::OutOfBounds)
                            | Err(vigil_storage::Error::OutOfOrderSample) => rejected = true,
                            Err(e) => fail("append", e),
                        }
                    }
                    if rejected {
                        app.rollback().unwrap_or_else(|e| fail("rollback", e));
                        continue;
                    }
                    let st = app.commit().unwrap_or_else(|e| fail("commit", e));
                    if st.appended == SERIES_PER_THREAD as u64 {
                        emit(&format!("{LINE_ACK} {thread} {t}"));
                    }
                    let c = commits.fetch_add(1, Ordering::SeqCst) + 1;
                    if c % COMMITS_PER_COMPACTION == 0 {
                        let _ = tick.send(());
                    }
                }
            })
        })
        .collect();
    drop(tick_tx);
    for w in writers {
        w.join().unwrap();
    }
    if let Some(c) = compactor {
        c.join().unwrap();
    }
    db.close().unwrap_or_else(|e| fail("close", e));
}

// ---------------------------------------------------------------------------------------
// Parent side
// ---------------------------------------------------------------------------------------

/// What the parent learned from all children so far.
#[derive(Default)]
struct Ledger {
    /// Timestamps each thread attempted to commit.
    tried: BTreeMap<usize, BTreeSet<i64>>,
    /// Timestamps whose commit each thread saw acknowledged.
    acked: BTreeMap<usize, BTreeSet<i64>>,
    max_tried: i64,
}

/// How one child run should end.
#[derive(Clone, Copy, Debug)]
enum KillPoint {
    /// Right after spawning (during open / WAL replay / repair).
    AtStart,
    /// After this many acknowledged commits.
    AfterAcks(u64),
    /// As soon as the n-th compaction has started.
    DuringCompaction(u64),
}

struct CycleResult {
    acks: u64,
    compactions_started: u64,
}

fn parse_ts(parts: &[&str]) -> (usize, i64) {
    (parts[1].parse().unwrap(), parts[2].parse().unwrap())
}

/// Runs one child on `dir` until `kill`, SIGKILLs it, and records its protocol lines.
fn run_child(
    dir: &Path,
    mode: &str,
    start_ts: i64,
    kill: KillPoint,
    ledger: &mut Ledger,
) -> CycleResult {
    let exe = std::env::current_exe().unwrap();
    let fork_guard = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = Command::new(exe)
        .args([
            "--exact",
            CHILD_TEST_NAME,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_CHILD_DIR, dir)
        .env(ENV_CHILD_MODE, mode)
        .env(ENV_CHILD_START_TS, start_ts.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(fork_guard);
    let stdout = child.stdout.take().unwrap();
    let mut result = CycleResult {
        acks: 0,
        compactions_started: 0,
    };
    let mut killed = false;
    if matches!(kill, KillPoint::AtStart) {
        child.kill().unwrap();
        killed = true;
    }
    // Every line is recorded, including the ones still buffered in the pipe after the
    // kill: a TRY line is always written before its commit starts.
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.first().copied() {
            Some(LINE_TRY) => {
                let (th, t) = parse_ts(&parts);
                ledger.tried.entry(th).or_default().insert(t);
                ledger.max_tried = ledger.max_tried.max(t);
            }
            Some(LINE_ACK) => {
                let (th, t) = parse_ts(&parts);
                assert!(
                    ledger.tried.get(&th).is_some_and(|s| s.contains(&t)),
                    "ACK without TRY: {line}"
                );
                ledger.acked.entry(th).or_default().insert(t);
                result.acks += 1;
                if !killed && matches!(kill, KillPoint::AfterAcks(n) if result.acks >= n) {
                    child.kill().unwrap();
                    killed = true;
                }
            }
            Some(LINE_FAILED) => panic!("child reported: {line}"),
            Some(LINE_COMPACT_START) => {
                result.compactions_started += 1;
                if !killed
                    && matches!(kill, KillPoint::DuringCompaction(n) if result.compactions_started >= n)
                {
                    child.kill().unwrap();
                    killed = true;
                }
            }
            _ => {}
        }
    }
    let status = child.wait().unwrap();
    if !killed {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut err).unwrap();
        }
        panic!("child ended on its own before the kill point {kill:?} ({status}); stderr:\n{err}");
    }
    result
}

/// Reopens the database in `dir` and checks the contract against the ledger.
fn verify(dir: &Path, ledger: &Ledger, cycle: usize) {
    let db = Db::open(dir, db_options()).unwrap();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let series = q
        .select(&[Matcher::new(MatchType::Equal, "__name__", METRIC).unwrap()])
        .unwrap();
    let mut present: BTreeMap<(usize, usize), BTreeMap<i64, f64>> = BTreeMap::new();
    for s in &series {
        let thread: usize = s.labels.get("thread").unwrap().parse().unwrap();
        let k: usize = s.labels.get("series").unwrap().parse().unwrap();
        let m = present.entry((thread, k)).or_default();
        for smp in s.samples().unwrap() {
            assert!(
                ledger
                    .tried
                    .get(&thread)
                    .is_some_and(|t| t.contains(&smp.t)),
                "cycle {cycle}: sample at {} of thread {thread} series {k} was never attempted",
                smp.t
            );
            let want = expected_value(thread, k, smp.t);
            assert_eq!(
                smp.v.to_bits(),
                want.to_bits(),
                "cycle {cycle}: wrong value at {} of thread {thread} series {k}",
                smp.t
            );
            assert!(
                m.insert(smp.t, smp.v).is_none(),
                "cycle {cycle}: duplicate sample at {} of thread {thread} series {k}",
                smp.t
            );
        }
    }
    let mut lost = Vec::new();
    for (&thread, ts) in &ledger.acked {
        for k in 0..SERIES_PER_THREAD {
            let have = present.get(&(thread, k));
            for &t in ts {
                if !have.is_some_and(|m| m.contains_key(&t)) {
                    lost.push((thread, k, t));
                }
            }
        }
    }
    assert!(
        lost.is_empty(),
        "cycle {cycle}: {} acknowledged samples lost, first: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    drop(q);
    close_db(db);
}

/// Drives `cycles` kill/reopen cycles of one workload.
fn crash_cycles(mode: &str, cycles: usize, step: i64, pick: impl Fn(&mut Rng, usize) -> KillPoint) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::from_env_or_time();
    let mut ledger = Ledger {
        max_tried: 0,
        ..Ledger::default()
    };
    let mut total_acks = 0;
    let mut total_compactions = 0;
    for cycle in 0..cycles {
        let kill = pick(&mut rng, cycle);
        let start = ledger.max_tried + step;
        let r = run_child(dir.path(), mode, start, kill, &mut ledger);
        eprintln!(
            "{mode} cycle {cycle}: kill {kill:?}, {} acks, {} compactions started",
            r.acks, r.compactions_started
        );
        total_acks += r.acks;
        total_compactions += r.compactions_started;
        verify(dir.path(), &ledger, cycle);
    }
    // The test must have exercised what it claims to.
    assert!(
        total_acks > cycles as u64,
        "too few acknowledged commits: {total_acks}"
    );
    if mode == "compact" {
        assert!(total_compactions > 0, "no compaction ran");
        let db = Db::open(dir.path(), db_options()).unwrap();
        assert!(!db.blocks().is_empty(), "no block was ever written");
        close_db(db);
    }
}

#[test]
fn kill_during_appends_loses_no_acknowledged_sample() {
    crash_cycles("append", 25, APPEND_STEP_MS, |rng, cycle| {
        if cycle % 8 == 3 {
            KillPoint::AtStart
        } else {
            KillPoint::AfterAcks(rng.range(1, 150))
        }
    });
}

#[test]
fn kill_during_compaction_loses_no_acknowledged_sample() {
    crash_cycles("compact", 20, COMPACT_STEP_MS, |rng, _| {
        if rng.range(0, 3) == 0 {
            KillPoint::AfterAcks(rng.range(20, 400))
        } else {
            KillPoint::DuringCompaction(rng.range(1, 5))
        }
    });
}
