//! The `vigil` command: with no subcommand it serves the database (Prometheus-compatible
//! flags); `vigil tsdb …` runs the data tools. Flag parsing and process lifecycle only: the
//! work is done by the library crates.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use vigil::flags::{parse_bytes, parse_duration_ms};
use vigil::server::{self, AppState};
use vigil_storage::{Db, DbOptions};

#[derive(Parser, Debug)]
#[command(
    name = "vigil",
    version,
    about = "A Prometheus-compatible time-series database"
)]
struct Cli {
    /// Base path for metrics storage.
    #[arg(long = "storage.tsdb.path", default_value = "data/")]
    storage_path: PathBuf,
    /// Address to listen on for the API and telemetry.
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9090")]
    listen_address: String,
    /// How long to retain samples in storage (e.g. 15d). 0 disables time retention.
    #[arg(long = "storage.tsdb.retention.time", default_value = "15d")]
    retention_time: String,
    /// Maximum number of bytes of blocks to retain (e.g. 512MB). 0 disables size retention.
    #[arg(long = "storage.tsdb.retention.size", default_value = "0")]
    retention_size: String,
    /// Compress the WAL with snappy.
    #[arg(long = "storage.tsdb.wal-compression", default_value_t = true, action = clap::ArgAction::Set)]
    wal_compression: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Tools for TSDB data directories (mirrors `promtool tsdb`).
    Tsdb {
        #[command(subcommand)]
        cmd: vigil::tsdb_tools::TsdbCommand,
    },
    /// Runs promqltest script files against the engine (in-memory storage) and prints
    /// per-file results, ending with `N passed, M failed`.
    PromqlTest {
        /// The `.test` files to run.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Check rule files (mirrors `promtool check`).
    Check {
        #[command(subcommand)]
        cmd: vigil::rules::check::CheckCommand,
    },
    /// Rule unit tests: `test rules FILE...` (mirrors `promtool test rules`).
    Test {
        #[command(subcommand)]
        cmd: vigil::rules::unittest::TestCommand,
    },
    /// SLO tools: `slo generate FILE` prints the rule file generated from an SLO spec.
    Slo {
        #[command(subcommand)]
        cmd: vigil::slo::SloCommand,
    },
}

/// Runs `vigil promql-test FILE...`; fails when any eval failed.
fn promql_test(files: &[std::path::PathBuf]) -> ExitCode {
    use vigil_promql::engine::test_engine::PromqlTestEngine;
    use vigil_promql::promqltest::{run_file, summarize};
    let mut reports = Vec::with_capacity(files.len());
    for f in files {
        let mut engine = PromqlTestEngine::default();
        let report = run_file(f, &mut engine);
        println!("{}", report.summary());
        reports.push(report);
    }
    println!("{}", summarize(&reports));
    if reports.iter().any(|r| r.failed() > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::PromqlTest { files }) = &cli.command {
        return promql_test(files);
    }
    match cli.command {
        Some(Command::Check { cmd }) => return ExitCode::from(vigil::rules::check::run(cmd)),
        Some(Command::Slo { cmd }) => return ExitCode::from(vigil::slo::run(cmd)),
        Some(Command::Test { cmd }) => return ExitCode::from(vigil::rules::unittest::run(cmd)),
        _ => {}
    }
    if let Some(Command::Tsdb { cmd }) = cli.command {
        return match vigil::tsdb_tools::run(cmd) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    init_tracing();
    match serve(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn serve(cli: Cli) -> anyhow::Result<()> {
    let retention_ms = parse_duration_ms(&cli.retention_time)
        .map_err(|e| anyhow::anyhow!("--storage.tsdb.retention.time: {e}"))?;
    let retention_bytes = parse_bytes(&cli.retention_size)
        .map_err(|e| anyhow::anyhow!("--storage.tsdb.retention.size: {e}"))?;
    let opts = DbOptions {
        retention_ms,
        retention_bytes,
        wal_compression: cli.wal_compression,
        max_block_duration_ms: vigil_storage::db::default_max_block_duration(retention_ms),
        ..DbOptions::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&cli.listen_address)
            .await
            .map_err(|e| anyhow::anyhow!("listening on {}: {e}", cli.listen_address))?;
        tracing::info!(address = %listener.local_addr()?, "listening");
        let dir = cli.storage_path.clone();
        tracing::info!(path = %dir.display(), "opening storage");
        let db = tokio::task::spawn_blocking(move || Db::open(&dir, opts)).await??;
        let state = Arc::new(AppState {
            db: db.clone(),
            ready: std::sync::atomic::AtomicBool::new(false),
            start_time: std::time::SystemTime::now(),
        });
        state.ready.store(true, Ordering::Release);
        tracing::info!("server is ready to receive web requests");
        let compactor = spawn_compactor(db.clone());
        server::serve(listener, state, shutdown_signal()).await?;
        tracing::info!("shutting down");
        compactor.abort();
        tokio::task::spawn_blocking(move || db.close()).await??;
        tracing::info!("storage closed; bye");
        Ok(())
    })
}

/// Runs compaction, head truncation and retention every minute in the background.
fn spawn_compactor(db: Arc<Db>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            let d = db.clone();
            match tokio::task::spawn_blocking(move || d.compact()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "compaction failed"),
                Err(e) => tracing::error!(error = %e, "compaction task failed"),
            }
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("received SIGINT"),
        _ = term => tracing::info!("received SIGTERM"),
    }
}
