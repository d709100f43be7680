//! Native SLO loading for the server (docs/SLO.md §5): reads the files named by `slo_files`,
//! validates them and generates their rule text with the same generator as
//! `vigil slo generate`, rejects an SLO (service, name) defined in two files, and keeps the
//! loaded SLO specs in a registry that a reload swaps as a whole. It never evaluates rules,
//! never runs queries and never talks HTTP; the rule manager evaluates the generated groups.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use super::{generate, parse, Slo, SloError};

/// One SLO loaded from an SLO file.
#[derive(Clone, Debug)]
pub struct LoadedSlo {
    /// The SLO file path, as the generated groups' `file`.
    pub file: String,
    pub slo: Slo,
}

/// The rule text generated from one SLO file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedRules {
    /// The SLO file it was generated from.
    pub path: PathBuf,
    /// Exactly what `vigil slo generate <path>` prints.
    pub text: String,
}

/// Everything loaded from a set of SLO files.
#[derive(Clone, Debug, Default)]
pub struct LoadedSlos {
    pub slos: Vec<LoadedSlo>,
    pub rules: Vec<GeneratedRules>,
}

/// Reads, validates and generates one SLO file: its SLOs and its rule text.
pub fn load_file(path: &Path) -> Result<(Vec<Slo>, String), Vec<SloError>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![SloError::File {
            file: file.clone(),
            msg: e.to_string(),
        }]
    })?;
    let slos = parse(&file, &text)?;
    let source = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.clone());
    let rules = generate(&source, &slos);
    Ok((slos, rules))
}

/// Loads every SLO file. Any error in any file fails the whole load, with every error
/// found (`FILE: slo "<name>": <reason>`); an SLO defined in two files is an error.
pub fn load_files(paths: &[PathBuf]) -> Result<LoadedSlos, Vec<String>> {
    let mut out = LoadedSlos::default();
    let mut errs = Vec::new();
    // (service, name) → the file that defined it first.
    let mut seen: BTreeMap<(String, String), String> = BTreeMap::new();
    for path in paths {
        let file = path.display().to_string();
        match load_file(path) {
            Ok((slos, text)) => {
                for slo in slos {
                    let key = (slo.service.clone(), slo.name.clone());
                    if let Some(first) = seen.get(&key) {
                        errs.push(
                            SloError::Slo {
                                file: file.clone(),
                                slo: slo.name.clone(),
                                msg: format!(
                                    "service {:?} already defines this SLO in {first}",
                                    slo.service
                                ),
                            }
                            .to_string(),
                        );
                        continue;
                    }
                    seen.insert(key, file.clone());
                    out.slos.push(LoadedSlo {
                        file: file.clone(),
                        slo,
                    });
                }
                out.rules.push(GeneratedRules {
                    path: path.clone(),
                    text,
                });
            }
            Err(es) => errs.extend(es.iter().map(ToString::to_string)),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

/// The SLOs in force. Readers get a consistent snapshot; a reload replaces it whole, and
/// only after the rule manager accepted the generated groups.
#[derive(Default)]
pub struct SloRegistry {
    current: RwLock<Arc<Vec<LoadedSlo>>>,
    /// Serialises reloads so that the SLO list and the rule groups change together.
    apply: tokio::sync::Mutex<()>,
}

impl SloRegistry {
    /// An empty registry.
    pub fn new() -> SloRegistry {
        SloRegistry::default()
    }

    /// The SLOs in force.
    pub fn current(&self) -> Arc<Vec<LoadedSlo>> {
        self.current.read().clone()
    }

    /// Replaces the SLOs in force.
    pub fn replace(&self, slos: Vec<LoadedSlo>) {
        *self.current.write() = Arc::new(slos);
    }

    /// Held across one reload (load, hand to the rule manager, replace).
    pub async fn lock_for_reload(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.apply.lock().await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SLO: &str = "version: vigil/v1\nservice: api\nslos:\n  - name: avail\n    objective: 99.5\n    sli:\n      ratio:\n        errors: sum(rate(e[{{.window}}]))\n        total: sum(rate(t[{{.window}}]))\n";

    #[test]
    fn loads_files_and_generates_the_cli_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("api.yaml");
        std::fs::write(&p, SLO).unwrap();
        let loaded = load_files(std::slice::from_ref(&p)).unwrap();
        assert_eq!(loaded.slos.len(), 1);
        assert_eq!(loaded.slos[0].file, p.display().to_string());
        assert_eq!(loaded.slos[0].slo.name, "avail");
        assert_eq!(loaded.rules.len(), 1);
        assert_eq!(
            loaded.rules[0].text,
            super::super::generate_file(&p).unwrap()
        );
    }

    #[test]
    fn the_same_slo_in_two_files_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        let b = dir.path().join("b.yaml");
        std::fs::write(&a, SLO).unwrap();
        std::fs::write(&b, SLO).unwrap();
        let errs = load_files(&[a.clone(), b.clone()]).unwrap_err();
        assert_eq!(
            errs,
            vec![format!(
                "{}: slo \"avail\": service \"api\" already defines this SLO in {}",
                b.display(),
                a.display()
            )]
        );
    }

    #[test]
    fn a_broken_file_fails_the_load_with_its_errors() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        let b = dir.path().join("b.yaml");
        std::fs::write(&a, SLO).unwrap();
        std::fs::write(&b, SLO.replace("99.5", "100")).unwrap();
        let errs = load_files(&[a, b.clone()]).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with(&format!("{}: slo \"avail\": objective 100", b.display())),
            "{errs:?}"
        );
        let missing = dir.path().join("missing.yaml");
        let errs = load_files(std::slice::from_ref(&missing)).unwrap_err();
        assert!(
            errs[0].starts_with(&missing.display().to_string()),
            "{errs:?}"
        );
    }

    #[test]
    fn registry_swaps_whole_lists() {
        let r = SloRegistry::new();
        assert!(r.current().is_empty());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("api.yaml");
        std::fs::write(&p, SLO).unwrap();
        let before = r.current();
        r.replace(load_files(&[p]).unwrap().slos);
        assert_eq!(r.current().len(), 1);
        assert!(before.is_empty());
    }
}
