//! Model-based test of the database: random sequences of appends (in order, out of order,
//! duplicates, no-op resends, invalid label sets), commits, rollbacks, compactions,
//! deletes and reopens run against a `Db` and against a plain `BTreeMap` model that
//! restates the appendability rules (out of bounds, out of order, duplicate, no-op) and
//! the head compaction schedule. After every step that changes what is visible, the
//! querier's answer must equal the model's.
//!
//! This file owns the model only; it must never reach into head or block internals, and
//! never weaken a check to make a sequence pass.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;
use vigil_storage::{Appender, Db, DbOptions, Error, Labels, MatchType, Matcher, Queryable};

/// Number of distinct series the operations touch.
const SERIES: usize = 4;
/// The block range (and head chunk range).
const RANGE_MS: i64 = 2 * 3600 * 1000;
/// Each operation moves the "clock" forward by this much.
const TICK_MS: i64 = 5 * 60 * 1000;
/// Appends are placed this far around the clock (in whole minutes).
const JITTER_MIN: i64 = 90;
/// Prometheus' stale marker.
const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;
/// The values appends choose from (few, so that same-value resends happen).
const VALUES: [u64; 4] = [
    0,
    0x3ff0_0000_0000_0000,
    0x4004_0000_0000_0000,
    STALE_NAN_BITS,
];
/// Metric name of every test series.
const METRIC: &str = "model_test";

#[derive(Clone, Debug)]
enum Op {
    /// Append to series `s` at clock + `offset_min` minutes with value `VALUES[v]`.
    Append {
        s: usize,
        offset_min: i64,
        v: usize,
    },
    /// Re-append the newest committed sample of `s`, with the same value or another.
    Resend {
        s: usize,
        same_value: bool,
    },
    /// Append to series `s` at clock + `offset_min` with a second appender and commit it
    /// at once, while the main appender stays open (concurrent writers).
    AppendOther {
        s: usize,
        offset_min: i64,
        v: usize,
    },
    /// Append with an empty label set.
    AppendInvalid,
    Commit,
    Rollback,
    Compact,
    /// Delete `[from, to]` (relative to the clock, in minutes, clamped to what the series
    /// holds) from series `s`.
    Delete {
        s: usize,
        from_min: i64,
        len_min: i64,
    },
    Reopen,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..SERIES, -JITTER_MIN..JITTER_MIN / 3, 0..VALUES.len())
            .prop_map(|(s, offset_min, v)| Op::Append { s, offset_min, v }),
        2 => (0..SERIES, any::<bool>()).prop_map(|(s, same_value)| Op::Resend { s, same_value }),
        1 => (0..SERIES, 0i64..240, 0..VALUES.len())
            .prop_map(|(s, offset_min, v)| Op::AppendOther { s, offset_min, v }),
        1 => Just(Op::AppendInvalid),
        5 => Just(Op::Commit),
        1 => Just(Op::Rollback),
        2 => Just(Op::Compact),
        1 => (0..SERIES, -240i64..0, 0i64..180)
            .prop_map(|(s, from_min, len_min)| Op::Delete { s, from_min, len_min }),
        1 => Just(Op::Reopen),
    ]
}

/// What the database should contain and how it should answer appends.
#[derive(Default)]
struct Model {
    /// Visible samples per series: t → value bits.
    visible: BTreeMap<usize, BTreeMap<i64, u64>>,
    /// Newest committed sample per series (t, value bits), deleted or not.
    last: BTreeMap<usize, (i64, u64)>,
    /// Timestamps of committed samples still in the head (deletes do not remove them).
    head: BTreeMap<usize, BTreeSet<i64>>,
    /// Samples accepted by the open appender.
    pending: Vec<(usize, i64, u64)>,
    /// Newest pending timestamp per series.
    pending_t: BTreeMap<usize, i64>,
    /// Oldest timestamp the open appender passed the bounds check with: head compaction
    /// waits for the appender before truncating past it.
    pending_min: Option<i64>,
    /// The head's truncation point: appends below it are out of bounds.
    truncated_at: i64,
    /// Largest `maxt` of any block written.
    blocks_maxt: i64,
}

impl Model {
    fn new() -> Model {
        Model {
            truncated_at: i64::MIN,
            blocks_maxt: i64::MIN,
            ..Model::default()
        }
    }

