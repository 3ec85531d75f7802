//! The command executor, run as a process against a fake agent: the exact
//! update sequences Mesos's command executor produces, kill policies (told
//! apart by the signal that ended the task, not by wall time), health
//! check kills, SHUTDOWN, and re-subscription after an agent restart.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use pando_proto::mesos::v1::executor::call;
use pando_proto::mesos::v1::{
    check_info, health_check, task_status, CheckInfo, CheckStatusInfo, CommandInfo, DurationInfo,
    HealthCheck, KillPolicy, TaskState,
};
use TaskState::*;

const HEALTH_UPDATED: i32 = task_status::Reason::TaskHealthCheckStatusUpdated as i32;

#[tokio::test]
async fn a_finished_task_reports_starting_running_finished_and_exits() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    let subscribe = &agent.subscribes()[0];
    assert!(subscribe.unacknowledged_updates.is_empty());
    assert!(subscribe.unacknowledged_tasks.is_empty());

    agent.send(&launch(shell_task("t1", "echo hello")));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());
    let updates = agent.updates();
    assert_eq!(
        states(&updates),
        vec![TaskStarting, TaskRunning, TaskFinished]
    );
    assert_eq!(
        updates[2].message.as_deref(),
        Some("Command exited with status 0")
    );
    for update in &updates {
        assert_eq!(update.task_id.value, "t1");
        assert_eq!(update.executor_id.as_ref().unwrap().value, EXECUTOR_ID);
        assert_eq!(update.source, Some(task_status::Source::Executor as i32));
        assert_eq!(update.uuid.as_ref().unwrap().len(), 16);
        assert!(update.timestamp.is_some());
    }
    let uuids: std::collections::HashSet<_> = updates.iter().map(|u| u.uuid.clone()).collect();
    assert_eq!(uuids.len(), 3, "every update has a fresh uuid");
    for call in agent.calls() {
        assert_eq!(call.framework_id.value, FRAMEWORK_ID);
        assert_eq!(call.executor_id.value, EXECUTOR_ID);
    }
    assert_eq!(
        std::fs::read_to_string(executor.path("stdout")).unwrap(),
        "hello\n"
    );
}

#[tokio::test]
async fn a_failing_task_reports_its_exit_status() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    let mut task = shell_task("t1", "exit $CODE");
    task.command.as_mut().unwrap().environment = Some(pando_proto::mesos::v1::Environment {
        variables: vec![pando_proto::mesos::v1::environment::Variable {
            name: "CODE".into(),
            value: Some("3".into()),
            ..Default::default()
        }],
    });
    agent.send(&launch(task));
    assert_eq!(executor.exit_code().await, 0);
    let updates = agent.updates();
    assert_eq!(
        states(&updates),
        vec![TaskStarting, TaskRunning, TaskFailed]
    );
    assert_eq!(
        updates[2].message.as_deref(),
        Some("Command exited with status 3")
    );
}

#[tokio::test]
async fn a_shell_command_that_does_not_exist_fails_with_the_shells_words() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    agent.send(&launch(shell_task("t1", "no-such-command-anywhere")));
    assert_eq!(executor.exit_code().await, 0);
    let updates = agent.updates();
    assert_eq!(
        states(&updates),
        vec![TaskStarting, TaskRunning, TaskFailed]
    );
    let message = updates[2].message.clone().unwrap_or_default();
    assert!(
        message.starts_with("Command exited with status 127: ")
            && message.contains("no-such-command-anywhere")
            && message.contains("not found"),
        "{message}"
    );
}

#[tokio::test]
async fn a_command_that_cannot_start_fails_with_the_error() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    let mut task = shell_task("t1", "");
    task.command = Some(CommandInfo {
        shell: Some(false),
        value: Some("/nonexistent/pando-no-such-binary".into()),
        arguments: vec!["pando-no-such-binary".into()],
        ..Default::default()
    });
    agent.send(&launch(task));
    assert_eq!(executor.exit_code().await, 0);
    let updates = agent.updates();
    assert_eq!(states(&updates), vec![TaskStarting, TaskFailed]);
    let message = updates[1].message.clone().unwrap();
    assert!(
        message.contains("/nonexistent/pando-no-such-binary"),
        "{message}"
    );
    assert!(message.contains("No such file or directory"), "{message}");
}

