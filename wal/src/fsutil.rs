//! Small filesystem helpers with durability semantics: fsync of directories, atomic
//! replace of directories, best-effort cleanup. Owns nothing else; must never swallow an
//! error that affects durability (only cleanup of already-failed work is best-effort).

use std::fs::{self, File};
use std::path::Path;

use crate::error::{IoContext, Result};

/// Fsyncs a directory so that creations, renames and deletions inside it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).ctx(|| format!("open directory {} for fsync", dir.display()))?;
    f.sync_all()
        .ctx(|| format!("fsync directory {}", dir.display()))
}

/// Fsyncs the parent of `path` (the directory holding its entry).
pub(crate) fn sync_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => sync_dir(Path::new(".")),
    }
}

/// Removes a directory tree if it exists.
pub(crate) fn remove_dir_if_exists(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(crate::Error::io(format!("remove {}", dir.display()), e)),
    }
}
