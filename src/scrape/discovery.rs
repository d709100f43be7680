//! Service discovery: static target groups from `static_configs`, and file-based discovery
//! (`file_sd_configs`) that reads YAML or JSON target-group files matching the configured
//! patterns, re-reads them every `refresh_interval`, and watches them by polling their
//! modification times. A file that fails to parse keeps its previous groups (as Prometheus
//! does). This module produces target groups only; it never builds targets or scrapes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

use super::target::{TargetGroup, ADDRESS_LABEL};
use crate::config::{FileSdConfig, StaticConfig};

/// Label naming the file a target came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

/// Target groups of `static_configs`, with sources `"0"`, `"1"`, …
pub fn static_groups(cfgs: &[StaticConfig]) -> Vec<TargetGroup> {
    cfgs.iter()
        .enumerate()
        .map(|(i, sc)| TargetGroup {
            source: i.to_string(),
            targets: sc
                .targets
                .iter()
                .map(|t| [(ADDRESS_LABEL.to_owned(), t.clone())].into())
                .collect(),
            labels: sc.labels.clone(),
        })
        .collect()
}

/// One group as written in a file SD file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Whether `name` matches a shell pattern with `*`, `?` and `[…]` classes (`[!…]` negates).
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().skip(1).position(|&c| c == ']').map(|e| e + 1) else {
                    return n.first() == Some(&'[') && go(&p[1..], &n[1..]);
                };
                let Some(&c) = n.first() else { return false };
                let mut class = &p[1..end];
                let negate = class.first() == Some(&'!') || class.first() == Some(&'^');
                if negate {
                    class = &class[1..];
                }
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[end + 1..], &n[1..])
            }
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

