//! The `scrape_configs` entries: one job's targets (static and file service discovery), how
//! to scrape them (scheme, path, params, HTTP client settings), relabeling, limits, and the
//! job-level checks Prometheus applies at load time. Inherited global values are filled in by
//! `Config::validate`; this module never opens connections or reads discovery files.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::relabel::RelabelConfig;
use super::units::{ByteSize, Duration};
use super::{is_valid_label_name, resolve_path};

/// Default `metrics_path`.
pub const DEFAULT_METRICS_PATH: &str = "/metrics";
/// Default `scheme`.
pub const DEFAULT_SCHEME: &str = "http";
/// Default `refresh_interval` of file service discovery.
pub const DEFAULT_FILE_SD_REFRESH: Duration = Duration::from_secs(300);

/// `scrape_protocols` values Vigil can parse (the protobuf format is not among them).
pub const SUPPORTED_SCRAPE_PROTOCOLS: [&str; 4] = [
    "OpenMetricsText1.0.0",
    "OpenMetricsText0.0.1",
    "PrometheusText1.0.0",
    "PrometheusText0.0.4",
];

fn default_true() -> bool {
    true
}
fn default_metrics_path() -> String {
    DEFAULT_METRICS_PATH.to_owned()
}
fn default_scheme() -> String {
    DEFAULT_SCHEME.to_owned()
}
fn default_refresh() -> Duration {
    DEFAULT_FILE_SD_REFRESH
}

/// `basic_auth`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username_file: String,
    #[serde(skip_serializing)]
    pub password: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password_file: String,
}

/// `authorization` (an `Authorization: <type> <credentials>` header).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    #[serde(rename = "type")]
    pub auth_type: String,
    #[serde(skip_serializing)]
    pub credentials: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub credentials_file: String,
}

impl Default for Authorization {
    fn default() -> Self {
        Authorization {
            auth_type: "Bearer".into(),
            credentials: String::new(),
            credentials_file: String::new(),
        }
    }
}

/// `tls_config` of https scrapes (used by `scrape::tls`). TLS10/TLS11 are accepted as a
/// `min_version` (rustls starts at TLS 1.2) but not as a `max_version`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert_file: String,
    #[serde(skip_serializing)]
    pub key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server_name: String,
    pub insecure_skip_verify: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub min_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub max_version: String,
}

/// TLS version names in `min_version`/`max_version`, oldest first.
const TLS_VERSIONS: [&str; 4] = ["TLS10", "TLS11", "TLS12", "TLS13"];

impl TlsConfig {
    fn validate(&self) -> Result<(), String> {
        if !self.ca.is_empty() && !self.ca_file.is_empty() {
            return Err("at most one of ca and ca_file must be configured".into());
        }
        if !self.cert.is_empty() && !self.cert_file.is_empty() {
            return Err("at most one of cert and cert_file must be configured".into());
        }
        if !self.key.is_empty() && !self.key_file.is_empty() {
            return Err("at most one of key and key_file must be configured".into());
        }
        let has_cert = !self.cert.is_empty() || !self.cert_file.is_empty();
        let has_key = !self.key.is_empty() || !self.key_file.is_empty();
        if has_cert && !has_key {
            return Err("exactly one of key or key_file must be configured when a client certificate is configured".into());
        }
        if has_key && !has_cert {
            return Err("exactly one of cert or cert_file must be configured when a client key is configured".into());
        }
        for v in [&self.min_version, &self.max_version] {
            if !v.is_empty() && !TLS_VERSIONS.contains(&v.as_str()) {
                return Err(format!("unknown TLS version: {v}"));
            }
        }
        let rank = |v: &str| TLS_VERSIONS.iter().position(|x| *x == v);
        if let (Some(min), Some(max)) = (rank(&self.min_version), rank(&self.max_version)) {
            if min > max {
                return Err(format!(
                    "tls_config.max_version must be greater than or equal to tls_config.min_version, got tls_config.min_version={} tls_config.max_version={}",
                    self.min_version, self.max_version
                ));
            }
        }
        if ["TLS10", "TLS11"].contains(&self.max_version.as_str()) {
            return Err(format!(
                "tls_config.max_version {} is not supported: Vigil speaks TLS12 and TLS13 only",
                self.max_version
            ));
        }
        Ok(())
    }
}

