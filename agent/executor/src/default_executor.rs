//! The default executor: runs the tasks of a LAUNCH_GROUP as nested
//! containers of its own container, through the agent's operator API, as
//! Mesos's `mesos-default-executor` (`src/launcher/default_executor.cpp`)
//! does.
//!
//! For each task of a group it sends TASK_STARTING, POSTs
//! `LAUNCH_CONTAINER` to `/api/v1` with a fresh container id whose
//! parent is the executor's container (from SUBSCRIBED), and sends
//! TASK_RUNNING once the agent answers 2xx. It then long-polls
//! `WAIT_NESTED_CONTAINER` for every task and turns the answer into the
//! terminal update (the exit status as "Command exited with status N",
//! overridden by the agent's `state`, `reason`, `message` and `limitation`
//! when given; 404 means the container is gone: TASK_KILLED if it was being
//! killed, else TASK_FAILED). KILL and SHUTDOWN become
//! `KILL_NESTED_CONTAINER` with SIGTERM, then SIGKILL after the grace
//! period (3 s unless a kill policy says otherwise). When one task of a
//! group fails or is killed, every other task of that group is killed.
//! The executor exits when no task is left and every update is
//! acknowledged (or 60 s after the last task ended).
//!
//! Everything runs on one loop. HTTP calls run on spawned tasks that report
//! back through [`Internal`] messages; waits carry the connection
//! generation they were made in, so answers from before an agent restart
//! are ignored and the waits are made again after re-subscribing.

use std::collections::BTreeMap;
use std::time::Duration;

