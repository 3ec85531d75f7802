//! The default executor, run as a process against a fake agent whose
//! nested containers are real processes: per-task update sequences, the
//! LAUNCH_CONTAINER and WAIT/KILL_NESTED_CONTAINER calls it makes, and the group kill
//! when one task fails or is killed.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use pando_proto::mesos::v1::agent;
use pando_proto::mesos::v1::executor::{event, Event};
use pando_proto::mesos::v1::{resource, value, Resource, TaskGroupInfo, TaskInfo, TaskState};
use TaskState::*;

fn launch_group(tasks: Vec<TaskInfo>) -> Event {
    Event {
        r#type: Some(event::Type::LaunchGroup as i32),
        launch_group: Some(event::LaunchGroup {
            task_group: TaskGroupInfo { tasks },
        }),
        ..Default::default()
    }
}

fn cpus(amount: f64, role: &str) -> Resource {
    Resource {
        name: "cpus".into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        allocation_info: Some(resource::AllocationInfo {
            role: Some(role.into()),
        }),
        ..Default::default()
    }
}

fn launches(agent: &FakeAgent) -> Vec<agent::call::LaunchContainer> {
    agent
        .operator_calls()
        .into_iter()
        .filter_map(|c| c.launch_container)
        .collect()
}

#[allow(deprecated)]
fn kills(agent: &FakeAgent) -> Vec<agent::call::KillNestedContainer> {
    agent
        .operator_calls()
        .into_iter()
        .filter_map(|c| c.kill_nested_container)
        .collect()
}

#[tokio::test]
#[allow(deprecated)]
async fn a_task_group_runs_as_nested_containers_and_finishes() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("default", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    let mut a = shell_task("a", "true");
    a.resources = vec![cpus(0.5, "web")];
    agent.send(&launch_group(vec![a, shell_task("b", "exit 0")]));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());

    let launched = launches(&agent);
    assert_eq!(launched.len(), 2);
    for launch in &launched {
        let parent = launch
            .container_id
            .parent
            .as_ref()
            .expect("a nested container id");
        assert_eq!(parent.value, EXECUTOR_CONTAINER);
        let env = launch
            .command
            .as_ref()
            .unwrap()
            .environment
            .as_ref()
            .unwrap();
        assert!(env.variables.iter().any(|v| v.name == "MESOS_CONTAINER_IP"));
    }
    // The task's resources size its nested container; its role reaches it.
    assert_eq!(launched[0].resources, vec![cpus(0.5, "web")]);
    let env = launched[0]
        .command
        .as_ref()
        .unwrap()
        .environment
        .as_ref()
        .unwrap();
    let role = env
        .variables
        .iter()
        .find(|v| v.name == "MESOS_ALLOCATION_ROLE")
        .unwrap();
    assert_eq!(role.value.as_deref(), Some("web"));
    for (task, launch) in ["a", "b"].iter().zip(&launched) {
        let updates = agent.updates_of(task);
        assert_eq!(
            states(&updates),
            vec![TaskStarting, TaskRunning, TaskFinished]
        );
        assert_eq!(
            updates[2].message.as_deref(),
            Some("Command exited with status 0")
        );
        for update in &updates {
            let container = update.container_status.as_ref().unwrap();
            assert_eq!(container.container_id.as_ref(), Some(&launch.container_id));
        }
        let link = std::fs::read_link(executor.path("tasks").join(task)).unwrap();
        assert!(link.ends_with(format!("containers/{}", launch.container_id.value)));
    }
    let waits = agent
        .operator_calls()
        .iter()
        .filter(|c| c.r#type() == agent::call::Type::WaitNestedContainer)
        .count();
    assert_eq!(waits, 2);
    assert!(kills(&agent).is_empty());
}

