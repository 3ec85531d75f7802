//! Agents: registration, re-registration, liveness, and what they report.
//!
//! The agent link (`link.rs`) hands every message from an agent's session
//! to one method here. Each session has a number; when an agent reconnects,
//! the newer session wins and anything still arriving on the old one is
//! ignored.
//!
//! Liveness follows Mesos: the master pings every `--agent_ping_timeout`;
//! a ping without a pong before the next one is a miss, and after
//! `--max_agent_ping_timeouts` misses the agent is unreachable. Its tasks
//! become TASK_UNREACHABLE for partition-aware frameworks and TASK_LOST for
//! the others. An unreachable agent may re-register later; one marked gone
//! by the operator is told to shut down.

use std::collections::BTreeSet;

use pando_link::agent_message::Message as FromAgent;
use pando_link::master_message::Message as ToAgent;
use pando_link::{
    AgentRegistered, AgentReregistered, MasterMessage, Ping, RegisterAgent, ReregisterAgent,
    ShutdownAgent, ShutdownFramework, StatusUpdate, StatusUpdateAcknowledgement,
};
use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::master as operator;
use pando_proto::mesos::v1::scheduler as sched;
use pando_proto::task_state::is_terminal;
use pando_resources::Resources;

use crate::allocator::AgentSpec;

use super::state::{
    registry_op, time_info, unix_now, Agent, AgentLinkSender, Framework, Master, MasterError,
    RegistryOp, UnreachableAgent,
};

impl Master {
    /// A new agent asks to join: it gets an id and its resources join the
    /// pool.
    pub fn register_agent(
        &mut self,
        register: RegisterAgent,
        link: AgentLinkSender,
    ) -> Result<(String, u64), MasterError> {
        let mut info = register.agent_info;
        if self.machine_down(&info.hostname) {
            return Err(self.refuse_for_maintenance(&link));
        }
        let total = Resources::from_proto(&info.resources)
            .map_err(|e| MasterError::BadRequest(format!("invalid agent resources: {e}")))?;
        let agent_id = self.new_agent_id();
        info.id = Some(pb::AgentId {
            value: agent_id.clone(),
        });
        let session = self.new_session();
        let spec = AgentSpec {
            hostname: info.hostname.clone(),
            total: total.clone(),
            attributes: info.attributes.clone(),
        };
        self.allocator
            .add_agent(&agent_id, spec)
            .map_err(|e| MasterError::Conflict(e.to_string()))?;
        let agent = Agent::new(
            info,
            register.version.unwrap_or_default(),
            register.endpoint,
            register.capabilities,
            (link, session),
            total,
        );
        agent.send(ToAgent::Registered(AgentRegistered {
            agent_id: pb::AgentId {
                value: agent_id.clone(),
            },
            ping_interval_seconds: self.flags.agent_ping_timeout.as_secs_f64(),
            max_ping_timeouts: self.flags.max_agent_ping_timeouts,
            master_info: Some(self.info.clone()),
        }));
        self.agents.insert(agent_id.clone(), agent);
        self.record_agent(&agent_id);
        self.metrics.agent_registrations += 1;
        self.publish_agent_added(&agent_id);
        tracing::info!(agent = %agent_id, "agent registered");
        self.poke_allocator();
        Ok((agent_id, session))
    }

