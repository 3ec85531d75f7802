//! `pando execute`: one command as one task, through the real scheduler
//! API, in the manner of `mesos-execute`.
//!
//! ```text
//!  SUBSCRIBE ──► SUBSCRIBED (framework id)
//!            ──► OFFERS: the first that fits ──► ACCEPT (LAUNCH), SUPPRESS
//!                        the others         ──► DECLINE (short filter)
//!            ──► UPDATE ... ──► ACKNOWLEDGE each; print each new state
//!                         └─ terminal ──► TEARDOWN; exit with the task's status
//! ```
//!
//! Calls and events are Mesos JSON, written and read with
//! `pando_proto::json`; the event stream is cut into records by
//! `pando_proto::recordio`. The sandbox is found in the agent's `/state`
//! (`frameworks[].executors[].directory`), and printed with the files API
//! URLs of its stdout and stderr.

use std::time::Duration;

use http_body_util::BodyExt;
use pando_proto::json;
use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::scheduler as sched;
use pando_proto::stout::parse_duration;
use pando_proto::task_state::is_terminal;
use pando_resources::Resources;

use crate::client::{encode_query, Client, ClientError, RecordStream};
use crate::progress::Progress;

/// Why `pando execute` could not run its task.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// `--resources` did not parse.
    #[error("invalid --resources '{given}': {reason}")]
    Resources {
        /// The flag's value.
        given: String,
        /// What the parser said.
        reason: String,
    },
    /// `--env` did not parse.
    #[error("invalid --env '{given}': {reason}")]
    Env {
        /// The flag's value.
        given: String,
        /// What is wrong.
        reason: String,
    },
    /// `--timeout` did not parse.
    #[error("invalid --timeout '{given}': {reason}")]
    Timeout {
        /// The flag's value.
        given: String,
        /// What is wrong.
        reason: String,
    },
    /// Talking to the master failed (the error names its address).
    #[error(transparent)]
    Master(ClientError),
    /// The master refused a call.
    #[error("master {master} refused {call} with {status}: {body}")]
    Refused {
        /// The master's address.
        master: String,
        /// The call.
        call: &'static str,
        /// The HTTP status.
        status: u16,
        /// The master's explanation.
        body: String,
    },
    /// The master sent ERROR or closed the stream.
    #[error("master {master}: {reason}")]
    Stream {
        /// The master's address.
        master: String,
        /// What happened.
        reason: String,
    },
    /// No offer that fits came in time.
    #[error("no offer with {resources} came from {master} within {secs}s (is an agent with enough free resources registered?)")]
    NoOffer {
        /// The master's address.
        master: String,
        /// The resources asked for.
        resources: String,
        /// The deadline in seconds.
        secs: f64,
    },
}

/// The flags of `pando execute`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecuteFlags {
    /// The master, `host:port`.
    #[arg(long, env = "MESOS_MASTER", default_value = "127.0.0.1:5050")]
    pub master: String,
    /// The task's name, also its id (a fresh `execute-<hex>` when absent).
    #[arg(long, default_value = "", hide_default_value = true)]
    pub name: String,
    /// The shell command to run.
    #[arg(long)]
    pub command: String,
    /// The task's resources, in Mesos syntax.
    #[arg(long, default_value = "cpus:0.1;mem:32")]
    pub resources: String,
    /// The role the framework subscribes in.
    #[arg(long, default_value = "*")]
    pub role: String,
    /// Environment variables: `NAME=VALUE` (repeatable) or a JSON object.
    #[arg(long)]
    pub env: Vec<String>,
    /// Run the command in this Docker image, through the Mesos
    /// containerizer (Pando's agents do not run images yet: the task fails
    /// with the agent's reason).
    #[arg(long = "docker_image", alias = "docker-image")]
    pub docker_image: Option<String>,
    /// How long to wait for the master to answer, and for an offer that
    /// fits (`10secs`, `500ms`, `1mins`...).
    #[arg(long, default_value = "10secs")]
    pub timeout: String,
}

/// Parses `--env` values: `NAME=VALUE` each, or one JSON object.
pub fn parse_env(values: &[String]) -> Result<Vec<(String, String)>, ExecuteError> {
    let mut out = Vec::new();
    for value in values {
        let bad = |reason: &str| ExecuteError::Env {
            given: value.clone(),
            reason: reason.into(),
        };
        if value.trim_start().starts_with('{') {
            let parsed: serde_json::Value =
                serde_json::from_str(value).map_err(|e| bad(&format!("not JSON: {e}")))?;
            let object = parsed
                .as_object()
                .ok_or_else(|| bad("expected a JSON object"))?;
            for (k, v) in object {
                let v = v
                    .as_str()
                    .ok_or_else(|| bad(&format!("the value of '{k}' is not a string")))?;
                out.push((k.clone(), v.to_string()));
            }
        } else {
            let (k, v) = value
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| bad("expected NAME=VALUE or a JSON object"))?;
            out.push((k.to_string(), v.to_string()));
        }
    }
    Ok(out)
}

