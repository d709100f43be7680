//! Alertmanager sets: what one `alerting.alertmanagers[]` entry becomes once its targets are
//! discovered. Each `static_configs` target, with its group's `labels`, `__scheme__` (the
//! configured scheme) and `__alerts_path__` (`<path_prefix>/api/<version>/alerts`), goes
//! through the entry's `relabel_configs` as Prometheus does for Alertmanager discovery: a
//! dropped target is listed as dropped, a kept one is posted to at
//! `<__scheme__>://<__address__><__alerts_path__>` (a missing port becomes 80 or 443).
//! This module only computes targets and settings; it never opens a connection and never
//! touches a queue.

use std::time::Duration;

use vigil_storage::{Labels, LabelsBuilder};

use crate::config::relabel::RelabelConfig;
use crate::config::remote::AlertmanagerConfig;
use crate::config::scrape::{Authorization, BasicAuth, TlsConfig};
use crate::scrape::relabel::process_builder;
use crate::scrape::tls::TlsClient;

/// Label holding an Alertmanager's `host:port` during target relabeling.
pub const ADDRESS_LABEL: &str = "__address__";
/// Label holding the scheme (`http` or `https`) during target relabeling.
pub const SCHEME_LABEL: &str = "__scheme__";
/// Label holding the path alerts are posted to during target relabeling.
pub const ALERTS_PATH_LABEL: &str = "__alerts_path__";
/// Prefix of discovery metadata labels, removed after relabeling.
const META_LABEL_PREFIX: &str = "__meta_";
/// Port assumed for an `http` address without one.
const DEFAULT_HTTP_PORT: u16 = 80;
/// Port assumed for an `https` address without one.
const DEFAULT_HTTPS_PORT: u16 = 443;
/// Prometheus' default Alertmanager `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default scheme.
pub const DEFAULT_SCHEME: &str = "http";

/// The Alertmanager API an alertmanager set posts to (Prometheus 2.42 supports both; v1 is
/// the same JSON array posted to `/api/v1/alerts`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ApiVersion {
    V1,
    #[default]
    V2,
}

impl ApiVersion {
    /// `v1` or `v2`; anything else is `None`.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        match s {
            "v1" => Some(ApiVersion::V1),
            "v2" => Some(ApiVersion::V2),
            _ => None,
        }
    }

    /// The endpoint alerts are posted to, below the path prefix.
    pub fn alerts_endpoint(self) -> &'static str {
        match self {
            ApiVersion::V1 => "/api/v1/alerts",
            ApiVersion::V2 => "/api/v2/alerts",
        }
    }
}

/// `<path_prefix>/api/<version>/alerts`, with exactly one `/` between the parts and a
/// leading `/`, as Prometheus' `path.Join("/", prefix, endpoint)` gives.
pub fn alerts_path(path_prefix: &str, version: ApiVersion) -> String {
    let prefix: Vec<&str> = path_prefix.split('/').filter(|s| !s.is_empty()).collect();
    if prefix.is_empty() {
        return version.alerts_endpoint().to_owned();
    }
    format!("/{}{}", prefix.join("/"), version.alerts_endpoint())
}

/// One Alertmanager to post to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AlertmanagerTarget {
    /// `http` or `https`.
    pub scheme: String,
    /// `host:port`.
    pub host: String,
    /// The full path alerts are posted to, e.g. `/alertmanager/api/v2/alerts`.
    pub path: String,
}

impl AlertmanagerTarget {
    /// An `http` target at `host:port` posting to `/api/v2/alerts`.
    pub fn new(host: &str) -> AlertmanagerTarget {
        AlertmanagerTarget {
            scheme: DEFAULT_SCHEME.into(),
            host: host.into(),
            path: ApiVersion::V2.alerts_endpoint().into(),
        }
    }

    /// The same target with `path_prefix` before the v2 endpoint.
    pub fn with_prefix(mut self, path_prefix: &str) -> AlertmanagerTarget {
        self.path = alerts_path(path_prefix, ApiVersion::V2);
        self
    }

    /// The full URL alerts are posted to (the `alertmanager` metric label).
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.path)
    }
}

/// How requests of a set authenticate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HttpAuth {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    /// Legacy `bearer_token`.
    pub bearer_token: String,
    /// Legacy `bearer_token_file`.
    pub bearer_token_file: String,
}

/// One alertmanager set: its client settings, per-set alert relabeling and targets.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertmanagerSet {
    pub timeout: Duration,
    pub api_version: ApiVersion,
    /// `alert_relabel_configs` of this set, applied after the global ones.
    pub alert_relabel_configs: Vec<RelabelConfig>,
    pub auth: HttpAuth,
    /// `tls_config`, used for `https` targets.
    pub tls_config: TlsConfig,
    /// Targets alerts are posted to.
    pub active: Vec<AlertmanagerTarget>,
    /// Targets dropped by `relabel_configs` (URL built from their labels before relabeling).
    pub dropped: Vec<AlertmanagerTarget>,
}

