//! `vigil tsdb …`: data tools that mirror `promtool tsdb` so promtool can verify Vigil's
//! data and vice versa — `list` (blocks table), `dump` (every sample, promtool's exact line
//! format) and `create-blocks-from openmetrics` (backfill from an OpenMetrics file into 2h
//! blocks). They open data directories read-only; only backfill writes (new blocks).

mod gofmt;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;

use vigil_storage::block::Block;
use vigil_storage::compact::{self, BlockOrigin};
use vigil_storage::{Db, Labels, Queryable, Sample};

pub use gofmt::{format_duration_ms, format_g, tabwrite};

/// Default block duration of backfilled blocks (2h).
const DEFAULT_BLOCK_DURATION_MS: i64 = 2 * 3600 * 1000;

/// `vigil tsdb` subcommands.
#[derive(Subcommand, Debug)]
pub enum TsdbCommand {
    /// List the blocks of a data directory.
    List {
        /// Print times and sizes in human-readable form.
        #[arg(short = 'r', long = "human-readable")]
        human_readable: bool,
        /// The data directory.
        #[arg(default_value = "data/")]
        db_path: PathBuf,
    },
    /// Dump every sample of a data directory (blocks and WAL) as `labels value timestamp`.
    Dump {
        /// Minimum timestamp to dump (ms).
        #[arg(long = "min-time", default_value_t = i64::MIN, allow_hyphen_values = true)]
        min_time: i64,
        /// Maximum timestamp to dump (ms).
        #[arg(long = "max-time", default_value_t = i64::MAX, allow_hyphen_values = true)]
        max_time: i64,
        /// Series selector (repeatable).
        #[arg(long = "match", default_value = "{__name__=~\"(?s:.*)\"}")]
        matches: Vec<String>,
        /// The data directory.
        #[arg(default_value = "data/")]
        db_path: PathBuf,
    },
    /// Create blocks from data in another format.
    #[command(name = "create-blocks-from")]
    CreateBlocksFrom {
        #[command(subcommand)]
        source: CreateBlocksSource,
    },
}

/// Sources for `create-blocks-from`.
#[derive(Subcommand, Debug)]
pub enum CreateBlocksSource {
    /// Import samples from an OpenMetrics input file (every sample needs a timestamp).
    Openmetrics {
        /// Print times and sizes in human-readable form.
        #[arg(short = 'r', long = "human-readable")]
        human_readable: bool,
        /// Do not print created blocks.
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
        /// Maximum duration of created blocks (e.g. 2h, 1d); rounded down to a
        /// compaction range.
        #[arg(long = "max-block-duration", default_value = "0s")]
        max_block_duration: String,
        /// The OpenMetrics file to read.
        input: PathBuf,
        /// Where to write the blocks.
        #[arg(default_value = "data/")]
        output: PathBuf,
    },
}

/// Runs a `vigil tsdb` command, printing to stdout.
pub fn run(cmd: TsdbCommand) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        TsdbCommand::List {
            human_readable,
            db_path,
        } => list(&db_path, human_readable, &mut out),
        TsdbCommand::Dump {
            min_time,
            max_time,
            matches,
            db_path,
        } => dump(&db_path, min_time, max_time, &matches, &mut out),
        TsdbCommand::CreateBlocksFrom {
            source:
                CreateBlocksSource::Openmetrics {
                    human_readable,
                    quiet,
                    max_block_duration,
                    input,
                    output,
                },
        } => {
            let max = crate::flags::parse_duration_ms(&max_block_duration)
                .map_err(|e| anyhow!("--max-block-duration: {e}"))?;
            let data =
                std::fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
            let blocks = create_blocks_from_openmetrics(&data, &output, max)?;
            if !quiet && !blocks.is_empty() {
                use std::io::Write;
                out.write_all(block_table(&blocks, human_readable).as_bytes())?;
            }
            Ok(())
        }
    }
}

