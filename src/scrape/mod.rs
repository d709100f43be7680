//! The scraper: service discovery (static and file), target building and relabeling, one
//! scrape loop per target (jittered start, timeout, gzip, content negotiation, limits,
//! staleness markers, the synthetic `up`/`scrape_*` series), and the [`ScrapeManager`] that
//! runs one pool per job, applies configuration reloads and exposes target state. All writes
//! go through `vigil_storage::Appender`; this module never reads storage.

pub mod discovery;
pub mod md5;
pub mod relabel;
pub mod target;

pub use target::{DroppedTarget, Target, TargetGroup};
pub mod http;
pub mod manager;
pub mod scrape_loop;
pub mod tls;

pub use manager::{DroppedStatus, ScrapeManager, TargetStatus};
pub use scrape_loop::TargetHealth;
