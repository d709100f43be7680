//! The Prometheus HTTP API v1 (`/api/v1/...`) and `/federate`: routing by path and method
//! (a wrong method is 405, never 404), reading and merging form parameters, running the
//! synchronous handlers off the async runtime, and turning their results or errors into the
//! JSON envelope with Prometheus' error types and status codes. Handlers live in the
//! submodules by concern; this module never reads storage itself and never panics on input.

pub mod admin;
pub mod ast_json;
pub mod federate;
pub mod json;
pub mod lifecycle;
pub mod params;
pub mod query;
pub mod series;
pub mod slos;
pub mod status;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use parking_lot::RwLock;

use crate::server::{AppState, Resp};
use params::Params;

/// Prometheus' default `--query.timeout`.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(120);
/// Prometheus' default `--query.max-samples`.
pub const DEFAULT_MAX_SAMPLES: usize = 50_000_000;
/// Prometheus' default `--query.lookback-delta` (5m).
pub const DEFAULT_LOOKBACK_DELTA_MS: i64 = 5 * 60 * 1000;
/// Largest form body read for GET+POST endpoints (Go's `ParseForm` reads 10 MB; we allow more).
pub const MAX_FORM_BODY_BYTES: usize = 32 << 20;
/// The JSON content type of every API reply.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// What kind of failure an API error is; decides the HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    BadData,
    Execution,
    Canceled,
    Timeout,
    Internal,
    Unavailable,
    NotFound,
    MethodNotAllowed,
}

impl ErrorType {
    /// The `errorType` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Canceled => "canceled",
            ErrorType::Timeout => "timeout",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
            ErrorType::NotFound => "not_found",
            ErrorType::MethodNotAllowed => "method_not_allowed",
        }
    }

    /// The HTTP status Prometheus answers with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            // 499 "client closed request" (nginx's code, as Prometheus uses).
            ErrorType::Canceled => {
                StatusCode::from_u16(499).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
            }
            ErrorType::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Internal | ErrorType::Unavailable => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::NotFound => StatusCode::NOT_FOUND,
            ErrorType::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

/// An API error: its type and message.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{}: {msg}", kind.as_str())]
pub struct ApiError {
    pub kind: ErrorType,
    pub msg: String,
}

impl ApiError {
    /// An error of a kind.
    pub fn new(kind: ErrorType, msg: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            msg: msg.into(),
        }
    }

    /// A `bad_data` (400) error.
    pub fn bad_data(msg: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::BadData, msg)
    }

    /// An `internal` (500) error.
    pub fn internal(msg: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::Internal, msg)
    }
}

impl From<vigil_storage::Error> for ApiError {
    fn from(e: vigil_storage::Error) -> Self {
        match e {
            vigil_storage::Error::InvalidMatcher(m) => ApiError::bad_data(m),
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// A handler's successful answer.
pub enum Reply {
    /// `{"status":"success","data":<data>}` with annotations.
    Json {
        data: String,
        warnings: Vec<String>,
        infos: Vec<String>,
    },
    /// 204 with an empty body.
    NoContent,
    /// A non-JSON body (federation).
    Text {
        content_type: &'static str,
        body: String,
    },
}

impl Reply {
    /// JSON data without annotations.
    pub fn data(data: impl Into<String>) -> Reply {
        Reply::Json {
            data: data.into(),
            warnings: Vec::new(),
            infos: Vec::new(),
        }
    }

    /// JSON data with warnings.
    pub fn with_warnings(data: impl Into<String>, warnings: Vec<String>) -> Reply {
        Reply::Json {
            data: data.into(),
            warnings,
            infos: Vec::new(),
        }
    }
}

/// The result of a handler.
pub type ApiResult = Result<Reply, ApiError>;

/// The config file as last loaded (or the embedded default).
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    pub yaml: String,
    /// `global.external_labels`, sorted by name (added by `/federate` where absent).
    pub external_labels: Vec<(String, String)>,
    pub success: bool,
    pub last_time_ms: i64,
}

/// API settings from the command line, and the state the lifecycle endpoints change.
pub struct ApiConfig {
    pub query_timeout: Duration,
    pub max_samples: usize,
    pub lookback_delta_ms: i64,
    pub enable_admin_api: bool,
    pub enable_lifecycle: bool,
    /// Every flag with its effective value, as `/api/v1/status/flags` shows them.
    pub flags: BTreeMap<String, String>,
    /// `--config.file`, when given.
    pub config_file: Option<PathBuf>,
    pub config: RwLock<LoadedConfig>,
    /// Notified by `POST /-/quit`; the server shuts down.
    pub quit: tokio::sync::Notify,
    /// Queries the engine stopped because their client went away (or they were canceled
    /// otherwise); exported as `vigil_api_queries_canceled_total`.
    pub queries_canceled: AtomicU64,
    /// Queries being executed now; exported as Prometheus' `prometheus_engine_queries`.
    pub queries_running: AtomicU64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            max_samples: DEFAULT_MAX_SAMPLES,
            lookback_delta_ms: DEFAULT_LOOKBACK_DELTA_MS,
            enable_admin_api: false,
            enable_lifecycle: false,
            flags: BTreeMap::new(),
            config_file: None,
            config: RwLock::new(LoadedConfig {
                yaml: status::DEFAULT_CONFIG_YAML.to_string(),
                external_labels: Vec::new(),
                success: true,
                last_time_ms: vigil_storage::head::now_ms(),
            }),
            quit: tokio::sync::Notify::new(),
            queries_canceled: AtomicU64::new(0),
            queries_running: AtomicU64::new(0),
        }
    }
}

