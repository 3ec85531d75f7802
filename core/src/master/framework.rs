//! The scheduler calls: what SUBSCRIBE, TEARDOWN, DECLINE, KILL and the
//! rest do to master state.
//!
//! The HTTP layer (`http/scheduler.rs`) decodes a `Call`, checks the
//! `Mesos-Stream-Id` with [`Master::check_stream`], and calls one method
//! here. ACCEPT lives in `offer.rs` because it is mostly about offers.
//!
//! A framework's life: SUBSCRIBE creates it (or takes it over again, when it
//! comes with its id), a broken connection deactivates it and starts its
//! `failover_timeout`, and TEARDOWN or the end of that timeout removes it,
//! killing its tasks. A second SUBSCRIBE for a connected framework closes
//! the first stream with an ERROR event, "Framework failed over".

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use pando_link::master_message::Message as ToAgent;
use pando_link::{
    FrameworkToExecutor, KillTask, ShutdownExecutor, ShutdownFramework,
    StatusUpdateAcknowledgement, UpdateFramework,
};
use pando_proto::mesos::v1 as pb;
use pando_proto::mesos::v1::master as operator;
use pando_proto::mesos::v1::scheduler as sched;
use pando_proto::task_state::is_terminal;
use pando_resources::role;
use tokio::sync::mpsc;

use crate::allocator::{Constraint, FrameworkSpec, Predicate, RoleConstraints};

use super::state::{
    registry_op, unix_now, Framework, FrameworkStream, Master, MasterError, RegistryOp,
};

/// The heartbeat interval announced in SUBSCRIBED, in seconds.
pub const HEARTBEAT_INTERVAL_SECS: f64 = 15.0;

/// What a successful SUBSCRIBE hands to the HTTP layer.
#[derive(Debug)]
pub struct Subscription {
    /// The framework's id.
    pub framework_id: String,
    /// The `Mesos-Stream-Id` of the new connection.
    pub stream_id: String,
    /// The events of the stream, SUBSCRIBED (or ERROR) first.
    pub events: mpsc::UnboundedReceiver<sched::Event>,
}

impl Master {
    /// SUBSCRIBE: admits a new framework or takes an existing one over.
    ///
    /// Validation failures are answered the way Mesos answers them: the
    /// stream opens and carries a single ERROR event.
    pub fn subscribe(
        &mut self,
        subscribe: sched::call::Subscribe,
        principal: Option<&str>,
    ) -> Subscription {
        let (sender, events) = mpsc::unbounded_channel();
        let stream_id = uuid::Uuid::new_v4().to_string();
        let mut info = subscribe.framework_info;
        if let (Some(p), None) = (principal, info.principal.as_ref()) {
            info.principal = Some(p.to_string());
        }
        let requested_id = info
            .id
            .as_ref()
            .map(|i| i.value.clone())
            .filter(|v| !v.is_empty());

        let checked = (|| -> Result<_, FrameworkInfoError> {
            validate_framework_info(&info)?;
            let roles = subscribed_roles(&info);
            let suppressed: BTreeSet<String> = subscribe.suppressed_roles.iter().cloned().collect();
            if let Some(bad) = suppressed.difference(&roles).next() {
                return Err(FrameworkInfoError::SuppressedRoleNotSubscribed(bad.clone()));
            }
            let constraints = convert_constraints(subscribe.offer_constraints.as_ref(), &roles)?;
            if let Some(id) = &requested_id {
                if self.completed_frameworks.iter().any(|f| f.id() == id) {
                    return Err(FrameworkInfoError::Removed);
                }
                if let Some(existing) = self.frameworks.get(id) {
                    validate_update(&existing.info, &info)?;
                }
            }
            Ok((roles, suppressed, constraints))
        })();
        let (roles, suppressed, constraints) = match checked {
            Ok(v) => v,
            Err(refusal) => {
                let _ = sender.send(error_event(refusal.to_string()));
                return Subscription {
                    framework_id: requested_id.unwrap_or_default(),
                    stream_id,
                    events,
                };
            }
        };

        let framework_id = match requested_id {
            Some(id) => id,
            None => self.new_framework_id(),
        };
        info.id = Some(pb::FrameworkId {
            value: framework_id.clone(),
        });
        let now = unix_now();
        let stream = FrameworkStream {
            stream_id: stream_id.clone(),
            sender: sender.clone(),
        };
        let _ = sender.send(sched::Event {
            r#type: Some(sched::event::Type::Subscribed as i32),
            subscribed: Some(sched::event::Subscribed {
                framework_id: pb::FrameworkId {
                    value: framework_id.clone(),
                },
                heartbeat_interval_seconds: Some(self.flags.heartbeat_interval.as_secs_f64()),
                master_info: Some(self.info.clone()),
            }),
            ..Default::default()
        });
        // Mesos sends the first HEARTBEAT right after SUBSCRIBED.
        let _ = sender.send(sched::Event {
            r#type: Some(sched::event::Type::Heartbeat as i32),
            ..Default::default()
        });

        let spec = FrameworkSpec {
            roles: roles.clone(),
            suppressed_roles: suppressed.clone(),
            constraints,
        };
        let known = self.frameworks.contains_key(&framework_id);
        if known {
            let mut rescinds = Vec::new();
            if let Some(fw) = self.frameworks.get_mut(&framework_id) {
                if let Some(old) = fw.stream.take() {
                    let _ = old.sender.send(error_event("Framework failed over".into()));
                    self.metrics.framework_failovers += 1;
                }
                fw.info = info.clone();
                fw.stream = Some(stream);
                fw.active = true;
                fw.failover_deadline = None;
                fw.reregistered_time = Some(now);
                fw.recovered = false;
                fw.suppressed_roles = suppressed;
                fw.offer_constraints = subscribe.offer_constraints;
                rescinds.extend(fw.offers.iter().copied());
            }
            // Offers made on the old connection are void on the new one.
            for offer in rescinds {
                if self
                    .allocator
                    .decline(offer, Some(Duration::ZERO), self.now())
                    .is_ok()
                {
                    self.drop_offer(offer, false);
                }
            }
            let _ = self.allocator.update_framework(&framework_id, spec);
            let _ = self.allocator.activate_framework(&framework_id);
            self.tell_agents_framework_updated(&framework_id);
            self.publish_framework(&framework_id, operator::event::Type::FrameworkUpdated);
        } else {
            let mut fw = Framework::new(info);
            fw.stream = Some(stream);
            fw.active = true;
            fw.registered_time = Some(now);
            fw.suppressed_roles = suppressed;
            fw.offer_constraints = subscribe.offer_constraints;
            self.frameworks.insert(framework_id.clone(), fw);
            if self.allocator.add_framework(&framework_id, spec).is_err() {
                tracing::warn!(framework = %framework_id, "allocator already knew the framework");
            }
            self.publish_framework(&framework_id, operator::event::Type::FrameworkAdded);
        }
        self.record_framework(&framework_id);
        tracing::info!(framework = %framework_id, known, "framework subscribed");
        self.poke_allocator();
        Subscription {
            framework_id,
            stream_id,
            events,
        }
    }

