//! The agent's HTTP face on `--port`: the executor API
//! (`/api/v1/executor`), the operator API (`/api/v1`, see [`crate::operator`]),
//! the state, flags, health, metrics, version and monitor endpoints, and the
//! sandbox file browser (`/files/*`).
//!
//! Handlers decode the wire format, call one [`Agent`] method, and encode
//! the answer; nothing here changes state by itself.

// ExecutorInfo.source, FrameworkInfo.role and the nested container calls
// are deprecated in Mesos, but frameworks and executors still use them.
#![allow(deprecated)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::StreamExt;
use pando_proto::codec::ContentType;
use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::executor as ex;
use pando_proto::task_state::is_terminal;
use pando_proto::{jsonp, MESOS_VERSION};
use pando_resources::{Resource, Resources};
use serde_json::{json, Value};
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::agent::{Agent, AgentError, Executor, Framework};

/// Why an HTTP request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 406.
    #[error("{0}")]
    NotAcceptable(String),
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 503.
    #[error("{0}")]
    Unavailable(String),
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let code = match &self {
            HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::Forbidden(_) => StatusCode::FORBIDDEN,
            HttpError::NotFound(_) => StatusCode::NOT_FOUND,
            HttpError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            HttpError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            HttpError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        (code, self.to_string()).into_response()
    }
}

impl From<AgentError> for HttpError {
    fn from(e: AgentError) -> HttpError {
        match e {
            AgentError::Forbidden(m) => HttpError::Forbidden(m),
            AgentError::Unavailable(m) => HttpError::Unavailable(m),
            other => HttpError::BadRequest(other.to_string()),
        }
    }
}

/// The agent's router.
pub fn router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route("/api/v1/executor", post(executor_api))
        .route("/api/v1", post(crate::operator::operator_api))
        .route("/api/v1/operator", post(crate::operator::operator_api))
        .route("/state", get(state_json))
        .route("/state.json", get(state_json))
        .route("/slave(1)/state", get(state_json))
        .route("/slave(1)/state.json", get(state_json))
        .route("/flags", get(flags_json))
        .route("/slave(1)/flags", get(flags_json))
        .route("/health", get(health))
        .route("/slave(1)/health", get(health))
        .route("/version", get(version))
        .route("/metrics/snapshot", get(metrics_snapshot))
        .route("/monitor/statistics", get(monitor_statistics))
        .route("/monitor/statistics.json", get(monitor_statistics))
        .route("/files/browse", get(files_browse))
        .route("/files/browse.json", get(files_browse))
        .route("/files/read", get(files_read))
        .route("/files/read.json", get(files_read))
        .route("/files/download", get(files_download))
        .route("/files/download.json", get(files_download))
        .route("/files/debug", get(files_debug))
        .route("/files/debug.json", get(files_debug))
        .layer(axum::middleware::from_fn(jsonp))
        .with_state(agent)
}

/// `?jsonp=callback` wraps a JSON answer as `callback(...)`, as Mesos's
/// endpoints do for the web UI, which reads agents across origins. A
/// callback [`jsonp::wrap`] refuses leaves the answer plain JSON.
async fn jsonp(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let callback = Query::<BTreeMap<String, String>>::try_from_uri(request.uri())
        .ok()
        .and_then(|Query(mut query)| query.remove("jsonp"));
    let response = next.run(request).await;
    let Some(callback) = callback else {
        return response;
    };
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_json || response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(collected) = http_body_util::BodyExt::collect(body).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let json = collected.to_bytes();
    let Ok(wrapped) = jsonp::wrap(&callback, &json) else {
        return Response::from_parts(parts, Body::from(json));
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(jsonp::CONTENT_TYPE),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(wrapped))
}