#[tokio::test]
async fn kill_sends_killing_then_escalates_to_sigkill_after_the_kill_event_grace_period() {
    let agent = FakeAgent::start(true).await;
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    // The task ignores SIGTERM, so only SIGKILL ends it. Its own policy
    // would wait an hour; the KILL event's policy overrides it.
    let mut task = shell_task(
        "t1",
        "trap '' TERM; touch ready; while true; do sleep 0.05; done",
    );
    task.kill_policy = Some(KillPolicy {
        grace_period: Some(DurationInfo {
            nanoseconds: 3_600_000_000_000,
        }),
    });
    agent.send(&launch(task));
    let ready = executor.path("ready");
    eventually(
        "the task to trap SIGTERM",
        || executor.logs(),
        || ready.exists(),
    )
    .await;
    agent.send(&kill("t1", Some(Duration::from_millis(200))));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());
    let updates = agent.updates();
    assert_eq!(
        states(&updates),
        vec![TaskStarting, TaskRunning, TaskKilling, TaskKilled]
    );
    assert_eq!(
        updates[3].message.as_deref(),
        Some("Command terminated with signal Killed")
    );
}

#[tokio::test]
async fn kill_without_the_killing_capability_ends_the_task_with_sigterm() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    agent.send(&launch(shell_task("t1", "sleep 1000")));
    eventually("RUNNING", || executor.logs(), || agent.updates().len() == 2).await;
    agent.send(&kill("t1", None));
    assert_eq!(executor.exit_code().await, 0);
    let updates = agent.updates();
    assert_eq!(
        states(&updates),
        vec![TaskStarting, TaskRunning, TaskKilled]
    );
    assert_eq!(
        updates[2].message.as_deref(),
        Some("Command terminated with signal Terminated")
    );
}

#[tokio::test]
async fn shutdown_kills_the_task_and_exits() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    agent.send(&launch(shell_task("t1", "sleep 1000")));
    eventually("RUNNING", || executor.logs(), || agent.updates().len() == 2).await;
    agent.send(&shutdown());
    assert_eq!(executor.exit_code().await, 0);
    assert_eq!(
        states(&agent.updates()),
        vec![TaskStarting, TaskRunning, TaskKilled]
    );
}

fn fast_check(kind: health_check::Type, consecutive_failures: u32) -> HealthCheck {
    HealthCheck {
        r#type: Some(kind as i32),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.05),
        timeout_seconds: Some(10.0),
        grace_period_seconds: Some(0.0),
        consecutive_failures: Some(consecutive_failures),
        ..Default::default()
    }
}

#[tokio::test]
async fn failing_tcp_health_checks_kill_the_task_after_consecutive_failures() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut task = shell_task("t1", "sleep 1000");
    let mut check = fast_check(health_check::Type::Tcp, 2);
    check.tcp = Some(health_check::TcpCheckInfo {
        port: u32::from(port),
        ..Default::default()
    });
    task.health_check = Some(check);
    agent.send(&launch(task));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());
    let updates = agent.updates();
    assert_eq!(
        states(&updates),
        vec![
            TaskStarting,
            TaskRunning,
            TaskRunning,
            TaskRunning,
            TaskKilled
        ]
    );
    for unhealthy in &updates[2..4] {
        assert_eq!(unhealthy.healthy, Some(false));
        assert_eq!(unhealthy.reason, Some(HEALTH_UPDATED));
    }
    assert_eq!(updates[4].healthy, Some(false));
    assert_eq!(updates[4].reason, None);
    assert_eq!(
        updates[4].message.as_deref(),
        Some("Command terminated with signal Terminated")
    );
}

#[tokio::test]
async fn a_passing_http_health_check_marks_the_task_healthy_once() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    let mut task = shell_task("t1", "sleep 1000");
    let mut check = fast_check(health_check::Type::Http, 3);
    check.http = Some(health_check::HttpCheckInfo {
        port: u32::from(agent.addr.port()),
        path: Some("/health".into()),
        ..Default::default()
    });
    task.health_check = Some(check);
    agent.send(&launch(task));
    eventually(
        "a health update",
        || executor.logs(),
        || agent.updates().len() >= 3,
    )
    .await;
    // Several more checks pass without another update.
    let probes = agent.state.health_probes.load(Ordering::SeqCst);
    eventually(
        "more health checks",
        || executor.logs(),
        || agent.state.health_probes.load(Ordering::SeqCst) >= probes + 3,
    )
    .await;
    agent.send(&kill("t1", None));
    assert_eq!(executor.exit_code().await, 0);
    let updates = agent.updates();
    assert_eq!(
        states(&updates),
        vec![TaskStarting, TaskRunning, TaskRunning, TaskKilled]
    );
    assert_eq!(updates[2].healthy, Some(true));
    assert_eq!(updates[2].reason, Some(HEALTH_UPDATED));
}

