//! Shared helpers for integration tests: locating external binaries for interop tests
//! (skipped when absent, failing when `VIGIL_REQUIRE_INTEROP=1`), and running commands.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The path of `name` on PATH, or None (after printing why) when the interop test should be
/// skipped. Panics when `VIGIL_REQUIRE_INTEROP=1` and the binary is missing.
pub fn interop_bin(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("VIGIL_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("{name} is not on PATH but VIGIL_REQUIRE_INTEROP=1");
        }
        eprintln!("skipping interop test: {name} not on PATH");
    }
    found
}

/// Runs a command, asserting success, and returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The `vigil` binary built for this test run.
pub fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

/// `promtool tsdb dump` in 2.42 needs a `wal/` directory even for backfilled blocks.
pub fn ensure_wal_dir(dir: &Path) {
    std::fs::create_dir_all(dir.join("wal")).unwrap();
}
