//! Native SLOs: the `vigil/v1` SLO spec and its validation (`spec.rs`), exact decimal math
//! (`decimal.rs`), and generation of the recording and multiwindow multi-burn-rate alerting
//! rules (`generate.rs`) exactly as docs/SLO.md specifies, and native loading of
//! `slo_files` for the server (`native.rs`). Never evaluates rules.

pub mod decimal;
pub mod generate;
pub mod native;
pub mod spec;

use std::path::{Path, PathBuf};

pub use generate::generate;
pub use native::{GeneratedRules, LoadedSlo, LoadedSlos, SloRegistry};
pub use spec::{parse, SliKind, Slo};

/// An SLO file error, rendered `FILE: slo "<name>": <reason>` or `FILE: <reason>`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SloError {
    #[error("{file}: {msg}")]
    File { file: String, msg: String },
    #[error("{file}: slo {}: {msg}", crate::rules::error::go_quote(.slo))]
    Slo {
        file: String,
        slo: String,
        msg: String,
    },
}

impl SloError {
    fn invalid(file: &str, slo: &str, msg: String) -> SloError {
        if slo.is_empty() {
            SloError::File {
                file: file.to_string(),
                msg,
            }
        } else {
            SloError::Slo {
                file: file.to_string(),
                slo: slo.to_string(),
                msg,
            }
        }
    }
}

/// Reads, validates and generates the rule file text for one SLO file.
pub fn generate_file(path: &Path) -> Result<String, Vec<SloError>> {
    native::load_file(path).map(|(_, text)| text)
}

/// `vigil slo ...` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum SloCommand {
    /// Print the rule file generated from an SLO spec.
    Generate { file: PathBuf },
    /// Validate SLO spec files.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Runs an `slo` subcommand; returns the process exit code.
pub fn run(cmd: SloCommand) -> u8 {
    match cmd {
        SloCommand::Generate { file } => match generate_file(&file) {
            Ok(text) => {
                print!("{text}");
                0
            }
            Err(errs) => {
                for e in errs {
                    eprintln!("{e}");
                }
                1
            }
        },
        SloCommand::Check { files } => {
            let mut code = 0;
            for f in files {
                match generate_file(&f) {
                    Ok(_) => println!("Checking {}\n  SUCCESS\n", f.display()),
                    Err(errs) => {
                        println!("Checking {}\n  FAILED:", f.display());
                        for e in errs {
                            eprintln!("{e}");
                        }
                        code = 1;
                    }
                }
            }
            code
        }
    }
}

#[cfg(test)]
mod tests;
