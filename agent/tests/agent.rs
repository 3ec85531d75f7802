//! End-to-end tests of the agent against a fake AgentLink master, with real
//! cgroups and real processes (they run as root).

mod common;

use common::*;
use pando_link as link;
use pando_link::agent_message::Message as Up;
use pando_link::master_message::Message as Down;
use pando_proto::mesos::v1 as pb;

fn is_root() -> bool {
    // SAFETY: geteuid has no side effects.
    unsafe { libc::geteuid() == 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_task_runs_in_its_sandbox_and_updates_wait_for_acks() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let agent = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    let info = master.registered().await;
    assert_eq!(info.hostname, "localhost");
    assert!(info.id.is_none());
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-1", false),
        task: command_task("t1", "echo hello-from-task", 0.5, 64.0),
    }));
    let running = master.update_for("t1").await;
    assert_eq!(state_name(&running), "TASK_RUNNING");
    assert_eq!(running.agent_id.as_ref().unwrap().value, "agent-1");
    // As from Mesos: the container, the executor's pid and the task's IP.
    let container = running
        .status
        .container_status
        .as_ref()
        .expect("container_status on an update from the executor");
    let executor_pid = agent
        .agent
        .lock()
        .frameworks
        .get("fw-1")
        .and_then(|f| f.executors.get("t1"))
        .map(|e| (e.container_id.clone(), e.pid));
    if let Some((container_id, pid)) = executor_pid {
        assert_eq!(
            container.container_id.as_ref().map(|c| c.value.clone()),
            Some(container_id)
        );
        assert_eq!(container.executor_pid, pid);
    }
    assert!(container.executor_pid.is_some());
    assert_eq!(
        container.network_infos[0].ip_addresses[0]
            .ip_address
            .as_deref(),
        Some("127.0.0.1")
    );
    // The task finishes at once, but its FINISHED waits for RUNNING's ack.
    let a = std::sync::Arc::clone(&agent.agent);
    eventually("the task to finish on the agent", || {
        let state = a.lock();
        state
            .streams
            .get(&("fw-1".to_string(), "t1".to_string()))
            .is_some_and(|s| s.pending.len() == 2)
    })
    .await;
    assert!(
        !master.pending_messages().iter().any(|m| matches!(
            m.message,
            Some(Up::StatusUpdate(ref u)) if u.status.task_id.value == "t1"
        )),
        "nothing is sent before the ack"
    );
    master.ack(&running);
    let finished = master.update_for("t1").await;
    assert_eq!(state_name(&finished), "TASK_FINISHED");
    master.ack(&finished);
    // The command executor is the agent's own: as in Mesos, its exit is
    // not reported to the master (a framework would see a spurious
    // executorLost). A later task's update proves the link carried
    // everything sent before it.
    let a = std::sync::Arc::clone(&agent.agent);
    eventually("the command executor to be gone", || {
        let state = a.lock();
        state
            .frameworks
            .get("fw-1")
            .is_none_or(|f| !f.executors.contains_key("t1"))
    })
    .await;
    let sandbox = sandbox_of(&agent.agent, "fw-1", "t1").unwrap();
    assert!(sandbox.starts_with(
        work.path()
            .join("slaves/agent-1/frameworks/fw-1/executors/t1/runs")
    ));
    let stdout = std::fs::read_to_string(sandbox.join("stdout")).unwrap();
    assert!(stdout.contains("hello-from-task"), "stdout: {stdout}");
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-1", false),
        task: command_task("t1-after", "sleep 30", 0.1, 32.0),
    }));
    let after = master.update_for("t1-after").await;
    assert_eq!(state_name(&after), "TASK_RUNNING");
    assert!(
        !master
            .pending_messages()
            .iter()
            .any(|m| matches!(m.message, Some(Up::ExecutorExited(_)))),
        "no ExecutorExited for a command executor"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_uri_fails_the_task_with_the_fetch_error() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let _agent = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    let mut task = command_task("t-uri", "true", 0.1, 64.0);
    task.command
        .as_mut()
        .unwrap()
        .uris
        .push(pb::command_info::Uri {
            value: "/nonexistent/pando-test-missing.tar.gz".into(),
            ..Default::default()
        });
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-2", false),
        task,
    }));
    let update = master.update_for("t-uri").await;
    assert_eq!(state_name(&update), "TASK_FAILED");
    assert_eq!(
        update.status.reason,
        Some(pb::task_status::Reason::ContainerLaunchFailed as i32)
    );
    let message = update.status.message.clone().unwrap();
    assert!(
        message.contains("/nonexistent/pando-test-missing.tar.gz"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_asking_more_than_the_agent_has_is_refused() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let _agent = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-3", false),
        task: command_task("t-big", "true", 64.0, 32.0),
    }));
    let update = master.update_for("t-big").await;
    assert_eq!(state_name(&update), "TASK_ERROR");
    assert!(update.status.message.clone().unwrap().contains("cpus"));
    let mut task = command_task("t-port", "true", 0.1, 64.0);
    task.resources.extend(
        pando_resources::Resources::parse("ports:[40000-40000]")
            .unwrap()
            .to_proto(),
    );
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-3", false),
        task,
    }));
    let update = master.update_for("t-port").await;
    assert_eq!(state_name(&update), "TASK_ERROR");
    let message = update.status.message.clone().unwrap();
    assert!(message.contains("40000"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_limit_kills_a_task_that_allocates_past_it() {
    if !is_root() {
        skip("needs root for cgroups");
        return;
    }
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let _agent = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-4", false),
        task: command_task(
            "t-oom",
            "python3 -c 'import time; b = bytearray(400 * 1024 * 1024); time.sleep(30)'",
            0.5,
            96.0,
        ),
    }));
    let mut update = master.update_for("t-oom").await;
    if state_name(&update) == "TASK_RUNNING" {
        master.ack(&update);
        update = master.update_for("t-oom").await;
    }
    assert_eq!(state_name(&update), "TASK_FAILED");
    assert_eq!(
        update.status.reason,
        Some(pb::task_status::Reason::ContainerLimitationMemory as i32),
        "{:?}",
        update.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_reregisters_with_its_id_after_the_link_breaks() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let _agent = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    master.break_session();
    let again = master
        .expect("re-registration", |m| match m {
            Up::Reregister(r) => Some(r.clone()),
            _ => None,
        })
        .await;
    assert_eq!(again.agent_info.id.unwrap().value, "agent-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_read_refuses_to_leave_the_sandboxes() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let agent = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-5", false),
        task: command_task(
            "t-files",
            "echo visible; ln -s /etc/passwd escape",
            0.1,
            32.0,
        ),
    }));
    let running = master.update_for("t-files").await;
    master.ack(&running);
    let finished = master.update_for("t-files").await;
    assert_eq!(
        state_name(&finished),
        "TASK_FINISHED",
        "{:?}",
        finished.status
    );
    let sandbox = sandbox_of(&agent.agent, "fw-5", "t-files").unwrap();
    let (code, body) = http_get(
        agent.addr,
        &format!("/files/read?path={}/stdout&offset=0", sandbox.display()),
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("visible"), "{body}");
    let (code, _) = http_get(
        agent.addr,
        &format!(
            "/files/read?path={}/../../../../../../../../etc/passwd&offset=0",
            sandbox.display()
        ),
    );
    assert_eq!(code, 400);
    let (code, body) = http_get(
        agent.addr,
        &format!("/files/read?path={}/escape&offset=0", sandbox.display()),
    );
    assert_eq!(code, 404, "a symlink out of the sandbox is refused: {body}");
    let (code, _) = http_get(agent.addr, "/files/read?path=/etc/passwd&offset=0");
    assert_eq!(code, 404);
    let (code, body) = http_get(agent.addr, "/slave(1)/state");
    assert_eq!(code, 200);
    let state: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(state["id"], "agent-1");
    let (code, body) = http_get(agent.addr, "/slave(1)/state.json?jsonp=cb_1");
    assert_eq!(code, 200);
    assert!(body.starts_with("cb_1({") && body.ends_with("})"), "{body}");
    let (code, body) = http_get(agent.addr, "/slave(1)/state.json?jsonp=alert(1)");
    assert_eq!(code, 200);
    assert!(
        body.starts_with('{') && body.ends_with('}'),
        "a callback that is not a name is not echoed into script: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpointed_task_survives_an_agent_crash_and_reports_once() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let first = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    let port = first.addr.port();
    let task = executor_task("t-ckpt", "sleep 600", launcher.path());
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-6", true),
        task,
    }));
    let running = master.update_for("t-ckpt").await;
    assert_eq!(state_name(&running), "TASK_RUNNING");
    master.ack(&running);
    let a = std::sync::Arc::clone(&first.agent);
    eventually("the ack to be checkpointed", || {
        a.lock()
            .streams
            .get(&("fw-6".to_string(), "t-ckpt".to_string()))
            .is_some_and(|s| s.pending.is_empty())
    })
    .await;
    first.crash();
    let second = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), port));
    let again = master
        .expect("re-registration", |m| match m {
            Up::Reregister(r) => Some(r.clone()),
            _ => None,
        })
        .await;
    assert_eq!(again.agent_info.id.unwrap().value, "agent-1");
    assert!(again.tasks.iter().any(|t| t.task_id.value == "t-ckpt"));
    let a = std::sync::Arc::clone(&second.agent);
    eventually("the executor to subscribe again", || {
        a.lock()
            .frameworks
            .get("fw-6")
            .and_then(|f| f.executors.get("exec-t-ckpt"))
            .is_some_and(|e| e.connection.is_some())
    })
    .await;
    master.send(Down::KillTask(link::KillTask {
        framework_id: pb::FrameworkId {
            value: "fw-6".into(),
        },
        task_id: pb::TaskId {
            value: "t-ckpt".into(),
        },
        kill_policy: None,
    }));
    let killed = master.update_for("t-ckpt").await;
    assert_eq!(state_name(&killed), "TASK_KILLED");
    master.ack(&killed);
    master
        .expect("ExecutorExited", |m| {
            matches!(m, Up::ExecutorExited(_)).then_some(())
        })
        .await;
    // The acknowledged executor leaves no checkpoint behind.
    let meta = work
        .path()
        .join("meta/slaves/agent-1/frameworks/fw-6/executors/exec-t-ckpt");
    eventually("the executor's checkpoint to go", || !meta.exists()).await;
    // Exactly once: nothing more about the task follows.
    assert!(!master.pending_messages().iter().any(|m| matches!(
        m.message,
        Some(Up::StatusUpdate(ref u)) if u.status.task_id.value == "t-ckpt"
    )));
}

