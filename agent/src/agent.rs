//! The agent's state and everything that changes it: frameworks, executors,
//! tasks, containers, and the status update manager.
//!
//! One [`Agent`] owns a [`State`] behind a single mutex that is never held
//! across an await. Messages arrive from three directions and each becomes a
//! method call here:
//!
//! ```text
//! master (link.rs) ── RunTask, KillTask, acks ──►┐
//! executors (http.rs /api/v1/executor) ── UPDATE ─┼─► Agent ─► containerizer (launch, destroy)
//! container waiters (process exit, OOM) ──────────┘     │
//!                                                       └─► status updates: checkpoint, send,
//!                                                           retry until acknowledged
//! ```
//!
//! Status updates travel in one stream per task: an update is checkpointed
//! (for checkpointing frameworks), then sent to the master only when every
//! earlier update of the task is acknowledged, and resent with backoff
//! until it is ([`status_update`]). After a restart,
//! [`recovery`] rebuilds the state from the checkpoints.

// ExecutorInfo.source, FrameworkInfo.role and the nested container calls
// are deprecated in Mesos, but frameworks and executors still use them.
#![allow(deprecated)]

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pando_link as link;
use pando_link::agent_message::Message as Up;
use pando_proto::codec::ContentType;
use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::executor as ex;
use pando_proto::stout::format_duration;
use pando_proto::task_state::is_terminal;
use pb::task_status::{Reason, Source};
use pb::TaskState;
use tokio::sync::mpsc;

use crate::cgroups::{now_secs, ContainerGroup, Isolator, Limits};
use crate::checkpoint::{self, MetaDir, UpdateRecord};
use crate::containerizer::{self, LaunchSpec};
use crate::flags::{AgentConfig, RecoverMode};

pub mod recovery;
pub mod status_update;

/// Why an agent operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The request names something the agent does not have (HTTP 400).
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The executor must subscribe first (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// Not yet: the caller should retry soon (HTTP 503).
    #[error("{0}")]
    Unavailable(String),
    /// Recovery failed.
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
}

/// The first interval between resends of an unacknowledged update.
pub const STATUS_UPDATE_RETRY_MIN: Duration = Duration::from_secs(10);
/// The longest interval between resends.
pub const STATUS_UPDATE_RETRY_MAX: Duration = Duration::from_secs(600);
/// Empty cgroups older than this, owned by no live container, are removed
/// at start-up.
const STALE_GROUP_AGE: Duration = Duration::from_secs(60);
/// How many finished tasks a live executor keeps for the state endpoints
/// (Mesos's MAX_COMPLETED_TASKS_PER_EXECUTOR).
const MAX_COMPLETED_TASKS_PER_EXECUTOR: usize = 200;
/// How many completed frameworks and executors the state endpoints keep.
const MAX_COMPLETED: usize = 50;

/// An executor's life stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorState {
    /// Launched (or re-attached); it has not subscribed yet.
    Registering,
    /// Subscribed; tasks go to it.
    Running,
    /// Told to shut down.
    Terminating,
    /// Its process is gone.
    Terminated,
}

/// Work waiting for an executor to subscribe.
// Few are queued at once, and only briefly; boxing buys nothing here.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Queued {
    /// A LAUNCH.
    Task(pb::TaskInfo),
    /// A LAUNCH_GROUP.
    Group(pb::TaskGroupInfo),
}

/// An executor's event stream.
#[derive(Debug, Clone)]
pub struct Connection {
    /// RecordIO-framed events go here.
    pub tx: mpsc::UnboundedSender<Bytes>,
    /// The encoding the executor asked for.
    pub content_type: ContentType,
}

impl Connection {
    /// Sends one event; false if the executor hung up.
    pub fn send(&self, event: &ex::Event) -> bool {
        let body = self.content_type.encode(event);
        self.tx.send(pando_proto::recordio::frame(&body)).is_ok()
    }
}

/// An agent-side reason to end an executor's tasks.
#[derive(Debug, Clone)]
pub struct Termination {
    /// The state its live tasks get.
    pub state: TaskState,
    /// The reason.
    pub reason: Reason,
    /// The message.
    pub message: String,
}

/// One executor and its container.
#[derive(Debug)]
pub struct Executor {
    /// Its info (framework id set).
    pub info: pb::ExecutorInfo,
    /// Its container.
    pub container_id: String,
    /// Its sandbox.
    pub directory: PathBuf,
    /// Its stage.
    pub state: ExecutorState,
    /// Tasks not yet delivered.
    pub queued: Vec<Queued>,
    /// Tasks delivered (or queued) with their latest state.
    pub tasks: BTreeMap<String, pb::Task>,
    /// Its event stream, while subscribed.
    pub connection: Option<Connection>,
    /// Its process.
    pub pid: Option<u32>,
    /// Whether its framework checkpoints.
    pub checkpoint: bool,
    /// Its cgroup.
    pub group: Option<Arc<ContainerGroup>>,
    /// Its limits.
    pub limits: Limits,
    /// Why the agent is ending it, if it is.
    pub termination: Option<Termination>,
    /// Whether this is the command executor of a single task.
    pub command_executor: bool,
    /// Whether it runs task groups (the default executor).
    pub default_executor: bool,
    /// KILLs that wait for the executor to subscribe again.
    pub pending_kills: Vec<(pb::TaskId, Option<pb::KillPolicy>)>,
    /// Re-attached after an agent restart and not yet subscribed again.
    pub recovered: bool,
}

/// A framework with executors here.
#[derive(Debug)]
pub struct Framework {
    /// Its info (id set).
    pub info: pb::FrameworkInfo,
    /// Live executors by id.
    pub executors: BTreeMap<String, Executor>,
    /// Ended executors, newest last.
    pub completed_executors: VecDeque<Executor>,
}

/// One task's status updates, in order.
#[derive(Debug)]
pub struct UpdateStream {
    /// The executor that owns the task.
    pub executor_id: Option<pb::ExecutorId>,
    /// Updates not yet acknowledged; the head is in flight.
    pub pending: VecDeque<link::StatusUpdate>,
    /// Uuids already accepted, to drop duplicates.
    pub seen: HashSet<Bytes>,
    /// The checkpoint file, for checkpointing frameworks.
    pub file: Option<PathBuf>,
    /// The current resend interval.
    pub backoff: Duration,
    /// When the head is resent.
    pub next_retry: Instant,
}

/// A nested container launched through the operator API.
#[derive(Debug)]
pub struct NestedContainer {
    /// Its id (with parent).
    pub id: pb::ContainerId,
    /// Its sandbox.
    pub directory: PathBuf,
    /// Its group.
    pub group: Option<Arc<ContainerGroup>>,
    /// Its pid.
    pub pid: Option<u32>,
    /// Its limits.
    pub limits: Limits,
    /// The wait status once it exited.
    pub exit: Option<i32>,
    /// Whether a kill was asked for.
    pub killed: bool,
    /// Whether the memory limit killed it.
    pub oom: bool,
    /// Wakes WAIT calls.
    pub done: Arc<tokio::sync::Notify>,
}

/// Counters for `/metrics/snapshot`.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    /// Tasks by terminal state name.
    pub tasks: BTreeMap<&'static str, u64>,
    /// Valid status updates from executors.
    pub valid_status_updates: u64,
    /// Invalid ones.
    pub invalid_status_updates: u64,
    /// Valid framework messages.
    pub valid_framework_messages: u64,
    /// Executors that were launched.
    pub executors_launched: u64,
    /// Registrations with a master.
    pub registrations: u64,
    /// Recovery problems.
    pub recovery_errors: u64,
}

/// Everything the agent knows, behind one lock.
#[derive(Debug)]
pub struct State {
    /// Its info; `id` is set once registered.
    pub info: pb::AgentInfo,
    /// The master it is registered with.
    pub master: Option<pb::MasterInfo>,
    /// Whether a master accepted it in this session.
    pub registered: bool,
    /// Live frameworks.
    pub frameworks: BTreeMap<String, Framework>,
    /// Frameworks that are gone, newest last.
    pub completed_frameworks: VecDeque<Framework>,
    /// Status update streams by (framework, task).
    pub streams: BTreeMap<(String, String), UpdateStream>,
    /// Dynamic reservations and volumes from the master.
    pub checkpointed_resources: Vec<pb::Resource>,
    /// Nested containers by id value.
    pub nested: BTreeMap<String, NestedContainer>,
    /// Counters.
    pub metrics: Metrics,
    /// Messages for the master that wait for registration.
    pub outbox: Vec<link::AgentMessage>,
    /// Problems met during recovery.
    pub recovery_errors: Vec<String>,
}