    /// Checks that a non-SUBSCRIBE call comes from the framework's current
    /// connection, with Mesos's status codes and messages.
    pub fn check_stream(
        &self,
        framework_id: &str,
        stream_id: Option<&str>,
        principal: Option<&str>,
    ) -> Result<(), MasterError> {
        let fw = self
            .frameworks
            .get(framework_id)
            .ok_or_else(|| MasterError::BadRequest("Framework cannot be found".into()))?;
        if let Some(p) = principal {
            if fw.info.principal.as_deref() != Some(p) {
                return Err(MasterError::BadRequest(format!(
                    "Authenticated principal '{p}' does not match principal '{}' set in `FrameworkInfo`",
                    fw.info.principal.as_deref().unwrap_or("")
                )));
            }
        }
        let Some(stream) = &fw.stream else {
            return Err(MasterError::Forbidden("Framework is not subscribed".into()));
        };
        let Some(given) = stream_id else {
            return Err(MasterError::BadRequest(
                "All non-subscribe calls should include the 'Mesos-Stream-Id' header".into(),
            ));
        };
        if given != stream.stream_id {
            return Err(MasterError::BadRequest(format!(
                "The stream ID '{given}' included in this request didn't match the stream ID currently associated with framework ID {framework_id}"
            )));
        }
        Ok(())
    }