/// At least once across a crash: a task's terminal update that the master
/// has not acknowledged when the agent is killed (its executor is gone
/// already) is sent again, with the same uuid, by the restarted agent, and
/// once acknowledged it is forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_terminal_update_is_sent_again_after_an_agent_crash() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let first = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    let port = first.addr.port();
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-replay", true),
        task: command_task("t-replay", "echo done", 0.1, 32.0),
    }));
    let running = master.update_for("t-replay").await;
    assert_eq!(state_name(&running), "TASK_RUNNING");
    master.ack(&running);
    let finished = master.update_for("t-replay").await;
    assert_eq!(state_name(&finished), "TASK_FINISHED");
    // Not acknowledged. The executor is gone (killed here, so that it
    // cannot wait for the acknowledgement), then the agent is killed: only
    // the checkpoint knows the update now.
    let pid = first
        .agent
        .lock()
        .frameworks
        .get("fw-replay")
        .and_then(|f| f.executors.values().find_map(|e| e.pid))
        .expect("the executor's pid");
    // SAFETY: kill has no memory effects; pid is the test's own executor.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
    first.crash();

    let second = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), port));
    let again = master.update_for("t-replay").await;
    assert_eq!(state_name(&again), "TASK_FINISHED");
    assert_eq!(
        again.status.uuid, finished.status.uuid,
        "the same update, not a new one"
    );
    master.ack(&again);
    let key = ("fw-replay".to_string(), "t-replay".to_string());
    let a = std::sync::Arc::clone(&second.agent);
    eventually("the acknowledgement to clear the update", || {
        a.lock()
            .streams
            .get(&key)
            .is_none_or(|s| s.pending.is_empty())
    })
    .await;
    // Nothing is left to resend: neither queued nor in the checkpoint a
    // third start would read.
    assert!(!master.pending_messages().iter().any(|m| matches!(
        m.message,
        Some(Up::StatusUpdate(ref u)) if u.status.task_id.value == "t-replay"
    )));
    drop(second);
    let third = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), port));
    master
        .expect("the third start's re-registration", |m| {
            matches!(m, Up::Reregister(_)).then_some(())
        })
        .await;
    assert!(
        third
            .agent
            .lock()
            .streams
            .get(&key)
            .is_none_or(|s| s.pending.is_empty()),
        "an acknowledged update is not recovered"
    );
    assert!(!master.pending_messages().iter().any(|m| matches!(
        m.message,
        Some(Up::StatusUpdate(ref u)) if u.status.task_id.value == "t-replay"
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cpu_quota_holds_a_busy_loop_near_its_share() {
    if !is_root() {
        skip("needs root for cgroups");
        return;
    }
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let agent = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-cpu", false),
        task: command_task("t-cpu", "while :; do :; done", 0.2, 64.0),
    }));
    let running = master.update_for("t-cpu").await;
    assert_eq!(state_name(&running), "TASK_RUNNING");
    let group = {
        let state = agent.agent.lock();
        state.frameworks["fw-cpu"].executors["t-cpu"]
            .group
            .clone()
            .unwrap()
    };
    let start_usage = group.cpu_usage_secs().unwrap();
    let start = std::time::Instant::now();
    let a = std::sync::Arc::clone(&agent.agent);
    eventually("two seconds of wall time", || {
        start.elapsed() >= std::time::Duration::from_secs(2)
    })
    .await;
    let used = group.cpu_usage_secs().unwrap() - start_usage;
    let share = used / start.elapsed().as_secs_f64();
    assert!(
        share > 0.05 && share < 0.3,
        "a 0.2-cpu task used {share:.2} cpus"
    );
    // The monitor reports the limit and the throttling.
    let (code, body) = http_get(agent.addr, "/monitor/statistics");
    assert_eq!(code, 200);
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    let entry = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["executor_id"] == "t-cpu")
        .expect("the task's container is listed");
    assert_eq!(entry["statistics"]["cpus_limit"], 0.2);
    assert!(entry["statistics"]["cpus_nr_throttled"].as_u64().unwrap() > 0);
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_api_lists_containers_and_reads_sandbox_files() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let agent = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-op", false),
        task: command_task("t-op", "echo operator-visible; sleep 600", 0.1, 64.0),
    }));
    let running = master.update_for("t-op").await;
    assert_eq!(state_name(&running), "TASK_RUNNING");
    let sandbox = sandbox_of(&agent.agent, "fw-op", "t-op").unwrap();
    let post = |body: &str| {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(agent.addr).unwrap();
        write!(
            stream,
            "POST /api/v1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let containers = post(r#"{"type":"GET_CONTAINERS"}"#);
    assert_eq!(containers["type"], "GET_CONTAINERS");
    assert_eq!(
        containers["get_containers"]["containers"][0]["executor_id"]["value"],
        "t-op"
    );
    let tasks = post(r#"{"type":"GET_TASKS"}"#);
    assert_eq!(
        tasks["get_tasks"]["launched_tasks"][0]["state"],
        "TASK_RUNNING"
    );
    let stdout = format!("{}/stdout", sandbox.display());
    let a = std::sync::Arc::clone(&agent.agent);
    eventually("the task to write its output", || {
        std::fs::read_to_string(&stdout).is_ok_and(|s| s.contains("operator-visible"))
    })
    .await;
    let read = post(&format!(
        r#"{{"type":"READ_FILE","read_file":{{"path":"{stdout}","offset":0}}}}"#
    ));
    let data = read["read_file"]["data"].as_str().unwrap();
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    assert!(String::from_utf8(data)
        .unwrap()
        .contains("operator-visible"));
    drop(a);
    master.send(Down::KillTask(link::KillTask {
        framework_id: pb::FrameworkId {
            value: "fw-op".into(),
        },
        task_id: pb::TaskId {
            value: "t-op".into(),
        },
        kill_policy: None,
    }));
    master.ack(&running);
    let killed = master.update_for("t-op").await;
    assert_eq!(state_name(&killed), "TASK_KILLED");
}

fn executor_pid(agent: &pando_agent::agent::Agent, fw: &str, exec: &str) -> Option<u32> {
    agent.lock().frameworks.get(fw)?.executors.get(exec)?.pid
}

fn alive(pid: u32) -> bool {
    pando_agent::containerizer::process_alive(pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_fails_dead_executors_and_kills_non_checkpointed_ones() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let first = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    let port = first.addr.port();
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-plain", false),
        task: command_task("t-plain", "sleep 600", 0.1, 64.0),
    }));
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-ck", true),
        task: executor_task("t-dies", "sleep 600", launcher.path()),
    }));
    for task in ["t-plain", "t-dies"] {
        let running = master.update_for(task).await;
        assert_eq!(state_name(&running), "TASK_RUNNING");
        master.ack(&running);
    }
    let a = std::sync::Arc::clone(&first.agent);
    eventually("both acks to land", || {
        let state = a.lock();
        state.streams.values().all(|s| s.pending.is_empty())
    })
    .await;
    let plain = executor_pid(&first.agent, "fw-plain", "t-plain").unwrap();
    let dies = executor_pid(&first.agent, "fw-ck", "exec-t-dies").unwrap();
    drop(a);
    first.crash();
    // The checkpointed executor dies while no agent runs.
    pando_agent::containerizer::kill_process_group(dies, 9);
    eventually("the executor to die", || !alive(dies)).await;
    let _second = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), port));
    let failed = master.update_for("t-dies").await;
    assert_eq!(state_name(&failed), "TASK_FAILED");
    assert_eq!(
        failed.status.reason,
        Some(pb::task_status::Reason::ExecutorTerminated as i32)
    );
    eventually("the non-checkpointed executor to be killed", || {
        !alive(plain)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_that_never_subscribes_times_out() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let mut f = flags(master.addr, work.path(), launcher.path(), 0);
    f.executor_registration_timeout = "500ms".into();
    let _agent = RunningAgent::start(f);
    master.registered().await;
    let mut task = executor_task("t-silent", "true", launcher.path());
    task.executor
        .as_mut()
        .unwrap()
        .command
        .as_mut()
        .unwrap()
        .value = Some("sleep 600".into());
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-silent", false),
        task,
    }));
    let failed = master.update_for("t-silent").await;
    assert_eq!(state_name(&failed), "TASK_FAILED");
    assert_eq!(
        failed.status.reason,
        Some(pb::task_status::Reason::ExecutorRegistrationTimeout as i32)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_hears_no_pings_reregisters() {
    let mut master = FakeMaster::start_with_ping(0.05).await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let _agent = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    let again = master
        .expect("re-registration after silence", |m| match m {
            Up::Reregister(r) => Some(r.clone()),
            _ => None,
        })
        .await;
    assert_eq!(again.agent_info.id.unwrap().value, "agent-1");
    assert!(again.endpoint.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_agent_kills_every_task_and_ends_the_agent_with_the_message() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let f = flags(master.addr, work.path(), launcher.path(), 0);
    let agent = std::thread::spawn(move || pando_agent::run_blocking(f));
    master.registered().await;
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-sd", true),
        task: command_task("t-sd", "sleep 600", 0.1, 64.0),
    }));
    let running = master.update_for("t-sd").await;
    assert_eq!(state_name(&running), "TASK_RUNNING");
    let meta_latest = work.path().join("meta/slaves/latest");
    assert!(meta_latest.exists());
    master.send(Down::Shutdown(link::ShutdownAgent {
        message: Some("agent was marked gone".into()),
    }));
    let error = tokio::task::spawn_blocking(move || agent.join().unwrap())
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        error.to_string().contains("agent was marked gone"),
        "{error}"
    );
    assert!(!meta_latest.exists(), "a shut-down agent forgets its id");
    let runtime = work.path().join("runtime/containers");
    let pids: Vec<u32> = std::fs::read_dir(&runtime)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path().join("pid")).ok())
                .filter_map(|p| p.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for pid in pids {
        assert!(!alive(pid), "executor {pid} survived the shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_runs_as_the_user_it_names() {
    if !is_root() {
        skip("switching users needs root");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let launcher = launcher_dir();
    std::fs::set_permissions(launcher.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let agent = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    let mut task = command_task("t-user", "id -un", 0.1, 64.0);
    task.command.as_mut().unwrap().user = Some("nobody".into());
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-user", false),
        task,
    }));
    let running = master.update_for("t-user").await;
    master.ack(&running);
    let finished = master.update_for("t-user").await;
    assert_eq!(
        state_name(&finished),
        "TASK_FINISHED",
        "{:?}",
        finished.status
    );
    let sandbox = sandbox_of(&agent.agent, "fw-user", "t-user").unwrap();
    let stdout = std::fs::read_to_string(sandbox.join("stdout")).unwrap();
    assert_eq!(stdout.trim(), "nobody");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_failures_fail_the_task_with_the_error() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let _agent = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    // An executor binary that does not exist.
    let mut task = executor_task("t-nobin", "true", launcher.path());
    let command = task.executor.as_mut().unwrap().command.as_mut().unwrap();
    command.shell = Some(false);
    command.value = Some("/nonexistent/pando-executor".into());
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-fail", false),
        task,
    }));
    let failed = master.update_for("t-nobin").await;
    assert_eq!(state_name(&failed), "TASK_FAILED");
    assert_eq!(
        failed.status.reason,
        Some(pb::task_status::Reason::ContainerLaunchFailed as i32)
    );
    let message = failed.status.message.clone().unwrap();
    assert!(message.contains("/nonexistent/pando-executor"), "{message}");
    let mut task = command_task("t-docker", "true", 0.1, 64.0);
    task.container = Some(pb::ContainerInfo {
        r#type: pb::container_info::Type::Docker as i32,
        ..Default::default()
    });
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-fail", false),
        task,
    }));
    let failed = master.update_for("t-docker").await;
    assert_eq!(state_name(&failed), "TASK_FAILED");
    assert!(failed.status.message.clone().unwrap().contains("Docker"));
    if is_root() {
        let mut task = command_task("t-nouser", "true", 0.1, 64.0);
        task.command.as_mut().unwrap().user = Some("pando-no-such-user".into());
        master.send(Down::RunTask(link::RunTask {
            framework: framework("fw-fail", false),
            task,
        }));
        let failed = master.update_for("t-nouser").await;
        assert_eq!(state_name(&failed), "TASK_FAILED");
        let message = failed.status.message.clone().unwrap();
        assert!(message.contains("pando-no-such-user"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posix_isolation_runs_tasks_without_cgroups() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let mut f = flags(master.addr, work.path(), launcher.path(), 0);
    f.isolation = "posix/cpu,posix/mem".into();
    let agent = RunningAgent::start(f);
    assert_eq!(
        agent.agent.isolator.mode(),
        pando_agent::flags::IsolationMode::Posix
    );
    master.registered().await;
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-posix", false),
        task: command_task("t-posix", "sleep 600", 0.1, 64.0),
    }));
    let running = master.update_for("t-posix").await;
    assert_eq!(state_name(&running), "TASK_RUNNING");
    let pid = executor_pid(&agent.agent, "fw-posix", "t-posix").unwrap();
    // Usage comes from /proc without cgroups.
    let (code, body) = http_get(agent.addr, "/monitor/statistics");
    assert_eq!(code, 200);
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        stats[0]["statistics"]["mem_rss_bytes"].as_u64().unwrap() > 0,
        "{body}"
    );
    master.send(Down::ShutdownFramework(link::ShutdownFramework {
        framework_id: pb::FrameworkId {
            value: "fw-posix".into(),
        },
    }));
    eventually("the executor to be gone", || !alive(pid)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_executor_api_speaks_protobuf() {
    use pando_proto::mesos::v1::executor as ex;
    use prost::Message;
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let agent = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    // The executor process only sleeps; the test subscribes in its place.
    let mut task = executor_task("t-pb", "true", launcher.path());
    task.executor
        .as_mut()
        .unwrap()
        .command
        .as_mut()
        .unwrap()
        .value = Some("sleep 600".into());
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-pb", false),
        task,
    }));
    let a = std::sync::Arc::clone(&agent.agent);
    eventually("the executor to launch", || {
        executor_pid(&a, "fw-pb", "exec-t-pb").is_some()
    })
    .await;
    let call = |kind: ex::call::Type| ex::Call {
        executor_id: pb::ExecutorId {
            value: "exec-t-pb".into(),
        },
        framework_id: pb::FrameworkId {
            value: "fw-pb".into(),
        },
        r#type: Some(kind as i32),
        ..Default::default()
    };
    let addr = agent.addr;
    let protobuf = "application/x-protobuf";
    // Before SUBSCRIBE, an UPDATE is forbidden.
    let mut update = call(ex::call::Type::Update);
    update.update = Some(ex::call::Update {
        status: pb::TaskStatus {
            task_id: pb::TaskId {
                value: "t-pb".into(),
            },
            state: pb::TaskState::TaskRunning as i32,
            uuid: Some(bytes::Bytes::from_static(b"0123456789abcdef")),
            ..Default::default()
        },
    });
    let body = update.encode_to_vec();
    let (code, _) = tokio::task::spawn_blocking(move || post_executor(addr, protobuf, &body))
        .await
        .unwrap();
    assert_eq!(code, 403);
    let mut unknown = call(ex::call::Type::Subscribe);
    unknown.executor_id.value = "nobody".into();
    let body = unknown.encode_to_vec();
    let (code, _) = tokio::task::spawn_blocking(move || post_executor(addr, protobuf, &body))
        .await
        .unwrap();
    assert_eq!(code, 400);
    let body = call(ex::call::Type::Subscribe).encode_to_vec();
    let events = tokio::task::spawn_blocking(move || {
        let (code, mut reader) = post_executor(addr, protobuf, &body);
        assert_eq!(code, 200);
        let records = read_records(&mut reader, 2);
        (records, reader)
    })
    .await
    .unwrap();
    let (records, _stream) = events;
    let subscribed = ex::Event::decode(records[0].as_ref()).unwrap();
    assert_eq!(subscribed.r#type, Some(ex::event::Type::Subscribed as i32));
    let subscribed = subscribed.subscribed.unwrap();
    assert_eq!(subscribed.agent_info.id.unwrap().value, "agent-1");
    let launch = ex::Event::decode(records[1].as_ref()).unwrap();
    assert_eq!(launch.launch.unwrap().task.task_id.value, "t-pb");
    let body = update.encode_to_vec();
    let (code, _) = tokio::task::spawn_blocking(move || post_executor(addr, protobuf, &body))
        .await
        .unwrap();
    assert_eq!(code, 202);
    let running = master.update_for("t-pb").await;
    assert_eq!(state_name(&running), "TASK_RUNNING");
    assert_eq!(
        running.status.uuid.as_deref(),
        Some(&b"0123456789abcdef"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_get_the_mesos_environment() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let mut f = flags(master.addr, work.path(), launcher.path(), 0);
    f.executor_environment_variables =
        Some(r#"{"PATH": "/usr/local/bin:/usr/bin:/bin", "ONLY_THIS": "1"}"#.into());
    let agent = RunningAgent::start(f);
    master.registered().await;
    let mut task = executor_task("t-env", "true", launcher.path());
    let command = task.executor.as_mut().unwrap().command.as_mut().unwrap();
    command.value = Some(format!(
        "env > executor.env; exec {}",
        launcher.path().join("pando").display()
    ));
    command.environment = Some(pb::Environment {
        variables: vec![pb::environment::Variable {
            name: "FROM_COMMAND_INFO".into(),
            value: Some("yes".into()),
            ..Default::default()
        }],
    });
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-env", true),
        task,
    }));
    let running = master.update_for("t-env").await;
    assert_eq!(state_name(&running), "TASK_RUNNING");
    let sandbox = sandbox_of(&agent.agent, "fw-env", "exec-t-env").unwrap();
    let env = std::fs::read_to_string(sandbox.join("executor.env")).unwrap();
    let endpoint = format!("MESOS_AGENT_ENDPOINT={}", agent.addr);
    for expected in [
        "MESOS_FRAMEWORK_ID=fw-env",
        "MESOS_EXECUTOR_ID=exec-t-env",
        &format!("MESOS_SANDBOX={}", sandbox.display()),
        &format!("MESOS_DIRECTORY={}", sandbox.display()),
        &endpoint,
        "MESOS_SLAVE_ID=agent-1",
        "MESOS_AGENT_ID=agent-1",
        "MESOS_CHECKPOINT=1",
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=2secs",
        "MESOS_RECOVERY_TIMEOUT=1mins",
        "MESOS_SUBSCRIPTION_BACKOFF_MAX=10secs",
        "FROM_COMMAND_INFO=yes",
        "ONLY_THIS=1",
    ] {
        assert!(
            env.lines().any(|l| l == expected),
            "{expected} missing from:\n{env}"
        );
    }
    assert!(
        !env.contains("CARGO_MANIFEST_DIR="),
        "the agent's own environment leaked in:\n{env}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_containers_launch_wait_and_kill_in_child_cgroups() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let agent = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    // A group whose "default executor" only sleeps: the test drives the
    // operator API as the default executor would.
    let executor = pb::ExecutorInfo {
        r#type: Some(pb::executor_info::Type::Default as i32),
        executor_id: pb::ExecutorId {
            value: "ex-group".into(),
        },
        command: Some(pb::CommandInfo {
            value: Some("sleep 600".into()),
            ..Default::default()
        }),
        resources: pando_resources::Resources::parse("cpus:0.1;mem:32")
            .unwrap()
            .to_proto(),
        ..Default::default()
    };
    let group = pb::TaskGroupInfo {
        tasks: vec![command_task("g1", "true", 0.2, 64.0)],
    };
    master.send(Down::RunTaskGroup(link::RunTaskGroup {
        framework: framework("fw-nest", false),
        executor,
        task_group: group,
    }));
    let a = std::sync::Arc::clone(&agent.agent);
    eventually("the executor to launch", || {
        executor_pid(&a, "fw-nest", "ex-group").is_some()
    })
    .await;
    let parent = {
        let state = agent.agent.lock();
        state.frameworks["fw-nest"].executors["ex-group"]
            .container_id
            .clone()
    };
    let addr = agent.addr;
    let call = move |body: String| {
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            write!(
                stream,
                "POST /api/v1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let mut text = String::new();
            stream.read_to_string(&mut text).unwrap();
            let code: u16 = text[9..12].parse().unwrap();
            let body = text
                .split_once("\r\n\r\n")
                .map(|(_, b)| b.to_string())
                .unwrap_or_default();
            (code, body)
        })
    };
    let launch = |id: &str, command: &str| {
        format!(
            r#"{{"type":"LAUNCH_CONTAINER","launch_container":{{"container_id":{{"value":"{id}","parent":{{"value":"{parent}"}}}},"command":{{"value":"{command}"}},"resources":[{{"name":"cpus","type":"SCALAR","scalar":{{"value":0.1}}}},{{"name":"mem","type":"SCALAR","scalar":{{"value":32}}}}]}}}}"#
        )
    };
    let wait = |id: &str| {
        format!(
            r#"{{"type":"WAIT_CONTAINER","wait_container":{{"container_id":{{"value":"{id}","parent":{{"value":"{parent}"}}}}}}}}"#
        )
    };
    let (code, body) = call(launch("n1", "echo nested; exit 3")).await.unwrap();
    assert_eq!(code, 200, "{body}");
    let (code, body) = call(wait("n1")).await.unwrap();
    assert_eq!(code, 200, "{body}");
    let waited: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(waited["wait_container"]["exit_status"], 3 << 8);
    let sandbox = sandbox_of(&agent.agent, "fw-nest", "ex-group").unwrap();
    let stdout = std::fs::read_to_string(sandbox.join("containers/n1/stdout")).unwrap();
    assert_eq!(stdout.trim(), "nested");
    // A second launch of a running id is 202, as in Mesos.
    let (code, _) = call(launch("n2", "sleep 600")).await.unwrap();
    assert_eq!(code, 200);
    let (code, _) = call(launch("n2", "sleep 600")).await.unwrap();
    assert_eq!(code, 202);
    if is_root() {
        let nested_group = std::path::Path::new("/sys/fs/cgroup/memory")
            .join(cgroups_root())
            .join(&parent)
            .join("n2");
        let limit = std::fs::read_to_string(nested_group.join("memory.limit_in_bytes")).unwrap();
        assert_eq!(limit.trim(), (32u64 << 20).to_string());
    }
    let kill = format!(
        r#"{{"type":"KILL_CONTAINER","kill_container":{{"container_id":{{"value":"n2","parent":{{"value":"{parent}"}}}}}}}}"#
    );
    let (code, _) = call(kill).await.unwrap();
    assert_eq!(code, 200);
    let (code, body) = call(wait("n2")).await.unwrap();
    assert_eq!(code, 200);
    let waited: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(waited["wait_container"]["exit_status"], 9, "{body}");
    // Nested containers end with their executor.
    let (code, _) = call(launch("n3", "sleep 600")).await.unwrap();
    assert_eq!(code, 200);
    let a = std::sync::Arc::clone(&agent.agent);
    eventually("n3 to start", || {
        a.lock().nested.get("n3").and_then(|n| n.pid).is_some()
    })
    .await;
    let n3 = agent.agent.lock().nested["n3"].pid.unwrap();
    master.send(Down::ShutdownFramework(link::ShutdownFramework {
        framework_id: pb::FrameworkId {
            value: "fw-nest".into(),
        },
    }));
    eventually("the nested container to die with its executor", || {
        !alive(n3)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_cleanup_kills_old_executors_and_starts_as_a_new_agent() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let first = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    let port = first.addr.port();
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-clean", true),
        task: executor_task("t-clean", "sleep 600", launcher.path()),
    }));
    let running = master.update_for("t-clean").await;
    assert_eq!(state_name(&running), "TASK_RUNNING");
    let pid = executor_pid(&first.agent, "fw-clean", "exec-t-clean").unwrap();
    first.crash();
    let mut f = flags(master.addr, work.path(), launcher.path(), port);
    f.recover = "cleanup".into();
    let _second = RunningAgent::start(f);
    let info = master.registered().await;
    assert!(info.id.is_none(), "cleanup registers as a new agent");
    eventually("the old executor to be killed", || !alive(pid)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_reattachment_waits_for_the_executor() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let first = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    let port = first.addr.port();
    // Two tasks on one executor.
    let one = executor_task("t-rk", "sleep 600", launcher.path());
    let mut two = command_task("t-rk2", "sleep 600", 0.1, 64.0);
    two.executor = one.executor.clone();
    for task in [one, two] {
        master.send(Down::RunTask(link::RunTask {
            framework: framework("fw-rk", true),
            task,
        }));
    }
    for task in ["t-rk", "t-rk2"] {
        let running = master.update_for(task).await;
        assert_eq!(state_name(&running), "TASK_RUNNING");
        master.ack(&running);
    }
    let a = std::sync::Arc::clone(&first.agent);
    eventually("the acks to land", || {
        a.lock().streams.values().all(|s| s.pending.is_empty())
    })
    .await;
    drop(a);
    first.crash();
    let second = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), port));
    // Kill one task at once, most likely before the executor has
    // subscribed again: only that task may end.
    second.agent.kill_task(
        &pb::FrameworkId {
            value: "fw-rk".into(),
        },
        &pb::TaskId {
            value: "t-rk".into(),
        },
        None,
    );
    let killed = master.update_for("t-rk").await;
    assert_eq!(state_name(&killed), "TASK_KILLED", "{:?}", killed.status);
    let a = std::sync::Arc::clone(&second.agent);
    eventually("the executor to be subscribed", || {
        a.lock()
            .frameworks
            .get("fw-rk")
            .and_then(|f| f.executors.get("exec-t-rk"))
            .is_some_and(|e| e.connection.is_some())
    })
    .await;
    let state = second.agent.lock();
    let executor = &state.frameworks["fw-rk"].executors["exec-t-rk"];
    assert_eq!(
        executor.tasks["t-rk2"].state,
        pb::TaskState::TaskRunning as i32,
        "the other task keeps running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_sandboxes_are_collected_after_the_gc_delay() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let mut f = flags(master.addr, work.path(), launcher.path(), 0);
    f.gc_delay = "200ms".into();
    let agent = RunningAgent::start(f);
    master.registered().await;
    // A sandbox from an earlier agent id, long finished.
    let stale = work
        .path()
        .join("slaves/old-agent/frameworks/fw/executors/ex/runs/c1");
    std::fs::create_dir_all(&stale).unwrap();
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-gc", false),
        task: command_task("t-gc", "true", 0.1, 64.0),
    }));
    let running = master.update_for("t-gc").await;
    master.ack(&running);
    let finished = master.update_for("t-gc").await;
    assert_eq!(state_name(&finished), "TASK_FINISHED");
    let sandbox = sandbox_of(&agent.agent, "fw-gc", "t-gc").unwrap();
    assert!(sandbox.exists());
    master.ack(&finished);
    eventually("the finished sandbox to be collected", || !sandbox.exists()).await;
    eventually("the stale sandbox to be collected", || {
        !work.path().join("slaves/old-agent").exists()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_the_agent_died_before_delivering_is_lost() {
    let mut master = FakeMaster::start().await;
    let work = tempfile::tempdir().unwrap();
    let launcher = launcher_dir();
    let first = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), 0));
    master.registered().await;
    let port = first.addr.port();
    // The executor takes a second to start, so the task is still queued.
    let mut task = executor_task("t-undelivered", "sleep 600", launcher.path());
    task.executor
        .as_mut()
        .unwrap()
        .command
        .as_mut()
        .unwrap()
        .value = Some(format!(
        "sleep 1; exec {}",
        launcher.path().join("pando").display()
    ));
    master.send(Down::RunTask(link::RunTask {
        framework: framework("fw-ud", true),
        task,
    }));
    let a = std::sync::Arc::clone(&first.agent);
    eventually("the executor to be forked", || {
        executor_pid(&a, "fw-ud", "exec-t-undelivered").is_some()
    })
    .await;
    drop(a);
    first.crash();
    let _second = RunningAgent::start(flags(master.addr, work.path(), launcher.path(), port));
    let lost = master.update_for("t-undelivered").await;
    assert_eq!(state_name(&lost), "TASK_LOST", "{:?}", lost.status);
    assert_eq!(
        lost.status.reason,
        Some(pb::task_status::Reason::AgentRestarted as i32)
    );
    // Left with nothing to run, the executor is shut down.
    master
        .expect("ExecutorExited", |m| {
            matches!(m, Up::ExecutorExited(e) if e.executor_id.value == "exec-t-undelivered")
                .then_some(())
        })
        .await;
}
