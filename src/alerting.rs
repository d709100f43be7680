//! Glue between the configuration and alerting: builds the rule manager (the PromQL engine
//! over the database, writing recording-rule and `ALERTS` series back through the appender)
//! and the Alertmanager notifier from a loaded `prometheus.yml`, expands `rule_files` and
//! `slo_files` globs, hands rule files and the rules generated from SLO files to the rule
//! manager, and re-applies both on reload, swapping the SLO registry only when the rule
//! manager accepted everything. Owns no evaluation logic itself.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use vigil_promql::engine::{Engine, EngineOpts};
use vigil_storage::Db;

use crate::config::Config;
use crate::notify::{AlertmanagerSet, Notifier, NotifierOptions};
use crate::rules::eval::EvalContext;
use crate::rules::manager::{ManagerOptions, RuleManager, RuleSource};
use crate::slo::SloRegistry;

/// The running rule manager and notifier.
pub struct Alerting {
    pub rules: Arc<RuleManager>,
    pub notifier: Arc<Notifier>,
    /// The SLOs loaded from `slo_files` (for `/api/v1/slos`).
    pub slos: SloRegistry,
}

impl Alerting {
    /// Builds the notifier (Alertmanagers from `alerting.alertmanagers` static configs) and
    /// the rule manager, and loads `rule_files` and `slo_files`. Rule-file and SLO-file
    /// errors are returned together with the (empty) manager; the server then stops it and
    /// refuses to start, as Prometheus does when rules fail to load at startup.
    pub async fn start(
        db: Arc<Db>,
        cfg: &Config,
        engine_opts: EngineOpts,
        external_url: String,
    ) -> (Alerting, Result<(), Vec<String>>) {
        let external_labels: BTreeMap<String, String> = cfg.global.external_labels.clone();
        let sets = alertmanager_targets(cfg);
        for (i, s) in sets.iter().enumerate() {
            if let Err(e) = s.check_tls() {
                tracing::error!(set = %format!("config-{i}"), error = %e, "alertmanager TLS settings unusable; requests will fail");
            }
        }
        let notifier = Notifier::with_sets(
            NotifierOptions {
                external_labels: external_labels.clone(),
                alert_relabel_configs: alert_relabel_configs(cfg),
                ..NotifierOptions::default()
            },
            sets,
        );
        notifier.start();
        let ctx = EvalContext {
            engine: Engine::new(engine_opts),
            store: db,
            external_labels,
            external_url,
        };
        let mut opts = ManagerOptions::default();
        if let Some(d) = cfg.global.evaluation_interval {
            opts.default_interval_ms = d.as_ms();
        }
        if let Some(d) = cfg.global.rule_query_offset {
            opts.default_query_offset_ms = d.as_ms();
        }
        let rules = Arc::new(RuleManager::new(ctx, opts, Some(notifier.notify_fn())));
        let alerting = Alerting {
            rules,
            notifier,
            slos: SloRegistry::new(),
        };
        let res = alerting.load_rules(cfg).await;
        (alerting, res)
    }

    /// Re-reads the rule files and SLO files named by `cfg`; on error the running groups and
    /// the loaded SLOs stay. The notifier takes the new Alertmanager sets, external labels
    /// and alert relabeling in place (queued alerts of sets that stay are kept) unless a
    /// set's TLS settings cannot be used, in which case it keeps its previous sets and the
    /// error is returned.
    pub async fn apply(&self, cfg: &Config) -> Result<(), String> {
        let notified = self.apply_notifier(cfg);
        self.load_rules(cfg)
            .await
            .map_err(|errs| errs.join("; "))
            .and(notified)
    }

    /// Loads rule files and SLO files and hands them to the rule manager as one set; the
    /// SLO registry changes only when the rule manager accepted the set.
    async fn load_rules(&self, cfg: &Config) -> Result<(), Vec<String>> {
        let _reload = self.slos.lock_for_reload().await;
        let loaded = crate::slo::native::load_files(&slo_files(cfg))?;
        let mut sources: Vec<RuleSource> =
            rule_files(cfg).into_iter().map(RuleSource::File).collect();
        sources.extend(loaded.rules.into_iter().map(|g| RuleSource::Generated {
            path: g.path,
            text: g.text,
        }));
        self.rules.update_sources(&sources).await?;
        self.slos.replace(loaded.slos);
        Ok(())
    }

    /// The notifier part of [`Alerting::apply`].
    fn apply_notifier(&self, cfg: &Config) -> Result<(), String> {
        let sets = alertmanager_targets(cfg);
        for (i, s) in sets.iter().enumerate() {
            s.check_tls()
                .map_err(|e| format!("alertmanager config-{i}: {e}"))?;
        }
        self.notifier.set_relabeling(
            cfg.global.external_labels.clone(),
            alert_relabel_configs(cfg),
        );
        self.notifier.set_alertmanagers(sets);
        Ok(())
    }

    /// Stops rule evaluation and drains the notifier.
    pub async fn stop(&self) {
        self.rules.stop().await;
        self.notifier.stop().await;
    }
}

/// The rule files matched by the config's `rule_files` patterns, sorted and deduplicated.
pub fn rule_files(cfg: &Config) -> Vec<PathBuf> {
    expand_patterns(&cfg.rule_files)
}

/// The SLO files matched by the config's `slo_files` patterns, sorted and deduplicated.
pub fn slo_files(cfg: &Config) -> Vec<PathBuf> {
    expand_patterns(&cfg.slo_files)
}

/// The files matched by `patterns`, sorted and deduplicated.
fn expand_patterns(patterns: &[String]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = patterns
        .iter()
        .flat_map(|p| crate::scrape::discovery::expand_pattern(p))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The global `alerting.alert_relabel_configs`.
fn alert_relabel_configs(cfg: &Config) -> Vec<crate::config::RelabelConfig> {
    cfg.alerting
        .as_ref()
        .map(|a| a.alert_relabel_configs.clone())
        .unwrap_or_default()
}

/// One Alertmanager set per `alerting.alertmanagers` entry, its static targets relabeled by
/// the entry's `relabel_configs`; targets left invalid by relabeling are logged and skipped.
pub fn alertmanager_targets(cfg: &Config) -> Vec<AlertmanagerSet> {
    let Some(a) = &cfg.alerting else {
        return Vec::new();
    };
    a.alertmanagers
        .iter()
        .enumerate()
        .map(|(i, am)| {
            let (set, errors) = AlertmanagerSet::from_config(am);
            for e in errors {
                tracing::error!(set = %format!("config-{i}"), error = %e, "creating discovered Alertmanager failed");
            }
            set
        })
        .collect()
}
