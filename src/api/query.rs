//! Query endpoints: `/api/v1/query`, `/api/v1/query_range`, `/api/v1/query_exemplars`,
//! `/api/v1/format_query` and `/api/v1/parse_query`. Validates parameters in Prometheus' order and with its messages
//! (time, timeout, lookback delta, the range grid and its 11,000-point cap), hands the
//! query to the PromQL engine and encodes its result. Never evaluates PromQL itself.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vigil_promql::engine::{Engine, EngineOpts, Error as EngineError, QueryResult, Value};
use vigil_promql::parser::{parse_expr, prettify};

use super::params::{
    apply_limit, duration_param, invalid_param, limit_param, time_param, Params, MAX_TIME_MS,
    MIN_TIME_MS,
};
use super::{json, ApiConfig, ApiError, ApiResult, ErrorType, Reply};
use crate::server::AppState;

/// Prometheus' cap on the points of one range-query series.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// A validated query request.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryRequest {
    pub query: String,
    /// Instant: start == end and step == 0.
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
    /// Effective timeout (the smaller of `timeout` and `--query.timeout`).
    pub timeout_ms: i64,
    pub lookback_delta_ms: i64,
    pub limit: Option<usize>,
    pub stats: Option<String>,
}

fn now_ms() -> i64 {
    vigil_storage::head::now_ms()
}

fn common(
    cfg: &ApiConfig,
    p: &Params,
) -> Result<(i64, i64, Option<usize>, Option<String>), ApiError> {
    let server_timeout = i64::try_from(cfg.query_timeout.as_millis()).unwrap_or(i64::MAX);
    let timeout = match duration_param(p, "timeout")? {
        Some(t) => t.min(server_timeout),
        None => server_timeout,
    };
    let lookback = match duration_param(p, "lookback_delta")? {
        Some(l) if l > 0 => l,
        _ => cfg.lookback_delta_ms,
    };
    let limit = limit_param(p, "limit")?;
    let stats = p.get_nonempty("stats").map(str::to_string);
    Ok((timeout, lookback, limit, stats))
}

/// Validates an instant query request.
pub fn instant_request(cfg: &ApiConfig, p: &Params) -> Result<QueryRequest, ApiError> {
    let limit = limit_param(p, "limit")?;
    let ts = time_param(p, "time", now_ms())?;
    let (timeout_ms, lookback_delta_ms, _, stats) = common(cfg, p)?;
    let query = p.get("query").unwrap_or("").to_string();
    check_query(&query)?;
    Ok(QueryRequest {
        query,
        start_ms: ts,
        end_ms: ts,
        step_ms: 0,
        timeout_ms,
        lookback_delta_ms,
        limit,
        stats,
    })
}