fn json_response(value: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// `POST /api/v1/executor`.
async fn executor_api(
    State(agent): State<Arc<Agent>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    if !agent.is_recovered() {
        return Err(HttpError::Unavailable(
            "Agent has not finished recovery".into(),
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| HttpError::BadRequest("Expecting 'Content-Type' to be present".into()))?;
    let decoder = ContentType::from_content_type(content_type).ok_or_else(|| {
        HttpError::UnsupportedMediaType(
            "Expecting 'Content-Type' of application/json or application/x-protobuf".into(),
        )
    })?;
    let call: ex::Call = decoder
        .decode(&body)
        .map_err(|e| HttpError::BadRequest(format!("Failed to parse body into Call: {e}")))?;
    use ex::call::Type;
    match Type::try_from(call.r#type.unwrap_or(0)).unwrap_or(Type::Unknown) {
        Type::Subscribe => {
            let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
            let encoding = ContentType::negotiate(accept).ok_or_else(|| {
                HttpError::NotAcceptable(
                    "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'"
                        .into(),
                )
            })?;
            let rx = agent.executor_subscribe(&call, encoding)?;
            let stream = UnboundedReceiverStream::new(rx).map(Ok::<Bytes, Infallible>);
            // The stream ends when the executor hangs up; the agent notices
            // the closed channel on its next send.
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, encoding.mime())
                .body(Body::from_stream(stream))
                .map_err(|e| HttpError::BadRequest(e.to_string()))?)
        }
        Type::Update => {
            agent.executor_update(&call)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        Type::Message => {
            agent.executor_message(&call)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        Type::Heartbeat => Ok(StatusCode::ACCEPTED.into_response()),
        Type::Unknown => Err(HttpError::BadRequest(
            "Failed to validate Executor::Call: Expecting 'type' to be present".into(),
        )),
    }
}

/// Mesos's summary object for resources held as protobuf (see
/// [`Resources::summary_json`]); a resource that does not validate is left
/// out rather than the whole object.
fn resources_object(resources: &[pb::Resource]) -> Value {
    Resources::from_resources(
        resources
            .iter()
            .filter_map(|r| Resource::from_proto(r).ok()),
    )
    .summary_json()
}

fn task_json(task: &pb::Task) -> Value {
    let statuses: Vec<Value> = task
        .statuses
        .iter()
        .map(|s| {
            json!({
                "state": state_str(s.state),
                "timestamp": s.timestamp.unwrap_or(0.0),
            })
        })
        .collect();
    json!({
        "id": task.task_id.value,
        "name": task.name,
        "framework_id": task.framework_id.value,
        "executor_id": task.executor_id.as_ref().map(|e| e.value.clone()).unwrap_or_default(),
        "slave_id": task.agent_id.value,
        "state": state_str(task.state),
        "resources": resources_object(&task.resources),
        "role": task
            .resources
            .first()
            .and_then(|r| r.allocation_info.as_ref())
            .and_then(|a| a.role.clone())
            .unwrap_or_else(|| "*".into()),
        "statuses": statuses,
    })
}

fn state_str(state: i32) -> &'static str {
    pb::TaskState::try_from(state)
        .map(|s| s.as_str_name())
        .unwrap_or("TASK_UNKNOWN")
}

fn executor_json(e: &Executor) -> Value {
    let ended = |t: &&pb::Task| is_terminal(t.state);
    let queued: Vec<String> = e
        .queued
        .iter()
        .flat_map(|q| match q {
            crate::agent::Queued::Task(t) => vec![t.task_id.value.clone()],
            crate::agent::Queued::Group(g) => {
                g.tasks.iter().map(|t| t.task_id.value.clone()).collect()
            }
        })
        .collect();
    let tasks: Vec<Value> = e
        .tasks
        .values()
        .filter(|t| !ended(t) && !queued.contains(&t.task_id.value))
        .map(task_json)
        .collect();
    let queued_tasks: Vec<Value> = e
        .tasks
        .values()
        .filter(|t| queued.contains(&t.task_id.value))
        .map(task_json)
        .collect();
    let completed: Vec<Value> = e.tasks.values().filter(ended).map(task_json).collect();
    let mut resources = e.info.resources.clone();
    resources.extend(
        e.tasks
            .values()
            .filter(|t| !ended(t))
            .flat_map(|t| t.resources.clone()),
    );
    json!({
        "id": e.info.executor_id.value,
        "name": e.info.name.clone().unwrap_or_default(),
        "source": e.info.source.clone().unwrap_or_default(),
        "container": e.container_id,
        "directory": e.directory.display().to_string(),
        "type": if e.default_executor { "DEFAULT" } else { "CUSTOM" },
        "resources": resources_object(&resources),
        "tasks": tasks,
        "queued_tasks": queued_tasks,
        "completed_tasks": completed,
    })
}

fn framework_json(f: &Framework) -> Value {
    json!({
        "id": f.info.id.as_ref().map(|i| i.value.clone()).unwrap_or_default(),
        "name": f.info.name,
        "user": f.info.user,
        "failover_timeout": f.info.failover_timeout.unwrap_or(0.0),
        "checkpoint": f.info.checkpoint.unwrap_or(false),
        "hostname": f.info.hostname.clone().unwrap_or_default(),
        "role": f.info.role.clone().unwrap_or_else(|| "*".into()),
        "roles": f.info.roles,
        "executors": f.executors.values().map(executor_json).collect::<Vec<_>>(),
        "completed_executors": f.completed_executors.iter().map(executor_json).collect::<Vec<_>>(),
    })
}

/// The `/state` document, as a Mesos agent writes it.
pub fn state_document(agent: &Agent) -> Value {
    let state = agent.lock();
    let attributes: serde_json::Map<String, Value> = state
        .info
        .attributes
        .iter()
        .map(|a| {
            let value = if let Some(t) = &a.text {
                json!(t.value)
            } else if let Some(s) = &a.scalar {
                json!(s.value)
            } else {
                Value::Null
            };
            (a.name.clone(), value)
        })
        .collect();
    let flags: serde_json::Map<String, Value> = agent
        .config
        .flags
        .to_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let mut doc = json!({
        "version": MESOS_VERSION,
        "pando_version": env!("CARGO_PKG_VERSION"),
        "start_time": agent.start_time,
        "id": state.info.id.as_ref().map(|i| i.value.clone()).unwrap_or_default(),
        "pid": format!("slave(1)@{}", agent.endpoint),
        "hostname": state.info.hostname,
        "port": agent.endpoint.port(),
        "resources": resources_object(&state.info.resources),
        "attributes": attributes,
        "flags": flags,
        "frameworks": state.frameworks.values().map(framework_json).collect::<Vec<_>>(),
        "completed_frameworks": state.completed_frameworks.iter().map(framework_json).collect::<Vec<_>>(),
        "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
        "build_date": "",
        "build_time": 0,
        "build_user": "",
    });
    // Resources by reservation, as Mesos splits them.
    let total = &state.info.resources;
    let unreserved: Vec<pb::Resource> = total
        .iter()
        .filter(|r| r.reservations.is_empty())
        .cloned()
        .collect();
    let mut reserved: BTreeMap<String, Vec<pb::Resource>> = BTreeMap::new();
    for r in total.iter().chain(state.checkpointed_resources.iter()) {
        if let Some(role) = r.reservations.last().and_then(|res| res.role.clone()) {
            reserved.entry(role).or_default().push(r.clone());
        }
    }
    let proto_json = |r: &pb::Resource| {
        serde_json::from_str::<Value>(&pando_proto::json::to_json(r)).unwrap_or(Value::Null)
    };
    doc["unreserved_resources"] = resources_object(&unreserved);
    doc["unreserved_resources_full"] = Value::Array(unreserved.iter().map(proto_json).collect());
    doc["reserved_resources"] = Value::Object(
        reserved
            .iter()
            .map(|(role, rs)| (role.clone(), resources_object(rs)))
            .collect(),
    );
    doc["reserved_resources_full"] = Value::Object(
        reserved
            .iter()
            .map(|(role, rs)| {
                (
                    role.clone(),
                    Value::Array(rs.iter().map(proto_json).collect()),
                )
            })
            .collect(),
    );
    if let Some(master) = &state.master {
        doc["master_hostname"] = json!(master.hostname.clone().unwrap_or_default());
    }
    doc
}

async fn state_json(State(agent): State<Arc<Agent>>) -> Response {
    json_response(state_document(&agent))
}

async fn flags_json(State(agent): State<Arc<Agent>>) -> Response {
    let flags: serde_json::Map<String, Value> = agent
        .config
        .flags
        .to_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json_response(json!({ "flags": flags }))
}

async fn health() -> StatusCode {
    StatusCode::OK
}

/// The `/version` document.
pub fn version_document() -> Value {
    json!({
        "version": MESOS_VERSION,
        "build_date": "",
        "build_time": 0,
        "build_user": "",
        "git_sha": "",
        "pando_version": env!("CARGO_PKG_VERSION"),
    })
}

async fn version() -> Response {
    json_response(version_document())
}

/// The `/metrics/snapshot` document (agent metrics with Mesos names).
pub fn metrics_document(agent: &Agent) -> Value {
    let state = agent.lock();
    let mut running = 0u64;
    let mut staging = 0u64;
    let mut starting = 0u64;
    let mut executors_running = 0u64;
    let mut executors_registering = 0u64;
    let mut used: BTreeMap<String, f64> = BTreeMap::new();
    for f in state.frameworks.values() {
        for e in f.executors.values() {
            match e.state {
                crate::agent::ExecutorState::Registering => executors_registering += 1,
                crate::agent::ExecutorState::Running => executors_running += 1,
                _ => {}
            }
            for t in e.tasks.values() {
                match pb::TaskState::try_from(t.state) {
                    Ok(pb::TaskState::TaskRunning) => running += 1,
                    Ok(pb::TaskState::TaskStaging) => staging += 1,
                    Ok(pb::TaskState::TaskStarting) => starting += 1,
                    _ => continue,
                }
                for r in &t.resources {
                    if let Some(s) = &r.scalar {
                        *used.entry(r.name.clone()).or_default() += s.value;
                    }
                }
            }
        }
    }
    let mut doc = serde_json::Map::new();
    let mut put = |k: &str, v: f64| {
        doc.insert(k.to_string(), json!(v));
    };
    put("slave/registered", if state.registered { 1.0 } else { 0.0 });
    put(
        "slave/uptime_secs",
        crate::cgroups::now_secs() - agent.start_time,
    );
    put("slave/frameworks_active", state.frameworks.len() as f64);
    put("slave/tasks_running", running as f64);
    put("slave/tasks_staging", staging as f64);
    put("slave/tasks_starting", starting as f64);
    for (name, key) in [
        ("TASK_FINISHED", "slave/tasks_finished"),
        ("TASK_FAILED", "slave/tasks_failed"),
        ("TASK_KILLED", "slave/tasks_killed"),
        ("TASK_LOST", "slave/tasks_lost"),
        ("TASK_GONE", "slave/tasks_gone"),
    ] {
        put(key, *state.metrics.tasks.get(name).unwrap_or(&0) as f64);
    }
    put("slave/executors_running", executors_running as f64);
    put("slave/executors_registering", executors_registering as f64);
    put(
        "slave/executors_launched",
        state.metrics.executors_launched as f64,
    );
    put(
        "slave/valid_status_updates",
        state.metrics.valid_status_updates as f64,
    );
    put(
        "slave/invalid_status_updates",
        state.metrics.invalid_status_updates as f64,
    );
    put(
        "slave/valid_framework_messages",
        state.metrics.valid_framework_messages as f64,
    );
    put(
        "slave/recovery_errors",
        state.metrics.recovery_errors as f64,
    );
    for name in ["cpus", "mem", "disk", "gpus"] {
        let total: f64 = state
            .info
            .resources
            .iter()
            .filter(|r| r.name == name)
            .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
            .sum();
        let u = used.get(name).copied().unwrap_or(0.0);
        put(&format!("slave/{name}_total"), total);
        put(&format!("slave/{name}_used"), u);
        put(
            &format!("slave/{name}_percent"),
            if total > 0.0 { u / total } else { 0.0 },
        );
    }
    Value::Object(doc)
}

async fn metrics_snapshot(State(agent): State<Arc<Agent>>) -> Response {
    json_response(metrics_document(&agent))
}

/// One entry per live executor with its container's usage.
pub fn monitor_document(agent: &Agent) -> Value {
    let state = agent.lock();
    let mut out = Vec::new();
    for f in state.frameworks.values() {
        for e in f.executors.values() {
            let stats = e
                .group
                .as_ref()
                .map(|g| g.usage(&e.limits, e.pid))
                .unwrap_or_default();
            out.push(json!({
                "executor_id": e.info.executor_id.value,
                "executor_name": e.info.name.clone().unwrap_or_default(),
                "framework_id": f.info.id.as_ref().map(|i| i.value.clone()).unwrap_or_default(),
                "source": e.info.source.clone().unwrap_or_default(),
                "container_id": e.container_id,
                "statistics": serde_json::from_str::<Value>(&pando_proto::json::to_json(&stats)).unwrap_or(Value::Null),
            }));
        }
    }
    Value::Array(out)
}

async fn monitor_statistics(State(agent): State<Arc<Agent>>) -> Response {
    json_response(monitor_document(&agent))
}

// ----- files ---------------------------------------------------------------

/// Why a file path was refused.
fn forbidden_path(path: &str) -> HttpError {
    HttpError::NotFound(format!("Failed to find '{path}'"))
}

/// Resolves a `/files` path to a real file inside some sandbox. `..`
/// components are refused outright, and the real path (symlinks resolved)
/// must stay under the sandboxes root.
pub fn resolve_sandbox_path(agent: &Agent, path: &str) -> Result<PathBuf, HttpError> {
    let requested = Path::new(path);
    if requested
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return Err(HttpError::BadRequest(format!(
            "'{path}' must not contain '..'"
        )));
    }
    let root = agent.config.flags.work_dir.join("slaves");
    let root = root.canonicalize().map_err(|_| forbidden_path(path))?;
    let candidate = if requested.is_absolute() {
        requested.to_path_buf()
    } else {
        root.join(requested)
    };
    let real = candidate.canonicalize().map_err(|_| forbidden_path(path))?;
    if !real.starts_with(&root) {
        return Err(forbidden_path(path));
    }
    Ok(real)
}

fn query_path(query: &BTreeMap<String, String>) -> Result<String, HttpError> {
    query
        .get("path")
        .cloned()
        .ok_or_else(|| HttpError::BadRequest("Expecting 'path=value' in query".into()))
}

/// One `/files/browse` entry.
pub fn file_entry(path: &Path) -> Option<Value> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).ok()?;
    let mode = meta.mode();
    Some(json!({
        "path": path.display().to_string(),
        "size": meta.size(),
        "mtime": meta.mtime(),
        "mode": mode_string(mode, meta.is_dir()),
        "nlink": meta.nlink(),
        "uid": crate::containerizer::user_name(meta.uid()),
        "gid": crate::containerizer::group_name(meta.gid()),
    }))
}

