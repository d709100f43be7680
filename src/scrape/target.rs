//! Scrape targets: turning a discovered address and its group's labels into a target the way
//! Prometheus does (defaults for `job`, `__scheme__`, `__metrics_path__`, `__param_*`,
//! `__scrape_interval__`, `__scrape_timeout__`; `relabel_configs`; removal of `__` labels;
//! `instance` from `__address__`), the scrape URL, the target's identity hash and its
//! deterministic start offset within the interval. Pure functions: no I/O, no clocks.

use std::collections::BTreeMap;
use std::hash::Hasher;

use vigil_storage::labels::Fnv1a;
use vigil_storage::{Labels, LabelsBuilder};

use super::relabel::process_builder;
use crate::config::{Duration, ScrapeConfig};

/// Label holding the target's `host:port`.
pub const ADDRESS_LABEL: &str = "__address__";
/// Label holding the scheme (`http` or `https`).
pub const SCHEME_LABEL: &str = "__scheme__";
/// Label holding the metrics path.
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
/// Label holding the target's scrape interval.
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
/// Label holding the target's scrape timeout.
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
/// Prefix of labels that become URL parameters.
pub const PARAM_LABEL_PREFIX: &str = "__param_";
/// Prefix of service-discovery metadata labels.
pub const META_LABEL_PREFIX: &str = "__meta_";
/// Prefix of labels removed from the final target labels.
pub const RESERVED_LABEL_PREFIX: &str = "__";
/// The job label.
pub const JOB_LABEL: &str = "job";
/// The instance label.
pub const INSTANCE_LABEL: &str = "instance";

/// One group of discovered targets sharing labels, as service discovery hands them over.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetGroup {
    /// Identifies the group within its discovery mechanism (`"0"`, `"file.json:1"`).
    pub source: String,
    /// Per-target labels; each holds at least `__address__`.
    pub targets: Vec<BTreeMap<String, String>>,
    /// Labels shared by all targets of the group.
    pub labels: BTreeMap<String, String>,
}

/// A target ready to be scraped.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// The target labels attached to every scraped series (no `__` labels).
    pub labels: Labels,
    /// Labels after relabeling, including `__` labels other than `__meta_*`.
    pub internal: Labels,
    /// Labels before relabeling, as discovered.
    pub discovered: Labels,
    pub scheme: String,
    pub address: String,
    pub metrics_path: String,
    /// URL query parameters, sorted by name.
    pub params: BTreeMap<String, Vec<String>>,
    pub interval_ms: i64,
    pub timeout_ms: i64,
}

/// A target that relabeling dropped, kept for the targets API.
#[derive(Clone, Debug, PartialEq)]
pub struct DroppedTarget {
    pub discovered: Labels,
}

/// Why a discovered target could not become a target.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetError {
    pub discovered: Labels,
    pub reason: String,
}

/// What became of one discovered target.
#[derive(Clone, Debug, PartialEq)]
pub enum Populated {
    Target(Target),
    Dropped(DroppedTarget),
    Invalid(TargetError),
}

