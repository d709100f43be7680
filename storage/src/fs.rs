//! File-system primitives for storage: read-only memory maps, append-only files readable
//! through a growing memory map, directory fsync, durable rename / atomic file replacement and
//! durable removal.
//!
//! Also the process-wide glibc allocator tuning the server applies at startup
//! ([`limit_malloc_arenas`]), because it needs `unsafe` too.
//!
//! This is the ONLY module in storage that memory-maps files, fsyncs directories, renames, or
//! uses `unsafe`; every `unsafe` block carries a `// SAFETY:` comment. It must never interpret
//! file contents (no formats here) and never hand out a slice that reaches past the bytes
//! actually written to a file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::{Error, Result};

/// Suffix of temporary files written before an atomic rename.
pub const TMP_SUFFIX: &str = ".tmp";
/// Suffix a directory gets while it is being deleted, so a crash mid-delete leaves a name
/// that readers skip.
pub const DELETION_SUFFIX: &str = ".tmp-for-deletion";

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::io(format!("{what} {}", path.display()), e)
}

/// Appends `suffix` to the file name of `path`.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Maps `len` bytes of `file` read-only.
#[allow(unsafe_code)]
fn map_file(file: &File, len: usize, path: &Path) -> Result<memmap2::Mmap> {
    // SAFETY: memmap2 requires that the mapped file is not truncated or modified in place
    // by anyone else while mapped, or reads could fault or observe changing bytes. Storage
    // files are immutable once written (blocks, finished head chunk files) or append-only
    // through `AppendFile`, which only exposes bytes below what it has written; storage
    // never truncates a mapped file (repairs unmap before truncating). For `AppendFile` the
    // mapping reaches past the current end of file up to its capacity; pages past the end are
    // never exposed (`GrowingMap::bytes` stops at the published length), so they are never
    // touched. The mapping is read-only, so no Rust reference aliases mutable memory; bytes
    // appended later lie beyond every slice handed out so far.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(file) };
    map.map_err(|e| io_err("mmap", path, e))
}

/// A read-only memory map of a whole file. Empty files are handled (an empty slice).
#[derive(Debug)]
pub struct Mmap {
    map: Option<memmap2::Mmap>,
    path: PathBuf,
}

impl Mmap {
    /// Opens `path` read-only and maps all of it.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| io_err("open", path, e))?;
        let len = file.metadata().map_err(|e| io_err("stat", path, e))?.len();
        let len = usize::try_from(len)
            .map_err(|_| Error::Other(format!("{} is too large to map", path.display())))?;
        let map = if len == 0 {
            None
        } else {
            Some(map_file(&file, len, path)?)
        };
        Ok(Mmap {
            map,
            path: path.to_path_buf(),
        })
    }

    /// The mapped bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The mapped file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::ops::Deref for Mmap {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// The readable side of an [`AppendFile`]: a map reserved at the file's capacity of which
/// only the bytes already written are exposed. Cheap to share (`Arc`) between threads; stays
/// valid after the file is unlinked.
#[derive(Debug)]
pub struct GrowingMap {
    map: memmap2::Mmap,
    readable: AtomicUsize,
    path: PathBuf,
}

impl GrowingMap {
    /// The bytes written so far.
    pub fn bytes(&self) -> &[u8] {
        let n = self.readable.load(Ordering::Acquire);
        self.map.get(..n).unwrap_or(&[])
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// An append-only file whose written bytes are readable through a shared memory map without
/// remapping. A failed write poisons it: further appends fail instead of writing at an
/// unknown offset.
#[derive(Debug)]
pub struct AppendFile {
    file: File,
    map: Arc<GrowingMap>,
    len: u64,
    capacity: u64,
    poisoned: bool,
}

impl AppendFile {
    /// Creates `path` (which must not exist) holding `header`, durably: the header is written
    /// to `path.tmp`, fsynced and renamed into place, and the directory fsynced. The file can
    /// grow to `capacity` bytes.
    pub fn create_new(path: &Path, header: &[u8], capacity: u64) -> Result<Self> {
        if (header.len() as u64) > capacity {
            return Err(Error::Other(format!(
                "header of {} bytes exceeds capacity {capacity} of {}",
                header.len(),
                path.display()
            )));
        }
        let tmp = with_suffix(path, TMP_SUFFIX);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| io_err("create", &tmp, e))?;
        file.write_all(header)
            .map_err(|e| io_err("write header of", &tmp, e))?;
        file.sync_all().map_err(|e| io_err("fsync", &tmp, e))?;
        if path.exists() {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Other(format!("{} already exists", path.display())));
        }
        rename_atomic(&tmp, path)?;
        let cap = usize::try_from(capacity)
            .map_err(|_| Error::Other(format!("capacity {capacity} too large to map")))?;
        let map = map_file(&file, cap, path)?;
        Ok(AppendFile {
            file,
            map: Arc::new(GrowingMap {
                map,
                readable: AtomicUsize::new(header.len()),
                path: path.to_path_buf(),
            }),
            len: header.len() as u64,
            capacity,
            poisoned: false,
        })
    }

