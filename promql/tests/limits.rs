//! Engine limits: deeply nested queries are refused with a parse error instead of overflowing
//! the stack (and huge per-step windows still stop at the query timeout);
//! queries at the nesting limit parse, type-check, print and evaluate on an ordinary 2 MiB
//! thread stack (what tokio worker threads get).
#![allow(clippy::unwrap_used)]

use vigil_promql::engine::memstore::MemStorage;
use vigil_promql::engine::{Engine, EngineOpts};
use vigil_promql::parser::{parse_expr, MAX_NESTING_DEPTH};

fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn too_deep_is_a_parse_error() {
    on_small_stack(|| {
        for q in [
            format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000)),
            format!("1{}", "+1".repeat(100_000)),
            format!("{}1", "-".repeat(100_000)),
            format!("{}x{}", "abs(".repeat(50_000), ")".repeat(50_000)),
            format!("2{}", "^2".repeat(100_000)),
        ] {
            let e = parse_expr(&q).unwrap_err().to_string();
            assert!(e.contains("nested too deeply"), "{e}");
        }
    });
}

#[test]
fn at_the_limit_everything_works() {
    on_small_stack(|| {
        let n = MAX_NESTING_DEPTH - 2;
        let queries = [
            format!("{}x{}", "(".repeat(n), ")".repeat(n)),
            format!("x{}", "+x".repeat(n - 1)),
            format!("{}x{}", "abs(".repeat(n / 2), ")".repeat(n / 2)),
            format!("{}x{}", "sum by (a) (".repeat(n / 2), ")".repeat(n / 2)),
            format!(
                "{}x{}",
                "max_over_time((".repeat(n / 2),
                ")[5m:1m])".repeat(n / 2)
            ),
            format!("{}x{}", "-(x * ".repeat(n / 4), ")".repeat(n / 4)),
            format!(
                "{}x{}",
                "label_replace(".repeat(n / 2),
                r#", "a", "b", "c", "(.*)")"#.repeat(n / 2)
            ),
        ];
        let db = MemStorage::new();
        let engine = Engine::new(EngineOpts::default());
        for q in queries {
            let e = parse_expr(&q).unwrap();
            let printed = e.to_string();
            parse_expr(&printed).unwrap();
            engine.instant(&db, &q, 0).unwrap();
            engine.range(&db, &q, 0, 60_000, 15_000).unwrap();
        }
    });
}

/// A query whose every step scans a huge window still stops at its timeout.
#[test]
fn huge_windows_respect_the_timeout() {
    let db = MemStorage::new();
    let engine = Engine::new(EngineOpts {
        timeout: std::time::Duration::from_millis(300),
        ..EngineOpts::default()
    });
    let day = 86_400_000;
    let err = engine
        .range(
            &db,
            "quantile_over_time(0.5, vector(1)[30d:1s])",
            30 * day,
            30 * day + 3_600_000,
            1_000,
        )
        .unwrap_err();
    assert!(matches!(err, vigil_promql::engine::Error::Timeout), "{err}");
}