#[tokio::test]
async fn one_failed_task_kills_the_rest_of_its_group() {
    let agent = FakeAgent::start(true).await;
    let mut executor = ExecutorProcess::start("default", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    agent.send(&launch_group(vec![
        shell_task("long", "sleep 1000"),
        shell_task("bad", "sleep 0.2; exit 7"),
    ]));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());

    let bad = agent.updates_of("bad");
    assert_eq!(states(&bad), vec![TaskStarting, TaskRunning, TaskFailed]);
    assert_eq!(
        bad[2].message.as_deref(),
        Some("Command exited with status 7")
    );
    let long = agent.updates_of("long");
    assert_eq!(
        states(&long),
        vec![TaskStarting, TaskRunning, TaskKilling, TaskKilled]
    );
    assert_eq!(
        long[3].message.as_deref(),
        Some("Command terminated with signal Terminated")
    );
    let long_container = &launches(&agent)[0].container_id;
    let kills = kills(&agent);
    assert_eq!(kills.len(), 1);
    assert_eq!(&kills[0].container_id, long_container);
    assert_eq!(kills[0].signal, Some(libc::SIGTERM));
}

#[tokio::test]
async fn a_killed_task_takes_its_group_down_and_sigkill_follows_the_grace_period() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("default", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    // Nested containers run in the fake agent's directory; mark readiness
    // by absolute path.
    let ready = executor.path("ready");
    let stubborn = format!(
        "trap '' TERM; touch {}; while true; do sleep 0.05; done",
        ready.display()
    );
    agent.send(&launch_group(vec![
        shell_task("stubborn", &stubborn),
        shell_task("other", "sleep 1000"),
    ]));
    eventually(
        "the task to trap SIGTERM",
        || executor.logs(),
        || ready.exists(),
    )
    .await;
    eventually(
        "both RUNNING",
        || executor.logs(),
        || agent.updates().len() == 4,
    )
    .await;
    agent.send(&kill(
        "stubborn",
        Some(std::time::Duration::from_millis(100)),
    ));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());

    let stubborn = agent.updates_of("stubborn");
    assert_eq!(
        states(&stubborn),
        vec![TaskStarting, TaskRunning, TaskKilled]
    );
    assert_eq!(
        stubborn[2].message.as_deref(),
        Some("Command terminated with signal Killed")
    );
    let other = agent.updates_of("other");
    assert_eq!(states(&other), vec![TaskStarting, TaskRunning, TaskKilled]);
    let signals: Vec<_> = kills(&agent).iter().map(|k| k.signal).collect();
    assert!(signals.contains(&Some(libc::SIGKILL)), "{signals:?}");
}

#[tokio::test]
async fn shutdown_kills_every_task() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("default", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    agent.send(&launch_group(vec![
        shell_task("a", "sleep 1000"),
        shell_task("b", "sleep 1000"),
    ]));
    eventually(
        "both RUNNING",
        || executor.logs(),
        || agent.updates().len() == 4,
    )
    .await;
    agent.send(&shutdown());
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());
    for task in ["a", "b"] {
        assert_eq!(
            states(&agent.updates_of(task)),
            vec![TaskStarting, TaskRunning, TaskKilled]
        );
    }
}

