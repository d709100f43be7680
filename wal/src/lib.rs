//! vigil-wal: Prometheus' write-ahead log format — numbered segment files of 32 KiB pages,
//! records split into fragments with CRC32-Castagnoli, snappy compression, group commit,
//! torn-tail repair and checkpoints. Records are opaque bytes: this crate knows nothing of
//! samples or labels.
