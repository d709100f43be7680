//! Persistent blocks: a directory named by ULID holding `meta.json`, `index`, `chunks/` and
//! `tombstones`, covering `[min_time, max_time)`. A block is written once into a temporary
//! directory, fsynced and renamed into place, and never modified afterwards — except its
//! tombstones file, which is replaced atomically on delete. This module reads blocks and
//! owns `meta.json`; writing lives in `compact.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::chunks::ChunkReader;
use crate::error::{Error, Result};
use crate::index::postings_for_matchers;
use crate::index::{ChunkMeta, IndexReader, SymbolCache};
use crate::matcher::Matcher;
use crate::querier::{ChunkData, Series};
use crate::tombstones::{self, Tombstones};

/// File name of the block metadata.
pub const META_FILENAME: &str = "meta.json";
/// File name of the index.
pub const INDEX_FILENAME: &str = "index";
/// Directory of the chunk segment files.
pub const CHUNKS_DIRNAME: &str = "chunks";
/// The only meta.json version.
pub const META_VERSION: u32 = 1;

/// Statistics in meta.json.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_samples: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_float_samples: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_histogram_samples: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_series: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_chunks: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A parent of a compacted block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDesc {
    pub ulid: String,
    pub min_time: i64,
    pub max_time: i64,
}

/// Compaction information in meta.json.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockCompaction {
    pub level: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deletable: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
}

/// The contents of meta.json.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: String,
    pub min_time: i64,
    pub max_time: i64,
    pub stats: BlockStats,
    pub compaction: BlockCompaction,
    pub version: u32,
}

impl BlockMeta {
    /// Reads `<dir>/meta.json`.
    pub fn read(dir: &Path) -> Result<BlockMeta> {
        let path = dir.join(META_FILENAME);
        let b = std::fs::read(&path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let m: BlockMeta = serde_json::from_slice(&b).map_err(|e| {
            Error::corruption(&path, e.column() as u64, format!("invalid meta.json: {e}"))
        })?;
        if m.version != META_VERSION {
            return Err(Error::corruption(
                &path,
                0,
                format!("unsupported meta.json version {}", m.version),
            ));
        }
        Ok(m)
    }

    /// Writes `<dir>/meta.json` atomically, in Prometheus' tab-indented layout.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        self.serialize(&mut ser)
            .map_err(|e| Error::Other(format!("encoding meta.json: {e}")))?;
        crate::fs::write_file_atomic(&dir.join(META_FILENAME), &out)
    }
}

/// An open, immutable block.
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader<crate::fs::Mmap>,
    chunks: ChunkReader,
    tombstones: RwLock<Tombstones>,
    size_bytes: u64,
}

