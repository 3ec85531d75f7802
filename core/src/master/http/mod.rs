//! The master's HTTP face: routes, authentication, and the helpers the
//! endpoint modules share.
//!
//! ```text
//!  /api/v1/scheduler ─► scheduler.rs ─┐
//!  /api/v1, /api/v1/operator ─► operator.rs ─┼─► Master (state.rs, one lock)
//!  /master/*, /state, /metrics, /version ─► legacy.rs ─┤
//!  /registry/records/* ─► records.rs (adapter records) ─┘
//! ```
//!
//! Every handler turns the request into one call on [`Master`] and the
//! result into a response; none holds the lock across an `.await`.

// Handlers return early with a ready `Response`; boxing it would only add
// noise to every `?`.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod files;
pub mod legacy;
pub mod operator;
pub mod records;
pub mod scheduler;

use std::convert::Infallible;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, Stream};
use pando_proto::codec::ContentType;
use tokio::sync::mpsc;

use super::handle::MasterHandle;
use super::state::{Master, MasterError};
use auth::Credentials;

pub use super::handle::Disconnect;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The master of this process.
    pub handle: MasterHandle,
    /// The credentials file's contents, when authentication is on.
    pub credentials: Arc<Credentials>,
    /// Seconds between stream heartbeats.
    pub heartbeat: Duration,
    /// The replicated registry, with `--registry=replicated_log`.
    pub registry: Option<pando_registry::ReplicatedRegistry>,
}

impl AppState {
    /// Locks master state, mapping poisoning to a 503.
    pub fn lock(&self) -> Result<MutexGuard<'_, Master>, Response> {
        self.handle.lock().map_err(|e| error_response(&e))
    }
}

/// All routes of the master's HTTP API.
pub fn router(state: AppState, body_limit: usize) -> Router {
    Router::new()
        .route("/api/v1/scheduler", any(scheduler::handle))
        .route("/api/v1", any(operator::handle))
        .route("/api/v1/operator", any(operator::handle))
        .merge(legacy::routes())
        .merge(records::routes())
        .route("/health", get(|| async { StatusCode::OK }))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            leader_only,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Paths a standby master answers itself; everything else needs the
/// leader. Mesos's standby masters redirect nearly every endpoint; the
/// state, flags, version, health and metrics are their own.
fn served_by_standby(path: &str) -> bool {
    let path = path.strip_suffix(".json").unwrap_or(path);
    matches!(
        path,
        "/state"
            | "/master/state"
            | "/master/flags"
            | "/master/health"
            | "/master/redirect"
            | "/master/masters"
            | "/health"
            | "/version"
            | "/metrics/snapshot"
            | "/metrics"
    ) || path.starts_with("/registrar")
}

/// Middleware: a request for the leader that reaches a standby master is
/// redirected (307 with `Location`) or, with no leader, refused (503).
async fn leader_only(
    axum::extract::State(app): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !served_by_standby(request.uri().path()) {
        let refusal = match app.lock() {
            Ok(master) if master.elected => None,
            // The query goes along: `?prefix=` must reach the leader.
            Ok(master) => Some(redirect_to_leader(
                &master,
                request
                    .uri()
                    .path_and_query()
                    .map_or(request.uri().path(), |p| p.as_str()),
            )),
            Err(r) => Some(r),
        };
        if let Some(response) = refusal {
            return response;
        }
    }
    next.run(request).await
}

/// Waits for the registry to hold what the call changed; 503 when this
/// master lost leadership before it did.
pub async fn registered(barrier: super::registrar::Barrier) -> Result<(), Response> {
    if barrier.passed() {
        return Ok(());
    }
    barrier.wait().await.map_err(|e| {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Not the leading master any more: {e}"),
        )
    })
}

/// 307 to `path` on the leading master, as Mesos writes it (a
/// protocol-relative `//host:port/path`), or 503 when no master leads.
pub fn redirect_to_leader(master: &Master, path: &str) -> Response {
    redirect_to(master.leader.as_ref(), path)
}

