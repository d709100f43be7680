//! `/federate`: the newest sample within the lookback delta of every series matching a
//! `match[]`, in the text exposition format 0.0.4 with millisecond timestamps, one
//! `# TYPE <name> untyped` per metric family and stale series left out. Read-only.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use vigil_storage::{Labels, Queryable};

use super::json::format_go_g;
use super::params::{match_sets, Params};
use super::{ApiResult, Reply};
use crate::server::AppState;

/// Content type of the text exposition format.
pub const TEXT_FORMAT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Bit pattern of Prometheus' stale marker NaN.
const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Serves `/federate`.
pub fn federate(state: &AppState, p: &Params) -> ApiResult {
    let sets = match_sets(p)?;
    let now = vigil_storage::head::now_ms();
    let mint = now - state.api.lookback_delta_ms;
    let q = state.db.querier(mint, now)?;
    let external = state.api.config.read().external_labels.clone();
    let mut latest: BTreeMap<Labels, (i64, f64)> = BTreeMap::new();
    let mut buf = Vec::new();
    for set in &sets {
        for s in q.select(set)? {
            s.samples_into(&mut buf)?;
            let Some(last) = buf.last() else { continue };
            if last.v.to_bits() == STALE_NAN_BITS {
                continue;
            }
            let mut labels = s.labels;
            for (name, value) in &external {
                if !labels.has(name) {
                    labels = labels.with(name, value);
                }
            }
            latest.insert(labels, (last.t, last.v));
        }
    }
    // Group by metric name; within a family, series stay sorted by labels.
    let mut families: BTreeMap<String, Vec<(&Labels, i64, f64)>> = BTreeMap::new();
    for (l, (t, v)) in &latest {
        let name = l.metric_name().unwrap_or("").to_string();
        families.entry(name).or_default().push((l, *t, *v));
    }
    let mut out = String::new();
    for (name, series) in &families {
        if !name.is_empty() {
            let _ = writeln!(out, "# TYPE {name} untyped");
        }
        for (labels, t, v) in series {
            write_sample(&mut out, name, labels, *t, *v);
        }
    }
    Ok(Reply::Text {
        content_type: TEXT_FORMAT_CONTENT_TYPE,
        body: out,
    })
}

fn write_sample(out: &mut String, name: &str, labels: &Labels, t: i64, v: f64) {
    out.push_str(name);
    let mut first = true;
    for l in labels.iter().filter(|l| &*l.name != "__name__") {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(&l.name);
        out.push_str("=\"");
        for c in l.value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    if !first {
        out.push('}');
    }
    let _ = writeln!(out, " {} {t}", format_go_g(v));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sample_lines_escape_values() {
        let l = Labels::from_pairs(&[("__name__", "up"), ("job", "a\"b\\c\nd")]).unwrap();
        let mut s = String::new();
        write_sample(&mut s, "up", &l, 1_724_000_000_123, 1.0);
        assert_eq!(s, "up{job=\"a\\\"b\\\\c\\nd\"} 1 1724000000123\n");
        let bare = Labels::from_pairs(&[("__name__", "x")]).unwrap();
        let mut s = String::new();
        write_sample(&mut s, "x", &bare, 5, 123456789.0);
        assert_eq!(s, "x 1.23456789e+08 5\n");
    }
}