#[tokio::test]
async fn a_failing_command_health_check_kills_the_task() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    let mut task = shell_task("t1", "sleep 1000");
    let mut check = fast_check(health_check::Type::Command, 1);
    check.command = Some(CommandInfo {
        value: Some("exit 1".into()),
        ..Default::default()
    });
    task.health_check = Some(check);
    agent.send(&launch(task));
    assert_eq!(executor.exit_code().await, 0);
    let updates = agent.updates();
    assert_eq!(
        states(&updates),
        vec![TaskStarting, TaskRunning, TaskRunning, TaskKilled]
    );
    assert_eq!(updates[2].healthy, Some(false));
    assert_eq!(updates[3].healthy, Some(false));
}

#[tokio::test]
async fn after_an_agent_restart_it_resubscribes_with_unacknowledged_updates_and_task() {
    let mut agent = FakeAgent::start(false).await;
    agent.state.auto_ack.store(false, Ordering::SeqCst);
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    agent.send(&launch(shell_task("t1", "echo $$ > pid; exec sleep 1000")));
    eventually("RUNNING", || executor.logs(), || agent.updates().len() == 2).await;
    let sent = agent.updates();

    agent.restart().await;
    eventually(
        "a second SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 2,
    )
    .await;
    let resubscribe = agent.subscribes()[1].clone();
    let resent: Vec<_> = resubscribe
        .unacknowledged_updates
        .iter()
        .map(|u| u.status.uuid.clone())
        .collect();
    assert_eq!(
        resent,
        sent.iter().map(|s| s.uuid.clone()).collect::<Vec<_>>()
    );
    assert_eq!(
        states(
            &resubscribe
                .unacknowledged_updates
                .iter()
                .map(|u| u.status.clone())
                .collect::<Vec<_>>()
        ),
        vec![TaskStarting, TaskRunning]
    );
    assert_eq!(resubscribe.unacknowledged_tasks.len(), 1);
    assert_eq!(resubscribe.unacknowledged_tasks[0].task_id.value, "t1");
    // The task survived the restart.
    let pid: i32 = std::fs::read_to_string(executor.path("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(process_alive(pid));

    // Once acknowledged, the updates are not sent again.
    agent.ack_all();
    agent.state.auto_ack.store(true, Ordering::SeqCst);
    agent.restart().await;
    eventually(
        "a third SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 3,
    )
    .await;
    let third = agent.subscribes()[2].clone();
    assert!(third.unacknowledged_updates.is_empty(), "{third:?}");
    assert!(third.unacknowledged_tasks.is_empty());

    agent.send(&kill("t1", None));
    assert_eq!(executor.exit_code().await, 0);
    assert_eq!(
        states(&agent.updates()),
        vec![TaskStarting, TaskRunning, TaskKilled]
    );
    assert!(agent
        .calls()
        .iter()
        .all(|c| c.r#type() != call::Type::Unknown));
}

#[tokio::test]
async fn without_checkpointing_a_lost_agent_means_kill_and_exit() {
    let mut agent = FakeAgent::start(false).await;
    let options = Options {
        checkpoint: false,
        shutdown_grace: "1secs",
        token: None,
    };
    let mut executor = ExecutorProcess::start("command", &agent, options);
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    agent.send(&launch(shell_task("t1", "echo $$ > pid; exec sleep 1000")));
    let pid_file = executor.path("pid");
    eventually(
        "the task to start",
        || executor.logs(),
        || std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n')),
    )
    .await;
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    agent.stop();
    // The terminal update cannot be delivered, so the executor gives up
    // when the shutdown grace period ends.
    assert_eq!(executor.exit_code().await, 1);
    assert!(!process_alive(pid), "the task outlived its executor");
    assert_eq!(agent.subscribes().len(), 1);
}

fn process_alive(pid: i32) -> bool {
    // A zombie still answers signal 0; look at its state instead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_general_check_reports_changed_results_only() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    let mut task = shell_task("t1", "sleep 1000");
    task.check = Some(CheckInfo {
        r#type: Some(check_info::Type::Http as i32),
        http: Some(check_info::Http {
            port: u32::from(agent.addr.port()),
            path: Some("/health".into()),
        }),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.05),
        timeout_seconds: Some(10.0),
        ..Default::default()
    });
    agent.send(&launch(task));
    eventually(
        "a check update",
        || executor.logs(),
        || agent.updates().len() >= 3,
    )
    .await;
    let probes = agent.state.health_probes.load(Ordering::SeqCst);
    eventually(
        "more checks",
        || executor.logs(),
        || agent.state.health_probes.load(Ordering::SeqCst) >= probes + 3,
    )
    .await;
    agent.send(&kill("t1", None));
    assert_eq!(executor.exit_code().await, 0);
    let updates = agent.updates();
    assert_eq!(
        states(&updates),
        vec![TaskStarting, TaskRunning, TaskRunning, TaskKilled]
    );
    let empty = CheckStatusInfo {
        r#type: Some(check_info::Type::Http as i32),
        http: Some(Default::default()),
        ..Default::default()
    };
    assert_eq!(updates[0].check_status.as_ref(), Some(&empty));
    assert_eq!(updates[1].check_status.as_ref(), Some(&empty));
    assert_eq!(
        updates[2].reason,
        Some(task_status::Reason::TaskCheckStatusUpdated as i32)
    );
    let http = updates[2].check_status.as_ref().unwrap().http.unwrap();
    assert_eq!(http.status_code, Some(200));
    assert_eq!(updates[3].check_status.as_ref(), Some(&empty));
}

#[tokio::test]
async fn a_second_kill_can_only_shorten_the_grace_period() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    agent.send(&launch(shell_task(
        "t1",
        "trap '' TERM; touch ready; while true; do sleep 0.05; done",
    )));
    let ready = executor.path("ready");
    eventually(
        "the task to trap SIGTERM",
        || executor.logs(),
        || ready.exists(),
    )
    .await;
    agent.send(&kill("t1", Some(Duration::from_secs(3600))));
    // A longer grace period is ignored; a shorter one reschedules SIGKILL.
    agent.send(&kill("t1", Some(Duration::from_secs(7200))));
    agent.send(&kill("t1", Some(Duration::from_millis(100))));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());
    let updates = agent.updates();
    assert_eq!(
        states(&updates),
        vec![TaskStarting, TaskRunning, TaskKilled]
    );
    assert_eq!(
        updates[2].message.as_deref(),
        Some("Command terminated with signal Killed")
    );
}

#[tokio::test]
async fn sigterm_to_the_executor_kills_the_task_like_shutdown() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    agent.send(&launch(shell_task("t1", "sleep 1000")));
    eventually("RUNNING", || executor.logs(), || agent.updates().len() == 2).await;
    let pid = i32::try_from(executor.child.id()).unwrap();
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());
    assert_eq!(
        states(&agent.updates()),
        vec![TaskStarting, TaskRunning, TaskKilled]
    );
}