#[tokio::test]
#[allow(deprecated)]
async fn after_an_agent_restart_it_resubscribes_and_waits_on_its_containers_again() {
    let mut agent = FakeAgent::start(false).await;
    agent
        .state
        .auto_ack
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let mut executor = ExecutorProcess::start("default", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    agent.send(&launch_group(vec![shell_task("t1", "sleep 1000")]));
    eventually("RUNNING", || executor.logs(), || agent.updates().len() == 2).await;
    let waits = |agent: &FakeAgent| {
        agent
            .operator_calls()
            .iter()
            .filter(|c| c.wait_nested_container.is_some())
            .count()
    };
    eventually(
        "WAIT_NESTED_CONTAINER",
        || executor.logs(),
        || waits(&agent) == 1,
    )
    .await;
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
    assert_eq!(resubscribe.unacknowledged_tasks.len(), 1);
    assert_eq!(resubscribe.unacknowledged_tasks[0].task_id.value, "t1");
    eventually(
        "a new WAIT_NESTED_CONTAINER",
        || executor.logs(),
        || waits(&agent) == 2,
    )
    .await;

    agent.ack_all();
    agent
        .state
        .auto_ack
        .store(true, std::sync::atomic::Ordering::SeqCst);
    agent.send(&kill("t1", None));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());
    let updates = agent.updates_of("t1");
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
async fn an_unhealthy_task_is_killed_with_its_group() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("default", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = u32::from(closed.local_addr().unwrap().port());
    drop(closed);
    let mut sick = shell_task("sick", "sleep 1000");
    sick.health_check = Some(pando_proto::mesos::v1::HealthCheck {
        r#type: Some(pando_proto::mesos::v1::health_check::Type::Tcp as i32),
        tcp: Some(pando_proto::mesos::v1::health_check::TcpCheckInfo {
            port,
            ..Default::default()
        }),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.05),
        grace_period_seconds: Some(0.0),
        consecutive_failures: Some(1),
        ..Default::default()
    });
    agent.send(&launch_group(vec![sick, shell_task("fine", "sleep 1000")]));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());
    let sick = agent.updates_of("sick");
    assert_eq!(
        states(&sick),
        vec![TaskStarting, TaskRunning, TaskRunning, TaskKilled]
    );
    assert_eq!(sick[2].healthy, Some(false));
    assert_eq!(sick[3].healthy, Some(false));
    let fine = agent.updates_of("fine");
    assert_eq!(states(&fine), vec![TaskStarting, TaskRunning, TaskKilled]);
}

#[tokio::test]
async fn a_task_past_its_max_completion_time_fails_and_takes_its_group_down() {
    let agent = FakeAgent::start(true).await;
    let mut executor = ExecutorProcess::start("default", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    let mut slow = shell_task("slow", "sleep 1000");
    slow.max_completion_time = Some(pando_proto::mesos::v1::DurationInfo {
        nanoseconds: 100_000_000,
    });
    agent.send(&launch_group(vec![slow, shell_task("other", "sleep 1000")]));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());
    let slow = agent.updates_of("slow");
    assert_eq!(states(&slow), vec![TaskStarting, TaskRunning, TaskFailed]);
    assert_eq!(
        slow[2].reason,
        Some(pando_proto::mesos::v1::task_status::Reason::MaxCompletionTimeReached as i32)
    );
    // FAILED is not KILLED, but it still takes the group down.
    assert_eq!(
        states(&agent.updates_of("other")),
        vec![TaskStarting, TaskRunning, TaskKilling, TaskKilled]
    );
}

#[tokio::test]
async fn a_container_the_agent_cannot_launch_fails_its_task_and_the_group() {
    let agent = FakeAgent::start(false).await;
    let mut executor = ExecutorProcess::start("default", &agent, Options::default());
    eventually(
        "SUBSCRIBE",
        || executor.logs(),
        || agent.subscribes().len() == 1,
    )
    .await;
    let mut broken = shell_task("broken", "");
    broken.command = Some(pando_proto::mesos::v1::CommandInfo {
        shell: Some(false),
        value: Some("/nonexistent/pando-no-such-binary".into()),
        ..Default::default()
    });
    agent.send(&launch_group(vec![
        broken,
        shell_task("other", "sleep 1000"),
    ]));
    assert_eq!(executor.exit_code().await, 0, "{}", executor.logs());
    let broken = agent.updates_of("broken");
    assert_eq!(states(&broken), vec![TaskStarting, TaskFailed]);
    let message = broken[1].message.clone().unwrap();
    assert!(
        message.contains("/nonexistent/pando-no-such-binary"),
        "{message}"
    );
    assert_eq!(
        states(&agent.updates_of("other")),
        vec![TaskStarting, TaskRunning, TaskKilled]
    );
}