    fn head_bounds(&self) -> Option<(i64, i64)> {
        let min = self.head.values().filter_map(|s| s.first()).min()?;
        let max = self.head.values().filter_map(|s| s.last()).max()?;
        Some((*min, *max))
    }

    fn min_valid_time(&self) -> i64 {
        match self.head_bounds() {
            Some((_, max)) => self.truncated_at.max(max - RANGE_MS / 2),
            None => self.truncated_at,
        }
    }

    /// The outcome the head must give for appending (s, t, v): Ok(true) stores, Ok(false)
    /// is an accepted no-op.
    fn append(&mut self, s: usize, t: i64, v: u64) -> Result<bool, &'static str> {
        if t < self.min_valid_time() {
            return Err("out of bounds");
        }
        self.pending_min = Some(self.pending_min.map_or(t, |m| m.min(t)));
        let (last_t, last_v) = self.last.get(&s).copied().unwrap_or((i64::MIN, 0));
        let pending_t = self.pending_t.get(&s).copied().unwrap_or(i64::MIN);
        let newest = last_t.max(pending_t);
        if t > newest {
            self.pending.push((s, t, v));
            self.pending_t.insert(s, t);
            return Ok(true);
        }
        if t < newest {
            return Err("out of order");
        }
        if t == last_t && pending_t <= last_t && v == last_v {
            return Ok(false);
        }
        Err("duplicate")
    }

    /// Applies the pending samples; returns (stored, dropped because a concurrent writer
    /// committed a newer sample of the series meanwhile).
    fn commit(&mut self) -> (u64, u64) {
        let (mut stored, mut dropped) = (0, 0);
        for (s, t, v) in std::mem::take(&mut self.pending) {
            let (last_t, last_v) = self.last.get(&s).copied().unwrap_or((i64::MIN, 0));
            if t < last_t || (t == last_t && v != last_v) {
                dropped += 1;
                continue;
            }
            if t == last_t {
                continue;
            }
            self.visible.entry(s).or_default().insert(t, v);
            self.head.entry(s).or_default().insert(t);
            self.last.insert(s, (t, v));
            stored += 1;
        }
        self.pending_t.clear();
        self.pending_min = None;
        (stored, dropped)
    }

    /// A second appender appends one sample and commits it while `pending` stays open.
    fn append_other(&mut self, s: usize, t: i64, v: u64) -> Result<bool, &'static str> {
        let saved_pending = std::mem::take(&mut self.pending);
        let saved_min = self.pending_min.take();
        let res = self.append(s, t, v);
        self.commit();
        self.pending = saved_pending;
        self.pending_min = saved_min;
        // The main appender's pending timestamps still count for appendability.
        for (ps, pt, _) in &self.pending {
            let e = self.pending_t.entry(*ps).or_insert(*pt);
            *e = (*e).max(*pt);
        }
        res
    }

    fn rollback(&mut self) {
        self.pending.clear();
        self.pending_t.clear();
        self.pending_min = None;
    }

    /// Restates `Db::compact`'s head schedule: while the head spans more than 1.5 ranges,
    /// its oldest range becomes a block (if anything visible is in it) and is truncated.
    fn compact(&mut self) {
        while let Some((hmin, hmax)) = self.head_bounds() {
            if hmax - hmin <= RANGE_MS * 3 / 2 {
                break;
            }
            let mint = hmin.div_euclid(RANGE_MS) * RANGE_MS;
            let maxt = mint + RANGE_MS;
            // A block is written even when tombstones left nothing in the range.
            self.blocks_maxt = self.blocks_maxt.max(maxt);
            self.truncated_at = self.truncated_at.max(maxt);
            for ts in self.head.values_mut() {
                *ts = ts.split_off(&maxt);
            }
            self.head.retain(|_, ts| !ts.is_empty());
        }
    }

    fn delete(&mut self, s: usize, mint: i64, maxt: i64) {
        if let Some(m) = self.visible.get_mut(&s) {
            m.retain(|t, _| *t < mint || *t > maxt);
        }
    }

    /// After a restart the head's floor is the newest block's end.
    fn reopen(&mut self) {
        self.rollback();
        self.truncated_at = self.blocks_maxt;
        let floor = self.truncated_at;
        for ts in self.head.values_mut() {
            *ts = ts.split_off(&floor);
        }
        self.head.retain(|_, ts| !ts.is_empty());
    }
}

