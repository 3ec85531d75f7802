//! `pando execute`: one command as one task, through the real scheduler
//! API, in the manner of `mesos-execute`.
//!
//! ```text
//!  SUBSCRIBE ──► SUBSCRIBED (framework id)
//!            ──► OFFERS: the first that fits ──► ACCEPT (LAUNCH), SUPPRESS
//!                        the others         ──► DECLINE (short filter)
//!            ──► UPDATE ... ──► (the driver ACKNOWLEDGEs each); print each new state
//!                         └─ terminal ──► TEARDOWN; exit with the task's status
//! ```
//!
//! The framework runs on `pando_scheduler`'s [`Driver`] over the JSON HTTP
//! transport: it finds the leader among the `--master` list, acknowledges
//! every update, and subscribes again (same framework id) if the stream
//! breaks or the leader changes while the task runs. The sandbox is found in the agent's `/state`
//! (`frameworks[].executors[].directory`), and printed with the files API
//! URLs of its stdout and stderr.

use std::time::Duration;

use pando_proto::codec::ContentType;
use pando_proto::mesos::v1 as pb;
use pando_proto::stout::parse_duration;
use pando_proto::task_state::is_terminal;
use pando_resources::Resources;
use pando_scheduler::client::{encode_query, pid_address, Client, ClientError};
use pando_scheduler::{Config, Driver, DriverError, HttpTransport, Incoming, TransportError};

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
    /// The `--master` value is not a list of addresses.
    #[error(transparent)]
    Master(ClientError),
    /// None of the masters could be reached.
    #[error("cannot subscribe with {masters}: {reason}")]
    Unreachable {
        /// The masters given.
        masters: String,
        /// What the transport said (it names each address).
        reason: TransportError,
    },
    /// The master refused a call.
    #[error("master {master}: {source}")]
    Refused {
        /// The master's address.
        master: String,
        /// The call, the status and the master's explanation.
        source: DriverError,
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

/// Where the task runs: the agent's address, for its `/state` and files.
#[derive(Debug, Clone)]
struct Placement {
    /// `host:port` of the agent's HTTP API, from the offer's URL.
    agent_addr: String,
}

/// The `host:port` of the master that answered, from its MasterInfo.
fn master_address(info: &pb::MasterInfo) -> Option<String> {
    if let Some(address) = &info.address {
        let host = address.ip.clone().or_else(|| address.hostname.clone())?;
        return Some(format!("{host}:{}", address.port));
    }
    info.pid.as_deref().and_then(pid_address)
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
    let transport = HttpTransport::new(&flags.master, ContentType::Json)
        .map_err(ExecuteError::Master)?
        .with_timeout(timeout);
    let framework_info = pb::FrameworkInfo {
        user: current_user(),
        name: format!("pando-execute ({})", flags.name),
        roles: vec![flags.role.clone()],
        capabilities: vec![pb::framework_info::Capability {
            r#type: Some(pb::framework_info::capability::Type::MultiRole as i32),
        }],
        ..Default::default()
    };
    // The driver acknowledges every update, and follows the masters to
    // the leader (and to a new one after a failover).
    let (driver, mut incoming) = Driver::start(Config::new(framework_info), transport);
    let mut master = flags.master.clone();
    let mut connecting = Some(Progress::start(format!("subscribing with {master}")));
    let mut waiting: Option<Progress> = None;

    let task_id = pb::TaskId {
        value: flags.name.clone(),
    };
    // The subscription, and then an offer that fits, must each come in
    // time.
    let mut deadline = tokio::time::Instant::now() + timeout;
    let mut subscribed = false;
    // Why the first subscription has not come yet, if the driver said.
    let mut not_yet: Option<TransportError> = None;
    let mut placement: Option<Placement> = None;
    let mut last_state: Option<pb::TaskState> = None;
    let mut sandbox_shown = false;
    let interrupted = pando_core::master::server::shutdown_signal();
    tokio::pin!(interrupted);

    let code = loop {
        let item = tokio::select! {
            item = incoming.recv() => item,
            _ = tokio::time::sleep_until(deadline), if placement.is_none() => {
                if !subscribed {
                    driver.stop().await;
                    let why = not_yet.map(|e| format!(" ({e})")).unwrap_or_default();
                    return Err(ExecuteError::Stream {
                        master,
                        reason: format!("no subscription within {}s{why}", timeout.as_secs_f64()),
                    });
                }
                let _ = tokio::time::timeout(timeout, driver.teardown()).await;
                return Err(ExecuteError::NoOffer {
                    master,
                    resources: flags.resources.clone(),
                    secs: timeout.as_secs_f64(),
                });
            }
            _ = &mut interrupted => {
                waiting.take();
                println!("Interrupted: tearing the framework down (this kills the task)");
                if subscribed {
                    let _ = tokio::time::timeout(timeout, driver.teardown()).await;
                }
                break 130;
            }
        };
        let Some(item) = item else {
            return Err(ExecuteError::Stream {
                master,
                reason: "the scheduler driver stopped".into(),
            });
        };
        match item {
            Incoming::Subscribed {
                framework_id,
                master_info,
                reregistered,
            } => {
                connecting.take();
                if let Some(address) = master_info.as_ref().and_then(master_address) {
                    master = address;
                }
                if reregistered {
                    println!("Re-subscribed with {master}");
                } else {
                    println!("Subscribed with framework ID {}", framework_id.value);
                    subscribed = true;
                    deadline = tokio::time::Instant::now() + timeout;
                    waiting = Some(Progress::start(format!(
                        "waiting for an offer with {}",
                        flags.resources
                    )));
                }
            }
            Incoming::Disconnected(reason) => {
                // Nothing listens at any of the masters given: say so at
                // once rather than wait out the deadline.
                if !subscribed && matches!(reason, TransportError::Unreachable(_)) {
                    driver.stop().await;
                    return Err(ExecuteError::Unreachable {
                        masters: flags.master.clone(),
                        reason,
                    });
                }
                if subscribed {
                    println!("Disconnected from {master} ({reason}); subscribing again");
                } else {
                    not_yet = Some(reason);
                }
            }
            Incoming::Offers(offers) => {
                for offer in offers {
                    if placement.is_none() {
                        if let Some(resources) = fitting(&offer, &wanted) {
                            waiting.take();
                            let launched =
                                launch(&driver, &offer, &flags, &task_id, resources, &env).await;
                            placement = Some(launched.map_err(|source| ExecuteError::Refused {
                                master: master.clone(),
                                source,
                            })?);
                            let _ = driver.suppress(vec![]).await;
                            continue;
                        }
                    }
                    // Not needed, or too small: back to the pool, and not
                    // offered to us again for a while.
                    let refuse = if placement.is_some() { 3600.0 } else { 2.0 };
                    let filters = pb::Filters {
                        refuse_seconds: Some(refuse),
                    };
                    driver
                        .decline(vec![offer.id.clone()], Some(filters))
                        .await
                        .map_err(|source| ExecuteError::Refused {
                            master: master.clone(),
                            source,
                        })?;
                }
            }
            Incoming::Update(status) => {
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
                    if let (Some(place), Some(fw)) = (&placement, driver.framework_id()) {
                        sandbox_shown =
                            show_sandbox(place, &fw.value, &task_id.value, timeout).await;
                    }
                }
                if terminal {
                    break exit_status(state, status.message.as_deref());
                }
            }
            Incoming::Error(message) => {
                return Err(ExecuteError::Stream {
                    master,
                    reason: message,
                });
            }
            Incoming::Failure { .. } => {
                println!("The master reports an agent or executor failure");
            }
            _ => {}
        }
    };
    if code != 130 {
        driver
            .teardown()
            .await
            .map_err(|source| ExecuteError::Refused { master, source })?;
    }
    Ok(code)
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
    driver: &Driver,
    offer: &pb::Offer,
    flags: &ExecuteFlags,
    task_id: &pb::TaskId,
    resources: Vec<pb::Resource>,
    env: &[(String, String)],
) -> Result<Placement, DriverError> {
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
    let filters = pb::Filters {
        refuse_seconds: Some(3600.0),
    };
    driver
        .launch(offer.id.clone(), vec![task], Some(filters))
        .await?;
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
