//! Configuration reloads (SIGHUP and `POST /-/reload`): read the configuration file (or use
//! the embedded default when there is none), validate it, and only then hand it to the scrape
//! manager; a bad file is rejected and the running configuration stays. It never edits
//! configuration and never starts scrapes itself.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::scrape::ScrapeManager;

/// Loads and applies configuration for a running server.
pub struct Reloader {
    config_file: Option<PathBuf>,
    listen_address: String,
    manager: Arc<ScrapeManager>,
    current: parking_lot::RwLock<Arc<Config>>,
    lock: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// A reloader for `config_file` (`None`: the embedded default for `listen_address`).
    pub fn new(
        config_file: Option<PathBuf>,
        listen_address: &str,
        manager: Arc<ScrapeManager>,
    ) -> Arc<Reloader> {
        Arc::new(Reloader {
            config_file,
            listen_address: listen_address.to_owned(),
            manager,
            current: parking_lot::RwLock::new(Arc::new(Config::default())),
            lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Reads the configuration without applying it.
    pub fn load(&self) -> Result<Config, ConfigError> {
        match &self.config_file {
            Some(p) => Config::load_file(p),
            None => Ok(Config::embedded_default(&self.listen_address)),
        }
    }

    /// Loads, validates and applies the configuration. On error nothing changes.
    pub async fn reload(&self) -> Result<(), ConfigError> {
        let _g = self.lock.lock().await;
        let cfg = match self.load() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "error reloading configuration; keeping the running one");
                return Err(e);
            }
        };
        self.manager.apply_config(&cfg).await;
        *self.current.write() = Arc::new(cfg);
        tracing::info!(file = ?self.config_file, "completed loading of configuration");
        Ok(())
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<Config> {
        self.current.read().clone()
    }

    /// The scrape manager this reloader drives.
    pub fn manager(&self) -> &Arc<ScrapeManager> {
        &self.manager
    }
}
