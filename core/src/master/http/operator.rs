//! `POST /api/v1` (and `/api/v1/operator`, where pymesos posts): the v1
//! operator API.
//!
//! Read calls answer 200 with a `master::Response` in the encoding `Accept`
//! asks for. Calls that change state answer 200 when done, or 202 for the
//! reservation and volume calls, as Mesos does. SUBSCRIBE answers with a
//! RecordIO stream: SUBSCRIBED with the whole state, then TASK_ADDED,
//! TASK_UPDATED, AGENT_ADDED, AGENT_REMOVED, FRAMEWORK_ADDED,
//! FRAMEWORK_UPDATED, FRAMEWORK_REMOVED and HEARTBEAT events.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use pando_proto::mesos::v1::master as operator;
use tokio::sync::mpsc;

use super::auth::Realm;
use super::{
    decode_call, encoded, error_response, event_stream, post_only, request_content_type,
    response_content_type, streaming_response, AppState,
};
use crate::master::reservation;
use crate::master::state::{Master, MasterError, OperatorStream};

fn heartbeat() -> operator::Event {
    operator::Event {
        r#type: Some(operator::event::Type::Heartbeat as i32),
        ..Default::default()
    }
}

/// What a call does, once decoded.
enum Outcome {
    /// 200 with this response.
    Response(Box<operator::Response>),
    /// 200 with an empty body.
    Ok,
    /// 202 with an empty body.
    Accepted,
}