/// The agent.
#[derive(Debug)]
pub struct Agent {
    /// Validated flags.
    pub config: AgentConfig,
    /// The isolator in force.
    pub isolator: Isolator,
    /// The checkpoint layout.
    pub meta: MetaDir,
    /// `ip:port` of the agent's HTTP API, for executors and the master.
    pub endpoint: std::net::SocketAddr,
    /// When it started (seconds since the epoch).
    pub start_time: f64,
    state: Mutex<State>,
    link: Mutex<Option<mpsc::UnboundedSender<link::AgentMessage>>>,
    /// Set once recovery finished; until then executors get 503.
    recovered: std::sync::atomic::AtomicBool,
    /// Wakes the update retry loop.
    pub retry_wakeup: tokio::sync::Notify,
}

/// The exit status reported for an executor whose wait status is unknown,
/// as Mesos's agent reports it.
pub const UNKNOWN_EXIT_STATUS: i32 = -1;

fn id_of(task: &pb::TaskInfo) -> String {
    task.task_id.value.clone()
}

fn state_name(state: i32) -> &'static str {
    TaskState::try_from(state)
        .map(|s| s.as_str_name())
        .unwrap_or("TASK_UNKNOWN")
}

impl Agent {
    /// Creates the agent with its info (id unset) and recovered nothing yet.
    pub fn new(
        config: AgentConfig,
        endpoint: std::net::SocketAddr,
        info: pb::AgentInfo,
    ) -> Arc<Agent> {
        let isolator = Isolator::new(config.isolation, &config.flags.cgroups_root);
        let meta = MetaDir::new(&config.flags.work_dir);
        Arc::new(Agent {
            isolator,
            meta,
            endpoint,
            start_time: now_secs(),
            state: Mutex::new(State {
                info,
                master: None,
                registered: false,
                frameworks: BTreeMap::new(),
                completed_frameworks: VecDeque::new(),
                streams: BTreeMap::new(),
                checkpointed_resources: Vec::new(),
                nested: BTreeMap::new(),
                metrics: Metrics::default(),
                outbox: Vec::new(),
                recovery_errors: Vec::new(),
            }),
            link: Mutex::new(None),
            recovered: std::sync::atomic::AtomicBool::new(false),
            retry_wakeup: tokio::sync::Notify::new(),
            config,
        })
    }