use pando_proto::json::{from_json, to_json};
use pando_proto::mesos::v1::agent::{self, call as agent_call};
use pando_proto::mesos::v1::executor::{event, Event};
use pando_proto::mesos::v1::{
    environment, task_status, CheckStatusInfo, ContainerId, ContainerStatus, FrameworkInfo,
    KillPolicy, TaskGroupInfo, TaskId, TaskInfo, TaskState, TaskStatus,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::command_executor::{grace_period, has_task_killing_state, DEFAULT_KILL_GRACE_PERIOD};
use crate::driver::{Driver, DriverError, Incoming};
use crate::env::ExecutorEnv;
use crate::health::{self, HealthReport};
use crate::http::{AgentClient, FullResponse};
use crate::{check, status};

/// The agent's operator API path.
pub const OPERATOR_API: &str = "/api/v1";
/// How long to wait for the last acknowledgements before exiting anyway.
pub const FINAL_ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// Delay before retrying an interrupted wait or a failed SIGKILL.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Why the default executor stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum DefaultExecutorError {
    /// The agent connection's driver went away.
    #[error(transparent)]
    Driver(#[from] DriverError),
}

/// Results of the executor's own background work.
#[derive(Debug)]
enum Internal {
    /// The answers to a group's LAUNCH_CONTAINER calls, in task order.
    Launched {
        tasks: Vec<TaskId>,
        results: Vec<Result<FullResponse, String>>,
    },
    /// The answer to a WAIT_NESTED_CONTAINER call.
    Waited {
        generation: u64,
        task_id: TaskId,
        result: Result<FullResponse, String>,
    },
    /// Time to wait on a container again.
    RetryWait { generation: u64, task_id: TaskId },
    /// The kill grace period of a task ran out.
    Escalate { task_id: TaskId },
    /// A health report for a task.
    Health {
        task_id: TaskId,
        report: HealthReport,
    },
    /// The task's `max_completion_time` ran out.
    MaxCompletion { task_id: TaskId },
    /// A changed general check result for a task.
    Check {
        task_id: TaskId,
        result: CheckStatusInfo,
    },
}

/// One task of a group and its nested container.
#[derive(Debug)]
struct Container {
    container_id: ContainerId,
    task: TaskInfo,
    /// The tasks of the group this task came in.
    group: Vec<TaskId>,
    launched: bool,
    waiting: bool,
    killing: bool,
    killing_task_group: bool,
    killed_by_completion: bool,
    launch_error: Option<String>,
    last_status: Option<TaskStatus>,
    health: Option<JoinHandle<()>>,
    checker: Option<JoinHandle<()>>,
    completion_timer: Option<JoinHandle<()>>,
}

impl Container {
    /// Stops the task's health and general checks and its completion timer.
    fn stop_timers(&mut self) {
        for handle in [
            self.health.take(),
            self.checker.take(),
            self.completion_timer.take(),
        ]
        .into_iter()
        .flatten()
        {
            handle.abort();
        }
    }
}

/// Runs the default executor until its tasks are done; returns the
/// process exit code.
pub async fn run(env: ExecutorEnv) -> Result<i32, DefaultExecutorError> {
    let (driver, mut incoming) = Driver::start(env);
    let (internal_tx, mut internal_rx) = mpsc::unbounded_channel();
    let mut executor = DefaultExecutor {
        driver,
        internal_tx,
        framework: None,
        executor_container: None,
        containers: BTreeMap::new(),
        subscribed: false,
        generation: 0,
        shutting_down: false,
        unhealthy: false,
        exit_deadline: None,
    };
    loop {
        let exit_deadline = executor.exit_deadline;
        let step = tokio::select! {
            item = incoming.recv() => match item {
                None => Some(1),
                Some(Incoming::Event(event)) => executor.on_event(*event)?,
                Some(Incoming::Disconnected) => {
                    executor.disconnected();
                    None
                }
                Some(Incoming::ShutdownExpired) => {
                    tracing::warn!("shutdown grace period expired; exiting");
                    Some(1)
                }
            },
            Some(internal) = internal_rx.recv() => executor.on_internal(internal)?,
            _ = sleep_until(exit_deadline) => {
                tracing::warn!("not every update was acknowledged; exiting anyway");
                Some(0)
            }
        };
        if let Some(code) = step {
            return Ok(code);
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct DefaultExecutor {
    driver: Driver,
    internal_tx: mpsc::UnboundedSender<Internal>,
    framework: Option<FrameworkInfo>,
    /// The executor's own container, the parent of every task's.
    executor_container: Option<ContainerId>,
    /// Live tasks by task id.
    containers: BTreeMap<String, Container>,
    subscribed: bool,
    /// Bumped on every (re)subscription and disconnection.
    generation: u64,
    shutting_down: bool,
    /// A health check killed a task; later terminal updates say unhealthy.
    unhealthy: bool,
    exit_deadline: Option<Instant>,
}

impl DefaultExecutor {
    fn on_event(&mut self, event: Event) -> Result<Option<i32>, DefaultExecutorError> {
        match event.r#type() {
            event::Type::Subscribed => {
                if let Some(subscribed) = event.subscribed {
                    tracing::info!(agent = %subscribed.agent_info.hostname, "subscribed");
                    self.framework = Some(subscribed.framework_info);
                    if subscribed.container_id.is_none() {
                        tracing::error!("SUBSCRIBED carries no container_id; nested containers cannot be launched");
                    }
                    self.executor_container = subscribed.container_id;
                    self.subscribed = true;
                    self.generation += 1;
                    let tasks: Vec<TaskId> = self
                        .containers
                        .values()
                        .map(|c| c.task.task_id.clone())
                        .collect();
                    for task_id in tasks {
                        self.wait(&task_id);
                    }
                }
            }
            event::Type::Launch => {
                tracing::error!("LAUNCH is for the command executor; shutting down");
                return self.shutdown();
            }
            event::Type::LaunchGroup => {
                if let Some(launch) = event.launch_group {
                    self.launch_group(launch.task_group)?;
                }
            }
            event::Type::Kill => {
                if let Some(kill) = event.kill {
                    self.kill_task(&kill.task_id, kill.kill_policy.as_ref())?;
                }
            }
            event::Type::Acknowledged => {
                if let Some(ack) = event.acknowledged {
                    tracing::debug!(task = %ack.task_id.value, "update acknowledged");
                }
                if self.containers.is_empty() && self.driver.unacknowledged_updates() == 0 {
                    return Ok(Some(0));
                }
            }
            event::Type::Shutdown => return self.shutdown(),
            event::Type::Error => {
                if let Some(error) = event.error {
                    tracing::error!(message = %error.message, "agent reported an error");
                }
            }
            event::Type::Message | event::Type::Heartbeat => {}
            event::Type::Unknown => tracing::warn!("unknown event ignored"),
        }
        Ok(None)
    }

    fn on_internal(&mut self, internal: Internal) -> Result<Option<i32>, DefaultExecutorError> {
        match internal {
            Internal::Launched { tasks, results } => self.launched(tasks, results),
            Internal::Waited {
                generation,
                task_id,
                result,
            } => self.waited(generation, &task_id, result),
            Internal::RetryWait {
                generation,
                task_id,
            } => {
                if generation == self.generation && self.subscribed {
                    self.wait(&task_id);
                }
                Ok(None)
            }
            Internal::Escalate { task_id } => {
                self.escalate(&task_id);
                Ok(None)
            }
            Internal::Health { task_id, report } => {
                self.on_health(&task_id, report)?;
                Ok(None)
            }
            Internal::MaxCompletion { task_id } => {
                self.max_completion(&task_id)?;
                Ok(None)
            }
            Internal::Check { task_id, result } => {
                self.on_check(&task_id, result)?;
                Ok(None)
            }
        }
    }

    fn disconnected(&mut self) {
        self.subscribed = false;
        self.generation += 1;
        for container in self.containers.values_mut() {
            container.waiting = false;
        }
    }

    fn status_for(&self, task_id: &TaskId, state: TaskState) -> TaskStatus {
        let mut status = status::new_status(task_id, state, &self.driver.env().executor_id);
        if let Some(container) = self.containers.get(&task_id.value) {
            if let Some(check) = &container.task.check {
                status.check_status = Some(status::empty_check_status(check));
            }
            status.container_status = Some(ContainerStatus {
                container_id: Some(container.container_id.clone()),
                ..Default::default()
            });
        }
        status
    }

    fn forward(&mut self, status: TaskStatus) -> Result<(), DefaultExecutorError> {
        tracing::info!(
            task = %status.task_id.value,
            state = status::state_name(status.state).unwrap_or("?"),
            message = status.message.as_deref().unwrap_or(""),
            "sending status update"
        );
        if let Some(container) = self.containers.get_mut(&status.task_id.value) {
            container.last_status = Some(status.clone());
        }
        self.driver.send_update(status)?;
        Ok(())
    }

    fn launch_group(&mut self, group: TaskGroupInfo) -> Result<(), DefaultExecutorError> {
        if self.shutting_down {
            tracing::warn!("ignoring a task group: the executor is shutting down");
            return Ok(());
        }
        let Some(parent) = self.executor_container.clone() else {
            tracing::error!("cannot launch a task group without the executor's container id");
            for task in &group.tasks {
                let mut failed = self.status_for(&task.task_id, TaskState::TaskFailed);
                failed.message = Some(
                    "The agent gave the default executor no container id (SUBSCRIBED.container_id)"
                        .into(),
                );
                self.driver.send_update(failed)?;
            }
            return Ok(());
        };
        let task_ids: Vec<TaskId> = group.tasks.iter().map(|t| t.task_id.clone()).collect();
        let container_ip = self
            .driver
            .env()
            .agent_endpoint
            .rsplit_once(':')
            .map(|(host, _)| host.trim_matches(['[', ']']).to_string())
            .unwrap_or_default();
        let mut calls = Vec::with_capacity(group.tasks.len());
        for task in &group.tasks {
            let container_id = ContainerId {
                value: uuid::Uuid::new_v4().to_string(),
                parent: Some(Box::new(parent.clone())),
            };
            self.containers.insert(
                task.task_id.value.clone(),
                Container {
                    container_id: container_id.clone(),
                    task: task.clone(),
                    group: task_ids.clone(),
                    launched: false,
                    waiting: false,
                    killing: false,
                    killing_task_group: false,
                    killed_by_completion: false,
                    launch_error: None,
                    last_status: None,
                    health: None,
                    checker: None,
                    completion_timer: None,
                },
            );
            let starting = self.status_for(&task.task_id, TaskState::TaskStarting);
            self.forward(starting)?;
            calls.push(launch_call(task, container_id, &container_ip));
        }
        let client = self.driver.client().clone();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let mut results = Vec::with_capacity(calls.len());
            for call in calls {
                results.push(
                    client
                        .post(OPERATOR_API, call)
                        .await
                        .map_err(|e| e.to_string()),
                );
            }
            let _ = tx.send(Internal::Launched {
                tasks: task_ids,
                results,
            });
        });
        Ok(())
    }

    fn launched(
        &mut self,
        tasks: Vec<TaskId>,
        results: Vec<Result<FullResponse, String>>,
    ) -> Result<Option<i32>, DefaultExecutorError> {
        if self.shutting_down {
            tracing::warn!("ignoring launched containers: the executor is shutting down");
            return Ok(None);
        }
        for (task_id, result) in tasks.iter().zip(results) {
            let Some(container) = self.containers.get_mut(&task_id.value) else {
                continue;
            };
            match result {
                Ok(response) if response.status.is_success() => {}
                Ok(response) => {
                    let body = String::from_utf8_lossy(&response.body).into_owned();
                    tracing::error!(task = %task_id.value, status = %response.status, %body, "nested container launch refused");
                    container.launch_error = Some(body);
                    continue;
                }
                Err(error) => {
                    tracing::error!(task = %task_id.value, %error, "nested container launch failed");
                    container.launch_error = Some(error);
                    continue;
                }
            }
            container.launched = true;
            self.driver.track_task(container.task.clone());
            if let Some(check) = &container.task.check {
                let tx = self.internal_tx.clone();
                let id = task_id.clone();
                match check::spawn_checker(check, move |result| {
                    tx.send(Internal::Check {
                        task_id: id.clone(),
                        result,
                    })
                    .is_ok()
                }) {
                    Ok(handle) => container.checker = Some(handle),
                    Err(error) => tracing::error!(%error, "failed to create checker"),
                }
            }
            if let Some(check) = &container.task.health_check {
                let tx = self.internal_tx.clone();
                let id = task_id.clone();
                match health::spawn_checker(check, move |report| {
                    tx.send(Internal::Health {
                        task_id: id.clone(),
                        report,
                    })
                    .is_ok()
                }) {
                    Ok(handle) => container.health = Some(handle),
                    Err(error) => tracing::error!(%error, "failed to create health checker"),
                }
            }
            if let Some(limit) = container.task.max_completion_time.as_ref() {
                if limit.nanoseconds > 0 {
                    let limit = Duration::from_nanos(u64::try_from(limit.nanoseconds).unwrap_or(0));
                    let tx = self.internal_tx.clone();
                    let id = task_id.clone();
                    container.completion_timer = Some(tokio::spawn(async move {
                        tokio::time::sleep(limit).await;
                        let _ = tx.send(Internal::MaxCompletion { task_id: id });
                    }));
                }
            }
            link_sandbox(
                self.driver.env().sandbox.as_deref(),
                task_id,
                &container.container_id,
            );
            let running = self.status_for(task_id, TaskState::TaskRunning);
            self.forward(running)?;
        }
        if self.subscribed {
            for task_id in &tasks {
                self.wait(task_id);
            }
        }
        Ok(None)
    }

    fn wait(&mut self, task_id: &TaskId) {
        let Some(container) = self.containers.get_mut(&task_id.value) else {
            return;
        };
        if container.waiting {
            return;
        }
        container.waiting = true;
        #[allow(deprecated)]
        let call = agent::Call {
            r#type: Some(agent_call::Type::WaitNestedContainer as i32),
            wait_nested_container: Some(agent_call::WaitNestedContainer {
                container_id: container.container_id.clone(),
            }),
            ..Default::default()
        };
        let body = to_json(&call);
        let client = self.driver.client().clone();
        let tx = self.internal_tx.clone();
        let generation = self.generation;
        let task_id = task_id.clone();
        tokio::spawn(async move {
            let result = client
                .post(OPERATOR_API, body)
                .await
                .map_err(|e| e.to_string());
            let _ = tx.send(Internal::Waited {
                generation,
                task_id,
                result,
            });
        });
    }

    fn retry_wait(&self, task_id: &TaskId) {
        let tx = self.internal_tx.clone();
        let generation = self.generation;
        let task_id = task_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(RETRY_INTERVAL).await;
            let _ = tx.send(Internal::RetryWait {
                generation,
                task_id,
            });
        });
    }

    fn waited(
        &mut self,
        generation: u64,
        task_id: &TaskId,
        result: Result<FullResponse, String>,
    ) -> Result<Option<i32>, DefaultExecutorError> {
        if generation != self.generation {
            tracing::debug!("ignoring a wait answer from an old connection");
            return Ok(None);
        }
        let Some(container) = self.containers.get_mut(&task_id.value) else {
            return Ok(None);
        };
        container.waiting = false;
        let response = match result {
            Ok(response) if response.status == hyper::StatusCode::SERVICE_UNAVAILABLE => {
                tracing::warn!(task = %task_id.value, "agent unavailable while waiting; retrying");
                self.retry_wait(task_id);
                return Ok(None);
            }
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(task = %task_id.value, %error, "wait interrupted; retrying");
                self.retry_wait(task_id);
                return Ok(None);
            }
        };
        if response.status != hyper::StatusCode::OK
            && response.status != hyper::StatusCode::NOT_FOUND
        {
            tracing::error!(
                task = %task_id.value,
                status = %response.status,
                body = %String::from_utf8_lossy(&response.body),
                "waiting on a nested container failed; shutting down"
            );
            return Ok(self.finish());
        }
        container.stop_timers();
        let (state, reason, message, limitation) = terminal_of(container, &response);
        let mut terminal = self.status_for(task_id, state);
        terminal.reason = reason;
        terminal.message = message;
        terminal.limitation = limitation;
        if self.unhealthy {
            terminal.healthy = Some(false);
        }
        self.forward(terminal)?;

        let Some(container) = self.containers.remove(&task_id.value) else {
            return Ok(None);
        };
        self.driver.untrack_task(task_id);
        if !self.shutting_down
            && !container.killing_task_group
            && (state == TaskState::TaskFailed || state == TaskState::TaskKilled)
        {
            tracing::info!(task = %task_id.value, "killing the rest of the task group");
            for other in &container.group {
                let Some(sibling) = self.containers.get_mut(&other.value) else {
                    continue;
                };
                sibling.killing_task_group = true;
                if sibling.killing {
                    continue;
                }
                self.kill(other, None)?;
            }
        }
        if self.containers.is_empty() {
            return Ok(self.finish());
        }
        Ok(None)
    }

    /// Exits now if every update is acknowledged, or arms the final timer.
    fn finish(&mut self) -> Option<i32> {
        if self.driver.unacknowledged_updates() == 0 {
            return Some(0);
        }
        self.exit_deadline
            .get_or_insert_with(|| Instant::now() + FINAL_ACK_TIMEOUT);
        None
    }

    fn shutdown(&mut self) -> Result<Option<i32>, DefaultExecutorError> {
        if self.shutting_down {
            return Ok(None);
        }
        tracing::info!("shutting down");
        self.shutting_down = true;
        if self.containers.is_empty() || !self.subscribed {
            return Ok(self.finish());
        }
        let tasks: Vec<TaskId> = self
            .containers
            .values()
            .filter(|c| !c.killing)
            .map(|c| c.task.task_id.clone())
            .collect();
        for task_id in tasks {
            self.kill(&task_id, None)?;
        }
        Ok(None)
    }

    fn kill_task(
        &mut self,
        task_id: &TaskId,
        over: Option<&KillPolicy>,
    ) -> Result<(), DefaultExecutorError> {
        if self.shutting_down {
            tracing::warn!(task = %task_id.value, "ignoring kill: shutting down");
            return Ok(());
        }
        let Some(container) = self.containers.get(&task_id.value) else {
            tracing::warn!(task = %task_id.value, "ignoring kill for a task that is not active");
            return Ok(());
        };
        if container.killing {
            return Ok(());
        }
        let grace = grace_period(over, container.task.kill_policy.as_ref());
        self.kill(task_id, Some(grace))
    }

    fn kill(
        &mut self,
        task_id: &TaskId,
        grace: Option<Duration>,
    ) -> Result<(), DefaultExecutorError> {
        let capable = has_task_killing_state(self.framework.as_ref());
        let Some(container) = self.containers.get_mut(&task_id.value) else {
            return Ok(());
        };
        if !container.launched || container.killing {
            return Ok(());
        }
        container.killing = true;
        container.stop_timers();
        let killed_by_completion = container.killed_by_completion;
        let container_id = container.container_id.clone();
        let grace = grace.unwrap_or(DEFAULT_KILL_GRACE_PERIOD);
        tracing::info!(task = %task_id.value, ?grace, "killing task with SIGTERM");
        let tx = self.internal_tx.clone();
        let id = task_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let _ = tx.send(Internal::Escalate { task_id: id });
        });
        if !killed_by_completion && capable {
            let killing = self.status_for(task_id, TaskState::TaskKilling);
            self.forward(killing)?;
        }
        let client = self.driver.client().clone();
        tokio::spawn(async move {
            if let Err(error) = kill_container(&client, &container_id, libc::SIGTERM).await {
                tracing::warn!(%error, "failed to send SIGTERM to a nested container");
            }
        });
        Ok(())
    }

    fn escalate(&mut self, task_id: &TaskId) {
        let Some(container) = self.containers.get(&task_id.value) else {
            return;
        };
        tracing::info!(task = %task_id.value, "grace period over; sending SIGKILL");
        let client = self.driver.client().clone();
        let container_id = container.container_id.clone();
        let tx = self.internal_tx.clone();
        let id = task_id.clone();
        tokio::spawn(async move {
            if let Err(error) = kill_container(&client, &container_id, libc::SIGKILL).await {
                tracing::warn!(%error, "SIGKILL failed; retrying");
                tokio::time::sleep(RETRY_INTERVAL).await;
                let _ = tx.send(Internal::Escalate { task_id: id });
            }
        });
    }

    /// Kills a task that ran past its `max_completion_time` at once; it
    /// ends TASK_FAILED with REASON_MAX_COMPLETION_TIME_REACHED.
    fn max_completion(&mut self, task_id: &TaskId) -> Result<(), DefaultExecutorError> {
        let Some(container) = self.containers.get_mut(&task_id.value) else {
            return Ok(());
        };
        if container.killing {
            return Ok(());
        }
        tracing::info!(task = %task_id.value, "task exceeded its max completion time");
        container.completion_timer = None;
        container.killed_by_completion = true;
        self.kill(task_id, Some(Duration::ZERO))
    }

    fn on_check(
        &mut self,
        task_id: &TaskId,
        result: CheckStatusInfo,
    ) -> Result<(), DefaultExecutorError> {
        let Some(container) = self.containers.get(&task_id.value) else {
            return Ok(());
        };
        if container.checker.is_none() || !self.subscribed {
            return Ok(());
        }
        let Some(last) = container.last_status.as_ref() else {
            return Ok(());
        };
        let mut update = status::renew(last);
        update.reason = Some(task_status::Reason::TaskCheckStatusUpdated as i32);
        update.check_status = Some(result);
        self.forward(update)
    }

    fn on_health(
        &mut self,
        task_id: &TaskId,
        report: HealthReport,
    ) -> Result<(), DefaultExecutorError> {
        if !self.subscribed {
            return Ok(());
        }
        let Some(container) = self.containers.get(&task_id.value) else {
            return Ok(());
        };
        if container.health.is_none() {
            return Ok(());
        }
        let Some(last) = container.last_status.as_ref() else {
            return Ok(());
        };
        let mut update = status::renew(last);
        update.reason = Some(task_status::Reason::TaskHealthCheckStatusUpdated as i32);
        update.healthy = Some(report.healthy);
        self.forward(update)?;
        if report.kill_task {
            self.unhealthy = true;
            self.kill_task(task_id, None)?;
        }
        Ok(())
    }
}