    /// An agent with an id comes back: after a broken link, after its own
    /// restart, after being unreachable, or to a new master. Its tasks and
    /// executors are taken as the truth.
    pub fn reregister_agent(
        &mut self,
        reregister: ReregisterAgent,
        link: AgentLinkSender,
    ) -> Result<(String, u64), MasterError> {
        let limit = self.flags.max_completed_tasks_per_framework;
        let info = reregister.agent_info;
        let Some(agent_id) = info.id.as_ref().map(|i| i.value.clone()) else {
            return Err(MasterError::BadRequest(
                "re-registration without an agent id".into(),
            ));
        };
        if self.gone_agents.contains_key(&agent_id) {
            let _ = link.send(Box::new(MasterMessage {
                message: Some(ToAgent::Shutdown(ShutdownAgent {
                    message: Some("Agent has been marked gone".into()),
                })),
            }));
            return Err(MasterError::Forbidden(format!(
                "agent {agent_id} has been marked gone"
            )));
        }
        if self.machine_down(&info.hostname) {
            return Err(self.refuse_for_maintenance(&link));
        }
        let was_unreachable = self.unreachable_agents.remove(&agent_id).is_some();
        let session = self.new_session();
        let mut total = Resources::from_proto(&info.resources)
            .map_err(|e| MasterError::BadRequest(format!("invalid agent resources: {e}")))?;
        let checkpointed = Resources::from_proto(&reregister.checkpointed_resources)
            .map_err(|e| MasterError::BadRequest(format!("invalid checkpointed resources: {e}")))?;
        // Dynamic reservations replace the unreserved resources they came from.
        for r in &checkpointed {
            let mut plain = super::reservation::strip_one(r);
            plain
                .reservations
                .retain(|res| res.kind != pando_resources::ReservationKind::Dynamic);
            total.subtract(&plain);
            total.add(r.clone());
        }

        // Forget whatever the master believed about the agent before,
        // keeping its tasks to compare with what the agent reports.
        // What the operator decided about the agent outlives its sessions.
        // After a failover the registry remembers it.
        let recovered = self.recovered_agents.remove(&agent_id);
        let (deactivated, drain_info) = match (self.agents.get(&agent_id), &recovered) {
            (Some(a), _) => (a.deactivated, a.drain_info),
            (None, Some(r)) => (r.deactivated.unwrap_or(false), r.drain_info),
            (None, None) => (false, None),
        };
        let previous_tasks = self.remove_agent_state(&agent_id);
        let spec = AgentSpec {
            hostname: info.hostname.clone(),
            total: total.clone(),
            attributes: info.attributes.clone(),
        };
        self.allocator
            .add_agent(&agent_id, spec)
            .map_err(|e| MasterError::Conflict(e.to_string()))?;

        let mut agent = Agent::new(
            info,
            reregister.version.unwrap_or_default(),
            reregister.endpoint,
            reregister.capabilities,
            (link, session),
            total,
        );
        agent.deactivated = deactivated;
        agent.drain_info = drain_info;
        agent.checkpointed = reregister.checkpointed_resources;
        agent.reregistered_time = Some(agent.registered_time);

        // Frameworks the agent knows but the master does not (a master
        // failover) come back as recovered, inactive frameworks.
        for fw_info in &reregister.frameworks {
            let Some(id) = fw_info.id.as_ref().map(|i| i.value.clone()) else {
                continue;
            };
            if self.frameworks.contains_key(&id)
                || self.completed_frameworks.iter().any(|f| f.id() == id)
            {
                continue;
            }
            self.add_recovered_framework(fw_info.clone());
        }

        let completed: BTreeSet<String> = self
            .completed_frameworks
            .iter()
            .map(|f| f.id().to_string())
            .collect();
        let mut shutdown_frameworks: BTreeSet<String> = BTreeSet::new();
        for executor in &reregister.executors {
            let fw_id = executor
                .framework_id
                .as_ref()
                .map(|f| f.value.clone())
                .unwrap_or_default();
            if completed.contains(&fw_id) || !self.frameworks.contains_key(&fw_id) {
                shutdown_frameworks.insert(fw_id);
                continue;
            }
            let key = (fw_id.clone(), executor.executor_id.value.clone());
            agent.executors.insert(key, executor.clone());
            if let Some(fw) = self.frameworks.get_mut(&fw_id) {
                fw.executors.insert(
                    (agent_id.clone(), executor.executor_id.value.clone()),
                    executor.clone(),
                );
            }
            let used = Resources::from_proto(&executor.resources).unwrap_or_default();
            let role = allocation_role(&used);
            let _ = self.allocator.add_used(&agent_id, &fw_id, &role, &used);
        }
        let mut reported: BTreeSet<(String, String)> = BTreeSet::new();
        let mut reregistered_updates: Vec<(String, pb::TaskStatus)> = Vec::new();
        for task in reregister.tasks {
            let fw_id = task.framework_id.value.clone();
            if completed.contains(&fw_id) || !self.frameworks.contains_key(&fw_id) {
                shutdown_frameworks.insert(fw_id);
                continue;
            }
            let task_id = task.task_id.value.clone();
            reported.insert((fw_id.clone(), task_id.clone()));
            if !is_terminal(task.state) {
                let used = Resources::from_proto(&task.resources).unwrap_or_default();
                let role = allocation_role(&used);
                let _ = self.allocator.add_used(&agent_id, &fw_id, &role, &used);
            }
            if was_unreachable {
                let state =
                    pb::TaskState::try_from(task.state).unwrap_or(pb::TaskState::TaskRunning);
                let mut status = self.master_status(
                    &task.task_id,
                    Some(&task.agent_id),
                    state,
                    pb::task_status::Reason::AgentReregistered,
                    "Unreachable agent re-reregistered",
                );
                status.executor_id = task.executor_id.clone();
                reregistered_updates.push((fw_id.clone(), status));
            }
            let Some(fw) = self.frameworks.get_mut(&fw_id) else {
                continue;
            };
            // A task the master had given up on is tracked once, as running.
            fw.unreachable_tasks.remove(&task_id);
            fw.completed_tasks.remove(&task.task_id.value);
            agent.tasks.insert((fw_id.clone(), task_id.clone()));
            fw.tasks.insert(task_id, task.clone());
            self.publish(operator::Event {
                r#type: Some(operator::event::Type::TaskAdded as i32),
                task_added: Some(operator::event::TaskAdded { task }),
                ..Default::default()
            });
        }
        for (fw_id, status) in reregistered_updates {
            self.forward_update(&fw_id, status);
        }
        // Tasks the master launched on the agent that the agent does not
        // know: the launch never arrived, so they are dropped (or lost).
        for (fw_id, task) in previous_tasks {
            if reported.contains(&(fw_id.clone(), task.task_id.value.clone()))
                || is_terminal(task.state)
            {
                continue;
            }
            let partition_aware = self
                .frameworks
                .get(&fw_id)
                .is_some_and(|f| f.partition_aware());
            let state = if partition_aware {
                pb::TaskState::TaskDropped
            } else {
                pb::TaskState::TaskLost
            };
            let status = self.master_status(
                &task.task_id,
                Some(&task.agent_id),
                state,
                pb::task_status::Reason::Reconciliation,
                "Reconciliation: task unknown to the agent",
            );
            if let Some(fw) = self.frameworks.get_mut(&fw_id) {
                let mut t = task.clone();
                t.state = status.state;
                t.statuses.push(status.clone());
                fw.completed_tasks.push(&t, limit);
            }
            self.metrics
                .count_task_state(false, status.state, status.state);
            self.forward_update(&fw_id, status);
        }
        agent.send(ToAgent::Reregistered(AgentReregistered {
            agent_id: pb::AgentId {
                value: agent_id.clone(),
            },
            ping_interval_seconds: self.flags.agent_ping_timeout.as_secs_f64(),
            max_ping_timeouts: self.flags.max_agent_ping_timeouts,
            master_info: Some(self.info.clone()),
            completed_frameworks: completed
                .iter()
                .map(|id| pb::FrameworkId { value: id.clone() })
                .collect(),
        }));
        for fw_id in &shutdown_frameworks {
            if completed.contains(fw_id) {
                agent.send(ToAgent::ShutdownFramework(ShutdownFramework {
                    framework_id: pb::FrameworkId {
                        value: fw_id.clone(),
                    },
                }));
            }
        }
        self.agents.insert(agent_id.clone(), agent);
        self.record_agent(&agent_id);
        if deactivated {
            let _ = self.allocator.set_agent_active(&agent_id, false);
        }
        self.metrics.agent_reregistrations += 1;
        self.publish_agent_added(&agent_id);
        tracing::info!(agent = %agent_id, was_unreachable, "agent re-registered");
        self.poke_allocator();
        Ok((agent_id, session))
    }