    /// Locks the state. A panic while holding it poisons nothing we rely
    /// on, so the poison is ignored.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn agent_id(state: &State) -> String {
        state
            .info
            .id
            .as_ref()
            .map(|i| i.value.clone())
            .unwrap_or_default()
    }

    /// The sandbox of an executor run.
    pub fn sandbox_dir(&self, agent: &str, fw: &str, exec: &str, container: &str) -> PathBuf {
        self.config
            .flags
            .work_dir
            .join("slaves")
            .join(agent)
            .join("frameworks")
            .join(fw)
            .join("executors")
            .join(exec)
            .join("runs")
            .join(container)
    }

    // ----- the link to the master -------------------------------------

    /// Sets (or clears) the stream to the master.
    pub fn set_link(&self, tx: Option<mpsc::UnboundedSender<link::AgentMessage>>) {
        *self.link.lock().unwrap_or_else(|e| e.into_inner()) = tx;
    }

    /// Sends a message to the master if connected; false otherwise.
    pub fn send(&self, message: Up) -> bool {
        let link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        match link.as_ref() {
            Some(tx) => tx
                .send(link::AgentMessage {
                    message: Some(message),
                })
                .is_ok(),
            None => false,
        }
    }

    /// Sends now, or keeps the message until the agent is registered.
    fn send_or_keep(&self, state: &mut State, message: Up) {
        if !state.registered || !self.send(message.clone()) {
            state.outbox.push(link::AgentMessage {
                message: Some(message),
            });
        }
    }

    /// The master accepted the agent: remember the id, flush what waited.
    pub fn registered(&self, agent_id: pb::AgentId, master: Option<pb::MasterInfo>) {
        let mut state = self.lock();
        let first = state.info.id.as_ref() != Some(&agent_id);
        state.info.id = Some(agent_id.clone());
        state.master = master;
        state.registered = true;
        state.metrics.registrations += 1;
        if first {
            let _ = checkpoint::write_message(
                &self.meta.agent(&agent_id.value).join("slave.info"),
                &state.info,
            );
            let _ = checkpoint::write_atomic(&self.meta.latest(), agent_id.value.as_bytes());
        }
        for message in std::mem::take(&mut state.outbox) {
            if let Some(m) = message.message {
                self.send(m);
            }
        }
        // Every stream's head goes out again now.
        let now = Instant::now();
        let heads: Vec<link::StatusUpdate> = state
            .streams
            .values_mut()
            .filter_map(|s| {
                s.backoff = STATUS_UPDATE_RETRY_MIN;
                s.next_retry = now + s.backoff;
                s.pending.front().cloned()
            })
            .collect();
        for head in heads {
            self.send(Up::StatusUpdate(head));
        }
    }

    /// The link broke.
    pub fn disconnected(&self) {
        self.lock().registered = false;
        self.set_link(None);
    }

    /// What a re-registration reports.
    pub fn reregistration(&self) -> link::ReregisterAgent {
        let state = self.lock();
        let mut message = link::ReregisterAgent {
            agent_info: state.info.clone(),
            version: Some(env!("CARGO_PKG_VERSION").into()),
            capabilities: agent_capabilities(),
            checkpointed_resources: state.checkpointed_resources.clone(),
            endpoint: Some(self.endpoint.to_string()),
            ..Default::default()
        };
        for fw in state.frameworks.values() {
            message.frameworks.push(fw.info.clone());
            for executor in fw.executors.values() {
                if !executor.command_executor {
                    message.executors.push(executor.info.clone());
                }
                for task in executor.tasks.values() {
                    let key = (fw_id(&fw.info), task.task_id.value.clone());
                    let unacked = state
                        .streams
                        .get(&key)
                        .is_some_and(|s| !s.pending.is_empty());
                    if !is_terminal(task.state) || unacked {
                        message
                            .tasks
                            .push(with_update_state(task, state.streams.get(&key)));
                    }
                }
            }
            for executor in &fw.completed_executors {
                for task in executor.tasks.values() {
                    let key = (fw_id(&fw.info), task.task_id.value.clone());
                    if state
                        .streams
                        .get(&key)
                        .is_some_and(|s| !s.pending.is_empty())
                    {
                        message
                            .tasks
                            .push(with_update_state(task, state.streams.get(&key)));
                    }
                }
            }
        }
        message
    }

    // ----- master → agent ----------------------------------------------

    /// Handles one message from the master.
    pub fn handle_master(self: &Arc<Self>, message: link::master_message::Message) {
        use link::master_message::Message as Down;
        match message {
            Down::RunTask(run) => self.run_task(run.framework, run.task),
            Down::RunTaskGroup(run) => {
                self.run_task_group(run.framework, run.executor, run.task_group)
            }
            Down::KillTask(kill) => {
                self.kill_task(&kill.framework_id, &kill.task_id, kill.kill_policy)
            }
            Down::ShutdownFramework(s) => self.shutdown_framework(&s.framework_id),
            Down::ShutdownExecutor(s) => {
                self.shutdown_executor(&s.framework_id.value, &s.executor_id.value)
            }
            Down::Acknowledgement(ack) => {
                self.acknowledge(&ack.framework_id, &ack.task_id, &ack.uuid)
            }
            Down::FrameworkToExecutor(m) => self.framework_message(m),
            Down::UpdateFramework(u) => self.update_framework(u.framework_id, u.framework_info),
            Down::CheckpointResources(c) => self.checkpoint_resources(c.resources),
            Down::Registered(_) | Down::Reregistered(_) | Down::Ping(_) | Down::Shutdown(_) => {}
        }
    }

    fn ensure_framework<'a>(
        &self,
        state: &'a mut State,
        info: pb::FrameworkInfo,
    ) -> &'a mut Framework {
        let id = fw_id(&info);
        let agent = Self::agent_id(state);
        if info.checkpoint.unwrap_or(false) {
            let _ = checkpoint::write_message(
                &self.meta.framework(&agent, &id).join("framework.info"),
                &info,
            );
        }
        let fw = state.frameworks.entry(id).or_insert_with(|| Framework {
            info: info.clone(),
            executors: BTreeMap::new(),
            completed_executors: VecDeque::new(),
        });
        fw.info = info;
        fw
    }

    /// RunTask: with the task's own executor, or the command executor.
    pub fn run_task(self: &Arc<Self>, framework: pb::FrameworkInfo, task: pb::TaskInfo) {
        let executor_info = match &task.executor {
            Some(info) => {
                let mut info = info.clone();
                info.framework_id = framework.id.clone();
                info
            }
            None => self.command_executor_info(&framework, &task),
        };
        let command = task.executor.is_none();
        self.deliver(framework, executor_info, Queued::Task(task), command, false);
    }

    /// RunTaskGroup: every task under one default executor.
    pub fn run_task_group(
        self: &Arc<Self>,
        framework: pb::FrameworkInfo,
        mut executor: pb::ExecutorInfo,
        group: pb::TaskGroupInfo,
    ) {
        executor.framework_id = framework.id.clone();
        if executor.command.is_none() {
            let binary = self.config.executor_binary.display().to_string();
            executor.command = Some(pb::CommandInfo {
                shell: Some(false),
                value: Some(binary.clone()),
                arguments: vec![binary, "executor".into(), "default".into()],
                ..Default::default()
            });
        }
        self.deliver(framework, executor, Queued::Group(group), false, true);
    }

    fn command_executor_info(
        &self,
        framework: &pb::FrameworkInfo,
        task: &pb::TaskInfo,
    ) -> pb::ExecutorInfo {
        let binary = self.config.executor_binary.display().to_string();
        let task_command = task.command.clone().unwrap_or_default();
        let shown = if task_command.shell.unwrap_or(true) {
            format!("sh -c '{}'", task_command.value.clone().unwrap_or_default())
        } else {
            task_command.value.clone().unwrap_or_default()
        };
        pb::ExecutorInfo {
            r#type: Some(pb::executor_info::Type::Default as i32),
            executor_id: pb::ExecutorId {
                value: task.task_id.value.clone(),
            },
            framework_id: framework.id.clone(),
            name: Some(format!(
                "Command Executor (Task: {}) (Command: {})",
                task.task_id.value, shown
            )),
            source: Some(task.task_id.value.clone()),
            command: Some(pb::CommandInfo {
                uris: task_command.uris.clone(),
                environment: task_command.environment.clone(),
                shell: Some(false),
                value: Some(binary.clone()),
                arguments: vec![binary, "executor".into(), "command".into()],
                user: task_command.user.clone(),
            }),
            resources: Vec::new(),
            ..Default::default()
        }
    }

    fn tasks_of(queued: &Queued) -> Vec<pb::TaskInfo> {
        match queued {
            Queued::Task(t) => vec![t.clone()],
            Queued::Group(g) => g.tasks.clone(),
        }
    }

    /// Whether the agent has room for `extra` next to what runs.
    fn over_committed(&self, state: &State, extra: &[pb::Resource]) -> Option<String> {
        fn add(used: &mut BTreeMap<String, f64>, resources: &[pb::Resource]) {
            for r in resources {
                if let Some(s) = &r.scalar {
                    *used.entry(r.name.clone()).or_default() += s.value;
                }
            }
        }
        /// The port ranges named in `resources`.
        fn ports(resources: &[pb::Resource]) -> pando_resources::Ranges {
            let mut all = pando_resources::Ranges::new();
            for r in resources.iter().filter(|r| r.name == "ports") {
                if let Some(ranges) = r
                    .ranges
                    .as_ref()
                    .and_then(|p| pando_resources::Ranges::try_from(p).ok())
                {
                    all = all.union(&ranges);
                }
            }
            all
        }
        let mut used: BTreeMap<String, f64> = BTreeMap::new();
        let mut used_ports = pando_resources::Ranges::new();
        for fw in state.frameworks.values() {
            for e in fw
                .executors
                .values()
                .filter(|e| e.state != ExecutorState::Terminated)
            {
                add(&mut used, &e.info.resources);
                used_ports = used_ports.union(&ports(&e.info.resources));
                for t in e.tasks.values().filter(|t| !is_terminal(t.state)) {
                    add(&mut used, &t.resources);
                    used_ports = used_ports.union(&ports(&t.resources));
                }
            }
        }
        let asked_ports = ports(extra);
        let total_ports = self.config.resources.ports();
        if !total_ports.contains(&asked_ports) {
            return Some(format!(
                "Task asks for ports {asked_ports} outside the agent's {total_ports}"
            ));
        }
        if !used_ports.difference(&asked_ports).eq(&used_ports) {
            return Some(format!(
                "Task asks for ports {asked_ports}, some already used by {used_ports}"
            ));
        }
        let before = used.clone();
        add(&mut used, extra);
        let total = self.config.resources.to_proto();
        for (name, amount) in &used {
            let have: f64 = total
                .iter()
                .filter(|r| &r.name == name)
                .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
                .sum();
            if *amount > have + 1e-6 {
                let in_use = before.get(name).copied().unwrap_or(0.0);
                return Some(format!(
                    "Task asks for more '{name}' than the agent has: {:.3} requested, {:.3} of {:.3} free",
                    amount - in_use,
                    have - in_use,
                    have
                ));
            }
        }
        None
    }

    fn deliver(
        self: &Arc<Self>,
        framework: pb::FrameworkInfo,
        executor_info: pb::ExecutorInfo,
        queued: Queued,
        command_executor: bool,
        default_executor: bool,
    ) {
        let fw = fw_id(&framework);
        let exec_id = executor_info.executor_id.value.clone();
        let tasks = Self::tasks_of(&queued);
        let mut state = self.lock();
        let agent_id = Self::agent_id(&state);
        // Images and Docker need a containerizer Pando does not have yet.
        let unsupported = tasks
            .iter()
            .filter_map(|t| t.container.as_ref())
            .chain(executor_info.container.as_ref())
            .find_map(unsupported_container);
        if let Some(message) = unsupported {
            drop(state);
            for task in &tasks {
                self.status_update(
                    &framework,
                    Some(&executor_info.executor_id),
                    agent_status(
                        &task.task_id,
                        TaskState::TaskFailed,
                        Reason::ContainerLaunchFailed,
                        &message,
                    ),
                    false,
                );
            }
            return;
        }
        // An executor on its way out takes no new tasks (Mesos drops them).
        let ending = state
            .frameworks
            .get(&fw)
            .and_then(|f| f.executors.get(&exec_id))
            .is_some_and(|e| {
                matches!(
                    e.state,
                    ExecutorState::Terminating | ExecutorState::Terminated
                )
            });
        if ending {
            drop(state);
            let partition_aware = framework.capabilities.iter().any(|c| {
                c.r#type == Some(pb::framework_info::capability::Type::PartitionAware as i32)
            });
            let lost = if partition_aware {
                TaskState::TaskDropped
            } else {
                TaskState::TaskLost
            };
            for task in &tasks {
                self.status_update(
                    &framework,
                    Some(&executor_info.executor_id),
                    agent_status(
                        &task.task_id,
                        lost,
                        Reason::ExecutorTerminated,
                        "Executor is terminating",
                    ),
                    false,
                );
            }
            return;
        }
        // Refuse what does not fit.
        let mut asked: Vec<pb::Resource> = tasks.iter().flat_map(|t| t.resources.clone()).collect();
        let exists = state
            .frameworks
            .get(&fw)
            .is_some_and(|f| f.executors.contains_key(&exec_id));
        if !exists {
            asked.extend(executor_info.resources.clone());
        }
        if let Some(message) = self.over_committed(&state, &asked) {
            drop(state);
            for task in &tasks {
                self.status_update(
                    &framework,
                    Some(&executor_info.executor_id),
                    agent_status(
                        &task.task_id,
                        TaskState::TaskError,
                        Reason::TaskInvalid,
                        &message,
                    ),
                    false,
                );
            }
            return;
        }
        let checkpoint = framework.checkpoint.unwrap_or(false);
        let framework_info = framework.clone();
        let fw_entry = self.ensure_framework(&mut state, framework);
        let mut launch = None;
        let executor = match fw_entry.executors.get_mut(&exec_id) {
            Some(e)
                if e.state != ExecutorState::Terminated
                    && e.state != ExecutorState::Terminating =>
            {
                e
            }
            _ => {
                let container_id = uuid::Uuid::new_v4().to_string();
                let directory = self.sandbox_dir(&agent_id, &fw, &exec_id, &container_id);
                let mut limits_resources: Vec<pb::Resource> = executor_info.resources.clone();
                limits_resources.extend(tasks.iter().flat_map(|t| t.resources.clone()));
                let limits = limits_of(&limits_resources);
                if checkpoint {
                    let _ = checkpoint::write_message(
                        &self
                            .meta
                            .executor(&agent_id, &fw, &exec_id)
                            .join("executor.info"),
                        &executor_info,
                    );
                }
                fw_entry.executors.insert(
                    exec_id.clone(),
                    Executor {
                        info: executor_info.clone(),
                        container_id: container_id.clone(),
                        directory,
                        state: ExecutorState::Registering,
                        queued: Vec::new(),
                        tasks: BTreeMap::new(),
                        connection: None,
                        pid: None,
                        checkpoint,
                        group: None,
                        limits,
                        termination: None,
                        command_executor,
                        default_executor,
                        pending_kills: Vec::new(),
                        recovered: false,
                    },
                );
                launch = Some(container_id);
                fw_entry
                    .executors
                    .get_mut(&exec_id)
                    .expect("the executor was inserted just above")
            }
        };
        for task in &tasks {
            let record = task_record(
                task,
                &fw,
                &agent_id,
                (!command_executor).then_some(&executor_info.executor_id),
            );
            if executor.checkpoint {
                let dir = self.meta.task(
                    &agent_id,
                    &fw,
                    &exec_id,
                    &executor.container_id,
                    &task.task_id.value,
                );
                let _ = checkpoint::write_message(&dir.join("task.info"), &record);
            }
            executor.tasks.insert(id_of(task), record);
        }
        // Persistent volumes must be in the sandbox before a task runs.
        let volumes: Vec<pb::Resource> = tasks
            .iter()
            .flat_map(|t| t.resources.iter().cloned())
            .chain(executor_info.resources.iter().cloned())
            .collect();
        if let Err(e) =
            containerizer::link_volumes(&self.config.flags.work_dir, &executor.directory, &volumes)
        {
            tracing::warn!(executor = %exec_id, "cannot link persistent volumes: {e}");
        }
        match (&executor.connection, executor.state) {
            (Some(connection), ExecutorState::Running) if !connection.tx.is_closed() => {
                let event = launch_event(&queued);
                connection.send(&event);
            }
            _ => executor.queued.push(queued),
        }
        if launch.is_some() {
            state.metrics.executors_launched += 1;
        }
        drop(state);
        if let Some(container_id) = launch {
            let agent = Arc::clone(self);
            tokio::spawn(async move {
                agent
                    .launch_executor(framework_info, exec_id, container_id)
                    .await;
            });
        }
    }

    fn executor_env(
        &self,
        state: &State,
        framework: &pb::FrameworkInfo,
        executor: &Executor,
    ) -> Vec<(String, String)> {
        let agent_id = Self::agent_id(state);
        let dir = executor.directory.display().to_string();
        let grace = executor
            .info
            .shutdown_grace_period
            .as_ref()
            .map(|d| Duration::from_nanos(d.nanoseconds.max(0) as u64))
            .unwrap_or(self.config.shutdown_grace);
        vec![
            ("MESOS_FRAMEWORK_ID".into(), fw_id(framework)),
            (
                "MESOS_EXECUTOR_ID".into(),
                executor.info.executor_id.value.clone(),
            ),
            ("MESOS_SANDBOX".into(), dir.clone()),
            ("MESOS_DIRECTORY".into(), dir),
            ("MESOS_AGENT_ENDPOINT".into(), self.endpoint.to_string()),
            ("MESOS_SLAVE_ID".into(), agent_id.clone()),
            ("MESOS_AGENT_ID".into(), agent_id),
            (
                "MESOS_CHECKPOINT".into(),
                if executor.checkpoint { "1" } else { "0" }.into(),
            ),
            (
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD".into(),
                format_duration(grace),
            ),
            (
                "MESOS_RECOVERY_TIMEOUT".into(),
                format_duration(self.config.recovery_timeout),
            ),
            (
                "MESOS_SUBSCRIPTION_BACKOFF_MAX".into(),
                format_duration(self.config.reregistration_timeout),
            ),
            (
                "MESOS_SLAVE_PID".into(),
                format!("slave(1)@{}", self.endpoint),
            ),
            ("LIBPROCESS_PORT".into(), "0".into()),
            ("MESOS_HTTP_COMMAND_EXECUTOR".into(), "1".into()),
            ("MESOS_CONTAINER_ID".into(), executor.container_id.clone()),
        ]
    }

    async fn launch_executor(
        self: Arc<Self>,
        framework: pb::FrameworkInfo,
        exec_id: String,
        container_id: String,
    ) {
        let fw = fw_id(&framework);
        let spec = {
            let state = self.lock();
            let Some(executor) = state
                .frameworks
                .get(&fw)
                .and_then(|f| f.executors.get(&exec_id))
            else {
                return;
            };
            let command = executor.info.command.clone().unwrap_or_default();
            LaunchSpec {
                container_id: pb::ContainerId {
                    value: container_id.clone(),
                    parent: None,
                },
                sandbox: executor.directory.clone(),
                user: command
                    .user
                    .clone()
                    .or_else(|| Some(framework.user.clone()).filter(|u| !u.is_empty())),
                command,
                env: self.executor_env(&state, &framework, executor),
                limits: executor.limits,
                base_env: self.config.executor_env.clone(),
                builtin_executor: executor.command_executor || executor.default_executor,
            }
        };
        let runtime = self.runtime_dir(&container_id);
        let _ = std::fs::create_dir_all(&runtime);
        let _ = std::fs::write(
            runtime.join("group"),
            self.isolator.group_name(&spec.container_id),
        );
        match containerizer::launch(&self.isolator, &spec).await {
            Ok(launched) => {
                let _ = std::fs::write(runtime.join("pid"), launched.pid.to_string());
                let group = Arc::new(launched.group);
                {
                    let mut state = self.lock();
                    let agent_id = Self::agent_id(&state);
                    if let Some(executor) = state
                        .frameworks
                        .get_mut(&fw)
                        .and_then(|f| f.executors.get_mut(&exec_id))
                        .filter(|e| e.container_id == container_id)
                    {
                        executor.pid = Some(launched.pid);
                        executor.group = Some(Arc::clone(&group));
                        if executor.checkpoint {
                            let _ = checkpoint::write_atomic(
                                &self
                                    .meta
                                    .run(&agent_id, &fw, &exec_id, &container_id)
                                    .join("forked.pid"),
                                launched.pid.to_string().as_bytes(),
                            );
                        }
                    }
                }
                self.spawn_waiter(
                    fw.clone(),
                    exec_id.clone(),
                    container_id.clone(),
                    Waiter::Child(launched.child),
                );
                self.spawn_oom_watch(fw.clone(), exec_id.clone(), container_id.clone(), group);
                let agent = Arc::clone(&self);
                let timeout = self.config.registration_timeout;
                tokio::spawn(async move {
                    tokio::time::sleep(timeout).await;
                    agent.registration_timed_out(&fw, &exec_id, &container_id, timeout, false);
                });
            }
            Err(error) => {
                tracing::warn!(
                    "container {container_id} of executor {exec_id} failed to launch: {error}"
                );
                let message = error.to_string();
                {
                    let mut state = self.lock();
                    if let Some(executor) = state
                        .frameworks
                        .get_mut(&fw)
                        .and_then(|f| f.executors.get_mut(&exec_id))
                        .filter(|e| e.container_id == container_id)
                    {
                        executor.termination = Some(Termination {
                            state: TaskState::TaskFailed,
                            reason: Reason::ContainerLaunchFailed,
                            message,
                        });
                    }
                }
                self.executor_terminated(&fw, &exec_id, &container_id, None)
                    .await;
            }
        }
    }

    /// `work_dir/runtime/containers/<id>`: every container's pid and group,
    /// checkpointing or not, so a restarted agent can kill orphans.
    pub fn runtime_dir(&self, container_id: &str) -> PathBuf {
        self.config
            .flags
            .work_dir
            .join("runtime")
            .join("containers")
            .join(container_id)
    }

    fn spawn_waiter(
        self: &Arc<Self>,
        fw: String,
        exec_id: String,
        container_id: String,
        waiter: Waiter,
    ) {
        let agent = Arc::clone(self);
        tokio::spawn(async move {
            let status = match waiter {
                Waiter::Child(mut child) => child.wait().await.ok().map(wait_status),
                Waiter::Pid(pid) => {
                    while containerizer::process_alive(pid) {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    None
                }
            };
            agent
                .executor_terminated(&fw, &exec_id, &container_id, status)
                .await;
        });
    }

    /// Watches the group's OOM counter and ends the container when the
    /// kernel killed inside it, as Mesos's memory isolator does. It waits
    /// on the group's [`ContainerGroup::oom_notifier`] (woken by memory
    /// events and by the group's removal), and checks every
    /// `OOM_RECHECK` whether the container still lives; without a notifier
    /// it polls every 100 ms.
    fn spawn_oom_watch(
        self: &Arc<Self>,
        fw: String,
        exec_id: String,
        container_id: String,
        group: Arc<ContainerGroup>,
    ) {
        if !group.is_cgroup() {
            return;
        }
        let agent = Arc::clone(self);
        tokio::spawn(async move {
            let notifier = group
                .oom_notifier()
                .and_then(|fd| tokio::io::unix::AsyncFd::new(fd).ok());
            loop {
                match &notifier {
                    Some(fd) => {
                        if let Ok(Ok(mut ready)) =
                            tokio::time::timeout(OOM_RECHECK, fd.readable()).await
                        {
                            drain(fd.get_ref());
                            ready.clear_ready();
                        }
                    }
                    None => tokio::time::sleep(Duration::from_millis(100)).await,
                }
                let live = {
                    let state = agent.lock();
                    state
                        .frameworks
                        .get(&fw)
                        .and_then(|f| f.executors.get(&exec_id))
                        .is_some_and(|e| {
                            e.container_id == container_id && e.state != ExecutorState::Terminated
                        })
                };
                if !live {
                    return;
                }
                if group.oom_killed() {
                    agent.memory_limitation(&fw, &exec_id, &group);
                    return;
                }
            }
        });
    }

    fn memory_limitation(self: &Arc<Self>, fw: &str, exec_id: &str, group: &Arc<ContainerGroup>) {
        let (limit, peak) = group.memory_limit_and_peak();
        let mb = |b: Option<u64>| {
            b.map(|b| format!("{}MB", b / (1024 * 1024)))
                .unwrap_or("unknown".into())
        };
        let message = format!(
            "Memory limit exceeded: Requested: {} Maximum Used: {}",
            mb(limit),
            mb(peak)
        );
        {
            let mut state = self.lock();
            if let Some(executor) = state
                .frameworks
                .get_mut(fw)
                .and_then(|f| f.executors.get_mut(exec_id))
            {
                if executor.termination.is_none() {
                    executor.termination = Some(Termination {
                        state: TaskState::TaskFailed,
                        reason: Reason::ContainerLimitationMemory,
                        message,
                    });
                }
            }
        }
        let group = Arc::clone(group);
        tokio::task::spawn_blocking(move || group.kill_all(Duration::from_secs(10)));
    }

    fn registration_timed_out(
        self: &Arc<Self>,
        fw: &str,
        exec_id: &str,
        container_id: &str,
        timeout: Duration,
        reregistration: bool,
    ) {
        let group = {
            let mut state = self.lock();
            let Some(executor) = state
                .frameworks
                .get_mut(fw)
                .and_then(|f| f.executors.get_mut(exec_id))
                .filter(|e| {
                    e.container_id == container_id && e.state == ExecutorState::Registering
                })
            else {
                return;
            };
            executor.termination = Some(if reregistration {
                Termination {
                    state: TaskState::TaskLost,
                    reason: Reason::ExecutorReregistrationTimeout,
                    message: format!(
                        "Executor did not reregister within {}",
                        format_duration(timeout)
                    ),
                }
            } else {
                Termination {
                    state: TaskState::TaskFailed,
                    reason: Reason::ExecutorRegistrationTimeout,
                    message: format!(
                        "Executor did not register within {}",
                        format_duration(timeout)
                    ),
                }
            });
            executor.state = ExecutorState::Terminating;
            (executor.group.clone(), executor.pid)
        };
        self.destroy_async(group.0, group.1);
    }

    fn destroy_async(&self, group: Option<Arc<ContainerGroup>>, pid: Option<u32>) {
        tokio::task::spawn_blocking(move || {
            if let Some(pid) = pid {
                containerizer::kill_process_group(pid, libc::SIGKILL);
            }
            if let Some(group) = group {
                let _ = group.kill_all(Duration::from_secs(10));
            }
        });
    }

    /// The executor's process is gone: fail its live tasks, tell the
    /// master, remove the container.
    pub async fn executor_terminated(
        self: &Arc<Self>,
        fw: &str,
        exec_id: &str,
        container_id: &str,
        status: Option<i32>,
    ) {
        let (group, pid, updates, framework, generated) = {
            let mut state = self.lock();
            let agent_id = Self::agent_id(&state);
            let Some(framework) = state.frameworks.get_mut(fw) else {
                return;
            };
            let Some(executor) = framework
                .executors
                .get_mut(exec_id)
                .filter(|e| e.container_id == container_id)
            else {
                return;
            };
            executor.state = ExecutorState::Terminated;
            executor.connection = None;
            let oom = executor.group.as_ref().is_some_and(|g| g.oom_killed());
            let termination = executor.termination.clone().or_else(|| {
                oom.then(|| Termination {
                    state: TaskState::TaskFailed,
                    reason: Reason::ContainerLimitationMemory,
                    message: "Memory limit exceeded".into(),
                })
            });
            let termination = termination.unwrap_or(Termination {
                state: TaskState::TaskFailed,
                reason: Reason::ExecutorTerminated,
                message: "Executor terminated".into(),
            });
            let mut updates = Vec::new();
            for task in executor.tasks.values().filter(|t| !is_terminal(t.state)) {
                let mut status = agent_status(
                    &task.task_id,
                    termination.state,
                    termination.reason,
                    &termination.message,
                );
                if termination.reason == Reason::ContainerLimitationMemory {
                    status.limitation = Some(pb::TaskResourceLimitation {
                        resources: task
                            .resources
                            .iter()
                            .filter(|r| r.name == "mem")
                            .cloned()
                            .collect(),
                    });
                }
                updates.push(status);
            }
            executor.queued.clear();
            if executor.checkpoint {
                let _ = checkpoint::write_atomic(
                    &self
                        .meta
                        .run(&agent_id, fw, exec_id, container_id)
                        .join("completed"),
                    b"",
                );
            }
            (
                executor.group.clone(),
                executor.pid,
                updates,
                framework.info.clone(),
                executor.command_executor,
            )
        };
        let executor_id = pb::ExecutorId {
            value: exec_id.to_string(),
        };
        for status in updates {
            self.status_update(&framework, Some(&executor_id), status, false);
        }
        // As Mesos's agent: the master hears of an executor's exit only
        // for executors the framework defined; the command executor of a
        // task is the agent's own, and the framework learns of its end
        // from the task's update alone. The exit status is always set
        // (-1 when it is unknown, e.g. the executor ended while the agent
        // was down), because schedulers read it unconditionally.
        if !generated {
            let mut state = self.lock();
            let message = Up::ExecutorExited(link::ExecutorExited {
                framework_id: pb::FrameworkId {
                    value: fw.to_string(),
                },
                executor_id: executor_id.clone(),
                status: Some(status.unwrap_or(UNKNOWN_EXIT_STATUS)),
            });
            self.send_or_keep(&mut state, message);
        }
        // Nested containers die with their executor's container (their
        // cgroups go with its group; under posix isolation their sessions
        // must be killed one by one).
        let nested_pids: Vec<u32> = {
            let mut state = self.lock();
            let inside: Vec<String> = state
                .nested
                .values()
                .filter(|n| top_parent(&n.id) == container_id)
                .map(|n| n.id.value.clone())
                .collect();
            let mut pids = Vec::new();
            for id in inside {
                let exited = state.nested.get(&id).is_some_and(|n| n.exit.is_some());
                if exited {
                    state.nested.remove(&id);
                } else if let Some(pid) = state.nested.get(&id).and_then(|n| n.pid) {
                    pids.push(pid);
                }
            }
            pids
        };
        let runtime = self.runtime_dir(container_id);
        let _ = tokio::task::spawn_blocking(move || {
            for pid in nested_pids {
                containerizer::kill_process_group(pid, libc::SIGKILL);
            }
            if let Some(pid) = pid {
                containerizer::kill_exited_group(pid, libc::SIGKILL);
            }
            if let Some(group) = group {
                if let Err(e) = group.destroy(Duration::from_secs(10)) {
                    tracing::warn!("failed to destroy the container's group: {e}");
                }
            }
            let _ = std::fs::remove_dir_all(runtime);
        })
        .await;
        let mut state = self.lock();
        self.retire_executor(&mut state, fw, exec_id);
    }

    /// Moves a terminated executor to the completed list, and drops the
    /// framework when nothing of it is left.
    fn retire_executor(&self, state: &mut State, fw: &str, exec_id: &str) {
        let Some(framework) = state.frameworks.get_mut(fw) else {
            return;
        };
        if framework
            .executors
            .get(exec_id)
            .is_some_and(|e| e.state == ExecutorState::Terminated)
        {
            if let Some(executor) = framework.executors.remove(exec_id) {
                self.schedule_gc(executor.directory.clone());
                framework.completed_executors.push_back(executor);
                while framework.completed_executors.len() > MAX_COMPLETED {
                    framework.completed_executors.pop_front();
                }
            }
        }
        // An ended executor whose updates are all acknowledged needs no
        // checkpoint any more.
        let live = state
            .frameworks
            .get(fw)
            .is_some_and(|f| f.executors.contains_key(exec_id));
        let unacked = state.streams.iter().any(|((f, _), stream)| {
            f == fw
                && stream
                    .executor_id
                    .as_ref()
                    .is_some_and(|e| e.value == exec_id)
        });
        if !live && !unacked {
            let agent_id = Self::agent_id(state);
            let _ = std::fs::remove_dir_all(self.meta.executor(&agent_id, fw, exec_id));
        }
        let pending = state.streams.keys().any(|(f, _)| f == fw);
        let framework = state.frameworks.get(fw);
        if framework.is_some_and(|f| f.executors.is_empty()) && !pending {
            if let Some(framework) = state.frameworks.remove(fw) {
                let agent_id = Self::agent_id(state);
                let _ = std::fs::remove_dir_all(self.meta.framework(&agent_id, fw));
                state.completed_frameworks.push_back(framework);
                while state.completed_frameworks.len() > MAX_COMPLETED {
                    state.completed_frameworks.pop_front();
                }
            }
        }
    }

    /// Removes a finished executor's sandbox after `--gc_delay`.
    fn schedule_gc(&self, directory: PathBuf) {
        let delay = self.config.gc_delay;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tokio::fs::remove_dir_all(&directory).await;
        });
    }

    /// Removes sandboxes older than `--gc_delay` that belong to no live
    /// executor: those finished before an agent restart, and those of
    /// earlier agent ids. Returns how many were removed.
    pub fn gc_sandboxes(&self) -> usize {
        let live: HashSet<PathBuf> = {
            let state = self.lock();
            state
                .frameworks
                .values()
                .flat_map(|f| f.executors.values())
                .map(|e| e.directory.clone())
                .collect()
        };
        let delay = self.config.gc_delay;
        let old = |path: &std::path::Path| {
            std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= delay)
        };
        let list = |path: PathBuf| -> Vec<PathBuf> {
            std::fs::read_dir(path)
                .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
                .unwrap_or_default()
        };
        let mut removed = 0;
        let root = self.config.flags.work_dir.join("slaves");
        for agent in list(root) {
            for fw in list(agent.join("frameworks")) {
                for ex in list(fw.join("executors")) {
                    for run in list(ex.join("runs")) {
                        if !live.contains(&run)
                            && old(&run)
                            && std::fs::remove_dir_all(&run).is_ok()
                        {
                            removed += 1;
                        }
                    }
                    // Empty parents go too (remove_dir refuses non-empty ones).
                    let _ = std::fs::remove_dir(ex.join("runs"));
                    let _ = std::fs::remove_dir(&ex);
                }
                let _ = std::fs::remove_dir(fw.join("executors"));
                let _ = std::fs::remove_dir(&fw);
            }
            let _ = std::fs::remove_dir(agent.join("frameworks"));
            let _ = std::fs::remove_dir(&agent);
        }
        removed
    }

    /// KillTask from the master.
    pub fn kill_task(
        self: &Arc<Self>,
        fw: &pb::FrameworkId,
        task_id: &pb::TaskId,
        kill_policy: Option<pb::KillPolicy>,
    ) {
        let mut generated = None;
        let mut shutdown = None;
        let framework_info;
        {
            let mut state = self.lock();
            let Some(framework) = state.frameworks.get_mut(&fw.value) else {
                drop(state);
                let info = pb::FrameworkInfo {
                    id: Some(fw.clone()),
                    ..Default::default()
                };
                self.status_update(
                    &info,
                    None,
                    agent_status(
                        task_id,
                        TaskState::TaskLost,
                        Reason::TaskUnknown,
                        "Cannot find the task's framework on this agent",
                    ),
                    false,
                );
                return;
            };
            framework_info = framework.info.clone();
            let Some(executor) = framework
                .executors
                .values_mut()
                .find(|e| e.tasks.contains_key(&task_id.value))
            else {
                drop(state);
                self.status_update(
                    &framework_info,
                    None,
                    agent_status(
                        task_id,
                        TaskState::TaskLost,
                        Reason::TaskUnknown,
                        "Cannot find the task on this agent",
                    ),
                    false,
                );
                return;
            };
            let queued_index = executor
                .queued
                .iter()
                .position(|q| Self::tasks_of(q).iter().any(|t| t.task_id == *task_id));
            if let Some(index) = queued_index {
                // Not delivered yet: the whole queued unit is killed.
                let unit = executor.queued.remove(index);
                generated = Some((executor.info.executor_id.clone(), Self::tasks_of(&unit)));
                if executor.queued.is_empty()
                    && executor.tasks.values().all(|t| {
                        is_terminal(t.state)
                            || Self::tasks_of(&unit).iter().any(|u| u.task_id == t.task_id)
                    })
                {
                    shutdown = Some(executor.info.executor_id.value.clone());
                }
            } else if let Some(connection) =
                executor.connection.as_ref().filter(|c| !c.tx.is_closed())
            {
                connection.send(&ex::Event {
                    r#type: Some(ex::event::Type::Kill as i32),
                    kill: Some(ex::event::Kill {
                        task_id: task_id.clone(),
                        kill_policy,
                    }),
                    ..Default::default()
                });
            } else {
                // The executor is not subscribed (it is re-attaching after
                // an agent restart, or reconnecting): the KILL waits for its
                // subscription. If it never comes, the re-registration
                // timeout ends the executor and reports its tasks.
                executor.pending_kills.push((task_id.clone(), kill_policy));
            }
        }
        if let Some((executor_id, tasks)) = generated {
            for task in tasks {
                self.status_update(
                    &framework_info,
                    Some(&executor_id),
                    agent_status(
                        &task.task_id,
                        TaskState::TaskKilled,
                        Reason::TaskKilledDuringLaunch,
                        "Killed before delivery to the executor",
                    ),
                    false,
                );
            }
        }
        if let Some(exec_id) = shutdown {
            self.shutdown_executor(&fw.value, &exec_id);
        }
    }

    /// ShutdownExecutor: SHUTDOWN to the executor, then kill after the
    /// grace period.
    pub fn shutdown_executor(self: &Arc<Self>, fw: &str, exec_id: &str) {
        let (group, pid, container_id, grace) = {
            let mut state = self.lock();
            let Some(executor) = state
                .frameworks
                .get_mut(fw)
                .and_then(|f| f.executors.get_mut(exec_id))
            else {
                return;
            };
            if executor.state == ExecutorState::Terminated {
                return;
            }
            executor.state = ExecutorState::Terminating;
            let grace = executor
                .info
                .shutdown_grace_period
                .as_ref()
                .map(|d| Duration::from_nanos(d.nanoseconds.max(0) as u64))
                .unwrap_or(self.config.shutdown_grace);
            let sent = executor.connection.as_ref().is_some_and(|c| {
                c.send(&ex::Event {
                    r#type: Some(ex::event::Type::Shutdown as i32),
                    ..Default::default()
                })
            });
            let grace = if sent { grace } else { Duration::ZERO };
            (
                executor.group.clone(),
                executor.pid,
                executor.container_id.clone(),
                grace,
            )
        };
        let agent = Arc::clone(self);
        let fw = fw.to_string();
        let exec_id = exec_id.to_string();
        tokio::spawn(async move {
            if !grace.is_zero() {
                tokio::time::sleep(grace).await;
            }
            let live = {
                let state = agent.lock();
                state
                    .frameworks
                    .get(&fw)
                    .and_then(|f| f.executors.get(&exec_id))
                    .is_some_and(|e| {
                        e.container_id == container_id && e.state != ExecutorState::Terminated
                    })
            };
            if live {
                agent.destroy_async(group, pid);
            }
        });
    }

    /// ShutdownFramework: every executor of it goes.
    pub fn shutdown_framework(self: &Arc<Self>, fw: &pb::FrameworkId) {
        let executors: Vec<String> = {
            let state = self.lock();
            state
                .frameworks
                .get(&fw.value)
                .map(|f| f.executors.keys().cloned().collect())
                .unwrap_or_default()
        };
        for exec_id in executors {
            {
                let mut state = self.lock();
                if let Some(e) = state
                    .frameworks
                    .get_mut(&fw.value)
                    .and_then(|f| f.executors.get_mut(&exec_id))
                {
                    e.termination.get_or_insert(Termination {
                        state: TaskState::TaskKilled,
                        reason: Reason::FrameworkRemoved,
                        message: "Framework was removed".into(),
                    });
                }
            }
            self.shutdown_executor(&fw.value, &exec_id);
        }
    }

    /// FrameworkToExecutor: a MESSAGE event.
    pub fn framework_message(&self, message: link::FrameworkToExecutor) {
        let state = self.lock();
        if let Some(connection) = state
            .frameworks
            .get(&message.framework_id.value)
            .and_then(|f| f.executors.get(&message.executor_id.value))
            .and_then(|e| e.connection.as_ref())
        {
            connection.send(&ex::Event {
                r#type: Some(ex::event::Type::Message as i32),
                message: Some(ex::event::Message { data: message.data }),
                ..Default::default()
            });
        }
    }

    /// UpdateFramework: remember (and checkpoint) the new info.
    pub fn update_framework(&self, id: pb::FrameworkId, mut info: pb::FrameworkInfo) {
        info.id = Some(id.clone());
        let mut state = self.lock();
        if state.frameworks.contains_key(&id.value) {
            self.ensure_framework(&mut state, info);
        }
    }

    /// CheckpointResources: the agent's dynamic reservations, in full.
    pub fn checkpoint_resources(&self, resources: Vec<pb::Resource>) {
        let mut state = self.lock();
        let agent_id = Self::agent_id(&state);
        let _ = checkpoint::write_message(
            &self.meta.agent(&agent_id).join("resources.info"),
            &link::CheckpointResources {
                resources: resources.clone(),
            },
        );
        state.checkpointed_resources = resources;
    }

    // ----- executors ----------------------------------------------------

    /// SUBSCRIBE from an executor: attach its stream, send SUBSCRIBED and
    /// the queued tasks.
    pub fn executor_subscribe(
        self: &Arc<Self>,
        call: &ex::Call,
        content_type: ContentType,
    ) -> Result<mpsc::UnboundedReceiver<Bytes>, AgentError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let connection = Connection { tx, content_type };
        let subscribe = call.subscribe.clone().unwrap_or_default();
        let mut replay = Vec::new();
        let mut never_delivered = Vec::new();
        {
            let mut state = self.lock();
            let agent_info = state.info.clone();
            let agent_id_value = Self::agent_id(&state);
            let framework = state
                .frameworks
                .get_mut(&call.framework_id.value)
                .ok_or_else(|| AgentError::NotFound("Framework cannot be found".into()))?;
            let framework_info = framework.info.clone();
            let executor = framework
                .executors
                .get_mut(&call.executor_id.value)
                .ok_or_else(|| AgentError::NotFound("Executor cannot be found".into()))?;
            // The launcher moves the executor into its cgroup just after
            // spawning it, and records its pid after that: no task may
            // reach it before (see `containerizer::join_after_spawn`).
            if executor.state == ExecutorState::Registering
                && executor.pid.is_none()
                && !executor.recovered
            {
                return Err(AgentError::Unavailable(
                    "Executor is still being launched".into(),
                ));
            }
            // A task still STAGING that a re-attached executor does not
            // know never reached it: the agent died first (Mesos drops it).
            if std::mem::take(&mut executor.recovered) {
                let known: HashSet<&str> = subscribe
                    .unacknowledged_tasks
                    .iter()
                    .map(|t| t.task_id.value.as_str())
                    .collect();
                let queued: HashSet<String> = executor
                    .queued
                    .iter()
                    .flat_map(Self::tasks_of)
                    .map(|t| t.task_id.value)
                    .collect();
                for task in executor.tasks.values() {
                    if task.state == TaskState::TaskStaging as i32
                        && !known.contains(task.task_id.value.as_str())
                        && !queued.contains(&task.task_id.value)
                    {
                        never_delivered.push(task.task_id.clone());
                    }
                }
            }
            if executor.state == ExecutorState::Terminated {
                return Err(AgentError::Forbidden("Executor is terminated".into()));
            }
            connection.send(&ex::Event {
                r#type: Some(ex::event::Type::Subscribed as i32),
                subscribed: Some(ex::event::Subscribed {
                    executor_info: executor.info.clone(),
                    framework_info,
                    agent_info,
                    container_id: Some(pb::ContainerId {
                        value: executor.container_id.clone(),
                        parent: None,
                    }),
                }),
                ..Default::default()
            });
            if executor.state == ExecutorState::Terminating {
                connection.send(&ex::Event {
                    r#type: Some(ex::event::Type::Shutdown as i32),
                    ..Default::default()
                });
            } else {
                executor.state = ExecutorState::Running;
                for queued in std::mem::take(&mut executor.queued) {
                    connection.send(&launch_event(&queued));
                }
                for (task_id, kill_policy) in std::mem::take(&mut executor.pending_kills) {
                    connection.send(&ex::Event {
                        r#type: Some(ex::event::Type::Kill as i32),
                        kill: Some(ex::event::Kill {
                            task_id,
                            kill_policy,
                        }),
                        ..Default::default()
                    });
                }
            }
            // Tasks the executor knows but the agent lost (it died before
            // checkpointing them) come back as launched.
            for task in &subscribe.unacknowledged_tasks {
                executor
                    .tasks
                    .entry(task.task_id.value.clone())
                    .or_insert_with(|| {
                        task_record(
                            task,
                            &call.framework_id.value,
                            &agent_id_value,
                            Some(&call.executor_id),
                        )
                    });
            }
            executor.connection = Some(connection);
            for update in &subscribe.unacknowledged_updates {
                replay.push(update.status.clone());
            }
        }
        if !never_delivered.is_empty() {
            let framework = {
                let state = self.lock();
                state
                    .frameworks
                    .get(&call.framework_id.value)
                    .map(|f| f.info.clone())
            };
            if let Some(framework) = framework {
                let partition_aware = framework.capabilities.iter().any(|c| {
                    c.r#type == Some(pb::framework_info::capability::Type::PartitionAware as i32)
                });
                let state = if partition_aware {
                    TaskState::TaskDropped
                } else {
                    TaskState::TaskLost
                };
                for task_id in never_delivered {
                    self.status_update(
                        &framework,
                        Some(&call.executor_id),
                        agent_status(
                            &task_id,
                            state,
                            Reason::AgentRestarted,
                            "Task launched during agent restart",
                        ),
                        false,
                    );
                }
                // An executor left with nothing to run would wait forever
                // (MESOS-8411): shut it down.
                let idle = {
                    let state = self.lock();
                    state
                        .frameworks
                        .get(&call.framework_id.value)
                        .and_then(|f| f.executors.get(&call.executor_id.value))
                        .is_some_and(|e| {
                            e.queued.is_empty() && e.tasks.values().all(|t| is_terminal(t.state))
                        })
                };
                if idle {
                    self.shutdown_executor(&call.framework_id.value, &call.executor_id.value);
                }
            }
        }
        // Updates the executor sent but the agent never checkpointed are
        // accepted now; known ones are dropped as duplicates.
        if !replay.is_empty() {
            let framework = {
                let state = self.lock();
                state
                    .frameworks
                    .get(&call.framework_id.value)
                    .map(|f| f.info.clone())
            };
            if let Some(framework) = framework {
                for status in replay {
                    self.status_update(&framework, Some(&call.executor_id), status, true);
                }
            }
        }
        Ok(rx)
    }

    /// Checks that an executor exists and is subscribed.
    pub fn check_subscribed(&self, call: &ex::Call) -> Result<pb::FrameworkInfo, AgentError> {
        let state = self.lock();
        let framework = state
            .frameworks
            .get(&call.framework_id.value)
            .ok_or_else(|| AgentError::NotFound("Framework cannot be found".into()))?;
        let executor = framework
            .executors
            .get(&call.executor_id.value)
            .ok_or_else(|| AgentError::NotFound("Executor cannot be found".into()))?;
        if executor.state == ExecutorState::Registering {
            return Err(AgentError::Forbidden("Executor is not subscribed".into()));
        }
        Ok(framework.info.clone())
    }

    /// UPDATE from an executor.
    pub fn executor_update(&self, call: &ex::Call) -> Result<(), AgentError> {
        let framework = self.check_subscribed(call)?;
        let update = call
            .update
            .as_ref()
            .ok_or_else(|| AgentError::Invalid("Expecting 'update' to be present".into()))?;
        let mut status = update.status.clone();
        if status.uuid.is_none() {
            self.lock().metrics.invalid_status_updates += 1;
            return Err(AgentError::Invalid("Expecting 'uuid' to be present".into()));
        }
        if status.state == TaskState::TaskStaging as i32 {
            self.lock().metrics.invalid_status_updates += 1;
            return Err(AgentError::Invalid(
                "Received TASK_STAGING from executor".into(),
            ));
        }
        status.source = Some(Source::Executor as i32);
        self.lock().metrics.valid_status_updates += 1;
        self.status_update(&framework, Some(&call.executor_id), status, true);
        Ok(())
    }

    /// MESSAGE from an executor: to its framework.
    pub fn executor_message(&self, call: &ex::Call) -> Result<(), AgentError> {
        self.check_subscribed(call)?;
        let data = call
            .message
            .as_ref()
            .map(|m| m.data.clone())
            .ok_or_else(|| AgentError::Invalid("Expecting 'message' to be present".into()))?;
        let mut state = self.lock();
        state.metrics.valid_framework_messages += 1;
        let agent_id = state.info.id.clone().unwrap_or_default();
        if state.registered {
            self.send(Up::ExecutorToFramework(link::ExecutorToFramework {
                agent_id,
                framework_id: call.framework_id.clone(),
                executor_id: call.executor_id.clone(),
                data,
            }));
        }
        Ok(())
    }

    /// An executor's event stream closed.
    pub fn executor_disconnected(
        &self,
        fw: &str,
        exec_id: &str,
        tx_closed: &mpsc::UnboundedSender<Bytes>,
    ) {
        let mut state = self.lock();
        if let Some(executor) = state
            .frameworks
            .get_mut(fw)
            .and_then(|f| f.executors.get_mut(exec_id))
        {
            if executor
                .connection
                .as_ref()
                .is_some_and(|c| c.tx.same_channel(tx_closed))
            {
                executor.connection = None;
            }
        }
    }

    /// Sends HEARTBEAT to every subscribed executor.
    pub fn heartbeat_executors(&self) {
        let state = self.lock();
        for fw in state.frameworks.values() {
            for executor in fw.executors.values() {
                if let Some(c) = &executor.connection {
                    c.send(&ex::Event {
                        r#type: Some(ex::event::Type::Heartbeat as i32),
                        ..Default::default()
                    });
                }
            }
        }
    }

    /// Kills every container (ShutdownAgent, or `--recover=cleanup`).
    pub async fn kill_everything(self: &Arc<Self>) {
        let targets: Vec<(Option<Arc<ContainerGroup>>, Option<u32>)> = {
            let state = self.lock();
            let mut targets: Vec<_> = state
                .frameworks
                .values()
                .flat_map(|f| f.executors.values())
                .map(|e| (e.group.clone(), e.pid))
                .collect();
            targets.extend(state.nested.values().map(|n| (n.group.clone(), n.pid)));
            targets
        };
        let _ = tokio::task::spawn_blocking(move || {
            for (group, pid) in targets {
                if let Some(pid) = pid {
                    containerizer::kill_process_group(pid, libc::SIGKILL);
                }
                if let Some(group) = group {
                    let _ = group.destroy(Duration::from_secs(10));
                }
            }
        })
        .await;
    }
}