fn mode_string(mode: u32, dir: bool) -> String {
    let mut s = String::from(if dir { "d" } else { "-" });
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// Lists a sandbox directory.
pub fn browse(agent: &Agent, path: &str) -> Result<Vec<Value>, HttpError> {
    let real = resolve_sandbox_path(agent, path)?;
    let entries = std::fs::read_dir(&real).map_err(|_| forbidden_path(path))?;
    let mut out: Vec<Value> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            file_entry(&Path::new(path).join(e.file_name())).map(|mut v| {
                // Sizes and modes come from the real file.
                if let Some(real_entry) = file_entry(&e.path()) {
                    v["size"] = real_entry["size"].clone();
                    v["mode"] = real_entry["mode"].clone();
                    v["mtime"] = real_entry["mtime"].clone();
                }
                v
            })
        })
        .collect();
    out.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    Ok(out)
}

/// Reads part of a sandbox file: `(data, offset)`. A negative or missing
/// offset returns the file's size and no data, as Mesos does.
pub fn read_file(
    agent: &Agent,
    path: &str,
    offset: Option<i64>,
    length: Option<i64>,
) -> Result<(Vec<u8>, u64), HttpError> {
    use std::io::{Read, Seek, SeekFrom};
    let real = resolve_sandbox_path(agent, path)?;
    if real.is_dir() {
        return Err(HttpError::BadRequest("Cannot read a directory".into()));
    }
    let mut file = std::fs::File::open(&real).map_err(|_| forbidden_path(path))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let Some(offset) = offset.filter(|o| *o >= 0) else {
        return Ok((Vec::new(), size));
    };
    let offset = (offset as u64).min(size);
    let max = length
        .filter(|l| *l >= 0)
        .map(|l| l as u64)
        .unwrap_or(size - offset)
        .min(16 * 1024 * 1024);
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| HttpError::BadRequest(e.to_string()))?;
    let mut data = Vec::new();
    file.take(max)
        .read_to_end(&mut data)
        .map_err(|e| HttpError::BadRequest(e.to_string()))?;
    Ok((data, offset))
}