    /// Appends `bytes` at the end of the file and makes them readable; returns their offset.
    pub fn append(&mut self, bytes: &[u8]) -> Result<u64> {
        if self.poisoned {
            return Err(Error::Closed(format!(
                "{} is poisoned by an earlier write failure",
                self.map.path.display()
            )));
        }
        let offset = self.len;
        let end = offset + bytes.len() as u64;
        if end > self.capacity {
            return Err(Error::Other(format!(
                "append of {} bytes at {offset} exceeds capacity {} of {}",
                bytes.len(),
                self.capacity,
                self.map.path.display()
            )));
        }
        if let Err(e) = self.file.write_all_at(bytes, offset) {
            self.poisoned = true;
            return Err(io_err("write", &self.map.path, e));
        }
        self.len = end;
        // The bytes are in the page cache, which the shared mapping sees; publish them.
        self.map.readable.store(end as usize, Ordering::Release);
        Ok(offset)
    }

    /// Flushes written bytes to stable storage (fdatasync).
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| io_err("fsync", &self.map.path, e))
    }

    /// Bytes written, header included.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True if nothing (not even a header) was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum size.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The shared readable map.
    pub fn map(&self) -> Arc<GrowingMap> {
        Arc::clone(&self.map)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.map.path
    }
}

/// Fsyncs a directory so that entries created, renamed or removed in it are durable.
pub fn fsync_dir(path: &Path) -> Result<()> {
    let d = File::open(path).map_err(|e| io_err("open directory", path, e))?;
    d.sync_all().map_err(|e| io_err("fsync directory", path, e))
}

/// Renames `from` to `to` and fsyncs the parent directory (both parents if they differ).
pub fn rename_atomic(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to)
        .map_err(|e| Error::io(format!("rename {} to {}", from.display(), to.display()), e))?;
    let to_parent = parent_of(to);
    fsync_dir(to_parent)?;
    let from_parent = parent_of(from);
    if from_parent != to_parent {
        fsync_dir(from_parent)?;
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically: writes `path.tmp`, fsyncs it, renames it over
/// `path` and fsyncs the directory. Readers see the old or the new content, never a mix.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = with_suffix(path, TMP_SUFFIX);
    {
        let mut f = File::create(&tmp).map_err(|e| io_err("create", &tmp, e))?;
        f.write_all(bytes).map_err(|e| io_err("write", &tmp, e))?;
        f.sync_all().map_err(|e| io_err("fsync", &tmp, e))?;
    }
    rename_atomic(&tmp, path)
}

/// Creates a directory and its missing parents, fsyncing the parent of `path`.
pub fn create_dir_all_durable(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| io_err("create directory", path, e))?;
    fsync_dir(parent_of(path))
}

/// Removes a file and fsyncs its directory. A missing file is not an error.
pub fn remove_file_durable(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => fsync_dir(parent_of(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path, e)),
    }
}

/// Removes a directory tree so that a crash never leaves it half-deleted under its real name:
/// it is first renamed to `<name>.tmp-for-deletion` (durably), then deleted, then the parent
/// fsynced. A missing directory is not an error.
pub fn remove_dir_all_durable(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let doomed = with_suffix(path, DELETION_SUFFIX);
    if doomed.exists() {
        std::fs::remove_dir_all(&doomed).map_err(|e| io_err("remove", &doomed, e))?;
    }
    rename_atomic(path, &doomed)?;
    std::fs::remove_dir_all(&doomed).map_err(|e| io_err("remove", &doomed, e))?;
    fsync_dir(parent_of(path))
}