    /// A framework the master learns of without a subscription (from an
    /// agent, or from the registry after a failover): inactive, and removed
    /// unless it re-subscribes within its failover timeout (or the agent
    /// re-registration timeout, whichever is longer).
    pub fn add_recovered_framework(&mut self, info: pb::FrameworkInfo) {
        let Some(id) = info.id.as_ref().map(|i| i.value.clone()) else {
            return;
        };
        let timeout = info.failover_timeout.unwrap_or(0.0).max(0.0);
        let mut fw = Framework::new(info);
        fw.recovered = true;
        fw.failover_deadline = std::time::Instant::now().checked_add(
            std::time::Duration::try_from_secs_f64(timeout)
                .unwrap_or(std::time::Duration::MAX)
                .max(self.flags.agent_reregister_timeout),
        );
        let roles = fw.roles();
        self.frameworks.insert(id.clone(), fw);
        let _ = self.allocator.add_framework(
            &id,
            crate::allocator::FrameworkSpec {
                roles,
                ..Default::default()
            },
        );
        let _ = self.allocator.deactivate_framework(&id);
    }

    /// Tells an agent on a DOWN machine to shut down.
    fn refuse_for_maintenance(&self, link: &AgentLinkSender) -> MasterError {
        let _ = link.send(Box::new(MasterMessage {
            message: Some(ToAgent::Shutdown(ShutdownAgent {
                message: Some("Agent's machine is DOWN for maintenance".into()),
            })),
        }));
        MasterError::Forbidden("the agent's machine is DOWN for maintenance".into())
    }

