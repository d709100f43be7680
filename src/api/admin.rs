//! The TSDB admin API (`/api/v1/admin/tsdb/...`, only with `--web.enable-admin-api`):
//! `delete_series` (tombstones), `clean_tombstones`, and `snapshot`, which hard-links every
//! block into `<data>/snapshots/<datetime>-<random>/` and, unless `skip_head=true`, writes
//! the head's samples there as one more block. Never changes existing blocks in place.

use std::path::{Path, PathBuf};

use vigil_storage::compact::{write_block, BlockOrigin};
use vigil_storage::db::all_matcher;
use vigil_storage::index::postings_for_matchers;
use vigil_storage::Series;

use super::params::{
    format_rfc3339_ms, invalid_param, match_sets, time_param, utc_parts, Params, MAX_TIME_MS,
    MIN_TIME_MS,
};
use super::{ApiError, ApiResult, ErrorType, Reply};
use crate::server::AppState;

/// Directory under the data directory that holds snapshots.
pub const SNAPSHOTS_DIRNAME: &str = "snapshots";
/// Random bytes in a snapshot name (printed as hex).
const SNAPSHOT_RANDOM_BYTES: usize = 8;

fn require_enabled(state: &AppState) -> Result<(), ApiError> {
    if state.api.enable_admin_api {
        Ok(())
    } else {
        Err(ApiError::new(ErrorType::Unavailable, "admin APIs disabled"))
    }
}

/// `delete_series`: tombstones the samples of every series matching a `match[]` in
/// `[start, end]`.
pub fn delete_series(state: &AppState, p: &Params) -> ApiResult {
    require_enabled(state)?;
    if p.all("match[]").is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let start = time_param(p, "start", MIN_TIME_MS)?;
    let end = time_param(p, "end", MAX_TIME_MS)?;
    for set in match_sets(p)? {
        state
            .db
            .delete(&set, start, end)
            .map_err(|e| ApiError::internal(e.to_string()))?;
    }
    Ok(Reply::NoContent)
}

