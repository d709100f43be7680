//! The parts of prometheus.yml that other modules act on later: `remote_write`,
//! `remote_read` and `alerting`. They are parsed and checked here so that a valid Prometheus
//! file loads (and a misspelt field is an error); sending, reading and notifying are not
//! this module's job and it never opens a connection.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::relabel::RelabelConfig;
use super::scrape::{Authorization, BasicAuth, StaticConfig, TlsConfig};
use super::units::Duration;

/// `remote_write.queue_config`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    pub capacity: Option<u64>,
    pub max_shards: Option<u64>,
    pub min_shards: Option<u64>,
    pub max_samples_per_send: Option<u64>,
    pub batch_send_deadline: Option<Duration>,
    pub min_backoff: Option<Duration>,
    pub max_backoff: Option<Duration>,
    pub retry_on_http_429: Option<bool>,
    pub sample_age_limit: Option<Duration>,
}

/// `remote_write.metadata_config`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    pub send: Option<bool>,
    pub send_interval: Option<Duration>,
    pub max_samples_per_send: Option<u64>,
}

/// One `remote_write` entry.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteConfig {
    pub url: String,
    pub name: Option<String>,
    pub remote_timeout: Option<Duration>,
    pub headers: BTreeMap<String, String>,
    pub write_relabel_configs: Vec<RelabelConfig>,
    pub send_exemplars: bool,
    pub send_native_histograms: bool,
    pub protobuf_message: Option<String>,
    pub queue_config: Option<QueueConfig>,
    pub metadata_config: Option<MetadataConfig>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    #[serde(skip_serializing)]
    pub bearer_token: String,
    pub bearer_token_file: String,
    pub tls_config: Option<TlsConfig>,
    pub proxy_url: Option<String>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
}

/// One `remote_read` entry.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteReadConfig {
    pub url: String,
    pub name: Option<String>,
    pub remote_timeout: Option<Duration>,
    pub headers: BTreeMap<String, String>,
    pub read_recent: bool,
    pub required_matchers: BTreeMap<String, String>,
    pub filter_external_labels: Option<bool>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    #[serde(skip_serializing)]
    pub bearer_token: String,
    pub bearer_token_file: String,
    pub tls_config: Option<TlsConfig>,
    pub proxy_url: Option<String>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
}

/// One `alerting.alertmanagers` entry.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
    pub scheme: Option<String>,
    pub path_prefix: Option<String>,
    pub timeout: Option<Duration>,
    pub api_version: Option<String>,
    pub static_configs: Vec<StaticConfig>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub alert_relabel_configs: Vec<RelabelConfig>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    #[serde(skip_serializing)]
    pub bearer_token: String,
    pub bearer_token_file: String,
    pub tls_config: Option<TlsConfig>,
    pub proxy_url: Option<String>,
    pub follow_redirects: Option<bool>,
    pub enable_http2: Option<bool>,
}

/// `alerting`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    pub alert_relabel_configs: Vec<RelabelConfig>,
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

fn check_url(kind: &str, url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err(format!("url for {kind} is empty"));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "invalid url {url:?} for {kind}: scheme must be http or https"
        ));
    }
    Ok(())
}

impl RemoteWriteConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        check_url("remote_write", &self.url)?;
        for (i, r) in self.write_relabel_configs.iter().enumerate() {
            r.validate()
                .map_err(|e| format!("remote_write write_relabel_configs[{i}]: {e}"))?;
        }
        Ok(())
    }
}

impl RemoteReadConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        check_url("remote_read", &self.url)
    }
}

/// The Alertmanager API versions Prometheus 2.42 accepts, in its error-message order.
pub const SUPPORTED_ALERTMANAGER_API_VERSIONS: [&str; 2] = ["v1", "v2"];

impl AlertingConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        for r in &self.alert_relabel_configs {
            r.validate()
                .map_err(|e| format!("alert_relabel_configs: {e}"))?;
        }
        for am in &self.alertmanagers {
            am.validate()?;
        }
        Ok(())
    }

    /// Makes credential and TLS file paths relative to the configuration file's directory
    /// absolute.
    pub(super) fn resolve_paths(&mut self, dir: &std::path::Path) {
        use super::resolve_path;
        for am in &mut self.alertmanagers {
            if let Some(b) = &mut am.basic_auth {
                b.username_file = resolve_path(dir, &b.username_file);
                b.password_file = resolve_path(dir, &b.password_file);
            }
            if let Some(a) = &mut am.authorization {
                a.credentials_file = resolve_path(dir, &a.credentials_file);
            }
            am.bearer_token_file = resolve_path(dir, &am.bearer_token_file);
            if let Some(t) = &mut am.tls_config {
                for f in [&mut t.ca_file, &mut t.cert_file, &mut t.key_file] {
                    *f = resolve_path(dir, f);
                }
            }
        }
    }
}

impl AlertmanagerConfig {
    fn validate(&self) -> Result<(), String> {
        if let Some(v) = &self.api_version {
            if !SUPPORTED_ALERTMANAGER_API_VERSIONS.contains(&v.as_str()) {
                return Err(format!(
                    "expected Alertmanager api version to be one of [{}] but got {v}",
                    SUPPORTED_ALERTMANAGER_API_VERSIONS.join(" ")
                ));
            }
        }
        if let Some(s) = &self.scheme {
            if s != "http" && s != "https" {
                return Err(format!(
                    "invalid alertmanager scheme {s:?}: must be http or https"
                ));
            }
        }
        super::scrape::validate_http_auth(
            self.basic_auth.as_ref(),
            self.authorization.as_ref(),
            &self.bearer_token,
            &self.bearer_token_file,
        )?;
        for r in &self.relabel_configs {
            r.validate()
                .map_err(|e| format!("alertmanagers relabel_configs: {e}"))?;
        }
        for r in &self.alert_relabel_configs {
            r.validate()
                .map_err(|e| format!("alertmanagers alert_relabel_configs: {e}"))?;
        }
        Ok(())
    }
}
