//! Simulated agents: each one is a real agent-link session with the
//! master, without an agent process or containers behind it.
//!
//! Sessions share a few HTTP/2 connections (one tonic `Channel` per
//! `--agents_per_connection` agents), so ten thousand agents fit in one
//! process. Each agent registers, answers every Ping with a Pong, and
//! "runs" a task by reporting TASK_RUNNING at once and TASK_FINISHED after
//! the task duration; a KillTask gets TASK_KILLED. Status updates carry a
//! 16-byte uuid; the master's acknowledgements are read and dropped (the
//! simulation never resends).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pando_proto::link::agent_link_client::AgentLinkClient;
use pando_proto::link::{agent_message, master_message, AgentMessage, RegisterAgent};
use pando_proto::mesos::v1 as pb;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::{Channel, Endpoint};

/// What went wrong with the simulated agents.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The master's address is not a URI.
    #[error("bad master address '{0}': {1}")]
    Address(String, String),
    /// An HTTP/2 connection to the master failed.
    #[error("cannot connect the agent link to {0}: {1}")]
    Connect(String, String),
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
}

/// The running simulated agents; stopping them closes their sessions.
pub struct AgentFleet {
    stop: watch::Sender<bool>,
    agents: Vec<JoinHandle<()>>,
    /// Counters, shared with every agent.
    pub counters: Arc<AgentCounters>,
}

impl AgentFleet {
    /// Registers `count` agents with the master at `addr` (`host:port`),
    /// each with `resources`, and returns once every one is registered,
    /// with the time that took.
    pub async fn start(
        addr: &str,
        count: usize,
        per_connection: usize,
        resources: Vec<pb::Resource>,
        task_duration: Duration,
        wait: Duration,
    ) -> Result<(AgentFleet, Duration), AgentError> {
        let url = format!("http://{addr}");
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| AgentError::Address(addr.into(), e.to_string()))?
            .tcp_nodelay(true);
        let started = Instant::now();
        let connections = count.div_ceil(per_connection.max(1));
        let mut channels = Vec::with_capacity(connections);
        for _ in 0..connections {
            let channel = endpoint
                .connect()
                .await
                .map_err(|e| AgentError::Connect(url.clone(), e.to_string()))?;
            channels.push(channel);
        }
        let (stop, stop_rx) = watch::channel(false);
        let counters = Arc::new(AgentCounters::default());
        let (registered_tx, mut registered_rx) = mpsc::unbounded_channel();
        let mut agents = Vec::with_capacity(count);
        for index in 0..count {
            let channel = channels[index / per_connection.max(1)].clone();
            let info = pb::AgentInfo {
                hostname: format!("sim-agent-{index}"),
                port: Some(5051),
                resources: resources.clone(),
                ..Default::default()
            };
            let agent = SimAgent {
                index,
                id: String::new(),
                task_duration,
                counters: counters.clone(),
                tasks: HashMap::new(),
                sequence: 0,
            };
            agents.push(tokio::spawn(agent.run(
                channel,
                info,
                registered_tx.clone(),
                stop_rx.clone(),
            )));
        }
        drop(registered_tx);
        let fleet = AgentFleet {
            stop,
            agents,
            counters,
        };
        let deadline = tokio::time::Instant::now() + wait;
        let mut done = 0;
        while done < count {
            match tokio::time::timeout_at(deadline, registered_rx.recv()).await {
                Ok(Some(Ok(()))) => done += 1,
                Ok(Some(Err((index, why)))) => return Err(AgentError::Register(index, why)),
                Ok(None) | Err(_) => return Err(AgentError::Timeout(done, count, wait)),
            }
        }
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

/// One simulated agent's state.
struct SimAgent {
    index: usize,
    /// Given by the master on registration.
    id: String,
    task_duration: Duration,
    counters: Arc<AgentCounters>,
    /// Tasks "running" here: task id → framework id.
    tasks: HashMap<String, String>,
    /// Numbers the status update uuids.
    sequence: u64,
}

type Registered = mpsc::UnboundedSender<Result<(), (usize, String)>>;

impl SimAgent {
    async fn run(
        mut self,
        channel: Channel,
        info: pb::AgentInfo,
        registered: Registered,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut client = AgentLinkClient::new(channel);
        let (up, up_rx) = mpsc::unbounded_channel();
        let register = agent_message::Message::Register(RegisterAgent {
            agent_info: info,
            version: Some("pando-sim".into()),
            capabilities: Vec::new(),
            endpoint: None,
        });
        let _ = up.send(AgentMessage {
            message: Some(register),
        });
        let mut down = match client.session(UnboundedReceiverStream::new(up_rx)).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                let _ = registered.send(Err((self.index, status.to_string())));
                return;
            }
        };
        // The first answer is the registration (pings may come first).
        loop {
            match down.message().await {
                Ok(Some(m)) => match m.message {
                    Some(master_message::Message::Registered(r)) => {
                        self.id = r.agent_id.value;
                        break;
                    }
                    Some(master_message::Message::Reregistered(r)) => {
                        self.id = r.agent_id.value;
                        break;
                    }
                    Some(master_message::Message::Ping(_)) => send(&up, pong()),
                    Some(master_message::Message::Shutdown(s)) => {
                        let why = s.message.unwrap_or_else(|| "shut down".into());
                        let _ = registered.send(Err((self.index, why)));
                        return;
                    }
                    _ => {}
                },
                Ok(None) => {
                    let _ = registered.send(Err((self.index, "session closed".into())));
                    return;
                }
                Err(status) => {
                    let _ = registered.send(Err((self.index, status.to_string())));
                    return;
                }
            }
        }
        let _ = registered.send(Ok(()));