impl Block {
    /// Opens the block in `dir`.
    pub fn open(dir: &Path) -> Result<Block> {
        let meta = BlockMeta::read(dir)?;
        let index_path = dir.join(INDEX_FILENAME);
        let index = IndexReader::from_bytes(crate::fs::Mmap::open(&index_path)?, &index_path)?;
        let chunks = ChunkReader::open(&dir.join(CHUNKS_DIRNAME))?;
        let tombstones = tombstones::read(dir)?;
        let size_bytes = dir_size(dir);
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            index,
            chunks,
            tombstones: RwLock::new(tombstones),
            size_bytes,
        })
    }

    /// The block's metadata.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Total bytes on disk.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// The index reader.
    pub fn index(&self) -> &IndexReader<crate::fs::Mmap> {
        &self.index
    }

    /// Whether the block overlaps `[mint, maxt]` (block max time is exclusive).
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.meta.min_time <= maxt && mint < self.meta.max_time
    }

    /// Series matching `matchers` with chunks overlapping `[mint, maxt]`.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>> {
        let ids = postings_for_matchers(&self.index, matchers)?;
        let stones = self.tombstones.read();
        let mut out = Vec::with_capacity(ids.len() as usize);
        let mut metas: Vec<ChunkMeta> = Vec::new();
        let mut symbols = SymbolCache::new();
        for id in ids.iter() {
            let labels = self
                .index
                .series_cached(u64::from(id), &mut metas, &mut symbols)?;
            let mut chunks = Vec::with_capacity(metas.len());
            for m in &metas {
                if m.max_time < mint || m.min_time > maxt {
                    continue;
                }
                let (_, data) = self.chunks.chunk(m.chunk_ref)?;
                chunks.push(ChunkData {
                    min_time: m.min_time,
                    max_time: m.max_time,
                    data: Arc::from(data),
                });
            }
            if chunks.is_empty() {
                continue;
            }
            let deleted = stones.get(&u64::from(id)).cloned().unwrap_or_default();
            out.push(Series::new(labels, chunks, deleted, mint, maxt));
        }
        Ok(out)
    }

    /// Label names of series matching `matchers`.
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        if matchers.is_empty() {
            return self.index.label_names();
        }
        let ids = postings_for_matchers(&self.index, matchers)?;
        let mut names = std::collections::BTreeSet::new();
        let mut metas = Vec::new();
        let mut symbols = SymbolCache::new();
        for id in ids.iter() {
            let l = self
                .index
                .series_cached(u64::from(id), &mut metas, &mut symbols)?;
            names.extend(l.iter().map(|l| l.name.to_string()));
        }
        Ok(names.into_iter().collect())
    }

    /// Values of label `name` of series matching `matchers`.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        if matchers.is_empty() {
            return self.index.label_values(name);
        }
        let ids = postings_for_matchers(&self.index, matchers)?;
        let mut vals = std::collections::BTreeSet::new();
        let mut metas = Vec::new();
        let mut symbols = SymbolCache::new();
        for id in ids.iter() {
            let l = self
                .index
                .series_cached(u64::from(id), &mut metas, &mut symbols)?;
            if let Some(v) = l.get(name) {
                vals.insert(v.to_string());
            }
        }
        Ok(vals.into_iter().collect())
    }

    /// Adds tombstones for series matching `matchers` in `[mint, maxt]` and rewrites the
    /// tombstones file. Returns the number of series affected.
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<u64> {
        let ids = postings_for_matchers(&self.index, matchers)?;
        let mut stones = self.tombstones.write();
        let mut n = 0;
        let mut metas = Vec::new();
        for id in ids.iter() {
            metas.clear();
            self.index.series(u64::from(id), &mut metas)?;
            if !metas
                .iter()
                .any(|m| m.max_time >= mint && m.min_time <= maxt)
            {
                continue;
            }
            let v = stones.entry(u64::from(id)).or_default();
            v.push((mint, maxt));
            tombstones::normalize_intervals(v);
            n += 1;
        }
        if n > 0 {
            tombstones::write(&self.dir, &stones)?;
        }
        Ok(n)
    }

    /// Number of tombstone intervals.
    pub fn num_tombstones(&self) -> u64 {
        self.tombstones
            .read()
            .values()
            .map(|v| v.len() as u64)
            .sum()
    }

    /// The block's tombstones.
    pub fn tombstones(&self) -> Tombstones {
        self.tombstones.read().clone()
    }
}

/// Sum of file sizes below `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => n += dir_size(&e.path()),
                Ok(m) => n += m.len(),
                Err(_) => {}
            }
        }
    }
    n
}

/// A new ULID (48-bit millisecond time, 80 random bits) in Crockford base32.
pub fn new_ulid(ms: u64) -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u64(ms);
    let r1 = h.finish();
    h.write_u64(r1);
    let r2 = h.finish();
    let value: u128 = (u128::from(ms & 0xFFFF_FFFF_FFFF) << 80)
        | (u128::from(r1) << 16)
        | u128::from(r2 & 0xFFFF);
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut out = [0u8; 26];
    for (i, c) in out.iter_mut().enumerate() {
        let shift = 125 - 5 * i as u32;
        *c = ALPHABET[((value >> shift) & 0x1f) as usize];
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `name` looks like a ULID block directory name.
pub fn is_block_dir_name(name: &str) -> bool {
    name.len() == 26
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ulid_shape_and_order() {
        let a = new_ulid(1_600_000_000_000);
        let b = new_ulid(1_600_000_000_001);
        assert!(is_block_dir_name(&a), "{a}");
        assert!(a < b);
        assert_ne!(new_ulid(5), new_ulid(5));
    }

    #[test]
    fn meta_json_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let m = BlockMeta {
            ulid: new_ulid(1),
            min_time: 0,
            max_time: 7_200_000,
            stats: BlockStats {
                num_samples: 10,
                num_series: 1,
                num_chunks: 1,
                ..Default::default()
            },
            compaction: BlockCompaction {
                level: 1,
                sources: vec!["X".into()],
                ..Default::default()
            },
            version: 1,
        };
        m.write(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(META_FILENAME)).unwrap();
        assert!(text.contains("\"minTime\": 0"), "{text}");
        assert!(text.contains("\t\"stats\""), "{text}");
        assert_eq!(BlockMeta::read(dir.path()).unwrap(), m);
    }
}
