//! Simulated agents: each one is a real agent-link session with the
//! master, without an agent process or containers behind it.
//!
//! Sessions share a few HTTP/2 connections (one tonic `Channel` per
//! `--agents_per_connection` agents and master), so ten thousand agents fit
//! in one process. Each agent registers, answers every Ping with a Pong,
//! and "runs" a task by reporting TASK_RUNNING at once and TASK_FINISHED
//! after the task duration; a KillTask gets TASK_KILLED. Status updates
//! carry a 16-byte uuid; the master's acknowledgements are read and dropped
//! (the simulation never resends).
//!
//! With several masters ([`FleetConfig::follow_leader`]) an agent outlives
//! its sessions, as a real agent does: when a session ends or a standby
//! refuses it, [`LeaderSearch`] picks the next master to dial, and the
//! agent sends `ReregisterAgent` with its id, the frameworks and the tasks
//! it runs. Every registration is reported on
//! [`AgentFleet::registrations`], which is how the failover benchmark sees
//! the fleet come back.
//!
//! ```text
//!   dial master ─► Register / Reregister ─► answered ─► serve the session
//!        ▲                                                   │ ends
//!        └──── LeaderSearch::after(outcome) ◄────────────────┘
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pando_link::agent_link_client::AgentLinkClient;
use pando_link::{
    agent_message, master_message, AgentMessage, MasterMessage, RegisterAgent, ReregisterAgent,
};
use pando_proto::mesos::v1 as pb;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::{Channel, Endpoint};

use crate::leader::{self, LeaderSearch, Outcome};

/// The metadata key in which a standby names the leader.
pub const LEADER_METADATA: &str = "pando-leader";

/// How long an agent waits for the master to answer its (re-)registration
/// before it tries another master: a real agent's
/// `REGISTRATION_ANSWER_TIMEOUT`. A replicated master answers only once the
/// registry holds the agent, and a shorter wait under a registration storm
/// would send the same agent to register twice.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong with the simulated agents.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No master to dial.
    #[error("the agents were given no master")]
    NoMaster,
    /// A master's address is not a URI.
    #[error("bad master address '{0}': {1}")]
    Address(String, String),
    /// Some agent's registration failed.
    #[error("agent {0} did not register: {1}")]
    Register(usize, String),
    /// Not every agent registered in time.
    #[error("only {0} of {1} agents registered within {2:?}")]
    Timeout(usize, usize, Duration),
}

/// Counters the agents keep, for the report.
#[derive(Debug, Default)]
pub struct AgentCounters {
    /// RunTask (and tasks of RunTaskGroup) received.
    pub tasks_received: AtomicU64,
    /// Status updates sent.
    pub updates_sent: AtomicU64,
    /// Sessions that ended before the simulation stopped them.
    pub sessions_lost: AtomicU64,
    /// Sessions a master refused or never answered (standbys, dead masters).
    pub sessions_refused: AtomicU64,
}

/// What the fleet is and where it connects.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The masters, `host:port`; every agent knows all of them.
    pub masters: Vec<String>,
    /// The index in `masters` every agent dials first (the leader, when it
    /// is known).
    pub first: usize,
    /// How many agents.
    pub count: usize,
    /// How many agent sessions share one HTTP/2 connection to a master.
    pub per_connection: usize,
    /// Resources of every agent.
    pub resources: Vec<pb::Resource>,
    /// How long a task runs before TASK_FINISHED; `None`: until killed.
    pub task_duration: Option<Duration>,
    /// The longest [`AgentFleet::start`] waits for every agent to register.
    pub wait: Duration,
    /// Whether an agent whose session ends looks for the leader and
    /// re-registers (HA), or stays disconnected (one master: a lost session
    /// is a figure of the report).
    pub follow_leader: bool,
}

/// One agent's (re-)registration, as the fleet reports it.
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    /// The agent's number.
    pub index: usize,
    /// The index of the master that answered.
    pub master: usize,
    /// When the answer arrived.
    pub at: Instant,
    /// True when the master answered AgentReregistered (it kept the
    /// agent's id), false for AgentRegistered.
    pub reregistered: bool,
}

