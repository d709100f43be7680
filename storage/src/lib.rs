//! vigil-storage: Vigil's time-series database. Labels and matchers, the Gorilla XOR chunk
//! codec, the in-memory head with its WAL, persistent Prometheus-format blocks, compaction,
//! retention, tombstones and the querier. The public API is `Db`, `Appender`, `Queryable`,
//! `Querier`, `SeriesSet`, `Labels` and `Matcher`; head and block internals stay private.

pub mod block;
pub mod chunkenc;
pub mod chunks;
pub mod compact;
pub mod db;
pub mod error;
pub mod fs;
pub mod head;
pub mod index;
pub mod labels;
pub mod matcher;
pub mod querier;
pub mod record;
pub mod tombstones;

pub use error::{Error, Result};

pub use db::{Db, DbOptions};
pub use head::{Appender, CommitStats};
pub use labels::{Label, Labels, LabelsBuilder};
pub use matcher::{MatchType, Matcher};
pub use querier::{ChunkData, Querier, Queryable, Sample, Series};
