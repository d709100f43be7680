//! Checkpoints: `checkpoint.NNNNNNNN` directories (NNNNNNNN = last segment folded in) that
//! hold, in ordinary segment files, the records of the previous checkpoint and of WAL
//! segments up to NNNNNNNN that a caller-supplied filter chose to keep. Owns creating
//! (write to `.tmp`, fsync files and directory, rename, fsync parent), finding and
//! deleting checkpoints. Must never interpret record bytes (the filter does), never leave
//! a half-written checkpoint under its final name, and never delete WAL segments.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, IoContext, Result};
use crate::format::{checkpoint_name, list_segments, parse_index, CHECKPOINT_PREFIX, TMP_SUFFIX};
use crate::fsutil::{remove_dir_if_exists, sync_dir};
use crate::reader::Reader;
use crate::stats::Counters;
use crate::wal::WalOptions;
use crate::writer::SegmentWriter;

/// What a checkpoint run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// Index of the new checkpoint (the last WAL segment it covers).
    pub index: u64,
    /// Directory of the new checkpoint.
    pub dir: PathBuf,
    /// Records read from the previous checkpoint and the WAL segments.
    pub records_read: u64,
    /// Records written to the new checkpoint.
    pub records_kept: u64,
    /// Records the filter dropped.
    pub records_dropped: u64,
    /// Kept records whose bytes the filter changed.
    pub records_rewritten: u64,
    /// Record bytes read (uncompressed).
    pub bytes_read: u64,
    /// Record bytes written (uncompressed).
    pub bytes_written: u64,
}

/// The newest checkpoint in `dir`, as (index, path).
pub fn last_checkpoint(dir: &Path) -> Result<Option<(u64, PathBuf)>> {
    Ok(list_checkpoints(dir)?.into_iter().last())
}

/// Finished checkpoints in `dir`, sorted by index.
fn list_checkpoints(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).ctx(|| format!("list checkpoints in {}", dir.display()))?;
    for entry in entries {
        let entry = entry.ctx(|| format!("list checkpoints in {}", dir.display()))?;
        let name = entry.file_name();
        let Some(index) = name
            .to_str()
            .and_then(|n| n.strip_prefix(CHECKPOINT_PREFIX))
            .and_then(parse_index)
        else {
            continue;
        };
        if entry
            .file_type()
            .ctx(|| format!("stat {}", entry.path().display()))?
            .is_dir()
        {
            out.push((index, entry.path()));
        }
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out)
}