/// The running simulated agents; stopping them closes their sessions.
pub struct AgentFleet {
    stop: watch::Sender<bool>,
    agents: Vec<JoinHandle<()>>,
    /// Counters, shared with every agent.
    pub counters: Arc<AgentCounters>,
    /// Every registration after the first of each agent (those are consumed
    /// by [`AgentFleet::start`]).
    pub registrations: mpsc::UnboundedReceiver<Registration>,
    /// Agents that gave up, with why (a ShutdownAgent, or a refusal when
    /// the agents do not follow the leader).
    pub failures: mpsc::UnboundedReceiver<(usize, String)>,
}

/// Where an agent reports what happened to it.
#[derive(Clone)]
struct Reports {
    registered: mpsc::UnboundedSender<Registration>,
    failed: mpsc::UnboundedSender<(usize, String)>,
}

impl AgentFleet {
    /// Registers `config.count` agents and returns once every one is
    /// registered, with the time that took.
    pub async fn start(config: FleetConfig) -> Result<(AgentFleet, Duration), AgentError> {
        if config.masters.is_empty() || config.first >= config.masters.len() {
            return Err(AgentError::NoMaster);
        }
        let per_connection = config.per_connection.max(1);
        let connections = config.count.div_ceil(per_connection);
        // channels[master][connection]: connected lazily, and again after
        // the master comes back.
        let mut channels = Vec::with_capacity(config.masters.len());
        for addr in &config.masters {
            let endpoint = Endpoint::from_shared(format!("http://{addr}"))
                .map_err(|e| AgentError::Address(addr.clone(), e.to_string()))?
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(2));
            channels.push(
                (0..connections)
                    .map(|_| endpoint.connect_lazy())
                    .collect::<Vec<Channel>>(),
            );
        }
        let channels = Arc::new(channels);
        let started = Instant::now();
        let (stop, stop_rx) = watch::channel(false);
        let counters = Arc::new(AgentCounters::default());
        let (registered_tx, mut registered_rx) = mpsc::unbounded_channel();
        let (failed_tx, mut failed_rx) = mpsc::unbounded_channel();
        let reports = Reports {
            registered: registered_tx,
            failed: failed_tx,
        };
        let mut agents = Vec::with_capacity(config.count);
        for index in 0..config.count {
            let info = pb::AgentInfo {
                hostname: format!("sim-agent-{index}"),
                port: Some(5051),
                resources: config.resources.clone(),
                ..Default::default()
            };
            let agent = SimAgent {
                index,
                info,
                task_duration: config.task_duration,
                counters: counters.clone(),
                tasks: HashMap::new(),
                frameworks: HashMap::new(),
                executors: HashMap::new(),
                sequence: 0,
                search: LeaderSearch::new(config.masters.clone()),
                follow_leader: config.follow_leader,
            };
            agents.push(tokio::spawn(agent.run(
                channels.clone(),
                index / per_connection,
                config.first,
                reports.clone(),
                stop_rx.clone(),
            )));
        }
        drop(reports);
        let deadline = tokio::time::Instant::now() + config.wait;
        let mut done = HashSet::with_capacity(config.count);
        while done.len() < config.count {
            let timeout = AgentError::Timeout(done.len(), config.count, config.wait);
            tokio::select! {
                registration = registered_rx.recv() => match registration {
                    Some(r) => {
                        done.insert(r.index);
                    }
                    None => return Err(timeout),
                },
                Some((index, why)) = failed_rx.recv() => {
                    let _ = stop.send(true);
                    return Err(AgentError::Register(index, why));
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let _ = stop.send(true);
                    return Err(timeout);
                }
            }
        }
        let fleet = AgentFleet {
            stop,
            agents,
            counters,
            registrations: registered_rx,
            failures: failed_rx,
        };
        Ok((fleet, started.elapsed()))
    }

    /// Closes every session and waits for the agents' tasks to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for agent in self.agents {
            let _ = agent.await;
        }
    }
}