    /// Drops the master's record of an agent's tasks, executors and
    /// resources (before taking its re-registration as the truth).
    fn remove_agent_state(&mut self, agent_id: &str) -> Vec<(String, pb::Task)> {
        let mut previous = Vec::new();
        let Some(agent) = self.agents.remove(agent_id) else {
            return previous;
        };
        if let Ok(decisions) = self.allocator.remove_agent(agent_id) {
            self.rescind(decisions);
        }
        for (fw_id, task_id) in &agent.tasks {
            if let Some(fw) = self.frameworks.get_mut(fw_id) {
                if let Some(task) = fw.tasks.remove(task_id) {
                    previous.push((fw_id.clone(), task));
                }
            }
        }
        for (fw_id, executor_id) in agent.executors.keys() {
            if let Some(fw) = self.frameworks.get_mut(fw_id) {
                fw.executors
                    .remove(&(agent_id.to_string(), executor_id.clone()));
            }
        }
        previous
    }

    /// A message on an agent's session.
    pub fn agent_message(&mut self, agent_id: &str, session: u64, message: FromAgent) {
        let current = self
            .agents
            .get(agent_id)
            .is_some_and(|a| a.session == session);
        if !current {
            return;
        }
        match message {
            FromAgent::Pong(_) => {
                if let Some(agent) = self.agents.get_mut(agent_id) {
                    agent.pong_received = true;
                    agent.missed_pings = 0;
                }
            }
            FromAgent::StatusUpdate(update) => self.status_update(agent_id, update),
            FromAgent::ExecutorToFramework(message) => {
                let fw_id = message.framework_id.value.clone();
                if let Some(fw) = self.frameworks.get(&fw_id) {
                    if fw.send(sched::Event {
                        r#type: Some(sched::event::Type::Message as i32),
                        message: Some(sched::event::Message {
                            agent_id: message.agent_id,
                            executor_id: message.executor_id,
                            data: message.data,
                        }),
                        ..Default::default()
                    }) {
                        self.metrics.framework_messages += 1;
                    }
                }
            }
            FromAgent::ExecutorExited(exited) => {
                let fw_id = exited.framework_id.value.clone();
                let exec_id = exited.executor_id.value.clone();
                let info = self
                    .agents
                    .get_mut(agent_id)
                    .and_then(|a| a.executors.remove(&(fw_id.clone(), exec_id.clone())));
                if let Some(fw) = self.frameworks.get_mut(&fw_id) {
                    fw.executors
                        .remove(&(agent_id.to_string(), exec_id.clone()));
                    fw.send(sched::Event {
                        r#type: Some(sched::event::Type::Failure as i32),
                        failure: Some(sched::event::Failure {
                            agent_id: Some(pb::AgentId {
                                value: agent_id.to_string(),
                            }),
                            executor_id: Some(exited.executor_id.clone()),
                            // Schedulers (pymesos among them) read the
                            // status unconditionally; Mesos always sets it.
                            status: Some(exited.status.unwrap_or(-1)),
                        }),
                        ..Default::default()
                    });
                }
                if let Some(info) = info {
                    let resources = Resources::from_proto(&info.resources).unwrap_or_default();
                    // Recovered resources wait for the next batch cycle.
                    let _ = self.allocator.recover(&fw_id, agent_id, &resources);
                }
            }
            FromAgent::Register(_) | FromAgent::Reregister(_) => {
                tracing::warn!(agent = %agent_id, "ignoring a second registration on one session");
            }
        }
    }