/// One `static_configs` entry: a target group.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// One `file_sd_configs` entry.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    #[serde(default = "default_refresh")]
    pub refresh_interval: Duration,
}

/// Whether a file SD pattern is acceptable: wildcards only in the last path element, and a
/// `.json`, `.yml` or `.yaml` extension.
fn valid_file_sd_pattern(p: &str) -> bool {
    let (dir, name) = match p.rfind('/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => ("", p),
    };
    if dir.contains('*') {
        return false;
    }
    let lower = name.to_ascii_lowercase();
    [".json", ".yml", ".yaml"]
        .iter()
        .any(|ext| lower.ends_with(ext) && (name == lower || name == name.to_ascii_uppercase()))
}

/// One scrape job.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    pub job_name: String,
    #[serde(default)]
    pub honor_labels: bool,
    #[serde(default = "default_true")]
    pub honor_timestamps: bool,
    #[serde(default)]
    pub track_timestamps_staleness: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Vec<String>>,
    /// Filled in from `global` by validation when absent.
    #[serde(default)]
    pub scrape_interval: Option<Duration>,
    /// Filled in from `global` by validation when absent.
    #[serde(default)]
    pub scrape_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_protocols: Option<Vec<String>>,
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    #[serde(default = "default_scheme")]
    pub scheme: String,
    #[serde(default = "default_true")]
    pub enable_compression: bool,
    #[serde(default)]
    pub body_size_limit: Option<ByteSize>,
    #[serde(default)]
    pub sample_limit: Option<u64>,
    #[serde(default)]
    pub target_limit: Option<u64>,
    #[serde(default)]
    pub label_limit: Option<u64>,
    #[serde(default)]
    pub label_name_length_limit: Option<u64>,
    #[serde(default)]
    pub label_value_length_limit: Option<u64>,
    #[serde(default)]
    pub keep_dropped_targets: Option<u64>,
    // HTTP client settings (inline in Prometheus' schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(default, skip_serializing)]
    pub bearer_token: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bearer_token_file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
    #[serde(default = "default_true")]
    pub enable_http2: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

impl ScrapeConfig {
    /// A job with every field at its default, scraping nothing.
    pub fn new(job_name: &str) -> ScrapeConfig {
        let mut m = serde_yaml::Mapping::new();
        m.insert("job_name".into(), job_name.into());
        // A map holding only a string `job_name` always deserializes: every other field
        // has a default.
        #[allow(clippy::unwrap_used)]
        let mut c: ScrapeConfig = serde_yaml::from_value(serde_yaml::Value::Mapping(m)).unwrap();
        c.job_name = job_name.to_owned();
        c
    }

    /// The resolved scrape interval in milliseconds (after validation).
    pub fn interval_ms(&self) -> i64 {
        self.scrape_interval.map(|d| d.as_ms()).unwrap_or_default()
    }

    /// The resolved scrape timeout in milliseconds (after validation).
    pub fn timeout_ms(&self) -> i64 {
        self.scrape_timeout.map(|d| d.as_ms()).unwrap_or_default()
    }