/// The LAUNCH_CONTAINER call for one task, as JSON: Mesos 1.11's default
/// executor uses this newer name (not the deprecated
/// LAUNCH_NESTED_CONTAINER) because it carries the task's `resources` and
/// `limits`, which the agent needs to size the nested container's cgroup.
fn launch_call(task: &TaskInfo, container_id: ContainerId, container_ip: &str) -> String {
    let mut command = task.command.clone().unwrap_or_default();
    let env = command.environment.get_or_insert_with(Default::default);
    env.variables.push(environment::Variable {
        name: "MESOS_CONTAINER_IP".into(),
        r#type: Some(environment::variable::Type::Value as i32),
        value: Some(container_ip.to_string()),
        secret: None,
    });
    if let Some(first) = task.resources.first() {
        let role = first
            .allocation_info
            .as_ref()
            .and_then(|a| a.role.clone())
            .unwrap_or_default();
        env.variables.push(environment::Variable {
            name: "MESOS_ALLOCATION_ROLE".into(),
            r#type: Some(environment::variable::Type::Value as i32),
            value: Some(role),
            secret: None,
        });
    }
    let call = agent::Call {
        r#type: Some(agent_call::Type::LaunchContainer as i32),
        launch_container: Some(agent_call::LaunchContainer {
            container_id,
            command: Some(command),
            resources: task.resources.clone(),
            container: task.container.clone(),
            limits: task.limits.clone(),
        }),
        ..Default::default()
    };
    to_json(&call)
}