    /// The connection of a framework closed. Unless a newer connection
    /// replaced it, the framework is deactivated, its offers rescinded, and
    /// its failover timeout starts.
    pub fn framework_disconnected(&mut self, framework_id: &str, stream_id: &str) {
        let Some(fw) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        if fw.stream.as_ref().map(|s| s.stream_id.as_str()) != Some(stream_id) {
            return;
        }
        fw.stream = None;
        fw.active = false;
        fw.unregistered_time = Some(unix_now());
        let timeout = fw.info.failover_timeout.unwrap_or(0.0);
        let timeout = Duration::try_from_secs_f64(timeout.max(0.0)).unwrap_or(Duration::MAX);
        fw.failover_deadline = Some(
            Instant::now()
                .checked_add(timeout)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400)),
        );
        tracing::info!(framework = %framework_id, ?timeout, "framework disconnected");
        if let Ok(decisions) = self.allocator.deactivate_framework(framework_id) {
            self.rescind(decisions);
        }
        self.publish_framework(framework_id, operator::event::Type::FrameworkUpdated);
    }

    /// Removes frameworks whose failover timeout passed.
    pub fn expire_failover_timeouts(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .frameworks
            .iter()
            .filter(|(_, f)| f.failover_deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            tracing::info!(framework = %id, "framework failover timeout expired");
            self.remove_framework(&id);
        }
    }

    /// TEARDOWN, or the end of the failover timeout: kills the framework's
    /// tasks, tells its agents to shut it down, and keeps it as completed.
    pub fn remove_framework(&mut self, framework_id: &str) {
        let limit = self.flags.max_completed_tasks_per_framework;
        let Some(mut fw) = self.frameworks.remove(framework_id) else {
            return;
        };
        if let Ok(decisions) = self.allocator.remove_framework(framework_id) {
            self.rescind(decisions);
        }
        for offer in std::mem::take(&mut fw.offers) {
            self.offers.remove(&offer);
        }
        for n in std::mem::take(&mut fw.inverse_offers) {
            self.inverse_offers.remove(&n);
        }
        let mut agents: BTreeSet<String> = BTreeSet::new();
        let message = format!("Framework {framework_id} removed");
        let ids: Vec<String> = fw.tasks.keys().cloned().collect();
        for task_id in ids {
            let Some(mut task) = fw.tasks.remove(&task_id) else {
                continue;
            };
            agents.insert(task.agent_id.value.clone());
            if let Some(agent) = self.agents.get_mut(&task.agent_id.value) {
                agent
                    .tasks
                    .remove(&(framework_id.to_string(), task_id.clone()));
            }
            if !is_terminal(task.state) {
                let status = self.master_status(
                    &task.task_id,
                    Some(&task.agent_id),
                    pb::TaskState::TaskKilled,
                    pb::task_status::Reason::FrameworkRemoved,
                    message.clone(),
                );
                task.state = status.state;
                task.statuses.push(status.clone());
                self.metrics
                    .count_task_state(false, status.state, status.state);
                self.publish(operator::Event {
                    r#type: Some(operator::event::Type::TaskUpdated as i32),
                    task_updated: Some(operator::event::TaskUpdated {
                        framework_id: pb::FrameworkId {
                            value: framework_id.to_string(),
                        },
                        state: status.state,
                        status,
                    }),
                    ..Default::default()
                });
            }
            fw.completed_tasks.push(&task, limit);
        }
        for (_, mut task) in std::mem::take(&mut fw.unreachable_tasks) {
            task.state = pb::TaskState::TaskKilled as i32;
            fw.completed_tasks.push(&task, limit);
        }
        for (agent_id, executor_id) in fw.executors.keys() {
            agents.insert(agent_id.clone());
            if let Some(agent) = self.agents.get_mut(agent_id) {
                agent
                    .executors
                    .remove(&(framework_id.to_string(), executor_id.clone()));
            }
        }
        fw.executors.clear();
        for agent_id in agents {
            self.send_to_agent(
                &agent_id,
                ToAgent::ShutdownFramework(ShutdownFramework {
                    framework_id: pb::FrameworkId {
                        value: framework_id.to_string(),
                    },
                }),
            );
        }
        if let Some(stream) = fw.stream.take() {
            drop(stream);
        }
        fw.active = false;
        fw.failover_deadline = None;
        fw.unregistered_time = Some(unix_now());
        self.publish(operator::Event {
            r#type: Some(operator::event::Type::FrameworkRemoved as i32),
            framework_removed: Some(operator::event::FrameworkRemoved {
                framework_info: fw.info.clone(),
            }),
            ..Default::default()
        });
        tracing::info!(framework = %framework_id, "framework removed");
        self.registrar
            .record(RegistryOp::RemoveFramework(registry_op::RemoveFramework {
                id: pb::FrameworkId {
                    value: framework_id.to_string(),
                },
            }));
        self.completed_frameworks.push_back(fw);
        while self.completed_frameworks.len() > self.flags.max_completed_frameworks {
            self.completed_frameworks.pop_front();
        }
    }

    /// DECLINE: the offers go back to the allocator with the filter given.
    pub fn decline(&mut self, framework_id: &str, decline: &sched::call::Decline) {
        let refuse = refuse_duration(decline.filters.as_ref());
        for id in &decline.offer_ids {
            let Some(n) = self.offer_number(id) else {
                continue;
            };
            if self
                .offers
                .get(&n)
                .is_none_or(|o| o.framework != framework_id)
            {
                continue;
            }
            if self.allocator.decline(n, refuse, self.now()).is_ok() {
                self.metrics.offers_declined += 1;
            }
            self.drop_offer(n, false);
        }
    }

    /// REVIVE: offers resume for the roles (all when none are named) and
    /// decline filters are cleared.
    pub fn revive(&mut self, framework_id: &str, roles: &[String]) -> Result<(), MasterError> {
        self.check_roles(framework_id, roles)?;
        if let Some(fw) = self.frameworks.get_mut(framework_id) {
            if roles.is_empty() {
                fw.suppressed_roles.clear();
            } else {
                for r in roles {
                    fw.suppressed_roles.remove(r);
                }
            }
        }
        let _ = self.allocator.revive(framework_id, roles);
        self.poke_allocator();
        Ok(())
    }

    /// SUPPRESS: no offers for the roles (all when none are named).
    pub fn suppress(&mut self, framework_id: &str, roles: &[String]) -> Result<(), MasterError> {
        self.check_roles(framework_id, roles)?;
        if let Some(fw) = self.frameworks.get_mut(framework_id) {
            let named: Vec<String> = if roles.is_empty() {
                fw.roles().into_iter().collect()
            } else {
                roles.to_vec()
            };
            fw.suppressed_roles.extend(named);
        }
        let _ = self.allocator.suppress(framework_id, roles);
        Ok(())
    }

    fn check_roles(&self, framework_id: &str, roles: &[String]) -> Result<(), MasterError> {
        let Some(fw) = self.frameworks.get(framework_id) else {
            return Ok(());
        };
        let subscribed = fw.roles();
        for r in roles {
            role::validate(r).map_err(|e| MasterError::BadRequest(e.to_string()))?;
            if !subscribed.contains(r) {
                return Err(MasterError::BadRequest(format!(
                    "Role '{r}' is not one of the roles the framework subscribed to"
                )));
            }
        }
        Ok(())
    }

    /// KILL: forwards the kill to the task's agent; a task the master does
    /// not know is answered by reconciliation, as Mesos does.
    pub fn kill(&mut self, framework_id: &str, kill: &sched::call::Kill) {
        let task_id = kill.task_id.value.clone();
        let Some(fw) = self.frameworks.get(framework_id) else {
            return;
        };
        let Some(task) = fw.tasks.get(&task_id) else {
            let reconcile = sched::call::Reconcile {
                tasks: vec![sched::call::reconcile::Task {
                    task_id: kill.task_id.clone(),
                    agent_id: kill.agent_id.clone(),
                }],
            };
            self.reconcile(framework_id, &reconcile);
            return;
        };
        let agent_id = task.agent_id.value.clone();
        let kill_policy = kill.kill_policy.or(task.kill_policy);
        let delivered = self.send_to_agent(
            &agent_id,
            ToAgent::KillTask(KillTask {
                framework_id: pb::FrameworkId {
                    value: framework_id.to_string(),
                },
                task_id: kill.task_id.clone(),
                kill_policy,
            }),
        );
        if !delivered {
            tracing::warn!(task = %task_id, agent = %agent_id, "cannot kill task: agent is disconnected");
        }
    }

    /// SHUTDOWN: asks the agent to stop one executor.
    pub fn shutdown_executor(&mut self, framework_id: &str, shutdown: &sched::call::Shutdown) {
        self.send_to_agent(
            &shutdown.agent_id.value,
            ToAgent::ShutdownExecutor(ShutdownExecutor {
                framework_id: pb::FrameworkId {
                    value: framework_id.to_string(),
                },
                executor_id: shutdown.executor_id.clone(),
            }),
        );
    }

    /// ACKNOWLEDGE: passes the acknowledgement to the agent, and forgets a
    /// terminal task once its terminal update is acknowledged.
    pub fn acknowledge(&mut self, framework_id: &str, ack: &sched::call::Acknowledge) {
        let task_id = ack.task_id.value.clone();
        let completes = self
            .frameworks
            .get(framework_id)
            .and_then(|fw| fw.tasks.get(&task_id))
            .is_some_and(|task| {
                task.status_update_uuid.as_ref() == Some(&ack.uuid)
                    && task.status_update_state.is_some_and(is_terminal)
            });
        self.send_to_agent(
            &ack.agent_id.value,
            ToAgent::Acknowledgement(StatusUpdateAcknowledgement {
                agent_id: ack.agent_id.clone(),
                framework_id: pb::FrameworkId {
                    value: framework_id.to_string(),
                },
                task_id: ack.task_id.clone(),
                uuid: ack.uuid.clone(),
            }),
        );
        if completes {
            self.complete_task(framework_id, &task_id);
        }
    }

    /// RECONCILE: the latest state of the named tasks, or of every task
    /// when none is named, with Mesos's answers for tasks it does not know.
    pub fn reconcile(&mut self, framework_id: &str, reconcile: &sched::call::Reconcile) {
        let Some(fw) = self.frameworks.get(framework_id) else {
            return;
        };
        let partition_aware = fw.partition_aware();
        let mut updates = Vec::new();
        if reconcile.tasks.is_empty() {
            for task in fw.tasks.values().chain(fw.unreachable_tasks.values()) {
                updates.push(self.latest_status(task));
            }
        } else {
            use pb::task_status::Reason::Reconciliation as R;
            use pb::TaskState as S;
            for t in &reconcile.tasks {
                let agent = t.agent_id.as_ref().map(|a| a.value.as_str());
                let known = fw
                    .tasks
                    .get(&t.task_id.value)
                    .or_else(|| fw.unreachable_tasks.get(&t.task_id.value));
                let pick = |aware: S| if partition_aware { aware } else { S::TaskLost };
                // An agent that a new leader recovered from the registry
                // may still re-register with the task: no answer yet, as
                // in Mesos; the framework asks again later.
                if known.is_none() && agent.is_some_and(|a| self.recovered_agents.contains_key(a)) {
                    continue;
                }
                let status = if let Some(task) = known {
                    self.latest_status(task)
                } else if let Some(agent_id) = agent.filter(|a| self.agents.contains_key(*a)) {
                    let _ = agent_id;
                    self.master_status(
                        &t.task_id,
                        t.agent_id.as_ref(),
                        pick(S::TaskGone),
                        R,
                        "Reconciliation: Task is unknown to the agent",
                    )
                } else if let Some(unreachable) = agent.and_then(|a| self.unreachable_agents.get(a))
                {
                    let mut s = self.master_status(
                        &t.task_id,
                        t.agent_id.as_ref(),
                        pick(S::TaskUnreachable),
                        R,
                        "Reconciliation: Task is unreachable",
                    );
                    s.unreachable_time = Some(super::state::time_info(unreachable.since));
                    s
                } else if agent.is_some_and(|a| self.gone_agents.contains_key(a)) {
                    self.master_status(
                        &t.task_id,
                        t.agent_id.as_ref(),
                        pick(S::TaskGoneByOperator),
                        R,
                        "Reconciliation: Task is gone",
                    )
                } else {
                    self.master_status(
                        &t.task_id,
                        t.agent_id.as_ref(),
                        pick(S::TaskUnknown),
                        R,
                        "Reconciliation: Task is unknown",
                    )
                };
                updates.push(status);
            }
        }
        if let Some(fw) = self.frameworks.get(framework_id) {
            for status in updates {
                fw.send(sched::Event {
                    r#type: Some(sched::event::Type::Update as i32),
                    update: Some(sched::event::Update { status }),
                    ..Default::default()
                });
            }
        }
    }

    /// RECONCILE_OPERATIONS: Pando applies offer operations when it
    /// processes an ACCEPT and keeps no operation records, so every named
    /// operation is unknown and is answered by where its agent is, as in
    /// Mesos: OPERATION_UNREACHABLE, OPERATION_GONE_BY_OPERATOR, or
    /// OPERATION_UNKNOWN. Implicit reconciliation has nothing to report.
    pub fn reconcile_operations(
        &mut self,
        framework_id: &str,
        reconcile: &sched::call::ReconcileOperations,
    ) {
        let Some(fw) = self.frameworks.get(framework_id) else {
            return;
        };
        for op in &reconcile.operations {
            let agent = op.agent_id.as_ref().map(|a| a.value.as_str());
            let state = match agent {
                Some(a) if self.unreachable_agents.contains_key(a) => {
                    pb::OperationState::OperationUnreachable
                }
                Some(a) if self.gone_agents.contains_key(a) => {
                    pb::OperationState::OperationGoneByOperator
                }
                _ => pb::OperationState::OperationUnknown,
            };
            fw.send(sched::Event {
                r#type: Some(sched::event::Type::UpdateOperationStatus as i32),
                update_operation_status: Some(sched::event::UpdateOperationStatus {
                    status: pb::OperationStatus {
                        operation_id: Some(op.operation_id.clone()),
                        state: state as i32,
                        message: None,
                        converted_resources: Vec::new(),
                        uuid: None,
                        agent_id: op.agent_id.clone(),
                        resource_provider_id: op.resource_provider_id.clone(),
                    },
                }),
                ..Default::default()
            });
        }
    }

    /// The reconciliation answer for a known task: its latest state, from
    /// the master, without a uuid.
    fn latest_status(&self, task: &pb::Task) -> pb::TaskStatus {
        let state = task.status_update_state.unwrap_or(task.state);
        let state = pb::TaskState::try_from(state).unwrap_or(pb::TaskState::TaskStaging);
        let mut status = self.master_status(
            &task.task_id,
            Some(&task.agent_id),
            state,
            pb::task_status::Reason::Reconciliation,
            "Reconciliation: Latest task state",
        );
        status.executor_id = task.executor_id.clone();
        if let Some(last) = task.statuses.last() {
            status.healthy = last.healthy;
            status.check_status = last.check_status;
            status.container_status = last.container_status.clone();
            status.unreachable_time = last.unreachable_time;
        }
        status
    }

    /// MESSAGE: passes data to one of the framework's executors.
    pub fn message_to_executor(&mut self, framework_id: &str, message: &sched::call::Message) {
        let delivered = self.send_to_agent(
            &message.agent_id.value,
            ToAgent::FrameworkToExecutor(FrameworkToExecutor {
                agent_id: message.agent_id.clone(),
                framework_id: pb::FrameworkId {
                    value: framework_id.to_string(),
                },
                executor_id: message.executor_id.clone(),
                data: message.data.clone(),
            }),
        );
        if delivered {
            self.metrics.framework_messages += 1;
        }
    }

    /// UPDATE_FRAMEWORK: new roles, capabilities, name, suppressed roles or
    /// constraints, without reconnecting.
    pub fn update_framework(
        &mut self,
        update: sched::call::UpdateFramework,
    ) -> Result<(), MasterError> {
        let mut info = update.framework_info;
        let id = info
            .id
            .as_ref()
            .map(|i| i.value.clone())
            .unwrap_or_default();
        let Some(existing) = self.frameworks.get(&id) else {
            return Err(MasterError::BadRequest("Framework cannot be found".into()));
        };
        validate_framework_info(&info)?;
        validate_update(&existing.info, &info)?;
        if info.principal.is_none() {
            info.principal = existing.info.principal.clone();
        }
        let roles = subscribed_roles(&info);
        let suppressed: BTreeSet<String> = update.suppressed_roles.iter().cloned().collect();
        if let Some(bad) = suppressed.difference(&roles).next() {
            return Err(FrameworkInfoError::SuppressedRoleNotSubscribed(bad.clone()).into());
        }
        let constraints = convert_constraints(update.offer_constraints.as_ref(), &roles)?;
        if let Some(fw) = self.frameworks.get_mut(&id) {
            fw.info = info;
            fw.suppressed_roles = suppressed.clone();
            fw.offer_constraints = update.offer_constraints;
        }
        self.record_framework(&id);
        let _ = self.allocator.update_framework(
            &id,
            FrameworkSpec {
                roles,
                suppressed_roles: suppressed,
                constraints,
            },
        );
        self.tell_agents_framework_updated(&id);
        self.publish_framework(&id, operator::event::Type::FrameworkUpdated);
        self.poke_allocator();
        Ok(())
    }

    /// Sends the framework's current info to every agent it runs on.
    fn tell_agents_framework_updated(&self, framework_id: &str) {
        let Some(fw) = self.frameworks.get(framework_id) else {
            return;
        };
        let agents: BTreeSet<&String> = fw
            .tasks
            .values()
            .map(|t| &t.agent_id.value)
            .chain(fw.executors.keys().map(|(a, _)| a))
            .collect();
        for agent_id in agents {
            self.send_to_agent(
                agent_id,
                ToAgent::UpdateFramework(UpdateFramework {
                    framework_id: pb::FrameworkId {
                        value: framework_id.to_string(),
                    },
                    framework_info: fw.info.clone(),
                }),
            );
        }
    }

    /// Tells operator subscribers about a framework.
    pub fn publish_framework(&mut self, framework_id: &str, kind: operator::event::Type) {
        let Some(fw) = self.frameworks.get(framework_id) else {
            return;
        };
        let framework = self.framework_summary(fw);
        let mut event = operator::Event {
            r#type: Some(kind as i32),
            ..Default::default()
        };
        match kind {
            operator::event::Type::FrameworkAdded => {
                event.framework_added = Some(operator::event::FrameworkAdded { framework });
            }
            _ => {
                event.framework_updated = Some(operator::event::FrameworkUpdated { framework });
            }
        }
        self.publish(event);
    }
}