/// Validates a range query request.
pub fn range_request(cfg: &ApiConfig, p: &Params) -> Result<QueryRequest, ApiError> {
    let limit = limit_param(p, "limit")?;
    let start = required_time(p, "start")?;
    let end = required_time(p, "end")?;
    if end < start {
        return Err(invalid_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step = match duration_param(p, "step")? {
        Some(s) => s,
        None => {
            return Err(invalid_param(
                "step",
                "cannot parse \"\" to a valid duration",
            ))
        }
    };
    if step <= 0 {
        return Err(invalid_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    // (end - start) / step in whole steps; the first point is k = 0, so 11,001 points pass.
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let (timeout_ms, lookback_delta_ms, _, stats) = common(cfg, p)?;
    let query = p.get("query").unwrap_or("").to_string();
    check_query(&query)?;
    Ok(QueryRequest {
        query,
        start_ms: start,
        end_ms: end,
        step_ms: step,
        timeout_ms,
        lookback_delta_ms,
        limit,
        stats,
    })
}

fn required_time(p: &Params, name: &str) -> Result<i64, ApiError> {
    match p.get_nonempty(name) {
        Some(_) => time_param(p, name, 0),
        None => Err(invalid_param(
            name,
            format!("Invalid time value for '{name}': cannot parse \"\" to a valid timestamp"),
        )),
    }
}

/// Parses the query so that syntax errors are `bad_data` with Prometheus' wording.
fn check_query(query: &str) -> Result<(), ApiError> {
    parse_expr(query)
        .map(|_| ())
        .map_err(|e| invalid_param("query", e))
}

/// `/api/v1/query`; the engine stops with `canceled` (499) once `cancel` is set.
pub fn instant(state: &AppState, p: &Params, cancel: Option<&AtomicBool>) -> ApiResult {
    let req = instant_request(&state.api, p)?;
    evaluate(state, &req, cancel)
}

/// `/api/v1/query_range`; the engine stops with `canceled` (499) once `cancel` is set.
pub fn range(state: &AppState, p: &Params, cancel: Option<&AtomicBool>) -> ApiResult {
    let req = range_request(&state.api, p)?;
    evaluate(state, &req, cancel)
}

/// Maps an engine error to the API error Prometheus gives for it.
pub fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::Parse(p) => invalid_param("query", p),
        EngineError::BadQuery(m) => invalid_param("query", m),
        EngineError::Execution(m) => ApiError::new(ErrorType::Execution, m),
        e @ EngineError::TooManySamples => ApiError::new(ErrorType::Execution, e.to_string()),
        e @ EngineError::Timeout => ApiError::new(ErrorType::Timeout, e.to_string()),
        e @ EngineError::Canceled => ApiError::new(ErrorType::Canceled, e.to_string()),
        EngineError::Storage(s) => ApiError::internal(s.to_string()),
    }
}

/// Counts a query as running until dropped.
struct RunningQuery<'a>(&'a AtomicU64);

impl<'a> RunningQuery<'a> {
    fn start(c: &'a AtomicU64) -> Self {
        c.fetch_add(1, Ordering::Relaxed);
        RunningQuery(c)
    }
}

impl Drop for RunningQuery<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs a validated query on the PromQL engine and encodes the result.
fn evaluate(state: &AppState, req: &QueryRequest, cancel: Option<&AtomicBool>) -> ApiResult {
    let engine = Engine::new(EngineOpts {
        timeout: Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0)),
        max_samples: state.api.max_samples,
        lookback_delta_ms: req.lookback_delta_ms,
        ..EngineOpts::default()
    });
    let started = Instant::now();
    let _running = RunningQuery::start(&state.api.queries_running);
    // `range_request` has checked the grid; step 0 means an instant query.
    let res = engine
        .exec(
            state.db.as_ref(),
            &req.query,
            req.start_ms,
            req.end_ms,
            req.step_ms,
            cancel,
        )
        .map_err(|e| {
            if matches!(e, EngineError::Canceled) {
                state.api.queries_canceled.fetch_add(1, Ordering::Relaxed);
                tracing::info!(query = %req.query, "query canceled: the client went away");
            }
            engine_error(e)
        })?;
    let eval_secs = started.elapsed().as_secs_f64();
    let QueryResult {
        value,
        mut warnings,
        infos,
        stats,
    } = res;
    let mut data = match value {
        Value::Scalar { t, v } => json::scalar_result(t, v),
        Value::String { t, v } => json::string_result(t, &v),
        Value::Vector(mut samples) => {
            warnings.extend(apply_limit(&mut samples, req.limit));
            json::vector_result(samples.iter().map(|s| (&s.labels, s.t, s.v)))
        }
        Value::Matrix(mut series) => {
            warnings.extend(apply_limit(&mut series, req.limit));
            json::matrix_result(
                series
                    .iter()
                    .map(|s| (&s.labels, s.points.iter().map(|p| (p.t, p.v)))),
            )
        }
    };
    if req.stats.is_some() {
        let total = started.elapsed().as_secs_f64();
        let stats_json = serde_json::json!({
            "timings": {
                "evalTotalTime": eval_secs,
                "resultSortTime": 0.0,
                "queryPreparationTime": 0.0,
                "innerEvalTime": eval_secs,
                "execQueueTime": 0.0,
                "execTotalTime": total,
            },
            "samples": {
                "totalQueryableSamples": stats.samples_read,
                "peakSamples": stats.samples_read,
            },
        });
        // `data` is an object ending in `}`: add the stats member before it.
        data.pop();
        data.push_str(",\"stats\":");
        data.push_str(&stats_json.to_string());
        data.push('}');
    }
    Ok(Reply::Json {
        data,
        warnings,
        infos,
    })
}