    /// A status update from an agent: the task's state changes and the
    /// update goes to the framework, whose ACKNOWLEDGE comes back through
    /// [`Master::acknowledge`]. Updates for frameworks the master removed are
    /// acknowledged here, so the agent stops resending them.
    fn status_update(&mut self, agent_id: &str, update: StatusUpdate) {
        let fw_id = update.framework_id.value.clone();
        let mut status = update.status;
        if status.agent_id.is_none() {
            status.agent_id = Some(pb::AgentId {
                value: agent_id.to_string(),
            });
        }
        if !self.frameworks.contains_key(&fw_id) {
            self.metrics.invalid_status_updates += 1;
            let completed = self.completed_frameworks.iter().any(|f| f.id() == fw_id);
            if completed {
                if let Some(uuid) = status.uuid.clone() {
                    self.send_to_agent(
                        agent_id,
                        ToAgent::Acknowledgement(StatusUpdateAcknowledgement {
                            agent_id: pb::AgentId {
                                value: agent_id.to_string(),
                            },
                            framework_id: update.framework_id,
                            task_id: status.task_id,
                            uuid,
                        }),
                    );
                }
            }
            return;
        }
        self.metrics.valid_status_updates += 1;
        // Kills the master ordered to drain the agent say so, as a Mesos
        // agent's do.
        let draining = self
            .agents
            .get(agent_id)
            .and_then(|a| a.drain_info)
            .is_some_and(|d| d.state == pb::DrainState::Draining as i32);
        let killed = [
            pb::TaskState::TaskKilled as i32,
            pb::TaskState::TaskKilling as i32,
        ];
        if draining && killed.contains(&status.state) {
            status.reason = Some(pb::task_status::Reason::AgentDraining as i32);
        }
        let known = self
            .update_task(&fw_id, &status, update.latest_state)
            .is_some();
        if !known {
            tracing::debug!(task = %status.task_id.value, "status update for a task the master does not track");
        }
        self.forward_update(&fw_id, status);
        self.check_drained(agent_id);
    }

    /// A draining agent whose tasks are all terminal is DRAINED, and marked
    /// gone if the operator asked for that.
    pub fn check_drained(&mut self, agent_id: &str) {
        let Some(agent) = self.agents.get(agent_id) else {
            return;
        };
        let Some(drain) = agent.drain_info else {
            return;
        };
        if drain.state != pb::DrainState::Draining as i32 {
            return;
        }
        let busy = agent.tasks.iter().any(|(fw, task)| {
            self.frameworks
                .get(fw)
                .and_then(|f| f.tasks.get(task))
                .is_some_and(|t| !is_terminal(t.state))
        });
        if busy {
            return;
        }
        let mark_gone = drain.config.mark_gone.unwrap_or(false);
        if let Some(agent) = self.agents.get_mut(agent_id) {
            if let Some(d) = agent.drain_info.as_mut() {
                d.state = pb::DrainState::Drained as i32;
            }
        }
        self.record_agent_state(agent_id);
        tracing::info!(agent = %agent_id, "agent drained");
        if mark_gone {
            let _ = self.mark_gone(agent_id);
        }
    }

