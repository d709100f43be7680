//! Cardinality statistics of the head for `/api/v1/status/tsdb`: the top label pairs, label
//! names and metric names by series count, value count and value bytes, computed from the
//! postings under one read lock, plus label-pair and chunk totals. Read-only.

use super::Head;

/// The label whose values are metric names.
const METRIC_NAME_LABEL: &str = "__name__";

/// Head cardinality, each list sorted by count (descending), then name, and cut to a limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CardinalityStats {
    /// Distinct `name=value` pairs in the head.
    pub num_label_pairs: u64,
    /// Chunks held by head series (memory-mapped and open).
    pub num_chunks: u64,
    /// Series per metric name.
    pub series_count_by_metric_name: Vec<(String, u64)>,
    /// Distinct values per label name.
    pub label_value_count_by_label_name: Vec<(String, u64)>,
    /// Bytes of label values per label name (value length × series using it).
    pub memory_in_bytes_by_label_name: Vec<(String, u64)>,
    /// Series per `name=value` pair.
    pub series_count_by_label_value_pair: Vec<(String, u64)>,
}

fn top(mut v: Vec<(String, u64)>, limit: usize) -> Vec<(String, u64)> {
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(limit);
    v
}

impl Head {
    /// Cardinality statistics, keeping the `limit` largest entries of each list.
    pub fn cardinality_stats(&self, limit: usize) -> CardinalityStats {
        let mut by_metric = Vec::new();
        let mut value_counts = Vec::new();
        let mut memory = Vec::new();
        let mut pairs = Vec::new();
        let mut num_label_pairs = 0u64;
        {
            let p = self.postings.read();
            for (name, values) in p.map.iter() {
                if name.is_empty() {
                    continue;
                }
                value_counts.push((name.to_string(), values.len() as u64));
                let mut bytes = 0u64;
                for (value, ids) in values.iter() {
                    let n = ids.len();
                    num_label_pairs += 1;
                    bytes += value.len() as u64 * n;
                    if &**name == METRIC_NAME_LABEL {
                        by_metric.push((value.to_string(), n));
                    }
                    pairs.push((format!("{name}={value}"), n));
                }
                memory.push((name.to_string(), bytes));
            }
        }
        let num_chunks = self
            .all_series()
            .iter()
            .map(|s| {
                let d = s.data.lock();
                d.mmapped.len() as u64 + u64::from(d.open.is_some())
            })
            .sum();
        CardinalityStats {
            num_label_pairs,
            num_chunks,
            series_count_by_metric_name: top(by_metric, limit),
            label_value_count_by_label_name: top(value_counts, limit),
            memory_in_bytes_by_label_name: top(memory, limit),
            series_count_by_label_value_pair: top(pairs, limit),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::head::HeadOptions;
    use crate::Labels;

    #[test]
    fn counts_series_values_and_bytes_from_postings() {
        let dir = tempfile::tempdir().unwrap();
        let head = Arc::new(Head::new(dir.path(), HeadOptions::default()).unwrap());
        head.replay().unwrap();
        let mut app = head.appender();
        for (name, job) in [("up", "a"), ("up", "bb"), ("cpu", "a")] {
            let l = Labels::from_pairs(&[("__name__", name), ("job", job)]).unwrap();
            app.append(&l, 1000, 1.0).unwrap();
        }
        app.commit().unwrap();
        let s = head.cardinality_stats(10);
        assert_eq!(s.num_label_pairs, 4);
        assert_eq!(s.num_chunks, 3);
        assert_eq!(
            s.series_count_by_metric_name,
            vec![("up".to_string(), 2), ("cpu".to_string(), 1)]
        );
        assert_eq!(
            s.label_value_count_by_label_name,
            vec![("__name__".to_string(), 2), ("job".to_string(), 2)]
        );
        // job: "a" × 2 series + "bb" × 1 = 4 bytes; __name__: "up" × 2 + "cpu" × 1 = 7.
        assert_eq!(
            s.memory_in_bytes_by_label_name,
            vec![("__name__".to_string(), 7), ("job".to_string(), 4)]
        );
        assert_eq!(
            s.series_count_by_label_value_pair[0],
            ("__name__=up".to_string(), 2)
        );
        assert_eq!(
            s.series_count_by_label_value_pair[1],
            ("job=a".to_string(), 2)
        );
        let one = head.cardinality_stats(1);
        assert_eq!(one.series_count_by_label_value_pair.len(), 1);
    }
}