/// Truncates a file to `len` bytes and fsyncs it. The file must not be mapped.
pub fn truncate_file(path: &Path, len: u64) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_err("open", path, e))?;
    f.set_len(len).map_err(|e| io_err("truncate", path, e))?;
    f.sync_all().map_err(|e| io_err("fsync", path, e))
}

/// glibc's `mallopt` parameter for the maximum number of arenas (`<malloc.h>`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const M_ARENA_MAX: std::os::raw::c_int = -8;
/// Arenas the server may use: two keep appends on one thread from contending with a query on
/// another for one arena lock, without an arena per thread. glibc's default (8 per core) let
/// freed query memory pile up in per-thread arenas: peak RSS after the e2e queries went
/// 192 → 128 MiB with this limit (docs/benchmarks.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENA_MAX: std::os::raw::c_int = 2;
/// The environment variable with which glibc itself reads the same limit; when the operator
/// set it, it wins.
const ARENA_MAX_ENV: &str = "MALLOC_ARENA_MAX";

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    fn mallopt(param: std::os::raw::c_int, value: std::os::raw::c_int) -> std::os::raw::c_int;
}

/// Caps glibc's malloc arenas at two unless `MALLOC_ARENA_MAX` is set; does nothing with
/// other allocators. Call first thing in `main`, before any thread exists.
pub fn limit_malloc_arenas() {
    if std::env::var_os(ARENA_MAX_ENV).is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` is glibc's documented tuning call; M_ARENA_MAX takes any positive
        // count and only bounds arenas created later. A zero return (not applied) leaves
        // glibc's default, so it is ignored.
        let _applied = unsafe { mallopt(M_ARENA_MAX, ARENA_MAX) };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mmap_reads_file_and_handles_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        let m = Mmap::open(&p).unwrap();
        assert_eq!(&*m, b"hello");
        assert_eq!(m.path(), p);
        let e = dir.path().join("empty");
        std::fs::write(&e, b"").unwrap();
        let m = Mmap::open(&e).unwrap();
        assert!(m.is_empty());
        assert_eq!(m.as_slice(), b"");
        assert!(matches!(
            Mmap::open(&dir.path().join("missing")),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn append_file_exposes_only_written_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("000001");
        let mut f = AppendFile::create_new(&p, b"HDR", 1024).unwrap();
        assert!(!with_suffix(&p, TMP_SUFFIX).exists());
        let map = f.map();
        assert_eq!(map.bytes(), b"HDR");
        assert_eq!(f.append(b"abc").unwrap(), 3);
        assert_eq!(f.append(b"de").unwrap(), 6);
        assert_eq!(map.bytes(), b"HDRabcde");
        f.sync().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"HDRabcde");
        assert!(f.append(&[0u8; 1024]).is_err());
        assert_eq!(f.len(), 8);
        // The map stays readable after the file is unlinked.
        std::fs::remove_file(&p).unwrap();
        assert_eq!(map.bytes(), b"HDRabcde");
        // Creating over an existing file fails.
        std::fs::write(&p, b"x").unwrap();
        assert!(AppendFile::create_new(&p, b"HDR", 1024).is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
    }

    #[test]
    fn atomic_write_rename_and_durable_removal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("meta.json");
        write_file_atomic(&p, b"one").unwrap();
        write_file_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(!with_suffix(&p, TMP_SUFFIX).exists());
        let q = dir.path().join("renamed");
        rename_atomic(&p, &q).unwrap();
        assert!(!p.exists());
        assert_eq!(std::fs::read(&q).unwrap(), b"two");

        let tree = dir.path().join("block");
        create_dir_all_durable(&tree.join("chunks")).unwrap();
        std::fs::write(tree.join("chunks/000001"), b"x").unwrap();
        remove_dir_all_durable(&tree).unwrap();
        assert!(!tree.exists());
        assert!(!with_suffix(&tree, DELETION_SUFFIX).exists());
        remove_dir_all_durable(&tree).unwrap();

        remove_file_durable(&q).unwrap();
        assert!(!q.exists());
        remove_file_durable(&q).unwrap();
        fsync_dir(dir.path()).unwrap();
    }

    #[test]
    fn truncate_cuts_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        truncate_file(&p, 4).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"0123");
    }
}