    /// The agent's session ended (the stream broke or the agent closed it).
    /// The agent stays registered; offers of its resources are rescinded
    /// until it reconnects, and missed pings count towards unreachability.
    pub fn agent_disconnected(&mut self, agent_id: &str, session: u64) {
        let Some(agent) = self.agents.get_mut(agent_id) else {
            return;
        };
        if agent.session != session {
            return;
        }
        agent.link = None;
        tracing::info!(agent = %agent_id, "agent disconnected");
        if let Ok(decisions) = self.allocator.set_agent_active(agent_id, false) {
            self.rescind(decisions);
        }
    }

    /// One ping round: count the missed pongs, mark agents that missed too
    /// many unreachable, and ping the rest.
    pub fn ping_agents(&mut self) {
        let max = self.flags.max_agent_ping_timeouts;
        let mut unreachable = Vec::new();
        for (id, agent) in &mut self.agents {
            if !agent.pong_received {
                agent.missed_pings += 1;
            }
            if agent.missed_pings >= max {
                unreachable.push(id.clone());
                continue;
            }
            agent.pong_received = false;
            agent.send(ToAgent::Ping(Ping {
                connected: Some(true),
            }));
        }
        for id in unreachable {
            self.mark_unreachable(&id);
        }
    }

    /// The agent stopped answering: its tasks become TASK_UNREACHABLE (or
    /// TASK_LOST) and its resources leave the pool until it re-registers.
    pub fn mark_unreachable(&mut self, agent_id: &str) {
        let now = unix_now();
        let Some(info) = self.agents.get(agent_id).map(|a| a.info.clone()) else {
            return;
        };
        tracing::warn!(agent = %agent_id, "agent is unreachable");
        self.remove_agent(
            agent_id,
            Some(now),
            pb::TaskState::TaskUnreachable,
            pb::task_status::Reason::AgentRemoved,
            format!("Agent {} is unreachable", info.hostname),
        );
        self.unreachable_agents
            .insert(agent_id.to_string(), UnreachableAgent { info, since: now });
        self.registrar.record(RegistryOp::MarkAgentUnreachable(
            registry_op::MarkAgentUnreachable {
                id: pb::AgentId {
                    value: agent_id.to_string(),
                },
                timestamp: time_info(now),
            },
        ));
        self.metrics.agents_unreachable_marked += 1;
    }

