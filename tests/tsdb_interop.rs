//! Interop with the real Prometheus tools (`promtool` from the Debian `prometheus` package):
//! data written by Vigil (live data dirs with blocks, WAL and head chunks, and backfilled
//! blocks) is listed, analysed and dumped by promtool exactly as Vigil dumps it, and blocks
//! promtool creates are dumped by Vigil exactly as promtool dumps them.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{ensure_wal_dir, interop_bin, run_ok, vigil};
use vigil_storage::{Db, DbOptions, Labels};

const H: i64 = 3600 * 1000;

/// A small OpenMetrics document with counters, gauges, escapes, odd values and float
/// timestamps, spanning several 2h windows.
fn openmetrics_input() -> String {
    let mut s = String::new();
    s.push_str("# HELP http_requests Requests served.\n# TYPE http_requests counter\n");
    for code in ["200", "500"] {
        for i in 0..600i64 {
            let t = 1_700_000_000 + i * 30;
            let v = i * 3 + i64::from(code == "500");
            s.push_str(&format!(
                "http_requests_total{{code=\"{code}\",path=\"/a b\\\"q\"}} {v} {t}\n"
            ));
        }
    }
    s.push_str("# TYPE temperature gauge\n");
    for i in 0..400i64 {
        let t = 1_700_000_000 + i * 45;
        let v = match i {
            7 => "NaN".to_string(),
            8 => "+Inf".to_string(),
            9 => "-1e-07".to_string(),
            _ => format!("{}", 20.0 + i as f64 * 0.125),
        };
        s.push_str(&format!("temperature{{room=\"x\\\\y\"}} {v} {t}.5\n"));
    }
    s.push_str("# EOF\n");
    s
}

fn dump_with(bin: &mut Command, dir: &Path) -> String {
    run_ok(bin.arg("tsdb").arg("dump").arg(dir))
}

#[test]
fn backfilled_blocks_agree_both_ways() {
    let Some(promtool) = interop_bin("promtool") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.om");
    std::fs::write(&input, openmetrics_input()).unwrap();
    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    let table = run_ok(
        vigil()
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(&ours),
    );
    assert!(table.starts_with("BLOCK ULID"), "{table}");
    run_ok(
        Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(&theirs),
    );
    ensure_wal_dir(&ours);
    ensure_wal_dir(&theirs);

    // promtool reads our blocks: list, analyze, dump.
    let list = run_ok(Command::new(&promtool).args(["tsdb", "list"]).arg(&ours));
    assert_eq!(list.lines().count(), 4, "{list}");
    let analyze = run_ok(Command::new(&promtool).args(["tsdb", "analyze"]).arg(&ours));
    assert!(analyze.contains("Series: 3"), "{analyze}");

    let promtool_ours = dump_with(&mut Command::new(&promtool), &ours);
    let vigil_ours = dump_with(&mut vigil(), &ours);
    let promtool_theirs = dump_with(&mut Command::new(&promtool), &theirs);
    let vigil_theirs = dump_with(&mut vigil(), &theirs);
    assert_eq!(promtool_ours.lines().count(), 1600);
    assert_eq!(
        promtool_ours, vigil_ours,
        "promtool vs vigil dump of Vigil's blocks"
    );
    assert_eq!(
        promtool_theirs, vigil_theirs,
        "promtool vs vigil dump of promtool's blocks"
    );
    assert_eq!(promtool_ours, promtool_theirs, "same input, same samples");

    // Same block layout as promtool: windows, sample and chunk counts.
    let ours_list = run_ok(vigil().args(["tsdb", "list"]).arg(&ours));
    let theirs_list = run_ok(vigil().args(["tsdb", "list"]).arg(&theirs));
    let cols = |s: &str| -> Vec<Vec<String>> {
        s.lines()
            .skip(1)
            .map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .take(6)
                    .map(String::from)
                    .collect()
            })
            .collect()
    };
    assert_eq!(cols(&ours_list), cols(&theirs_list));
    // And `vigil tsdb list` prints exactly what promtool prints.
    let promtool_list = run_ok(Command::new(&promtool).args(["tsdb", "list"]).arg(&theirs));
    assert_eq!(theirs_list, promtool_list);
}

#[test]
fn live_data_dir_agrees_with_promtool() {
    let Some(promtool) = interop_bin("promtool") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    {
        let db = Db::open(
            &dir,
            DbOptions {
                retention_ms: 0,
                ..DbOptions::default()
            },
        )
        .unwrap();
        let t0 = 1_700_000_000_000i64 / (2 * H) * (2 * H);
        let mut t = t0;
        while t < t0 + 5 * H {
            let mut app = db.appender();
            for i in 0..30 {
                let l = Labels::from_pairs(&[
                    (
                        "__name__",
                        if i % 3 == 0 {
                            "node_load1"
                        } else {
                            "node_cpu_seconds_total"
                        },
                    ),
                    ("instance", &format!("10.0.0.{i}:9100")),
                    ("job", "node"),
                ])
                .unwrap();
                let v = if i % 3 == 0 {
                    ((t / 1000) % 97) as f64 / 10.0
                } else {
                    (t - t0) as f64 / 1000.0 * (i as f64 + 0.5)
                };
                app.append(&l, t, v).unwrap();
            }
            app.commit().unwrap();
            t += 15_000;
        }
        // Persist what is due into blocks; the rest stays in the head (WAL + chunks_head).
        db.compact().unwrap();
        assert!(!db.blocks().is_empty());
        assert!(!db.head().is_empty());
        db.close().unwrap();
    }
    let list = run_ok(Command::new(&promtool).args(["tsdb", "list"]).arg(&dir));
    let vlist = run_ok(vigil().args(["tsdb", "list"]).arg(&dir));
    assert_eq!(list, vlist);
    run_ok(Command::new(&promtool).args(["tsdb", "analyze"]).arg(&dir));
    let theirs = dump_with(&mut Command::new(&promtool), &dir);
    let ours = dump_with(&mut vigil(), &dir);
    assert_eq!(theirs.lines().count(), 30 * 5 * 240);
    assert_eq!(theirs, ours);
    // Time-bounded and matcher-filtered dumps agree too.
    let args = |c: &mut Command| {
        c.args([
            "tsdb",
            "dump",
            "--min-time=1700001000000",
            "--max-time=1700010000000",
            "--match={job=\"node\", __name__=~\"node_load.*\"}",
        ])
        .arg(&dir);
    };
    let mut p = Command::new(&promtool);
    args(&mut p);
    let mut v = vigil();
    args(&mut v);
    let (a, b) = (run_ok(&mut p), run_ok(&mut v));
    assert!(!a.is_empty());
    assert_eq!(a, b);
}