/// Parses `--resources`, naming the value when it is wrong.
pub fn parse_resources(text: &str) -> Result<Resources, ExecuteError> {
    let bad = |reason: String| ExecuteError::Resources {
        given: text.to_string(),
        reason,
    };
    let trimmed = text.trim();
    let parsed = if trimmed.starts_with('[') {
        Resources::parse_json(trimmed)
    } else {
        Resources::parse(trimmed)
    };
    let resources = parsed.map_err(|e| bad(e.to_string()))?;
    if resources.is_empty() {
        return Err(bad(
            "a task needs some resources, e.g. cpus:0.1;mem:32".into()
        ));
    }
    Ok(resources)
}

/// The exit status for a terminal task state: 0 for TASK_FINISHED, the
/// command's own status for a failed command, else 1.
pub fn exit_status(state: pb::TaskState, message: Option<&str>) -> i32 {
    if state == pb::TaskState::TaskFinished {
        return 0;
    }
    message
        .and_then(|m| m.split("Command exited with status ").nth(1))
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse::<i32>().ok())
        })
        .filter(|n| *n != 0)
        .unwrap_or(1)
}

/// The user this process runs as, for FrameworkInfo.user.
fn current_user() -> String {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let mut pwd: libc::passwd = unsafe {
        // SAFETY: passwd is plain data; all-zero is a valid value that
        // getpwuid_r overwrites.
        std::mem::zeroed()
    };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, and buf's length is
    // passed with it; getpwuid_r writes only within them.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
        // SAFETY: on success pw_name points to a NUL-terminated string in buf.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        if let Ok(name) = name.to_str() {
            return name.to_string();
        }
    }
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

/// A subscribed framework's connection to the master.
struct Session {
    /// The (leading) master the calls go to.
    client: Client,
    /// The `Mesos-Stream-Id` SUBSCRIBE answered with; every call carries it.
    stream_id: String,
    /// Set by SUBSCRIBED; every call but SUBSCRIBE names it.
    framework_id: Option<pb::FrameworkId>,
}

impl Session {
    /// Sends one call on the stream; the master answers 202.
    async fn call(&self, name: &'static str, mut call: sched::Call) -> Result<(), ExecuteError> {
        call.framework_id = self.framework_id.clone();
        let reply = self
            .client
            .post_json(
                "/api/v1/scheduler",
                &[("Mesos-Stream-Id", self.stream_id.as_str())],
                json::to_json(&call),
            )
            .await
            .map_err(ExecuteError::Master)?;
        if reply.status != 202 {
            return Err(ExecuteError::Refused {
                master: self.client.addr.clone(),
                call: name,
                status: reply.status,
                body: String::from_utf8_lossy(&reply.body).trim().to_string(),
            });
        }
        Ok(())
    }
}

