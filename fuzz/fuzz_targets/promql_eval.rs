//! Fuzz target: parse and evaluate any query (instant and range) against a small in-memory
//! database with counters, gauges, classic histogram buckets and a stale marker. Evaluation
//! must return a value or an error — never panic, never run away (tight limits).

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use vigil_promql::engine::memstore::MemStorage;
use vigil_promql::engine::{Engine, EngineOpts};
use vigil_promql::parser::ParserOptions;
use vigil_storage::Labels;

fn storage() -> &'static MemStorage {
    static DB: OnceLock<MemStorage> = OnceLock::new();
    DB.get_or_init(|| {
        let db = MemStorage::new();
        let mut batch = Vec::new();
        for (i, job) in ["api", "db", "web"].iter().enumerate() {
            for inst in 0..3 {
                let inst_s = format!("i{inst}");
                let l = Labels::from_pairs(&[
                    ("__name__", "http_requests_total"),
                    ("job", job),
                    ("instance", inst_s.as_str()),
                ])
                .unwrap_or_else(|_| Labels::empty());
                let pts = (0..40).map(|k| (k * 15_000, (k * (i as i64 + 1)) as f64)).collect();
                batch.push((l, pts));
                for le in ["0.1", "1", "+Inf"] {
                    let l = Labels::from_pairs(&[
                        ("__name__", "latency_bucket"),
                        ("job", job),
                        ("instance", inst_s.as_str()),
                        ("le", le),
                    ])
                    .unwrap_or_else(|_| Labels::empty());
                    let pts = (0..40).map(|k| (k * 15_000, (k * 3) as f64)).collect();
                    batch.push((l, pts));
                }
            }
        }
        let g = Labels::from_pairs(&[("__name__", "temp"), ("room", "a")])
            .unwrap_or_else(|_| Labels::empty());
        let mut pts: Vec<(i64, f64)> = (0..20).map(|k| (k * 30_000, 20.0 + k as f64 * 0.5)).collect();
        pts.push((600_000, f64::from_bits(0x7ff0_0000_0000_0002)));
        batch.push((g, pts));
        let _ = db.append_batch(&batch);
        db
    })
}

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| {
        Engine::new(EngineOpts {
            timeout: Duration::from_millis(200),
            max_samples: 200_000,
            parser_options: ParserOptions::all(),
            ..EngineOpts::default()
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    if q.len() > 512 {
        return;
    }
    let db = storage();
    let _ = engine().instant(db, q, 300_000);
    let _ = engine().range(db, q, 0, 600_000, 30_000);
});
