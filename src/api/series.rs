//! Metadata endpoints answered from storage: `/api/v1/series`, `/api/v1/labels`,
//! `/api/v1/label/<name>/values` and `/api/v1/metadata`. Several `match[]` selectors are a
//! union; results are sorted and cut by `limit` with Prometheus' warning. Reads only through
//! `Queryable`/`Querier` and the head's metadata; never writes.

use std::collections::{BTreeMap, BTreeSet};

use vigil_storage::{Labels, Queryable};

use super::params::{
    apply_limit, form_decode, limit_param, match_sets, time_param, unescape_label_name, Params,
    MAX_TIME_MS, MIN_TIME_MS,
};
use super::{json, ApiError, ApiResult, Reply};
use crate::server::AppState;

fn time_range(p: &Params) -> Result<(i64, i64), ApiError> {
    let start = time_param(p, "start", MIN_TIME_MS)?;
    let end = time_param(p, "end", MAX_TIME_MS)?;
    Ok((start, end))
}

/// `/api/v1/series`: label sets of the series matching any `match[]` in the range.
pub fn series(state: &AppState, p: &Params) -> ApiResult {
    let limit = limit_param(p, "limit")?;
    if p.all("match[]").is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = time_range(p)?;
    let sets = match_sets(p)?;
    let q = state.db.querier(start, end)?;
    let mut all: BTreeSet<Labels> = BTreeSet::new();
    for set in &sets {
        for s in q.select(set)? {
            // A series whose every sample in range is deleted no longer exists.
            if s.has_deletions() && s.samples()?.is_empty() {
                continue;
            }
            all.insert(s.labels);
        }
    }
    let mut v: Vec<Labels> = all.into_iter().collect();
    let warnings = apply_limit(&mut v, limit);
    let mut out = String::from("[");
    for (i, l) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::write_labels(&mut out, l);
    }
    out.push(']');
    Ok(Reply::with_warnings(out, warnings))
}

/// `/api/v1/labels`: sorted label names, of all series or of those matching `match[]`.
pub fn labels(state: &AppState, p: &Params) -> ApiResult {
    let limit = limit_param(p, "limit")?;
    let (start, end) = time_range(p)?;
    let sets = match_sets(p)?;
    let q = state.db.querier(start, end)?;
    let mut names: Vec<String> = if sets.is_empty() {
        q.label_names(&[])?
    } else {
        let mut all = BTreeSet::new();
        for set in &sets {
            all.extend(q.label_names(set)?);
        }
        all.into_iter().collect()
    };
    let warnings = apply_limit(&mut names, limit);
    Ok(Reply::with_warnings(json::string_array(&names), warnings))
}

/// Decodes and checks the label name from the path (`%XX` and `U__` escapes).
pub fn label_name_from_path(raw: &str) -> Result<String, ApiError> {
    let decoded = std::str::from_utf8(&super::params::percent_decode(raw.as_bytes(), false))
        .map(str::to_string)
        .map_err(|_| {
            ApiError::bad_data(format!(
                "invalid label name: {:?}",
                form_decode(raw.as_bytes())
            ))
        })?;
    let name = unescape_label_name(&decoded).map_err(ApiError::bad_data)?;
    if name.is_empty() {
        return Err(ApiError::bad_data(format!(
            "invalid label name: {decoded:?}"
        )));
    }
    Ok(name)
}

/// `/api/v1/label/<name>/values`: sorted values of a label.
pub fn label_values(state: &AppState, raw_name: &str, p: &Params) -> ApiResult {
    let name = label_name_from_path(raw_name)?;
    let limit = limit_param(p, "limit")?;
    let (start, end) = time_range(p)?;
    let sets = match_sets(p)?;
    let q = state.db.querier(start, end)?;
    let mut values: Vec<String> = if sets.is_empty() {
        q.label_values(&name, &[])?
    } else {
        let mut all = BTreeSet::new();
        for set in &sets {
            all.extend(q.label_values(&name, set)?);
        }
        all.into_iter().collect()
    };
    let warnings = apply_limit(&mut values, limit);
    Ok(Reply::with_warnings(json::string_array(&values), warnings))
}

/// `/api/v1/metadata`: type, help and unit per metric name, from the head.
pub fn metadata(state: &AppState, p: &Params) -> ApiResult {
    let limit = limit_param(p, "limit")?;
    let per_metric = limit_param(p, "limit_per_metric")?;
    let metric = p.get_nonempty("metric");
    let by_metric: BTreeMap<String, Vec<vigil_storage::record::RefMetadata>> = state
        .db
        .head()
        .metadata_by_metric()
        .into_iter()
        .filter(|(name, _)| metric.is_none_or(|m| m == name))
        .collect();
    let mut out = serde_json::Map::new();
    for (name, mut mds) in by_metric {
        if limit.is_some_and(|n| out.len() >= n) {
            break;
        }
        mds.sort_by(|a, b| {
            (a.metric_type.as_str(), &a.help, &a.unit).cmp(&(
                b.metric_type.as_str(),
                &b.help,
                &b.unit,
            ))
        });
        if let Some(n) = per_metric {
            mds.truncate(n);
        }
        let list: Vec<serde_json::Value> = mds
            .iter()
            .map(|m| {
                serde_json::json!({
                    "type": m.metric_type.as_str(),
                    "help": m.help,
                    "unit": m.unit,
                })
            })
            .collect();
        out.insert(name, serde_json::Value::Array(list));
    }
    Ok(Reply::data(serde_json::Value::Object(out).to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn label_names_from_paths() {
        assert_eq!(label_name_from_path("job").unwrap(), "job");
        assert_eq!(
            label_name_from_path("U__http_2e_status").unwrap(),
            "http.status"
        );
        assert_eq!(
            label_name_from_path("http%2Estatus").unwrap(),
            "http.status"
        );
        assert!(label_name_from_path("U__bad_zz_").is_err());
        assert!(label_name_from_path("%ff").is_err());
    }
}
