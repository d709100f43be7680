//! vigil-wal: Prometheus' write-ahead log format — numbered segment files of 32 KiB pages,
//! records split into fragments with CRC32-Castagnoli, snappy compression, group commit,
//! torn-tail repair and checkpoints. Records are opaque bytes: this crate knows nothing of
//! samples or labels, and must never depend on the storage or query crates.
//!
//! Byte layout: `docs/format/wal.md`. Typical use: on startup replay the last checkpoint
//! and the segments after it with [`Reader`]; on `Error::Corruption` call [`repair`];
//! then [`Wal::open`] (which starts a fresh segment) and [`Wal::log`] from any thread.

mod checkpoint;
mod error;
mod format;
mod fsutil;
mod reader;
mod repair;
mod stats;
mod wal;
mod writer;

pub use checkpoint::{checkpoint, delete_checkpoints_below, last_checkpoint, CheckpointStats};
pub use error::{Error, Result};
pub use format::{
    list_segments, segment_name, segment_path, DEFAULT_SEGMENT_SIZE_BYTES, HEADER_SIZE,
    MAX_FRAGMENT_DATA, PAGE_SIZE,
};
pub use reader::Reader;
pub use repair::repair;
pub use stats::WalStats;
pub use wal::{Wal, WalOptions};