#[tokio::test]
async fn a_task_past_its_max_completion_time_fails_without_killing_state() {
    let agent = FakeAgent::start(true).await;
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    let mut task = shell_task("t1", "sleep 1000");
    task.max_completion_time = Some(DurationInfo {
        nanoseconds: 100_000_000,
    });
    agent.send(&launch(task));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());
    let updates = agent.updates();
    assert_eq!(
        states(&updates),
        vec![TaskStarting, TaskRunning, TaskFailed]
    );
    assert_eq!(
        updates[2].reason,
        Some(task_status::Reason::MaxCompletionTimeReached as i32)
    );
}

#[tokio::test]
async fn kill_reaches_processes_that_left_the_task_process_group() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    agent.send(&launch(shell_task(
        "t1",
        "setsid sleep 1000 & echo $! > escaped; wait",
    )));
    let escaped = executor.path("escaped");
    eventually(
        "the escaped process",
        || executor.logs(),
        || std::fs::read_to_string(&escaped).is_ok_and(|s| s.ends_with('\n')),
    )
    .await;
    let pid: i32 = std::fs::read_to_string(&escaped)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eventually(
        "setsid to take effect",
        || executor.logs(),
        || {
            // SAFETY: getsid only reads its argument.
            unsafe { libc::getsid(pid) == pid }
        },
    )
    .await;
    agent.send(&kill("t1", None));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());
    eventually(
        "the escaped process to die",
        || executor.logs(),
        || !process_alive(pid),
    )
    .await;
}