fn labels(s: usize) -> Labels {
    Labels::from_pairs(&[("__name__", METRIC.to_string()), ("s", s.to_string())]).unwrap()
}

fn opts() -> DbOptions {
    DbOptions {
        retention_ms: 0,
        wal_segment_size_bytes: 4 * vigil_wal::PAGE_SIZE as u64,
        ..DbOptions::default()
    }
}

fn outcome_name(r: &vigil_storage::Result<u64>) -> Result<(), &'static str> {
    match r {
        Ok(_) => Ok(()),
        Err(Error::OutOfBounds) => Err("out of bounds"),
        Err(Error::OutOfOrderSample) => Err("out of order"),
        Err(Error::DuplicateSample) => Err("duplicate"),
        Err(e) => panic!("unexpected append error {e}"),
    }
}

fn check(db: &Db, model: &Model, step: usize) {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let mut got: BTreeMap<usize, BTreeMap<i64, u64>> = BTreeMap::new();
    for s in q
        .select(&[Matcher::new(MatchType::Equal, "__name__", METRIC).unwrap()])
        .unwrap()
    {
        let idx: usize = s.labels.get("s").unwrap().parse().unwrap();
        let m: BTreeMap<i64, u64> = s
            .samples()
            .unwrap()
            .iter()
            .map(|x| (x.t, x.v.to_bits()))
            .collect();
        if !m.is_empty() {
            got.insert(idx, m);
        }
    }
    let want: BTreeMap<usize, BTreeMap<i64, u64>> = model
        .visible
        .iter()
        .filter(|(_, m)| !m.is_empty())
        .map(|(k, m)| (*k, m.clone()))
        .collect();
    assert_eq!(got, want, "step {step}: querier disagrees with the model");
}

fn run(ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let mut db: Arc<Db> = Db::open(dir.path(), opts()).unwrap();
    let mut app: Option<Appender> = None;
    let mut model = Model::new();
    for (step, op) in ops.iter().enumerate() {
        let clock = step as i64 * TICK_MS;
        match op {
            Op::Append { s, offset_min, v } => {
                let t = clock + offset_min * 60_000;
                let a = app.get_or_insert_with(|| db.appender());
                let got = a.append(&labels(*s), t, f64::from_bits(VALUES[*v]));
                let want = model.append(*s, t, VALUES[*v]).map(|_| ());
                assert_eq!(
                    outcome_name(&got),
                    want,
                    "step {step}: append {op:?} at {t}"
                );
            }
            Op::Resend { s, same_value } => {
                let Some(&(t, v)) = model.last.get(s) else {
                    continue;
                };
                let v = if *same_value { v } else { v ^ 1 };
                let a = app.get_or_insert_with(|| db.appender());
                let got = a.append(&labels(*s), t, f64::from_bits(v));
                let want = model.append(*s, t, v).map(|_| ());
                assert_eq!(outcome_name(&got), want, "step {step}: {op:?} at {t}");
            }
            Op::AppendOther { s, offset_min, v } => {
                let t = clock + offset_min * 60_000;
                let mut other = db.appender();
                let got = other.append(&labels(*s), t, f64::from_bits(VALUES[*v]));
                let want = model.append_other(*s, t, VALUES[*v]).map(|_| ());
                assert_eq!(outcome_name(&got), want, "step {step}: {op:?} at {t}");
                other.commit().unwrap();
                check(&db, &model, step);
            }
            Op::AppendInvalid => {
                let a = app.get_or_insert_with(|| db.appender());
                let got = a.append(&Labels::empty(), clock, 1.0);
                assert!(matches!(got, Err(Error::InvalidLabels(_))), "{got:?}");
            }
            Op::Commit => {
                let stats = app.take().map(|a| a.commit().unwrap());
                let (stored, dropped) = model.commit();
                let got = stats.map_or((0, 0), |s| (s.appended, s.out_of_order));
                assert_eq!(got, (stored, dropped), "step {step}: commit");
                check(&db, &model, step);
            }
            Op::Rollback => {
                if let Some(a) = app.take() {
                    a.rollback().unwrap();
                }
                model.rollback();
                check(&db, &model, step);
            }
            Op::Compact => {
                db.compact().unwrap();
                model.compact();
                check(&db, &model, step);
            }
            Op::Delete {
                s,
                from_min,
                len_min,
            } => {
                // Deletes cover existing data only (never a series' future), so that
                // later appends are never hidden by an old tombstone.
                let Some(&(last_t, _)) = model.last.get(s) else {
                    continue;
                };
                let mint = clock + from_min * 60_000;
                let maxt = (mint + len_min * 60_000).min(last_t);
                if maxt < mint {
                    continue;
                }
                db.delete(&[Matcher::equal("s", &s.to_string())], mint, maxt)
                    .unwrap();
                model.delete(*s, mint, maxt);
                check(&db, &model, step);
            }
            Op::Reopen => {
                drop(app.take());
                db.close().unwrap();
                drop(db);
                db = Db::open(dir.path(), opts()).unwrap();
                model.reopen();
                check(&db, &model, step);
            }
        }
    }
    if let Some(a) = app.take() {
        a.commit().unwrap();
        model.commit();
    }
    check(&db, &model, ops.len());
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(&db, &model, ops.len() + 1);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn db_matches_model(ops in proptest::collection::vec(op_strategy(), 1..120)) {
        run(&ops);
    }
}