/// How often an OOM watch with a notifier checks that its container
/// still lives (the notifier also fires when the group is removed).
const OOM_RECHECK: Duration = Duration::from_secs(5);

/// Reads what a notifier fd holds (an eventfd counter or inotify events),
/// so it is not readable again until the next event.
fn drain(fd: &std::os::fd::OwnedFd) {
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: `buf` is writable for its length and `fd` is open and
        // non-blocking, so read returns at once.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return;
        }
    }
}

enum Waiter {
    Child(tokio::process::Child),
    Pid(u32),
}

/// Why a ContainerInfo cannot run here, if it cannot: Pando's containers
/// are cgroups and sandboxes on the host's root file system.
fn unsupported_container(container: &pb::ContainerInfo) -> Option<String> {
    use pb::container_info::Type;
    if container.r#type == Type::Docker as i32 {
        return Some(
            "Failed to launch container: Docker containers are not supported by this agent".into(),
        );
    }
    if container.mesos.as_ref().is_some_and(|m| m.image.is_some()) {
        return Some(
            "Failed to launch container: container images are not supported by this agent".into(),
        );
    }
    None
}

/// The top-level container a (possibly nested) container belongs to.
fn top_parent(id: &pb::ContainerId) -> &str {
    let mut current = id;
    while let Some(parent) = current.parent.as_deref() {
        current = parent;
    }
    &current.value
}