/// Which methods an endpoint takes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Methods {
    GetPost,
    Get,
    PostPut,
}

impl Methods {
    fn allows(self, m: &Method) -> bool {
        match self {
            Methods::GetPost => m == Method::GET || m == Method::POST,
            Methods::Get => m == Method::GET,
            Methods::PostPut => m == Method::POST || m == Method::PUT,
        }
    }
}

/// The API endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Endpoint {
    Query,
    QueryRange,
    QueryExemplars,
    FormatQuery,
    ParseQuery,
    Series,
    Labels,
    LabelValues(String),
    Metadata,
    Targets,
    TargetsMetadata,
    ScrapePools,
    Rules,
    Alerts,
    Alertmanagers,
    Slos,
    Status(&'static str),
    DeleteSeries,
    CleanTombstones,
    Snapshot,
    Federate,
}

fn resolve(path: &str) -> Option<(Endpoint, Methods)> {
    use Endpoint as E;
    use Methods::*;
    if path == "/federate" {
        return Some((E::Federate, Get));
    }
    let rest = path.strip_prefix("/api/v1")?;
    let r = match rest {
        "/query" => (E::Query, GetPost),
        "/query_range" => (E::QueryRange, GetPost),
        "/query_exemplars" => (E::QueryExemplars, GetPost),
        "/format_query" => (E::FormatQuery, GetPost),
        "/parse_query" => (E::ParseQuery, GetPost),
        "/series" => (E::Series, GetPost),
        "/labels" => (E::Labels, GetPost),
        "/metadata" => (E::Metadata, Get),
        "/targets" => (E::Targets, Get),
        "/targets/metadata" => (E::TargetsMetadata, Get),
        "/scrape_pools" => (E::ScrapePools, Get),
        "/rules" => (E::Rules, Get),
        "/alerts" => (E::Alerts, Get),
        "/alertmanagers" => (E::Alertmanagers, Get),
        "/slos" => (E::Slos, GetPost),
        "/status/config" => (E::Status("config"), Get),
        "/status/flags" => (E::Status("flags"), Get),
        "/status/runtimeinfo" => (E::Status("runtimeinfo"), Get),
        "/status/buildinfo" => (E::Status("buildinfo"), Get),
        "/status/tsdb" => (E::Status("tsdb"), Get),
        "/status/walreplay" => (E::Status("walreplay"), Get),
        "/admin/tsdb/delete_series" => (E::DeleteSeries, PostPut),
        "/admin/tsdb/clean_tombstones" => (E::CleanTombstones, PostPut),
        "/admin/tsdb/snapshot" => (E::Snapshot, PostPut),
        _ => {
            let name = rest.strip_prefix("/label/")?.strip_suffix("/values")?;
            if name.is_empty() || name.contains('/') {
                return None;
            }
            (E::LabelValues(name.to_string()), Get)
        }
    };
    Some(r)
}

/// Whether `path` belongs to this module (the server routes it here).
pub fn owns_path(path: &str) -> bool {
    path == "/federate" || path == "/api/v1" || path.starts_with("/api/v1/")
}

/// A JSON reply with a status.
pub fn json_response(status: StatusCode, body: String) -> Resp {
    crate::server::text(status, JSON_CONTENT_TYPE, body)
}

/// The error envelope as a response.
pub fn error_response(e: &ApiError) -> Resp {
    json_response(e.kind.status(), json::error(e.kind.as_str(), &e.msg))
}

