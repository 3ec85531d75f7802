//! The command executor: runs one task's `CommandInfo` as a child process
//! and reports its life to the agent, as Mesos's `mesos-executor`
//! (`src/launcher/executor.cpp`) does.
//!
//! The executor is one loop over four inputs: events from the [`Driver`],
//! the child's exit, health reports, and its own timers (SIGKILL
//! escalation, max completion time, the wait for the terminal
//! acknowledgement). For a task it sends, in order:
//!
//! * TASK_STARTING when the LAUNCH event arrives;
//! * TASK_RUNNING once the child is started, or TASK_FAILED with the launch
//!   error in `message` if it cannot start;
//! * TASK_RUNNING with `healthy` and reason
//!   REASON_TASK_HEALTH_CHECK_STATUS_UPDATED when a health check says so,
//!   and with a new `check_status` and reason
//!   REASON_TASK_CHECK_STATUS_UPDATED when a general check's result
//!   changes (every update of a task with a check carries its
//!   `check_status`, empty until a result exists);
//! * on KILL (or SHUTDOWN, or an unhealthy task): TASK_KILLING if the
//!   framework has the TASK_KILLING_STATE capability, then SIGTERM to the
//!   task's process tree (its process group and every descendant) and
//!   SIGKILL after the grace period (the KILL
//!   event's kill policy, else the task's, else 3 s);
//! * a terminal update when the child ends: TASK_KILLED if it was killed
//!   (with `healthy: false` after a health check kill), TASK_FINISHED on
//!   exit 0, TASK_FAILED otherwise (REASON_MAX_COMPLETION_TIME_REACHED when
//!   `max_completion_time` ran out), with "Command exited with status N" or
//!   "Command terminated with signal S" in `message`.
//!
//! It exits once the terminal update is acknowledged, or with a failure
//! code if no acknowledgement comes within 60 s.

use std::time::Duration;