/// `/api/v1/query_exemplars`: Vigil's storage keeps no exemplars yet, so a valid request
/// always finds none.
pub fn exemplars(p: &Params) -> ApiResult {
    let start = time_param(p, "start", MIN_TIME_MS)?;
    let end = time_param(p, "end", MAX_TIME_MS)?;
    if end < start {
        return Err(invalid_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    check_query(p.get("query").unwrap_or(""))?;
    Ok(Reply::data("[]"))
}

/// `/api/v1/format_query`: the canonical, pretty-printed form of the query.
pub fn format(p: &Params) -> ApiResult {
    let q = p.get("query").unwrap_or("");
    let expr = parse_expr(q).map_err(|e| invalid_param("query", e))?;
    let mut out = String::new();
    json::write_str(&mut out, &prettify(&expr));
    Ok(Reply::data(out))
}

/// `/api/v1/parse_query`: the query's syntax tree as Prometheus' JSON AST.
pub fn parse(p: &Params) -> ApiResult {
    let q = p.get("query").unwrap_or("");
    let expr = parse_expr(q).map_err(|e| invalid_param("query", e))?;
    Ok(Reply::data(super::ast_json::translate(&expr)?.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(s: &str) -> Params {
        Params::from_parts(None, Some(s))
    }

    fn state() -> ApiConfig {
        ApiConfig::default()
    }

    #[test]
    fn range_grid_validation() {
        let st = state();
        let r = range_request(
            &st,
            &p("query=vector(1)&start=1724000400&end=1724004000&step=15"),
        )
        .unwrap();
        assert_eq!(
            (r.start_ms, r.end_ms, r.step_ms),
            (1_724_000_400_000, 1_724_004_000_000, 15_000)
        );
        let e = range_request(&st, &p("query=1&start=0&end=11001&step=1")).unwrap_err();
        assert!(
            e.msg
                .starts_with("exceeded maximum resolution of 11,000 points"),
            "{}",
            e.msg
        );
        assert!(range_request(&st, &p("query=1&start=0&end=11000&step=1")).is_ok());
        let e = range_request(&st, &p("query=1&start=0&end=10&step=0")).unwrap_err();
        assert_eq!(
            e.msg,
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"
        );
        let e = range_request(&st, &p("query=1&start=10&end=0&step=1")).unwrap_err();
        assert_eq!(
            e.msg,
            "invalid parameter \"end\": end timestamp must not be before start time"
        );
        let r = range_request(
            &st,
            &p("query=1&start=1724000000.5&end=1724000010.5&step=0.5"),
        )
        .unwrap();
        assert_eq!((r.end_ms - r.start_ms) / r.step_ms + 1, 21);
        assert!(range_request(
            &st,
            &p("query=1&start=2024-08-18T16:53:20Z&end=1724000060&step=1m")
        )
        .is_ok());
    }

    #[test]
    fn instant_validation() {
        let st = state();
        let r = instant_request(&st, &p("query=1%2B1&time=4&timeout=2m0s")).unwrap();
        assert_eq!(r.start_ms, 4000);
        assert_eq!(r.timeout_ms, 120_000);
        let r = instant_request(&st, &p("query=1&time=1724000000.123456&timeout=1ms")).unwrap();
        assert_eq!(r.start_ms, 1_724_000_000_123);
        assert_eq!(r.timeout_ms, 1);
        let e = instant_request(&st, &p("query=1&time=abc")).unwrap_err();
        assert_eq!(
            e.msg,
            "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"abc\" to a valid timestamp"
        );
        let e = instant_request(&st, &p("query=1&timeout=abc")).unwrap_err();
        assert!(
            e.msg.starts_with("invalid parameter \"timeout\""),
            "{}",
            e.msg
        );
        let e = instant_request(&st, &p("query=sum(")).unwrap_err();
        assert_eq!(e.kind, ErrorType::BadData);
        assert!(
            e.msg
                .starts_with("invalid parameter \"query\": 1:5: parse error"),
            "{}",
            e.msg
        );
    }

    #[test]
    fn format_query_prints_canonically() {
        match format(&p("query=sum(rate(x%5B5m%5D))by(job)")).unwrap() {
            Reply::Json { data, .. } => assert_eq!(data, "\"sum by (job) (rate(x[5m]))\""),
            _ => panic!("not json"),
        }
        assert!(format(&p("query=sum(")).is_err());
    }
}