fn scratch_dir() -> Result<tempdir::TempDir> {
    tempdir::TempDir::new()
}

/// A scratch directory removed on drop (for the read-only head's chunks).
mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> anyhow::Result<TempDir> {
            let p = std::env::temp_dir().join(format!(
                "vigil-tsdb-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            ));
            std::fs::create_dir_all(&p)?;
            Ok(TempDir(p))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `tsdb list`: the blocks table exactly as promtool prints it.
pub fn list(dir: &Path, human_readable: bool, out: &mut impl std::io::Write) -> Result<()> {
    let scratch = scratch_dir()?;
    let db = Db::open_read_only(dir, scratch.path())?;
    let blocks: Vec<&Block> = db.blocks().iter().map(|b| &**b).collect();
    out.write_all(block_table(&blocks, human_readable).as_bytes())?;
    Ok(())
}

fn block_table<B: std::borrow::Borrow<Block>>(blocks: &[B], human_readable: bool) -> String {
    let mut rows = vec![[
        "BLOCK ULID",
        "MIN TIME",
        "MAX TIME",
        "DURATION",
        "NUM SAMPLES",
        "NUM CHUNKS",
        "NUM SERIES",
        "SIZE",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for b in blocks {
        let b = b.borrow();
        let m = b.meta();
        rows.push(vec![
            m.ulid.clone(),
            format_time(m.min_time, human_readable),
            format_time(m.max_time, human_readable),
            format_duration_ms(m.max_time - m.min_time),
            m.stats.num_samples.to_string(),
            m.stats.num_chunks.to_string(),
            m.stats.num_series.to_string(),
            format_bytes(b.size_bytes(), human_readable),
        ]);
    }
    tabwrite(&rows, 13, 2)
}

fn format_time(ms: i64, human: bool) -> String {
    if !human {
        return ms.to_string();
    }
    // Go: time.Unix(ms/1000, 0).UTC().String() → "2006-01-02 15:04:05 +0000 UTC".
    let secs = ms / 1000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn format_bytes(b: u64, human: bool) -> String {
    if !human {
        return b.to_string();
    }
    // Go's units.Base2Bytes String(): e.g. "1.5KiB", "12MiB", "0B".
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    let s = format!("{v:.1}");
    format!("{}{}", s.trim_end_matches(".0"), UNITS[i])
}

/// `tsdb dump`: every sample of series matching any selector, promtool's line format
/// `{labels} value timestamp`, series in label order.
pub fn dump(
    dir: &Path,
    mint: i64,
    maxt: i64,
    selectors: &[String],
    out: &mut impl std::io::Write,
) -> Result<()> {
    let scratch = scratch_dir()?;
    let db = Db::open_read_only(dir, scratch.path())?;
    let q = db.querier(mint, maxt)?;
    let mut seen: HashMap<Labels, ()> = HashMap::new();
    let mut all = Vec::new();
    for sel in selectors {
        let matchers = vigil_promql::parser::parse_metric_selector(sel)
            .map_err(|e| anyhow!("invalid --match {sel:?}: {e}"))?;
        for s in q.select(&matchers)? {
            if seen.insert(s.labels.clone(), ()).is_none() {
                all.push(s);
            }
        }
    }
    all.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut w = std::io::BufWriter::new(out);
    let mut buf: Vec<Sample> = Vec::new();
    for s in &all {
        s.samples_into(&mut buf)?;
        let lbls = s.labels.to_string();
        for x in &buf {
            use std::io::Write;
            writeln!(w, "{lbls} {} {}", format_g(x.v), x.t)?;
        }
    }
    use std::io::Write;
    w.flush()?;
    Ok(())
}

/// The block duration promtool uses for a `--max-block-duration`: the largest compaction
/// range (2h × 3^n) not above it, and 2h when smaller.
fn compatible_block_duration(max_ms: i64) -> i64 {
    if max_ms <= DEFAULT_BLOCK_DURATION_MS {
        return DEFAULT_BLOCK_DURATION_MS;
    }
    let ranges: Vec<i64> = (0..10)
        .map(|i| DEFAULT_BLOCK_DURATION_MS * 3i64.pow(i))
        .collect();
    let mut best = DEFAULT_BLOCK_DURATION_MS;
    for r in ranges {
        if r > max_ms {
            break;
        }
        best = r;
    }
    best
}

/// Backfill: parses OpenMetrics `data` (every sample must carry a timestamp) and writes one
/// block per aligned block-duration window that has samples, like promtool. Returns the
/// blocks created.
pub fn create_blocks_from_openmetrics(
    data: &[u8],
    output: &Path,
    max_block_duration_ms: i64,
) -> Result<Vec<Block>> {
    let parsed = crate::exposition::parse(data, crate::exposition::Format::OpenMetrics)
        .map_err(|e| anyhow!("next: {e}"))?;
    let dur = compatible_block_duration(max_block_duration_ms);
    let mut samples: Vec<(Labels, i64, f64)> = Vec::with_capacity(parsed.samples.len());
    for s in parsed.samples {
        let t = s.timestamp_ms.ok_or_else(|| {
            anyhow!("getting min and max timestamp: expected timestamp for series got none")
        })?;
        let labels = Labels::from_pairs(&s.labels).map_err(|e| anyhow!("add sample: {e}"))?;
        samples.push((labels, t, s.value));
    }
    std::fs::create_dir_all(output).with_context(|| format!("creating {}", output.display()))?;
    let (Some(min), Some(max)) = (
        samples.iter().map(|s| s.1).min(),
        samples.iter().map(|s| s.1).max(),
    ) else {
        return Ok(Vec::new());
    };
    let mut created = Vec::new();
    let mut t = min.div_euclid(dur) * dur;
    while t <= max {
        let upper = t + dur;
        let mut series: HashMap<Labels, Vec<Sample>> = HashMap::new();
        for (l, ts, v) in &samples {
            if *ts < t || *ts >= upper {
                continue;
            }
            let e = series.entry(l.clone()).or_default();
            if let Some(last) = e.last() {
                if *ts < last.t {
                    bail!("process blocks: add sample: out of order sample for {l} at {ts}");
                }
                if *ts == last.t {
                    if v.to_bits() != last.v.to_bits() {
                        bail!("process blocks: add sample: duplicate sample for timestamp for {l} at {ts}");
                    }
                    continue;
                }
            }
            e.push(Sample { t: *ts, v: *v });
        }
        if !series.is_empty() {
            let mut list: Vec<(Labels, Vec<Sample>)> = series.into_iter().collect();
            list.sort_by(|a, b| a.0.cmp(&b.0));
            let bmin = list
                .iter()
                .filter_map(|s| s.1.first())
                .map(|s| s.t)
                .min()
                .unwrap_or(t);
            let bmax = list
                .iter()
                .filter_map(|s| s.1.last())
                .map(|s| s.t)
                .max()
                .unwrap_or(t)
                + 1;
            let meta = compact::write_block(
                output,
                &list,
                bmin,
                bmax,
                dur,
                BlockOrigin {
                    level: 1,
                    sources: Vec::new(),
                    parents: Vec::new(),
                },
            )?;
            if let Some(m) = meta {
                created.push(Block::open(&output.join(&m.ulid))?);
            }
        }
        t = upper;
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_durations() {
        assert_eq!(compatible_block_duration(0), DEFAULT_BLOCK_DURATION_MS);
        assert_eq!(
            compatible_block_duration(24 * 3600 * 1000),
            18 * 3600 * 1000
        );
    }

    #[test]
    fn human_time_and_bytes() {
        assert_eq!(format_time(0, true), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            format_time(1_700_000_000_000, true),
            "2023-11-14 22:13:20 +0000 UTC"
        );
        assert_eq!(format_bytes(1536, true), "1.5KiB");
        assert_eq!(format_bytes(10, true), "10B");
    }
}