    /// MARK_AGENT_GONE: the agent will never come back; its tasks are
    /// TASK_GONE_BY_OPERATOR (or TASK_LOST) and it is told to shut down.
    pub fn mark_gone(&mut self, agent_id: &str) -> Result<(), MasterError> {
        let limit = self.flags.max_completed_tasks_per_framework;
        if self.gone_agents.contains_key(agent_id) {
            return Ok(());
        }
        let known = self.agents.contains_key(agent_id);
        let unreachable = self.unreachable_agents.remove(agent_id).is_some();
        if !known && !unreachable {
            return Err(MasterError::NotFound(format!(
                "Agent {agent_id} is not registered or unreachable"
            )));
        }
        if known {
            self.send_to_agent(
                agent_id,
                ToAgent::Shutdown(ShutdownAgent {
                    message: Some("Agent has been marked gone".into()),
                }),
            );
            self.remove_agent(
                agent_id,
                None,
                pb::TaskState::TaskGoneByOperator,
                pb::task_status::Reason::AgentRemovedByOperator,
                "Agent has been marked gone".into(),
            );
        } else {
            // Tasks kept for partition-aware frameworks are gone now.
            let ids: Vec<String> = self.frameworks.keys().cloned().collect();
            for fw_id in ids {
                let tasks: Vec<pb::Task> = self
                    .frameworks
                    .get(&fw_id)
                    .map(|f| {
                        f.unreachable_tasks
                            .values()
                            .filter(|t| t.agent_id.value == agent_id)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                for task in tasks {
                    let status = self.master_status(
                        &task.task_id,
                        Some(&task.agent_id),
                        pb::TaskState::TaskGoneByOperator,
                        pb::task_status::Reason::AgentRemovedByOperator,
                        "Agent has been marked gone",
                    );
                    if let Some(fw) = self.frameworks.get_mut(&fw_id) {
                        if let Some(mut t) = fw.unreachable_tasks.remove(&task.task_id.value) {
                            t.state = status.state;
                            fw.completed_tasks.push(&t, limit);
                        }
                    }
                    self.forward_update(&fw_id, status);
                }
            }
        }
        let now = unix_now();
        self.gone_agents.insert(agent_id.to_string(), now);
        self.registrar
            .record(RegistryOp::MarkAgentGone(registry_op::MarkAgentGone {
                id: pb::AgentId {
                    value: agent_id.to_string(),
                },
                timestamp: time_info(now),
            }));
        Ok(())
    }

    /// Removes an agent and tells the frameworks what became of its tasks.
    pub(crate) fn remove_agent(
        &mut self,
        agent_id: &str,
        unreachable_since: Option<f64>,
        aware_state: pb::TaskState,
        reason: pb::task_status::Reason,
        message: String,
    ) {
        let limit = self.flags.max_completed_tasks_per_framework;
        let Some(agent) = self.agents.remove(agent_id) else {
            return;
        };
        if let Ok(decisions) = self.allocator.remove_agent(agent_id) {
            self.rescind(decisions);
        }
        for (fw_id, task_id) in &agent.tasks {
            let Some(fw) = self.frameworks.get(fw_id) else {
                continue;
            };
            let partition_aware = fw.partition_aware();
            let Some(task) = fw.tasks.get(task_id).cloned() else {
                continue;
            };
            let state = if partition_aware {
                aware_state
            } else {
                pb::TaskState::TaskLost
            };
            let mut status = self.master_status(
                &task.task_id,
                Some(&task.agent_id),
                state,
                if partition_aware || reason != pb::task_status::Reason::AgentRemovedByOperator {
                    reason
                } else {
                    pb::task_status::Reason::AgentRemoved
                },
                message.clone(),
            );
            status.executor_id = task.executor_id.clone();
            status.unreachable_time = unreachable_since.map(time_info);
            let was_terminal = is_terminal(task.state);
            if let Some(fw) = self.frameworks.get_mut(fw_id) {
                if let Some(mut t) = fw.tasks.remove(task_id) {
                    t.state = status.state;
                    t.status_update_state = Some(status.state);
                    t.statuses.push(status.clone());
                    if partition_aware && unreachable_since.is_some() && !was_terminal {
                        fw.unreachable_tasks.insert(task_id.clone(), t);
                    } else {
                        fw.completed_tasks.push(&t, limit);
                    }
                }
            }
            if !was_terminal {
                self.metrics
                    .count_task_state(false, status.state, status.state);
                self.forward_update(fw_id, status);
            }
        }
        for (fw_id, executor_id) in agent.executors.keys() {
            if let Some(fw) = self.frameworks.get_mut(fw_id) {
                fw.executors
                    .remove(&(agent_id.to_string(), executor_id.clone()));
            }
        }
        // Every framework hears that the agent is lost.
        for fw in self.frameworks.values() {
            fw.send(sched::Event {
                r#type: Some(sched::event::Type::Failure as i32),
                failure: Some(sched::event::Failure {
                    agent_id: Some(pb::AgentId {
                        value: agent_id.to_string(),
                    }),
                    executor_id: None,
                    status: None,
                }),
                ..Default::default()
            });
        }
        self.metrics.agent_removals += 1;
        self.publish(operator::Event {
            r#type: Some(operator::event::Type::AgentRemoved as i32),
            agent_removed: Some(operator::event::AgentRemoved {
                agent_id: pb::AgentId {
                    value: agent_id.to_string(),
                },
            }),
            ..Default::default()
        });
    }

    fn publish_agent_added(&mut self, agent_id: &str) {
        let Some(agent) = self.agents.get(agent_id) else {
            return;
        };
        let summary = self.agent_summary(agent);
        self.publish(operator::Event {
            r#type: Some(operator::event::Type::AgentAdded as i32),
            agent_added: Some(operator::event::AgentAdded { agent: summary }),
            ..Default::default()
        });
    }
}

/// The role resources are allocated to (`*` when unmarked).
fn allocation_role(resources: &Resources) -> String {
    resources
        .iter()
        .find_map(|r| r.allocation_role.clone())
        .unwrap_or_else(|| "*".to_string())
}