fn call_of(kind: sched::call::Type) -> sched::Call {
    sched::Call {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

/// Where the task runs: the agent's address, for its `/state` and files.
#[derive(Debug, Clone)]
struct Placement {
    /// `host:port` of the agent's HTTP API, from the offer's URL.
    agent_addr: String,
}

/// Runs the task and returns its exit status.
pub async fn run(mut flags: ExecuteFlags) -> Result<i32, ExecuteError> {
    if flags.name.is_empty() {
        let id = uuid::Uuid::new_v4().simple().to_string();
        flags.name = format!("execute-{}", &id[..8]);
    }
    let wanted = parse_resources(&flags.resources)?;
    let env = parse_env(&flags.env)?;
    let timeout = parse_duration(&flags.timeout).map_err(|reason| ExecuteError::Timeout {
        given: flags.timeout.clone(),
        reason: reason.to_string(),
    })?;
    let client = Client::leading(&flags.master, timeout)
        .await
        .map_err(ExecuteError::Master)?;
    let master = client.addr.clone();

    let mut subscribe = call_of(sched::call::Type::Subscribe);
    subscribe.subscribe = Some(sched::call::Subscribe {
        framework_info: pb::FrameworkInfo {
            user: current_user(),
            name: format!("pando-execute ({})", flags.name),
            roles: vec![flags.role.clone()],
            capabilities: vec![pb::framework_info::Capability {
                r#type: Some(pb::framework_info::capability::Type::MultiRole as i32),
            }],
            ..Default::default()
        },
        ..Default::default()
    });
    let connecting = Progress::start(format!("subscribing with {master}"));
    let mut client = client;
    let mut master = master;
    let mut redirected = false;
    let (headers, body) = loop {
        let (status, headers, body) = client
            .open_stream("/api/v1/scheduler", &[], json::to_json(&subscribe))
            .await
            .map_err(ExecuteError::Master)?;
        if status == 200 {
            break (headers, body);
        }
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // A master that is not the leader answers 307 with the leader's
        // address; follow it once.
        if let (307, Some(leader), false) = (
            status,
            location.as_deref().and_then(leader_address),
            redirected,
        ) {
            println!("{master} is not the leading master; subscribing with {leader}");
            client = Client::new(&leader, timeout).map_err(ExecuteError::Master)?;
            master = client.addr.clone();
            redirected = true;
            continue;
        }
        let text = match tokio::time::timeout(timeout, body.collect()).await {
            Ok(Ok(b)) => String::from_utf8_lossy(&b.to_bytes()).trim().to_string(),
            _ => String::new(),
        };
        let text = match location {
            Some(leader) => format!("{text} (the leading master is {leader})"),
            None => text,
        };
        return Err(ExecuteError::Refused {
            master,
            call: "SUBSCRIBE",
            status,
            body: text,
        });
    };
    let master_err = ExecuteError::Master;
    let stream_id = headers
        .get("mesos-stream-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut events = RecordStream::new(body);
    let mut session = Session {
        client,
        stream_id,
        framework_id: None,
    };
    drop(connecting);

    let task_id = pb::TaskId {
        value: flags.name.clone(),
    };
    let mut waiting = Some(Progress::start(format!(
        "waiting for an offer with {}",
        flags.resources
    )));
    let offer_deadline = tokio::time::Instant::now() + timeout;
    let mut placement: Option<Placement> = None;
    let mut last_state: Option<pb::TaskState> = None;
    let mut sandbox_shown = false;
    let interrupted = pando_core::master::server::shutdown_signal();
    tokio::pin!(interrupted);

    let code = loop {
        let record = tokio::select! {
            record = events.next() => record.map_err(master_err)?,
            _ = tokio::time::sleep_until(offer_deadline), if placement.is_none() => {
                let _ = session.call("TEARDOWN", call_of(sched::call::Type::Teardown)).await;
                return Err(ExecuteError::NoOffer {
                    master,
                    resources: flags.resources.clone(),
                    secs: timeout.as_secs_f64(),
                });
            }
            _ = &mut interrupted => {
                waiting.take();
                println!("Interrupted: tearing the framework down (this kills the task)");
                let _ = session.call("TEARDOWN", call_of(sched::call::Type::Teardown)).await;
                break 130;
            }
        };
        let Some(record) = record else {
            return Err(ExecuteError::Stream {
                master,
                reason: "the master closed the event stream".into(),
            });
        };
        let event: sched::Event = match json::from_json(&record) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!("skipping an event that does not parse: {e}");
                continue;
            }
        };
        let kind = event
            .r#type
            .and_then(|t| sched::event::Type::try_from(t).ok());
        match kind {
            Some(sched::event::Type::Subscribed) => {
                if let Some(subscribed) = event.subscribed {
                    println!(
                        "Subscribed with framework ID {}",
                        subscribed.framework_id.value
                    );
                    session.framework_id = Some(subscribed.framework_id);
                }
            }
            Some(sched::event::Type::Offers) => {
                let offers = event.offers.map(|o| o.offers).unwrap_or_default();
                for offer in offers {
                    if placement.is_none() {
                        if let Some(resources) = fitting(&offer, &wanted) {
                            waiting.take();
                            placement = Some(
                                launch(&session, &offer, &flags, &task_id, resources, &env).await?,
                            );
                            let _ = session
                                .call("SUPPRESS", call_of(sched::call::Type::Suppress))
                                .await;
                            continue;
                        }
                    }
                    // Not needed, or too small: back to the pool, and not
                    // offered to us again for a while.
                    let refuse = if placement.is_some() { 3600.0 } else { 2.0 };
                    let mut decline = call_of(sched::call::Type::Decline);
                    decline.decline = Some(sched::call::Decline {
                        offer_ids: vec![offer.id.clone()],
                        filters: Some(pb::Filters {
                            refuse_seconds: Some(refuse),
                        }),
                    });
                    session.call("DECLINE", decline).await?;
                }
            }
            Some(sched::event::Type::Update) => {
                let Some(update) = event.update else { continue };
                let status = update.status;
                if let Some(uuid) = status.uuid.clone().filter(|u| !u.is_empty()) {
                    let mut ack = call_of(sched::call::Type::Acknowledge);
                    ack.acknowledge = Some(sched::call::Acknowledge {
                        agent_id: status.agent_id.clone().unwrap_or_default(),
                        task_id: status.task_id.clone(),
                        uuid,
                    });
                    session.call("ACKNOWLEDGE", ack).await?;
                }
                if status.task_id != task_id {
                    continue;
                }
                let state =
                    pb::TaskState::try_from(status.state).unwrap_or(pb::TaskState::TaskLost);
                if last_state != Some(state) {
                    println!(
                        "Received status update {} for task '{}'",
                        state.as_str_name(),
                        status.task_id.value
                    );
                    if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
                        println!("  message: {message}");
                    }
                    if let Some(reason) = status
                        .reason
                        .and_then(|r| pb::task_status::Reason::try_from(r).ok())
                    {
                        println!("  reason:  {}", reason.as_str_name());
                    }
                    last_state = Some(state);
                }
                let terminal = is_terminal(state);
                if !sandbox_shown && (state == pb::TaskState::TaskRunning || terminal) {
                    if let (Some(place), Some(fw)) = (&placement, &session.framework_id) {
                        sandbox_shown =
                            show_sandbox(place, &fw.value, &task_id.value, timeout).await;
                    }
                }
                if terminal {
                    break exit_status(state, status.message.as_deref());
                }
            }
            Some(sched::event::Type::Error) => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                return Err(ExecuteError::Stream {
                    master,
                    reason: format!("the master sent ERROR: {message}"),
                });
            }
            Some(sched::event::Type::Failure) => {
                println!("The master reports an agent or executor failure");
            }
            _ => {}
        }
    };
    if code != 130 {
        session
            .call("TEARDOWN", call_of(sched::call::Type::Teardown))
            .await?;
    }
    Ok(code)
}

