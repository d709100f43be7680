//! The prometheus.yml model: `global`, `scrape_configs`, `rule_files`, Vigil's
//! `slo_files`, `remote_write`, `remote_read` and `alerting`, parsed with serde_yaml where an unknown field is an error (as
//! in Prometheus), then validated and completed (inherited intervals, timeouts and limits,
//! paths made relative to the file's directory). Also the embedded default configuration and
//! the `vigil check config` report. This module never starts scrapes or opens connections:
//! it only turns text into a checked [`Config`].

pub mod relabel;
pub mod remote;
pub mod scrape;
pub mod units;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use relabel::{Action, RelabelConfig};
pub use remote::{AlertingConfig, RemoteReadConfig, RemoteWriteConfig};
pub use scrape::{FileSdConfig, ScrapeConfig, StaticConfig};
pub use units::{ByteSize, Duration};

/// Default `global.scrape_interval`.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
/// Default `global.scrape_timeout`.
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `global.evaluation_interval`.
pub const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);
/// Scrape interval of the embedded default configuration.
pub const EMBEDDED_SCRAPE_INTERVAL: &str = "15s";
/// Job name of the embedded default configuration.
pub const EMBEDDED_JOB_NAME: &str = "vigil";

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing YAML file {path}: {reason}")]
    Yaml { path: String, reason: String },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

/// `global`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    pub scrape_interval: Option<Duration>,
    pub scrape_timeout: Option<Duration>,
    pub evaluation_interval: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_query_offset: Option<Duration>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub external_labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_log_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_failure_log_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_protocols: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_size_limit: Option<ByteSize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_name_length_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_value_length_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_dropped_targets: Option<u64>,
}

impl GlobalConfig {
    /// The resolved global scrape interval in milliseconds.
    pub fn scrape_interval_ms(&self) -> i64 {
        self.scrape_interval
            .unwrap_or(DEFAULT_SCRAPE_INTERVAL)
            .as_ms()
    }

    /// The resolved global evaluation interval in milliseconds.
    pub fn evaluation_interval_ms(&self) -> i64 {
        self.evaluation_interval
            .unwrap_or(DEFAULT_EVALUATION_INTERVAL)
            .as_ms()
    }
}

/// A whole prometheus.yml.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub global: GlobalConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerting: Option<AlertingConfig>,
    pub rule_files: Vec<String>,
    /// SLO spec files (globs), loaded natively (docs/SLO.md §5). Vigil only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slo_files: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scrape_config_files: Vec<String>,
    pub scrape_configs: Vec<ScrapeConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_write: Vec<RemoteWriteConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_read: Vec<RemoteReadConfig>,
}

/// Whether `s` is a label name in Prometheus' classic syntax `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    match b.next() {
        Some(c) if c.is_ascii_alphabetic() || c == b'_' => {}
        _ => return false,
    }
    b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// `p` made absolute against `dir` unless it is empty or already absolute.
pub(crate) fn resolve_path(dir: &Path, p: &str) -> String {
    if p.is_empty() || Path::new(p).is_absolute() {
        return p.to_owned();
    }
    dir.join(p).to_string_lossy().into_owned()
}