/// `clean_tombstones`: rewrites blocks without their deleted samples.
pub fn clean_tombstones(state: &AppState) -> ApiResult {
    require_enabled(state)?;
    state
        .db
        .clean_tombstones()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Reply::NoContent)
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `YYYYMMDDTHHMMSSZ-<16 hex digits>`.
fn snapshot_name(now_ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = utc_parts(now_ms);
    let mut hex = String::with_capacity(SNAPSHOT_RANDOM_BYTES * 2);
    for b in random_bytes() {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z-{hex}")
}

/// Random bytes from the standard library's randomly keyed hasher (no extra dependency;
/// uniqueness, not secrecy, is needed).
fn random_bytes() -> [u8; SNAPSHOT_RANDOM_BYTES] {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(vigil_storage::head::now_ms());
    h.finish().to_be_bytes()
}

/// `snapshot`: returns `{"name": "<dir name>"}`.
pub fn snapshot(state: &AppState, p: &Params) -> ApiResult {
    require_enabled(state)?;
    let skip_head = match p.get_nonempty("skip_head") {
        None => false,
        Some(s) => parse_bool(s).ok_or_else(|| {
            invalid_param(
                "skip_head",
                format!("strconv.ParseBool: parsing {s:?}: invalid syntax"),
            )
        })?,
    };
    let name = snapshot_name(vigil_storage::head::now_ms());
    let dir = state.db.dir().join(SNAPSHOTS_DIRNAME).join(&name);
    take_snapshot(state, &dir, skip_head).map_err(|e| {
        let _ = std::fs::remove_dir_all(&dir);
        ApiError::internal(format!("create snapshot: {e}"))
    })?;
    tracing::info!(dir = %dir.display(), at = %format_rfc3339_ms(vigil_storage::head::now_ms()), "snapshot created");
    Ok(Reply::data(serde_json::json!({ "name": name }).to_string()))
}

fn take_snapshot(state: &AppState, dir: &Path, skip_head: bool) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for b in state.db.blocks().iter() {
        let Some(name) = b.dir().file_name() else {
            continue;
        };
        link_tree(b.dir(), &dir.join(name))?;
    }
    if skip_head {
        return Ok(());
    }
    let head = state.db.head();
    if head.is_empty() {
        return Ok(());
    }
    let (mint, maxt) = (head.min_time(), head.max_time());
    let ids = postings_for_matchers(head.as_ref(), &all_matcher()).map_err(|e| e.to_string())?;
    let mut series = Vec::with_capacity(ids.len() as usize);
    for id in ids.iter() {
        if let Some(d) = head
            .series_data(id, mint, maxt, vigil_storage::head::SEE_ALL)
            .map_err(|e| e.to_string())?
        {
            let deleted = head.tombstones_for(u64::from(id));
            series.push(Series::new(d.labels, d.chunks, deleted, mint, maxt));
        }
    }
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    write_block(
        dir,
        &series,
        mint,
        maxt.saturating_add(1),
        state.db.options().min_block_duration_ms,
        BlockOrigin {
            level: 1,
            sources: Vec::new(),
            parents: Vec::new(),
        },
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// Recreates the directory tree `from` at `to`, hard-linking every file.
fn link_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("creating {}: {e}", to.display()))?;
    let rd = std::fs::read_dir(from).map_err(|e| format!("listing {}: {e}", from.display()))?;
    for entry in rd {
        let entry = entry.map_err(|e| format!("listing {}: {e}", from.display()))?;
        let src: PathBuf = entry.path();
        let dst = to.join(entry.file_name());
        let ft = entry
            .file_type()
            .map_err(|e| format!("stat {}: {e}", src.display()))?;
        if ft.is_dir() {
            link_tree(&src, &dst)?;
        } else {
            std::fs::hard_link(&src, &dst)
                .map_err(|e| format!("linking {} to {}: {e}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use vigil_storage::block::Block;
    use vigil_storage::{Db, DbOptions, Labels, Matcher};

    const HOUR_MS: i64 = 3600 * 1000;

    fn block_dirs(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("meta.json").exists())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn snapshot_links_blocks_and_writes_the_head() {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::open(&tmp.path().join("data"), DbOptions::default()).unwrap();
        let l = Labels::from_pairs(&[("__name__", "m"), ("job", "a")]).unwrap();
        let mut app = db.appender();
        for t in [0, 1000, HOUR_MS, 3 * HOUR_MS, 3 * HOUR_MS + 1000] {
            app.append(&l, t, t as f64).unwrap();
        }
        app.commit().unwrap();
        db.compact_head_range(0, 2 * HOUR_MS).unwrap();
        assert_eq!(db.blocks().len(), 1);
        let state = AppState::new(db.clone(), crate::api::ApiConfig::default(), "127.0.0.1:0");

        let with_head = tmp.path().join("snap-head");
        take_snapshot(&state, &with_head, false).unwrap();
        let dirs = block_dirs(&with_head);
        assert_eq!(dirs.len(), 2);
        // The persisted block is hard-linked, not copied.
        use std::os::unix::fs::MetadataExt;
        let orig = db.blocks()[0].dir().join("index");
        let linked = with_head
            .join(db.blocks()[0].dir().file_name().unwrap())
            .join("index");
        assert_eq!(
            std::fs::metadata(&orig).unwrap().ino(),
            std::fs::metadata(&linked).unwrap().ino()
        );
        // The head's samples are a block of their own.
        let head_dir = dirs
            .iter()
            .find(|d| **d != linked.parent().unwrap())
            .unwrap();
        let b = Block::open(head_dir).unwrap();
        let series = b
            .select(&[Matcher::equal("job", "a")], i64::MIN, i64::MAX)
            .unwrap();
        assert_eq!(series.len(), 1);
        let ts: Vec<i64> = series[0].samples().unwrap().iter().map(|s| s.t).collect();
        assert_eq!(ts, vec![3 * HOUR_MS, 3 * HOUR_MS + 1000]);

        let no_head = tmp.path().join("snap-nohead");
        take_snapshot(&state, &no_head, true).unwrap();
        assert_eq!(block_dirs(&no_head).len(), 1);
    }

    #[test]
    fn snapshot_names_look_like_prometheus() {
        let n = snapshot_name(1_767_361_020_000);
        assert!(n.starts_with("20260102T133700Z-"), "{n}");
        assert_eq!(n.len(), "20260102T133700Z-".len() + 16);
        assert_ne!(snapshot_name(0), snapshot_name(0));
    }

    #[test]
    fn bools() {
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}