/// An ERROR event with this message.
pub fn error_event(message: String) -> sched::Event {
    sched::Event {
        r#type: Some(sched::event::Type::Error as i32),
        error: Some(sched::event::Error { message }),
        ..Default::default()
    }
}

/// `refuse_seconds` of a call's filters, or the default when absent.
pub fn refuse_duration(filters: Option<&pb::Filters>) -> Option<Duration> {
    let seconds = filters?.refuse_seconds?;
    if !seconds.is_finite() {
        return Some(crate::allocator::FOREVER);
    }
    Some(Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(crate::allocator::FOREVER))
}

/// The roles a FrameworkInfo subscribes to.
pub fn subscribed_roles(info: &pb::FrameworkInfo) -> BTreeSet<String> {
    let multi_role = info
        .capabilities
        .iter()
        .any(|c| c.r#type == Some(pb::framework_info::capability::Type::MultiRole as i32));
    if multi_role {
        info.roles.iter().cloned().collect()
    } else {
        [info.role.clone().unwrap_or_else(|| "*".to_string())]
            .into_iter()
            .collect()
    }
}

/// Why a FrameworkInfo (at SUBSCRIBE or UPDATE_FRAMEWORK) is refused, with
/// Mesos's messages: SUBSCRIBE answers them in an ERROR event,
/// UPDATE_FRAMEWORK with a 400.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameworkInfoError {
    /// A MULTI_ROLE framework set the single `role`.
    #[error("'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable")]
    RoleWithMultiRole,
    /// A role is listed twice.
    #[error("'FrameworkInfo.roles' contains duplicate items: {{ {0} }}")]
    DuplicateRole(String),
    /// A listed role is not a valid role name.
    #[error("'FrameworkInfo.roles' contains invalid role: {0}")]
    InvalidRoles(String),
    /// A framework without MULTI_ROLE listed `roles`.
    #[error("'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable")]
    RolesWithoutMultiRole,
    /// The single `role` is not a valid role name.
    #[error("'FrameworkInfo.role' is not a valid role: {0}")]
    InvalidRole(String),
    /// The framework id breaks Mesos's id rules.
    #[error(transparent)]
    InvalidId(#[from] IdError),
    /// The failover timeout is negative or not a number.
    #[error("The framework failover_timeout ({0}) is invalid")]
    FailoverTimeout(f64),
    /// A re-subscription or update changed the principal.
    #[error("Changing framework's principal is not allowed.")]
    PrincipalChanged,
    /// A re-subscription or update changed the user.
    #[error(
        "Updating 'FrameworkInfo.user' is unsupported; attempted to update from '{from}' to '{to}'"
    )]
    UserChanged {
        /// The user it had.
        from: String,
        /// The user it asked for.
        to: String,
    },
    /// A re-subscription or update changed checkpointing.
    #[error("Updating 'FrameworkInfo.checkpoint' is unsupported; attempted to update from '{from}' to '{to}'")]
    CheckpointChanged {
        /// The setting it had.
        from: bool,
        /// The setting it asked for.
        to: bool,
    },
    /// A suppressed role is not one the framework subscribes to.
    #[error("Suppressed roles {{ {0} }} are not contained in the set of roles")]
    SuppressedRoleNotSubscribed(String),
    /// Offer constraints name a role the framework does not subscribe to.
    #[error("Offer constraints specify `role_constraints` for a role '{0}'not contained in the set of roles")]
    ConstraintRole(String),
    /// An offer constraint selects something other than an attribute name.
    #[error("Offer constraints: only 'attribute_name' selectors are supported")]
    ConstraintSelector,
    /// An offer constraint uses a regular-expression predicate.
    #[error("Offer constraints: regular-expression predicates are not supported")]
    ConstraintRegex,
    /// The framework was torn down; its id may not subscribe again.
    #[error("Framework has been removed")]
    Removed,
}