impl Config {
    /// Reads and validates a configuration file; relative paths inside it are taken from the
    /// file's directory.
    pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, &path.display().to_string(), dir)
    }

    /// Parses and validates configuration text; `name` names it in errors, `dir` anchors
    /// relative paths.
    pub fn parse(text: &str, name: &str, dir: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| ConfigError::Yaml {
                path: name.to_owned(),
                reason: e.to_string(),
            })?
        };
        cfg.complete_and_validate(dir)
            .map_err(|reason| ConfigError::Invalid {
                path: name.to_owned(),
                reason,
            })?;
        Ok(cfg)
    }

    /// The configuration used when no `--config.file` is given: Vigil scrapes its own
    /// `/metrics` every 15s as job `vigil`. An unspecified listen host (`0.0.0.0`, `[::]`,
    /// empty) is scraped as `localhost`.
    pub fn embedded_default(listen_address: &str) -> Config {
        let target = self_scrape_address(listen_address);
        let mut job = ScrapeConfig::new(EMBEDDED_JOB_NAME);
        job.static_configs.push(StaticConfig {
            targets: vec![target],
            labels: BTreeMap::new(),
        });
        let mut cfg = Config {
            global: GlobalConfig {
                scrape_interval: Duration::parse(EMBEDDED_SCRAPE_INTERVAL).ok(),
                evaluation_interval: Duration::parse(EMBEDDED_SCRAPE_INTERVAL).ok(),
                ..GlobalConfig::default()
            },
            scrape_configs: vec![job],
            ..Config::default()
        };
        // The embedded configuration is built from checked parts; completing it only fills
        // in inherited values, so a failure here would be a bug caught by the tests.
        if let Err(e) = cfg.complete_and_validate(Path::new(".")) {
            tracing::error!(error = %e, "embedded default configuration is invalid");
        }
        cfg
    }

    /// Fills in inherited values (Prometheus' order) and checks everything.
    fn complete_and_validate(&mut self, dir: &Path) -> Result<(), String> {
        let g = &mut self.global;
        let interval = g.scrape_interval.unwrap_or(DEFAULT_SCRAPE_INTERVAL);
        if interval.as_ms() <= 0 {
            return Err("global scrape interval must be positive".into());
        }
        g.scrape_interval = Some(interval);
        let timeout = match g.scrape_timeout {
            Some(t) if t > interval => {
                return Err("global scrape timeout greater than scrape interval".into())
            }
            Some(t) if t.as_ms() > 0 => t,
            _ if DEFAULT_SCRAPE_TIMEOUT > interval => interval,
            _ => DEFAULT_SCRAPE_TIMEOUT,
        };
        g.scrape_timeout = Some(timeout);
        if g.evaluation_interval.is_none_or_zero() {
            g.evaluation_interval = Some(DEFAULT_EVALUATION_INTERVAL);
        }
        for name in g.external_labels.keys() {
            if !is_valid_label_name(name) || name == "__name__" {
                return Err(format!("{name:?} is not a valid label name"));
            }
        }
        if !self.scrape_config_files.is_empty() {
            return Err("scrape_config_files is not supported by Vigil yet".into());
        }
        let g = self.global.clone();
        let mut seen = HashSet::new();
        for sc in &mut self.scrape_configs {
            if sc.scrape_interval.is_none_or_zero() {
                sc.scrape_interval = Some(interval);
            }
            let job_interval = sc.scrape_interval.unwrap_or(interval);
            if sc.scrape_timeout.is_none_or_zero() {
                sc.scrape_timeout = Some(if timeout > job_interval {
                    job_interval
                } else {
                    timeout
                });
            }
            inherit(&mut sc.sample_limit, g.sample_limit);
            inherit(&mut sc.target_limit, g.target_limit);
            inherit(&mut sc.label_limit, g.label_limit);
            inherit(&mut sc.label_name_length_limit, g.label_name_length_limit);
            inherit(&mut sc.label_value_length_limit, g.label_value_length_limit);
            inherit(&mut sc.keep_dropped_targets, g.keep_dropped_targets);
            if sc.body_size_limit.is_none() {
                sc.body_size_limit = g.body_size_limit;
            }
            if sc.scrape_protocols.is_none() {
                sc.scrape_protocols = g.scrape_protocols.clone();
            }
            sc.validate()?;
            if !seen.insert(sc.job_name.clone()) {
                return Err(format!(
                    "found multiple scrape configs with job name {:?}",
                    sc.job_name
                ));
            }
            sc.resolve_paths(dir);
        }
        for rf in &mut self.rule_files {
            if rf.is_empty() {
                return Err("invalid rule file path \"\"".into());
            }
            *rf = resolve_path(dir, rf);
        }
        for sf in &mut self.slo_files {
            if sf.is_empty() {
                return Err("invalid SLO file path \"\"".into());
            }
            *sf = resolve_path(dir, sf);
        }
        for rw in &self.remote_write {
            rw.validate()?;
        }
        let mut names = HashSet::new();
        for rw in &self.remote_write {
            if let Some(n) = &rw.name {
                if !names.insert(n.clone()) {
                    return Err(format!(
                        "found multiple remote write configs with job name {n:?}"
                    ));
                }
            }
        }
        for rr in &self.remote_read {
            rr.validate()?;
        }
        if let Some(a) = &mut self.alerting {
            a.validate()?;
            a.resolve_paths(dir);
        }
        Ok(())
    }

    /// The scrape job called `job`.
    pub fn scrape_config(&self, job: &str) -> Option<&ScrapeConfig> {
        self.scrape_configs.iter().find(|s| s.job_name == job)
    }

    /// The configuration printed back as YAML (secrets omitted), for `/api/v1/status/config`.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_default()
    }
}

trait NoneOrZero {
    fn is_none_or_zero(&self) -> bool;
}

impl NoneOrZero for Option<Duration> {
    fn is_none_or_zero(&self) -> bool {
        self.is_none_or(|d| d.as_ms() == 0)
    }
}

fn inherit(v: &mut Option<u64>, global: Option<u64>) {
    if v.unwrap_or(0) == 0 {
        *v = global.filter(|g| *g > 0).or(*v);
    }
}

/// The address Vigil scrapes itself at, from its listen address.
pub fn self_scrape_address(listen_address: &str) -> String {
    let (host, port) = match listen_address.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => ("", listen_address),
    };
    let unspecified = matches!(host, "" | "0.0.0.0" | "[::]" | "::");
    if unspecified {
        format!("localhost:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The outcome of `vigil check config FILE`, printed like promtool's: `Checking FILE` then
/// ` SUCCESS: …` or ` FAILED: …`. Returns the text and whether the file is valid.
pub fn check_config_report(path: &Path) -> (String, bool) {
    let shown = path.display();
    let mut out = format!("Checking {shown}\n");
    let cfg = match Config::load_file(path) {
        Ok(cfg) => cfg,
        Err(e) => {
            out.push_str(&format!("  FAILED: {e}\n"));
            return (out, false);
        }
    };
    let mut rule_files = 0;
    for pattern in &cfg.rule_files {
        let matched = crate::scrape::discovery::expand_pattern(pattern);
        if matched.is_empty() && !pattern.contains(['*', '?', '[']) {
            out.push_str(&format!(
                "  FAILED: {pattern:?} does not point to an existing file\n"
            ));
            return (out, false);
        }
        rule_files += matched.len();
    }
    if rule_files > 0 {
        out.push_str(&format!("  SUCCESS: {rule_files} rule files found\n"));
    }
    out.push_str(&format!(
        " SUCCESS: {shown} is valid prometheus config file syntax\n"
    ));
    (out, true)
}