/// Found by the model: a sample accepted by an open appender, then a head compaction
/// truncating past it (another writer moved the head forward), then the commit: the
/// sample landed below the head's floor and vanished at the next restart.
#[test]
fn regression_commit_below_concurrent_truncation_survives_restart() {
    run(&[
        Op::Append {
            s: 0,
            offset_min: -39,
            v: 0,
        },
        Op::Commit,
        Op::Append {
            s: 0,
            offset_min: -11,
            v: 0,
        },
        Op::AppendOther {
            s: 1,
            offset_min: 127,
            v: 0,
        },
        Op::Compact,
        Op::Commit,
        Op::Reopen,
    ]);
}

/// Found by the model: a head range whose samples were all deleted produced no block, so
/// after a restart nothing said the head had been truncated there, and the deleted chunk
/// came back from `chunks_head/` without its (truncated) tombstone.
#[test]
fn regression_deleted_head_range_is_not_revived_after_restart() {
    let ops = vec![
        Op::AppendInvalid,
        Op::AppendInvalid,
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Rollback,
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::AppendOther {
            s: 0,
            offset_min: 12,
            v: 0,
        },
        Op::AppendOther {
            s: 1,
            offset_min: 132,
            v: 0,
        },
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::AppendInvalid,
        Op::AppendInvalid,
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Append {
            s: 1,
            offset_min: 0,
            v: 0,
        },
        Op::AppendInvalid,
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::AppendInvalid,
        Op::Append {
            s: 0,
            offset_min: -9,
            v: 0,
        },
        Op::Append {
            s: 1,
            offset_min: 0,
            v: 0,
        },
        Op::Append {
            s: 0,
            offset_min: -19,
            v: 0,
        },
        Op::AppendInvalid,
        Op::Append {
            s: 0,
            offset_min: -29,
            v: 0,
        },
        Op::Append {
            s: 0,
            offset_min: -34,
            v: 0,
        },
        Op::AppendInvalid,
        Op::AppendInvalid,
        Op::AppendInvalid,
        Op::AppendInvalid,
        Op::Append {
            s: 1,
            offset_min: 0,
            v: 0,
        },
        Op::Append {
            s: 1,
            offset_min: 0,
            v: 0,
        },
        Op::AppendInvalid,
        Op::AppendInvalid,
        Op::AppendInvalid,
        Op::AppendInvalid,
        Op::AppendInvalid,
        Op::AppendInvalid,
        Op::AppendInvalid,
        Op::Delete {
            s: 0,
            from_min: -168,
            len_min: 0,
        },
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Rollback,
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Rollback,
        Op::AppendInvalid,
        Op::Append {
            s: 3,
            offset_min: -21,
            v: 0,
        },
        Op::Compact,
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::AppendInvalid,
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::AppendInvalid,
        Op::Append {
            s: 1,
            offset_min: 0,
            v: 0,
        },
        Op::Append {
            s: 0,
            offset_min: 0,
            v: 0,
        },
        Op::Commit,
        Op::Compact,
    ];
    run(&ops);
}