#[tokio::test]
async fn the_task_runs_as_its_command_user() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::skip("switching users needs root");
        return;
    }
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    let mut task = shell_task("t1", "id -un");
    task.command.as_mut().unwrap().user = Some("nobody".into());
    agent.send(&launch(task));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());
    assert_eq!(
        states(&agent.updates()),
        vec![TaskStarting, TaskRunning, TaskFinished]
    );
    assert_eq!(
        std::fs::read_to_string(executor.path("stdout")).unwrap(),
        "nobody\n"
    );

    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    let mut task = shell_task("t2", "true");
    task.command.as_mut().unwrap().user = Some("pando-no-such-user".into());
    agent.send(&launch(task));
    assert_eq!(executor.exit_code().await, 0);
    let updates = agent.updates();
    assert_eq!(states(&updates), vec![TaskStarting, TaskFailed]);
    assert!(updates[1]
        .message
        .as_deref()
        .unwrap()
        .contains("user 'pando-no-such-user' does not exist"));
}

#[tokio::test]
async fn a_refused_update_is_resent_through_a_new_subscription() {
    let agent = FakeAgent::start(false).await;
    agent.state.refuse_updates.store(1, Ordering::SeqCst);
    let mut executor = ExecutorProcess::start("command", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    agent.send(&launch(shell_task("t1", "sleep 1000")));
    eventually(
        "a second SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 2,
    )
    .await;
    let starting = agent.updates()[0].clone();
    assert_eq!(TaskState::try_from(starting.state).unwrap(), TaskStarting);
    let resent = &agent.subscribes()[1].unacknowledged_updates;
    assert!(
        resent.iter().any(|u| u.status.uuid == starting.uuid),
        "{resent:?}"
    );
    agent.send(&kill("t1", None));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());
}

#[tokio::test]
async fn the_authentication_token_is_sent_and_hidden_from_the_task() {
    let agent = FakeAgent::start(false).await;
    let options = Options {
        token: Some("s3cret"),
        ..Options::default()
    };
    let mut executor = ExecutorProcess::start("command", &agent, options);
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    agent.send(&launch(shell_task(
        "t1",
        "echo \"[$MESOS_EXECUTOR_AUTHENTICATION_TOKEN]\"",
    )));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());
    let headers = agent.state.authorizations.lock().unwrap().clone();
    assert!(!headers.is_empty());
    assert!(
        headers
            .iter()
            .all(|h| h.as_deref() == Some("Bearer s3cret")),
        "{headers:?}"
    );
    assert_eq!(
        std::fs::read_to_string(executor.path("stdout")).unwrap(),
        "[]\n"
    );
    assert!(!executor.logs().contains("s3cret"));
}

/// A busy agent's full accept queue drops an UPDATE's connection: the
/// update is posted again on the live subscription, and an executor whose
/// framework does not checkpoint keeps running (it used to re-subscribe,
/// which for such a framework means shutting down, and the agent failed
/// the task with "Executor terminated").
#[tokio::test]
async fn an_update_that_does_not_get_through_is_posted_again_without_resubscribing() {
    let agent = FakeAgent::start(false).await;
    agent.state.drop_updates.store(2, Ordering::SeqCst);
    let options = Options {
        checkpoint: false,
        ..Options::default()
    };
    let mut executor = ExecutorProcess::start("command", &agent, options);
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    agent.send(&launch(shell_task("t1", "true")));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());
    assert_eq!(
        states(&agent.updates()),
        vec![TaskStarting, TaskRunning, TaskFinished],
        "{}",
        executor.logs()
    );
    assert_eq!(agent.subscribes().len(), 1, "{}", executor.logs());
}

/// A CPU-starved agent answers SUBSCRIBE late: the executor waits for the
/// answer on its open connection instead of hanging up and subscribing
/// again (the agent would have sent the LAUNCH on the stream it hung up).
#[tokio::test]
async fn a_late_answer_to_subscribe_is_waited_for() {
    let agent = FakeAgent::start(false).await;
    agent
        .state
        .delay_next_subscribe_ms
        .store(6_000, Ordering::SeqCst);
    let options = Options {
        checkpoint: false,
        ..Options::default()
    };
    let mut executor = ExecutorProcess::start("command", &agent, options);
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    eventually(
        "the answer to SUBSCRIBE",
        || executor.logs(),
        || executor.logs().contains("subscribed agent"),
    )
    .await;
    agent.send(&launch(shell_task("t1", "true")));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());
    assert_eq!(
        states(&agent.updates()),
        vec![TaskStarting, TaskRunning, TaskFinished]
    );
    assert_eq!(agent.subscribes().len(), 1, "{}", executor.logs());
}