/// One simulated agent's state; it outlives its sessions.
struct SimAgent {
    index: usize,
    /// What it registers with; `id` is set once the master gave one.
    info: pb::AgentInfo,
    task_duration: Option<Duration>,
    counters: Arc<AgentCounters>,
    /// Tasks "running" here, by task id, as re-registration reports them.
    tasks: HashMap<String, pb::Task>,
    /// The frameworks of those tasks, by framework id.
    frameworks: HashMap<String, pb::FrameworkInfo>,
    /// Executors of task groups, by (framework id, executor id).
    executors: HashMap<(String, String), pb::ExecutorInfo>,
    /// Numbers the status update uuids.
    sequence: u64,
    /// Which master to dial after a session ends.
    search: LeaderSearch,
    /// Whether to look for the leader when a session ends.
    follow_leader: bool,
}

/// How one session ended.
enum SessionEnd {
    /// The fleet is stopping.
    Stopped,
    /// The master told the agent to shut down.
    Shutdown(String),
    /// The session is over; the agent may look for the leader.
    Over(Outcome, String),
}

impl SimAgent {
    /// The agent's id, as the master gave it.
    fn id(&self) -> String {
        self.info
            .id
            .as_ref()
            .map(|i| i.value.clone())
            .unwrap_or_default()
    }

