//! Cutting the log at a corruption, as Prometheus' `Repair` does: every segment after the
//! damaged one is deleted, and the damaged segment is rewritten keeping only the whole,
//! verified records that end at or before the corruption offset. Owns nothing else; must
//! never keep a byte it has not verified, never rewrite a segment in place (it writes a
//! `.repair` file, fsyncs it and renames it over), and never repair a directory other than
//! the one the error names. Run it before `Wal::open` on that directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::format::{list_segments, segment_path, PAGE_SIZE, REPAIR_SUFFIX};
use crate::fsutil::sync_dir;
use crate::reader::Reader;

/// Cuts `dir`'s log at `corruption` (which must be `Error::Corruption` for `dir`).
pub fn repair(dir: &Path, corruption: &Error) -> Result<()> {
    let Error::Corruption {
        dir: damaged_dir,
        segment,
        offset,
        reason,
    } = corruption
    else {
        return Err(Error::InvalidArgument(format!(
            "repair needs a corruption error, got: {corruption}"
        )));
    };
    if !same_dir(dir, damaged_dir) {
        return Err(Error::InvalidArgument(format!(
            "corruption is in {}, not in {}",
            damaged_dir.display(),
            dir.display()
        )));
    }
    let (segment, offset) = (*segment, *offset);
    tracing::warn!(dir = %dir.display(), segment, offset, reason, "repairing WAL");

    let segments = list_segments(dir)?;
    if !segments.iter().any(|(i, _)| *i == segment) {
        return Err(Error::MissingSegment {
            dir: dir.to_path_buf(),
            segment,
        });
    }
    // Newest first, so that a crash part-way leaves a sequential log.
    for (index, path) in segments.iter().rev() {
        if *index > segment {
            fs::remove_file(path).ctx(|| format!("delete WAL segment {}", path.display()))?;
        }
    }
    sync_dir(dir)?;

    let keep = verified_prefix(dir, segment, offset)?;
    rewrite_prefix(dir, segment, keep)?;
    tracing::warn!(segment, kept_bytes = keep, "WAL repaired");
    Ok(())
}

/// Length of the longest prefix of `segment` made of whole, verified records ending at or
/// before `cut`.
fn verified_prefix(dir: &Path, segment: u64, cut: u64) -> Result<u64> {
    let mut reader = Reader::open(dir, segment, Some(segment))?;
    let mut buf = Vec::new();
    let mut keep = 0;
    loop {
        match reader.next_record(&mut buf) {
            Ok(true) if reader.offset() <= cut => keep = reader.offset(),
            Ok(_) | Err(Error::Corruption { .. }) => return Ok(keep),
            // Zstd records are not damage; refuse to throw them away.
            Err(e) => return Err(e),
        }
    }
}

/// Replaces `segment` with its first `keep` bytes, zero-padded to a page boundary.
fn rewrite_prefix(dir: &Path, segment: u64, keep: u64) -> Result<()> {
    let path = segment_path(dir, segment);
    let mut tmp_name = path.clone().into_os_string();
    tmp_name.push(REPAIR_SUFFIX);
    let tmp = PathBuf::from(tmp_name);
    let src = File::open(&path).ctx(|| format!("open WAL segment {}", path.display()))?;
    let mut dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .ctx(|| format!("create {}", tmp.display()))?;
    let copied = io::copy(&mut src.take(keep), &mut dst)
        .ctx(|| format!("copy {} to {}", path.display(), tmp.display()))?;
    if copied != keep {
        return Err(Error::io(
            format!("copy {}", path.display()),
            io::Error::new(io::ErrorKind::UnexpectedEof, "segment shrank during repair"),
        ));
    }
    let tail = (keep % PAGE_SIZE as u64) as usize;
    if tail != 0 {
        dst.write_all(&vec![0; PAGE_SIZE - tail])
            .ctx(|| format!("pad {}", tmp.display()))?;
    }
    dst.sync_all().ctx(|| format!("fsync {}", tmp.display()))?;
    drop(dst);
    fs::rename(&tmp, &path).ctx(|| format!("rename {} to {}", tmp.display(), path.display()))?;
    sync_dir(dir)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