/// Builds the target for one discovered address of `group`, as Prometheus'
/// `PopulateLabels` does.
pub fn populate(
    group: &TargetGroup,
    target: &BTreeMap<String, String>,
    cfg: &ScrapeConfig,
) -> Populated {
    let mut lb = LabelsBuilder::new();
    for (n, v) in group.labels.iter().chain(target.iter()) {
        lb.set(n, v);
    }
    let interval = Duration(cfg.interval_ms()).to_string();
    let timeout = Duration(cfg.timeout_ms()).to_string();
    let defaults = [
        (JOB_LABEL, cfg.job_name.as_str()),
        (SCRAPE_INTERVAL_LABEL, interval.as_str()),
        (SCRAPE_TIMEOUT_LABEL, timeout.as_str()),
        (METRICS_PATH_LABEL, cfg.metrics_path.as_str()),
        (SCHEME_LABEL, cfg.scheme.as_str()),
    ];
    for (n, v) in defaults {
        if lb.get(n).is_none() {
            lb.set(n, v);
        }
    }
    for (k, vs) in &cfg.params {
        let name = format!("{PARAM_LABEL_PREFIX}{k}");
        if let (None, Some(first)) = (lb.get(&name), vs.first()) {
            lb.set(&name, first);
        }
    }
    let discovered = lb.build();
    if !process_builder(&mut lb, &cfg.relabel_configs) {
        return Populated::Dropped(DroppedTarget { discovered });
    }
    let invalid = |reason: String| {
        Populated::Invalid(TargetError {
            discovered: discovered.clone(),
            reason,
        })
    };
    let Some(address) = lb.get(ADDRESS_LABEL).map(str::to_owned) else {
        if lb.build().is_empty() {
            return Populated::Dropped(DroppedTarget {
                discovered: discovered.clone(),
            });
        }
        return invalid("no address".into());
    };
    if address.contains('/') || address.is_empty() {
        return invalid(format!("{address:?} is not a valid hostname"));
    }
    let parse_dur = |name: &str| -> Result<i64, String> {
        let v = lb.get(name).unwrap_or_default();
        Duration::parse(v)
            .map(|d| d.as_ms())
            .map_err(|e| format!("error parsing {name} label: {e}"))
    };
    let interval_ms = match parse_dur(SCRAPE_INTERVAL_LABEL) {
        Ok(0) => return invalid("scrape interval cannot be 0".into()),
        Ok(v) => v,
        Err(e) => return invalid(e),
    };
    let timeout_ms = match parse_dur(SCRAPE_TIMEOUT_LABEL) {
        Ok(0) => return invalid("scrape timeout cannot be 0".into()),
        Ok(v) => v,
        Err(e) => return invalid(e),
    };
    if timeout_ms > interval_ms {
        return invalid(format!(
            "scrape timeout cannot be greater than scrape interval ({} > {})",
            Duration(timeout_ms),
            Duration(interval_ms)
        ));
    }
    lb.retain(|l| !l.name.starts_with(META_LABEL_PREFIX));
    let internal = lb.build();
    let mut params = cfg.params.clone();
    for l in internal.iter() {
        if let Some(p) = l.name.strip_prefix(PARAM_LABEL_PREFIX) {
            params.insert(p.to_owned(), vec![l.value.to_string()]);
        }
    }
    let mut public = LabelsBuilder::from(&internal);
    public.retain(|l| !l.name.starts_with(RESERVED_LABEL_PREFIX));
    if public.get(INSTANCE_LABEL).is_none() {
        public.set(INSTANCE_LABEL, &address);
    }
    Populated::Target(Target {
        labels: public.build(),
        scheme: internal.get(SCHEME_LABEL).unwrap_or("http").to_owned(),
        metrics_path: internal.get(METRICS_PATH_LABEL).unwrap_or("/").to_owned(),
        internal,
        discovered,
        address,
        params,
        interval_ms,
        timeout_ms,
    })
}

/// Percent-encodes a query component as Go's `url.QueryEscape` does.
fn query_escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

impl Target {
    /// The query string (`a=1&b=2`), keys sorted, empty when there are no parameters.
    pub fn query(&self) -> String {
        let mut q = String::new();
        for (k, vs) in &self.params {
            for v in vs {
                if !q.is_empty() {
                    q.push('&');
                }
                query_escape(k, &mut q);
                q.push('=');
                query_escape(v, &mut q);
            }
        }
        q
    }

    /// The path and query sent in the request line.
    pub fn path_and_query(&self) -> String {
        let q = self.query();
        let path = if self.metrics_path.starts_with('/') {
            self.metrics_path.clone()
        } else {
            format!("/{}", self.metrics_path)
        };
        if q.is_empty() {
            path
        } else {
            format!("{path}?{q}")
        }
    }

    /// The full scrape URL.
    pub fn url(&self) -> String {
        format!(
            "{}://{}{}",
            self.scheme,
            self.address,
            self.path_and_query()
        )
    }

    /// The target's identity within its pool: its labels and its URL.
    pub fn hash(&self) -> u64 {
        let mut h = Fnv1a::default();
        h.write_u64(self.internal.stable_hash());
        h.write(self.url().as_bytes());
        h.finish()
    }

    /// The milliseconds to wait from `now_ms` until this target's first scrape: every
    /// target scrapes at a fixed phase of its interval, `(hash ^ seed) % interval`, so
    /// targets spread over the interval and keep their slot across restarts.
    pub fn start_delay_ms(&self, now_ms: i64, seed: u64) -> i64 {
        let interval = self.interval_ms.max(1);
        let offset = ((self.hash() ^ seed) % interval as u64) as i64;
        let base = interval - now_ms.rem_euclid(interval);
        let mut next = base + offset;
        if next > interval {
            next -= interval;
        }
        next
    }
}