use bytes::Bytes;
use pando_proto::mesos::v1::executor::{event, Event};
use pando_proto::mesos::v1::{
    framework_info, task_status, CheckStatusInfo, FrameworkInfo, KillPolicy, TaskId, TaskInfo,
    TaskState, TaskStatus,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::driver::{Driver, DriverError, Incoming};
use crate::env::ExecutorEnv;
use crate::health::{self, HealthReport};
use crate::{check, process, status};

/// Mesos's default kill grace period for the command executor.
pub const DEFAULT_KILL_GRACE_PERIOD: Duration = Duration::from_secs(3);
/// How long to wait for the terminal update's acknowledgement.
pub const TERMINAL_ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// Time kept back from the shutdown grace period to report TASK_KILLED
/// before the agent destroys the container (Mesos keeps its maximum reap
/// interval plus one second).
pub const SHUTDOWN_RESERVE: Duration = Duration::from_secs(2);

/// Why the command executor stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum CommandExecutorError {
    /// The agent connection's driver went away.
    #[error(transparent)]
    Driver(#[from] DriverError),
}

/// Runs the command executor until its task is done; returns the process
/// exit code.
pub async fn run(env: ExecutorEnv) -> Result<i32, CommandExecutorError> {
    let shutdown_grace = env.shutdown_grace_period;
    let (driver, mut incoming) = Driver::start(env);
    let (reaped_tx, mut reaped_rx) = mpsc::unbounded_channel();
    let (health_tx, mut health_rx) = mpsc::unbounded_channel();
    let (check_tx, mut check_rx) = mpsc::unbounded_channel();
    let mut executor = CommandExecutor {
        driver,
        reaped_tx,
        health_tx,
        check_tx,
        shutdown_grace,
        framework: None,
        task: None,
        pgid: None,
        launched: false,
        killed: false,
        killed_by_health: false,
        killed_by_max_completion: false,
        terminated: false,
        kill_started: None,
        kill_deadline: None,
        escalated: false,
        completion_deadline: None,
        health: None,
        checker: None,
        last_status: None,
        terminal_uuid: None,
        exit_deadline: None,
    };
    loop {
        let escalation = if executor.escalated {
            None
        } else {
            executor.kill_deadline
        };
        tokio::select! {
            item = incoming.recv() => match item {
                None => return Ok(1),
                Some(Incoming::Event(event)) => {
                    if let Some(code) = executor.on_event(*event)? {
                        return Ok(code);
                    }
                }
                Some(Incoming::Disconnected) => {}
                Some(Incoming::ShutdownExpired) => {
                    tracing::warn!("shutdown grace period expired; killing the task and exiting");
                    executor.signal(libc::SIGKILL);
                    return Ok(1);
                }
            },
            Some(exit) = reaped_rx.recv() => executor.reaped(exit)?,
            Some(report) = health_rx.recv() => executor.on_health(report)?,
            Some(result) = check_rx.recv() => executor.on_check(result)?,
            _ = sleep_until(escalation) => executor.escalate(),
            _ = sleep_until(executor.completion_deadline) => executor.max_completion_reached()?,
            _ = sleep_until(executor.exit_deadline) => {
                tracing::error!("the agent did not acknowledge the terminal status update");
                return Ok(1);
            }
        }
    }
}

/// Sleeps until `at`, or forever when there is no deadline.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Whether the framework can receive TASK_KILLING.
pub fn has_task_killing_state(framework: Option<&FrameworkInfo>) -> bool {
    framework.is_some_and(|f| {
        f.capabilities
            .iter()
            .any(|c| c.r#type() == framework_info::capability::Type::TaskKillingState)
    })
}

/// The grace period of a kill: the event's policy, else the task's, else
/// the default.
pub fn grace_period(over: Option<&KillPolicy>, task: Option<&KillPolicy>) -> Duration {
    over.and_then(|p| p.grace_period.as_ref())
        .or_else(|| task.and_then(|p| p.grace_period.as_ref()))
        .map(|d| Duration::from_nanos(u64::try_from(d.nanoseconds).unwrap_or(0)))
        .unwrap_or(DEFAULT_KILL_GRACE_PERIOD)
}

/// The environment Mesos adds for a task: its allocation role.
pub fn task_environment(task: &TaskInfo) -> Vec<(String, String)> {
    task.resources
        .first()
        .and_then(|r| r.allocation_info.as_ref())
        .and_then(|a| a.role.clone())
        .map(|role| vec![("MESOS_ALLOCATION_ROLE".to_string(), role)])
        .unwrap_or_default()
}

struct CommandExecutor {
    driver: Driver,
    /// Where the child's waiter reports its exit.
    reaped_tx: mpsc::UnboundedSender<std::io::Result<std::process::ExitStatus>>,
    /// Where the health checker reports.
    health_tx: mpsc::UnboundedSender<HealthReport>,
    /// Where the general checker reports changed results.
    check_tx: mpsc::UnboundedSender<CheckStatusInfo>,
    shutdown_grace: Duration,
    /// From SUBSCRIBED: tells whether TASK_KILLING may be sent.
    framework: Option<FrameworkInfo>,
    task: Option<TaskInfo>,
    /// The child's process group (its pid).
    pgid: Option<u32>,
    launched: bool,
    killed: bool,
    killed_by_health: bool,
    killed_by_max_completion: bool,
    terminated: bool,
    kill_started: Option<Instant>,
    kill_deadline: Option<Instant>,
    escalated: bool,
    completion_deadline: Option<Instant>,
    health: Option<JoinHandle<()>>,
    checker: Option<JoinHandle<()>>,
    /// The last update sent; health updates are derived from it.
    last_status: Option<TaskStatus>,
    terminal_uuid: Option<Bytes>,
    exit_deadline: Option<Instant>,
}

impl CommandExecutor {
    fn on_event(&mut self, event: Event) -> Result<Option<i32>, CommandExecutorError> {
        match event.r#type() {
            event::Type::Subscribed => {
                if let Some(subscribed) = event.subscribed {
                    tracing::info!(agent = %subscribed.agent_info.hostname, "subscribed");
                    self.framework = Some(subscribed.framework_info);
                }
            }
            event::Type::Launch => {
                if let Some(launch) = event.launch {
                    self.launch(launch.task)?;
                }
            }
            event::Type::LaunchGroup => {
                tracing::error!("LAUNCH_GROUP is for the default executor; shutting down");
                return self.shutdown();
            }
            event::Type::Kill => {
                if let Some(kill) = event.kill {
                    return self.kill(&kill.task_id, kill.kill_policy.as_ref());
                }
            }
            event::Type::Acknowledged => {
                if let Some(ack) = event.acknowledged {
                    if self.terminal_uuid.as_ref() == Some(&ack.uuid) {
                        tracing::info!("terminal update acknowledged; exiting");
                        return Ok(Some(0));
                    }
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

    fn forward(&mut self, mut status: TaskStatus) -> Result<(), CommandExecutorError> {
        if let Some(check) = self.task.as_ref().and_then(|t| t.check.as_ref()) {
            if status.check_status.is_none() {
                status.check_status = Some(status::empty_check_status(check));
            }
        }
        tracing::info!(
            task = %status.task_id.value,
            state = status::state_name(status.state).unwrap_or("?"),
            message = status.message.as_deref().unwrap_or(""),
            "sending status update"
        );
        self.last_status = Some(status.clone());
        self.driver.send_update(status)?;
        Ok(())
    }

    fn new_status(&self, task_id: &TaskId, state: TaskState) -> TaskStatus {
        status::new_status(task_id, state, &self.driver.env().executor_id)
    }

    fn launch(&mut self, task: TaskInfo) -> Result<(), CommandExecutorError> {
        if self.task.is_some() {
            let mut failed = self.new_status(&task.task_id, TaskState::TaskFailed);
            failed.message =
                Some("Attempted to run multiple tasks using a \"command\" executor".into());
            self.driver.send_update(failed)?;
            return Ok(());
        }
        self.driver.track_task(task.clone());
        self.task = Some(task.clone());
        let starting = self.new_status(&task.task_id, TaskState::TaskStarting);
        self.forward(starting)?;

        let Some(command) = task.command.as_ref() else {
            return self.launch_failed(&task.task_id, "the task has no command".into());
        };
        let child = match process::spawn(command, &task_environment(&task)) {
            Ok(child) => child,
            Err(error) => {
                return self.launch_failed(&task.task_id, format!("Failed to launch task: {error}"))
            }
        };
        self.pgid = child.id();
        tracing::info!(pid = ?self.pgid, task = %task.task_id.value, "forked command");
        let reaped = self.reaped_tx.clone();
        tokio::spawn(async move {
            let mut child = child;
            let _ = reaped.send(child.wait().await);
        });
        if let Some(limit) = task.max_completion_time.as_ref() {
            if limit.nanoseconds > 0 {
                let limit = Duration::from_nanos(u64::try_from(limit.nanoseconds).unwrap_or(0));
                self.completion_deadline = Some(Instant::now() + limit);
            }
        }
        if let Some(check) = task.check.as_ref() {
            let results = self.check_tx.clone();
            match check::spawn_checker(check, move |result| results.send(result).is_ok()) {
                Ok(handle) => self.checker = Some(handle),
                Err(error) => tracing::error!(%error, "failed to create checker"),
            }
        }
        if let Some(check) = task.health_check.as_ref() {
            let reports = self.health_tx.clone();
            match health::spawn_checker(check, move |report| reports.send(report).is_ok()) {
                Ok(handle) => self.health = Some(handle),
                Err(error) => tracing::error!(%error, "failed to create health checker"),
            }
        }
        let running = self.new_status(&task.task_id, TaskState::TaskRunning);
        self.forward(running)?;
        self.launched = true;
        Ok(())
    }

    fn launch_failed(
        &mut self,
        task_id: &TaskId,
        message: String,
    ) -> Result<(), CommandExecutorError> {
        tracing::error!(%message, "task could not be started");
        self.terminated = true;
        let mut failed = self.new_status(task_id, TaskState::TaskFailed);
        failed.message = Some(message);
        self.send_terminal(failed)
    }

    fn send_terminal(&mut self, status: TaskStatus) -> Result<(), CommandExecutorError> {
        self.terminal_uuid = status.uuid.clone();
        self.exit_deadline = Some(Instant::now() + TERMINAL_ACK_TIMEOUT);
        self.forward(status)
    }

    fn kill(
        &mut self,
        task_id: &TaskId,
        over: Option<&KillPolicy>,
    ) -> Result<Option<i32>, CommandExecutorError> {
        if self.terminated {
            return Ok(None);
        }
        let Some(task) = self.task.as_ref() else {
            tracing::error!(task = %task_id.value, "kill before any task was launched; exiting");
            return Ok(Some(1));
        };
        if &task.task_id != task_id {
            tracing::warn!(task = %task_id.value, "kill for an unknown task ignored");
            return Ok(None);
        }
        let grace = grace_period(over, task.kill_policy.as_ref());
        self.kill_with(grace)?;
        Ok(None)
    }

    fn kill_with(&mut self, grace: Duration) -> Result<(), CommandExecutorError> {
        if self.terminated || !self.launched {
            return Ok(());
        }
        let now = Instant::now();
        if self.killed {
            // A repeated kill may only shorten the remaining grace period.
            if let (Some(start), Some(deadline)) = (self.kill_started, self.kill_deadline) {
                if start + grace < deadline && !self.escalated {
                    tracing::info!(?grace, "rescheduling escalation to SIGKILL");
                    self.kill_deadline = Some((start + grace).max(now));
                }
            }
            return Ok(());
        }
        if !self.killed_by_max_completion && has_task_killing_state(self.framework.as_ref()) {
            if let Some(task) = &self.task {
                let killing = self.new_status(&task.task_id, TaskState::TaskKilling);
                self.forward(killing)?;
            }
        }
        self.stop_checks();
        tracing::info!(?grace, "sending SIGTERM to the task's process group");
        self.signal(libc::SIGTERM);
        self.killed = true;
        self.kill_started = Some(now);
        self.kill_deadline = Some(now + grace);
        Ok(())
    }

    fn signal(&self, signal: i32) {
        // Once reaped, the pid may belong to someone else.
        if self.terminated {
            return;
        }
        if let Some(pgid) = self.pgid {
            if let Err(error) = process::signal_tree(pgid, signal) {
                tracing::error!(%error, "failed to signal the task");
            }
        }
    }

    fn escalate(&mut self) {
        self.escalated = true;
        if self.terminated {
            return;
        }
        tracing::info!("task did not terminate in its grace period; sending SIGKILL");
        self.signal(libc::SIGKILL);
    }

    fn max_completion_reached(&mut self) -> Result<(), CommandExecutorError> {
        self.completion_deadline = None;
        if self.terminated || self.killed {
            return Ok(());
        }
        tracing::info!("task exceeded its max completion time; killing it");
        self.killed_by_max_completion = true;
        self.kill_with(Duration::ZERO)
    }

    fn shutdown(&mut self) -> Result<Option<i32>, CommandExecutorError> {
        tracing::info!("shutting down");
        if !self.launched {
            return Ok(if self.terminal_uuid.is_some() {
                None
            } else {
                Some(0)
            });
        }
        let grace = self.shutdown_grace.saturating_sub(SHUTDOWN_RESERVE);
        self.kill_with(grace)?;
        Ok(None)
    }

    fn reaped(
        &mut self,
        exit: std::io::Result<std::process::ExitStatus>,
    ) -> Result<(), CommandExecutorError> {
        self.terminated = true;
        self.completion_deadline = None;
        self.stop_checks();
        let Some(task_id) = self.task.as_ref().map(|t| t.task_id.clone()) else {
            return Ok(());
        };
        let (state, reason, message) = match exit {
            Err(error) => (
                TaskState::TaskFailed,
                None,
                format!("Failed to get exit status for Command: {error}"),
            ),
            Ok(exit) => {
                let (state, reason) = if self.killed_by_max_completion {
                    (
                        TaskState::TaskFailed,
                        Some(task_status::Reason::MaxCompletionTimeReached),
                    )
                } else if self.killed {
                    (TaskState::TaskKilled, None)
                } else if exit.success() {
                    (TaskState::TaskFinished, None)
                } else {
                    (TaskState::TaskFailed, None)
                };
                let mut message = format!("Command {}", status::describe_exit(exit));
                // 126 and 127 are the shell's "cannot execute" and "not
                // found": say what the shell said, so the user sees why.
                if matches!(exit.code(), Some(126 | 127)) {
                    if let Some(reason) = self.shell_complaint() {
                        message = format!("{message}: {reason}");
                    }
                }
                (state, reason, message)
            }
        };
        let mut terminal = self.new_status(&task_id, state);
        terminal.reason = reason.map(|r| r as i32);
        terminal.message = Some(message);
        if self.killed && self.killed_by_health {
            terminal.healthy = Some(false);
        }
        self.send_terminal(terminal)
    }

    /// The shell's complaint about a command it could not run, from the end
    /// of the task's stderr.
    fn shell_complaint(&self) -> Option<String> {
        let sandbox = self.driver.env().sandbox.clone()?;
        let stderr = std::fs::read(std::path::Path::new(&sandbox).join("stderr")).ok()?;
        let tail = &stderr[stderr.len().saturating_sub(4096)..];
        let text = String::from_utf8_lossy(tail);
        // The executor's own log lines share the file, so look at the last
        // few lines for the shell's, not only at the very last one.
        let markers = [
            "not found",
            "No such file",
            "Permission denied",
            "cannot execute",
        ];
        text.lines()
            .rev()
            .take(20)
            .map(str::trim)
            .find(|l| markers.iter().any(|m| l.contains(m)))
            .map(str::to_string)
    }

    /// Stops health and general checks: a task being killed or gone is not
    /// checked any more.
    fn stop_checks(&mut self) {
        if let Some(health) = self.health.take() {
            health.abort();
        }
        if let Some(checker) = self.checker.take() {
            checker.abort();
        }
    }

    fn on_check(&mut self, result: CheckStatusInfo) -> Result<(), CommandExecutorError> {
        if self.killed || self.terminated {
            return Ok(());
        }
        let Some(last) = self.last_status.as_ref() else {
            return Ok(());
        };
        tracing::info!(?result, "check result changed");
        let mut update = status::renew(last);
        update.reason = Some(task_status::Reason::TaskCheckStatusUpdated as i32);
        update.check_status = Some(result);
        self.forward(update)
    }

    fn on_health(&mut self, report: HealthReport) -> Result<(), CommandExecutorError> {
        if self.killed || self.terminated {
            return Ok(());
        }
        let Some(last) = self.last_status.as_ref() else {
            return Ok(());
        };
        tracing::info!(healthy = report.healthy, "task health changed");
        let mut update = status::renew(last);
        update.reason = Some(task_status::Reason::TaskHealthCheckStatusUpdated as i32);
        update.healthy = Some(report.healthy);
        self.forward(update)?;
        if report.kill_task {
            self.killed_by_health = true;
            let grace = grace_period(
                None,
                self.task.as_ref().and_then(|t| t.kill_policy.as_ref()),
            );
            self.kill_with(grace)?;
        }
        Ok(())
    }
}
