//! The agent operator API on `POST /api/v1` (and `/api/v1/operator`):
//! the read-only GET_* calls, LIST_FILES and READ_FILE, and the container
//! calls the default executor uses to run each task of a group in its own
//! nested container (LAUNCH/WAIT/KILL_NESTED_CONTAINER and their newer
//! names LAUNCH/WAIT/KILL_CONTAINER).
//!
//! A nested container lives in its parent executor's sandbox under
//! `containers/<id>`, and in a child cgroup of the executor's group, so the
//! executor's limits bound it and its own usage is accounted apart.

// ExecutorInfo.source, FrameworkInfo.role and the nested container calls
// are deprecated in Mesos, but frameworks and executors still use them.
#![allow(deprecated)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use pando_proto::codec::ContentType;
use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::agent as api;

use crate::agent::{Agent, ExecutorState, NestedContainer};
use crate::containerizer::{self, LaunchSpec};
use crate::http::{self, HttpError};

/// Why an operator call failed (beyond HTTP errors).
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The container already exists.
    #[error("container '{0}' already exists")]
    Exists(String),
}

/// `POST /api/v1`.
pub async fn operator_api(
    State(agent): State<Arc<Agent>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| HttpError::BadRequest("Expecting 'Content-Type' to be present".into()))?;
    let decoder = ContentType::from_content_type(content_type).ok_or_else(|| {
        HttpError::UnsupportedMediaType(
            "Expecting 'Content-Type' of application/json or application/x-protobuf".into(),
        )
    })?;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let encoding = ContentType::negotiate(accept).ok_or_else(|| {
        HttpError::NotAcceptable(
            "Expecting 'Accept' to allow 'application/json' or 'application/x-protobuf'".into(),
        )
    })?;
    let call: api::Call = decoder
        .decode(&body)
        .map_err(|e| HttpError::BadRequest(format!("Failed to parse body into Call: {e}")))?;
    use api::call::Type as C;
    use api::response::Type as R;
    let ok = |response: api::Response| -> Response {
        (
            [(header::CONTENT_TYPE, encoding.mime())],
            encoding.encode(&response),
        )
            .into_response()
    };
    let typed = |t: R| api::Response {
        r#type: Some(t as i32),
        ..Default::default()
    };
    let call_type = C::try_from(call.r#type.unwrap_or(0)).unwrap_or(C::Unknown);
    let response = match call_type {
        C::GetHealth => api::Response {
            get_health: Some(api::response::GetHealth { healthy: true }),
            ..typed(R::GetHealth)
        },
        C::GetFlags => api::Response {
            get_flags: Some(api::response::GetFlags {
                flags: agent
                    .config
                    .flags
                    .to_pairs()
                    .into_iter()
                    .map(|(name, value)| pb::Flag {
                        name: name.into(),
                        value: Some(value),
                    })
                    .collect(),
            }),
            ..typed(R::GetFlags)
        },
        C::GetVersion => api::Response {
            get_version: Some(api::response::GetVersion {
                version_info: pb::VersionInfo {
                    version: pando_proto::MESOS_VERSION.into(),
                    ..Default::default()
                },
            }),
            ..typed(R::GetVersion)
        },
        C::GetMetrics => {
            let doc = http::metrics_document(&agent);
            let metrics = doc
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| pb::Metric {
                            name: k.clone(),
                            value: v.as_f64(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            api::Response {
                get_metrics: Some(api::response::GetMetrics { metrics }),
                ..typed(R::GetMetrics)
            }
        }
        C::GetState => api::Response {
            get_state: Some(api::response::GetState {
                get_tasks: Some(get_tasks(&agent)),
                get_executors: Some(get_executors(&agent)),
                get_frameworks: Some(get_frameworks(&agent)),
            }),
            ..typed(R::GetState)
        },
        C::GetFrameworks => api::Response {
            get_frameworks: Some(get_frameworks(&agent)),
            ..typed(R::GetFrameworks)
        },
        C::GetExecutors => api::Response {
            get_executors: Some(get_executors(&agent)),
            ..typed(R::GetExecutors)
        },
        C::GetTasks => api::Response {
            get_tasks: Some(get_tasks(&agent)),
            ..typed(R::GetTasks)
        },
        C::GetAgent => api::Response {
            get_agent: Some(api::response::GetAgent {
                agent_info: Some(agent.lock().info.clone()),
                ..Default::default()
            }),
            ..typed(R::GetAgent)
        },
        C::GetContainers => {
            let show_nested = call
                .get_containers
                .as_ref()
                .and_then(|g| g.show_nested)
                .unwrap_or(false);
            api::Response {
                get_containers: Some(get_containers(&agent, show_nested)),
                ..typed(R::GetContainers)
            }
        }
        C::ListFiles => {
            let path = call.list_files.map(|l| l.path).unwrap_or_default();
            let entries = http::browse(&agent, &path)?;
            let file_infos = entries
                .iter()
                .map(|e| pb::FileInfo {
                    path: e["path"].as_str().unwrap_or_default().into(),
                    nlink: e["nlink"].as_i64().map(|n| n as i32),
                    size: e["size"].as_u64(),
                    mtime: e["mtime"].as_i64().map(|s| pb::TimeInfo {
                        nanoseconds: s * 1_000_000_000,
                    }),
                    mode: None,
                    uid: e["uid"].as_str().map(str::to_string),
                    gid: e["gid"].as_str().map(str::to_string),
                })
                .collect();
            api::Response {
                list_files: Some(api::response::ListFiles { file_infos }),
                ..typed(R::ListFiles)
            }
        }
        C::ReadFile => {
            let read = call.read_file.ok_or_else(|| {
                HttpError::BadRequest("Expecting 'read_file' to be present".into())
            })?;
            let (data, _) = http::read_file(
                &agent,
                &read.path,
                Some(read.offset as i64),
                read.length.map(|l| l as i64),
            )?;
            let (_, size) = http::read_file(&agent, &read.path, None, None)?;
            api::Response {
                read_file: Some(api::response::ReadFile {
                    size,
                    data: Bytes::from(data),
                }),
                ..typed(R::ReadFile)
            }
        }
        C::LaunchNestedContainer | C::LaunchContainer => {
            let (id, command, resources) = match call_type {
                C::LaunchNestedContainer => {
                    let l = call.launch_nested_container.ok_or_else(|| {
                        HttpError::BadRequest(
                            "Expecting 'launch_nested_container' to be present".into(),
                        )
                    })?;
                    (l.container_id, l.command, Vec::new())
                }
                _ => {
                    let l = call.launch_container.ok_or_else(|| {
                        HttpError::BadRequest("Expecting 'launch_container' to be present".into())
                    })?;
                    (l.container_id, l.command, l.resources)
                }
            };
            return match launch_nested(&agent, id, command, resources).await {
                Ok(()) => Ok(StatusCode::OK.into_response()),
                Err(NestedError::Exists) => Ok(StatusCode::ACCEPTED.into_response()),
                Err(NestedError::Http(e)) => Err(e),
            };
        }
        C::WaitNestedContainer | C::WaitContainer => {
            let id = match call_type {
                C::WaitNestedContainer => call.wait_nested_container.map(|w| w.container_id),
                _ => call.wait_container.map(|w| w.container_id),
            }
            .ok_or_else(|| HttpError::BadRequest("Expecting the container id".into()))?;
            let (exit_status, oom) = wait_nested(&agent, &id).await?;
            let (state, reason, message) = if oom {
                (
                    Some(pb::TaskState::TaskFailed as i32),
                    Some(pb::task_status::Reason::ContainerLimitationMemory as i32),
                    Some("Memory limit exceeded".to_string()),
                )
            } else {
                (None, None, None)
            };
            if call_type == C::WaitNestedContainer {
                api::Response {
                    wait_nested_container: Some(api::response::WaitNestedContainer {
                        exit_status,
                        state,
                        reason,
                        message,
                        limitation: None,
                    }),
                    ..typed(R::WaitNestedContainer)
                }
            } else {
                api::Response {
                    wait_container: Some(api::response::WaitContainer {
                        exit_status,
                        state,
                        reason,
                        message,
                        limitation: None,
                    }),
                    ..typed(R::WaitContainer)
                }
            }
        }
        C::KillNestedContainer | C::KillContainer => {
            let (id, signal) = match call_type {
                C::KillNestedContainer => call
                    .kill_nested_container
                    .map(|k| (k.container_id, k.signal)),
                _ => call.kill_container.map(|k| (k.container_id, k.signal)),
            }
            .ok_or_else(|| HttpError::BadRequest("Expecting the container id".into()))?;
            kill_nested(&agent, &id, signal.unwrap_or(libc::SIGKILL))?;
            return Ok(StatusCode::OK.into_response());
        }
        C::RemoveNestedContainer | C::RemoveContainer => {
            let id = match call_type {
                C::RemoveNestedContainer => call.remove_nested_container.map(|r| r.container_id),
                _ => call.remove_container.map(|r| r.container_id),
            }
            .ok_or_else(|| HttpError::BadRequest("Expecting the container id".into()))?;
            let mut state = agent.lock();
            if state
                .nested
                .get(&id.value)
                .is_some_and(|n| n.exit.is_some())
            {
                state.nested.remove(&id.value);
            }
            return Ok(StatusCode::OK.into_response());
        }
        other => {
            return Err(HttpError::BadRequest(format!(
                "Call type {} is not supported by this agent",
                other.as_str_name()
            )))
        }
    };
    Ok(ok(response))
}

fn get_frameworks(agent: &Agent) -> api::response::GetFrameworks {
    let state = agent.lock();
    api::response::GetFrameworks {
        frameworks: state
            .frameworks
            .values()
            .map(|f| api::response::get_frameworks::Framework {
                framework_info: f.info.clone(),
            })
            .collect(),
        completed_frameworks: state
            .completed_frameworks
            .iter()
            .map(|f| api::response::get_frameworks::Framework {
                framework_info: f.info.clone(),
            })
            .collect(),
    }
}

fn get_executors(agent: &Agent) -> api::response::GetExecutors {
    let state = agent.lock();
    let mut out = api::response::GetExecutors::default();
    for f in state.frameworks.values() {
        for e in f.executors.values() {
            out.executors.push(api::response::get_executors::Executor {
                executor_info: e.info.clone(),
            });
        }
        for e in &f.completed_executors {
            out.completed_executors
                .push(api::response::get_executors::Executor {
                    executor_info: e.info.clone(),
                });
        }
    }
    out
}

fn get_tasks(agent: &Agent) -> api::response::GetTasks {
    let state = agent.lock();
    let mut out = api::response::GetTasks::default();
    let terminal = |s: i32| {
        !matches!(
            pb::TaskState::try_from(s),
            Ok(pb::TaskState::TaskStaging
                | pb::TaskState::TaskStarting
                | pb::TaskState::TaskRunning
                | pb::TaskState::TaskKilling)
        )
    };
    for f in state.frameworks.values() {
        for e in f.executors.values() {
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
            for t in e.tasks.values() {
                if queued.contains(&t.task_id.value) {
                    out.queued_tasks.push(t.clone());
                } else if terminal(t.state) {
                    out.terminated_tasks.push(t.clone());
                } else {
                    out.launched_tasks.push(t.clone());
                }
            }
        }
        for e in &f.completed_executors {
            out.completed_tasks.extend(e.tasks.values().cloned());
        }
    }
    out
}

fn get_containers(agent: &Agent, show_nested: bool) -> api::response::GetContainers {
    let state = agent.lock();
    let mut out = api::response::GetContainers::default();
    for f in state.frameworks.values() {
        for e in f
            .executors
            .values()
            .filter(|e| e.state != ExecutorState::Terminated)
        {
            out.containers
                .push(api::response::get_containers::Container {
                    framework_id: f.info.id.clone(),
                    executor_id: Some(e.info.executor_id.clone()),
                    executor_name: e.info.name.clone(),
                    container_id: pb::ContainerId {
                        value: e.container_id.clone(),
                        parent: None,
                    },
                    container_status: Some(pb::ContainerStatus {
                        container_id: Some(pb::ContainerId {
                            value: e.container_id.clone(),
                            parent: None,
                        }),
                        executor_pid: e.pid,
                        ..Default::default()
                    }),
                    resource_statistics: e.group.as_ref().map(|g| g.usage(&e.limits, e.pid)),
                });
        }
    }
    if show_nested {
        for n in state.nested.values().filter(|n| n.exit.is_none()) {
            out.containers
                .push(api::response::get_containers::Container {
                    framework_id: None,
                    executor_id: None,
                    executor_name: None,
                    container_id: n.id.clone(),
                    container_status: Some(pb::ContainerStatus {
                        container_id: Some(n.id.clone()),
                        executor_pid: n.pid,
                        ..Default::default()
                    }),
                    resource_statistics: n.group.as_ref().map(|g| g.usage(&n.limits, n.pid)),
                });
        }
    }
    out
}

enum NestedError {
    Exists,
    Http(HttpError),
}

impl From<HttpError> for NestedError {
    fn from(e: HttpError) -> NestedError {
        NestedError::Http(e)
    }
}

/// Finds the sandbox and environment of the top-level container that
/// `id` nests in.
fn parent_of(
    agent: &Agent,
    id: &pb::ContainerId,
) -> Result<(std::path::PathBuf, Vec<(String, String)>), HttpError> {
    let parent = id.parent.as_deref().ok_or_else(|| {
        HttpError::BadRequest("A nested container needs a parent container id".into())
    })?;
    let state = agent.lock();
    if let Some(n) = state.nested.get(&parent.value) {
        return Ok((n.directory.clone(), Vec::new()));
    }
    for f in state.frameworks.values() {
        for e in f.executors.values() {
            if e.container_id == parent.value && e.state != ExecutorState::Terminated {
                let env = vec![
                    (
                        "MESOS_FRAMEWORK_ID".to_string(),
                        crate::agent::fw_id(&f.info),
                    ),
                    (
                        "MESOS_EXECUTOR_ID".to_string(),
                        e.info.executor_id.value.clone(),
                    ),
                ];
                return Ok((e.directory.clone(), env));
            }
        }
    }
    Err(HttpError::BadRequest(format!(
        "Parent container '{}' cannot be found",
        parent.value
    )))
}

async fn launch_nested(
    agent: &Arc<Agent>,
    id: pb::ContainerId,
    command: Option<pb::CommandInfo>,
    resources: Vec<pb::Resource>,
) -> Result<(), NestedError> {
    if agent.lock().nested.contains_key(&id.value) {
        return Err(NestedError::Exists);
    }
    let (parent_dir, mut env) = parent_of(agent, &id)?;
    let command =
        command.ok_or_else(|| HttpError::BadRequest("Expecting 'command' to be present".into()))?;
    let directory = parent_dir.join("containers").join(&id.value);
    env.push(("MESOS_SANDBOX".into(), directory.display().to_string()));
    env.push(("MESOS_CONTAINER_ID".into(), id.value.clone()));
    let limits = crate::agent::limits_of(&resources);
    let spec = LaunchSpec {
        container_id: id.clone(),
        sandbox: directory.clone(),
        user: command.user.clone(),
        command,
        env,
        limits,
        base_env: agent.config.executor_env.clone(),
        builtin_executor: false,
    };
    let done = Arc::new(tokio::sync::Notify::new());
    agent.lock().nested.insert(
        id.value.clone(),
        NestedContainer {
            id: id.clone(),
            directory,
            group: None,
            pid: None,
            limits,
            exit: None,
            killed: false,
            oom: false,
            done: Arc::clone(&done),
        },
    );
    let launched = match containerizer::launch(&agent.isolator, &spec).await {
        Ok(l) => l,
        Err(e) => {
            agent.lock().nested.remove(&id.value);
            return Err(NestedError::Http(HttpError::BadRequest(e.to_string())));
        }
    };
    let group = Arc::new(launched.group);
    {
        let mut state = agent.lock();
        if let Some(n) = state.nested.get_mut(&id.value) {
            n.pid = Some(launched.pid);
            n.group = Some(Arc::clone(&group));
        }
    }
    let agent = Arc::clone(agent);
    let mut child = launched.child;
    tokio::spawn(async move {
        use std::os::unix::process::ExitStatusExt;
        let status = child.wait().await.map(|s| s.into_raw()).unwrap_or(-1);
        let oom = group.oom_killed();
        let g = Arc::clone(&group);
        let _ = tokio::task::spawn_blocking(move || g.destroy(Duration::from_secs(10))).await;
        let mut state = agent.lock();
        if let Some(n) = state.nested.get_mut(&id.value) {
            n.exit = Some(status);
            n.oom = oom;
        }
        done.notify_waiters();
    });
    Ok(())
}

async fn wait_nested(
    agent: &Arc<Agent>,
    id: &pb::ContainerId,
) -> Result<(Option<i32>, bool), HttpError> {
    loop {
        let done = {
            let state = agent.lock();
            let n = state.nested.get(&id.value).ok_or_else(|| {
                HttpError::NotFound(format!("Container '{}' cannot be found", id.value))
            })?;
            if let Some(exit) = n.exit {
                return Ok((Some(exit), n.oom));
            }
            Arc::clone(&n.done)
        };
        // Notify has no memory of past wakeups; poll as a backstop.
        let _ = tokio::time::timeout(Duration::from_millis(500), done.notified()).await;
    }
}

fn kill_nested(agent: &Agent, id: &pb::ContainerId, signal: i32) -> Result<(), HttpError> {
    let mut state = agent.lock();
    let n = state
        .nested
        .get_mut(&id.value)
        .ok_or_else(|| HttpError::NotFound(format!("Container '{}' cannot be found", id.value)))?;
    n.killed = true;
    if let Some(pid) = n.pid {
        containerizer::kill_process_group(pid, signal);
    }
    if signal == libc::SIGKILL {
        if let Some(group) = n.group.clone() {
            std::thread::spawn(move || group.kill_all(Duration::from_secs(10)));
        }
    }
    Ok(())
}
