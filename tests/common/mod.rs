//! Shared helpers for integration tests: locating external binaries for interop tests
//! (skipped when absent, failing when `VIGIL_REQUIRE_INTEROP=1`), and running commands.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

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

/// A `vigil` server started by a test; killed when dropped.
pub struct RunningVigil {
    pub child: Child,
    /// `host:port` it listens on.
    pub addr: String,
}

impl Drop for RunningVigil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `vigil` with `args` (add `--web.listen-address=127.0.0.1:0`) and returns once it
/// logs that it is ready, with the address parsed from its log; the log keeps being drained
/// so the server never blocks on a full pipe.
pub fn start_vigil(args: &[String]) -> RunningVigil {
    let mut child = vigil()
        .args(args)
        .env("VIGIL_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("listening") {
            addr = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("address="))
                .map(str::to_string);
        }
        if line.contains("ready to receive web requests") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    RunningVigil {
        child,
        addr: addr.expect("no listen address in the log"),
    }
}