/// The handler.
pub async fn handle(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return post_only(&method);
    }
    let content_type = match request_content_type(&headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let accept = match response_content_type(&headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let call: operator::Call = match decode_call(content_type, &body) {
        Ok(call) => call,
        Err(r) => return r,
    };
    let kind = call
        .r#type
        .and_then(|t| operator::call::Type::try_from(t).ok())
        .unwrap_or(operator::call::Type::Unknown);
    // Mesos serves `/api/v1` in its read-write realm, whatever the call:
    // credentials are needed when `--authenticate_http_readwrite` is set.
    let required = match app.lock() {
        Ok(m) => m.flags.authenticate_http_readwrite,
        Err(r) => return r,
    };
    let principal = match app
        .credentials
        .authenticate(&headers, required, Realm::ReadWrite)
    {
        Ok(p) => p,
        Err(r) => return r,
    };

    if kind == operator::call::Type::Subscribe {
        let (sender, events) = mpsc::unbounded_channel();
        {
            let mut master = match app.lock() {
                Ok(m) => m,
                Err(r) => return r,
            };
            let subscribed = operator::Event {
                r#type: Some(operator::event::Type::Subscribed as i32),
                subscribed: Some(operator::event::Subscribed {
                    get_state: Some(master.get_state()),
                    heartbeat_interval_seconds: Some(app.heartbeat.as_secs_f64()),
                }),
                ..Default::default()
            };
            let _ = sender.send(subscribed);
            master.operator_streams.push(OperatorStream { sender });
        }
        let body = event_stream(events, accept, app.heartbeat, heartbeat, ());
        return streaming_response(accept, body, &[]);
    }

    if matches!(
        kind,
        operator::call::Type::ListFiles | operator::call::Type::ReadFile
    ) {
        let path = call
            .list_files
            .as_ref()
            .map(|l| l.path.clone())
            .or(call.read_file.as_ref().map(|r| r.path.clone()));
        let Some(path) = path else {
            let field = if kind == operator::call::Type::ListFiles {
                "list_files"
            } else {
                "read_file"
            };
            return error_response(&MasterError::BadRequest(format!(
                "Expecting '{field}' to be present"
            )));
        };
        let endpoint = match app.lock() {
            Ok(m) => super::files::endpoint_for(&m, &path),
            Err(r) => return r,
        };
        let answer = match endpoint {
            Ok(endpoint) => super::files::forward(&endpoint, &call).await,
            Err(e) => Err(e),
        };
        return match answer {
            Ok(response) => encoded(StatusCode::OK, accept, &response),
            Err(e) => error_response(&e),
        };
    }

    let (outcome, barrier) = {
        let mut master = match app.lock() {
            Ok(m) => m,
            Err(r) => return r,
        };
        let outcome = dispatch(&mut master, kind, call, principal.as_deref());
        (outcome, master.registrar.barrier())
    };
    // "Done" only once the registry holds the change.
    if let Err(r) = super::registered(barrier).await {
        return r;
    }
    match outcome {
        Ok(Outcome::Response(response)) => encoded(StatusCode::OK, accept, response.as_ref()),
        Ok(Outcome::Ok) => StatusCode::OK.into_response(),
        Ok(Outcome::Accepted) => StatusCode::ACCEPTED.into_response(),
        Err(e) => error_response(&e),
    }
}

fn respond(kind: operator::response::Type, fill: impl FnOnce(&mut operator::Response)) -> Outcome {
    let mut response = operator::Response {
        r#type: Some(kind as i32),
        ..Default::default()
    };
    fill(&mut response);
    Outcome::Response(Box::new(response))
}

fn require<T>(field: Option<T>, name: &str) -> Result<T, MasterError> {
    field.ok_or_else(|| MasterError::BadRequest(format!("Expecting '{name}' to be present")))
}

fn dispatch(
    master: &mut Master,
    kind: operator::call::Type,
    call: operator::Call,
    principal: Option<&str>,
) -> Result<Outcome, MasterError> {
    use operator::call::Type as T;
    use operator::response::Type as R;
    Ok(match kind {
        T::GetHealth => respond(R::GetHealth, |r| {
            r.get_health = Some(operator::response::GetHealth { healthy: true })
        }),
        T::GetFlags => {
            let flags = master.get_flags();
            respond(R::GetFlags, |r| r.get_flags = Some(flags))
        }
        T::GetVersion => {
            let version = master.get_version();
            respond(R::GetVersion, |r| r.get_version = Some(version))
        }
        T::GetMetrics => {
            let metrics = master.get_metrics();
            respond(R::GetMetrics, |r| r.get_metrics = Some(metrics))
        }
        T::GetLoggingLevel => {
            let level = master.logging_level();
            respond(R::GetLoggingLevel, |r| {
                r.get_logging_level = Some(operator::response::GetLoggingLevel { level })
            })
        }
        T::SetLoggingLevel => {
            let set = require(call.set_logging_level, "set_logging_level")?;
            master.set_logging_level(set.level, set.duration.nanoseconds);
            Outcome::Ok
        }
        T::ListFiles | T::ReadFile => {
            // Answered above, by the agent whose sandbox the path is in.
            return Err(MasterError::BadRequest("files calls are forwarded".into()));
        }
        T::GetState => {
            let state = master.get_state();
            respond(R::GetState, |r| r.get_state = Some(state))
        }
        T::GetAgents => {
            let agents = master.get_agents();
            respond(R::GetAgents, |r| r.get_agents = Some(agents))
        }
        T::GetFrameworks => {
            let frameworks = master.get_frameworks();
            respond(R::GetFrameworks, |r| r.get_frameworks = Some(frameworks))
        }
        T::GetExecutors => {
            let executors = master.get_executors();
            respond(R::GetExecutors, |r| r.get_executors = Some(executors))
        }
        T::GetTasks => {
            let tasks = master.get_tasks();
            respond(R::GetTasks, |r| r.get_tasks = Some(tasks))
        }
        T::GetRoles => {
            let roles = master.get_roles();
            respond(R::GetRoles, |r| r.get_roles = Some(roles))
        }
        T::GetWeights => {
            let weights = master.get_weights();
            respond(R::GetWeights, |r| r.get_weights = Some(weights))
        }
        T::UpdateWeights => {
            let update = require(call.update_weights, "update_weights")?;
            master.update_weights(&update.weight_infos)?;
            Outcome::Ok
        }
        T::GetMaster => {
            let m = master.get_master();
            respond(R::GetMaster, |r| r.get_master = Some(m))
        }
        T::ReserveResources => {
            let reserve = require(call.reserve_resources, "reserve_resources")?;
            let conversion = reservation::reserve(&reserve.resources, principal)?;
            master.operator_convert(&reserve.agent_id.value, conversion)?;
            Outcome::Accepted
        }
        T::UnreserveResources => {
            let unreserve = require(call.unreserve_resources, "unreserve_resources")?;
            let conversion = reservation::unreserve(&unreserve.resources)?;
            master.operator_convert(&unreserve.agent_id.value, conversion)?;
            Outcome::Accepted
        }
        T::CreateVolumes => {
            let create = require(call.create_volumes, "create_volumes")?;
            let conversion = reservation::volumes(&create.volumes, true)?;
            master.operator_convert(&create.agent_id.value, conversion)?;
            Outcome::Accepted
        }
        T::DestroyVolumes => {
            let destroy = require(call.destroy_volumes, "destroy_volumes")?;
            let conversion = reservation::volumes(&destroy.volumes, false)?;
            master.operator_convert(&destroy.agent_id.value, conversion)?;
            Outcome::Accepted
        }
        T::GetMaintenanceSchedule => {
            let schedule = master.maintenance.clone();
            respond(R::GetMaintenanceSchedule, |r| {
                r.get_maintenance_schedule =
                    Some(operator::response::GetMaintenanceSchedule { schedule })
            })
        }
        T::GetMaintenanceStatus => {
            let status = master.maintenance_status();
            respond(R::GetMaintenanceStatus, |r| {
                r.get_maintenance_status = Some(operator::response::GetMaintenanceStatus { status })
            })
        }
        T::UpdateMaintenanceSchedule => {
            let update = require(
                call.update_maintenance_schedule,
                "update_maintenance_schedule",
            )?;
            master.update_maintenance_schedule(update.schedule)?;
            Outcome::Ok
        }
        T::StartMaintenance => {
            let start = require(call.start_maintenance, "start_maintenance")?;
            master.start_maintenance(&start.machines)?;
            Outcome::Ok
        }
        T::StopMaintenance => {
            let stop = require(call.stop_maintenance, "stop_maintenance")?;
            master.stop_maintenance(&stop.machines)?;
            Outcome::Ok
        }
        T::GetQuota => {
            let quota = master.get_quota();
            respond(R::GetQuota, |r| r.get_quota = Some(quota))
        }
        T::UpdateQuota => {
            let update = require(call.update_quota, "update_quota")?;
            master.update_quota(&update.quota_configs)?;
            Outcome::Ok
        }
        T::Teardown => {
            let teardown = require(call.teardown, "teardown")?;
            master.operator_teardown(&teardown.framework_id.value)?;
            Outcome::Ok
        }
        T::MarkAgentGone => {
            let gone = require(call.mark_agent_gone, "mark_agent_gone")?;
            master.mark_gone(&gone.agent_id.value)?;
            Outcome::Ok
        }
        T::DrainAgent => {
            let drain = require(call.drain_agent, "drain_agent")?;
            let grace = drain
                .max_grace_period
                .map(|d| pando_proto::mesos::v1::DurationInfo {
                    nanoseconds: d.seconds.saturating_mul(1_000_000_000) + i64::from(d.nanos),
                });
            master.drain_agent(
                &drain.agent_id.value,
                grace,
                drain.mark_gone.unwrap_or(false),
            )?;
            Outcome::Ok
        }
        T::DeactivateAgent => {
            let d = require(call.deactivate_agent, "deactivate_agent")?;
            master.set_agent_deactivated(&d.agent_id.value, true)?;
            Outcome::Ok
        }
        T::ReactivateAgent => {
            let r = require(call.reactivate_agent, "reactivate_agent")?;
            master.set_agent_deactivated(&r.agent_id.value, false)?;
            Outcome::Ok
        }
        T::GetOperations => respond(R::GetOperations, |r| {
            r.get_operations = Some(operator::response::GetOperations {
                operations: Vec::new(),
            })
        }),
        T::SetQuota | T::RemoveQuota | T::GrowVolume | T::ShrinkVolume => {
            return Err(MasterError::BadRequest(format!(
                "{} is not supported; use UPDATE_QUOTA or CREATE_VOLUMES/DESTROY_VOLUMES",
                kind.as_str_name()
            )))
        }
        T::Subscribe | T::Unknown => {
            return Err(MasterError::BadRequest(
                "Expecting 'type' to be present".into(),
            ))
        }
    })
}