/// Why an id (framework, task, executor) breaks Mesos's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// It is empty.
    #[error("ID must not be empty")]
    Empty,
    /// It is longer than 255 characters.
    #[error("ID '{0}' is longer than 255 characters")]
    TooLong(String),
    /// It is `.` or `..`.
    #[error("'{0}' is disallowed")]
    Disallowed(String),
    /// It contains a slash, a backslash or a control character.
    #[error("'{0}' contains invalid characters")]
    InvalidCharacters(String),
}

impl From<FrameworkInfoError> for MasterError {
    fn from(e: FrameworkInfoError) -> MasterError {
        MasterError::BadRequest(e.to_string())
    }
}

/// Mesos's FrameworkInfo validation.
pub fn validate_framework_info(info: &pb::FrameworkInfo) -> Result<(), FrameworkInfoError> {
    use FrameworkInfoError as E;
    let multi_role = info
        .capabilities
        .iter()
        .any(|c| c.r#type == Some(pb::framework_info::capability::Type::MultiRole as i32));
    if multi_role {
        if info.role.is_some() {
            return Err(E::RoleWithMultiRole);
        }
        let mut seen = BTreeSet::new();
        for r in &info.roles {
            if !seen.insert(r) {
                return Err(E::DuplicateRole(r.clone()));
            }
        }
        for r in &info.roles {
            role::validate(r).map_err(|e| E::InvalidRoles(e.to_string()))?;
        }
    } else {
        if !info.roles.is_empty() {
            return Err(E::RolesWithoutMultiRole);
        }
        role::validate(info.role.as_deref().unwrap_or("*"))
            .map_err(|e| E::InvalidRole(e.to_string()))?;
    }
    if let Some(id) = info.id.as_ref().filter(|i| !i.value.is_empty()) {
        validate_id(&id.value)?;
    }
    if let Some(timeout) = info.failover_timeout {
        if !timeout.is_finite() || timeout < 0.0 {
            return Err(E::FailoverTimeout(timeout));
        }
    }
    Ok(())
}

/// What may not change when a framework re-subscribes or updates.
fn validate_update(
    old: &pb::FrameworkInfo,
    new: &pb::FrameworkInfo,
) -> Result<(), FrameworkInfoError> {
    if new.principal.is_some() && old.principal != new.principal {
        return Err(FrameworkInfoError::PrincipalChanged);
    }
    if new.user != old.user {
        return Err(FrameworkInfoError::UserChanged {
            from: old.user.clone(),
            to: new.user.clone(),
        });
    }
    let (from, to) = (
        old.checkpoint.unwrap_or(false),
        new.checkpoint.unwrap_or(false),
    );
    if from != to {
        return Err(FrameworkInfoError::CheckpointChanged { from, to });
    }
    Ok(())
}

/// Mesos's rules for framework, task and executor ids.
pub fn validate_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > 255 {
        return Err(IdError::TooLong(id.to_string()));
    }
    if id == "." || id == ".." {
        return Err(IdError::Disallowed(id.to_string()));
    }
    if id.chars().any(|c| c == '/' || c == '\\' || c.is_control()) {
        return Err(IdError::InvalidCharacters(id.to_string()));
    }
    Ok(())
}

