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

use super::auth::Realm;
use super::{
    decode_call, error_response, event_stream, post_only, request_content_type,
    response_content_type, streaming_response, text, AppState,
};

/// The header that ties calls to a SUBSCRIBE connection.
pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

/// Reports a closed scheduler stream when dropped.
struct StreamGuard {
    framework_id: String,
    stream_id: String,
    disconnects: tokio::sync::mpsc::UnboundedSender<super::Disconnect>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let _ = self.disconnects.send((
            std::mem::take(&mut self.framework_id),
            std::mem::take(&mut self.stream_id),
        ));
    }
}

fn heartbeat() -> sched::Event {
    sched::Event {
        r#type: Some(sched::event::Type::Heartbeat as i32),
        ..Default::default()
    }
}

/// The handler.
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
    let call: sched::Call = match decode_call(content_type, &body) {
        Ok(call) => call,
        Err(r) => {
            if let Ok(mut m) = app.lock() {
                m.metrics.invalid_scheduler_calls += 1;
            }
            return r;
        }
    };
    if let Err(message) = validate_call(&call, principal.as_deref()) {
        if let Ok(mut m) = app.lock() {
            m.metrics.invalid_scheduler_calls += 1;
        }
        return text(
            StatusCode::BAD_REQUEST,
            format!("Failed to validate scheduler::Call: {message}"),
        );
    }
    let kind = call
        .r#type
        .and_then(|t| sched::call::Type::try_from(t).ok())
        .unwrap_or(sched::call::Type::Unknown);
    let stream_id = headers
        .get(STREAM_ID_HEADER)
        .map(|v| v.to_str().unwrap_or("").to_string());

    if kind == sched::call::Type::Subscribe {
        let accept = match response_content_type(&headers) {
            Ok(a) => a,
            Err(r) => return r,
        };
        if stream_id.is_some() {
            return text(
                StatusCode::BAD_REQUEST,
                "Subscribe calls should not include the 'Mesos-Stream-Id' header",
            );
        }
        let Some(subscribe) = call.subscribe else {
            return text(
                StatusCode::BAD_REQUEST,
                "Expecting 'subscribe' to be present",
            );
        };
        let (subscription, barrier) = match app.lock() {
            Ok(mut m) => {
                *m.metrics
                    .scheduler_calls
                    .entry("SUBSCRIBE".into())
                    .or_default() += 1;
                let subscription = m.subscribe(subscribe, principal.as_deref());
                (subscription, m.registrar.barrier())
            }
            Err(r) => return r,
        };
        // SUBSCRIBED waits in the stream until the registry holds the
        // framework.
        if let Err(r) = super::registered(barrier).await {
            return r;
        }
        let guard = StreamGuard {
            framework_id: subscription.framework_id.clone(),
            stream_id: subscription.stream_id.clone(),
            disconnects: app.disconnects.clone(),
        };
        let body = event_stream(subscription.events, accept, app.heartbeat, heartbeat, guard);
        return streaming_response(accept, body, &[(STREAM_ID_HEADER, subscription.stream_id)]);
    }

    // Mesos negotiates a response type only for the calls that have a
    // response body: SUBSCRIBE and RECONCILE_OPERATIONS.
    if kind == sched::call::Type::ReconcileOperations {
        if let Err(r) = response_content_type(&headers) {
            return r;
        }
    }
    let framework_id = call
        .framework_id
        .as_ref()
        .map(|f| f.value.clone())
        .unwrap_or_default();
    let (result, barrier) = {
        let mut master = match app.lock() {
            Ok(m) => m,
            Err(r) => return r,
        };
        if let Err(e) =
            master.check_stream(&framework_id, stream_id.as_deref(), principal.as_deref())
        {
            return error_response(&e);
        }
        *master
            .metrics
            .scheduler_calls
            .entry(kind.as_str_name().to_string())
            .or_default() += 1;
        use sched::call::Type as T;
        let result = match kind {
            T::Teardown => {
                master.remove_framework(&framework_id);
                Ok(())
            }
            T::Accept => {
                if let Some(accept) = call.accept {
                    master.accept(&framework_id, accept);
                }
                Ok(())
            }
            T::Decline => {
                if let Some(decline) = &call.decline {
                    master.decline(&framework_id, decline);
                }
                Ok(())
            }
            T::AcceptInverseOffers => {
                if let Some(a) = &call.accept_inverse_offers {
                    master.answer_inverse_offers(&framework_id, &a.inverse_offer_ids, true);
                }
                Ok(())
            }
            T::DeclineInverseOffers => {
                if let Some(d) = &call.decline_inverse_offers {
                    master.answer_inverse_offers(&framework_id, &d.inverse_offer_ids, false);
                }
                Ok(())
            }
            T::Revive => {
                let roles = call.revive.map(|r| r.roles).unwrap_or_default();
                master.revive(&framework_id, &roles)
            }
            T::Suppress => {
                let roles = call.suppress.map(|s| s.roles).unwrap_or_default();
                master.suppress(&framework_id, &roles)
            }
            T::Kill => {
                if let Some(kill) = &call.kill {
                    master.kill(&framework_id, kill);
                }
                Ok(())
            }
            T::Shutdown => {
                if let Some(shutdown) = &call.shutdown {
                    master.shutdown_executor(&framework_id, shutdown);
                }
                Ok(())
            }
            T::Acknowledge => {
                if let Some(ack) = &call.acknowledge {
                    master.acknowledge(&framework_id, ack);
                }
                Ok(())
            }
            T::AcknowledgeOperationStatus => {
                // Pando applies offer operations synchronously and sends no
                // operation status updates that need acknowledging.
                Ok(())
            }
            T::ReconcileOperations => {
                if let Some(reconcile) = &call.reconcile_operations {
                    master.reconcile_operations(&framework_id, reconcile);
                }
                Ok(())
            }
            T::Reconcile => {
                if let Some(reconcile) = &call.reconcile {
                    master.reconcile(&framework_id, reconcile);
                }
                Ok(())
            }
            T::Message => {
                if let Some(message) = &call.message {
                    master.message_to_executor(&framework_id, message);
                }
                Ok(())
            }
            T::Request => {
                // Mesos's allocator ignores resource requests; so does Pando's.
                Ok(())
            }
            T::UpdateFramework => match call.update_framework {
                Some(update) => master.update_framework(update),
                None => Ok(()),
            },
            T::Subscribe | T::Unknown => {
                return text(StatusCode::NOT_IMPLEMENTED, "Received 'UNKNOWN' call");
            }
        };
        (result, master.registrar.barrier())
    };
    if let Err(r) = super::registered(barrier).await {
        return r;
    }
    match result {
        Ok(()) if kind == sched::call::Type::UpdateFramework => StatusCode::OK.into_response(),
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => error_response(&e),
    }
}