/// KILL_NESTED_CONTAINER with `signal`; an error unless the agent says 200.
async fn kill_container(
    client: &AgentClient,
    container_id: &ContainerId,
    signal: i32,
) -> Result<(), String> {
    #[allow(deprecated)]
    let call = agent::Call {
        r#type: Some(agent_call::Type::KillNestedContainer as i32),
        kill_nested_container: Some(agent_call::KillNestedContainer {
            container_id: container_id.clone(),
            signal: Some(signal),
        }),
        ..Default::default()
    };
    let response = client
        .post(OPERATOR_API, to_json(&call))
        .await
        .map_err(|e| e.to_string())?;
    if response.status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "the agent failed to send signal {} ({signal}) to the container {}: {}",
            status::signal_description(signal),
            container_id.value,
            String::from_utf8_lossy(&response.body)
        ))
    }
}

/// The terminal state, reason, message and limitation of a waited task.
fn terminal_of(
    container: &Container,
    response: &FullResponse,
) -> (
    TaskState,
    Option<i32>,
    Option<String>,
    Option<pando_proto::mesos::v1::TaskResourceLimitation>,
) {
    if response.status == hyper::StatusCode::NOT_FOUND {
        return if container.killing {
            (TaskState::TaskKilled, None, None, None)
        } else if let Some(error) = &container.launch_error {
            (TaskState::TaskFailed, None, Some(error.clone()), None)
        } else {
            (
                TaskState::TaskFailed,
                None,
                Some("Unable to retrieve command's termination information".into()),
                None,
            )
        };
    }
    #[allow(deprecated)]
    let wait = from_json::<agent::Response>(&response.body)
        .ok()
        .and_then(|r| {
            r.wait_nested_container.or_else(|| {
                r.wait_container
                    .map(|w| agent::response::WaitNestedContainer {
                        exit_status: w.exit_status,
                        state: w.state,
                        reason: w.reason,
                        limitation: w.limitation,
                        message: w.message,
                    })
            })
        })
        .unwrap_or_default();
    let mut reason = None;
    let (mut state, mut message) = match wait.exit_status {
        None => (
            TaskState::TaskFailed,
            Some(
                container
                    .launch_error
                    .clone()
                    .unwrap_or_else(|| "Command terminated with unknown status".into()),
            ),
        ),
        Some(raw) => {
            let exit =
                <std::process::ExitStatus as std::os::unix::process::ExitStatusExt>::from_raw(raw);
            let state = if container.killed_by_completion {
                reason = Some(task_status::Reason::MaxCompletionTimeReached as i32);
                TaskState::TaskFailed
            } else if container.killing {
                TaskState::TaskKilled
            } else if exit.success() {
                TaskState::TaskFinished
            } else {
                TaskState::TaskFailed
            };
            (
                state,
                Some(format!("Command {}", status::describe_exit(exit))),
            )
        }
    };
    if let Some(agent_state) = wait.state.and_then(|s| TaskState::try_from(s).ok()) {
        state = agent_state;
    }
    if wait.reason.is_some() {
        reason = wait.reason;
    }
    if let Some(extra) = wait.message {
        message = Some(match message {
            Some(m) => format!("{m}: {extra}"),
            None => extra,
        });
    }
    (state, reason, message, wait.limitation)
}