fn with_update_state(task: &pb::Task, stream: Option<&UpdateStream>) -> pb::Task {
    let mut task = task.clone();
    if let Some(head) = stream.and_then(|s| s.pending.front()) {
        task.status_update_state = Some(head.status.state);
        task.status_update_uuid = head.status.uuid.clone();
    }
    task
}

/// The Mesos wait status of an exited process.
fn wait_status(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.into_raw()
}

/// The capabilities a Pando agent reports.
pub fn agent_capabilities() -> Vec<pb::agent_info::Capability> {
    use pb::agent_info::capability::Type;
    [
        Type::MultiRole,
        Type::HierarchicalRole,
        Type::ReservationRefinement,
    ]
    .into_iter()
    .map(|t| pb::agent_info::Capability {
        r#type: Some(t as i32),
    })
    .collect()
}

/// A framework's id value.
pub fn fw_id(info: &pb::FrameworkInfo) -> String {
    info.id
        .as_ref()
        .map(|i| i.value.clone())
        .unwrap_or_default()
}

/// A status the agent generates itself.
pub fn agent_status(
    task_id: &pb::TaskId,
    state: TaskState,
    reason: Reason,
    message: &str,
) -> pb::TaskStatus {
    pb::TaskStatus {
        task_id: task_id.clone(),
        state: state as i32,
        message: Some(message.to_string()),
        source: Some(Source::Agent as i32),
        reason: Some(reason as i32),
        uuid: Some(Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes())),
        timestamp: Some(now_secs()),
        ..Default::default()
    }
}