/// 307 to `path` on `leader`, or 503 when there is none.
pub fn redirect_to(leader: Option<&pando_proto::mesos::v1::MasterInfo>, path: &str) -> Response {
    let Some(leader) = leader else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected");
    };
    let hostname = leader
        .hostname
        .clone()
        .or_else(|| leader.address.as_ref().and_then(|a| a.ip.clone()))
        .unwrap_or_default();
    let path = if path == "/master/redirect" || path == "/redirect" {
        ""
    } else {
        path
    };
    let location = format!("//{hostname}:{}{path}", leader.port);
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A plain-text response, as Mesos gives its errors.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut response = (status, body.into()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The response for a master error.
pub fn error_response(error: &MasterError) -> Response {
    let status = match error {
        MasterError::BadRequest(_) => StatusCode::BAD_REQUEST,
        MasterError::Forbidden(_) => StatusCode::FORBIDDEN,
        MasterError::NotFound(_) => StatusCode::NOT_FOUND,
        MasterError::Conflict(_) => StatusCode::CONFLICT,
        MasterError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    text(status, error.to_string())
}

/// The body's encoding from `Content-Type`, with Mesos's 400 and 415.
pub fn request_content_type(headers: &HeaderMap) -> Result<ContentType, Response> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(text(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present",
        ));
    };
    value
        .to_str()
        .ok()
        .and_then(ContentType::from_content_type)
        .ok_or_else(|| {
            text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expecting 'Content-Type' of application/json or application/x-protobuf",
            )
        })
}

/// Decodes a `Call` body with Mesos's 400 messages: "Failed to parse body
/// into JSON" for bad JSON, "Failed to convert JSON into Call protobuf" for
/// JSON that does not fit, "Failed to parse body into Call protobuf" for bad
/// protobuf.
pub fn decode_call<M: prost::Message + prost::Name + Default>(
    content_type: ContentType,
    body: &[u8],
) -> Result<M, Response> {
    use pando_proto::codec::CodecError;
    use pando_proto::json::JsonError;
    content_type.decode(body).map_err(|e| {
        let message = match e {
            CodecError::Json(JsonError::Syntax(reason)) => {
                format!("Failed to parse body into JSON: {reason}")
            }
            CodecError::Json(JsonError::MissingRequired(fields)) => format!(
                "Failed to convert JSON into Call protobuf: Missing required fields: {}",
                fields.join(", ")
            ),
            CodecError::Json(other) => {
                format!("Failed to convert JSON into Call protobuf: {other}")
            }
            CodecError::Protobuf { .. } | CodecError::MissingRequired(_) => {
                "Failed to parse body into Call protobuf".to_string()
            }
        };
        text(StatusCode::BAD_REQUEST, message)
    })
}

/// Mesos's 405 for a method other than POST, with `Allow: POST`.
pub fn post_only(method: &axum::http::Method) -> Response {
    let mut r = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Expecting one of {{ 'POST' }}, but received '{method}'"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

/// The response encoding from `Accept`, with Mesos's 406.
pub fn response_content_type(headers: &HeaderMap) -> Result<ContentType, Response> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    ContentType::negotiate(accept).ok_or_else(|| {
        text(
            StatusCode::NOT_ACCEPTABLE,
            "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'",
        )
    })
}

/// A message encoded as the client asked, with its `Content-Type`.
pub fn encoded<M: prost::Message + prost::Name>(
    status: StatusCode,
    content_type: ContentType,
    message: &M,
) -> Response {
    let mut response = (status, content_type.encode(message)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type.mime()),
    );
    response
}

/// A RecordIO event stream: each item from `events`, encoded and framed,
/// plus `heartbeat()` whenever `interval` passes without another event.
/// `guard` lives as long as the stream; its drop reports the disconnect.
pub fn event_stream<E, G>(
    events: mpsc::UnboundedReceiver<E>,
    content_type: ContentType,
    interval: Duration,
    heartbeat: fn() -> E,
    guard: G,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send
where
    E: prost::Message + prost::Name + Send + 'static,
    G: Send + 'static,
{
    let ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    stream::unfold(
        (events, ticker, guard),
        move |(mut events, mut ticker, guard)| async move {
            let event = tokio::select! {
                next = events.recv() => next?,
                _ = ticker.tick() => heartbeat(),
            };
            let record = content_type.encode(&event);
            let mut framed = BytesMut::with_capacity(record.len() + 12);
            pando_proto::recordio::encode(&record, &mut framed);
            Some((Ok(framed.freeze()), (events, ticker, guard)))
        },
    )
}

/// A streaming 200 response with the given headers.
pub fn streaming_response(
    content_type: ContentType,
    body: impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
    extra: &[(&'static str, String)],
) -> Response {
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type.mime()),
    );
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(*name, v);
        }
    }
    response
}