/// Mesos's `validation::scheduler::call::validate`, with its messages.
fn validate_call(call: &sched::Call, principal: Option<&str>) -> Result<(), String> {
    use sched::call::Type as T;
    let Some(kind) = call.r#type else {
        return Err("Expecting 'type' to be present".into());
    };
    let kind = T::try_from(kind).unwrap_or(T::Unknown);
    if kind == T::Subscribe {
        let Some(subscribe) = &call.subscribe else {
            return Err("Expecting 'subscribe' to be present".into());
        };
        let info = &subscribe.framework_info;
        if info.id != call.framework_id {
            return Err("'framework_id' differs from 'subscribe.framework_info.id'".into());
        }
        if let (Some(p), Some(fp)) = (principal, info.principal.as_deref()) {
            if p != fp {
                return Err(format!(
                    "Authenticated principal '{p}' does not match principal '{fp}' set in `FrameworkInfo`"
                ));
            }
        }
        return Ok(());
    }
    if call.framework_id.is_none() {
        return Err("Expecting 'framework_id' to be present".into());
    }
    let present = |ok: bool, name: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("Expecting '{name}' to be present"))
        }
    };
    match kind {
        T::Accept => present(call.accept.is_some(), "accept"),
        T::Decline => present(call.decline.is_some(), "decline"),
        T::AcceptInverseOffers => present(
            call.accept_inverse_offers.is_some(),
            "accept_inverse_offers",
        ),
        T::DeclineInverseOffers => present(
            call.decline_inverse_offers.is_some(),
            "decline_inverse_offers",
        ),
        T::Kill => present(call.kill.is_some(), "kill"),
        T::Shutdown => present(call.shutdown.is_some(), "shutdown"),
        T::Acknowledge => {
            let Some(ack) = &call.acknowledge else {
                return Err("Expecting 'acknowledge' to be present".into());
            };
            uuid::Uuid::from_slice(&ack.uuid)
                .map(|_| ())
                .map_err(|_| "Not a valid UUID".to_string())
        }
        T::AcknowledgeOperationStatus => {
            let Some(ack) = &call.acknowledge_operation_status else {
                return Err("Expecting 'acknowledge_operation_status' to be present".into());
            };
            uuid::Uuid::from_slice(&ack.uuid).map_err(|_| "Not a valid UUID".to_string())?;
            present(ack.agent_id.is_some(), "agent_id")
        }
        T::Reconcile => present(call.reconcile.is_some(), "reconcile"),
        T::ReconcileOperations => {
            present(call.reconcile_operations.is_some(), "reconcile_operations")
        }
        T::Message => present(call.message.is_some(), "message"),
        T::Request => present(call.request.is_some(), "request"),
        T::UpdateFramework => {
            let Some(update) = &call.update_framework else {
                return Err("Expecting 'update_framework' to be present".into());
            };
            if call.framework_id != update.framework_info.id {
                return Err(
                    "'framework_id' differs from 'update_framework.framework_info.id'".into(),
                );
            }
            Ok(())
        }
        T::Teardown | T::Revive | T::Suppress | T::Unknown | T::Subscribe => Ok(()),
    }
}
