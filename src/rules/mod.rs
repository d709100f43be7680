//! Rule files: the Prometheus rule-file model (`file.rs`), its positioned YAML decoding
//! (`yaml.rs`), validation with Prometheus' messages (`validate.rs`) and `vigil check rules`
//! (`check.rs`); evaluation: recording rules and the query context (`eval.rs`), the alert
//! state machine (`alert.rs`), groups (`group.rs`), the live scheduler with reload and API
//! data (`manager.rs`), `for`-state restoration (`restore.rs`) and `vigil test rules`
//! (`unittest.rs`). Rule outputs are written only through `eval::RuleStore`.

pub mod alert;
pub mod check;
pub mod error;
pub mod eval;
pub mod file;
pub mod group;
pub mod manager;
pub mod restore;
pub mod unittest;
pub mod validate;
pub mod yaml;

use std::path::Path;

pub use alert::{AlertState, AlertingRule};
pub use error::RuleError;
pub use file::{Located, Rule, RuleGroup, RuleGroups};
pub use validate::{NameValidation, ValidateOptions};

/// Options for loading a rule file.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    pub ignore_unknown_fields: bool,
    pub validate: ValidateOptions,
}

/// Decodes and validates rule-file text; returns the groups or every error found.
pub fn parse_rules(text: &str, opts: &LoadOptions) -> Result<RuleGroups, Vec<RuleError>> {
    let groups = file::decode(text, opts.ignore_unknown_fields).map_err(|e| vec![e])?;
    let errs = validate::validate(&groups, &opts.validate);
    if errs.is_empty() {
        Ok(groups)
    } else {
        Err(errs)
    }
}

/// Reads, decodes and validates a rule file. Errors are not prefixed with the file name.
pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<RuleGroups, Vec<RuleError>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![RuleError::Io(format!("open {}: {e}", path.display()))])?;
    parse_rules(&text, opts)
}