impl AlertmanagerSet {
    /// A set posting to `targets` with default settings.
    pub fn new(targets: Vec<AlertmanagerTarget>) -> AlertmanagerSet {
        AlertmanagerSet {
            timeout: DEFAULT_TIMEOUT,
            api_version: ApiVersion::V2,
            alert_relabel_configs: Vec::new(),
            auth: HttpAuth::default(),
            tls_config: TlsConfig::default(),
            active: targets,
            dropped: Vec::new(),
        }
    }

    /// Whether the set's `tls_config` can be turned into a TLS client (files readable,
    /// PEM valid), as Prometheus checks when it builds a set's HTTP client. Checked only
    /// when TLS is configured or a target uses https.
    pub fn check_tls(&self) -> Result<(), String> {
        let uses_https = self.active.iter().any(|t| t.scheme == "https");
        if !uses_https && self.tls_config == TlsConfig::default() {
            return Ok(());
        }
        TlsClient::new(self.tls_config.clone())
            .client_config()
            .map(|_| ())
    }

    /// The set described by one `alertmanagers[]` entry, with its targets discovered and
    /// relabeled. Targets whose address is invalid after relabeling are left out and
    /// returned as errors (each naming the target).
    pub fn from_config(cfg: &AlertmanagerConfig) -> (AlertmanagerSet, Vec<String>) {
        let api_version = cfg
            .api_version
            .as_deref()
            .and_then(ApiVersion::parse)
            .unwrap_or_default();
        let mut set = AlertmanagerSet::new(Vec::new());
        set.api_version = api_version;
        if let Some(d) = cfg.timeout {
            set.timeout = Duration::from_millis(u64::try_from(d.as_ms()).unwrap_or(0));
        }
        set.alert_relabel_configs = cfg.alert_relabel_configs.clone();
        set.auth = HttpAuth {
            basic_auth: cfg.basic_auth.clone(),
            authorization: cfg.authorization.clone(),
            bearer_token: cfg.bearer_token.clone(),
            bearer_token_file: cfg.bearer_token_file.clone(),
        };
        set.tls_config = cfg.tls_config.clone().unwrap_or_default();
        let scheme = cfg.scheme.as_deref().unwrap_or(DEFAULT_SCHEME);
        let path = alerts_path(cfg.path_prefix.as_deref().unwrap_or(""), api_version);
        let mut errors = Vec::new();
        for sc in &cfg.static_configs {
            for address in &sc.targets {
                let mut lb = LabelsBuilder::new();
                for (k, v) in &sc.labels {
                    lb.set(k, v);
                }
                lb.set(ADDRESS_LABEL, address);
                lb.set(SCHEME_LABEL, scheme);
                lb.set(ALERTS_PATH_LABEL, &path);
                match target_from_labels(lb, &cfg.relabel_configs) {
                    Discovered::Active(t) => {
                        if !set.active.contains(&t) {
                            set.active.push(t);
                        }
                    }
                    Discovered::Dropped(t) => set.dropped.push(t),
                    Discovered::Invalid(e) => errors.push(e),
                }
            }
        }
        (set, errors)
    }
}

/// What relabeling made of one discovered Alertmanager.
#[derive(Debug, PartialEq)]
enum Discovered {
    Active(AlertmanagerTarget),
    Dropped(AlertmanagerTarget),
    Invalid(String),
}

fn target_of(l: &Labels) -> AlertmanagerTarget {
    AlertmanagerTarget {
        scheme: l.get(SCHEME_LABEL).unwrap_or_default().to_owned(),
        host: l.get(ADDRESS_LABEL).unwrap_or_default().to_owned(),
        path: l.get(ALERTS_PATH_LABEL).unwrap_or_default().to_owned(),
    }
}

/// Whether `address` lacks a port (so a default one is added).
fn lacks_port(address: &str) -> bool {
    if let Some(rest) = address.strip_prefix('[') {
        // `[v6]` or `[v6]:port`.
        return !rest.contains("]:");
    }
    // An unbracketed address with a colon has a port, or is a bare IPv6 address that
    // Prometheus leaves alone too.
    !address.contains(':')
}