/// Converts SUBSCRIBE's offer constraints into the allocator's form.
fn convert_constraints(
    constraints: Option<&sched::OfferConstraints>,
    roles: &BTreeSet<String>,
) -> Result<std::collections::BTreeMap<String, RoleConstraints>, FrameworkInfoError> {
    use sched::attribute_constraint::predicate::Predicate as P;
    use sched::attribute_constraint::selector::Selector as Sel;
    let mut out = std::collections::BTreeMap::new();
    let Some(constraints) = constraints else {
        return Ok(out);
    };
    for (role_name, rc) in &constraints.role_constraints {
        if !roles.contains(role_name) {
            return Err(FrameworkInfoError::ConstraintRole(role_name.clone()));
        }
        let mut groups = Vec::new();
        for group in &rc.groups {
            let mut converted = Vec::new();
            for c in &group.attribute_constraints {
                let attribute = match &c.selector.selector {
                    Some(Sel::AttributeName(name)) => name.clone(),
                    _ => return Err(FrameworkInfoError::ConstraintSelector),
                };
                let predicate = match &c.predicate.predicate {
                    Some(P::Exists(_)) => Predicate::Exists,
                    Some(P::NotExists(_)) => Predicate::NotExists,
                    Some(P::TextEquals(t)) => Predicate::TextEquals(t.value.clone()),
                    Some(P::TextNotEquals(t)) => Predicate::TextNotEquals(t.value.clone()),
                    _ => return Err(FrameworkInfoError::ConstraintRegex),
                };
                converted.push(Constraint {
                    attribute,
                    predicate,
                });
            }
            groups.push(converted);
        }
        out.insert(role_name.clone(), RoleConstraints { groups });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! A FrameworkInfo is refused with the words Mesos uses.

    use pando_proto::mesos::v1 as pb;

    use super::{validate_framework_info, validate_id, validate_update};

    fn info() -> pb::FrameworkInfo {
        pb::FrameworkInfo {
            user: "alice".into(),
            name: "f".into(),
            ..Default::default()
        }
    }

    fn multi_role(roles: &[&str]) -> pb::FrameworkInfo {
        pb::FrameworkInfo {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            capabilities: vec![pb::framework_info::Capability {
                r#type: Some(pb::framework_info::capability::Type::MultiRole as i32),
            }],
            ..info()
        }
    }

    fn refusal(info: &pb::FrameworkInfo) -> String {
        validate_framework_info(info)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn a_framework_info_is_refused_with_mesos_messages() {
        assert!(validate_framework_info(&info()).is_ok());
        assert_eq!(
            refusal(&multi_role(&["a", "a"])),
            "'FrameworkInfo.roles' contains duplicate items: { a }"
        );
        let mut both = multi_role(&["a"]);
        both.role = Some("b".into());
        assert_eq!(
            refusal(&both),
            "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
        );
        let mut roles_without_capability = info();
        roles_without_capability.roles = vec!["a".into()];
        assert_eq!(
            refusal(&roles_without_capability),
            "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
        );
        let mut negative = info();
        negative.failover_timeout = Some(-1.0);
        assert_eq!(
            refusal(&negative),
            "The framework failover_timeout (-1) is invalid"
        );
        let mut bad_id = info();
        bad_id.id = Some(pb::FrameworkId { value: "..".into() });
        assert_eq!(refusal(&bad_id), "'..' is disallowed");
    }

    #[test]
    fn a_resubscription_may_not_change_user_principal_or_checkpointing() {
        let old = info();
        let mut new = info();
        new.user = "bob".into();
        assert_eq!(
            validate_update(&old, &new).expect_err("refused").to_string(),
            "Updating 'FrameworkInfo.user' is unsupported; attempted to update from 'alice' to 'bob'"
        );
        let mut new = info();
        new.checkpoint = Some(true);
        assert_eq!(
            validate_update(&old, &new).expect_err("refused").to_string(),
            "Updating 'FrameworkInfo.checkpoint' is unsupported; attempted to update from 'false' to 'true'"
        );
        let mut new = info();
        new.principal = Some("mallory".into());
        assert_eq!(
            validate_update(&old, &new)
                .expect_err("refused")
                .to_string(),
            "Changing framework's principal is not allowed."
        );
    }

    #[test]
    fn ids_follow_mesos_rules() {
        assert!(validate_id("task-1").is_ok());
        assert_eq!(
            validate_id("").expect_err("empty").to_string(),
            "ID must not be empty"
        );
        assert_eq!(
            validate_id("a/b").expect_err("slash").to_string(),
            "'a/b' contains invalid characters"
        );
        assert!(validate_id(&"x".repeat(256)).is_err());
    }
}
