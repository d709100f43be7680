//! Lifecycle endpoints `/-/reload` and `/-/quit` (only with `--web.enable-lifecycle`) and
//! loading the configuration file for `/api/v1/status/config`: the YAML must parse, secrets
//! are shown as `<secret>`, and a failed reload keeps the previous configuration. Owns no
//! scrape or rule state; those modules hook into reloads themselves.

use hyper::{Method, StatusCode};

use super::{ApiConfig, LoadedConfig};
use crate::server::{text, Resp};

/// Keys whose values are never shown (Prometheus' `Secret` fields).
const SECRET_KEYS: &[&str] = &[
    "password",
    "bearer_token",
    "credentials",
    "client_secret",
    "secret_key",
    "access_key_secret",
    "authorization_token",
    "api_key",
];
/// How secrets are shown.
const SECRET_PLACEHOLDER: &str = "<secret>";

/// `global.external_labels` of a configuration, sorted by name.
pub fn external_labels(yaml: &str) -> Vec<(String, String)> {
    let Ok(v) = serde_yaml::from_str::<serde_yaml::Value>(yaml) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = v
        .get("global")
        .and_then(|g| g.get("external_labels"))
        .and_then(|l| l.as_mapping())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Reads and checks a configuration file; returns the YAML to show, secrets hidden.
pub fn load_config_file(path: &std::path::Path) -> Result<String, String> {
    let raw = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "couldn't load configuration (--config.file={:?}): {e}",
            path.display().to_string()
        )
    })?;
    redacted_yaml(&raw).map_err(|e| {
        format!(
            "couldn't load configuration (--config.file={:?}): parsing YAML file {}: {e}",
            path.display().to_string(),
            path.display()
        )
    })
}

/// Parses YAML and prints it back with secret values replaced.
pub fn redacted_yaml(raw: &str) -> Result<String, String> {
    let mut v: serde_yaml::Value = serde_yaml::from_str(raw).map_err(|e| e.to_string())?;
    if v.is_null() {
        return Ok(String::new());
    }
    if !v.is_mapping() {
        return Err("the configuration must be a YAML mapping".into());
    }
    redact(&mut v);
    serde_yaml::to_string(&v).map_err(|e| e.to_string())
}

fn redact(v: &mut serde_yaml::Value) {
    match v {
        serde_yaml::Value::Mapping(m) => {
            for (k, val) in m.iter_mut() {
                let secret = k.as_str().is_some_and(|k| SECRET_KEYS.contains(&k));
                if secret && !val.is_null() {
                    *val = serde_yaml::Value::String(SECRET_PLACEHOLDER.into());
                } else {
                    redact(val);
                }
            }
        }
        serde_yaml::Value::Sequence(s) => s.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Re-reads `--config.file` (the embedded default needs no reload). On failure the old
/// configuration stays and `reloadConfigSuccess` turns false.
pub fn reload(cfg: &ApiConfig) -> Result<(), String> {
    let now = vigil_storage::head::now_ms();
    let Some(path) = &cfg.config_file else {
        let mut c = cfg.config.write();
        c.success = true;
        c.last_time_ms = now;
        return Ok(());
    };
    match load_config_file(path) {
        Ok(yaml) => {
            *cfg.config.write() = LoadedConfig {
                external_labels: external_labels(&yaml),
                yaml,
                success: true,
                last_time_ms: now,
            };
            tracing::info!(file = %path.display(), "configuration reloaded");
            Ok(())
        }
        Err(e) => {
            cfg.config.write().success = false;
            tracing::error!(error = %e, "configuration reload failed");
            Err(e)
        }
    }
}

/// `/-/reload` and `/-/quit`.
pub fn handle(cfg: &ApiConfig, path: &str, method: &Method) -> Resp {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if method != Method::POST && method != Method::PUT {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            "Only POST or PUT requests allowed",
        );
    }
    if !cfg.enable_lifecycle {
        return text(
            StatusCode::FORBIDDEN,
            PLAIN,
            "Lifecycle API is not enabled.",
        );
    }
    if path == "/-/quit" {
        cfg.quit.notify_one();
        return text(StatusCode::OK, PLAIN, "Requesting termination... Goodbye!");
    }
    match reload(cfg) {
        Ok(()) => text(StatusCode::OK, PLAIN, ""),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            PLAIN,
            format!("failed to reload config: {e}"),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden() {
        let y = redacted_yaml(
            "remote_write:\n  - url: http://x\n    basic_auth:\n      username: u\n      password: p\n",
        )
        .unwrap();
        assert!(y.contains("password: <secret>"), "{y}");
        assert!(y.contains("username: u"), "{y}");
        assert!(redacted_yaml("a: [").is_err());
        assert!(redacted_yaml("- 1").is_err());
    }

    #[test]
    fn failed_reload_keeps_old_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yml");
        std::fs::write(&path, "global:\n  scrape_interval: 30s\n").unwrap();
        let cfg = ApiConfig {
            config_file: Some(path.clone()),
            ..ApiConfig::default()
        };
        reload(&cfg).unwrap();
        assert!(cfg.config.read().yaml.contains("30s"));
        std::fs::write(
            &path,
            "global:\n  external_labels:\n    region: eu\n    dc: x\n",
        )
        .unwrap();
        reload(&cfg).unwrap();
        assert_eq!(
            cfg.config.read().external_labels,
            vec![("dc".into(), "x".into()), ("region".into(), "eu".into())]
        );
        std::fs::write(&path, "global: [").unwrap();
        assert!(reload(&cfg).is_err());
        let c = cfg.config.read().clone();
        assert!(c.yaml.contains("region"));
        assert!(!c.success);
    }
}
