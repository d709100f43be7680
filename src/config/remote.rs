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

impl AlertingConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        for r in &self.alert_relabel_configs {
            r.validate()
                .map_err(|e| format!("alert_relabel_configs: {e}"))?;
        }
        for am in &self.alertmanagers {
            if let Some(v) = &am.api_version {
                if v != "v2" {
                    return Err(format!(
                        "expected Alertmanager api version to be one of [v2] but got {v:?}"
                    ));
                }
            }
            for r in am.relabel_configs.iter().chain(&am.alert_relabel_configs) {
                r.validate()
                    .map_err(|e| format!("alertmanagers relabel_configs: {e}"))?;
            }
        }
        Ok(())
    }
}