/// Deletes checkpoints with index < `index`, and unfinished (`.tmp`) checkpoints below it.
pub fn delete_checkpoints_below(dir: &Path, index: u64) -> Result<()> {
    let mut removed = false;
    for (i, path) in list_checkpoints(dir)? {
        if i < index {
            remove_dir_if_exists(&path)?;
            removed = true;
        }
    }
    for (i, path) in list_tmp_checkpoints(dir)? {
        if i < index {
            remove_dir_if_exists(&path)?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Unfinished checkpoints (`checkpoint.NNNNNNNN.tmp`) in `dir`.
fn list_tmp_checkpoints(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).ctx(|| format!("list checkpoints in {}", dir.display()))?;
    for entry in entries {
        let entry = entry.ctx(|| format!("list checkpoints in {}", dir.display()))?;
        let name = entry.file_name();
        if let Some(index) = name
            .to_str()
            .and_then(|n| n.strip_prefix(CHECKPOINT_PREFIX))
            .and_then(|n| n.strip_suffix(TMP_SUFFIX))
            .and_then(parse_index)
        {
            out.push((index, entry.path()));
        }
    }
    Ok(out)
}

/// Creates `checkpoint.<last>` from the previous checkpoint (if any) plus WAL segments
/// `first..=last`. `keep` sees every record; `None` drops it, `Some(bytes)` keeps those
/// bytes. Afterwards older checkpoints and stale `.tmp` directories are deleted. WAL
/// segments are left alone (call [`crate::Wal::truncate`]). Any corruption met while
/// reading aborts the checkpoint: it cannot be repaired here because a dropped record may
/// be one later records depend on.
pub fn checkpoint(
    dir: &Path,
    first: u64,
    last: u64,
    keep: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
    opts: &WalOptions,
) -> Result<CheckpointStats> {
    if first > last {
        return Err(Error::InvalidArgument(format!(
            "checkpoint range {first}..={last} is empty"
        )));
    }
    let previous = last_checkpoint(dir)?;
    let mut from = first;
    if let Some((index, _)) = &previous {
        if *index >= last {
            // Rewriting checkpoint.<last> in place would need a moment with no checkpoint.
            return Err(Error::InvalidArgument(format!(
                "checkpoint {index:08} already covers segment {last:08}"
            )));
        }
        if first > index + 1 {
            return Err(Error::InvalidArgument(format!(
                "gap between checkpoint {index:08} and first segment {first:08}"
            )));
        }
        // Segments the previous checkpoint already covers are not read again.
        from = index + 1;
    }
    let present: Vec<u64> = list_segments(dir)?.into_iter().map(|(i, _)| i).collect();
    if let Some(missing) = (from..=last).find(|i| present.binary_search(i).is_err()) {
        return Err(Error::MissingSegment {
            dir: dir.to_path_buf(),
            segment: missing,
        });
    }

    // Unfinished checkpoints are garbage: no one else writes checkpoints concurrently.
    for (_, path) in list_tmp_checkpoints(dir)? {
        remove_dir_if_exists(&path)?;
    }
    let final_dir = dir.join(checkpoint_name(last));
    let tmp_dir = dir.join(format!("{}{TMP_SUFFIX}", checkpoint_name(last)));
    fs::create_dir(&tmp_dir).ctx(|| format!("create {}", tmp_dir.display()))?;

    let result = write_checkpoint(dir, &tmp_dir, previous.as_ref(), from, last, keep, opts);
    let mut stats = match result {
        Ok(stats) => stats,
        Err(e) => {
            if let Err(cleanup) = remove_dir_if_exists(&tmp_dir) {
                tracing::warn!(error = %cleanup, "removing failed checkpoint");
            }
            return Err(e);
        }
    };
    fs::rename(&tmp_dir, &final_dir)
        .ctx(|| format!("rename {} to {}", tmp_dir.display(), final_dir.display()))?;
    sync_dir(dir)?;
    delete_checkpoints_below(dir, last)?;
    stats.index = last;
    stats.dir = final_dir;
    tracing::info!(
        index = last,
        kept = stats.records_kept,
        dropped = stats.records_dropped,
        "WAL checkpoint created"
    );
    Ok(stats)
}

fn write_checkpoint(
    dir: &Path,
    tmp_dir: &Path,
    previous: Option<&(u64, PathBuf)>,
    from: u64,
    last: u64,
    keep: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
    opts: &WalOptions,
) -> Result<CheckpointStats> {
    let mut writer = SegmentWriter::create(
        tmp_dir,
        0,
        opts.segment_size_bytes,
        opts.compress,
        Arc::new(Counters::default()),
    )?;
    let mut stats = CheckpointStats::default();
    let mut readers = Vec::new();
    if let Some((_, path)) = previous {
        readers.push(Reader::open(path, 0, None)?);
    }
    if from <= last {
        readers.push(Reader::open(dir, from, Some(last))?);
    }
    let mut buf = Vec::new();
    for mut reader in readers {
        while reader.next_record(&mut buf)? {
            stats.records_read += 1;
            stats.bytes_read += buf.len() as u64;
            match keep(&buf) {
                None => stats.records_dropped += 1,
                Some(out) => {
                    if out != buf {
                        stats.records_rewritten += 1;
                    }
                    writer.append(&out)?;
                    stats.records_kept += 1;
                    stats.bytes_written += out.len() as u64;
                }
            }
        }
    }
    writer.finish()?;
    sync_dir(tmp_dir)?;
    Ok(stats)
}