    async fn run(
        mut self,
        channels: Arc<Vec<Vec<Channel>>>,
        connection: usize,
        first: usize,
        reports: Reports,
        mut stop: watch::Receiver<bool>,
    ) {
        // Finished tasks come back here, so a kill in between wins; the
        // channel outlives sessions, so a task may finish while the agent
        // is looking for the leader.
        let (finish_tx, mut finish_rx) = mpsc::unbounded_channel::<String>();
        let mut master = first;
        loop {
            let Some(channel) = channels.get(master).and_then(|c| c.get(connection)) else {
                let _ = reports.failed.send((self.index, "no channel".into()));
                return;
            };
            let end = self
                .session(
                    channel.clone(),
                    master,
                    &reports,
                    &finish_tx,
                    &mut finish_rx,
                    &mut stop,
                )
                .await;
            let (outcome, why) = match end {
                SessionEnd::Stopped => return,
                SessionEnd::Shutdown(why) => {
                    let _ = reports.failed.send((self.index, why));
                    return;
                }
                SessionEnd::Over(outcome, why) => (outcome, why),
            };
            if *stop.borrow() {
                return;
            }
            match outcome {
                Outcome::Lost => {
                    self.counters.sessions_lost.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    self.counters
                        .sessions_refused
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            if !self.follow_leader {
                if outcome != Outcome::Lost {
                    let _ = reports.failed.send((self.index, why));
                }
                return;
            }
            let step = self.search.after(master, &outcome);
            if step.pause {
                tokio::select! {
                    _ = tokio::time::sleep(leader::pause(leader::jitter_unit())) => {}
                    _ = stop.changed() => return,
                }
            }
            master = step.master;
        }
    }

    /// The message that opens a session: Register the first time,
    /// Reregister with the id, frameworks and tasks once the agent has an id.
    fn opening(&self) -> agent_message::Message {
        if self.info.id.is_none() {
            return agent_message::Message::Register(RegisterAgent {
                agent_info: self.info.clone(),
                version: Some("pando-sim".into()),
                capabilities: Vec::new(),
                endpoint: None,
            });
        }
        let mut tasks: Vec<pb::Task> = self.tasks.values().cloned().collect();
        tasks.sort_by(|a, b| a.task_id.value.cmp(&b.task_id.value));
        agent_message::Message::Reregister(ReregisterAgent {
            agent_info: self.info.clone(),
            version: Some("pando-sim".into()),
            frameworks: self.frameworks.values().cloned().collect(),
            executors: self.executors.values().cloned().collect(),
            tasks,
            ..Default::default()
        })
    }

    /// Opens one session with the master at `master`, waits for its answer
    /// and serves it until it ends.
    async fn session(
        &mut self,
        channel: Channel,
        master: usize,
        reports: &Reports,
        finish_tx: &mpsc::UnboundedSender<String>,
        finish_rx: &mut mpsc::UnboundedReceiver<String>,
        stop: &mut watch::Receiver<bool>,
    ) -> SessionEnd {
        if *stop.borrow() {
            return SessionEnd::Stopped;
        }
        let mut client = AgentLinkClient::new(channel);
        let (up, up_rx) = mpsc::unbounded_channel();
        send(&up, self.opening());
        let opened = tokio::select! {
            opened = client.session(UnboundedReceiverStream::new(up_rx)) => opened,
            _ = stop.changed() => return SessionEnd::Stopped,
        };
        let mut down = match opened {
            Ok(response) => response.into_inner(),
            Err(status) => {
                let address = self.search.masters().get(master).cloned();
                return SessionEnd::Over(refusal(&status, address.as_deref()), status.to_string());
            }
        };

        // The first answer is the registration (pings may come first).
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, async {
            loop {
                match down.message().await {
                    Ok(Some(MasterMessage {
                        message: Some(master_message::Message::Registered(r)),
                    })) => return Ok((r.agent_id, false)),
                    Ok(Some(MasterMessage {
                        message: Some(master_message::Message::Reregistered(r)),
                    })) => return Ok((r.agent_id, true)),
                    Ok(Some(MasterMessage {
                        message: Some(master_message::Message::Ping(_)),
                    })) => send(&up, pong()),
                    Ok(Some(MasterMessage {
                        message: Some(master_message::Message::Shutdown(s)),
                    })) => {
                        let why = s.message.unwrap_or_else(|| "shut down".into());
                        return Err(SessionEnd::Shutdown(why));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        return Err(SessionEnd::Over(
                            Outcome::Unreachable,
                            "session closed before the registration was answered".into(),
                        ))
                    }
                    Err(status) => {
                        let address = self.search.masters().get(master).cloned();
                        return Err(SessionEnd::Over(
                            refusal(&status, address.as_deref()),
                            status.to_string(),
                        ));
                    }
                }
            }
        });
        let answered = tokio::select! {
            answered = answer => answered,
            _ = stop.changed() => return SessionEnd::Stopped,
        };
        let (agent_id, reregistered) = match answered {
            Ok(Ok(answer)) => answer,
            Ok(Err(end)) => return end,
            Err(_) => {
                return SessionEnd::Over(
                    Outcome::Unreachable,
                    format!("no answer to the registration within {ANSWER_TIMEOUT:?}"),
                )
            }
        };
        self.info.id = Some(agent_id);
        self.search.registered();
        let _ = reports.registered.send(Registration {
            index: self.index,
            master,
            at: Instant::now(),
            reregistered,
        });

        loop {
            tokio::select! {
                message = down.message() => match message {
                    Ok(Some(m)) => {
                        if let Some(m) = m.message {
                            if !self.handle(m, &up, finish_tx) {
                                return SessionEnd::Shutdown(
                                    "the master shut the agent down".into(),
                                );
                            }
                        }
                    }
                    Ok(None) => return SessionEnd::Over(Outcome::Lost, "session closed".into()),
                    Err(status) => return SessionEnd::Over(Outcome::Lost, status.to_string()),
                },
                Some(task_id) = finish_rx.recv() => {
                    if let Some(task) = self.tasks.remove(&task_id) {
                        let update = self.update(
                            &task.framework_id.value,
                            &task_id,
                            pb::TaskState::TaskFinished,
                        );
                        send(&up, update);
                    }
                }
                _ = stop.changed() => return SessionEnd::Stopped,
            }
        }
    }

    /// Acts on one message from the master; false when the agent must stop.
    fn handle(
        &mut self,
        message: master_message::Message,
        up: &mpsc::UnboundedSender<AgentMessage>,
        finish: &mpsc::UnboundedSender<String>,
    ) -> bool {
        use master_message::Message as M;
        match message {
            M::Ping(_) => send(up, pong()),
            M::RunTask(run) => {
                self.start_task(&run.framework, &run.task, None, up, finish);
            }
            M::RunTaskGroup(run) => {
                let framework_id = framework_id(&run.framework);
                let mut executor = run.executor;
                executor.framework_id = run.framework.id.clone();
                let executor_id = executor.executor_id.clone();
                self.executors
                    .insert((framework_id, executor_id.value.clone()), executor);
                for task in &run.task_group.tasks {
                    self.start_task(&run.framework, task, Some(executor_id.clone()), up, finish);
                }
            }
            M::KillTask(kill) => {
                let known = self.tasks.remove(&kill.task_id.value).is_some();
                if known {
                    let update = self.update(
                        &kill.framework_id.value,
                        &kill.task_id.value,
                        pb::TaskState::TaskKilled,
                    );
                    send(up, update);
                }
            }
            M::ShutdownFramework(shutdown) => {
                let gone = shutdown.framework_id.value;
                self.tasks.retain(|_, task| task.framework_id.value != gone);
                self.executors
                    .retain(|(framework, _), _| *framework != gone);
                self.frameworks.remove(&gone);
            }
            M::Shutdown(_) => return false,
            _ => {}
        }
        true
    }

    fn start_task(
        &mut self,
        framework: &pb::FrameworkInfo,
        task: &pb::TaskInfo,
        executor_id: Option<pb::ExecutorId>,
        up: &mpsc::UnboundedSender<AgentMessage>,
        finish: &mpsc::UnboundedSender<String>,
    ) {
        self.counters.tasks_received.fetch_add(1, Ordering::Relaxed);
        let framework_id = framework_id(framework);
        let task_id = task.task_id.value.clone();
        let update = self.update(&framework_id, &task_id, pb::TaskState::TaskRunning);
        send(up, update);
        // The record a real agent keeps (and reports when it re-registers).
        let record = pb::Task {
            name: task.name.clone(),
            task_id: task.task_id.clone(),
            framework_id: pb::FrameworkId {
                value: framework_id.clone(),
            },
            executor_id,
            agent_id: pb::AgentId { value: self.id() },
            state: pb::TaskState::TaskRunning as i32,
            resources: task.resources.clone(),
            labels: task.labels.clone(),
            ..Default::default()
        };
        self.tasks.insert(task_id.clone(), record);
        self.frameworks
            .entry(framework_id)
            .or_insert_with(|| framework.clone());
        if let Some(duration) = self.task_duration {
            let finish = finish.clone();
            tokio::spawn(async move {
                tokio::time::sleep(duration).await;
                let _ = finish.send(task_id);
            });
        }
    }

    /// A status update with a fresh uuid: the agent index and a sequence
    /// number, so every uuid in a run is distinct.
    fn update(
        &mut self,
        framework_id: &str,
        task_id: &str,
        state: pb::TaskState,
    ) -> agent_message::Message {
        self.sequence += 1;
        self.counters.updates_sent.fetch_add(1, Ordering::Relaxed);
        let mut uuid = Vec::with_capacity(16);
        uuid.extend_from_slice(&(self.index as u64).to_be_bytes());
        uuid.extend_from_slice(&self.sequence.to_be_bytes());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let agent_id = pb::AgentId { value: self.id() };
        agent_message::Message::StatusUpdate(pando_link::StatusUpdate {
            framework_id: pb::FrameworkId {
                value: framework_id.into(),
            },
            executor_id: None,
            agent_id: Some(agent_id.clone()),
            status: pb::TaskStatus {
                task_id: pb::TaskId {
                    value: task_id.into(),
                },
                state: state as i32,
                source: Some(pb::task_status::Source::Executor as i32),
                uuid: Some(Bytes::from(uuid)),
                agent_id: Some(agent_id),
                timestamp: Some(now),
                ..Default::default()
            },
            timestamp: now,
            latest_state: Some(state as i32),
        })
    }
}

/// What a failed session open or a broken answer means for the search: a
/// standby's UNAVAILABLE (with the leader it names, unless that is the
/// master just tried) is a refusal; anything else, a master not reached.
fn refusal(status: &tonic::Status, master: Option<&str>) -> Outcome {
    if status.code() != tonic::Code::Unavailable {
        return Outcome::Unreachable;
    }
    let leader = status
        .metadata()
        .get(LEADER_METADATA)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|l| Some(l.as_str()) != master);
    Outcome::Refused { leader }
}

