//! The `vigil` command: with no subcommand it serves the database (Prometheus-compatible
//! flags); `vigil tsdb …` runs the data tools. Flag parsing and process lifecycle only: the
//! work is done by the library crates.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use vigil::flags::{parse_bytes, parse_duration_ms};
use vigil::reload::Reloader;
use vigil::scrape::ScrapeManager;
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
    /// Prometheus configuration file (the embedded default scrapes Vigil itself).
    #[arg(long = "config.file")]
    config_file: Option<PathBuf>,
    /// Maximum time a query may take before being aborted.
    #[arg(long = "query.timeout", default_value = "2m")]
    query_timeout: String,
    /// Maximum number of samples a single query can load into memory.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    query_max_samples: usize,
    /// The maximum lookback duration for retrieving metrics during expression evaluations.
    #[arg(long = "query.lookback-delta", default_value = "5m")]
    query_lookback_delta: String,
    /// Enable shutdown and reload via HTTP request (`/-/quit`, `/-/reload`).
    #[arg(long = "web.enable-lifecycle")]
    enable_lifecycle: bool,
    /// Enable API endpoints for admin control actions (`/api/v1/admin/...`).
    #[arg(long = "web.enable-admin-api")]
    enable_admin_api: bool,
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
    /// Check resources for validity (mirrors `promtool check`).
    Check {
        #[command(subcommand)]
        cmd: CheckCommand,
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

#[derive(Subcommand, Debug)]
enum CheckCommand {
    /// Check if the config files are valid or not.
    Config {
        /// The config files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    #[command(flatten)]
    Other(vigil::rules::check::CheckCommand),
}

/// `vigil check config FILE...`: promtool's output and exit status — the config, then each
/// rule file it names (as `promtool check config` does), then each SLO file (Vigil's own).
fn check_config(files: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    for f in files {
        let (report, valid) = vigil::config::check_config_report(f);
        if !valid {
            // promtool: the heading and a blank line on stdout, the failure on stderr.
            let (heading, failure) = report.split_once('\n').unwrap_or((&report, ""));
            println!("{heading}");
            eprint!("{failure}");
            println!();
            ok = false;
            continue;
        }
        print!("{report}");
        println!();
        let Ok(cfg) = vigil::config::Config::load_file(f) else {
            ok = false;
            continue;
        };
        // In the config's order, each pattern's matches sorted, as promtool lists them.
        let rule_files = cfg
            .rule_files
            .iter()
            .flat_map(|p| vigil::scrape::discovery::expand_pattern(p));
        let rule_files: Vec<PathBuf> = rule_files.collect();
        let paths: Vec<&std::path::Path> = rule_files.iter().map(PathBuf::as_path).collect();
        match vigil::rules::check::check_rules_indented(
            &paths,
            &Default::default(),
            false,
            "     ",
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        ) {
            Ok(outcome) => ok &= !outcome.failed,
            Err(e) => {
                eprintln!("error: {e}");
                ok = false;
            }
        }
        for sf in vigil::alerting::slo_files(&cfg) {
            println!("Checking {}", sf.display());
            match vigil::slo::native::load_file(&sf) {
                Ok((slos, text)) => {
                    let rules = vigil::rules::parse_rules(&text, &Default::default())
                        .map(|g| g.rule_count())
                        .unwrap_or(0);
                    println!(
                        "  SUCCESS: {} SLOs found, {rules} rules generated",
                        slos.len()
                    );
                }
                Err(errs) => {
                    ok = false;
                    eprintln!("  FAILED:");
                    for e in errs {
                        eprintln!("     {e}");
                    }
                }
            }
            println!();
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    vigil_storage::fs::limit_malloc_arenas();
    let cli = Cli::parse();
    if let Some(Command::PromqlTest { files }) = &cli.command {
        return promql_test(files);
    }
    if let Some(Command::Check {
        cmd: CheckCommand::Config { files },
    }) = &cli.command
    {
        return check_config(files);
    }
    match cli.command {
        Some(Command::Check {
            cmd: CheckCommand::Other(cmd),
        }) => return ExitCode::from(vigil::rules::check::run(cmd)),
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
    let api = api_config(&cli)?;
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
        let scrape = ScrapeManager::new(db.clone());
        let reloader = Reloader::new(cli.config_file.clone(), &cli.listen_address, scrape.clone());
        reloader.reload().await?;
        let state = Arc::new(AppState {
            db: db.clone(),
            ready: std::sync::atomic::AtomicBool::new(false),
            start_time: std::time::SystemTime::now(),
            scrape: scrape.clone(),
            reloader,
            api,
            alerting: std::sync::OnceLock::new(),
        });
        let engine_opts = vigil_promql::engine::EngineOpts {
            timeout: state.api.query_timeout,
            max_samples: state.api.max_samples,
            lookback_delta_ms: state.api.lookback_delta_ms,
            ..vigil_promql::engine::EngineOpts::default()
        };
        let external_url = format!("http://{}", cli.listen_address);
        let (alerting, loaded) = vigil::alerting::Alerting::start(
            db.clone(),
            &state.reloader.current(),
            engine_opts,
            external_url,
        )
        .await;
        if let Err(errs) = loaded {
            // As Prometheus: rule or SLO files that do not load stop startup.
            for e in &errs {
                tracing::error!(error = %e, "loading rule files failed");
            }
            alerting.stop().await;
            scrape.stop().await;
            tokio::task::spawn_blocking(move || db.close()).await??;
            anyhow::bail!(
                "error loading config from {:?}: {} rule or SLO file error(s), first: {}",
                cli.config_file
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "the embedded default config".into()),
                errs.len(),
                errs.first().map(String::as_str).unwrap_or("")
            );
        }
        let alerting = Arc::new(alerting);
        let _ = state.alerting.set(alerting.clone());
        state.ready.store(true, Ordering::Release);
        tracing::info!("server is ready to receive web requests");
        let compactor = spawn_compactor(db.clone());
        spawn_sighup_reload(state.clone());
        let quit_state = state.clone();
        let stop = async move {
            tokio::select! {
                _ = shutdown_signal() => {}
                _ = quit_state.api.quit.notified() => tracing::info!("received /-/quit"),
            }
        };
        server::serve(listener, state, stop).await?;
        tracing::info!("shutting down");
        compactor.abort();
        alerting.stop().await;
        scrape.stop().await;
        tokio::task::spawn_blocking(move || db.close()).await??;
        tracing::info!("storage closed; bye");
        Ok(())
    })
}

/// API options and the `/api/v1/status/flags` table from the command line; loads
/// `--config.file` (a bad file stops startup).
fn api_config(cli: &Cli) -> anyhow::Result<vigil::api::ApiConfig> {
    let timeout_ms = parse_duration_ms(&cli.query_timeout)
        .map_err(|e| anyhow::anyhow!("--query.timeout: {e}"))?;
    let lookback_delta_ms = parse_duration_ms(&cli.query_lookback_delta)
        .map_err(|e| anyhow::anyhow!("--query.lookback-delta: {e}"))?;
    let mut flags = std::collections::BTreeMap::new();
    let mut flag = |k: &str, v: String| {
        flags.insert(k.to_string(), v);
    };
    flag("storage.tsdb.path", cli.storage_path.display().to_string());
    flag("web.listen-address", cli.listen_address.clone());
    flag("storage.tsdb.retention.time", cli.retention_time.clone());
    flag("storage.tsdb.retention.size", cli.retention_size.clone());
    flag(
        "storage.tsdb.wal-compression",
        cli.wal_compression.to_string(),
    );
    flag(
        "config.file",
        cli.config_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    flag("query.timeout", cli.query_timeout.clone());
    flag("query.max-samples", cli.query_max_samples.to_string());
    flag("query.lookback-delta", cli.query_lookback_delta.clone());
    flag("web.enable-lifecycle", cli.enable_lifecycle.to_string());
    flag("web.enable-admin-api", cli.enable_admin_api.to_string());
    let cfg = vigil::api::ApiConfig {
        query_timeout: std::time::Duration::from_millis(timeout_ms.max(0) as u64),
        max_samples: cli.query_max_samples,
        lookback_delta_ms,
        enable_admin_api: cli.enable_admin_api,
        enable_lifecycle: cli.enable_lifecycle,
        flags,
        config_file: cli.config_file.clone(),
        ..vigil::api::ApiConfig::default()
    };
    if cli.config_file.is_some() {
        vigil::api::lifecycle::reload(&cfg).map_err(|e| anyhow::anyhow!(e))?;
    }
    Ok(cfg)
}

/// Reloads the configuration on SIGHUP, as `POST /-/reload` does.
fn spawn_sighup_reload(state: Arc<AppState>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("received SIGHUP, reloading configuration");
            if let Err(e) = server::reload_all(&state).await {
                tracing::error!(error = %e, "reload failed; keeping the previous configuration");
            }
        }
    });
    #[cfg(not(unix))]
    let _ = state;
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