fn launch_event(queued: &Queued) -> ex::Event {
    match queued {
        Queued::Task(task) => ex::Event {
            r#type: Some(ex::event::Type::Launch as i32),
            launch: Some(ex::event::Launch { task: task.clone() }),
            ..Default::default()
        },
        Queued::Group(group) => ex::Event {
            r#type: Some(ex::event::Type::LaunchGroup as i32),
            launch_group: Some(ex::event::LaunchGroup {
                task_group: group.clone(),
            }),
            ..Default::default()
        },
    }
}

/// The agent's record of a task.
pub fn task_record(
    task: &pb::TaskInfo,
    fw: &str,
    agent_id: &str,
    executor_id: Option<&pb::ExecutorId>,
) -> pb::Task {
    pb::Task {
        name: task.name.clone(),
        task_id: task.task_id.clone(),
        framework_id: pb::FrameworkId {
            value: fw.to_string(),
        },
        executor_id: executor_id.cloned(),
        agent_id: pb::AgentId {
            value: if agent_id.is_empty() {
                task.agent_id.value.clone()
            } else {
                agent_id.to_string()
            },
        },
        state: TaskState::TaskStaging as i32,
        resources: task.resources.clone(),
        labels: task.labels.clone(),
        discovery: task.discovery.clone().map(Box::new),
        container: task.container.clone().map(Box::new),
        health_check: task.health_check.clone().map(Box::new),
        kill_policy: task.kill_policy,
        user: task.command.as_ref().and_then(|c| c.user.clone()),
        limits: task.limits.clone(),
        ..Default::default()
    }
}

/// The cgroup limits of a set of resources.
pub fn limits_of(resources: &[pb::Resource]) -> Limits {
    let sum = |name: &str| {
        let total: f64 = resources
            .iter()
            .filter(|r| r.name == name)
            .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
            .sum();
        (total > 0.0).then_some(total)
    };
    Limits {
        cpus: sum("cpus"),
        mem_mb: sum("mem"),
        pids: None,
    }
}