/// Links `tasks/<task id>` in the executor's sandbox to the task's nested
/// sandbox, as Mesos does, so operators find each task's files by name.
fn link_sandbox(sandbox: Option<&str>, task_id: &TaskId, container_id: &ContainerId) {
    let Some(sandbox) = sandbox else {
        return;
    };
    let target = std::path::Path::new(sandbox)
        .join("containers")
        .join(&container_id.value);
    let link = std::path::Path::new("tasks").join(&task_id.value);
    let result =
        std::fs::create_dir_all("tasks").and_then(|()| std::os::unix::fs::symlink(&target, &link));
    if let Err(error) = result {
        tracing::warn!(%error, task = %task_id.value, "cannot link the task's sandbox");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn container(killing: bool) -> Container {
        Container {
            container_id: ContainerId {
                value: "c".into(),
                parent: None,
            },
            task: TaskInfo::default(),
            group: Vec::new(),
            launched: true,
            waiting: false,
            killing,
            killing_task_group: false,
            killed_by_completion: false,
            launch_error: None,
            last_status: None,
            health: None,
            checker: None,
            completion_timer: None,
        }
    }

    #[allow(deprecated)]
    fn answer(wait: agent::response::WaitNestedContainer) -> FullResponse {
        let response = agent::Response {
            r#type: Some(agent::response::Type::WaitNestedContainer as i32),
            wait_nested_container: Some(wait),
            ..Default::default()
        };
        FullResponse {
            status: hyper::StatusCode::OK,
            body: Bytes::from(to_json(&response)),
        }
    }

    #[test]
    fn the_agent_can_override_the_terminal_state() {
        let oom = answer(agent::response::WaitNestedContainer {
            exit_status: Some(libc::SIGKILL),
            state: Some(TaskState::TaskFailed as i32),
            reason: Some(task_status::Reason::ContainerLimitationMemory as i32),
            message: Some("Memory limit exceeded".into()),
            limitation: None,
        });
        let (state, reason, message, _) = terminal_of(&container(false), &oom);
        assert_eq!(state, TaskState::TaskFailed);
        assert_eq!(
            reason,
            Some(task_status::Reason::ContainerLimitationMemory as i32)
        );
        assert_eq!(
            message.as_deref(),
            Some("Command terminated with signal Killed: Memory limit exceeded")
        );
    }

    #[test]
    fn exit_statuses_map_like_mesos() {
        let exited = |raw| {
            answer(agent::response::WaitNestedContainer {
                exit_status: Some(raw),
                ..Default::default()
            })
        };
        let (state, _, message, _) = terminal_of(&container(false), &exited(0));
        assert_eq!(state, TaskState::TaskFinished);
        assert_eq!(message.as_deref(), Some("Command exited with status 0"));
        let (state, ..) = terminal_of(&container(false), &exited(2 << 8));
        assert_eq!(state, TaskState::TaskFailed);
        let (state, ..) = terminal_of(&container(true), &exited(libc::SIGTERM));
        assert_eq!(state, TaskState::TaskKilled);
        let unknown = answer(Default::default());
        let (state, _, message, _) = terminal_of(&container(false), &unknown);
        assert_eq!(state, TaskState::TaskFailed);
        assert_eq!(
            message.as_deref(),
            Some("Command terminated with unknown status")
        );
        let gone = FullResponse {
            status: hyper::StatusCode::NOT_FOUND,
            body: Bytes::new(),
        };
        assert_eq!(
            terminal_of(&container(true), &gone).0,
            TaskState::TaskKilled
        );
        let (state, _, message, _) = terminal_of(&container(false), &gone);
        assert_eq!(state, TaskState::TaskFailed);
        assert_eq!(
            message.as_deref(),
            Some("Unable to retrieve command's termination information")
        );
    }
}