/// Builds the targets of all groups; returns active targets (deduplicated by hash, first
/// wins), dropped targets and invalid ones.
pub fn targets_from_groups(
    groups: &[TargetGroup],
    cfg: &ScrapeConfig,
) -> (Vec<Target>, Vec<DroppedTarget>, Vec<TargetError>) {
    let mut active: Vec<Target> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut dropped = Vec::new();
    let mut invalid = Vec::new();
    for g in groups {
        for t in &g.targets {
            match populate(g, t, cfg) {
                Populated::Target(t) => {
                    if seen.insert(t.hash()) {
                        active.push(t);
                    }
                }
                Populated::Dropped(d) => dropped.push(d),
                Populated::Invalid(e) => invalid.push(e),
            }
        }
    }
    (active, dropped, invalid)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn job(yaml: &str) -> ScrapeConfig {
        let c = Config::parse(yaml, "t.yml", Path::new("/")).unwrap();
        c.scrape_configs[0].clone()
    }

    fn group(addr: &str, labels: &[(&str, &str)]) -> TargetGroup {
        TargetGroup {
            source: "0".into(),
            targets: vec![[(ADDRESS_LABEL.to_string(), addr.to_string())].into()],
            labels: labels
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    fn one(g: &TargetGroup, cfg: &ScrapeConfig) -> Populated {
        populate(g, &g.targets[0], cfg)
    }

    #[test]
    fn defaults_and_instance() {
        let cfg = job("scrape_configs:\n  - job_name: node\n    scrape_interval: 15s\n    params: {module: [if_mib, x]}\n");
        let Populated::Target(t) = one(&group("h:9100", &[("env", "prod")]), &cfg) else {
            panic!("expected a target")
        };
        assert_eq!(
            t.labels,
            Labels::from_pairs(&[("env", "prod"), ("instance", "h:9100"), ("job", "node")])
                .unwrap()
        );
        assert_eq!(t.internal.get("__scrape_interval__"), Some("15s"));
        assert_eq!(t.internal.get("__scrape_timeout__"), Some("10s"));
        assert_eq!(t.internal.get("__param_module"), Some("if_mib"));
        assert_eq!(t.discovered.get("__scheme__"), Some("http"));
        assert_eq!(t.url(), "http://h:9100/metrics?module=if_mib");
        assert_eq!(t.interval_ms, 15_000);
    }

    #[test]
    fn relabeling_controls_address_params_and_interval() {
        let cfg = job("scrape_configs:
  - job_name: probe
    metrics_path: /probe
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - target_label: __address__
        replacement: exporter:9115
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __scrape_interval__
        replacement: 30s
      - target_label: __meta_gone
        replacement: x
");
        let Populated::Target(t) = one(&group("example.com a", &[]), &cfg) else {
            panic!("expected a target")
        };
        assert_eq!(t.url(), "http://exporter:9115/probe?target=example.com+a");
        assert_eq!(t.labels.get("instance"), Some("example.com a"));
        assert_eq!(t.interval_ms, 30_000);
        assert_eq!(t.internal.get("__meta_gone"), None);
    }

    #[test]
    fn dropped_and_invalid_targets() {
        let cfg = job("scrape_configs:\n  - job_name: j\n    relabel_configs:\n      - source_labels: [env]\n        regex: dev\n        action: drop\n");
        assert!(matches!(
            one(&group("h:1", &[("env", "dev")]), &cfg),
            Populated::Dropped(_)
        ));
        let cfg = job("scrape_configs:\n  - job_name: j\n    relabel_configs:\n      - target_label: __scrape_timeout__\n        replacement: 2m\n");
        let Populated::Invalid(e) = one(&group("h:1", &[]), &cfg) else {
            panic!("expected invalid")
        };
        assert!(
            e.reason.contains("greater than scrape interval"),
            "{}",
            e.reason
        );
        let cfg = job("scrape_configs:\n  - job_name: j\n    relabel_configs:\n      - target_label: __address__\n        replacement: ''\n        regex: '.*'\n        source_labels: [nothing]\n");
        let Populated::Invalid(e) = one(&group("h:1", &[]), &cfg) else {
            panic!("expected invalid")
        };
        assert_eq!(e.reason, "no address");
    }

    #[test]
    fn start_offset_is_deterministic_and_within_interval() {
        let cfg = job("scrape_configs:\n  - job_name: j\n    scrape_interval: 10s\n");
        let Populated::Target(t) = one(&group("h:1", &[]), &cfg) else {
            panic!()
        };
        let phase = |now: i64| (now + t.start_delay_ms(now, 7)).rem_euclid(10_000);
        let d = t.start_delay_ms(1_000_000, 7);
        assert!((0..=10_000).contains(&d));
        assert_eq!(
            phase(1_000_000),
            phase(1_003_333),
            "same phase whatever the start"
        );
        let dups = targets_from_groups(&[group("h:1", &[]), group("h:1", &[])], &cfg);
        assert_eq!(dups.0.len(), 1, "identical targets are deduplicated");
    }
}