fn framework_id(framework: &pb::FrameworkInfo) -> String {
    framework
        .id
        .as_ref()
        .map(|i| i.value.clone())
        .unwrap_or_default()
}

fn pong() -> agent_message::Message {
    agent_message::Message::Pong(pando_link::Pong {})
}

fn send(up: &mpsc::UnboundedSender<AgentMessage>, message: agent_message::Message) {
    let _ = up.send(AgentMessage {
        message: Some(message),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_refusal_names_the_leader() {
        let mut status = tonic::Status::unavailable("not the leading master");
        status.metadata_mut().insert(
            LEADER_METADATA,
            "127.0.0.1:5052".parse().expect("ascii metadata"),
        );
        assert_eq!(
            refusal(&status, Some("127.0.0.1:5051")),
            Outcome::Refused {
                leader: Some("127.0.0.1:5052".into())
            }
        );
        // A master naming itself (still recovering) names no one else.
        assert_eq!(
            refusal(&status, Some("127.0.0.1:5052")),
            Outcome::Refused { leader: None }
        );
        let status = tonic::Status::unavailable("no leading master is elected");
        assert_eq!(refusal(&status, None), Outcome::Refused { leader: None });
        let status = tonic::Status::internal("poisoned");
        assert_eq!(refusal(&status, None), Outcome::Unreachable);
    }

    fn agent() -> SimAgent {
        SimAgent {
            index: 7,
            info: pb::AgentInfo {
                hostname: "sim-agent-7".into(),
                ..Default::default()
            },
            task_duration: None,
            counters: Arc::new(AgentCounters::default()),
            tasks: HashMap::new(),
            frameworks: HashMap::new(),
            executors: HashMap::new(),
            sequence: 0,
            search: LeaderSearch::new(vec!["127.0.0.1:1".into()]),
            follow_leader: true,
        }
    }

    #[test]
    fn a_registered_agent_reregisters_with_its_id_frameworks_and_tasks() {
        let mut agent = agent();
        assert!(matches!(
            agent.opening(),
            agent_message::Message::Register(_)
        ));
        agent.info.id = Some(pb::AgentId {
            value: "A-S0".into(),
        });
        let framework = pb::FrameworkInfo {
            id: Some(pb::FrameworkId {
                value: "F-1".into(),
            }),
            name: "sim".into(),
            ..Default::default()
        };
        let task = pb::TaskInfo {
            name: "t".into(),
            task_id: pb::TaskId { value: "t1".into() },
            agent_id: pb::AgentId {
                value: "A-S0".into(),
            },
            ..Default::default()
        };
        let (up, mut up_rx) = mpsc::unbounded_channel();
        let (finish, _finish_rx) = mpsc::unbounded_channel();
        let run = pando_link::RunTask {
            framework: framework.clone(),
            task,
        };
        assert!(agent.handle(master_message::Message::RunTask(run), &up, &finish));
        assert!(matches!(
            up_rx.try_recv().map(|m| m.message),
            Ok(Some(agent_message::Message::StatusUpdate(_)))
        ));
        let agent_message::Message::Reregister(r) = agent.opening() else {
            panic!("an agent with an id re-registers");
        };
        assert_eq!(r.agent_info.id.map(|i| i.value), Some("A-S0".into()));
        assert_eq!(r.frameworks, vec![framework]);
        assert_eq!(r.tasks.len(), 1);
        assert_eq!(r.tasks[0].task_id.value, "t1");
        assert_eq!(r.tasks[0].framework_id.value, "F-1");
        assert_eq!(r.tasks[0].agent_id.value, "A-S0");
        assert_eq!(r.tasks[0].state, pb::TaskState::TaskRunning as i32);
    }
}