        // Finished tasks come back here, so a kill in between wins.
        let (finish_tx, mut finish_rx) = mpsc::unbounded_channel::<String>();
        loop {
            tokio::select! {
                message = down.message() => match message {
                    Ok(Some(m)) => {
                        if let Some(m) = m.message {
                            if !self.handle(m, &up, &finish_tx) {
                                break;
                            }
                        }
                    }
                    Ok(None) | Err(_) => {
                        if !*stop.borrow() {
                            self.counters.sessions_lost.fetch_add(1, Ordering::Relaxed);
                        }
                        break;
                    }
                },
                Some(task_id) = finish_rx.recv() => {
                    if let Some(framework_id) = self.tasks.remove(&task_id) {
                        let update = self.update(&framework_id, &task_id, pb::TaskState::TaskFinished);
                        send(&up, update);
                    }
                }
                _ = stop.changed() => break,
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
                let framework_id = run.framework.id.map(|i| i.value).unwrap_or_default();
                self.start_task(framework_id, run.task.task_id.value, up, finish);
            }
            M::RunTaskGroup(run) => {
                let framework_id = run.framework.id.map(|i| i.value).unwrap_or_default();
                for task in run.task_group.tasks {
                    self.start_task(framework_id.clone(), task.task_id.value, up, finish);
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
                self.tasks
                    .retain(|_, framework| *framework != shutdown.framework_id.value);
            }
            M::Shutdown(_) => return false,
            _ => {}
        }
        true
    }

    fn start_task(
        &mut self,
        framework_id: String,
        task_id: String,
        up: &mpsc::UnboundedSender<AgentMessage>,
        finish: &mpsc::UnboundedSender<String>,
    ) {
        self.counters.tasks_received.fetch_add(1, Ordering::Relaxed);
        let update = self.update(&framework_id, &task_id, pb::TaskState::TaskRunning);
        send(up, update);
        self.tasks.insert(task_id.clone(), framework_id);
        let finish = finish.clone();
        let duration = self.task_duration;
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            let _ = finish.send(task_id);
        });
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
        let agent_id = pb::AgentId {
            value: self.id.clone(),
        };
        agent_message::Message::StatusUpdate(pando_proto::link::StatusUpdate {
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

fn pong() -> agent_message::Message {
    agent_message::Message::Pong(pando_proto::link::Pong {})
}

fn send(up: &mpsc::UnboundedSender<AgentMessage>, message: agent_message::Message) {
    let _ = up.send(AgentMessage {
        message: Some(message),
    });
}