    /// Checks the job on its own; `Config::validate` has filled in inherited values.
    pub(super) fn validate(&self) -> Result<(), String> {
        let job = &self.job_name;
        if job.is_empty() {
            return Err("job_name is empty".into());
        }
        if self.interval_ms() <= 0 {
            return Err(format!(
                "scrape interval must be positive for scrape config with job name {job:?}"
            ));
        }
        if self.timeout_ms() > self.interval_ms() {
            return Err(format!(
                "scrape timeout greater than scrape interval for scrape config with job name {job:?}"
            ));
        }
        if self.timeout_ms() <= 0 {
            return Err(format!(
                "scrape timeout must be positive for scrape config with job name {job:?}"
            ));
        }
        if self.scheme != "http" && self.scheme != "https" {
            return Err(format!(
                "invalid scheme {:?} for scrape config with job name {job:?} (want http or https)",
                self.scheme
            ));
        }
        if !self.metrics_path.starts_with('/') {
            return Err(format!(
                "metrics_path {:?} must start with '/' for scrape config with job name {job:?}",
                self.metrics_path
            ));
        }
        for p in self.scrape_protocols.iter().flatten() {
            if !SUPPORTED_SCRAPE_PROTOCOLS.contains(&p.as_str()) {
                return Err(format!(
                    "unsupported scrape protocol {p:?} for job {job:?} (supported: {})",
                    SUPPORTED_SCRAPE_PROTOCOLS.join(", ")
                ));
            }
        }
        self.validate_http_client()
            .map_err(|e| format!("{e} (job {job:?})"))?;
        for sc in &self.static_configs {
            for t in &sc.targets {
                if t.contains('/') || t.is_empty() {
                    return Err(format!("{t:?} is not a valid hostname"));
                }
            }
            for name in sc.labels.keys() {
                if !is_valid_label_name(name) {
                    return Err(format!("{name:?} is not a valid label name"));
                }
            }
        }
        for fc in &self.file_sd_configs {
            if fc.files.is_empty() {
                return Err(format!("file service discovery config must contain at least one path name (job {job:?})"));
            }
            for f in &fc.files {
                if !valid_file_sd_pattern(f) {
                    return Err(format!("path name {f:?} is not valid for file discovery"));
                }
            }
            if fc.refresh_interval.as_ms() <= 0 {
                return Err(format!(
                    "file service discovery refresh_interval must be positive (job {job:?})"
                ));
            }
        }
        for (kind, rules) in [
            ("relabel_configs", &self.relabel_configs),
            ("metric_relabel_configs", &self.metric_relabel_configs),
        ] {
            for (i, r) in rules.iter().enumerate() {
                r.validate()
                    .map_err(|e| format!("{kind}[{i}] of job {job:?}: {e}"))?;
            }
        }
        Ok(())
    }

    fn validate_http_client(&self) -> Result<(), String> {
        validate_http_auth(
            self.basic_auth.as_ref(),
            self.authorization.as_ref(),
            &self.bearer_token,
            &self.bearer_token_file,
        )?;
        if let Some(t) = &self.tls_config {
            t.validate()?;
        }
        Ok(())
    }

    /// Makes file paths relative to the configuration file's directory absolute.
    pub(super) fn resolve_paths(&mut self, dir: &Path) {
        for fc in &mut self.file_sd_configs {
            for f in &mut fc.files {
                *f = resolve_path(dir, f);
            }
        }
        if let Some(b) = &mut self.basic_auth {
            b.username_file = resolve_path(dir, &b.username_file);
            b.password_file = resolve_path(dir, &b.password_file);
        }
        if let Some(a) = &mut self.authorization {
            a.credentials_file = resolve_path(dir, &a.credentials_file);
        }
        self.bearer_token_file = resolve_path(dir, &self.bearer_token_file);
        if let Some(t) = &mut self.tls_config {
            for f in [&mut t.ca_file, &mut t.cert_file, &mut t.key_file] {
                *f = resolve_path(dir, f);
            }
        }
    }
}

/// Prometheus' checks of an HTTP client's credentials: at most one of basic auth,
/// authorization and bearer token (file), and each of them set one way only.
pub(super) fn validate_http_auth(
    basic_auth: Option<&BasicAuth>,
    authorization: Option<&Authorization>,
    bearer_token: &str,
    bearer_token_file: &str,
) -> Result<(), String> {
    let bearer = !bearer_token.is_empty() || !bearer_token_file.is_empty();
    if !bearer_token.is_empty() && !bearer_token_file.is_empty() {
        return Err("at most one of bearer_token & bearer_token_file must be configured".into());
    }
    if basic_auth.is_some() && (bearer || authorization.is_some()) {
        return Err("at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured".into());
    }
    if let Some(b) = basic_auth {
        if !b.username.is_empty() && !b.username_file.is_empty() {
            return Err(
                "at most one of basic_auth username & username_file must be configured".into(),
            );
        }
        if !b.password.is_empty() && !b.password_file.is_empty() {
            return Err(
                "at most one of basic_auth password & password_file must be configured".into(),
            );
        }
    }
    if let Some(a) = authorization {
        if bearer {
            return Err(
                "authorization is not compatible with bearer_token & bearer_token_file".into(),
            );
        }
        if !a.credentials.is_empty() && !a.credentials_file.is_empty() {
            return Err(
                "at most one of authorization credentials & credentials_file must be configured"
                    .into(),
            );
        }
        if a.auth_type.eq_ignore_ascii_case("basic") {
            return Err(
                r#"authorization type cannot be set to "basic", use "basic_auth" instead"#.into(),
            );
        }
    }
    Ok(())
}