fn target_from_labels(mut lb: LabelsBuilder, rules: &[RelabelConfig]) -> Discovered {
    let before = lb.build();
    if !process_builder(&mut lb, rules) {
        return Discovered::Dropped(target_of(&before));
    }
    lb.retain(|l| !l.name.starts_with(META_LABEL_PREFIX));
    let after = lb.build();
    let mut t = target_of(&after);
    if t.host.is_empty() {
        return Discovered::Invalid(format!(
            "alertmanager {before:?}: no {ADDRESS_LABEL} label after relabeling"
        ));
    }
    if t.host.contains('/') {
        return Discovered::Invalid(format!(
            "alertmanager {}: {:?} is not a valid hostname",
            before.get(ADDRESS_LABEL).unwrap_or_default(),
            t.host
        ));
    }
    if lacks_port(&t.host) {
        let port = match t.scheme.as_str() {
            "http" | "" => DEFAULT_HTTP_PORT,
            "https" => DEFAULT_HTTPS_PORT,
            other => {
                return Discovered::Invalid(format!(
                    "alertmanager {}: invalid scheme: {other:?}",
                    t.host
                ))
            }
        };
        t.host = format!("{}:{port}", t.host);
    }
    if t.scheme.is_empty() {
        t.scheme = DEFAULT_SCHEME.into();
    }
    Discovered::Active(t)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn sets(yaml: &str) -> Vec<(AlertmanagerSet, Vec<String>)> {
        let c = Config::parse(yaml, "t.yml", Path::new("/")).unwrap();
        c.alerting
            .unwrap()
            .alertmanagers
            .iter()
            .map(AlertmanagerSet::from_config)
            .collect()
    }

    fn urls(ts: &[AlertmanagerTarget]) -> Vec<String> {
        ts.iter().map(AlertmanagerTarget::url).collect()
    }

    #[test]
    fn alerts_path_joins_like_path_join() {
        assert_eq!(alerts_path("", ApiVersion::V2), "/api/v2/alerts");
        assert_eq!(alerts_path("/", ApiVersion::V2), "/api/v2/alerts");
        assert_eq!(alerts_path("am", ApiVersion::V1), "/am/api/v1/alerts");
        assert_eq!(alerts_path("/a//b/", ApiVersion::V2), "/a/b/api/v2/alerts");
    }

    #[test]
    fn static_targets_with_defaults_prefix_and_ports() {
        let s = sets("alerting:\n  alertmanagers:\n    - path_prefix: /am/\n      static_configs:\n        - targets: ['a:9093', 'b', '[::1]', 'a:9093']\n    - scheme: https\n      api_version: v1\n      timeout: 3s\n      static_configs:\n        - targets: ['c']\n");
        assert_eq!(
            urls(&s[0].0.active),
            [
                "http://a:9093/am/api/v2/alerts",
                "http://b:80/am/api/v2/alerts",
                "http://[::1]:80/am/api/v2/alerts"
            ]
        );
        assert_eq!(s[1].0.api_version, ApiVersion::V1);
        assert_eq!(s[1].0.timeout, Duration::from_secs(3));
        assert_eq!(urls(&s[1].0.active), ["https://c:443/api/v1/alerts"]);
        assert!(s[0].1.is_empty() && s[1].1.is_empty());
    }

    #[test]
    fn relabel_configs_rewrite_address_scheme_and_path_and_drop() {
        let s = sets(concat!(
            "alerting:\n  alertmanagers:\n    - static_configs:\n",
            "        - targets: ['a:9093', 'b:9093', 'c:9093']\n          labels: {dc: eu1}\n",
            "      relabel_configs:\n",
            "        - source_labels: [__address__]\n          regex: 'b:.*'\n          action: drop\n",
            "        - source_labels: [dc, __address__]\n          regex: 'eu1;c:(.*)'\n          target_label: __scheme__\n          replacement: https\n",
            "        - source_labels: [dc]\n          target_label: __alerts_path__\n          replacement: /$1/api/v2/alerts\n          regex: '(.*)'\n",
            "        - source_labels: [__address__]\n          regex: 'a:(.*)'\n          target_label: __address__\n          replacement: alpha:$1\n",
        ));
        let (set, errs) = &s[0];
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            urls(&set.active),
            [
                "http://alpha:9093/eu1/api/v2/alerts",
                "https://c:9093/eu1/api/v2/alerts"
            ]
        );
        assert_eq!(urls(&set.dropped), ["http://b:9093/api/v2/alerts"]);
    }

    #[test]
    fn invalid_address_after_relabeling_is_an_error() {
        let s = sets("alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['a:1']\n      relabel_configs:\n        - target_label: __address__\n          replacement: 'x/y'\n");
        assert!(s[0].0.active.is_empty());
        assert!(s[0].1[0].contains("not a valid hostname"), "{:?}", s[0].1);
    }

    #[test]
    fn lacks_port_cases() {
        assert!(lacks_port("a"));
        assert!(!lacks_port("a:1"));
        assert!(lacks_port("[::1]"));
        assert!(!lacks_port("[::1]:9"));
        assert!(!lacks_port("::1"));
    }
}