async fn files_browse(
    State(agent): State<Arc<Agent>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, HttpError> {
    let path = query_path(&query)?;
    Ok(json_response(Value::Array(browse(&agent, &path)?)))
}

async fn files_read(
    State(agent): State<Arc<Agent>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, HttpError> {
    let path = query_path(&query)?;
    let parse = |k: &str| -> Result<Option<i64>, HttpError> {
        query
            .get(k)
            .map(|v| {
                v.parse()
                    .map_err(|_| HttpError::BadRequest(format!("Failed to parse {k}: '{v}'")))
            })
            .transpose()
    };
    let (data, offset) = read_file(
        &agent,
        &path,
        parse("offset")?.or(Some(-1)),
        parse("length")?,
    )?;
    let text = String::from_utf8_lossy(&data).into_owned();
    Ok(json_response(json!({ "data": text, "offset": offset })))
}

async fn files_download(
    State(agent): State<Arc<Agent>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Response, HttpError> {
    let path = query_path(&query)?;
    let real = resolve_sandbox_path(&agent, &path)?;
    if real.is_dir() {
        return Err(HttpError::BadRequest("Cannot download a directory".into()));
    }
    let data = tokio::fs::read(&real)
        .await
        .map_err(|_| forbidden_path(&path))?;
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        data,
    )
        .into_response())
}

async fn files_debug(State(agent): State<Arc<Agent>>) -> Response {
    let state = agent.lock();
    let mut map = serde_json::Map::new();
    for f in state.frameworks.values() {
        for e in f.executors.values() {
            let dir = e.directory.display().to_string();
            map.insert(dir.clone(), json!(dir));
        }
    }
    json_response(Value::Object(map))
}