/// Serves one API request.
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let Some((endpoint, methods)) = resolve(&path) else {
        return error_response(&ApiError::new(
            ErrorType::NotFound,
            format!("404 page not found: {path}"),
        ));
    };
    if !methods.allows(&method) {
        if endpoint == Endpoint::Federate {
            return crate::server::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "Method Not Allowed\n",
            );
        }
        return error_response(&ApiError::new(
            ErrorType::MethodNotAllowed,
            format!("method {method} not allowed for {path}"),
        ));
    }
    if !state.ready.load(Ordering::Acquire) {
        return crate::server::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "Service Unavailable\n",
        );
    }
    let query_string = req.uri().query().map(str::to_string);
    let body = if method == Method::POST || method == Method::PUT {
        match read_form_body(req).await {
            Ok(b) => b,
            Err(e) => return error_response(&e),
        }
    } else {
        None
    };
    let params = Params::from_parts(body.as_deref(), query_string.as_deref());
    let st = state.clone();
    // hyper drops this future when the client closes the connection; the guard then tells
    // the engine, still running on the blocking pool, to stop.
    let guard = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let cancel = guard.0.clone();
    let result =
        tokio::task::spawn_blocking(move || dispatch(&st, &endpoint, &params, &cancel)).await;
    drop(guard);
    let result = match result {
        Ok(r) => r,
        Err(e) => Err(ApiError::internal(format!("handler failed: {e}"))),
    };
    match result {
        Ok(Reply::Json {
            data,
            warnings,
            infos,
        }) => json_response(StatusCode::OK, json::success(&data, &warnings, &infos)),
        Ok(Reply::NoContent) => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
        Ok(Reply::Text { content_type, body }) => {
            crate::server::text(StatusCode::OK, content_type, body)
        }
        Err(e) if path == "/federate" => crate::server::text(
            e.kind.status(),
            "text/plain; charset=utf-8",
            format!("{}\n", e.msg),
        ),
        Err(e) => error_response(&e),
    }
}

/// Sets its flag when dropped: the query handler's future was dropped (the client went
/// away) or finished.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Reads a form body (any content type but multipart is read as a form, as clients send
/// `application/x-www-form-urlencoded`); bodies of other types are ignored.
async fn read_form_body(req: Request<Incoming>) -> Result<Option<Vec<u8>>, ApiError> {
    let is_form = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false);
    if !is_form {
        return Ok(None);
    }
    let limited = Limited::new(req.into_body(), MAX_FORM_BODY_BYTES);
    match limited.collect().await {
        Ok(c) => Ok(Some(c.to_bytes().to_vec())),
        Err(e) => Err(ApiError::bad_data(format!("reading request body: {e}"))),
    }
}

fn dispatch(state: &AppState, endpoint: &Endpoint, p: &Params, cancel: &AtomicBool) -> ApiResult {
    match endpoint {
        Endpoint::Query => query::instant(state, p, Some(cancel)),
        Endpoint::QueryRange => query::range(state, p, Some(cancel)),
        Endpoint::QueryExemplars => query::exemplars(p),
        Endpoint::FormatQuery => query::format(p),
        Endpoint::ParseQuery => query::parse(p),
        Endpoint::Series => series::series(state, p),
        Endpoint::Labels => series::labels(state, p),
        Endpoint::LabelValues(name) => series::label_values(state, name, p),
        Endpoint::Metadata => series::metadata(state, p),
        Endpoint::Targets => status::targets(state, p),
        Endpoint::TargetsMetadata => status::targets_metadata(p),
        Endpoint::ScrapePools => status::scrape_pools(state),
        Endpoint::Rules => status::rules(state, p),
        Endpoint::Alerts => status::alerts(state),
        Endpoint::Alertmanagers => status::alertmanagers(state),
        Endpoint::Slos => slos::slos(state, p),
        Endpoint::Status(which) => status::status(state, which, p),
        Endpoint::DeleteSeries => admin::delete_series(state, p),
        Endpoint::CleanTombstones => admin::clean_tombstones(state),
        Endpoint::Snapshot => admin::snapshot(state, p),
        Endpoint::Federate => federate::federate(state, p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_methods() {
        let (e, m) =
            resolve("/api/v1/label/job/values").unwrap_or((Endpoint::Query, Methods::PostPut));
        assert_eq!(e, Endpoint::LabelValues("job".into()));
        assert_eq!(m, Methods::Get);
        assert!(resolve("/api/v1/label//values").is_none());
        assert!(resolve("/api/v1/nope").is_none());
        assert!(Methods::GetPost.allows(&Method::POST));
        assert!(!Methods::GetPost.allows(&Method::DELETE));
        assert!(!Methods::Get.allows(&Method::POST));
        assert!(Methods::PostPut.allows(&Method::PUT));
        assert!(owns_path("/api/v1/query"));
        assert!(owns_path("/federate"));
        assert!(!owns_path("/api/v2/alerts"));
    }

    #[test]
    fn error_statuses() {
        assert_eq!(ErrorType::BadData.status(), StatusCode::BAD_REQUEST);
        assert_eq!(ErrorType::Execution.status().as_u16(), 422);
        assert_eq!(ErrorType::Canceled.status().as_u16(), 499);
        assert_eq!(ErrorType::Timeout.status().as_u16(), 503);
        assert_eq!(ErrorType::Unavailable.status().as_u16(), 500);
    }
}
