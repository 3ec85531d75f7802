//! `POST /api/v1/scheduler`: the v1 scheduler API.
//!
//! The checks run in Mesos's order, so a client sees the same status code
//! Mesos would give for the same mistake: method (405), `Content-Type`
//! (400 if absent, 415 if neither JSON nor protobuf), the body (400 naming
//! what is wrong), the call's own validity (400), then for SUBSCRIBE the
//! `Accept` header (406) and the absence of `Mesos-Stream-Id` (400). Other
//! calls need a known framework (400), its current connection (403 when it
//! has none) and that connection's `Mesos-Stream-Id` (400). Valid calls
//! answer 202 with an empty body; SUBSCRIBE answers 200 with a RecordIO
//! stream that starts with SUBSCRIBED.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use pando_proto::mesos::v1::scheduler as sched;

use super::super::handle::Reply;
use super::super::scheduler::{CallContext, CallError, ValidatedCall};
use super::auth::Realm;
use super::{
    decode_call, error_response, event_stream, post_only, redirect_to, request_content_type,
    response_content_type, streaming_response, text, AppState,
};

/// The header that ties calls to a SUBSCRIBE connection.
pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

fn heartbeat() -> sched::Event {
    sched::Event {
        r#type: Some(sched::event::Type::Heartbeat as i32),
        ..Default::default()
    }
}

/// The handler: decode, validate, call the master, wait for the registry,
/// encode. What a call means lives in `master/scheduler.rs`.
pub async fn handle(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let flags = match app.lock() {
        Ok(m) => m.flags.clone(),
        Err(r) => return r,
    };
    let principal = match app.credentials.authenticate(
        &headers,
        flags.authenticate_frameworks || flags.authenticate_http_frameworks,
        Realm::Scheduler,
    ) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if method != Method::POST {
        return post_only(&method);
    }
    let content_type = match request_content_type(&headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let call = match decode_call::<sched::Call>(content_type, &body).and_then(|call| {
        ValidatedCall::new(call, principal.as_deref()).map_err(|e| {
            text(
                StatusCode::BAD_REQUEST,
                format!("Failed to validate scheduler::Call: {e}"),
            )
        })
    }) {
        Ok(call) => call,
        Err(r) => {
            app.handle.count_invalid_scheduler_call();
            return r;
        }
    };
    // Mesos negotiates a response type only for the calls that have a
    // response body, after validating the call.
    let accept = if call.has_response_body() {
        match response_content_type(&headers) {
            Ok(a) => Some(a),
            Err(r) => return r,
        }
    } else {
        None
    };
    let context = CallContext {
        stream_id: headers
            .get(STREAM_ID_HEADER)
            .map(|v| v.to_str().unwrap_or("").to_string()),
        principal,
    };
    match app.handle.scheduler_call(&context, call).await {
        Ok(Reply::Subscribed(stream)) => {
            let accept = accept.unwrap_or(pando_proto::codec::ContentType::Json);
            let stream_id = stream.stream_id().to_string();
            let (events, guard) = stream.into_parts();
            let body = event_stream(events, accept, app.heartbeat, heartbeat, guard);
            streaming_response(accept, body, &[(STREAM_ID_HEADER, stream_id)])
        }
        Ok(Reply::Accepted) => StatusCode::ACCEPTED.into_response(),
        Ok(Reply::Updated) => StatusCode::OK.into_response(),
        Err(e) => call_error_response(&e),
    }
}

/// The status code Mesos gives for each refusal, with its message.
fn call_error_response(error: &CallError) -> Response {
    match error {
        CallError::NotLeader { leader } => redirect_to(leader.as_deref(), "/api/v1/scheduler"),
        CallError::StreamIdOnSubscribe => text(StatusCode::BAD_REQUEST, error.to_string()),
        CallError::Refused(e) => error_response(e),
        CallError::Unknown => text(StatusCode::NOT_IMPLEMENTED, error.to_string()),
        CallError::LostLeadership(_) => text(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
    }
}