/// The files matching `pattern` (wildcards only in the last element), sorted.
pub fn expand_pattern(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?', '[']) {
        return if path.is_file() {
            vec![path.to_owned()]
        } else {
            Vec::new()
        };
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter(|e| wildcard_match(&name, &e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// Parses one file SD file's text into groups.
pub fn parse_file_groups(path: &Path, text: &str) -> Result<Vec<TargetGroup>, String> {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let raw: Vec<FileGroup> = if is_json {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    } else if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_yaml::from_str(text).map_err(|e| e.to_string())?
    };
    let shown = path.display().to_string();
    let mut out = Vec::with_capacity(raw.len());
    for (i, g) in raw.into_iter().enumerate() {
        for t in &g.targets {
            if t.contains('/') {
                return Err(format!("{t:?} is not a valid hostname"));
            }
        }
        for name in g.labels.keys() {
            if !crate::config::is_valid_label_name(name) {
                return Err(format!("{name:?} is not a valid label name"));
            }
        }
        let mut labels = g.labels;
        labels.insert(FILEPATH_LABEL.to_owned(), shown.clone());
        out.push(TargetGroup {
            source: format!("{shown}:{i}"),
            targets: g
                .targets
                .into_iter()
                .map(|t| [(ADDRESS_LABEL.to_owned(), t)].into())
                .collect(),
            labels,
        });
    }
    Ok(out)
}

/// File-based discovery for one `file_sd_configs` entry.
#[derive(Debug)]
pub struct FileDiscovery {
    patterns: Vec<String>,
    /// Modification time of each file seen at the last read.
    mtimes: HashMap<PathBuf, Option<SystemTime>>,
    /// Groups per file from its last successful parse.
    groups: BTreeMap<PathBuf, Vec<TargetGroup>>,
    refresh_ms: i64,
}

impl FileDiscovery {
    /// Discovery over `cfg.files`; nothing is read until [`FileDiscovery::refresh`].
    pub fn new(cfg: &FileSdConfig) -> FileDiscovery {
        FileDiscovery {
            patterns: cfg.files.clone(),
            mtimes: HashMap::new(),
            groups: BTreeMap::new(),
            refresh_ms: cfg.refresh_interval.as_ms(),
        }
    }

    /// The full re-read period.
    pub fn refresh_ms(&self) -> i64 {
        self.refresh_ms
    }

    fn current_files(&self) -> HashMap<PathBuf, Option<SystemTime>> {
        self.patterns
            .iter()
            .flat_map(|p| expand_pattern(p))
            .map(|f| {
                let m = std::fs::metadata(&f).and_then(|m| m.modified()).ok();
                (f, m)
            })
            .collect()
    }

    /// Whether the set of matching files or any modification time differs from the last
    /// read: the cheap poll behind file watching.
    pub fn changed(&self) -> bool {
        self.current_files() != self.mtimes
    }

    /// Re-reads every matching file. Returns the groups of all files and the errors of
    /// files that failed to read or parse (those keep their previous groups).
    pub fn refresh(&mut self) -> (Vec<TargetGroup>, Vec<String>) {
        let files = self.current_files();
        let mut errors = Vec::new();
        self.groups.retain(|f, _| files.contains_key(f));
        for f in files.keys() {
            let parsed = std::fs::read_to_string(f)
                .map_err(|e| e.to_string())
                .and_then(|text| parse_file_groups(f, &text));
            match parsed {
                Ok(g) => {
                    self.groups.insert(f.clone(), g);
                }
                Err(e) => errors.push(format!("reading file SD file {}: {e}", f.display())),
            }
        }
        self.mtimes = files;
        (self.groups.values().flatten().cloned().collect(), errors)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Duration;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.json", "a.json"));
        assert!(!wildcard_match("*.json", "a.yml"));
        assert!(wildcard_match("t?.y*ml", "t1.yaml"));
        assert!(wildcard_match("[ab]x.json", "bx.json"));
        assert!(!wildcard_match("[!ab]x.json", "bx.json"));
        assert!(wildcard_match("[0-9].yml", "5.yml"));
    }

    #[test]
    fn static_groups_have_addresses_and_sources() {
        let g = static_groups(&[StaticConfig {
            targets: vec!["a:1".into(), "b:2".into()],
            labels: [("env".to_string(), "x".to_string())].into(),
        }]);
        assert_eq!(g[0].source, "0");
        assert_eq!(g[0].targets[1][ADDRESS_LABEL], "b:2");
        assert_eq!(g[0].labels["env"], "x");
    }

    #[test]
    fn file_discovery_reads_yaml_and_json_and_sees_changes() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yml");
        let b = dir.path().join("b.json");
        std::fs::write(&a, "- targets: ['h1:1']\n  labels: {env: prod}\n").unwrap();
        std::fs::write(&b, r#"[{"targets": ["h2:2", "h3:3"]}]"#).unwrap();
        std::fs::write(dir.path().join("c.txt"), "ignored").unwrap();
        let cfg = FileSdConfig {
            files: vec![
                format!("{}/*.yml", dir.path().display()),
                format!("{}/*.json", dir.path().display()),
            ],
            refresh_interval: Duration::from_secs(60),
        };
        let mut d = FileDiscovery::new(&cfg);
        assert!(d.changed(), "nothing read yet");
        let (groups, errors) = d.refresh();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(groups.len(), 2);
        let addrs: Vec<&str> = groups
            .iter()
            .flat_map(|g| g.targets.iter().map(|t| t[ADDRESS_LABEL].as_str()))
            .collect();
        assert_eq!(addrs, vec!["h1:1", "h2:2", "h3:3"]);
        assert_eq!(groups[0].labels[FILEPATH_LABEL], a.display().to_string());
        assert_eq!(groups[0].labels["env"], "prod");
        assert!(!d.changed());

        // A broken file keeps its previous groups and reports an error.
        std::fs::write(&a, "- targets: [unclosed\n").unwrap();
        let (groups, errors) = d.refresh();
        assert_eq!(errors.len(), 1);
        assert_eq!(groups.len(), 2);

        // A removed file's targets disappear.
        std::fs::remove_file(&b).unwrap();
        assert!(d.changed());
        let (groups, _) = d.refresh();
        assert_eq!(groups.len(), 1);
    }

    #[test]
    fn file_groups_reject_bad_content() {
        let p = Path::new("x.yml");
        assert!(parse_file_groups(p, "- targets: ['a/b']").is_err());
        assert!(parse_file_groups(p, "- targets: [a]\n  labels: {'a-b': c}").is_err());
        assert!(parse_file_groups(p, "- targets: [a]\n  lables: {}").is_err());
        assert!(parse_file_groups(p, "").unwrap().is_empty());
    }
}