/// The `host:port` in a redirect's Location (`//host:port/path` as Mesos
/// writes it, or `http://host:port/path`).
pub fn leader_address(location: &str) -> Option<String> {
    let rest = location
        .trim()
        .trim_start_matches("http:")
        .trim_start_matches("https:")
        .trim_start_matches("//");
    let addr = rest.split('/').next()?;
    crate::client::normalize_address(addr).ok()
}

/// The resources to launch with if `offer` has room for `wanted`.
fn fitting(offer: &pb::Offer, wanted: &Resources) -> Option<Vec<pb::Resource>> {
    let offered = Resources::from_proto(&offer.resources).ok()?;
    let plain = offered.unallocate();
    if !plain.contains(wanted) {
        return None;
    }
    // A multi-role offer carries its role in each resource; so must the
    // task's resources.
    let role = offer
        .resources
        .iter()
        .find_map(|r| r.allocation_info.as_ref().and_then(|a| a.role.clone()));
    Some(match role {
        Some(role) => wanted.allocate(&role).to_proto(),
        None => wanted.to_proto(),
    })
}

/// Accepts `offer` with a LAUNCH of the command task.
async fn launch(
    session: &Session,
    offer: &pb::Offer,
    flags: &ExecuteFlags,
    task_id: &pb::TaskId,
    resources: Vec<pb::Resource>,
    env: &[(String, String)],
) -> Result<Placement, ExecuteError> {
    let environment = (!env.is_empty()).then(|| pb::Environment {
        variables: env
            .iter()
            .map(|(k, v)| pb::environment::Variable {
                name: k.clone(),
                value: Some(v.clone()),
                ..Default::default()
            })
            .collect(),
    });
    let container = flags.docker_image.as_ref().map(|image| pb::ContainerInfo {
        r#type: pb::container_info::Type::Mesos as i32,
        mesos: Some(pb::container_info::MesosInfo {
            image: Some(pb::Image {
                r#type: pb::image::Type::Docker as i32,
                docker: Some(pb::image::Docker {
                    name: image.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    });
    let task = pb::TaskInfo {
        container,
        name: flags.name.clone(),
        task_id: task_id.clone(),
        agent_id: offer.agent_id.clone(),
        resources,
        command: Some(pb::CommandInfo {
            shell: Some(true),
            value: Some(flags.command.clone()),
            environment,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut accept = call_of(sched::call::Type::Accept);
    accept.accept = Some(sched::call::Accept {
        offer_ids: vec![offer.id.clone()],
        operations: vec![pb::offer::Operation {
            r#type: Some(pb::offer::operation::Type::Launch as i32),
            launch: Some(pb::offer::operation::Launch {
                task_infos: vec![task],
            }),
            ..Default::default()
        }],
        filters: Some(pb::Filters {
            refuse_seconds: Some(3600.0),
        }),
    });
    session.call("ACCEPT", accept).await?;
    let agent_addr = offer
        .url
        .as_ref()
        .map(|u| {
            let host = u
                .address
                .ip
                .clone()
                .or_else(|| u.address.hostname.clone())
                .unwrap_or_else(|| offer.hostname.clone());
            format!("{host}:{}", u.address.port)
        })
        .unwrap_or_else(|| format!("{}:5051", offer.hostname));
    println!(
        "Submitted task '{}' to agent {} ({agent_addr})",
        task_id.value, offer.agent_id.value
    );
    Ok(Placement { agent_addr })
}

/// Prints the task's sandbox and the files API URLs of its output; false
/// if the agent does not list it (yet).
async fn show_sandbox(place: &Placement, framework: &str, task: &str, timeout: Duration) -> bool {
    let Ok(client) = Client::new(&place.agent_addr, timeout) else {
        return false;
    };
    let Ok(state) = client.get_json("/state").await else {
        return false;
    };
    let Some(dir) = sandbox_directory(&state, framework, task) else {
        return false;
    };
    println!("  sandbox: {dir}");
    for file in ["stdout", "stderr"] {
        println!(
            "  {file}:  http://{}/files/read?path={}&offset=0",
            place.agent_addr,
            encode_query(&format!("{dir}/{file}"))
        );
    }
    true
}

/// The sandbox directory of the executor running `task` of `framework`,
/// from an agent's `/state`.
pub fn sandbox_directory(state: &serde_json::Value, framework: &str, task: &str) -> Option<String> {
    let lists = |v: &serde_json::Value, keys: &[&str]| -> Vec<serde_json::Value> {
        keys.iter()
            .filter_map(|k| v[*k].as_array())
            .flatten()
            .cloned()
            .collect()
    };
    let frameworks = lists(state, &["frameworks", "completed_frameworks"]);
    let fw = frameworks.iter().find(|f| f["id"] == framework)?;
    let executors = lists(fw, &["executors", "completed_executors"]);
    executors
        .iter()
        .find(|e| {
            e["id"] == task
                || lists(e, &["tasks", "queued_tasks", "completed_tasks"])
                    .iter()
                    .any(|t| t["id"] == task)
        })
        .and_then(|e| e["directory"].as_str())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_follows_the_task() {
        use pb::TaskState::*;
        assert_eq!(
            exit_status(TaskFinished, Some("Command exited with status 0")),
            0
        );
        assert_eq!(
            exit_status(TaskFailed, Some("Command exited with status 3")),
            3
        );
        assert_eq!(
            exit_status(TaskFailed, Some("Command terminated with signal Killed")),
            1
        );
        assert_eq!(exit_status(TaskKilled, None), 1);
    }

    #[test]
    fn redirects_name_the_leader() {
        assert_eq!(
            leader_address("//127.0.0.1:5051/api/v1/scheduler").as_deref(),
            Some("127.0.0.1:5051")
        );
        assert_eq!(
            leader_address("http://m2:5050/api/v1/scheduler").as_deref(),
            Some("m2:5050")
        );
        assert_eq!(leader_address("/api/v1/scheduler"), None);
    }

    #[test]
    fn bad_resources_are_named() {
        let err = parse_resources("cpus:lots").unwrap_err();
        assert!(err.to_string().contains("'cpus:lots'"), "{err}");
        assert!(parse_resources("cpus:0.1;mem:32").is_ok());
    }

    #[test]
    fn env_takes_pairs_or_json() {
        let env = parse_env(&["A=1".into(), r#"{"B":"2"}"#.into()]).unwrap();
        assert_eq!(
            env,
            vec![("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        let err = parse_env(&["novalue".into()]).unwrap_err();
        assert!(err.to_string().contains("'novalue'"), "{err}");
    }

    #[test]
    fn the_sandbox_is_found_by_executor_or_task() {
        let state = serde_json::json!({
            "frameworks": [{"id": "fw", "executors": [
                {"id": "other", "directory": "/x", "tasks": []},
                {"id": "ex", "directory": "/sandbox", "tasks": [], "completed_tasks": [{"id": "t"}]}
            ]}]
        });
        assert_eq!(
            sandbox_directory(&state, "fw", "t").as_deref(),
            Some("/sandbox")
        );
        assert_eq!(
            sandbox_directory(&state, "fw", "other").as_deref(),
            Some("/x")
        );
        assert_eq!(sandbox_directory(&state, "nope", "t"), None);
    }
}
